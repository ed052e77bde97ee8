import { koffi } from './ffi.js';

type PollHandle = ReturnType<typeof koffi.node.poll>;

/**
 * Waits for an fd to become readable without blocking Node's event loop or parking a libuv
 * pool thread: the fd (an epoll set, a ring buffer map, an eventfd) is watched by libuv's own
 * poll handle, as a socket is. One wait at a time.
 */
export class Readiness {
  readonly #fd: number;
  #handle: PollHandle | undefined;
  #pending: ((ready: boolean) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Resolves true when the fd is readable, false on timeout (ms; omitted waits forever) or when
   * `signal` aborts, or when {@link cancel}/{@link close} is called.
   */
  wait(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#pending) throw new Error('Readiness.wait: a wait is already pending');
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = () => this.#finish(false);
      this.#pending = (ready) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(ready);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined && timeoutMs >= 0)
        this.#timer = setTimeout(() => this.#finish(false), timeoutMs);
      const cb = () => this.#finish(true);
      if (this.#handle) this.#handle.start({ readable: true }, cb);
      else this.#handle = koffi.node.poll(this.#fd, { readable: true }, cb);
    });
  }

  #finish(ready: boolean): void {
    this.#handle?.stop();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const p = this.#pending;
    this.#pending = undefined;
    p?.(ready);
  }

  /** End a pending wait (it resolves false). */
  cancel(): void {
    this.#finish(false);
  }

  close(): void {
    this.cancel();
    this.#handle?.close();
    this.#handle = undefined;
  }

  /** Settles at once: the poll handle runs on the event loop, nothing is left in flight. */
  async idle(): Promise<void> {}

  [Symbol.dispose](): void {
    this.close();
  }
}
