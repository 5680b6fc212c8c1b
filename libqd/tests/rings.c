// SPDX-License-Identifier: MIT
/*
 * A ring per thread against the fake kernel: tokens waited in another
 * thread, qd_wait_any() over several rings, a thread that exits with
 * queued operations and pending tokens, the batching rule and its cost
 * (a burst is one enter, a ping-pong hop is one enter), fork.
 */
#include <pthread.h>
#include <stdlib.h>

#include "harness.h"

#define WATCHDOG	((struct timespec){ 10, 0 })

/* Run fn(arg) in a new thread and join it: a thread with its own ring. */
static void in_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	pthread_create(&t, NULL, fn, arg);
	pthread_join(t, NULL);
}

struct cross {
	qd_token_t	qt;
	int		ret;
	struct qd_result qr;
	int		done;
};

static void *wait_cross(void *arg)
{
	struct timespec wd = WATCHDOG;
	struct cross *x = arg;

	x->ret = qd_wait(&x->qr, x->qt, &wd);
	__atomic_store_n(&x->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void token_waited_in_another_thread(void)
{
	struct qd_sga a = sga_str("other"), b = sga_str("push");
	struct cross x = { .ret = 1 };
	struct fake_stats fs;
	qd_token_t pu;
	pthread_t t;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	/* Queued in this thread's ring; the other thread submits it. */
	REQUIRE(qd_pop(&x.qt, qd) == 0);
	CHECK_EQ(stats().sqes_submitted, 0);
	pthread_create(&t, NULL, wait_cross, &x);
	do {
		usleep(1000);
		fake_stats(&fs);
	} while (!fs.waits);
	CHECK_EQ(fs.consumed, 1);		/* the waiter's enter took it */
	CHECK_EQ(x.done, 0);
	/* Our push completes it on our ring, where the waiter sleeps. */
	REQUIRE(qd_push_forget(qd, &a) == 0);
	REQUIRE(qd_submit() == 0);
	pthread_join(t, NULL);
	CHECK_EQ(x.ret, 0);
	CHECK_EQ(x.qr.ret, 6);
	CHECK(x.qr.qt == x.qt);
	CHECK(!strcmp(x.qr.value.sga.segs[0].buf, "other"));
	CHECK_EQ(qd_wait(&x.qr, x.qt, &zero_ts), -EINVAL);	/* consumed */
	qd_sgafree(&x.qr.value.sga);

	/* A push token too: its result is the caller's buffers. */
	REQUIRE(qd_push(&pu, qd, &b) == 0);
	x = (struct cross){ .qt = pu, .ret = 1 };
	in_thread(wait_cross, &x);
	CHECK_EQ(x.ret, 0);
	CHECK_EQ(x.qr.opcode, QD_OPC_PUSH);
	CHECK_EQ(x.qr.ret, 5);
	CHECK(x.qr.value.sga.segs[0].buf == b.segs[0].buf);
}

struct issuer {
	int		qd;
	qd_token_t	qt;
	int		nops;		/* pushes of "e<i>" before the pop */
	qd_token_t	pushes[8];
	pthread_barrier_t *hold;	/* if set: keep the ring until met */
};

/* Issue pushes and a pop on qd from this thread's ring; wait for none. */
static void *issue(void *arg)
{
	struct issuer *is = arg;
	char msg[16];
	int i;

	for (i = 0; i < is->nops; i++) {
		struct qd_sga a;

		snprintf(msg, sizeof(msg), "e%d", i);
		a = sga_str(msg);
		qd_push(&is->pushes[i], is->qd, &a);
	}
	qd_pop(&is->qt, is->qd);
	if (is->hold)
		pthread_barrier_wait(is->hold);
	return NULL;
}

struct anyw {
	const qd_token_t *qts;
	int		n;
	int		off;
	int		ret;
	struct qd_result qr;
};

/* qd_wait_any() from a thread that has no ring of its own. */
static void *wait_any_thread(void *arg)
{
	struct timespec wd = WATCHDOG;
	struct anyw *w = arg;

	w->ret = qd_wait_any(&w->qr, &w->off, w->qts, w->n, &wd);
	return NULL;
}

static void wait_any_across_rings(void)
{
	struct issuer is[2] = { { .nops = 0 }, { .nops = 0 } };
	struct qd_result qr;
	qd_token_t qts[3];
	struct qd_stats st;
	int i, off = -1, q3;

	pthread_barrier_t hold;
	pthread_t it[2];

	REQUIRE(qd_queue(&q3) == 0);
	REQUIRE(qd_pop(&qts[2], q3) == 0);	/* one of our own */
	/* Two threads at once: two more rings. */
	pthread_barrier_init(&hold, NULL, 3);
	for (i = 0; i < 2; i++) {
		REQUIRE(qd_queue(&is[i].qd) == 0);
		is[i].hold = &hold;
		pthread_create(&it[i], NULL, issue, &is[i]);
	}
	pthread_barrier_wait(&hold);
	for (i = 0; i < 2; i++)
		pthread_join(it[i], NULL);
	pthread_barrier_destroy(&hold);
	qts[0] = is[0].qt;
	qts[1] = is[1].qt;
	CHECK_EQ(stats().rings, 3);
	CHECK_EQ(qd_wait_any(&qr, &off, qts, 3, &zero_ts), -ETIMEDOUT);
	/* Asleep on three rings (CTX_SEQ): a push on one of them wakes it. */
	{
		struct anyw w = { .qts = qts, .n = 3, .off = -1, .ret = 1 };
		struct qd_sga x = sga_str("x");
		struct fake_stats fs;
		pthread_t t;

		pthread_create(&t, NULL, wait_any_thread, &w);
		do {
			usleep(1000);
			fake_stats(&fs);
		} while (!fs.waits);
		st = stats();
		CHECK_EQ(st.enter_waits, 1);
		REQUIRE(qd_push_forget(is[1].qd, &x) == 0);
		REQUIRE(qd_submit() == 0);
		pthread_join(t, NULL);
		CHECK_EQ(w.ret, 0);
		CHECK_EQ(w.off, 1);
		CHECK(w.qr.qt == qts[1]);
		CHECK_EQ(w.qr.ret, 2);
		qd_sgafree(&w.qr.value.sga);
	}
	/* Now ours: the first ready one in array order wins. */
	{
		struct qd_sga b = sga_str("y"), c = sga_str("z");

		REQUIRE(qd_push_forget(q3, &b) == 0);
		REQUIRE(qd_push_forget(is[0].qd, &c) == 0);
		REQUIRE(qd_submit() == 0);
	}
	qts[1] = qts[0];
	CHECK_EQ(qd_wait_any(&qr, &off, &qts[1], 2, NULL), 0);
	CHECK_EQ(off, 0);
	CHECK_EQ(qr.qd, is[0].qd);
	qd_sgafree(&qr.value.sga);
	CHECK_EQ(qd_wait_any(&qr, &off, &qts[1], 2, NULL), -EINVAL);
	CHECK_EQ(qd_wait(&qr, qts[2], NULL), 0);
	CHECK_EQ(qr.ret, 2);
	qd_sgafree(&qr.value.sga);
}

static void exited_thread_leaves_tokens_and_its_ring(void)
{
	struct issuer is = { .nops = 3 };
	struct qd_result qr;
	struct qd_sga a;
	qd_token_t po;
	uint64_t rings;
	char msg[16];
	int i;

	int q2;

	REQUIRE(qd_queue(&is.qd) == 0);
	REQUIRE(qd_queue(&q2) == 0);
	REQUIRE(qd_pop(&po, q2) == 0);	/* this thread takes its ring first */
	in_thread(issue, &is);		/* 3 pushes and a pop, never waited */
	/* Its exit submitted them: the pop got e0, e1 and e2 are queued. */
	CHECK_EQ(stats().sqes_submitted, 4);
	CHECK_EQ(stats().rings, 2);
	for (i = 1; i < 3; i++) {
		REQUIRE(qd_pop(&po, is.qd) == 0);
		CHECK_EQ(wait_res(po, &qr), 3);
		snprintf(msg, sizeof(msg), "e%d", i);
		CHECK(!strcmp(qr.value.sga.segs[0].buf, msg));
		qd_sgafree(&qr.value.sga);
	}
	/* Its tokens are still good here, in any order. */
	CHECK_EQ(wait_res(is.qt, &qr), 3);
	CHECK(!strcmp(qr.value.sga.segs[0].buf, "e0"));
	qd_sgafree(&qr.value.sga);
	for (i = 2; i >= 0; i--)
		CHECK_EQ(wait_res(is.pushes[i], NULL), 3);
	/* The next thread takes the ownerless ring: no new one. */
	rings = stats().rings;
	is.nops = 0;
	in_thread(issue, &is);
	CHECK_EQ(stats().rings, rings);
	a = sga_str("late");
	REQUIRE(qd_push_forget(is.qd, &a) == 0);
	qd_submit();
	CHECK_EQ(wait_res(is.qt, &qr), 5);
	qd_sgafree(&qr.value.sga);
}

static void burst_of_32_is_one_enter(void)
{
	struct qd_sga a[32];
	qd_token_t qt[32];
	struct qd_stats st;
	uint64_t n;
	int qd, i;

	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 32; i++)
		a[i] = sga_str("b");
	n = stats().enters;
	for (i = 0; i < 32; i++)
		REQUIRE(qd_push(&qt[i], qd, &a[i]) == 0);
	CHECK_EQ(stats().enters - n, 0);
	CHECK_EQ(wait_res(qt[31], NULL), 2);
	for (i = 0; i < 31; i++)
		CHECK_EQ(wait_res(qt[i], NULL), 2);
	st = stats();
	CHECK_EQ(st.enters - n, 1);
	CHECK_EQ(st.sqes_submitted, 32);
}

struct sleeper {
	int		qd;
	int		n;
	int		got;
};

static void *pop_n(void *arg)
{
	struct timespec wd = WATCHDOG;
	struct sleeper *s = arg;
	struct qd_result qr;
	qd_token_t qt;
	int i;

	for (i = 0; i < s->n; i++) {
		if (qd_pop(&qt, s->qd) || qd_wait(&qr, qt, &wd) || qr.ret != 2)
			break;
		s->got++;
		qd_sgafree(&qr.value.sga);
	}
	return NULL;
}

/* Another thread asleep on a pop does not make our pushes go one by one. */
static void burst_while_another_sleeps(void)
{
	struct sleeper s = { .n = 32 };
	struct fake_stats fs;
	struct qd_sga a;
	pthread_t t;
	uint64_t n;
	int i;

	REQUIRE(qd_queue(&s.qd) == 0);
	pthread_create(&t, NULL, pop_n, &s);
	do {
		usleep(1000);
		fake_stats(&fs);
	} while (!fs.waits);
	n = stats().enters;
	for (i = 0; i < 32; i++) {
		a = sga_str("s");
		REQUIRE(qd_push_forget(s.qd, &a) == 0);
	}
	usleep(20000);
	CHECK_EQ(stats().enters - n, 0);
	CHECK_EQ(qd_submit(), 0);
	pthread_join(t, NULL);
	CHECK_EQ(s.got, 32);
	fake_stats(&fs);
	CHECK_EQ(fs.posted, 32);		/* the pops' CQEs only */
}

#define HOPS	2000

struct pp {
	int		ping, pong;
	int		errors;
};

static void *echo(void *arg)
{
	struct timespec wd = WATCHDOG;
	struct pp *p = arg;
	struct qd_result qr;
	qd_token_t qt;
	int i;

	for (i = 0; i < HOPS; i++) {
		if (qd_pop(&qt, p->ping) || qd_wait(&qr, qt, &wd) ||
		    qr.ret != 8 || qd_push_forget(p->pong, &qr.value.sga)) {
			p->errors++;
			break;
		}
	}
	qd_submit();
	return NULL;
}

/*
 * Each hop is one thread's wait: it submits the forgotten push and its
 * next pop and sleeps on its own ring until the other side's push lands.
 */
static void pingpong_is_one_enter_per_hop(void)
{
	struct timespec wd = WATCHDOG;
	struct pp p = { .errors = 0 };
	struct qd_sga a = qd_sgaalloc(8);
	struct qd_result qr;
	struct qd_stats st;
	qd_token_t qt;
	pthread_t t;
	int i;

	REQUIRE(a.numsegs == 1);
	REQUIRE(qd_queue(&p.ping) == 0);
	REQUIRE(qd_queue(&p.pong) == 0);
	pthread_create(&t, NULL, echo, &p);
	for (i = 0; i < HOPS; i++) {
		REQUIRE(qd_push_forget(p.ping, &a) == 0);
		REQUIRE(qd_pop(&qt, p.pong) == 0);
		REQUIRE(qd_wait(&qr, qt, &wd) == 0);
		REQUIRE(qr.ret == 8 && qr.value.sga.segs[0].buf == a.segs[0].buf);
	}
	pthread_join(t, NULL);
	CHECK_EQ(p.errors, 0);
	st = stats();
	/* Two hops per round trip, one enter each (plus the echo's last). */
	tap_diag("%d round trips: %llu enters, %llu syscalls, %llu CQEs",
		 HOPS, (unsigned long long)st.enters,
		 (unsigned long long)st.syscalls,
		 (unsigned long long)st.cqes_reaped);
	CHECK(st.enters <= 2 * HOPS + 2);
	CHECK_EQ(st.cqes_reaped, 2 * HOPS);	/* the pops only */
	CHECK_EQ(st.rings, 2);
	qd_sgafree(&a);
}

static void *push_and_pop_own(void *arg)
{
	struct qd_sga a = sga_str("own");
	struct qd_result qr;
	qd_token_t pu, po;
	int qd = *(int *)arg;

	if (qd_push(&pu, qd, &a) || qd_pop(&po, qd) ||
	    qd_wait(&qr, po, NULL) || qr.ret != 4 || qd_wait(&qr, pu, NULL))
		*(int *)arg = -1;
	return NULL;
}

static void fork_forgets_every_ring(void)
{
	pthread_barrier_t hold;
	struct issuer is = { .nops = 0 };
	int qd, q2, status;
	pthread_t t;
	pid_t pid;

	REQUIRE(qd_queue(&qd) == 0);
	q2 = qd;
	in_thread(push_and_pop_own, &q2);
	CHECK(q2 == qd);
	/* A thread holds a ring of its own across the fork. */
	pthread_barrier_init(&hold, NULL, 2);
	is.qd = qd;
	is.hold = &hold;
	pthread_create(&t, NULL, issue, &is);
	fflush(stdout);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct qd_result qr;
		int fails = 0, cqd;

		fails += stats().rings != 0;
		fails += qd_wait(&qr, is.qt, &zero_ts) != -EINVAL;
		fails += qd_queue(&cqd) != 0;
		fails += stats().rings != 1;
		push_and_pop_own(&cqd);
		fails += cqd < 0;
		_exit(fails);
	}
	pthread_barrier_wait(&hold);
	pthread_join(t, NULL);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(wait_res(is.qt, NULL), -ECANCELED);
	pthread_barrier_destroy(&hold);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "rings";
	FRUN(token_waited_in_another_thread);
	FRUN(wait_any_across_rings);
	FRUN(exited_thread_leaves_tokens_and_its_ring);
	FRUN(burst_of_32_is_one_enter);
	FRUN(burst_while_another_sleeps);
	FRUN(pingpong_is_one_enter_per_hop);
	FRUN(fork_forgets_every_ring);
	return tap_done();
}
