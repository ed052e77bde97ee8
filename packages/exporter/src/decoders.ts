// Label decoders: a key field's raw value → the label's text. Lookups that read the system
// (kallsyms, cgroups, /proc, block devices) are cached; a miss re-reads at most once a second.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Field, RawValue } from './layout.js';
import type { DecoderName, LabelSpec } from './spec.js';
import { X86_64_SYSCALLS } from './syscalls.generated.js';

export type Decoder = (raw: RawValue) => string;

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** The decoder for `label` reading `field`. */
export function decoderFor(label: LabelSpec, field: Field, what: string): Decoder {
  const name: DecoderName =
    label.decoder ?? (field.kind === 'chars' ? 'string' : field.kind === 'int' ? 'uint' : 'hex');
  const needs = (kinds: Field['kind'][], sizes?: number[]) => {
    if (!kinds.includes(field.kind) || (sizes && !sizes.includes(field.size)))
      throw new TypeError(
        `${what}: decoder '${name}' cannot read field '${field.path}' (${field.size}-byte ${field.kind}); it reads ${kinds.join(' or ')}${sizes ? ` of ${sizes.join(' or ')} bytes` : ''}`,
      );
  };
  switch (name) {
    case 'string':
      needs(['chars', 'bytes']);
      return (raw) => cString(raw as Uint8Array);
    case 'uint':
      needs(['int']);
      return (raw) => String(raw);
    case 'hex':
      return (raw) =>
        raw instanceof Uint8Array ? Buffer.from(raw).toString('hex') : `0x${raw.toString(16)}`;
    case 'static_map': {
      needs(['int']);
      const values = new Map(Object.entries(label.values ?? {}));
      return (raw) => values.get(String(raw)) ?? String(raw);
    }
    case 'syscall':
      needs(['int']);
      return (raw) => X86_64_SYSCALLS.get(Number(raw)) ?? `syscall_${raw}`;
    case 'ipv4':
      needs(['int', 'bytes'], [4]);
      return ipv4;
    case 'ipv6':
      needs(['bytes'], [16]);
      return (raw) => ipv6(raw as Uint8Array);
    case 'ksym':
      needs(['int'], [8]);
      return (raw) => ksym(BigInt(raw as number | bigint));
    case 'cgroup':
      needs(['int'], [8]);
      return (raw) => cgroupPath(BigInt(raw as number | bigint));
    case 'pid_comm':
      needs(['int'], [4, 8]);
      return (raw) => pidComm(Number(raw));
    case 'device':
      needs(['int'], [4, 8]);
      return (raw) => blockDevice(Number(raw));
  }
}

/** Bytes up to the first NUL, as UTF-8 (comm and most kernel strings are ASCII). */
export function cString(b: Uint8Array): string {
  let end = 0;
  let ascii = true;
  for (; end < b.length; end++) {
    const c = b[end]!;
    if (c === 0) break;
    if (c >= 0x80) ascii = false;
  }
  // ASCII (what comm and most kernel strings are) in one call: TextDecoder costs more per call
  // than a short string's bytes
  return ascii
    ? String.fromCharCode.apply(null, b.subarray(0, end) as unknown as number[])
    : utf8.decode(b.subarray(0, end));
}

function ipv4(raw: RawValue): string {
  if (raw instanceof Uint8Array) return `${raw[0]}.${raw[1]}.${raw[2]}.${raw[3]}`;
  // a u32 read little-endian from network-order bytes: the first byte is the lowest
  const n = Number(raw);
  return `${n & 0xff}.${(n >>> 8) & 0xff}.${(n >>> 16) & 0xff}.${n >>> 24}`;
}

/** RFC 5952: lower case, the longest run (≥ 2) of zero groups as ::, IPv4-mapped as a.b.c.d. */
export function ipv6(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError(`an IPv6 address is 16 bytes, got ${b.length}`);
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
  if (mapped) return ipv4(b.subarray(12));
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** A cache that re-reads its source on a miss, at most once per `minAgeMs`. */
class Refreshing<K, V> {
  #map = new Map<K, V>();
  #loaded = 0;
  constructor(
    readonly load: () => Map<K, V>,
    readonly minAgeMs = 1000,
  ) {}
  get(k: K): V | undefined {
    let v = this.#map.get(k);
    if (v === undefined && Date.now() - this.#loaded >= this.minAgeMs) {
      this.#map = this.load();
      this.#loaded = Date.now();
      v = this.#map.get(k);
    }
    return v;
  }
}

// kallsyms: sorted addresses, searched for the symbol at or below an address
let symbols: { addrs: BigUint64Array; names: string[] } | undefined;
function loadKallsyms(): { addrs: BigUint64Array; names: string[] } {
  const rows: [bigint, string][] = [];
  for (const line of readFileSync('/proc/kallsyms', 'latin1').split('\n')) {
    const s1 = line.indexOf(' ');
    const s2 = s1 < 0 ? -1 : line.indexOf(' ', s1 + 1);
    if (s2 < 0) continue;
    const tab = line.indexOf('\t', s2 + 1);
    const addr = BigInt(`0x${line.slice(0, s1)}`);
    if (addr === 0n) continue; // without CAP_SYSLOG every address reads 0
    rows.push([addr, tab < 0 ? line.slice(s2 + 1) : line.slice(s2 + 1, tab)]);
  }
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { addrs: BigUint64Array.from(rows.map((r) => r[0])), names: rows.map((r) => r[1]) };
}

/** The kernel symbol an address falls in (`name+0x1f` inside it), or the address in hex. */
export function ksym(addr: bigint): string {
  symbols ??= loadKallsyms();
  const { addrs, names } = symbols;
  let lo = 0;
  let hi = addrs.length - 1;
  if (hi < 0 || addr < addrs[0]!) return `0x${addr.toString(16)}`;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (addrs[mid]! <= addr) lo = mid;
    else hi = mid - 1;
  }
  const off = addr - addrs[lo]!;
  return off === 0n ? names[lo]! : `${names[lo]}+0x${off.toString(16)}`;
}

/** Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or …/unified on hybrid systems). */
function cgroup2Root(): string | undefined {
  try {
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, dir, type] = line.split(' ');
      if (type === 'cgroup2' && dir) return dir.replace(/\\040/g, ' ');
    }
  } catch {
    // no /proc
  }
  return undefined;
}

const cgroups = new Refreshing<bigint, string>(() => {
  // a cgroup v2 id is the inode number of its directory
  const out = new Map<bigint, string>();
  const walk = (dir: string, rel: string) => {
    let entries: import('node:fs').Dirent[];
    try {
      out.set(statSync(dir, { bigint: true }).ino, rel || '/');
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
  };
  const root = cgroup2Root();
  if (root) walk(root, '');
  return out;
});

/** A cgroup v2 id → its path below the hierarchy's root (`/system.slice/…`), or the id. */
export function cgroupPath(id: bigint): string {
  return cgroups.get(id) ?? String(id);
}

const comms = new Map<number, string>();
/** A pid's command name (cached; a pid that has exited shows as its number). */
export function pidComm(pid: number): string {
  let c = comms.get(pid);
  if (c === undefined) {
    try {
      c = readFileSync(`/proc/${pid}/comm`, 'utf8').trimEnd();
    } catch {
      return String(pid);
    }
    if (comms.size >= 65_536) comms.clear();
    comms.set(pid, c);
  }
  return c;
}

const devices = new Refreshing<string, string>(() => {
  const out = new Map<string, string>();
  let entries: string[];
  try {
    entries = readdirSync('/sys/dev/block');
  } catch {
    return out;
  }
  for (const mm of entries) {
    try {
      const name = /^DEVNAME=(.*)$/m.exec(readFileSync(`/sys/dev/block/${mm}/uevent`, 'utf8'))?.[1];
      if (name) out.set(mm, name);
    } catch {
      // gone meanwhile
    }
  }
  return out;
});

/** A kernel dev_t (major << 20 | minor, as tracepoints give it) → the block device's name, or `major:minor`. */
export function blockDevice(dev: number): string {
  const mm = `${Math.floor(dev / 0x100000)}:${dev & 0xfffff}`;
  return devices.get(mm) ?? mm;
}
