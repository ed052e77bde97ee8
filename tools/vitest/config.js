import { fileURLToPath } from 'node:url';

const fdLeak = fileURLToPath(new URL('./fd-leak.js', import.meta.url));

/**
 * Shared vitest settings: forks pool (safe for FFI), fd-leak check after every test, and a test
 * file fails when the garbage collector had to close an fd (BPFKIT_STRICT_FINALIZERS, on unless
 * set to 0; `--expose-gc` lets the check collect before it looks).
 */
export function packageTestConfig(name) {
  return {
    test: {
      name,
      include: ['test/**/*.test.ts'],
      pool: 'forks',
      setupFiles: [fdLeak],
      execArgv: ['--expose-gc'],
      env: { BPFKIT_STRICT_FINALIZERS: process.env.BPFKIT_STRICT_FINALIZERS ?? '1' },
      // Limits that only catch hangs: tests wait for the event they need (a line printed, a
      // record read, a count reached), never for a time to pass, and a busy machine may be slow.
      testTimeout: 300_000,
      hookTimeout: 300_000,
    },
  };
}
