// SPDX-License-Identifier: MIT
/* The chunk table, sga validation and buffer translation. */
#include <errno.h>
#include <string.h>

#include "../src/region.h"
#include "tap.h"

static struct qd_chunk mk(uintptr_t base, size_t len, uint32_t region)
{
	return (struct qd_chunk){ .base = base, .len = len, .region = region,
				  .cls = QD_CLASS_USER };
}

static void find_by_address_and_boundaries(void)
{
	struct qd_chunk a = mk(0x10000, 0x1000, 3), b = mk(0x30000, 0x2000, 0),
			c = mk(0x20000, 0x1000, 7);
	struct qd_chunktab t;

	memset(&t, 0, sizeof(t));
	REQUIRE(qd__chunktab_add(&t, &a) == 0);
	REQUIRE(qd__chunktab_add(&t, &b) == 0);
	REQUIRE(qd__chunktab_add(&t, &c) == 0);
	CHECK_EQ(t.n, 3);
	CHECK(t.sorted[0] == &a && t.sorted[1] == &c && t.sorted[2] == &b);
	CHECK(qd__chunktab_find(&t, 0x0ffff) == NULL);
	CHECK(qd__chunktab_find(&t, 0x10000) == &a);
	CHECK(qd__chunktab_find(&t, 0x10fff) == &a);
	CHECK(qd__chunktab_find(&t, 0x11000) == NULL);
	CHECK(qd__chunktab_find(&t, 0x20800) == &c);
	CHECK(qd__chunktab_find(&t, 0x31fff) == &b);
	CHECK(qd__chunktab_find(&t, 0x32000) == NULL);
	CHECK(qd__chunktab_find(&t, UINTPTR_MAX) == NULL);
	CHECK(t.by_region[3] == &a && t.by_region[0] == &b &&
	      t.by_region[7] == &c);
	qd__chunktab_del(&t, &c);
	CHECK_EQ(t.n, 2);
	CHECK(qd__chunktab_find(&t, 0x20800) == NULL);
	CHECK(t.by_region[7] == NULL);
	CHECK(t.sorted[0] == &a && t.sorted[1] == &b);
}

static void overlap_and_bad_ids_rejected(void)
{
	struct qd_chunk a = mk(0x10000, 0x2000, 1);
	struct qd_chunk lo = mk(0xf000, 0x1001, 2), hi = mk(0x11fff, 0x10, 2),
			in = mk(0x10800, 0x10, 2), sameid = mk(0x40000, 0x1000, 1),
			bigid = mk(0x50000, 0x1000, QD_MAX_REGIONS),
			touch = mk(0xf000, 0x1000, 2), wrap = mk(UINTPTR_MAX - 10, 0x1000, 4);
	struct qd_chunktab t;

	memset(&t, 0, sizeof(t));
	REQUIRE(qd__chunktab_add(&t, &a) == 0);
	CHECK_EQ(qd__chunktab_add(&t, &lo), -EEXIST);
	CHECK_EQ(qd__chunktab_add(&t, &hi), -EEXIST);
	CHECK_EQ(qd__chunktab_add(&t, &in), -EEXIST);
	CHECK_EQ(qd__chunktab_add(&t, &sameid), -EEXIST);
	CHECK_EQ(qd__chunktab_add(&t, &bigid), -EINVAL);
	CHECK_EQ(qd__chunktab_add(&t, &wrap), -EINVAL);
	CHECK_EQ(qd__chunktab_fits(&t, 0x12000, 0), -EINVAL);
	CHECK_EQ(qd__chunktab_add(&t, &touch), 0);	/* adjacent is fine */
	CHECK_EQ(t.n, 2);
}

static void table_holds_max_regions(void)
{
	static struct qd_chunk c[QD_MAX_REGIONS + 1];
	struct qd_chunktab t;
	int i, bad = 0;

	memset(&t, 0, sizeof(t));
	/* Insert in a scrambled order; the table stays sorted. */
	for (i = 0; i < QD_MAX_REGIONS; i++) {
		int k = (i * 97) % QD_MAX_REGIONS;

		c[k] = mk(0x100000 + (uintptr_t)k * 0x10000, 0x8000, (uint32_t)i);
		bad += qd__chunktab_add(&t, &c[k]) != 0;
	}
	CHECK_EQ(bad, 0);
	for (i = 0; i < QD_MAX_REGIONS; i++) {
		bad += qd__chunktab_find(&t, c[i].base + 0x7fff) != &c[i];
		bad += qd__chunktab_find(&t, c[i].base + 0x8000) != NULL;
	}
	CHECK_EQ(bad, 0);
}

static void sga_shape_checked(void)
{
	char buf[16];
	struct qd_sga sga;

	memset(&sga, 0, sizeof(sga));
	CHECK_EQ(qd__sga_check(NULL), -EINVAL);
	CHECK_EQ(qd__sga_check(&sga), -EINVAL);		/* 0 segments */
	sga.numsegs = 1;
	CHECK_EQ(qd__sga_check(&sga), -EINVAL);		/* NULL buf */
	sga.segs[0].buf = buf;
	CHECK_EQ(qd__sga_check(&sga), -EINVAL);		/* len 0 */
	sga.segs[0].len = 1;
	CHECK_EQ(qd__sga_check(&sga), 0);
	sga.numsegs = QD_SGA_MAX + 1;
	CHECK_EQ(qd__sga_check(&sga), -EINVAL);
	sga.numsegs = QD_SGA_MAX;
	for (int i = 0; i < QD_SGA_MAX; i++)
		sga.segs[i] = (struct qd_sgaseg){ buf + i, 1 };
	CHECK_EQ(qd__sga_check(&sga), 0);
	sga.segs[5].len = 0;
	CHECK_EQ(qd__sga_check(&sga), -EINVAL);
}

static void translate_both_ways(void)
{
	static char mem[3 * 4096];
	struct qd_chunk a = mk((uintptr_t)mem, 4096, 9),
			b = mk((uintptr_t)mem + 4096, 8192, 2);
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_sga sga, back;
	struct qd_chunktab t;

	memset(&t, 0, sizeof(t));
	memset(&sga, 0, sizeof(sga));
	REQUIRE(qd__chunktab_add(&t, &a) == 0);
	REQUIRE(qd__chunktab_add(&t, &b) == 0);
	sga.numsegs = 3;
	sga.segs[0] = (struct qd_sgaseg){ mem, 4096 };		/* all of a */
	sga.segs[1] = (struct qd_sgaseg){ mem + 4096 + 100, 50 };
	sga.segs[2] = (struct qd_sgaseg){ mem + 3 * 4096 - 1, 1 }; /* b's last byte */
	REQUIRE(qd__sga_to_segs(&t, &sga, segs) == 0);
	CHECK(segs[0].region == 9 && segs[0].offset == 0 && segs[0].len == 4096);
	CHECK(segs[1].region == 2 && segs[1].offset == 100 && segs[1].len == 50);
	CHECK(segs[2].region == 2 && segs[2].offset == 8191 && segs[2].len == 1);
	CHECK(segs[0].resv == 0);
	memset(&back, 0, sizeof(back));
	REQUIRE(qd__segs_to_sga(&t, segs, 3, &back) == 0);
	CHECK_EQ(back.numsegs, 3);
	CHECK(back.segs[0].buf == mem && back.segs[0].len == 4096);
	CHECK(back.segs[1].buf == mem + 4196 && back.segs[1].len == 50);
	CHECK(back.segs[2].buf == mem + 3 * 4096 - 1);
}

static void translate_faults(void)
{
	static char mem[4 * 4096];
	struct qd_chunk a = mk((uintptr_t)mem, 4096, 0),
			b = mk((uintptr_t)mem + 4096, 4096, 1);
	struct qd_seg segs[QD_SGA_MAX], bad;
	struct qd_sga sga, back;
	struct qd_chunktab t;

	memset(&t, 0, sizeof(t));
	memset(&sga, 0, sizeof(sga));
	REQUIRE(qd__chunktab_add(&t, &a) == 0);
	REQUIRE(qd__chunktab_add(&t, &b) == 0);
	sga.numsegs = 1;
	/* Spans two chunks, even adjacent ones: not one region. */
	sga.segs[0] = (struct qd_sgaseg){ mem + 4000, 200 };
	CHECK_EQ(qd__sga_to_segs(&t, &sga, segs), -EFAULT);
	sga.segs[0] = (struct qd_sgaseg){ mem + 4096 + 4000, 97 };
	CHECK_EQ(qd__sga_to_segs(&t, &sga, segs), -EFAULT);
	sga.segs[0] = (struct qd_sgaseg){ mem + 2 * 4096, 1 };	/* unregistered */
	CHECK_EQ(qd__sga_to_segs(&t, &sga, segs), -EFAULT);
	sga.segs[0] = (struct qd_sgaseg){ mem - 1, 1 };
	CHECK_EQ(qd__sga_to_segs(&t, &sga, segs), -EFAULT);
	sga.numsegs = 2;
	sga.segs[0] = (struct qd_sgaseg){ mem, 1 };
	sga.segs[1] = (struct qd_sgaseg){ mem + 3 * 4096, 1 };	/* 2nd bad */
	CHECK_EQ(qd__sga_to_segs(&t, &sga, segs), -EFAULT);

	bad = (struct qd_seg){ .offset = 0, .len = 1, .region = 5 };
	CHECK_EQ(qd__segs_to_sga(&t, &bad, 1, &back), -EFAULT);
	bad = (struct qd_seg){ .offset = 4096, .len = 1, .region = 0 };
	CHECK_EQ(qd__segs_to_sga(&t, &bad, 1, &back), -EFAULT);
	bad = (struct qd_seg){ .offset = 4000, .len = 97, .region = 0 };
	CHECK_EQ(qd__segs_to_sga(&t, &bad, 1, &back), -EFAULT);
	bad = (struct qd_seg){ .offset = 0, .len = 1, .region = 999 };
	CHECK_EQ(qd__segs_to_sga(&t, &bad, 1, &back), -EFAULT);
	CHECK_EQ(qd__segs_to_sga(&t, segs, QD_SGA_MAX + 1, &back), -EFAULT);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "region";
	RUN(find_by_address_and_boundaries);
	RUN(overlap_and_bad_ids_rejected);
	RUN(table_holds_max_regions);
	RUN(sga_shape_checked);
	RUN(translate_both_ways);
	RUN(translate_faults);
	return tap_done();
}
