import { isMainThread } from 'node:worker_threads';
import { cPoll, koffi } from './ffi.js';
import { NativeBuffer } from './native.js';
import { EventFd, WAIT_SLICE_MS } from './os.js';

type PollHandle = ReturnType<ReturnType<typeof koffi>['node']['poll']>;

const POLLIN = 1;

/**
 * Waits for an fd to become readable without blocking Node's event loop. On the main thread the
 * fd (an epoll set, a ring buffer map, an eventfd) is watched by libuv's own poll handle, as a
 * socket is, and no pool thread is parked. In a worker thread a poll handle still open when the
 * worker is terminated crashes the process (koffi's handle outlives the worker's loop), so there
 * the wait is `poll(2)` on a libuv pool thread, in slices of at most {@link WAIT_SLICE_MS} (a
 * terminated worker ends within one) and woken at once by `cancel()`/`close()` through an
 * eventfd. One wait at a time.
 */
export class Readiness {
  readonly #fd: number;
  #handle: PollHandle | undefined;
  #pending: ((ready: boolean) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  // worker threads: the pool-thread wait
  #pool: { fds: NativeBuffer; wake: EventFd } | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Resolves true when the fd is readable, false on timeout (ms; omitted waits forever) or when
   * `signal` aborts, or when {@link cancel}/{@link close} is called.
   */
  wait(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#pending) throw new Error('Readiness.wait: a wait is already pending');
    if (signal?.aborted || this.#closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = () => this.#finish(false);
      this.#pending = (ready) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(ready);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined && timeoutMs >= 0)
        this.#timer = setTimeout(() => this.#finish(false), timeoutMs);
      if (!isMainThread) return this.#poolWait();
      const cb = () => this.#finish(true);
      if (this.#handle) this.#handle.start({ readable: true }, cb);
      else this.#handle = koffi().node.poll(this.#fd, { readable: true }, cb);
    });
  }

  /** poll(2) on a pool thread, one slice at a time, until readable, cancelled or closed. */
  #poolWait(): void {
    if (this.#running) return; // a slice still running after a cancel serves this wait too
    if (!this.#pool) {
      const fds = new NativeBuffer(16);
      const wake = new EventFd();
      const v = fds.view;
      v.setInt32(0, this.#fd, true);
      v.setInt16(4, POLLIN, true);
      v.setInt32(8, wake.fd.value, true);
      v.setInt16(12, POLLIN, true);
      this.#pool = { fds, wake };
    }
    const { fds, wake } = this.#pool; // held by the closure until the pool thread is done
    this.#running = new Promise<void>((settled) => {
      const slice = () => {
        fds.view.setInt16(6, 0, true);
        fds.view.setInt16(14, 0, true);
        cPoll.async(fds.ptr, 2, WAIT_SLICE_MS, (err: unknown, r: number) => {
          const readable = !err && r > 0 && fds.view.getInt16(6, true) !== 0;
          if (!err && r > 0 && fds.view.getInt16(14, true) !== 0) wake.drain();
          if (this.#pending && !this.#closed && !err && !readable) return slice();
          this.#running = undefined;
          settled();
          if (this.#closed) this.#release();
          else if (this.#pending) {
            if (readable) this.#finish(true);
            else this.#finish(false);
          }
        });
      };
      slice();
    });
  }

  #finish(ready: boolean): void {
    this.#handle?.stop();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const p = this.#pending;
    this.#pending = undefined;
    if (this.#running && this.#pool && !this.#pool.wake.fd.closed) this.#pool.wake.signal();
    p?.(ready);
  }

  /** End a pending wait (it resolves false). */
  cancel(): void {
    this.#finish(false);
  }

  close(): void {
    if (this.#closed) return;
    this.cancel();
    this.#closed = true;
    this.#handle?.close();
    this.#handle = undefined;
    if (!this.#running) this.#release();
  }

  #release(): void {
    this.#pool?.wake.close();
    this.#pool?.fds.free();
    this.#pool = undefined;
  }

  /** Settles once nothing is left in flight (on the main thread, at once). */
  async idle(): Promise<void> {
    await this.#running;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
