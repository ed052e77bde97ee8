// What a metric, a program and a config file are: one zod schema each, so the YAML file and the
// library API (`exportMap`) are checked by the same rules. The types are inferred from them.
import { z } from 'zod';

/** An issue at `<list>[i].name` for every name listed before. */
function listedTwice(names: string[], list: string, what: string, ctx: z.RefinementCtx): void {
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i)
      ctx.addIssue({ code: 'custom', path: [list, i, 'name'], message: `${what} '${n}' is listed twice` });
  });
}

/** The label decoders: how a key field becomes a label value. */
export const DECODERS = [
  'string', // char arrays up to the first NUL (the default for char arrays)
  'uint', // decimal (the default for integers)
  'hex', // 0x… for integers, hex digits for byte arrays
  'static_map', // `values` maps the decimal value to a label
  'ksym', // kernel address → symbol name (/proc/kallsyms)
  'cgroup', // cgroup id → cgroup v2 path
  'pid_comm', // pid → command name (/proc/<pid>/comm)
  'ipv4', // 4 bytes in network order → a.b.c.d
  'ipv6', // 16 bytes → RFC 5952 text (IPv4-mapped as a.b.c.d)
  'syscall', // x86-64 syscall number → name
  'device', // kernel dev_t (major << 20 | minor) → block device name
] as const;
export type DecoderName = (typeof DECODERS)[number];

const promName = z
  .string()
  .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'must be a Prometheus name: [a-zA-Z_:][a-zA-Z0-9_:]*');
const labelName = z
  .string()
  .regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*')
  .refine((s) => !s.startsWith('__') && s !== 'le', 'is reserved (le, or starts with __)');

export const labelSchema = z.strictObject({
  /** The label's name in the exposition. */
  name: labelName,
  /** The key field it comes from (a BTF member path, dotted for nested structs); `key` for a scalar key. */
  field: z.string().min(1),
  decoder: z.enum(DECODERS).optional(),
  /** For `static_map`: decimal value → label value (others show as the number). */
  values: z.record(z.string(), z.string()).optional(),
});

export const bucketSchema = z.strictObject({
  /** The key field holding the bucket index. */
  field: z.string().min(1),
  /** log2: bucket i holds values below 2^i (bcc's convention); linear: values below (i + 1) × step. */
  kind: z.enum(['log2', 'linear']),
  /** The highest bucket index with a finite bound; indexes above it count toward +Inf only. */
  max: z.number().int().min(0).max(1023),
  /** Linear bucket width, in the program's unit. */
  step: z.number().positive().optional(),
  /** Program unit → exposed unit, e.g. 1e-6 for microseconds exposed as seconds. */
  multiplier: z.number().positive().optional(),
});

export const metricSchema = z
  .strictObject({
    name: promName,
    help: z.string().min(1),
    type: z.enum(['counter', 'gauge', 'histogram']),
    /** The map's name in the object (for a config file; `exportMap` takes the map itself). */
    map: z.string().min(1).optional(),
    /** A struct value's integer member to read; a scalar value is read whole. */
    valueField: z.string().min(1).optional(),
    labels: z.array(labelSchema).default([]),
    bucket: bucketSchema.optional(),
    /** Series cap: series past it are dropped and counted in bpfkit_exporter_dropped_series_total. */
    maxSeries: z.number().int().positive().default(10_000),
  })
  .superRefine((m, ctx) => {
    if (m.type === 'histogram' && !m.bucket)
      ctx.addIssue({
        code: 'custom',
        path: ['bucket'],
        message: 'a histogram needs bucket: { field, kind, max }',
      });
    if (m.type !== 'histogram' && m.bucket)
      ctx.addIssue({
        code: 'custom',
        path: ['bucket'],
        message: `a ${m.type} takes no bucket (only histograms)`,
      });
    if (m.bucket?.kind === 'linear' && m.bucket.step === undefined)
      ctx.addIssue({ code: 'custom', path: ['bucket', 'step'], message: 'a linear bucket needs step' });
    m.labels.forEach((l, i) => {
      if (l.decoder === 'static_map' && !l.values)
        ctx.addIssue({ code: 'custom', path: ['labels', i, 'values'], message: 'static_map needs values' });
      if (l.values && l.decoder !== 'static_map')
        ctx.addIssue({
          code: 'custom',
          path: ['labels', i, 'values'],
          message: 'values go with decoder: static_map',
        });
    });
    listedTwice(
      m.labels.map((l) => l.name),
      'labels',
      'label',
      ctx,
    );
  });

export const attachSchema = z
  .strictObject({
    /** The program's function name in the object. */
    program: z.string().min(1),
    /** `category/name`, e.g. `sched/sched_process_exec`. */
    tracepoint: z
      .string()
      .regex(/^\w+\/\w+$/, 'must be category/name')
      .optional(),
    /** A raw tracepoint's name, e.g. `sched_switch`. */
    rawTracepoint: z.string().regex(/^\w+$/).optional(),
    /** A tp_btf / fentry-style program, attached to the target its section names. */
    tracing: z.literal(true).optional(),
  })
  .refine((a) => [a.tracepoint, a.rawTracepoint, a.tracing].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of tracepoint, rawTracepoint, tracing',
  });

export const BUILTINS = ['syscalls', 'execs', 'biolatency', 'runqlat', 'tcpretrans'] as const;
export type BuiltinName = (typeof BUILTINS)[number];

export const programSchema = z
  .strictObject({
    /** Names the program in logs and in reloads; unique in a config. */
    name: z.string().regex(/^[\w.-]+$/, 'must be [A-Za-z0-9_.-]+'),
    builtin: z.enum(BUILTINS).optional(),
    /** An ELF object, relative to the config file's folder. */
    object: z.string().min(1).optional(),
    attach: z.array(attachSchema).min(1).optional(),
    metrics: z.array(metricSchema).min(1).optional(),
  })
  .superRefine((p, ctx) => {
    if ((p.builtin === undefined) === (p.object === undefined))
      ctx.addIssue({ code: 'custom', path: ['object'], message: 'give exactly one of builtin, object' });
    if (p.object !== undefined) {
      if (!p.attach) ctx.addIssue({ code: 'custom', path: ['attach'], message: 'an object needs attach' });
      if (!p.metrics) ctx.addIssue({ code: 'custom', path: ['metrics'], message: 'an object needs metrics' });
      p.metrics?.forEach((m, i) => {
        if (!m.map) ctx.addIssue({ code: 'custom', path: ['metrics', i, 'map'], message: 'name the map' });
      });
    }
    if (p.builtin !== undefined && (p.attach || p.metrics))
      ctx.addIssue({
        code: 'custom',
        path: [p.attach ? 'attach' : 'metrics'],
        message: 'a builtin brings its own attach and metrics',
      });
  });

export const configSchema = z
  .strictObject({
    programs: z.array(programSchema).min(1),
  })
  .superRefine((c, ctx) =>
    listedTwice(
      c.programs.map((p) => p.name),
      'programs',
      'program',
      ctx,
    ),
  );

/** A metric read from one map (what `exportMap` and each config entry take). */
export type MetricSpec = z.input<typeof metricSchema>;
export type Metric = z.output<typeof metricSchema>;
export type LabelSpec = z.output<typeof labelSchema>;
export type BucketSpec = z.output<typeof bucketSchema>;
export type AttachSpec = z.output<typeof attachSchema>;
export type ProgramConfig = z.output<typeof programSchema>;
export type ExporterConfig = z.output<typeof configSchema>;
