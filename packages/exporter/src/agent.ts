// The agent: one process that loads every configured program, attaches it, exports its maps,
// serves /metrics (and pushes OTLP when asked), reloads on SIGHUP keeping the programs whose
// entry and object did not change (their maps, so their counters, live on), and detaches
// everything on close.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Attachment } from '@bpfkit/link';
import { type Collection, loadCollection } from '@bpfkit/loader';
import { Registry } from 'prom-client';
import { attach } from './attach.js';
import { loadConfig, type ResolvedProgram } from './config.js';
import { ExportedMap } from './exported-map.js';
import { DroppedSeries, type MetricSource, ScrapeErrors } from './model.js';
import { type OtlpOptions, type OtlpPusher, pushOtlp } from './otlp.js';
import { MetricsServer, registerPrometheus } from './prometheus.js';

export interface AgentOptions {
  /** The config file (YAML), re-read by {@link Agent.reload}. */
  config: string;
  /** Where /metrics listens: `host:port` (default `127.0.0.1:9435`; port 0 picks one). */
  listen?: string;
  /** Also push the metrics to an OTLP/HTTP collector. */
  otlp?: OtlpOptions;
  /** Where to say what happens (loads, reloads, errors); default: nothing. */
  log?: (line: string) => void;
}

/** One loaded program entry: its collection, attachments and exported maps. */
class LoadedProgram {
  constructor(
    readonly entry: ResolvedProgram,
    readonly fingerprint: string,
    readonly collection: Collection,
    readonly attachments: Attachment[],
    readonly metrics: ExportedMap[],
  ) {}

  static load(entry: ResolvedProgram, fingerprint: string, dropped: DroppedSeries): LoadedProgram {
    const programs = [...new Set(entry.attach.map((a) => a.program))];
    const collection = loadCollection(entry.object, { programs });
    const attachments: Attachment[] = [];
    try {
      for (const a of entry.attach) attachments.push(attach(collection.program(a.program), a));
      const metrics = entry.metrics.map((m) => {
        const map = collection.map(m.map as string);
        const def = collection.object.maps.get(m.map as string);
        const btf = collection.object.btf;
        if (!btf || !def?.btfKeyTypeId)
          throw new TypeError(
            `program '${entry.name}': map '${m.map}' has no key BTF (build the object with -g)`,
          );
        return new ExportedMap(map, m, {
          btf: { btf, keyTypeId: def.btfKeyTypeId, valueTypeId: def.btfValueTypeId },
          dropped,
        });
      });
      return new LoadedProgram(entry, fingerprint, collection, attachments, metrics);
    } catch (e) {
      for (const a of attachments.reverse()) a[Symbol.dispose]();
      collection.close();
      throw new Error(
        `program '${entry.name}' (${entry.object}): ${e instanceof Error ? e.message : String(e)}`,
        {
          cause: e,
        },
      );
    }
  }

  close(): void {
    for (const a of [...this.attachments].reverse()) a[Symbol.dispose]();
    this.collection.close();
  }
}

/** What makes a program entry the same across a reload: its entry and its object's bytes. */
function fingerprint(entry: ResolvedProgram): string {
  return createHash('sha256').update(JSON.stringify(entry)).update(readFileSync(entry.object)).digest('hex');
}

export class Agent {
  readonly options: AgentOptions;
  readonly dropped = new DroppedSeries();
  readonly errors = new ScrapeErrors();
  #programs: LoadedProgram[] = [];
  #registry: Registry = new Registry();
  #server: MetricsServer | undefined;
  #otlp: OtlpPusher | undefined;
  #closed = false;
  #signals: [NodeJS.Signals, () => void][] = [];

  private constructor(options: AgentOptions) {
    this.options = options;
  }

  /** Load the config, attach everything, and start serving (and pushing). */
  static async start(options: AgentOptions): Promise<Agent> {
    const agent = new Agent(options);
    try {
      agent.#apply(loadConfig(options.config));
      agent.#server = await MetricsServer.listen(() => agent.#registry, options.listen);
      if (options.otlp) agent.#otlp = pushOtlp(() => agent.sources(), options.otlp);
      agent.#log(`serving ${agent.url} (${agent.#programs.map((p) => p.entry.name).join(', ')})`);
      return agent;
    } catch (e) {
      await agent.close();
      throw e;
    }
  }

  /** The /metrics URL. */
  get url(): string {
    if (!this.#server) throw new Error('the agent is not serving');
    return this.#server.url;
  }

  /** The prom-client registry of the current programs' metrics. */
  get registry(): Registry {
    return this.#registry;
  }

  /** Names of the loaded program entries. */
  get programs(): string[] {
    return this.#programs.map((p) => p.entry.name);
  }

  /** Every metric source: each program's maps, and the agent's own counters. */
  sources(): MetricSource[] {
    return [...this.#programs.flatMap((p) => p.metrics), this.dropped, this.errors];
  }

  /**
   * Re-read the config: programs whose entry and object are unchanged keep running (and
   * counting); changed, new and removed ones are unloaded and loaded. A config that fails to
   * read or load leaves the running set as it was, and throws.
   */
  reload(): void {
    if (this.#closed) throw new Error('the agent is closed');
    this.#apply(loadConfig(this.options.config));
    this.#log(`reloaded: ${this.#programs.map((p) => p.entry.name).join(', ')}`);
  }

  #apply(entries: ResolvedProgram[]): void {
    const old = new Map(this.#programs.map((p) => [p.entry.name, p]));
    const next: LoadedProgram[] = [];
    const fresh: LoadedProgram[] = [];
    try {
      for (const entry of entries) {
        const fp = fingerprint(entry);
        const had = old.get(entry.name);
        if (had && had.fingerprint === fp) next.push(had);
        else {
          const p = LoadedProgram.load(entry, fp, this.dropped);
          fresh.push(p);
          next.push(p);
        }
      }
      const names = new Map<string, string>();
      for (const p of next)
        for (const m of p.metrics) {
          const other = names.get(m.name);
          if (other)
            throw new Error(`metric '${m.name}' is defined by both '${other}' and '${p.entry.name}'`);
          names.set(m.name, p.entry.name);
        }
      const registry = registerPrometheus(
        [...next.flatMap((p) => p.metrics), this.dropped, this.errors],
        undefined,
        {
          onError: (source, e) => {
            this.errors.add(source.name);
            this.#log(`metric '${source.name}' failed: ${e instanceof Error ? e.message : String(e)}`);
          },
        },
      );
      for (const [name, p] of old)
        if (!next.includes(p)) {
          p.close();
          this.#log(`unloaded ${name}`);
        }
      for (const p of fresh) this.#log(`loaded ${p.entry.name}`);
      this.#programs = next;
      this.#registry = registry;
    } catch (e) {
      for (const p of fresh) p.close();
      throw e;
    }
  }

  /**
   * Handle the process's signals: SIGHUP reloads (a failed reload is logged, the old set keeps
   * running), SIGINT and SIGTERM close the agent and then call `onExit`.
   */
  handleSignals(onExit: () => void = () => process.exit(0)): this {
    const hup = () => {
      try {
        this.reload();
      } catch (e) {
        this.#log(
          `reload failed, still running the previous config: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    };
    const stop = () => {
      this.close().then(onExit, onExit);
    };
    this.#signals = [
      ['SIGHUP', hup],
      ['SIGINT', stop],
      ['SIGTERM', stop],
    ];
    for (const [s, f] of this.#signals) process.on(s, f);
    return this;
  }

  /** Detach and unload everything, stop serving and pushing (a last OTLP push first). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [s, f] of this.#signals) process.off(s, f);
    try {
      await this.#otlp?.close();
    } finally {
      await this.#server?.close();
      for (const p of this.#programs.reverse()) p.close();
      this.#programs = [];
      this.#log('detached everything');
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Synchronous dispose: detaches now; the HTTP server finishes closing in the background. */
  [Symbol.dispose](): void {
    void this.close();
  }

  #log(line: string): void {
    this.options.log?.(line);
  }
}
