// SPDX-License-Identifier: MIT
/*
 * libqd's thread safety against the fake kernel: each thread sleeps on its
 * own ring, a thread's operations reach the kernel with its own next wait
 * (or qd_submit()), never because another thread sleeps, and no wake-up
 * is lost.
 */
#include <pthread.h>
#include <stdlib.h>

#include "harness.h"

#define WATCHDOG	((struct timespec){ 10, 0 })

struct pc {
	int		qd;
	int		n;
	int		*seen;
	pthread_mutex_t	lock;
	int		errors;
};

static void *consumer(void *arg)
{
	struct timespec wd = WATCHDOG;
	struct pc *pc = arg;
	struct qd_result qr;
	qd_token_t qt;
	int i, v;

	for (i = 0; i < pc->n; i++) {
		if (qd_pop(&qt, pc->qd) || qd_wait(&qr, qt, &wd) ||
		    qr.ret != sizeof(int)) {
			__atomic_fetch_add(&pc->errors, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		v = *(int *)qr.value.sga.segs[0].buf;
		pthread_mutex_lock(&pc->lock);
		pc->seen[v]++;
		pthread_mutex_unlock(&pc->lock);
		if (qd_sgafree(&qr.value.sga))
			__atomic_fetch_add(&pc->errors, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *producer(void *arg)
{
	struct timespec wd = WATCHDOG;
	struct pc *pc = arg;
	struct qd_result qr;
	struct qd_sga sga;
	qd_token_t qt;
	int i;

	for (i = 0; i < 4 * pc->n; i++) {
		sga = qd_sgaalloc(sizeof(int));
		if (!sga.numsegs) {
			pc->errors++;
			return NULL;
		}
		*(int *)sga.segs[0].buf = i;
		if (qd_push(&qt, pc->qd, &sga) || qd_wait(&qr, qt, &wd) ||
		    qr.ret != sizeof(int)) {
			__atomic_fetch_add(&pc->errors, 1, __ATOMIC_RELAXED);
			return NULL;
		}
	}
	return NULL;
}

static void producer_and_consumers(void)
{
	struct pc pc = { .n = 500, .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t c[4], p;
	int i, bad = 0;

	pc.seen = calloc(4 * pc.n, sizeof(int));
	REQUIRE(qd_queue(&pc.qd) == 0);
	for (i = 0; i < 4; i++)
		pthread_create(&c[i], NULL, consumer, &pc);
	pthread_create(&p, NULL, producer, &pc);
	pthread_join(p, NULL);
	for (i = 0; i < 4; i++)
		pthread_join(c[i], NULL);
	CHECK_EQ(pc.errors, 0);
	for (i = 0; i < 4 * pc.n; i++)
		bad += pc.seen[i] != 1;
	CHECK_EQ(bad, 0);
	free(pc.seen);
}

struct sleeper {
	int		qd;
	int		done;
	int64_t		ret;
};

static void *sleep_on_pop(void *arg)
{
	struct sleeper *s = arg;
	struct qd_result qr;
	qd_token_t qt;

	if (qd_pop(&qt, s->qd) == 0 && qd_wait(&qr, qt, NULL) == 0) {
		s->ret = qr.ret;
		if (qr.ret > 0)
			qd_sgafree(&qr.value.sga);
	} else {
		s->ret = -9999;
	}
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Wait until the fake kernel has had `n` sleeping enters. */
static int kernel_sleeps(uint64_t n)
{
	struct fake_stats fs;
	int i;

	for (i = 0; i < 2000; i++) {
		fake_stats(&fs);
		if (fs.waits >= n)
			return 1;
		usleep(1000);
	}
	return 0;
}

static int wait_done(int *done)
{
	int i;

	for (i = 0; i < 2000 && !__atomic_load_n(done, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	return __atomic_load_n(done, __ATOMIC_ACQUIRE);
}

static void push_waits_for_the_pushers_enter(void)
{
	struct sleeper s = { .done = 0 };
	struct qd_sga a = sga_str("wake");
	struct qd_result qr;
	qd_token_t qt;
	pthread_t t;
	uint64_t n;

	REQUIRE(qd_queue(&s.qd) == 0);
	pthread_create(&t, NULL, sleep_on_pop, &s);
	REQUIRE(kernel_sleeps(1));
	n = stats().enters;
	/* Queued in this thread's ring: nobody else submits it. */
	REQUIRE(qd_push(&qt, s.qd, &a) == 0);
	usleep(30000);
	CHECK_EQ(stats().enters - n, 0);
	CHECK_EQ(__atomic_load_n(&s.done, __ATOMIC_ACQUIRE), 0);
	/* The pusher's own wait submits it: one enter for push and result. */
	CHECK_EQ(qd_wait(&qr, qt, NULL), 0);
	CHECK_EQ(qr.ret, 5);
	CHECK_EQ(stats().enters - n, 1);
	CHECK(wait_done(&s.done));
	pthread_join(t, NULL);
	CHECK_EQ(s.ret, 5);
}

static void submit_wakes_sleeping_waiter(void)
{
	struct sleeper s = { .done = 0 };
	struct qd_sga a = sga_str("sub");
	pthread_t t;
	uint64_t n;

	REQUIRE(qd_queue(&s.qd) == 0);
	pthread_create(&t, NULL, sleep_on_pop, &s);
	REQUIRE(kernel_sleeps(1));
	n = stats().enters;
	REQUIRE(qd_push_forget(s.qd, &a) == 0);
	CHECK_EQ(stats().enters - n, 0);
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().enters - n, 1);
	CHECK(wait_done(&s.done));
	pthread_join(t, NULL);
	CHECK_EQ(s.ret, 4);
}

static void each_thread_sleeps_on_its_own_ring(void)
{
	struct sleeper s[4];
	struct fake_stats fs;
	uint64_t woken;
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		s[i] = (struct sleeper){ .done = 0 };
		REQUIRE(qd_queue(&s[i].qd) == 0);
		pthread_create(&t[i], NULL, sleep_on_pop, &s[i]);
	}
	REQUIRE(kernel_sleeps(4));		/* all four in the kernel */
	usleep(20000);
	CHECK_EQ(stats().rings, 4);
	fake_stats(&fs);
	CHECK_EQ(fs.waits, 4);
	/* Each release wakes exactly its thread, nobody else. */
	for (i = 0; i < 4; i++) {
		struct qd_sga a = sga_str("x");

		fake_stats(&fs);
		woken = fs.wakeups;
		REQUIRE(qd_push_forget(s[i].qd, &a) == 0);
		REQUIRE(qd_submit() == 0);
		CHECK(wait_done(&s[i].done));
		CHECK_EQ(s[i].ret, 2);
		fake_stats(&fs);
		CHECK_EQ(fs.wakeups - woken, 1);
	}
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(stats().rings, 5);		/* and one for this thread */
}

static void poll_while_another_thread_sleeps(void)
{
	struct sleeper s = { .done = 0 };
	struct qd_sga a = sga_str("p"), b = sga_str("q");
	struct qd_result qr;
	qd_token_t pu, po, pu2;
	pthread_t t;
	int qd;

	REQUIRE(qd_queue(&s.qd) == 0);
	REQUIRE(qd_queue(&qd) == 0);
	pthread_create(&t, NULL, sleep_on_pop, &s);
	REQUIRE(kernel_sleeps(1));
	REQUIRE(qd_push(&pu, qd, &a) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	/* Our own ring: the poll submits and reaps, the sleeper sleeps on. */
	CHECK_EQ(qd_wait(&qr, po, &zero_ts), 0);
	CHECK_EQ(qr.ret, 2);
	CHECK_EQ(qd_wait(&qr, pu, &zero_ts), 0);
	CHECK_EQ(s.done, 0);
	REQUIRE(qd_push(&pu2, s.qd, &b) == 0);
	CHECK_EQ(wait_res(pu2, NULL), 2);
	CHECK(wait_done(&s.done));
	pthread_join(t, NULL);
}

struct pingpong {
	int		qd;
	int		rounds;
	/* if set: met by every thread after its first round */
	pthread_barrier_t *start;
	int		errors;
	int		first;	/* the first failure: line */
	int64_t		what;	/* and its value */
};

#define PP_CHECK(p, expr, want)						\
	do {								\
		int64_t _v = (expr);					\
		if (_v != (want)) {					\
			if (!(p)->errors++) {				\
				(p)->first = __LINE__;			\
				(p)->what = _v;				\
			}						\
		}							\
	} while (0)

/* Push then pop on a private queue, waiting in varying orders. */
static void *pingpong(void *arg)
{
	struct timespec wd = WATCHDOG;
	struct pingpong *p = arg;
	struct qd_result qr;
	qd_token_t qts[2];
	struct qd_sga a;
	int i, off;

	a = qd_sgaalloc(32);
	for (i = 0; i < p->rounds && !p->errors; i++) {
		if (i % 2) {
			PP_CHECK(p, qd_pop(&qts[1], p->qd), 0);
			PP_CHECK(p, qd_push(&qts[0], p->qd, &a), 0);
		} else {
			PP_CHECK(p, qd_push(&qts[0], p->qd, &a), 0);
			PP_CHECK(p, qd_pop(&qts[1], p->qd), 0);
		}
		if (p->errors)
			break;
		switch (i % 3) {
		case 0:
			PP_CHECK(p, qd_wait(&qr, qts[1], &wd), 0);
			PP_CHECK(p, qr.ret, 32);
			PP_CHECK(p, qr.value.sga.segs[0].buf == a.segs[0].buf, 1);
			PP_CHECK(p, qd_wait(&qr, qts[0], &wd), 0);
			break;
		case 1:
			PP_CHECK(p, qd_wait(&qr, qts[0], &wd), 0);
			PP_CHECK(p, qd_wait(&qr, qts[1], &wd), 0);
			PP_CHECK(p, qr.ret, 32);
			break;
		default:
			PP_CHECK(p, qd_wait_any(&qr, &off, qts, 2, &wd), 0);
			PP_CHECK(p, qd_wait(&qr, qts[!off], &wd), 0);
			break;
		}
		if (!i && p->start)
			pthread_barrier_wait(p->start);
	}
	qd_sgafree(&a);
	return NULL;
}

static void many_threads_no_lost_wakeups(void)
{
	struct pingpong p[8];
	pthread_t t[8];
	int i;

	for (i = 0; i < 8; i++) {
		p[i] = (struct pingpong){ .rounds = 300 };
		REQUIRE(qd_queue(&p[i].qd) == 0);
	}
	for (i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, pingpong, &p[i]);
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(p[i].errors, 0);
		if (p[i].errors)
			tap_diag("thread %d: line %d gave %lld", i, p[i].first,
				 (long long)p[i].what);
	}
}

static void many_threads_own_rings(void)
{
	pthread_barrier_t start;
	struct pingpong p[8];
	pthread_t t[8];
	int i;

	/* All eight hold their rings at once: eight rings. */
	pthread_barrier_init(&start, NULL, 8);
	for (i = 0; i < 8; i++) {
		p[i] = (struct pingpong){ .rounds = 300, .start = &start };
		REQUIRE(qd_queue(&p[i].qd) == 0);
	}
	for (i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, pingpong, &p[i]);
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(p[i].errors, 0);
	}
	CHECK_EQ(stats().rings, 8);
	pthread_barrier_destroy(&start);
}

static void threads_share_rings_past_the_limit(void)
{
	/* Two rings for eight threads: shared, still correct. */
	fake_cfg.max_rings = 2;
	many_threads_no_lost_wakeups();
	CHECK_EQ(stats().rings, 2);
}

static void threads_share_ring_0_without_rings_feature(void)
{
	fake_cfg.features = QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS |
			    QD_FEAT_NOOVERFLOW_LOSS | QD_FEAT_REGIONS |
			    QD_FEAT_SKIP_SUCCESS | QD_FEAT_MULTISHOT;
	many_threads_no_lost_wakeups();
	CHECK_EQ(stats().rings, 1);
	CHECK_EQ(stats().features & QD_FEAT_RINGS, 0);
}

static void many_threads_small_rings(void)
{
	/* Rings far smaller than the work: full SQs, often CQ overflow. */
	setenv("QD_SQ_ENTRIES", "2", 1);
	setenv("QD_CQ_ENTRIES", "2", 1);
	fake_cfg.max_inflight = 64;
	many_threads_no_lost_wakeups();
}

struct timer {
	int		qd;
	int64_t		ret;
	int64_t		ms;
};

static void *time_out(void *arg)
{
	struct timespec t0, ts = { 0, 30 * 1000 * 1000 };
	struct timer *tm = arg;
	struct qd_result qr;
	qd_token_t qt;

	qd_pop(&qt, tm->qd);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tm->ret = qd_wait(&qr, qt, &ts);
	tm->ms = elapsed_ms(&t0);
	return NULL;
}

static void waiters_time_out(void)
{
	struct timer tm[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		tm[i] = (struct timer){ 0 };
		REQUIRE(qd_queue(&tm[i].qd) == 0);
		pthread_create(&t[i], NULL, time_out, &tm[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(tm[i].ret, -ETIMEDOUT);
		CHECK(tm[i].ms >= 30 && tm[i].ms < 3000);
	}
}

static void close_wakes_all_waiters(void)
{
	struct sleeper s[3];
	pthread_t t[3];
	int i, qd;

	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 3; i++) {
		s[i] = (struct sleeper){ .qd = qd };
		pthread_create(&t[i], NULL, sleep_on_pop, &s[i]);
	}
	REQUIRE(kernel_sleeps(3));
	CHECK_EQ(qd_close(qd), 0);
	for (i = 0; i < 3; i++) {
		CHECK(wait_done(&s[i].done));
		pthread_join(t[i], NULL);
		CHECK_EQ(s[i].ret, -ECANCELED);
	}
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "threads";
	FRUN(producer_and_consumers);
	FRUN(push_waits_for_the_pushers_enter);
	FRUN(submit_wakes_sleeping_waiter);
	FRUN(each_thread_sleeps_on_its_own_ring);
	FRUN(poll_while_another_thread_sleeps);
	FRUN(many_threads_own_rings);
	FRUN(many_threads_small_rings);
	FRUN(threads_share_rings_past_the_limit);
	FRUN(threads_share_ring_0_without_rings_feature);
	FRUN(waiters_time_out);
	FRUN(close_wakes_all_waiters);
	return tap_done();
}
