// SPDX-License-Identifier: GPL-2.0
/*
 * irq: deferred NOPs (QD_NOP_HARDIRQ, QD_NOP_SOFTIRQ), which complete from
 * an hrtimer in hardirq or softirq context: the completion path the device
 * backends will use. What that path must survive: a full CQ (completions
 * parked in the overflow list from interrupt context), the context closed
 * or its process killed while completions arrive (the use-after-free in
 * qd_cq_post()'s overflow path: only KASAN sees it, so run this suite under
 * `make check-debug` too), and a context outliving its fd until its last op
 * completes.
 *
 *   irq                          the suite
 *   irq --leave-pending-nop MS   selftests/run's rmmod test: leave a deferred
 *                                NOP of MS ms behind a closed fd, then check
 *                                that the module cannot be removed
 */
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "qd_child.h"
#include "harness.h"

#define SETTLE_MS	60000			/* every delay passed, contexts freed */
#define CQE_WAIT_NS	(20000 * QD_RAW_MS)	/* one CQE that must come */
#define REGION_PAGES	16

static struct qd_sqe nop_irq(__u64 user_data, __u32 flags, __u64 delay_ns)
{
	struct qd_sqe s = qd_sqe_nop(user_data);

	s.nop_flags = flags;
	s.delay_ns = delay_ns;
	return s;
}

static int submit_one(struct qd_raw *r, struct qd_sqe s)
{
	int ret = qd_raw_queue_sqe(r, &s);

	return ret ? ret : qd_raw_submit(r);
}

static unsigned long long xorshift(unsigned long long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void spin_ns(long long ns)
{
	long long end = qd_now_ns() + ns;

	while (qd_now_ns() < end)
		;
}

/*
 * Wait until /proc/qd shows no more contexts, regions, pinned pages and
 * operations in flight than *base. 1 once it does, 0 at the deadline;
 * *now holds the last reading.
 */
static int settled(const struct qd_proc *base, struct qd_proc *now, int ms)
{
	long long end = qd_now_ns() + ms * QD_RAW_MS;

	do {
		if (qd_proc_read(now))
			return 0;
		if (now->contexts <= base->contexts && now->regions <= base->regions &&
		    now->pinned_pages <= base->pinned_pages &&
		    now->inflight <= base->inflight)
			return 1;
		qd_sleep_ms(10);
	} while (qd_now_ns() < end);
	return 0;
}

#define EXPECT_SETTLED(base) do {					\
	struct qd_proc __now;						\
	EXPECT_TRUE(settled((base), &__now, SETTLE_MS))			\
		TH_LOG("left behind: contexts %lld regions %lld "	\
		       "pinned_pages %lld inflight %lld",		\
		       __now.contexts - (base)->contexts,		\
		       __now.regions - (base)->regions,			\
		       __now.pinned_pages - (base)->pinned_pages,	\
		       __now.inflight - (base)->inflight);		\
} while (0)

/* Start from a quiet module: 0 contexts (earlier tests' NOPs have fired). */
static int quiet(struct qd_proc *base)
{
	struct qd_proc zero = { 0 };

	return settled(&zero, base, SETTLE_MS) ? 0 : -ETIMEDOUT;
}

/*
 * Submit total deferred NOPs (flags: one flag, or 0 for a random mix; delays
 * random up to max_delay_us) into a context with a tiny CQ, reaping only
 * every other round so that completions keep arriving from interrupt
 * context while the ring is full. Every user_data must come back exactly
 * once with res 0, and the overflow path must have been taken.
 */
static void storm(struct __test_metadata *_metadata, struct qd_raw *r,
		  unsigned int total, __u32 flags, unsigned int max_delay_us)
{
	unsigned long long seed = (unsigned long long)qd_now_ns() | 1;
	unsigned int queued = 0, reaped = 0, dups = 0, bad = 0, round = 0;
	unsigned int ovf0 = *r->cq_overflow;
	long long end = qd_now_ns() + 240000 * QD_RAW_MS, bad_res = 0;
	unsigned char *seen = calloc(total, 1);
	struct qd_cqe cqe;
	int ret;

	ASSERT_NE(NULL, seen);
	TH_LOG("seed %llu", seed);
	while (reaped < total && qd_now_ns() < end) {
		while (queued < total) {
			__u32 f = flags ? flags :
				  (xorshift(&seed) & 1 ? QD_NOP_HARDIRQ : QD_NOP_SOFTIRQ);
			struct qd_sqe s = nop_irq(queued, f,
						  xorshift(&seed) % (max_delay_us + 1) * 1000);

			if (qd_raw_queue_sqe(r, &s))
				break;
			queued++;
		}
		/* moves parked CQEs into the ring, then submits what is admitted */
		ret = qd_raw_submit(r);
		ASSERT_LE(0, ret) TH_LOG("enter: %s", strerror(-ret));
		qd_sleep_ms(1);
		if (round++ % 2 && queued < total)
			continue;	/* leave the ring full */
		while (qd_raw_peek_cqe(r, &cqe, NULL)) {
			reaped++;
			if (cqe.user_data >= total || cqe.opcode != QD_OP_NOP) {
				bad++;
				continue;
			}
			if (seen[cqe.user_data]++)
				dups++;
			if (cqe.res) {
				bad++;
				bad_res = cqe.res;
			}
		}
		if (queued == total && reaped < total)
			qd_raw_enter(r, 0, 1, QD_RAW_WAIT, 100 * QD_RAW_MS);
	}
	EXPECT_EQ(total, reaped) TH_LOG("submitted %u, %u left in the SQ", queued,
					qd_raw_sq_pending(r));
	EXPECT_EQ(0u, dups);
	EXPECT_EQ(0u, bad) TH_LOG("res %lld", bad_res);
	/* completions were parked, from interrupt context */
	EXPECT_LT(ovf0, *r->cq_overflow);
	free(seen);
}

/* --- one kind of deferred NOP at a time --------------------------------- */

FIXTURE(deferred) {
	struct qd_raw r;
	struct qd_proc base;
};

FIXTURE_VARIANT(deferred) {
	__u32 flag;
};

FIXTURE_VARIANT_ADD(deferred, hardirq) { .flag = QD_NOP_HARDIRQ };
FIXTURE_VARIANT_ADD(deferred, softirq) { .flag = QD_NOP_SOFTIRQ };

FIXTURE_SETUP(deferred)
{
	self->r.fd = -1;
	ASSERT_EQ(0, quiet(&self->base)) TH_LOG("earlier tests left contexts");
	ASSERT_EQ(0, qd_raw_init(&self->r, 16, 16));
	self->base.contexts++;	/* the fixture's own */
}

FIXTURE_TEARDOWN(deferred)
{
	if (self->r.fd >= 0)
		qd_raw_exit(&self->r);
}

TEST_F_TIMEOUT(deferred, completes_with_res_0_after_its_delay, 120)
{
	const long long delay = 200 * QD_RAW_MS;
	struct qd_cqe cqe;
	struct qd_proc mid;
	long long t0, t1;

	t0 = qd_now_ns();
	ASSERT_EQ(1, submit_one(&self->r, nop_irq(0x1234, variant->flag, delay)));
	/* in flight until the timer fires */
	ASSERT_EQ(0, qd_proc_read(&mid));
	EXPECT_EQ(self->base.inflight + 1, mid.inflight);
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, CQE_WAIT_NS));
	t1 = qd_now_ns();
	EXPECT_EQ(0x1234u, cqe.user_data);
	EXPECT_EQ(0, cqe.res);
	EXPECT_EQ(QD_OP_NOP, cqe.opcode);
	EXPECT_EQ(0, cqe.qd);
	EXPECT_EQ(0u, cqe.flags);
	EXPECT_LE(delay, t1 - t0) TH_LOG("completed after %lld ns", t1 - t0);
	EXPECT_SETTLED(&self->base);
}

TEST_F(deferred, zero_delay_completes_with_res_0)
{
	struct qd_cqe cqe;
	unsigned int i;

	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &(struct qd_sqe){
			.opcode = QD_OP_NOP, .user_data = i, .nop_flags = variant->flag }));
	ASSERT_EQ(8, qd_raw_submit(&self->r));
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, CQE_WAIT_NS));
		EXPECT_EQ(0, cqe.res);
	}
}

TEST_F(deferred, shorter_delay_completes_first)
{
	struct qd_cqe a, b;
	long long t0 = qd_now_ns();

	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &(struct qd_sqe){
		.opcode = QD_OP_NOP, .user_data = 1, .nop_flags = variant->flag,
		.delay_ns = 500 * QD_RAW_MS }));
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &(struct qd_sqe){
		.opcode = QD_OP_NOP, .user_data = 2, .nop_flags = variant->flag,
		.delay_ns = 10 * QD_RAW_MS }));
	ASSERT_EQ(2, qd_raw_submit(&self->r));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &a, NULL, CQE_WAIT_NS));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &b, NULL, CQE_WAIT_NS));
	EXPECT_EQ(2u, a.user_data);
	EXPECT_EQ(1u, b.user_data);
	EXPECT_EQ(0, a.res);
	EXPECT_EQ(0, b.res);
	EXPECT_LE(500 * QD_RAW_MS, qd_now_ns() - t0);
}

TEST_F(deferred, max_delay_is_accepted)
{
	struct qd_cqe cqe;
	long long t0 = qd_now_ns();

	ASSERT_EQ(1, submit_one(&self->r, nop_irq(7, variant->flag, QD_NOP_MAX_DELAY_NS)));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, CQE_WAIT_NS));
	EXPECT_EQ(0, cqe.res);
	EXPECT_LE((long long)QD_NOP_MAX_DELAY_NS, qd_now_ns() - t0);
}

TEST_F_TIMEOUT(deferred, tiny_cq_overflowed_from_irq_loses_nothing, 300)
{
	storm(_metadata, &self->r, 2000, variant->flag, 1000);
	EXPECT_SETTLED(&self->base);
}

/* --- the rest ------------------------------------------------------------ */

FIXTURE(irq) {
	struct qd_raw r;
	struct qd_proc base;
	size_t pg;
};

FIXTURE_SETUP(irq)
{
	self->r.fd = -1;
	self->pg = qd_page_size();
	ASSERT_EQ(0, quiet(&self->base)) TH_LOG("earlier tests left contexts");
	ASSERT_EQ(0, qd_raw_init(&self->r, 16, 16));
	self->base.contexts++;	/* the fixture's own */
}

FIXTURE_TEARDOWN(irq)
{
	if (self->r.fd >= 0)
		qd_raw_exit(&self->r);
}

TEST_F(irq, setup_reports_nop_irq_feature)
{
	EXPECT_TRUE(!!(self->r.p.features & QD_FEAT_NOP_IRQ))
		TH_LOG("features %#x", self->r.p.features);
}

TEST_F(irq, invalid_flag_and_delay_combinations_are_einval)
{
	static const struct {
		__u32 flags;
		__u64 delay_ns;
		long long res;
	} cases[] = {
		/* one flag, any delay up to the maximum: fine */
		{ QD_NOP_HARDIRQ, 0, 0 },
		{ QD_NOP_SOFTIRQ, 0, 0 },
		{ QD_NOP_HARDIRQ, 1000, 0 },
		{ QD_NOP_SOFTIRQ, 1000, 0 },
		{ 0, 0, 0 },
		/* both flags */
		{ QD_NOP_HARDIRQ | QD_NOP_SOFTIRQ, 0, -EINVAL },
		{ QD_NOP_HARDIRQ | QD_NOP_SOFTIRQ, 1000, -EINVAL },
		/* unknown flags, alone or with a known one */
		{ 1u << 2, 0, -EINVAL },
		{ 1u << 31, 1000, -EINVAL },
		{ QD_NOP_HARDIRQ | (1u << 2), 0, -EINVAL },
		{ QD_NOP_SOFTIRQ | (1u << 16), 1000, -EINVAL },
		/* above the maximum */
		{ QD_NOP_HARDIRQ, QD_NOP_MAX_DELAY_NS + 1, -EINVAL },
		{ QD_NOP_SOFTIRQ, ~0ULL, -EINVAL },
		{ QD_NOP_SOFTIRQ, 1ULL << 63, -EINVAL },
		/* a delay without a flag */
		{ 0, 1, -EINVAL },
		{ 0, 1000, -EINVAL },
		{ 0, QD_NOP_MAX_DELAY_NS, -EINVAL },
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct qd_sqe s = nop_irq(i, cases[i].flags, cases[i].delay_ns);
		struct qd_cqe cqe = { .res = -9999 };

		ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
		EXPECT_EQ(i, cqe.user_data);
		EXPECT_EQ(cases[i].res, cqe.res)
			TH_LOG("case %u: nop_flags %#x delay_ns %llu", i, cases[i].flags,
			       (unsigned long long)cases[i].delay_ns);
	}
}

TEST_F_TIMEOUT(irq, mixed_irq_completions_overflowing_tiny_cq_lose_nothing, 300)
{
	storm(_metadata, &self->r, 4000, 0, 2000);
	EXPECT_SETTLED(&self->base);
}

/*
 * A process registers a region, leaves a deferred NOP of 1 s, closes its
 * fd and exits: the context (with its pins) lives on until the NOP has
 * completed into nothing, then goes. The old module could not defer, so
 * the context went at close.
 */
TEST_F_TIMEOUT(irq, closed_context_lives_until_its_last_deferred_nop, 120)
{
	struct qd_proc mid;
	int ready[2];
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw r;
		char *m = qd_raw_pages(REGION_PAGES * self->pg);

		close(ready[0]);
		CHILD_CHECK(m);
		CHILD_CHECK(qd_raw_init(&r, 4, 8) == 0);
		CHILD_CHECK(qd_raw_register(r.fd, m, REGION_PAGES * self->pg, NULL) == 0);
		CHILD_CHECK(submit_one(&r, nop_irq(1, QD_NOP_HARDIRQ, QD_NOP_MAX_DELAY_NS)) == 1);
		CHILD_CHECK(qd_raw_cq_ready(&r) == 0);
		qd_raw_exit(&r);
		CHILD_CHECK(write(ready[1], "r", 1) == 1);
		_exit(0);
	}
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	close(ready[0]);
	ASSERT_EQ(0, qd_wait_child(pid));
	ASSERT_EQ(0, qd_proc_read(&mid));
	EXPECT_EQ(self->base.contexts + 1, mid.contexts);
	EXPECT_EQ(self->base.pinned_pages + REGION_PAGES, mid.pinned_pages);
	EXPECT_EQ(self->base.inflight + 1, mid.inflight);
	EXPECT_SETTLED(&self->base);
}

/* Run on this CPU only (if there is more than one): 0 or -errno. */
static int pin_cpu(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/*
 * The process closes its fd, exits, or is SIGKILLed while deferred NOPs
 * (both kinds) are completing into its full CQ, so that a completion is
 * being parked from interrupt context on one CPU while the context is
 * released on the other. Over and over; in the end /proc/qd is back to zero.
 *
 * The old qd_cq_post() woke the CQ's waiters after dropping cq->lock: a
 * release running meanwhile could discard the parked op, drop the last
 * reference and free the context under the poster's feet. That needs the
 * completion being parked to be the context's last op, and the release to
 * run right then. So in three of four rounds the process fills its CQ, arms
 * 64 more NOPs (1-2 ms) on CPU 0, watches the CQ's overflow count from CPU 1
 * and drops its last reference the moment the 64th is parked. Only KASAN
 * sees the use-after-free (`make check-debug`). In every fourth round some
 * NOPs take 0.5-1 s, and the context must outlive its process.
 */
TEST_F_TIMEOUT(irq, close_exit_or_kill_with_deferred_nops_pending, 600)
{
	unsigned long long seed = (unsigned long long)qd_now_ns() | 1;
	const unsigned int iters = 64, parked = 64;
	unsigned int i, alive = 0, long_rounds = 0;
	struct qd_proc base, now;

	/* the fixture's context does not take part */
	qd_raw_exit(&self->r);
	ASSERT_EQ(0, quiet(&base));
	TH_LOG("seed %llu", seed);

	for (i = 0; i < iters; i++) {
		unsigned int mode = i % 3;	/* close, exit, kill */
		int outlive = i % 4 == 3;
		long long wait_ns = (long long)(xorshift(&seed) % 3000) * 1000;
		int ready[2], st;
		pid_t pid;
		char c;

		long_rounds += outlive;
		ASSERT_EQ(0, pipe(ready));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			struct qd_raw r;
			char *m = qd_raw_pages(REGION_PAGES * self->pg);
			unsigned int n = 0, h, t, rounds = 0;
			unsigned int total = outlive ? 512 : 256 + parked;
			long long end;

			close(ready[0]);
			CHILD_CHECK(m);
			CHILD_CHECK(pin_cpu(0) == 0);
			CHILD_CHECK(qd_raw_init(&r, 256, 256) == 0);
			CHILD_CHECK(qd_raw_register(r.fd, m, REGION_PAGES * self->pg, NULL) == 0);
			/* 256 fill the CQ, the rest is parked (max_inflight: 512) */
			while (n < total && rounds++ < 100) {
				for (; n < total; n++) {
					__u32 f = xorshift(&seed) & 1 ? QD_NOP_HARDIRQ
								      : QD_NOP_SOFTIRQ;
					__u64 d;

					if (n < 256)
						d = outlive ? xorshift(&seed) % 3000 * 1000 : 0;
					else if (!outlive)
						d = (1000 + xorshift(&seed) % 1000) * 1000;
					else if (n % 64)
						d = xorshift(&seed) % 3000 * 1000;
					else
						d = (500 + xorshift(&seed) % 500) * QD_RAW_MS;
					if (qd_raw_queue_sqe(&r, &(struct qd_sqe){
						.opcode = QD_OP_NOP, .user_data = n,
						.nop_flags = f, .delay_ns = d }))
						break;
				}
				CHILD_CHECK(qd_raw_submit(&r) >= 0);
			}
			CHILD_CHECK(n == total);
			/* whatever completed so far completed fine */
			t = qd_load_acquire(r.cq_tail);
			for (h = *r.cq_head; h != t; h++)
				CHILD_CHECK(r.cqes[h & r.cq_mask].res == 0);
			CHILD_CHECK(write(ready[1], "r", 1) == 1);
			if (outlive) {
				if (mode == 2)
					for (;;)
						pause();	/* the parent kills */
				spin_ns(wait_ns);
				if (mode == 0)
					qd_raw_exit(&r);
				_exit(0);
			}
			/* only the CQ mapping holds the context now */
			munmap(r.sq_ring, r.sq_len);
			close(r.fd);
			CHILD_CHECK(pin_cpu(1) == 0);
			end = qd_now_ns() + 20000 * QD_RAW_MS;
			while (qd_load_acquire(r.cq_overflow) < parked)
				CHILD_CHECK(qd_now_ns() < end);
			/* the last NOP's poster has just dropped cq->lock */
			if (mode == 0)
				munmap(r.cq_ring, r.cq_len);
			else if (mode == 2)
				kill(getpid(), SIGKILL);
			_exit(0);
		}
		close(ready[1]);
		EXPECT_EQ(1, read(ready[0], &c, 1)) TH_LOG("iteration %u: child failed", i);
		close(ready[0]);
		if (outlive && mode == 2) {
			spin_ns(wait_ns);
			kill(pid, SIGKILL);
		}
		st = qd_wait_child(pid);
		EXPECT_EQ(mode == 2 ? 128 + SIGKILL : 0, st) TH_LOG("iteration %u", i);
		/* the context outlived its process: NOPs were still pending */
		if (outlive && !qd_proc_read(&now) && now.contexts > base.contexts)
			alive++;
		if (!_metadata->passed)
			break;
	}
	TH_LOG("%u of %u contexts with 0.5-1 s NOPs outlived their process",
	       alive, long_rounds);
	EXPECT_LT(0u, alive);
	EXPECT_SETTLED(&base);
}

/* --- selftests/run's rmmod test ----------------------------------------- */

/*
 * Leave a deferred NOP of ms milliseconds behind a closed fd (no mapping,
 * no fd: this process holds nothing of qd), then check at once that the
 * module has users and cannot be removed. Exit 0 if so, 1 if not (the
 * module was unloaded with a timer armed: its expiry runs unloaded code),
 * 2 if the NOP could not be left.
 */
static int leave_pending_nop(long ms)
{
	struct qd_raw r;
	long long refcnt;
	int ret, err;

	if (ms <= 0 || (unsigned long long)ms * QD_RAW_MS > QD_NOP_MAX_DELAY_NS) {
		fprintf(stderr, "irq: --leave-pending-nop takes 1..%llu (ms)\n",
			QD_NOP_MAX_DELAY_NS / QD_RAW_MS);
		return 2;
	}
	ret = qd_raw_init(&r, 4, 8);
	if (ret) {
		printf("cannot set up a context: %s\n", strerror(-ret));
		return 2;
	}
	ret = submit_one(&r, nop_irq(1, QD_NOP_SOFTIRQ, (__u64)ms * QD_RAW_MS));
	if (ret != 1) {
		printf("deferred NOP not submitted: %s\n", ret < 0 ? strerror(-ret) : "0 consumed");
		return 2;
	}
	if (qd_raw_cq_ready(&r)) {
		printf("deferred NOP completed at once with res %lld\n",
		       (long long)r.cqes[*r.cq_head & r.cq_mask].res);
		return 2;
	}
	qd_raw_exit(&r);

	refcnt = qd_read_ll("/sys/module/qd/refcnt");
	ret = (int)syscall(SYS_delete_module, "qd", O_NONBLOCK);
	err = errno;
	printf("fd closed with a %ld ms deferred NOP pending: refcnt %lld, delete_module(qd): %s\n",
	       ms, refcnt, ret ? strerror(err) : "unloaded");
	if (!ret)
		return 1;
	return refcnt > 0 && (err == EWOULDBLOCK || err == EBUSY) ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--leave-pending-nop"))
		return leave_pending_nop(strtol(argv[2], NULL, 10));
	return test_harness_run(argc, argv);
}
