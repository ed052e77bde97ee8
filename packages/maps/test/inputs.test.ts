// Values and options the map API does not take are refused before any syscall, never coerced:
// null is not 0, '4' is not a size, an unknown update flag is not 'any'.
import { BpfMap, bool, cstring, f64, stackAddresses, struct, u32, u64 } from '@bpfkit/maps';
import { describe, expect, it } from 'vitest';

describe('codecs refuse what is not their type', () => {
  it('null, strings, booleans and arrays are not integers', () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u64, maxEntries: 4 });
    for (const bad of [null, '4', true, [], undefined])
      expect(() => m.set(bad as never, 1n), String(bad)).toThrow(/u32 expects a number, got/);
    expect([...m.keys()]).toEqual([]); // nothing was written under key 0
    expect(() => m.get(null as never)).toThrow(TypeError);
    expect(() => m.set(1, null as never)).toThrow(/u64 expects a bigint/);
    expect(() => m.set(1.5, 1n)).toThrow(RangeError);
    m.set(0, 7n);
    expect([...m.entries()]).toEqual([[0, 7n]]);
  });

  it('cstring, bool, f64 and stack addresses check their values too', () => {
    const view = new DataView(new ArrayBuffer(64));
    expect(() => cstring(8).encode(view, 0, null as never)).toThrow(
      /cstring\(8\) expects a string, got null/,
    );
    expect(() => cstring(0)).toThrow(RangeError);
    expect(() => bool.encode(view, 0, 1 as never)).toThrow(TypeError);
    expect(() => f64.encode(view, 0, '1' as never)).toThrow(TypeError);
    expect(() => stackAddresses(2).encode(view, 0, [-1n])).toThrow(RangeError); // no wrap to 2**64 − 1
    const s = struct({ a: u32, b: bool });
    expect(() => s.encode(view, 0, { a: 1, b: 0 as never })).toThrow(TypeError);
  });
});

describe('map specs and options', () => {
  it('maxEntries past a u32, a string size and a non-codec key are refused; nothing is created', () => {
    expect(() => BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 2 ** 32 + 1 })).toThrow(
      /maxEntries must be a whole number in 0\.\.4294967295/,
    );
    expect(() => BpfMap.create({ type: 'hash', key: '4' as never, value: u32, maxEntries: 1 })).toThrow(
      /key must be a codec .* or a size in bytes, got string 4/,
    );
    expect(() => BpfMap.create({ type: 'hash', key: u32, value: {} as never, maxEntries: 1 })).toThrow(
      TypeError,
    );
    expect(() =>
      BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 1, flags: 2 ** 40 }),
    ).toThrow(RangeError);
  });

  it("an unknown update flag is a TypeError, not a silent 'any'", () => {
    using m = BpfMap.create({ type: 'hash', key: u32, value: u32, maxEntries: 4 });
    m.set(1, 1);
    expect(() => m.set(1, 2, { flag: 'bogus' as never })).toThrow(
      "flag must be 'any', 'noexist' or 'exist', got bogus",
    );
    expect(() => m.setBatch([[1, 3]], { flag: 'nope' as never })).toThrow(TypeError);
    expect(m.get(1)).toBe(1); // neither wrote
    m.set(1, 2, { flag: 'exist' });
    expect(m.get(1)).toBe(2);
  });
});
