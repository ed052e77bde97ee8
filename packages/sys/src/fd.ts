import { BpfError, ClosedError } from './errors.js';
import { cClose, cDupCloexec, errno } from './ffi.js';

const F_DUPFD_CLOEXEC = 1030;
const traceLeaks = process.env.BPFKIT_LEAK_TRACE === '1';

interface Held {
  fd: number;
  what: string;
  stack: string | undefined;
  /** Close when collected; false for fds whose closing would change what the kernel runs. */
  close: boolean;
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
  if (held.close) cClose(held.fd);
});

/**
 * The single owner of a kernel file descriptor. `close()` is idempotent, use after close
 * throws {@link ClosedError}, and a forgotten `Fd` is closed by the garbage collector
 * (set `BPFKIT_LEAK_TRACE=1` to be told where it was created).
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
   * stays open until `close()` or process exit.
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
    return v;
  }

  close(): void {
    if (this.#value < 0) return;
    registry.unregister(this);
    const v = this.#value;
    this.#value = -1;
    cClose(v);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return this.closed ? `Fd(${this.what}, closed)` : `Fd(${this.what}, ${this.#value})`;
  }
}
