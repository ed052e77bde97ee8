// SPDX-License-Identifier: GPL-2.0
// Helpers of the exporter's built-in programs: the bucket index of a log2 histogram, and
// counting one event under a key of a hash map.
#ifndef BPFKIT_EXPORTER_H
#define BPFKIT_EXPORTER_H

/*
 * The bucket index of a log2 histogram, as the exporter reads it (the bcc convention): 0 for 0,
 * otherwise floor(log2(v)) + 1, so bucket i holds values below 2^i. Capped at `max`.
 */
static __always_inline __u32 log2_slot(__u64 v, __u32 max)
{
	__u32 r = 0, s;

	if (v == 0)
		return 0;
	/* binary search for the highest set bit: no loop for the verifier to bound */
	s = (v > 0xffffffffULL) << 5; v >>= s; r |= s;
	s = (v > 0xffff) << 4; v >>= s; r |= s;
	s = (v > 0xff) << 3; v >>= s; r |= s;
	s = (v > 0xf) << 2; v >>= s; r |= s;
	s = (v > 0x3) << 1; v >>= s; r |= s;
	r |= (__u32)(v >> 1);
	r += 1;
	return r > max ? max : r;
}

/* Add one to the u64 counter at `key` of a hash map, creating it (at 1) when absent. */
static __always_inline void count_one(void *map, const void *key)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(map, key);

	if (n)
		__sync_fetch_and_add(n, 1);
	else if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) != 0 && (n = bpf_map_lookup_elem(map, key)))
		__sync_fetch_and_add(n, 1); /* another CPU created it meanwhile */
}

#endif
