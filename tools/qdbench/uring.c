// SPDX-License-Identifier: GPL-2.0
/*
 * uring: io_uring IORING_OP_MSG_RING between two rings (liburing), one ring
 * per thread, each set up by the thread that submits to it. An element is
 * a buffer pointer and a length: the sender's MSG_RING SQE posts a CQE on
 * the peer's ring with user_data = the pointer and res = the length, the
 * same zero-copy hand-off qd does (the buffer travels, no payload byte is
 * copied). The sender's own CQE is skipped (IOSQE_CQE_SKIP_SUCCESS): a
 * sender sees a CQE only when a MSG_RING fails.
 *
 * Its best mode, as probed at start: IORING_SETUP_SINGLE_ISSUER |
 * IORING_SETUP_DEFER_TASKRUN if the kernel takes them (then
 * SINGLE_ISSUER | COOP_TASKRUN, COOP_TASKRUN, none), and each ring's fd
 * registered with its thread (io_uring_register_ring_fd), so an enter
 * looks no fd up. (A ring cannot be a fixed file of another ring: the
 * kernel refuses it, so MSG_RING names the peer by its fd.)
 *
 * A thread waits as io_uring_wait_cqe() does: one io_uring_enter(GETEVENTS,
 * min_complete) when its CQ holds too few CQEs. Sends are submitted at
 * once (io_uring_submit), except when the thread's next step is that wait:
 * then one io_uring_enter submits and waits (io_uring_submit_and_wait).
 *
 * Ping-pong: A sends its buffer to B's ring and waits on its own; B sends
 * the same buffer back. Stream: A owns a pool of `window` buffers and sends
 * one per element; B returns each buffer with a MSG_RING to A's ring, where
 * A collects it (from its CQ, no system call) when its pool runs dry.
 * Batch: A prepares the batch's SQEs and submits them all with the enter
 * that waits for the batch's `batch` returns; B returns the buffers as it
 * goes and submits the returns with its next wait.
 *
 * System calls are counted at each liburing call that enters the kernel
 * (io_uring_submit with SQEs to submit, io_uring_submit_and_wait, and
 * io_uring_wait_cqe* on a CQ with too few CQEs: one io_uring_enter each);
 * the all/op column checks that count. CQEs are counted as consumed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "qdbench.h"

#ifdef QDBENCH_NO_LIBURING

static uint64_t ur_copied(size_t size)
{
	(void)size;
	return 0;
}

static int ur_probe(char *why, size_t len)
{
	snprintf(why, len, "qdbench was built without liburing (install liburing-dev and rebuild)");
	return -ENOSYS;
}

int uring_flags_opt(const char *arg)
{
	(void)arg;
	return 0;
}

const struct mech mech_uring = {
	.name = "uring",
	.label = "io_uring",
	.copied = ur_copied,
	.probe = ur_probe,
};

#else

#include <liburing.h>

/* user_data of a sender's own SQE: its CQE comes only when it fails */
#define SRC_TAG		1ull

struct ur_side {
	struct io_uring	ring;
	bool		up;
	bool		regfd;		/* ring fd registered by its owner */
	bool		owed;		/* pending SQEs must go by the next wait */
	int		peer_fd;
	unsigned int	pending;	/* SQEs prepared, not yet submitted */
};

struct ur_state {
	struct ur_side	a;
	struct ur_side	b;
	unsigned int	entries;
	unsigned int	nbufs;
	char		**bufs;

	/* A side */
	_Alignas(64) char **a_free;
	unsigned int	a_nfree;
	unsigned int	a_out;		/* sent, not yet back */
	char		*a_cur;

	/* B side */
	_Alignas(64) char *b_cur;
};

static const struct {
	unsigned int	flags;
	const char	*opt;		/* --uring-flags */
	const char	*name;
} flag_sets[] = {
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "defer",
	  "IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN" },
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN, "single",
	  "IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_COOP_TASKRUN" },
	{ IORING_SETUP_COOP_TASKRUN, "coop", "IORING_SETUP_COOP_TASKRUN" },
	{ 0, "none", "no setup flags" },
};
#define NSETS	(sizeof(flag_sets) / sizeof(flag_sets[0]))	/* ARRAY_SIZE */

static unsigned int ur_flags;
static int ur_force = -1;	/* --uring-flags: one set only */

/* --uring-flags defer|single|coop|none|auto: 0, or -EINVAL */
int uring_flags_opt(const char *arg)
{
	unsigned int i;

	if (!strcmp(arg, "auto")) {
		ur_force = -1;
		return 0;
	}
	for (i = 0; i < NSETS; i++) {
		if (!strcmp(arg, flag_sets[i].opt)) {
			ur_force = i;
			return 0;
		}
	}
	return -EINVAL;
}
static bool ur_regfd = true;
static char ur_setup_note[640], ur_note_buf[768];

static uint64_t ur_copied(size_t size)
{
	(void)size;
	return 0;		/* the buffer pointer travels */
}

static int ring_up(struct ur_side *sd, unsigned int entries, unsigned int flags)
{
	struct io_uring_params p;
	int ret;

	memset(&p, 0, sizeof(p));
	p.flags = flags;
	ret = io_uring_queue_init_params(entries, &sd->ring, &p);
	if (ret < 0)
		return ret;
	sd->up = true;
	return 0;
}

static void ring_down(struct ur_side *sd)
{
	if (sd->up)
		io_uring_queue_exit(&sd->ring);
	sd->up = false;
}

/*
 * The ring fd registered with its owner thread (the registration belongs
 * to the thread, so the owner also drops it: ring_unreg).
 */
static void ring_extras(struct ur_side *sd, int peer_fd)
{
	sd->peer_fd = peer_fd;
	sd->regfd = false;
	if (ur_regfd) {
		if (io_uring_register_ring_fd(&sd->ring) == 1)
			sd->regfd = true;
		else
			ur_regfd = false;
	}
}

static void ring_unreg(struct ur_side *sd)
{
	if (sd->regfd)
		io_uring_unregister_ring_fd(&sd->ring);
	sd->regfd = false;
}

static void prep_msg(struct ur_side *sd, struct io_uring_sqe *sqe, void *buf,
		     size_t len)
{
	io_uring_prep_msg_ring(sqe, sd->peer_fd, (unsigned int)len,
			       (uint64_t)(uintptr_t)buf, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, SRC_TAG);
}

/* --- probe: can two threads exchange MSG_RINGs with these flags? ------ */

struct probe_peer {
	unsigned int	flags;
	int		a_fd;
	int		b_fd;		/* set by the peer, -errno on failure */
	int		err;
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
};

static int wait_one(struct io_uring *ring, struct io_uring_cqe **cqe)
{
	struct __kernel_timespec ts = { .tv_sec = 2 };
	int ret = io_uring_wait_cqe_timeout(ring, cqe, &ts);

	return ret == -ETIME ? -ETIMEDOUT : ret;
}

static void *probe_peer_main(void *arg)
{
	struct probe_peer *pp = arg;
	struct ur_side b = { 0 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int err;

	err = ring_up(&b, 8, pp->flags);
	pthread_mutex_lock(&pp->lock);
	pp->b_fd = err ? err : b.ring.ring_fd;
	pthread_cond_broadcast(&pp->cond);
	pthread_mutex_unlock(&pp->lock);
	if (err)
		return NULL;
	b.peer_fd = pp->a_fd;
	err = wait_one(&b.ring, &cqe);
	if (!err && (cqe->user_data != 0x1234 || cqe->res != 64))
		err = -EPROTO;
	if (!err) {
		io_uring_cqe_seen(&b.ring, cqe);
		sqe = io_uring_get_sqe(&b.ring);
		prep_msg(&b, sqe, (void *)(uintptr_t)0x5678, 128);
		if (io_uring_submit(&b.ring) != 1)
			err = -EIO;
	}
	pp->err = err;
	ring_down(&b);
	return NULL;
}

static int probe_flags(unsigned int flags, char *why, size_t len)
{
	struct probe_peer pp = {
		.flags = flags,
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct ur_side a = { 0 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	pthread_t t;
	int err;

	err = ring_up(&a, 8, flags);
	if (err) {
		snprintf(why, len, "io_uring_setup: %s", strerror(-err));
		return err;
	}
	pp.a_fd = a.ring.ring_fd;
	pp.b_fd = 0;
	if (pthread_create(&t, NULL, probe_peer_main, &pp)) {
		ring_down(&a);
		snprintf(why, len, "pthread_create failed");
		return -EAGAIN;
	}
	pthread_mutex_lock(&pp.lock);
	while (!pp.b_fd)
		pthread_cond_wait(&pp.cond, &pp.lock);
	pthread_mutex_unlock(&pp.lock);
	if (pp.b_fd < 0) {
		err = pp.b_fd;
		snprintf(why, len, "io_uring_setup in a second thread: %s", strerror(-err));
		goto out;
	}
	a.peer_fd = pp.b_fd;
	sqe = io_uring_get_sqe(&a.ring);
	prep_msg(&a, sqe, (void *)(uintptr_t)0x1234, 64);
	err = io_uring_submit(&a.ring);
	if (err != 1) {
		err = err < 0 ? err : -EIO;
		snprintf(why, len, "io_uring_enter: %s", strerror(-err));
		goto out;
	}
	err = wait_one(&a.ring, &cqe);
	if (err) {
		snprintf(why, len, "no reply from the other thread's ring: %s", strerror(-err));
		goto out;
	}
	if (cqe->user_data == SRC_TAG) {
		err = cqe->res < 0 ? cqe->res : -EPROTO;
		snprintf(why, len, "IORING_OP_MSG_RING: %s", strerror(-err));
		goto out;
	}
	if (cqe->user_data != 0x5678 || cqe->res != 128) {
		err = -EPROTO;
		snprintf(why, len, "IORING_OP_MSG_RING delivered user_data %#llx res %d",
			 (unsigned long long)cqe->user_data, cqe->res);
		goto out;
	}
	io_uring_cqe_seen(&a.ring, cqe);
	/* the sender's own CQE must have been skipped */
	if (io_uring_cq_ready(&a.ring)) {
		err = -EPROTO;
		snprintf(why, len, "IOSQE_CQE_SKIP_SUCCESS did not skip the sender's CQE");
	}
	/* a registered ring fd is part of the best mode, where it works */
	if (!err) {
		ur_regfd = io_uring_register_ring_fd(&a.ring) == 1;
		if (ur_regfd)
			io_uring_unregister_ring_fd(&a.ring);
	}
out:
	pthread_join(t, NULL);
	if (!err && pp.err) {
		err = pp.err;
		snprintf(why, len, "the other thread: %s", strerror(-err));
	}
	ring_down(&a);
	return err;
}

static int ur_probe(char *why, size_t len)
{
	char tried[512] = "";
	size_t used = 0;
	unsigned int i;
	int err = -ENOSYS;

	for (i = ur_force < 0 ? 0 : ur_force; i < NSETS; i++) {
		char w[256] = "";

		err = probe_flags(flag_sets[i].flags, w, sizeof(w));
		if (!err) {
			ur_flags = flag_sets[i].flags;
			snprintf(ur_setup_note, sizeof(ur_setup_note),
				 "rings set up with %s%s%s%s", flag_sets[i].name,
				 ur_force >= 0 ? " (--uring-flags)" : "",
				 used ? " (FELL BACK; refused: " : "",
				 used ? tried : "");
			if (used)
				strncat(ur_setup_note, ")",
					sizeof(ur_setup_note) - strlen(ur_setup_note) - 1);
			return 0;
		}
		used += snprintf(tried + used, sizeof(tried) - used, "%s%s (%s)",
				 used ? ", " : "", flag_sets[i].name, w);
		if (used >= sizeof(tried))
			used = sizeof(tried) - 1;
		if (err == -ENOSYS || err == -EPERM || ur_force >= 0)
			break;		/* io_uring itself is off, or no fallback */
	}
	snprintf(why, len, "%s%s", err == -ENOSYS || err == -EPERM ?
		 "io_uring is disabled or not permitted here: " : "tried ", tried);
	return err;
}

static const char *ur_note(void)
{
	snprintf(ur_note_buf, sizeof(ur_note_buf),
		 "%s; ring fds %sregistered; sender CQEs skipped (IOSQE_CQE_SKIP_SUCCESS)",
		 ur_setup_note, ur_regfd ? "" : "NOT ");
	return ur_note_buf;
}

/* --- the mechanism -------------------------------------------------- */

static void ur_teardown(struct run *r)
{
	struct ur_state *s = r->priv;
	unsigned int i;

	if (!s)
		return;
	ring_unreg(&s->a);	/* A's, registered by this thread */
	ring_down(&s->a);
	ring_down(&s->b);
	for (i = 0; s->bufs && i < s->nbufs; i++)
		buf_free(s->bufs[i], r->size);
	free(s->bufs);
	free(s->a_free);
	free(s);
	r->priv = NULL;
}

static int ur_setup(struct run *r)
{
	struct ur_state *s = aligned_alloc(64, sizeof(struct ur_state));
	unsigned int i;
	int err;

	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	r->priv = s;
	s->nbufs = r->mode == MODE_PINGPONG ? 1 : r->window;
	for (s->entries = 64; s->entries < s->nbufs; s->entries <<= 1)
		;
	s->bufs = calloc(s->nbufs, sizeof(*s->bufs));
	s->a_free = calloc(s->nbufs, sizeof(*s->a_free));
	if (!s->bufs || !s->a_free) {
		ur_teardown(r);
		return -ENOMEM;
	}
	for (i = 0; i < s->nbufs; i++) {
		/* two processes: B reads the payload in place, in A's pages */
		s->bufs[i] = procs == 2 ? shm_alloc(r->size) : buf_alloc(r->size);
		s->a_free[s->a_nfree++] = s->bufs[i];
	}
	/* A's ring, by A (this thread): B registers it as its peer */
	err = ring_up(&s->a, s->entries, ur_flags);
	/*
	 * Two processes: A needs an fd of B's ring to send to, and a child
	 * cannot give one back without SCM_RIGHTS. So A makes B's ring too,
	 * before the fork, disabled (IORING_SETUP_R_DISABLED): B enables it
	 * after the fork and becomes its single issuer (and the task its
	 * deferred work runs in). Each process keeps the other's ring fd as
	 * the MSG_RING target only; the buffers are MAP_SHARED.
	 */
	if (!err && procs == 2)
		err = ring_up(&s->b, s->entries, ur_flags | IORING_SETUP_R_DISABLED);
	if (err)
		ur_teardown(r);
	return err;
}

static int ur_b_init(struct run *r)
{
	struct ur_state *s = r->priv;
	int err;

	if (procs == 2) {
		/* B's process, after the fork: the ring A made for it */
		/* io_uring_enable_rings(), which older liburings lack */
		if (syscall(__NR_io_uring_register, s->b.ring.ring_fd,
			    IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
			return -errno;
	} else {
		err = ring_up(&s->b, s->entries, ur_flags);
		if (err)
			return err;
	}
	ring_extras(&s->b, s->a.ring.ring_fd);
	return 0;
}

static int ur_a_init(struct run *r)
{
	struct ur_state *s = r->priv;

	ring_extras(&s->a, s->b.ring.ring_fd);
	return 0;
}

static int ur_submit(struct ur_side *sd)
{
	int ret;

	if (!sd->pending)
		return 0;
	ret = io_uring_submit(&sd->ring);
	tl_syscalls++;
	if (ret < 0)
		return ret;
	if ((unsigned int)ret != sd->pending)
		return -EIO;
	sd->pending = 0;
	sd->owed = false;
	return 0;
}

/*
 * Until nr CQEs are in the CQ. A thread that has to wait submits all it
 * holds with the wait (one enter); one that need not wait submits only
 * what it owes (sends held back for this wait).
 */
static int ur_wait(struct ur_side *sd, unsigned int nr)
{
	struct io_uring_cqe *cqe;
	int ret;

	if (io_uring_cq_ready(&sd->ring) >= nr)
		return sd->owed ? ur_submit(sd) : 0;
	if (sd->pending) {
		ret = io_uring_submit_and_wait(&sd->ring, nr);
		tl_syscalls++;
		if (ret < 0 && ret != -EINTR)
			return ret;
		if (ret >= 0) {
			if ((unsigned int)ret != sd->pending)
				return -EIO;
			sd->pending = 0;
			sd->owed = false;
		}
	}
	while (io_uring_cq_ready(&sd->ring) < nr) {
		ret = io_uring_wait_cqe_nr(&sd->ring, &cqe, nr);
		tl_syscalls++;
		if (ret < 0 && ret != -EINTR)
			return ret;
	}
	return 0;
}

static int ur_send(struct ur_side *sd, void *buf, size_t len)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sd->ring);
	int err;

	if (!sqe) {
		err = ur_submit(sd);
		if (err)
			return err;
		sqe = io_uring_get_sqe(&sd->ring);
		if (!sqe)
			return -EBUSY;
	}
	prep_msg(sd, sqe, buf, len);
	sd->pending++;
	return 0;
}

/* Check one CQE that carries an element: returns its buffer or NULL. */
static int take(struct run *r, struct io_uring_cqe *cqe, char **buf)
{
	if (cqe->user_data == SRC_TAG) {
		fprintf(stderr, "qdbench: io_uring: IORING_OP_MSG_RING failed: %s\n",
			strerror(cqe->res < 0 ? -cqe->res : EPROTO));
		return cqe->res < 0 ? cqe->res : -EPROTO;
	}
	if ((size_t)cqe->res != r->size) {
		fprintf(stderr, "qdbench: io_uring: an element of %d bytes, expected %zu\n",
			cqe->res, r->size);
		return -EIO;
	}
	*buf = (char *)(uintptr_t)cqe->user_data;
	tl_cqes++;
	return 0;
}

/* The next element in sd's CQ (waiting for it if needed). */
static int next(struct run *r, struct ur_side *sd, char **buf)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int err;

	err = ur_wait(sd, 1);
	if (err)
		return err;
	io_uring_for_each_cqe(&sd->ring, head, cqe) {
		err = take(r, cqe, buf);
		n++;
		break;
	}
	io_uring_cq_advance(&sd->ring, n);
	return n ? err : -EIO;
}

/* A: every returned buffer in the CQ back to the pool, no system call. */
static int harvest(struct run *r, struct ur_state *s)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int err = 0;

	io_uring_for_each_cqe(&s->a.ring, head, cqe) {
		char *buf;

		n++;
		err = take(r, cqe, &buf);
		if (err)
			break;
		s->a_free[s->a_nfree++] = buf;
		s->a_out--;
	}
	io_uring_cq_advance(&s->a.ring, n);
	return err;
}

static int ur_a_buf(struct run *r, struct payload *p)
{
	struct ur_state *s = r->priv;
	int err;

	if (r->mode == MODE_PINGPONG) {
		s->a_cur = s->bufs[0];
		pl_flat(p, s->a_cur, r->size);
		return 0;
	}
	/* the pool is empty: take what came back, or wait for it */
	err = s->a_nfree ? 0 : harvest(r, s);
	if (!err && !s->a_nfree) {
		err = ur_wait(&s->a, 1);
		if (!err)
			err = harvest(r, s);
	}
	/* a send held back for a wait that was not needed goes now */
	if (!err && s->a.owed)
		err = ur_submit(&s->a);
	if (err)
		return err;
	s->a_cur = s->a_free[--s->a_nfree];
	pl_flat(p, s->a_cur, r->size);
	return 0;
}

static int ur_a_send(struct run *r, bool last, bool flush)
{
	struct ur_state *s = r->priv;
	int err;

	(void)last;
	err = ur_send(&s->a, s->a_cur, r->size);
	if (err)
		return err;
	s->a_out++;
	switch (r->mode) {
	case MODE_PINGPONG:
		s->a.owed = true;	/* a_recv's wait submits it */
		return 0;
	case MODE_BATCH:
		/* the batch's last one: a_sync's wait submits them all */
		s->a.owed = flush;
		return 0;
	default:
		/* held back only if the next step is a wait (pool empty) */
		if (s->a_nfree || io_uring_cq_ready(&s->a.ring))
			return ur_submit(&s->a);
		s->a.owed = true;
		return 0;
	}
}

static int ur_a_recv(struct run *r, struct payload *p)
{
	struct ur_state *s = r->priv;
	char *buf;
	int err;

	err = next(r, &s->a, &buf);
	if (err)
		return err;
	if (buf != s->a_cur)
		return -EPROTO;
	s->a_out--;
	pl_flat(p, buf, r->size);
	return 0;
}

/* Batch (and the end of a stream): every buffer back home. */
static int ur_a_sync(struct run *r)
{
	struct ur_state *s = r->priv;
	int err;

	while (s->a_out) {
		err = ur_wait(&s->a, s->a_out);
		if (!err)
			err = harvest(r, s);
		if (err)
			return err;
	}
	return 0;
}

static int ur_a_done(struct run *r)
{
	return r->mode == MODE_PINGPONG ? 0 : ur_a_sync(r);
}

static int ur_b_recv(struct run *r, struct payload *p)
{
	struct ur_state *s = r->priv;
	int err;

	err = next(r, &s->b, &s->b_cur);
	if (err)
		return err;
	pl_flat(p, s->b_cur, r->size);
	return 0;
}

/*
 * B hands the buffer back: at once, or, when its CQ is empty (its next
 * step is to wait), with that wait.
 */
static int b_return(struct run *r, bool last)
{
	struct ur_state *s = r->priv;
	int err;

	err = ur_send(&s->b, s->b_cur, r->size);
	if (err)
		return err;
	if (last || io_uring_cq_ready(&s->b.ring))
		return ur_submit(&s->b);
	s->b.owed = true;
	return 0;
}

static int ur_b_send(struct run *r, bool last)
{
	return b_return(r, last);
}

static int ur_b_release(struct run *r, bool last, bool flush)
{
	struct ur_state *s = r->priv;
	int err;

	if (flush)
		return b_return(r, last);
	/* mid-batch: the batch end (or B's next wait) submits it */
	err = ur_send(&s->b, s->b_cur, r->size);
	return err;
}

static int ur_b_done(struct run *r)
{
	struct ur_state *s = r->priv;
	int err = ur_submit(&s->b);

	ring_unreg(&s->b);	/* B's thread registered it */
	return err;
}

const struct mech mech_uring = {
	.name = "uring",
	.label = "io_uring",
	.copied = ur_copied,
	.probe = ur_probe,
	.note = ur_note,
	.setup = ur_setup,
	.teardown = ur_teardown,
	.a_init = ur_a_init,
	.b_init = ur_b_init,
	.a_buf = ur_a_buf,
	.a_send = ur_a_send,
	.a_recv = ur_a_recv,
	.a_sync = ur_a_sync,
	.a_done = ur_a_done,
	.b_recv = ur_b_recv,
	.b_send = ur_b_send,
	.b_release = ur_b_release,
	.b_done = ur_b_done,
	.thread_syscalls = count_thread_syscalls,
	.thread_cqes = count_thread_cqes,
};

#endif /* QDBENCH_NO_LIBURING */
