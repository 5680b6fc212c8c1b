// SPDX-License-Identifier: GPL-2.0
/*
 * qd: two memory queues through libqd; the payload is never copied, the
 * buffers (from qd_sgaalloc()) travel with the elements.
 *
 * Ping-pong: A pushes its buffer to q1, B pops it and pushes the same sga to
 * q2, A pops it back. Each side posts its next pop before it waits, and
 * waits for its push's completion only later, so libqd can hand the kernel
 * a push and a pop in one system call.
 *
 * Stream: A owns a pool of `window` buffers. It pushes each element to q1
 * and posts one pop on q2 per push; B pops from q1 (keeping up to
 * B_POPS pops posted), touches the element and pushes the buffer back on q2,
 * the return queue, where A's pops collect it for reuse. Both push with
 * qd_push_forget() (the buffer's return is the only completion A needs);
 * a wake-up of a side asleep in the kernel goes with the pusher's next
 * wait that sleeps (stream) or its qd_submit() at the end of a batch (with mapped queues, libqd's default,
 * pushes and pops go through the queue's ring in user space). No allocation and
 * no copy in the loop: a free list that crosses threads, as a real
 * zero-copy producer/consumer would run it. When the pool is empty, A waits
 * for the oldest buffer to come back (the ring is full).
 *
 * Batch: the same, with a pool of `batch` buffers; after the batch's last
 * push A submits (the flush) and waits for every buffer's return. B keeps a batch's worth of pops posted.
 *
 * Two processes (--procs 2): A makes q1 and q2 with qd_queue_shareable()
 * and exports both (push and pop rights); its buffers are slices of one
 * memfd, mapped MAP_SHARED before the fork (so at the same address in
 * both processes) and registered with qd_memregister() by A, then by B
 * after the fork in its own libqd context (libqd forgets the parent's in
 * a fork child), where B also imports the queues from the inherited fds.
 * A pop in the other process then gets the element without a copy: with
 * shared mapped queues (libqd's default when the kernel has them) both
 * processes push and pop in the mapped ring, each binding looked up once
 * into the popper's region; otherwise the kernel rewrites the segments into
 * the popper's region. B checks the pointers either way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qdbench.h"

#ifdef QDBENCH_NO_LIBQD

static uint64_t qd_copied(size_t size)
{
	(void)size;
	return 0;
}

static int qd_probe(char *why, size_t len)
{
	snprintf(why, len, "qdbench was built without libqd (NO_LIBQD=1)");
	return -ENOSYS;
}

const struct mech mech_qd = {
	.name = "qd",
	.label = "qd",
	.copied = qd_copied,
	.probe = qd_probe,
};

const struct mech mech_qd_sqpoll = {
	.name = "qd-sqpoll",
	.label = "qd-sqpoll",
	.copied = qd_copied,
	.probe = qd_probe,
};

#else

#include <linux/qd.h>
#include <qd.h>
#include <sys/wait.h>

#define B_POPS	16

struct qd_state {
	int		q1, q2;
	bool		q1_open, q2_open;
	unsigned int	nbufs;
	struct qd_sga	*bufs;		/* as allocated, for teardown */

	/* two processes: the queues' exported fds, the shared buffers */
	int		q1_fd, q2_fd;
	int		memfd;
	char		*shm;
	size_t		shm_len;
	bool		shm_reg;

	/* A side */
	_Alignas(64) struct qd_sga a_cur;
	qd_token_t	a_pop, a_push;
	struct qd_sga	**a_free;
	unsigned int	a_nfree;
	struct tokq	a_pushes, a_returns;

	/* B side */
	_Alignas(64) struct qd_sga b_cur;
	qd_token_t	b_pop, b_push;
	bool		b_pop_posted, b_push_pending;
	uint64_t	b_posted;	/* pops posted so far */
	struct tokq	b_pops, b_pushes;
};

static uint64_t qd_copied(size_t size)
{
	(void)size;
	return 0;
}

static int qd_probe(char *why, size_t len)
{
	int err = qd_init();

	if (err == -ENOENT)
		snprintf(why, len, "qd_init: no /dev/qd (qd.ko not loaded)");
	else if (err)
		snprintf(why, len, "qd_init: %s", strerror(-err));
	return err;
}

/*
 * In a child, as the measurement will run: QD_SQPOLL set before libqd's
 * first call there (a fork child's libqd sets up a context of its own).
 */
static int qd_sqpoll_probe(char *why, size_t len)
{
	struct qd_stats st;
	int st_child, err;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		return -errno;
	}
	if (!pid) {
		if (!getenv("QD_SQPOLL"))
			setenv("QD_SQPOLL", QD_SQPOLL_BENCH_IDLE, 1);
		err = qd_init();
		if (!err && (qd_stats(&st) || !(st.features & QD_FEAT_SQPOLL)))
			err = -EOPNOTSUPP;
		_exit(err ? (-err & 0xff) : 0);
	}
	if (waitpid(pid, &st_child, 0) != pid || !WIFEXITED(st_child)) {
		snprintf(why, len, "the probe's child died");
		return -EIO;
	}
	err = WEXITSTATUS(st_child);
	if (err)
		snprintf(why, len, "qd_init with QD_SQPOLL: %s", strerror(err));
	return -err;
}

static const char *qd_sqpoll_note(void)
{
	static char buf[96];
	const char *e = getenv("QD_SQPOLL");

	snprintf(buf, sizeof(buf), "libqd with a kernel SQ poller (QD_SQPOLL=%s), in a process of its own",
		 e ? e : QD_SQPOLL_BENCH_IDLE);
	return buf;
}

static uint64_t qd_process_syscalls(void)
{
	struct qd_stats st;

	if (qd_stats(&st))
		return 0;
	return st.syscalls;
}

static uint64_t qd_process_cqes(void)
{
	struct qd_stats st;

	if (qd_stats(&st))
		return 0;
	return st.cqes_reaped;
}

/* Wait for t, which must complete with exactly want bytes. */
static int wait_bytes(qd_token_t t, size_t want, struct qd_result *qr)
{
	struct qd_result tmp;
	int err;

	if (!qr)
		qr = &tmp;
	err = qd_wait(qr, t, NULL);
	if (err)
		return err;
	if (qr->ret < 0)
		return (int)qr->ret;
	if ((size_t)qr->ret != want) {
		fprintf(stderr, "qdbench: qd: %s moved %lld bytes, expected %zu\n",
			qr->opcode == QD_OPC_POP ? "pop" : "push",
			(long long)qr->ret, want);
		return -EIO;
	}
	return 0;
}

static void qd_teardown(struct run *r)
{
	struct qd_state *s = r->priv;
	unsigned int i;

	if (!s)
		return;
	if (s->q1_open)
		qd_close(s->q1);
	if (s->q2_open)
		qd_close(s->q2);
	if (s->q1_fd >= 0)
		close(s->q1_fd);
	if (s->q2_fd >= 0)
		close(s->q2_fd);
	/* every buffer is home again after a successful run */
	for (i = 0; !s->shm && i < s->nbufs; i++)
		qd_sgafree(&s->bufs[i]);
	if (s->shm_reg) {
		int err = qd_memunregister(s->shm);

		if (err)
			fprintf(stderr, "qdbench: qd: qd_memunregister of the shared buffers: %s\n",
				strerror(-err));
	}
	if (s->shm)
		munmap(s->shm, s->shm_len);
	if (s->memfd >= 0)
		close(s->memfd);
	free(s->bufs);
	free(s->a_free);
	free(s->a_pushes.t);
	free(s->a_returns.t);
	free(s->b_pops.t);
	free(s->b_pushes.t);
	free(s);
	r->priv = NULL;
}

/* Byte stride of the shared buffers: each starts on a cache line. */
static size_t shm_stride(size_t size)
{
	return (size + 63) & ~(size_t)63;
}

/*
 * Two processes, in A before the fork: nbufs buffers in one memfd mapped
 * MAP_SHARED (B inherits the mapping at the same address) and registered
 * in A's context; the queues exported to fds B inherits.
 */
static int shared_bufs(struct run *r, struct qd_state *s)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t stride = shm_stride(r->size);
	unsigned int i;
	int err;

	s->shm_len = (s->nbufs * stride + pg - 1) & ~(size_t)(pg - 1);
	s->memfd = memfd_create("qdbench-qd", MFD_CLOEXEC);
	if (s->memfd < 0)
		return -errno;
	if (ftruncate(s->memfd, s->shm_len))
		return -errno;
	s->shm = mmap(NULL, s->shm_len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_POPULATE, s->memfd, 0);
	if (s->shm == MAP_FAILED) {
		s->shm = NULL;
		return -errno;
	}
	memset(s->shm, 0x5a, s->shm_len);
	err = qd_memregister(s->shm, s->shm_len);
	if (err)
		return err;
	s->shm_reg = true;
	for (i = 0; i < s->nbufs; i++) {
		struct qd_sga *sga = &s->bufs[i];

		sga->numsegs = 1;
		sga->segs[0].buf = s->shm + i * stride;
		sga->segs[0].len = r->size;
		s->a_free[s->a_nfree++] = sga;
	}
	err = qd_queue_export(s->q1, QD_RIGHT_PUSH | QD_RIGHT_POP, &s->q1_fd);
	if (!err)
		err = qd_queue_export(s->q2, QD_RIGHT_PUSH | QD_RIGHT_POP, &s->q2_fd);
	return err;
}

/*
 * Two processes, in B after the fork: a context of its own (libqd starts
 * one in a fork child), the same memfd registered there, the queues
 * imported. q1, q2 are then B's handles (B's copy of the state).
 */
static int qd_b_init(struct run *r)
{
	struct qd_state *s = r->priv;
	int err;

	if (procs != 2)
		return 0;
	err = qd_memregister(s->shm, s->shm_len);
	if (err) {
		fprintf(stderr, "qdbench: qd: B: qd_memregister of the memfd: %s\n",
			strerror(-err));
		return err;
	}
	err = qd_queue_import(s->q1_fd, &s->q1);
	if (!err)
		err = qd_queue_import(s->q2_fd, &s->q2);
	if (err) {
		fprintf(stderr, "qdbench: qd: B: qd_queue_import: %s\n",
			strerror(-err));
		return err;
	}
	close(s->q1_fd);
	close(s->q2_fd);
	s->q1_fd = s->q2_fd = -1;
	return 0;
}

/*
 * Two processes: a popped element must be in the popper's own mapping of
 * the memfd (the kernel rewrote it, no copy), at a buffer's start.
 */
static int check_shared(struct run *r, const struct qd_sga *sga)
{
	struct qd_state *s = r->priv;
	char *b = sga->numsegs == 1 ? sga->segs[0].buf : NULL;

	if (procs != 2)
		return 0;
	if (!b || b < s->shm || b + r->size > s->shm + s->shm_len ||
	    (size_t)(b - s->shm) % shm_stride(r->size)) {
		fprintf(stderr, "qdbench: qd: a popped element (%u segments, %p) is not one of the shared buffers [%p, +%zu)\n",
			sga->numsegs, (void *)b, (void *)s->shm, s->shm_len);
		return -EPROTO;
	}
	return 0;
}

static int qd_setup(struct run *r)
{
	struct qd_state *s = aligned_alloc(64, sizeof(*s));
	unsigned int i;
	int err;

	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->q1_fd = s->q2_fd = s->memfd = -1;
	r->priv = s;
	err = procs == 2 ? qd_queue_shareable(&s->q1) : qd_queue(&s->q1);
	if (err)
		goto err;
	s->q1_open = true;
	err = procs == 2 ? qd_queue_shareable(&s->q2) : qd_queue(&s->q2);
	if (err)
		goto err;
	s->q2_open = true;

	s->nbufs = r->mode == MODE_PINGPONG ? 1 : r->window;
	s->bufs = calloc(s->nbufs, sizeof(*s->bufs));
	s->a_free = calloc(s->nbufs, sizeof(*s->a_free));
	err = -ENOMEM;
	if (!s->bufs || !s->a_free)
		goto err;
	if (procs == 2) {
		err = shared_bufs(r, s);
		if (err)
			goto err;
		goto bufs_done;
	}
	for (i = 0; i < s->nbufs; i++) {
		struct qd_sga sga = qd_sgaalloc(r->size);

		if (!sga.numsegs) {
			err = -errno;
			goto err;
		}
		s->bufs[i] = sga;
		memset(sga.segs[0].buf, 0x5a, sga.segs[0].len);
		s->a_free[s->a_nfree++] = &s->bufs[i];
	}
bufs_done:
	s->a_cur = s->bufs[0];
	if ((err = tokq_init(&s->a_pushes, s->nbufs)) ||
	    (err = tokq_init(&s->a_returns, s->nbufs)) ||
	    (err = tokq_init(&s->b_pops, r->mode == MODE_BATCH &&
				  r->window > B_POPS ? r->window : B_POPS)) ||
	    (err = tokq_init(&s->b_pushes, s->nbufs)))
		goto err;
	return 0;
err:
	/* bufs[] holds only what was allocated: nbufs counts the rest as 0 */
	for (i = 0; !s->shm && s->bufs && i < s->nbufs; i++)
		if (!s->bufs[i].numsegs)
			break;
	s->nbufs = s->bufs ? i : 0;
	qd_teardown(r);
	return err;
}

static void sga_payload(const struct qd_sga *sga, struct payload *p)
{
	unsigned int i;

	p->n = sga->numsegs;
	for (i = 0; i < sga->numsegs && i < PL_MAXSEGS; i++) {
		p->iov[i].iov_base = sga->segs[i].buf;
		p->iov[i].iov_len = sga->segs[i].len;
	}
}

static int qd_a_buf(struct run *r, struct payload *p)
{
	struct qd_state *s = r->priv;
	struct qd_result qr;
	int err;

	if (r->mode != MODE_PINGPONG) {
		if (s->a_nfree) {
			s->a_cur = *s->a_free[--s->a_nfree];
		} else {
			/* the pool is empty: wait for the oldest buffer to return */
			err = wait_bytes(tokq_get(&s->a_returns), r->size, &qr);
			if (err)
				return err;
			err = check_shared(r, &qr.value.sga);
			if (err)
				return err;
			s->a_cur = qr.value.sga;
		}
	}
	sga_payload(&s->a_cur, p);
	return 0;
}

static int qd_a_send(struct run *r, bool last, bool flush)
{
	struct qd_state *s = r->priv;
	qd_token_t t;
	int err;

	(void)last;
	if (r->mode == MODE_PINGPONG) {
		err = qd_pop(&s->a_pop, s->q2);
		if (!err)
			err = qd_push(&s->a_push, s->q1, &s->a_cur);
		return err;
	}
	/*
	 * The buffer travels with the element and comes back on q2: the
	 * push's own completion says nothing A needs (qd_push_forget: no
	 * token, no CQE on success). A flush sends what libqd holds back (a
	 * wake-up of B if B sleeps in the kernel, else nothing).
	 */
	err = qd_push_forget(s->q1, &s->a_cur);
	if (err)
		return err;
	/*
	 * What libqd holds back (a wake-up of B if B sleeps in the kernel)
	 * goes with A's next wait that sleeps, before A can block: in a
	 * batch, a_sync's (one system call for both, as io_uring's
	 * submit-and-wait); in a stream, when the pool runs dry.
	 */
	(void)flush;
	err = qd_pop(&t, s->q2);	/* where this buffer will come back */
	if (err)
		return err;
	tokq_put(&s->a_returns, t);
	return 0;
}

static int qd_a_recv(struct run *r, struct payload *p)
{
	struct qd_state *s = r->priv;
	struct qd_result qr;
	int err;

	err = wait_bytes(s->a_pop, r->size, &qr);
	if (err)
		return err;
	err = check_shared(r, &qr.value.sga);
	if (err)
		return err;
	s->a_cur = qr.value.sga;
	err = wait_bytes(s->a_push, r->size, NULL);
	if (err)
		return err;
	sga_payload(&s->a_cur, p);
	return 0;
}

/* Stream, batch: collect every push and every buffer still out. */
static int qd_a_sync(struct run *r)
{
	struct qd_state *s = r->priv;
	struct qd_result qr;
	int err;

	while (s->a_pushes.n) {
		err = wait_bytes(tokq_get(&s->a_pushes), r->size, NULL);
		if (err)
			return err;
	}
	while (s->a_returns.n) {
		err = wait_bytes(tokq_get(&s->a_returns), r->size, &qr);
		if (err)
			return err;
	}
	/* the same buffers as bufs[]: all home, teardown frees them */
	s->a_nfree = s->nbufs;
	return 0;
}

static int qd_a_done(struct run *r)
{
	return r->mode == MODE_PINGPONG ? 0 : qd_a_sync(r);
}

static int qd_b_recv(struct run *r, struct payload *p)
{
	struct qd_state *s = r->priv;
	struct qd_result qr;
	int err;

	if (r->mode == MODE_PINGPONG) {
		if (!s->b_pop_posted) {
			err = qd_pop(&s->b_pop, s->q1);
			if (err)
				return err;
		}
		s->b_pop_posted = false;
		err = wait_bytes(s->b_pop, r->size, &qr);
		if (err)
			return err;
		if (s->b_push_pending) {
			s->b_push_pending = false;
			err = wait_bytes(s->b_push, r->size, NULL);
			if (err)
				return err;
		}
	} else {
		uint64_t total = atomic_load(&r->total);

		while (s->b_pops.n < s->b_pops.cap && (!total || s->b_posted < total)) {
			qd_token_t t;

			err = qd_pop(&t, s->q1);
			if (err)
				return err;
			tokq_put(&s->b_pops, t);
			s->b_posted++;
		}
		err = wait_bytes(tokq_get(&s->b_pops), r->size, &qr);
		if (err)
			return err;
	}
	err = check_shared(r, &qr.value.sga);
	if (err)
		return err;
	s->b_cur = qr.value.sga;
	sga_payload(&s->b_cur, p);
	return 0;
}

/* Ping-pong: the same buffers go back; post the next pop with the push. */
static int qd_b_send(struct run *r, bool last)
{
	struct qd_state *s = r->priv;
	int err;

	err = qd_push(&s->b_push, s->q2, &s->b_cur);
	if (err)
		return err;
	s->b_push_pending = true;
	if (!last) {
		err = qd_pop(&s->b_pop, s->q1);
		if (err)
			return err;
		s->b_pop_posted = true;
	}
	return 0;
}

/* Stream: return the buffer to A through q2. */
static int qd_b_release(struct run *r, bool last, bool flush)
{
	struct qd_state *s = r->priv;
	qd_token_t t;
	int err;

	(void)last;
	(void)t;
	(void)flush;
	err = qd_push_forget(s->q2, &s->b_cur);
	if (err)
		return err;
	/*
	 * A's wake-up goes with B's next wait that sleeps (the next batch's
	 * first pop), as io_uring's B submits with its wait; after the last
	 * element there is no such wait.
	 */
	return last ? qd_submit() : 0;
}

static int qd_b_done(struct run *r)
{
	struct qd_state *s = r->priv;
	struct qd_result qr;
	int err;

	if (s->b_push_pending) {
		s->b_push_pending = false;
		err = wait_bytes(s->b_push, r->size, NULL);
		if (err)
			return err;
	}
	while (s->b_pushes.n) {
		err = wait_bytes(tokq_get(&s->b_pushes), r->size, NULL);
		if (err)
			return err;
	}
	/*
	 * The last returns (qd_push_forget) may still be held in this
	 * thread's ring: they go now. With two processes B exits next and
	 * would take them along; with threads A must not depend on B's next
	 * wait, which may never come.
	 */
	err = qd_submit();
	if (err)
		return err;
	if (!s->b_pops.n)
		return 0;
	/* pops posted past the last element: closing q1 cancels them */
	err = qd_close(s->q1);
	if (err)
		return err;
	s->q1_open = false;
	while (s->b_pops.n) {
		err = qd_wait(&qr, tokq_get(&s->b_pops), NULL);
		if (err)
			return err;
		if (qr.ret != -ECANCELED) {
			fprintf(stderr, "qdbench: qd: a pop left over after the last element completed with %lld, expected -ECANCELED\n",
				(long long)qr.ret);
			return -EPROTO;
		}
	}
	return 0;
}

/* What qd and qd-sqpoll share: everything but how the context is made. */
#define QD_MECH_OPS							\
	.copied = qd_copied,						\
	.setup = qd_setup,						\
	.teardown = qd_teardown,					\
	.b_init = qd_b_init,						\
	.a_buf = qd_a_buf,						\
	.a_send = qd_a_send,						\
	.a_recv = qd_a_recv,						\
	.a_sync = qd_a_sync,						\
	.a_done = qd_a_done,						\
	.b_recv = qd_b_recv,						\
	.b_send = qd_b_send,						\
	.b_release = qd_b_release,					\
	.b_done = qd_b_done,						\
	.process_syscalls = qd_process_syscalls,			\
	.process_cqes = qd_process_cqes

const struct mech mech_qd = {
	.name = "qd",
	.label = "qd",
	.probe = qd_probe,
	QD_MECH_OPS,
};

const struct mech mech_qd_sqpoll = {
	.name = "qd-sqpoll",
	.label = "qd-sqpoll",
	.probe = qd_sqpoll_probe,
	.note = qd_sqpoll_note,
	QD_MECH_OPS,
	.no_procs = "its row runs in a process of its own already",
};

#endif /* QDBENCH_NO_LIBQD */
