// SPDX-License-Identifier: MIT
/*
 * Completions: reaping the CQ into token slots, qd_wait(), qd_wait_any().
 *
 * Waiting is leader/follower under cq_lock. At most one thread (the
 * leader) sleeps in QD_IOC_ENTER; while it is there it is also the only
 * reaper, so the kernel's "min_complete CQEs in the ring" test is never
 * defeated by another thread emptying the ring under it, and it returns as
 * soon as any CQE is posted. Everyone else sleeps on cq_seq, which is
 * broadcast whenever completions were reaped or the leader came back.
 * Without a leader, any waiter reaps, so a result already in the CQ costs
 * no system call.
 *
 * A broadcast is made after cq_lock is dropped where possible (a thread woken
 * while we hold the lock would only block again on the mutex, one more
 * futex round trip and context switch per wake-up): the waiters re-check
 * everything under the lock anyway, and none can miss a change made under
 * the lock before the broadcast that follows its release.
 */
#include <errno.h>
#include <string.h>

#include "int.h"
#include "region.h"
#include "syscall.h"
#include "deadline.h"

void qd__wait_init(void)
{
	qd__ctx.cq_seq = 0;
	qd__ctx.cq_sleepers = 0;
}

/*
 * Wake every follower. With or without cq_lock. The sequentially
 * consistent bump and exchange pair with the sleeper's store and load in
 * cond_wait(): either the sleeper sees the new cq_seq (its futex wait
 * returns at once) or we see its flag and wake it. Clearing the flag makes
 * the next broadcasts free until somebody sleeps again.
 */
static void broadcast(struct qd_ctx *c)
{
	__atomic_add_fetch(&c->cq_seq, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->cq_sleepers, __ATOMIC_SEQ_CST) &&
	    __atomic_exchange_n(&c->cq_sleepers, 0, __ATOMIC_SEQ_CST))
		qd__futex_wake_all(&c->cq_seq);
}

/*
 * Sleep until a broadcast or the deadline at (QD_FOREVER: none); called
 * with cq_lock held, which is dropped meanwhile. Wakes the other followers
 * first if *bcast. Spurious returns are fine: every caller loops.
 */
static void cond_wait(struct qd_ctx *c, int64_t at, int *bcast)
{
	uint32_t seq;

	if (*bcast)
		broadcast(c);
	*bcast = 0;
	__atomic_store_n(&c->cq_sleepers, 1, __ATOMIC_SEQ_CST);
	seq = __atomic_load_n(&c->cq_seq, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&c->cq_lock);
	qd__futex_wait(&c->cq_seq, seq, at);
	pthread_mutex_lock(&c->cq_lock);
}

static void on_cqe(void *arg, const struct qd_cqe *cqe,
		   const struct qd_elem *elem)
{
	struct qd_slot *s = qd__slot_get(arg, cqe->user_data);
	unsigned int n;

	/* Not a token of ours (a kernel bug): nothing to deliver it to. */
	if (!s || s->state != QD_SLOT_PENDING)
		return;
	s->res = cqe->res;
	if (cqe->flags & QD_CQE_F_ELEM) {
		n = cqe->nsegs < QD_SGA_MAX ? cqe->nsegs : QD_SGA_MAX;
		memcpy(s->segs, elem->segs, n * sizeof(elem->segs[0]));
		s->nsegs = (uint8_t)n;
	} else if (s->op != QD_OP_PUSH) {
		s->nsegs = 0;
	}
	s->state = QD_SLOT_DONE;
}

/* Called with cq_lock held and no leader in the kernel. */
static int reap(struct qd_ctx *c)
{
	int n = qd__cq_reap(&c->cq, on_cqe, &c->slots);

	if (n > 0)
		qd_count(&qd__cnt.cqes_reaped, n);
	return n;
}

int qd__reap(void)
{
	struct qd_ctx *c = &qd__ctx;
	int n = 0, bcast = 0;

	pthread_mutex_lock(&c->cq_lock);
	if (!c->kernel_waiters) {
		n = reap(c);
	} else if (qd_cq_ready(&c->cq)) {
		/* The leader is on its way out and reaps these. */
		cond_wait(c, QD_FOREVER, &bcast);
	}
	pthread_mutex_unlock(&c->cq_lock);
	if (n > 0)
		broadcast(c);
	return n;
}

/*
 * Sleep in the kernel for at most rem ns, submitting what is queued.
 * Called with cq_lock held; drops it meanwhile, and broadcasts then if
 * *bcast. On return the followers still have to be woken (*bcast set):
 * the caller broadcasts once it drops cq_lock or before it sleeps.
 */
static int kernel_wait(struct qd_ctx *c, int64_t rem, int *bcast)
{
	uint32_t to_submit, flags = QD_ENTER_GETEVENTS;
	int ret;

	pthread_mutex_lock(&c->sq_lock);
	c->kernel_waiters++;
	to_submit = qd_sq_queued(&c->sq);
	pthread_mutex_unlock(&c->sq_lock);
	pthread_mutex_unlock(&c->cq_lock);
	if (*bcast)
		broadcast(c);

	if (rem != QD_FOREVER)
		flags |= QD_ENTER_TIMEOUT;
	ret = qd__enter(c->fd, to_submit, 1, flags,
			rem != QD_FOREVER ? rem : 0);

	pthread_mutex_lock(&c->cq_lock);
	pthread_mutex_lock(&c->sq_lock);
	c->kernel_waiters--;
	pthread_mutex_unlock(&c->sq_lock);
	*bcast = 1;
	return ret;
}

/* Run a no-wait enter with cq_lock dropped (broadcasting then if *bcast). */
static int enter_unlocked(struct qd_ctx *c, int *bcast)
{
	int ret;

	pthread_mutex_unlock(&c->cq_lock);
	if (*bcast)
		broadcast(c);
	*bcast = 0;
	pthread_mutex_lock(&c->sq_lock);
	ret = qd_sq_queued(&c->sq);
	pthread_mutex_unlock(&c->sq_lock);
	ret = qd__enter(c->fd, ret, 0, 0, 0);
	pthread_mutex_lock(&c->cq_lock);
	return ret;
}

/*
 * Check that every token in qts is live (else -EINVAL) and find the first
 * completed one: *idx and *out, or *idx = -1.
 */
static int find_done(struct qd_ctx *c, const qd_token_t *qts, int n,
		     int *idx, struct qd_slot **out)
{
	struct qd_slot *s;
	int i;

	*idx = -1;
	for (i = 0; i < n; i++) {
		s = qd__slot_get(&c->slots, qts[i]);
		if (!s)
			return -EINVAL;
		if (*idx < 0 && s->state == QD_SLOT_DONE) {
			*idx = i;
			*out = s;
		}
	}
	return 0;
}

static enum qd_opcode opcode_of(uint8_t op)
{
	switch (op) {
	case QD_OP_PUSH:
		return QD_OPC_PUSH;
	case QD_OP_POP:
		return QD_OPC_POP;
	default:
		return QD_OPC_INVALID;
	}
}

/* Fill *qr from a copy of a consumed slot; no lock held. */
static void fill_result(struct qd_result *qr, const struct qd_slot *s,
			qd_token_t qt)
{
	memset(qr, 0, sizeof(*qr));
	qr->opcode = opcode_of(s->op);
	qr->qd = s->qd;
	qr->qt = qt;
	qr->ret = s->res;
	if (s->res < 0)
		return;
	if (s->op == QD_OP_PUSH) {
		qr->value.sga.numsegs = s->nsegs;
		memcpy(qr->value.sga.segs, s->usegs,
		       s->nsegs * sizeof(s->usegs[0]));
	} else if (s->op == QD_OP_POP && s->nsegs) {
		/* Only regions of this context can be in its elements. */
		if (qd__alloc_resolve(s->segs, s->nsegs, &qr->value.sga))
			qr->ret = -EFAULT;
	}
}

/* A timeout that is neither forever (NULL) nor a poll ({0, 0}). */
static int timed(const struct timespec *timeout)
{
	return timeout && (timeout->tv_sec || timeout->tv_nsec);
}

/* Nanoseconds left until at, reading the clock only when it matters. */
static int64_t remaining(int64_t at)
{
	if (at == QD_FOREVER || !at)
		return at;
	return qd_remaining(at, qd_now_ns());
}

static int wait_tokens(struct qd_result *qr, int *ready, const qd_token_t *qts,
		       int n, const struct timespec *timeout)
{
	struct qd_ctx *c = &qd__ctx;
	int flushed = 0, drained = 0, bcast = 0, idx = -1, ret;
	struct qd_slot *s = NULL, res;
	int64_t at, rem;

	if (!qr || !qts || n <= 0)
		return -EINVAL;
	/*
	 * Read the clock only for a timeout that needs it: forever and a
	 * poll never look at it (where the clock is not in the vDSO, each
	 * read is a system call).
	 */
	ret = qd_deadline(&at, timeout, timed(timeout) ? qd_now_ns() : 0);
	if (ret)
		return ret;
	/* No context, no token. */
	if (!qd_ready())
		return -EINVAL;

	pthread_mutex_lock(&c->cq_lock);
	for (;;) {
		ret = find_done(c, qts, n, &idx, &s);
		if (ret || idx >= 0)
			break;
		if (!c->kernel_waiters) {
			ret = reap(c);
			if (ret < 0)
				break;
			if (ret > 0) {
				bcast = 1;
				drained = 0;
				continue;
			}
			/* Completions parked in the kernel, the ring empty. */
			if (!drained && qd_cq_overflowed(&c->cq)) {
				drained = 1;
				qd_count(&qd__cnt.overflow_flushes, 1);
				ret = enter_unlocked(c, &bcast);
				if (ret < 0 && ret != -EINTR)
					break;
				continue;
			}
		}
		rem = remaining(at);
		if (!rem && !flushed) {
			/* Even a poll hands over what is queued, once. */
			flushed = 1;
			pthread_mutex_lock(&c->sq_lock);
			ret = qd_sq_queued(&c->sq);
			pthread_mutex_unlock(&c->sq_lock);
			if (ret) {
				ret = enter_unlocked(c, &bcast);
				if (ret < 0 && ret != -EINTR)
					break;
				continue;
			}
		}
		if (c->kernel_waiters && qd_cq_ready(&c->cq)) {
			/* The leader is on its way out with these. */
			cond_wait(c, QD_FOREVER, &bcast);
			continue;
		}
		if (!rem) {
			ret = -ETIMEDOUT;
			break;
		}
		if (!c->kernel_waiters) {
			ret = kernel_wait(c, rem, &bcast);
			if (ret < 0 && ret != -EINTR && ret != -ETIMEDOUT)
				break;
			continue;
		}
		cond_wait(c, at, &bcast);
	}
	if (!ret && idx >= 0) {
		res = *s;
		qd__slot_free(&c->slots, s);
	}
	pthread_mutex_unlock(&c->cq_lock);
	if (bcast)
		broadcast(c);

	if (ret)
		return ret;
	fill_result(qr, &res, qts[idx]);
	if (ready)
		*ready = idx;
	return 0;
}

int qd_wait(struct qd_result *qr_out, qd_token_t qt,
	    const struct timespec *timeout)
{
	return wait_tokens(qr_out, NULL, &qt, 1, timeout);
}

int qd_wait_any(struct qd_result *qr_out, int *ready_offset,
		const qd_token_t *qts, int num_qts,
		const struct timespec *timeout)
{
	if (!ready_offset)
		return -EINVAL;
	return wait_tokens(qr_out, ready_offset, qts, num_qts, timeout);
}
