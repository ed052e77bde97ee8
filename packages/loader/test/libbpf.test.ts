// The same object loaded by bpfkit and by libbpf (bpftool prog loadall, libbpf inside) reaches the
// kernel as the same programs: for each program, the instructions the verifier kept (xlated, as
// the kernel dumps them) are byte for byte equal once the map ids in them are numbered by first
// use, and the maps they use have the same shapes.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { expectSamePrograms, viaBpfkit, viaBpftool } from './libbpf/compare.js';

afterAll(() => {
  // every bpffs this file mounted is gone again
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`bpfkit-fs-${process.pid}-`);
});

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

describe('bpfkit and libbpf load the same instructions', () => {
  for (const object of [
    'core_big.bpf.o',
    'core.bpf.o',
    '../../../cli/bpf/execsnoop.bpf.o',
    'externs.bpf.o',
    'externs_kfunc.bpf.o',
  ]) {
    it(`${object}: every program's xlated instructions and maps match libbpf's`, () => {
      expectSamePrograms(viaBpfkit(fixture(object)), viaBpftool(fixture(object)));
    });
  }

  it('core_big.bpf.o has the programs the benchmark counts on', () => {
    const progs = viaBpfkit(fixture('core_big.bpf.o'));
    expect(Object.fromEntries(Object.entries(progs).map(([n, v]) => [n, v.type]))).toEqual({
      on_exec: 'tracepoint',
      on_openat: 'tracepoint',
      count_syscalls: 'raw_tracepoint',
      sock_state: 'raw_tracepoint',
      on_switch: 'raw_tracepoint',
      keep_udp: 'socket_filter',
    });
    expect(
      progs
        .on_exec!.maps.concat(progs.on_exec!.unreferenced)
        .map((m) => m.type)
        .sort(),
    ).toEqual(['array', 'array', 'percpu_array', 'ringbuf']);
  });
});
