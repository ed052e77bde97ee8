// The config file: every error names the field and its line; builtins and relative objects resolve.
import { describe, expect, it } from 'vitest';
import { BUILTINS, builtinProgram, ConfigError, parseConfig } from '../src/index.js';

function problems(text: string) {
  try {
    parseConfig(text, '/etc/bpfkit/exporter.yaml');
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => `${p.line} ${p.field}: ${p.message}`);
  }
  throw new Error('the config was accepted');
}

describe('config', () => {
  it('resolves builtins and objects beside the file', () => {
    const progs = parseConfig(
      `programs:
  - name: sys
    builtin: syscalls
  - name: mine
    object: objs/mine.bpf.o
    attach: [{ program: p, tracepoint: sched/sched_switch }]
    metrics:
      - { name: mine_total, help: Mine., type: counter, map: counts }
`,
      '/etc/bpfkit/exporter.yaml',
    );
    expect(progs.map((p) => p.name)).toEqual(['sys', 'mine']);
    expect(progs[0]!.object).toMatch(/bpf\/syscalls\.bpf\.o$/);
    expect(progs[0]!.metrics[0]!.name).toBe('bpfkit_syscalls_total');
    expect(progs[1]!.object).toBe('/etc/bpfkit/objs/mine.bpf.o');
    expect(progs[1]!.metrics[0]!.maxSeries).toBe(10_000);
  });

  it('every builtin has a valid config', () => {
    for (const b of BUILTINS) expect(builtinProgram(b).metrics.length).toBeGreaterThan(0);
  });

  it('names the line and field of each error', () => {
    const text = `programs:
  - name: mine
    object: mine.bpf.o
    attach:
      - program: p
        tracepoint: not-a-tracepoint
    metrics:
      - name: mine_total
        help: Mine.
        type: summary
        map: counts
        labels:
          - { name: le, field: x }
      - name: lat
        help: Latency.
        type: histogram
        map: lat
        colour: blue
`;
    expect(problems(text)).toEqual([
      '6 programs[0].attach[0].tracepoint: must be category/name',
      expect.stringMatching(/^10 programs\[0\]\.metrics\[0\]\.type: .*counter.*gauge.*histogram/),
      '13 programs[0].metrics[0].labels[0].name: is reserved (le, or starts with __)',
      '14 programs[0].metrics[1].bucket: a histogram needs bucket: { field, kind, max }',
      "18 programs[0].metrics[1].colour: unknown field 'colour'",
    ]);
  });

  it('points a missing field at its parent, and a semantic error at the field', () => {
    const text = `programs:
  - name: a
    builtin: execs
  - name: a
    object: x.bpf.o
    metrics:
      - { name: h, help: H., type: histogram, map: m }
`;
    expect(problems(text)).toEqual([
      '4 programs[1].attach: an object needs attach',
      "4 programs[1].name: program 'a' is listed twice",
      '7 programs[1].metrics[0].bucket: a histogram needs bucket: { field, kind, max }',
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const p = problems('programs:\n  - name: a\n   builtin: [execs\n');
    expect(p.length).toBeGreaterThan(0);
    expect(p[0]).toMatch(/^[23] : /);
  });

  it('says which builtin names exist', () => {
    expect(problems('programs:\n  - { name: a, builtin: nope }\n')[0]).toMatch(
      /^2 programs\[0\]\.builtin: .*syscalls.*tcpretrans/,
    );
  });

  it('the error message lists file:line: field', () => {
    try {
      parseConfig('programs: []\n', '/tmp/x.yaml');
    } catch (e) {
      expect(String((e as Error).message)).toContain('/tmp/x.yaml:1: programs:');
      return;
    }
    throw new Error('accepted');
  });
});
