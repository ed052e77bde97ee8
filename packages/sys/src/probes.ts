// The probe cache: feature probes (does this kernel have a map type, a program type, a
// helper?) live with what they probe — map types in @bpfkit/maps, program types and helpers in
// @bpfkit/loader, written with the packages that own those objects. Each answer is computed once
// per process and kept here, so every package asks the kernel at most once.

/** Error codes with which the kernel says "I do not know this" rather than "you may not". */
export const NOT_SUPPORTED_CODES: ReadonlySet<string> = new Set([
  'EINVAL',
  'E2BIG',
  'ENOTSUPP',
  'EOPNOTSUPP',
]);

const cache = new Map<string, boolean>();

/**
 * The cached answer of the probe named `key`, running `probe` the first time. A probe that throws
 * (EPERM: "may I", not "does the kernel know") is not cached, so a later call asks again.
 */
export function cachedProbe(key: string, probe: () => boolean): boolean {
  let v = cache.get(key);
  if (v === undefined) {
    v = probe();
    cache.set(key, v);
  }
  return v;
}
