// SPDX-License-Identifier: GPL-2.0
/*
 * lifecycle: what happens to a context when its process exits, is killed,
 * forks or closes the fd; /proc/qd and the debugfs view of a context.
 */
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <linux/userfaultfd.h>
#include <sys/syscall.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "qd_child.h"
#include "harness.h"

#define REGION_PAGES	16
#define SETTLE_MS	3000	/* how long a release may take to show in /proc/qd */

FIXTURE(lifecycle) {
	size_t pg;
	char *buf;
	struct qd_proc base;	/* /proc/qd before the test made anything */
};

FIXTURE_SETUP(lifecycle)
{
	self->pg = qd_page_size();
	self->buf = qd_raw_pages(REGION_PAGES * self->pg);
	ASSERT_NE(NULL, self->buf);
	/* start from a quiet module: earlier tests' contexts are gone */
	ASSERT_NE(-ENOENT, qd_proc_wait_idle(0, 0, SETTLE_MS, NULL))
		TH_LOG("%s: is qd.ko loaded?", QD_PROC_PATH);
	ASSERT_EQ(0, qd_proc_read(&self->base));
}

FIXTURE_TEARDOWN(lifecycle)
{
	if (self->buf)
		munmap(self->buf, REGION_PAGES * self->pg);
}

#define EXPECT_SETTLED(base) QD_EXPECT_SETTLED((base), SETTLE_MS)

static int submit_one(struct qd_raw *r, struct qd_sqe s)
{
	int ret = qd_raw_queue_sqe(r, &s);

	return ret ? ret : qd_raw_submit(r);
}

/*
 * Give a context everything that must be released: two regions, a queue
 * with queued elements, a queue with pending pops, a full queue with a
 * pending push, unreaped CQEs, and a second context with an overflowed CQ.
 * Returns 0 or the failing step. Counts added: contexts 2, queues 3 + 1,
 * regions 2 + 1, pinned pages REGION_PAGES + 1, inflight >= 3, queued
 * 3 + 2 (the pending push holds one) + 1 elements and 2 waiting pops.
 */
static int make_busy(struct qd_raw *r, struct qd_raw *r2, char *buf, size_t pg)
{
	static struct qd_seg segs[4];
	unsigned int a, b, c;
	int qa, qb, qc, q2, i;

	if (qd_raw_init(r, 8, 16) || qd_raw_init(r2, 4, 8))
		return 1;
	if (qd_raw_register(r->fd, buf, (REGION_PAGES - 1) * pg, &a) ||
	    qd_raw_register(r->fd, buf + (REGION_PAGES - 1) * pg, pg, &b) ||
	    qd_raw_register(r2->fd, buf, pg, &c))
		return 2;
	if (qd_raw_queue(r->fd, 0, &qa) || qd_raw_queue(r->fd, 0, &qb) ||
	    qd_raw_queue(r->fd, 1, &qc) || qd_raw_queue(r2->fd, 0, &q2))
		return 3;
	segs[0] = qd_seg(a, 0, 100);
	segs[1] = qd_seg(b, 0, 100);
	segs[2] = qd_seg(a, pg, 100);
	segs[3] = qd_seg(c, 0, 10);
	/* qa: three queued elements over both regions */
	for (i = 0; i < 3; i++)
		if (submit_one(r, qd_sqe_push(qa, &segs[i], 1, i)) != 1)
			return 4;
	/* qb: two pending pops */
	for (i = 0; i < 2; i++)
		if (submit_one(r, qd_sqe_pop(qb, 10 + i)) != 1)
			return 5;
	/* qc (depth 1): one element and one pending push */
	if (submit_one(r, qd_sqe_push(qc, &segs[0], 1, 20)) != 1 ||
	    submit_one(r, qd_sqe_push(qc, &segs[1], 1, 21)) != 1)
		return 6;
	/* r2: more NOP completions than its CQ holds, and an element */
	if (submit_one(r2, qd_sqe_push(q2, &segs[3], 1, 30)) != 1)
		return 7;
	for (i = 0; i < 3; i++) {
		struct qd_sqe s[4] = { qd_sqe_nop(0), qd_sqe_nop(1), qd_sqe_nop(2), qd_sqe_nop(3) };

		for (int j = 0; j < 4; j++)
			qd_raw_queue_sqe(r2, &s[j]);
		if (qd_raw_submit(r2) < 0)
			return 8;
	}
	if (!(*r2->cq_flags & QD_CQ_F_OVERFLOW))
		return 9;
	return 0;
}

static void check_busy_counts(struct __test_metadata *_metadata,
			      const struct qd_proc *base, size_t pg)
{
	struct qd_proc now;

	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base->contexts + 2, now.contexts);
	EXPECT_EQ(base->queues + 4, now.queues);
	EXPECT_EQ(base->regions + 3, now.regions);
	EXPECT_EQ(base->pinned_pages + REGION_PAGES + 1, now.pinned_pages);
	EXPECT_LE(base->inflight + 3, now.inflight);
	EXPECT_EQ(base->queued + 6 + 2, now.queued);
	(void)pg;
}

enum child_end { END_EXIT, END_KILL, END_KILL_IN_ENTER };

static void busy_child_test(struct __test_metadata *_metadata,
			    FIXTURE_DATA(lifecycle) *self, enum child_end how)
{
	int ready[2], go[2], st;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw r, r2;
		int step;

		close(ready[0]);
		close(go[1]);
		step = make_busy(&r, &r2, self->buf, self->pg);
		if (step) {
			fprintf(stderr, "# child: make_busy failed at step %d\n", step);
			_exit(step);
		}
		CHILD_CHECK(write(ready[1], "r", 1) == 1);
		/* the parent has looked at /proc/qd when go closes */
		CHILD_CHECK(read(go[0], &c, 1) == 0);
		switch (how) {
		case END_EXIT:
			_exit(0);	/* nothing closed, unmapped or reaped */
		case END_KILL:
			for (;;)
				pause();
		case END_KILL_IN_ENTER:
			/* asleep in the kernel waiting for a CQE that never comes */
			qd_raw_enter(&r, 0, r.cq_entries, QD_ENTER_GETEVENTS, 0);
			_exit(3);
		}
		_exit(2);
	}
	close(ready[1]);
	close(go[0]);
	ASSERT_EQ(1, read(ready[0], &c, 1)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(ready[0]);
	check_busy_counts(_metadata, &self->base, self->pg);
	close(go[1]);
	if (how != END_EXIT) {
		qd_sleep_ms(20);
		ASSERT_EQ(0, kill(pid, SIGKILL));
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	if (how == END_EXIT) {
		EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	} else {
		EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	}
	EXPECT_SETTLED(&self->base);
}

TEST_F(lifecycle, exit_with_pending_work_releases_everything)
{
	busy_child_test(_metadata, self, END_EXIT);
}

TEST_F(lifecycle, sigkill_with_pending_work_releases_everything)
{
	busy_child_test(_metadata, self, END_KILL);
}

TEST_F(lifecycle, sigkill_while_waiting_in_enter_releases_everything)
{
	busy_child_test(_metadata, self, END_KILL_IN_ENTER);
}

TEST_F(lifecycle, closing_the_fd_with_everything_pending_releases_all)
{
	struct qd_raw r, r2;

	ASSERT_EQ(0, make_busy(&r, &r2, self->buf, self->pg));
	check_busy_counts(_metadata, &self->base, self->pg);
	/* the fd and the ring mappings are the references to drop */
	qd_raw_exit(&r);
	qd_raw_exit(&r2);
	EXPECT_SETTLED(&self->base);
}

TEST_F(lifecycle, exit_returns_the_memlock_charge)
{
	int i;

	/*
	 * Three children in a row, each without CAP_IPC_LOCK, pin 48 KiB of a
	 * 64 KiB allowance and exit without unregistering: if exit leaked the
	 * charge, the second would fail.
	 */
	for (i = 0; i < 3; i++) {
		pid_t pid = fork();
		int st;

		ASSERT_LE(0, pid);
		if (!pid) {
			struct qd_raw r;
			char *m = qd_raw_pages(48 * 1024);

			CHILD_CHECK(m);
			CHILD_CHECK(qd_drop_ipc_lock() == 0);
			CHILD_CHECK(qd_set_memlock(64 * 1024) == 0);
			CHILD_CHECK(qd_raw_init(&r, 4, 8) == 0);
			CHILD_CHECK(qd_raw_register(r.fd, m, 48 * 1024, NULL) == 0);
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &st, 0));
		EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) TH_LOG("child %d", i);
		EXPECT_SETTLED(&self->base);
	}
}

/* --- fork ----------------------------------------------------------------- */

/*
 * In a forked child: every ioctl and mmap of the parent's context is -EPERM
 * and poll says EPOLLERR (not EPOLLIN, although the ring holds CQEs).
 */
static void child_cannot_use(struct qd_raw *r, char *buf, size_t pg,
			     unsigned int id, int qd)
{
	struct qd_params p = { .sq_entries = 8 };
	struct qd_queue_create q = { 0 };
	struct qd_region_reg reg = { .addr = (__u64)(uintptr_t)buf, .len = pg };
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN | POLLRDNORM };
	void *m;

	CHILD_CHECK(qd_raw_enter(r, 0, 0, 0, 0) == -EPERM);
	CHILD_CHECK(qd_raw_enter(r, 0, 1, QD_RAW_WAIT, 0) == -EPERM);
	CHILD_CHECK(qd_raw_ioctl(r->fd, QD_IOC_SETUP, &p) == -EPERM);
	CHILD_CHECK(qd_raw_ioctl(r->fd, QD_IOC_REGISTER, &reg) == -EPERM);
	CHILD_CHECK(qd_raw_unregister(r->fd, id) == -EPERM);
	CHILD_CHECK(qd_raw_ioctl(r->fd, QD_IOC_QUEUE, &q) == -EPERM);
	CHILD_CHECK(qd_raw_close(r->fd, qd) == -EPERM);
	CHILD_CHECK(qd_raw_mmap(r->fd, r->p.sq_ring_bytes, QD_OFF_SQ_RING, &m) == -EPERM);
	CHILD_CHECK(qd_raw_mmap(r->fd, r->p.cq_ring_bytes, QD_OFF_CQ_RING, &m) == -EPERM);
	CHILD_CHECK(poll(&pfd, 1, 0) == 1);
	CHILD_CHECK(pfd.revents & POLLERR);
	CHILD_CHECK(!(pfd.revents & (POLLIN | POLLRDNORM)));
}

/* 1 if [addr, addr + len) is mapped in this process. */
static int is_mapped(void *addr, size_t len)
{
	return !msync(addr, len, MS_ASYNC);
}

/*
 * The parent's context after a child that could not use it: the pop still
 * pending (the child's exit cancelled nothing), the region still its own.
 */
static void parent_context_intact(struct __test_metadata *_metadata,
				  struct qd_raw *r, unsigned int id, int qd)
{
	struct qd_seg seg = qd_seg(id, 8, 24);
	struct qd_cqe cqe;
	struct qd_elem el;
	int i;

	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(r, &cqe, NULL, 20 * QD_RAW_MS));
	ASSERT_EQ(1, submit_one(r, qd_sqe_push(qd, &seg, 1, 2)));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(r, &cqe, &el, 2000 * QD_RAW_MS));
		EXPECT_EQ(24, cqe.res);
		if (cqe.user_data == 1) {
			EXPECT_TRUE(qd_seg_eq(&seg, &el.segs[0]));
		}
	}
	EXPECT_EQ(0, qd_raw_unregister(r->fd, id));
}

TEST_F(lifecycle, forked_child_using_parent_context_gets_eperm)
{
	struct qd_cqe cqe;
	struct qd_raw r;
	unsigned int id;
	int qd, st;
	pid_t pid;

	ASSERT_EQ(0, qd_raw_init(&r, 8, 16));
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf, self->pg, &id));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &qd));
	/* a pop pending across the fork and the child's exit */
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(qd, 1)));
	/* a CQE in the ring: the owner's poll says EPOLLIN */
	ASSERT_EQ(1, submit_one(&r, qd_sqe_nop(100)));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* the rings are not inherited (VM_DONTCOPY) */
		CHILD_CHECK(!is_mapped(r.sq_ring, r.sq_len));
		CHILD_CHECK(!is_mapped(r.cq_ring, r.cq_len));
		child_cannot_use(&r, self->buf, self->pg, id, qd);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	ASSERT_EQ(1, qd_raw_peek_cqe(&r, &cqe, NULL));
	EXPECT_EQ(100u, cqe.user_data);
	parent_context_intact(_metadata, &r, id, qd);
	qd_raw_exit(&r);
	EXPECT_SETTLED(&self->base);
}

/*
 * MADV_DOFORK undoes the mappings' VM_DONTCOPY: the child then shares the
 * ring pages (and can read what the kernel wrote there), but the context is
 * still not its own: every ioctl and mmap is -EPERM, poll EPOLLERR.
 */
TEST_F(lifecycle, forked_child_of_madv_dofork_rings_sees_pages_but_cannot_use_them)
{
	struct qd_raw r;
	unsigned int id;
	int qd, st, i;
	pid_t pid;

	ASSERT_EQ(0, qd_raw_init(&r, 8, 16));
	ASSERT_EQ(0, madvise(r.sq_ring, r.sq_len, MADV_DOFORK));
	ASSERT_EQ(0, madvise(r.cq_ring, r.cq_len, MADV_DOFORK));
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf, self->pg, &id));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &qd));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(qd, 1)));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, submit_one(&r, qd_sqe_nop(100 + i)));
	ASSERT_EQ(3u, qd_raw_cq_ready(&r));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		CHILD_CHECK(is_mapped(r.sq_ring, r.sq_len));
		CHILD_CHECK(is_mapped(r.cq_ring, r.cq_len));
		/* the same pages: the kernel's CQEs and indices */
		CHILD_CHECK(qd_load_acquire(r.cq_tail) == 3);
		CHILD_CHECK(*r.cq_head == 0);
		CHILD_CHECK(qd_load_acquire(r.sq_head) == 4);
		for (i = 0; i < 3; i++)
			CHILD_CHECK(r.cqes[i].user_data == 100u + i);
		child_cannot_use(&r, self->buf, self->pg, id, qd);
		/* and nothing it could do moved the parent's rings */
		CHILD_CHECK(qd_load_acquire(r.cq_tail) == 3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	for (i = 0; i < 3; i++) {
		struct qd_cqe cqe;

		ASSERT_EQ(1, qd_raw_peek_cqe(&r, &cqe, NULL));
		EXPECT_EQ(100u + i, cqe.user_data);
	}
	parent_context_intact(_metadata, &r, id, qd);
	qd_raw_exit(&r);
	EXPECT_SETTLED(&self->base);
}

TEST_F(lifecycle, forked_child_can_open_its_own_context)
{
	struct qd_raw r;
	int st;
	pid_t pid;

	ASSERT_EQ(0, qd_raw_init(&r, 4, 8));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw c;
		struct qd_cqe cqe;
		struct qd_sqe s = qd_sqe_nop(42);

		CHILD_CHECK(qd_raw_init(&c, 4, 8) == 0);
		CHILD_CHECK(qd_raw_do(&c, &s, &cqe, NULL) == 0);
		CHILD_CHECK(cqe.user_data == 42 && cqe.res == 0);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	qd_raw_exit(&r);
	EXPECT_SETTLED(&self->base);
}

/* --- /proc/qd ---------------------------------------------------------------- */

TEST_F(lifecycle, proc_qd_has_the_documented_keys)
{
	struct qd_proc *s = &self->base;
	int i;

	EXPECT_EQ(2, s->version);
	/* the harness runs as root: every context */
	EXPECT_STREQ("all", s->scope);
	EXPECT_EQ(-1, s->scope_uid);
	EXPECT_EQ(QD_PROC_NKEYS, s->nkeys);
	EXPECT_LE(0, s->contexts);
	EXPECT_LE(0, s->queues);
	EXPECT_LE(0, s->regions);
	EXPECT_LE(0, s->pinned_pages);
	EXPECT_LE(0, s->inflight);
	EXPECT_LE(0, s->queued);
	EXPECT_LE(0, s->overflowed);
	EXPECT_LE(0, s->invalid_opcode);
	/* nothing else: payload_bytes_copied is gone (nothing copies yet) */
	EXPECT_EQ(0, s->nunknown);
	for (i = 0; i < s->nunknown && i < 8; i++)
		TH_LOG("unexpected key %s", s->unknown[i]);
	EXPECT_LE(0, s->sockets);
	EXPECT_LE(0, s->sock_bytes_in);
	EXPECT_LE(0, s->sock_bytes_out);
	EXPECT_EQ(11, s->nops);
	EXPECT_NE(NULL, qd_proc_op(s, "nop"));
	EXPECT_NE(NULL, qd_proc_op(s, "push"));
	EXPECT_NE(NULL, qd_proc_op(s, "pop"));
	EXPECT_NE(NULL, qd_proc_op(s, "cancel"));
	EXPECT_NE(NULL, qd_proc_op(s, "wake"));
	EXPECT_NE(NULL, qd_proc_op(s, "accept"));
	EXPECT_NE(NULL, qd_proc_op(s, "connect"));
	EXPECT_NE(NULL, qd_proc_op(s, "pushto"));
	EXPECT_NE(NULL, qd_proc_op(s, "provide"));
}

TEST_F(lifecycle, proc_qd_counts_objects)
{
	struct qd_raw r;
	struct qd_proc a, b, c;
	unsigned int id1, id2;
	int q1, q2;

	ASSERT_EQ(0, qd_raw_init(&r, 4, 8));
	ASSERT_EQ(0, qd_proc_read(&a));
	EXPECT_EQ(self->base.contexts + 1, a.contexts);
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf, 3 * self->pg, &id1));
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf + 3 * self->pg, self->pg, &id2));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &q1));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &q2));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(q1, 1)));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(q2, 2)));
	ASSERT_EQ(0, qd_proc_read(&b));
	EXPECT_EQ(a.queues + 2, b.queues);
	EXPECT_EQ(a.regions + 2, b.regions);
	EXPECT_EQ(a.pinned_pages + 4, b.pinned_pages);
	EXPECT_EQ(a.inflight + 2, b.inflight);

	ASSERT_EQ(0, qd_raw_close(r.fd, q1));
	ASSERT_EQ(0, qd_raw_unregister(r.fd, id1));
	ASSERT_EQ(0, qd_proc_read(&c));
	EXPECT_EQ(a.queues + 1, c.queues);
	EXPECT_EQ(a.regions + 1, c.regions);
	EXPECT_EQ(a.pinned_pages + 1, c.pinned_pages);
	/* the cancelled pop's CQE is in the ring: it is no longer in flight */
	EXPECT_EQ(a.inflight + 1, c.inflight);
	qd_raw_exit(&r);
	EXPECT_SETTLED(&self->base);
}

TEST_F(lifecycle, proc_qd_op_counters_increase)
{
	struct qd_raw r;
	struct qd_proc a, b;
	struct qd_seg seg;
	struct qd_sqe s;
	struct qd_cqe cqe;
	unsigned int id;
	int qd, i;
	const char *names[] = { "nop", "push", "pop" };
	/* submitted, completed, failed deltas per op, at least */
	const long long want[3][3] = { { 4, 4, 1 }, { 2, 2, 1 }, { 1, 1, 0 } };

	ASSERT_EQ(0, qd_raw_init(&r, 8, 16));
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf, self->pg, &id));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &qd));
	ASSERT_EQ(0, qd_proc_read(&a));
	for (i = 0; i < 3; i++) {
		s = qd_sqe_nop(i);
		ASSERT_EQ(0, qd_raw_do(&r, &s, &cqe, NULL));
	}
	s = qd_sqe_nop(3);
	s.flags = 2;
	ASSERT_EQ(0, qd_raw_do(&r, &s, &cqe, NULL));
	ASSERT_EQ(-EINVAL, cqe.res);
	seg = qd_seg(id, 0, 16);
	s = qd_sqe_push(qd, &seg, 1, 4);
	ASSERT_EQ(0, qd_raw_do(&r, &s, &cqe, NULL));
	ASSERT_EQ(16, cqe.res);
	s = qd_sqe_push(qd + 1000, &seg, 1, 5);
	ASSERT_EQ(0, qd_raw_do(&r, &s, &cqe, NULL));
	ASSERT_EQ(-EBADF, cqe.res);
	s = qd_sqe_pop(qd, 6);
	ASSERT_EQ(0, qd_raw_do(&r, &s, &cqe, NULL));
	ASSERT_EQ(16, cqe.res);
	/* an opcode the module does not know counts as invalid_opcode */
	s = qd_sqe_nop(7);
	s.opcode = QD_OP_SYNC + 1;
	ASSERT_EQ(0, qd_raw_do(&r, &s, &cqe, NULL));
	ASSERT_EQ(-EINVAL, cqe.res);
	ASSERT_EQ(0, qd_proc_read(&b));
	EXPECT_LE(a.invalid_opcode + 1, b.invalid_opcode);

	for (i = 0; i < 3; i++) {
		const struct qd_op_stat *x = qd_proc_op(&a, names[i]);
		const struct qd_op_stat *y = qd_proc_op(&b, names[i]);

		ASSERT_NE(NULL, x);
		ASSERT_NE(NULL, y);
		EXPECT_LE(want[i][0], (long long)(y->submitted - x->submitted)) TH_LOG("%s", names[i]);
		EXPECT_LE(want[i][1], (long long)(y->completed - x->completed)) TH_LOG("%s", names[i]);
		EXPECT_LE(want[i][2], (long long)(y->failed - x->failed)) TH_LOG("%s", names[i]);
	}
	/* the successful pop did not count as failed */
	EXPECT_EQ(qd_proc_op(&a, "pop")->failed, qd_proc_op(&b, "pop")->failed);
	qd_raw_exit(&r);
}

/*
 * Every push holds one element from its submission until the element is
 * popped and the pop's CQE is in the ring, the queue is closed, or the push
 * fails.
 */
TEST_F(lifecycle, proc_qd_counts_queued_elements)
{
	struct qd_raw r;
	struct qd_proc a, b;
	struct qd_seg seg;
	struct qd_cqe cqe;
	unsigned int id;
	int q1, q2, i;

	ASSERT_EQ(0, qd_raw_init(&r, 8, 8));
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf, self->pg, &id));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 1, &q1));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &q2));
	seg = qd_seg(id, 0, 16);
	ASSERT_EQ(0, qd_proc_read(&a));
#define QUEUED(n) do {							\
	ASSERT_EQ(0, qd_proc_read(&b));					\
	EXPECT_EQ(a.queued + (n), b.queued);				\
} while (0)
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, submit_one(&r, qd_sqe_push(q2, &seg, 1, i)));
	QUEUED(3);
	/* q1 holds one; the next push waits for room, holding its element */
	ASSERT_EQ(1, submit_one(&r, qd_sqe_push(q1, &seg, 1, 10)));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_push(q1, &seg, 1, 11)));
	QUEUED(5);
	/* a push that fails holds nothing */
	ASSERT_EQ(1, submit_one(&r, qd_sqe_push(q2 + 1000, &seg, 1, 12)));
	QUEUED(5);
	while (qd_raw_peek_cqe(&r, &cqe, NULL))
		;
	/* a pop whose CQE is in the ring lets go; the waiting push moves in */
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(q1, 20)));
	ASSERT_EQ(0, qd_raw_wait_cqe(&r, &cqe, NULL, 2000 * QD_RAW_MS));
	QUEUED(4);
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(q2, 21)));
	QUEUED(3);
	while (qd_raw_peek_cqe(&r, &cqe, NULL))
		;

	/* a pop whose CQE is parked (the ring is full) still holds it */
	for (i = 0; i < 8; i++)
		ASSERT_EQ(1, submit_one(&r, qd_sqe_nop(30 + i)));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(q2, 22)));
	ASSERT_TRUE(!!(qd_load_acquire(r.cq_flags) & QD_CQ_F_OVERFLOW));
	QUEUED(3);
	while (qd_raw_peek_cqe(&r, &cqe, NULL))
		;
	ASSERT_EQ(0, qd_raw_enter(&r, 0, 0, 0, 0));	/* moves it into the ring */
	ASSERT_EQ(1, qd_raw_peek_cqe(&r, &cqe, NULL));
	EXPECT_EQ(22u, cqe.user_data);
	EXPECT_EQ(16, cqe.res);
	QUEUED(2);

	/* closing a queue drops what it holds */
	ASSERT_EQ(0, qd_raw_close(r.fd, q2));
	QUEUED(1);
	ASSERT_EQ(0, qd_raw_close(r.fd, q1));
	QUEUED(0);
#undef QUEUED
	qd_raw_exit(&r);
	EXPECT_SETTLED(&self->base);
}

/*
 * A reader without CAP_SYS_ADMIN (here uid 65534, which opens /proc/qd
 * itself after setuid) sees "scope uid 65534" and sums over its own
 * contexts only: not root's, and no module-wide counters. Root, meanwhile,
 * sees "scope all" and everything.
 */
struct uid_view {
	int		err;
	struct qd_proc	proc;
};

/* In a child: become uid/gid 65534 (no capabilities left). */
static void become_nobody(void)
{
	CHILD_CHECK(qd_set_memlock(64 * 1024) == 0);
	CHILD_CHECK(setgroups(0, NULL) == 0);
	CHILD_CHECK(setgid(65534) == 0);
	CHILD_CHECK(setuid(65534) == 0);
	CHILD_CHECK(getuid() == 65534 && geteuid() == 65534);
}

TEST_F(lifecycle, proc_qd_unprivileged_reader_sees_only_its_uid)
{
	struct qd_raw r, r2;
	struct uid_view v;
	struct qd_proc all;
	struct qd_seg seg;
	unsigned int id;
	int res[2], go[2], qa, qb, i;
	pid_t pid;

	/* nobody's sums must be exact: no context of any uid is left over */
	ASSERT_EQ(0, qd_proc_wait_idle(0, 0, SETTLE_MS, NULL));
	/* root: contexts 2, queues 2, regions 1 (3 pages), inflight 2, queued 1 + 2 pops */
	ASSERT_EQ(0, qd_raw_init(&r, 8, 16));
	ASSERT_EQ(0, qd_raw_init(&r2, 4, 8));
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf, 3 * self->pg, &id));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &qa));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &qb));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(qa, 1)));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(qa, 2)));
	seg = qd_seg(id, 0, 8);
	ASSERT_EQ(1, submit_one(&r, qd_sqe_push(qb, &seg, 1, 3)));

	ASSERT_EQ(0, pipe(res));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* nobody: contexts 1, queues 3, regions 1 (1 page), inflight 1, queued 2 + 1 pop */
		struct qd_raw c;
		unsigned int cid;
		int q[3];
		char x;

		close(res[0]);
		close(go[1]);
		become_nobody();
		CHILD_CHECK(qd_raw_init(&c, 4, 8) == 0);
		CHILD_CHECK(qd_raw_register(c.fd, self->buf + 4 * self->pg, self->pg, &cid) == 0);
		for (i = 0; i < 3; i++)
			CHILD_CHECK(qd_raw_queue(c.fd, 0, &q[i]) == 0);
		CHILD_CHECK(submit_one(&c, qd_sqe_pop(q[0], 1)) == 1);
		seg = qd_seg(cid, 0, 4);
		CHILD_CHECK(submit_one(&c, qd_sqe_push(q[1], &seg, 1, 2)) == 1);
		CHILD_CHECK(submit_one(&c, qd_sqe_push(q[1], &seg, 1, 3)) == 1);
		memset(&v, 0, sizeof(v));
		v.err = qd_proc_read(&v.proc);
		CHILD_CHECK(write(res[1], &v, sizeof(v)) == sizeof(v));
		/* hold the context until the parent has looked */
		CHILD_CHECK(read(go[0], &x, 1) == 0);
		qd_raw_exit(&c);
		_exit(0);
	}
	close(res[1]);
	close(go[0]);
	ASSERT_EQ((ssize_t)sizeof(v), read(res[0], &v, sizeof(v))) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	ASSERT_EQ(0, qd_proc_read(&all));
	close(go[1]);
	close(res[0]);
	EXPECT_EQ(0, qd_wait_child(pid));

	/* what nobody saw: its own context and nothing else */
	ASSERT_EQ(0, v.err);
	EXPECT_EQ(2, v.proc.version);
	EXPECT_STREQ("uid", v.proc.scope);
	EXPECT_EQ(65534, v.proc.scope_uid);
	EXPECT_EQ(1, v.proc.contexts);
	EXPECT_EQ(3, v.proc.queues);
	EXPECT_EQ(1, v.proc.regions);
	EXPECT_EQ(1, v.proc.pinned_pages);
	EXPECT_EQ(1, v.proc.inflight);
	EXPECT_EQ(2 + 1, v.proc.queued);
	EXPECT_EQ(0, v.proc.sockets);
	EXPECT_EQ(0, v.proc.files);
	/* only those eight (and version): no module-wide counters */
	EXPECT_EQ(9, v.proc.nkeys);
	EXPECT_EQ(-1, v.proc.overflowed);
	EXPECT_EQ(-1, v.proc.invalid_opcode);
	EXPECT_EQ(0, v.proc.nops);
	EXPECT_EQ(0, v.proc.nunknown);

	/* what root saw meanwhile: everybody's */
	EXPECT_EQ(2, all.version);
	EXPECT_STREQ("all", all.scope);
	EXPECT_EQ(self->base.contexts + 2 + 1, all.contexts);
	EXPECT_EQ(self->base.queues + 2 + 3, all.queues);
	EXPECT_EQ(self->base.regions + 1 + 1, all.regions);
	EXPECT_EQ(self->base.pinned_pages + 3 + 1, all.pinned_pages);
	EXPECT_EQ(self->base.inflight + 2 + 1, all.inflight);
	EXPECT_EQ(self->base.queued + 1 + 2 + 2 + 1, all.queued);
	EXPECT_LE(0, all.overflowed);
	EXPECT_LE(3, all.nops);

	qd_raw_exit(&r);
	qd_raw_exit(&r2);
	EXPECT_SETTLED(&self->base);
}

/* The scope is decided when the file is opened, not when it is read. */
TEST_F(lifecycle, proc_qd_scope_is_decided_at_open)
{
	int res[2];
	pid_t pid;
	struct uid_view v[2];

	ASSERT_EQ(0, pipe(res));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		FILE *early;

		close(res[0]);
		memset(v, 0, sizeof(v));
		early = fopen(QD_PROC_PATH, "re");
		CHILD_CHECK(early);
		become_nobody();
		v[0].err = qd_proc_parse(early, &v[0].proc);
		fclose(early);
		v[1].err = qd_proc_read(&v[1].proc);
		CHILD_CHECK(write(res[1], v, sizeof(v)) == sizeof(v));
		_exit(0);
	}
	close(res[1]);
	ASSERT_EQ((ssize_t)sizeof(v), read(res[0], v, sizeof(v)));
	close(res[0]);
	EXPECT_EQ(0, qd_wait_child(pid));
	/* opened as root, read as nobody: all */
	EXPECT_EQ(0, v[0].err);
	EXPECT_STREQ("all", v[0].proc.scope);
	EXPECT_EQ(QD_PROC_NKEYS, v[0].proc.nkeys);
	EXPECT_LE(3, v[0].proc.nops);
	/* opened as nobody: its own uid, which has no contexts */
	EXPECT_EQ(0, v[1].err);
	EXPECT_STREQ("uid", v[1].proc.scope);
	EXPECT_EQ(65534, v[1].proc.scope_uid);
	EXPECT_EQ(0, v[1].proc.contexts);
	EXPECT_EQ(0, v[1].proc.pinned_pages);
	EXPECT_EQ(0, v[1].proc.nops);
}

TEST_F(lifecycle, proc_qd_counts_overflowed_completions)
{
	struct qd_raw r;
	struct qd_proc a, b;
	int i, j;

	ASSERT_EQ(0, qd_raw_init(&r, 4, 8));
	ASSERT_EQ(0, qd_proc_read(&a));
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 4; j++) {
			struct qd_sqe s = qd_sqe_nop(4 * i + j);

			ASSERT_EQ(0, qd_raw_queue_sqe(&r, &s));
		}
		ASSERT_EQ(4, qd_raw_submit(&r));
	}
	ASSERT_EQ(0, qd_proc_read(&b));
	EXPECT_LE(a.overflowed + 8, b.overflowed);
	qd_raw_exit(&r);
	EXPECT_SETTLED(&self->base);
}

/* --- debugfs ------------------------------------------------------------------- */

#define NEED_DEBUGFS() do {						\
	if (qd_debugfs_ready())						\
		SKIP(return, "no %s (debugfs not mounted?)", QD_DEBUGFS_DIR); \
} while (0)

TEST_F(lifecycle, debugfs_shows_a_live_context)
{
	static const char *const qcols[] = {
		"qd", "type", "depth", "max_depth", "pending_pops",
		"pending_pushes", "pushed", "popped",
	};
	static const char *const rcols[] = { "id", "addr", "len", "pages", "users" };
	unsigned long long qv[8], rv[5];
	char dirs[4][256], path[300], comm[64], want_comm[64] = "";
	struct qd_seg seg;
	struct qd_raw r;
	unsigned int id;
	int qd, n, i;
	FILE *f;

	NEED_DEBUGFS();
	ASSERT_EQ(0, qd_raw_init(&r, 8, 32));
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf, 4 * self->pg, &id));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 7, &qd));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(qd, 1)));
	ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(qd, 2)));

	n = qd_debugfs_ctx_dirs(getpid(), dirs, 4);
	ASSERT_EQ(1, n);

	snprintf(path, sizeof(path), "%s/info", dirs[0]);
	EXPECT_EQ(getpid(), qd_kv(path, "pid"));
	f = fopen("/proc/self/comm", "re");
	if (f) {
		if (fgets(want_comm, sizeof(want_comm), f))
			want_comm[strcspn(want_comm, "\n")] = 0;
		fclose(f);
	}
	ASSERT_EQ(0, qd_kv_str(path, "comm", comm, sizeof(comm)));
	EXPECT_STREQ(want_comm, comm);
	EXPECT_EQ(8, qd_kv(path, "sq_entries"));
	EXPECT_EQ(32, qd_kv(path, "cq_entries"));
	EXPECT_EQ(2, qd_kv(path, "sq_head"));
	EXPECT_EQ(2, qd_kv(path, "sq_tail"));
	EXPECT_EQ(0, qd_kv(path, "cq_head"));
	EXPECT_EQ(0, qd_kv(path, "cq_tail"));
	EXPECT_EQ(0, qd_kv(path, "overflow"));
	EXPECT_EQ(2, qd_kv(path, "inflight"));
	EXPECT_LE(2, qd_kv(path, "enters"));
	EXPECT_EQ(1, qd_kv(path, "regions"));
	EXPECT_EQ(1, qd_kv(path, "queues"));

	snprintf(path, sizeof(path), "%s/queues", dirs[0]);
	EXPECT_EQ(1, qd_table_rows(path));
	ASSERT_EQ(0, qd_table_row(path, qd, qcols, 8, qv, NULL));
	EXPECT_EQ(0u, qv[2]);		/* depth: elements held now */
	EXPECT_EQ(7u, qv[3]);		/* max_depth */
	EXPECT_EQ(2u, qv[4]);		/* pending_pops */
	EXPECT_EQ(0u, qv[5]);

	snprintf(path, sizeof(path), "%s/regions", dirs[0]);
	EXPECT_EQ(1, qd_table_rows(path));
	ASSERT_EQ(0, qd_table_row(path, id, rcols, 5, rv, NULL));
	EXPECT_EQ((uintptr_t)self->buf, rv[1]);
	EXPECT_EQ(4 * self->pg, rv[2]);
	EXPECT_EQ(4u, rv[3]);

	/* three pushes: two feed the pops, one stays */
	seg = qd_seg(id, 0, 10);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, submit_one(&r, qd_sqe_push(qd, &seg, 1, 10 + i)));
	snprintf(path, sizeof(path), "%s/queues", dirs[0]);
	ASSERT_EQ(0, qd_table_row(path, qd, qcols, 8, qv, NULL));
	EXPECT_EQ(1u, qv[2]);
	EXPECT_EQ(0u, qv[4]);
	EXPECT_EQ(3u, qv[6]);		/* pushed */
	EXPECT_EQ(2u, qv[7]);		/* popped */
	snprintf(path, sizeof(path), "%s/info", dirs[0]);
	EXPECT_EQ(5, qd_kv(path, "cq_tail"));
	EXPECT_EQ(0, qd_kv(path, "inflight"));
	/* the region's users include the queued element */
	snprintf(path, sizeof(path), "%s/regions", dirs[0]);
	{
		unsigned long long users_busy;

		ASSERT_EQ(0, qd_table_row(path, id, rcols, 5, rv, NULL));
		users_busy = rv[4];
		ASSERT_EQ(1, submit_one(&r, qd_sqe_pop(qd, 3)));
		ASSERT_EQ(0, qd_table_row(path, id, rcols, 5, rv, NULL));
		EXPECT_GT(users_busy, rv[4]);
	}
	qd_raw_exit(&r);
}

TEST_F(lifecycle, debugfs_has_one_dir_per_context_gone_after_close)
{
	char dirs[4][256], kept[300];
	struct qd_raw a, b;
	struct stat st;

	NEED_DEBUGFS();
	ASSERT_EQ(0, qd_debugfs_ctx_dirs(getpid(), dirs, 4));
	ASSERT_EQ(0, qd_raw_init(&a, 4, 8));
	ASSERT_EQ(0, qd_raw_init(&b, 4, 8));
	ASSERT_EQ(2, qd_debugfs_ctx_dirs(getpid(), dirs, 4));
	EXPECT_STRNE(dirs[0], dirs[1]);
	snprintf(kept, sizeof(kept), "%s/info", dirs[0]);
	ASSERT_EQ(0, stat(kept, &st));
	snprintf(kept, sizeof(kept), "%s/queues", dirs[0]);
	ASSERT_EQ(0, stat(kept, &st));
	snprintf(kept, sizeof(kept), "%s/regions", dirs[0]);
	ASSERT_EQ(0, stat(kept, &st));

	/* the directory outlives neither the fd nor the mappings */
	qd_raw_exit(&a);
	qd_raw_exit(&b);
	EXPECT_SETTLED(&self->base);
	EXPECT_EQ(0, qd_debugfs_ctx_dirs(getpid(), dirs, 4));
	EXPECT_NE(0, stat(kept, &st));
}

TEST_F(lifecycle, debugfs_file_held_open_across_close_is_safe)
{
	char dirs[2][256], path[300], line[256];
	struct qd_raw r;
	FILE *f;

	NEED_DEBUGFS();
	ASSERT_EQ(0, qd_raw_init(&r, 4, 8));
	ASSERT_EQ(1, qd_debugfs_ctx_dirs(getpid(), dirs, 2));
	snprintf(path, sizeof(path), "%s/info", dirs[0]);
	f = fopen(path, "re");
	ASSERT_NE(NULL, f);
	qd_raw_exit(&r);
	EXPECT_SETTLED(&self->base);
	/* reading a removed context's file must fail cleanly (or read nothing), not oops */
	setvbuf(f, NULL, _IONBF, 0);
	while (fgets(line, sizeof(line), f))
		;
	fclose(f);
}

/* --- a thread stuck in a user fault ---------------------------------------- */

/*
 * A page whose first touch blocks in userfaultfd until uffd_resolve(): the
 * way a FUSE or uffd-backed buffer can hold a thread inside the kernel.
 */
struct uffd_page {
	int uffd;
	char *page;
	size_t pg;
};

static int uffd_page_init(struct uffd_page *u)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	u->pg = qd_page_size();
	u->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->uffd < 0)
		return -errno;
	u->page = mmap(NULL, u->pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->page == MAP_FAILED)
		return -errno;
	reg.range.start = (unsigned long)u->page;
	reg.range.len = u->pg;
	if (ioctl(u->uffd, UFFDIO_API, &api) || ioctl(u->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	return 0;
}

/* Wait for the fault to be pending; 0 or -errno. */
static int uffd_wait_fault(struct uffd_page *u, int ms)
{
	struct pollfd p = { .fd = u->uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&p, 1, ms) != 1)
		return -ETIMEDOUT;
	if (read(u->uffd, &msg, sizeof(msg)) != sizeof(msg))
		return -errno;
	return msg.event == UFFD_EVENT_PAGEFAULT ? 0 : -EPROTO;
}

static void uffd_resolve(struct uffd_page *u)
{
	struct uffdio_zeropage z = { .range = { (unsigned long)u->page, u->pg } };

	ioctl(u->uffd, UFFDIO_ZEROPAGE, &z);	/* EEXIST once resolved */
}

struct stuck_push {
	struct qd_raw *r;
	int qd;
	void *segs;
	int ret;
};

/* Submit a push whose segment array is the uffd page: blocks in the copy. */
static void *stuck_push_thread(void *arg)
{
	struct stuck_push *t = arg;
	struct qd_sqe s = qd_sqe_push(t->qd, t->segs, 1, 77);

	t->ret = qd_raw_queue_sqe(t->r, &s);
	if (!t->ret)
		t->ret = qd_raw_submit(t->r);
	return NULL;
}

struct watchdog {
	struct uffd_page *u;
	int ms;
};

/* Unblock the stuck thread late, so that an old module fails, not hangs. */
static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;

	qd_sleep_ms(w->ms);
	uffd_resolve(w->u);
	return NULL;
}

#define PROMPT_MS	2000	/* generous: KASAN kernels are slow */

/* Queue create/close, region register/unregister: how long; *err first error. */
static long long other_ioctls_ms(struct qd_raw *r, void *buf, size_t pg, int *err)
{
	long long t0 = qd_now_ns();
	unsigned int id;
	int q2;

	*err = qd_raw_queue(r->fd, 0, &q2);
	if (!*err)
		*err = qd_raw_close(r->fd, q2);
	if (!*err)
		*err = qd_raw_register(r->fd, buf, pg, &id);
	if (!*err)
		*err = qd_raw_unregister(r->fd, id);
	return (qd_now_ns() - t0) / QD_RAW_MS;
}

/*
 * While one thread of the owner sits in QD_IOC_ENTER faulting on its
 * segment array, the context's other ioctls and its debugfs view still
 * work: no context-wide lock is held across a user fault (the old module
 * held ctx->lock, so every one of them waited for the fault).
 */
TEST_F(lifecycle, a_fault_in_submission_blocks_no_other_ioctl)
{
	struct uffd_page u;
	struct watchdog w = { .u = &u, .ms = 20000 };
	struct stuck_push t = {};
	pthread_t th, wd;
	struct qd_raw r;
	char dirs[4][256], path[300], buf[4096];
	long long t0, dt;
	int qd, fd, n, err;

	ASSERT_EQ(0, qd_raw_init(&r, 8, 16));
	ASSERT_EQ(0, qd_raw_queue(r.fd, 0, &qd));
	n = uffd_page_init(&u);
	if (n == -EPERM || n == -ENOSYS)
		SKIP(return, "no userfaultfd (%d)", n);
	ASSERT_EQ(0, n);
	t.r = &r;
	t.qd = qd;
	t.segs = u.page;
	ASSERT_EQ(0, pthread_create(&th, NULL, stuck_push_thread, &t));
	ASSERT_EQ(0, uffd_wait_fault(&u, 10000));
	ASSERT_EQ(0, pthread_create(&wd, NULL, watchdog_thread, &w));

	dt = other_ioctls_ms(&r, self->buf, self->pg, &err);
	EXPECT_EQ(0, err);
	EXPECT_GT(PROMPT_MS, dt) TH_LOG("ioctls took %lld ms behind the fault", dt);

	if (!qd_debugfs_ready() &&
	    qd_debugfs_ctx_dirs(getpid(), dirs, 4) >= 1) {
		snprintf(path, sizeof(path), "%s/info", dirs[0]);
		t0 = qd_now_ns();
		fd = open(path, O_RDONLY);
		EXPECT_LE(0, fd);
		if (fd >= 0) {
			EXPECT_LT(0, read(fd, buf, sizeof(buf)));
			close(fd);
		}
		dt = (qd_now_ns() - t0) / QD_RAW_MS;
		EXPECT_GT(PROMPT_MS, dt) TH_LOG("debugfs took %lld ms", dt);
	}

	/* the stuck push finishes once the page exists (all zero: -EINVAL) */
	uffd_resolve(&u);
	pthread_join(th, NULL);
	pthread_cancel(wd);
	pthread_join(wd, NULL);
	EXPECT_EQ(1, t.ret);
	qd_raw_exit(&r);
	munmap(u.page, u.pg);
	close(u.uffd);
}

/* A process whose thread is stuck in that fault dies at SIGKILL. */
TEST_F(lifecycle, a_thread_stuck_in_a_fault_in_submission_is_killable)
{
	struct qd_proc now;
	int ready[2], st;
	long long end;
	pid_t pid;
	char x;

	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct uffd_page u;
		struct stuck_push t = {};
		struct qd_raw r;
		pthread_t th;
		int qd;

		close(ready[0]);
		CHILD_CHECK(qd_raw_init(&r, 8, 16) == 0);
		CHILD_CHECK(qd_raw_queue(r.fd, 0, &qd) == 0);
		if (uffd_page_init(&u))
			_exit(4);
		t.r = &r;
		t.qd = qd;
		t.segs = u.page;
		CHILD_CHECK(pthread_create(&th, NULL, stuck_push_thread, &t) == 0);
		CHILD_CHECK(uffd_wait_fault(&u, 10000) == 0);
		CHILD_CHECK(write(ready[1], "r", 1) == 1);
		pause();
		_exit(3);
	}
	close(ready[1]);
	if (read(ready[0], &x, 1) != 1) {
		st = qd_wait_child(pid);
		close(ready[0]);
		if (st == 4)
			SKIP(return, "no userfaultfd");
		ASSERT_EQ(0, st);
	}
	close(ready[0]);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	end = qd_now_ns() + 10000 * QD_RAW_MS;
	while (waitpid(pid, &st, WNOHANG) == 0 && qd_now_ns() < end)
		qd_sleep_ms(10);
	ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
		kill(pid, SIGKILL);
	}
	EXPECT_TRUE(qd_proc_settled(&self->base, &now, SETTLE_MS));
}

TEST_HARNESS_MAIN
