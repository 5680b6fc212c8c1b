// SPDX-License-Identifier: MIT
/*
 * The code qd.ko shares with user space (kmod/common): ring index math and
 * segment-array validation, run on the host under the sanitizers.
 */
#include <errno.h>
#include <string.h>

#include "qd_ring.h"
#include "qd_sga.h"
#include "tap.h"

static void ring_math(void)
{
	CHECK(qd_is_pow2(1) && qd_is_pow2(4096) && !qd_is_pow2(0) &&
	      !qd_is_pow2(12));
	CHECK_EQ(qd_ring_used(10, 14), 4);
	CHECK_EQ(qd_ring_used(UINT32_MAX - 1, 2), 4);
	CHECK(qd_ring_valid(UINT32_MAX - 1, 2, 4));
	CHECK(!qd_ring_valid(UINT32_MAX - 1, 3, 4));
	CHECK(!qd_ring_valid(5, 4, 4));
	CHECK_EQ(qd_ring_space(0, 4, 4), 0);
	CHECK_EQ(qd_ring_space(UINT32_MAX, 1, 4), 2);
	CHECK_EQ(qd_ring_space(5, 4, 4), 0);		/* corrupt: full */
	CHECK_EQ(qd_ring_slot(UINT32_MAX, 7), 7);
	CHECK_EQ(qd_ring_slot(8, 7), 0);
}

static void sga_check(void)
{
	struct qd_seg segs[QD_SGA_MAX + 1];
	__u64 total = 0;
	int i;

	memset(segs, 0, sizeof(segs));
	for (i = 0; i <= QD_SGA_MAX; i++)
		segs[i].len = 100;
	CHECK_EQ(qd_sga_check(segs, 0, &total), -EINVAL);
	CHECK_EQ(qd_sga_check(segs, QD_SGA_MAX + 1, &total), -EINVAL);
	CHECK_EQ(qd_sga_check(segs, QD_SGA_MAX, &total), 0);
	CHECK_EQ(total, 100 * QD_SGA_MAX);
	segs[1].len = UINT32_MAX;
	CHECK_EQ(qd_sga_check(segs, 2, &total), 0);
	CHECK_EQ(total, 100ULL + UINT32_MAX);
	segs[1].resv = 1;
	CHECK_EQ(qd_sga_check(segs, 2, &total), -EINVAL);
	segs[1].resv = 0;
	segs[0].len = 0;
	CHECK_EQ(qd_sga_check(segs, 2, &total), -EINVAL);
}

static void seg_in_region(void)
{
	CHECK(qd_seg_in_region(0, 4096, 4096));
	CHECK(qd_seg_in_region(4095, 1, 4096));
	CHECK(!qd_seg_in_region(4095, 2, 4096));
	CHECK(!qd_seg_in_region(4096, 1, 4096));
	CHECK(!qd_seg_in_region(UINT64_MAX, 2, 4096));
	CHECK(!qd_seg_in_region(UINT64_MAX - 1, UINT32_MAX, UINT64_MAX));
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "shared";
	RUN(ring_math);
	RUN(sga_check);
	RUN(seg_in_region);
	return tap_done();
}
