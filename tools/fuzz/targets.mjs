// What one fuzz input runs: the pure stages of loading an object, and the BTF walkers.
//   object: ObjectFile.read, then prepareCollection (global data, BTF fix-up, map codecs, externs,
//           CO-RE) against the object's own BTF and against the running kernel's, then the value
//           decoder/formatter over each global data map; nothing is loaded into the kernel.
//   btf:    Btf.parse, then for every type sizeof, alignof, flatten, member lookups, decodeValue /
//           formatValue / encodeValue over bytes of the type's size and over too few bytes,
//           generateTs, and CO-RE relocations of the type against the blob itself.
// Each step may fail with a typed error (see classify.mjs); the first untyped one is thrown.
import { readFileSync } from 'node:fs';
import { classifier } from './classify.mjs';

/** Load the packages (from this workspace, or from FUZZ_PACKAGES=<dir of packages> to fuzz another build). */
export async function loadModules(base = process.env.FUZZ_PACKAGES) {
  // the module the package exports (its bundle), so that its imports of the others are the same instances
  const entry = (pkg) => JSON.parse(readFileSync(`${base}/${pkg}/package.json`, 'utf8')).exports['.'].default;
  const at = (pkg, name) => (base ? `${base}/${pkg}/${entry(pkg)}` : name);
  const [btf, loader, sys, cli] = await Promise.all([
    import(at('btf', '@bpfkit/btf')),
    import(at('loader', '@bpfkit/loader')),
    import(at('sys', '@bpfkit/sys')),
    import(at('cli', 'bpfkit')),
  ]);
  return { btf, loader, sys, cli };
}

export class Untyped extends Error {
  constructor(step, cause) {
    super(`${step}: untyped ${cause?.name ?? typeof cause}: ${cause?.message ?? String(cause)}`);
    this.step = step;
    this.cause = cause;
  }
}

const MAX_TYPES = 4000;
/** A BTF blob with no types: the relocation target for objects without BTF. */
const EMPTY_BTF = new Uint8Array([
  0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
]);
const MAX_DECODE = 1 << 16;

export function makeTargets(mods, { kernel } = {}) {
  const { btf: B, loader: L, cli: C } = mods;
  const typed = classifier(mods);
  /** Run a step: typed errors end the step, untyped ones end the input. */
  const step = (name, fn) => {
    try {
      fn();
      return true;
    } catch (e) {
      if (e instanceof Untyped) throw e;
      if (!typed(e)) throw new Untyped(name, e);
      return false;
    }
  };

  function walkValue(spec, id, size, what) {
    if (size > MAX_DECODE) return;
    const data = new Uint8Array(size).fill(0xa5);
    let decoded;
    step(`${what}: decodeValue`, () => {
      decoded = B.decodeValue(spec, id, new DataView(data.buffer));
    });
    if (size > 0)
      step(`${what}: decodeValue of too few bytes`, () =>
        B.decodeValue(spec, id, new DataView(data.buffer, 0, size - 1)),
      );
    step(`${what}: formatValue`, () => B.formatValue(spec, id, data));
    if (decoded !== undefined)
      step(`${what}: encodeValue`, () =>
        B.encodeValue(spec, id, new DataView(new ArrayBuffer(size)), 0, decoded),
      );
  }

  /** Up to 8 types: the first 2, the last 4 (where spliced DAGs and cycles are) and 2 between. */
  function sample(spec) {
    const all = [...spec.types()].slice(0, MAX_TYPES);
    if (all.length <= 8) return all;
    const mid = Math.floor(all.length / 2);
    return [...all.slice(0, 2), all[mid - 1], all[mid], ...all.slice(-4)];
  }

  function walkBtf(spec, what) {
    let n = 0;
    for (const t of sample(spec)) {
      n++;
      const w = `${what} type ${t.id}`;
      let size;
      step(`${w}: sizeof`, () => {
        size = spec.sizeof(t.id);
      });
      step(`${w}: alignof`, () => spec.alignof(t.id));
      if (t.kind === 'struct' || t.kind === 'union') {
        step(`${w}: flatten`, () => spec.flatten(t.id));
        for (const m of t.members.slice(0, 3)) step(`${w}: member`, () => spec.member(t.id, m.name || 'x'));
        step(`${w}: member (absent)`, () => spec.member(t.id, '__absent__'));
        const last = Math.max(0, t.members.length - 1);
        for (const [access, kind] of [
          [`0:${last}`, 0],
          ['0', 8],
          ['0', 12],
          [`0:0:${last}`, 1],
        ])
          step(`${w}: CO-RE ${access}`, () =>
            B.resolveCoreRelo(spec, spec, { insnOff: 0, typeId: t.id, access, kind }),
          );
      }
      if (n <= 200 && t.kind !== 'func' && t.kind !== 'func_proto')
        step(`${w}: generateTs`, () => C.generateTs(spec, [t.id]));
      if (size !== undefined) walkValue(spec, t.id, size, w);
    }
  }

  return {
    object: (bytes) => objectTarget(bytes, undefined),
    /** As object, relocating against the running kernel's BTF (or, without one, the object's own). */
    kernel: (bytes) => objectTarget(bytes, kernel),
    btf(bytes) {
      let spec;
      if (!step('Btf.parse', () => (spec = B.Btf.parse(bytes)))) return;
      walkBtf(spec, 'BTF');
    },
  };

  function objectTarget(bytes, kernelBtf) {
    let obj;
    if (!step('ObjectFile.read', () => (obj = L.ObjectFile.read(bytes)))) return;
    const empty = () => B.Btf.parse(EMPTY_BTF);
    for (const target of [kernelBtf ?? obj.btf ?? empty()]) {
      if (!L.prepareCollection) break; // an older build: ObjectFile.read only
      let prep;
      step(`prepareCollection (${target === kernel && kernel ? 'kernel' : 'own'} BTF)`, () => {
        prep = L.prepareCollection(obj, { kernelBtf: target });
      });
      if (!prep?.btf) continue;
      for (const [name, def] of obj.maps)
        if (def.btfValueTypeId && def.valueSize <= MAX_DECODE)
          step(`format map '${name}'`, () =>
            B.formatValue(
              prep.btf.btf,
              def.btfValueTypeId,
              prep.data.get(name) ?? new Uint8Array(def.valueSize),
            ),
          );
    }
  }
}
