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
      testTimeout: 30_000,
      hookTimeout: 30_000,
    },
  };
}
