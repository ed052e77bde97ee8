import { type Epoll, EventFd, Readiness } from '@bpfkit/sys';

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
}

export interface ReadOptions {
  /** Give up after this many ms (resolves undefined). */
  timeout?: number;
  signal?: AbortSignal;
}

/**
 * What both ring readers share: records are pulled without waiting by `poll()`; when none are
 * ready the reader waits for its epoll set to become readable through a libuv poll handle
 * (Node's event loop keeps running, no pool thread is parked). `close()` ends a pending read
 * or iteration cleanly; an aborted signal rejects with its reason.
 */
export abstract class RingReader<R> implements AsyncIterable<R>, Disposable, AsyncDisposable {
  protected readonly epoll: Epoll;
  readonly #ready: Waiter;
  readonly #signal: AbortSignal | undefined;
  #closed = false;
  #reading = false;

  /** `waiter` defaults to a libuv poll handle on the epoll fd (right for fds whose poll is not destructive). */
  protected constructor(epoll: Epoll, signal?: AbortSignal, waiter?: Waiter) {
    this.epoll = epoll;
    this.#ready = waiter ?? new Readiness(epoll.fd.value);
    this.#signal = signal;
    signal?.addEventListener('abort', () => this.#ready.cancel(), { once: true });
  }

  /** The next ready record, or undefined when none is (never waits). */
  protected abstract poll(): R | undefined;
  /** Free resources; called once by close(). */
  protected abstract dispose(): void;

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The next record, waiting for one. Undefined after `close()` or on timeout. A record's
   * `data` is a view into the ring, valid until the next read (unless the reader copies).
   */
  async read(opts: ReadOptions = {}): Promise<R | undefined> {
    if (this.#reading) throw new Error('one read at a time: await the previous read first');
    this.#reading = true;
    try {
      const signal = opts.signal ?? this.#signal;
      const deadline = opts.timeout === undefined ? undefined : Date.now() + opts.timeout;
      for (;;) {
        if (this.#closed) return undefined;
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
    if (this.#closed) return false;
    return this.#ready.wait(opts.timeout, opts.signal ?? this.#signal);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<R> {
    for (;;) {
      const r = await this.read();
      if (r === undefined) return;
      yield r;
    }
  }

  /** Stop reading: a pending `read()` resolves undefined, a `for await` ends, rings are unmapped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready.close();
    this.dispose();
    // A wait may still be running on a pool thread inside epoll_wait: free the epoll set (and its
    // event buffer) only once it has returned.
    void this.#ready.idle().then(() => this.epoll.close());
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
