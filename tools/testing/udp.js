// Loopback UDP for tests that filter or drop datagrams: a receiver that waits for what it must
// see, and the kernel's own count of what a socket dropped — so a test waits for events, never
// for a time to pass.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

/**
 * Datagrams the kernel dropped for the UDP socket bound to `port` (127.0.0.1): the `drops` column
 * of /proc/net/udp, which counts a datagram a socket filter refused as well as a full queue.
 */
export function udpDrops(port) {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(local)) return Number(f.at(-1));
  }
  throw new Error(`no UDP socket bound to port ${port}`);
}

/** A receiver on 127.0.0.1 and a sender; disposing closes both. */
export async function udpPair() {
  const rx = createSocket('udp4');
  rx.bind(0, '127.0.0.1');
  await once(rx, 'listening');
  const tx = createSocket('udp4');
  const port = rx.address().port;
  return {
    rx,
    tx,
    port,
    send: (msg) =>
      new Promise((resolve, reject) => tx.send(msg, port, '127.0.0.1', (e) => (e ? reject(e) : resolve()))),
    async [Symbol.asyncDispose]() {
      await new Promise((r) => rx.close(() => r()));
      await new Promise((r) => tx.close(() => r()));
    },
  };
}

/**
 * What `rx` (bound to `port`) receives while `send()` runs, once `passed` datagrams have arrived
 * and `dropped` more were dropped at the socket. Every datagram sent is then accounted for; the
 * wait has no time limit of its own (the test's limit catches a datagram that never comes).
 */
export async function receive(rx, port, send, { passed, dropped = 0 }) {
  const got = [];
  const drops0 = udpDrops(port);
  let wake = () => {};
  const on = (m) => {
    got.push(m.toString());
    wake();
  };
  rx.on('message', on);
  try {
    await send();
    while (got.length < passed || udpDrops(port) - drops0 < dropped)
      // a message wakes the wait; drops have no event, so look again on the next turn of the loop
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 10);
      });
    return { got, dropped: udpDrops(port) - drops0 };
  } finally {
    rx.off('message', on);
  }
}
