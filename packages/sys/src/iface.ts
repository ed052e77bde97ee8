// Network interfaces by name or index, in the caller's network namespace (if_nametoindex(3)
// asks the kernel through a socket, so it sees the namespace the calling thread is in, where
// /sys/class/net shows the namespace sysfs was mounted in).
import { cIfIndextoname, cIfNametoindex } from './ffi.js';
import { NativeBuffer } from './native.js';

const IF_NAMESIZE = 16;

/** No interface of that name or index in this network namespace. */
export class InterfaceNotFoundError extends Error {
  override name = 'InterfaceNotFoundError';
  readonly code = 'ENODEV';
  constructor(readonly iface: string | number) {
    super(
      typeof iface === 'number'
        ? `no network interface with index ${iface} in this network namespace`
        : `no network interface named '${iface}' in this network namespace`,
    );
  }
}

/** The index of interface `iface` (a name, or an index, which is checked to exist). */
export function ifIndex(iface: string | number): number {
  if (typeof iface === 'number') {
    if (!Number.isInteger(iface) || iface < 1 || iface > 0x7fffffff)
      throw new RangeError(`an interface index is a whole number ≥ 1, got ${iface}`);
    ifName(iface);
    return iface;
  }
  if (typeof iface !== 'string' || iface.length === 0 || iface.length >= IF_NAMESIZE || iface.includes('/'))
    throw new TypeError(`an interface name is 1-15 characters without '/', got ${JSON.stringify(iface)}`);
  const index = cIfNametoindex(iface);
  if (index === 0) throw new InterfaceNotFoundError(iface);
  return index;
}

/** The name of the interface with index `index`. */
export function ifName(index: number): string {
  using buf = new NativeBuffer(IF_NAMESIZE);
  if (cIfIndextoname(index, buf.ptr) === null) throw new InterfaceNotFoundError(index);
  const b = buf.bytes;
  const end = b.indexOf(0);
  return new TextDecoder().decode(b.subarray(0, end < 0 ? b.length : end));
}
