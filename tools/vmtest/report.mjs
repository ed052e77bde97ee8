// Turns vitest's JSON report into per-package results and prints the kernel × package matrix.
// A test that fails with a NotSupportedError on a kernel counts as "unsupported" there, with the
// feature the error names: the one kind of skip the matrix allows. On the host, a test may also be
// skipped by tools/testing/features.js where the host demonstrably lacks a feature (its meta
// says why). The policy (`verdict`): an unsupported test must pass on another leg of the same
// run, and on the host the reason must show the lack (a config option absent from the kernel
// config, or the kernel refusing the probe load).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The package a test file belongs to: `packages/<dir>/...` → dir, `tools/...` → tools. */
export function packageOf(file, root) {
  const rel = relative(root, file).split('/');
  return rel[0] === 'packages' ? rel[1] : rel[0];
}

const NOT_SUPPORTED = /NotSupportedError: (.*)/;
/** What a host-unsupported reason must say: the host demonstrably lacks the feature. */
export const DEMONSTRATED = /CONFIG_[A-Z0-9_]+ is not set in \S+|the kernel refused the probe load/;

/** The first meaningful line of a failure message. */
function firstLine(text) {
  return (
    String(text)
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? ''
  );
}

/**
 * Classify every test of a vitest JSON report: `{ packages: { [pkg]: { passed, failed,
 * unsupported, skipped } }, tests: [{ pkg, name, outcome, reason }] }`. A file that failed to
 * load counts as one failed test named after the file.
 */
const HOST_ONLY_MARK = /^\/\/ vmtest: host only: (.+)$/m;

/**
 * Test files marked `// vmtest: host only: <why>` in their first 30 lines, as `{ file, why }`
 * with paths relative to `root`: nothing kernel-specific rests on them, so guests skip them.
 */
export function hostOnlyFiles(root) {
  const out = [];
  const dirs = [
    ...readdirSync(join(root, 'packages')).map((p) => join('packages', p, 'test')),
    join('tools', 'test'),
  ];
  for (const dir of dirs) {
    let names;
    try {
      names = readdirSync(join(root, dir));
    } catch {
      continue;
    }
    for (const name of names.filter((n) => n.endsWith('.test.ts')).sort()) {
      const head = readFileSync(join(root, dir, name), 'utf8')
        .split('\n')
        .slice(0, 30)
        .join('\n');
      const m = HOST_ONLY_MARK.exec(head);
      if (m) out.push({ file: join(dir, name), why: m[1].trim() });
    }
  }
  return out;
}

/** vitest arguments that leave the host-only files out (absolute paths: projects match their own roots). */
export function hostOnlyExcludes(root) {
  return hostOnlyFiles(root).flatMap((h) => ['--exclude', join(root, h.file)]);
}

export function classify(report, root) {
  const packages = {};
  const tests = [];
  const files = [];
  const add = (pkg, name, outcome, reason) => {
    packages[pkg] ??= { passed: 0, failed: 0, unsupported: 0, skipped: 0 };
    packages[pkg][outcome]++;
    tests.push({ pkg, name, outcome, reason });
  };
  for (const file of report.testResults ?? []) {
    const pkg = packageOf(file.name, root);
    if (file.startTime && file.endTime)
      files.push({ file: relative(root, file.name), seconds: (file.endTime - file.startTime) / 1000 });
    if (!file.assertionResults?.length && file.status === 'failed') {
      add(pkg, relative(root, file.name), 'failed', firstLine(file.message));
      continue;
    }
    for (const t of file.assertionResults ?? []) {
      const name = t.fullName || [...(t.ancestorTitles ?? []), t.title].join(' > ');
      const messages = (t.failureMessages ?? []).join('\n');
      if (t.status === 'passed') add(pkg, name, 'passed');
      else if (t.status === 'failed') {
        const ns = messages.match(NOT_SUPPORTED);
        if (ns) add(pkg, name, 'unsupported', ns[1].trim());
        else add(pkg, name, 'failed', firstLine(messages));
      } else if (t.meta?.unsupported) add(pkg, name, 'unsupported', String(t.meta.unsupported));
      else add(pkg, name, 'skipped', 'skipped without a NotSupportedError: a silent skip');
    }
  }
  files.sort((a, b) => b.seconds - a.seconds);
  return { packages, tests, files };
}

/** A leg that produced no report: the whole kernel failed (hang, panic, boot failure). */
export function brokenLeg(reason) {
  return { broken: reason, packages: {}, tests: [] };
}

const key = (t) => `${t.pkg}\0${t.name}`;

/** The legs each test passed on: `Map<pkg\0name, leg names>`. */
export function passedOn(legs) {
  const out = new Map();
  for (const l of legs)
    for (const t of l.result.tests.filter((t) => t.outcome === 'passed')) {
      if (!out.has(key(t))) out.set(key(t), []);
      out.get(key(t)).push(l.name);
    }
  return out;
}

/** The legs where the test `t` passed. */
const elsewhere = (passes, t) => passes.get(key(t)) ?? [];

/** One cell of the matrix; `instead` are the legs where this cell's unsupported tests passed. */
export function cell(r, instead = []) {
  if (!r) return '—';
  const parts = [`${r.passed} passed`];
  if (r.failed) parts.push(`${r.failed} failed`);
  if (r.unsupported)
    parts.push(`${r.unsupported} unsupported${instead.length ? ` (pass on ${instead.join(', ')})` : ''}`);
  if (r.skipped) parts.push(`${r.skipped} skipped`);
  return parts.join(', ');
}

/** The matrix as rows: `[pkg, ...cells]`, one column per leg, in leg order. */
export function matrixRows(legs) {
  const pkgs = [...new Set(legs.flatMap((l) => Object.keys(l.result.packages)))].sort();
  const passes = passedOn(legs);
  const instead = (l, p) => [
    ...new Set(
      l.result.tests
        .filter((t) => t.pkg === p && t.outcome === 'unsupported')
        .flatMap((t) => elsewhere(passes, t)),
    ),
  ];
  return pkgs.map((p) => [
    p,
    ...legs.map((l) => (l.result.broken ? 'not run' : cell(l.result.packages[p], instead(l, p)))),
  ]);
}

/**
 * Unsupported features per leg: `{ [leg]: { [reason]: [test names] } }`, each name followed by
 * where the test passed instead (`maps: batch → passes on 6.12, host`).
 */
export function unsupportedByLeg(legs) {
  const out = {};
  const passes = passedOn(legs);
  for (const l of legs) {
    for (const t of l.result.tests.filter((t) => t.outcome === 'unsupported')) {
      const where = elsewhere(passes, t);
      out[l.name] ??= {};
      out[l.name][t.reason] ??= [];
      out[l.name][t.reason].push(
        `${t.pkg}: ${t.name} → ${where.length ? `passes on ${where.join(', ')}` : 'passes on no leg of this run'}`,
      );
    }
  }
  return out;
}

/**
 * Whether the run is good: nothing broken, no failures, no silent skips, every unsupported test
 * passing on another leg of this run, and the host unsupported only where its reason shows that
 * the host lacks the feature. Legs not in `legs` vouch for nothing: a test only the host passes
 * needs the host leg in the run (the README's command runs host and 6.1).
 */
export function verdict(legs) {
  const problems = [];
  const passes = passedOn(legs);
  const ran = legs.filter((l) => !l.result.broken).map((l) => l.name);
  for (const l of legs) {
    if (l.result.broken) problems.push(`${l.name}: ${l.result.broken}`);
    // a leg that ran nothing (a filter that matched no file, a report with no tests) proves nothing
    else if (l.result.tests.length === 0) problems.push(`${l.name}: the leg ran no test`);
    for (const t of l.result.tests) {
      if (t.outcome === 'failed' || t.outcome === 'skipped')
        problems.push(`${l.name}: ${t.pkg}: ${t.name} — ${t.reason}`);
      if (t.outcome !== 'unsupported') continue;
      if (l.name === 'host' && !DEMONSTRATED.test(t.reason))
        problems.push(
          `host: ${t.pkg}: ${t.name} — unsupported on the host without showing that the host lacks it (a config option absent, or the probe load refused): ${t.reason}`,
        );
      if (!elsewhere(passes, t).length)
        problems.push(
          `${l.name}: ${t.pkg}: ${t.name} — unsupported here and passed on no leg of this run (${ran.join(', ')}): ${t.reason}`,
        );
    }
  }
  return problems;
}

/** The matrix as a Markdown table (for the root README). */
export function markdown(legs) {
  const head = ['package', ...legs.map((l) => l.title)];
  const rows = matrixRows(legs);
  const line = (cells) => `| ${cells.join(' | ')} |`;
  const out = [line(head), line(head.map(() => '---')), ...rows.map(line)];
  const un = unsupportedByLeg(legs);
  for (const l of legs) {
    const reasons = Object.entries(un[l.name] ?? {});
    if (!reasons.length) continue;
    out.push('', `Unsupported on ${l.title}:`, '');
    for (const [reason, names] of reasons) {
      const where = [...new Set(names.map((n) => n.slice(n.lastIndexOf(' → ') + 3)))].join('; ');
      out.push(`- ${reason} (${names.length} test${names.length > 1 ? 's' : ''}; ${where})`);
    }
  }
  return out.join('\n');
}
