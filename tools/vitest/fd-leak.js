import { afterEach, beforeEach } from 'vitest';
import { leakedFds, openFds } from './fds.js';

let before = new Map();
beforeEach(() => {
  before = openFds();
});
afterEach((ctx) => {
  const leaked = leakedFds(before, openFds());
  if (leaked.length > 0) {
    const list = leaked.map((l) => `fd ${l.fd} → ${l.target}`).join(', ');
    throw new Error(`test '${ctx.task.name}' leaked ${leaked.length} fd(s): ${list}`);
  }
});
