// SPDX-License-Identifier: GPL-2.0
/*
 * limits: how much an unprivileged user can make the kernel hold.
 *  - elements: per context (max_queued, sampled at open, reported by
 *    QD_IOC_SETUP) and per real uid (max_user_queued); a push past either
 *    completes with -ENOBUFS and queues nothing;
 *  - contexts per real uid (max_user_contexts): open() fails with EMFILE;
 *  - ring memory charged to the opener's memory cgroup;
 *  - CAP_IPC_LOCK registrations not charged to the user's locked_vm.
 *
 * The module parameters are written by these tests; every test starts from
 * and ends with the values the module had when the suite started (also after
 * a failed or timed-out test: the next setup and the suite's exit restore
 * them).
 */
#include <signal.h>
#include <sys/stat.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "qd_child.h"
#include "harness.h"

#define PARAM_DIR	"/sys/module/qd/parameters/"
#define SETTLE_MS	20000			/* contexts freed, counts settled */
#define CQE_WAIT_NS	(20000 * QD_RAW_MS)	/* one CQE that must come */
#define PAGE_BYTES	4096u			/* every element: one 4 KiB page */
#define MAXQ		256
#define MAXFDS		64

/* --- module parameters ------------------------------------------------- */

static const char *const param_names[] = {
	"max_queued", "max_user_queued", "max_user_contexts",
};
#define NPARAMS	(sizeof(param_names) / sizeof(param_names[0]))
static char param_saved[NPARAMS][32];	/* at suite start; "" if missing */
static pid_t suite_pid;

static int param_write(const char *name, long long v)
{
	char path[128], val[32];

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	snprintf(val, sizeof(val), "%lld", v);
	return qd_write_file(path, val);
}

static void params_restore(void)
{
	unsigned int i;
	char path[128];

	for (i = 0; i < NPARAMS; i++) {
		if (!param_saved[i][0])
			continue;
		snprintf(path, sizeof(path), PARAM_DIR "%s", param_names[i]);
		qd_write_file(path, param_saved[i]);
	}
}

__attribute__((constructor)) static void params_save(void)
{
	unsigned int i;
	char path[128];

	suite_pid = getpid();
	for (i = 0; i < NPARAMS; i++) {
		snprintf(path, sizeof(path), PARAM_DIR "%s", param_names[i]);
		if (qd_read_line(path, param_saved[i], sizeof(param_saved[i])))
			param_saved[i][0] = 0;
	}
}

/* The harness's own process, at exit: whatever a test left, undo it. */
__attribute__((destructor)) static void params_restore_at_exit(void)
{
	if (getpid() == suite_pid)
		params_restore();
}

/* --- a context with queues and one registered page --------------------- */

struct tally {
	unsigned int ok;	/* res == PAGE_BYTES */
	unsigned int enobufs;
	unsigned int other;
	long long bad;		/* the last other res */
};

struct qctx {
	struct qd_raw r;
	char *page;
	struct qd_seg seg;	/* the whole page; every push names it */
	unsigned int nq;
	int qds[MAXQ];
	unsigned int held[MAXQ];	/* pushed, accepted and not popped */
	unsigned int rr;
};

/* c->r is set up and mapped: register a page, create nq queues of depth. */
static int qctx_attach(struct qctx *c, unsigned int nq, unsigned int depth)
{
	unsigned int i, id;
	int ret;

	c->page = qd_raw_pages(PAGE_BYTES);
	if (!c->page)
		return -ENOMEM;
	memset(c->page, 0x6b, PAGE_BYTES);
	ret = qd_raw_register(c->r.fd, c->page, PAGE_BYTES, &id);
	if (ret)
		return ret;
	c->seg = qd_seg((__u16)id, 0, PAGE_BYTES);
	c->nq = nq;
	for (i = 0; i < nq; i++) {
		ret = qd_raw_queue(c->r.fd, depth, &c->qds[i]);
		if (ret)
			return ret;
		c->held[i] = 0;
	}
	c->rr = 0;
	return 0;
}

static int qctx_init(struct qctx *c, unsigned int sq, unsigned int cq,
		     unsigned int nq, unsigned int depth)
{
	int ret;

	memset(c, 0, sizeof(*c));
	ret = qd_raw_init(&c->r, sq, cq);
	if (ret) {
		c->r.fd = -1;
		return ret;
	}
	return qctx_attach(c, nq, depth);
}

static void qctx_exit(struct qctx *c)
{
	if (c->r.fd >= 0 || c->r.sq_ring)
		qd_raw_exit(&c->r);
	if (c->page)
		munmap(c->page, PAGE_BYTES);
	c->page = NULL;
}

static void tally_push(struct qctx *c, const struct qd_cqe *cqe, struct tally *t)
{
	if (cqe->res == PAGE_BYTES) {
		t->ok++;
		if (cqe->user_data < MAXQ)
			c->held[cqe->user_data]++;
	} else if (cqe->res == -ENOBUFS) {
		t->enobufs++;
	} else {
		t->other++;
		t->bad = cqe->res;
	}
}

/*
 * Push n elements (the whole page) into queue q (-1: round robin over all),
 * a ring's worth at a time, reaping each batch; stop after the first batch
 * with an -ENOBUFS. Every push must complete (the caller leaves room in the
 * queues). 0 with the tally, or -errno.
 */
static int push_n(struct qctx *c, int q, unsigned int n, struct tally *t)
{
	struct qd_cqe cqe;
	unsigned int i, k;
	int ret;

	memset(t, 0, sizeof(*t));
	while (n && !t->enobufs) {
		k = n < c->r.sq_entries ? n : c->r.sq_entries;
		for (i = 0; i < k; i++) {
			unsigned int qi = q >= 0 ? (unsigned int)q : c->rr++ % c->nq;
			struct qd_sqe s = qd_sqe_push(c->qds[qi], &c->seg, 1, qi);

			ret = qd_raw_queue_sqe(&c->r, &s);
			if (ret)
				return ret;
		}
		ret = qd_raw_submit(&c->r);
		if (ret < 0)
			return ret;
		if ((unsigned int)ret != k)
			return -EAGAIN;
		for (i = 0; i < k; i++) {
			ret = qd_raw_wait_cqe(&c->r, &cqe, NULL, CQE_WAIT_NS);
			if (ret)
				return ret;
			tally_push(c, &cqe, t);
		}
		n -= k;
	}
	return 0;
}

/*
 * Pop n elements from queue q (-1: from any queue holding some), which must
 * all be there. Returns how many came back whole (res = PAGE_BYTES and the
 * pushed segment), or -errno.
 */
static int pop_n(struct qctx *c, int q, unsigned int n)
{
	unsigned int i, k, ok = 0, want[MAXQ];
	struct qd_cqe cqe;
	struct qd_elem el;
	int ret;

	while (n) {
		k = n < c->r.sq_entries ? n : c->r.sq_entries;
		memcpy(want, c->held, sizeof(want));
		for (i = 0; i < k; i++) {
			unsigned int qi = 0;
			struct qd_sqe s;

			if (q >= 0) {
				qi = (unsigned int)q;
			} else {
				while (qi < c->nq && !want[qi])
					qi++;
				if (qi == c->nq)
					return -ENOENT;
				want[qi]--;
			}
			s = qd_sqe_pop(c->qds[qi], qi);
			ret = qd_raw_queue_sqe(&c->r, &s);
			if (ret)
				return ret;
		}
		ret = qd_raw_submit(&c->r);
		if (ret < 0)
			return ret;
		if ((unsigned int)ret != k)
			return -EAGAIN;
		for (i = 0; i < k; i++) {
			ret = qd_raw_wait_cqe(&c->r, &cqe, &el, CQE_WAIT_NS);
			if (ret)
				return ret;
			if (cqe.res == PAGE_BYTES && cqe.nsegs == 1 &&
			    qd_seg_eq(&el.segs[0], &c->seg)) {
				ok++;
				if (cqe.user_data < MAXQ && c->held[cqe.user_data])
					c->held[cqe.user_data]--;
			}
		}
		n -= k;
	}
	return (int)ok;
}

/* Elements held, over all contexts (root's view of /proc/qd), or -1. */
static long long proc_queued(void)
{
	struct qd_proc s;

	return qd_proc_read(&s) ? -1 : s.queued;
}

/* Wait until /proc/qd shows at most v elements held: the last reading. */
static long long proc_wait_queued(long long v, int ms)
{
	long long end = qd_now_ns() + ms * QD_RAW_MS, cur;

	for (;;) {
		cur = proc_queued();
		if (cur <= v || qd_now_ns() > end)
			return cur;
		qd_sleep_ms(10);
	}
}

/* A deferred NOP: completes from a softirq hrtimer delay_ns after submission. */
static struct qd_sqe nop_softirq(__u64 user_data, __u64 delay_ns)
{
	struct qd_sqe s = qd_sqe_nop(user_data);

	s.nop_flags = QD_NOP_SOFTIRQ;
	s.delay_ns = delay_ns;
	return s;
}

/* --- workers: a context in a child process, driven over pipes ---------- */

enum { W_PUSH = 1, W_POP, W_OPEN, W_CLOSE, W_CLOSE_PENDING, W_EXIT };

struct wmsg {
	int op, n;		/* command */
	int err;		/* reply: 0 or -errno */
	struct tally t;		/* W_PUSH */
	/*
	 * W_POP: popped; W_OPEN: opened; W_CLOSE_PENDING: the result of the
	 * open tried right after the close (0 or -errno)
	 */
	int count;
	__u32 max_queued, features;	/* hello */
};

struct wcfg {
	uid_t uid;		/* 0: stay root */
	rlim_t memlock;		/* 0: leave RLIMIT_MEMLOCK */
	unsigned int sq, cq;	/* 0: no context at start */
	unsigned int nq, depth;
};

struct worker {
	pid_t pid;
	int to, from;
};

static int reply(int fd, struct wmsg *m)
{
	return write(fd, m, sizeof(*m)) == sizeof(*m) ? 0 : -EIO;
}

static int fds_open(int *fds, int *nfds, int n, int *err)
{
	int opened = 0;

	*err = 0;
	while (opened < n && *nfds < MAXFDS) {
		int fd = qd_raw_open();

		if (fd < 0) {
			*err = fd;
			break;
		}
		fds[(*nfds)++] = fd;
		opened++;
	}
	return opened;
}

/*
 * Take one open context, give it a deferred NOP of delay_ns, close it, and
 * try to open a context again at once. 0 (with *open_err the open's result,
 * 0 if it worked), or -errno.
 */
static int close_with_pending_nop(int *fds, int *nfds, __u64 delay_ns, int *open_err)
{
	struct qd_raw r;
	struct qd_sqe s = nop_softirq(1, delay_ns);
	int ret;

	if (!*nfds)
		return -ENOENT;
	memset(&r, 0, sizeof(r));
	r.fd = fds[--(*nfds)];
	r.p.sq_entries = 4;
	r.p.cq_entries = 8;
	ret = qd_raw_setup(r.fd, &r.p);
	if (!ret)
		ret = qd_raw_map(&r);
	if (!ret)
		ret = qd_raw_queue_sqe(&r, &s);
	if (!ret)
		ret = qd_raw_submit(&r);
	if (ret == 1 && qd_raw_cq_ready(&r))
		ret = -EALREADY;	/* completed at once: not deferred */
	qd_raw_exit(&r);
	if (ret != 1)
		return ret < 0 ? ret : -EIO;
	fds_open(fds, nfds, 1, open_err);
	return 0;
}

static void __attribute__((noreturn)) worker_main(const struct wcfg *cfg, int in, int out)
{
	static struct qctx c;	/* big: not on the stack */
	int fds[MAXFDS], nfds = 0;
	struct wmsg m = { 0 };

	memset(&c, 0, sizeof(c));
	c.r.fd = -1;
	if (cfg->memlock)
		m.err = qd_set_memlock(cfg->memlock);
	if (!m.err && cfg->uid)
		m.err = qd_become_uid(cfg->uid);
	if (!m.err && cfg->sq) {
		m.err = qctx_init(&c, cfg->sq, cfg->cq, cfg->nq, cfg->depth);
		m.max_queued = c.r.p.max_queued;
		m.features = c.r.p.features;
	}
	if (reply(out, &m))
		_exit(1);
	for (;;) {
		struct wmsg cmd;

		if (read(in, &cmd, sizeof(cmd)) != sizeof(cmd))
			_exit(1);	/* the test is gone */
		memset(&m, 0, sizeof(m));
		m.op = cmd.op;
		switch (cmd.op) {
		case W_PUSH:
			m.err = c.r.sqes ? push_n(&c, -1, (unsigned int)cmd.n, &m.t) : -ENXIO;
			break;
		case W_POP:
			m.count = c.r.sqes ? pop_n(&c, -1, (unsigned int)cmd.n) : -ENXIO;
			break;
		case W_OPEN:
			m.count = fds_open(fds, &nfds, cmd.n, &m.err);
			break;
		case W_CLOSE:
			while (cmd.n-- > 0 && nfds > 0)
				close(fds[--nfds]);
			break;
		case W_CLOSE_PENDING:
			m.err = close_with_pending_nop(fds, &nfds, QD_NOP_MAX_DELAY_NS, &m.count);
			break;
		case W_EXIT:
			qctx_exit(&c);
			while (nfds > 0)
				close(fds[--nfds]);
			reply(out, &m);
			_exit(0);
		default:
			m.err = -EINVAL;
		}
		if (reply(out, &m))
			_exit(1);
	}
}

/* Start a worker; *hello is its first reply (context set up or not). */
static int worker_start(struct worker *w, const struct wcfg *cfg, struct wmsg *hello)
{
	int to[2], from[2];

	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		return -errno;
	w->pid = fork();
	if (w->pid < 0)
		return -errno;
	if (!w->pid) {
		close(to[1]);
		close(from[0]);
		worker_main(cfg, to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	w->to = to[1];
	w->from = from[0];
	if (read(w->from, hello, sizeof(*hello)) != sizeof(*hello))
		return -EPIPE;
	return hello->err;
}

static int worker_do(struct worker *w, int op, int n, struct wmsg *rep)
{
	struct wmsg cmd = { .op = op, .n = n };

	if (write(w->to, &cmd, sizeof(cmd)) != sizeof(cmd))
		return -EPIPE;
	if (read(w->from, rep, sizeof(*rep)) != sizeof(*rep))
		return -EPIPE;
	return 0;
}

/* Ask a worker to exit and reap it: its exit status, or -1. */
static int worker_stop(struct worker *w)
{
	struct wmsg rep;
	int st;

	if (w->pid <= 0)
		return -1;
	worker_do(w, W_EXIT, 0, &rep);
	close(w->to);
	close(w->from);
	st = qd_wait_child(w->pid);
	w->pid = 0;
	return st;
}

static void worker_kill(struct worker *w)
{
	if (w->pid <= 0)
		return;
	kill(w->pid, SIGKILL);
	qd_wait_child(w->pid);
	close(w->to);
	close(w->from);
	w->pid = 0;
}

/* --- fixture ------------------------------------------------------------ */

FIXTURE(limits) {
	struct worker w[4];
	struct qctx c[2];
	char cgroup[256];	/* made by the test: removed in teardown */
	int cg_enabled_memory;
	long long queued0;	/* /proc/qd queued at the start */
};

FIXTURE_SETUP(limits)
{
	params_restore();
	/* per-uid counts: no context of an earlier test may be left */
	ASSERT_EQ(0, qd_proc_wait_idle(0, 0, SETTLE_MS, NULL))
		TH_LOG("contexts of earlier tests are still there");
	self->c[0].r.fd = self->c[1].r.fd = -1;
	self->queued0 = proc_queued();
}

FIXTURE_TEARDOWN(limits)
{
	unsigned int i;

	for (i = 0; i < 4; i++)
		worker_kill(&self->w[i]);
	qctx_exit(&self->c[0]);
	qctx_exit(&self->c[1]);
	if (self->cgroup[0]) {
		/* the worker is gone; its charges may linger, rmdir copes */
		rmdir(self->cgroup);
		qd_cgroup_memory_restore(self->cg_enabled_memory);
	}
	params_restore();
}

#define ASSERT_PARAM(name, v) \
	ASSERT_EQ(0, param_write(name, v)) TH_LOG("cannot write %s%s", PARAM_DIR, name)

/* --- per context -------------------------------------------------------- */

TEST_F(limits, parameters_are_root_writable_with_documented_defaults)
{
	static const long long defaults[] = { 65536, 262144, 128 };
	char path[128];
	struct stat st;
	unsigned int i;

	for (i = 0; i < NPARAMS; i++) {
		snprintf(path, sizeof(path), PARAM_DIR "%s", param_names[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s is missing", path);
		EXPECT_EQ(0644u, st.st_mode & 0777) TH_LOG("%s", path);
		/* a module loaded with other values would not be the default */
		EXPECT_EQ(defaults[i], strtoll(param_saved[i], NULL, 10))
			TH_LOG("%s = %s", path, param_saved[i]);
	}
}

TEST_F(limits, setup_returns_max_queued_sampled_at_open)
{
	struct qctx *a = &self->c[0], *b = &self->c[1];
	struct tally t;

	ASSERT_PARAM("max_queued", 64);
	memset(a, 0, sizeof(*a));
	a->r.fd = qd_raw_open();
	ASSERT_LE(0, a->r.fd);
	/* changed after A's open, before its setup: A keeps 64 */
	ASSERT_PARAM("max_queued", 96);
	a->r.p.sq_entries = 128;
	a->r.p.cq_entries = 256;
	ASSERT_EQ(0, qd_raw_setup(a->r.fd, &a->r.p));
	EXPECT_EQ(64u, a->r.p.max_queued);
	EXPECT_TRUE(!!(a->r.p.features & QD_FEAT_ELEM_LIMIT));
	ASSERT_EQ(0, qd_raw_map(&a->r));
	ASSERT_EQ(0, qctx_attach(a, 4, 0));

	ASSERT_EQ(0, qctx_init(b, 128, 256, 4, 0));
	EXPECT_EQ(96u, b->r.p.max_queued);

	/* each context takes exactly what it was told */
	ASSERT_EQ(0, push_n(a, -1, 128, &t));
	EXPECT_EQ(64u, t.ok);
	EXPECT_LT(0u, t.enobufs);
	EXPECT_EQ(0u, t.other) TH_LOG("res %lld", t.bad);
	ASSERT_EQ(0, push_n(b, -1, 128, &t));
	EXPECT_EQ(96u, t.ok);
	EXPECT_LT(0u, t.enobufs);
	EXPECT_EQ(0u, t.other) TH_LOG("res %lld", t.bad);
}

TEST_F(limits, push_beyond_max_queued_is_enobufs_and_queues_nothing)
{
	struct qctx *c = &self->c[0];
	struct qd_cqe cqe;
	struct qd_sqe s;
	struct tally t;

	ASSERT_PARAM("max_queued", 64);
	ASSERT_EQ(0, qctx_init(c, 128, 256, 2, 0));
	ASSERT_EQ(64u, c->r.p.max_queued);

	/* the bound is over the context, not per queue */
	ASSERT_EQ(0, push_n(c, 0, 32, &t));
	ASSERT_EQ(32u, t.ok);
	ASSERT_EQ(0, push_n(c, 1, 32, &t));
	ASSERT_EQ(32u, t.ok);
	ASSERT_EQ(0, push_n(c, 0, 1, &t));
	EXPECT_EQ(1u, t.enobufs) TH_LOG("ok %u other %u res %lld", t.ok, t.other, t.bad);
	ASSERT_EQ(0, push_n(c, 1, 3, &t));
	EXPECT_EQ(3u, t.enobufs) TH_LOG("ok %u other %u res %lld", t.ok, t.other, t.bad);
	EXPECT_EQ(self->queued0 + 64, proc_queued());

	/* queue 0 holds exactly its 32: the refused push left nothing there */
	EXPECT_EQ(32, pop_n(c, 0, 32));
	s = qd_sqe_pop(c->qds[0], 999);
	ASSERT_EQ(0, qd_raw_queue_sqe(&c->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&c->r));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&c->r, &cqe, NULL, 30 * QD_RAW_MS))
		TH_LOG("a pop found an element: res %lld", cqe.res);
	ASSERT_EQ(0, qd_raw_close(c->r.fd, c->qds[0]));
	ASSERT_EQ(0, qd_raw_wait_cqe(&c->r, &cqe, NULL, CQE_WAIT_NS));
	EXPECT_EQ(999u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);

	/* popping gave the budget back: 32 more fit, the 33rd does not */
	EXPECT_EQ(self->queued0 + 32, proc_queued());
	ASSERT_EQ(0, push_n(c, 1, 40, &t));
	EXPECT_EQ(32u, t.ok);
	EXPECT_LT(0u, t.enobufs);
	EXPECT_EQ(0u, t.other) TH_LOG("res %lld", t.bad);
	EXPECT_EQ(64, pop_n(c, 1, 64));
	EXPECT_EQ(self->queued0, proc_queued());
}

TEST_F(limits, pending_pushes_hold_elements_until_their_queue_closes)
{
	struct qctx *c = &self->c[0];
	unsigned int i, cancelled = 0;
	struct qd_cqe cqe;
	struct tally t;

	ASSERT_PARAM("max_queued", 64);
	ASSERT_EQ(0, qctx_init(c, 128, 256, 1, 16));
	/* 16 go into the queue, 48 wait for room */
	for (i = 0; i < 64; i++) {
		struct qd_sqe s = qd_sqe_push(c->qds[0], &c->seg, 1, 0);

		ASSERT_EQ(0, qd_raw_queue_sqe(&c->r, &s));
	}
	ASSERT_EQ(64, qd_raw_submit(&c->r));
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(&c->r, &cqe, NULL, CQE_WAIT_NS));
		EXPECT_EQ(PAGE_BYTES, cqe.res);
	}
	EXPECT_EQ(self->queued0 + 64, proc_queued());
	/* the 65th element is refused at once, while 48 pushes still wait */
	ASSERT_EQ(0, push_n(c, 0, 1, &t));
	EXPECT_EQ(1u, t.enobufs) TH_LOG("ok %u other %u res %lld", t.ok, t.other, t.bad);

	/* closing the queue cancels the waiting pushes and drops everything */
	ASSERT_EQ(0, qd_raw_close(c->r.fd, c->qds[0]));
	for (i = 0; i < 48; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(&c->r, &cqe, NULL, CQE_WAIT_NS));
		cancelled += cqe.res == -ECANCELED;
	}
	EXPECT_EQ(48u, cancelled);
	EXPECT_EQ(self->queued0, proc_queued());
	ASSERT_EQ(0, qd_raw_queue(c->r.fd, 0, &c->qds[0]));
	c->held[0] = 0;
	ASSERT_EQ(0, push_n(c, 0, 80, &t));
	EXPECT_EQ(64u, t.ok);
	EXPECT_LT(0u, t.enobufs);
}

/*
 * "Held until the pop's CQE is in the ring": pops whose CQEs are parked in
 * the overflow list still hold their elements; moving them into the ring
 * gives the budget back.
 */
TEST_F(limits, element_held_until_its_pop_cqe_is_in_the_ring)
{
	struct qctx *c = &self->c[0];
	unsigned int i, pops = 0, push_ok = 0, push_enobufs = 0, other = 0;
	struct qd_cqe cqe;
	struct qd_sqe s;
	struct tally t;

	ASSERT_PARAM("max_queued", 12);
	ASSERT_EQ(0, qctx_init(c, 8, 8, 1, 64));
	ASSERT_EQ(0, push_n(c, 0, 12, &t));
	ASSERT_EQ(12u, t.ok);

	/* 8 pops fill the CQ, 4 more are parked: 4 elements still held */
	for (i = 0; i < 8; i++) {
		s = qd_sqe_pop(c->qds[0], 100 + i);
		ASSERT_EQ(0, qd_raw_queue_sqe(&c->r, &s));
	}
	ASSERT_EQ(8, qd_raw_submit(&c->r));
	for (i = 0; i < 4; i++) {
		s = qd_sqe_pop(c->qds[0], 108 + i);
		ASSERT_EQ(0, qd_raw_queue_sqe(&c->r, &s));
	}
	ASSERT_EQ(4, qd_raw_submit(&c->r));
	ASSERT_EQ(4u, *c->r.cq_overflow);
	/* so of 9 pushes 8 fit (4 + 8 = 12), the 9th does not */
	for (i = 0; i < 8; i++) {
		s = qd_sqe_push(c->qds[0], &c->seg, 1, 200 + i);
		ASSERT_EQ(0, qd_raw_queue_sqe(&c->r, &s));
	}
	ASSERT_EQ(8, qd_raw_submit(&c->r));
	s = qd_sqe_push(c->qds[0], &c->seg, 1, 208);
	ASSERT_EQ(0, qd_raw_queue_sqe(&c->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&c->r));
	for (i = 0; i < 21; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(&c->r, &cqe, NULL, CQE_WAIT_NS));
		if (cqe.opcode == QD_OP_POP && cqe.res == PAGE_BYTES)
			pops++;
		else if (cqe.opcode == QD_OP_PUSH && cqe.res == PAGE_BYTES)
			push_ok++;
		else if (cqe.opcode == QD_OP_PUSH && cqe.res == -ENOBUFS)
			push_enobufs++;
		else
			other++;
	}
	EXPECT_EQ(12u, pops);
	EXPECT_EQ(8u, push_ok);
	EXPECT_EQ(1u, push_enobufs);
	EXPECT_EQ(0u, other);
	/* the parked pops are in the ring now: 8 held, 4 more fit */
	c->held[0] = 8;
	ASSERT_EQ(0, push_n(c, 0, 8, &t));
	EXPECT_EQ(4u, t.ok);
	EXPECT_LT(0u, t.enobufs);
}

/* --- per user ----------------------------------------------------------- */

#define EXPECT_PUSHES(w, n, want_ok, want_refused) do {			\
	struct wmsg __r;						\
	ASSERT_EQ(0, worker_do((w), W_PUSH, (n), &__r));		\
	ASSERT_EQ(0, __r.err) TH_LOG("push: %s", strerror(-__r.err));	\
	EXPECT_EQ((unsigned int)(want_ok), __r.t.ok);			\
	if (want_refused) {						\
		EXPECT_LT(0u, __r.t.enobufs);				\
	} else {							\
		EXPECT_EQ(0u, __r.t.enobufs);				\
	}								\
	EXPECT_EQ(0u, __r.t.other) TH_LOG("res %lld", __r.t.bad);	\
} while (0)

TEST_F(limits, max_user_queued_bounds_all_contexts_of_a_uid)
{
	struct wcfg nobody = { .uid = QD_NOBODY, .sq = 64, .cq = 128, .nq = 2, .depth = 1024 };
	struct wcfg root = { .uid = 0, .sq = 64, .cq = 128, .nq = 2, .depth = 1024 };
	struct wmsg hello, rep;

	ASSERT_PARAM("max_user_queued", 100);
	ASSERT_EQ(0, worker_start(&self->w[0], &nobody, &hello));
	ASSERT_EQ(0, worker_start(&self->w[1], &nobody, &hello));
	ASSERT_EQ(0, worker_start(&self->w[2], &root, &hello));

	/* A and B (both nobody) share 100; each is far below max_queued */
	EXPECT_PUSHES(&self->w[0], 60, 60, 0);
	EXPECT_PUSHES(&self->w[1], 60, 40, 1);
	/* root's elements are not nobody's */
	EXPECT_PUSHES(&self->w[2], 50, 50, 0);
	EXPECT_EQ(self->queued0 + 150, proc_queued());

	/* A pops 10: B gets exactly those 10 */
	ASSERT_EQ(0, worker_do(&self->w[0], W_POP, 10, &rep));
	ASSERT_EQ(10, rep.count);
	EXPECT_PUSHES(&self->w[1], 20, 10, 1);

	/* raising the parameter applies to live contexts at once */
	ASSERT_PARAM("max_user_queued", 120);
	EXPECT_PUSHES(&self->w[1], 30, 20, 1);
	EXPECT_EQ(self->queued0 + 170, proc_queued());

	/* A's exit drops its 50 elements: B may use them */
	EXPECT_EQ(0, worker_stop(&self->w[0]));
	EXPECT_EQ(self->queued0 + 120, proc_wait_queued(self->queued0 + 120, SETTLE_MS));
	EXPECT_PUSHES(&self->w[1], 60, 50, 1);
}

/*
 * The attack from issue 6, bounded: nobody with a 64 KiB memlock limit
 * pushes one 4 KiB page into many queues. The old module took every push
 * (a million grew slab by 220 MB); now exactly max_queued are held.
 */
TEST_F(limits, many_queues_one_page_stop_at_max_queued)
{
	struct wcfg cfg = {
		.uid = QD_NOBODY, .memlock = 64 * 1024,
		.sq = 256, .cq = 512, .nq = MAXQ, .depth = 64,
	};
	struct wmsg hello;

	ASSERT_PARAM("max_queued", 4096);
	ASSERT_EQ(0, worker_start(&self->w[0], &cfg, &hello));
	EXPECT_EQ(4096u, hello.max_queued);
	/* room for 16384 in the queues: only the bound can refuse */
	EXPECT_PUSHES(&self->w[0], 4096 + 1024, 4096, 1);
	EXPECT_EQ(self->queued0 + 4096, proc_queued());
	EXPECT_EQ(0, worker_stop(&self->w[0]));
	EXPECT_EQ(self->queued0, proc_wait_queued(self->queued0, SETTLE_MS));
}

TEST_F(limits, max_user_contexts_is_emfile_for_that_uid_only)
{
	struct wcfg nobody = { .uid = QD_NOBODY };
	long long end;
	struct wmsg hello, rep;
	int fds[4], i;

	ASSERT_PARAM("max_user_contexts", 8);
	ASSERT_EQ(0, worker_start(&self->w[0], &nobody, &hello));
	ASSERT_EQ(0, worker_do(&self->w[0], W_OPEN, 20, &rep));
	EXPECT_EQ(8, rep.count);
	EXPECT_EQ(-EMFILE, rep.err);

	/* root's opens are not nobody's */
	for (i = 0; i < 4; i++) {
		fds[i] = qd_raw_open();
		EXPECT_LE(0, fds[i]) TH_LOG("root open %d: %s", i, strerror(-fds[i]));
	}
	for (i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);

	/* closing one lets one more in (once it is freed) */
	ASSERT_EQ(0, worker_do(&self->w[0], W_CLOSE, 1, &rep));
	end = qd_now_ns() + SETTLE_MS * QD_RAW_MS;
	do {
		ASSERT_EQ(0, worker_do(&self->w[0], W_OPEN, 1, &rep));
		if (rep.count)
			break;
		qd_sleep_ms(10);
	} while (qd_now_ns() < end);
	EXPECT_EQ(1, rep.count) TH_LOG("open after close: %s", strerror(-rep.err));
	ASSERT_EQ(0, worker_do(&self->w[0], W_OPEN, 1, &rep));
	EXPECT_EQ(0, rep.count);
	EXPECT_EQ(-EMFILE, rep.err);

	/* the parameter applies at once */
	ASSERT_PARAM("max_user_contexts", 10);
	ASSERT_EQ(0, worker_do(&self->w[0], W_OPEN, 5, &rep));
	EXPECT_EQ(2, rep.count);
	EXPECT_EQ(-EMFILE, rep.err);
}

TEST_F(limits, closed_context_with_ops_in_flight_counts_until_freed)
{
	struct wcfg nobody = { .uid = QD_NOBODY };
	struct wmsg hello, rep;
	long long end;

	ASSERT_PARAM("max_user_contexts", 4);
	ASSERT_EQ(0, worker_start(&self->w[0], &nobody, &hello));
	ASSERT_EQ(0, worker_do(&self->w[0], W_OPEN, 4, &rep));
	ASSERT_EQ(4, rep.count);
	/*
	 * Close one with a deferred NOP (1 s) in flight and open at once: the
	 * closed context still counts.
	 */
	ASSERT_EQ(0, worker_do(&self->w[0], W_CLOSE_PENDING, 0, &rep));
	ASSERT_EQ(0, rep.err) TH_LOG("deferred NOP: %s", strerror(-rep.err));
	EXPECT_EQ(-EMFILE, rep.count);
	/* once the NOP has completed and the context is freed, it does not */
	end = qd_now_ns() + SETTLE_MS * QD_RAW_MS;
	do {
		ASSERT_EQ(0, worker_do(&self->w[0], W_OPEN, 1, &rep));
		if (rep.count)
			break;
		EXPECT_EQ(-EMFILE, rep.err);
		qd_sleep_ms(20);
	} while (qd_now_ns() < end);
	EXPECT_EQ(1, rep.count);
}

/* --- memory cgroup ------------------------------------------------------ */

/*
 * The rings (sq 4096 / cq 16384: about 2.9 MB) are charged to the opener's
 * memory cgroup. The old module allocated them with vmalloc_user() and
 * charged nothing. Part of the charge may be pre-paid by the per-CPU charge
 * stock (up to MEMCG_CHARGE_BATCH = 64 pages per CPU, 2 CPUs), which a
 * measurement around one allocation cannot see.
 */
TEST_F(limits, ring_memory_charged_to_openers_memcg)
{
	const long long slack = 2 * 64 * (long long)qd_page_size();
	char why[256];
	int sync[2];
	pid_t pid;
	long long vals[4];	/* before, after, sq bytes, cq bytes */
	int ret;

	ret = qd_cgroup_memory_ready(&self->cg_enabled_memory, why, sizeof(why));
	if (ret)
		SKIP(return, "%s", why);
	snprintf(self->cgroup, sizeof(self->cgroup), QD_CGROUP_ROOT "/qd-limits-%d", getpid());
	ASSERT_EQ(0, mkdir(self->cgroup, 0755)) TH_LOG("mkdir %s: %m", self->cgroup);
	ASSERT_EQ(0, pipe(sync));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw r;

		close(sync[0]);
		memset(vals, 0, sizeof(vals));
		CHILD_CHECK(qd_cgroup_enter(self->cgroup) == 0);
		memset(&r, 0, sizeof(r));
		r.fd = qd_raw_open();
		CHILD_CHECK(r.fd >= 0);
		r.p.sq_entries = QD_MAX_SQ_ENTRIES;
		r.p.cq_entries = QD_MAX_CQ_ENTRIES;
		vals[0] = qd_cgroup_memory_current(self->cgroup);
		CHILD_CHECK(qd_raw_setup(r.fd, &r.p) == 0);
		vals[1] = qd_cgroup_memory_current(self->cgroup);
		vals[2] = r.p.sq_ring_bytes;
		vals[3] = r.p.cq_ring_bytes;
		CHILD_CHECK(write(sync[1], vals, sizeof(vals)) == sizeof(vals));
		close(r.fd);
		_exit(0);
	}
	close(sync[1]);
	ret = (int)read(sync[0], vals, sizeof(vals));
	close(sync[0]);
	EXPECT_EQ(0, qd_wait_child(pid));
	ASSERT_EQ((int)sizeof(vals), ret);
	ASSERT_LE(0, vals[0]);
	ASSERT_LE(0, vals[1]);
	TH_LOG("memory.current %lld -> %lld (+%lld), rings %lld + %lld bytes",
	       vals[0], vals[1], vals[1] - vals[0], vals[2], vals[3]);
	EXPECT_LE(2800000, vals[2] + vals[3]);
	EXPECT_LE(vals[2] + vals[3] - slack, vals[1] - vals[0]);
}

/* --- CAP_IPC_LOCK ------------------------------------------------------- */

/*
 * A capable process pins 1 MiB under a 64 KiB memlock limit; a later
 * process of the same uid without CAP_IPC_LOCK, also limited to 64 KiB,
 * must still be able to register 32 KiB. The old module charged the capable
 * process's pins to the user's locked_vm too, so the second got -ENOMEM.
 * The capable process's mm still shows the pin (VmPin).
 */
TEST_F(limits, cap_ipc_lock_registration_does_not_charge_users_locked_vm)
{
	int ready[2], done[2];
	pid_t capable, plain;
	char c = 0;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(done));
	capable = fork();
	ASSERT_LE(0, capable);
	if (!capable) {
		struct qd_raw r;
		char *m = qd_raw_pages(1 << 20);
		long long pin0, pin1;

		close(ready[0]);
		close(done[1]);
		CHILD_CHECK(m);
		CHILD_CHECK(qd_set_memlock(64 * 1024) == 0);
		CHILD_CHECK(qd_raw_init(&r, 4, 8) == 0);
		pin0 = qd_status_kb(getpid(), "VmPin");
		CHILD_CHECK(qd_raw_register(r.fd, m, 1 << 20, NULL) == 0);
		pin1 = qd_status_kb(getpid(), "VmPin");
		/* pinned_vm is charged either way */
		CHILD_CHECK(pin0 < 0 || pin1 - pin0 == 1024);
		CHILD_CHECK(write(ready[1], "r", 1) == 1);
		/* hold the pin until the other child is done */
		CHILD_CHECK(read(done[0], &c, 1) == 0);
		qd_raw_exit(&r);
		_exit(0);
	}
	close(ready[1]);
	close(done[0]);
	ASSERT_EQ(1, read(ready[0], &c, 1)) TH_LOG("the capable child failed");

	plain = fork();
	ASSERT_LE(0, plain);
	if (!plain) {
		struct qd_raw r;
		char *m = qd_raw_pages(128 * 1024);
		unsigned int id;

		CHILD_CHECK(m);
		CHILD_CHECK(qd_drop_ipc_lock() == 0);
		CHILD_CHECK(qd_set_memlock(64 * 1024) == 0);
		CHILD_CHECK(qd_raw_init(&r, 4, 8) == 0);
		CHILD_CHECK(qd_raw_register(r.fd, m, 32 * 1024, &id) == 0);
		/* the limit still applies to it: 32 + 48 KiB > 64 KiB */
		CHILD_CHECK(qd_raw_register(r.fd, m + 32 * 1024, 48 * 1024, NULL) == -ENOMEM);
		CHILD_CHECK(qd_raw_unregister(r.fd, id) == 0);
		qd_raw_exit(&r);
		_exit(0);
	}
	EXPECT_EQ(0, qd_wait_child(plain));
	close(done[1]);
	close(ready[0]);
	EXPECT_EQ(0, qd_wait_child(capable));
}

TEST_HARNESS_MAIN
