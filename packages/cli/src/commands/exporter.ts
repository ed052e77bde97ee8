// `bpfkit exporter`: the @bpfkit/exporter agent as a command. Serves /metrics until SIGINT or
// SIGTERM (then detaches everything), reloads the config on SIGHUP.
import { Agent, ConfigError } from '@bpfkit/exporter';
import { CliError } from './objects.js';

export interface ExporterOptions {
  config: string;
  listen: string;
  otlpUrl?: string;
  otlpInterval?: number;
}

/** Run the agent; resolves once a signal has stopped it and everything is detached. */
export async function runExporter(o: ExporterOptions): Promise<void> {
  const log = (line: string) => console.error(`bpfkit exporter: ${line}`);
  let agent: Agent;
  try {
    agent = await Agent.start({
      config: o.config,
      listen: o.listen,
      log,
      ...(o.otlpUrl ? { otlp: { url: o.otlpUrl, intervalMs: (o.otlpInterval ?? 15) * 1000 } } : {}),
    });
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.message, 1);
    throw e;
  }
  await new Promise<void>((resolve) => agent.handleSignals(resolve));
}
