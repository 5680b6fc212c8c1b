// SPDX-License-Identifier: MIT
/*
 * Derived queues against the fake kernel: qd_filter_fn() and qd_sort_fn()
 * (libqd's own, on the fake's memory queues) with the rules of
 * /work/notes/issue10-spec.md, and qd_filter()/qd_merge()/qd_sort() as
 * far as libqd goes (argument checks, the feature bit, the request the
 * ioctl carries).
 */
#include <pthread.h>

#include "harness.h"
#include "derive_help.h"

static const struct timespec two_s = { 2, 0 };

static void filter_takes_matches_rest_stays(void)
{
	int q, f, i;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	CHECK(f != q);
	for (i = 1; i <= 6; i++)
		push1(q, i);
	CHECK_EQ(pop_val(f), 2);
	CHECK_EQ(pop_val(f), 4);
	CHECK_EQ(pop_val(f), 6);
	CHECK(pop_empty(f));
	CHECK_EQ(pop_val(q), 1);
	CHECK_EQ(pop_val(q), 3);
	CHECK_EQ(pop_val(q), 5);
	CHECK(pop_empty(q));
	CHECK_EQ(qd_close(f), 0);
	CHECK_EQ(qd_close(q), 0);
}

static void first_match_wins_in_creation_order(void)
{
	int q, f1, f2, i;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f1, q, below, (void *)5) == 0);
	REQUIRE(qd_filter_fn(&f2, q, below, (void *)8) == 0);
	for (i = 1; i <= 9; i++)
		push1(q, i);
	for (i = 5; i <= 7; i++)
		CHECK_EQ(pop_val(f2), i);
	for (i = 1; i <= 4; i++)
		CHECK_EQ(pop_val(f1), i);
	CHECK_EQ(pop_val(q), 8);
	CHECK_EQ(pop_val(q), 9);
	CHECK(pop_empty(f1) && pop_empty(f2) && pop_empty(q));
}

static void sort_smallest_first_ties_in_arrival_order(void)
{
	static const int in[][2] = { {3, 0}, {1, 1}, {3, 2}, {2, 3}, {1, 4} };
	static const int out[][2] = { {1, 1}, {1, 4}, {2, 3}, {3, 0}, {3, 2} };
	int q, s, d, i;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_sort_fn(&s, q, by_first, NULL) == 0);
	for (i = 0; i < 5; i++)
		push2(q, in[i][0], in[i][1]);
	for (i = 0; i < 5; i++)
		CHECK_EQ(pop_val(s), out[i][0] | out[i][1] << 8);
	CHECK(pop_empty(s));
	CHECK(pop_empty(q));		/* a sort takes everything */
	/* Descending (cmp's own business): largest first. */
	REQUIRE(qd_queue(&d) == 0);
	REQUIRE(qd_sort_fn(&s, d, by_first, (void *)1) == 0);
	push1(d, 1);
	push1(d, 9);
	push1(d, 5);
	CHECK_EQ(pop_val(s), 9);
	CHECK_EQ(pop_val(s), 5);
	CHECK_EQ(pop_val(s), 1);
}

static void sort_first_takes_all_before_later_filter(void)
{
	int q, s, f;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_sort_fn(&s, q, by_first, NULL) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	push1(q, 4);
	push1(q, 2);
	CHECK_EQ(pop_val(s), 2);
	CHECK_EQ(pop_val(s), 4);
	CHECK(pop_empty(f));
}

static void nested_filters_offer_downwards(void)
{
	int q, f, g, i;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, below, (void *)10) == 0);
	REQUIRE(qd_filter_fn(&g, f, even, NULL) == 0);
	for (i = 1; i <= 12; i++)
		push1(q, i);
	for (i = 2; i <= 8; i += 2)
		CHECK_EQ(pop_val(g), i);
	for (i = 1; i <= 9; i += 2)
		CHECK_EQ(pop_val(f), i);
	for (i = 10; i <= 12; i++)
		CHECK_EQ(pop_val(q), i);
	CHECK(pop_empty(g) && pop_empty(f) && pop_empty(q));
}

static void push_to_filter_goes_to_source(void)
{
	int q, f, s;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	push1(f, 3);		/* to q: not the filter's */
	push1(f, 4);		/* to q, then taken by the filter */
	CHECK_EQ(pop_val(q), 3);
	CHECK_EQ(pop_val(f), 4);
	CHECK(pop_empty(q));
	REQUIRE(qd_sort_fn(&s, q, by_first, NULL) == 0);
	{
		struct qd_sga a = qd_sgaalloc(8);
		qd_token_t qt;

		CHECK_EQ(qd_push(&qt, s, &a), -EOPNOTSUPP);
		CHECK_EQ(qd_push_forget(s, &a), -EOPNOTSUPP);
		qd_sgafree(&a);
	}
	CHECK_EQ(qd_pop_multi(&(qd_token_t){ 0 }, s), -EOPNOTSUPP);
	CHECK_EQ(qd_pop_multi(&(qd_token_t){ 0 }, q), -EOPNOTSUPP);
}

static void close_source_cancels_then_ends(void)
{
	struct qd_result qr;
	qd_token_t pf, pg;
	int q, f, g, q2, h;

	/* What the filter holds stays poppable, then -EPIPE. */
	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	push1(q, 2);
	push1(q, 4);
	push1(q, 5);
	CHECK_EQ(pop_val(f), 2);
	CHECK_EQ(qd_close(q), 0);
	CHECK_EQ(pop_val(f), 4);
	CHECK_EQ(pop_val(f), -EPIPE);
	CHECK_EQ(pop_val(f), -EPIPE);
	{
		struct qd_sga a = qd_sgaalloc(8);

		CHECK_EQ(qd_push_forget(f, &a), -EPIPE);
		qd_sgafree(&a);
	}
	CHECK_EQ(qd_close(f), 0);
	/* Pending pops: -ECANCELED, also one level down (as the kernel). */
	REQUIRE(qd_queue(&q2) == 0);
	REQUIRE(qd_filter_fn(&g, q2, even, NULL) == 0);
	REQUIRE(qd_filter_fn(&h, g, below, (void *)4) == 0);
	REQUIRE(qd_pop(&pg, g) == 0);
	REQUIRE(qd_pop(&pf, h) == 0);
	CHECK_EQ(qd_wait(&qr, pg, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_close(q2), 0);
	CHECK_EQ(qd_wait(&qr, pg, &zero_ts), 0);
	CHECK_EQ(qr.ret, -ECANCELED);
	CHECK_EQ(qd_wait(&qr, pf, &zero_ts), 0);
	CHECK_EQ(qr.ret, -ECANCELED);
	CHECK_EQ(pop_val(g), -EPIPE);
	CHECK_EQ(pop_val(h), -EPIPE);
	CHECK_EQ(qd_filter_fn(&f, g, even, NULL), -EPIPE);
}

static void close_derived_gives_back_in_pop_order(void)
{
	struct qd_result qr;
	qd_token_t pq;
	int q, f, s;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	push1(q, 2);
	push1(q, 1);
	push1(q, 4);
	push1(q, 6);
	CHECK_EQ(pop_val(f), 2);	/* f holds 4, 6; q holds 1 */
	CHECK_EQ(qd_close(f), 0);
	CHECK_EQ(pop_val(q), 1);	/* appended after what q holds */
	CHECK_EQ(pop_val(q), 4);
	CHECK_EQ(pop_val(q), 6);
	CHECK(pop_empty(q));
	/* A sort gives back in its own order, not offered again. */
	REQUIRE(qd_sort_fn(&s, q, by_first, NULL) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	push1(q, 9);
	push1(q, 8);
	push1(q, 7);
	CHECK_EQ(pop_val(s), 7);
	REQUIRE(qd_pop(&pq, q) == 0);		/* waits on q */
	CHECK_EQ(qd_wait(&qr, pq, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_close(s), 0);		/* 8 to the waiting pop */
	CHECK_EQ(qd_wait(&qr, pq, &zero_ts), 0);
	CHECK_EQ(result_val(&qr), 8);
	CHECK_EQ(pop_val(q), 9);
	CHECK(pop_empty(f));
	/* Once nothing is derived or held, q is a plain queue again. */
	CHECK_EQ(qd_close(f), 0);
	push1(q, 5);
	CHECK_EQ(pop_val(q), 5);
}

static void close_frees_what_nobody_can_pop(void)
{
	struct qd_sga a = qd_sgaalloc(8), copy;
	int q, f;

	REQUIRE(a.numsegs == 1);
	memset(a.segs[0].buf, 0, 8);
	((unsigned char *)a.segs[0].buf)[0] = 3;
	copy = a;
	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	REQUIRE(qd_push_forget(q, &a) == 0);
	push1(q, 2);
	CHECK_EQ(pop_val(f), 2);	/* 3 drained: held for q */
	CHECK_EQ(qd_close(q), 0);
	/* libqd popped it, so libqd freed it with the queue. */
	CHECK_EQ(qd_sgafree(&copy), -EINVAL);
}

static void cancel_pending_pop(void)
{
	struct qd_result qr;
	qd_token_t qt;
	int q, f;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	REQUIRE(qd_pop(&qt, f) == 0);
	CHECK_EQ(qd_wait(&qr, qt, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_cancel(qt), 0);
	CHECK_EQ(qd_wait(&qr, qt, &zero_ts), 0);
	CHECK_EQ(qr.ret, -ECANCELED);
	CHECK_EQ(qr.opcode, QD_OPC_POP);
	CHECK_EQ(qd_cancel(qt), -EINVAL);
	push1(q, 2);			/* nobody took it: the next pop */
	CHECK_EQ(pop_val(f), 2);
	REQUIRE(qd_pop(&qt, f) == 0);
	push1(q, 4);
	CHECK_EQ(qd_wait(&qr, qt, &two_s), 0);
	CHECK_EQ(qd_cancel(qt), -EINVAL);
	CHECK_EQ(result_val(&qr), 4);
}

static void wait_any_and_wait_next(void)
{
	struct qd_result qr, qrs[4];
	qd_token_t qts[2];
	int q, k, f, off, n;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_queue(&k) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	REQUIRE(qd_pop(&qts[0], f) == 0);
	REQUIRE(qd_pop(&qts[1], k) == 0);
	push1(k, 7);
	CHECK_EQ(qd_wait_any(&qr, &off, qts, 2, &two_s), 0);
	CHECK_EQ(off, 1);
	CHECK_EQ(result_val(&qr), 7);
	push1(q, 3);
	push1(q, 8);
	CHECK_EQ(qd_wait_any(&qr, &off, qts, 1, &two_s), 0);
	CHECK_EQ(off, 0);
	CHECK_EQ(result_val(&qr), 8);
	/* qd_wait_next() pumps too. */
	REQUIRE(qd_pop(&qts[0], f) == 0);
	push1(q, 10);
	CHECK_EQ(qd_wait_next(qrs, 4, &n, &two_s), 0);
	CHECK_EQ(n, 1);
	CHECK(qrs[0].qt == qts[0]);
	CHECK_EQ(result_val(&qrs[0]), 10);
	CHECK_EQ(pop_val(q), 3);
	/* qd_wait_any_many(): both of a filter's pops, in one call. */
	{
		qd_token_t two[2];
		int offs[2];

		REQUIRE(qd_pop(&two[0], f) == 0);
		REQUIRE(qd_pop(&two[1], f) == 0);
		push1(q, 12);
		push1(q, 14);
		CHECK_EQ(qd_wait_any_many(qrs, offs, 2, &n, two, 2, &two_s),
			 0);
		if (n == 1)	/* the second may come with the next call */
			CHECK_EQ(qd_wait_any_many(qrs + 1, offs + 1, 1, &n,
						  two + 1, 1, &two_s), 0);
		CHECK_EQ(offs[0], 0);
		CHECK_EQ(result_val(&qrs[0]), 12);
		CHECK_EQ(result_val(&qrs[1]), 14);
	}
}

static void bad_arguments(void)
{
	int q, f;

	REQUIRE(qd_queue(&q) == 0);
	CHECK_EQ(qd_filter_fn(NULL, q, even, NULL), -EINVAL);
	CHECK_EQ(qd_filter_fn(&f, q, NULL, NULL), -EINVAL);
	CHECK_EQ(qd_sort_fn(NULL, q, by_first, NULL), -EINVAL);
	CHECK_EQ(qd_sort_fn(&f, q, NULL, NULL), -EINVAL);
	CHECK_EQ(qd_filter_fn(&f, -1, even, NULL), -EBADF);
}

static void too_deep(void)
{
	int q, f, i, ret = 0;

	REQUIRE(qd_queue(&q) == 0);
	f = q;
	for (i = 0; i < QD_DERIVE_MAX_LEVEL; i++)
		REQUIRE(qd_filter_fn(&f, f, even, NULL) == 0);
	ret = qd_filter_fn(&i, f, even, NULL);
	CHECK_EQ(ret, -EINVAL);
}

static void threads_share_a_family(void)
{
	derive_threads(300, 7);
}

/* A thread asleep on a callback queue's pop, woken from another thread. */
static int sq, sf;
static int64_t slept_res[2];

static void *sleeper(void *arg)
{
	struct qd_result qr;
	qd_token_t qt;
	int i;

	(void)arg;
	for (i = 0; i < 2; i++) {
		__atomic_store_n(&slept_res[i], -EPROTO, __ATOMIC_RELEASE);
		if (qd_pop(&qt, sf) || qd_wait(&qr, qt, &two_s))
			return NULL;
		__atomic_store_n(&slept_res[i], result_val(&qr),
				 __ATOMIC_RELEASE);
	}
	return NULL;
}

static void sleeper_woken_by_route_and_close(void)
{
	struct timespec t0;
	struct fake_stats st;
	pthread_t t;
	int i;

	REQUIRE(qd_queue(&sq) == 0);
	REQUIRE(qd_filter_fn(&sf, sq, even, NULL) == 0);
	pthread_create(&t, NULL, sleeper, NULL);
	/* Until it sleeps in the kernel. */
	for (i = 0; i < 2000; i++) {
		fake_stats(&st);
		if (st.waits)
			break;
		usleep(1000);
	}
	CHECK(st.waits > 0);
	/* This thread's pop of q routes the 6 to the sleeper's pop. */
	push1(sq, 6);
	push1(sq, 7);
	CHECK_EQ(pop_val(sq), 7);
	for (i = 0; i < 2000 &&
		    __atomic_load_n(&slept_res[0], __ATOMIC_ACQUIRE) != 6; i++)
		usleep(1000);
	CHECK_EQ(__atomic_load_n(&slept_res[0], __ATOMIC_ACQUIRE), 6);
	usleep(20000);		/* asleep again, on its second pop */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(qd_close(sq), 0);
	pthread_join(t, NULL);
	CHECK_EQ(slept_res[1], -ECANCELED);
	CHECK(elapsed_ms(&t0) < 1000);
}

static void *sleeper_on_source(void *arg)
{
	struct qd_result qr;
	qd_token_t qt;

	(void)arg;
	slept_res[0] = -EPROTO;
	if (!qd_pop(&qt, sq) && !qd_wait(&qr, qt, &two_s))
		slept_res[0] = result_val(&qr);
	return NULL;
}

/*
 * Closing a filter hands what it holds to a pop another thread sleeps on,
 * in user space: no kernel completion follows but the NOP that wakes it.
 */
static void close_gives_back_to_a_sleeper(void)
{
	struct fake_stats st;
	struct timespec t0;
	uint64_t waits;
	pthread_t t;
	int g, i;

	REQUIRE(qd_queue(&sq) == 0);
	REQUIRE(qd_filter_fn(&sf, sq, even, NULL) == 0);
	REQUIRE(qd_filter_fn(&g, sq, below, (void *)0) == 0);	/* never */
	push1(sq, 2);
	push1(sq, 4);
	CHECK_EQ(pop_val(sf), 2);		/* sf holds 4 */
	fake_stats(&st);
	waits = st.waits;
	pthread_create(&t, NULL, sleeper_on_source, NULL);
	for (i = 0; i < 2000; i++) {
		fake_stats(&st);
		if (st.waits > waits)
			break;
		usleep(1000);
	}
	CHECK(st.waits > waits);
	usleep(20000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(qd_close(sf), 0);
	pthread_join(t, NULL);
	CHECK_EQ(slept_res[0], 4);
	/* Woken at once, not by its timeout (2 s). */
	CHECK(elapsed_ms(&t0) < 1000);
}

static void sort_pop_drains_the_source_first(void)
{
	derive_sort_drains_source_first();
}

static void filter_pops_complete_in_order(void)
{
	derive_filter_pops_in_order(6000);
}

/* The kernel forms, as far as libqd goes. */
static void kernel_forms_need_the_feature(void)
{
	struct qd_pred p = { .nterms = 1 };
	struct qd_key k = { .field = { .width = 1 } };
	int q, d;

	p.terms[0] = (struct qd_pred_term){ .field = { .width = 1 },
					    .cmp = QD_CMP_EQ };
	REQUIRE(qd_queue(&q) == 0);
	CHECK_EQ(qd_filter(&d, q, &p), -EOPNOTSUPP);
	CHECK_EQ(qd_merge(&d, q, q), -EOPNOTSUPP);
	CHECK_EQ(qd_sort(&d, q, &k), -EOPNOTSUPP);
	CHECK_EQ(qd_filter(NULL, q, &p), -EINVAL);
	CHECK_EQ(qd_filter(&d, q, NULL), -EINVAL);
	CHECK_EQ(qd_sort(&d, q, NULL), -EINVAL);
	CHECK_EQ(qd_merge(NULL, q, q), -EINVAL);
}

static void kernel_forms_carry_the_request(void)
{
	struct qd_pred p = { .nterms = 2 };
	struct qd_key k = { .field = { .off = 12, .width = 4,
				       .flags = QD_FIELD_BE, .mask = 0xff00 },
			    .flags = QD_KEY_DESC };
	int q, q2, d, f;

	fake_cfg.features = QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS | QD_FEAT_REGIONS |
			    QD_FEAT_RINGS | QD_FEAT_SKIP_SUCCESS |
			    QD_FEAT_MULTISHOT | QD_FEAT_DERIVED;
	p.terms[0] = (struct qd_pred_term){
		.field = { .off = 3, .width = 2, .mask = 0x0ff0 },
		.cmp = QD_CMP_GE, .value = 0x10 };
	p.terms[1] = (struct qd_pred_term){
		.field = { .off = 4090, .width = 4, .flags = QD_FIELD_BE },
		.cmp = QD_CMP_NE, .value = 0xdeadbeef };
	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_queue(&q2) == 0);
	REQUIRE(qd_filter(&d, q, &p) == 0);
	CHECK(d != q && d != q2);
	CHECK_EQ(fake_derive_last.kind, QD_DERIVE_FILTER);
	CHECK_EQ(fake_derive_last.src, q);
	CHECK_EQ(fake_derive_last.src2, 0);
	CHECK_EQ(fake_derive_last.flags | fake_derive_last.resv, 0);
	CHECK(!memcmp(&fake_derive_last.pred, &p, sizeof(p)));
	REQUIRE(qd_sort(&d, q2, &k) == 0);
	CHECK_EQ(fake_derive_last.kind, QD_DERIVE_SORT);
	CHECK(!memcmp(&fake_derive_last.key, &k, sizeof(k)));
	/* The rest of the union is zero. */
	CHECK(fake_derive_last.args[3] == 0 && fake_derive_last.args[16] == 0);
	REQUIRE(qd_merge(&d, q, q2) == 0);
	CHECK_EQ(fake_derive_last.kind, QD_DERIVE_MERGE);
	CHECK_EQ(fake_derive_last.src2, q2);
	CHECK_EQ(qd_merge(&d, q, 63), -EBADF);	/* the kernel's answer */
	/* A callback-derived queue is no source for the kernel. */
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	CHECK_EQ(qd_filter(&d, f, &p), -EOPNOTSUPP);
	CHECK_EQ(qd_merge(&d, q2, f), -EOPNOTSUPP);
	CHECK_EQ(qd_sort(&d, f, &k), -EOPNOTSUPP);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "derive_fn";
	FRUN(filter_takes_matches_rest_stays);
	FRUN(first_match_wins_in_creation_order);
	FRUN(sort_smallest_first_ties_in_arrival_order);
	FRUN(sort_first_takes_all_before_later_filter);
	FRUN(nested_filters_offer_downwards);
	FRUN(push_to_filter_goes_to_source);
	FRUN(close_source_cancels_then_ends);
	FRUN(close_derived_gives_back_in_pop_order);
	FRUN(close_frees_what_nobody_can_pop);
	FRUN(cancel_pending_pop);
	FRUN(wait_any_and_wait_next);
	FRUN(bad_arguments);
	FRUN(too_deep);
	FRUN(threads_share_a_family);
	FRUN(sleeper_woken_by_route_and_close);
	FRUN(close_gives_back_to_a_sleeper);
	FRUN(sort_pop_drains_the_source_first);
	FRUN(filter_pops_complete_in_order);
	FRUN(kernel_forms_need_the_feature);
	FRUN(kernel_forms_carry_the_request);
	return tap_done();
}
