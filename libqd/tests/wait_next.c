// SPDX-License-Identifier: MIT
/*
 * qd_wait_next(): the calling thread's results in completion order with no
 * token array, each once; not the ones qd_wait() took; a multishot pop's
 * results one by one under its token.
 */
#include "harness.h"

/* Which of qts[0..n) is qt, or -1. */
static int index_of(const qd_token_t *qts, int n, qd_token_t qt)
{
	int i;

	for (i = 0; i < n; i++)
		if (qts[i] == qt)
			return i;
	return -1;
}

static void every_result_once_without_tokens(void)
{
	struct qd_result qrs[16];
	qd_token_t qts[8];
	int seen[8] = { 0 }, got = 0, n, i, k, qd;
	struct qd_sga a[3];

	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 5; i++)
		REQUIRE(qd_pop(&qts[i], qd) == 0);
	for (i = 0; i < 3; i++) {
		a[i] = sga_str("x");
		REQUIRE(qd_push(&qts[5 + i], qd, &a[i]) == 0);
	}
	/* 3 pushes and the 3 pops they feed; 2 pops stay pending */
	while (got < 6) {
		REQUIRE(qd_wait_next(qrs, 16, &n, NULL) == 0);
		REQUIRE(n >= 1 && n <= 6 - got);
		for (i = 0; i < n; i++) {
			k = index_of(qts, 8, qrs[i].qt);
			REQUIRE(k >= 0);
			CHECK_EQ(seen[k], 0);
			seen[k]++;
			CHECK_EQ(qrs[i].qd, qd);
			CHECK_EQ(qrs[i].ret, (int64_t)a[0].segs[0].len);
			if (qrs[i].opcode == QD_OPC_POP)
				CHECK_EQ(qd_sgafree(&qrs[i].value.sga), 0);
			/* consumed: waiting for it again is an error */
			CHECK_EQ(wait_res(qrs[i].qt, NULL), -EINVAL);
		}
		got += n;
	}
	CHECK_EQ(qd_wait_next(qrs, 16, &n, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_close(qd), 0);
	/* the two pops left end with the close, found by qd_wait_next too */
	for (got = 0; got < 2; got += n) {
		REQUIRE(qd_wait_next(qrs, 16, &n, NULL) == 0);
		for (i = 0; i < n; i++)
			CHECK_EQ(qrs[i].ret, -ECANCELED);
	}
	CHECK_EQ(qd_wait_next(qrs, 16, &n, &zero_ts), -ETIMEDOUT);
}

static void what_qd_wait_took_is_not_returned(void)
{
	struct qd_sga a = sga_str("a"), b = sga_str("b");
	struct qd_result qr;
	qd_token_t t1, t2;
	int n, qd;

	REQUIRE(qd_queue(&qd) == 0);
	/* results before the first qd_wait_next() are found too */
	REQUIRE(qd_push(&t1, qd, &a) == 0);
	REQUIRE(qd_push(&t2, qd, &b) == 0);
	CHECK_EQ(wait_res(t1, NULL), (int64_t)a.segs[0].len);
	REQUIRE(qd_wait_next(&qr, 1, &n, NULL) == 0);
	CHECK_EQ(n, 1);
	CHECK(qr.qt == t2);
	CHECK_EQ(qd_wait_next(&qr, 1, &n, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_close(qd), 0);
}

static void a_multishot_pop_gives_each_element(void)
{
	struct qd_result qrs[16];
	struct qd_sga a[3];
	qd_token_t mt, pt[3];
	int pops = 0, pushes = 0, n, i, qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop_multi(&mt, qd) == 0);
	for (i = 0; i < 3; i++) {
		a[i] = sga_str("m");
		REQUIRE(qd_push(&pt[i], qd, &a[i]) == 0);
	}
	while (pops + pushes < 6) {
		REQUIRE(qd_wait_next(qrs, 2, &n, NULL) == 0);
		REQUIRE(n >= 1 && n <= 2);
		for (i = 0; i < n; i++) {
			if (qrs[i].opcode == QD_OPC_POP) {
				CHECK(qrs[i].qt == mt);
				CHECK_EQ(qrs[i].ret, (int64_t)a[0].segs[0].len);
				CHECK_EQ(qd_sgafree(&qrs[i].value.sga), 0);
				pops++;
			} else {
				CHECK(index_of(pt, 3, qrs[i].qt) >= 0);
				pushes++;
			}
		}
	}
	CHECK_EQ(pops, 3);
	CHECK_EQ(pushes, 3);
	CHECK_EQ(qd_close(qd), 0);
	REQUIRE(qd_wait_next(qrs, 16, &n, NULL) == 0);
	CHECK_EQ(n, 1);
	CHECK(qrs[0].qt == mt);
	CHECK_EQ(qrs[0].ret, -ECANCELED);
}

static void bad_arguments(void)
{
	struct qd_result qr;
	int n;

	CHECK_EQ(qd_wait_next(NULL, 1, &n, &zero_ts), -EINVAL);
	CHECK_EQ(qd_wait_next(&qr, 0, &n, &zero_ts), -EINVAL);
	CHECK_EQ(qd_wait_next(&qr, 1, NULL, &zero_ts), -EINVAL);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "wait_next";
	FRUN(every_result_once_without_tokens);
	FRUN(what_qd_wait_took_is_not_returned);
	FRUN(a_multishot_pop_gives_each_element);
	FRUN(bad_arguments);
	return tap_done();
}
