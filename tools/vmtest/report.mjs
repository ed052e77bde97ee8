// Turns vitest's JSON report into per-package results and prints the kernel × package matrix.
// A test that fails with a NotSupportedError on a kernel counts as "unsupported" there, with the
// feature the error names: the one kind of skip the matrix allows.
import { relative } from 'node:path';

/** The package a test file belongs to: `packages/<dir>/...` → dir, `tools/...` → tools. */
export function packageOf(file, root) {
  const rel = relative(root, file).split('/');
  return rel[0] === 'packages' ? rel[1] : rel[0];
}

const NOT_SUPPORTED = /NotSupportedError: (.*)/;

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
export function classify(report, root) {
  const packages = {};
  const tests = [];
  const add = (pkg, name, outcome, reason) => {
    packages[pkg] ??= { passed: 0, failed: 0, unsupported: 0, skipped: 0 };
    packages[pkg][outcome]++;
    tests.push({ pkg, name, outcome, reason });
  };
  for (const file of report.testResults ?? []) {
    const pkg = packageOf(file.name, root);
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
      } else add(pkg, name, 'skipped', 'skipped without a NotSupportedError: a silent skip');
    }
  }
  return { packages, tests };
}

/** A leg that produced no report: the whole kernel failed (hang, panic, boot failure). */
export function brokenLeg(reason) {
  return { broken: reason, packages: {}, tests: [] };
}

/** One cell of the matrix. */
export function cell(r) {
  if (!r) return '—';
  const parts = [`${r.passed} passed`];
  if (r.failed) parts.push(`${r.failed} failed`);
  if (r.unsupported) parts.push(`${r.unsupported} unsupported`);
  if (r.skipped) parts.push(`${r.skipped} skipped`);
  return parts.join(', ');
}

/** The matrix as rows: `[pkg, ...cells]`, one column per leg, in leg order. */
export function matrixRows(legs) {
  const pkgs = [...new Set(legs.flatMap((l) => Object.keys(l.result.packages)))].sort();
  return pkgs.map((p) => [p, ...legs.map((l) => (l.result.broken ? 'not run' : cell(l.result.packages[p])))]);
}

/** Unsupported features per leg: `{ [leg]: { [reason]: [test names] } }`. */
export function unsupportedByLeg(legs) {
  const out = {};
  for (const l of legs) {
    for (const t of l.result.tests.filter((t) => t.outcome === 'unsupported')) {
      out[l.name] ??= {};
      out[l.name][t.reason] ??= [];
      out[l.name][t.reason].push(`${t.pkg}: ${t.name}`);
    }
  }
  return out;
}

/** Whether the run is good: no failures, no silent skips, nothing broken, and the host unsupported-free. */
export function verdict(legs) {
  const problems = [];
  for (const l of legs) {
    if (l.result.broken) problems.push(`${l.name}: ${l.result.broken}`);
    for (const t of l.result.tests) {
      if (t.outcome === 'failed' || t.outcome === 'skipped')
        problems.push(`${l.name}: ${t.pkg}: ${t.name} — ${t.reason}`);
      if (t.outcome === 'unsupported' && l.name === 'host')
        problems.push(`host: ${t.pkg}: ${t.name} — unsupported on the host itself: ${t.reason}`);
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
    for (const [reason, names] of reasons)
      out.push(`- ${reason} (${names.length} test${names.length > 1 ? 's' : ''})`);
  }
  return out.join('\n');
}
