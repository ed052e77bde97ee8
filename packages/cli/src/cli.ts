import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { BpfError, NotSupportedError } from '@bpfkit/sys';
import { Command, CommanderError, Option } from 'commander';
import { btfDump } from './commands/btf.js';
import { feature } from './commands/feature.js';
import { generateObjectModule } from './commands/gen.js';
import {
  CliError,
  linkList,
  mapDump,
  mapList,
  mapShow,
  pinList,
  progList,
  progShow,
} from './commands/objects.js';
import { progDumpXlated } from './commands/xlated.js';
import { runExecsnoop } from './demos/execsnoop.js';
import { runTop } from './demos/top.js';

const json = () => new Option('--json', 'print JSON instead of a table');

function id(v: string): number {
  if (!/^\d+$/.test(v)) throw new CliError(`'${v}' is not an id`, 2);
  return Number(v);
}

/** A Ctrl-C-aware abort signal for long-running commands. */
function interruptible(): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  ac.signal.addEventListener('abort', () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  });
  return ac.signal;
}

export function createCli(): Command {
  const cli = new Command('bpfkit')
    .description('eBPF from Node.js: inspect programs, maps, links, pins and BTF; probe features; live demos')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();

  const prog = cli.command('prog').description('loaded programs');
  prog
    .command('list')
    .description('every loaded program')
    .addOption(json())
    .action((o) => progList(o));
  prog
    .command('show')
    .argument('<id>', 'program id', id)
    .option('--disasm', 'print the translated instructions')
    .addOption(json())
    .description('one program, with its info')
    .action((i, o) => progShow(i, o));
  prog
    .command('dump')
    .description('dump a program')
    .command('xlated')
    .argument('<id>', 'program id', id)
    .argument('[linum]', "'linum': also print each source line's file, line and column")
    .description(
      'the translated instructions as bpftool prints them: calls named, function signatures and source lines from BTF',
    )
    .action((i: number, linum: string | undefined) => {
      if (linum !== undefined && linum !== 'linum')
        throw new CliError(`unknown option '${linum}' (expected 'linum')`, 2);
      console.log(progDumpXlated(i, { linum: linum === 'linum' }));
    });

  const map = cli.command('map').description('maps');
  map
    .command('list')
    .description('every map')
    .addOption(json())
    .action((o) => mapList(o));
  map
    .command('show')
    .argument('<id|path>', 'map id or pinned path')
    .addOption(json())
    .description('one map')
    .action((t, o) => mapShow(t, o));
  map
    .command('dump')
    .argument('<id|path>', 'map id or pinned path')
    .addOption(json())
    .description('every entry, formatted through BTF when the map has it')
    .action((t, o) => mapDump(t, o));

  cli
    .command('link')
    .description('links')
    .command('list')
    .description('every link')
    .addOption(json())
    .action((o) => linkList(o));
  cli
    .command('pin')
    .description('bpffs pins')
    .command('ls')
    .argument('[dir]', 'directory on bpffs', undefined)
    .addOption(json())
    .description('what is pinned, with kind, id and name')
    .action((d, o) => pinList(d, o));

  cli
    .command('feature')
    .description('what this kernel supports: map, program and attach types, helpers')
    .option('--helpers [progType]', 'also probe helpers (for one program type, or all)')
    .addOption(json())
    .action((o) => feature({ ...o, progress: process.stderr.isTTY }));

  cli
    .command('btf')
    .description('BTF')
    .command('dump')
    .argument('<id|file>', "BTF object id, a raw BTF file, an ELF object, or 'vmlinux' (the kernel's)")
    .option('--type <name>', 'only types with this name')
    .addOption(
      new Option(
        '--format <format>',
        'raw: the types as bpftool lists them; c: a compilable C header (vmlinux.h)',
      )
        .choices(['raw', 'c'])
        .default('raw'),
    )
    .addOption(json())
    .action((t, o) => btfDump(t, o));

  cli
    .command('gen')
    .description(
      'generate a TypeScript module for an object file (like bpf2go): typed maps, programs, constants, variables and --type codecs',
    )
    .argument(
      '<object|source>',
      'a clang-built .o (with BTF: -g), or a .bpf.c to compile with the system clang',
    )
    .option('-o, --out <file>', 'write to a file instead of stdout')
    .addOption(
      new Option('--object <how>', 'embed the object in the module (base64) or load it from a file beside it')
        .choices(['embed', 'file'])
        .default('embed'),
    )
    .option('-t, --type <name...>', 'also generate a codec for these BTF structs or unions (event records)')
    .option('--name <name>', 'the name for generated identifiers (default: from the file name)')
    .option('--cflags <flags...>', "for a .bpf.c: more clang flags, after bpfkit's (-O2 -g -target bpf ...)")
    .action(
      (
        obj: string,
        o: { out?: string; object: 'embed' | 'file'; type?: string[]; name?: string; cflags?: string[] },
      ) => {
        const code = generateObjectModule(obj, {
          ...(o.cflags ? { cflags: o.cflags } : {}),
          object: o.object,
          ...(o.out ? { out: o.out } : {}),
          ...(o.type ? { types: o.type } : {}),
          ...(o.name ? { name: o.name } : {}),
        });
        if (o.out) writeFileSync(o.out, code);
        else process.stdout.write(code);
      },
    );

  cli
    .command('top')
    .description('live table of syscalls per process (tracepoint + per-CPU hash map)')
    .option('-d, --duration <seconds>', 'stop after this many seconds', Number)
    .option('-i, --interval <ms>', 'refresh interval', Number, 1000)
    .option('-p, --pid <pid...>', 'only these processes', (v: string, all: number[] = []) => [...all, id(v)])
    .action(async (o) => {
      await runTop({ duration: o.duration, interval: o.interval, pids: o.pid, signal: interruptible() });
    });

  cli
    .command('execsnoop')
    .description('exec events streamed through a ring buffer: pid, ppid, comm, argv')
    .option('-d, --duration <seconds>', 'stop after this many seconds', Number)
    .action(async (o) => {
      await runExecsnoop({ duration: o.duration, signal: interruptible() });
    });

  cli
    .command('exporter')
    .description('serve eBPF metrics to Prometheus (and push OTLP) from a YAML config; SIGHUP reloads it')
    .requiredOption('-c, --config <file>', 'the exporter config (YAML): programs, attach points, metrics')
    .option('-l, --listen <host:port>', 'where /metrics listens', '127.0.0.1:9435')
    .option(
      '--otlp-url <url>',
      'also push to this OTLP/HTTP metrics endpoint (e.g. http://127.0.0.1:4318/v1/metrics)',
    )
    .option('--otlp-interval <seconds>', 'seconds between OTLP pushes', Number, 15)
    .action(async (o) => {
      // loaded on use: prom-client and the OpenTelemetry SDK stay out of every other command's start
      const { runExporter } = await import('./commands/exporter.js');
      await runExporter(o);
    });

  cli
    .command('demo')
    .description('the quick-start demo: top, then execsnoop, a few seconds each, with some activity')
    .option('-d, --duration <seconds>', 'seconds per demo', Number, 3)
    .action(async (o) => {
      const signal = interruptible();
      const busy = () =>
        spawn('sh', ['-c', 'for i in $(seq 1 40); do ls / >/dev/null; sleep 0.05; done'], {
          stdio: 'ignore',
        });
      let load = busy();
      console.log(`bpfkit demo: top for ${o.duration}s`);
      await runTop({ duration: o.duration, interval: 1000, signal, rows: 8 });
      load.kill();
      if (signal.aborted) return;
      console.log(`\nbpfkit demo: execsnoop for ${o.duration}s`);
      load = busy();
      const n = await runExecsnoop({ duration: o.duration, signal });
      load.kill();
      console.log(`\n${n} execs seen. Try: bpfkit prog list, bpfkit map list, bpfkit feature, bpfkit --help`);
    });
  return cli;
}

/** Run the CLI; resolves the exit code (0 ok, 1 failure, 2 usage). */
export async function main(argv = process.argv): Promise<number> {
  const cli = createCli();
  try {
    await cli.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof CliError) {
      console.error(`bpfkit: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof BpfError || e instanceof NotSupportedError || e instanceof Error) {
      console.error(`bpfkit: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
