// How long a wake-up takes through each waiting strategy: an eventfd is signalled and the
// waiter resumes. (1) libuv poll handle on the fd (what the readers use); (2) koffi .async
// epoll_wait on a libuv pool thread. Prints median microseconds per round trip.
import { Epoll, EventFd, Readiness } from '@bpfkit/sys';
import koffi from 'koffi';

const rounds = Number(process.argv[2] ?? 2000);
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = {};

{
  const ev = new EventFd();
  const r = new Readiness(ev.fd.value);
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    setImmediate(() => ev.signal());
    await r.wait();
    ev.drain();
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  out.poll_handle_us = +median(times).toFixed(1);
  r.close();
  ev.close();
}
{
  const ev = new EventFd();
  const ep = new Epoll(4);
  ep.add(ev.fd, 1);
  const lib = koffi.load('libc.so.6');
  const wait = lib.func('int epoll_wait(int, void *, int, int)');
  const buf = koffi.alloc('uint8_t', 64);
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    const p = new Promise((res) => wait.async(ep.fd.value, buf, 4, -1, (_err, n) => res(n)));
    setImmediate(() => ev.signal());
    await p;
    ev.drain();
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  out.koffi_async_epoll_us = +median(times).toFixed(1);
  ep.close();
  ev.close();
}
console.log(JSON.stringify(out));
