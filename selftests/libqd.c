// SPDX-License-Identifier: GPL-2.0
/*
 * libqd: the libqd contract (Documentation/libqd.md, libqd/include/qd.h)
 * against the real module: tokens, waits, close, buffers, threads.
 */
#include <pthread.h>
#include <qd.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "harness.h"

static const struct timespec ZERO = { 0, 0 };
static const struct timespec SHORT = { 0, 30 * 1000 * 1000 };	/* 30 ms */
static const struct timespec LONG = { 5, 0 };

FIXTURE(libqd) {
	int qd;
};

FIXTURE_SETUP(libqd)
{
	/* earlier tests' contexts may still be on their way out */
	qd_proc_wait_idle(0, 0, 3000, NULL);
	ASSERT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_queue(&self->qd));
}

FIXTURE_TEARDOWN(libqd)
{
}

/* Push one buffer and wait for the push. */
static int push_buf(int qd, void *buf, uint32_t len)
{
	struct qd_sga sga = { .numsegs = 1, .segs = { { buf, len } } };
	struct qd_result qr;
	qd_token_t qt;
	int ret;

	ret = qd_push(&qt, qd, &sga);
	if (ret)
		return ret;
	ret = qd_wait(&qr, qt, &LONG);
	if (ret)
		return ret;
	return qr.ret == len ? 0 : -EIO;
}

TEST_F(libqd, init_is_idempotent)
{
	struct qd_proc before, after;
	struct qd_stats st;

	ASSERT_EQ(0, qd_proc_read(&before));
	EXPECT_EQ(0, qd_init());
	EXPECT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_proc_read(&after));
	EXPECT_EQ(before.contexts, after.contexts);
	ASSERT_EQ(0, qd_stats(&st));
	EXPECT_LT(0u, st.sq_entries);
	EXPECT_LE(st.sq_entries, st.cq_entries);
	EXPECT_LT(0u, st.max_inflight);
}

static void *init_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)qd_init();
}

/* A process that has not called qd_init() yet. */
FIXTURE(fresh) {
	int unused;
};

FIXTURE_SETUP(fresh)
{
	qd_proc_wait_idle(0, 0, 3000, NULL);
}

FIXTURE_TEARDOWN(fresh)
{
}

TEST_F(fresh, concurrent_first_init_makes_one_context)
{
	struct qd_proc before, after;
	pthread_t t[8];
	int i;

	ASSERT_EQ(0, qd_proc_read(&before));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, init_thread, NULL));
	for (i = 0; i < 8; i++) {
		void *ret;

		ASSERT_EQ(0, pthread_join(t[i], &ret));
		EXPECT_EQ(0, (int)(intptr_t)ret);
	}
	ASSERT_EQ(0, qd_proc_read(&after));
	EXPECT_EQ(before.contexts + 1, after.contexts);
}

TEST_F(libqd, push_pop_wait_round_trip)
{
	struct qd_sga sga = qd_sgaalloc(256);
	struct qd_result qr;
	qd_token_t push_qt, pop_qt;

	ASSERT_EQ(1u, sga.numsegs);
	memset(sga.segs[0].buf, 0xab, 256);
	ASSERT_EQ(0, qd_push(&push_qt, self->qd, &sga));
	EXPECT_NE(0u, push_qt);
	ASSERT_EQ(0, qd_pop(&pop_qt, self->qd));
	EXPECT_NE(push_qt, pop_qt);

	ASSERT_EQ(0, qd_wait(&qr, push_qt, &LONG));
	EXPECT_EQ(QD_OPC_PUSH, (int)qr.opcode);
	EXPECT_EQ(self->qd, qr.qd);
	EXPECT_EQ(push_qt, qr.qt);
	EXPECT_EQ(256, qr.ret);

	ASSERT_EQ(0, qd_wait(&qr, pop_qt, &LONG));
	EXPECT_EQ(QD_OPC_POP, (int)qr.opcode);
	EXPECT_EQ(self->qd, qr.qd);
	EXPECT_EQ(pop_qt, qr.qt);
	EXPECT_EQ(256, qr.ret);
	ASSERT_EQ(1u, qr.value.sga.numsegs);
	EXPECT_EQ(sga.segs[0].buf, qr.value.sga.segs[0].buf);
	EXPECT_EQ(256u, qr.value.sga.segs[0].len);
	EXPECT_EQ((char)0xab, ((char *)qr.value.sga.segs[0].buf)[255]);
	EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
}

TEST_F(libqd, wait_twice_on_a_token_is_einval)
{
	struct qd_sga sga = qd_sgaalloc(64);
	struct qd_result qr;
	qd_token_t qt;

	ASSERT_EQ(1u, sga.numsegs);
	ASSERT_EQ(0, qd_push(&qt, self->qd, &sga));
	ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
	EXPECT_EQ(-EINVAL, qd_wait(&qr, qt, &LONG));
	EXPECT_EQ(-EINVAL, qd_wait(&qr, qt, &ZERO));
	EXPECT_EQ(-EINVAL, qd_wait(&qr, qt, NULL));
}

TEST_F(libqd, wait_on_unknown_token_is_einval)
{
	struct qd_result qr;
	qd_token_t qt, qts[2];
	int off;

	EXPECT_EQ(-EINVAL, qd_wait(&qr, 0, &ZERO));
	EXPECT_EQ(-EINVAL, qd_wait(&qr, 0x123456789abcULL, &ZERO));
	EXPECT_EQ(-EINVAL, qd_wait(&qr, ~0ULL, NULL));
	/* a live token next to a bad one */
	ASSERT_EQ(0, qd_pop(&qt, self->qd));
	qts[0] = qt;
	qts[1] = qt ^ 0x5555;
	EXPECT_EQ(-EINVAL, qd_wait_any(&qr, &off, qts, 2, &ZERO));
	/* the live one is untouched */
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qt, &ZERO));
}

TEST_F(libqd, zero_timeout_wait_on_pending_pop_is_etimedout_and_token_stays_valid)
{
	struct qd_sga sga = qd_sgaalloc(100);
	struct qd_result qr;
	qd_token_t qt;
	long long t0;

	ASSERT_EQ(1u, sga.numsegs);
	ASSERT_EQ(0, qd_pop(&qt, self->qd));
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qt, &ZERO));
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qt, &ZERO));
	t0 = qd_now_ns();
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qt, &SHORT));
	EXPECT_LE(20 * 1000 * 1000LL, qd_now_ns() - t0);
	ASSERT_EQ(0, push_buf(self->qd, sga.segs[0].buf, 100));
	ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
	EXPECT_EQ(100, qr.ret);
	EXPECT_EQ(sga.segs[0].buf, qr.value.sga.segs[0].buf);
	EXPECT_EQ(-EINVAL, qd_wait(&qr, qt, &ZERO));
	qd_sgafree(&sga);
}

TEST_F(libqd, wait_any_returns_the_ready_offset)
{
	struct qd_sga sga = qd_sgaalloc(10);
	struct qd_result qr;
	qd_token_t qts[3];
	int qds[3], i, off = -1;

	ASSERT_EQ(1u, sga.numsegs);
	qds[0] = self->qd;
	ASSERT_EQ(0, qd_queue(&qds[1]));
	ASSERT_EQ(0, qd_queue(&qds[2]));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, qd_pop(&qts[i], qds[i]));
	EXPECT_EQ(-ETIMEDOUT, qd_wait_any(&qr, &off, qts, 3, &ZERO));
	EXPECT_EQ(-ETIMEDOUT, qd_wait_any(&qr, &off, qts, 3, &SHORT));

	ASSERT_EQ(0, push_buf(qds[2], sga.segs[0].buf, 10));
	ASSERT_EQ(0, qd_wait_any(&qr, &off, qts, 3, &LONG));
	EXPECT_EQ(2, off);
	EXPECT_EQ(qts[2], qr.qt);
	EXPECT_EQ(qds[2], qr.qd);
	EXPECT_EQ(10, qr.ret);
	/* only that token was consumed */
	EXPECT_EQ(-EINVAL, qd_wait(&qr, qts[2], &ZERO));
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qts[0], &ZERO));

	ASSERT_EQ(0, push_buf(qds[0], sga.segs[0].buf, 10));
	ASSERT_EQ(0, qd_wait_any(&qr, &off, qts, 2, &LONG));
	EXPECT_EQ(0, off);
	EXPECT_EQ(qds[0], qr.qd);
	ASSERT_EQ(0, qd_close(qds[1]));
	ASSERT_EQ(0, qd_wait_any(&qr, &off, &qts[1], 1, &LONG));
	EXPECT_EQ(0, off);
	EXPECT_EQ(-ECANCELED, qr.ret);
	qd_sgafree(&sga);
}

TEST_F(libqd, close_cancels_a_pending_pop)
{
	struct qd_result qr;
	qd_token_t qt1, qt2;

	ASSERT_EQ(0, qd_pop(&qt1, self->qd));
	ASSERT_EQ(0, qd_pop(&qt2, self->qd));
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qt1, &SHORT));
	ASSERT_EQ(0, qd_close(self->qd));
	ASSERT_EQ(0, qd_wait(&qr, qt2, &LONG));
	EXPECT_EQ(-ECANCELED, qr.ret);
	EXPECT_EQ(self->qd, qr.qd);
	ASSERT_EQ(0, qd_wait(&qr, qt1, &LONG));
	EXPECT_EQ(-ECANCELED, qr.ret);
	/* the qd is gone */
	EXPECT_EQ(-EBADF, qd_close(self->qd));
}

/*
 * Pops left waiting on three queues at once, interleaved, more of them per
 * queue than libqd keeps at first (its per-queue FIFOs grow): each pop gets
 * its own queue's elements in push order, however the pushes interleave;
 * closing one queue cancels its pops and leaves the others' alone; a queue
 * made afterwards (its FIFO reused) works the same.
 */
TEST_F(libqd, pops_waiting_on_several_queues_get_their_own_elements_in_order)
{
	enum { NQ = 3, PER = 40 };
	qd_token_t pops[NQ][PER];
	struct qd_sga bufs[NQ][PER];
	struct qd_result qr;
	int qds[NQ], i, k;

	qds[0] = self->qd;
	ASSERT_EQ(0, qd_queue(&qds[1]));
	ASSERT_EQ(0, qd_queue(&qds[2]));
	for (i = 0; i < PER; i++)
		for (k = 0; k < NQ; k++)
			ASSERT_EQ(0, qd_pop(&pops[k][i], qds[k]));
	/* nothing yet */
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, pops[1][0], &ZERO));
	/* queue 2 first, then 0, then 1: each in its own order */
	for (k = NQ - 1; k >= 0; k--) {
		int q = (k + 2) % NQ;

		for (i = 0; i < PER; i++) {
			bufs[q][i] = qd_sgaalloc(64);
			ASSERT_EQ(1u, bufs[q][i].numsegs);
			if (q == 1 && i >= PER / 2)
				break;
			ASSERT_EQ(0, qd_push_forget(qds[q], &bufs[q][i]));
		}
	}
	/* waited newest first: every result is already the right one */
	for (k = 0; k < NQ; k++) {
		for (i = (k == 1 ? PER / 2 : PER) - 1; i >= 0; i--) {
			ASSERT_EQ(0, qd_wait(&qr, pops[k][i], &LONG));
			EXPECT_EQ(64, qr.ret);
			EXPECT_EQ(qds[k], qr.qd);
			ASSERT_EQ(1u, qr.value.sga.numsegs);
			EXPECT_EQ(bufs[k][i].segs[0].buf, qr.value.sga.segs[0].buf);
			qd_sgafree(&qr.value.sga);
		}
	}
	/* queue 1's other half still waits; closing it cancels them */
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, pops[1][PER / 2], &ZERO));
	qd_sgafree(&bufs[1][PER / 2]);
	ASSERT_EQ(0, qd_close(qds[1]));
	for (i = PER / 2; i < PER; i++) {
		ASSERT_EQ(0, qd_wait(&qr, pops[1][i], &LONG));
		EXPECT_EQ(-ECANCELED, qr.ret);
	}
	/* a new queue, and the old ones, still work */
	ASSERT_EQ(0, qd_queue(&qds[1]));
	for (k = 0; k < NQ; k++) {
		ASSERT_EQ(0, qd_pop(&pops[k][0], qds[k]));
		bufs[k][0] = qd_sgaalloc(32);
		ASSERT_EQ(0, qd_push_forget(qds[k], &bufs[k][0]));
		ASSERT_EQ(0, qd_wait(&qr, pops[k][0], &LONG));
		EXPECT_EQ(32, qr.ret);
		EXPECT_EQ(bufs[k][0].segs[0].buf, qr.value.sga.segs[0].buf);
		qd_sgafree(&qr.value.sga);
	}
	ASSERT_EQ(0, qd_close(qds[1]));
	ASSERT_EQ(0, qd_close(qds[2]));
}

struct closer {
	int qd;
	int ret;
};

static void *close_later(void *arg)
{
	struct closer *c = arg;

	usleep(50 * 1000);
	c->ret = qd_close(c->qd);
	return NULL;
}

/*
 * A pop waited for in one thread, asleep in the kernel on its (mapped)
 * queue without an operation (QD_ENTER_MQ_POP), ends with -ECANCELED when
 * another thread closes the queue. (The thread ping-pong tests cover the
 * sleeps that end with an element.)
 */
TEST_F(libqd, a_sleeping_pop_ends_with_a_close_from_another_thread)
{
	struct closer c = { .qd = self->qd, .ret = 1 };
	struct qd_result qr;
	struct qd_stats st0, st1;
	pthread_t t;
	qd_token_t qt;

	ASSERT_EQ(0, qd_pop(&qt, self->qd));
	ASSERT_EQ(0, qd_stats(&st0));
	ASSERT_EQ(0, pthread_create(&t, NULL, close_later, &c));
	ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
	pthread_join(t, NULL);
	EXPECT_EQ(0, c.ret);
	EXPECT_EQ(-ECANCELED, qr.ret);
	ASSERT_EQ(0, qd_stats(&st1));
	/* it slept (one enter at least), and was not woken by a timeout */
	EXPECT_LE(1u, st1.enters - st0.enters);
}

TEST_F(libqd, push_of_foreign_buffer_is_efault)
{
	static char static_buf[256];
	char stack_buf[64];
	char *heap = malloc(128);
	struct qd_sga sga = { .numsegs = 1 };
	struct qd_sga good = qd_sgaalloc(64);
	struct qd_result qr;
	qd_token_t qt;

	ASSERT_NE(NULL, heap);
	ASSERT_EQ(1u, good.numsegs);
	sga.segs[0].buf = heap;
	sga.segs[0].len = 128;
	EXPECT_EQ(-EFAULT, qd_push(&qt, self->qd, &sga));
	sga.segs[0].buf = stack_buf;
	sga.segs[0].len = sizeof(stack_buf);
	EXPECT_EQ(-EFAULT, qd_push(&qt, self->qd, &sga));
	sga.segs[0].buf = static_buf;
	EXPECT_EQ(-EFAULT, qd_push(&qt, self->qd, &sga));
	/* one bad segment among good ones */
	sga.numsegs = 2;
	sga.segs[0] = good.segs[0];
	sga.segs[1].buf = heap;
	sga.segs[1].len = 16;
	EXPECT_EQ(-EFAULT, qd_push(&qt, self->qd, &sga));
	/* nothing was submitted: a pop finds the queue empty */
	ASSERT_EQ(0, qd_pop(&qt, self->qd));
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qt, &SHORT));
	free(heap);
	qd_sgafree(&good);
}

TEST_F(libqd, push_of_empty_sga_fails)
{
	struct qd_sga good = qd_sgaalloc(64);
	struct qd_sga sga = good;
	qd_token_t qt;

	ASSERT_EQ(1u, good.numsegs);
	sga.numsegs = 0;
	EXPECT_GT(0, qd_push(&qt, self->qd, &sga));
	sga.numsegs = QD_SGA_MAX + 1;
	EXPECT_GT(0, qd_push(&qt, self->qd, &sga));
	sga.numsegs = 1;
	sga.segs[0].len = 0;
	EXPECT_GT(0, qd_push(&qt, self->qd, &sga));
	qd_sgafree(&good);
}

TEST_F(libqd, sgaalloc_sizes_from_1_byte_to_1_mib)
{
	static const size_t sizes[] = {
		1, 2, 63, 64, 65, 1000, 4095, 4096, 4097, 65536, 100000,
		512 * 1024, 1024 * 1024,
	};
	struct qd_sga sgas[sizeof(sizes) / sizeof(sizes[0])];
	unsigned int i, j;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct qd_sga *s = &sgas[i];

		*s = qd_sgaalloc(sizes[i]);
		ASSERT_EQ(1u, s->numsegs) TH_LOG("size %zu: %s", sizes[i], strerror(errno));
		EXPECT_EQ(sizes[i], s->segs[0].len);
		EXPECT_EQ(0u, (uintptr_t)s->segs[0].buf % 64) TH_LOG("size %zu", sizes[i]);
		memset(s->segs[0].buf, (int)i, sizes[i]);
		/* no two live buffers overlap */
		for (j = 0; j < i; j++) {
			uintptr_t a = (uintptr_t)sgas[j].segs[0].buf, b = (uintptr_t)s->segs[0].buf;

			EXPECT_TRUE(a + sizes[j] <= b || b + sizes[i] <= a)
				TH_LOG("size %zu overlaps size %zu", sizes[i], sizes[j]);
		}
	}
	/* each is pushable whole and comes back intact */
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct qd_result qr;
		qd_token_t qt;

		ASSERT_EQ(0, qd_push(&qt, self->qd, &sgas[i]));
		ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
		EXPECT_EQ((int64_t)sizes[i], qr.ret);
		ASSERT_EQ(0, qd_pop(&qt, self->qd));
		ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
		ASSERT_EQ(1u, qr.value.sga.numsegs);
		EXPECT_EQ(sgas[i].segs[0].buf, qr.value.sga.segs[0].buf);
		EXPECT_EQ((char)i, ((char *)qr.value.sga.segs[0].buf)[sizes[i] - 1]);
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		EXPECT_EQ(0, qd_sgafree(&sgas[i])) TH_LOG("size %zu", sizes[i]);
}

TEST_F(libqd, sgaalloc_zero_fails_and_bad_free_is_einval)
{
	struct qd_sga sga;
	char *heap = malloc(64);
	struct qd_sga foreign = { .numsegs = 1, .segs = { { heap, 64 } } };

	errno = 0;
	sga = qd_sgaalloc(0);
	EXPECT_EQ(0u, sga.numsegs);
	EXPECT_EQ(EINVAL, errno);

	sga = qd_sgaalloc(128);
	ASSERT_EQ(1u, sga.numsegs);
	EXPECT_EQ(0, qd_sgafree(&sga));
	EXPECT_EQ(-EINVAL, qd_sgafree(&sga));	/* double free */
	EXPECT_EQ(-EINVAL, qd_sgafree(&foreign));
	free(heap);
}

TEST_F(libqd, freed_buffers_are_reused)
{
	struct qd_sga a, b;
	int i;

	/* allocate and free far more than any sane pool holds at once */
	for (i = 0; i < 2000; i++) {
		a = qd_sgaalloc(64 * 1024);
		ASSERT_EQ(1u, a.numsegs) TH_LOG("round %d: %s", i, strerror(errno));
		b = qd_sgaalloc(100);
		ASSERT_EQ(1u, b.numsegs);
		ASSERT_EQ(0, qd_sgafree(&a));
		ASSERT_EQ(0, qd_sgafree(&b));
	}
}

/* --- threads ---------------------------------------------------------------- */

#ifndef PINGPONG_ROUNDS
#define PINGPONG_ROUNDS	10000
#endif
#define PINGPONG_WINDOW	32	/* elements in flight at once */

struct pingpong {
	int q_ping, q_pong;
	int failed_at;		/* element where the echo thread saw a problem, or -1 */
};

/*
 * Pops element i from q_ping, checks its sequence number, bumps its second
 * word and pushes the same buffer on to q_pong.
 */
static void *echo_thread(void *arg)
{
	struct pingpong *pp = arg;
	struct qd_result qr;
	qd_token_t qt;
	int i;

	for (i = 0; i < PINGPONG_ROUNDS; i++) {
		uint32_t *v;

		if (qd_pop(&qt, pp->q_ping) || qd_wait(&qr, qt, &LONG) ||
		    qr.ret != 8 || qr.value.sga.numsegs != 1)
			goto fail;
		v = qr.value.sga.segs[0].buf;
		if (v[0] != (uint32_t)i || v[1] != ~(uint32_t)i)
			goto fail;
		v[1]++;
		if (qd_push(&qt, pp->q_pong, &qr.value.sga) || qd_wait(&qr, qt, &LONG) ||
		    qr.ret != 8)
			goto fail;
	}
	return NULL;
fail:
	pp->failed_at = i;
	return NULL;
}

/* 30 s is too short on a KASAN kernel (make check-debug): no speed claim here. */
TEST_F_TIMEOUT(libqd, two_threads_ping_pong_10000_elements, 300)
{
	struct pingpong pp = { .q_ping = self->qd, .failed_at = -1 };
	struct qd_sga sga[PINGPONG_WINDOW];
	qd_token_t push_qt[PINGPONG_WINDOW];
	unsigned int sent = 0, recv = 0, i;
	struct qd_result qr;
	qd_token_t qt;
	pthread_t t;

	for (i = 0; i < PINGPONG_WINDOW; i++) {
		sga[i] = qd_sgaalloc(8);
		ASSERT_EQ(1u, sga[i].numsegs);
	}
	ASSERT_EQ(0, qd_queue(&pp.q_pong));
	ASSERT_EQ(0, pthread_create(&t, NULL, echo_thread, &pp));
	while (recv < PINGPONG_ROUNDS) {
		uint32_t *v;

		/* keep up to a window of elements going out on q_ping */
		while (sent < PINGPONG_ROUNDS && sent - recv < PINGPONG_WINDOW) {
			v = sga[sent % PINGPONG_WINDOW].segs[0].buf;
			v[0] = sent;
			v[1] = ~sent;
			ASSERT_EQ(0, qd_push(&push_qt[sent % PINGPONG_WINDOW], pp.q_ping,
					     &sga[sent % PINGPONG_WINDOW]));
			sent++;
		}
		/* and take the next one back from q_pong: in order, each exactly once */
		ASSERT_EQ(0, qd_pop(&qt, pp.q_pong));
		ASSERT_EQ(0, qd_wait(&qr, qt, &LONG)) TH_LOG("element %u (echo failed at %d)",
							       recv, pp.failed_at);
		ASSERT_EQ(8, qr.ret);
		ASSERT_EQ(sga[recv % PINGPONG_WINDOW].segs[0].buf, qr.value.sga.segs[0].buf);
		v = qr.value.sga.segs[0].buf;
		ASSERT_EQ(recv, v[0]);
		ASSERT_EQ(~recv + 1, v[1]);
		ASSERT_EQ(0, qd_wait(&qr, push_qt[recv % PINGPONG_WINDOW], &LONG));
		ASSERT_EQ(8, qr.ret);
		recv++;
	}
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(-1, pp.failed_at);
	/* nothing left over on either queue */
	ASSERT_EQ(0, qd_pop(&qt, pp.q_ping));
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qt, &ZERO));
	ASSERT_EQ(0, qd_pop(&qt, pp.q_pong));
	EXPECT_EQ(-ETIMEDOUT, qd_wait(&qr, qt, &SHORT));
	for (i = 0; i < PINGPONG_WINDOW; i++)
		qd_sgafree(&sga[i]);
}

#define WAITERS	8

struct waiter {
	int qd;
	qd_token_t qt;
	int ret;
	struct qd_result qr;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;

	w->ret = qd_wait(&w->qr, w->qt, NULL);
	return NULL;
}

TEST_F(libqd, many_threads_wait_on_different_tokens)
{
	struct waiter w[WAITERS];
	struct qd_sga sga[WAITERS];
	pthread_t t[WAITERS];
	int i;

	for (i = 0; i < WAITERS; i++) {
		sga[i] = qd_sgaalloc(16 + i);
		ASSERT_EQ(1u, sga[i].numsegs);
		ASSERT_EQ(0, qd_queue(&w[i].qd));
		ASSERT_EQ(0, qd_pop(&w[i].qt, w[i].qd));
		w[i].ret = 1;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, waiter_thread, &w[i]));
	}
	qd_sleep_ms(30);
	/* everyone is asleep in qd_wait; wake them in reverse order */
	for (i = WAITERS - 1; i >= 0; i--) {
		EXPECT_EQ(1, w[i].ret) TH_LOG("waiter %d returned early", i);
		ASSERT_EQ(0, push_buf(w[i].qd, sga[i].segs[0].buf, 16 + i));
	}
	for (i = 0; i < WAITERS; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, w[i].ret);
		EXPECT_EQ(w[i].qd, w[i].qr.qd);
		EXPECT_EQ(16 + i, w[i].qr.ret);
		EXPECT_EQ(sga[i].segs[0].buf, w[i].qr.value.sga.segs[0].buf);
		qd_sgafree(&sga[i]);
	}
}

struct worker {
	int qd, rounds, errors;
};

static void *worker_thread(void *arg)
{
	struct worker *wk = arg;
	struct qd_sga sga = qd_sgaalloc(32);
	struct qd_result qr;
	qd_token_t push_qt, pop_qt;
	int i;

	if (sga.numsegs != 1) {
		wk->errors++;
		return NULL;
	}
	for (i = 0; i < wk->rounds; i++) {
		/* pop first, so that it is pending when the push arrives */
		if (qd_pop(&pop_qt, wk->qd) || qd_push(&push_qt, wk->qd, &sga)) {
			wk->errors++;
			break;
		}
		if (qd_wait(&qr, push_qt, &LONG) || qr.ret != 32)
			wk->errors++;
		if (qd_wait(&qr, pop_qt, &LONG) || qr.ret != 32 ||
		    qr.value.sga.segs[0].buf != sga.segs[0].buf)
			wk->errors++;
	}
	qd_sgafree(&sga);
	return NULL;
}

TEST_F(libqd, threads_on_their_own_queues_run_concurrently)
{
	struct worker wk[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		wk[i].rounds = 1000;
		wk[i].errors = 0;
		ASSERT_EQ(0, qd_queue(&wk[i].qd));
		ASSERT_EQ(0, pthread_create(&t[i], NULL, worker_thread, &wk[i]));
	}
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, wk[i].errors) TH_LOG("worker %d", i);
	}
}

/* --- small rings: libqd must cope with CQ overflow and max_inflight ---------- */

FIXTURE(tiny) {
	int qd;
};

FIXTURE_SETUP(tiny)
{
	setenv("QD_SQ_ENTRIES", "4", 1);
	setenv("QD_CQ_ENTRIES", "8", 1);
	ASSERT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_queue(&self->qd));
}

FIXTURE_TEARDOWN(tiny)
{
}

TEST_F(tiny, more_completions_than_the_cq_holds_all_arrive)
{
	struct qd_sga sga = qd_sgaalloc(64);
	qd_token_t pops[64], pushes[64];
	struct qd_result qr;
	struct qd_stats st;
	int i, n;

	ASSERT_EQ(0, qd_stats(&st));
	ASSERT_EQ(4u, st.sq_entries);
	ASSERT_EQ(8u, st.cq_entries);
	ASSERT_EQ(1u, sga.numsegs);
	/* pending pops below max_inflight but above the CQ size */
	n = st.max_inflight > 12 ? (int)st.max_inflight - 4 : 8;
	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, qd_pop(&pops[i], self->qd)) TH_LOG("pop %d", i);
	for (i = 0; i < n; i++) {
		struct qd_sga one = { .numsegs = 1 };

		one.segs[0].buf = (char *)sga.segs[0].buf + i;
		one.segs[0].len = 1;
		ASSERT_EQ(0, qd_push(&pushes[i], self->qd, &one)) TH_LOG("push %d", i);
	}
	/* 2n completions through an 8-entry CQ */
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, qd_wait(&qr, pushes[i], &LONG)) TH_LOG("push %d", i);
		EXPECT_EQ(1, qr.ret);
	}
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, qd_wait(&qr, pops[i], &LONG)) TH_LOG("pop %d", i);
		EXPECT_EQ(1, qr.ret);
		/* FIFO: pop i got byte i */
		EXPECT_EQ((char *)sga.segs[0].buf + i, qr.value.sga.segs[0].buf);
	}
	qd_sgafree(&sga);
}

/* --- liveness with libqd's defaults ----------------------------------------- */

/*
 * Ordinary producer/consumer code with libqd's default rings and the
 * default queue depth (1024): one side issues 3,200 operations without
 * waiting for them, then the other side issues its 3,200. Pending
 * operations of the first kind fill the kernel's max_inflight; the second
 * kind, the only one that can complete them, must still get in, and every
 * element must come out, in order.
 */
#define LIVE_N		3200
#define LIVE_TIMEOUT	300	/* seconds, for the whole test (debug kernels) */

struct live {
	int		qd;
	char		*base;		/* element i is base[i], 1 byte */
	qd_token_t	push[LIVE_N], pop[LIVE_N];
	int		push_err, push_at;	/* first failing qd_push */
	int		pop_err, pop_at;	/* first failing qd_pop */
};

static void *live_pusher(void *arg)
{
	struct live *l = arg;
	int i;

	for (i = 0; i < LIVE_N; i++) {
		struct qd_sga one = { .numsegs = 1, .segs = { { l->base + i, 1 } } };
		int ret = qd_push(&l->push[i], l->qd, &one);

		if (ret) {
			l->push_err = ret;
			l->push_at = i;
			break;
		}
	}
	return NULL;
}

static void *live_popper(void *arg)
{
	struct live *l = arg;
	int i;

	for (i = 0; i < LIVE_N; i++) {
		int ret = qd_pop(&l->pop[i], l->qd);

		if (ret) {
			l->pop_err = ret;
			l->pop_at = i;
			break;
		}
	}
	return NULL;
}

static struct live *live_new(struct __test_metadata *_metadata, int qd,
			     struct qd_sga *mem)
{
	struct qd_stats st;
	struct live *l;

	ASSERT_EQ(0, qd_stats(&st)) return NULL;
	/* libqd's defaults: nothing in the environment overrides them */
	if (getenv("QD_SQ_ENTRIES") || getenv("QD_CQ_ENTRIES"))
		SKIP(return NULL, "QD_SQ_ENTRIES/QD_CQ_ENTRIES set: not libqd's defaults");
	TH_LOG("libqd defaults: sq %u cq %u max_inflight %u", st.sq_entries,
	       st.cq_entries, st.max_inflight);
	*mem = qd_sgaalloc(LIVE_N);
	ASSERT_EQ(1u, mem->numsegs) return NULL;
	l = calloc(1, sizeof(*l));
	ASSERT_NE(NULL, l) return NULL;
	l->qd = qd;
	l->base = mem->segs[0].buf;
	l->push_at = l->pop_at = -1;
	return l;
}

/* The context's state, for a failure message. */
static const char *live_state(void)
{
	static char buf[512];
	char dirs[1][256], path[300];
	struct qd_stats st;
	struct qd_proc p;
	int n = 0;

	buf[0] = 0;
	if (!qd_stats(&st))
		n += snprintf(buf + n, sizeof(buf) - n,
			      "libqd: %llu SQEs submitted, %llu CQEs reaped; ",
			      (unsigned long long)st.sqes_submitted,
			      (unsigned long long)st.cqes_reaped);
	if (!qd_proc_read(&p))
		n += snprintf(buf + n, sizeof(buf) - n, "/proc/qd: inflight %lld queued %lld; ",
			      p.inflight, p.queued);
	if (!qd_debugfs_ready() && qd_debugfs_ctx_dirs(getpid(), dirs, 1) == 1) {
		snprintf(path, sizeof(path), "%s/info", dirs[0]);
		snprintf(buf + n, sizeof(buf) - n,
			 "debugfs: sq head %lld tail %lld, cq head %lld tail %lld, inflight %lld",
			 qd_kv(path, "sq_head"), qd_kv(path, "sq_tail"),
			 qd_kv(path, "cq_head"), qd_kv(path, "cq_tail"),
			 qd_kv(path, "inflight"));
	}
	return buf;
}

/* Wait for pop i: the i-th element. 0 or the failing step. */
static int live_check_pop(struct live *l, int i)
{
	struct qd_result qr;
	int ret = qd_wait(&qr, l->pop[i], &LONG);

	if (ret)
		return ret;
	if (qr.ret != 1 || qr.value.sga.numsegs != 1 ||
	    qr.value.sga.segs[0].buf != l->base + i || qr.value.sga.segs[0].len != 1)
		return -EIO;
	return 0;
}

static int live_check_push(struct live *l, int i)
{
	struct qd_result qr;
	int ret = qd_wait(&qr, l->push[i], &LONG);

	if (ret)
		return ret;
	return qr.ret == 1 ? 0 : -EIO;
}

TEST_F_TIMEOUT(libqd, consumer_pops_all_of_3200_pushes_left_unwaited, LIVE_TIMEOUT)
{
	struct qd_sga mem;
	struct live *l = live_new(_metadata, self->qd, &mem);
	pthread_t producer;
	int i;

	if (!l)
		return;
	/* the producer pushes 3,200 elements and waits for none of them */
	ASSERT_EQ(0, pthread_create(&producer, NULL, live_pusher, l));
	ASSERT_EQ(0, pthread_join(producer, NULL));
	ASSERT_EQ(0, l->push_err) TH_LOG("qd_push %d failed: %s", l->push_at, live_state());
	/* the consumer pops them one by one: 1,024 queued, the rest pending */
	for (i = 0; i < LIVE_N; i++) {
		ASSERT_EQ(0, qd_pop(&l->pop[i], self->qd)) TH_LOG("qd_pop %d", i);
		ASSERT_EQ(0, live_check_pop(l, i)) TH_LOG("pop %d of %d: %s", i, LIVE_N, live_state());
	}
	/* and every push completed */
	for (i = 0; i < LIVE_N; i++)
		ASSERT_EQ(0, live_check_push(l, i)) TH_LOG("push %d: %s", i, live_state());
	free(l);
	qd_sgafree(&mem);
}

TEST_F_TIMEOUT(libqd, producer_feeds_all_of_3200_pops_left_unwaited, LIVE_TIMEOUT)
{
	struct qd_sga mem;
	struct live *l = live_new(_metadata, self->qd, &mem);
	pthread_t consumer;
	int i;

	if (!l)
		return;
	/* the consumer posts 3,200 pops on the empty queue and waits for none */
	ASSERT_EQ(0, pthread_create(&consumer, NULL, live_popper, l));
	ASSERT_EQ(0, pthread_join(consumer, NULL));
	ASSERT_EQ(0, l->pop_err) TH_LOG("qd_pop %d failed: %s", l->pop_at, live_state());
	/* the producer pushes, waiting for each push */
	for (i = 0; i < LIVE_N; i++) {
		struct qd_sga one = { .numsegs = 1, .segs = { { l->base + i, 1 } } };

		ASSERT_EQ(0, qd_push(&l->push[i], self->qd, &one))
			TH_LOG("qd_push %d: %s", i, live_state());
		ASSERT_EQ(0, live_check_push(l, i)) TH_LOG("push %d of %d: %s", i, LIVE_N, live_state());
	}
	/* every pop got its element, in order */
	for (i = 0; i < LIVE_N; i++)
		ASSERT_EQ(0, live_check_pop(l, i)) TH_LOG("pop %d: %s", i, live_state());
	free(l);
	qd_sgafree(&mem);
}

/* --- fork ---------------------------------------------------------------------- */

TEST_F(libqd, fork_child_starts_with_its_own_context)
{
	struct qd_proc before, during;
	struct qd_sga sga5;
	struct qd_result qr5;
	qd_token_t qt5;
	int pfd[2], hold[2], st;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(hold));
	ASSERT_EQ(0, qd_proc_read(&before));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_sga sga;
		struct qd_result qr;
		qd_token_t qt;
		int qd;

		close(pfd[0]);
		close(hold[1]);
		/* libqd forgets the parent's context: this makes a new one */
		if (qd_queue(&qd))
			_exit(1);
		sga = qd_sgaalloc(10);
		if (sga.numsegs != 1)
			_exit(2);
		if (qd_push(&qt, qd, &sga) || qd_wait(&qr, qt, &LONG) || qr.ret != 10)
			_exit(3);
		if (qd_pop(&qt, qd) || qd_wait(&qr, qt, &LONG) || qr.ret != 10)
			_exit(4);
		if (write(pfd[1], "x", 1) != 1)
			_exit(5);
		/* hold the context until the parent looked (EOF on hold) */
		if (read(hold[0], &c, 1) < 0)
			_exit(6);
		_exit(0);
	}
	close(pfd[1]);
	close(hold[0]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	ASSERT_EQ(0, qd_proc_read(&during));
	EXPECT_EQ(before.contexts + 1, during.contexts);
	close(hold[1]);
	close(pfd[0]);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	/* the parent's context still works */
	sga5 = qd_sgaalloc(5);
	ASSERT_EQ(1u, sga5.numsegs);
	ASSERT_EQ(0, qd_push(&qt5, self->qd, &sga5));
	ASSERT_EQ(0, qd_wait(&qr5, qt5, &LONG));
	EXPECT_EQ(5, qr5.ret);
}

/*
 * Sharing through libqd: a queue made shareable, exported, imported by a
 * forked child with its own context. With a memfd both registered, the
 * parent pops the child's element with no copy, the buffer pointer being
 * the parent's own mapping of the same page; an element from memory the
 * parent cannot see is -EXDEV and stays queued; rights hold.
 */
TEST_F(libqd, shared_queue_across_processes_zero_copy)
{
	size_t len = 1 << 20;
	int mfd = memfd_create("qd-share", MFD_CLOEXEC), q, fd, qpush, st;
	struct qd_sga small, buf;
	char *shm;
	struct qd_result qr;
	qd_token_t qt;
	pid_t pid;

	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, len));
	shm = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, shm);
	ASSERT_EQ(0, qd_memregister(shm, len));
	/* A mapped queue stays in its process. */
	ASSERT_EQ(-EOPNOTSUPP, qd_queue_export(self->qd, QD_RIGHT_PUSH | QD_RIGHT_POP, &fd));
	ASSERT_EQ(0, qd_queue_shareable(&q));
	ASSERT_EQ(0, qd_queue_export(q, QD_RIGHT_PUSH, &qpush));
	ASSERT_EQ(-EINVAL, qd_queue_export(q, 4, &fd));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_sga sga = { .numsegs = 1 };
		struct qd_sga own = qd_sgaalloc(64);
		int iq;

		/* A fresh context: the parent's memory is registered anew. */
		if (qd_memregister(shm, len) || qd_queue_import(qpush, &iq))
			_exit(2);
		if (qd_pop(&qt, iq) || qd_wait(&qr, qt, &LONG) ||
		    qr.ret != -EPERM)
			_exit(3);
		memcpy(shm + 8192 + 5, "zero-copy", 9);
		sga.segs[0].buf = shm + 8192 + 5;
		sga.segs[0].len = 9;
		if (qd_push(&qt, iq, &sga) || qd_wait(&qr, qt, &LONG) ||
		    qr.ret != 9)
			_exit(4);
		/* Private memory: the parent cannot see it. */
		if (own.numsegs != 1)
			_exit(5);
		memcpy(own.segs[0].buf, "private", 7);
		own.segs[0].len = 7;
		if (qd_push(&qt, iq, &own) || qd_wait(&qr, qt, &LONG) ||
		    qr.ret != 7)
			_exit(6);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	close(qpush);
	ASSERT_EQ(0, qd_pop(&qt, q));
	ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
	ASSERT_EQ(9, qr.ret);
	EXPECT_EQ(shm + 8192 + 5, qr.value.sga.segs[0].buf);
	EXPECT_EQ(0, memcmp(qr.value.sga.segs[0].buf, "zero-copy", 9));
	/* The private element: refused, still first in the queue... */
	ASSERT_EQ(0, qd_pop(&qt, q));
	ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
	EXPECT_EQ(-EXDEV, qr.ret);
	/* ...until a pop brings a buffer: one copy, into it. */
	small = qd_sgaalloc(4);
	buf = qd_sgaalloc(64);
	ASSERT_EQ(1u, buf.numsegs);
	ASSERT_EQ(0, qd_pop_into(&qt, q, &small));
	ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
	EXPECT_EQ(-EMSGSIZE, qr.ret);
	ASSERT_EQ(0, qd_pop_into(&qt, q, &buf));
	ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
	EXPECT_EQ(7, qr.ret);
	EXPECT_EQ(buf.segs[0].buf, qr.value.sga.segs[0].buf);
	EXPECT_EQ(7u, qr.value.sga.segs[0].len);
	EXPECT_EQ(0, memcmp(buf.segs[0].buf, "private", 7));
	qd_sgafree(&small);
	qd_sgafree(&buf);
	ASSERT_EQ(0, qd_close(q));
	EXPECT_EQ(0, qd_memunregister(shm));
	munmap(shm, len);
	close(mfd);
}

/* In the child of shared_mapped_fast_path_in_both_processes: 0 or a line. */
static int fast_kid(int x1, int x2, char *shm, size_t len, int go, int done)
{
	struct qd_stats st0, st1;
	struct qd_result qr;
	qd_token_t qt;
	int iq1, iq2, i;
	char c;

	if (qd_memregister(shm, len) || qd_queue_import(x1, &iq1) ||
	    qd_queue_import(x2, &iq2))
		return __LINE__;
	if (read(go, &c, 1) != 1 || qd_stats(&st0))
		return __LINE__;
	/* 100 elements waiting in the ring: popped with no enter */
	for (i = 0; i < 100; i++) {
		if (qd_pop(&qt, iq1) || qd_wait(&qr, qt, &LONG))
			return __LINE__;
		if (qr.ret != 64 || qr.value.sga.numsegs != 1 ||
		    qr.value.sga.segs[0].buf != shm + 4096 * i ||
		    shm[4096 * i] != (char)i)
			return __LINE__;
	}
	if (qd_stats(&st1))
		return __LINE__;
	if (st1.enters != st0.enters || st1.syscalls - st0.syscalls > 1)
		return __LINE__;	/* one lookup of the parent's binding */
	if (write(done, "x", 1) != 1)
		return __LINE__;
	/* ping-pong: each element goes back with its buffer */
	for (i = 0; i < 1000; i++) {
		if (qd_pop(&qt, iq1) || qd_wait(&qr, qt, &LONG) || qr.ret != 32)
			return __LINE__;
		if (qd_push(&qt, iq2, &qr.value.sga) || qd_wait(&qr, qt, &LONG))
			return __LINE__;
	}
	return 0;
}

/*
 * The fast path in both processes: a shared mapped queue (qd_queue_shareable)
 * imported with both rights by a forked child, both having registered one
 * memfd. 100 elements pushed by the parent with no enter are popped by the
 * child with no enter either (one lookup of the parent's binding), each a
 * pointer into the child's own mapping; then 1,000 round trips through two
 * queues, where each side sleeps in the kernel and the other's push wakes it.
 */
TEST_F(libqd, shared_mapped_fast_path_in_both_processes)
{
	size_t len = 1 << 20;
	int mfd = memfd_create("qd-fast", MFD_CLOEXEC), q1, q2, x1, x2, st, i;
	int go[2], done[2];
	struct qd_stats st0, st1;
	struct qd_result qr;
	struct qd_sga sga;
	qd_token_t qt;
	char *shm, c;
	pid_t pid;

	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, len));
	shm = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, shm);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	ASSERT_EQ(0, qd_memregister(shm, len));
	ASSERT_EQ(0, qd_queue_shareable(&q1));
	ASSERT_EQ(0, qd_queue_shareable(&q2));
	ASSERT_EQ(0, qd_queue_export(q1, QD_RIGHT_PUSH | QD_RIGHT_POP, &x1));
	ASSERT_EQ(0, qd_queue_export(q2, QD_RIGHT_PUSH | QD_RIGHT_POP, &x2));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int line = fast_kid(x1, x2, shm, len, go[0], done[1]);

		if (line)
			fprintf(stderr, "# child: libqd.c:%d\n", line);
		_exit(line ? 1 : 0);
	}
	ASSERT_EQ(0, qd_stats(&st0));
	for (i = 0; i < 100; i++) {
		shm[4096 * i] = (char)i;
		sga.numsegs = 1;
		sga.segs[0].buf = shm + 4096 * i;
		sga.segs[0].len = 64;
		ASSERT_EQ(0, qd_push(&qt, q1, &sga));
		ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
		ASSERT_EQ(64, qr.ret);
	}
	ASSERT_EQ(0, qd_stats(&st1));
	EXPECT_EQ(st0.enters, st1.enters);
	EXPECT_GE(1u, st1.syscalls - st0.syscalls);	/* one bind */
	ASSERT_EQ(1, write(go[1], "x", 1));
	ASSERT_EQ(1, read(done[0], &c, 1));
	for (i = 0; i < 1000; i++) {
		sga.numsegs = 1;
		sga.segs[0].buf = shm + 512 * 1024 + 64 * (i % 100);
		sga.segs[0].len = 32;
		ASSERT_EQ(0, qd_push(&qt, q1, &sga));
		ASSERT_EQ(0, qd_wait(&qr, qt, &LONG));
		ASSERT_EQ(0, qd_pop(&qt, q2));
		ASSERT_EQ(0, qd_wait(&qr, qt, &LONG)) TH_LOG("round trip %d", i);
		ASSERT_EQ(32, qr.ret);
		ASSERT_EQ(sga.segs[0].buf, qr.value.sga.segs[0].buf);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	ASSERT_EQ(0, qd_close(q1));
	ASSERT_EQ(0, qd_close(q2));
	EXPECT_EQ(0, qd_memunregister(shm));
	close(x1);
	close(x2);
	munmap(shm, len);
	close(mfd);
}

/*
 * Storage queues through libqd (Documentation/libqd.md, "Storage"): files
 * on the guest's tmpfs, buffered (the storage suite covers O_DIRECT, block
 * devices and the errors of the I/O paths).
 */
FIXTURE(file) {
	char dir[64];
	char path[96];
};

FIXTURE_SETUP(file)
{
	qd_proc_wait_idle(0, 0, 3000, NULL);
	strcpy(self->dir, "/tmp/qd-libqd-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/data", self->dir);
	ASSERT_EQ(0, qd_init());
}

FIXTURE_TEARDOWN(file)
{
	unlink(self->path);
	rmdir(self->dir);
}

/* Wait for qt; its byte count or -errno, the result in *qr. */
static int64_t file_wait(qd_token_t qt, struct qd_result *qr)
{
	int ret = qd_wait(qr, qt, &LONG);

	return ret ? ret : qr->ret;
}

static void fill_pattern(void *buf, size_t len, uint32_t seed)
{
	uint32_t *p = buf;
	size_t i;

	for (i = 0; i < len / 4; i++)
		p[i] = seed * 2654435761u + (uint32_t)i;
}

TEST_F(file, pushes_then_pops_read_back_what_was_written)
{
	struct qd_sga a[3];
	struct qd_result qr;
	qd_token_t qt[3];
	char *want, *got;
	size_t have = 0;
	int qd, i, fd;

	ASSERT_EQ(0, qd_open(&qd, self->path, O_RDWR | O_CREAT | O_TRUNC, 0600));
	want = malloc(3 * 4096);
	got = malloc(3 * 4096 + 1);
	ASSERT_TRUE(want && got);
	for (i = 0; i < 3; i++) {
		a[i] = qd_sgaalloc(4096);
		ASSERT_EQ(1u, a[i].numsegs);
		fill_pattern(a[i].segs[0].buf, 4096, i + 1);
		memcpy(want + i * 4096, a[i].segs[0].buf, 4096);
		ASSERT_EQ(0, qd_push(&qt[i], qd, &a[i]));
	}
	/* Each at the write offset of its submission: in order, any completion order. */
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(4096, file_wait(qt[i], &qr));
		EXPECT_EQ((int)QD_OPC_PUSH, (int)qr.opcode);
		EXPECT_EQ(a[i].segs[0].buf, qr.value.sga.segs[0].buf);
	}
	ASSERT_EQ(0, qd_sync(&qt[0], qd, QD_SYNC_DATASYNC));
	EXPECT_EQ(0, file_wait(qt[0], &qr));
	EXPECT_EQ((int)QD_OPC_SYNC, (int)qr.opcode);
	/* Pops of QD_FILE_POP_SIZE bytes until end of file (0 bytes). */
	for (;;) {
		ASSERT_EQ(0, qd_pop(&qt[0], qd));
		ASSERT_LE(0, file_wait(qt[0], &qr));
		if (!qr.ret) {
			EXPECT_EQ(0u, qr.value.sga.numsegs);
			break;
		}
		ASSERT_EQ(1u, qr.value.sga.numsegs);
		ASSERT_EQ(qr.ret, qr.value.sga.segs[0].len);
		ASSERT_GE(3 * 4096u, have + (size_t)qr.ret);
		EXPECT_EQ(0u, (uintptr_t)qr.value.sga.segs[0].buf % 4096);
		memcpy(got + have, qr.value.sga.segs[0].buf, qr.ret);
		have += qr.ret;
		EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
	}
	EXPECT_EQ(3 * 4096u, have);
	EXPECT_EQ(0, memcmp(want, got, 3 * 4096));
	EXPECT_EQ(0, qd_close(qd));
	/* The bytes are in the file for read(2) too. */
	fd = open(self->path, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(3 * 4096, read(fd, got, 3 * 4096 + 1));
	EXPECT_EQ(0, memcmp(want, got, 3 * 4096));
	close(fd);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, qd_sgafree(&a[i]));
	free(want);
	free(got);
}

TEST_F(file, positional_pushes_and_pops_leave_the_queue_offsets)
{
	struct qd_sga a = qd_sgaalloc(4096), buf = qd_sgaalloc(8192);
	struct qd_result qr;
	qd_token_t qt;
	char zero[4096];
	int qd;

	ASSERT_EQ(1u, a.numsegs);
	ASSERT_EQ(1u, buf.numsegs);
	memset(zero, 0, sizeof(zero));
	fill_pattern(a.segs[0].buf, 4096, 7);
	ASSERT_EQ(0, qd_open(&qd, self->path, O_RDWR | O_CREAT, 0600));
	ASSERT_EQ(0, qd_pushat(&qt, qd, &a, 1 << 20));
	EXPECT_EQ(4096, file_wait(qt, &qr));
	/* The read offset is 0: a hole, then the block. */
	ASSERT_EQ(0, qd_popat(&qt, qd, &buf, (1 << 20) - 4096));
	EXPECT_EQ(8192, file_wait(qt, &qr));
	EXPECT_EQ(buf.segs[0].buf, qr.value.sga.segs[0].buf);
	EXPECT_EQ(0, memcmp(buf.segs[0].buf, zero, 4096));
	EXPECT_EQ(0, memcmp((char *)buf.segs[0].buf + 4096, a.segs[0].buf, 4096));
	/* libqd's buffer at an offset: trimmed to the end of the file. */
	ASSERT_EQ(0, qd_popat(&qt, qd, NULL, (1 << 20) + 4000));
	EXPECT_EQ(96, file_wait(qt, &qr));
	ASSERT_EQ(1u, qr.value.sga.numsegs);
	EXPECT_EQ(96u, qr.value.sga.segs[0].len);
	EXPECT_EQ(0, memcmp(qr.value.sga.segs[0].buf, (char *)a.segs[0].buf + 4000, 96));
	EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
	/* Past the end: 0 bytes. */
	ASSERT_EQ(0, qd_popat(&qt, qd, NULL, 2 << 20));
	EXPECT_EQ(0, file_wait(qt, &qr));
	/* qd_pop_into() at the read offset, still 0: the hole. */
	ASSERT_EQ(0, qd_pop_into(&qt, qd, &a));
	EXPECT_EQ(4096, file_wait(qt, &qr));
	EXPECT_EQ(0, memcmp(a.segs[0].buf, zero, 4096));
	EXPECT_EQ(0, qd_close(qd));
	qd_sgafree(&a);
	qd_sgafree(&buf);
}

TEST_F(file, bad_opens_and_refused_calls)
{
	struct qd_sga a = qd_sgaalloc(16);
	char *longp = malloc(PATH_MAX + 1);
	struct qd_result qr;
	qd_token_t qt;
	int qd = -1, q2;

	ASSERT_TRUE(longp != NULL);
	memset(longp, 'a', PATH_MAX);
	longp[0] = '/';
	longp[PATH_MAX] = 0;
	EXPECT_EQ(-ENOENT, qd_open(&qd, self->path, O_RDONLY, 0));
	EXPECT_EQ(-EISDIR, qd_open(&qd, self->dir, O_RDONLY, 0));
	EXPECT_EQ(-ENAMETOOLONG, qd_open(&qd, longp, O_RDONLY, 0));
	EXPECT_EQ(-EINVAL, qd_open(&qd, self->path, O_RDONLY | O_DIRECTORY, 0));
	EXPECT_EQ(-EINVAL, qd_open(&qd, "/dev/null", O_RDONLY, 0));
	EXPECT_EQ(-1, qd);
	ASSERT_EQ(0, qd_open(&qd, self->path, O_WRONLY | O_CREAT | O_EXCL, 0600));
	EXPECT_EQ(-EEXIST, qd_open(&q2, self->path, O_RDWR | O_CREAT | O_EXCL, 0600));
	EXPECT_EQ(-EOPNOTSUPP, qd_push_forget(qd, &a));
	EXPECT_EQ(-EOPNOTSUPP, qd_pop_multi(&qt, qd));
	/* Write-only: a pop fails in its result, libqd's buffer freed. */
	ASSERT_EQ(0, qd_pop(&qt, qd));
	EXPECT_EQ(-EBADF, file_wait(qt, &qr));
	EXPECT_EQ(0u, qr.value.sga.numsegs);
	EXPECT_EQ(0, qd_close(qd));
	qd_sgafree(&a);
	free(longp);
}

TEST_F(file, a_process_without_the_right_is_refused_after_init)
{
	int st, qd;
	pid_t pid;

	ASSERT_EQ(0, qd_open(&qd, self->path, O_RDWR | O_CREAT, 0600));
	EXPECT_EQ(0, qd_close(qd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The context first, then fewer rights: the open is checked now. */
		if (qd_init() || setgid(65534) || setuid(65534))
			_exit(1);
		_exit(qd_open(&qd, self->path, O_RDONLY, 0) == -EACCES ? 0 : 2);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
}

TEST_F(file, open_under_sqpoll_is_taken_by_the_enter)
{
	int st;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_sga a;
		struct qd_result qr;
		struct qd_stats s;
		qd_token_t qt;
		int qd;

		/* The child's context is new: made with a poller. */
		setenv("QD_SQPOLL", "50", 1);
		if (qd_init() || qd_stats(&s) || !(s.features & QD_FEAT_SQPOLL))
			_exit(1);
		if (qd_open(&qd, self->path, O_RDWR | O_CREAT, 0600))
			_exit(2);
		a = qd_sgaalloc(100);
		memset(a.segs[0].buf, 'q', 100);
		if (qd_push(&qt, qd, &a) || file_wait(qt, &qr) != 100)
			_exit(3);
		if (qd_popat(&qt, qd, NULL, 0) || file_wait(qt, &qr) != 100 ||
		    memcmp(qr.value.sga.segs[0].buf, a.segs[0].buf, 100))
			_exit(4);
		_exit(qd_close(qd) ? 5 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
}

TEST_HARNESS_MAIN
