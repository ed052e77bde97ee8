// SPDX-License-Identifier: GPL-2.0
// Built-in `biolatency` of @bpfkit/exporter: block request latency, issue to completion, as a
// log2 histogram in microseconds per disk. block_rq_issue stamps the request (by device and
// sector), block_rq_complete looks the stamp up and counts the difference in its bucket.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "exporter.h"

#define MAX_SLOT 27

struct rq_id {
	__u64 sector;
	__u32 dev;
	__u32 _pad;
};

struct hist_key {
	__u32 dev;
	__u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rq_id);
	__type(value, __u64);
} issued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hist_key);
	__type(value, __u64);
} bio_latency SEC(".maps");

SEC("tracepoint/block/block_rq_issue")
int rq_issue(struct trace_event_raw_block_rq *ctx)
{
	struct rq_id id = {};
	__u64 now = bpf_ktime_get_ns();

	id.dev = BPF_CORE_READ(ctx, dev);
	id.sector = BPF_CORE_READ(ctx, sector);
	bpf_map_update_elem(&issued, &id, &now, BPF_ANY);
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int rq_complete(struct trace_event_raw_block_rq_completion *ctx)
{
	struct rq_id id = {};
	struct hist_key key = {};
	__u64 *start;

	id.dev = BPF_CORE_READ(ctx, dev);
	id.sector = BPF_CORE_READ(ctx, sector);
	start = bpf_map_lookup_elem(&issued, &id);
	if (!start)
		return 0;
	__u64 delta_us = (bpf_ktime_get_ns() - *start) / 1000;
	bpf_map_delete_elem(&issued, &id);
	key.dev = id.dev;
	key.slot = log2_slot(delta_us, MAX_SLOT);
	count_one(&bio_latency, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
