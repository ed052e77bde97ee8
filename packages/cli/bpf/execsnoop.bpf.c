// SPDX-License-Identifier: GPL-2.0
// execsnoop for `bpfkit execsnoop`: one ring buffer record per exec with pid, ppid, uid, comm
// and the new program's argv, read through CO-RE from task->mm (arg_start .. arg_end).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define ARGS_SIZE 256

struct exec_event {
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__u32 args_len;
	char comm[16];
	char args[ARGS_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} events SEC(".maps");

SEC("tracepoint/sched/sched_process_exec")
int handle_exec(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	unsigned long len = end - start;
	if (len > ARGS_SIZE)
		len = ARGS_SIZE;
	e->args_len = len;
	/* read a fixed size (the verifier wants a constant); args_len says how much is argv */
	if (bpf_probe_read_user(e->args, ARGS_SIZE, (void *)start) < 0)
		e->args_len = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
