/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Ring index math shared by qd.ko, libqd and the host unit tests.
 * Freestanding: only <linux/types.h>. Indices are free-running 32-bit
 * counters; a slot is index & mask, so wraparound at 2^32 is harmless.
 */
#ifndef _QD_RING_H
#define _QD_RING_H

#include <linux/types.h>

static inline int qd_is_pow2(__u32 n)
{
	return n && !(n & (n - 1));
}

/* Entries between a consumer's head and a producer's tail. */
static inline __u32 qd_ring_used(__u32 head, __u32 tail)
{
	return tail - head;
}

/* A head/tail pair that claims more entries than the ring has is corrupt. */
static inline int qd_ring_valid(__u32 head, __u32 tail, __u32 entries)
{
	return qd_ring_used(head, tail) <= entries;
}

/* Free slots for the producer; a corrupt pair yields 0 (treated as full). */
static inline __u32 qd_ring_space(__u32 head, __u32 tail, __u32 entries)
{
	__u32 used = qd_ring_used(head, tail);

	return used >= entries ? 0 : entries - used;
}

static inline __u32 qd_ring_slot(__u32 index, __u32 mask)
{
	return index & mask;
}

#endif /* _QD_RING_H */
