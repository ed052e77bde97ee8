// The verifier stops with EAGAIN when a signal is pending on the loading thread; progLoad blocks
// signals for the syscall. Here: the mask really is set for the call and restored after.
import { readFileSync } from 'node:fs';
import { withSignalsBlocked } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

const blocked = () =>
  BigInt(`0x${/^SigBlk:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/thread-self/status', 'utf8'))![1]}`);

describe('withSignalsBlocked', () => {
  it('blocks every blockable signal on this thread for the call, then restores the mask', () => {
    const before = blocked();
    const during = withSignalsBlocked(() => blocked());
    // SIGPROF (27), SIGALRM (14), SIGINT (2), SIGCHLD (17): bit n-1 set while the call runs
    for (const sig of [27, 14, 2, 17]) expect((during >> BigInt(sig - 1)) & 1n, `signal ${sig}`).toBe(1n);
    expect(blocked()).toBe(before);
    expect(() =>
      withSignalsBlocked(() => {
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(blocked()).toBe(before);
  });
});
