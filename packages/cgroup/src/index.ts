/**
 * @bpfkit/cgroup — cgroup v2 for eBPF: find the hierarchy, create cgroups and move processes,
 * attach programs (bpf_link or legacy BPF_PROG_ATTACH with override/multi/replace) and query
 * what runs.
 * @packageDocumentation
 */

/** Where the cgroup v2 hierarchy is mounted; defined in `@bpfkit/sys`, which its tests' fixtures share. */
export { cgroup2Mount } from '@bpfkit/sys';
export {
  attachCgroup,
  CGROUP_ATTACH_TYPES,
  type CgroupAttachMode,
  CgroupAttachment,
  type CgroupAttachOptions,
  type CgroupQuery,
  cgroupProgType,
  type LegacyFlag,
  queryCgroup,
} from './attach.js';
export { Cgroup } from './cgroup.js';
