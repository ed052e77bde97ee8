import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cgroupPath, openCgroup } from '@bpfkit/link';
import { cgroup2Mount, type Fd } from '@bpfkit/sys';

/**
 * Cgroups made by `Cgroup.create` and not yet removed: on process exit (and on SIGINT/SIGTERM when
 * nothing else listens for the signal) the ones still there are removed, deepest first.
 */
const created = new Set<string>();
let hooked = false;

function removeCreated(): void {
  for (const path of [...created].sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(path);
    } catch {
      // still holds processes or children not made here: left as it is
    }
    created.delete(path);
  }
}

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return; // someone else handles it; 'exit' still cleans up
  removeCreated();
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  process.kill(process.pid, signal); // the default action again: the process dies of the signal
}

function track(path: string): void {
  created.add(path);
  if (hooked) return;
  hooked = true;
  process.on('exit', removeCreated);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Writes its own pid into the cgroup.procs file `$1`, then execs the command: nothing of it runs outside. */
const ENTER_AND_EXEC = 'echo $$ > "$1" || exit 126; shift; exec "$@"';

/**
 * A cgroup v2 directory. Ones created here are removed on `remove()`/dispose, and on process exit
 * or SIGINT/SIGTERM if still there.
 */
export class Cgroup {
  readonly path: string;
  readonly #created: boolean;

  private constructor(path: string, created: boolean) {
    this.path = path;
    this.#created = created;
  }

  /** The root of the v2 hierarchy. */
  static root(): Cgroup {
    return new Cgroup(cgroup2Mount(), false);
  }

  /** An existing cgroup, by absolute path or by path relative to the v2 root. */
  static open(path: string): Cgroup {
    return new Cgroup(cgroupPath(path), false);
  }

  /** The cgroup a process is in (`/proc/<pid>/cgroup`, the `0::` line). */
  static ofProcess(pid: number | 'self' = 'self'): Cgroup {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    if (!line) throw new Error(`process ${pid} has no cgroup v2 membership`);
    return new Cgroup(join(cgroup2Mount(), line.slice(3)), false);
  }

  /** Create a child cgroup (removed by dispose). */
  static create(name: string, parent: Cgroup | string = Cgroup.root()): Cgroup {
    if (!name || name.includes('/') || name === '.' || name === '..')
      throw new TypeError(`bad cgroup name '${name}'`);
    const base = typeof parent === 'string' ? Cgroup.open(parent).path : parent.path;
    const path = join(base, name);
    mkdirSync(path);
    track(path);
    return new Cgroup(path, true);
  }

  child(name: string): Cgroup {
    return Cgroup.create(name, this);
  }

  /** Path relative to the v2 root, as /proc/<pid>/cgroup shows it. */
  get name(): string {
    return `/${relative(cgroup2Mount(), this.path)}`;
  }

  /** The cgroup id (its inode number), as bpf_get_current_cgroup_id() returns it. */
  get id(): bigint {
    return statSync(this.path, { bigint: true }).ino;
  }

  /** Move a process into this cgroup. */
  addProcess(pid: number): void {
    writeFileSync(join(this.path, 'cgroup.procs'), String(pid));
  }

  /**
   * Start `command` already inside this cgroup: a `/bin/sh` wrapper writes its own pid into
   * `cgroup.procs` and then execs `command` (looked up in PATH), so the command's first instruction
   * runs in the cgroup. If the move fails the command is not run: the child exits with 126, the
   * shell's message on its stderr. `options.shell` and `argv0` are not supported.
   */
  spawn(
    command: string,
    args: readonly string[] = [],
    options: Omit<SpawnOptions, 'shell' | 'argv0'> = {},
  ): ChildProcess {
    if ((options as SpawnOptions).shell) throw new TypeError('Cgroup.spawn does not take the shell option');
    return spawn(
      '/bin/sh',
      ['-c', ENTER_AND_EXEC, 'bpfkit-cgroup-spawn', join(this.path, 'cgroup.procs'), command, ...args],
      options,
    );
  }

  processes(): number[] {
    return readFileSync(join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  }

  /** An fd for the cgroup directory, as BPF attach and query take it. */
  open(): Fd {
    return openCgroup(this.path);
  }

  /** Remove the directory (it must hold no processes and no children). */
  remove(): void {
    rmdirSync(this.path);
    created.delete(this.path);
  }

  [Symbol.dispose](): void {
    if (this.#created) this.remove();
  }
}
