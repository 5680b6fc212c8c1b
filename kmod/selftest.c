// SPDX-License-Identifier: GPL-2.0
/*
 * Load-time self-tests of the pure code shared with user space
 * (CONFIG_QD_SELFTEST). The same cases run on the host in libqd's unit
 * tests; here they prove the kernel build of that code agrees.
 */
#include <linux/kernel.h>
#include <linux/printk.h>

#include "common/qd_ring.h"
#include "common/qd_sga.h"
#include "selftest.h"

static bool __init qd_selftest_ring(void)
{
	bool ok = true;

	ok &= qd_ring_used(0xfffffffeU, 2) == 4;
	ok &= qd_ring_valid(0xfffffffcU, 4, 8);
	ok &= !qd_ring_valid(0, 9, 8);
	ok &= qd_ring_space(0, 8, 8) == 0;
	ok &= qd_ring_space(5, 3, 8) == 0;	/* corrupt: treated as full */
	ok &= qd_ring_space(0xffffffffU, 1, 8) == 6;
	ok &= qd_is_pow2(1) && qd_is_pow2(4096) && !qd_is_pow2(0) &&
	      !qd_is_pow2(12);
	return ok;
}

static bool __init qd_selftest_sga(void)
{
	struct qd_seg segs[QD_SGA_MAX + 1] = {};
	bool ok = true;
	u64 total = 0;
	int i;

	for (i = 0; i <= QD_SGA_MAX; i++)
		segs[i].len = 100;
	ok &= qd_sga_check(segs, 0, &total) == -EINVAL;
	ok &= qd_sga_check(segs, QD_SGA_MAX + 1, &total) == -EINVAL;
	ok &= !qd_sga_check(segs, QD_SGA_MAX, &total) &&
	      total == 100 * QD_SGA_MAX;
	segs[1].resv = 1;
	ok &= qd_sga_check(segs, 2, &total) == -EINVAL;
	segs[1].resv = 0;
	segs[1].len = 0;
	ok &= qd_sga_check(segs, 2, &total) == -EINVAL;

	ok &= qd_seg_in_region(0, 4096, 4096);
	ok &= !qd_seg_in_region(1, 4096, 4096);
	ok &= !qd_seg_in_region(4096, 1, 4096);
	ok &= !qd_seg_in_region(~0ULL, 2, 4096);
	return ok;
}

int __init qd_selftest(void)
{
	bool ok = qd_selftest_ring() & qd_selftest_sga();

	if (!ok) {
		pr_err("qd: self-tests failed\n");
		return -EINVAL;
	}
	pr_info("qd: self-tests passed\n");
	return 0;
}
