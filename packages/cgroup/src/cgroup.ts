import { mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cgroupPath, openCgroup } from '@bpfkit/link';
import { cgroup2Mount, type Fd } from '@bpfkit/sys';

/** A cgroup v2 directory. Ones created here are removed on `remove()`/dispose. */
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
  }

  [Symbol.dispose](): void {
    if (this.#created) this.remove();
  }
}
