// Attach targets as libbpf names them, resolved without a syscall: against the running kernel's
// BTF (tp_btf → typedef btf_trace_<tp>, lsm → bpf_lsm_<hook>, iter → bpf_iter_<target>, the
// function itself for fentry/fexit/fmod_ret), against module BTF (`module:function`, or vmlinux
// first and then every module), and the typed error when a target is missing. The loads these
// ids go into are compared with libbpf's in libbpf-conventions.test.ts.
import { Btf, kernelModuleBtfs, type ModuleBtf } from '@bpfkit/btf';
import {
  AttachTargetError,
  kernelTargetType,
  ObjectFile,
  prepareCollection,
  programForSection,
  resolveAttachTarget,
} from '@bpfkit/loader';
import { AttachType, type HasFd, ProgType } from '@bpfkit/sys';
import { describe, expect, it } from 'vitest';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const kernel = Btf.kernel();

/** A program as the object reader makes it from a section name. */
function program(section: string, name = 'prog') {
  const s = programForSection(section);
  if (!s) throw new Error(`no program kind for section '${section}'`);
  return { name, section, ...s };
}

describe('kernel attach targets', () => {
  it('names each target the way libbpf does', () => {
    expect(kernelTargetType(AttachType.TRACE_RAW_TP, 'sched_switch')).toEqual({
      name: 'btf_trace_sched_switch',
      kind: 'typedef',
    });
    expect(kernelTargetType(AttachType.LSM_MAC, 'file_open')).toEqual({
      name: 'bpf_lsm_file_open',
      kind: 'func',
    });
    expect(kernelTargetType(AttachType.LSM_CGROUP, 'socket_bind').name).toBe('bpf_lsm_socket_bind');
    expect(kernelTargetType(AttachType.TRACE_ITER, 'task')).toEqual({ name: 'bpf_iter_task', kind: 'func' });
    for (const at of [AttachType.TRACE_FENTRY, AttachType.TRACE_FEXIT, AttachType.MODIFY_RETURN])
      expect(kernelTargetType(at, 'do_unlinkat')).toEqual({ name: 'do_unlinkat', kind: 'func' });
  });

  it('resolves every BTF-attached section kind to the kernel type id libbpf would send', () => {
    const cases: [string, string, 'typedef' | 'func'][] = [
      ['tp_btf/sched_switch', 'btf_trace_sched_switch', 'typedef'],
      ['fentry/do_unlinkat', 'do_unlinkat', 'func'],
      ['fexit/do_unlinkat', 'do_unlinkat', 'func'],
      ['fentry.s/do_unlinkat', 'do_unlinkat', 'func'],
      ['fmod_ret/security_file_open', 'security_file_open', 'func'],
      ['lsm/file_open', 'bpf_lsm_file_open', 'func'],
      ['lsm.s/file_open', 'bpf_lsm_file_open', 'func'],
      ['lsm_cgroup/socket_bind', 'bpf_lsm_socket_bind', 'func'],
      ['iter/task', 'bpf_iter_task', 'func'],
      ['iter/bpf_map', 'bpf_iter_bpf_map', 'func'],
    ];
    for (const [section, typeName, kind] of cases) {
      const t = resolveAttachTarget(program(section), { kernel });
      expect({ section, t }).toEqual({
        section,
        t: { kind: 'kernel', btfId: kernel.find(typeName, kind).id, module: undefined, typeName },
      });
    }
    // vmlinux named explicitly, as libbpf's module:function form allows
    expect(resolveAttachTarget(program('fentry/vmlinux:do_unlinkat'), { kernel })).toMatchObject({
      btfId: kernel.find('do_unlinkat', 'func').id,
      module: undefined,
    });
  });

  it('needs no target for other programs', () => {
    for (const section of ['socket', 'xdp', 'raw_tp/sys_enter', 'tracepoint/syscalls/sys_enter_openat'])
      expect(resolveAttachTarget(program(section), { kernel })).toBeUndefined();
  });

  it('a missing target is an AttachTargetError naming program, section and symbol', () => {
    const missing = (section: string, opts = {}) => {
      try {
        resolveAttachTarget(program(section, 'on_thing'), { kernel, ...opts });
      } catch (e) {
        return e;
      }
      throw new Error(`'${section}' resolved`);
    };
    const e = missing('fentry/no_such_function_bpfkit') as AttachTargetError;
    expect(e).toBeInstanceOf(AttachTargetError);
    expect(e).toMatchObject({ program: 'on_thing', section: 'fentry/no_such_function_bpfkit' });
    expect(e.target).toBe('no_such_function_bpfkit');
    expect(e.message).toContain("program 'on_thing' (section 'fentry/no_such_function_bpfkit')");
    expect(e.message).toContain("no func 'no_such_function_bpfkit'");
    expect((missing('tp_btf/no_such_tp') as Error).message).toContain("no typedef 'btf_trace_no_such_tp'");
    expect((missing('lsm/no_such_hook') as Error).message).toContain("'bpf_lsm_no_such_hook'");
    expect((missing('iter/no_such_iter') as Error).message).toContain("'bpf_iter_no_such_iter'");
    expect((missing('fentry/vmlinux:no_such_function') as Error).message).toContain('not in vmlinux BTF');
    expect((missing('fentry/no_such_module:f') as Error).message).toContain(
      "names module 'no_such_module', which has no BTF loaded",
    );
    // freplace needs the program it extends
    const ext = missing('freplace/verdict') as AttachTargetError;
    expect(ext).toMatchObject({ program: 'on_thing', section: 'freplace/verdict', target: 'verdict' });
    expect(ext.message).toContain('attachTargets.program');
    // no name after the prefix, and none given
    const bare = {
      name: 'p',
      section: 'fentry',
      type: ProgType.TRACING,
      attachType: AttachType.TRACE_FENTRY,
    };
    expect(() => resolveAttachTarget({ ...bare, attachTo: undefined }, { kernel })).toThrow(/is not named/);
    expect(
      resolveAttachTarget({ ...bare, attachTo: undefined }, { kernel, target: { func: 'do_unlinkat' } }),
    ).toMatchObject({ btfId: kernel.find('do_unlinkat', 'func').id });
  });

  it('the caller may name another target, or a program to attach to', () => {
    expect(
      resolveAttachTarget(program('fentry/do_unlinkat'), { kernel, target: { func: 'vfs_read' } }),
    ).toMatchObject({ btfId: kernel.find('vfs_read', 'func').id });
    const fd = { fd: {} } as unknown as HasFd; // passed through untouched: no syscall here
    expect(resolveAttachTarget(program('freplace/verdict'), { kernel, target: { program: fd } })).toEqual({
      kind: 'program',
      func: 'verdict',
      program: fd,
    });
    // fentry on a BPF program's function, as libbpf does when given an attach program
    expect(resolveAttachTarget(program('fentry/verdict'), { kernel, target: { program: fd } })).toEqual({
      kind: 'program',
      func: 'verdict',
      program: fd,
    });
  });
});

describe('module attach targets', () => {
  // Module BTF stands in as any BTF holding functions vmlinux lacks: the object's own here.
  const objBtf = ObjectFile.read(fixture('freplace_target.bpf.o')).btf!;
  const verdict = objBtf.find('verdict', 'func').id;
  const modules: ModuleBtf[] = [
    { name: 'first_mod', id: 0, btf: ObjectFile.read(fixture('basics.bpf.o')).btf! },
    { name: 'test_mod', id: 0, btf: objBtf },
  ];

  it('module:function looks only in that module', () => {
    const t = resolveAttachTarget(program('fentry/test_mod:verdict'), { kernel, modules: () => modules });
    expect(t).toEqual({
      kind: 'kernel',
      btfId: verdict,
      module: 'test_mod',
      moduleId: 0,
      typeName: 'verdict',
    });
    expect(() =>
      resolveAttachTarget(program('fentry/first_mod:verdict'), { kernel, modules: () => modules }),
    ).toThrow(/no func 'verdict' in module 'first_mod'/);
  });

  it('a bare name vmlinux lacks is searched in every module, in order', () => {
    let asked = 0;
    const lazily = () => {
      asked++;
      return modules;
    };
    expect(resolveAttachTarget(program('fexit/verdict'), { kernel, modules: lazily })).toMatchObject({
      module: 'test_mod',
      btfId: verdict,
    });
    // vmlinux answers first: modules are not even read
    expect(resolveAttachTarget(program('fexit/do_unlinkat'), { kernel, modules: lazily })).toMatchObject({
      module: undefined,
    });
    expect(asked).toBe(1);
  });

  it('running-kernel module BTF, when it has any, splits over vmlinux', () => {
    // (this host may have no module BTF: then the list is empty and there is nothing to check)
    for (const m of kernelModuleBtfs()) {
      expect(m.btf.base).toBe(kernel);
      expect(m.name).not.toBe('vmlinux');
      // a function of the module's own resolves to it by module:function, with the module named
      const fn = [...m.btf.types()].find((t) => t.kind === 'func' && t.name);
      if (!fn) continue;
      const prep = prepareCollection(fixture('attach_fentry.bpf.o'), {
        attachTargets: { before_unlink: { func: `${m.name}:${fn.name}` } },
      });
      expect(prep.programs.get('before_unlink')!.target).toEqual({
        kind: 'kernel',
        btfId: fn.id,
        module: m.name,
        moduleId: m.id, // the module's BTF object, which the load opens by id
        typeName: fn.name,
      });
    }
  });
});

describe('prepareCollection', () => {
  it('gives every BTF-attached program its resolved target', () => {
    const prep = prepareCollection(fixture('attach_fentry.bpf.o'));
    const ids = Object.fromEntries([...prep.programs].map(([n, p]) => [n, p.target]));
    expect(ids).toEqual({
      before_unlink: {
        kind: 'kernel',
        btfId: kernel.find('do_unlinkat', 'func').id,
        module: undefined,
        typeName: 'do_unlinkat',
      },
      after_unlink: {
        kind: 'kernel',
        btfId: kernel.find('do_unlinkat', 'func').id,
        module: undefined,
        typeName: 'do_unlinkat',
      },
      on_file_open: {
        kind: 'kernel',
        btfId: kernel.find('bpf_lsm_file_open', 'func').id,
        module: undefined,
        typeName: 'bpf_lsm_file_open',
      },
    });
    expect(prepareCollection(fixture('maps.bpf.o')).programs.get('tail_entry')!.target).toBeUndefined();
  });

  it('fails before any syscall on a missing target, and on attachTargets for an unknown program', () => {
    expect(() => prepareCollection(fixture('freplace.bpf.o'))).toThrow(AttachTargetError);
    expect(() =>
      prepareCollection(fixture('attach_fentry.bpf.o'), { attachTargets: { nope: { func: 'x' } } }),
    ).toThrow(/attachTargets names program 'nope'/);
    expect(() =>
      prepareCollection(fixture('attach_fentry.bpf.o'), {
        attachTargets: { before_unlink: { func: 'no_such_function_bpfkit' } },
      }),
    ).toThrow(
      /program 'before_unlink' \(section 'fentry\/do_unlinkat'\): attach target 'no_such_function_bpfkit'/,
    );
  });
});
