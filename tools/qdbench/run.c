// SPDX-License-Identifier: GPL-2.0
/*
 * The driver: thread A (the caller) and thread B (a worker that lives for
 * the whole benchmark) run one (mode, size, mechanism) configuration.
 *
 * A warms up for a while, then publishes how many ops the warm-up took
 * (r->warm) and measures; before it sends the final op it publishes the
 * total (r->total). B learns both from the element it has just received,
 * so each thread can take its counters at its own phase boundary without
 * an extra handshake:
 *  - A counts from before sending op warm+1 to after op total (n ops);
 *  - B counts from after receiving op k0 (the first one that arrives once
 *    warm is published: warm+1 in ping-pong) to after receiving op total,
 *    i.e. total - k0 whole receive cycles.
 * Per-op figures add A's per-op and B's per-op counts.
 *
 * Batch: A sends `batch` elements (flush on the last one), then waits until
 * all of them are back (a_sync); warm-up and run end on a batch boundary,
 * so B sees op warm+1 first, as in ping-pong.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qdbench.h"

#define REPLY_BIT	(1ull << 63)

static struct {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	pthread_t	tid;
	struct run	*job;
	bool		busy, quit, running, sysc, ready;
	int		cpu;
} worker = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.cpu = -1,
};

static int cpu_a = -1;
static bool main_sysc;
int procs = 1;

static uint64_t thread_csw(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return 0;
	return (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
}

/*
 * A mechanism that counts process-wide (qd_stats) counts one side only
 * when each side is a process of its own: then A's and B's deltas add up.
 */
static uint64_t thread_sys(const struct mech *m)
{
	if (m->thread_syscalls)
		return m->thread_syscalls();
	return procs == 2 && m->process_syscalls ? m->process_syscalls() : 0;
}

static uint64_t process_sys(const struct mech *m)
{
	return m->process_syscalls ? m->process_syscalls() : 0;
}

static uint64_t thread_cqe(const struct mech *m)
{
	if (m->thread_cqes)
		return m->thread_cqes();
	return procs == 2 && m->process_cqes ? m->process_cqes() : 0;
}

static uint64_t process_cqe(const struct mech *m)
{
	return m->process_cqes ? m->process_cqes() : 0;
}

#define CHECK(r, what, expr) do {					\
	int __e = (expr);						\
	if (__e)							\
		die("%s %s %zu B: %s: %s", (r)->m->name,		\
		    mode_name((r)->mode), (r)->size, what,		\
		    strerror(-__e));					\
} while (0)

/* B: answer (ping-pong) or consume (stream, batch) until op `total`. */
static void b_loop(struct run *r)
{
	const struct mech *m = r->m;
	uint64_t k = 0, k0 = 0, sys0 = 0, csw0 = 0, t0 = 0, all0 = 0, cqe0 = 0;
	bool started = false;

	for (;;) {
		struct payload p;
		uint64_t total;
		bool last, flush;

		CHECK(r, "B receive", m->b_recv(r, &p));
		k++;
		total = atomic_load(&r->total);
		last = total && k == total;
		if (!started && atomic_load(&r->warm)) {
			started = true;
			k0 = k;
			sys0 = thread_sys(m);
			cqe0 = thread_cqe(m);
			csw0 = thread_csw();
			all0 = sysc_read();
			t0 = now_ns();
		}
		if (last) {
			/* the read that fetches the count counts itself */
			r->b_all = sysc_read() - all0 - 1;
			r->b_secs = (now_ns() - t0) / 1e9;
			r->b_sys = thread_sys(m) - sys0;
			r->b_cqe = thread_cqe(m) - cqe0;
			r->b_csw = thread_csw() - csw0;
			r->b_n = k - k0;
			r->b_cpu = sched_getcpu();
			if (r->mode == MODE_STREAM) {
				r->proc_sys1 = process_sys(m);
				r->proc_cqe1 = process_cqe(m);
			}
		}
		CHECK(r, "B payload", pl_check(&p, k, r->touch));
		if (r->mode == MODE_PINGPONG) {
			pl_mark(&p, k ^ REPLY_BIT, r->touch);
			CHECK(r, "B send", m->b_send(r, last));
		} else {
			flush = r->mode == MODE_STREAM || last ||
				k % r->batch == 0;
			CHECK(r, "B release", m->b_release(r, last, flush));
		}
		if (last)
			break;
	}
	CHECK(r, "B finish", m->b_done(r));
}

static void *worker_main(void *arg)
{
	(void)arg;
	pin_thread(worker.cpu);
	worker.sysc = sysc_open();
	pthread_mutex_lock(&worker.lock);
	for (;;) {
		struct run *r;

		while (!worker.job && !worker.quit)
			pthread_cond_wait(&worker.cond, &worker.lock);
		if (worker.quit)
			break;
		r = worker.job;
		pthread_mutex_unlock(&worker.lock);
		if (r->m->b_init)
			CHECK(r, "B init", r->m->b_init(r));
		pthread_mutex_lock(&worker.lock);
		worker.ready = true;
		pthread_cond_broadcast(&worker.cond);
		pthread_mutex_unlock(&worker.lock);
		b_loop(r);
		pthread_mutex_lock(&worker.lock);
		worker.job = NULL;
		worker.busy = false;
		pthread_cond_broadcast(&worker.cond);
	}
	pthread_mutex_unlock(&worker.lock);
	return NULL;
}

void set_cpus(int a, int b)
{
	cpu_a = a;
	worker.cpu = b;
}

/*
 * In a child forked from the main thread (a row measured in its own
 * process, main.c): B's thread is not there, and its lock and condition
 * variable may hold state of the parent's threads. Then worker_start().
 */
void worker_forked(void)
{
	pthread_mutex_init(&worker.lock, NULL);
	pthread_cond_init(&worker.cond, NULL);
	worker.job = NULL;
	worker.busy = worker.quit = worker.running = worker.ready = false;
}

void worker_start(int unused)
{
	(void)unused;
	pin_thread(cpu_a);
	main_sysc = sysc_open();
	if (procs == 2)
		return;		/* B is a child per run, not a thread */
	if (pthread_create(&worker.tid, NULL, worker_main, NULL))
		die("pthread_create failed");
	worker.running = true;
}

void worker_stop(void)
{
	if (!worker.running)
		return;
	pthread_mutex_lock(&worker.lock);
	worker.quit = true;
	pthread_cond_broadcast(&worker.cond);
	pthread_mutex_unlock(&worker.lock);
	pthread_join(worker.tid, NULL);
	worker.running = false;
}

/*
 * A: one op. Ping-pong: a whole round trip. Stream: one element sent.
 * Batch: one element sent; the batch's last one also waits for all of it.
 */
static void a_op(struct run *r, uint64_t seq, bool last)
{
	const struct mech *m = r->m;
	bool flush = r->mode != MODE_BATCH || last || seq % r->batch == 0;
	struct payload p;

	CHECK(r, "A buffer", m->a_buf(r, &p));
	pl_mark(&p, seq, r->touch);
	CHECK(r, "A send", m->a_send(r, last, flush));
	if (r->mode == MODE_PINGPONG) {
		CHECK(r, "A receive", m->a_recv(r, &p));
		CHECK(r, "A payload", pl_check(&p, seq ^ REPLY_BIT, r->touch));
	} else if (r->mode == MODE_BATCH && flush) {
		CHECK(r, "A batch wait", m->a_sync(r));
	}
}

/* A's whole run, once B is ready: warm-up, measurement, a_done. */
static void a_run(struct run *r)
{
	const struct mech *m = r->m;
	bool pp = r->mode == MODE_PINGPONG, batch = r->mode == MODE_BATCH;
	uint64_t seq = 0, n = 0, warm_max, t0, tnow, sys0, csw0, all0, cqe0;
	unsigned int clock_every = pp ? 1 : batch ? r->batch : 16;

	warm_max = r->iters / 10 ? r->iters / 10 : 1;
	if (m->a_init)
		CHECK(r, "A init", m->a_init(r));

	/* warm-up: first touches, caches, the scheduler settling */
	t0 = now_ns();
	tnow = t0;
	do {
		a_op(r, ++seq, false);
		if (seq % clock_every == 0)
			tnow = now_ns();
	} while ((seq < warm_max && (tnow - t0) / 1e9 < r->warm_budget) ||
		 (batch && seq % r->batch));
	atomic_store(&r->warm, seq);

	r->proc_sys0 = process_sys(m);
	r->proc_cqe0 = process_cqe(m);
	sys0 = thread_sys(m);
	cqe0 = thread_cqe(m);
	csw0 = thread_csw();
	all0 = sysc_read();
	t0 = now_ns();
	tnow = t0;
	for (;;) {
		bool last = n + 1 >= r->iters ||
			    (n + 1 >= 2 && (tnow - t0) / 1e9 >= r->budget);
		uint64_t ts = 0;

		/* a batch run ends with a whole batch */
		if (batch && (seq + 1) % r->batch)
			last = false;
		if (last)
			atomic_store(&r->total, seq + 1);
		if (pp)
			ts = now_ns();
		a_op(r, ++seq, last);
		if (pp) {
			tnow = now_ns();
			if (n < r->lat_cap)
				r->lat_ns[n] = tnow - ts;
		} else if ((n + 1) % clock_every == 0) {
			tnow = now_ns();
		}
		n++;
		if (last)
			break;
	}
	r->a_all = sysc_read() - all0 - 1;
	r->a_secs = (now_ns() - t0) / 1e9;
	r->a_sys = thread_sys(m) - sys0;
	r->a_cqe = thread_cqe(m) - cqe0;
	r->a_csw = thread_csw() - csw0;
	r->a_cpu = sched_getcpu();
	if (pp || batch) {
		r->proc_sys1 = process_sys(m);
		r->proc_cqe1 = process_cqe(m);
	}
	r->n = n;
	CHECK(r, "A finish", m->a_done(r));
}

/*
 * --procs 2: B runs in a child forked for this run. The run's fields both
 * sides use (warm and total from A, B's results) are in a MAP_SHARED copy
 * of *r; the mechanism's setup, done before the fork, put whatever both
 * sides change in shared memory too. The child says it is ready (b_init
 * done) with a byte on a pipe, and ends with _exit(0): its results are in
 * the shared copy once waitpid() returns.
 */
static void run_procs(struct run *r)
{
	struct run *sr;
	int rp[2], st;
	pid_t pid;
	char c;
	ssize_t got;

	sr = mmap(NULL, sizeof(*sr), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sr == MAP_FAILED)
		die("mmap shared run: %s", strerror(errno));
	memcpy(sr, r, sizeof(*sr));
	if (pipe2(rp, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	fflush(NULL);		/* nothing buffered is written twice */
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		/* B: dies with A (e.g. A's watchdog) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		close(rp[0]);
		pin_thread(worker.cpu);
		sr->b_sysc = sysc_open();
		if (sr->m->b_init)
			CHECK(sr, "B init", sr->m->b_init(sr));
		c = 1;
		if (write(rp[1], &c, 1) != 1)
			_exit(1);
		b_loop(sr);
		_exit(0);
	}
	close(rp[1]);
	do
		got = read(rp[0], &c, 1);
	while (got < 0 && errno == EINTR);
	close(rp[0]);
	if (got != 1) {
		waitpid(pid, &st, 0);
		die("%s %s %zu B: process B failed before it was ready",
		    r->m->name, mode_name(r->mode), r->size);
	}
	a_run(sr);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("%s %s %zu B: process B %s %d", r->m->name,
		    mode_name(r->mode), r->size,
		    WIFEXITED(st) ? "exited with" : "killed by signal",
		    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	sr->all_ok = main_sysc && sr->b_sysc;
	memcpy(r, sr, sizeof(*r));
	munmap(sr, sizeof(*sr));
}

void run_one(struct run *r)
{
	atomic_store(&r->warm, 0);
	atomic_store(&r->total, 0);
	r->n = r->b_n = 0;
	if (r->iters < 2)
		r->iters = 2;
	if (!r->batch)
		r->batch = 1;
	if (procs == 2) {
		run_procs(r);
		return;
	}

	pthread_mutex_lock(&worker.lock);
	worker.job = r;
	worker.busy = true;
	worker.ready = false;
	pthread_cond_broadcast(&worker.cond);
	/* B sets up its side first (e.g. its ring, which A sends to) */
	while (!worker.ready)
		pthread_cond_wait(&worker.cond, &worker.lock);
	pthread_mutex_unlock(&worker.lock);
	a_run(r);

	pthread_mutex_lock(&worker.lock);
	while (worker.busy)
		pthread_cond_wait(&worker.cond, &worker.lock);
	pthread_mutex_unlock(&worker.lock);
	r->all_ok = main_sysc && worker.sysc;
}
