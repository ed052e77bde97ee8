// Signals and the verifier: BPF_PROG_LOAD gives up with EAGAIN when a signal is pending on the
// loading thread (the verifier checks between instructions). A Node process gets such signals
// routinely — a CPU profiler's SIGPROF every few hundred microseconds, timers, SIGCHLD — so a
// long verification could never finish. Blocking them on this thread for the syscall lets it run
// to the end; the signals stay pending and are delivered as soon as the mask is restored.
import { constants } from 'node:os';
import { cPthreadSigmask } from './ffi.js';
import { NativeBuffer } from './native.js';

/** glibc's and musl's sigset_t: 1024 bits. */
const SIGSET_BYTES = 128;
const SIG_BLOCK = 0;
const SIG_SETMASK = 2;

/**
 * Run `fn` with every blockable signal blocked on the calling thread, then restore the mask
 * (SIGKILL and SIGSTOP cannot be blocked, so a process can always be killed).
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  using all = new NativeBuffer(SIGSET_BYTES);
  using old = new NativeBuffer(SIGSET_BYTES);
  all.bytes.fill(0xff);
  const err = cPthreadSigmask(SIG_BLOCK, all.ptr, old.ptr);
  if (err !== 0) return fn(); // cannot block: run as before (the caller retries on EAGAIN)
  try {
    return fn();
  } finally {
    cPthreadSigmask(SIG_SETMASK, old.ptr, null);
  }
}

/** The errno BPF_PROG_LOAD answers when a signal interrupted verification. */
export const EAGAIN = constants.errno.EAGAIN;
