// Keys of LPM_TRIE maps: `struct bpf_lpm_trie_key { __u32 prefixlen; __u8 data[]; }`, packed,
// with the data in network byte order.
import type { Codec } from './codec.js';

/** An LPM trie key: how many leading bits of `data` count, and the data. */
export interface LpmKey<T> {
  prefixLen: number;
  data: T;
}

/** An LPM trie key over `data` (bytes(n), a struct, ...): `{ prefixLen, data }`, 4 + data.size bytes. */
export function lpmKey<T>(data: Codec<T>): Codec<LpmKey<T>> {
  const bits = data.size * 8;
  return {
    name: `lpm(${data.name})`,
    size: 4 + data.size,
    align: 4,
    encode(view, offset, value) {
      const p = value?.prefixLen;
      if (!Number.isInteger(p) || p < 0 || p > bits)
        throw new RangeError(`lpm(${data.name}) prefixLen must be 0..${bits}, got ${String(p)}`);
      view.setUint32(offset, p, true);
      data.encode(view, offset + 4, value.data);
    },
    decode(view, offset) {
      return { prefixLen: view.getUint32(offset, true), data: data.decode(view, offset + 4) };
    },
  };
}

function parseV4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : 256));
  return out.every((b) => b < 256) ? out : undefined;
}

function parseV6(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  const last = tail.length ? tail : head;
  let v4: number[] | undefined;
  if (last[last.length - 1]?.includes('.')) {
    v4 = parseV4(last.pop() as string);
    if (!v4) return undefined;
  }
  const fill = 16 - 2 * (head.length + tail.length) - (v4 ? 4 : 0);
  if (halves.length === 1 ? fill !== 0 : fill < 2) return undefined;
  const bytes: number[] = [];
  const words = (gs: string[]) => {
    for (const g of gs) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return false;
      const w = Number.parseInt(g, 16);
      bytes.push(w >> 8, w & 0xff);
    }
    return true;
  };
  if (!words(head)) return undefined;
  if (halves.length === 2) for (let i = 0; i < fill; i++) bytes.push(0);
  if (!words(tail)) return undefined;
  if (v4) bytes.push(...v4);
  return bytes;
}

function formatV6(b: Uint8Array): string {
  const words = Array.from({ length: 8 }, (_, i) => ((b[2 * i] as number) << 8) | (b[2 * i + 1] as number));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * An LPM trie key written as CIDR text: `'10.1.0.0/16'` (family 4) or `'2001:db8::/32'`
 * (family 6). An address without `/len` is a full-length prefix, as a lookup key usually is.
 */
export function cidr(family: 4 | 6): Codec<string> {
  const n = family === 4 ? 4 : 16;
  const name = `cidr${family}`;
  return {
    name,
    size: 4 + n,
    align: 4,
    encode(view, offset, value) {
      if (typeof value !== 'string')
        throw new TypeError(
          `${name} expects a string such as '${family === 4 ? '10.0.0.0/8' : '2001:db8::/32'}'`,
        );
      const [addr = '', len, extra] = value.split('/');
      const bytes = family === 4 ? parseV4(addr) : parseV6(addr);
      const prefix = len === undefined ? n * 8 : /^\d+$/.test(len) ? Number(len) : -1;
      if (!bytes || extra !== undefined || prefix < 0 || prefix > n * 8)
        throw new RangeError(`${name}: '${value}' is not an IPv${family} address or prefix`);
      view.setUint32(offset, prefix, true);
      for (let i = 0; i < n; i++) view.setUint8(offset + 4 + i, bytes[i] as number);
    },
    decode(view, offset) {
      const b = new Uint8Array(view.buffer, view.byteOffset + offset + 4, n);
      const addr = family === 4 ? b.join('.') : formatV6(b);
      return `${addr}/${view.getUint32(offset, true)}`;
    },
  };
}
