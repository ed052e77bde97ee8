import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { release } from 'node:os';

/** node:zlib, loaded only when a kernel config is read (most programs never need one). */
const gunzipSync = (data: Uint8Array): Buffer =>
  (createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib')).gunzipSync(data);

let cached: Map<string, string> | undefined;
let source: string | undefined;

/** Where {@link kernelConfig} read the config from (`/proc/config.gz` or `/boot/config-<release>`). */
export function kernelConfigSource(): string {
  kernelConfig();
  return source!;
}

/** The running kernel's config (`/proc/config.gz`, else `/boot/config-$(uname -r)`), parsed. */
export function kernelConfig(): Map<string, string> {
  if (cached) return cached;
  let text: string;
  try {
    text = gunzipSync(readFileSync('/proc/config.gz')).toString();
    source = '/proc/config.gz';
  } catch {
    try {
      text = readFileSync(`/boot/config-${release()}`, 'utf8');
      source = `/boot/config-${release()}`;
    } catch {
      throw new Error(
        `cannot read the kernel config: neither /proc/config.gz nor /boot/config-${release()} is readable`,
      );
    }
  }
  cached = new Map();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (m) cached.set(m[1]!, m[2]!);
  }
  return cached;
}

/** KERNEL_VERSION(a, b, c) of the running kernel, as `LINUX_KERNEL_VERSION`. */
export function linuxKernelVersion(): number {
  const [a = 0, b = 0, c = 0] = release()
    .split(/[.-]/)
    .slice(0, 3)
    .map((x) => Number.parseInt(x, 10) || 0);
  return (a << 16) + (b << 8) + Math.min(c, 255);
}
