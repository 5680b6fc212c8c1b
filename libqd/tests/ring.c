// SPDX-License-Identifier: MIT
/* Ring geometry, SQ submission and CQ reaping against rings in memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../src/ring.h"
#include "tap.h"

/* A fake pair of rings laid out through offsets, like QD_IOC_SETUP's. */
struct fake {
	struct qd_params p;
	char *sq, *cq;
	size_t sqbytes, cqbytes;
	struct qd_sqring s;
	struct qd_cqring c;
};

#define U32(base, off) (*(uint32_t *)((base) + (off)))

static void fake_init(struct fake *f, uint32_t sqn, uint32_t cqn,
		      uint32_t start)
{
	memset(f, 0, sizeof(*f));
	f->p.sq_entries = sqn;
	f->p.cq_entries = cqn;
	f->p.sq_off = (struct qd_sq_offsets){ .head = 4, .tail = 68,
		.ring_mask = 132, .ring_entries = 136, .flags = 140,
		.sqes = 192 };
	f->p.cq_off = (struct qd_cq_offsets){ .head = 64, .tail = 0,
		.ring_mask = 128, .ring_entries = 132, .flags = 136,
		.overflow = 140, .cqes = 256,
		.elems = 256 + cqn * sizeof(struct qd_cqe) };
	f->sqbytes = 192 + sqn * sizeof(struct qd_sqe);
	f->cqbytes = f->p.cq_off.elems + cqn * sizeof(struct qd_elem);
	f->sq = aligned_alloc(64, f->sqbytes);
	f->cq = aligned_alloc(64, (f->cqbytes + 63) / 64 * 64);
	memset(f->sq, 0, f->sqbytes);
	memset(f->cq, 0, f->cqbytes);
	U32(f->sq, 132) = sqn - 1;
	U32(f->sq, 136) = sqn;
	U32(f->cq, 128) = cqn - 1;
	U32(f->cq, 132) = cqn;
	U32(f->sq, 4) = U32(f->sq, 68) = start;
	U32(f->cq, 64) = U32(f->cq, 0) = start;
}

static int fake_map(struct fake *f)
{
	return qd__rings_init(&f->s, &f->c, f->sq, f->sqbytes, f->cq,
			      f->cqbytes, &f->p);
}

static void fake_fini(struct fake *f)
{
	free(f->sq);
	free(f->cq);
}

/* The "kernel" consumes n SQEs. */
static void kernel_consume(struct fake *f, uint32_t n)
{
	U32(f->sq, 4) += n;
}

/* The "kernel" posts a CQE (with an element for a POP). */
static void kernel_post(struct fake *f, uint64_t ud, int64_t res,
			unsigned int nsegs)
{
	uint32_t tail = U32(f->cq, 0), slot = tail & (f->p.cq_entries - 1);
	struct qd_cqe *cqe = (struct qd_cqe *)(f->cq + 256) + slot;
	struct qd_elem *e = (struct qd_elem *)(f->cq + f->p.cq_off.elems) + slot;
	unsigned int i;

	*cqe = (struct qd_cqe){ .user_data = ud, .res = res,
				.opcode = nsegs ? QD_OP_POP : QD_OP_PUSH };
	if (nsegs) {
		cqe->flags = QD_CQE_F_ELEM;
		cqe->nsegs = (uint8_t)nsegs;
		for (i = 0; i < nsegs; i++)
			e->segs[i] = (struct qd_seg){ .offset = ud * 100 + i,
						      .len = 10 + i,
						      .region = (uint16_t)i };
	}
	__atomic_store_n(&U32(f->cq, 0), tail + 1, __ATOMIC_RELEASE);
}

static void rings_init_locates_fields(void)
{
	struct fake f;

	fake_init(&f, 8, 16, 1234);
	REQUIRE(fake_map(&f) == 0);
	CHECK(f.s.khead == (uint32_t *)(f.sq + 4));
	CHECK(f.s.ktail == (uint32_t *)(f.sq + 68));
	CHECK(f.s.sqes == (struct qd_sqe *)(f.sq + 192));
	CHECK_EQ(f.s.entries, 8);
	CHECK_EQ(f.s.mask, 7);
	CHECK_EQ(f.s.tail, 1234);
	CHECK(f.c.khead == (uint32_t *)(f.cq + 64));
	CHECK(f.c.ktail == (uint32_t *)f.cq);
	CHECK(f.c.cqes == (struct qd_cqe *)(f.cq + 256));
	CHECK(f.c.elems == (struct qd_elem *)(f.cq + 256 + 16 * 32));
	CHECK_EQ(f.c.entries, 16);
	CHECK_EQ(f.c.head, 1234);
	fake_fini(&f);
}

static void rings_init_rejects_bad_geometry(void)
{
	struct fake f;

	fake_init(&f, 8, 16, 0);
	f.p.sq_off.tail = (uint32_t)f.sqbytes - 2;
	CHECK_EQ(fake_map(&f), -EINVAL);
	f.p.sq_off.tail = 70;			/* misaligned */
	CHECK_EQ(fake_map(&f), -EINVAL);
	f.p.sq_off.tail = 68;
	f.p.sq_off.sqes = 200;			/* array runs past the end */
	CHECK_EQ(fake_map(&f), -EINVAL);
	f.p.sq_off.sqes = 192;
	f.p.cq_off.elems += 64;
	CHECK_EQ(fake_map(&f), -EINVAL);
	f.p.cq_off.elems -= 64;
	f.p.cq_off.overflow = UINT32_MAX - 2;
	CHECK_EQ(fake_map(&f), -EINVAL);
	f.p.cq_off.overflow = 140;
	U32(f.sq, 132) = 3;			/* mask != entries - 1 */
	CHECK_EQ(fake_map(&f), -EINVAL);
	U32(f.sq, 132) = 7;
	f.p.cq_entries = 32;			/* ring says 16 */
	CHECK_EQ(fake_map(&f), -EINVAL);
	f.p.cq_entries = 16;
	U32(f.cq, 132) = 12;			/* not a power of two */
	U32(f.cq, 128) = 11;
	CHECK_EQ(fake_map(&f), -EINVAL);
	U32(f.cq, 132) = 16;
	U32(f.cq, 128) = 15;
	CHECK_EQ(fake_map(&f), 0);
	fake_fini(&f);
}

static void sq_fills_and_drains(void)
{
	struct qd_sqe *sqe;
	struct fake f;
	uint32_t i;

	fake_init(&f, 4, 8, 0);
	REQUIRE(fake_map(&f) == 0);
	for (i = 0; i < 4; i++) {
		sqe = qd_sq_next(&f.s);
		REQUIRE(sqe);
		sqe->user_data = i;
		qd_sq_commit(&f.s);
		CHECK_EQ(U32(f.sq, 68), i + 1);
	}
	CHECK_EQ(qd_sq_queued(&f.s), 4);
	CHECK(qd_sq_next(&f.s) == NULL);
	kernel_consume(&f, 3);
	CHECK_EQ(qd_sq_queued(&f.s), 1);
	sqe = qd_sq_next(&f.s);
	REQUIRE(sqe);
	CHECK(sqe == &f.s.sqes[0]);
	fake_fini(&f);
}

static void sq_next_zeroes_the_entry(void)
{
	struct qd_sqe *sqe;
	struct fake f;

	fake_init(&f, 2, 2, 0);
	REQUIRE(fake_map(&f) == 0);
	memset(f.s.sqes, 0xff, 2 * sizeof(struct qd_sqe));
	sqe = qd_sq_next(&f.s);
	REQUIRE(sqe);
	CHECK(sqe->resv[3] == 0 && sqe->resv0 == 0 && sqe->op_flags == 0 &&
	      sqe->flags == 0 && sqe->addr == 0);
	fake_fini(&f);
}

static void sq_wraps_at_2_32(void)
{
	struct qd_sqe *sqe;
	struct fake f;
	uint32_t i, start = UINT32_MAX - 2;

	fake_init(&f, 4, 8, start);
	REQUIRE(fake_map(&f) == 0);
	for (i = 0; i < 10; i++) {
		sqe = qd_sq_next(&f.s);
		REQUIRE(sqe);
		CHECK(sqe == &f.s.sqes[(start + i) & 3]);
		sqe->user_data = i;
		qd_sq_commit(&f.s);
		CHECK_EQ(qd_sq_queued(&f.s), 1);
		CHECK_EQ(f.s.sqes[(start + i) & 3].user_data, i);
		kernel_consume(&f, 1);
	}
	CHECK_EQ(U32(f.sq, 68), start + 10);
	CHECK_EQ(qd_sq_queued(&f.s), 0);
	fake_fini(&f);
}

static void sq_queued_clamps_corrupt_head(void)
{
	struct fake f;

	fake_init(&f, 4, 8, 100);
	REQUIRE(fake_map(&f) == 0);
	U32(f.sq, 4) = 200;			/* head past tail */
	CHECK_EQ(qd_sq_queued(&f.s), 4);
	CHECK(qd_sq_next(&f.s) == NULL);
	fake_fini(&f);
}

struct seen {
	uint64_t ud[64];
	int64_t res[64];
	struct qd_seg seg0[64];
	int n;
};

static int collect(void *arg, const struct qd_cqe *cqe,
		   const struct qd_elem *elem)
{
	struct seen *s = arg;

	s->ud[s->n] = cqe->user_data;
	s->res[s->n] = cqe->res;
	s->seg0[s->n] = (cqe->flags & QD_CQE_F_ELEM) ? elem->segs[0] :
						       (struct qd_seg){ 0 };
	s->n++;
	return 0;
}

static void cq_reaps_in_order_with_elements(void)
{
	struct seen s = { .n = 0 };
	struct fake f;

	fake_init(&f, 4, 8, 0);
	REQUIRE(fake_map(&f) == 0);
	CHECK_EQ(qd__cq_reap(&f.c, collect, &s), 0);
	kernel_post(&f, 1, 5, 0);
	kernel_post(&f, 2, 21, 2);
	kernel_post(&f, 3, -ECANCELED, 0);
	CHECK_EQ(qd_cq_ready(&f.c), 3);
	CHECK_EQ(qd__cq_reap(&f.c, collect, &s), 3);
	CHECK_EQ(s.n, 3);
	CHECK(s.ud[0] == 1 && s.ud[1] == 2 && s.ud[2] == 3);
	CHECK(s.res[0] == 5 && s.res[1] == 21 && s.res[2] == -ECANCELED);
	CHECK(s.seg0[1].offset == 200 && s.seg0[1].len == 10);
	CHECK_EQ(U32(f.cq, 64), 3);		/* head released */
	CHECK_EQ(qd_cq_ready(&f.c), 0);
	fake_fini(&f);
}

static void cq_wraps_at_2_32_and_full_ring(void)
{
	struct seen s = { .n = 0 };
	uint32_t start = UINT32_MAX - 5;
	struct fake f;
	int i, bad = 0;

	fake_init(&f, 4, 8, start);
	REQUIRE(fake_map(&f) == 0);
	for (i = 0; i < 8; i++)			/* a full ring */
		kernel_post(&f, (uint64_t)i, i, 1);
	CHECK_EQ(qd_cq_ready(&f.c), 8);
	CHECK_EQ(qd__cq_reap(&f.c, collect, &s), 8);
	for (i = 0; i < 8; i++) {
		kernel_post(&f, (uint64_t)(8 + i), 8 + i, 1);
		CHECK_EQ(qd__cq_reap(&f.c, collect, &s), 1);
	}
	CHECK_EQ(s.n, 16);
	for (i = 0; i < 16; i++)
		bad += s.ud[i] != (uint64_t)i ||
		       s.seg0[i].offset != (uint64_t)i * 100;
	CHECK_EQ(bad, 0);
	CHECK_EQ(U32(f.cq, 64), start + 16);
	fake_fini(&f);
}

static void cq_corrupt_tail_is_eio(void)
{
	struct seen s = { .n = 0 };
	struct fake f;

	fake_init(&f, 4, 8, 0);
	REQUIRE(fake_map(&f) == 0);
	U32(f.cq, 0) = 9;			/* 9 entries in a ring of 8 */
	CHECK_EQ(qd__cq_reap(&f.c, collect, &s), -EIO);
	CHECK_EQ(s.n, 0);
	U32(f.cq, 0) = UINT32_MAX;		/* behind the head */
	CHECK_EQ(qd__cq_reap(&f.c, collect, &s), -EIO);
	fake_fini(&f);
}

static void overflow_flag_is_read(void)
{
	struct fake f;

	fake_init(&f, 4, 8, 0);
	REQUIRE(fake_map(&f) == 0);
	CHECK(!qd_cq_overflowed(&f.c));
	U32(f.cq, 136) = QD_CQ_F_OVERFLOW;
	CHECK(qd_cq_overflowed(&f.c));
	fake_fini(&f);
}

struct picky {
	int budget;
	int n;
};

/* Takes CQEs while its budget lasts, then refuses (out of memory). */
static int picky(void *arg, const struct qd_cqe *cqe,
		 const struct qd_elem *elem)
{
	struct picky *p = arg;

	(void)cqe;
	(void)elem;
	if (!p->budget)
		return -ENOMEM;
	p->budget--;
	p->n++;
	return 0;
}

static void cq_reap_stops_where_fn_refuses(void)
{
	struct picky p = { .budget = 2 };
	struct fake f;

	fake_init(&f, 4, 8, 0);
	REQUIRE(fake_map(&f) == 0);
	kernel_post(&f, 1, 5, 0);
	kernel_post(&f, 2, 5, 0);
	kernel_post(&f, 3, 5, 0);
	CHECK_EQ(qd__cq_reap(&f.c, picky, &p), 2);
	CHECK_EQ(U32(f.cq, 64), 2);		/* only what it took */
	CHECK_EQ(qd_cq_ready(&f.c), 1);
	CHECK_EQ(qd__cq_reap(&f.c, picky, &p), -ENOMEM);
	CHECK_EQ(U32(f.cq, 64), 2);
	p.budget = 5;
	CHECK_EQ(qd__cq_reap(&f.c, picky, &p), 1);
	CHECK_EQ(p.n, 3);
	CHECK_EQ(f.c.head, 3);			/* the tail it read */
	fake_fini(&f);
}

static void ctx_seq_only_with_rings(void)
{
	uint32_t *seq = (uint32_t *)1;
	struct fake f;

	fake_init(&f, 4, 8, 0);
	f.p.cq_off.ctx_seq = 144;
	CHECK_EQ(qd__cq_ctx_seq(f.cq, f.cqbytes, &f.p, &seq), 0);
	CHECK(seq == NULL);			/* no QD_FEAT_RINGS */
	f.p.features = QD_FEAT_RINGS;
	CHECK_EQ(qd__cq_ctx_seq(f.cq, f.cqbytes, &f.p, &seq), 0);
	CHECK(seq == (uint32_t *)(f.cq + 144));
	f.p.cq_off.ctx_seq = (uint32_t)f.cqbytes - 2;
	CHECK_EQ(qd__cq_ctx_seq(f.cq, f.cqbytes, &f.p, &seq), -EINVAL);
	CHECK(seq == NULL);
	fake_fini(&f);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "ring";
	RUN(rings_init_locates_fields);
	RUN(rings_init_rejects_bad_geometry);
	RUN(sq_fills_and_drains);
	RUN(sq_next_zeroes_the_entry);
	RUN(sq_wraps_at_2_32);
	RUN(sq_queued_clamps_corrupt_head);
	RUN(cq_reaps_in_order_with_elements);
	RUN(cq_wraps_at_2_32_and_full_ring);
	RUN(cq_corrupt_tail_is_eio);
	RUN(overflow_flag_is_read);
	RUN(cq_reap_stops_where_fn_refuses);
	RUN(ctx_seq_only_with_rings);
	return tap_done();
}
