// SPDX-License-Identifier: MIT
/*
 * QD_SQPOLL: libqd asks for a kernel SQ poller, then hands SQEs over by
 * publishing them (no system call while the poller is awake, one
 * QD_ENTER_SQ_WAKEUP when it sleeps); waits and qd_close() still enter.
 * The fake kernel's poller runs only when a test calls fake_sqpoll_pass().
 */
#include <pthread.h>
#include <stdlib.h>

#include "harness.h"

static void sqpoll_env(void)
{
	setenv("QD_SQPOLL", "100", 1);
}

static void submit_is_free_while_the_poller_is_awake(void)
{
	struct qd_sga a[4];
	struct fake_stats fs;
	uint64_t sys;
	int qd, i;

	sqpoll_env();
	REQUIRE(qd_queue(&qd) == 0);
	CHECK(stats().features & QD_FEAT_SQPOLL);
	for (i = 0; i < 3; i++) {
		a[i] = qd_sgaalloc(16);
		REQUIRE(a[i].numsegs == 1);
		REQUIRE(qd_push_forget(qd, &a[i]) == 0);
	}
	sys = stats().syscalls;
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().syscalls, sys);
	fake_stats(&fs);
	CHECK_EQ(fs.consumed, 0);
	CHECK_EQ(fs.sq_wakeups, 0);
	/* the poller takes them */
	CHECK_EQ(fake_sqpoll_pass(), 3);
	fake_stats(&fs);
	CHECK_EQ(fs.elems, 3);

	/* asleep: the next hand-over wakes it, and that enter takes the SQE */
	fake_sqpoll(1);
	a[3] = qd_sgaalloc(16);
	REQUIRE(qd_push_forget(qd, &a[3]) == 0);
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().syscalls, sys + 1);
	fake_stats(&fs);
	CHECK_EQ(fs.sq_wakeups, 1);
	CHECK_EQ(fs.consumed, 4);
	CHECK_EQ(fs.elems, 4);

	/* awake again: free again */
	REQUIRE(qd_push_forget(qd, &a[0]) == 0);
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().syscalls, sys + 1);
}

/* A wait still enters, with what it queued: the poller need not run. */
static void waits_submit_what_they_queued(void)
{
	struct qd_sga a = sga_str("x");
	struct qd_result qr;
	qd_token_t pu, po;
	int qd;

	sqpoll_env();
	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_push(&pu, qd, &a) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(wait_res(po, &qr), 2);
	CHECK(qr.value.sga.segs[0].buf == a.segs[0].buf);
	CHECK_EQ(wait_res(pu, NULL), 2);
	CHECK_EQ(stats().enter_waits + stats().enters > 0, 1);
}

/*
 * qd_close() hands every ring's SQEs to the kernel before QD_IOC_CLOSE,
 * synchronously: a pop queued for the queue is cancelled, not -EBADF, even
 * though the poller (awake) has not run.
 */
static void close_submits_synchronously(void)
{
	struct fake_stats fs;
	qd_token_t po;
	int qd;

	sqpoll_env();
	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(qd_submit(), 0);
	fake_stats(&fs);
	CHECK_EQ(fs.consumed, 0);
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(wait_res(po, NULL), -ECANCELED);
}

static void *other_thread(void *arg)
{
	int qd = *(int *)arg;
	struct qd_sga a = sga_str("y");

	if (qd_push_forget(qd, &a) || qd_submit())
		return (void *)1;
	return NULL;
}

/* Only ring 0 asks for the poller: QD_IOC_RING takes no flags. */
static void a_second_thread_gets_a_ring(void)
{
	struct qd_result qr;
	struct fake_stats fs;
	pthread_t t;
	void *ret;
	qd_token_t po;
	int qd;

	sqpoll_env();
	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	REQUIRE(pthread_create(&t, NULL, other_thread, &qd) == 0);
	pthread_join(t, &ret);
	CHECK(ret == NULL);
	CHECK_EQ(stats().rings, 2);
	CHECK(fake_sqpoll_pass() >= 1);
	CHECK_EQ(wait_res(po, &qr), 2);
	fake_stats(&fs);
	CHECK_EQ(fs.rings, 2);
}

static void bad_values_are_einval(void)
{
	setenv("QD_SQPOLL", "10001", 1);
	CHECK_EQ(qd_init(), -EINVAL);
	setenv("QD_SQPOLL", "1x", 1);
	CHECK_EQ(qd_init(), -EINVAL);
	/* 0: off */
	setenv("QD_SQPOLL", "0", 1);
	CHECK_EQ(qd_init(), 0);
	CHECK_EQ(qd_submit(), 0);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "sqpoll";
	FRUN(submit_is_free_while_the_poller_is_awake);
	FRUN(waits_submit_what_they_queued);
	FRUN(close_submits_synchronously);
	FRUN(a_second_thread_gets_a_ring);
	FRUN(bad_values_are_einval);
	return tap_done();
}
