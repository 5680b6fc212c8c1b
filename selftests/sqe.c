// SPDX-License-Identifier: GPL-2.0
/*
 * sqe: SQE validation and the one-SQE-one-CQE rule, through the raw ABI.
 */
#include <signal.h>
#include <sys/time.h>

#include "qd_raw.h"
#include "harness.h"

#define REGION_BYTES	(64 * 1024)

FIXTURE(sqe) {
	struct qd_raw r;
	char *buf;
	unsigned int region;
	int qd;
};

FIXTURE_SETUP(sqe)
{
	ASSERT_EQ(0, qd_raw_init(&self->r, 16, 32));
	self->buf = qd_raw_pages(REGION_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, REGION_BYTES, &self->region));
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &self->qd));
}

FIXTURE_TEARDOWN(sqe)
{
	qd_raw_exit(&self->r);
	if (self->buf)
		munmap(self->buf, REGION_BYTES);
}

/* Submit one SQE and return its CQE (asserting exactly one SQE consumed). */
#define DO_SQE(sqe_, cqe_) do {						\
	struct qd_sqe __s = (sqe_);					\
	ASSERT_EQ(0, qd_raw_do(&self->r, &__s, (cqe_), NULL));		\
	EXPECT_EQ(__s.user_data, (cqe_)->user_data);			\
	EXPECT_EQ(__s.opcode, (cqe_)->opcode);				\
	EXPECT_EQ(__s.qd, (cqe_)->qd);					\
} while (0)

TEST_F(sqe, nop_completes_with_res_zero_and_user_data_echoed)
{
	struct qd_cqe cqe;

	DO_SQE(qd_sqe_nop(0xdeadbeefcafe1234ULL), &cqe);
	EXPECT_EQ(0, cqe.res);
	EXPECT_EQ(0u, cqe.flags);
	EXPECT_EQ(0, cqe.nsegs);
	EXPECT_EQ(0, cqe.resv1);
	EXPECT_EQ(0u, cqe.resv2);
	EXPECT_EQ(1u, *self->r.sq_head);
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
}

TEST_F(sqe, unknown_opcode_is_einval)
{
	/* QD_OP_PROVIDE is the last opcode today; the count is not in the ABI */
	static const __u8 ops[] = { QD_OP_PROVIDE + 1, QD_OP_PROVIDE + 2, 0x7f, 0xff };
	struct qd_cqe cqe;
	unsigned int i;

	for (i = 0; i < sizeof(ops); i++) {
		struct qd_sqe s = { .opcode = ops[i], .user_data = 7 + i };

		DO_SQE(s, &cqe);
		EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("opcode %u", ops[i]);
	}
}

/* Flag bits past QD_SQE_F_SKIP_SUCCESS (the only one defined). */
TEST_F(sqe, nonzero_sqe_flags_is_einval)
{
	struct qd_cqe cqe;
	struct qd_sqe s;

	s = qd_sqe_nop(1);
	s.flags = 2;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	s = qd_sqe_pop(self->qd, 2);
	s.flags = 0x80;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
}

TEST_F(sqe, nonzero_resv_word_is_einval)
{
	const unsigned int nresv = sizeof(((struct qd_sqe *)0)->resv) / sizeof(__u64);
	struct qd_cqe cqe;
	unsigned int i;

	for (i = 0; i < nresv; i++) {
		struct qd_sqe s = qd_sqe_nop(10 + i);

		s.resv[i] = 1ULL << (i * 13);
		DO_SQE(s, &cqe);
		EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("NOP resv[%u]", i);
	}
	for (i = 0; i < nresv; i++) {
		struct qd_sqe s = qd_sqe_pop(self->qd, 20 + i);

		s.resv[i] = ~0ULL;
		DO_SQE(s, &cqe);
		EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("POP resv[%u]", i);
	}
	{
		struct qd_sqe s = qd_sqe_nop(30);

		s.resv0 = 1;
		DO_SQE(s, &cqe);
		EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("NOP resv0");
		s = qd_sqe_pop(self->qd, 31);
		s.resv0 = 0x80000000u;
		DO_SQE(s, &cqe);
		EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("POP resv0");
	}
}

TEST_F(sqe, op_flags_on_push_or_pop_is_einval)
{
	struct qd_seg seg = qd_seg(self->region, 0, 64);
	struct qd_cqe cqe;
	struct qd_sqe s;

	/* a push defines only QD_PUSH_ZC and QD_PUSH_COPY (QD_POP_MULTISHOT
	 * is a pop's), not both; a pop nothing past QD_POP_MULTISHOT */
	s = qd_sqe_push(self->qd, &seg, 1, 1);
	s.op_flags = 1;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	s.op_flags = 16;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	/* QD_PUSH_AT is a push's, for storage queues: -ESPIPE here */
	s.op_flags = QD_PUSH_AT;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-ESPIPE, cqe.res);
	/* and without it, off (the addr2 slot) must be zero */
	s.op_flags = 0;
	s.off = 4096;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	s.off = 0;
	s.op_flags = QD_PUSH_ZC | QD_PUSH_COPY;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	s = qd_sqe_pop(self->qd, 2);
	s.op_flags = 0x80000000u;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	/* and the rejected push queued nothing: a pop stays pending */
	s = qd_sqe_pop(self->qd, 3);
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 20 * QD_RAW_MS));
}

TEST_F(sqe, nop_with_unused_fields_set_is_einval)
{
	struct qd_cqe cqe;
	struct qd_sqe s;

	s = qd_sqe_nop(1);
	s.qd = self->qd + 1;	/* non-zero even if the queue got qd 0 */
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);

	s = qd_sqe_nop(2);
	s.addr = (__u64)(uintptr_t)self->buf;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);

	s = qd_sqe_nop(3);
	s.nsegs = 1;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
}

TEST_F(sqe, pop_with_nsegs_or_addr_set_is_einval)
{
	struct qd_seg seg = qd_seg(self->region, 0, 64);
	struct qd_cqe cqe;
	struct qd_sqe s;

	s = qd_sqe_pop(self->qd, 1);
	s.nsegs = 1;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);

	s = qd_sqe_pop(self->qd, 2);
	s.addr = (__u64)(uintptr_t)&seg;
	DO_SQE(s, &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);

	/* and the rejected pops did not stay pending: a push is not taken */
	DO_SQE(qd_sqe_push(self->qd, &seg, 1, 3), &cqe);
	EXPECT_EQ(64, cqe.res);
	DO_SQE(qd_sqe_pop(self->qd, 4), &cqe);
	EXPECT_EQ(64, cqe.res);
}

TEST_F(sqe, every_sqe_consumed_gives_exactly_one_cqe)
{
	struct qd_raw *r = &self->r;
	struct qd_seg seg = qd_seg(self->region, 128, 32);
	struct qd_seg bad = qd_seg(self->region, 0, 0);
	int seen[16] = { 0 };
	struct qd_sqe s[12];
	struct qd_cqe cqe;
	int i, n = 0;

	s[n++] = qd_sqe_nop(0);
	s[n] = qd_sqe_nop(1);		s[n++].flags = 2;
	s[n] = qd_sqe_nop(2);		s[n++].resv[3] = 1;
	s[n] = qd_sqe_nop(3);		s[n++].opcode = 0x42;
	s[n++] = qd_sqe_push(self->qd, &seg, 1, 4);
	s[n++] = qd_sqe_push(self->qd, &bad, 1, 5);
	s[n++] = qd_sqe_push(self->qd, &seg, 0, 6);
	s[n++] = qd_sqe_push(9999, &seg, 1, 7);
	s[n++] = qd_sqe_pop(self->qd, 8);
	s[n++] = qd_sqe_pop(-1, 9);
	s[n++] = qd_sqe_nop(10);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, qd_raw_queue_sqe(r, &s[i]));
	EXPECT_EQ(n, qd_raw_submit(r));
	EXPECT_EQ(*r->sq_tail, *r->sq_head);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(r, &cqe, NULL, 1000 * QD_RAW_MS));
		ASSERT_GT(16u, cqe.user_data);
		seen[cqe.user_data]++;
		EXPECT_EQ(s[cqe.user_data].opcode, cqe.opcode);
		EXPECT_EQ(s[cqe.user_data].qd, cqe.qd);
		if (cqe.user_data == 0 || cqe.user_data == 10) {
			EXPECT_EQ(0, cqe.res);
		} else if (cqe.user_data == 4 || cqe.user_data == 8) {
			EXPECT_EQ(32, cqe.res);
		} else {
			EXPECT_GT(0, cqe.res) TH_LOG("user_data %llu", cqe.user_data);
		}
	}
	for (i = 0; i < n; i++)
		EXPECT_EQ(1, seen[i]) TH_LOG("user_data %d", i);
	/* nothing more */
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(r, &cqe, NULL, 20 * QD_RAW_MS));
}

TEST_F(sqe, push_with_nsegs_zero_or_above_max_is_einval)
{
	struct qd_seg segs[QD_SGA_MAX + 1];
	struct qd_cqe cqe;
	int i;

	for (i = 0; i <= QD_SGA_MAX; i++)
		segs[i] = qd_seg(self->region, i * 64, 64);
	DO_SQE(qd_sqe_push(self->qd, segs, 0, 1), &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	DO_SQE(qd_sqe_push(self->qd, segs, QD_SGA_MAX + 1, 2), &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	DO_SQE(qd_sqe_push(self->qd, segs, 0xffff, 3), &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	/* the limit itself is fine */
	DO_SQE(qd_sqe_push(self->qd, segs, QD_SGA_MAX, 4), &cqe);
	EXPECT_EQ(QD_SGA_MAX * 64, cqe.res);
}

TEST_F(sqe, push_with_zero_length_segment_is_einval)
{
	struct qd_seg segs[3] = {
		qd_seg(self->region, 0, 16),
		qd_seg(self->region, 16, 0),
		qd_seg(self->region, 32, 16),
	};
	struct qd_cqe cqe;

	DO_SQE(qd_sqe_push(self->qd, segs, 3, 1), &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	DO_SQE(qd_sqe_push(self->qd, &segs[1], 1, 2), &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
}

TEST_F(sqe, push_with_segment_resv_set_is_einval)
{
	struct qd_seg segs[2] = {
		qd_seg(self->region, 0, 16),
		qd_seg(self->region, 16, 16),
	};
	struct qd_cqe cqe;
	struct qd_sqe s;

	segs[1].resv = 1;
	DO_SQE(qd_sqe_push(self->qd, segs, 2, 1), &cqe);
	EXPECT_EQ(-EINVAL, cqe.res);
	/* none of the rejected element reached the queue: a pop stays pending */
	s = qd_sqe_pop(self->qd, 2);
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 20 * QD_RAW_MS));
}

TEST_F(sqe, push_with_unreadable_segment_array_is_efault)
{
	size_t pg = qd_page_size();
	struct qd_cqe cqe;
	char *hole;
	struct qd_seg *straddle;

	hole = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole + pg, pg));

	/* an unmapped array */
	DO_SQE(qd_sqe_push(self->qd, (struct qd_seg *)(hole + pg), 1, 1), &cqe);
	EXPECT_EQ(-EFAULT, cqe.res);
	/* the first segment readable, the second not */
	straddle = (struct qd_seg *)(hole + pg) - 1;
	*straddle = qd_seg(self->region, 0, 16);
	DO_SQE(qd_sqe_push(self->qd, straddle, 2, 2), &cqe);
	EXPECT_EQ(-EFAULT, cqe.res);
	/* a kernel address */
	DO_SQE(qd_sqe_push(self->qd, (struct qd_seg *)0xffff888000000000ULL, 1, 3), &cqe);
	EXPECT_EQ(-EFAULT, cqe.res);
	munmap(hole, pg);
}

TEST_F(sqe, push_and_pop_on_unopened_qd_are_ebadf)
{
	struct qd_seg seg = qd_seg(self->region, 0, 16);
	static const int qds[] = { -1, 12345, 0x7fffffff, (int)0x80000000 };
	struct qd_cqe cqe;
	unsigned int i;

	for (i = 0; i < sizeof(qds) / sizeof(qds[0]); i++) {
		if (qds[i] == self->qd)
			continue;
		DO_SQE(qd_sqe_push(qds[i], &seg, 1, 2 * i), &cqe);
		EXPECT_EQ(-EBADF, cqe.res) TH_LOG("push qd %d", qds[i]);
		DO_SQE(qd_sqe_pop(qds[i], 2 * i + 1), &cqe);
		EXPECT_EQ(-EBADF, cqe.res) TH_LOG("pop qd %d", qds[i]);
	}
}

TEST_F(sqe, qd_of_another_context_is_ebadf)
{
	struct qd_raw other;
	struct qd_seg seg;
	struct qd_cqe cqe;
	struct qd_sqe s;
	unsigned int id;
	int qd2;

	/* a second context of the same process, with its own region but no queue */
	ASSERT_EQ(0, qd_raw_init(&other, 4, 8));
	ASSERT_EQ(0, qd_raw_register(other.fd, self->buf, 4096, &id));
	seg = qd_seg(id, 0, 16);
	/* this qd exists only in self->r; make sure the number is not reused by a new queue */
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qd2));
	s = qd_sqe_push(qd2, &seg, 1, 1);
	ASSERT_EQ(0, qd_raw_do(&other, &s, &cqe, NULL));
	EXPECT_EQ(-EBADF, cqe.res);
	s = qd_sqe_pop(qd2, 2);
	ASSERT_EQ(0, qd_raw_do(&other, &s, &cqe, NULL));
	EXPECT_EQ(-EBADF, cqe.res);
	qd_raw_exit(&other);
}

TEST_F(sqe, enter_timeout_with_nothing_to_complete_is_etimedout)
{
	long long t0, dt;

	t0 = qd_now_ns();
	EXPECT_EQ(-ETIMEDOUT, qd_raw_enter(&self->r, 0, 1, QD_RAW_WAIT, 50 * QD_RAW_MS));
	dt = qd_now_ns() - t0;
	EXPECT_LE(30 * QD_RAW_MS, dt);
	EXPECT_GT(5000 * QD_RAW_MS, dt);

	/* zero timeout: a poll */
	EXPECT_EQ(-ETIMEDOUT, qd_raw_enter(&self->r, 0, 1, QD_RAW_WAIT, 0));
}

TEST_F(sqe, enter_returns_consumed_count_when_wait_times_out)
{
	struct qd_sqe s = qd_sqe_pop(self->qd, 1);

	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	/* the pop stays pending: the wait fails but one SQE was consumed */
	EXPECT_EQ(1, qd_raw_enter(&self->r, 1, 1, QD_RAW_WAIT, 20 * QD_RAW_MS));
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST_F(sqe, enter_wait_interrupted_by_signal_is_eintr)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { .it_value = { 0, 50000 } };
	long long t0;

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	t0 = qd_now_ns();
	/* no timeout: only the signal ends this wait */
	EXPECT_EQ(-EINTR, qd_raw_enter(&self->r, 0, 1, QD_ENTER_GETEVENTS, 0));
	EXPECT_GT(5000 * QD_RAW_MS, qd_now_ns() - t0);
}

TEST_F(sqe, kernel_copies_the_sqe_once)
{
	struct qd_raw *r = &self->r;
	struct qd_seg seg = qd_seg(self->region, 256, 48);
	struct qd_sqe s = qd_sqe_pop(self->qd, 0x1111);
	struct qd_cqe cqe;
	struct qd_elem el;
	unsigned int slot = *r->sq_tail & r->sq_mask;
	int qd2;

	ASSERT_EQ(0, qd_raw_queue(r->fd, 0, &qd2));
	ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	ASSERT_EQ(1, qd_raw_submit(r));
	/* the pop is pending; scribble over its SQE slot */
	r->sqes[slot].user_data = 0x2222;
	r->sqes[slot].qd = qd2;
	r->sqes[slot].opcode = QD_OP_NOP;
	r->sqes[slot].resv[0] = 0xff;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	s = qd_sqe_push(self->qd, &seg, 1, 0x3333);
	ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	ASSERT_EQ(1, qd_raw_submit(r));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(r, &cqe, &el, 1000 * QD_RAW_MS));
		if (cqe.user_data == 0x3333) {
			EXPECT_EQ(48, cqe.res);
			continue;
		}
		EXPECT_EQ(0x1111u, cqe.user_data);
		EXPECT_EQ(QD_OP_POP, cqe.opcode);
		EXPECT_EQ(self->qd, cqe.qd);
		EXPECT_EQ(48, cqe.res);
		EXPECT_EQ(1, cqe.nsegs);
		EXPECT_TRUE(qd_seg_eq(&seg, &el.segs[0]));
	}
}

TEST_HARNESS_MAIN
