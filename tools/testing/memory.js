// Whether an address starts a mapping of this process, read from /proc/self/maps into memory
// allocated once up front: a read that allocates (readFileSync) could itself be handed a hole
// the test just freed, and make it look mapped still.
import { closeSync, openSync, readSync } from 'node:fs';

const into = Buffer.alloc(4 << 20);

/** True when a mapping starts at `addr` (hex, as `ptr.toString(16)`). */
export function mappedAt(addr) {
  const fd = openSync('/proc/self/maps', 'r');
  let n = 0;
  try {
    for (;;) {
      const r = readSync(fd, into, n, into.length - n, null);
      if (r <= 0) break;
      n += r;
    }
  } finally {
    closeSync(fd);
  }
  return `\n${into.toString('latin1', 0, n)}`.includes(`\n${addr}-`);
}
