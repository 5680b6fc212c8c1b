// SPDX-License-Identifier: GPL-2.0
/*
 * multishot: the SQE flag QD_SQE_F_SKIP_SUCCESS, multishot pops
 * (QD_POP_MULTISHOT, QD_CQE_F_MORE), QD_OP_CANCEL, and failed pushes that
 * give their element back in the CQE (QD_CQE_F_ELEM).
 *
 * SKIP_SUCCESS: no CQE when res >= 0, a CQE on failure. A multishot pop
 * posts one CQE per element with MORE set and ends with one CQE without it
 * (-ECANCELED when its queue closes or a cancel names it); with a full CQ
 * its completions park like any other, in order. A cancel names a pending
 * pop or push of its own context on sqe.qd by user_data (sqe.addr): 0 and
 * the op ends -ECANCELED, or -ENOENT.
 */
#include <pthread.h>
#include <sched.h>

#include "qd_raw.h"
#include "harness.h"

#define REGION_BYTES	(1024 * 1024)
#define SHORT_NS	(30 * QD_RAW_MS)	/* "stays pending" window */
#define LONG_NS		(3000 * QD_RAW_MS)	/* "must complete" bound */

/* --- helpers -------------------------------------------------------------- */

static struct qd_sqe sqe_cancel(int qd, __u64 target, __u64 user_data)
{
	struct qd_sqe s = {
		.opcode = QD_OP_CANCEL, .qd = qd, .addr = target, .user_data = user_data,
	};

	return s;
}

static struct qd_sqe sqe_pop_multi(int qd, __u64 user_data)
{
	struct qd_sqe s = qd_sqe_pop(qd, user_data);

	s.op_flags = QD_POP_MULTISHOT;
	return s;
}

static struct qd_sqe skip(struct qd_sqe s)
{
	s.flags |= QD_SQE_F_SKIP_SUCCESS;
	return s;
}

/* Element k: one segment, distinct offset and length. */
static struct qd_seg elem_seg(unsigned int region, unsigned int k)
{
	return qd_seg(region, (__u64)k * 128, 1 + k % 127);
}

/* Which k an element_seg() is, or -1. */
static int elem_k(const struct qd_elem *e, unsigned int nsegs, unsigned int region)
{
	unsigned int k = e->segs[0].offset / 128;

	if (nsegs != 1 || e->segs[0].offset % 128 || e->segs[0].len != 1 + k % 127 ||
	    e->segs[0].region != region)
		return -1;
	return (int)k;
}

FIXTURE(ms) {
	struct qd_raw r;
	char *buf;
	unsigned int region;
	int qd;
	struct qd_seg segs[4096];	/* push arrays must live until consumed */
};

FIXTURE_SETUP(ms)
{
	ASSERT_EQ(0, qd_raw_init(&self->r, 16, 32));
	self->buf = qd_raw_pages(REGION_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, REGION_BYTES, &self->region));
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &self->qd));
}

FIXTURE_TEARDOWN(ms)
{
	qd_raw_exit(&self->r);
	if (self->buf)
		munmap(self->buf, REGION_BYTES);
}

/* Queue an SQE on ring r and submit it: asserts it was consumed. */
#define SUBMIT_ON(r, sqe_) do {						\
	struct qd_sqe __s = (sqe_);					\
	ASSERT_EQ(0, qd_raw_queue_sqe((r), &__s));			\
	ASSERT_EQ(1, qd_raw_submit(r));					\
} while (0)
#define SUBMIT(sqe_)	SUBMIT_ON(&self->r, sqe_)

#define REAP_ON(r, cqe_, elem_) \
	ASSERT_EQ(0, qd_raw_wait_cqe((r), (cqe_), (elem_), LONG_NS))
#define REAP(cqe_, elem_)	REAP_ON(&self->r, cqe_, elem_)

#define NOTHING_MORE_ON(r) do {						\
	struct qd_cqe __c;						\
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe((r), &__c, NULL, SHORT_NS)) \
		TH_LOG("unexpected CQE user_data %llu res %lld flags %#x", \
		       __c.user_data, __c.res, __c.flags);		\
} while (0)
#define NOTHING_MORE()	NOTHING_MORE_ON(&self->r)

/* Push element k (segment kept in self->segs[k]). */
#define PUSH_K(k, ud, flags_) do {					\
	self->segs[k] = elem_seg(self->region, (k));			\
	struct qd_sqe __p = qd_sqe_push(self->qd, &self->segs[k], 1, (ud)); \
	__p.flags = (flags_);						\
	SUBMIT(__p);							\
} while (0)

/* A pop (oneshot) that must yield element k. */
#define POP_EXPECT_K(k) do {						\
	struct qd_cqe __c;						\
	struct qd_elem __e;						\
	SUBMIT(qd_sqe_pop(self->qd, 9999));				\
	REAP(&__c, &__e);						\
	EXPECT_EQ(9999u, __c.user_data);				\
	EXPECT_EQ(QD_CQE_F_ELEM, __c.flags);				\
	EXPECT_EQ((int)(k), elem_k(&__e, __c.nsegs, self->region));	\
} while (0)

/* --- negative ABI ---------------------------------------------------------- */

TEST_F(ms, setup_reports_the_features)
{
	const __u32 f = QD_FEAT_SKIP_SUCCESS | QD_FEAT_MULTISHOT;

	EXPECT_EQ(f, self->r.p.features & f);
}

TEST_F(ms, unknown_sqe_flag_bits_are_einval_even_with_skip_success)
{
	static const __u8 bad[] = { 2, 4, 0x40, 0x80, 0xfe, 0xff, 3 };
	struct qd_cqe cqe;
	unsigned int i;

	for (i = 0; i < sizeof(bad); i++) {
		struct qd_sqe s = qd_sqe_nop(100 + i);

		s.flags = bad[i];
		SUBMIT(s);
		/* a failure posts a CQE, SKIP_SUCCESS or not */
		REAP(&cqe, NULL);
		EXPECT_EQ(100u + i, cqe.user_data);
		EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("flags %#x", bad[i]);
		EXPECT_EQ(0u, cqe.flags);
	}
	/* the same on a push: nothing queued */
	self->segs[0] = elem_seg(self->region, 0);
	{
		struct qd_sqe p = qd_sqe_push(self->qd, &self->segs[0], 1, 7);

		p.flags = QD_SQE_F_SKIP_SUCCESS | 0x10;
		SUBMIT(p);
	}
	REAP(&cqe, NULL);
	EXPECT_EQ(7u, cqe.user_data);
	EXPECT_EQ(-EINVAL, cqe.res);
	SUBMIT(qd_sqe_pop(self->qd, 8));
	NOTHING_MORE();
}

TEST_F(ms, multishot_on_a_push_or_unknown_pop_flags_are_einval)
{
	struct qd_cqe cqe;
	struct qd_sqe s;

	self->segs[0] = elem_seg(self->region, 0);
	s = qd_sqe_push(self->qd, &self->segs[0], 1, 1);
	s.op_flags = QD_POP_MULTISHOT;
	SUBMIT(s);
	REAP(&cqe, NULL);
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(-EINVAL, cqe.res);
	EXPECT_EQ(0u, cqe.flags);
	/* pop bits past the defined ones (MULTISHOT, POOL) */
	s = qd_sqe_pop(self->qd, 2);
	s.op_flags = QD_POP_MULTISHOT | 4;
	SUBMIT(s);
	REAP(&cqe, NULL);
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(-EINVAL, cqe.res);
	EXPECT_EQ(0u, cqe.flags);
	/* the rejected push queued nothing, the rejected pop waits for nothing */
	SUBMIT(qd_sqe_pop(self->qd, 3));
	NOTHING_MORE();
}

TEST_F(ms, cancel_with_fields_it_does_not_use_is_einval)
{
	struct qd_cqe cqe;
	struct qd_sqe s;
	unsigned int i;

	SUBMIT(qd_sqe_pop(self->qd, 50));
	for (i = 0; i < 3; i++) {
		s = sqe_cancel(self->qd, 50, 60 + i);
		if (i == 0)
			s.nsegs = 1;
		else if (i == 1)
			s.op_flags = 1;
		else
			s.resv[2] = 1;
		SUBMIT(s);
		REAP(&cqe, NULL);
		EXPECT_EQ(60u + i, cqe.user_data);
		EXPECT_EQ(QD_OP_CANCEL, cqe.opcode);
		EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("case %u", i);
	}
	/* the pop is still pending */
	NOTHING_MORE();
	PUSH_K(3, 70, QD_SQE_F_SKIP_SUCCESS);
	REAP(&cqe, NULL);
	EXPECT_EQ(50u, cqe.user_data);
	EXPECT_EQ(self->segs[3].len, cqe.res);
}

/* --- SKIP_SUCCESS ---------------------------------------------------------- */

TEST_F(ms, skip_success_nop_posts_no_cqe)
{
	unsigned int seq0 = *self->r.ctx_seq;
	struct qd_cqe cqe;

	SUBMIT(skip(qd_sqe_nop(1)));
	SUBMIT(qd_sqe_nop(2));
	REAP(&cqe, NULL);
	EXPECT_EQ(2u, cqe.user_data);
	NOTHING_MORE();
	/* ctx_seq counts posted CQEs: one */
	EXPECT_EQ(seq0 + 1, qd_load_acquire(self->r.ctx_seq));
}

TEST_F(ms, skip_success_push_posts_nothing_and_queues_the_element)
{
	PUSH_K(5, 1, QD_SQE_F_SKIP_SUCCESS);
	PUSH_K(6, 2, QD_SQE_F_SKIP_SUCCESS);
	NOTHING_MORE();
	POP_EXPECT_K(5);
	POP_EXPECT_K(6);
	NOTHING_MORE();
}

TEST_F(ms, skip_success_failures_still_post_a_cqe)
{
	struct qd_seg zero = qd_seg(self->region, 0, 0);
	struct qd_seg outside = qd_seg(self->region, REGION_BYTES - 8, 64);
	struct qd_cqe cqe;
	struct qd_elem el;

	self->segs[0] = elem_seg(self->region, 0);
	SUBMIT(skip(qd_sqe_push(self->qd + 1000, &self->segs[0], 1, 1)));
	REAP(&cqe, &el);
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(-EBADF, cqe.res);
	/* whether it was built before the qd was looked up is the module's
	 * business; if it comes back, it comes back whole */
	if (cqe.flags & QD_CQE_F_ELEM)
		EXPECT_EQ(0, elem_k(&el, cqe.nsegs, self->region));
	SUBMIT(skip(qd_sqe_push(self->qd, &zero, 1, 2)));
	REAP(&cqe, NULL);
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(-EINVAL, cqe.res);
	EXPECT_EQ(0u, cqe.flags);	/* no element was built */
	SUBMIT(skip(qd_sqe_push(self->qd, &outside, 1, 3)));
	REAP(&cqe, NULL);
	EXPECT_EQ(3u, cqe.user_data);
	EXPECT_EQ(-EFAULT, cqe.res);
	EXPECT_EQ(0u, cqe.flags);
	/* A pop's success carries its element: it cannot skip it. */
	SUBMIT(skip(qd_sqe_pop(self->qd, 4)));
	REAP(&cqe, NULL);
	EXPECT_EQ(4u, cqe.user_data);
	EXPECT_EQ(-EINVAL, cqe.res);
	NOTHING_MORE();
}

TEST_F(ms, skip_success_pending_push_is_silent_until_it_fails)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	int q1;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 1, &q1));
	self->qd = q1;
	/* depth 1: the second push waits for room, the third too */
	PUSH_K(1, 1, QD_SQE_F_SKIP_SUCCESS);
	PUSH_K(2, 2, QD_SQE_F_SKIP_SUCCESS);
	PUSH_K(3, 3, QD_SQE_F_SKIP_SUCCESS);
	NOTHING_MORE();
	/* a pop makes room: push 2 completes, silently */
	POP_EXPECT_K(1);
	NOTHING_MORE();
	/* close: push 3 fails, its CQE comes, with its element */
	ASSERT_EQ(0, qd_raw_close(self->r.fd, q1));
	REAP(&cqe, &el);
	EXPECT_EQ(3u, cqe.user_data);
	EXPECT_EQ(QD_OP_PUSH, cqe.opcode);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags);
	EXPECT_EQ(3, elem_k(&el, cqe.nsegs, self->region));
	NOTHING_MORE();
}

TEST_F(ms, skip_success_deferred_nop_posts_no_cqe)
{
	struct qd_sqe a = qd_sqe_nop(1), b = qd_sqe_nop(2);
	struct qd_cqe cqe;

	a.nop_flags = QD_NOP_HARDIRQ;
	a.delay_ns = 1 * QD_RAW_MS;
	a.flags = QD_SQE_F_SKIP_SUCCESS;
	b.nop_flags = QD_NOP_SOFTIRQ;
	b.delay_ns = 20 * QD_RAW_MS;
	SUBMIT(a);
	SUBMIT(b);
	REAP(&cqe, NULL);
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(0, cqe.res);
	NOTHING_MORE();
}

/* --- failed pushes give their element back -------------------------------- */

TEST_F(ms, push_cancelled_by_close_gives_its_element_back)
{
	struct qd_seg segs[3] = {
		qd_seg(self->region, 4096, 10), qd_seg(self->region, 100, 2000),
		qd_seg(self->region, 65536 + 7, 1),
	};
	struct qd_cqe cqe;
	struct qd_elem el;
	int q1, i;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 1, &q1));
	self->qd = q1;
	PUSH_K(0, 1, 0);
	REAP(&cqe, NULL);
	EXPECT_EQ(1, cqe.res);
	SUBMIT(qd_sqe_push(q1, segs, 3, 2));
	NOTHING_MORE();
	ASSERT_EQ(0, qd_raw_close(self->r.fd, q1));
	REAP(&cqe, &el);
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(QD_OP_PUSH, cqe.opcode);
	EXPECT_EQ(q1, cqe.qd);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags);
	ASSERT_EQ(3, cqe.nsegs);
	for (i = 0; i < 3; i++)
		EXPECT_TRUE(qd_seg_eq(&segs[i], &el.segs[i])) TH_LOG("segment %d", i);
	/* and the region is no longer referenced */
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, self->region));
}

TEST_F(ms, push_cancelled_gives_its_element_back_and_queues_nothing)
{
	struct qd_cqe cqe, c2;
	struct qd_elem el, e2;
	int q1;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 1, &q1));
	self->qd = q1;
	PUSH_K(0, 1, QD_SQE_F_SKIP_SUCCESS);
	PUSH_K(1, 2, 0);
	NOTHING_MORE();
	SUBMIT(sqe_cancel(q1, 2, 3));
	REAP(&cqe, &el);
	REAP(&c2, &e2);
	if (cqe.user_data == 3) {	/* the order of the two is not specified */
		struct qd_cqe t = cqe;
		struct qd_elem te = el;

		cqe = c2; el = e2; c2 = t; e2 = te;
	}
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags);
	EXPECT_EQ(1, elem_k(&el, cqe.nsegs, self->region));
	EXPECT_EQ(3u, c2.user_data);
	EXPECT_EQ(QD_OP_CANCEL, c2.opcode);
	EXPECT_EQ(q1, c2.qd);
	EXPECT_EQ(0, c2.res);
	EXPECT_EQ(0u, c2.flags);
	/* only element 0 is in the queue */
	POP_EXPECT_K(0);
	SUBMIT(qd_sqe_pop(q1, 4));
	NOTHING_MORE();
}

/*
 * A push whose element could not be built (a bad segment after good ones)
 * fails with no element in its CQE: not a partial one.
 */
TEST_F(ms, push_rejected_by_a_bad_later_segment_gives_no_partial_element)
{
	struct qd_seg segs[4] = {
		qd_seg(self->region, 0, 100), qd_seg(self->region, 4096, 200),
		qd_seg(self->region, 8192, 300), qd_seg(self->region, 0, 1),
	};
	static const int want[] = { -EFAULT, -EFAULT, -EINVAL };
	struct qd_cqe cqe;
	struct qd_elem el;
	unsigned int i;

	for (i = 0; i < 3; i++) {
		struct qd_seg bad[4];

		memcpy(bad, segs, sizeof(bad));
		if (i == 0)
			bad[3] = qd_seg(self->region, REGION_BYTES - 4, 64);	/* outside */
		else if (i == 1)
			bad[2] = qd_seg(self->region + 7, 0, 64);		/* no such region */
		else
			bad[3].len = 0;
		SUBMIT(qd_sqe_push(self->qd, bad, 4, 10 + i));
		REAP(&cqe, &el);
		EXPECT_EQ(10u + i, cqe.user_data);
		EXPECT_EQ(want[i], cqe.res) TH_LOG("case %u", i);
		EXPECT_EQ(0u, cqe.flags & QD_CQE_F_ELEM)
			TH_LOG("case %u: an element of %u segments, first len %u", i, cqe.nsegs,
			       el.segs[0].len);
	}
	/* nothing was queued */
	SUBMIT(qd_sqe_pop(self->qd, 20));
	NOTHING_MORE();
}

/*
 * Twelve pushes of 1..8 segments wait on a full queue, submitted from a
 * ring whose CQ holds 4; the close fails them all: 4 CQEs in the ring, 8
 * parked. Each CQE, parked or not, carries its own push's element whole.
 */
TEST_F(ms, failed_pushes_give_their_elements_back_through_the_overflow_list)
{
	enum { N = 12 };
	static struct qd_seg segs[N][QD_SGA_MAX];
	unsigned int seen[N] = { 0 };
	struct qd_raw small;
	struct qd_cqe cqe;
	struct qd_elem el;
	unsigned int k, i;
	int q1;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 1, &q1));
	self->qd = q1;
	PUSH_K(0, 1, QD_SQE_F_SKIP_SUCCESS);
	ASSERT_EQ(0, qd_raw_ring_create(&self->r, &small, 4, 4));
	for (k = 0; k < N; k++) {
		unsigned int n = 1 + (k * 5) % QD_SGA_MAX;

		for (i = 0; i < n; i++)
			segs[k][i] = qd_seg(self->region, 4096 * (k + 1) + 300 * i, 1 + k * 10 + i);
		SUBMIT_ON(&small, qd_sqe_push(q1, segs[k], n, 100 + k));
	}
	NOTHING_MORE_ON(&small);
	ASSERT_EQ(0, qd_raw_close(self->r.fd, q1));
	EXPECT_EQ(4u, qd_raw_cq_ready(&small));
	for (k = 0; k < N; k++) {
		unsigned int j, n;

		REAP_ON(&small, &cqe, &el);
		j = cqe.user_data - 100;
		ASSERT_GT((unsigned int)N, j);
		seen[j]++;
		n = 1 + (j * 5) % QD_SGA_MAX;
		EXPECT_EQ(QD_OP_PUSH, cqe.opcode);
		EXPECT_EQ(-ECANCELED, cqe.res);
		EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags) TH_LOG("push %u", j);
		EXPECT_EQ(n, cqe.nsegs) TH_LOG("push %u", j);
		for (i = 0; i < n && i < cqe.nsegs; i++)
			EXPECT_TRUE(qd_seg_eq(&segs[j][i], &el.segs[i]))
				TH_LOG("push %u segment %u: offset %llu len %u", j, i,
				       (unsigned long long)el.segs[i].offset, el.segs[i].len);
	}
	for (k = 0; k < N; k++)
		EXPECT_EQ(1u, seen[k]) TH_LOG("push %u", k);
	NOTHING_MORE_ON(&small);
	qd_raw_exit(&small);
}

/* --- multishot pops -------------------------------------------------------- */

TEST_F(ms, multishot_pop_delivers_each_element_with_more)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	unsigned int k;

	SUBMIT(sqe_pop_multi(self->qd, 77));
	NOTHING_MORE();
	for (k = 0; k < 5; k++) {
		PUSH_K(k, 100 + k, QD_SQE_F_SKIP_SUCCESS);
		REAP(&cqe, &el);
		EXPECT_EQ(77u, cqe.user_data);
		EXPECT_EQ(QD_OP_POP, cqe.opcode);
		EXPECT_EQ(self->qd, cqe.qd);
		EXPECT_EQ(QD_CQE_F_ELEM | QD_CQE_F_MORE, cqe.flags);
		EXPECT_EQ((long long)self->segs[k].len, cqe.res);
		EXPECT_EQ((int)k, elem_k(&el, cqe.nsegs, self->region));
	}
	NOTHING_MORE();
	/* the queue closes: a last CQE without MORE */
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->qd));
	REAP(&cqe, NULL);
	EXPECT_EQ(77u, cqe.user_data);
	EXPECT_EQ(QD_OP_POP, cqe.opcode);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_EQ(0u, cqe.flags);
	NOTHING_MORE();
}

TEST_F(ms, multishot_pop_takes_elements_already_queued_in_order)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	unsigned int k;

	for (k = 0; k < 6; k++)
		PUSH_K(k, 100 + k, QD_SQE_F_SKIP_SUCCESS);
	SUBMIT(sqe_pop_multi(self->qd, 5));
	for (k = 0; k < 6; k++) {
		REAP(&cqe, &el);
		EXPECT_EQ(5u, cqe.user_data);
		EXPECT_EQ(QD_CQE_F_ELEM | QD_CQE_F_MORE, cqe.flags);
		EXPECT_EQ((int)k, elem_k(&el, cqe.nsegs, self->region));
	}
	/* still pending: takes the next one too */
	NOTHING_MORE();
	PUSH_K(6, 106, QD_SQE_F_SKIP_SUCCESS);
	REAP(&cqe, &el);
	EXPECT_EQ(QD_CQE_F_ELEM | QD_CQE_F_MORE, cqe.flags);
	EXPECT_EQ(6, elem_k(&el, cqe.nsegs, self->region));
}

TEST_F(ms, multishot_pop_ends_with_ecanceled_on_cancel)
{
	struct qd_cqe cqe, a, b;
	struct qd_elem el;

	SUBMIT(sqe_pop_multi(self->qd, 77));
	PUSH_K(0, 100, QD_SQE_F_SKIP_SUCCESS);
	REAP(&cqe, &el);
	EXPECT_EQ(QD_CQE_F_ELEM | QD_CQE_F_MORE, cqe.flags);
	SUBMIT(sqe_cancel(self->qd, 77, 88));
	REAP(&a, NULL);
	REAP(&b, NULL);
	if (a.user_data == 88) {
		struct qd_cqe t = a;

		a = b;
		b = t;
	}
	EXPECT_EQ(77u, a.user_data);
	EXPECT_EQ(-ECANCELED, a.res);
	EXPECT_EQ(0u, a.flags);
	EXPECT_EQ(88u, b.user_data);
	EXPECT_EQ(QD_OP_CANCEL, b.opcode);
	EXPECT_EQ(0, b.res);
	NOTHING_MORE();
	/* over: the next element stays in the queue */
	PUSH_K(1, 101, QD_SQE_F_SKIP_SUCCESS);
	NOTHING_MORE();
	POP_EXPECT_K(1);
	/* and cancelling it again finds nothing */
	SUBMIT(sqe_cancel(self->qd, 77, 89));
	REAP(&cqe, NULL);
	EXPECT_EQ(89u, cqe.user_data);
	EXPECT_EQ(-ENOENT, cqe.res);
}

/*
 * With a 4-entry CQ (pushes skip their CQEs), 40 elements: 4 in the ring,
 * the rest parked, then the queue closes: every element comes out in
 * order with MORE, then the final -ECANCELED, nothing lost or reordered.
 */
TEST_F(ms, multishot_with_a_full_cq_parks_in_order_and_ends_last)
{
	struct qd_raw small;
	struct qd_cqe cqe;
	struct qd_elem el;
	unsigned int k;

	ASSERT_EQ(0, qd_raw_ring_create(&self->r, &small, 2, 4));
	SUBMIT_ON(&small, sqe_pop_multi(self->qd, 1));
	for (k = 0; k < 40; k++)
		PUSH_K(k, 1000 + k, QD_SQE_F_SKIP_SUCCESS);
	EXPECT_EQ(4u, qd_raw_cq_ready(&small));
	EXPECT_EQ(QD_CQ_F_OVERFLOW, qd_load_acquire(small.cq_flags) & QD_CQ_F_OVERFLOW);
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->qd));
	for (k = 0; k < 40; k++) {
		REAP_ON(&small, &cqe, &el);
		EXPECT_EQ(1u, cqe.user_data);
		ASSERT_EQ(QD_CQE_F_ELEM | QD_CQE_F_MORE, cqe.flags) TH_LOG("CQE %u res %lld", k, cqe.res);
		ASSERT_EQ((int)k, elem_k(&el, cqe.nsegs, self->region));
	}
	REAP_ON(&small, &cqe, NULL);
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_EQ(0u, cqe.flags);
	NOTHING_MORE_ON(&small);
	EXPECT_EQ(0u, qd_load_acquire(small.cq_flags) & QD_CQ_F_OVERFLOW);
	NOTHING_MORE();	/* ring 0: the pushes skipped theirs */
	qd_raw_exit(&small);
}

/*
 * A pusher thread on its own ring keeps pushing (SKIP_SUCCESS) while the
 * main thread closes the queue. Whatever the interleaving: the multishot
 * pop delivered a prefix of the pushes, in order, each once, then one
 * final -ECANCELED; every later push failed with a CQE; delivered + failed
 * = pushed. Rounds alternate a 4-entry CQ left unreaped until the end
 * (everything parks) and one reaped concurrently.
 */
struct pusher {
	struct qd_raw ring;
	int qd;
	unsigned int region, n;
	struct qd_seg *segs;
	int stop_at;		/* push count after which main may close */
	int pushed;		/* atomic */
	unsigned int failed, bad;
	long long bad_res;
};

/* The pusher's CQEs are failures only (its pushes skip success). */
static void pusher_reap(struct pusher *p)
{
	struct qd_cqe c;

	while (qd_raw_peek_cqe(&p->ring, &c, NULL)) {
		if (c.res == -EBADF || c.res == -ECANCELED) {
			p->failed++;
		} else {
			p->bad++;
			p->bad_res = c.res;
		}
	}
}

static void *pusher_fn(void *arg)
{
	struct pusher *p = arg;
	unsigned int k;
	long long end;

	for (k = 0; k < p->n; k++) {
		struct qd_sqe s;

		p->segs[k] = elem_seg(p->region, k);
		s = skip(qd_sqe_push(p->qd, &p->segs[k], 1, k));
		while (qd_raw_queue_sqe(&p->ring, &s)) {
			if (qd_raw_submit(&p->ring) < 0)
				return NULL;
			pusher_reap(p);
		}
		if (qd_raw_submit(&p->ring) < 0)
			return NULL;
		__atomic_store_n(&p->pushed, (int)k + 1, __ATOMIC_RELEASE);
		pusher_reap(p);
	}
	/* the last failures (they may have parked: enter moves them in) */
	end = qd_now_ns() + LONG_NS;
	while (qd_raw_sq_pending(&p->ring) && qd_now_ns() < end)
		if (qd_raw_submit(&p->ring) < 0)
			break;
	for (;;) {
		struct qd_cqe c;

		if (qd_raw_wait_cqe(&p->ring, &c, NULL, SHORT_NS))
			break;
		if (c.res == -EBADF || c.res == -ECANCELED) {
			p->failed++;
		} else {
			p->bad++;
			p->bad_res = c.res;
		}
	}
	return NULL;
}

TEST_F(ms, multishot_on_a_queue_closed_while_elements_keep_arriving)
{
	enum { ROUNDS = 24, N = 400 };
	int round, mixed = 0;

	for (round = 0; round < ROUNDS; round++) {
		struct pusher p = { .n = N, .region = self->region, .segs = self->segs };
		unsigned int delivered = 0, finals = 0, after_final = 0, disorder = 0;
		int reap_early = round % 2, qd;
		struct qd_raw mring;
		pthread_t th;
		struct qd_cqe cqe;
		struct qd_elem el;

		ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qd));
		p.qd = qd;
		ASSERT_EQ(0, qd_raw_ring_create(&self->r, &p.ring, 16, 16));
		ASSERT_EQ(0, qd_raw_ring_create(&self->r, &mring, 4, 4));
		SUBMIT_ON(&mring, sqe_pop_multi(qd, 42));
		ASSERT_EQ(0, pthread_create(&th, NULL, pusher_fn, &p));
		/* close after a varying number of pushes */
		while (__atomic_load_n(&p.pushed, __ATOMIC_ACQUIRE) < (round * 37) % N) {
			if (reap_early)
				while (qd_raw_peek_cqe(&mring, &cqe, &el)) {
					if (cqe.flags & QD_CQE_F_MORE) {
						disorder += elem_k(&el, cqe.nsegs, self->region) !=
							    (int)delivered;
						delivered++;
					} else {
						finals++;
					}
				}
			sched_yield();
		}
		ASSERT_EQ(0, qd_raw_close(self->r.fd, qd));
		pthread_join(th, NULL);
		while (qd_raw_wait_cqe(&mring, &cqe, &el, SHORT_NS) == 0) {
			if (finals) {
				after_final++;
			} else if (cqe.flags & QD_CQE_F_MORE) {
				if (cqe.user_data != 42 || !(cqe.flags & QD_CQE_F_ELEM) ||
				    elem_k(&el, cqe.nsegs, self->region) != (int)delivered)
					disorder++;
				delivered++;
			} else {
				EXPECT_EQ(-ECANCELED, cqe.res) TH_LOG("round %d", round);
				EXPECT_EQ(0u, cqe.flags);
				finals++;
			}
		}
		EXPECT_EQ(0u, p.bad) TH_LOG("round %d: a push completed with %lld", round, p.bad_res);
		EXPECT_EQ(0u, disorder) TH_LOG("round %d", round);
		EXPECT_EQ(1u, finals) TH_LOG("round %d", round);
		EXPECT_EQ(0u, after_final) TH_LOG("round %d", round);
		EXPECT_EQ((unsigned int)N, delivered + p.failed)
			TH_LOG("round %d: %u delivered, %u failed", round, delivered, p.failed);
		mixed += delivered && p.failed;
		qd_raw_exit(&p.ring);
		qd_raw_exit(&mring);
		if (_metadata->passed == 0)
			break;
	}
	TH_LOG("%d of %d rounds closed the queue between pushes", mixed, ROUNDS);
}

/* --- cancel ----------------------------------------------------------------- */

TEST_F(ms, cancel_of_a_pending_pop)
{
	struct qd_cqe a, b;

	SUBMIT(qd_sqe_pop(self->qd, 5));
	SUBMIT(sqe_cancel(self->qd, 5, 6));
	REAP(&a, NULL);
	REAP(&b, NULL);
	if (a.user_data == 6) {
		struct qd_cqe t = a;

		a = b;
		b = t;
	}
	EXPECT_EQ(5u, a.user_data);
	EXPECT_EQ(QD_OP_POP, a.opcode);
	EXPECT_EQ(-ECANCELED, a.res);
	EXPECT_EQ(0u, a.flags);
	EXPECT_EQ(6u, b.user_data);
	EXPECT_EQ(QD_OP_CANCEL, b.opcode);
	EXPECT_EQ(self->qd, b.qd);
	EXPECT_EQ(0, b.res);
	/* an element pushed now stays in the queue */
	PUSH_K(2, 7, QD_SQE_F_SKIP_SUCCESS);
	NOTHING_MORE();
	POP_EXPECT_K(2);
}

TEST_F(ms, cancel_with_skip_success_posts_only_the_cancelled_cqe)
{
	struct qd_cqe cqe;

	SUBMIT(qd_sqe_pop(self->qd, 5));
	SUBMIT(skip(sqe_cancel(self->qd, 5, 6)));
	REAP(&cqe, NULL);
	EXPECT_EQ(5u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	NOTHING_MORE();
	/* a cancel that finds nothing fails: its CQE comes */
	SUBMIT(skip(sqe_cancel(self->qd, 5, 7)));
	REAP(&cqe, NULL);
	EXPECT_EQ(7u, cqe.user_data);
	EXPECT_EQ(-ENOENT, cqe.res);
}

TEST_F(ms, cancel_of_a_completed_or_unknown_op_is_enoent)
{
	struct qd_cqe cqe;

	PUSH_K(0, 1, 0);
	REAP(&cqe, NULL);
	SUBMIT(qd_sqe_pop(self->qd, 2));
	REAP(&cqe, NULL);
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags);
	SUBMIT(sqe_cancel(self->qd, 2, 3));	/* the pop */
	REAP(&cqe, NULL);
	EXPECT_EQ(3u, cqe.user_data);
	EXPECT_EQ(-ENOENT, cqe.res);
	SUBMIT(sqe_cancel(self->qd, 1, 4));	/* the push */
	REAP(&cqe, NULL);
	EXPECT_EQ(-ENOENT, cqe.res);
	SUBMIT(sqe_cancel(self->qd, 123456, 5));	/* never submitted */
	REAP(&cqe, NULL);
	EXPECT_EQ(-ENOENT, cqe.res);
	SUBMIT(sqe_cancel(self->qd, 5, 6));	/* itself, done */
	REAP(&cqe, NULL);
	EXPECT_EQ(6u, cqe.user_data);
	EXPECT_EQ(-ENOENT, cqe.res);
	NOTHING_MORE();
}

TEST_F(ms, cancel_names_the_queue_the_op_waits_on)
{
	struct qd_cqe cqe;
	int q2;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &q2));
	SUBMIT(qd_sqe_pop(self->qd, 5));
	SUBMIT(sqe_cancel(q2, 5, 6));
	REAP(&cqe, NULL);
	EXPECT_EQ(6u, cqe.user_data);
	EXPECT_EQ(q2, cqe.qd);
	EXPECT_EQ(-ENOENT, cqe.res);
	NOTHING_MORE();
	/* the pop is untouched */
	PUSH_K(1, 7, QD_SQE_F_SKIP_SUCCESS);
	REAP(&cqe, NULL);
	EXPECT_EQ(5u, cqe.user_data);
	EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags);
}

TEST_F(ms, cancel_on_a_qd_that_is_not_open_fails)
{
	struct qd_cqe cqe;

	SUBMIT(qd_sqe_pop(self->qd, 5));
	SUBMIT(sqe_cancel(self->qd + 1000, 5, 6));
	REAP(&cqe, NULL);
	EXPECT_EQ(6u, cqe.user_data);
	/* -EBADF as for any op on a qd that is not open (abi.md) */
	EXPECT_EQ(-EBADF, cqe.res);
	NOTHING_MORE();
}

TEST_F(ms, cancel_from_another_ring_of_the_context)
{
	struct qd_raw a;
	struct qd_cqe cqe;

	ASSERT_EQ(0, qd_raw_ring_create(&self->r, &a, 2, 4));
	SUBMIT(qd_sqe_pop(self->qd, 5));
	SUBMIT_ON(&a, sqe_cancel(self->qd, 5, 6));
	/* each CQE on the ring its SQE came from */
	REAP_ON(&a, &cqe, NULL);
	EXPECT_EQ(6u, cqe.user_data);
	EXPECT_EQ(0, cqe.res);
	REAP(&cqe, NULL);
	EXPECT_EQ(5u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	NOTHING_MORE();
	NOTHING_MORE_ON(&a);
	qd_raw_exit(&a);
}

TEST_F(ms, cancel_in_another_context_cannot_touch_ours)
{
	struct qd_raw o;
	struct qd_cqe cqe;
	int oqd = -1, i;

	ASSERT_EQ(0, qd_raw_init(&o, 4, 8));
	/* make the other context's queue carry the same qd number as ours */
	for (i = 0; i < 64 && oqd != self->qd; i++)
		ASSERT_EQ(0, qd_raw_queue(o.fd, 0, &oqd));
	ASSERT_EQ(self->qd, oqd);
	SUBMIT(qd_sqe_pop(self->qd, 5));
	SUBMIT_ON(&o, sqe_cancel(oqd, 5, 6));
	REAP_ON(&o, &cqe, NULL);
	EXPECT_EQ(6u, cqe.user_data);
	EXPECT_EQ(-ENOENT, cqe.res);
	/* ours is still pending and completes normally */
	NOTHING_MORE();
	PUSH_K(4, 7, QD_SQE_F_SKIP_SUCCESS);
	REAP(&cqe, NULL);
	EXPECT_EQ(5u, cqe.user_data);
	EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags);
	EXPECT_EQ((long long)self->segs[4].len, cqe.res);
	qd_raw_exit(&o);
}

TEST_HARNESS_MAIN
