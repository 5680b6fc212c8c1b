/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Scatter-gather validation shared by qd.ko, libqd and the host unit tests.
 * Freestanding: <linux/types.h> and the uapi header only.
 */
#ifndef _QD_SGA_H
#define _QD_SGA_H

#include <linux/types.h>
#include <linux/qd.h>

/*
 * Check the shape of a segment array: 1..QD_SGA_MAX segments, each of
 * non-zero length with a zero resv field. Returns 0 and the total byte count,
 * or -EINVAL. Region membership is checked separately.
 */
int qd_sga_check(const struct qd_seg *segs, __u32 nsegs, __u64 *total);

/* Whether [offset, offset + len) lies inside a region of region_len bytes. */
int qd_seg_in_region(__u64 offset, __u32 len, __u64 region_len);

#endif /* _QD_SGA_H */
