// Shared by the exporter's tests: plain HTTP GETs (no keep-alive pool, so no socket outlives a
// test), the activity program under a name of each test's own, and polling with a deadline.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/** A config entry for the write_sizes fixture: write(2) sizes per comm as a log2 histogram. */
export const WRITE_SIZES = `  - name: sizes
    object: ${fixture('write_sizes.bpf.o')}
    attach: [{ program: on_write, tracepoint: syscalls/sys_enter_write }]
    metrics:
      - name: write_size_bytes
        help: Sizes passed to write(2).
        type: histogram
        map: write_log2
        bucket: { field: slot, kind: log2, max: 20 }
        labels: [{ name: comm, field: comm }]
`;

/** GET `url` on a connection of its own (closed after), the body as text. */
export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      // resolve once the socket is closed, so that no test ends with it still open
      res.on('end', () => res.socket.once('close', () => resolve({ status: res.statusCode ?? 0, body })));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/**
 * The activity program copied into a temp dir as `name` (at most 15 characters: its comm), so
 * no other test's or process's activity counts under it. Dispose removes it.
 */
export function activity(
  name: string,
): { run(getppids: number, writeSize?: number, writes?: number): void } & Disposable {
  if (name.length > 15) throw new RangeError(`comm '${name}' is longer than 15 characters`);
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-exporter-'));
  const path = join(dir, name);
  copyFileSync(fixture('activity'), path);
  return {
    run: (getppids, writeSize = 0, writes = 0) => {
      execFileSync(path, [String(getppids), String(writeSize), String(writes)], { stdio: 'ignore' });
    },
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Wait until this process has no more sockets than `before` (a closed peer's fd goes asynchronously). */
export async function socketsBack(before: number): Promise<void> {
  await poll('sockets to close', () => (countSockets() <= before ? true : undefined));
}
export function countSockets(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/** A comm of 15 characters at most, unique to this run. */
export const uniqueComm = (prefix: string) =>
  `${prefix}${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`.slice(0, 15);

/**
 * Call `fn` until it returns something other than undefined, or fail after `deadlineMs` (generous:
 * a slow or busy machine only waits longer, it never fails a test that would pass).
 */
export async function poll<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  deadlineMs = 120_000,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The value of the sample `name{labels}` in an exposition, or undefined. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const brace = line.indexOf('{');
    const close = line.lastIndexOf('}');
    const body = brace >= 0 && brace < close ? line.slice(brace + 1, close) : '';
    const have = new Map([...body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v))
      return Number(line.slice((close >= 0 ? close : line.indexOf(' ')) + 1).trim());
  }
  return undefined;
}
