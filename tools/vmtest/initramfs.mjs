// The guest's initramfs: busybox-static, the kernel's virtio/9p/overlay/veth modules and an init
// script that builds a real system's mounts over the host's root (read-only over virtio-9p,
// writable through an overlay on tmpfs), runs one command, and powers off.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { moduleClosure, readModule } from './kernels.mjs';

const BUSYBOX = '/bin/busybox';
/** Modules the guest needs for its root and results shares. */
export const GUEST_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];
/** Modules the networking tests need (veth pairs, tc's clsact with BPF classifiers and actions, netfilter links). */
export const NET_MODULES = ['veth', 'sch_ingress', 'cls_bpf', 'act_bpf', 'nf_tables'];
/** Loaded where the kernel ships them as modules (netkit: 6.7 and later). */
export const OPTIONAL_MODULES = ['netkit'];
/** What the guest prints around its command's exit status on the console. */
export const EXIT_MARK = 'vmtest-exit-status:';

/** Whether `path` is an ELF executable with no program interpreter (so it runs without libc). */
export function isStaticElf(path) {
  if (!existsSync(path)) return false;
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  for (let i = 0; i < b.readUInt16LE(0x38); i++)
    if (b.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
  return true;
}

/** A `newc` cpio archive of `files`: `{ path, mode, data?, target? }` (dirs: mode 0o040755). */
export function cpio(files) {
  const parts = [];
  let ino = 1;
  const hex = (n) => n.toString(16).padStart(8, '0');
  const pad = (n) => Buffer.alloc((4 - (n % 4)) % 4);
  const entry = (name, mode, data) => {
    const nameBytes = Buffer.from(`${name}\0`);
    const header = `070701${[ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0].map(hex).join('')}`;
    parts.push(Buffer.from(header), nameBytes, pad(110 + nameBytes.length), data, pad(data.length));
  };
  for (const f of files)
    entry(f.path, f.mode, f.data ?? (f.target ? Buffer.from(f.target) : Buffer.alloc(0)));
  entry('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** The guest's /init: mounts, modules, overlay root, then `command` in `cwd` under chroot. */
export function initScript(modules) {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${modules.map((m) => m.name).join(' ')}; do insmod /lib/modules/$m.ko || echo "vmtest: insmod $m failed"; done
cmdline=$(cat /proc/cmdline)
arg() { for kv in $cmdline; do case $kv in vmtest.$1=*) echo "\${kv#vmtest.$1=}";; esac; done; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /lower || { echo "vmtest: cannot mount the host root"; poweroff -f; }
mount -t tmpfs -o size=2g tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/run
mount -t bpf bpf $R/sys/fs/bpf
mount -t tracefs tracefs $R/sys/kernel/tracing
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup
mount -t securityfs securityfs $R/sys/kernel/security
mkdir -p $R/boot && cp /config $R/boot/config-$(uname -r)
out=$(arg out)
mkdir -p $R$out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results $R$out || echo "vmtest: cannot mount the results share"
ip link set lo up
hostname vmtest
cd $R
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root CI=1 TERM=dumb BPFKIT_VMTEST_GUEST=1
chroot $R /bin/sh -c "cd $(arg cwd) && exec $out/run.sh" </dev/null >/dev/console 2>&1
st=$?
echo
echo "${EXIT_MARK}$st"
sync
poweroff -f
`;
}

/**
 * The guest's `lsm=` list: the kernel's default (CONFIG_LSM of its config) with `bpf` added, so
 * BPF LSM programs attach (Debian's kernels build CONFIG_BPF_LSM but need not list it).
 */
export function lsmList(config) {
  const m = /^CONFIG_LSM="([^"]*)"$/m.exec(config);
  if (!m) throw new Error('vmtest: the kernel config has no CONFIG_LSM');
  const list = m[1].split(',').filter(Boolean);
  return [...list.filter((l) => l !== 'bpf'), 'bpf'].join(',');
}

/** The initramfs for `kernel` (from ensureKernel), as one uncompressed cpio archive. */
export function buildInitramfs(kernel) {
  if (!isStaticElf(BUSYBOX))
    throw new Error(`vmtest: ${BUSYBOX} is missing or not static (apt-get install busybox-static)`);
  const modules = moduleClosure(kernel.modules, [...GUEST_MODULES, ...NET_MODULES], OPTIONAL_MODULES);
  const dir = (path) => ({ path, mode: 0o040755 });
  const files = [
    dir('bin'),
    dir('lib'),
    dir('lib/modules'),
    { path: 'bin/busybox', mode: 0o100755, data: readFileSync(BUSYBOX) },
    { path: 'init', mode: 0o100755, data: Buffer.from(initScript(modules)) },
    { path: 'config', mode: 0o100644, data: Buffer.from(kernel.config) },
    ...modules.map((m) => ({
      path: `lib/modules/${m.name}.ko`,
      mode: 0o100644,
      data: readModule(join(kernel.modules, m.path)),
    })),
  ];
  return cpio(files);
}
