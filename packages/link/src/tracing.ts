// BTF-typed tracing programs (tp_btf, fentry, fexit, fmod_ret, lsm): attached at the target they
// were loaded for.
import type { Program } from '@bpfkit/loader';
import { linkCreate, rawTracepointOpen } from '@bpfkit/sys';
import { Link, linkOrLegacy } from './link.js';

/**
 * Attach a BTF-typed tracing program (`tp_btf`, `fentry`, `fexit`, `fmod_ret`, `lsm`) at the
 * target it was loaded for: BPF_LINK_CREATE, falling back to BPF_RAW_TRACEPOINT_OPEN on kernels
 * without tracing links.
 */
export function attachTracing(program: Program, opts: { cookie?: bigint } = {}): Link {
  const attachType = program.attachType;
  if (attachType === undefined)
    throw new TypeError('attachTracing needs a program loaded with an attachType');
  return linkOrLegacy(
    'auto',
    () =>
      new Link(
        linkCreate({
          progFd: program.fd.value,
          attachType,
          'tracing.cookie': opts.cookie ?? 0n,
        } as Parameters<typeof linkCreate>[0]),
      ),
    () => {
      if (opts.cookie) throw new TypeError('a tracing cookie needs BPF_LINK_CREATE');
      return new Link(rawTracepointOpen({ name: 0n, progFd: program.fd.value }, 'tracing program'));
    },
  );
}
