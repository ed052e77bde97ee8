import { cachedProbe, NOT_SUPPORTED_CODES } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

describe('probe cache', () => {
  it('runs a probe once per key and keeps its answer; a throwing probe is asked again', () => {
    let runs = 0;
    const probe = () => {
      runs++;
      return runs === 1;
    };
    expect(cachedProbe('test:once', probe)).toBe(true);
    expect(cachedProbe('test:once', probe)).toBe(true);
    expect(runs).toBe(1);
    let throws = 0;
    const eperm = () => {
      throws++;
      throw new Error('EPERM');
    };
    expect(() => cachedProbe('test:throws', eperm)).toThrow('EPERM');
    expect(() => cachedProbe('test:throws', eperm)).toThrow('EPERM');
    expect(throws).toBe(2);
    expect([...NOT_SUPPORTED_CODES].sort()).toEqual(['E2BIG', 'EINVAL', 'ENOTSUPP', 'EOPNOTSUPP']);
  });
});
