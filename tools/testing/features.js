// Kernel features a test needs that a kernel may lack. On a vmtest guest (BPFKIT_VMTEST_GUEST=1)
// the guest is built to have them, so a missing one is a failure of the guest's setup. Elsewhere
// (the host) a test may be marked unsupported only where the kernel demonstrably lacks the
// feature: a config option absent from /proc/config.gz, or the kernel refusing the probe load.
// tools/vmtest/report.mjs reads the mark (the test's meta) and requires the test to pass on a
// guest leg of the same run.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { BpfError, NotSupportedError } from '@bpfkit/sys';

/** Whether this process runs inside a vmtest guest. */
export const inGuest = process.env.BPFKIT_VMTEST_GUEST === '1';

let config;
/**
 * The running kernel's config: `{ source, options }` (`CONFIG_X` → value) from /proc/config.gz,
 * else /boot/config-<release> (where the vmtest guests put it), else undefined.
 */
export function kernelConfigFile() {
  if (config !== undefined) return config ?? undefined;
  let source;
  let text;
  try {
    text = gunzipSync(readFileSync('/proc/config.gz')).toString();
    source = '/proc/config.gz';
  } catch {
    try {
      source = `/boot/config-${release()}`;
      text = readFileSync(source, 'utf8');
    } catch {
      config = null;
      return undefined;
    }
  }
  const options = new Map(
    text
      .split('\n')
      .map((l) => /^(CONFIG_\w+)=(.*)$/.exec(l))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  config = { source, options };
  return config;
}

/** Why the kernel demonstrably lacks the feature, or undefined when it has it. */
export function lackOf({ config: options = [], probe } = {}) {
  const cfg = kernelConfigFile(); // none readable: the config demonstrates nothing
  for (const o of options) {
    const v = cfg?.options.get(o);
    if (cfg && v !== 'y' && v !== 'm') return `${o} is not set in ${cfg.source}`;
  }
  if (probe) {
    try {
      probe();
    } catch (e) {
      if (e instanceof BpfError) return `the kernel refused the probe load (${e.cmd}: ${e.code})`;
      throw e;
    }
  }
  return undefined;
}

/**
 * Require `feature` for the current test (`ctx` is vitest's test context). When the kernel
 * demonstrably lacks it (`lackOf`), a guest fails the test (its setup is broken) and the host
 * marks the test unsupported, with the reason, and skips it.
 */
export function requireFeature(ctx, feature, how) {
  const reason = lackOf(how);
  if (!reason) return;
  if (inGuest) throw new Error(`vmtest guest setup: ${feature} is not usable here: ${reason}`);
  ctx.task.meta.unsupported = `${feature} is not supported by this kernel (Linux ${release()}): ${reason}`;
  ctx.skip(reason);
}

/**
 * The error `fn` throws (a test of what bad input gets); a `NotSupportedError` is rethrown, so the
 * test is unsupported on this kernel rather than passing on the wrong error.
 */
export function errorOf(fn) {
  try {
    fn();
  } catch (e) {
    if (e instanceof NotSupportedError) throw e;
    return e;
  }
  throw new Error('expected an error');
}
