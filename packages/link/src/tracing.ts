// BTF-typed tracing programs (tp_btf, fentry, fexit, fmod_ret, lsm): attached at the target they
// were loaded for.
import { type Program, programFuncBtfId } from '@bpfkit/loader';
import { Fd, type HasFd, linkCreate, NotSupportedError, ProgType, rawTracepointOpen } from '@bpfkit/sys';
import { Link, linkOrLegacy } from './link.js';

/**
 * Attach a BTF-typed tracing program (`tp_btf`, `fentry`, `fexit`, `fmod_ret`, `lsm`) at the
 * target it was loaded for: BPF_LINK_CREATE, falling back to BPF_RAW_TRACEPOINT_OPEN on kernels
 * without tracing links.
 */
export function attachTracing(program: Program, opts: { cookie?: bigint } = {}): Link {
  if (program.type === ProgType.EXT) return attachFreplace(program);
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
      if (opts.cookie)
        throw new NotSupportedError('BPF cookies on tracing programs (fentry, fexit, fmod_ret, lsm)', '5.19');
      return new Link(rawTracepointOpen({ name: 0n, progFd: program.fd.value }, 'tracing program'));
    },
  );
}

/**
 * Attach a `freplace` (ext) program: in place of the function it was loaded against (given
 * nothing), or of function `func` of another loaded program `target` whose BTF has a function of
 * the same prototype (BPF_LINK_CREATE with target_fd and target_btf_id).
 */
export function attachFreplace(program: Program, opts: { target?: HasFd | Fd; func?: string } = {}): Link {
  if (program.type !== ProgType.EXT) throw new TypeError('attachFreplace takes a freplace (ext) program');
  if ((opts.target === undefined) !== (opts.func === undefined))
    throw new TypeError('attachFreplace takes both target and func, or neither (the load-time target)');
  let targetFd = 0;
  let targetBtfId = 0;
  if (opts.target && opts.func) {
    const r = programFuncBtfId(opts.target, opts.func);
    if ('reason' in r) throw new TypeError(`freplace target '${opts.func}' ${r.reason}`);
    targetFd = (opts.target instanceof Fd ? opts.target : opts.target.fd).value;
    targetBtfId = r.id;
  }
  return new Link(
    linkCreate(
      { progFd: program.fd.value, targetFd, attachType: 0, targetBtfId } as Parameters<typeof linkCreate>[0],
      `freplace${opts.func ? ` ${opts.func}` : ''}`,
    ),
  );
}
