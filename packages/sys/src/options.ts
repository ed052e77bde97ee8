// Checks for option values, shared by every package: a value the API does not know is refused
// with a TypeError or RangeError naming the option, never read as a default or wrapped.

/** `value` if it is one of `allowed`; otherwise a TypeError naming the option and the choices. */
export function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new TypeError(
    `${what} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${typeof value === 'string' ? `'${value}'` : String(value)}`,
  );
}

/**
 * `value` if it is an integer in [min, max] (a number; `max` defaults to 2^53 − 1); otherwise a
 * RangeError (TypeError for a non-number) naming the option and the range.
 */
export function intOption(value: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number')
    throw new TypeError(
      `${what} must be a number, got ${value === null ? 'null' : typeof value} ${String(value)}`,
    );
  if (!Number.isInteger(value) || value < min || value > max)
    throw new RangeError(`${what} must be a whole number in ${min}..${max}, got ${value}`);
  return value;
}
