/**
 * @bpfkit/cgroup — cgroup v2 for eBPF: find the hierarchy, create cgroups, move processes into
 * them. Attaching programs to a cgroup (`attachCgroup`, `queryCgroup`) is in `@bpfkit/link`,
 * with every other attach kind.
 * @packageDocumentation
 */

/** Where the cgroup v2 hierarchy is mounted; defined in `@bpfkit/sys`, which its tests' fixtures share. */
export { cgroup2Mount } from '@bpfkit/sys';
export { Cgroup } from './cgroup.js';
