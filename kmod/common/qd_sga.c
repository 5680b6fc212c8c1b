// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Scatter-gather validation, compiled into qd.ko and into the host unit
 * tests. Keep it freestanding.
 */
#ifdef __KERNEL__
#include <linux/errno.h>
#else
#include <errno.h>
#endif
#include "qd_sga.h"

int qd_sga_check(const struct qd_seg *segs, __u32 nsegs, __u64 *total)
{
	__u64 sum = 0;
	__u32 i;

	if (nsegs == 0 || nsegs > QD_SGA_MAX)
		return -EINVAL;
	for (i = 0; i < nsegs; i++) {
		if (segs[i].len == 0 || segs[i].resv)
			return -EINVAL;
		sum += segs[i].len;
	}
	*total = sum;
	return 0;
}

int qd_seg_in_region(__u64 offset, __u32 len, __u64 region_len)
{
	return offset < region_len && len <= region_len - offset;
}
