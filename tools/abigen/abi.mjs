import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { Btf } from '@bpfkit/btf';
import { uapiInclude } from './uapi.mjs';

/** Enums taken whole from BTF: [TS name, C enum name, prefix to strip]. */
const NAMED_ENUMS = [
  ['BpfCmd', 'bpf_cmd', 'BPF_'],
  ['MapType', 'bpf_map_type', 'BPF_MAP_TYPE_'],
  ['ProgType', 'bpf_prog_type', 'BPF_PROG_TYPE_'],
  ['AttachType', 'bpf_attach_type', 'BPF_'],
  ['LinkType', 'bpf_link_type', 'BPF_LINK_TYPE_'],
  ['Helper', 'bpf_func_id', 'BPF_FUNC_'],
  ['StatsType', 'bpf_stats_type', 'BPF_STATS_'],
  ['PerfType', 'perf_type_id', 'PERF_TYPE_'],
  ['PerfSwId', 'perf_sw_ids', 'PERF_COUNT_SW_'],
  ['PerfHwId', 'perf_hw_id', 'PERF_COUNT_HW_'],
  ['PerfSampleFormat', 'perf_event_sample_format', 'PERF_SAMPLE_'],
  ['PerfRecordType', 'perf_event_type', 'PERF_RECORD_'],
  ['XdpAction', 'xdp_action', 'XDP_'],
  ['CgroupIterOrder', 'bpf_cgroup_iter_order', 'BPF_CGROUP_ITER_'],
  ['NlmsgerrAttr', 'nlmsgerr_attrs', 'NLMSGERR_ATTR_'],
  ['TcxAction', 'tcx_action_base', 'TCX_'],
  ['NfInetHook', 'nf_inet_hooks', 'NF_INET_'],
  ['NfIpPriority', 'nf_ip_hook_priorities', 'NF_IP_PRI_'],
];

/** Anonymous enums from BTF, found by one of their enumerators: [TS name, enumerator, prefix]. */
const ANON_ENUMS = [
  ['UpdateFlags', 'BPF_ANY', 'BPF_'],
  ['MapFlags', 'BPF_F_NO_PREALLOC', 'BPF_F_'],
  ['RingbufFlags', 'BPF_RB_NO_WAKEUP', 'BPF_RB_'],
  ['RingbufQuery', 'BPF_RB_AVAIL_DATA', 'BPF_RB_'],
  ['RingbufHeader', 'BPF_RINGBUF_BUSY_BIT', 'BPF_RINGBUF_'],
  ['PerfEventOutputFlags', 'BPF_F_INDEX_MASK', 'BPF_F_'],
  ['UprobeMultiFlags', 'BPF_F_UPROBE_MULTI_RETURN', 'BPF_F_'],
  ['XdpAttached', 'XDP_ATTACHED_NONE', 'XDP_ATTACHED_'],
  ['Rtm', 'RTM_SETLINK', 'RTM_'],
  ['Ifla', 'IFLA_XDP', 'IFLA_'],
  ['IflaXdp', 'IFLA_XDP_FD', 'IFLA_XDP_'],
  ['IflaInfo', 'IFLA_INFO_KIND', 'IFLA_INFO_'],
  ['Tca', 'TCA_KIND', 'TCA_'],
  ['TcaBpf', 'TCA_BPF_FD', 'TCA_BPF_'],
  ['Nfproto', 'NFPROTO_IPV4', 'NFPROTO_'],
];

/**
 * Enums the running kernel's BTF may lack (a driver it was built without: the host has no netkit),
 * read from the newer uapi headers: [TS name, file, enum name or one of its enumerators, prefix].
 */
const UAPI_ENUMS = [
  ['NetkitAction', 'linux/if_link.h', 'netkit_action', 'NETKIT_'],
  ['NetkitMode', 'linux/if_link.h', 'netkit_mode', 'NETKIT_'],
  ['IflaNetkit', 'linux/if_link.h', 'IFLA_NETKIT_PEER_INFO', 'IFLA_NETKIT_'],
];

/** `union bpf_attr` members that are anonymous structs, named by their first field. */
const ANON_ATTR = {
  map_type: 'mapCreate',
  map_fd: 'mapElem',
  prog_type: 'progLoad',
  pathname: 'obj',
  target_fd: 'progAttach',
  start_id: 'getId',
  btf: 'btfLoad',
};

/** Structs (and unions) whose layout is emitted: [TS name, C struct, BTF kind when not 'struct']. */
const STRUCTS = [
  ['mapInfo', 'bpf_map_info'],
  ['progInfo', 'bpf_prog_info'],
  ['linkInfo', 'bpf_link_info'],
  ['btfInfo', 'bpf_btf_info'],
  ['perfEventAttr', 'perf_event_attr'],
  ['perfEventMmapPage', 'perf_event_mmap_page'],
  ['perfEventHeader', 'perf_event_header'],
  ['nlmsghdr', 'nlmsghdr'],
  ['nlmsgerr', 'nlmsgerr'],
  ['nlattr', 'nlattr'],
  ['ifinfomsg', 'ifinfomsg'],
  ['iterLinkInfo', 'bpf_iter_link_info', 'union'],
  ['tcmsg', 'tcmsg'],
];

const uapi = (file) => join(uapiInclude(), file);

/** `#define` constants read from the uapi headers: [file, name pattern]. */
const DEFINES = [
  ['/usr/include/linux/bpf_common.h', /^BPF_/],
  ['uapi:linux/bpf.h', /^(BPF_|XDP_PACKET_HEADROOM)/],
  ['/usr/include/linux/bpf.h', /^(BPF_|XDP_PACKET_HEADROOM)/], // what the newer file made an enum
  ['uapi:linux/pkt_cls.h', /^TCA_BPF_FLAG_/],
  ['uapi:linux/pkt_sched.h', /^TC_H_/],
  ['/usr/include/linux/perf_event.h', /^PERF_(EVENT_IOC_|FLAG_|IOC_)/],
  ['/usr/include/linux/if_link.h', /^XDP_FLAGS_/],
  ['/usr/include/linux/if_ether.h', /^ETH_P_(ALL|IP|IPV6)$/],
  ['/usr/include/linux/netlink.h', /^(NETLINK_|NLM_F_|NLMSG_|NLA_F_|NLA_TYPE_MASK)/],
];

const literal = (v) => {
  const n = BigInt(v);
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) return `${n}n`;
  return String(n);
};

function enumBlock(tsName, values, prefix, doc) {
  const lines = [`/** ${doc} */`, `export const ${tsName} = {`];
  for (const v of values) {
    if (!v.name.startsWith(prefix) || v.name.startsWith('__')) continue;
    const key = v.name.slice(prefix.length);
    if (key === 'MAX' || key.startsWith('MAX_')) continue;
    lines.push(`  ${/^[0-9]/.test(key) ? `'${key}'` : key}: ${literal(v.value)},`);
  }
  lines.push('} as const;', `export type ${tsName} = (typeof ${tsName})[keyof typeof ${tsName}];`, '');
  return lines.join('\n');
}

function layoutBlock(fields) {
  const lines = [];
  for (const f of fields) {
    const v = f.bitSize
      ? `[${f.offset}, ${f.size}, ${f.bitOffset}, ${f.bitSize}]`
      : `[${f.offset}, ${f.size}]`;
    lines.push(`    ${/^[a-z_][a-z0-9_]*$/i.test(f.path) ? f.path : `'${f.path}'`}: ${v},`);
  }
  return lines;
}

/**
 * The fields of one layout that are not unsigned integers: 's' for a signed integer, 'c' for a
 * char array (a name). The attr writer range-checks every value against its field's kind.
 */
function kindBlock(btf, fields) {
  const lines = [];
  for (const f of fields) {
    const t = btf.resolve(f.type);
    let kind;
    if ((t.kind === 'int' || t.kind === 'enum' || t.kind === 'enum64') && t.signed) kind = 's';
    else if (t.kind === 'array' && btf.sizeof(t.type) === 1) kind = 'c';
    if (kind) lines.push(`    ${/^[a-z_][a-z0-9_]*$/i.test(f.path) ? f.path : `'${f.path}'`}: '${kind}',`);
  }
  return lines;
}

// A tiny evaluator for the integer expressions found in uapi #defines.
function evalDefine(expr, known) {
  const ioc = /^_IO(R|W|WR)?\s*\(\s*'(.)'\s*,\s*(\d+)\s*(?:,\s*([^)]+))?\)$/.exec(expr);
  if (ioc) {
    const dir = { undefined: 0, W: 1, R: 2, WR: 3 }[String(ioc[1])];
    const type = ioc[2].charCodeAt(0);
    const nr = Number(ioc[3]);
    const arg = (ioc[4] ?? '').trim();
    const size = arg === '' ? 0 : arg === '__u32' ? 4 : 8; // __u64 and every pointer are 8 bytes on 64-bit
    return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
  }
  const cleaned = expr
    .replace(/\/\*.*?\*\//g, '')
    .replace(/\b(0x[0-9a-f]+|\d+)U?L{0,2}\b/gi, '$1')
    .trim();
  if (!/^[\w\s()<>|+\-~x]+$/i.test(cleaned)) return undefined;
  const idents = cleaned.match(/\b[A-Za-z_]\w*\b/g) ?? [];
  for (const id of idents) if (!/^0x/i.test(id) && !known.has(id)) return undefined;
  const js = cleaned.replace(/\b[A-Za-z_]\w*\b/g, (id) => (/^0x/i.test(id) ? id : `(${known.get(id)})`));
  try {
    const value = Function(`"use strict"; return (${js});`)();
    return Number.isInteger(value) ? value >>> 0 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The enumerators of one enum in a uapi header, as BTF gives them ({ name, value }): the enum
 * named `key`, or the anonymous one holding an enumerator `key`. Values are literals, earlier
 * enumerators or the previous value plus one.
 */
export function headerEnum(text, key) {
  const clean = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  for (const m of clean.matchAll(/\benum\s*(\w*)\s*\{([^}]*)\}/g)) {
    const [, name, body] = m;
    const entries = body
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)
      .map((e) => /^(\w+)\s*(?:=\s*(.+))?$/.exec(e));
    if (entries.some((e) => !e)) continue;
    if (name !== key && !entries.some((e) => e[1] === key)) continue;
    const values = [];
    const known = new Map();
    let next = 0;
    for (const [, n, expr] of entries) {
      let v = next;
      if (expr !== undefined) {
        const x = expr.trim();
        if (known.has(x)) v = known.get(x);
        else if (/^-?(0x[0-9a-f]+|\d+)$/i.test(x)) v = x.startsWith('-') ? -Number(x.slice(1)) : Number(x);
        else throw new Error(`abigen: enum ${name || key}: cannot evaluate ${n} = ${x}`);
      }
      values.push({ name: n, value: v });
      known.set(n, v);
      next = v + 1;
    }
    return values;
  }
  throw new Error(`abigen: no enum ${key} in the header`);
}

function readDefines() {
  const known = new Map();
  for (const [file, pattern] of DEFINES) {
    const path = file.startsWith('uapi:') ? uapi(file.slice('uapi:'.length)) : file;
    const text = readFileSync(path, 'utf8').replace(/\\\n/g, ' ');
    for (const m of text.matchAll(/^#define\s+([A-Z_][A-Z0-9_]*)\s+(.+)$/gm)) {
      const [, name, raw] = m;
      if (!pattern.test(name)) continue;
      const v = evalDefine(raw.replace(/\/\*.*$/, '').trim(), known);
      if (v !== undefined && !known.has(name)) known.set(name, v);
    }
  }
  return [...known].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function generateAbi(btf = Btf.kernel()) {
  const out = [
    '// GENERATED by tools/abigen (pnpm gen) — do not edit.',
    `// Source: /sys/kernel/btf/vmlinux of Linux ${release()}, and the uapi headers`,
    '// linux/bpf_common.h, linux/perf_event.h, linux/if_link.h, linux/if_ether.h, linux/netlink.h, and',
    '// Debian linux-libc-dev (bookworm-backports): linux/bpf.h, linux/pkt_cls.h, linux/pkt_sched.h,',
    '// linux/if_link.h (netkit enums).',
    '/* biome-ignore-all format: generated */',
    '',
    `export const ABI_KERNEL_RELEASE = '${release()}';`,
    '',
  ];
  for (const [ts, c, prefix] of NAMED_ENUMS) {
    out.push(
      enumBlock(ts, btf.find(c, 'enum').values, prefix, `\`enum ${c}\`, prefix \`${prefix}\` removed.`),
    );
  }
  for (const [ts, member, prefix] of ANON_ENUMS) {
    const t = [...btf.types()].find(
      (x) => (x.kind === 'enum' || x.kind === 'enum64') && !x.name && x.values.some((v) => v.name === member),
    );
    if (!t) throw new Error(`abigen: no anonymous enum with ${member}`);
    out.push(
      enumBlock(
        ts,
        t.values,
        prefix,
        `The anonymous enum holding \`${member}\`, prefix \`${prefix}\` removed.`,
      ),
    );
  }

  for (const [ts, file, key, prefix] of UAPI_ENUMS) {
    const values = headerEnum(readFileSync(uapi(file), 'utf8'), key);
    const what = /^[a-z]/.test(key) ? `\`enum ${key}\`` : `The anonymous enum holding \`${key}\``;
    out.push(enumBlock(ts, values, prefix, `${what} (uapi ${file}), prefix \`${prefix}\` removed.`));
  }

  out.push('/** `#define` constants from the uapi headers, full C names. */', 'export const Defines = {');
  for (const [name, v] of readDefines()) out.push(`  ${name}: ${literal(v)},`);
  out.push('} as const;', '');

  // union bpf_attr, one layout per member (per command family).
  const attr = btf.find('bpf_attr', 'union');
  out.push(`/** sizeof(union bpf_attr) on this kernel. */`, `export const BPF_ATTR_SIZE = ${attr.size};`, '');
  out.push(
    '/** Field layouts of `union bpf_attr`: [byte offset, size] or, for bitfields, [unit offset, unit size, bit offset, bits]. */',
    'export const attrLayout = {',
  );
  const kinds = [];
  for (const m of attr.members) {
    const t = btf.resolve(m.type);
    if (t.kind !== 'struct') continue;
    const fields = btf.flatten(t.id);
    const name = m.name ? m.name.replace(/_([a-z])/g, (_, c) => c.toUpperCase()) : ANON_ATTR[fields[0]?.path];
    if (!name) throw new Error(`abigen: unnamed bpf_attr member starting with ${fields[0]?.path}`);
    out.push(`  ${name}: {`, ...layoutBlock(fields), `  },`);
    kinds.push(`  ${name}: {`, ...kindBlock(btf, fields), `  },`);
  }
  out.push('} as const;', '');
  out.push(
    "/** Fields of `union bpf_attr` that are not unsigned integers: 's' signed, 'c' a char array. */",
    "export const attrKinds: Record<string, Record<string, 's' | 'c'>> = {",
    ...kinds,
    '};',
    '',
  );

  out.push(
    '/** Sizes and field layouts of the info, perf and netlink structs. */',
    'export const structLayout = {',
  );
  const structKinds = [];
  for (const [ts, c, kind = 'struct'] of STRUCTS) {
    const t = btf.find(c, kind);
    out.push(`  ${ts}: {`, `    $size: [0, ${t.size}],`, ...layoutBlock(btf.flatten(t.id)), `  },`);
    structKinds.push(`  ${ts}: {`, ...kindBlock(btf, btf.flatten(t.id)), `  },`);
  }
  out.push('} as const;', '');
  out.push(
    "/** Fields of the info, perf and netlink structs that are not unsigned integers: 's' signed, 'c' a char array. */",
    "export const structKinds: Record<string, Record<string, 's' | 'c'>> = {",
    ...structKinds,
    '};',
    '',
  );
  return out.join('\n');
}
