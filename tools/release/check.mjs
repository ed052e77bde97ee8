#!/usr/bin/env node
// Release checks, run by CI: every published package builds on its own through turbo, packs to
// nothing but dist/README/LICENSE/CHANGELOG (and the CLI's shipped BPF objects), passes publint
// and arethetypeswrong; `pnpm -r publish --dry-run` works; and `changeset version`, tried on a
// scratch clone, bumps exactly the packages the pending changesets name and their dependents.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', env, ...opts });
const failures = [];
const ALLOWED = [
  /^package\/package\.json$/,
  /^package\/dist\//,
  /^package\/src\/[\w./-]+\.ts$/, // the sources the shipped source maps point at (tools/test/packed.test.ts)
  /^package\/README\.md$/,
  /^package\/LICENSE$/,
  /^package\/CHANGELOG\.md$/,
  /^package\/bpf\/[\w-]+\.bpf\.o$/,
  /^package\/bpf\/[\w-]+\.yaml$/, // the exporter's built-ins: each object's config
];

const out = mkdtempSync(join(tmpdir(), 'bpfkit-release-'));
try {
  const pkgs = readdirSync(join(root, 'packages')).sort();
  for (const [i, dir] of pkgs.entries()) {
    const pkgDir = join(root, 'packages', dir);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    process.stdout.write(
      `release: [${i + 1}/${pkgs.length}] ${pkg.name}: build alone, pack, publint, attw\n`,
    );
    sh(bin('turbo'), ['run', 'build', `--filter=${pkg.name}`, '--output-logs=errors-only'], { cwd: root });
    const tarball = sh('pnpm', ['pack', '--pack-destination', out], { cwd: pkgDir }).trim().split('\n').pop();
    const files = sh('tar', ['-tzf', tarball]).trim().split('\n');
    const extra = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
    if (extra.length) failures.push(`${pkg.name}: unexpected files in the package: ${extra.join(', ')}`);
    if (!files.includes('package/README.md') || !files.includes('package/LICENSE'))
      failures.push(`${pkg.name}: README or LICENSE missing`);
    const { messages, pkg: packed } = await publint({ pkgDir, level: 'warning', strict: true });
    for (const m of messages) failures.push(`${pkg.name}: publint: ${formatMessage(m, packed) ?? m.code}`);
    try {
      sh(bin('attw'), [tarball, '--profile', 'esm-only', '--format', 'ascii']);
    } catch (e) {
      failures.push(`${pkg.name}: arethetypeswrong:\n${e.stdout ?? e.message}`);
    }
  }

  process.stdout.write('release: pnpm -r publish --dry-run\n');
  sh('pnpm', ['-r', 'publish', '--dry-run', '--no-git-checks'], { cwd: root, stdio: 'pipe' });

  process.stdout.write('release: changeset version on a scratch copy\n');
  const scratch = join(out, 'repo');
  cpSync(root, scratch, {
    recursive: true,
    filter: (src) => !/\/(node_modules|dist|\.turbo|\.git)(\/|$)/.test(src.slice(root.length - 1)),
  });
  const before = Object.fromEntries(
    pkgs.map((d) => [
      d,
      JSON.parse(readFileSync(join(scratch, 'packages', d, 'package.json'), 'utf8')).version,
    ]),
  );
  const pending = readdirSync(join(scratch, '.changeset')).filter(
    (f) => f.endsWith('.md') && f !== 'README.md',
  );
  sh('node', [join(root, 'node_modules', '@changesets', 'cli', 'bin.js'), 'version'], {
    cwd: scratch,
    stdio: 'pipe',
  });
  const after = Object.fromEntries(
    pkgs.map((d) => [
      d,
      JSON.parse(readFileSync(join(scratch, 'packages', d, 'package.json'), 'utf8')).version,
    ]),
  );
  const bumped = pkgs.filter((d) => before[d] !== after[d]);
  if (pending.length > 0 && bumped.length === 0)
    failures.push('changeset version bumped nothing although changesets are pending');
  for (const d of bumped)
    if (!readdirSync(join(scratch, 'packages', d)).includes('CHANGELOG.md'))
      failures.push(`${d}: bumped without a CHANGELOG.md`);
  process.stdout.write(
    `release: changeset version would bump ${bumped.map((d) => `${d} ${before[d]} → ${after[d]}`).join(', ') || 'nothing'}\n`,
  );
} finally {
  rmSync(out, { recursive: true, force: true });
}

if (failures.length) {
  console.error(`\nrelease checks failed:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log('release: all checks passed');
