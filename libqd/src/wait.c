// SPDX-License-Identifier: MIT
/*
 * Completions: reaping a ring's CQ into its token slots, qd_wait(),
 * qd_wait_any().
 *
 * A wait names what it waits for. Its tokens name their rings; it reaps
 * those rings (each under its own lock) and, when none of its results is
 * there, sleeps in the kernel:
 *  - tokens of one ring (the usual case: a thread waiting for its own
 *    operations): QD_ENTER_CQ_TAIL on that ring, with the CQ tail its reap
 *    read. Only a completion on that ring wakes it, and none posted after
 *    the read is missed, whoever reaps it.
 *  - tokens of several rings: QD_ENTER_CTX_SEQ with the context-wide
 *    completion counter, read before reaping them all.
 * Any number of threads may sleep on one ring; each re-checks its own
 * tokens when it wakes. There is no leader and no hand-off between
 * threads. Before it sleeps, or when a poll finds nothing, a wait submits
 * what is queued in its tokens' rings and in the caller's own ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "int.h"
#include "mq.h"
#include "region.h"
#include "syscall.h"
#include "deadline.h"

/* A consumed result, carried out from under the ring's lock. */
struct qd_done {
	uint8_t			op;
	uint8_t			nsegs;
	int32_t			qd;
	int64_t			res;
	struct qd_seg		segs[QD_SGA_MAX];
	struct qd_sgaseg	usegs[QD_SGA_MAX];
	uint8_t			sockbuf;	/* sockets: see sock_result() */
	uint8_t			cqe_flags;
	struct qd_cqe_addr	addr;
	struct qd_delem		*delem;		/* a dfn pop's element */
};

static unsigned int cqe_nsegs(const struct qd_cqe *cqe)
{
	if (!(cqe->flags & QD_CQE_F_ELEM))
		return 0;
	return cqe->nsegs < QD_SGA_MAX ? cqe->nsegs : QD_SGA_MAX;
}

/*
 * A qd_push_forget() failed. Its buffers were handed over, so libqd frees
 * the ones it allocated; the kernel hands the element back when it had
 * built one.
 */
static void forget_failed(const struct qd_cqe *cqe, const struct qd_elem *elem)
{
	qd_count(&qd__cnt.forget_failed, 1);
	__atomic_store_n(&qd__cnt.forget_last_error, cqe->res,
			 __ATOMIC_RELAXED);
	if (cqe_nsegs(cqe))
		qd__alloc_free_segs(elem->segs, cqe_nsegs(cqe));
}

/* One more result of a multishot pop: -ENOMEM leaves the CQE in the CQ. */
static int shot_add(struct qd_slot *s, const struct qd_cqe *cqe,
		    const struct qd_elem *elem)
{
	struct qd_shot *sh = malloc(sizeof(*sh));

	if (!sh)
		return -ENOMEM;
	sh->next = NULL;
	sh->res = cqe->res;
	sh->nsegs = (uint8_t)cqe_nsegs(cqe);
	memcpy(sh->segs, elem->segs, sh->nsegs * sizeof(elem->segs[0]));
	*s->shots_tail = sh;
	s->shots_tail = &sh->next;
	if (!(cqe->flags & QD_CQE_F_MORE))
		s->state = QD_SLOT_DONE;
	return 0;
}

static int on_cqe(void *arg, const struct qd_cqe *cqe,
		  const struct qd_elem *elem)
{
	struct qd_ring *r = arg;
	struct qd_slot *s;

	if (!qd_token_gen(cqe->user_data)) {
		/*
		 * No token: a forget push (its success too when the kernel
		 * cannot skip it) or a cancel that found nothing to cancel.
		 */
		if (cqe->opcode == QD_OP_PUSH && cqe->res < 0)
			forget_failed(cqe, elem);
		/* A PROVIDE that failed hands its buffers back (pool.c). */
		if (cqe->opcode == QD_OP_PROVIDE && cqe->res < 0) {
			qd__pool_back((int)cqe->user_data, cqe_nsegs(cqe));
			qd__alloc_free_segs(elem->segs, cqe_nsegs(cqe));
		}
		return 0;
	}
	s = qd__slot_get(&r->slots, cqe->user_data);
	/* Not a token of this ring (a kernel bug): nothing to deliver it to. */
	if (!s || s->state != QD_SLOT_PENDING)
		return 0;
	if (cqe->flags & QD_CQE_F_POOL)
		qd__pool_back(s->sockbuf - QD_SOCKBUF_POOL, cqe_nsegs(cqe));
	if (s->multishot) {
		if (shot_add(s, cqe, elem))
			return -ENOMEM;
		if (r->next_on)
			qd__next_note(r, s);
		return 0;
	}
	s->res = cqe->res;
	s->cqe_flags = (uint8_t)cqe->flags;
	if (cqe->flags & QD_CQE_F_ADDR)
		memcpy(&s->addr, &elem->segs[QD_CQE_ADDR_SEG], sizeof(s->addr));
	/* A push's result is the caller's buffers (usegs), never the CQE's. */
	if (s->op == QD_OP_POP) {
		s->nsegs = (uint8_t)cqe_nsegs(cqe);
		memcpy(s->segs, elem->segs, s->nsegs * sizeof(elem->segs[0]));
	}
	s->state = QD_SLOT_DONE;
	if (r->next_on)
		qd__next_note(r, s);
	return 0;
}

int qd__ring_reap(struct qd_ring *r)
{
	int n = qd__cq_reap(&r->cq, on_cqe, r);

	if (n > 0)
		qd_count(&qd__cnt.cqes_reaped, n);
	return n;
}

/*
 * Check that every token of qts on ring r is live (else -EINVAL) and find
 * the first with a result: *idx and *out, or *idx = -1. r->lock held.
 */
static int find_ready(struct qd_ring *r, const qd_token_t *qts, int n,
		      int *idx, struct qd_slot **out)
{
	struct qd_slot *s;
	int i;

	*idx = -1;
	for (i = 0; i < n; i++) {
		if (qd_token_ring(qts[i]) != r->id)
			continue;
		s = qd__slot_get(&r->slots, qts[i]);
		if (!s)
			return -EINVAL;
		if (*idx < 0 && qd_slot_ready(s)) {
			*idx = i;
			*out = s;
		}
	}
	return 0;
}

/*
 * Consume s's (next) result into *d; the token goes with its final
 * result. r->lock held.
 */
static void take(struct qd_ring *r, struct qd_slot *s, struct qd_done *d)
{
	struct qd_shot *sh;

	d->op = s->op;
	d->qd = s->qd;
	d->sockbuf = 0;
	d->cqe_flags = 0;
	d->delem = s->delem;
	s->delem = NULL;
	if (!s->multishot) {
		d->res = s->res;
		d->nsegs = s->nsegs;
		d->cqe_flags = s->cqe_flags;
		if (s->cqe_flags & QD_CQE_F_ADDR)
			d->addr = s->addr;
		/* A socket pop's own buffer, to free if it got nothing. */
		d->sockbuf = s->sockbuf;
		if (s->sockbuf == QD_SOCKBUF_OWN)
			d->usegs[0] = s->usegs[0];
		/* A pop's element or a push's buffers: nsegs of either. */
		if (s->op == QD_OP_POP)
			memcpy(d->segs, s->segs, s->nsegs * sizeof(d->segs[0]));
		else
			memcpy(d->usegs, s->usegs,
			       s->nsegs * sizeof(d->usegs[0]));
		qd__slot_free(&r->slots, s);
		return;
	}
	sh = s->shots;
	s->shots = sh->next;
	if (!s->shots)
		s->shots_tail = &s->shots;
	d->res = sh->res;
	d->nsegs = sh->nsegs;
	d->sockbuf = s->sockbuf;	/* a socket's pool buffers */
	memcpy(d->segs, sh->segs, sh->nsegs * sizeof(d->segs[0]));
	free(sh);
	if (!s->shots && s->state == QD_SLOT_DONE)
		qd__slot_free(&r->slots, s);
}

static enum qd_opcode opcode_of(uint8_t op)
{
	switch (op) {
	case QD_OP_PUSH:
		return QD_OPC_PUSH;
	case QD_OP_POP:
		return QD_OPC_POP;
	case QD_OP_PUSHTO:
		return QD_OPC_PUSH;
	case QD_OP_ACCEPT:
		return QD_OPC_ACCEPT;
	case QD_OP_CONNECT:
		return QD_OPC_CONNECT;
	case QD_OP_SYNC:
		return QD_OPC_SYNC;
	default:
		return QD_OPC_INVALID;
	}
}

/* A socket address from a CQE into a sockaddr_storage. */
static void sock_addr(struct sockaddr_storage *ss, const struct qd_cqe_addr *a)
{
	size_t len = a->len < sizeof(a->addr) ? a->len : sizeof(a->addr);

	memset(ss, 0, sizeof(*ss));
	memcpy(ss, a->addr, len);
}

/*
 * The socket parts of a result: an accept's qd and peer, a datagram's
 * source and truncation, and the buffer a plain qd_pop() brought, freed
 * here when the pop yields no bytes. Returns 1 when *qr is complete.
 */
static int sock_result(struct qd_result *qr, const struct qd_done *d)
{
	struct qd_sga buf = { .numsegs = 1 };

	if (d->sockbuf == QD_SOCKBUF_OWN && (d->res <= 0 || !d->nsegs)) {
		buf.segs[0] = d->usegs[0];
		qd_sgafree(&buf);
	}
	/* Pool buffers that hold nothing (a failure, an empty datagram). */
	if (d->sockbuf >= QD_SOCKBUF_POOL && d->res <= 0 && d->nsegs)
		qd__alloc_free_segs(d->segs, d->nsegs);
	qr->value.sga.flags = 0;
	if (d->res < 0)
		return 1;
	if (d->op == QD_OP_ACCEPT) {
		qr->value.accept.qd = (int)d->res;
		qr->value.accept.addr.ss_family = AF_UNSPEC;
		if (d->cqe_flags & QD_CQE_F_ADDR)
			sock_addr(&qr->value.accept.addr, &d->addr);
		qd__sock_set((int)d->res, SOCK_STREAM);
		return 1;
	}
	if (d->op == QD_OP_POP) {
		if (d->cqe_flags & QD_CQE_F_ADDR)
			sock_addr(&qr->value.sga.addr, &d->addr);
		if (d->cqe_flags & QD_CQE_F_TRUNC)
			qr->value.sga.flags |= QD_SGA_TRUNC;
	}
	return d->op == QD_OP_CONNECT;
}

/* Fill *qr from a consumed result; no lock held. */
static void fill_result(struct qd_result *qr, const struct qd_done *d,
			qd_token_t qt)
{
	/*
	 * Not a memset of the whole result (about 300 bytes, most of them
	 * an address a memory queue never fills): what the contract defines
	 * for this result is set, segments past numsegs are not.
	 */
	qr->value.sga.numsegs = 0;
	qr->value.sga.addr.ss_family = AF_UNSPEC;
	qr->value.sga.flags = 0;
	qr->opcode = opcode_of(d->op);
	qr->qd = d->qd;
	qr->qt = qt;
	qr->ret = d->res;
	if (d->delem) {
		/* Popped and resolved by derive_fn.c already. */
		qr->value.sga = d->delem->sga;
		qr->ret = d->delem->ret;
		free(d->delem);
		return;
	}
	if ((d->sockbuf || d->op >= QD_OP_ACCEPT || d->cqe_flags) &&
	    sock_result(qr, d))
		return;
	if (d->res < 0)
		return;
	if (d->op == QD_OP_PUSH || d->op == QD_OP_PUSHTO) {
		qr->value.sga.numsegs = d->nsegs;
		memcpy(qr->value.sga.segs, d->usegs,
		       d->nsegs * sizeof(d->usegs[0]));
	} else if (d->op == QD_OP_POP && d->nsegs && d->res > 0) {
		/* Only regions of this context can be in its elements. */
		if (qd__alloc_resolve(d->segs, d->nsegs, &qr->value.sga))
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

static int enter_nowait(struct qd_ring *r, uint32_t to_submit)
{
	return qd__enter(qd__ctx.fd, r->id, to_submit, 0, 0, 0);
}

static int enter_wait(struct qd_ring *r, uint32_t to_submit, uint32_t how,
		      int64_t rem, uint32_t seq)
{
	if (rem != QD_FOREVER)
		how |= QD_ENTER_TIMEOUT;
	return qd__enter(qd__ctx.fd, r->id, to_submit, how,
			 rem != QD_FOREVER ? rem : 0, seq);
}

static int enter_mq(struct qd_ring *r, uint32_t to_submit, int qd,
		    int64_t rem, uint32_t seq)
{
	return qd__enter_mq(qd__ctx.fd, r->id, to_submit, qd,
			    rem != QD_FOREVER ? rem : -1, seq);
}

/*
 * The mapped queue a wait for qts can sleep on without handing its pop to
 * the kernel (QD_ENTER_MQ_POP), or -1: one token, a pop still in user
 * space (lazy), on a queue of this process with no pop parked in the
 * kernel (those go first: this pop must join their line). r->lock held.
 */
static int mq_sleep_qd(struct qd_ring *r, const qd_token_t *qts, int n)
{
	struct qd_slot *s;
	struct qd_mq *m;

	if (n != 1 || !(qd__ctx.features & QD_FEAT_MQ_SLEEP))
		return -1;
	s = qd__slot_get(&r->slots, qts[0]);
	if (!s || !s->lazy)
		return -1;
	m = qd__mq_get(s->qd);
	if (!m || !qd__mq_sleepable(m))
		return -1;
	return s->qd;
}

/* Submit the caller's own ring when it is not r: SQEs consumed. */
static int submit_own(struct qd_ring *own, struct qd_ring *r)
{
	return own && own != r ? qd__ring_submit(own) : 0;
}

/*
 * The first of qts with a result; or, for qd_wait_next() (next_qt set),
 * the oldest result of the ring, its token in *next_qt. r->lock held.
 */
static int find(struct qd_ring *r, const qd_token_t *qts, int n, int *idx,
		struct qd_slot **out, uint64_t *next_qt)
{
	if (!next_qt)
		return find_ready(r, qts, n, idx, out);
	*out = qd__next_find(r, next_qt);
	*idx = *out ? 0 : -1;
	return 0;
}

/* Take s's next result; qd_wait_next() finds it again if it has more. */
static void take_next(struct qd_ring *r, struct qd_slot *s, struct qd_done *d)
{
	take(r, s, d);
	if (s->state != QD_SLOT_FREE && qd_slot_ready(s))
		qd__next_note(r, s);
}

/*
 * Wait for the first of qts, all on ring r; or (next_qt set, qts NULL)
 * for the ring's next result in completion order.
 */
static int wait_ring(struct qd_ring *r, const qd_token_t *qts, int n,
		     int64_t at, int looked, int *idx, struct qd_done *d,
		     uint64_t *next_qt)
{
	struct qd_ring *own = qd__ring_mine_peek();
	int flushed = 0, drained = 0, converted = 0, no_mq = 0, ret, own_n;
	struct qd_slot *s = NULL;
	uint32_t queued, seen;
	int64_t rem;
	int mq;

	qd_lock(&r->lock);
	for (;;) {
		/*
		 * Reap first, then look: every CQE before the head it leaves
		 * is in the slots, so a sleep past that head misses nothing.
		 * (looked: the caller just did, for this one token.)
		 */
		ret = looked ? 0 : qd__ring_reap(r);
		if (ret < 0)
			break;
		if (ret > 0)
			drained = 0;
		ret = find(r, qts, n, idx, &s, next_qt);
		if (ret || *idx >= 0)
			break;
		/* Mapped-queue pops still in user space: from their rings. */
		if (!looked && r->nlazy && qd__ring_serve_lazy(r) > 0) {
			ret = find(r, qts, n, idx, &s, next_qt);
			if (ret || *idx >= 0)
				break;
			continue;
		}
		looked = 0;
		seen = r->cq.head;
		queued = qd_sq_queued(&r->sq);
		if (!drained && qd_cq_overflowed(&r->cq)) {
			/* Completions parked in the kernel, the ring empty. */
			drained = 1;
			qd_count(&qd__cnt.overflow_flushes, 1);
			qd_unlock(&r->lock);
			ret = enter_nowait(r, queued);
			qd_lock(&r->lock);
			if (ret < 0 && ret != -EINTR)
				break;
			continue;
		}
		rem = remaining(at);
		if (!rem) {
			/* Even a poll hands over what is queued, once. */
			ret = -ETIMEDOUT;
			if (flushed)
				break;
			flushed = 1;
			qd_unlock(&r->lock);
			own_n = submit_own(own, r);
			if (queued)
				ret = enter_nowait(r, queued);
			qd_lock(&r->lock);
			if (queued && ret < 0 && ret != -EINTR)
				break;
			if (!queued && own_n <= 0) {
				ret = -ETIMEDOUT;
				break;
			}
			continue;
		}
		/*
		 * About to sleep. A wait for one pop still in user space
		 * sleeps on its queue (QD_ENTER_MQ_POP): no operation, and
		 * the pop stays where the next element is taken. Should the
		 * kernel refuse (the queue closed under us, or is not ours),
		 * the pop goes to the kernel instead, as below.
		 */
		mq = no_mq || !r->nlazy ? -1 : mq_sleep_qd(r, qts, n);
		if (mq >= 0) {
			qd_unlock(&r->lock);
			submit_own(own, r);
			ret = enter_mq(r, queued, mq, rem, seen);
			qd_lock(&r->lock);
			if (ret == -EBADF || ret == -EINVAL) {
				no_mq = 1;
				ret = 0;
			} else if (ret < 0 && ret != -EINTR &&
				   ret != -ETIMEDOUT) {
				break;
			}
			continue;
		}
		/*
		 * Otherwise the oldest lazy pop of each queue goes to the
		 * kernel with this enter, to be woken (once per sleep).
		 * Nothing else changed: no need to look again first (a CQE
		 * posted meanwhile moves the tail past seen, and the enter
		 * returns at once).
		 */
		if (r->nlazy && !converted &&
		    qd__ring_convert_lazy(r, 0) > 0) {
			converted = 1;
			queued = qd_sq_queued(&r->sq);
		}
		qd_unlock(&r->lock);
		/* Socket pops may wait for pool buffers: stock them first. */
		if (qd__pool_stock_all()) {
			queued = qd__ring_queued(r);
			own = qd__ring_mine_peek();
		}
		submit_own(own, r);
		ret = enter_wait(r, queued, QD_ENTER_CQ_TAIL, rem, seen);
		converted = 0;
		qd_lock(&r->lock);
		if (ret < 0 && ret != -EINTR && ret != -ETIMEDOUT)
			break;
	}
	if (!ret && *idx >= 0) {
		if (next_qt)
			take_next(r, s, d);
		else
			take(r, s, d);
	}
	qd_unlock(&r->lock);
	return ret;
}

/* Tokens of qts, all on rings of this context, into their distinct rings. */
static int rings_of(const qd_token_t *qts, int n, struct qd_ring **rs)
{
	uint8_t seen[QD_MAX_RINGS / 8] = { 0 };
	struct qd_ring *r;
	int i, nr = 0;
	uint32_t id;

	for (i = 0; i < n; i++) {
		id = qd_token_ring(qts[i]);
		r = qd__ring_get(id);
		if (!r)
			return -EINVAL;
		if (!(seen[id / 8] & (1U << (id % 8)))) {
			seen[id / 8] |= 1U << (id % 8);
			rs[nr++] = r;
		}
	}
	return nr;
}

/* Submit, no wait, the rings of rs (queued[i] each) but skip: consumed. */
static int submit_rings(struct qd_ring **rs, const uint32_t *queued, int nr,
			struct qd_ring *skip)
{
	int i, ret, sent = 0;

	for (i = 0; i < nr; i++) {
		if (rs[i] == skip || !queued[i])
			continue;
		ret = enter_nowait(rs[i], queued[i]);
		if (ret > 0)
			sent += ret;
	}
	return sent;
}

/* One pass over the rings: reap each, find the first result in qts. */
static int scan_rings(struct qd_ring **rs, int nr, const qd_token_t *qts,
		      int n, int *best, struct qd_ring **best_r,
		      uint32_t *queued, int *overflow, int *reaped)
{
	struct qd_slot *s;
	int i, j, ret;

	*best = -1;
	for (i = 0; i < nr; i++) {
		qd_lock(&rs[i]->lock);
		overflow[i] = 0;
		ret = find_ready(rs[i], qts, n, &j, &s);
		if (!ret && j < 0) {
			ret = qd__ring_reap(rs[i]);
			if (ret > 0) {
				*reaped = 1;
				ret = find_ready(rs[i], qts, n, &j, &s);
			} else if (!ret && rs[i]->nlazy &&
				   qd__ring_serve_lazy(rs[i]) > 0) {
				*reaped = 1;
				ret = find_ready(rs[i], qts, n, &j, &s);
			} else if (!ret) {
				overflow[i] = qd_cq_overflowed(&rs[i]->cq);
			}
		}
		queued[i] = qd_sq_queued(&rs[i]->sq);
		qd_unlock(&rs[i]->lock);
		if (ret < 0)
			return ret;
		if (j >= 0 && (*best < 0 || j < *best)) {
			*best = j;
			*best_r = rs[i];
		}
	}
	return 0;
}

/* Wait for the first of qts, on the nr rings rs. */
static int wait_rings(struct qd_ring **rs, int nr, const qd_token_t *qts,
		      int n, int64_t at, int *idx, struct qd_done *d)
{
	struct qd_ring *own = qd__ring_mine_peek(), *sleep = rs[0];
	struct qd_ring *best_r = NULL;
	int overflow[QD_MAX_RINGS], flushed = 0, drained = 0, reaped;
	int converted = 0;
	int i, ret, sleep_i = 0, own_in = 0, ovf, sent;
	uint32_t queued[QD_MAX_RINGS], seq;
	struct qd_slot *s;
	int64_t rem;

	if (!qd__ctx.ctx_seq)
		return -EINVAL;
	/* Sleep on the caller's own ring if it is one of them. */
	for (i = 0; i < nr; i++) {
		if (rs[i] == own) {
			sleep = own;
			sleep_i = i;
			own_in = 1;
		}
	}
	for (;;) {
		/* Read first: a completion posted after it ends the sleep. */
		seq = __atomic_load_n(qd__ctx.ctx_seq, __ATOMIC_ACQUIRE);
		reaped = 0;
		ret = scan_rings(rs, nr, qts, n, idx, &best_r, queued,
				 overflow, &reaped);
		if (ret)
			return ret;
		if (reaped)
			drained = 0;
		if (*idx >= 0) {
			qd_lock(&best_r->lock);
			s = qd__slot_get(&best_r->slots, qts[*idx]);
			ret = s && qd_slot_ready(s);
			if (ret)
				take(best_r, s, d);
			qd_unlock(&best_r->lock);
			/* Else another wait took it: look again. */
			if (ret)
				return 0;
			continue;
		}
		for (i = 0, ovf = 0; i < nr; i++)
			ovf |= overflow[i];
		if (ovf && !drained) {
			drained = 1;
			for (i = 0; i < nr; i++) {
				if (!overflow[i])
					continue;
				qd_count(&qd__cnt.overflow_flushes, 1);
				enter_nowait(rs[i], queued[i]);
				queued[i] = 0;
			}
			continue;
		}
		rem = remaining(at);
		if (!rem) {
			if (flushed)
				return -ETIMEDOUT;
			flushed = 1;
			sent = own_in ? 0 : submit_own(own, NULL);
			sent += submit_rings(rs, queued, nr, NULL);
			if (sent > 0)
				continue;
			return -ETIMEDOUT;
		}
		/*
		 * The other rings' SQEs first, then look again: their
		 * completions would end the sleep at once anyway.
		 */
		/* About to sleep: lazy pops go to the kernel to be woken. */
		for (i = 0, sent = 0; i < nr && !converted; i++) {
			qd_lock(&rs[i]->lock);
			if (rs[i]->nlazy)
				sent += qd__ring_convert_lazy(rs[i], 0);
			qd_unlock(&rs[i]->lock);
		}
		if (sent) {
			converted = 1;
			continue;
		}
		/* Socket pops may wait for pool buffers: stock them first. */
		if (qd__pool_stock_all()) {
			own = qd__ring_mine_peek();
			if (own)
				qd__ring_submit(own);
		}
		if (!own_in)
			submit_own(own, NULL);
		if (submit_rings(rs, queued, nr, sleep) > 0)
			continue;
		ret = enter_wait(sleep, queued[sleep_i], QD_ENTER_CTX_SEQ, rem,
				 seq);
		converted = 0;
		if (ret < 0 && ret != -EINTR && ret != -ETIMEDOUT)
			return ret;
	}
}

/* One wait as the caller asked: the first of qts, or r's next result. */
static int wait_core(struct qd_ring **rs, int nr, const qd_token_t *qts,
		     int n, int64_t at, int *idx, struct qd_done *d,
		     uint64_t *next_qt)
{
	if (next_qt || nr == 1)
		return wait_ring(rs[0], qts, n, at, 0, idx, d, next_qt);
	return wait_rings(rs, nr, qts, n, at, idx, d);
}

/* Whether a pop of a callback-derived family among qts still waits. */
static int dfn_pending(const qd_token_t *qts, int n, struct qd_ring *next_r)
{
	struct qd_ring *r;
	struct qd_slot *s;
	int i, ret = 0;

	if (next_r)
		return !!__atomic_load_n(&next_r->ndfn, __ATOMIC_RELAXED);
	for (i = 0; i < n && !ret; i++) {
		r = qd__ring_get(qd_token_ring(qts[i]));
		if (!r)
			continue;
		qd_lock(&r->lock);
		s = qd__slot_get(&r->slots, qts[i]);
		ret = s && s->dfn && s->state == QD_SLOT_PENDING;
		qd_unlock(&r->lock);
	}
	return ret;
}

#define QD_DFN_PUMPS	64

int qd__dfn_poll(qd_token_t qt, struct qd_result *qr)
{
	struct qd_ring *prs[QD_MAX_RINGS];
	struct qd_done d;
	int nr, idx, ret;

	nr = rings_of(&qt, 1, prs);
	if (nr < 0)
		return nr;
	ret = wait_core(prs, nr, &qt, 1, 0, &idx, &d, NULL);
	if (ret == -ETIMEDOUT)
		return 0;
	if (ret)
		return ret;
	fill_result(qr, &d, qt);
	return 1;
}

/* Hand everything a sleep depends on to the kernel: rs's and pumps' rings. */
static void dfn_before_sleep(struct qd_ring **rs, int nr,
			     const qd_token_t *pumps, int np)
{
	struct qd_ring *prs[QD_MAX_RINGS], *own;
	int i, pnr;

	/* Lazy pops are woken only once the kernel has them. */
	for (i = 0; i < nr; i++) {
		qd_lock(&rs[i]->lock);
		if (rs[i]->nlazy)
			qd__ring_convert_lazy(rs[i], 0);
		qd_unlock(&rs[i]->lock);
		qd__ring_submit(rs[i]);
	}
	qd__pool_stock_all();
	own = qd__ring_mine_peek();
	if (own)
		qd__ring_submit(own);
	pnr = rings_of(pumps, np, prs);
	for (i = 0; i < pnr; i++)
		qd__ring_submit(prs[i]);
}

/*
 * A wait that involves pops of a callback-derived family (derive_fn.c):
 * besides what it waits for, it keeps the families' sources pumped and
 * routes what they bring, and it sleeps on the context's completion
 * counter (with QD_FEAT_RINGS; else on ring 0, the only ring), which any
 * completion bumps: a pump's, or the NOP a thread sends after completing
 * a pop of another's here. Once no such pop is pending any more, the
 * ordinary wait takes over.
 */
static int wait_dfn(struct qd_ring **rs, int nr, const qd_token_t *qts,
		    int n, int64_t at, int *idx, struct qd_done *d,
		    uint64_t *next_qt)
{
	qd_token_t pumps[QD_DFN_PUMPS];
	struct qd_ring *sleep, *r0 = qd__ring_get(0);
	int np, ret;
	uint32_t seq, how;
	int64_t rem;

	qd__dfn_waiting(1);
	for (;;) {
		/* Read first: a completion after it ends the sleep below. */
		if (qd__ctx.ctx_seq) {
			how = QD_ENTER_CTX_SEQ;
			seq = __atomic_load_n(qd__ctx.ctx_seq, __ATOMIC_ACQUIRE);
		} else {
			how = QD_ENTER_CQ_TAIL;
			seq = qd_load_acquire(r0->cq.ktail);
		}
		ret = wait_core(rs, nr, qts, n, 0, idx, d, next_qt);
		if (ret != -ETIMEDOUT)
			break;
		/*
		 * The pending pops take their elements, each family's root
		 * drained first (derive_fn.c: a sort orders all that its
		 * source has now; bounded, so a fast producer cannot keep
		 * them waiting).
		 */
		if (qd__dfn_serve())
			continue;
		np = qd__dfn_pumps(pumps, QD_DFN_PUMPS);
		if (!dfn_pending(qts, n, next_qt ? rs[0] : NULL)) {
			ret = wait_core(rs, nr, qts, n, at, idx, d, next_qt);
			break;
		}
		rem = remaining(at);
		if (!rem) {
			ret = -ETIMEDOUT;
			break;
		}
		dfn_before_sleep(rs, nr, pumps, np);
		sleep = qd__ring_mine_peek();
		if (!sleep || !qd__ctx.ctx_seq)
			sleep = r0;
		ret = enter_wait(sleep, 0, how, rem, seq);
		if (ret < 0 && ret != -EINTR && ret != -ETIMEDOUT)
			break;
	}
	qd__dfn_waiting(0);
	return ret;
}

/*
 * The common case first: one token whose result is there or can be had
 * without sleeping (a push through a mapped queue, a pop served in user
 * space now or earlier, a CQE in the ring). No clock, one lock hold.
 * 1 taken, 0 not there, -EINVAL.
 */
static int take_ready(qd_token_t qt, struct qd_done *d)
{
	struct qd_ring *r = qd__ring_get(qd_token_ring(qt));
	struct qd_slot *s;
	int ret = 0;

	if (!r)
		return -EINVAL;
	qd_lock(&r->lock);
	s = qd__slot_get(&r->slots, qt);
	if (!s) {
		ret = -EINVAL;
		goto out;
	}
	if (!qd_slot_ready(s)) {
		/* A lazy pop from its ring, anything else from the CQ. */
		if (s->lazy)
			qd__ring_serve_lazy(r);
		else
			qd__ring_reap(r);
		/* Reaping may not free s: only a wait frees a slot. */
	}
	if (qd_slot_ready(s)) {
		take(r, s, d);
		ret = 1;
	}
out:
	qd_unlock(&r->lock);
	return ret;
}

static int wait_tokens(struct qd_result *qr, int *ready, const qd_token_t *qts,
		       int n, const struct timespec *timeout)
{
	struct qd_ring *rs[QD_MAX_RINGS], *r;
	uint8_t seen[QD_MAX_RINGS / 8] = { 0 };
	int nr = 0, idx = -1, looked = 0, ret, i;
	struct qd_done d;
	uint32_t id;
	int64_t at;

	if (!qr || !qts || n <= 0)
		return -EINVAL;
	/* No timeout to check: a result already there is taken at once. */
	if (n == 1 && !timeout) {
		ret = take_ready(qts[0], &d);
		if (ret < 0)
			return ret;
		if (ret) {
			idx = 0;
			goto done;
		}
		looked = 1;
	}
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
	for (i = 0; i < n; i++) {
		id = qd_token_ring(qts[i]);
		r = qd__ring_get(id);
		if (!r)
			return -EINVAL;
		if (!(seen[id / 8] & (1U << (id % 8)))) {
			seen[id / 8] |= 1U << (id % 8);
			rs[nr++] = r;
		}
	}
	if (qd__dfn_active() && dfn_pending(qts, n, NULL))
		ret = wait_dfn(rs, nr, qts, n, at, &idx, &d, NULL);
	else if (nr == 1)
		ret = wait_ring(rs[0], qts, n, at, looked, &idx, &d, NULL);
	else
		ret = wait_rings(rs, nr, qts, n, at, &idx, &d);
	if (ret)
		return ret;
done:
	/*
	 * A push is complete for its waiter once a popper asleep in the
	 * kernel can see it: the wake its fast path queued goes now (one
	 * system call, only while someone sleeps; waits for pops do not send
	 * it, so a consumer returning a batch of buffers wakes its producer
	 * once, when it sleeps or submits, not once per buffer).
	 */
	if (d.op == QD_OP_PUSH)
		qd__ring_send_wakes(qd__ring_mine_peek());
	fill_result(qr, &d, qts[idx]);
	if (ready)
		*ready = idx;
	qd__pool_stock_all();	/* as in qd_wait_next() */
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

/*
 * Up to max more results of qts that are ready now, besides qts[skip]
 * (just taken): one walk of the array under the ring's lock, the results
 * filled after it. Tokens on other rings than qts[skip]'s are left for a
 * later wait. Returns how many.
 */
#define QD_WAIT_MORE	64

static int take_more(struct qd_result *qrs, int *offs, int max,
		     const qd_token_t *qts, int n, int skip)
{
	struct qd_done d[QD_WAIT_MORE];
	struct qd_ring *r = qd__ring_get(qd_token_ring(qts[skip]));
	struct qd_slot *s;
	int i, got = 0, push = 0;

	if (!r)
		return 0;
	if (max > QD_WAIT_MORE)
		max = QD_WAIT_MORE;
	qd_lock(&r->lock);
	for (i = 0; i < n && got < max; i++) {
		if (i == skip || qd_token_ring(qts[i]) != r->id)
			continue;
		s = qd__slot_get(&r->slots, qts[i]);
		if (!s || !qd_slot_ready(s))
			continue;
		take(r, s, &d[got]);
		offs[got++] = i;
	}
	qd_unlock(&r->lock);
	for (i = 0; i < got; i++) {
		push |= d[i].op == QD_OP_PUSH;
		fill_result(&qrs[i], &d[i], qts[offs[i]]);
	}
	if (push)
		qd__ring_send_wakes(qd__ring_mine_peek());
	return got;
}

int qd_wait_any_many(struct qd_result *qrs_out, int *ready_offsets, int max,
		     int *n_out, const qd_token_t *qts, int num_qts,
		     const struct timespec *timeout)
{
	int ret;

	if (!qrs_out || !ready_offsets || !n_out || max < 1)
		return -EINVAL;
	ret = wait_tokens(&qrs_out[0], &ready_offsets[0], qts, num_qts,
			  timeout);
	if (ret)
		return ret;
	*n_out = 1;
	if (max > 1)
		*n_out += take_more(qrs_out + 1, ready_offsets + 1, max - 1,
				    qts, num_qts, ready_offsets[0]);
	return 0;
}

int qd_wait_next(struct qd_result *qrs_out, int max, int *n_out,
		 const struct timespec *timeout)
{
	struct qd_done d[QD_WAIT_MORE];
	uint64_t qt[QD_WAIT_MORE];
	int got = 1, push = 0, idx, ret, i;
	struct qd_ring *r;
	struct qd_slot *s;
	int64_t at;

	if (!qrs_out || !n_out || max < 1)
		return -EINVAL;
	ret = qd_deadline(&at, timeout, timed(timeout) ? qd_now_ns() : 0);
	if (ret)
		return ret;
	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	qd_lock(&r->lock);
	qd__next_start(r);
	qd_unlock(&r->lock);
	if (qd__dfn_active() && dfn_pending(NULL, 0, r))
		ret = wait_dfn(&r, 1, NULL, 0, at, &idx, &d[0], &qt[0]);
	else
		ret = wait_ring(r, NULL, 0, at, 0, &idx, &d[0], &qt[0]);
	if (ret)
		return ret;
	if (max > QD_WAIT_MORE)
		max = QD_WAIT_MORE;
	qd_lock(&r->lock);
	while (got < max && (s = qd__next_find(r, &qt[got])))
		take_next(r, s, &d[got++]);
	qd_unlock(&r->lock);
	for (i = 0; i < got; i++) {
		push |= d[i].op == QD_OP_PUSH;
		fill_result(&qrs_out[i], &d[i], qt[i]);
	}
	if (push)
		qd__ring_send_wakes(qd__ring_mine_peek());
	/*
	 * Pool buffers came back with these results: a server that keeps
	 * finding results never sleeps, so every wait refills here (queued
	 * with what the caller submits next), not only before a sleep; two
	 * loads when no pool is low.
	 */
	qd__pool_stock_all();
	*n_out = got;
	return 0;
}
