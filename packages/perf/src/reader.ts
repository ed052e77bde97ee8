import type { Codec } from '@bpfkit/maps';
import { ClosedError, type Epoll, EventFd, Readiness } from '@bpfkit/sys';

/** How a reader sleeps until its rings may have data. */
export interface Waiter {
  /** True when readable; false on timeout, abort or cancel. */
  wait(timeoutMs?: number, signal?: AbortSignal): Promise<boolean>;
  cancel(): void;
  close(): void;
  /** Settles once no wait is running (what it waits on may be freed then). */
  idle(): Promise<void>;
}

/**
 * Sleeps in the kernel's epoll_wait on a libuv pool thread: every wake-up is consumed exactly
 * once. Perf event fds need this — their poll() clears the readiness it reports, so watching
 * them from the event loop (which polls twice: when adding the fd and when reporting it) loses
 * wake-ups. An eventfd in the same epoll set cancels a pending wait.
 */
export class EpollWaiter implements Waiter {
  readonly #epoll: Epoll;
  readonly #cancel = new EventFd();
  #pending = false;
  #running: Promise<number> | undefined;
  #closed = false;

  constructor(epoll: Epoll) {
    this.#epoll = epoll;
    epoll.add(this.#cancel.fd, -1);
  }

  async wait(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    const onAbort = () => this.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (this.#closed) return false;
    this.#pending = true;
    try {
      this.#running = this.#epoll.waitAsync(timeoutMs === undefined ? -1 : Math.max(0, Math.ceil(timeoutMs)));
      const n = await this.#running;
      let ready = false;
      for (let i = 0; i < n; i++) {
        if (this.#epoll.asyncEventData(i) === 0xffffffff) this.#cancel.drain();
        else ready = true;
      }
      return ready;
    } finally {
      this.#pending = false;
      this.#running = undefined;
      signal?.removeEventListener('abort', onAbort);
      if (this.#closed) this.#cancel.close();
    }
  }

  cancel(): void {
    if (this.#pending && !this.#cancel.fd.closed) this.#cancel.signal();
  }

  /** Cancel a running wait; the eventfd is closed once the pool thread has returned. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.cancel();
    if (!this.#pending) this.#cancel.close();
  }

  async idle(): Promise<void> {
    await this.#running?.catch(() => undefined);
  }

  /** Whether a wait is running (on a pool thread). */
  get busy(): boolean {
    return this.#running !== undefined;
  }
}

export interface ReadOptions {
  /** Give up after this many ms (resolves undefined): a finite number ≥ 0; omitted waits without limit. */
  timeout?: number;
  signal?: AbortSignal;
}

const traceLeaks = process.env.BPFKIT_LEAK_TRACE === '1';

/**
 * Everything a reader holds outside the JavaScript heap (fds, ring mappings, map slots, its
 * claim on a map, its listener on a signal), released exactly once: by `close()`, or by the
 * garbage collector when a reader is dropped without it. Nothing here refers to the reader, so a
 * forgotten reader can be collected.
 */
export class Holdings {
  readonly #steps: (() => void)[] = [];
  #released = false;
  /** Closed last, once no wait runs on it any more. */
  epoll: Epoll | undefined;
  waiter: Waiter | undefined;
  #abort: { signal: AbortSignal; listener: () => void } | undefined;
  readonly stack = traceLeaks ? new Error().stack?.split('\n').slice(3).join('\n') : undefined;

  constructor(readonly what: string) {}

  get released(): boolean {
    return this.#released;
  }

  /** Run `step` on release (the last added runs first, as cleanup undoes setup; one failing does not stop the rest). */
  add(step: () => void): void {
    this.#steps.push(step);
  }

  /** Cancel the waiter when `signal` aborts, until release. */
  listen(signal: AbortSignal, waiter: Waiter): void {
    const listener = () => waiter.cancel();
    signal.addEventListener('abort', listener, { once: true });
    this.#abort = { signal, listener };
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#abort) this.#abort.signal.removeEventListener('abort', this.#abort.listener);
    this.#abort = undefined;
    const waiter = this.waiter;
    waiter?.close();
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        step();
      } catch {
        // cleanup goes on: the rest must still be released
      }
    }
    const epoll = this.epoll;
    if (!epoll) return;
    // A wait may still be running on a pool thread inside epoll_wait: free the epoll set (and its
    // event buffer) only once it has returned. A poll handle leaves nothing in flight.
    const inFlight =
      waiter !== undefined &&
      !(waiter instanceof Readiness) &&
      (!(waiter instanceof EpollWaiter) || waiter.busy);
    if (inFlight) void waiter.idle().then(() => epoll.close());
    else epoll.close();
  }
}

const forgotten = new FinalizationRegistry<Holdings>((held) => {
  if (held.stack)
    process.emitWarning(
      `bpfkit: a ${held.what} was never closed; the collector released it; created at\n${held.stack}`,
    );
  held.release();
});

/** A timeout option: undefined (no limit) or a finite number of ms ≥ 0. */
export function checkTimeout(timeout: unknown): number | undefined {
  if (timeout === undefined) return undefined;
  if (typeof timeout !== 'number')
    throw new TypeError(`timeout must be a number of ms, got ${typeof timeout}`);
  if (!Number.isFinite(timeout) || timeout < 0)
    throw new RangeError(
      `timeout must be a finite number of ms ≥ 0 (omit it to wait without limit), got ${timeout}`,
    );
  return timeout;
}

/** A record codec option: undefined or a codec (an object with `size` and `decode`). */
export function checkCodec<T>(codec: Codec<T> | undefined): Codec<T> | undefined {
  if (codec === undefined) return undefined;
  if (
    typeof codec !== 'object' ||
    codec === null ||
    typeof codec.decode !== 'function' ||
    !Number.isInteger(codec.size) ||
    codec.size < 0
  )
    throw new TypeError(
      `codec must be a codec (u32, struct({...}), btfCodec(...)), got ${codec === null ? 'null' : typeof codec}`,
    );
  return codec;
}

/** Decode a record with `codec`: a record shorter than the codec is a RangeError naming both sizes. */
export function decodeRecord<T>(codec: Codec<T>, view: DataView, offset: number, length: number): T {
  if (length < codec.size)
    throw new RangeError(
      `a ${length}-byte record is shorter than its codec ${codec.name} (${codec.size} bytes)`,
    );
  return codec.decode(view, offset);
}

/** A signal option: undefined or an AbortSignal. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new TypeError(`signal must be an AbortSignal, got ${signal === null ? 'null' : typeof signal}`);
}

/** An options argument: undefined or an object. */
export function checkOptions(opts: unknown, what: string): void {
  if (opts !== undefined && (typeof opts !== 'object' || opts === null))
    throw new TypeError(`${what} options must be an object, got ${opts === null ? 'null' : typeof opts}`);
}

/** A boolean option: undefined (the default) or a boolean. */
export function checkFlag(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${typeof value}`);
  return value;
}

/**
 * What both ring readers share: records are pulled without waiting by `poll()`; when none are
 * ready the reader waits for its epoll set to become readable through a libuv poll handle
 * (Node's event loop keeps running, no pool thread is parked). `close()` ends a pending read
 * or iteration cleanly; an aborted signal rejects with its reason.
 *
 * Memory safety: the rings are views into kernel memory, and a view user code gets is always of
 * writable memory (a read-only ring is copied out of, never handed out). `close()` (or the collector, for a
 * reader dropped without it) releases the kernel side at once and swaps the rings for zero pages,
 * so a view kept past `close()` reads zeros and never faults; the address range itself is given
 * back when the last view is collected. A `close()` inside a drain callback lets the callback
 * finish with its view intact, then the drain stops without touching another record.
 */
export abstract class RingReader<R> implements AsyncIterable<R>, Disposable, AsyncDisposable {
  protected readonly epoll: Epoll;
  /** True once `close()` was called: a drain checks it after each callback and stops. */
  protected stopped = false;
  readonly #ready: Waiter;
  readonly #signal: AbortSignal | undefined;
  readonly #holdings: Holdings;
  /** The reader's own per-read timeout (ms), for reads and iteration that give none. */
  readonly #timeout: number | undefined;
  #reading = false;
  #draining = false;

  /**
   * `waiter` defaults to a libuv poll handle on the epoll fd (right for fds whose poll is not
   * destructive). `holdings` is what `close()` releases (created empty when omitted; the epoll
   * set and the waiter are added to it). `timeout` is the per-read timeout of reads that give none,
   * `for await` included (which then ends when no record comes within it).
   */
  protected constructor(
    epoll: Epoll,
    signal?: AbortSignal,
    waiter?: Waiter,
    holdings?: Holdings,
    timeout?: number,
  ) {
    this.epoll = epoll;
    this.#timeout = timeout;
    this.#ready = waiter ?? new Readiness(epoll.fd.value);
    this.#signal = signal;
    this.#holdings = holdings ?? new Holdings(new.target.name);
    this.#holdings.epoll = epoll;
    this.#holdings.waiter = this.#ready;
    if (signal) this.#holdings.listen(signal, this.#ready);
    forgotten.register(this, this.#holdings, this.#holdings);
  }

  /** The next ready record, or undefined when none is (never waits). */
  protected abstract poll(): R | undefined;
  /**
   * Called once by `close()`, right before the holdings are released (after a running drain has
   * returned): hand back what is consumed and drop the references to the rings.
   */
  protected abstract dispose(): void;

  get closed(): boolean {
    return this.stopped;
  }

  /** Throws {@link ClosedError} once closed. */
  protected live(): void {
    if (this.stopped) throw new ClosedError(this.constructor.name);
  }

  /** Start a drain: refuses after close and inside another drain's callback. */
  protected beginDrain(): void {
    this.live();
    if (this.#draining) throw new Error('drain() was called inside a drain callback: finish the first drain');
    this.#draining = true;
  }

  /** End a drain; a `close()` called inside it takes effect now. */
  protected endDrain(): void {
    this.#draining = false;
    if (this.stopped) this.#release();
  }

  /**
   * The next record, waiting for one (at most `timeout` ms: the read's, or else the reader's own).
   * Undefined after `close()` or on timeout. A record's
   * `data` is valid until the next read, unless the reader copies: a view into the ring for a
   * `PerfReader`, a view of the reader's writable scratch copy for a `RingBufReader`.
   */
  async read(opts: ReadOptions = {}): Promise<R | undefined> {
    const timeout = opts.timeout === undefined ? this.#timeout : checkTimeout(opts.timeout);
    const signal = opts.signal === undefined ? this.#signal : checkSignal(opts.signal);
    if (this.#reading) throw new Error('one read at a time: await the previous read first');
    if (this.#draining) throw new Error('read() was called inside a drain callback');
    this.#reading = true;
    try {
      const deadline = timeout === undefined ? undefined : Date.now() + timeout;
      for (;;) {
        if (this.stopped) return undefined;
        signal?.throwIfAborted();
        const r = this.poll();
        if (r !== undefined) return r;
        const left = deadline === undefined ? undefined : deadline - Date.now();
        if (left !== undefined && left <= 0) return undefined;
        await this.#ready.wait(left, signal);
      }
    } finally {
      this.#reading = false;
    }
  }

  /**
   * Wait until records may be ready (for use with `drain`): true when the rings became readable,
   * false on timeout, close or abort.
   */
  async wait(opts: ReadOptions = {}): Promise<boolean> {
    const timeout = checkTimeout(opts.timeout);
    const signal = opts.signal === undefined ? this.#signal : checkSignal(opts.signal);
    if (this.stopped) return false;
    return this.#ready.wait(timeout, signal);
  }

  /** Every record as it comes; ends on `close()`, or when the reader's `timeout` passes with none. */
  async *[Symbol.asyncIterator](): AsyncIterator<R> {
    for (;;) {
      const r = await this.read();
      if (r === undefined) return;
      yield r;
    }
  }

  /**
   * Stop reading: a pending `read()` resolves undefined, a `for await` ends, the kernel side
   * (fds, map slots, epoll registration) is released and views into the rings read zeros from
   * now on. Idempotent; other methods throw {@link ClosedError} afterwards.
   */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.#draining) this.#release();
  }

  #release(): void {
    if (this.#holdings.released) return;
    forgotten.unregister(this.#holdings);
    try {
      this.dispose();
    } finally {
      this.#holdings.release();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
