// SPDX-License-Identifier: GPL-2.0
// Built-in `syscalls` of @bpfkit/exporter: every system call entered, counted per command name
// (comm) and syscall number, from the raw_syscalls/sys_enter tracepoint. The map is per-CPU, so
// counting takes no lock; the exporter sums the CPUs when it reads.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct syscall_key {
	char comm[16];
	__u32 id;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct syscall_key);
	__type(value, __u64);
} syscall_counts SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int count_syscall(struct trace_event_raw_sys_enter *ctx)
{
	struct syscall_key key = {};
	long id = BPF_CORE_READ(ctx, id);

	if (id < 0)
		return 0;
	key.id = (__u32)id;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	__u64 *n = bpf_map_lookup_elem(&syscall_counts, &key);
	if (n) {
		*n += 1;
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&syscall_counts, &key, &one, BPF_NOEXIST);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
