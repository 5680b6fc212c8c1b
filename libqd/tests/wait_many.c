// SPDX-License-Identifier: MIT
/*
 * qd_wait_any_many(): every ready result of a token array per call, each
 * token consumed once, the others left pending.
 */
#include "harness.h"

static void takes_every_ready_result_once(void)
{
	struct qd_result qrs[16];
	qd_token_t qts[8];
	int offs[16], seen[8] = { 0 }, got = 0, first = 0, n, i, qd;
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
		REQUIRE(qd_wait_any_many(qrs, offs, 16, &n, qts, 8, NULL) == 0);
		REQUIRE(n >= 1 && n <= 16);
		if (!first)
			first = n;
		for (i = 0; i < n; i++) {
			REQUIRE(offs[i] >= 0 && offs[i] < 8);
			CHECK_EQ(seen[offs[i]], 0);
			seen[offs[i]]++;
			CHECK(qrs[i].qt == qts[offs[i]]);
			CHECK_EQ(qrs[i].ret, (int64_t)a[0].segs[0].len);
			if (qrs[i].opcode == QD_OPC_POP)
				CHECK_EQ(qd_sgafree(&qrs[i].value.sga), 0);
			qts[offs[i]] = 0;
		}
		got += n;
		/* what is left: the tokens not taken yet, in place */
		for (i = n = 0; i < 8; i++)
			if (qts[i])
				qts[n++] = qts[i];
		for (i = n; i < 8; i++)
			qts[i] = 0;
		memset(seen, 0, sizeof(seen));
	}
	CHECK_EQ(got, 6);
	CHECK(first > 1);	/* the pushes at least came together */
	/* the two pops left still wait */
	CHECK_EQ(qd_wait_any_many(qrs, offs, 16, &n, qts, 2, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_close(qd), 0);
	for (i = 0; i < 2; i++)
		CHECK_EQ(wait_res(qts[i], NULL), -ECANCELED);
}

static void max_one_is_wait_any(void)
{
	struct qd_result qr;
	struct qd_sga a = sga_str("a"), b = sga_str("b");
	qd_token_t qts[2];
	int off, n, qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_push(&qts[0], qd, &a) == 0);
	REQUIRE(qd_push(&qts[1], qd, &b) == 0);
	REQUIRE(qd_wait_any_many(&qr, &off, 1, &n, qts, 2, NULL) == 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(off, 0);
	REQUIRE(qd_wait_any_many(&qr, &off, 1, &n, &qts[1], 1, NULL) == 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(qd_close(qd), 0);
}

static void bad_arguments(void)
{
	struct qd_result qr;
	qd_token_t qt = 1;
	int off, n;

	CHECK_EQ(qd_wait_any_many(NULL, &off, 1, &n, &qt, 1, &zero_ts), -EINVAL);
	CHECK_EQ(qd_wait_any_many(&qr, NULL, 1, &n, &qt, 1, &zero_ts), -EINVAL);
	CHECK_EQ(qd_wait_any_many(&qr, &off, 1, NULL, &qt, 1, &zero_ts), -EINVAL);
	CHECK_EQ(qd_wait_any_many(&qr, &off, 0, &n, &qt, 1, &zero_ts), -EINVAL);
	CHECK_EQ(qd_wait_any_many(&qr, &off, 1, &n, &qt, 0, &zero_ts), -EINVAL);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "wait_many";
	FRUN(takes_every_ready_result_once);
	FRUN(max_one_is_wait_any);
	FRUN(bad_arguments);
	return tap_done();
}
