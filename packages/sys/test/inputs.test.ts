// Every value written into a bpf_attr or a perf_event_attr is range-checked against its field:
// nothing wraps into another value, a string never lands in a number, and a refused value
// leaves nothing behind (the fd-leak check runs after each test).
import { readdirSync, readlinkSync } from 'node:fs';
import {
  attrKinds,
  attrLayout,
  encodePerfEventAttr,
  intOption,
  MapType,
  mapCreate,
  mapFdById,
  mapInfo,
  oneOf,
  PerfSwId,
  PerfType,
  perfEventOpen,
  writeField,
} from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

const array = { mapType: MapType.ARRAY, keySize: 4, valueSize: 8, maxEntries: 1 };
const bpfMaps = () =>
  readdirSync('/proc/self/fd').filter((f) => {
    try {
      return readlinkSync(`/proc/self/fd/${f}`) === 'anon_inode:bpf-map';
    } catch {
      return false;
    }
  }).length;

describe('attr fields take only what fits them', () => {
  it('a u32 never wraps: 2**32 + 1 entries is refused, not a 1-entry map', () => {
    const before = bpfMaps();
    expect(() => mapCreate({ ...array, maxEntries: 2 ** 32 + 1 })).toThrow(
      /mapCreate\.maxEntries takes an unsigned 32-bit integer \(0\.\.4294967295\), got 4294967297/,
    );
    expect(() => mapCreate({ ...array, mapFlags: 2 ** 40 })).toThrow(RangeError);
    expect(() => mapCreate({ ...array, maxEntries: -1 })).toThrow(RangeError);
    expect(() => mapCreate({ ...array, maxEntries: 1.5 })).toThrow(/takes an integer/);
    expect(bpfMaps()).toBe(before); // nothing was created
    using fd = mapCreate({ ...array, maxEntries: 0xffff });
    expect(mapInfo(fd).maxEntries).toBe(0xffff); // what fits goes through unchanged
  });

  it('an id past 2**32 does not open the map with the low 32 bits of it', () => {
    using fd = mapCreate(array);
    const { id } = mapInfo(fd);
    expect(() => mapFdById(id + 2 ** 32)).toThrow(RangeError);
    using again = mapFdById(id);
    expect(mapInfo(again).id).toBe(id);
  });

  it('strings go only into names, numbers never into names', () => {
    expect(() => mapCreate({ ...array, keySize: '4' as never })).toThrow(
      /mapCreate\.keySize takes a number or bigint, got the string '4'/,
    );
    expect(() => mapCreate({ ...array, mapName: 5 as never })).toThrow(/mapCreate\.mapName takes a string/);
    using named = mapCreate({ ...array, mapName: 'inputs_ok' });
    expect(mapInfo(named).name).toBe('inputs_ok');
  });

  it('signed fields take negatives, unsigned fields do not; bitfields have their own width', () => {
    expect(attrKinds.mapCreate?.map_name).toBe('c');
    expect(attrKinds.mapCreate?.map_token_fd).toBe('s');
    const view = new DataView(new ArrayBuffer(16));
    writeField(view, [0, 4], -1, 'signed', 's');
    expect(view.getInt32(0, true)).toBe(-1);
    expect(() => writeField(view, [0, 4], -1, 'unsigned')).toThrow(RangeError);
    expect(() => writeField(view, [0, 4], 2 ** 31, 'signed', 's')).toThrow(RangeError);
    writeField(view, [8, 8], 2n ** 64n - 1n, 'u64');
    expect(view.getBigUint64(8, true)).toBe(2n ** 64n - 1n);
    expect(() => writeField(view, [8, 8], 2n ** 64n, 'u64')).toThrow(RangeError);
    writeField(view, [0, 4, 3, 2], 3, 'bits');
    expect(view.getUint32(0, true) & 0b11000).toBe(0b11000);
    expect(() => writeField(view, [0, 4, 3, 2], 4, 'bits')).toThrow(/unsigned 2-bit integer/);
    expect(attrLayout.mapCreate.map_name).toEqual([28, 16]);
  });
});

describe('perf_event_attr and perf_event_open arguments', () => {
  it('a negative offset or a too-large pid is refused, not wrapped', () => {
    expect(() => encodePerfEventAttr({ type: PerfType.SOFTWARE, config2: -1 })).toThrow(
      /perf_event_attr\.config2 takes an unsigned 64-bit integer/,
    );
    expect(() => encodePerfEventAttr({ wakeupWatermark: -4096 })).toThrow(RangeError);
    const sw = { type: PerfType.SOFTWARE, config: BigInt(PerfSwId.CPU_CLOCK), samplePeriod: 1n };
    expect(() => perfEventOpen(sw, 2 ** 40, -1)).toThrow(/pid must be a whole number in -1\.\./);
    expect(() => perfEventOpen(sw, 0, -2)).toThrow(RangeError);
    using ok = perfEventOpen(sw, 0, -1);
    expect(ok.closed).toBe(false);
  });
});

describe('option checks', () => {
  it('oneOf and intOption name the option and what it takes', () => {
    expect(oneOf('link', ['auto', 'link'], 'mode')).toBe('link');
    expect(() => oneOf('bogus', ['auto', 'link'], 'mode')).toThrow(
      "mode must be one of 'auto', 'link', got 'bogus'",
    );
    expect(() => oneOf(undefined, ['auto'], 'mode')).toThrow(TypeError);
    expect(intOption(3, 'chunk', 1)).toBe(3);
    expect(() => intOption(0, 'chunk', 1)).toThrow('chunk must be a whole number in 1..');
    expect(() => intOption(Number.NaN, 'timeout')).toThrow(RangeError);
    expect(() => intOption('4', 'size')).toThrow(TypeError);
  });
});
