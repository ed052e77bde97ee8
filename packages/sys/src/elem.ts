import { constants } from 'node:os';
import { attrLayout, BpfCmd } from './abi.generated.js';
import { ClosedError, commandError } from './errors.js';
import type { Fd } from './fd.js';
import { errno, type Ptr, SYS_bpf, sysBpf } from './ffi.js';
import { NativeBuffer } from './native.js';

const L = attrLayout.mapElem;
/** map_fd, key, value|next_key, flags: all the elem commands read. */
const ATTR = L.flags[0] + L.flags[1];
const { ENOENT } = constants.errno;

/**
 * The allocation-free path for single-element map commands. One native slab holds an attr per
 * command (each with only its own fields set, as the kernel requires) plus the key, value and
 * next-key buffers whose addresses are written into those attrs once. Callers write the key into
 * {@link key} and read results from {@link value} / {@link nextKey}.
 *
 * Every operation first checks that the map's {@link Fd} is still open (and {@link free} was not
 * called): once it is closed, by anyone, each call throws {@link ClosedError} before any syscall,
 * so the cached fd number — which the next fd opened may reuse — is never acted on.
 */
export class ElemOps {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly nextKey: Uint8Array;
  readonly keyView: DataView;
  readonly valueView: DataView;
  readonly nextKeyView: DataView;
  readonly #slab: NativeBuffer;
  readonly #lookup: Ptr;
  readonly #update: Ptr;
  readonly #delete: Ptr;
  readonly #next: Ptr;
  readonly #first: Ptr;
  readonly #lookupAndDelete: Ptr;
  readonly #view: DataView;
  readonly #fd: Fd;
  readonly #what: string;
  #freed = false;

  /**
   * `fd` is the map's (the caller owns it; closing it ends these ops); `valueBytes` covers
   * per-CPU values; `what` names the map in {@link ClosedError}.
   */
  constructor(fd: Fd, keySize: number, valueBytes: number, what: string = fd.what) {
    const fdValue = fd.value;
    this.#fd = fd;
    this.#what = what;
    const pad = (n: number) => (n + 7) & ~7;
    const attrs = 6 * ATTR;
    const keyOff = attrs;
    const valueOff = keyOff + pad(keySize);
    const nextOff = valueOff + pad(valueBytes);
    const slab = new NativeBuffer(nextOff + pad(keySize));
    this.#slab = slab;
    this.#view = slab.view;
    this.key = slab.bytes.subarray(keyOff, keyOff + keySize);
    this.value = slab.bytes.subarray(valueOff, valueOff + valueBytes);
    this.nextKey = slab.bytes.subarray(nextOff, nextOff + keySize);
    this.keyView = new DataView(slab.bytes.buffer, slab.bytes.byteOffset + keyOff, keySize);
    this.valueView = new DataView(slab.bytes.buffer, slab.bytes.byteOffset + valueOff, valueBytes);
    this.nextKeyView = new DataView(slab.bytes.buffer, slab.bytes.byteOffset + nextOff, keySize);
    const v = slab.view;
    const keyPtr = keySize ? slab.at(keyOff) : 0n;
    const valuePtr = slab.at(valueOff);
    const nextPtr = slab.at(nextOff);
    const set = (i: number, key: Ptr, second: Ptr | undefined) => {
      const base = i * ATTR;
      v.setUint32(base + L.map_fd[0], fdValue, true);
      v.setBigUint64(base + L.key[0], key, true);
      if (second !== undefined) v.setBigUint64(base + L.value[0], second, true);
      return slab.at(base);
    };
    this.#lookup = set(0, keyPtr, valuePtr);
    this.#update = set(1, keyPtr, valuePtr);
    this.#delete = set(2, keyPtr, undefined);
    this.#next = set(3, keyPtr, nextPtr);
    this.#first = set(4, 0n, nextPtr);
    this.#lookupAndDelete = set(5, keyPtr, valuePtr);
  }

  /** Look up {@link key} into {@link value}. False when absent. */
  lookup(flags = 0): boolean {
    if (this.#freed || this.#fd.closed) this.#throwClosed();
    this.#view.setUint32(0 * ATTR + L.flags[0], flags, true);
    if (sysBpf(SYS_bpf, BpfCmd.MAP_LOOKUP_ELEM, this.#lookup, ATTR) === 0) return true;
    return failed(BpfCmd.MAP_LOOKUP_ELEM, true);
  }

  /** Write {@link value} at {@link key} with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST` (| `BPF_F_LOCK`). */
  update(flags = 0): void {
    if (this.#freed || this.#fd.closed) this.#throwClosed();
    this.#view.setUint32(1 * ATTR + L.flags[0], flags, true);
    if (sysBpf(SYS_bpf, BpfCmd.MAP_UPDATE_ELEM, this.#update, ATTR) !== 0)
      failed(BpfCmd.MAP_UPDATE_ELEM, false);
  }

  /** Delete {@link key}. False when absent. */
  delete(): boolean {
    if (this.#freed || this.#fd.closed) this.#throwClosed();
    if (sysBpf(SYS_bpf, BpfCmd.MAP_DELETE_ELEM, this.#delete, ATTR) === 0) return true;
    return failed(BpfCmd.MAP_DELETE_ELEM, true);
  }

  /** The key after {@link key} (or the first key when `first`) into {@link nextKey}. False at the end. */
  next(first: boolean): boolean {
    if (this.#freed || this.#fd.closed) this.#throwClosed();
    if (sysBpf(SYS_bpf, BpfCmd.MAP_GET_NEXT_KEY, first ? this.#first : this.#next, ATTR) === 0) return true;
    return failed(BpfCmd.MAP_GET_NEXT_KEY, true);
  }

  /** Look up and delete {@link key} (or pop, for queues and stacks when `keySize` is 0). False when absent/empty. */
  lookupAndDelete(flags = 0): boolean {
    if (this.#freed || this.#fd.closed) this.#throwClosed();
    this.#view.setUint32(5 * ATTR + L.flags[0], flags, true);
    if (sysBpf(SYS_bpf, BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, this.#lookupAndDelete, ATTR) === 0) return true;
    return failed(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, true);
  }

  /** True once the fd is closed or {@link free} was called: every op throws {@link ClosedError}. */
  get closed(): boolean {
    return this.#freed || this.#fd.closed;
  }

  #throwClosed(): never {
    throw new ClosedError(this.#what);
  }

  /** End these ops (the fd is the caller's to close). The views stay valid memory while reachable. */
  free(): void {
    this.#freed = true;
    this.#slab.free();
  }
}

function failed(cmd: BpfCmd, enoentIsFalse: boolean): false {
  const e = errno();
  if (enoentIsFalse && e === ENOENT) return false;
  throw commandError(cmd, e);
}
