// SPDX-License-Identifier: GPL-2.0
/*
 * memq: memory queues — zero-copy push/pop, FIFO order, pending pops,
 * backpressure, close, CQ overflow and max_inflight — through the raw ABI,
 * and the zero-copy round trip through libqd.
 */
#include <qd.h>

#include "qd_raw.h"
#include "harness.h"

#define REGION_BYTES	(64 * 1024)
#define SHORT_NS	(30 * QD_RAW_MS)	/* "stays pending" window */
#define LONG_NS		(2000 * QD_RAW_MS)	/* "must complete" bound */

FIXTURE(memq) {
	struct qd_raw r;
	char *buf;
	unsigned int region;
	int qd;
};

/* A context with sq/cq entries, a registered region and a default queue. */
#define MEMQ_INIT(sq, cq) do {						\
	ASSERT_EQ(0, qd_raw_init(&self->r, (sq), (cq)));		\
	self->buf = qd_raw_pages(REGION_BYTES);				\
	ASSERT_NE(NULL, self->buf);					\
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, REGION_BYTES, \
				     &self->region));			\
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &self->qd));		\
} while (0)

#define MEMQ_FINI() do {						\
	qd_raw_exit(&self->r);						\
	if (self->buf)							\
		munmap(self->buf, REGION_BYTES);			\
} while (0)

FIXTURE_SETUP(memq)
{
	MEMQ_INIT(16, 32);
}

FIXTURE_TEARDOWN(memq)
{
	MEMQ_FINI();
}

/* Queue an SQE and submit everything pending; asserts all were consumed. */
#define SUBMIT(sqe_) do {						\
	struct qd_sqe __s = (sqe_);					\
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &__s));			\
	ASSERT_EQ(1, qd_raw_submit(&self->r));				\
} while (0)

#define REAP(cqe_, elem_) \
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, (cqe_), (elem_), LONG_NS))

#define NOTHING_MORE() do {						\
	struct qd_cqe __c;						\
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &__c, NULL, SHORT_NS)) \
		TH_LOG("unexpected CQE user_data %llu res %lld",	\
		       __c.user_data, __c.res);				\
} while (0)

static void fill(char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (char)(seed * 131 + i * 7);
}

static int check(const char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != (char)(seed * 131 + i * 7))
			return 0;
	return 1;
}

TEST_F(memq, push_then_pop_returns_same_segment_and_payload)
{
	struct qd_seg seg = qd_seg(self->region, 4096 + 24, 1000);
	struct qd_cqe cqe;
	struct qd_elem el;

	fill(self->buf + seg.offset, seg.len, 1);
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 10));
	REAP(&cqe, NULL);
	EXPECT_EQ(10u, cqe.user_data);
	EXPECT_EQ(QD_OP_PUSH, cqe.opcode);
	EXPECT_EQ(self->qd, cqe.qd);
	EXPECT_EQ(1000, cqe.res);
	EXPECT_EQ(0u, cqe.flags & QD_CQE_F_ELEM);

	SUBMIT(qd_sqe_pop(self->qd, 11));
	REAP(&cqe, &el);
	EXPECT_EQ(11u, cqe.user_data);
	EXPECT_EQ(QD_OP_POP, cqe.opcode);
	EXPECT_EQ(self->qd, cqe.qd);
	EXPECT_EQ(1000, cqe.res);
	EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags & QD_CQE_F_ELEM);
	ASSERT_EQ(1, cqe.nsegs);
	EXPECT_TRUE(qd_seg_eq(&seg, &el.segs[0]))
		TH_LOG("popped region %u offset %llu len %u", el.segs[0].region,
		       el.segs[0].offset, el.segs[0].len);
	EXPECT_TRUE(check(self->buf + el.segs[0].offset, el.segs[0].len, 1));
}

TEST_F(memq, multi_segment_element_pops_whole)
{
	struct qd_seg segs[QD_SGA_MAX];
	unsigned int id2, i;
	long long total = 0;
	struct qd_cqe cqe;
	struct qd_elem el;
	char *buf2 = qd_raw_pages(8192);

	ASSERT_NE(NULL, buf2);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, buf2, 8192, &id2));
	for (i = 0; i < QD_SGA_MAX; i++) {
		/* alternate regions, different offsets and lengths */
		segs[i] = qd_seg(i % 2 ? id2 : self->region, 100 + 700 * i, 1 + 97 * i);
		total += segs[i].len;
	}
	SUBMIT(qd_sqe_push(self->qd, segs, QD_SGA_MAX, 1));
	REAP(&cqe, NULL);
	EXPECT_EQ(total, cqe.res);
	SUBMIT(qd_sqe_pop(self->qd, 2));
	REAP(&cqe, &el);
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(total, cqe.res);
	ASSERT_EQ(QD_SGA_MAX, cqe.nsegs);
	for (i = 0; i < QD_SGA_MAX; i++)
		EXPECT_TRUE(qd_seg_eq(&segs[i], &el.segs[i])) TH_LOG("segment %u", i);
	munmap(buf2, 8192);
}

TEST_F(memq, fifo_order_over_many_elements)
{
	struct qd_raw *r = &self->r;
	const unsigned int n = 400;
	unsigned int i, done, next_pop = 0;
	struct qd_seg segs[16];
	struct qd_cqe cqe;
	struct qd_elem el;

	/* pushes in batches of 16, reaped as they complete */
	for (done = 0; done < n; ) {
		unsigned int b = n - done < 16 ? n - done : 16;

		for (i = 0; i < b; i++) {
			struct qd_sqe s;

			segs[i] = qd_seg(self->region, (done + i) * 64 % REGION_BYTES,
					 1 + (done + i) % 64);
			s = qd_sqe_push(self->qd, &segs[i], 1, done + i);
			ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
		}
		ASSERT_EQ((int)b, qd_raw_submit(r));
		for (i = 0; i < b; i++) {
			REAP(&cqe, NULL);
			ASSERT_EQ(1 + (long long)(cqe.user_data % 64), cqe.res);
		}
		done += b;
	}
	/* pops in batches of 16: element k must come back k-th */
	for (done = 0; done < n; ) {
		unsigned int b = n - done < 16 ? n - done : 16;

		for (i = 0; i < b; i++) {
			struct qd_sqe s = qd_sqe_pop(self->qd, 100000 + done + i);

			ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
		}
		ASSERT_EQ((int)b, qd_raw_submit(r));
		for (i = 0; i < b; i++) {
			REAP(&cqe, &el);
			ASSERT_EQ(100000u + next_pop, cqe.user_data);
			ASSERT_EQ(1, cqe.nsegs);
			ASSERT_EQ(next_pop * 64 % REGION_BYTES, el.segs[0].offset)
				TH_LOG("pop %u", next_pop);
			ASSERT_EQ(1 + next_pop % 64, el.segs[0].len);
			next_pop++;
		}
		done += b;
	}
	NOTHING_MORE();
}

TEST_F(memq, pop_on_empty_queue_stays_pending_until_push)
{
	struct qd_raw *r = &self->r;
	struct qd_seg seg = qd_seg(self->region, 512, 77);
	struct qd_sqe s = qd_sqe_pop(self->qd, 1);
	struct qd_cqe cqe;
	struct qd_elem el;
	int i, got_pop = 0;

	ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	/* consumed, but nothing completes */
	EXPECT_EQ(1, qd_raw_enter(r, 1, 1, QD_RAW_WAIT, SHORT_NS));
	EXPECT_EQ(0u, qd_raw_cq_ready(r));
	NOTHING_MORE();

	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 2));
	for (i = 0; i < 2; i++) {
		REAP(&cqe, &el);
		EXPECT_EQ(77, cqe.res);
		if (cqe.user_data == 1) {
			got_pop++;
			ASSERT_EQ(1, cqe.nsegs);
			EXPECT_TRUE(qd_seg_eq(&seg, &el.segs[0]));
		} else {
			EXPECT_EQ(2u, cqe.user_data);
		}
	}
	EXPECT_EQ(1, got_pop);
	/* the element went to the pop, not into the queue */
	SUBMIT(qd_sqe_pop(self->qd, 3));
	NOTHING_MORE();
}

TEST_F(memq, pending_pops_are_served_in_submission_order)
{
	struct qd_raw *r = &self->r;
	struct qd_seg segs[4];
	struct qd_cqe cqe;
	struct qd_elem el;
	int i, pops = 0;

	for (i = 0; i < 4; i++) {
		struct qd_sqe s = qd_sqe_pop(self->qd, 10 + i);

		ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	}
	ASSERT_EQ(4, qd_raw_submit(r));
	NOTHING_MORE();
	for (i = 0; i < 4; i++) {
		segs[i] = qd_seg(self->region, 1024 * i, 10 + i);
		SUBMIT(qd_sqe_push(self->qd, &segs[i], 1, 20 + i));
	}
	for (i = 0; i < 8; i++) {
		REAP(&cqe, &el);
		if (cqe.opcode != QD_OP_POP)
			continue;
		pops++;
		/* pop 10+k gets element k */
		ASSERT_LE(10u, cqe.user_data);
		ASSERT_GT(14u, cqe.user_data);
		EXPECT_TRUE(qd_seg_eq(&segs[cqe.user_data - 10], &el.segs[0]))
			TH_LOG("pop %llu got offset %llu", cqe.user_data, el.segs[0].offset);
	}
	EXPECT_EQ(4, pops);
}

TEST_F(memq, close_with_pending_pops_cancels_them)
{
	struct qd_raw *r = &self->r;
	struct qd_cqe cqe;
	int i, seen = 0;

	for (i = 0; i < 3; i++) {
		struct qd_sqe s = qd_sqe_pop(self->qd, 1u << i);

		ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	}
	ASSERT_EQ(3, qd_raw_submit(r));
	NOTHING_MORE();
	ASSERT_EQ(0, qd_raw_close(r->fd, self->qd));
	for (i = 0; i < 3; i++) {
		REAP(&cqe, NULL);
		EXPECT_EQ(-ECANCELED, cqe.res);
		EXPECT_EQ(QD_OP_POP, cqe.opcode);
		EXPECT_EQ(self->qd, cqe.qd);
		EXPECT_EQ(0u, cqe.flags & QD_CQE_F_ELEM);
		seen |= (int)cqe.user_data;
	}
	EXPECT_EQ(7, seen);
	NOTHING_MORE();
}

TEST_F(memq, close_drops_queued_elements)
{
	struct qd_raw *r = &self->r;
	struct qd_seg seg = qd_seg(self->region, 0, 10);
	struct qd_cqe cqe;

	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 1));
	REAP(&cqe, NULL);
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 2));
	REAP(&cqe, NULL);
	ASSERT_EQ(0, qd_raw_close(r->fd, self->qd));
	/* no CQE for the dropped elements, and their region is free */
	NOTHING_MORE();
	EXPECT_EQ(0, qd_raw_unregister(r->fd, self->region));
}

TEST_F(memq, push_and_pop_on_closed_qd_are_ebadf)
{
	struct qd_seg seg = qd_seg(self->region, 0, 10);
	struct qd_cqe cqe;

	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->qd));
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 1));
	REAP(&cqe, NULL);
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(-EBADF, cqe.res);
	SUBMIT(qd_sqe_pop(self->qd, 2));
	REAP(&cqe, NULL);
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(-EBADF, cqe.res);
}

TEST_F(memq, close_twice_or_unknown_qd_is_ebadf)
{
	EXPECT_EQ(-EBADF, qd_raw_close(self->r.fd, self->qd + 100));
	EXPECT_EQ(-EBADF, qd_raw_close(self->r.fd, -1));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->qd));
	EXPECT_EQ(-EBADF, qd_raw_close(self->r.fd, self->qd));
}

TEST_F(memq, queues_are_independent)
{
	struct qd_raw *r = &self->r;
	struct qd_seg seg = qd_seg(self->region, 64, 8);
	struct qd_cqe cqe;
	struct qd_elem el;
	int q2;

	ASSERT_EQ(0, qd_raw_queue(r->fd, 0, &q2));
	EXPECT_NE(self->qd, q2);
	SUBMIT(qd_sqe_pop(q2, 1));
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 2));
	REAP(&cqe, NULL);
	EXPECT_EQ(2u, cqe.user_data);
	/* the pop on q2 did not take the element pushed to qd */
	NOTHING_MORE();
	SUBMIT(qd_sqe_pop(self->qd, 3));
	REAP(&cqe, &el);
	EXPECT_EQ(3u, cqe.user_data);
	EXPECT_TRUE(qd_seg_eq(&seg, &el.segs[0]));
	/* closing q2 cancels its pop and leaves qd alone */
	ASSERT_EQ(0, qd_raw_close(r->fd, q2));
	REAP(&cqe, NULL);
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 4));
	REAP(&cqe, NULL);
	EXPECT_EQ(8, cqe.res);
}

TEST_F(memq, full_queue_push_stays_pending_until_pop)
{
	struct qd_raw *r = &self->r;
	struct qd_seg segs[3];
	struct qd_cqe cqe;
	struct qd_elem el;
	int qd, i, got_push3 = 0;

	ASSERT_EQ(0, qd_raw_queue(r->fd, 2, &qd));
	for (i = 0; i < 3; i++)
		segs[i] = qd_seg(self->region, 100 * i, 10 + i);
	SUBMIT(qd_sqe_push(qd, &segs[0], 1, 1));
	REAP(&cqe, NULL);
	EXPECT_EQ(10, cqe.res);
	SUBMIT(qd_sqe_push(qd, &segs[1], 1, 2));
	REAP(&cqe, NULL);
	EXPECT_EQ(11, cqe.res);
	/* depth 2 reached: the third push waits */
	SUBMIT(qd_sqe_push(qd, &segs[2], 1, 3));
	NOTHING_MORE();
	SUBMIT(qd_sqe_pop(qd, 4));
	for (i = 0; i < 2; i++) {
		REAP(&cqe, &el);
		if (cqe.user_data == 3) {
			got_push3++;
			EXPECT_EQ(12, cqe.res);
		} else {
			EXPECT_EQ(4u, cqe.user_data);
			EXPECT_TRUE(qd_seg_eq(&segs[0], &el.segs[0]));
		}
	}
	EXPECT_EQ(1, got_push3);
	/* the rest, still in order */
	for (i = 1; i < 3; i++) {
		SUBMIT(qd_sqe_pop(qd, 10 + i));
		REAP(&cqe, &el);
		EXPECT_EQ(10u + i, cqe.user_data);
		EXPECT_TRUE(qd_seg_eq(&segs[i], &el.segs[0])) TH_LOG("element %d", i);
	}
	NOTHING_MORE();
}

TEST_F(memq, pending_pushes_complete_in_fifo_order)
{
	struct qd_raw *r = &self->r;
	struct qd_seg segs[4];
	struct qd_cqe cqe;
	struct qd_elem el;
	int qd, i, j;

	ASSERT_EQ(0, qd_raw_queue(r->fd, 1, &qd));
	for (i = 0; i < 4; i++)
		segs[i] = qd_seg(self->region, 256 * i, 20 + i);
	SUBMIT(qd_sqe_push(qd, &segs[0], 1, 0));
	REAP(&cqe, NULL);
	for (i = 1; i < 4; i++)
		SUBMIT(qd_sqe_push(qd, &segs[i], 1, i));
	NOTHING_MORE();
	for (i = 0; i < 4; i++) {
		int want = i < 3 ? 2 : 1;	/* the pop, and the next push */

		SUBMIT(qd_sqe_pop(qd, 100 + i));
		for (j = 0; j < want; j++) {
			REAP(&cqe, &el);
			if (cqe.opcode == QD_OP_POP) {
				EXPECT_EQ(100u + i, cqe.user_data);
				EXPECT_TRUE(qd_seg_eq(&segs[i], &el.segs[0])) TH_LOG("pop %d", i);
			} else {
				/* exactly the next pending push, not a later one */
				EXPECT_EQ((__u64)(i + 1), cqe.user_data);
			}
		}
		if (i < 3)
			NOTHING_MORE();
	}
}

TEST_F(memq, default_depth_holds_1024_elements)
{
	struct qd_raw *r = &self->r;
	struct qd_seg seg = qd_seg(self->region, 0, 1);
	unsigned int done, i;
	struct qd_cqe cqe;

	ASSERT_EQ(1024, QD_MEMQ_DEFAULT_DEPTH);
	for (done = 0; done < QD_MEMQ_DEFAULT_DEPTH; done += 16) {
		for (i = 0; i < 16; i++) {
			struct qd_sqe s = qd_sqe_push(self->qd, &seg, 1, done + i);

			ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
		}
		ASSERT_EQ(16, qd_raw_submit(r));
		for (i = 0; i < 16; i++) {
			REAP(&cqe, NULL);
			ASSERT_EQ(1, cqe.res) TH_LOG("push %llu", cqe.user_data);
		}
	}
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 5000));
	NOTHING_MORE();
	SUBMIT(qd_sqe_pop(self->qd, 5001));
	REAP(&cqe, NULL);
	REAP(&cqe, NULL);
	NOTHING_MORE();
}

TEST_F(memq, depth_above_max_is_einval)
{
	struct qd_queue_create q = { .depth = QD_MEMQ_MAX_DEPTH + 1 };
	int qd;

	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &q));
	q.depth = 0xffffffffu;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &q));
	EXPECT_EQ(0, qd_raw_queue(self->r.fd, QD_MEMQ_MAX_DEPTH, &qd));
	EXPECT_EQ(0, qd_raw_queue(self->r.fd, 1, &qd));
}

TEST_F(memq, create_with_flags_or_resv_is_einval)
{
	unsigned int i;

	const unsigned int nresv = sizeof(((struct qd_queue_create *)0)->resv) / sizeof(__u32);

	/* flag bits past QD_QUEUE_MAPPED, then each resv word */
	for (i = 0; i <= nresv; i++) {
		struct qd_queue_create q = { .depth = 4 };

		if (i == nresv)
			q.flags = 2;
		else
			q.resv[i] = 1;
		EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &q))
			TH_LOG("%s %u", i == nresv ? "flags" : "resv", i);
	}
}

TEST_F(memq, created_queues_get_distinct_qds)
{
	int qds[8], i, j;

	qds[0] = self->qd;
	for (i = 1; i < 8; i++)
		ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qds[i]));
	for (i = 0; i < 8; i++) {
		EXPECT_LE(0, qds[i]);
		for (j = 0; j < i; j++)
			EXPECT_NE(qds[i], qds[j]);
	}
}

TEST_F(memq, too_many_qds_is_emfile)
{
	int qd = -1, last = -1, n = 1, ret;

	/* the limit is a module option (CONFIG_QD_MAX_QDS); find it */
	while ((ret = qd_raw_queue(self->r.fd, 1, &qd)) == 0 && n < (1 << 20)) {
		last = qd;
		n++;
	}
	TH_LOG("%d qds before %d", n, ret);
	EXPECT_EQ(-EMFILE, ret);
	EXPECT_LE(1024, n);
	EXPECT_EQ(-EMFILE, qd_raw_queue(self->r.fd, 1, &qd));
	/* closing one makes room for one */
	ASSERT_EQ(0, qd_raw_close(self->r.fd, last));
	EXPECT_EQ(0, qd_raw_queue(self->r.fd, 1, &qd));
	EXPECT_EQ(-EMFILE, qd_raw_queue(self->r.fd, 1, &qd));
}

TEST_F(memq, corrupt_cq_head_harms_only_this_context)
{
	struct qd_raw *r = &self->r;
	struct qd_cqe cqe;
	int i, ret;

	/* user space owns cq.head: garbage there must not hurt the kernel */
	qd_store_release(r->cq_head, *r->cq_tail + 12345);
	for (i = 0; i < 4; i++) {
		struct qd_sqe s = qd_sqe_nop(i);

		ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	}
	ret = qd_raw_submit(r);
	EXPECT_TRUE(ret == 4 || ret == -EINVAL) TH_LOG("enter: %d", ret);
	ret = qd_raw_enter(r, 0, 1, QD_RAW_WAIT, SHORT_NS);
	EXPECT_TRUE(ret >= 0 || ret == -ETIMEDOUT || ret == -EINVAL) TH_LOG("enter: %d", ret);
	/* set it right again: the completions are all there, none lost */
	qd_store_release(r->cq_head, 0);
	if (qd_raw_sq_pending(r))
		ASSERT_EQ(4, qd_raw_submit(r));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(r, &cqe, NULL, LONG_NS)) TH_LOG("CQE %d", i);
		EXPECT_EQ((__u64)i, cqe.user_data);
	}
}

/* --- CQ overflow and max_inflight: tiny rings ----------------------------- */

FIXTURE(tiny) {
	struct qd_raw r;
	char *buf;
	unsigned int region;
	int qd;
};

FIXTURE_SETUP(tiny)
{
	MEMQ_INIT(4, 8);
}

FIXTURE_TEARDOWN(tiny)
{
	MEMQ_FINI();
}

TEST_F(tiny, cq_overflow_loses_no_completion)
{
	struct qd_raw *r = &self->r;
	enum { N = 64 };
	unsigned char seen[N] = { 0 };
	unsigned int queued = 0, consumed = 0, reaped = 0, peak_overflow = 0;
	int ret, i, spins = 0;
	struct qd_cqe cqe;

	/* submit without reaping: the CQ holds 8, the rest must wait in the kernel */
	while (queued < N) {
		for (i = 0; i < 4 && queued < N; i++) {
			struct qd_sqe s = qd_sqe_nop(queued++);

			ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
		}
		ret = qd_raw_submit(r);
		ASSERT_LE(0, ret);
		consumed += ret;
		if (qd_raw_sq_pending(r))
			break;	/* the kernel stopped taking SQEs: enough */
	}
	TH_LOG("consumed %u of %u without reaping", consumed, queued);
	ASSERT_LT(r->cq_entries, consumed);
	EXPECT_EQ(r->cq_entries, qd_raw_cq_ready(r));
	EXPECT_TRUE(!!(*r->cq_flags & QD_CQ_F_OVERFLOW));
	peak_overflow = *r->cq_overflow;
	EXPECT_LE(consumed - r->cq_entries, peak_overflow);

	/* reap, re-enter (which refills the ring), submit the rest */
	while (reaped < N && spins++ < 1000) {
		while (queued < N) {
			struct qd_sqe s = qd_sqe_nop(queued);

			if (qd_raw_queue_sqe(r, &s))
				break;
			queued++;
		}
		while (qd_raw_peek_cqe(r, &cqe, NULL)) {
			ASSERT_GT((__u64)N, cqe.user_data);
			EXPECT_EQ(0, cqe.res);
			EXPECT_EQ(0, seen[cqe.user_data]) TH_LOG("user_data %llu twice", cqe.user_data);
			seen[cqe.user_data]++;
			reaped++;
		}
		ret = qd_raw_enter(r, qd_raw_sq_pending(r), 0, 0, 0);
		ASSERT_LE(0, ret);
	}
	EXPECT_EQ((unsigned int)N, reaped);
	for (i = 0; i < N; i++)
		EXPECT_EQ(1, seen[i]) TH_LOG("user_data %d", i);
	/* drained: the flag is clear and nothing is left */
	EXPECT_EQ(0u, *r->cq_flags & QD_CQ_F_OVERFLOW);
	EXPECT_EQ(0, qd_raw_enter(r, 0, 0, 0, 0));
	EXPECT_EQ(0u, qd_raw_cq_ready(r));
}

TEST_F(tiny, cq_overflow_keeps_popped_elements)
{
	struct qd_raw *r = &self->r;
	enum { N = 20 };
	struct qd_seg segs[N];
	unsigned int submitted = 0, next = 0;
	struct qd_cqe cqe;
	struct qd_elem el;
	int i, ret, spins = 0;

	for (i = 0; i < N; i++) {
		struct qd_sqe s;

		segs[i] = qd_seg(self->region, 128 * i, 3 + i);
		s = qd_sqe_push(self->qd, &segs[i], 1, i);
		ASSERT_EQ(0, qd_raw_do(r, &s, &cqe, NULL));
		ASSERT_EQ(3 + i, cqe.res);
	}
	/* N pops without reaping: more than the CQ holds */
	while (submitted < N) {
		for (i = 0; i < 4 && submitted < N; i++) {
			struct qd_sqe s = qd_sqe_pop(self->qd, 1000 + submitted++);

			ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
		}
		ret = qd_raw_submit(r);
		ASSERT_LE(0, ret);
		if (qd_raw_sq_pending(r))
			break;
	}
	EXPECT_TRUE(!!(*r->cq_flags & QD_CQ_F_OVERFLOW));
	/* every pop's element must be the right one, also those that waited */
	while (next < submitted && spins++ < 1000) {
		while (qd_raw_peek_cqe(r, &cqe, &el)) {
			ASSERT_EQ(1000u + next, cqe.user_data);
			ASSERT_EQ(1, cqe.nsegs);
			EXPECT_TRUE(qd_seg_eq(&segs[next], &el.segs[0]))
				TH_LOG("pop %u got offset %llu len %u", next,
				       el.segs[0].offset, el.segs[0].len);
			EXPECT_EQ(3 + (long long)next, cqe.res);
			next++;
		}
		ret = qd_raw_enter(r, qd_raw_sq_pending(r), 0, 0, 0);
		ASSERT_LE(0, ret);
		while (submitted < N) {
			struct qd_sqe s = qd_sqe_pop(self->qd, 1000 + submitted);

			if (qd_raw_queue_sqe(r, &s))
				break;
			submitted++;
		}
	}
	EXPECT_EQ((unsigned int)N, next);
	EXPECT_EQ(0u, *r->cq_flags & QD_CQ_F_OVERFLOW);
}

/*
 * Parked completions count against max_inflight (they finish when the CQ is
 * reaped): with the CQ unreaped, the kernel consumes cq_entries (posted,
 * freed) + max_inflight (parked) NOPs, leaves the rest in the SQ, and takes
 * them once the CQ is reaped.
 */
TEST_F(tiny, max_inflight_leaves_sqes_in_sq)
{
	struct qd_raw *r = &self->r;
	unsigned int max = r->p.max_inflight, consumed = 0, made = 0, reaped = 0;
	struct qd_cqe cqe;
	int ret, spins = 0;

	if (max > 4096)
		SKIP(return, "max_inflight %u is too many to reach cheaply", max);
	while (spins++ < 10000) {
		while (made - consumed < r->sq_entries) {
			struct qd_sqe s = qd_sqe_nop(made++);

			ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
		}
		ret = qd_raw_submit(r);
		ASSERT_LE(0, ret);
		consumed += ret;
		if (ret < (int)r->sq_entries)
			break;
	}
	EXPECT_EQ(r->cq_entries + max, consumed);
	EXPECT_LT(0u, qd_raw_sq_pending(r));
	/* still full: nothing more is taken */
	EXPECT_EQ(0, qd_raw_submit(r));
	EXPECT_EQ(made - consumed, qd_raw_sq_pending(r));

	/* reaping lets the parked ones in and the rest run, in order */
	spins = 0;
	while (reaped < made && spins++ < 100000) {
		while (qd_raw_peek_cqe(r, &cqe, NULL)) {
			EXPECT_EQ(reaped, cqe.user_data);
			EXPECT_EQ(0, cqe.res);
			reaped++;
		}
		ret = qd_raw_enter(r, qd_raw_sq_pending(r), 0, 0, 0);
		ASSERT_LE(0, ret);
	}
	EXPECT_EQ(made, reaped);
}

/*
 * Pops waiting on an empty queue do not count against max_inflight (they
 * are bounded by max_queued): many times max_inflight of them are taken,
 * and a push after them is taken too and feeds the oldest.
 */
TEST_F(tiny, waiting_pops_do_not_count_against_max_inflight)
{
	struct qd_raw *r = &self->r;
	unsigned int max = r->p.max_inflight, made = 0, consumed = 0, want;
	struct qd_seg seg = qd_seg(self->region, 0, 64);
	struct qd_sqe s;
	struct qd_cqe cqe;
	int ret, spins = 0, popped = 0, pushed = 0, cancelled = 0;

	want = 4 * max;
	if (want > r->p.max_queued)
		SKIP(return, "max_queued %u is below %u", r->p.max_queued, want);
	while (consumed < want && spins++ < 100000) {
		while (made < want && made - consumed < r->sq_entries) {
			s = qd_sqe_pop(self->qd, made++);
			ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
		}
		ret = qd_raw_submit(r);
		ASSERT_LT(0, ret);
		consumed += ret;
	}
	ASSERT_EQ(want, consumed);
	EXPECT_EQ(0u, qd_raw_sq_pending(r));

	s = qd_sqe_push(self->qd, &seg, 1, 2000000);
	ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	EXPECT_EQ(1, qd_raw_submit(r));
	spins = 0;
	while ((!pushed || !popped) && spins++ < 20000) {
		while (qd_raw_peek_cqe(r, &cqe, NULL)) {
			if (cqe.user_data == 2000000 && cqe.res == 64)
				pushed++;
			else if (cqe.user_data == 0 && cqe.res == 64)
				popped++;
		}
		ASSERT_LE(0, qd_raw_enter(r, 0, 0, 0, 0));
	}
	EXPECT_EQ(1, pushed);
	EXPECT_EQ(1, popped);	/* the oldest pending pop got the element */

	/* closing the queue cancels the others */
	ASSERT_EQ(0, qd_raw_close(r->fd, self->qd));
	self->qd = -1;
	spins = 0;
	while (cancelled < (int)want - 1 && spins++ < 100000) {
		while (qd_raw_peek_cqe(r, &cqe, NULL))
			cancelled += cqe.res == -ECANCELED;
		ASSERT_LE(0, qd_raw_enter(r, 0, 0, 0, 0));
	}
	EXPECT_EQ((int)want - 1, cancelled);
}

/* --- liveness: neither kind of pending op starves the other ------------- */

/*
 * Tiny rings (sq 1..4, cq 2..8) and a queue of depth 1. One kind of
 * operation is left pending until it fills max_inflight; then the other kind,
 * the only one that can complete them, must still be admitted, and every
 * element must come out in order.
 */
FIXTURE(live) {
	struct qd_raw r;
	char *buf;
	unsigned int region;
	int qd;
};

FIXTURE_VARIANT(live) {
	unsigned int sq, cq;
};

FIXTURE_VARIANT_ADD(live, sq1_cq2) { .sq = 1, .cq = 2 };
FIXTURE_VARIANT_ADD(live, sq2_cq4) { .sq = 2, .cq = 4 };
FIXTURE_VARIANT_ADD(live, sq4_cq8) { .sq = 4, .cq = 8 };

FIXTURE_SETUP(live)
{
	ASSERT_EQ(0, qd_raw_init(&self->r, variant->sq, variant->cq));
	self->buf = qd_raw_pages(REGION_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, REGION_BYTES,
				     &self->region));
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 1, &self->qd));
}

FIXTURE_TEARDOWN(live)
{
	MEMQ_FINI();
}

#define LIVE_MAX	4096u		/* elements a test moves at most */
#define POP_TAG		(1ULL << 32)	/* pops' user_data: POP_TAG + k */

struct live_run {
	struct qd_raw	*r;
	int		qd;
	unsigned int	region;
	unsigned int	pushes, pops;		/* how many of each to make */
	unsigned int	pushed, popped;		/* SQEs queued so far */
	unsigned int	push_done, pop_done;	/* CQEs reaped */
	unsigned int	next_pop;		/* FIFO: the element pop k must get */
	int		bad;			/* first wrong CQE, as a line */
	struct qd_seg	segs[LIVE_MAX];
};

/* The element push k carries: a distinct (offset, len) in the region. */
static struct qd_seg live_seg(const struct live_run *lr, unsigned int k)
{
	return qd_seg(lr->region, (k * 8) % (REGION_BYTES - 8), 1 + k % 7);
}

static void live_reap(struct live_run *lr)
{
	struct qd_cqe cqe;
	struct qd_elem el;

	while (qd_raw_peek_cqe(lr->r, &cqe, &el)) {
		if (cqe.user_data >= POP_TAG) {
			struct qd_seg want = live_seg(lr, lr->next_pop);

			if (cqe.user_data != POP_TAG + lr->pop_done || cqe.res != want.len ||
			    cqe.nsegs != 1 || !qd_seg_eq(&want, &el.segs[0]))
				lr->bad = lr->bad ? lr->bad : __LINE__;
			lr->next_pop++;
			lr->pop_done++;
		} else {
			if (cqe.res != 1 + (long long)(cqe.user_data % 7))
				lr->bad = lr->bad ? lr->bad : __LINE__;
			lr->push_done++;
		}
	}
}

/*
 * Queue up to `limit` more SQEs of one kind (as many as the SQ takes) and
 * enter: the number the kernel consumed, or -errno.
 */
static int live_submit(struct live_run *lr, int push, unsigned int limit)
{
	unsigned int *made = push ? &lr->pushed : &lr->popped;
	unsigned int total = push ? lr->pushes : lr->pops;
	unsigned int n = 0;

	while (*made < total && n < limit) {
		struct qd_sqe s;

		if (push) {
			lr->segs[*made] = live_seg(lr, *made);
			s = qd_sqe_push(lr->qd, &lr->segs[*made], 1, *made);
		} else {
			s = qd_sqe_pop(lr->qd, POP_TAG + *made);
		}
		if (qd_raw_queue_sqe(lr->r, &s))
			break;
		(*made)++;
		n++;
	}
	return qd_raw_submit(lr->r);
}

/*
 * Run until every push and pop completed: submit what is left of `second`
 * kind, reap, wait a little in the kernel when nothing moved. 0, or
 * -ETIMEDOUT if nothing moved for LONG_NS.
 */
static int live_finish(struct live_run *lr, int second_is_push)
{
	long long idle_since = qd_now_ns();

	while (lr->push_done < lr->pushes || lr->pop_done < lr->pops) {
		unsigned int before = lr->push_done + lr->pop_done;
		unsigned int queued = lr->pushed + lr->popped;
		int ret;

		ret = live_submit(lr, second_is_push, ~0u);
		if (ret < 0)
			return ret;
		live_reap(lr);
		if (lr->push_done + lr->pop_done != before || lr->pushed + lr->popped != queued ||
		    ret > 0) {
			idle_since = qd_now_ns();
			continue;
		}
		if (qd_now_ns() - idle_since > LONG_NS)
			return -ETIMEDOUT;
		/* wait for a CQE (this also moves parked ones into the ring) */
		ret = qd_raw_enter(lr->r, 0, 1, QD_RAW_WAIT, 20 * QD_RAW_MS);
		if (ret < 0 && ret != -ETIMEDOUT && ret != -EINTR)
			return ret;
	}
	return 0;
}

#define LIVE_REPORT(lr)							\
	TH_LOG("pushes %u/%u queued, %u done; pops %u/%u queued, %u done; " \
	       "SQ %u left, ring %u, overflow %u, max_inflight %u",	\
	       (lr)->pushed, (lr)->pushes, (lr)->push_done,		\
	       (lr)->popped, (lr)->pops, (lr)->pop_done,		\
	       qd_raw_sq_pending((lr)->r), qd_raw_cq_ready((lr)->r),	\
	       !!(qd_load_acquire((lr)->r->cq_flags) & QD_CQ_F_OVERFLOW), \
	       (lr)->r->p.max_inflight)

/* Pending pushes on a full queue fill max_inflight; the pops must get in. */
TEST_F(live, pops_admitted_while_pending_pushes_fill_max_inflight)
{
	static struct live_run lr;
	unsigned int max = self->r.p.max_inflight;
	long long end = qd_now_ns() + LONG_NS;

	ASSERT_GE(LIVE_MAX - 1, max);
	lr = (struct live_run){
		.r = &self->r, .qd = self->qd, .region = self->region,
		.pushes = 1 + max, .pops = 1 + max,	/* one fills the queue */
	};
	/* every push is taken: one into the queue, max left pending */
	while (lr.pushed < lr.pushes && qd_now_ns() < end) {
		int ret = live_submit(&lr, 1, ~0u);

		ASSERT_LE(0, ret);
		live_reap(&lr);
		ASSERT_EQ(0u, qd_raw_sq_pending(&self->r)) LIVE_REPORT(&lr);
	}
	ASSERT_EQ(lr.pushes, lr.pushed);
	live_reap(&lr);
	ASSERT_EQ(1u, lr.push_done) LIVE_REPORT(&lr);

	/* the pops: each is admitted, each gets the oldest element */
	EXPECT_EQ(0, live_finish(&lr, 0)) LIVE_REPORT(&lr);
	EXPECT_EQ(0, lr.bad) TH_LOG("wrong CQE noticed at line %d", lr.bad);
	EXPECT_EQ(lr.pushes, lr.push_done);
	EXPECT_EQ(lr.pops, lr.pop_done);
	NOTHING_MORE();
}

/* The mirror: pending pops on the empty queue fill max_inflight; pushes get in. */
TEST_F(live, pushes_admitted_while_pending_pops_fill_max_inflight)
{
	static struct live_run lr;
	unsigned int max = self->r.p.max_inflight;
	long long end = qd_now_ns() + LONG_NS;

	ASSERT_GE(LIVE_MAX - 1, max);
	lr = (struct live_run){
		.r = &self->r, .qd = self->qd, .region = self->region,
		.pushes = max + 1, .pops = max,
	};
	while (lr.popped < lr.pops && qd_now_ns() < end) {
		ASSERT_LE(0, live_submit(&lr, 0, ~0u));
		ASSERT_EQ(0u, qd_raw_sq_pending(&self->r)) LIVE_REPORT(&lr);
	}
	ASSERT_EQ(lr.pops, lr.popped);
	NOTHING_MORE();

	EXPECT_EQ(0, live_finish(&lr, 1)) LIVE_REPORT(&lr);
	EXPECT_EQ(0, lr.bad) TH_LOG("wrong CQE noticed at line %d", lr.bad);
	EXPECT_EQ(lr.pushes, lr.push_done);
	EXPECT_EQ(lr.pops, lr.pop_done);
	/* the last push's element is in the queue: a pop gets it */
	SUBMIT(qd_sqe_pop(self->qd, 7));
	{
		struct qd_cqe cqe;
		struct qd_elem el;
		struct qd_seg want = live_seg(&lr, max);

		REAP(&cqe, &el);
		EXPECT_EQ(7u, cqe.user_data);
		EXPECT_TRUE(qd_seg_eq(&want, &el.segs[0]));
	}
}

/* --- the same through libqd ------------------------------------------------ */

FIXTURE(memq_libqd) {
	int qd;
};

FIXTURE_SETUP(memq_libqd)
{
	ASSERT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_queue(&self->qd));
}

FIXTURE_TEARDOWN(memq_libqd)
{
}

TEST_F(memq_libqd, pop_returns_the_pushed_pointer_zero_copy)
{
	struct qd_sga sga = qd_sgaalloc(3000);
	struct qd_result qr;
	qd_token_t qt;

	ASSERT_EQ(1u, sga.numsegs);
	fill(sga.segs[0].buf, 3000, 7);
	ASSERT_EQ(0, qd_push(&qt, self->qd, &sga));
	ASSERT_EQ(0, qd_wait(&qr, qt, NULL));
	EXPECT_EQ(QD_OPC_PUSH, (int)qr.opcode);
	EXPECT_EQ(3000, qr.ret);
	ASSERT_EQ(0, qd_pop(&qt, self->qd));
	ASSERT_EQ(0, qd_wait(&qr, qt, NULL));
	EXPECT_EQ(QD_OPC_POP, (int)qr.opcode);
	EXPECT_EQ(self->qd, qr.qd);
	EXPECT_EQ(3000, qr.ret);
	ASSERT_EQ(1u, qr.value.sga.numsegs);
	EXPECT_EQ(sga.segs[0].buf, qr.value.sga.segs[0].buf);
	EXPECT_EQ(3000u, qr.value.sga.segs[0].len);
	EXPECT_TRUE(check(qr.value.sga.segs[0].buf, 3000, 7));
	EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
}

TEST_F(memq_libqd, multi_segment_pointers_come_back_in_order)
{
	struct qd_sga big = qd_sgaalloc(8192), sga = { 0 };
	struct qd_result qr;
	qd_token_t qt;
	unsigned int i;
	long long total = 0;

	ASSERT_EQ(1u, big.numsegs);
	sga.numsegs = QD_SGA_MAX;
	for (i = 0; i < QD_SGA_MAX; i++) {
		sga.segs[i].buf = (char *)big.segs[0].buf + 1000 * i + i;
		sga.segs[i].len = 10 + 50 * i;
		total += sga.segs[i].len;
	}
	ASSERT_EQ(0, qd_push(&qt, self->qd, &sga));
	ASSERT_EQ(0, qd_wait(&qr, qt, NULL));
	EXPECT_EQ(total, qr.ret);
	ASSERT_EQ(0, qd_pop(&qt, self->qd));
	ASSERT_EQ(0, qd_wait(&qr, qt, NULL));
	EXPECT_EQ(total, qr.ret);
	ASSERT_EQ((uint32_t)QD_SGA_MAX, qr.value.sga.numsegs);
	for (i = 0; i < QD_SGA_MAX; i++) {
		EXPECT_EQ(sga.segs[i].buf, qr.value.sga.segs[i].buf);
		EXPECT_EQ(sga.segs[i].len, qr.value.sga.segs[i].len);
	}
	EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
}

TEST_HARNESS_MAIN
