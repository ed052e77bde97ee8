// Kernels for the VM tests: Debian's linux-image packages, fetched with apt-get download into a
// cache outside the repository and unpacked with dpkg -x (never installed).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where kernels, the private apt state and built initramfs images are kept. */
export const cacheDir =
  process.env.BPFKIT_VMTEST_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'bpfkit-vmtest');

// bookworm carries 6.1; bookworm-backports carries 6.12; bullseye (and bullseye-security, where
// its newest 5.10 builds are) carries 5.10. A private apt state leaves the machine's own sources alone.
const SUITES = [
  ['debian', 'bookworm'],
  ['debian', 'bookworm-backports'],
  ['debian-security', 'bookworm-security'],
  ['debian', 'bullseye'],
  ['debian-security', 'bullseye-security'],
];
const SOURCES = SUITES.map(([archive, suite]) => `deb http://deb.debian.org/${archive} ${suite} main`)
  .map((line) => `${line}\n`)
  .join('');

function aptOptions() {
  const dir = join(cacheDir, 'apt');
  for (const d of ['lists/partial', 'archives/partial']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'sources.list'), SOURCES);
  return [
    '-o',
    `Dir::Etc::SourceList=${join(dir, 'sources.list')}`,
    '-o',
    'Dir::Etc::SourceParts=/nonexistent',
    '-o',
    `Dir::State::Lists=${join(dir, 'lists')}`,
    '-o',
    `Dir::Cache=${dir}`,
    '-o',
    'Debug::NoLocking=1',
    '-o',
    'APT::Sandbox::User=root',
  ];
}

/** Compare Debian-style version strings numerically, part by part. */
export function compareVersions(a, b) {
  const pa = a
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
  const pb = b
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d) return d;
  }
  return 0;
}

/** The newest generic amd64 image package of `series` ('6.1', '6.12') in `names`. */
export function pickImagePackage(series, names) {
  const re = new RegExp(`^linux-image-${series.replace('.', '\\.')}(\\.[0-9]+)*[-+][0-9a-z.+-]*-amd64$`);
  const candidates = names.filter((n) => re.test(n) && !/-(cloud|rt)-amd64$/.test(n));
  return candidates.sort(compareVersions).at(-1);
}

let updated = false;
/** apt-get update of the private state, once per run (and only if the lists are missing or stale). */
function aptUpdate(log) {
  if (updated) return;
  const lists = join(cacheDir, 'apt', 'lists');
  const have = existsSync(lists) ? readdirSync(lists) : [];
  const fresh =
    SUITES.every(([archive, suite]) =>
      have.some((f) => f.includes(`_${archive}_dists_${suite}_main_`) && f.includes('_Packages')),
    ) && !process.env.BPFKIT_VMTEST_REFRESH;
  if (!fresh) {
    log(`vmtest: apt-get update (${SUITES.map(([, suite]) => suite).join(', ')})`);
    execFileSync('apt-get', [...aptOptions(), 'update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  updated = true;
}

/** `apt-get download` `spec` (a package, or package/suite) into the cache and `dpkg -x` it into `dir`. */
function unpackDeb(spec, dir, log) {
  const name = spec.split('/')[0];
  const debs = join(cacheDir, 'debs');
  mkdirSync(debs, { recursive: true });
  log(`vmtest: downloading ${spec}`);
  for (const f of readdirSync(debs).filter((f) => f.startsWith(`${name}_`))) rmSync(join(debs, f));
  execFileSync('apt-get', [...aptOptions(), 'download', '-qq', spec], { cwd: debs, stdio: 'inherit' });
  const deb = readdirSync(debs).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (!deb) throw new Error(`vmtest: apt-get download ${spec} left no .deb`);
  execFileSync('dpkg', ['-x', join(debs, deb), dir]);
}

/**
 * Debian package `name` of `suite`, unpacked (not installed) under the cache, fetched once:
 * its directory. For files the machine's own packages have only in older versions.
 */
export function ensureDebian(name, suite, log = console.log) {
  const dir = join(cacheDir, 'packages', `${name}_${suite}`);
  if (!existsSync(join(dir, '.complete'))) {
    aptUpdate(log);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    unpackDeb(`${name}/${suite}`, dir, log);
    writeFileSync(join(dir, '.complete'), '');
  }
  return dir;
}

/**
 * The kernel of `series`, fetched and unpacked if the cache lacks it: `{ name, release, vmlinuz,
 * modules }` where `modules` is its /lib/modules/<release> directory.
 */
export function ensureKernel(series, log = console.log) {
  const root = join(cacheDir, 'kernels');
  mkdirSync(root, { recursive: true });
  const have = readdirSync(root).filter((d) => pickImagePackage(series, [d]));
  let name = have.sort(compareVersions).at(-1);
  if (!name) {
    aptUpdate(log);
    const out = execFileSync('apt-cache', [...aptOptions(), 'pkgnames', 'linux-image-'], {
      encoding: 'utf8',
    });
    name = pickImagePackage(series, out.split('\n'));
    if (!name)
      throw new Error(
        `vmtest: no linux-image package of Linux ${series} in Debian ${SUITES.map(([, suite]) => suite).join(', ')}`,
      );
    unpackDeb(name, join(root, name), log);
  }
  const dir = join(root, name);
  const release = readdirSync(join(dir, 'lib', 'modules'))[0];
  return {
    series,
    name,
    release,
    vmlinuz: join(dir, 'boot', `vmlinuz-${release}`),
    modules: join(dir, 'lib', 'modules', release),
    config: readFileSync(join(dir, 'boot', `config-${release}`), 'utf8'),
  };
}

/** A module file's bytes, decompressing `.ko.xz` with xz(1). */
export function readModule(path) {
  return path.endsWith('.xz')
    ? execFileSync('xz', ['-dc', path], { maxBuffer: 1 << 28 })
    : readFileSync(path);
}

/** The `key=value` strings of a kernel module's `.modinfo` section (x86-64 ELF). */
export function modinfo(bytes) {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) throw new Error('not a 64-bit ELF module');
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const sh = (i) => shoff + i * shentsize;
  const strtab = Number(b.readBigUInt64LE(sh(b.readUInt16LE(0x3e)) + 0x18));
  for (let i = 0; i < shnum; i++) {
    const nameOff = strtab + b.readUInt32LE(sh(i));
    if (b.toString('latin1', nameOff, nameOff + 9) !== '.modinfo\0') continue;
    const off = Number(b.readBigUInt64LE(sh(i) + 0x18));
    const size = Number(b.readBigUInt64LE(sh(i) + 0x20));
    const info = {};
    for (const kv of b.toString('utf8', off, off + size).split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) info[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return info;
  }
  throw new Error('module has no .modinfo section');
}

/**
 * The modules to load, in order, so that `wanted` (module names) work: each one's `depends=`
 * first, skipping what the kernel has built in (modules.builtin). Debian ships no modules.dep
 * (depmod writes it at install), so dependencies come from the modules themselves. Returns
 * `{ name, path }` with paths relative to `modulesDir`. `optional` modules are loaded only where the
 * kernel ships them as modules (built in, or absent from this kernel: nothing to load).
 */
export function moduleClosure(modulesDir, wanted, optional = []) {
  const paths = new Map();
  for (const line of readFileSync(join(modulesDir, 'modules.order'), 'utf8').split('\n')) {
    if (!line) continue;
    const path = ['', '.xz', '.zst'].map((ext) => line + ext).find((p) => existsSync(join(modulesDir, p)));
    if (path) paths.set(modName(line), path);
  }
  const builtin = new Set(
    readFileSync(join(modulesDir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map(modName),
  );
  const order = [];
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    if (builtin.has(name)) return;
    const path = paths.get(name);
    if (!path) throw new Error(`vmtest: module ${name} is neither built in nor shipped`);
    const info = modinfo(readModule(join(modulesDir, path)));
    for (const d of (info.depends ?? '').split(',').filter(Boolean)) visit(d.replaceAll('-', '_'));
    // `softdep=pre: crc32c`: modules the init needs without linking to them (libcrc32c asks the
    // crypto API for crc32c). Named by module, or by an alias that a crypto module's generic
    // implementation carries (crc32c → crc32c_generic); one that is neither is left out.
    for (const soft of softPre(info.softdep)) {
      const dep = [soft, `${soft}_generic`].find((n) => builtin.has(n) || paths.has(n));
      if (dep) visit(dep);
    }
    order.push({ name, path });
  };
  for (const w of wanted) visit(w.replaceAll('-', '_'));
  for (const o of optional.map((m) => m.replaceAll('-', '_'))) if (paths.has(o)) visit(o);
  return order;
}

/** The `pre:` names of a `softdep` value (`pre: a b post: c` → a, b), as module names. */
export function softPre(softdep = '') {
  const m = /(?:^|\s)pre:\s*(.*?)(?:\s+post:.*)?$/.exec(softdep);
  return (m?.[1] ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((n) => n.replaceAll('-', '_'));
}

function modName(path) {
  return path
    .split('/')
    .pop()
    .replace(/\.ko(\.xz|\.zst|\.gz)?$/, '')
    .replaceAll('-', '_');
}
