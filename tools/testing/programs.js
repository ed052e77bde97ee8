// Instruction snippets shared by the packages' tests and the benchmarks.
import { Builder, R0, R1, R2, R3, R4, R5, R6, R7, R10, reg } from '@bpfkit/asm';
import { Program } from '@bpfkit/loader';
import { BpfMap, onlineCpus, u32 } from '@bpfkit/maps';

/** Append to `b`: r0 = the value of key `slot` of array map `map`; jump to `skip` when absent. Clobbers r0-r2. */
function lookupSlot(b, map, slot, skip) {
  return b
    .st('w', R10, -4, slot)
    .ldMap(R1, map)
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .call('map_lookup_elem')
    .jeq(R0, 0, skip);
}

/**
 * Append to `b`: look up key 0 of array map `map` and atomically add `amount` (a register
 * operand or an immediate) of `size` ('w' or 'dw') to the value. Clobbers r0-r2; jumps to
 * `skip` when the lookup fails.
 */
export function addToSlot0(b, map, amount, size = 'dw', skip = 'out') {
  lookupSlot(b, map, 0, skip).mov64(R1, amount);
  return b.atomic('add', size, R0, 0, R1);
}

/**
 * A builder that starts `r6 = ctx` and jumps to label `out` unless the current thread is the
 * main thread of process `pid` (its tid is the pid): other threads of a test process may make the
 * same calls. Clobbers r0.
 */
export function mainThreadOnly(pid = process.pid) {
  return new Builder().mov64(R6, reg(R1)).call('get_current_pid_tgid').mov32(R0, reg(R0)).jne(R0, pid, 'out');
}

/** Append to `b`: store 64-bit register `src` (not r0-r2) into key `slot` of array map `map`. */
export function storeToSlot(b, map, slot, src, skip = 'out') {
  return lookupSlot(b, map, slot, skip).stx('dw', R0, 0, src);
}

const ETH = 14;
const UDP_PAYLOAD = ETH + 20 + 8; // Ethernet, IPv4 without options, UDP

/**
 * Append to `b` (r1 the context, whose data and data_end pointers are the u32 fields at `dataOff`
 * and `dataEndOff`: 0 and 4 in xdp_md, 76 and 80 in __sk_buff): jump to `other` unless the packet
 * is an Ethernet frame with an IPv4 (no options) UDP datagram to `port`; leaves the payload's first
 * byte in r4. Clobbers r2-r4.
 */
export function matchUdp(b, { dataOff, dataEndOff, port, other }) {
  return b
    .ldx('w', R2, R1, dataOff)
    .ldx('w', R3, R1, dataEndOff)
    .mov64(R4, reg(R2))
    .add64(R4, UDP_PAYLOAD + 1)
    .jgt(R4, reg(R3), other)
    .ldx('h', R4, R2, 12)
    .jne(R4, 0x0008, other) // ETH_P_IP, big-endian
    .ldx('b', R4, R2, ETH)
    .jne(R4, 0x45, other) // IPv4, 20-byte header
    .ldx('b', R4, R2, ETH + 9)
    .jne(R4, 17, other) // UDP
    .ldx('h', R4, R2, ETH + 20 + 2)
    .jne(R4, ((port & 0xff) << 8) | (port >> 8), other)
    .ldx('b', R4, R2, UDP_PAYLOAD);
}

const BPF_F_CURRENT_CPU = 0xffffffffn;

/**
 * A tracepoint program that emits a `size`-byte record `{ u32 pid, u32 seq, filler... }` to map
 * `events` — perf_event_output on the current CPU (`kind` 'perf') or ringbuf_output ('ringbuf') —
 * for process `tgid` only (0: every process). `seq` counts up from 0 in array map `seq`; the
 * filler bytes are `seq & 0xff`.
 */
export function emitter(kind, tgid, size) {
  if (!Number.isInteger(size) || size < 8 || size > 256) throw new RangeError('record size must be 8..256');
  const b = new Builder().mov64(R6, reg(R1)).call('get_current_pid_tgid').mov64(R7, reg(R0)).rsh64(R0, 32);
  if (tgid) b.jne(R0, tgid, 'out');
  b.st('w', R10, -4, 0)
    .ldMap(R1, 'seq')
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .call('map_lookup_elem')
    .jeq(R0, 0, 'out')
    .mov64(R1, 1)
    // a plain atomic add and a load, not a fetch-add (5.12+), so the 5.10 guest runs it too;
    // the only caller of getppid in the filtered process is the test's one thread
    .atomic('add', 'w', R0, 0, R1)
    .ldx('w', R1, R0, 0)
    .sub64(R1, 1);
  const base = -264;
  for (let off = 8; off < size; off++) b.stx('b', R10, base + off, R1);
  b.stx('w', R10, base + 4, R1).stx('w', R10, base, R7);
  if (kind === 'perf')
    b.mov64(R1, reg(R6))
      .ldMap(R2, 'events')
      .ldImm64(R3, BPF_F_CURRENT_CPU)
      .mov64(R4, reg(R10))
      .add64(R4, base)
      .mov64(R5, size)
      .call('perf_event_output');
  else
    b.ldMap(R1, 'events')
      .mov64(R2, reg(R10))
      .add64(R2, base)
      .mov64(R3, size)
      .mov64(R4, 0)
      .call('ringbuf_output');
  return b.label('out').mov64(R0, 0).exit();
}

/**
 * The maps and program behind {@link emitter}: `events` (a perf event array sized for every CPU,
 * or a `ringBytes` ring buffer), `seq`, and the loaded tracepoint program. Dispose closes all.
 */
export function emitterKit(kind, tgid, size, ringBytes = 1 << 16) {
  const events =
    kind === 'perf'
      ? BpfMap.create({
          type: 'perf_event_array',
          key: u32,
          value: u32,
          maxEntries: Math.max(...onlineCpus()) + 1,
        })
      : BpfMap.create({ type: 'ringbuf', key: 0, value: 0, maxEntries: ringBytes });
  const seq = BpfMap.create({ type: 'array', key: u32, value: u32, maxEntries: 1 });
  const prog = Program.load({
    type: 'tracepoint',
    license: 'GPL',
    instructions: emitter(kind, tgid, size),
    maps: { events, seq },
  });
  return {
    events,
    seq,
    prog,
    [Symbol.dispose]() {
      prog.close();
      seq.close();
      events.close();
    },
  };
}
