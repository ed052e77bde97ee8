import type { Builder, RegOperand } from '@bpfkit/asm';
export function addToSlot0(
  b: Builder,
  map: string,
  amount: number | RegOperand,
  size?: 'w' | 'dw',
  skip?: string,
): Builder;
export function emitter(kind: 'perf' | 'ringbuf', tgid: number, size: number): Builder;
