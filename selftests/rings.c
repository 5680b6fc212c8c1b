// SPDX-License-Identifier: GPL-2.0
/*
 * rings: several rings per context (QD_IOC_RING, qd_enter.ring, the
 * QD_OFF_RING_SQ/CQ(n) mappings) and the enter wait modes.
 *
 * An op completes on the ring whose SQ it came from; queues and regions are
 * shared by every ring; each ring has its own overflow list and sleepers;
 * QD_ENTER_CQ_TAIL sleeps until the ring's CQ tail differs from wait_seq,
 * QD_ENTER_CTX_SEQ until the context-wide ctx_seq (ring 0's CQ mapping,
 * one per CQE posted on any ring) does; poll on the context fd sees every
 * ring. Threads on their own rings lose and duplicate nothing.
 *
 * Tests that need a thread asleep wait until /proc says it is (state S in
 * that system call), as poll.c does, never a fixed time.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "harness.h"

#define REGION_BYTES	(1024 * 1024)
#define SHORT_NS	(30 * QD_RAW_MS)	/* "stays pending / asleep" */
#define LONG_NS		(3000 * QD_RAW_MS)	/* "must complete" bound */
#define SLEEP_MS	5000			/* a sleeper's own timeout */
#define PROMPT_NS	(2500 * QD_RAW_MS)	/* woken "at once", with margin */
#define ALL_WAITS	(QD_ENTER_GETEVENTS | QD_ENTER_CQ_TAIL | QD_ENTER_CTX_SEQ)

/* --- helpers -------------------------------------------------------------- */

/* Queue one SQE on r and submit it (1), or -errno. */
static int submit1(struct qd_raw *r, struct qd_sqe s)
{
	int ret = qd_raw_queue_sqe(r, &s);

	return ret ? ret : qd_raw_submit(r);
}

/* Submit n NOPs (user_data first..) on r, all consumed: 0 or -errno. */
static int submit_nops(struct qd_raw *r, unsigned int first, unsigned int n)
{
	unsigned int done = 0;

	while (done < n) {
		unsigned int b = 0;
		int ret;

		while (done + b < n) {
			struct qd_sqe s = qd_sqe_nop(first + done + b);

			if (qd_raw_queue_sqe(r, &s))
				break;
			b++;
		}
		ret = qd_raw_submit(r);
		if (ret < 0)
			return ret;
		if (ret != (int)b)
			return -EAGAIN;
		done += b;
	}
	return 0;
}

/* A thread asleep in QD_IOC_ENTER, poll or epoll_wait. */
enum sleep_kind { SLEEP_ENTER, SLEEP_POLL, SLEEP_EPOLL };

struct sleeper {
	enum sleep_kind kind;
	int fd;			/* the context's fd, or the epoll fd */
	struct qd_enter e;	/* SLEEP_ENTER */
	pthread_t thread;
	pid_t tid;
	int done;
	long ret;		/* the system call's result, or -errno */
	unsigned int events;
	long long ns;
};

static void *sleeper_fn(void *arg)
{
	struct sleeper *s = arg;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN | POLLRDNORM };
	struct epoll_event ev = { 0 };
	long long t0;

	__atomic_store_n(&s->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	t0 = qd_now_ns();
	switch (s->kind) {
	case SLEEP_ENTER:
		s->ret = syscall(SYS_ioctl, s->fd, QD_IOC_ENTER, &s->e);
		break;
	case SLEEP_POLL:
		s->ret = syscall(SYS_poll, &pfd, 1, SLEEP_MS);
		s->events = pfd.revents;
		break;
	case SLEEP_EPOLL:
		s->ret = syscall(SYS_epoll_wait, s->fd, &ev, 1, SLEEP_MS);
		s->events = ev.events;
		break;
	}
	if (s->ret < 0)
		s->ret = -errno;
	s->ns = qd_now_ns() - t0;
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static long sleep_nr(enum sleep_kind k)
{
	return k == SLEEP_ENTER ? SYS_ioctl : k == SLEEP_POLL ? SYS_poll : SYS_epoll_wait;
}

/* Start s; 1 once asleep in its system call, 0 if it already returned. */
static int sleeper_start(struct sleeper *s)
{
	long long end;

	s->done = 0;
	s->tid = 0;
	if (pthread_create(&s->thread, NULL, sleeper_fn, s))
		return -EAGAIN;
	end = qd_now_ns() + 10000 * QD_RAW_MS;
	while (qd_now_ns() < end) {
		pid_t tid = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);

		if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
			return 0;
		if (tid && qd_task_asleep_in(tid, sleep_nr(s->kind)))
			return 1;
		sched_yield();
	}
	return -ETIMEDOUT;
}

/* Still asleep after SHORT_NS? (1: yes) */
static int sleeper_stays(struct sleeper *s)
{
	qd_sleep_ms(SHORT_NS / QD_RAW_MS);
	return !__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) &&
	       qd_task_asleep_in(s->tid, sleep_nr(s->kind));
}

static void sleeper_join(struct sleeper *s)
{
	pthread_join(s->thread, NULL);
}

/* An ENTER sleeper on ring `ring` of fd with a sequence wait. */
static void enter_sleeper(struct sleeper *s, int fd, unsigned int ring,
			  unsigned int flags, unsigned int seq, unsigned int min)
{
	memset(s, 0, sizeof(*s));
	s->kind = SLEEP_ENTER;
	s->fd = fd;
	s->e.ring = ring;
	s->e.flags = flags | QD_ENTER_TIMEOUT;
	s->e.wait_seq = seq;
	s->e.min_complete = min;
	s->e.timeout_ns = SLEEP_MS * QD_RAW_MS;
}

static int poll_now(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDNORM };
	int ret = poll(&pfd, 1, 0);

	if (ret < 0)
		return -errno;
	return ret ? pfd.revents : 0;
}

/* --- fixture: ring 0 (8/16), a region, a queue ---------------------------- */

FIXTURE(rings) {
	struct qd_raw r;
	char *buf;
	unsigned int region;
	int qd;
};

FIXTURE_SETUP(rings)
{
	ASSERT_EQ(0, qd_raw_init(&self->r, 8, 16));
	self->buf = qd_raw_pages(REGION_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, REGION_BYTES, &self->region));
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &self->qd));
}

FIXTURE_TEARDOWN(rings)
{
	qd_raw_exit(&self->r);
	if (self->buf)
		munmap(self->buf, REGION_BYTES);
}

/* A second ring of the fixture's context; asserts it was made. */
#define RING(x, sq, cq) do {						\
	ASSERT_EQ(0, qd_raw_ring_create(&self->r, (x), (sq), (cq)));	\
} while (0)

/* --- creation and mapping ------------------------------------------------- */

TEST_F(rings, setup_reports_ring_features_and_ring_0)
{
	const __u32 feats = QD_FEAT_RINGS | QD_FEAT_SKIP_SUCCESS | QD_FEAT_MULTISHOT;

	EXPECT_EQ(feats, self->r.p.features & feats) TH_LOG("features %#x", self->r.p.features);
	EXPECT_EQ(0u, self->r.p.ring);
	/* ctx_seq lies inside ring 0's CQ mapping, clear of the other fields */
	EXPECT_GE(self->r.p.cq_ring_bytes, self->r.p.cq_off.ctx_seq + 4);
	EXPECT_NE(self->r.p.cq_off.ctx_seq, self->r.p.cq_off.tail);
	EXPECT_NE(self->r.p.cq_off.ctx_seq, self->r.p.cq_off.head);
	EXPECT_EQ(0u, *self->r.ctx_seq);
}

TEST_F(rings, ring_before_setup_is_enxio)
{
	struct qd_params p = { .sq_entries = 4 };
	int fd = qd_raw_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENXIO, qd_raw_ring_ioctl(fd, &p));
	close(fd);
}

TEST_F(rings, new_ring_has_its_own_id_sizes_and_offsets)
{
	struct qd_raw a, b;

	RING(&a, 4, 0);
	RING(&b, 2, 64);
	EXPECT_NE(0u, a.ring);
	EXPECT_NE(0u, b.ring);
	EXPECT_NE(a.ring, b.ring);
	EXPECT_GT((unsigned int)QD_MAX_RINGS, a.ring);
	EXPECT_GT((unsigned int)QD_MAX_RINGS, b.ring);
	EXPECT_EQ(4u, a.sq_entries);
	EXPECT_EQ(8u, a.cq_entries);	/* 0: twice the SQ */
	EXPECT_EQ(8u, a.p.cq_entries);
	EXPECT_EQ(2u, b.sq_entries);
	EXPECT_EQ(64u, b.cq_entries);
	EXPECT_EQ(3u, a.sq_mask);
	EXPECT_EQ(63u, b.cq_mask);
	EXPECT_EQ(0u, *a.sq_head);
	EXPECT_EQ(0u, *a.sq_tail);
	EXPECT_EQ(0u, *a.cq_head);
	EXPECT_EQ(0u, *a.cq_tail);
	EXPECT_EQ(0u, *a.cq_flags);
	/* the same features and limits as ring 0's setup */
	EXPECT_EQ(self->r.p.features, a.p.features);
	EXPECT_EQ(self->r.p.max_queued, a.p.max_queued);
	qd_raw_exit(&a);
	qd_raw_exit(&b);
}

TEST_F(rings, ring_sizes_follow_setup_rules)
{
	static const struct { __u32 sq, cq; } bad[] = {
		{ 0, 0 }, { 3, 0 }, { 5, 16 }, { QD_MAX_SQ_ENTRIES * 2, 0 },
		{ 8, 4 }, { 8, 24 }, { 8, QD_MAX_CQ_ENTRIES * 2 }, { 0xffffffffu, 0 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct qd_params p = { .sq_entries = bad[i].sq, .cq_entries = bad[i].cq };

		EXPECT_EQ(-EINVAL, qd_raw_ring_ioctl(self->r.fd, &p))
			TH_LOG("sq %u cq %u", bad[i].sq, bad[i].cq);
	}
	{
		/* QD_SETUP_SQPOLL is QD_IOC_SETUP's only */
		struct qd_params p = { .sq_entries = 4, .flags = 1 };

		EXPECT_EQ(-EINVAL, qd_raw_ring_ioctl(self->r.fd, &p));
		p.flags = 0;
		p.sq_idle_ms = 1;
		EXPECT_EQ(-EINVAL, qd_raw_ring_ioctl(self->r.fd, &p));
	}
	for (i = 0; i < sizeof(((struct qd_params *)0)->resv) / sizeof(__u32); i++) {
		struct qd_params p = { .sq_entries = 4 };

		p.resv[i] = 1;
		EXPECT_EQ(-EINVAL, qd_raw_ring_ioctl(self->r.fd, &p)) TH_LOG("resv[%u]", i);
	}
	{
		/* the largest sizes are allowed */
		struct qd_raw big;

		RING(&big, QD_MAX_SQ_ENTRIES, QD_MAX_CQ_ENTRIES);
		EXPECT_EQ((unsigned int)QD_MAX_CQ_ENTRIES, big.cq_entries);
		qd_raw_exit(&big);
	}
}

TEST_F(rings, ring_257_is_enospc)
{
	unsigned char used[QD_MAX_RINGS] = { 1 };
	struct qd_raw last = { .fd = self->r.fd, .fd_borrowed = 1 };
	struct qd_sqe s = qd_sqe_nop(255);
	struct qd_cqe cqe;
	unsigned int i;

	for (i = 1; i < QD_MAX_RINGS; i++) {
		struct qd_params p = { .sq_entries = 1 };

		ASSERT_EQ(0, qd_raw_ring_ioctl(self->r.fd, &p)) TH_LOG("ring #%u", i + 1);
		ASSERT_GT((unsigned int)QD_MAX_RINGS, p.ring);
		ASSERT_EQ(0, used[p.ring]) TH_LOG("ring id %u twice", p.ring);
		used[p.ring] = 1;
		if (p.ring == QD_MAX_RINGS - 1)
			last.p = p;
	}
	for (i = 0; i < 3; i++) {
		struct qd_params p = { .sq_entries = 1 };

		EXPECT_EQ(-ENOSPC, qd_raw_ring_ioctl(self->r.fd, &p));
	}
	/* 256 distinct ids in 0..255: the last one is there and works */
	last.ring = QD_MAX_RINGS - 1;
	ASSERT_EQ(0, qd_raw_map_at(&last, QD_OFF_RING_SQ(last.ring), QD_OFF_RING_CQ(last.ring)));
	EXPECT_EQ(1u, last.sq_entries);
	EXPECT_EQ(2u, last.cq_entries);
	ASSERT_EQ(0, qd_raw_do(&last, &s, &cqe, NULL));
	EXPECT_EQ(255u, cqe.user_data);
	EXPECT_EQ(0, cqe.res);
	qd_raw_exit(&last);
}

TEST_F(rings, mmap_of_a_ring_that_does_not_exist_is_einval)
{
	size_t pg = qd_page_size();
	struct qd_raw a;
	void *m;

	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, pg, QD_OFF_RING_SQ(1), &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, pg, QD_OFF_RING_CQ(1), &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, pg, QD_OFF_RING_SQ(QD_MAX_RINGS), &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, pg, QD_OFF_RING_SQ(QD_MAX_RINGS - 1), &m));
	RING(&a, 4, 8);
	/* inside the stride but past the ring: also -EINVAL */
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, pg, QD_OFF_RING_SQ(a.ring) + 64 * pg, &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, a.sq_len + 64 * pg,
				       QD_OFF_RING_SQ(a.ring), &m));
	/* the next id still does not exist */
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, pg, QD_OFF_RING_SQ(a.ring + 1), &m));
	qd_raw_exit(&a);
}

TEST_F(rings, ring_0_is_also_mapped_at_ring_offsets)
{
	struct qd_raw z = { .fd = self->r.fd, .fd_borrowed = 1, .ring = 0 };
	struct qd_sqe s = qd_sqe_nop(41);
	struct qd_cqe cqe;

	z.p = self->r.p;
	ASSERT_EQ(0, qd_raw_map_at(&z, QD_OFF_RING_SQ(0), QD_OFF_RING_CQ(0)));
	/* the same pages: an SQE queued through one mapping, seen in the other */
	ASSERT_EQ(1, submit1(&z, s));
	EXPECT_EQ(1u, *self->r.sq_tail);
	EXPECT_EQ(1u, *self->r.sq_head);
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, LONG_NS));
	EXPECT_EQ(41u, cqe.user_data);
	EXPECT_EQ(1u, *z.cq_head);
	EXPECT_EQ(1u, *z.ctx_seq);
	qd_raw_exit(&z);
}

/* --- enter arguments ------------------------------------------------------ */

TEST_F(rings, enter_ring_out_of_range_is_einval)
{
	static const __u32 ids[] = { 1, 2, QD_MAX_RINGS - 1, QD_MAX_RINGS, 0x10000, 0xffffffffu };
	struct qd_sqe s = qd_sqe_nop(1);
	struct qd_enter e = { 0 };
	unsigned int i;
	struct qd_raw a;

	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		e.to_submit = 1;
		e.ring = ids[i];
		EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e)) TH_LOG("ring %u", ids[i]);
	}
	/* nothing consumed from ring 0 by those */
	EXPECT_EQ(0u, *self->r.sq_head);
	/* once made, ring 1.. works; the id after it still does not */
	RING(&a, 2, 4);
	e.ring = a.ring;
	EXPECT_EQ(0, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e));
	e.ring = QD_MAX_RINGS;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e));
	qd_raw_exit(&a);
}

TEST_F(rings, enter_with_nonzero_resv_is_einval)
{
	struct qd_raw a;
	struct qd_enter e = { 0 };

	RING(&a, 2, 4);
	e.ring = a.ring;
	e.resv1 = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e));
	e.resv1 = 0;
	e.resv = 1ULL << 40;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e));
	e.resv = 0;
	EXPECT_EQ(0, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e));
	qd_raw_exit(&a);
}

TEST_F(rings, two_wait_flags_are_einval_and_consume_nothing)
{
	static const __u32 bad[] = {
		QD_ENTER_GETEVENTS | QD_ENTER_CQ_TAIL,
		QD_ENTER_GETEVENTS | QD_ENTER_CTX_SEQ,
		QD_ENTER_CQ_TAIL | QD_ENTER_CTX_SEQ,
		ALL_WAITS, ALL_WAITS | QD_ENTER_TIMEOUT,
	};
	struct qd_sqe s = qd_sqe_nop(1);
	unsigned int i;

	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* wait_seq = 1: each wait alone would return at once */
		struct qd_enter e = {
			.to_submit = 1, .min_complete = 0, .flags = bad[i],
			.wait_seq = 1, .timeout_ns = 0,
		};

		EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e)) TH_LOG("flags %#x", bad[i]);
	}
	EXPECT_EQ(0u, *self->r.sq_head);
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
}

TEST_F(rings, enter_submits_only_from_its_ring)
{
	struct qd_raw a;
	struct qd_cqe cqe;
	unsigned int i;

	RING(&a, 4, 8);
	/* one NOP submitted on ring 0, two more written; three written in a's */
	ASSERT_EQ(1, submit1(&self->r, qd_sqe_nop(0)));
	for (i = 1; i < 3; i++) {
		struct qd_sqe s = qd_sqe_nop(i);

		ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	}
	for (i = 0; i < 3; i++) {
		struct qd_sqe s = qd_sqe_nop(100 + i);

		ASSERT_EQ(0, qd_raw_queue_sqe(&a, &s));
	}
	/* entering a with to_submit 5 takes a's three, none of ring 0's */
	EXPECT_EQ(3, qd_raw_enter(&a, 5, 0, 0, 0));
	EXPECT_EQ(3u, *a.sq_head);
	EXPECT_EQ(1u, *self->r.sq_head);
	EXPECT_EQ(3u, qd_raw_cq_ready(&a));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, LONG_NS));
	EXPECT_EQ(0u, cqe.user_data);
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
	/* and ring 0's own enter takes its two */
	EXPECT_EQ(2, qd_raw_submit(&self->r));
	EXPECT_EQ(3u, *a.sq_head);
	qd_raw_exit(&a);
}

/* --- completions land on their ring -------------------------------------- */

TEST_F(rings, op_completes_on_the_ring_it_was_submitted_from)
{
	struct qd_raw a, b;
	struct qd_cqe cqe;

	RING(&a, 4, 8);
	RING(&b, 4, 8);
	ASSERT_EQ(1, submit1(&a, qd_sqe_nop(10)));
	ASSERT_EQ(0, qd_raw_wait_cqe(&a, &cqe, NULL, LONG_NS));
	EXPECT_EQ(10u, cqe.user_data);
	EXPECT_EQ(QD_OP_NOP, cqe.opcode);
	EXPECT_EQ(0, cqe.res);
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
	EXPECT_EQ(0u, qd_raw_cq_ready(&b));

	ASSERT_EQ(1, submit1(&self->r, qd_sqe_nop(20)));
	ASSERT_EQ(1, submit1(&b, qd_sqe_nop(30)));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, LONG_NS));
	EXPECT_EQ(20u, cqe.user_data);
	ASSERT_EQ(0, qd_raw_wait_cqe(&b, &cqe, NULL, LONG_NS));
	EXPECT_EQ(30u, cqe.user_data);
	EXPECT_EQ(0u, qd_raw_cq_ready(&a));
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
	EXPECT_EQ(0u, qd_raw_cq_ready(&b));
	qd_raw_exit(&a);
	qd_raw_exit(&b);
}

TEST_F(rings, queue_is_shared_pop_on_one_ring_push_on_another)
{
	struct qd_seg seg = qd_seg(self->region, 8192 + 5, 777);
	struct qd_raw a;
	struct qd_cqe cqe;
	struct qd_elem el;

	RING(&a, 4, 8);
	ASSERT_EQ(1, submit1(&a, qd_sqe_pop(self->qd, 1)));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&a, &cqe, NULL, SHORT_NS));
	ASSERT_EQ(1, submit1(&self->r, qd_sqe_push(self->qd, &seg, 1, 2)));
	/* the push's CQE on ring 0, the pop's (with the element) on a */
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, LONG_NS));
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(777, cqe.res);
	ASSERT_EQ(0, qd_raw_wait_cqe(&a, &cqe, &el, LONG_NS));
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(QD_OP_POP, cqe.opcode);
	EXPECT_EQ(self->qd, cqe.qd);
	EXPECT_EQ(777, cqe.res);
	EXPECT_EQ(QD_CQE_F_ELEM, cqe.flags);
	ASSERT_EQ(1, cqe.nsegs);
	EXPECT_TRUE(qd_seg_eq(&seg, &el.segs[0]));
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
	EXPECT_EQ(0u, qd_raw_cq_ready(&a));
	qd_raw_exit(&a);
}

TEST_F(rings, close_cancels_pending_pops_on_every_ring)
{
	struct qd_raw a, b;
	struct qd_cqe cqe;

	RING(&a, 2, 4);
	RING(&b, 2, 4);
	ASSERT_EQ(1, submit1(&a, qd_sqe_pop(self->qd, 1)));
	ASSERT_EQ(1, submit1(&b, qd_sqe_pop(self->qd, 2)));
	ASSERT_EQ(1, submit1(&self->r, qd_sqe_pop(self->qd, 3)));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->qd));
	ASSERT_EQ(0, qd_raw_wait_cqe(&a, &cqe, NULL, LONG_NS));
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	ASSERT_EQ(0, qd_raw_wait_cqe(&b, &cqe, NULL, LONG_NS));
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, LONG_NS));
	EXPECT_EQ(3u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	qd_raw_exit(&a);
	qd_raw_exit(&b);
}

TEST_F(rings, each_ring_has_its_own_overflow_list)
{
	struct qd_raw a;
	struct qd_cqe cqe;
	unsigned int i;

	RING(&a, 2, 2);
	/* 7 NOPs on a: 2 in its CQ, 5 parked in a's list only */
	for (i = 0; i < 7; i++) {
		ASSERT_EQ(1, submit1(&a, qd_sqe_nop(i)));
	}
	EXPECT_EQ(2u, qd_raw_cq_ready(&a));
	EXPECT_EQ(QD_CQ_F_OVERFLOW, qd_load_acquire(a.cq_flags) & QD_CQ_F_OVERFLOW);
	EXPECT_LE(5u, qd_load_acquire(a.cq_overflow));
	EXPECT_EQ(0u, qd_load_acquire(self->r.cq_flags) & QD_CQ_F_OVERFLOW);
	/* ring 0 is unaffected: its completions go straight into its ring */
	ASSERT_EQ(1, submit1(&self->r, qd_sqe_nop(100)));
	EXPECT_EQ(1u, qd_raw_cq_ready(&self->r));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, LONG_NS));
	EXPECT_EQ(100u, cqe.user_data);
	/* entering ring 0 moves nothing of a's */
	EXPECT_EQ(0, qd_raw_enter(&self->r, 0, 0, 0, 0));
	EXPECT_EQ(2u, qd_raw_cq_ready(&a));
	/* a's completions come back in order, all of them */
	for (i = 0; i < 7; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(&a, &cqe, NULL, LONG_NS)) TH_LOG("CQE %u", i);
		EXPECT_EQ(i, cqe.user_data);
	}
	EXPECT_EQ(0, qd_raw_enter(&a, 0, 0, 0, 0));
	EXPECT_EQ(0u, qd_load_acquire(a.cq_flags) & QD_CQ_F_OVERFLOW);
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&a, &cqe, NULL, SHORT_NS));
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
	qd_raw_exit(&a);
}

/* --- CQ_TAIL and CTX_SEQ -------------------------------------------------- */

TEST_F(rings, cq_tail_wait_returns_at_once_when_tail_moved)
{
	struct qd_raw *r = &self->r;
	unsigned int t = *r->cq_tail;
	struct qd_cqe cqe;

	/* nothing completes: the wait times out */
	EXPECT_EQ(-ETIMEDOUT, qd_raw_enter_seq(r, 0, QD_ENTER_CQ_TAIL, t, SHORT_NS));
	ASSERT_EQ(1, submit1(r, qd_sqe_nop(1)));
	/* the tail moved past t: at once, even with the CQE already reaped */
	ASSERT_EQ(0, qd_raw_wait_cqe(r, &cqe, NULL, LONG_NS));
	EXPECT_EQ(0u, qd_raw_cq_ready(r));
	EXPECT_EQ(0, qd_raw_enter_seq(r, 0, QD_ENTER_CQ_TAIL, t, 0));
	EXPECT_EQ(0, qd_raw_enter_seq(r, 0, QD_ENTER_CQ_TAIL, t, -1));
	/* and with the current tail, it waits again */
	EXPECT_EQ(-ETIMEDOUT, qd_raw_enter_seq(r, 0, QD_ENTER_CQ_TAIL, *r->cq_tail, SHORT_NS));
}

TEST_F(rings, cq_tail_wait_submits_then_waits_for_its_own_completion)
{
	struct qd_raw *r = &self->r;
	unsigned int t = *r->cq_tail;
	struct qd_sqe s = qd_sqe_nop(5);

	ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	EXPECT_EQ(1, qd_raw_enter_seq(r, 1, QD_ENTER_CQ_TAIL, t, LONG_NS));
	EXPECT_EQ(t + 1, qd_load_acquire(r->cq_tail));
}

/*
 * Thread B sleeps on ring a (which thread A submitted to), CQ_TAIL: a
 * completion on ring 0 does not wake it, one on ring a does.
 */
TEST_F(rings, cq_tail_sleeper_on_another_threads_ring_wakes_only_for_it)
{
	struct qd_seg seg = qd_seg(self->region, 0, 100);
	struct qd_raw a;
	struct sleeper s;
	struct qd_cqe cqe;
	struct qd_elem el;

	RING(&a, 4, 8);
	ASSERT_EQ(1, submit1(&a, qd_sqe_pop(self->qd, 7)));
	enter_sleeper(&s, self->r.fd, a.ring, QD_ENTER_CQ_TAIL, *a.cq_tail, 0);
	ASSERT_EQ(1, sleeper_start(&s));
	/* completions on ring 0 */
	ASSERT_EQ(0, submit_nops(&self->r, 0, 3));
	EXPECT_TRUE(sleeper_stays(&s));
	/* the push (ring 0) completes a's pop: the sleeper wakes */
	ASSERT_EQ(1, submit1(&self->r, qd_sqe_push(self->qd, &seg, 1, 8)));
	sleeper_join(&s);
	EXPECT_EQ(0, s.ret);
	EXPECT_GT(PROMPT_NS, s.ns);
	ASSERT_EQ(0, qd_raw_wait_cqe(&a, &cqe, &el, LONG_NS));
	EXPECT_EQ(7u, cqe.user_data);
	EXPECT_EQ(100, cqe.res);
	EXPECT_TRUE(qd_seg_eq(&seg, &el.segs[0]));
	qd_raw_exit(&a);
}

TEST_F(rings, getevents_sleeper_on_a_ring_wakes_only_for_its_cqes)
{
	struct qd_raw a;
	struct sleeper s;

	RING(&a, 4, 8);
	enter_sleeper(&s, self->r.fd, a.ring, QD_ENTER_GETEVENTS, 0, 2);
	ASSERT_EQ(1, sleeper_start(&s));
	ASSERT_EQ(0, submit_nops(&self->r, 0, 4));
	EXPECT_TRUE(sleeper_stays(&s));
	ASSERT_EQ(0, submit_nops(&a, 0, 1));
	EXPECT_TRUE(sleeper_stays(&s));	/* min_complete 2 */
	ASSERT_EQ(0, submit_nops(&a, 1, 1));
	sleeper_join(&s);
	EXPECT_EQ(0, s.ret);
	EXPECT_GT(PROMPT_NS, s.ns);
	EXPECT_EQ(2u, qd_raw_cq_ready(&a));
	qd_raw_exit(&a);
}

TEST_F(rings, ctx_seq_counts_cqes_posted_on_every_ring)
{
	struct qd_raw a, b;
	unsigned int s0;

	RING(&a, 4, 8);
	RING(&b, 4, 8);
	s0 = qd_load_acquire(self->r.ctx_seq);
	ASSERT_EQ(0, submit_nops(&self->r, 0, 1));
	EXPECT_EQ(s0 + 1, qd_load_acquire(self->r.ctx_seq));
	ASSERT_EQ(0, submit_nops(&a, 0, 3));
	EXPECT_EQ(s0 + 4, qd_load_acquire(self->r.ctx_seq));
	ASSERT_EQ(0, submit_nops(&b, 0, 2));
	EXPECT_EQ(s0 + 6, qd_load_acquire(self->r.ctx_seq));
	/* reaping does not change it */
	while (qd_raw_cq_ready(&a)) {
		struct qd_cqe c;

		qd_raw_peek_cqe(&a, &c, NULL);
	}
	EXPECT_EQ(s0 + 6, qd_load_acquire(self->r.ctx_seq));
	EXPECT_EQ(1u, qd_raw_cq_ready(&self->r));
	EXPECT_EQ(2u, qd_raw_cq_ready(&b));
	qd_raw_exit(&a);
	qd_raw_exit(&b);
}

TEST_F(rings, ctx_seq_wait_returns_at_once_when_it_moved)
{
	struct qd_raw a;
	unsigned int s0;

	RING(&a, 4, 8);
	s0 = qd_load_acquire(self->r.ctx_seq);
	EXPECT_EQ(-ETIMEDOUT, qd_raw_enter_seq(&a, 0, QD_ENTER_CTX_SEQ, s0, SHORT_NS));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_enter_seq(&self->r, 0, QD_ENTER_CTX_SEQ, s0, SHORT_NS));
	ASSERT_EQ(0, submit_nops(&a, 0, 1));
	EXPECT_EQ(0, qd_raw_enter_seq(&self->r, 0, QD_ENTER_CTX_SEQ, s0, LONG_NS));
	EXPECT_EQ(0, qd_raw_enter_seq(&a, 0, QD_ENTER_CTX_SEQ, s0, 0));
	qd_raw_exit(&a);
}

TEST_F(rings, ctx_seq_sleeper_wakes_for_a_completion_on_any_ring)
{
	struct qd_raw a, b;
	struct sleeper s;
	int i;

	RING(&a, 4, 8);
	RING(&b, 4, 8);
	for (i = 0; i < 3; i++) {
		/* the sleeper enters on ring 0, then a, then b; completes on b, a, 0 */
		struct qd_raw *on = i == 0 ? &self->r : i == 1 ? &a : &b;
		struct qd_raw *by = i == 0 ? &b : i == 1 ? &a : &self->r;

		enter_sleeper(&s, self->r.fd, on->ring, QD_ENTER_CTX_SEQ,
			      qd_load_acquire(self->r.ctx_seq), 0);
		ASSERT_EQ(1, sleeper_start(&s)) TH_LOG("round %d", i);
		EXPECT_TRUE(sleeper_stays(&s));
		ASSERT_EQ(0, submit_nops(by, 100 + i, 1));
		sleeper_join(&s);
		EXPECT_EQ(0, s.ret) TH_LOG("round %d", i);
		EXPECT_GT(PROMPT_NS, s.ns) TH_LOG("round %d", i);
	}
	qd_raw_exit(&a);
	qd_raw_exit(&b);
}

TEST_F(rings, several_threads_sleep_on_one_ring_all_wake)
{
	enum { N = 4 };
	struct sleeper s[N];
	struct qd_raw a;
	int i;

	RING(&a, 4, 8);
	for (i = 0; i < N; i++) {
		enter_sleeper(&s[i], self->r.fd, a.ring,
			      i % 2 ? QD_ENTER_CQ_TAIL : QD_ENTER_GETEVENTS,
			      qd_load_acquire(a.cq_tail), 1);
		ASSERT_EQ(1, sleeper_start(&s[i])) TH_LOG("sleeper %d", i);
	}
	ASSERT_EQ(0, submit_nops(&a, 0, 1));
	for (i = 0; i < N; i++) {
		sleeper_join(&s[i]);
		EXPECT_EQ(0, s[i].ret) TH_LOG("sleeper %d", i);
		EXPECT_GT(PROMPT_NS, s[i].ns) TH_LOG("sleeper %d", i);
	}
	qd_raw_exit(&a);
}

/* --- poll and epoll over rings -------------------------------------------- */

TEST_F(rings, poll_is_readable_when_any_ring_has_cqes)
{
	struct qd_raw a, b;
	struct qd_cqe cqe;

	RING(&a, 4, 8);
	RING(&b, 2, 2);
	EXPECT_EQ(0, poll_now(self->r.fd));
	ASSERT_EQ(0, submit_nops(&a, 0, 1));
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_now(self->r.fd));
	ASSERT_EQ(0, qd_raw_wait_cqe(&a, &cqe, NULL, LONG_NS));
	EXPECT_EQ(0, poll_now(self->r.fd));

	/* b: full ring and two parked; reap the ring without entering */
	ASSERT_EQ(0, submit_nops(&b, 0, 4));
	EXPECT_EQ(2u, qd_raw_cq_ready(&b));
	EXPECT_EQ(1, qd_raw_peek_cqe(&b, &cqe, NULL));
	EXPECT_EQ(1, qd_raw_peek_cqe(&b, &cqe, NULL));
	EXPECT_EQ(0u, qd_raw_cq_ready(&b));
	/* only b's overflow list holds something: still readable */
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_now(self->r.fd));
	ASSERT_EQ(0, qd_raw_wait_cqe(&b, &cqe, NULL, LONG_NS));
	EXPECT_EQ(2u, cqe.user_data);
	ASSERT_EQ(0, qd_raw_wait_cqe(&b, &cqe, NULL, LONG_NS));
	EXPECT_EQ(3u, cqe.user_data);
	EXPECT_EQ(0, qd_raw_enter(&b, 0, 0, 0, 0));
	EXPECT_EQ(0, poll_now(self->r.fd));
	qd_raw_exit(&a);
	qd_raw_exit(&b);
}

TEST_F(rings, poll_and_epoll_sleepers_wake_for_a_second_ring)
{
	struct sleeper p, e;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
	struct qd_raw a;
	int ep;

	RING(&a, 4, 8);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->r.fd, &ev));
	memset(&p, 0, sizeof(p));
	memset(&e, 0, sizeof(e));
	p.kind = SLEEP_POLL;
	p.fd = self->r.fd;
	e.kind = SLEEP_EPOLL;
	e.fd = ep;
	ASSERT_EQ(1, sleeper_start(&p));
	ASSERT_EQ(1, sleeper_start(&e));
	ASSERT_EQ(0, submit_nops(&a, 0, 1));
	sleeper_join(&p);
	sleeper_join(&e);
	EXPECT_EQ(1, p.ret);
	EXPECT_TRUE(!!(p.events & POLLIN));
	EXPECT_GT(PROMPT_NS, p.ns);
	EXPECT_EQ(1, e.ret);
	EXPECT_TRUE(!!(e.events & EPOLLIN));
	EXPECT_GT(PROMPT_NS, e.ns);
	close(ep);
	qd_raw_exit(&a);
}

/* --- many threads, each on its own ring ----------------------------------- */

#define MT_THREADS	8
#define MT_ELEMS	1500	/* per thread */
#define MT_BATCH	6

struct mt {
	struct qd_raw ring;
	int tid;		/* 0..MT_THREADS-1 */
	int qd;
	unsigned int region;
	unsigned char *popped;	/* shared: times each element id was popped */
	unsigned long long push_sum, pop_sum;	/* of element ids */
	unsigned int pushes, pops, errors, foreign;
	char why[160];
};

/* element id k (of thread t): one segment whose offset and length encode it */
static struct qd_seg mt_seg(unsigned int region, unsigned int id)
{
	return qd_seg(region, (__u64)id * 64, 1 + id % 63);
}

static void *mt_thread(void *arg)
{
	struct mt *m = arg;
	struct qd_raw *r = &m->ring;
	unsigned int sent = 0, done_push = 0, done_pop = 0, spins = 0;
	struct qd_seg *segs = calloc(MT_ELEMS, sizeof(*segs));

	if (!segs) {
		m->errors++;
		return NULL;
	}
	while ((done_push < MT_ELEMS || done_pop < MT_ELEMS) && spins++ < 1000000) {
		struct qd_cqe c;
		struct qd_elem e;
		int ret;

		/* a batch: push k, pop k, in turn (pushes never behind pops) */
		while (sent < 2 * MT_ELEMS && qd_raw_sq_pending(r) + 2 <= r->sq_entries &&
		       sent - (done_push + done_pop) < 2 * MT_BATCH) {
			unsigned int k = sent / 2, id = m->tid * MT_ELEMS + k;
			struct qd_sqe s;

			if (sent % 2 == 0) {
				segs[k] = mt_seg(m->region, id);
				s = qd_sqe_push(m->qd, &segs[k], 1, (__u64)m->tid << 32 | sent);
				m->push_sum += id;
			} else {
				s = qd_sqe_pop(m->qd, (__u64)m->tid << 32 | sent);
			}
			if (qd_raw_queue_sqe(r, &s))
				break;
			sent++;
		}
		if (m->tid % 2)
			/* everything up to the head was reaped: wait past it */
			ret = qd_raw_enter_seq(r, qd_raw_sq_pending(r), QD_ENTER_CQ_TAIL,
					       *r->cq_head, 100 * QD_RAW_MS);
		else
			ret = qd_raw_enter(r, qd_raw_sq_pending(r), 1, QD_RAW_WAIT,
					   100 * QD_RAW_MS);
		if (ret < 0 && ret != -ETIMEDOUT && ret != -EINTR) {
			snprintf(m->why, sizeof(m->why), "enter: %d", ret);
			m->errors++;
			break;
		}
		while (qd_raw_peek_cqe(r, &c, &e)) {
			unsigned int k = c.user_data & 0xffffffffu;

			if (c.user_data >> 32 != (unsigned int)m->tid || k >= sent) {
				m->foreign++;
				snprintf(m->why, sizeof(m->why), "CQE user_data %#llx on ring of thread %d",
					 (unsigned long long)c.user_data, m->tid);
				continue;
			}
			if (k % 2 == 0) {
				if (c.opcode != QD_OP_PUSH || c.res != segs[k / 2].len) {
					m->errors++;
					snprintf(m->why, sizeof(m->why), "push %u: opcode %u res %lld",
						 k / 2, c.opcode, c.res);
				}
				done_push++;
				m->pushes++;
			} else {
				unsigned int id;

				done_pop++;
				if (c.opcode != QD_OP_POP || c.res <= 0 || c.nsegs != 1 ||
				    !(c.flags & QD_CQE_F_ELEM)) {
					m->errors++;
					snprintf(m->why, sizeof(m->why), "pop %u: opcode %u res %lld flags %#x nsegs %u",
						 k / 2, c.opcode, c.res, c.flags, c.nsegs);
					continue;
				}
				id = e.segs[0].offset / 64;
				if (e.segs[0].offset % 64 || id >= MT_THREADS * MT_ELEMS ||
				    e.segs[0].len != 1 + id % 63 || c.res != e.segs[0].len ||
				    e.segs[0].region != m->region) {
					m->errors++;
					snprintf(m->why, sizeof(m->why), "pop %u: element offset %llu len %u",
						 k / 2, (unsigned long long)e.segs[0].offset, e.segs[0].len);
					continue;
				}
				__atomic_fetch_add(&m->popped[id], 1, __ATOMIC_RELAXED);
				m->pop_sum += id;
				m->pops++;
			}
		}
	}
	free(segs);
	return NULL;
}

TEST_F(rings, threads_on_their_own_rings_lose_and_duplicate_nothing)
{
	static unsigned char popped[MT_THREADS * MT_ELEMS];
	struct mt m[MT_THREADS];
	unsigned long long push_sum = 0, pop_sum = 0;
	unsigned int pushes = 0, pops = 0, i;
	int t;

	memset(popped, 0, sizeof(popped));
	for (t = 0; t < MT_THREADS; t++) {
		memset(&m[t], 0, sizeof(m[t]));
		m[t].tid = t;
		m[t].qd = self->qd;
		m[t].region = self->region;
		m[t].popped = popped;
		/* small rings (SQ 8, CQ 8) so that some CQEs park */
		ASSERT_EQ(0, qd_raw_ring_create(&self->r, &m[t].ring, 8, 8));
	}
	{
		pthread_t th[MT_THREADS];

		for (t = 0; t < MT_THREADS; t++)
			ASSERT_EQ(0, pthread_create(&th[t], NULL, mt_thread, &m[t]));
		for (t = 0; t < MT_THREADS; t++)
			pthread_join(th[t], NULL);
	}
	for (t = 0; t < MT_THREADS; t++) {
		EXPECT_EQ(0u, m[t].errors) TH_LOG("thread %d: %s", t, m[t].why);
		EXPECT_EQ(0u, m[t].foreign) TH_LOG("thread %d: %s", t, m[t].why);
		EXPECT_EQ((unsigned int)MT_ELEMS, m[t].pushes) TH_LOG("thread %d", t);
		EXPECT_EQ((unsigned int)MT_ELEMS, m[t].pops) TH_LOG("thread %d", t);
		push_sum += m[t].push_sum;
		pop_sum += m[t].pop_sum;
		pushes += m[t].pushes;
		pops += m[t].pops;
		qd_raw_exit(&m[t].ring);
	}
	EXPECT_EQ(pushes, pops);
	EXPECT_EQ(push_sum, pop_sum);
	for (i = 0; i < MT_THREADS * MT_ELEMS; i++)
		if (popped[i] != 1) {
			EXPECT_EQ(1, popped[i]) TH_LOG("element %u popped %u times", i, popped[i]);
			break;
		}
	/* ctx_seq counted every CQE of every ring: 2 per element */
	EXPECT_EQ(2u * MT_THREADS * MT_ELEMS, qd_load_acquire(self->r.ctx_seq));
}

/* --- lifetime ------------------------------------------------------------- */

TEST_F(rings, closing_the_context_frees_every_ring)
{
	struct qd_proc before, after;
	struct qd_raw c, x[16];
	int qd, i;

	ASSERT_EQ(0, qd_proc_read(&before));
	ASSERT_EQ(0, qd_raw_init(&c, 4, 8));
	ASSERT_EQ(0, qd_raw_queue(c.fd, 0, &qd));
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(0, qd_raw_ring_create(&c, &x[i], 4, 8));
		ASSERT_EQ(1, submit1(&x[i], qd_sqe_pop(qd, i)));
		ASSERT_EQ(0, submit_nops(&x[i], 100, 1));
	}
	/* unmapped and closed with pops pending and CQEs unreaped */
	for (i = 0; i < 16; i++)
		qd_raw_exit(&x[i]);
	qd_raw_exit(&c);
	EXPECT_EQ(0, qd_proc_wait_idle(before.contexts, before.pinned_pages, 5000, &after))
		TH_LOG("contexts %lld -> %lld", before.contexts, after.contexts);
	EXPECT_EQ(before.queues, after.queues);
	EXPECT_EQ(before.inflight, after.inflight);
	EXPECT_EQ(before.queued, after.queued);
}

TEST_HARNESS_MAIN
