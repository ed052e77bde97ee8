import type { Builder, RegOperand } from '@bpfkit/asm';
export function addToSlot0(
  b: Builder,
  map: string,
  amount: number | RegOperand,
  size?: 'w' | 'dw',
  skip?: string,
): Builder;
export function mainThreadOnly(pid?: number): Builder;
export function matchUdp(
  b: Builder,
  at: { dataOff: number; dataEndOff: number; port: number; other: string },
): Builder;
export function storeToSlot(b: Builder, map: string, slot: number, src: number, skip?: string): Builder;
export function emitter(kind: 'perf' | 'ringbuf', tgid: number, size: number): Builder;

import type { Program } from '@bpfkit/loader';
import type { BpfMap } from '@bpfkit/maps';
export function emitterKit(
  kind: 'perf' | 'ringbuf',
  tgid: number,
  size: number,
  ringBytes?: number,
): { events: BpfMap<unknown, unknown>; seq: BpfMap<unknown, unknown>; prog: Program } & Disposable;
