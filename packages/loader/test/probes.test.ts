// Program-type and helper probes against the running kernel.
import { haveHelper, haveProgType, requireHelper, requireProgType } from '@bpfkit/loader';
import { BpfError, Helper, NotSupportedError } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

describe('program type and helper probes', () => {
  it('answers for program types and helpers', () => {
    for (const t of [
      'socket_filter',
      'xdp',
      'cgroup_skb',
      'cgroup_sock_addr',
      'cgroup_sockopt',
      'raw_tracepoint',
      'tracepoint',
    ] as const)
      expect(haveProgType(t), t).toBe(true);
    expect(haveHelper('socket_filter', Helper.map_lookup_elem)).toBe(true);
    expect(haveHelper('socket_filter', Helper.override_return)).toBe(false);
    expect(() => requireHelper('socket_filter', Helper.override_return, 'bpf_override_return')).toThrow(
      NotSupportedError,
    );
    expect(() => requireProgType('xdp')).not.toThrow();
  });

  it('names the feature and the first kernel that has it when missing', () => {
    let err: unknown;
    try {
      requireHelper('xdp', 9999, 'helper 9999');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NotSupportedError);
    expect((err as Error).message).toMatch(
      /^helper 9999 for program type xdp is not supported by this kernel \(Linux /,
    );
    // lirc_mode2 needs CONFIG_BPF_LIRC_MODE2, which this kernel lacks
    const lirc = readConfig().includes('CONFIG_BPF_LIRC_MODE2=y');
    expect(haveProgType('lirc_mode2')).toBe(lirc);
    if (!lirc)
      expect(() => requireProgType('lirc_mode2')).toThrow(
        /program type lirc_mode2 .* first appeared in Linux 4\.18/,
      );
  });

  it('lets EPERM through instead of answering "unsupported"', () => {
    // Linux 6.18 knows tracing programs: a sandbox may refuse them (EPERM), but never "unsupported".
    try {
      expect(haveProgType('tracing')).toBe(true);
    } catch (e) {
      expect(e).toBeInstanceOf(BpfError);
      expect((e as BpfError).code).toBe('EPERM');
    }
  });
});

import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';

/** The running kernel's config: /proc/config.gz, or /boot/config-<release> as distributions ship it. */
function readConfig(): string {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString();
  } catch {
    return readFileSync(`/boot/config-${release()}`, 'utf8');
  }
}
