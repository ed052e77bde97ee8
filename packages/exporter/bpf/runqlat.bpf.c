// SPDX-License-Identifier: GPL-2.0
// Built-in `runqlat` of @bpfkit/exporter: how long runnable tasks wait for a CPU, as one log2
// histogram in microseconds. A task is stamped when it is woken (sched_wakeup,
// sched_wakeup_new) or preempted while still runnable (sched_switch, prev_state 0); the switch
// that puts it on a CPU counts the wait.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "exporter.h"

#define MAX_SLOT 27

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} runnable_since SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SLOT + 1);
	__type(key, __u32);
	__type(value, __u64);
} runq_latency SEC(".maps");

static __always_inline void stamp(__u32 pid)
{
	__u64 now = bpf_ktime_get_ns();

	if (pid)
		bpf_map_update_elem(&runnable_since, &pid, &now, BPF_ANY);
}

SEC("tracepoint/sched/sched_wakeup")
int on_wakeup(struct trace_event_raw_sched_wakeup_template *ctx)
{
	stamp(BPF_CORE_READ(ctx, pid));
	return 0;
}

SEC("tracepoint/sched/sched_wakeup_new")
int on_wakeup_new(struct trace_event_raw_sched_wakeup_template *ctx)
{
	stamp(BPF_CORE_READ(ctx, pid));
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int on_switch(struct trace_event_raw_sched_switch *ctx)
{
	__u32 next = BPF_CORE_READ(ctx, next_pid);
	__u64 *since, *n;

	if (BPF_CORE_READ(ctx, prev_state) == 0)
		stamp(BPF_CORE_READ(ctx, prev_pid));
	since = bpf_map_lookup_elem(&runnable_since, &next);
	if (!since)
		return 0;
	__u64 delta_us = (bpf_ktime_get_ns() - *since) / 1000;
	bpf_map_delete_elem(&runnable_since, &next);
	__u32 slot = log2_slot(delta_us, MAX_SLOT);
	n = bpf_map_lookup_elem(&runq_latency, &slot);
	if (n)
		*n += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
