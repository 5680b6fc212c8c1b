// SPDX-License-Identifier: MIT
/*
 * qd_pop_multi() and qd_cancel(): a persistent pop gives one element per
 * wait, in arrival order, until its last result (ret < 0) ends the token;
 * qd_close() and qd_cancel() end it with -ECANCELED.
 */
#include <pthread.h>

#include "harness.h"

static void push_str(int qd, const char *s)
{
	struct qd_sga a = sga_str(s);

	if (qd_push_forget(qd, &a))
		tap_diag("push_forget failed");
}

/* The next element of the multishot qt: its text, freed; or ret. */
static int64_t next(qd_token_t qt, char *buf, size_t len)
{
	struct qd_result qr;
	int ret;

	ret = qd_wait(&qr, qt, &zero_ts);
	if (ret)
		return ret;
	if (qr.ret < 0)
		return qr.ret;
	if (qr.opcode != QD_OPC_POP || qr.qt != qt)
		return -EPROTO;
	snprintf(buf, len, "%s", (char *)qr.value.sga.segs[0].buf);
	qd_sgafree(&qr.value.sga);
	return qr.ret;
}

static void delivers_then_cancelled_by_close(void)
{
	struct qd_result qr;
	char buf[16];
	qd_token_t qt;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	push_str(qd, "a");			/* queued before the pop */
	REQUIRE(qd_pop_multi(&qt, qd) == 0);
	push_str(qd, "bb");
	push_str(qd, "ccc");
	CHECK_EQ(next(qt, buf, sizeof(buf)), 2);	/* polls submit */
	CHECK(!strcmp(buf, "a"));
	CHECK_EQ(next(qt, buf, sizeof(buf)), 3);
	CHECK(!strcmp(buf, "bb"));
	CHECK_EQ(next(qt, buf, sizeof(buf)), 4);
	CHECK(!strcmp(buf, "ccc"));
	CHECK_EQ(next(qt, buf, sizeof(buf)), -ETIMEDOUT);	/* still valid */
	push_str(qd, "dddd");
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(next(qt, buf, sizeof(buf)), 5);
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(qd_wait(&qr, qt, NULL), 0);
	CHECK_EQ(qr.ret, -ECANCELED);
	CHECK_EQ(qr.value.sga.numsegs, 0);
	/* The last result ended the token. */
	CHECK_EQ(qd_wait(&qr, qt, &zero_ts), -EINVAL);
	CHECK_EQ(qd_cancel(qt), -EINVAL);
}

static void results_queue_until_waited(void)
{
	char buf[16], want[16];
	qd_token_t qt;
	int qd, i, bad = 0;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop_multi(&qt, qd) == 0);
	for (i = 0; i < 100; i++) {
		snprintf(want, sizeof(want), "m%d", i);
		push_str(qd, want);
	}
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(qd_close(qd), 0);
	/* All 100 elements, then the end, from results already reaped. */
	for (i = 0; i < 100; i++) {
		snprintf(want, sizeof(want), "m%d", i);
		bad += next(qt, buf, sizeof(buf)) != (int64_t)strlen(want) + 1 ||
		       strcmp(buf, want);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(next(qt, buf, sizeof(buf)), -ECANCELED);
	CHECK_EQ(next(qt, buf, sizeof(buf)), -EINVAL);
}

static void cancel_ends_it(void)
{
	struct qd_result qr;
	char buf[16];
	qd_token_t qt, po;
	uint64_t n;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop_multi(&qt, qd) == 0);
	push_str(qd, "one");
	CHECK_EQ(qd_submit(), 0);
	n = stats().enters;
	CHECK_EQ(qd_cancel(qt), 0);
	CHECK_EQ(stats().enters - n, 1);	/* at once */
	CHECK_EQ(next(qt, buf, sizeof(buf)), 4);
	CHECK_EQ(qd_wait(&qr, qt, NULL), 0);
	CHECK_EQ(qr.ret, -ECANCELED);
	CHECK_EQ(qd_wait(&qr, qt, NULL), -EINVAL);
	/* The queue lives on: a later push goes to a later pop. */
	push_str(qd, "two");
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(wait_res(po, &qr), 4);
	qd_sgafree(&qr.value.sga);
}

static void cancel_a_one_shot_pop(void)
{
	struct qd_result qr;
	qd_token_t po, pu;
	struct qd_sga a = sga_str("p");
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);		/* still queued in the SQ */
	CHECK_EQ(qd_cancel(po), 0);
	CHECK_EQ(wait_res(po, &qr), -ECANCELED);
	CHECK_EQ(qr.opcode, QD_OPC_POP);
	/* A completed pop: nothing to cancel, its result waits. */
	REQUIRE(qd_push(&pu, qd, &a) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(wait_res(pu, NULL), 2);
	CHECK_EQ(qd_cancel(po), -EALREADY);
	CHECK_EQ(wait_res(po, &qr), 2);
	qd_sgafree(&qr.value.sga);
	/* Pushes are not cancelled; garbage is not a token. */
	REQUIRE(qd_push(&pu, qd, &a) == 0);
	CHECK_EQ(qd_cancel(pu), -EOPNOTSUPP);
	CHECK_EQ(wait_res(pu, NULL), 2);
	CHECK_EQ(qd_cancel(0), -EINVAL);
	CHECK_EQ(qd_cancel(~0ULL), -EINVAL);
}

struct waiter {
	qd_token_t	qt;
	int		got;
	int64_t		last;
};

/* Another thread collects the multishot's results until the end. */
static void *collect(void *arg)
{
	struct timespec wd = { 10, 0 };
	struct waiter *w = arg;
	struct qd_result qr;

	for (;;) {
		if (qd_wait(&qr, w->qt, &wd)) {
			w->last = -9999;
			break;
		}
		if (qr.ret < 0) {
			w->last = qr.ret;
			break;
		}
		w->got++;
		qd_sgafree(&qr.value.sga);
	}
	return NULL;
}

static void cancel_from_another_thread_wakes_the_waiter(void)
{
	struct waiter w = { .got = 0 };
	struct fake_stats fs;
	pthread_t t;
	int qd, i;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop_multi(&w.qt, qd) == 0);
	pthread_create(&t, NULL, collect, &w);
	for (i = 0; i < 50; i++)
		push_str(qd, "z");
	CHECK_EQ(qd_submit(), 0);
	do {
		usleep(1000);
		fake_stats(&fs);
	} while (!fs.waits);
	usleep(10000);
	CHECK_EQ(qd_cancel(w.qt), 0);
	pthread_join(t, NULL);
	CHECK_EQ(w.got, 50);
	CHECK_EQ(w.last, -ECANCELED);
}

static void shares_the_line_with_one_shot_pops(void)
{
	struct qd_result qr;
	char buf[16];
	qd_token_t qt, po;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop_multi(&qt, qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	push_str(qd, "1");
	push_str(qd, "2");
	push_str(qd, "3");
	/* Turns: the multishot, the pop, then the multishot again. */
	CHECK_EQ(wait_res(po, &qr), 2);
	CHECK(!strcmp(qr.value.sga.segs[0].buf, "2"));
	qd_sgafree(&qr.value.sga);
	CHECK_EQ(next(qt, buf, sizeof(buf)), 2);
	CHECK(!strcmp(buf, "1"));
	CHECK_EQ(next(qt, buf, sizeof(buf)), 2);
	CHECK(!strcmp(buf, "3"));
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(next(qt, buf, sizeof(buf)), -ECANCELED);
}

static void needs_the_feature(void)
{
	qd_token_t qt;
	int qd;

	fake_cfg.features = QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS |
			    QD_FEAT_NOOVERFLOW_LOSS | QD_FEAT_REGIONS |
			    QD_FEAT_RINGS | QD_FEAT_SKIP_SUCCESS;
	REQUIRE(qd_queue(&qd) == 0);
	CHECK_EQ(qd_pop_multi(&qt, qd), -EOPNOTSUPP);
	CHECK_EQ(qd_pop_multi(NULL, qd), -EINVAL);
	REQUIRE(qd_pop(&qt, qd) == 0);
	CHECK_EQ(qd_cancel(qt), -EOPNOTSUPP);
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(wait_res(qt, NULL), -ECANCELED);
}

static void overflowing_cq_keeps_order(void)
{
	char buf[16], want[16];
	qd_token_t qt;
	int qd, i, bad = 0;

	setenv("QD_SQ_ENTRIES", "4", 1);
	setenv("QD_CQ_ENTRIES", "4", 1);
	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 40; i++) {
		snprintf(want, sizeof(want), "o%d", i);
		push_str(qd, want);
	}
	REQUIRE(qd_pop_multi(&qt, qd) == 0);	/* takes all 40 at once */
	CHECK_EQ(qd_submit(), 0);
	for (i = 0; i < 40; i++) {
		snprintf(want, sizeof(want), "o%d", i);
		bad += next(qt, buf, sizeof(buf)) < 0 || strcmp(buf, want);
	}
	CHECK_EQ(bad, 0);
	CHECK(stats().overflow_flushes > 0);
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(next(qt, buf, sizeof(buf)), -ECANCELED);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "multishot";
	FRUN(delivers_then_cancelled_by_close);
	FRUN(results_queue_until_waited);
	FRUN(cancel_ends_it);
	FRUN(cancel_a_one_shot_pop);
	FRUN(cancel_from_another_thread_wakes_the_waiter);
	FRUN(shares_the_line_with_one_shot_pops);
	FRUN(needs_the_feature);
	FRUN(overflowing_cq_keeps_order);
	return tap_done();
}
