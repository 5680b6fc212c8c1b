// SPDX-License-Identifier: GPL-2.0
/*
 * sqpoll: QD_SETUP_SQPOLL, a kernel thread per context that consumes the
 * SQs of all its rings. SQEs complete with no QD_IOC_ENTER at all; after
 * its idle time the poller sets QD_SQ_F_NEED_WAKEUP and sleeps until
 * QD_ENTER_SQ_WAKEUP; QD_IOC_ENTER still consumes SQEs itself; the poller
 * stops with the context (close, exit, SIGKILL; busy or asleep); it lives in
 * its owner's cgroup, at its nice value, charges its owner's memory cgroup
 * and submits with its owner's credentials; libqd's QD_SQPOLL.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <qd.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "qd_child.h"
#include "harness.h"

#define SETTLE_MS	5000	/* a context's release, a thread's exit */
#define WAIT_MS		5000	/* "completes within seconds" */

/* open + QD_IOC_SETUP with a poller (idle_ms) + mmap. */
static int sqpoll_init(struct qd_raw *r, unsigned int sq, unsigned int cq,
		       unsigned int idle_ms)
{
	struct qd_params p = { .sq_entries = sq, .cq_entries = cq,
			       .flags = QD_SETUP_SQPOLL, .sq_idle_ms = idle_ms };

	return qd_raw_init_params(r, &p);
}

/* QD_IOC_ENTER with QD_ENTER_SQ_WAKEUP (and to_submit). */
static int sq_wakeup(struct qd_raw *r, unsigned int to_submit)
{
	return qd_raw_enter(r, to_submit, 0, QD_ENTER_SQ_WAKEUP, 0);
}

static unsigned int sq_flags(struct qd_raw *r)
{
	return __atomic_load_n(r->sq_flags, __ATOMIC_ACQUIRE);
}

/* After publishing SQEs, as the protocol says: wake the poller if it sleeps. */
static int sq_kick(struct qd_raw *r)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(r->sq_flags, __ATOMIC_RELAXED) & QD_SQ_F_NEED_WAKEUP)
		return sq_wakeup(r, 0);
	return 0;
}

/* debugfs info of pid's newest context. */
static int info_path(pid_t pid, char *out, size_t len)
{
	char dirs[16][256];
	int n = qd_debugfs_ctx_dirs(pid, dirs, 16);

	if (n <= 0)
		return -ENOENT;
	snprintf(out, len, "%s/info", dirs[n - 1]);
	return 0;
}

static long long info(pid_t pid, const char *key)
{
	char path[300];

	if (info_path(pid, path, sizeof(path)))
		return -1;
	return qd_kv(path, key);
}

/* Wait until pid's poller is in state (running, sleeping): 0 or -ETIMEDOUT. */
static int wait_state(pid_t pid, const char *state, int ms)
{
	long long end = qd_now_ns() + ms * QD_RAW_MS;
	char path[300], v[64];

	do {
		if (!info_path(pid, path, sizeof(path)) &&
		    !qd_kv_str(path, "sqpoll_state", v, sizeof(v)) &&
		    !strcmp(v, state))
			return 0;
		qd_sleep_ms(2);
	} while (qd_now_ns() < end);
	return -ETIMEDOUT;
}

/* Wait, without any system call on the context, for n CQEs in the ring. */
static int wait_cqes(struct qd_raw *r, unsigned int n, int ms)
{
	long long end = qd_now_ns() + ms * QD_RAW_MS;

	while (qd_raw_cq_ready(r) < n) {
		if (qd_now_ns() > end)
			return -ETIMEDOUT;
		qd_sleep_ms(1);
	}
	return 0;
}

static int task_exists(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d", (int)tid);
	return !access(path, F_OK);
}

static int wait_gone(pid_t tid, int ms)
{
	long long end = qd_now_ns() + ms * QD_RAW_MS;

	while (task_exists(tid)) {
		if (qd_now_ns() > end)
			return -ETIMEDOUT;
		qd_sleep_ms(5);
	}
	return 0;
}

/* Tasks named qd-sqp-<owner>. */
static int count_pollers(pid_t owner)
{
	char want[32], path[300], comm[64];
	struct dirent *d;
	DIR *dir = opendir("/proc");
	int n = 0;

	if (!dir)
		return -errno;
	snprintf(want, sizeof(want), "qd-sqp-%d", (int)owner);
	while ((d = readdir(dir))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.200s/comm", d->d_name);
		if (!qd_read_line(path, comm, sizeof(comm)) && !strcmp(comm, want))
			n++;
	}
	closedir(dir);
	return n;
}

/* The cgroup2 line ("0::/path") of /proc/<pid>/cgroup: 0 or -errno. */
static int cgroup2_of(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	char line[256];
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(out, len, "%s", line);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* Wait until there are n pollers of owner (a thread's exit takes a moment). */
static int wait_pollers(pid_t owner, int n, int ms)
{
	long long end = qd_now_ns() + ms * QD_RAW_MS;
	int got;

	while ((got = count_pollers(owner)) != n) {
		if (qd_now_ns() > end)
			return got;
		qd_sleep_ms(5);
	}
	return n;
}

/* Field n (1-based) of /proc/<tid>/stat, after the comm. */
static long long stat_field(pid_t tid, int n)
{
	char path[64], buf[1024], *p;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	if (qd_read_line(path, buf, sizeof(buf)))
		return -1;
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* p + 2 is field 3 */
	for (p += 2, i = 3; i < n && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoll(p, NULL, 10) : -1;
}

FIXTURE(sqpoll) {
	struct qd_raw r;
	struct qd_proc base;
};

FIXTURE_SETUP(sqpoll)
{
	memset(&self->r, 0, sizeof(self->r));
	self->r.fd = -1;
	ASSERT_NE(-ENOENT, qd_proc_wait_idle(0, 0, SETTLE_MS, NULL));
	ASSERT_EQ(0, qd_proc_read(&self->base));
	ASSERT_EQ(0, qd_debugfs_ready());
}

FIXTURE_TEARDOWN(sqpoll)
{
	if (self->r.fd >= 0)
		qd_raw_exit(&self->r);
}

TEST_F(sqpoll, setup_starts_one_poller_named_for_its_owner)
{
	char path[64], comm[64], want[32];
	struct qd_raw plain;
	pid_t tid;

	ASSERT_EQ(0, sqpoll_init(&self->r, 8, 16, 0));
	EXPECT_TRUE(!!(self->r.p.features & QD_FEAT_SQPOLL));
	tid = (pid_t)info(getpid(), "sqpoll_pid");
	ASSERT_LT(0, tid);
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)tid);
	ASSERT_EQ(0, qd_read_line(path, comm, sizeof(comm)));
	snprintf(want, sizeof(want), "qd-sqp-%d", (int)getpid());
	EXPECT_STREQ(want, comm);
	EXPECT_EQ(1, count_pollers(getpid()));
	/* sq_idle_ms 0: the default */
	EXPECT_EQ(QD_SQPOLL_DEFAULT_IDLE_MS, info(getpid(), "sqpoll_idle_ms"));
	EXPECT_EQ((long long)geteuid(), info(getpid(), "sqpoll_euid"));
	/* a context without a poller has none */
	ASSERT_EQ(0, qd_raw_init(&plain, 4, 8));
	EXPECT_EQ(-1, info(getpid(), "sqpoll_pid"));
	EXPECT_EQ(-EINVAL, sq_wakeup(&plain, 0));
	qd_raw_exit(&plain);
	qd_raw_exit(&self->r);
	EXPECT_EQ(0, wait_gone(tid, SETTLE_MS));
	EXPECT_EQ(0, wait_pollers(getpid(), 0, SETTLE_MS));
}

TEST_F(sqpoll, sqes_complete_without_any_enter)
{
	struct qd_raw *r = &self->r;
	unsigned int made = 0, seen = 0, i;
	static unsigned char got[300];
	struct qd_seg seg[2];
	long long end;
	struct qd_elem elem;
	struct qd_cqe cqe;
	unsigned int id;
	char *buf;
	int qd;

	/*
	 * A CQ that holds all 300: should this thread be descheduled while
	 * the poller runs ahead, completions would otherwise wait in the
	 * overflow list, which only an enter moves back (QD_CQ_F_OVERFLOW).
	 */
	ASSERT_EQ(0, sqpoll_init(r, 16, 512, QD_SQPOLL_MAX_IDLE_MS));
	/* 300 NOPs through a 16-entry SQ: the poller keeps making room */
	end = qd_now_ns() + 3 * WAIT_MS * QD_RAW_MS;
	while (seen < 300) {
		struct qd_sqe s = qd_sqe_nop(1000 + made);

		if (made < 300 && !qd_raw_queue_sqe(r, &s)) {
			made++;
			continue;
		}
		if (qd_raw_peek_cqe(r, &cqe, NULL)) {
			ASSERT_EQ(0, cqe.res);
			ASSERT_LE(1000u, cqe.user_data);
			ASSERT_GT(1300u, cqe.user_data);
			EXPECT_EQ(0, got[cqe.user_data - 1000]++);
			seen++;
			continue;
		}
		/* (the SQ head moves after a batch's CQEs are posted) */
		ASSERT_GT(end, qd_now_ns()) TH_LOG("%u made, %u seen", made, seen);
		qd_sleep_ms(1);
	}
	/* a push, whose segment array the poller reads in our mm, and a pop */
	buf = qd_raw_pages(qd_page_size());
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, qd_raw_register(r->fd, buf, qd_page_size(), &id));
	ASSERT_EQ(0, qd_raw_queue(r->fd, 0, &qd));
	seg[0] = qd_seg((__u16)id, 64, 100);
	seg[1] = qd_seg((__u16)id, 512, 7);
	{
		struct qd_sqe push = qd_sqe_push(qd, seg, 2, 1);
		struct qd_sqe pop = qd_sqe_pop(qd, 2);

		ASSERT_EQ(0, qd_raw_queue_sqe(r, &push));
		ASSERT_EQ(0, qd_raw_queue_sqe(r, &pop));
	}
	ASSERT_EQ(0, wait_cqes(r, 2, WAIT_MS));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(1, qd_raw_peek_cqe(r, &cqe, &elem));
		EXPECT_EQ(107, cqe.res) TH_LOG("op %u", cqe.opcode);
		if (cqe.opcode == QD_OP_POP) {
			EXPECT_EQ(2, cqe.nsegs);
			EXPECT_TRUE(qd_seg_eq(&seg[0], &elem.segs[0]));
			EXPECT_TRUE(qd_seg_eq(&seg[1], &elem.segs[1]));
		}
	}
	/* all of it without a single QD_IOC_ENTER */
	EXPECT_EQ(0, info(getpid(), "enters"));
	EXPECT_EQ(302, info(getpid(), "sqpoll_submitted"));
	EXPECT_EQ(0, info(getpid(), "sqpoll_sleeps"));
	munmap(buf, qd_page_size());
}

TEST_F(sqpoll, idle_poller_sleeps_until_sq_wakeup)
{
	struct qd_raw *r = &self->r;
	struct qd_sqe s = qd_sqe_nop(7);
	struct qd_cqe cqe;
	long long sleeps;

	ASSERT_EQ(0, sqpoll_init(r, 8, 16, 10));
	ASSERT_EQ(0, wait_state(getpid(), "sleeping", WAIT_MS));
	EXPECT_TRUE(!!(sq_flags(r) & QD_SQ_F_NEED_WAKEUP));
	EXPECT_EQ(0, info(getpid(), "sqpoll_wakeups"));
	sleeps = info(getpid(), "sqpoll_sleeps");
	EXPECT_LE(1, sleeps);

	/* asleep: a published SQE stays in the SQ */
	ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	qd_sleep_ms(30);
	EXPECT_EQ(1u, qd_raw_sq_pending(r));
	EXPECT_EQ(0u, qd_raw_cq_ready(r));

	/* the wake-up alone (to_submit 0): the poller takes it */
	EXPECT_EQ(0, sq_wakeup(r, 0));
	ASSERT_EQ(0, wait_cqes(r, 1, WAIT_MS));
	ASSERT_EQ(1, qd_raw_peek_cqe(r, &cqe, NULL));
	EXPECT_EQ(7u, cqe.user_data);
	EXPECT_EQ(1, info(getpid(), "sqpoll_wakeups"));
	EXPECT_EQ(1, info(getpid(), "sqpoll_submitted"));

	/* ... and sleeps again after its idle time */
	ASSERT_EQ(0, wait_state(getpid(), "sleeping", WAIT_MS));
	EXPECT_TRUE(!!(sq_flags(r) & QD_SQ_F_NEED_WAKEUP));
	EXPECT_LT(sleeps, info(getpid(), "sqpoll_sleeps"));

	/* QD_IOC_ENTER still consumes SQEs itself, without waking it */
	s = qd_sqe_nop(8);
	ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	EXPECT_EQ(1, qd_raw_enter(r, 1, 1, QD_RAW_WAIT, WAIT_MS * QD_RAW_MS));
	ASSERT_EQ(1, qd_raw_peek_cqe(r, &cqe, NULL));
	EXPECT_EQ(8u, cqe.user_data);
	EXPECT_EQ(1, info(getpid(), "sqpoll_wakeups"));
	EXPECT_EQ(1, info(getpid(), "sqpoll_submitted"));
}

TEST_F(sqpoll, ring_made_while_poller_sleeps_asks_for_a_wakeup)
{
	struct qd_raw *r = &self->r, r1;
	struct qd_sqe s = qd_sqe_nop(11);
	struct qd_cqe cqe;

	ASSERT_EQ(0, sqpoll_init(r, 8, 16, 10));
	ASSERT_EQ(0, wait_state(getpid(), "sleeping", WAIT_MS));
	ASSERT_EQ(0, qd_raw_ring_create(r, &r1, 4, 8));
	EXPECT_TRUE(!!(sq_flags(&r1) & QD_SQ_F_NEED_WAKEUP));
	ASSERT_EQ(0, qd_raw_queue_sqe(&r1, &s));
	qd_sleep_ms(30);
	EXPECT_EQ(1u, qd_raw_sq_pending(&r1));
	EXPECT_EQ(0, sq_wakeup(&r1, 0));
	ASSERT_EQ(0, wait_cqes(&r1, 1, WAIT_MS));
	ASSERT_EQ(1, qd_raw_peek_cqe(&r1, &cqe, NULL));
	EXPECT_EQ(11u, cqe.user_data);
	/* on its own ring only */
	EXPECT_EQ(0u, qd_raw_cq_ready(r));
	qd_raw_exit(&r1);
}

#define NRINGS	16
#define PER_RING 40

TEST_F(sqpoll, one_poller_serves_every_ring)
{
	struct qd_raw rings[NRINGS];
	unsigned int i, k, made[NRINGS] = { 0 }, seen[NRINGS] = { 0 }, total = 0;
	static unsigned char got[NRINGS][PER_RING];
	struct qd_cqe cqe;
	long long end;

	ASSERT_EQ(0, sqpoll_init(&self->r, 8, 16, QD_SQPOLL_MAX_IDLE_MS));
	rings[0] = self->r;
	for (i = 1; i < NRINGS; i++)
		ASSERT_EQ(0, qd_raw_ring_create(&self->r, &rings[i], 4, 8));
	EXPECT_EQ(1, count_pollers(getpid()));
	end = qd_now_ns() + 3 * WAIT_MS * QD_RAW_MS;
	while (total < NRINGS * PER_RING) {
		int moved = 0;

		for (i = 0; i < NRINGS; i++) {
			struct qd_sqe s = qd_sqe_nop(((__u64)i << 16) | made[i]);

			if (made[i] < PER_RING && !qd_raw_queue_sqe(&rings[i], &s)) {
				made[i]++;
				moved = 1;
			}
			while (qd_raw_peek_cqe(&rings[i], &cqe, NULL)) {
				k = cqe.user_data & 0xffff;
				ASSERT_EQ((__u64)i, cqe.user_data >> 16) TH_LOG("CQE on a foreign ring");
				ASSERT_GT((unsigned int)PER_RING, k);
				EXPECT_EQ(0, got[i][k]++);
				seen[i]++;
				total++;
				moved = 1;
			}
		}
		if (!moved) {
			ASSERT_GT(end, qd_now_ns()) TH_LOG("%u of %u", total, NRINGS * PER_RING);
			qd_sleep_ms(1);
		}
	}
	for (i = 0; i < NRINGS; i++)
		EXPECT_EQ((unsigned int)PER_RING, seen[i]);
	EXPECT_EQ(0, info(getpid(), "enters"));
	for (i = 1; i < NRINGS; i++)
		qd_raw_exit(&rings[i]);
}

TEST_F(sqpoll, setup_and_enter_validate_their_arguments)
{
	struct qd_params p;
	struct qd_raw plain;
	int fd;

	fd = qd_raw_open();
	ASSERT_LE(0, fd);
	/* unknown flags, with or without SQPOLL */
	p = (struct qd_params){ .sq_entries = 8, .flags = QD_SETUP_SQPOLL | 1u << 1 };
	EXPECT_EQ(-EINVAL, qd_raw_setup(fd, &p));
	p = (struct qd_params){ .sq_entries = 8, .flags = 1u << 31 };
	EXPECT_EQ(-EINVAL, qd_raw_setup(fd, &p));
	/* the idle time is bounded, and zero without SQPOLL */
	p = (struct qd_params){ .sq_entries = 8, .flags = QD_SETUP_SQPOLL,
				.sq_idle_ms = QD_SQPOLL_MAX_IDLE_MS + 1 };
	EXPECT_EQ(-EINVAL, qd_raw_setup(fd, &p));
	p.sq_idle_ms = 0xffffffffu;
	EXPECT_EQ(-EINVAL, qd_raw_setup(fd, &p));
	p = (struct qd_params){ .sq_entries = 8, .sq_idle_ms = 5 };
	EXPECT_EQ(-EINVAL, qd_raw_setup(fd, &p));
	/* the reserved words stay reserved */
	p = (struct qd_params){ .sq_entries = 8, .flags = QD_SETUP_SQPOLL };
	p.resv[0] = 1;
	EXPECT_EQ(-EINVAL, qd_raw_setup(fd, &p));
	p.resv[0] = 0;
	p.resv[1] = 1;
	EXPECT_EQ(-EINVAL, qd_raw_setup(fd, &p));
	/* bad sizes with SQPOLL: no thread made */
	p = (struct qd_params){ .sq_entries = 3, .flags = QD_SETUP_SQPOLL };
	EXPECT_EQ(-EINVAL, qd_raw_setup(fd, &p));
	EXPECT_EQ(0, wait_pollers(getpid(), 0, SETTLE_MS));

	/* the largest idle time works */
	p = (struct qd_params){ .sq_entries = 8, .flags = QD_SETUP_SQPOLL,
				.sq_idle_ms = QD_SQPOLL_MAX_IDLE_MS };
	ASSERT_EQ(0, qd_raw_setup(fd, &p));
	EXPECT_TRUE(!!(p.features & QD_FEAT_SQPOLL));
	EXPECT_EQ(QD_SQPOLL_MAX_IDLE_MS, info(getpid(), "sqpoll_idle_ms"));
	/* a second setup is -EBUSY, and the poller it made goes */
	p = (struct qd_params){ .sq_entries = 8, .flags = QD_SETUP_SQPOLL };
	EXPECT_EQ(-EBUSY, qd_raw_setup(fd, &p));
	EXPECT_EQ(1, wait_pollers(getpid(), 1, SETTLE_MS));
	/* QD_IOC_RING takes neither */
	p = (struct qd_params){ .sq_entries = 4, .flags = QD_SETUP_SQPOLL };
	EXPECT_EQ(-EINVAL, qd_raw_ring_ioctl(fd, &p));
	p = (struct qd_params){ .sq_entries = 4, .sq_idle_ms = 1 };
	EXPECT_EQ(-EINVAL, qd_raw_ring_ioctl(fd, &p));
	close(fd);

	/* QD_ENTER_SQ_WAKEUP needs a poller */
	ASSERT_EQ(0, qd_raw_init(&plain, 4, 8));
	EXPECT_EQ(-EINVAL, sq_wakeup(&plain, 0));
	EXPECT_EQ(-EINVAL, qd_raw_enter(&plain, 0, 1, QD_RAW_WAIT | QD_ENTER_SQ_WAKEUP, 0));
	qd_raw_exit(&plain);
	EXPECT_EQ(0, qd_proc_wait_idle(self->base.contexts, self->base.pinned_pages,
				       SETTLE_MS, NULL));
	EXPECT_EQ(0, wait_pollers(getpid(), 0, SETTLE_MS));
}

/*
 * The poller and QD_IOC_ENTER consume one SQ side by side: every SQE gives
 * exactly one CQE, and what each consumed adds up.
 */
TEST_F(sqpoll, poller_and_enter_share_an_sq)
{
	struct qd_raw *r = &self->r;
	static unsigned char got[4000];
	unsigned int made = 0, seen = 0, round = 0;
	long long by_enter = 0;
	struct qd_cqe cqe;
	long long end;
	int ret;

	ASSERT_EQ(0, sqpoll_init(r, 32, 64, QD_SQPOLL_MAX_IDLE_MS));
	end = qd_now_ns() + 6 * WAIT_MS * QD_RAW_MS;
	while (seen < 4000) {
		struct qd_sqe s = qd_sqe_nop(made);
		unsigned int n = 0;

		while (made < 4000 && n < 8 && !qd_raw_queue_sqe(r, &s)) {
			s.user_data = ++made;
			n++;
		}
		if (round++ % 2) {
			ret = qd_raw_enter(r, qd_raw_sq_pending(r), 0, 0, 0);
			ASSERT_LE(0, ret);
			by_enter += ret;
		}
		while (qd_raw_peek_cqe(r, &cqe, NULL)) {
			ASSERT_GT(4000u, cqe.user_data);
			EXPECT_EQ(0, got[cqe.user_data]++);
			seen++;
		}
		ASSERT_GT(end, qd_now_ns()) TH_LOG("%u of 4000", seen);
	}
	EXPECT_EQ(0u, qd_raw_sq_pending(r));
	/*
	 * The poller counts a batch after its CQEs are out (as it moves the
	 * SQ head): the last batch's count may trail what we have seen.
	 */
	end = qd_now_ns() + WAIT_MS * QD_RAW_MS;
	while (by_enter + info(getpid(), "sqpoll_submitted") < 4000 &&
	       qd_now_ns() < end)
		qd_sleep_ms(1);
	EXPECT_EQ(4000, by_enter + info(getpid(), "sqpoll_submitted"))
		TH_LOG("enter %lld poller %lld", by_enter, info(getpid(), "sqpoll_submitted"));
}

/*
 * At max_inflight the poller leaves the SQE in the SQ (as an enter would);
 * an enter that passes to_submit takes it once there is room.
 */
TEST_F(sqpoll, poller_keeps_to_max_inflight)
{
	struct qd_raw *r = &self->r;
	struct qd_sqe nop = qd_sqe_nop(100);
	struct qd_cqe cqe;
	unsigned int i, n = 0;
	long long end;
	int ret;

	ASSERT_EQ(0, sqpoll_init(r, 16, 16, QD_SQPOLL_MAX_IDLE_MS));
	ASSERT_EQ(32u, r->p.max_inflight);
	for (i = 0; i < 32; i++) {
		struct qd_sqe s = qd_sqe_nop(i);

		s.nop_flags = QD_NOP_SOFTIRQ;
		s.delay_ns = QD_NOP_MAX_DELAY_NS;
		while (qd_raw_queue_sqe(r, &s))
			qd_sleep_ms(1);
	}
	end = qd_now_ns() + WAIT_MS * QD_RAW_MS;
	while (info(getpid(), "inflight") < 32 && qd_now_ns() < end)
		qd_sleep_ms(1);
	ASSERT_EQ(32, info(getpid(), "inflight"));
	ASSERT_EQ(0, qd_raw_queue_sqe(r, &nop));
	qd_sleep_ms(30);
	EXPECT_EQ(1u, qd_raw_sq_pending(r));
	EXPECT_EQ(0u, qd_raw_cq_ready(r));
	/*
	 * Once the deferred NOPs complete (half of them parked: the CQ has
	 * 16 entries) there is room: the poller or an enter (which also
	 * moves parked completions in) takes the NOP.
	 */
	end = qd_now_ns() + 3 * WAIT_MS * QD_RAW_MS;
	while (n < 33 && qd_now_ns() < end) {
		if (qd_raw_peek_cqe(r, &cqe, NULL)) {
			n++;
			continue;
		}
		ret = qd_raw_enter(r, qd_raw_sq_pending(r), 1, QD_RAW_WAIT, 100 * QD_RAW_MS);
		ASSERT_TRUE(ret >= 0 || ret == -ETIMEDOUT) TH_LOG("enter: %d", ret);
	}
	EXPECT_EQ(33u, n);
	EXPECT_EQ(0u, qd_raw_sq_pending(r));
}

enum stop_how { BY_CLOSE, BY_EXIT, BY_KILL };

/*
 * A child sets up a poller with a queue holding elements, a pending pop
 * and a region, and a thread that keeps the poller busy (or lets it fall
 * asleep); then closes its context, exits or is SIGKILLed. The poller
 * goes, and /proc/qd is back where it was.
 */
static void stop_case(struct __test_metadata *_metadata, const struct qd_proc *base,
		      enum stop_how how, int busy)
{
	struct qd_proc now;
	int sync[2], ret;
	pid_t pid, tid = 0;

	ASSERT_EQ(0, pipe(sync));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw r;
		struct qd_seg seg;
		unsigned int id, i;
		char *buf;
		int qd;

		close(sync[0]);
		CHILD_CHECK(sqpoll_init(&r, 64, 128, busy ? QD_SQPOLL_MAX_IDLE_MS : 10) == 0);
		buf = qd_raw_pages(qd_page_size());
		CHILD_CHECK(buf);
		CHILD_CHECK(qd_raw_register(r.fd, buf, qd_page_size(), &id) == 0);
		CHILD_CHECK(qd_raw_queue(r.fd, 0, &qd) == 0);
		seg = qd_seg((__u16)id, 0, 64);
		for (i = 0; i < 8; i++) {
			struct qd_sqe s = qd_sqe_push(qd, &seg, 1, i);

			CHILD_CHECK(qd_raw_queue_sqe(&r, &s) == 0);
		}
		CHILD_CHECK(sq_kick(&r) == 0);
		CHILD_CHECK(wait_cqes(&r, 8, WAIT_MS) == 0);
		{
			int qd2;
			struct qd_sqe s;

			CHILD_CHECK(qd_raw_queue(r.fd, 0, &qd2) == 0);
			s = qd_sqe_pop(qd2, 99);
			CHILD_CHECK(qd_raw_queue_sqe(&r, &s) == 0);
			CHILD_CHECK(sq_kick(&r) == 0);
		}
		if (busy) {
			/* keep publishing NOPs, never entering, never reaping much */
			for (i = 0; i < 32; i++) {
				struct qd_sqe s = qd_sqe_nop(1000 + i);

				qd_raw_queue_sqe(&r, &s);
			}
			CHILD_CHECK(wait_state(getpid(), "running", WAIT_MS) == 0);
		} else {
			CHILD_CHECK(wait_state(getpid(), "sleeping", WAIT_MS) == 0);
		}
		tid = (pid_t)info(getpid(), "sqpoll_pid");
		CHILD_CHECK(tid > 0);
		CHILD_CHECK(write(sync[1], &tid, sizeof(tid)) == sizeof(tid));
		if (how == BY_CLOSE) {
			qd_raw_exit(&r);
			/* the release waits for the poller to let go */
			CHILD_CHECK(qd_proc_wait_idle(base->contexts, base->pinned_pages,
						      SETTLE_MS, NULL) == 0);
			CHILD_CHECK(wait_gone(tid, SETTLE_MS) == 0);
			_exit(0);
		}
		if (how == BY_EXIT)
			_exit(0);
		for (;;) {
			if (busy) {
				struct qd_cqe cqe;
				struct qd_sqe s = qd_sqe_nop(5);

				qd_raw_peek_cqe(&r, &cqe, NULL);
				qd_raw_queue_sqe(&r, &s);
			} else {
				pause();
			}
		}
	}
	close(sync[1]);
	ret = (int)read(sync[0], &tid, sizeof(tid));
	close(sync[0]);
	if (how == BY_KILL && ret == sizeof(tid)) {
		qd_sleep_ms(5);
		kill(pid, SIGKILL);
	}
	ret = qd_wait_child(pid);
	EXPECT_EQ(how == BY_KILL ? 128 + SIGKILL : 0, ret);
	ASSERT_LT(0, tid);
	EXPECT_EQ(0, wait_gone(tid, SETTLE_MS)) TH_LOG("poller %d still there", (int)tid);
	EXPECT_EQ(0, qd_proc_wait_idle(base->contexts, base->pinned_pages, SETTLE_MS, NULL));
	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base->contexts, now.contexts);
	EXPECT_EQ(base->queues, now.queues);
	EXPECT_EQ(base->regions, now.regions);
	EXPECT_EQ(base->pinned_pages, now.pinned_pages);
	EXPECT_EQ(base->inflight, now.inflight);
	EXPECT_EQ(base->queued, now.queued);
}

TEST_F(sqpoll, close_stops_a_busy_poller)
{
	stop_case(_metadata, &self->base, BY_CLOSE, 1);
}

TEST_F(sqpoll, close_stops_a_sleeping_poller)
{
	stop_case(_metadata, &self->base, BY_CLOSE, 0);
}

TEST_F(sqpoll, exit_stops_a_busy_poller)
{
	stop_case(_metadata, &self->base, BY_EXIT, 1);
}

TEST_F(sqpoll, exit_stops_a_sleeping_poller)
{
	stop_case(_metadata, &self->base, BY_EXIT, 0);
}

TEST_F(sqpoll, sigkill_stops_a_busy_poller)
{
	stop_case(_metadata, &self->base, BY_KILL, 1);
}

TEST_F(sqpoll, sigkill_stops_a_sleeping_poller)
{
	stop_case(_metadata, &self->base, BY_KILL, 0);
}

/*
 * The owner's fd survives in a forked child (no mappings there): the
 * owner exits, the poller lets go of its mm and waits, orphaned, for the
 * child's close.
 */
TEST_F(sqpoll, poller_outlived_by_its_fd_waits_orphaned)
{
	char dirs[4][256], path[300], v[64] = "";
	int sync[2], go[2], n;
	pid_t owner, tid = 0;
	long long end;
	char c = 0;

	ASSERT_EQ(0, pipe(sync));
	ASSERT_EQ(0, pipe(go));
	owner = fork();
	ASSERT_LE(0, owner);
	if (!owner) {
		struct qd_raw r;
		pid_t keeper;

		close(sync[0]);
		CHILD_CHECK(sqpoll_init(&r, 8, 16, QD_SQPOLL_MAX_IDLE_MS) == 0);
		tid = (pid_t)info(getpid(), "sqpoll_pid");
		keeper = fork();
		CHILD_CHECK(keeper >= 0);
		if (!keeper) {
			/* keeps the fd (not the rings: VM_DONTCOPY) */
			close(go[1]);
			CHILD_CHECK(read(go[0], &c, 1) == 1);
			close(r.fd);
			_exit(0);
		}
		CHILD_CHECK(write(sync[1], &tid, sizeof(tid)) == sizeof(tid));
		_exit(0);
	}
	close(sync[1]);
	close(go[0]);
	ASSERT_EQ((ssize_t)sizeof(tid), read(sync[0], &tid, sizeof(tid)));
	close(sync[0]);
	EXPECT_EQ(0, qd_wait_child(owner));
	ASSERT_LT(0, tid);
	end = qd_now_ns() + WAIT_MS * QD_RAW_MS;
	{
		do {
			n = qd_debugfs_ctx_dirs(owner, dirs, 4);
			if (n == 1) {
				snprintf(path, sizeof(path), "%s/info", dirs[0]);
				qd_kv_str(path, "sqpoll_state", v, sizeof(v));
			}
			if (!strcmp(v, "orphaned"))
				break;
			qd_sleep_ms(5);
		} while (qd_now_ns() < end);
		EXPECT_STREQ("orphaned", v);
	}
	EXPECT_TRUE(task_exists(tid));
	ASSERT_EQ(1, write(go[1], &c, 1));
	close(go[1]);
	EXPECT_EQ(0, wait_gone(tid, SETTLE_MS));
	EXPECT_EQ(0, qd_proc_wait_idle(self->base.contexts, self->base.pinned_pages,
				       SETTLE_MS, NULL));
}

#define CG_ELEMS	8192

/*
 * The poller lives in its owner's cgroup, at its nice value, and what it
 * allocates (the elements of pushes it submits) is charged to the owner's
 * memory cgroup.
 */
TEST_F_TIMEOUT(sqpoll, poller_is_in_owners_cgroup_and_charges_its_memory, 180)
{
	char why[256], cg[256];
	long long vals[4];	/* nice, memory before, after, cgroup matched */
	int enabled = 0, sync[2], ret;
	pid_t pid;

	ret = qd_cgroup_memory_ready(&enabled, why, sizeof(why));
	if (ret)
		SKIP(return, "%s", why);
	snprintf(cg, sizeof(cg), QD_CGROUP_ROOT "/qd-sqpoll-%d", getpid());
	ASSERT_EQ(0, mkdir(cg, 0755)) TH_LOG("mkdir %s: %m", cg);
	ASSERT_EQ(0, pipe(sync));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char mine[300], its[300], path[64];
		struct qd_raw r;
		struct qd_seg seg;
		unsigned int id, sent = 0;
		char *buf;
		pid_t tid;
		int qd;

		close(sync[0]);
		CHILD_CHECK(qd_cgroup_enter(cg) == 0);
		CHILD_CHECK(setpriority(PRIO_PROCESS, 0, 7) == 0);
		CHILD_CHECK(sqpoll_init(&r, 1024, 2048, QD_SQPOLL_MAX_IDLE_MS) == 0);
		tid = (pid_t)info(getpid(), "sqpoll_pid");
		CHILD_CHECK(tid > 0);
		CHILD_CHECK(cgroup2_of("/proc/self/cgroup", mine, sizeof(mine)) == 0);
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)tid);
		CHILD_CHECK(cgroup2_of(path, its, sizeof(its)) == 0);
		vals[3] = !strcmp(mine, its) && strstr(its, "qd-sqpoll-");
		if (!vals[3])
			fprintf(stderr, "# owner %s, poller %s\n", mine, its);
		vals[0] = stat_field(tid, 19);

		buf = qd_raw_pages(qd_page_size());
		CHILD_CHECK(buf);
		CHILD_CHECK(qd_raw_register(r.fd, buf, qd_page_size(), &id) == 0);
		CHILD_CHECK(qd_raw_queue(r.fd, CG_ELEMS, &qd) == 0);
		seg = qd_seg((__u16)id, 0, 64);
		vals[1] = qd_cgroup_memory_current(cg);
		while (sent < CG_ELEMS) {
			struct qd_sqe s = qd_sqe_push(qd, &seg, 1, sent);

			s.flags = QD_SQE_F_SKIP_SUCCESS;
			if (!qd_raw_queue_sqe(&r, &s))
				sent++;
			else
				qd_sleep_ms(1);
		}
		{
			long long end = qd_now_ns() + 3 * WAIT_MS * QD_RAW_MS;

			while (info(getpid(), "queued") < CG_ELEMS && qd_now_ns() < end)
				qd_sleep_ms(5);
		}
		CHILD_CHECK(info(getpid(), "queued") == CG_ELEMS);
		CHILD_CHECK(info(getpid(), "enters") == 0);
		vals[2] = qd_cgroup_memory_current(cg);
		CHILD_CHECK(write(sync[1], vals, sizeof(vals)) == sizeof(vals));
		qd_raw_exit(&r);
		CHILD_CHECK(wait_gone(tid, SETTLE_MS) == 0);
		_exit(0);
	}
	close(sync[1]);
	ret = (int)read(sync[0], vals, sizeof(vals));
	close(sync[0]);
	EXPECT_EQ(0, qd_wait_child(pid));
	rmdir(cg);
	qd_cgroup_memory_restore(enabled);
	ASSERT_EQ((int)sizeof(vals), ret);
	EXPECT_EQ(1, vals[3]) TH_LOG("the poller is not in its owner's cgroup");
	EXPECT_EQ(7, vals[0]) TH_LOG("the poller's nice value");
	TH_LOG("memory.current %lld -> %lld (+%lld) for %d elements",
	       vals[1], vals[2], vals[2] - vals[1], CG_ELEMS);
	/* an element is a couple of hundred bytes of slab */
	EXPECT_LE(CG_ELEMS * 128LL, vals[2] - vals[1]);
}

/* The poller submits with its owner's credentials, not a kthread's (root). */
TEST_F(sqpoll, poller_submits_with_owners_credentials)
{
	int sync[2], go[2], ret;
	long long euid = -2;
	pid_t pid, child_tid = 0;
	char c = 0;

	ASSERT_EQ(0, pipe(sync));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw r;
		struct qd_sqe s = qd_sqe_nop(1);
		pid_t tid;

		close(sync[0]);
		close(go[1]);
		CHILD_CHECK(qd_become_uid(QD_NOBODY) == 0);
		CHILD_CHECK(sqpoll_init(&r, 4, 8, QD_SQPOLL_MAX_IDLE_MS) == 0);
		CHILD_CHECK(qd_raw_queue_sqe(&r, &s) == 0);
		CHILD_CHECK(wait_cqes(&r, 1, WAIT_MS) == 0);
		tid = 1;
		CHILD_CHECK(write(sync[1], &tid, sizeof(tid)) == sizeof(tid));
		CHILD_CHECK(read(go[0], &c, 1) == 1);
		qd_raw_exit(&r);
		_exit(0);
	}
	close(sync[1]);
	close(go[0]);
	ret = (int)read(sync[0], &child_tid, sizeof(child_tid));
	close(sync[0]);
	if (ret == sizeof(child_tid))
		euid = info(pid, "sqpoll_euid");
	ASSERT_EQ(1, write(go[1], &c, 1));
	close(go[1]);
	EXPECT_EQ(0, qd_wait_child(pid));
	ASSERT_EQ((int)sizeof(child_tid), ret);
	EXPECT_EQ(QD_NOBODY, euid);
}

/* --- libqd: QD_SQPOLL ------------------------------------------------- */

#define LQ_ROUNDS	64

/*
 * In a fresh child: QD_MEMQ_KERNEL=1 (pushes and pops are SQEs) and
 * QD_SQPOLL as given; LQ_ROUNDS push/pop pairs, each followed by
 * qd_submit(), then the waits. Reports qd_stats().syscalls, or -1.
 */
static long long libqd_run(const char *sqpoll, int wait_asleep)
{
	int sync[2];
	long long v = -1;
	pid_t pid;

	if (pipe(sync))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		static qd_token_t push[LQ_ROUNDS], pop[LQ_ROUNDS];
		struct qd_result qr;
		struct qd_stats st;
		struct qd_sga sga;
		int q, i;

		close(sync[0]);
		setenv("QD_MEMQ_KERNEL", "1", 1);
		if (sqpoll)
			setenv("QD_SQPOLL", sqpoll, 1);
		CHILD_CHECK(qd_init() == 0);
		CHILD_CHECK(qd_queue(&q) == 0);
		sga = qd_sgaalloc(64);
		CHILD_CHECK(sga.numsegs == 1);
		if (wait_asleep)
			CHILD_CHECK(wait_state(getpid(), "sleeping", WAIT_MS) == 0);
		CHILD_CHECK(qd_stats(&st) == 0);
		v = -(long long)st.syscalls;
		for (i = 0; i < LQ_ROUNDS; i++) {
			CHILD_CHECK(qd_push(&push[i], q, &sga) == 0);
			CHILD_CHECK(qd_pop(&pop[i], q) == 0);
			CHILD_CHECK(qd_submit() == 0);
		}
		for (i = 0; i < LQ_ROUNDS; i++) {
			const struct timespec t = { 5, 0 };

			CHILD_CHECK(qd_wait(&qr, push[i], &t) == 0);
			CHILD_CHECK(qr.ret == 64);
			CHILD_CHECK(qd_wait(&qr, pop[i], &t) == 0);
			CHILD_CHECK(qr.ret == 64);
			CHILD_CHECK(qr.value.sga.segs[0].buf == sga.segs[0].buf);
		}
		CHILD_CHECK(qd_stats(&st) == 0);
		v += (long long)st.syscalls;
		CHILD_CHECK(write(sync[1], &v, sizeof(v)) == sizeof(v));
		_exit(0);
	}
	close(sync[1]);
	if (read(sync[0], &v, sizeof(v)) != sizeof(v))
		v = -1;
	close(sync[0]);
	if (qd_wait_child(pid))
		v = -1;
	return v;
}

TEST_F(sqpoll, libqd_sqpoll_submits_without_system_calls)
{
	long long plain = libqd_run(NULL, 0);
	long long polled = libqd_run("10000", 0);

	TH_LOG("system calls for %d push/pop/submit rounds and their waits: "
	       "%lld without a poller, %lld with", LQ_ROUNDS, plain, polled);
	ASSERT_LE(0, plain);
	ASSERT_LE(0, polled);
	EXPECT_LE(LQ_ROUNDS, plain);
	EXPECT_GT(plain - LQ_ROUNDS / 2, polled);
}

TEST_F(sqpoll, libqd_wakes_a_sleeping_poller)
{
	/* the poller asleep before the first push: libqd must wake it */
	EXPECT_LE(0, libqd_run("10", 1));
}

TEST_F(sqpoll, libqd_rejects_a_bad_qd_sqpoll)
{
	static const char *const bad[] = { "x", "-1", "10001", "5ms" };
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid) {
			setenv("QD_SQPOLL", bad[i], 1);
			_exit(qd_init() == -EINVAL ? 0 : 1);
		}
		EXPECT_EQ(0, qd_wait_child(pid)) TH_LOG("QD_SQPOLL=%s", bad[i]);
	}
	/* 0: no poller */
	{
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid) {
			setenv("QD_SQPOLL", "0", 1);
			CHILD_CHECK(qd_init() == 0);
			_exit(count_pollers(getpid()) == 0 ? 0 : 1);
		}
		EXPECT_EQ(0, qd_wait_child(pid));
	}
}

TEST_HARNESS_MAIN
