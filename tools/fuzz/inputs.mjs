// Deterministic fuzz inputs: input #i of seed s is always the same bytes, so a finding is
// reproduced from (seed, index) alone. Inputs start from the committed fixtures and are mutated
// knowing the structure of ELF, BTF and .BTF.ext: header fields, section headers, symbols,
// relocations, BTF type records (kinds, counts, type ids, string offsets, sizes), synthetic
// DAGs, cycles and deep chains of types spliced into the object, huge .bss sections — as well as
// random bytes, truncation and splices.
import { readdirSync, readFileSync } from 'node:fs';

/** A small 32-bit PRNG (splitmix-style finalizer over a Weyl sequence). */
export function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  next.below = (n) => (n <= 0 ? 0 : next() % n);
  next.pick = (list) => list[next.below(list.length)];
  next.chance = (p) => next() / 0x100000000 < p;
  return next;
}

const SHT_NOBITS = 8;
const DATA = /^\.(data|rodata|bss)(\.|$)/;

/** BTF kinds: bytes that follow the 12-byte record header, per vlen. */
const EXTRA = (kind, vlen) =>
  ({
    1: 4,
    3: 12,
    4: 12 * vlen,
    5: 12 * vlen,
    6: 8 * vlen,
    13: 8 * vlen,
    14: 4,
    15: 12 * vlen,
    17: 4,
    19: 12 * vlen,
  })[kind] ?? 0;

/** Offsets of the BTF type records: { at, kind, vlen } (stops at the first malformed one). */
export function btfRecords(blob) {
  if (blob.length < 24) return [];
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const hdr = dv.getUint32(4, true);
  const start = hdr + dv.getUint32(8, true);
  const end = Math.min(blob.length, start + dv.getUint32(12, true));
  const out = [];
  for (let at = start; at + 12 <= end; ) {
    const info = dv.getUint32(at + 4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    out.push({ at, kind, vlen });
    at += 12 + EXTRA(kind, vlen);
  }
  return out;
}

/** Read the section headers of a (well-formed) fixture. */
function sectionHeaders(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(dv.getBigUint64(40, true));
  const shnum = dv.getUint16(60, true);
  const shstrndx = dv.getUint16(62, true);
  const hdr = (i) => shoff + i * 64;
  const strOff = Number(dv.getBigUint64(hdr(shstrndx) + 24, true));
  const name = (off) => {
    let end = strOff + off;
    while (bytes[end] !== 0) end++;
    return new TextDecoder().decode(bytes.subarray(strOff + off, end));
  };
  return Array.from({ length: shnum }, (_, i) => ({
    index: i,
    at: hdr(i),
    nameOff: dv.getUint32(hdr(i), true),
    name: name(dv.getUint32(hdr(i), true)),
    type: dv.getUint32(hdr(i) + 4, true),
    offset: Number(dv.getBigUint64(hdr(i) + 24, true)),
    size: Number(dv.getBigUint64(hdr(i) + 32, true)),
  }));
}

/** Load the seeds: every committed fixture object, with its sections and BTF records located. */
export function loadSeeds(dir = new URL('../../packages/loader/test/fixtures/', import.meta.url)) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.bpf.o'))
    .sort()
    .map((f) => {
      const bytes = new Uint8Array(readFileSync(new URL(f, dir)));
      const sections = sectionHeaders(bytes);
      const btf = sections.find((s) => s.name === '.BTF');
      const btfBlob = btf ? bytes.slice(btf.offset, btf.offset + btf.size) : undefined;
      return { name: f, bytes, sections, btf, btfBlob, records: btfBlob ? btfRecords(btfBlob) : [] };
    });
}

const u32s = [
  0, 1, 2, 3, 4, 7, 8, 12, 16, 24, 31, 32, 33, 63, 64, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0xffff,
];
const bigs = [
  0x10000, 0x400000, 0x400001, 0x4000000, 0x10000000, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff,
];

function interesting(r, near = []) {
  const c = r.below(4);
  if (c === 0) return r.pick(u32s);
  if (c === 1) return r.pick(bigs);
  if (c === 2 && near.length) {
    const v = r.pick(near);
    return (v + r.pick([-1, 0, 1, 8, -8])) >>> 0;
  }
  return r();
}

const setU32 = (b, at, v) => {
  if (at >= 0 && at + 4 <= b.length)
    new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, true);
};
const setU16 = (b, at, v) => {
  if (at >= 0 && at + 2 <= b.length)
    new DataView(b.buffer, b.byteOffset, b.byteLength).setUint16(at, v & 0xffff, true);
};
const setU64 = (b, at, v) => {
  if (at >= 0 && at + 8 <= b.length)
    new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true);
};

/** Synthetic BTF type records (u32 words) appended after `count` existing types; returns [words, rootId]. */
function synthetic(r, count, nameOff) {
  const w = [];
  const first = count + 1;
  const shape = r.below(6);
  const depth = r.pick([8, 20, 30, 31, 32, 33, 40, 64]);
  const named = r.chance(0.5) ? nameOff : 0;
  if (shape <= 1) {
    // union (or struct) DAG: each holds two members of the next; the last is an int
    const kind = shape === 0 ? 5 : 4;
    for (let k = 0; k < depth; k++) {
      const next = first + k + 1;
      w.push(named, (kind << 24) | 2, 4, named, next, 0, 0, next, 0);
    }
    w.push(named, 1 << 24, 4, 32);
  } else if (shape === 2) {
    // a struct that contains itself (by value), or a typedef/const loop
    if (r.chance(0.5)) w.push(named, (4 << 24) | 1, 8, named, first, 0);
    else w.push(0, 8 << 24, first + 1, 0, 10 << 24, first);
  } else if (shape === 3) {
    // a deep array chain ending in an int, or an array of itself
    if (r.chance(0.2)) w.push(0, 3 << 24, 0, first, first, r.pick([1, 2, 0xffffffff]));
    else {
      for (let k = 0; k < depth; k++) w.push(0, 3 << 24, 0, first + k + 1, first + depth, r.pick([1, 2, 16]));
      w.push(named, 1 << 24, 4, 32);
    }
  } else if (shape === 4) {
    // anonymous-member DAG: struct holding two anonymous unions of the next, for member()/CO-RE
    for (let k = 0; k < depth; k++) w.push(0, (5 << 24) | 2, 4, 0, first + k + 1, 0, 0, first + k + 1, 0);
    w.push(0, (4 << 24) | 1, 4, named, first + depth + 1, 0);
    w.push(named, 1 << 24, 4, 32);
  } else {
    // a struct with members at odd or far offsets and bitfields, over an int
    const n = 1 + r.below(4);
    w.push(named, (r.chance(0.3) ? 0x80000000 : 0) | (4 << 24) | n, r.pick([1, 4, 8, 64, 0xffffffff]));
    for (let k = 0; k < n; k++)
      w.push(named, first + 1, r.pick([0, 3, 8, 12, 64, 0xffff, 0x7fffff, 0x40000000]));
    w.push(named, 1 << 24, r.pick([1, 2, 4, 8, 16, 3]), r.pick([8, 32, 64, 0x20]));
  }
  return [w, first];
}

/** A BTF blob with `words` appended to its type section. */
function withTypes(blob, words) {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const hdr = dv.getUint32(4, true);
  const typeOff = dv.getUint32(8, true);
  const typeLen = dv.getUint32(12, true);
  const strOff = dv.getUint32(16, true);
  const strLen = dv.getUint32(20, true);
  // A header already mutated out of range: leave the blob as it is.
  if (hdr !== 24 || typeOff + typeLen > blob.length || strOff + strLen > blob.length) return blob;
  const types = blob.subarray(hdr + typeOff, hdr + typeOff + typeLen);
  const strings = blob.subarray(hdr + strOff, hdr + strOff + strLen);
  const out = new Uint8Array(24 + typeLen + words.length * 4 + strLen);
  const o = new DataView(out.buffer);
  out.set(blob.subarray(0, 24));
  o.setUint32(4, 24, true);
  o.setUint32(8, 0, true);
  o.setUint32(12, typeLen + words.length * 4, true);
  o.setUint32(16, typeLen + words.length * 4, true);
  o.setUint32(20, strLen, true);
  out.set(types, 24);
  words.forEach((v, i) => {
    o.setUint32(24 + typeLen + i * 4, v >>> 0, true);
  });
  out.set(strings, 24 + typeLen + words.length * 4);
  return out;
}

/** Offsets (in a BTF blob) of u32 fields holding type ids: ptr/typedef/var targets, members, elements. */
function typeRefs(blob, records) {
  const refs = [];
  for (const { at, kind, vlen } of records) {
    if ([2, 8, 9, 10, 11, 12, 14, 18, 17].includes(kind)) refs.push(at + 8);
    if (kind === 3) refs.push(at + 12, at + 16);
    if (kind === 4 || kind === 5) for (let i = 0; i < vlen; i++) refs.push(at + 12 + i * 12 + 4);
    if (kind === 13) for (let i = 0; i < vlen; i++) refs.push(at + 12 + i * 8 + 4);
    if (kind === 15) for (let i = 0; i < vlen; i++) refs.push(at + 12 + i * 12);
  }
  return refs.filter((x) => x + 4 <= blob.length);
}

/** Mutate a BTF blob in place knowing its records (returns the possibly grown blob). */
function mutateBtf(r, blob, records) {
  let b = blob;
  let recs = records;
  const count = recs.length;
  const ids = () => interesting(r, [0, 1, count, count + 1, r.below(count + 2)]);
  const ops = 1 + r.below(3);
  for (let k = 0; k < ops; k++) {
    const op = r.below(10);
    if (op === 0) {
      // header fields: hdr_len, type_off/len, str_off/len
      setU32(b, r.pick([4, 8, 12, 16, 20]), interesting(r, [b.length, b.length - 24]));
    } else if (op <= 2 && recs.length) {
      // a type record: name offset, info (kind, vlen, kind_flag), size or type
      const { at } = r.pick(recs);
      const field = r.below(3);
      if (field === 0) setU32(b, at, interesting(r, [0, 1]));
      else if (field === 1) {
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        const info = dv.getUint32(at + 4, true);
        const c = r.below(3);
        const v =
          c === 0
            ? (info & 0xe0ffffff) | (r.below(21) << 24)
            : c === 1
              ? (info & 0xffff0000) | (interesting(r, [info & 0xffff]) & 0xffff)
              : info ^ 0x80000000;
        setU32(b, at + 4, v);
      } else setU32(b, at + 8, r.chance(0.5) ? ids() : interesting(r));
    } else if (op <= 4) {
      // a type reference somewhere: point it at another, missing, or the same type
      const refs = typeRefs(b, recs);
      if (refs.length) setU32(b, r.pick(refs), ids());
    } else if (op === 5 && recs.length) {
      // a member/param/var-secinfo field other than the type: name, offset, size
      const { at, kind, vlen } = r.pick(recs);
      if (vlen && [4, 5, 6, 13, 15, 19].includes(kind))
        setU32(b, at + 12 + r.below(EXTRA(kind, vlen) / 4) * 4, interesting(r, [0, 8, 32]));
    } else if (op <= 7 && b.length >= 24) {
      // splice in a DAG, a cycle, a deep chain or odd offsets, and point an existing reference at it
      const [words, root] = synthetic(r, count, 1);
      b = withTypes(b, words);
      recs = btfRecords(b);
      const refs = typeRefs(b, recs.slice(0, count));
      if (refs.length) for (let n = 1 + r.below(3); n > 0; n--) setU32(b, r.pick(refs), root);
    } else if (op === 8) {
      // a string offset near the end of the string table
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const strLen = b.length >= 24 ? dv.getUint32(20, true) : 0;
      if (recs.length) setU32(b, r.pick(recs).at, interesting(r, [strLen - 1, strLen, strLen + 1]));
    } else {
      flip(r, b);
    }
  }
  return b;
}

function flip(r, b) {
  for (let n = 1 + r.below(8); n > 0 && b.length; n--) b[r.below(b.length)] = r.below(256);
}

/** Mutate an ELF object (a copy of a seed); returns the new bytes. */
function mutateObject(r, seed) {
  let b = seed.bytes.slice();
  const secs = seed.sections;
  const hdrField = (s, off, v, wide) => (wide ? setU64(b, s.at + off, v) : setU32(b, s.at + off, v));
  const ops = 1 + r.below(3);
  for (let k = 0; k < ops; k++) {
    const op = r.below(16);
    if (op <= 2 && seed.btfBlob) {
      // the BTF, structure-aware, spliced back at the end of the file
      const blob = mutateBtf(r, seed.btfBlob.slice(), seed.records);
      const at = Math.ceil(b.length / 8) * 8;
      const grown = new Uint8Array(at + blob.length);
      grown.set(b);
      grown.set(blob, at);
      b = grown;
      hdrField(seed.btf, 24, at, true);
      hdrField(seed.btf, 32, blob.length, true);
    } else if (op === 3) {
      // ELF header: e_shoff, e_shentsize, e_shnum, e_shstrndx, e_machine
      const f = r.pick([
        [40, 8],
        [58, 2],
        [60, 2],
        [62, 2],
        [18, 2],
      ]);
      const v = interesting(r, [secs.length, b.length]);
      if (f[1] === 8) setU64(b, f[0], v);
      else setU16(b, f[0], v);
    } else if (op <= 5) {
      // a section header field: name, type, flags, offset, size, link, info, entsize
      const s = r.pick(secs);
      const [off, wide] = r.pick([
        [0, false],
        [4, false],
        [8, true],
        [24, true],
        [32, true],
        [40, false],
        [44, false],
        [56, true],
      ]);
      hdrField(s, off, interesting(r, [s.size, s.offset, b.length, secs.length, s.index]), wide);
    } else if (op === 6) {
      // huge NOBITS global data (up to four sections), named like .bss/.data where possible
      const names = secs.filter((s) => DATA.test(s.name));
      for (let n = 1 + r.below(4); n > 0; n--) {
        const s = r.pick(secs.filter((x) => x.index > 0));
        if (!s) break;
        if (names.length && r.chance(0.5)) hdrField(s, 0, r.pick(names).nameOff, false);
        hdrField(s, 4, SHT_NOBITS, false);
        hdrField(s, 8, 3, true);
        hdrField(s, 32, r.pick([0x400000, 0x400001, 0x1000000, 0x10000000, 2 ** 32, 2 ** 40]), true);
      }
    } else if (op <= 9) {
      // a u32 field inside a section: symbols, relocations, .BTF.ext records, .maps, programs
      const pool = secs.filter((s) => s.type !== SHT_NOBITS && s.size >= 4);
      const pref = pool.filter((s) => /^(\.symtab|\.rel|\.BTF\.ext|\.maps|maps)/.test(s.name));
      const s = r.chance(0.7) && pref.length ? r.pick(pref) : r.pick(pool);
      if (s) {
        const at = s.offset + r.below(Math.floor(s.size / 4)) * 4;
        setU32(b, at, interesting(r, [s.size, seed.records.length, 0, 1]));
      }
    } else if (op === 10) {
      // a symbol's shndx / value / size, or a relocation's symbol / offset
      const sym = secs.find((s) => s.name === '.symtab');
      if (sym && sym.size >= 24) {
        const at = sym.offset + r.below(sym.size / 24) * 24;
        const f = r.pick([6, 8, 16, 4]);
        if (f === 6) setU16(b, at + 6, interesting(r, [secs.length]));
        else if (f === 4) b[at + 4] = r.below(256);
        else setU64(b, at + f, interesting(r, [8, 16]));
      }
    } else if (op === 11) {
      b = b.subarray(0, r.below(b.length + 1)).slice();
    } else if (op === 12) {
      // splice: copy a run of bytes from elsewhere in the file
      const len = 1 + r.below(64);
      const from = r.below(b.length);
      const to = r.below(b.length);
      b.copyWithin(to, from, Math.min(b.length, from + len));
    } else flip(r, b);
  }
  return b;
}

/** Input #index of `seed`: { target: 'object' | 'btf', seedName, bytes }. */
export function inputAt(seeds, seed, index) {
  const r = rng((Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) + Math.imul(index, 0x9e3779b1)) >>> 0);
  // Larger seeds cost more per input: each seed is picked in inverse proportion to its size.
  let s = seeds[r.below(seeds.length)];
  while (s.bytes.length > 16384 && !r.chance(16384 / s.bytes.length)) s = seeds[r.below(seeds.length)];
  if (s.btfBlob && r.chance(0.05))
    return { target: 'btf', seedName: s.name, bytes: mutateBtf(r, s.btfBlob.slice(), s.records) };
  return { target: r.chance(0.1) ? 'kernel' : 'object', seedName: s.name, bytes: mutateObject(r, s) };
}
