// Attach by section name: every program of a loaded collection whose SEC() says where it goes
// (tracepoint/, raw_tp/, tp_btf/, fentry/, fexit/, fmod_ret/, lsm/, kprobe/, kretprobe/,
// ksyscall/, kprobe.multi/, uprobe/PATH:FUNC, uprobe.multi/PATH:PATTERN, usdt/PATH:PROVIDER:NAME, iter/,
// freplace) is attached the way libbpf's
// auto-attach does; the rest are reported with the reason they were left alone. It lives here,
// not in the loader, because the loader cannot know how programs attach.
import { type Collection, type Program, programForSection } from '@bpfkit/loader';
import { attachIter } from './iter.js';
import { attachKprobe, attachKsyscall } from './kprobe.js';
import { attachKprobeMulti, attachKprobeSession } from './kprobe-multi.js';
import { type Attachment, Link } from './link.js';
import { attachTracepoint, attachUprobe } from './perf-event.js';
import { attachRawTracepoint } from './raw-tracepoint.js';
import { StructOps } from './struct-ops.js';
import { attachFreplace, attachTracing } from './tracing.js';
import { attachUprobeMulti, attachUprobeSession } from './uprobe-multi.js';
import { attachUsdt } from './usdt.js';

/** How one section attaches, or why it is left alone. */
type Plan = { attach: (p: Program) => Attachment } | { skip: string };

/** The section's prefix (before the first `/`, `?` dropped) and its target. */
function split(section: string): { kind: string; target: string | undefined } {
  const s = section.startsWith('?') ? section.slice(1) : section;
  const slash = s.indexOf('/');
  return slash < 0 ? { kind: s, target: undefined } : { kind: s.slice(0, slash), target: s.slice(slash + 1) };
}

const NEEDS: [RegExp, string][] = [
  [/^(cgroup|cgroup_skb|sockops|lsm_cgroup)$/, 'needs a cgroup (attachCgroup)'],
  [
    /^(xdp|xdp\.frags|tc|tcx|classifier|action|netkit)$/,
    'needs a network interface (attachXdp, attachTc, attachNetkit)',
  ],
  [/^socket$/, 'needs a socket (attachSocketFilter)'],
  [/^(sk_skb|sk_msg)$/, 'needs a sockmap or sockhash'],
  [/^(sk_lookup|flow_dissector)$/, 'needs a network namespace'],
  [/^(struct_ops|struct_ops\.s)$/, 'attaches through its struct_ops map'],
  [/^perf_event$/, 'needs a perf event (attachPerfEvent)'],
  [/^syscall$/, 'runs through testRun, not attached'],
  [
    /^(sk_reuseport|lwt_in|lwt_out|lwt_xmit|lwt_seg6local|lirc_mode2|netfilter)$/,
    'needs a target a section cannot name',
  ],
];

/** `func+0x10` / `func+16` → [func, 16]. */
function symbolAndOffset(target: string): [string, number] {
  const m = /^([\w.]+)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(target);
  if (!m) throw new TypeError(`bad kprobe target '${target}' (function or function+offset)`);
  return [m[1]!, m[2] ? Number(m[2]) : 0];
}

function plan(section: string, collection: Collection): Plan {
  const { kind, target } = split(section);
  if (!programForSection(section)) return { skip: 'its section names no program type' };
  const none = (what: string): Plan => ({ skip: `its section names no ${what}` });
  switch (kind) {
    case 'tracepoint':
    case 'tp': {
      const slash = target?.indexOf('/') ?? -1;
      if (!target || slash < 0) return none('tracepoint (tracepoint/<category>/<name>)');
      return { attach: (p) => attachTracepoint(p, target.slice(0, slash), target.slice(slash + 1)) };
    }
    case 'raw_tp':
    case 'raw_tracepoint':
    case 'raw_tp.w':
    case 'raw_tracepoint.w':
      return target ? { attach: (p) => attachRawTracepoint(p, target) } : none('tracepoint');
    case 'tp_btf':
    case 'fentry':
    case 'fexit':
    case 'fmod_ret':
    case 'fentry.s':
    case 'fexit.s':
    case 'fmod_ret.s':
    case 'lsm':
    case 'lsm.s':
      return { attach: (p) => attachTracing(p) }; // the target was resolved at load
    case 'freplace':
      return { attach: (p) => attachFreplace(p) };
    case 'iter':
    case 'iter.s':
      return { attach: (p) => attachIter(p) };
    case 'kprobe':
    case 'kretprobe': {
      if (!target) return none('function (kprobe/<function>[+offset])');
      const [fn, offset] = symbolAndOffset(target);
      return { attach: (p) => attachKprobe(p, fn, { offset, retprobe: kind === 'kretprobe' }) };
    }
    case 'ksyscall':
    case 'kretsyscall':
      return target
        ? { attach: (p) => attachKsyscall(p, target, { retprobe: kind === 'kretsyscall' }) }
        : none('syscall');
    case 'kprobe.multi':
    case 'kretprobe.multi':
      return target
        ? { attach: (p) => attachKprobeMulti(p, { pattern: target, retprobe: kind === 'kretprobe.multi' }) }
        : none('function pattern');
    case 'kprobe.session':
      return target
        ? { attach: (p) => attachKprobeSession(p, { pattern: target }) }
        : none('function pattern');
    case 'uprobe':
    case 'uretprobe':
    case 'uprobe.s':
    case 'uretprobe.s': {
      // uprobe/PATH:FUNC[+offset], PATH absolute (libbpf's form)
      const m = target ? /^(\/[^:]+):([\w.]+)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(target) : null;
      if (!m) return none('binary and function (uprobe/<absolute path>:<function>)');
      const retprobe = kind.startsWith('uretprobe');
      return {
        attach: (p) => attachUprobe(p, m[1]!, m[2], { retprobe, ...(m[3] ? { offset: Number(m[3]) } : {}) }),
      };
    }
    case 'uprobe.multi':
    case 'uretprobe.multi':
    case 'uprobe.session':
    case 'uprobe.multi.s':
    case 'uretprobe.multi.s':
    case 'uprobe.session.s': {
      // uprobe.multi/PATH:PATTERN (libbpf's form; PATH may also be a program or library name)
      const m = target ? /^([^:]+):(.+)$/.exec(target) : null;
      if (!m) return none('binary and function pattern (uprobe.multi/<path>:<pattern>)');
      const opts = { binary: m[1]!, pattern: m[2]! };
      if (kind.startsWith('uprobe.session')) return { attach: (p) => attachUprobeSession(p, opts) };
      const retprobe = kind.startsWith('uretprobe');
      return { attach: (p) => attachUprobeMulti(p, { ...opts, retprobe }) };
    }
    case 'usdt':
    case 'usdt.s': {
      // usdt/PATH:PROVIDER:NAME (libbpf's form; PATH may also be a program or library name)
      const m = target ? /^([^:]+):([\w.]+):([\w.]+)$/.exec(target) : null;
      if (!m) return none('binary, provider and probe (usdt/<path>:<provider>:<name>)');
      return { attach: (p) => attachUsdt(p, m[1]!, m[2]!, m[3]!, { collection }) };
    }
    default: {
      const need = NEEDS.find(([re]) => re.test(kind));
      return { skip: need ? need[1] : 'its section names no place to attach' };
    }
  }
}

/** Every program `attachCollection` attached, by name (and every struct_ops map it registered, by map name), and the ones it left alone, with why. */
export class AttachedCollection implements Attachment {
  readonly attached: Readonly<Record<string, Attachment>>;
  /** Program name → why it was not attached (`needs a cgroup (attachCgroup)`, ...). */
  readonly skipped: Readonly<Record<string, string>>;

  constructor(attached: Record<string, Attachment>, skipped: Record<string, string>) {
    this.attached = attached;
    this.skipped = skipped;
  }

  /** Detach every program (in reverse order of attaching), closing what holds it (a link's fd, a perf event). Idempotent. */
  detach(): void {
    let first: unknown;
    for (const a of Object.values(this.attached).reverse()) {
      try {
        // a bpf_link detaches by closing (BPF_LINK_DETACH is not every link type's)
        if (a instanceof Link) a.close();
        else a.detach();
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }

  close(): void {
    this.detach();
  }

  [Symbol.dispose](): void {
    this.detach();
  }
}

export interface AttachCollectionOptions {
  /** Only these programs (default: every loaded program). */
  programs?: readonly string[];
}

/**
 * Attach every loaded program of `collection` whose section says where; returns one disposable
 * group, with the programs left alone and why. A failure detaches what was attached and throws
 * the error, naming the program and its section.
 */
export function attachCollection(
  collection: Collection,
  opts: AttachCollectionOptions = {},
): AttachedCollection {
  const names = opts.programs ?? Object.keys(collection.programs);
  const attached: Record<string, Attachment> = {};
  const skipped: Record<string, string> = {};
  try {
    // struct_ops maps register as libbpf's skeleton attach does (bpf_map__attach_struct_ops)
    if (!opts.programs)
      for (const map of Object.keys(collection.structOps)) {
        try {
          attached[map] = StructOps.fromCollection(collection, map);
        } catch (e) {
          if (e instanceof Error) e.message = `struct_ops map '${map}': ${e.message}`;
          throw e;
        }
      }
    for (const name of names) {
      const program = collection.program(name);
      const section = collection.object.programs.get(name)?.section ?? '';
      const p = plan(section, collection);
      if ('skip' in p) {
        skipped[name] = `section '${section}' ${p.skip}`;
        continue;
      }
      try {
        attached[name] = p.attach(program);
      } catch (e) {
        if (e instanceof Error) e.message = `program '${name}' (section '${section}'): ${e.message}`;
        throw e;
      }
    }
  } catch (e) {
    new AttachedCollection(attached, skipped).detach();
    throw e;
  }
  return new AttachedCollection(attached, skipped);
}
