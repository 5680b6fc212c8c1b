// SPDX-License-Identifier: MIT
/* The allocator's arithmetic and per-chunk buffer bookkeeping. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../src/alloc.h"
#include "tap.h"

static void size_classes(void)
{
	CHECK_EQ(qd__size_class(0), -EINVAL);
	CHECK_EQ(qd__size_class(1), 0);
	CHECK_EQ(qd__size_class(64), 0);
	CHECK_EQ(qd__size_class(65), 1);
	CHECK_EQ(qd__size_class(128), 1);
	CHECK_EQ(qd__size_class(129), 2);
	CHECK_EQ(qd__size_class(4096), 6);
	CHECK_EQ(qd__size_class(4097), 7);
	CHECK_EQ(qd__size_class((size_t)1 << 30), QD_NCLASSES - 1);
	CHECK_EQ(qd__size_class(((size_t)1 << 30) + 1), -EINVAL);
	CHECK_EQ(qd__size_class(SIZE_MAX), -EINVAL);
	CHECK_EQ(qd__class_size(0), 64);
	CHECK_EQ(qd__class_size(QD_NCLASSES - 1), (size_t)1 << 30);
}

static void every_size_fits_its_class(void)
{
	size_t s;
	int bad = 0, cls;

	for (s = 1; s <= (1 << 20); s += s < 4096 ? 1 : 4093) {
		cls = qd__size_class(s);
		bad += cls < 0 || qd__class_size(cls) < s ||
		       (cls > 0 && qd__class_size(cls - 1) >= s);
	}
	CHECK_EQ(bad, 0);
}

static void chunk_sizes(void)
{
	int cls, bad = 0;
	unsigned int n;

	CHECK_EQ(qd__chunk_bytes(0, 0), QD_CHUNK_MIN);		/* 64 B */
	CHECK_EQ(qd__chunk_bytes(0, 1), 2 * QD_CHUNK_MIN);
	CHECK_EQ(qd__chunk_bytes(0, 100), QD_CHUNK_MAX);
	CHECK_EQ(qd__chunk_bytes(qd__size_class(65536), 0), 1 << 20);
	CHECK_EQ(qd__chunk_bytes(qd__size_class(1 << 20), 0), QD_CHUNK_MAX);
	CHECK_EQ(qd__chunk_bytes(qd__size_class(3 << 20), 5), 4 << 20);
	CHECK_EQ(qd__chunk_bytes(QD_NCLASSES - 1, 0), (size_t)1 << 30);
	CHECK_EQ(qd__chunk_min_bytes(0), QD_CHUNK_MIN);
	CHECK_EQ(qd__chunk_min_bytes(qd__size_class(1 << 20)), 1 << 20);
	/* Page multiples, room for a buffer, no more than needed. */
	for (cls = 0; cls < QD_NCLASSES; cls++) {
		for (n = 0; n < 8; n++) {
			size_t b = qd__chunk_bytes(cls, n);

			bad += b % 65536 || b < qd__class_size(cls) ||
			       (b > QD_CHUNK_MAX && b != qd__class_size(cls));
			bad += b < qd__chunk_min_bytes(cls);
		}
	}
	CHECK_EQ(bad, 0);
}

static void chunk_buffers(void)
{
	struct qd_chunk c;
	void *p[1024];
	int i, bad = 0;
	char *mem;

	mem = aligned_alloc(4096, 65536);
	REQUIRE(mem);
	memset(&c, 0, sizeof(c));
	c.base = (uintptr_t)mem;
	c.len = 65536;
	REQUIRE(qd__chunk_bufs_init(&c, 0) == 0);
	CHECK_EQ(c.nbufs, 1024);
	CHECK_EQ(c.nfree, 1024);
	for (i = 0; i < 1024; i++) {
		p[i] = qd__chunk_take(&c);
		bad += p[i] != mem + 64 * i;	/* low addresses first */
		bad += (uintptr_t)p[i] % 64 != 0;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(c.nfree, 0);
	CHECK_EQ(qd__chunk_index(&c, (uintptr_t)mem + 64 * 5 + 10), 5);
	CHECK_EQ(qd__chunk_index(&c, (uintptr_t)mem + 65536), -EINVAL);
	CHECK_EQ(qd__chunk_index(&c, (uintptr_t)mem - 1), -EINVAL);
	qd__chunk_give(&c, 5);
	CHECK_EQ(c.nfree, 1);
	/* A freed buffer is not live: a second free is caught. */
	CHECK_EQ(qd__chunk_index(&c, (uintptr_t)p[5]), -EINVAL);
	CHECK(qd__chunk_take(&c) == p[5]);
	CHECK_EQ(qd__chunk_index(&c, (uintptr_t)p[5]), 5);
	qd__chunk_bufs_fini(&c);
	CHECK(c.freestk == NULL && c.used == NULL);
	free(mem);
}

static void user_chunk_has_no_buffers(void)
{
	struct qd_chunk c = { .base = 0x10000, .len = 4096,
			      .cls = QD_CLASS_USER };

	CHECK_EQ(qd__chunk_index(&c, 0x10000), -EINVAL);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "alloc";
	RUN(size_classes);
	RUN(every_size_fits_its_class);
	RUN(chunk_sizes);
	RUN(chunk_buffers);
	RUN(user_chunk_has_no_buffers);
	return tap_done();
}
