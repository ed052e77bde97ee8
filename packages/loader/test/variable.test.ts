import { collectionVariables, loadCollection } from '@bpfkit/loader';
import { MapFlags } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

const globals = new URL('./fixtures/globals.bpf.o', import.meta.url).pathname;

describe('live variables', () => {
  it('global data maps are mmap-able; variables are read and written in place after load', () => {
    using c = loadCollection(globals, { constants: { cfg_multiplier: 5 } });
    for (const s of ['.data', '.bss', '.rodata', '.data.custom'])
      expect(c.map(s).flags & MapFlags.MMAPABLE).toBe(MapFlags.MMAPABLE);
    const v = collectionVariables(c);
    expect(Object.keys(v)).toEqual(
      expect.arrayContaining(['cfg_multiplier', 'data_counter', 'bss_counter', 'custom_val']),
    );
    expect(v.cfg_multiplier!.get()).toBe(5);
    expect(v.greeting!.get()).toBe('hi');
    expect(v.data_counter!.get()).toBe(7n);
    v.bss_counter!.set(10n);
    v.custom_val!.set(100);
    c.program('globals').testRun({ data: new Uint8Array(64) });
    expect(v.bss_counter!.get()).toBe(15n); // the program saw the write: += cfg_multiplier
    expect(v.custom_val!.get()).toBe(101);
    expect(v.data_counter!.get()).toBe(8n);
    expect(c.map('.bss').getBytes(new Uint8Array(4))!.subarray(0, 8)).toEqual(v.bss_counter!.bytes());
    expect(v.bss_counter!.mapped).toBe(true);
    expect(() => v.cfg_multiplier!.set(1)).toThrow(
      /'cfg_multiplier' is in .rodata, which is read-only after load/,
    );
    expect(() => v.custom_val!.set(-1)).toThrow(RangeError);
  });
});
