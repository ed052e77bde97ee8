// SPDX-License-Identifier: GPL-2.0
// Built-in `tcpretrans` of @bpfkit/exporter: TCP segments retransmitted, counted per remote
// address, remote port and address family, from the tcp_retransmit_skb tracepoint (as a raw
// tracepoint: its first argument is the socket, read through CO-RE).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "exporter.h"

#define AF_INET 2
#define AF_INET6 10

struct retrans_key {
	__u8 daddr[16]; /* IPv6, or IPv4 mapped (::ffff:a.b.c.d) */
	__u16 dport;
	__u16 family;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct retrans_key);
	__type(value, __u64);
} tcp_retransmits SEC(".maps");

SEC("raw_tp/tcp_retransmit_skb")
int on_retransmit(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	struct retrans_key key = {};

	key.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	key.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (key.family == AF_INET) {
		__u32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		key.daddr[10] = 0xff;
		key.daddr[11] = 0xff;
		__builtin_memcpy(&key.daddr[12], &daddr, 4);
	} else if (key.family == AF_INET6) {
		BPF_CORE_READ_INTO(&key.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		return 0;
	}
	count_one(&tcp_retransmits, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
