// SPDX-License-Identifier: GPL-2.0
// The bucket index of a log2 histogram, as the exporter reads it (the bcc convention): 0 for 0,
// otherwise floor(log2(v)) + 1, so bucket i holds values below 2^i. Capped at `max`.
#ifndef BPFKIT_LOG2_H
#define BPFKIT_LOG2_H

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

#endif
