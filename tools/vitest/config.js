import { fileURLToPath } from 'node:url';

const fdLeak = fileURLToPath(new URL('./fd-leak.js', import.meta.url));

/** Shared vitest settings: forks pool (safe for FFI), fd-leak check after every test. */
export function packageTestConfig(name) {
  return {
    test: {
      name,
      include: ['test/**/*.test.ts'],
      pool: 'forks',
      setupFiles: [fdLeak],
      // Limits that only catch hangs: tests wait for the event they need (a line printed, a
      // record read, a count reached), never for a time to pass, and a busy machine may be slow.
      testTimeout: 300_000,
      hookTimeout: 300_000,
    },
  };
}
