// SPDX-License-Identifier: GPL-2.0
// Built-in `execs` of @bpfkit/exporter: successful execve/execveat calls, counted per the new
// program's command name, from the sched/sched_process_exec tracepoint (it fires once the new
// image is in place, so comm is already the new program's).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "exporter.h"

struct exec_key {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct exec_key);
	__type(value, __u64);
} exec_counts SEC(".maps");

SEC("tracepoint/sched/sched_process_exec")
int count_exec(void *ctx)
{
	struct exec_key key = {};

	bpf_get_current_comm(key.comm, sizeof(key.comm));
	count_one(&exec_counts, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
