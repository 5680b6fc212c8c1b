/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the derived-queue tests, against the fake kernel
 * (derive_fn.c) and the real module (vm_derive.c): elements of 8 bytes
 * (a value, then a tag), popped back as v | tag << 8, and the callbacks
 * both use. The includer provides tap_diag() (tap.h).
 */
#ifndef LIBQD_TESTS_DERIVE_HELP_H
#define LIBQD_TESTS_DERIVE_HELP_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "qd.h"

static const struct timespec derive_now = { 0, 0 };
static const struct timespec derive_wait = { 5, 0 };

/* An element of 8 bytes: v, then tag. */
static void push2(int qd, int v, int tag)
{
	struct qd_sga a = qd_sgaalloc(8);

	if (!a.numsegs) {
		tap_diag("qd_sgaalloc failed");
		return;
	}
	memset(a.segs[0].buf, 0, 8);
	((unsigned char *)a.segs[0].buf)[0] = (unsigned char)v;
	((unsigned char *)a.segs[0].buf)[1] = (unsigned char)tag;
	if (qd_push_forget(qd, &a))
		tap_diag("qd_push_forget(%d) failed", qd);
}

static void push1(int qd, int v)
{
	push2(qd, v, 0);
}

/* v | tag << 8 of a popped element (freed), or the result's -errno. */
static int64_t result_val(const struct qd_result *qr)
{
	struct qd_sga sga = qr->value.sga;
	const unsigned char *b;
	int64_t v;

	if (qr->ret < 0)
		return qr->ret;
	if (qr->opcode != QD_OPC_POP || sga.numsegs != 1 || qr->ret != 8)
		return -EPROTO;
	b = sga.segs[0].buf;
	v = b[0] | b[1] << 8;
	if (qd_sgafree(&sga))
		return -EFAULT;
	return v;
}

/* Pop qd and wait (5 s at most): v | tag << 8, or -errno. */
static int64_t pop_val(int qd)
{
	struct qd_result qr;
	qd_token_t qt;
	int ret;

	ret = qd_pop(&qt, qd);
	if (ret)
		return ret;
	ret = qd_wait(&qr, qt, &derive_wait);
	if (ret)
		return ret;
	if (qr.qd != qd)
		return -EPROTO;
	return result_val(&qr);
}

/* Nothing more for a pop of qd now: the pop is left pending, cancelled. */
static int pop_empty(int qd)
{
	struct qd_result qr;
	qd_token_t qt;
	int ret;

	if (qd_pop(&qt, qd))
		return 0;
	ret = qd_wait(&qr, qt, &derive_now);
	if (ret != -ETIMEDOUT)
		return 0;
	return qd_cancel(qt) == 0 && qd_wait(&qr, qt, &derive_now) == 0 &&
	       qr.ret == -ECANCELED;
}

static bool even(const struct qd_sga *sga, void *arg)
{
	(void)arg;
	return !(((const unsigned char *)sga->segs[0].buf)[0] & 1);
}

static bool below(const struct qd_sga *sga, void *arg)
{
	return ((const unsigned char *)sga->segs[0].buf)[0] <
	       (uintptr_t)arg;
}

static int by_first(const struct qd_sga *a, const struct qd_sga *b,
		    void *arg)
{
	const unsigned char *x = a->segs[0].buf, *y = b->segs[0].buf;

	return arg ? y[0] - x[0] : x[0] - y[0];
}

/* Scenarios both the fake-kernel and the module tests run. */

/* Threads: a producer, one consumer on the filter, one on the source. */
static int tq, tf, t_n, t_every;

static void *producer(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < t_n; i++) {
		push2(tq, i & 1, (i / 2) & 0xff);
		if (!(i % t_every))
			qd_submit();
	}
	qd_submit();
	return NULL;
}

static void *consumer(void *arg)
{
	int qd = arg ? tf : tq, want = arg ? 0 : 1, i;
	int64_t v;

	for (i = 0; i < t_n / 2; i++) {
		v = pop_val(qd);
		if (v != (want | (i & 0xff) << 8)) {
			tap_diag("consumer %d: got %lld at %d", qd,
				 (long long)v, i);
			return (void *)1;
		}
	}
	return NULL;
}

/* n elements, qd_submit() every every pushes. */
static void derive_threads(int n, int every)
{
	pthread_t p, c1, c2;
	void *r1, *r2;

	t_n = n;
	t_every = every;

	REQUIRE(qd_queue(&tq) == 0);
	REQUIRE(qd_filter_fn(&tf, tq, even, NULL) == 0);
	pthread_create(&c1, NULL, consumer, (void *)1);
	pthread_create(&c2, NULL, consumer, NULL);
	pthread_create(&p, NULL, producer, NULL);
	pthread_join(p, NULL);
	pthread_join(c1, &r1);
	pthread_join(c2, &r2);
	CHECK(!r1 && !r2);
	CHECK(pop_empty(tf) && pop_empty(tq));
}

/*
 * A pop on a sort gets the smallest of all that reached the source before
 * it is served: the root is drained first, also for a new pop on a sort
 * that already holds elements, and for a pop that waited.
 */
static void derive_sort_drains_source_first(void)
{
	struct qd_result qr;
	qd_token_t qt;
	int q, s;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_sort_fn(&s, q, by_first, NULL) == 0);
	push1(q, 5);
	push1(q, 7);
	CHECK_EQ(pop_val(s), 5);		/* s holds 7 */
	push1(q, 1);
	CHECK_EQ(pop_val(s), 1);		/* not the 7 it held */
	push1(q, 3);
	CHECK_EQ(pop_val(s), 3);
	CHECK_EQ(pop_val(s), 7);
	/* A pop that waits: what came before the wait looked counts. */
	REQUIRE(qd_pop(&qt, s) == 0);
	CHECK_EQ(qd_wait(&qr, qt, &derive_now), -ETIMEDOUT);
	push1(q, 9);
	push1(q, 4);
	push1(q, 6);
	REQUIRE(qd_wait(&qr, qt, &derive_wait) == 0);
	CHECK_EQ(result_val(&qr), 4);
	CHECK_EQ(pop_val(s), 6);
	CHECK_EQ(pop_val(s), 9);
	CHECK(pop_empty(s));
	CHECK_EQ(qd_close(s), 0);
	CHECK_EQ(qd_close(q), 0);
}

/*
 * Pops on a filter complete in the order they were made, each with the
 * oldest element, while another thread pops the source (its waits route
 * elements to the filter): a new pop must not take an element the filter
 * holds before older pops still pending.
 */
#define OQ_POPS		16

static int oq, of, oq_done;
static uint32_t oq_n;

static void push_seq(int qd, int wanted, uint32_t seq)
{
	struct qd_sga a = qd_sgaalloc(8);
	unsigned char *b;

	if (!a.numsegs) {
		tap_diag("qd_sgaalloc failed");
		return;
	}
	b = a.segs[0].buf;
	memset(b, 0, 8);
	b[0] = (unsigned char)(wanted ? 0 : 1);	/* even(): wanted */
	memcpy(b + 4, &seq, 4);
	while (qd_push_forget(qd, &a) == -EAGAIN)
		qd_submit();
}

static void *oq_producer(void *arg)
{
	uint32_t i;

	(void)arg;
	for (i = 0; i < oq_n; i++) {
		push_seq(oq, !(i % 4), i);
		if (!(i % 5))
			qd_submit();
	}
	qd_submit();
	return NULL;
}

/* Pops the source (what the filter leaves) until told to stop. */
static void *oq_drain(void *arg)
{
	static const struct timespec ms = { 0, 1000000 };
	struct qd_result qr;
	qd_token_t qt;
	int ret;

	(void)arg;
	if (qd_pop(&qt, oq))
		return (void *)1;
	while (!__atomic_load_n(&oq_done, __ATOMIC_ACQUIRE)) {
		ret = qd_wait(&qr, qt, &ms);
		if (ret == -ETIMEDOUT)
			continue;
		if (ret || qr.ret != 8)
			return (void *)1;
		qd_sgafree(&qr.value.sga);
		if (qd_pop(&qt, oq))
			return (void *)1;
	}
	qd_cancel(qt);
	if (!qd_wait(&qr, qt, &derive_wait) && qr.ret > 0)
		qd_sgafree(&qr.value.sga);
	return NULL;
}

/* n wanted elements. */
static void derive_filter_pops_in_order(uint32_t n)
{
	qd_token_t qts[OQ_POPS];
	struct qd_result qr;
	pthread_t p, d;
	uint32_t want = 0, seq, posted = OQ_POPS;
	void *rd;
	int i, bad = 0;

	REQUIRE(qd_queue(&oq) == 0);
	REQUIRE(qd_filter_fn(&of, oq, even, NULL) == 0);
	oq_n = n;
	oq_done = 0;
	for (i = 0; i < OQ_POPS; i++)
		REQUIRE(qd_pop(&qts[i], of) == 0);
	pthread_create(&d, NULL, oq_drain, NULL);
	pthread_create(&p, NULL, oq_producer, NULL);
	for (i = 0; want < oq_n && !bad; i = (i + 1) % OQ_POPS) {
		if (qd_wait(&qr, qts[i], &derive_wait) || qr.ret != 8) {
			tap_diag("pop %u: no element (%lld)", want,
				 (long long)qr.ret);
			bad = 1;
			break;
		}
		memcpy(&seq, (unsigned char *)qr.value.sga.segs[0].buf + 4, 4);
		qd_sgafree(&qr.value.sga);
		if (seq != want) {
			tap_diag("wanted element %u arrived, %u expected",
				 seq, want);
			bad = 1;
		}
		want += 4;
		if (posted < oq_n / 4) {
			posted++;
			if (qd_pop(&qts[i], of))
				bad = 1;
		}
	}
	pthread_join(p, NULL);
	__atomic_store_n(&oq_done, 1, __ATOMIC_RELEASE);
	pthread_join(d, &rd);
	CHECK(!bad);
	CHECK(!rd);
	CHECK_EQ(qd_close(oq), 0);
	CHECK_EQ(qd_close(of), 0);
}

#endif /* LIBQD_TESTS_DERIVE_HELP_H */
