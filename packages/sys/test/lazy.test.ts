// Importing @bpfkit/sys declares nothing native: koffi, libc and each C function are loaded on the
// first call that needs them, and the module's export is then the koffi function itself. Checked
// in a fresh process through ffi.ts's nativeState() (an internal hook, not the public API).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const pkg = new URL('..', import.meta.url).pathname;
// tsc's modules, not the package's bundle: ffi.js must be the instance the index uses
const index = new URL('../dist/index.js', import.meta.url).href;
const ffi = new URL('../dist/ffi.js', import.meta.url).href;

/** Run `code` in a fresh process with `sys` (the package) and `ffi` imported; it sets `out` to what it wants back. */
function fresh(code: string): unknown {
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const sys = await import(${JSON.stringify(index)}); const ffi = await import(${JSON.stringify(ffi)});
       let out; ${code}; console.log(JSON.stringify(out))`,
    ],
    // the limit only catches a hang
    { cwd: pkg, encoding: 'utf8', timeout: 280_000 },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

const BPF = 'long syscall(long nr, int cmd, void *attr, unsigned int size)';

describe('native binding is lazy', () => {
  it('importing loads no koffi and declares no function', () => {
    expect(fresh('out = ffi.nativeState()')).toEqual({ koffi: false, declared: [] });
  });

  it('a command declares only what it calls, and the export becomes the koffi function', () => {
    const out = fresh(`
      sys.setAutoMemlock(false); // else the first map also probes RLIMIT_MEMLOCK (getrlimit, setrlimit)
      const stub = ffi.sysBpf;
      const fd = sys.mapCreate({ mapType: sys.MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1 });
      const afterCreate = ffi.nativeState();
      fd.close();
      out = { afterCreate, afterClose: ffi.nativeState(), rebound: ffi.sysBpf !== stub, info: typeof ffi.sysBpf.info };`);
    expect(out).toEqual({
      afterCreate: { koffi: true, declared: [BPF] },
      afterClose: { koffi: true, declared: [BPF, 'int close(int fd)'] },
      rebound: true,
      info: 'object',
    });
  });

  it('a kept stub still calls through, and errors still name the command', () => {
    const out = fresh(`
      const stub = ffi.sysBpf;
      let code;
      try { sys.mapFdById(0x7fffffff) } catch (e) { code = [e.code, e.cmd] }
      out = { code, viaStub: stub(ffi.SYS_bpf, -1, 0n, 0) < 0 && ffi.errno() };`);
    // EINVAL for command -1
    expect(out).toEqual({ code: ['ENOENT', 'BPF_MAP_GET_FD_BY_ID'], viaStub: 22 });
  });
});
