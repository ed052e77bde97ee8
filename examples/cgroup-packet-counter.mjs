// Count the packets and bytes a cgroup sends: a cgroup_skb egress program, written with
// @bpfkit/asm, adds each packet's length to an array map. A child process in the cgroup sends
// five UDP datagrams; we print what was counted.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Builder, R0, R1, R2, R6, R7, R10, reg } from '@bpfkit/asm';
import { Cgroup } from '@bpfkit/cgroup';
import { attachCgroup } from '@bpfkit/link';
import { Program } from '@bpfkit/loader';
import { BpfMap, struct, u32, u64 } from '@bpfkit/maps';

const Stats = struct({ packets: u64, bytes: u64 });
const stats = BpfMap.create({ type: 'array', key: u32, value: Stats, maxEntries: 1, name: 'egress_stats' });
const count = new Builder()
  .ldx('w', R6, R1, 0) // skb->len
  .st('w', R10, -4, 0)
  .ldMap(R1, 'stats')
  .mov64(R2, reg(R10))
  .add64(R2, -4)
  .call('map_lookup_elem')
  .jeq(R0, 0, 'out')
  .mov64(R7, 1)
  .atomic('add', 'dw', R0, 0, R7) // packets
  .atomic('add', 'dw', R0, 8, R6) // bytes
  .label('out')
  .mov64(R0, 1) // let it through
  .exit();
const prog = Program.load({
  type: 'cgroup_skb',
  attachType: 'cgroup_inet_egress',
  license: 'GPL',
  instructions: count,
  maps: { stats },
});
const cg = Cgroup.create(`bpfkit-example-${process.pid}`);
const link = attachCgroup(prog, cg, 'cgroup_inet_egress');
try {
  // the sender waits for a line on stdin: it starts only once it is in the cgroup
  const sender = `const s = require('node:dgram').createSocket('udp4');
    let n = 0; const next = () => n++ < 5 ? s.send(Buffer.alloc(100), 9, '127.0.0.1', next) : s.close();
    process.stdin.once('data', next);`;
  const child = spawn(process.execPath, ['-e', sender], { stdio: ['pipe', 'inherit', 'inherit'] });
  cg.addProcess(child.pid);
  child.stdin.end('go\n');
  await once(child, 'close');
  const { packets, bytes } = stats.get(0);
  console.log(`cgroup ${cg.name} sent ${packets} packets, ${bytes} bytes`);
} finally {
  link.close();
  cg.remove();
  prog.close();
  stats.close();
}
