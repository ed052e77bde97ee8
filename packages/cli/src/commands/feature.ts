import { CAPABILITIES, effectiveCapabilities } from '@bpfkit/link';
import { haveHelper, haveProgType } from '@bpfkit/loader';
import { haveMapType } from '@bpfkit/maps';
import { AttachType, Helper, MapType, ProgType } from '@bpfkit/sys';
import { type OutputOptions, printRows } from '../output.js';
import { CliError } from './objects.js';

const NEEDS_PRIVILEGES =
  'feature needs privileges: run it as root or with CAP_BPF (or CAP_SYS_ADMIN); without them every probe is refused';

const lower = (o: Record<string, number>) =>
  Object.keys(o)
    .map((k) => k.toLowerCase())
    .filter((k) => k !== 'unspec' && !k.endsWith('_deprecated'));

function probe(fn: () => boolean): boolean | string {
  try {
    return fn();
  } catch (e) {
    return (e as { code?: string }).code ?? 'error';
  }
}

/** What this kernel supports: map types, program types, attach types (from its ABI), and helpers per program type. */
export function feature(opts: OutputOptions & { helpers?: string | boolean; progress?: boolean }): void {
  const caps = effectiveCapabilities();
  if (!((caps >> BigInt(CAPABILITIES.CAP_BPF)) & 1n) && !((caps >> BigInt(CAPABILITIES.CAP_SYS_ADMIN)) & 1n))
    throw new CliError(NEEDS_PRIVILEGES);
  const maps = lower(MapType).map((t) => ({
    kind: 'map_type',
    name: t,
    supported: probe(() => haveMapType(t as never)),
  }));
  // the capabilities are there but something else refuses bpf(2) (a seccomp or LSM sandbox)
  if (maps.every((m) => m.supported === 'EPERM')) throw new CliError(NEEDS_PRIVILEGES);
  const progs = lower(ProgType).map((t) => ({
    kind: 'prog_type',
    name: t,
    supported: probe(() => haveProgType(t as never)),
  }));
  // Attach types cannot be probed without a target of each kind: list what this kernel's ABI defines.
  const attach = lower(AttachType).map((t) => ({ kind: 'attach_type', name: t, supported: 'defined' }));
  const rows: Record<string, unknown>[] = [...maps, ...progs, ...attach];
  if (opts.helpers) {
    const types =
      typeof opts.helpers === 'string'
        ? [opts.helpers]
        : progs.filter((p) => p.supported === true).map((p) => p.name);
    const helpers = Object.keys(Helper).filter((h) => h !== 'unspec');
    types.forEach((t, i) => {
      if (opts.progress)
        process.stderr.write(`\rprobing helpers for ${t} (${i + 1}/${types.length})        `);
      const ok = helpers.filter(
        (h) => probe(() => haveHelper(t as never, Helper[h as keyof typeof Helper])) === true,
      );
      rows.push({
        kind: 'helpers',
        name: t,
        supported: `${ok.length}/${helpers.length}`,
        list: ok.map((h) => `bpf_${h}`),
      });
    });
    if (opts.progress) process.stderr.write('\n');
  }
  if (opts.json) printRows(rows, opts);
  else
    printRows(
      rows.map(({ list: _l, ...r }) => r),
      opts,
      ['kind', 'name', 'supported'],
    );
}
