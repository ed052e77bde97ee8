import { getEnvironmentData, isMainThread, setEnvironmentData, threadId } from 'node:worker_threads';
import { BpfError, ClosedError } from './errors.js';
import { cClose, cDupCloexec, errno } from './ffi.js';

const F_DUPFD_CLOEXEC = 1030;
const traceLeaks = process.env.BPFKIT_LEAK_TRACE === '1';
const strictFinalizers = process.env.BPFKIT_STRICT_FINALIZERS === '1';

interface Held {
  fd: number;
  what: string;
  stack: string | undefined;
  /** Close when collected; false for fds whose closing would change what the kernel runs. */
  close: boolean;
}

/**
 * What the collector had to close (or leave open) because nobody called `close()`, recorded when
 * `BPFKIT_STRICT_FINALIZERS=1`. Kept on `globalThis` so every copy of this module in a process
 * (and a test harness that does not import it) sees one list.
 */
const FINALIZED = Symbol.for('bpfkit.finalizedFds');
type Finalized = { what: string; fd: number; closed: boolean; stack: string | undefined }[];
const finalized = (): Finalized => {
  const g = globalThis as { [FINALIZED]?: Finalized };
  g[FINALIZED] ??= [];
  return g[FINALIZED];
};

/**
 * The fds every worker thread still owns, shared by all threads of the process: slot `n` holds
 * the id of the worker thread whose `Fd` owns fd `n` (0: none, or the main thread's, which the
 * process's exit closes). A worker that exits or is terminated runs no JavaScript that could
 * close them, so the thread that created it closes them on its `exit` event. Inherited by workers
 * through `worker_threads` environment data (a SharedArrayBuffer is shared, not copied).
 */
const OWNERS_KEY = 'bpfkit.fdOwners.v1';
const OWNERS_CAP = 1 << 20; // Linux's default fs.nr_open: no fd number is higher
const owners: Int32Array = (() => {
  const inherited = getEnvironmentData(OWNERS_KEY);
  const sab = inherited instanceof SharedArrayBuffer ? inherited : new SharedArrayBuffer(OWNERS_CAP * 4);
  if (sab !== inherited) setEnvironmentData(OWNERS_KEY, sab);
  return new Int32Array(sab);
})();
const tracked = !isMainThread;

const own = (fd: number): void => {
  if (tracked && fd < OWNERS_CAP) Atomics.store(owners, fd, threadId);
};
/** Stop tracking `fd`; false when another thread already took it over (and closes it). */
const disown = (fd: number): boolean =>
  !tracked || fd >= OWNERS_CAP || Atomics.compareExchange(owners, fd, threadId, 0) === threadId;

/** Close every fd the thread `tid` still owned. */
function closeOwnedBy(tid: number): number {
  let n = 0;
  for (let fd = 0; fd < OWNERS_CAP; fd++) {
    if (owners[fd] !== tid) continue;
    if (Atomics.compareExchange(owners, fd, tid, 0) === tid) {
      cClose(fd);
      n++;
    }
  }
  return n;
}

// One set of hooks per thread, however many copies of this module are loaded.
const HOOKED = Symbol.for('bpfkit.fdThreadHooks');
const g = globalThis as { [HOOKED]?: true };
if (!g[HOOKED]) {
  g[HOOKED] = true;
  // A worker this thread starts: close what it leaves open when it exits, is terminated or crashes.
  process.on('worker', (worker) => {
    const tid = worker.threadId;
    worker.once('exit', () => closeOwnedBy(tid));
  });
  // This worker ends by process.exit() or an empty event loop: close its fds itself (the
  // parent's hook also covers termination, and whichever runs first closes each fd once).
  if (tracked) process.once('exit', () => closeOwnedBy(threadId));
}

const registry = new FinalizationRegistry<Held>((held) => {
  if (held.stack) {
    const fate = held.close
      ? 'closed it'
      : 'left it open (it keeps something attached) until the process exits';
    process.emitWarning(
      `bpfkit: ${held.what} (fd ${held.fd}) was never closed; the collector ${fate}; created at\n${held.stack}`,
    );
  }
  if (strictFinalizers)
    finalized().push({ what: held.what, fd: held.fd, closed: held.close, stack: held.stack });
  if (held.close && disown(held.fd)) cClose(held.fd);
});

/**
 * The fds the garbage collector found unclosed since the process started, when
 * `BPFKIT_STRICT_FINALIZERS=1` (always empty otherwise). A test suite fails when this is not
 * empty: relying on the collector to close an fd is a bug (it closes late, or never).
 */
export function finalizedFds(): readonly { what: string; fd: number; closed: boolean }[] {
  return finalized();
}

/**
 * The single owner of a kernel file descriptor. `close()` is idempotent, use after close
 * throws {@link ClosedError}, and a forgotten `Fd` is closed by the garbage collector
 * (set `BPFKIT_LEAK_TRACE=1` to be told where it was created). An `Fd` made in a worker thread
 * is closed when that worker exits or is terminated.
 */
export class Fd {
  #value: number;
  readonly what: string;
  readonly #held: Held;

  constructor(value: number, what = 'fd') {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`not a file descriptor: ${value}`);
    this.#value = value;
    this.what = what;
    this.#held = {
      fd: value,
      what,
      stack: traceLeaks ? new Error().stack?.split('\n').slice(2).join('\n') : undefined,
      close: true,
    };
    registry.register(this, this.#held, this);
    own(value);
  }

  /** The fd number; throws once closed. */
  get value(): number {
    if (this.#value < 0) throw new ClosedError(this.what);
    return this.#value;
  }

  get closed(): boolean {
    return this.#value < 0;
  }

  /**
   * Never let the garbage collector close this fd: for links and program arrays, whose closing
   * would silently detach a program or empty a tail-call table the user still relies on. It
   * stays open until `close()` or process exit (or, if made in a worker, that worker's exit).
   */
  persistent(): this {
    this.#held.close = false;
    return this;
  }

  /** A new fd for the same kernel object, owned by the returned `Fd` (close-on-exec). */
  dup(): Fd {
    const r = cDupCloexec(this.value, F_DUPFD_CLOEXEC, 0);
    if (r < 0) throw new BpfError('dup', errno());
    return new Fd(r, this.what);
  }

  /** Give up ownership: returns the number, which the caller must now close. */
  release(): number {
    const v = this.value;
    registry.unregister(this);
    this.#value = -1;
    disown(v);
    return v;
  }

  close(): void {
    if (this.#value < 0) return;
    registry.unregister(this);
    const v = this.#value;
    this.#value = -1;
    if (disown(v)) cClose(v);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return this.closed ? `Fd(${this.what}, closed)` : `Fd(${this.what}, ${this.#value})`;
  }
}

/** Anything that owns a BPF object fd: a map, a program, a link. */
export interface HasFd {
  readonly fd: Fd;
}

/** A file descriptor as the API takes one: an {@link Fd}, its number, or an object that owns one. */
export type FdLike = Fd | number | HasFd;

/** Shaped like an `Fd` (also one from another copy of this package, which `instanceof` misses). */
function isFd(x: unknown): x is Fd {
  return (
    x instanceof Fd ||
    (typeof x === 'object' && x !== null && 'value' in x && typeof (x as Fd).close === 'function')
  );
}

/**
 * The fd number of `x`: a number as it is, an `Fd`'s value, or the value of the `Fd` that a map,
 * program or link owns. Throws {@link ClosedError} once that fd is closed, and a TypeError naming
 * `what` for anything else.
 */
export function fdNumber(x: FdLike, what = 'fd'): number {
  if (typeof x === 'number') return x;
  const fd = isFd(x) ? x : (x as Partial<HasFd> | null | undefined)?.fd;
  if (isFd(fd)) {
    const value = fd.value;
    if (typeof value === 'number') return value;
  }
  throw new TypeError(
    `${what} must be an Fd, an fd number, or a map, program or link that owns one; got ${x === null ? 'null' : typeof x}`,
  );
}
