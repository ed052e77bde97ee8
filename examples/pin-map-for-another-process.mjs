// Share a map between processes through bpffs: pin it, let another process open the pin and
// write to it, read what it wrote, unpin.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { BpfMap, cstring, u32 } from '@bpfkit/maps';
import { ensureBpffs, pin, unpin } from '@bpfkit/pin';
import { umount } from '@bpfkit/sys';

const root = ensureBpffs(mkdtempSync('/tmp/bpffs-example-')); // usually: ensureBpffs() → /sys/fs/bpf
const path = `${root.path}/greetings`;
const greetings = BpfMap.create({
  type: 'hash',
  key: u32,
  value: cstring(32),
  maxEntries: 16,
  name: 'greetings',
});
try {
  pin(greetings, path);
  const other = `
    import { openPinnedMap } from '@bpfkit/pin';
    import { cstring, u32 } from '@bpfkit/maps';
    const m = openPinnedMap(${JSON.stringify(path)}, { key: u32, value: cstring(32) });
    m.set(process.pid, 'hello from process ' + process.pid);
    m.close();`;
  execFileSync(process.execPath, ['--input-type=module', '-e', other], {
    cwd: import.meta.dirname,
    stdio: 'inherit',
  });
  for (const [pid, text] of greetings) console.log(`${pid}: ${text}`);
} finally {
  unpin(path);
  greetings.close();
  if (root.mounted) umount(root.path);
  rmSync(root.path, { recursive: true });
}
