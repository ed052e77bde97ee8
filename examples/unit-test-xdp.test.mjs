// Unit-test an XDP program without a NIC: BPF_PROG_TEST_RUN runs it in the kernel on packets
// we make up. Run with: node --test examples/unit-test-xdp.test.mjs
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Builder, R0, R1, R2, R3, reg } from '@bpfkit/asm';
import { Program } from '@bpfkit/loader';

const XDP_DROP = 1;
const XDP_PASS = 2;

// Drop IPv4 packets to UDP port 53, pass everything else.
const program = new Builder()
  .ldx('w', R2, R1, 0) // data
  .ldx('w', R3, R1, 4) // data_end
  .mov64(R0, XDP_PASS)
  .mov64(R1, reg(R2))
  .add64(R1, 38) // Ethernet 14 + IPv4 20 + UDP dport at 2..4
  .jgt(R1, reg(R3), 'out')
  .ldx('h', R1, R2, 12) // ethertype
  .jne(R1, 0x0008, 'out') // 0x0800, network order
  .ldx('b', R1, R2, 23) // IPv4 protocol
  .jne(R1, 17, 'out') // UDP
  .ldx('h', R1, R2, 36) // UDP destination port
  .jne(R1, 0x3500, 'out') // 53, network order
  .mov64(R0, XDP_DROP)
  .label('out')
  .exit();

function udpPacket(dport) {
  const p = new Uint8Array(64);
  const dv = new DataView(p.buffer);
  dv.setUint16(12, 0x0800); // IPv4
  p[14] = 0x45; // version 4, header length 5
  p[23] = 17; // UDP
  dv.setUint16(36, dport);
  return p;
}

test('drops DNS, passes the rest', () => {
  const prog = Program.load({ type: 'xdp', license: 'GPL', name: 'no_dns', instructions: program });
  try {
    assert.equal(prog.testRun({ data: udpPacket(53) }).retval, XDP_DROP);
    assert.equal(prog.testRun({ data: udpPacket(443) }).retval, XDP_PASS);
    assert.equal(prog.testRun({ data: new Uint8Array(20) }).retval, XDP_PASS); // too short to parse
  } finally {
    prog.close();
  }
});
