// SPDX-License-Identifier: MIT
/*
 * Submission: qd_push(), qd_push_forget(), qd_pop(), qd_pop_multi(),
 * qd_cancel(), qd_queue(), qd_close(), qd_submit(). Sockets' and storage
 * queues' own calls are in sock.c and file.c.
 *
 * An operation goes into the calling thread's own SQ and waits there for
 * the next QD_IOC_ENTER that thread makes anyway: a wait that has to sleep
 * or poll, qd_submit(), qd_close(), or a full SQ. No other thread's sleep
 * makes it go sooner, so a burst of operations costs one system call.
 * The exceptions submit at once: qd_cancel() (the operation it cancels may
 * be another thread's, waited on in the kernel) and a thread's exit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"
#include "mq.h"
#include "region.h"
#include "syscall.h"

uint32_t qd__ring_queued(struct qd_ring *r)
{
	uint32_t n;

	qd_lock(&r->lock);
	n = qd_sq_queued(&r->sq);
	qd_unlock(&r->lock);
	return n;
}

void qd__ring_send_wakes(struct qd_ring *r)
{
	uint32_t head, i;
	int queued = 0;

	/*
	 * Without the lock first: has the kernel consumed the SQ past the
	 * newest wake queued? (Mostly it has, and there is nothing to do.)
	 */
	if (!r || !__atomic_load_n(&r->wake_last_set, __ATOMIC_RELAXED) ||
	    (int32_t)(__atomic_load_n(&r->wake_last, __ATOMIC_RELAXED) -
		      qd_load_acquire(r->sq.khead)) < 0)
		return;
	qd_lock(&r->lock);
	head = qd_load_acquire(r->sq.khead);
	for (i = 0; i < 4; i++)
		if (r->wakes[i].qd >= 0 &&
		    (int32_t)(r->wakes[i].sq_index - head) >= 0 &&
		    (int32_t)(r->wakes[i].sq_index - r->sq.tail) < 0)
			queued = 1;
	qd_unlock(&r->lock);
	if (queued)
		qd__ring_submit(r);
}

int qd__ring_submit(struct qd_ring *r)
{
	uint32_t n = qd__ring_queued(r);

	/*
	 * The SQEs are published; the kernel serialises the consumers of an
	 * SQ, so this enter needs no lock even if another thread's runs.
	 */
	return n ? qd__ring_kick(r, n) : 0;
}

/*
 * Append a copy of *tmpl to r's SQ; a PUSH's segments go into the SQ
 * entry's own array. Called with r->lock held.
 */
static int sq_add(struct qd_ring *r, const struct qd_sqe *tmpl,
		  const struct qd_seg *segs)
{
	struct qd_elem *arr;
	struct qd_sqe *sqe;
	int ret, reaped = 0;

	while (!(sqe = qd_sq_next(&r->sq))) {
		/*
		 * Full: submit, holding the lock so that nobody refills the
		 * SQ meanwhile. Still full means the kernel took nothing: its
		 * in-flight cap is reached, perhaps by completions parked in
		 * its overflow list, so reap the CQ once for the next enter
		 * to move them in.
		 */
		ret = qd__enter(qd__ctx.fd, r->id, qd_sq_queued(&r->sq), 0, 0,
				0);
		if (ret < 0)
			return ret;
		sqe = qd_sq_next(&r->sq);
		if (sqe)
			break;
		if (reaped)
			return -EBUSY;
		qd__ring_reap(r);
		reaped = 1;
	}
	*sqe = *tmpl;
	if (tmpl->opcode != QD_OP_WAKE) {
		r->last_op = r->sq.tail;
		r->last_op_set = 1;
	}
	if (segs) {
		arr = &r->pushsegs[qd_ring_slot(r->sq.tail, r->sq.mask)];
		memcpy(arr->segs, segs, tmpl->nsegs * sizeof(segs[0]));
		sqe->addr = (uintptr_t)arr;
	}
	qd_sq_commit(&r->sq);
	return 0;
}

/*
 * Queue one operation with a token (qt_out) or without (qt_out NULL,
 * user_data 0). sga: a PUSH's buffers, segs their translation.
 */
static int submit_op(struct qd_ring *r, qd_token_t *qt_out,
		     const struct qd_sqe *tmpl, const struct qd_sga *sga,
		     const struct qd_seg *segs)
{
	struct qd_sqe sqe = *tmpl;
	struct qd_slot *s = NULL;
	int ret;

	qd_lock(&r->lock);
	if (qt_out) {
		s = qd__slot_alloc(&r->slots);
		if (!s) {
			ret = -ENOMEM;
			goto out;
		}
		s->op = sqe.opcode;
		s->qd = sqe.qd;
		s->multishot = !!(sqe.op_flags & QD_POP_MULTISHOT);
		s->hidden = qd__hidden;
		if (sga) {
			s->nsegs = (uint8_t)sga->numsegs;
			memcpy(s->usegs, sga->segs,
			       sga->numsegs * sizeof(sga->segs[0]));
		}
		sqe.user_data = qd_slot_token(&r->slots, s);
	}
	ret = sq_add(r, &sqe, segs);
	if (ret) {
		if (s)
			qd__slot_free(&r->slots, s);
		goto out;
	}
	if (qt_out)
		*qt_out = sqe.user_data;
out:
	qd_unlock(&r->lock);
	return ret;
}

int qd__submit_provide(const struct qd_seg *segs, uint32_t n, uint32_t g)
{
	/* user_data: the group (no token), for a failure's CQE (wait.c). */
	struct qd_sqe sqe = { .opcode = QD_OP_PROVIDE, .nsegs = (uint16_t)n,
			      .flags = QD_SQE_F_SKIP_SUCCESS,
			      .user_data = g, .buf_group = g };
	struct qd_ring *r;
	int ret;

	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	return submit_op(r, NULL, &sqe, NULL, segs);
}

int qd__submit_ext(qd_token_t *qt_out, const struct qd_sqe *tmpl,
		    const struct qd_sga *sga, const struct qd_seg *segs,
		    int own_buf, const void *sa, uint32_t salen)
{
	struct qd_sqe sqe = *tmpl;
	struct qd_ring *r;
	struct qd_slot *s;
	int ret;

	_Static_assert(sizeof(s->segs) >= sizeof(struct sockaddr_storage),
		       "a slot's segments hold a socket address");
	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	qd_lock(&r->lock);
	s = qd__slot_alloc(&r->slots);
	if (!s) {
		ret = -ENOMEM;
		goto out;
	}
	s->op = sqe.opcode;
	s->qd = sqe.qd;
	s->multishot = !!(sqe.op_flags & QD_POP_MULTISHOT);
	s->sockbuf = (uint8_t)own_buf;
	s->hidden = qd__hidden;
	if (sga) {
		s->nsegs = (uint8_t)sga->numsegs;
		memcpy(s->usegs, sga->segs,
		       sga->numsegs * sizeof(sga->segs[0]));
	}
	if (sa) {
		/* The slot's element is unused until a pop's CQE. */
		memcpy(s->segs, sa, salen);
		sqe.addr2 = (uintptr_t)s->segs;
		sqe.addr_len = salen;
	}
	sqe.user_data = qd_slot_token(&r->slots, s);
	ret = sq_add(r, &sqe, segs);
	if (ret) {
		qd__slot_free(&r->slots, s);
		goto out;
	}
	*qt_out = sqe.user_data;
out:
	qd_unlock(&r->lock);
	return ret;
}

/*
 * Whether this thread has an operation in its SQ that the kernel has not
 * consumed yet (wakes aside). r->lock held.
 */
static int ops_queued(struct qd_ring *r)
{
	return r->last_op_set &&
	       (int32_t)(r->last_op - qd_load_acquire(r->sq.khead)) >= 0;
}

/*
 * A push or pop went through qd's mapped ring while the other kind is
 * parked in the kernel: queue a QD_OP_WAKE (no CQE on success) unless one
 * for qd is still queued in r's SQ. r->lock held.
 */
static void queue_wake(struct qd_ring *r, int qd)
{
	uint32_t head = qd_load_acquire(r->sq.khead), i;
	struct qd_sqe sqe;

	for (i = 0; i < 4; i++)
		if (r->wakes[i].qd == qd &&
		    (int32_t)(r->wakes[i].sq_index - head) >= 0 &&
		    (int32_t)(r->wakes[i].sq_index - r->sq.tail) < 0)
			return;		/* still in the SQ */
	sqe = (struct qd_sqe){ .opcode = QD_OP_WAKE, .qd = qd,
			       .flags = QD_SQE_F_SKIP_SUCCESS };
	i = r->wake_next++ % 4;
	r->wakes[i].qd = qd;
	r->wakes[i].sq_index = r->sq.tail;
	if (sq_add(r, &sqe, NULL)) {
		r->wakes[i].qd = -1;	/* the next push or pop tries again */
		return;
	}
	__atomic_store_n(&r->wake_last, r->wakes[i].sq_index,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&r->wake_last_set, 1, __ATOMIC_RELAXED);
}

/*
 * A push that went through a mapped queue's ring: its token, already done
 * (none for a forget push). The slot was reserved before the element was
 * published, so this cannot fail. r->lock held.
 */
static void push_done(struct qd_ring *r, qd_token_t *qt_out, int qd,
		      const struct qd_sga *sga, int64_t bytes)
{
	struct qd_slot *s;

	if (!qt_out)
		return;
	s = qd__slot_alloc(&r->slots);
	s->op = QD_OP_PUSH;
	s->qd = qd;
	s->res = bytes;
	s->nsegs = (uint8_t)sga->numsegs;
	memcpy(s->usegs, sga->segs, sga->numsegs * sizeof(sga->segs[0]));
	s->state = QD_SLOT_DONE;
	*qt_out = qd_slot_token(&r->slots, s);
	if (r->next_on)
		qd__next_note(r, s);
}

/* Bytes in a checked sga. */
static int64_t sga_bytes(const struct qd_sga *sga)
{
	int64_t n = 0;
	uint32_t i;

	for (i = 0; i < sga->numsegs; i++)
		n += sga->segs[i].len;
	return n;
}

/*
 * The fast path of a push to a mapped queue: 1 if it went through the
 * ring (and *qt_out, if any, is done), 0 if the kernel must take it, or
 * -ENOMEM (no token could be had; nothing pushed).
 */
static int push_mapped(struct qd_ring *r, qd_token_t *qt_out, int qd,
		       const struct qd_sga *sga, const struct qd_seg *segs)
{
	struct qd_mq *m = qd__mq_get(qd);
	int wake = 0, ret;

	if (!m)
		return 0;
	qd_lock(&r->lock);
	/*
	 * Under r->lock, so a thread's pushes and pops keep their order with
	 * its own kernel-path operations queued in the same SQ.
	 */
	if (ops_queued(r)) {
		/* This thread's earlier operations still wait in its SQ. */
		ret = 0;
		goto out;
	}
	/*
	 * The token first: once the element is in the ring it is the
	 * popper's, so the push must not fail after that.
	 */
	if (qt_out && !qd__slot_reserve(&r->slots)) {
		ret = -ENOMEM;
		goto out;
	}
	ret = qd__mq_push(m, segs, sga->numsegs, &wake);
	if (ret) {
		ret = 0;
		goto out;
	}
	if (wake)
		queue_wake(r, qd);
	push_done(r, qt_out, qd, sga, sga_bytes(sga));
	ret = 1;
out:
	qd_unlock(&r->lock);
	return ret;
}

/* Take a lazy pop's element from its ring: 1 done, 0 not now. */
static int lazy_take(struct qd_ring *r, struct qd_slot *s)
{
	struct qd_mq *m = qd__mq_get(s->qd);
	int64_t bytes = 0;
	unsigned int n, i;
	int wake = 0;

	if (!m || qd__mq_pop(m, s->segs, &n, &wake))
		return 0;
	if (wake)
		queue_wake(r, s->qd);
	for (i = 0; i < n; i++)
		bytes += s->segs[i].len;
	s->nsegs = (uint8_t)n;
	s->res = n ? bytes : -EBADMSG;	/* garbage in the ring: consumed */
	s->lazy = 0;
	s->state = QD_SLOT_DONE;
	if (r->next_on)
		qd__next_note(r, s);
	return 1;
}

/* Serve q's lazy pops from its ring, oldest first: the number served. */
static int lazyq_serve(struct qd_ring *r, struct qd_lazyq *q)
{
	int served = 0;

	while (q->n &&
	       lazy_take(r, qd__slot_at(&r->slots,
					q->idx[q->head & (q->cap - 1)]))) {
		q->head++;
		q->n--;
		r->nlazy--;
		served++;
	}
	return served;
}

int qd__ring_serve_lazy(struct qd_ring *r)
{
	uint32_t i;
	int served = 0;

	/* A pop of this thread the kernel has not seen yet would be older. */
	if (ops_queued(r))
		return 0;
	for (i = 0; i < r->nlazyq && r->nlazy; i++)
		served += lazyq_serve(r, &r->lazyq[i]);
	return served;
}

/*
 * Only the oldest lazy pop of each queue goes to the kernel: it is enough
 * to be woken, and once it is served the others usually find their
 * elements in the ring (a consumer woken for a batch takes the rest of it
 * in user space).
 */
int qd__ring_convert_lazy(struct qd_ring *r, int all)
{
	struct qd_sqe sqe = { .opcode = QD_OP_POP };
	struct qd_lazyq *q;
	struct qd_slot *s;
	uint32_t i;
	int done = 0;

	for (i = 0; i < r->nlazyq && r->nlazy; i++) {
		q = &r->lazyq[i];
		while (q->n) {
			s = qd__slot_at(&r->slots,
					q->idx[q->head & (q->cap - 1)]);
			sqe.qd = s->qd;
			sqe.user_data = qd_slot_token(&r->slots, s);
			if (sq_add(r, &sqe, NULL))
				return done;
			s->lazy = 0;
			q->head++;
			q->n--;
			r->nlazy--;
			done++;
			if (!all)
				break;
		}
	}
	return done;
}

void qd__lazy_fini(struct qd_ring *r)
{
	uint32_t i;

	for (i = 0; i < r->nlazyq; i++)
		free(r->lazyq[i].idx);
	free(r->lazyq);
	r->lazyq = NULL;
	r->nlazyq = 0;
	r->nlazy = 0;
}

/*
 * The lazy-pop FIFO of qd on r with room for one more: its own, else an
 * empty one, else a new one. NULL: -ENOMEM. r->lock held.
 */
static struct qd_lazyq *lazyq_get(struct qd_ring *r, int qd)
{
	struct qd_lazyq *q = NULL, *qs;
	uint32_t i, cap, *idx;

	for (i = 0; i < r->nlazyq; i++) {
		if (r->lazyq[i].qd == qd && r->lazyq[i].n) {
			q = &r->lazyq[i];
			break;
		}
		if (!q && !r->lazyq[i].n)
			q = &r->lazyq[i];
	}
	if (!q) {
		qs = realloc(r->lazyq, (r->nlazyq + 1) * sizeof(*qs));
		if (!qs)
			return NULL;
		r->lazyq = qs;
		q = &qs[r->nlazyq++];
		*q = (struct qd_lazyq){ 0 };
	}
	if (!q->n) {
		q->qd = qd;
		q->head = 0;
	}
	if (q->n < q->cap)
		return q;
	/* Full: double it, the FIFO unrolled from head to the start. */
	cap = q->cap ? q->cap * 2 : 16;
	idx = malloc(cap * sizeof(*idx));
	if (!idx)
		return NULL;
	for (i = 0; i < q->n; i++)
		idx[i] = q->idx[(q->head + i) & (q->cap - 1)];
	free(q->idx);
	q->idx = idx;
	q->cap = cap;
	q->head = 0;
	return q;
}

/*
 * The fast path of a pop on a mapped queue: the pop joins r's lazy pops
 * and is served from the ring at once if it can be (its token is then
 * done); else it waits in user space for the next wait on r. 1, 0 if the
 * kernel must take it now, or -errno.
 */
static int pop_mapped(struct qd_ring *r, qd_token_t *qt_out, int qd)
{
	struct qd_lazyq *q;
	struct qd_slot *s;
	int ret = 0;

	if (!qd__mq_get(qd))
		return 0;
	qd_lock(&r->lock);
	if (ops_queued(r))
		goto out;
	ret = -ENOMEM;
	q = lazyq_get(r, qd);
	if (!q)
		goto out;
	s = qd__slot_alloc(&r->slots);
	if (!s)
		goto out;
	s->op = QD_OP_POP;
	s->qd = qd;
	s->lazy = 1;
	q->idx[(q->head + q->n++) & (q->cap - 1)] = s->idx;
	r->nlazy++;
	*qt_out = qd_slot_token(&r->slots, s);
	/* Only its own queue's: the others' elements wait for a wait. */
	lazyq_serve(r, q);
	ret = 1;
out:
	qd_unlock(&r->lock);
	return ret;
}

int qd__mq_pop_now(int qd, struct qd_result *qr)
{
	struct qd_mq *m = qd__mq_get(qd);
	struct qd_seg segs[QD_SGA_MAX];
	unsigned int n = 0, i;
	struct qd_ring *r;
	int64_t bytes = 0;
	int wake = 0, ret;

	if (!m || m->shared)
		return -EAGAIN;
	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	qd_lock(&r->lock);
	/*
	 * This thread's operations still in its SQ (a push to qd, say) go
	 * first; pops parked in the kernel too: the kernel's turn.
	 */
	if (ops_queued(r) || (qd__mq_waiters(m) & QD_MQ_POP_WAITERS)) {
		qd_unlock(&r->lock);
		return -EAGAIN;
	}
	ret = qd__mq_pop(m, segs, &n, &wake);
	if (!ret && wake)
		queue_wake(r, qd);
	qd_unlock(&r->lock);
	if (ret)
		return 0;		/* the ring is empty */
	if (wake)
		qd__ring_submit(r);
	for (i = 0; i < n; i++)
		bytes += segs[i].len;
	qr->opcode = QD_OPC_POP;
	qr->qd = qd;
	qr->qt = 0;
	qr->value.sga.numsegs = 0;
	qr->value.sga.addr.ss_family = AF_UNSPEC;
	qr->value.sga.flags = 0;
	qr->ret = n ? bytes : -EBADMSG;	/* garbage in the ring: consumed */
	if (n && qd__alloc_resolve(segs, n, &qr->value.sga))
		qr->ret = -EFAULT;
	return 1;
}

/* A push the kernel takes: into the thread's SQ. */
static int push_kernel(struct qd_ring *r, qd_token_t *qt_out, int qd,
		       const struct qd_sga *sga, const struct qd_seg *segs)
{
	struct qd_sqe sqe = { .opcode = QD_OP_PUSH, .qd = qd,
			      .nsegs = (uint16_t)sga->numsegs };

	/*
	 * Without the flag the kernel posts the success too; reaping drops
	 * it, as the element took the buffers with it.
	 */
	if (!qt_out && (qd__ctx.features & QD_FEAT_SKIP_SUCCESS))
		sqe.flags = QD_SQE_F_SKIP_SUCCESS;
	return submit_op(r, qt_out, &sqe, sga, segs);
}

static int push(qd_token_t *qt_out, int qd, const struct qd_sga *sga)
{
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_ring *r;
	int ret;

	ret = qd__sga_check(sga);
	if (ret)
		return ret;
	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	/* A push to a callback filter goes to its source. */
	if (qd__dfn_active()) {
		ret = qd__dfn_push_target(qd, &qd);
		if (ret)
			return ret;
	}
	/*
	 * A socket or a file keeps no buffers: a forget push could neither
	 * give them back nor say when the caller may reuse them.
	 */
	if (!qt_out && (qd__sock_kind(qd) || qd__file_is(qd)))
		return -EOPNOTSUPP;
	ret = qd__alloc_translate(sga, segs);
	if (ret)
		return ret;
	ret = push_mapped(r, qt_out, qd, sga, segs);
	if (ret)
		return ret < 0 ? ret : 0;
	return push_kernel(r, qt_out, qd, sga, segs);
}

int qd_push(qd_token_t *qt_out, int qd, const struct qd_sga *sga)
{
	if (!qt_out)
		return -EINVAL;
	return push(qt_out, qd, sga);
}

int qd_push_forget(int qd, const struct qd_sga *sga)
{
	return push(NULL, qd, sga);
}

/* A pop the kernel takes: into the thread's SQ. */
static int pop_kernel(struct qd_ring *r, qd_token_t *qt_out, int qd,
		      uint32_t op_flags)
{
	struct qd_sqe sqe = { .opcode = QD_OP_POP, .qd = qd,
			      .op_flags = op_flags };

	return submit_op(r, qt_out, &sqe, NULL, NULL);
}

static int pop(qd_token_t *qt_out, int qd, uint32_t op_flags)
{
	struct qd_ring *r;
	int ret;

	if (!qt_out)
		return -EINVAL;
	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	if ((op_flags & QD_POP_MULTISHOT) &&
	    !(qd__ctx.features & QD_FEAT_MULTISHOT))
		return -EOPNOTSUPP;
	/* libqd serves the pops of a callback-derived family (derive_fn.c). */
	if (qd__dfn_active()) {
		if (op_flags && qd__dfn_is(qd))
			return -EOPNOTSUPP;
		ret = op_flags ? QD_DFN_NOT : qd__dfn_pop(qt_out, qd);
		if (ret != QD_DFN_NOT)
			return ret;
	}
	if (!op_flags && qd__sock_kind(qd))
		return qd__sock_pop(qt_out, qd, 0);
	/* A storage pop reads into a buffer; no multishot form. */
	if (qd__file_is(qd))
		return op_flags ? -EOPNOTSUPP : qd__file_pop(qt_out, qd, NULL,
							     0, 0);
	if (!op_flags) {
		ret = pop_mapped(r, qt_out, qd);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	return pop_kernel(r, qt_out, qd, op_flags);
}

int qd_pop(qd_token_t *qt_out, int qd)
{
	return pop(qt_out, qd, 0);
}

int qd_pop_into(qd_token_t *qt_out, int qd, const struct qd_sga *buf)
{
	struct qd_sqe sqe = { .opcode = QD_OP_POP, .qd = qd };
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_ring *r;
	int ret;

	if (!qt_out)
		return -EINVAL;
	ret = qd__sga_check(buf);
	if (ret)
		return ret;
	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	/*
	 * A mapped queue's elements are this process's: no copy to make
	 * (a shared one's may not be: the kernel pops it, with the buffer).
	 * A callback-derived family's were popped already.
	 */
	if ((qd__mq_get(qd) && !qd__mq_get(qd)->shared) || qd__dfn_is(qd))
		return pop(qt_out, qd, 0);
	ret = qd__alloc_translate(buf, segs);
	if (ret)
		return ret;
	/* The buffer rides in the SQE like a push's segments. */
	sqe.nsegs = (uint16_t)buf->numsegs;
	return submit_op(r, qt_out, &sqe, NULL, segs);
}

int qd_pop_multi(qd_token_t *qt_out, int qd)
{
	if (qd__dfn_is(qd))
		return -EOPNOTSUPP;
	if (qt_out && qd__sock_kind(qd))
		return qd__sock_pop_multi(qt_out, qd);
	return pop(qt_out, qd, QD_POP_MULTISHOT);
}

int qd_cancel(qd_token_t qt)
{
	struct qd_sqe sqe = { .opcode = QD_OP_CANCEL, .addr = qt };
	struct qd_ring *r;
	struct qd_slot *s;
	int ret, qd;

	if (!qd_ready())
		return -EINVAL;
	r = qd__ring_get(qd_token_ring(qt));
	if (!r)
		return -EINVAL;
	qd_lock(&r->lock);
	s = qd__slot_get(&r->slots, qt);
	if (!s)
		ret = -EINVAL;
	else if (s->op != QD_OP_POP)
		ret = -EOPNOTSUPP;
	else if (s->dfn) {
		/* libqd's own pop: it ends in derive_fn.c, no kernel. */
		ret = s->state == QD_SLOT_DONE ? -EALREADY : 0;
		qd = s->qd;
		qd_unlock(&r->lock);
		return ret ? ret : qd__dfn_cancel(qt, qd);
	} else if (!(qd__ctx.features & QD_FEAT_MULTISHOT))
		ret = -EOPNOTSUPP;
	else if (s->state == QD_SLOT_DONE)
		ret = -EALREADY;
	else if (s->lazy) {
		/* Still in user space: it ends here. */
		qd__ring_convert_lazy(r, 1);
		ret = sq_add(r, &(struct qd_sqe){ .opcode = QD_OP_CANCEL,
			.addr = qt, .qd = s->qd,
			.flags = (qd__ctx.features & QD_FEAT_SKIP_SUCCESS) ?
				 QD_SQE_F_SKIP_SUCCESS : 0 }, NULL);
	} else {
		/*
		 * Into the pop's own SQ, behind the pop if it is still
		 * queued there, so the kernel always sees the pop first.
		 */
		sqe.qd = s->qd;
		if (qd__ctx.features & QD_FEAT_SKIP_SUCCESS)
			sqe.flags = QD_SQE_F_SKIP_SUCCESS;
		ret = sq_add(r, &sqe, NULL);
	}
	qd_unlock(&r->lock);
	if (ret)
		return ret;
	/*
	 * At once: the pop's waiter may be asleep in the kernel, and the
	 * ring's owner may never enter again. A failure leaves the SQE
	 * queued for the next enter on the ring.
	 */
	qd__ring_submit(r);
	return 0;
}

int qd_queue(int *qd_out)
{
	int ret;

	if (!qd_out)
		return -EINVAL;
	ret = qd_get();
	if (ret)
		return ret;
	return qd__mq_create(qd__ctx.fd, qd__ctx.features, qd_out);
}

int qd_close(int qd)
{
	struct qd_result qr;
	qd_token_t pump;
	struct qd_ring *r;
	uint32_t i;
	int ret;

	ret = qd_get();
	if (ret)
		return ret;
	ret = qd__dfn_close(qd, &pump);
	if (ret != QD_DFN_NOT)
		return ret;
	/*
	 * Operations queued for qd, in any thread's SQ, must reach the kernel
	 * before it closes, to be cancelled rather than fail with -EBADF. A
	 * failure here leaves them queued for the next enter to report.
	 */
	for (i = 0; i < QD_MAX_RINGS; i++) {
		r = qd__ring_get(i);
		if (!r)
			continue;
		/* Lazy pops too: the kernel cancels them with the rest. */
		qd_lock(&r->lock);
		qd__ring_convert_lazy(r, 1);
		qd_unlock(&r->lock);
		qd__ring_flush(r);
	}
	ret = qd__close_qd(qd__ctx.fd, qd);
	if (!ret) {
		qd__mq_forget(qd);
		qd__sock_set(qd, 0);
		qd__file_set(qd, 0);
	}
	/*
	 * The pop libqd kept on a closed family root: cancelled now, or it
	 * brought an element first, which goes with the queue's (unless a
	 * wait in another thread took it: that one drops it).
	 */
	if (pump && !qd_wait(&qr, pump, NULL))
		qd__dfn_pumped(pump, &qr);
	return ret;
}

__thread uint8_t qd__hidden;

int qd__pop_raw(qd_token_t *qt_out, int qd)
{
	struct qd_ring *r;
	int ret;

	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	/* libqd waits for it itself: qd_wait_next() must not return it. */
	qd__hidden = 1;
	if (qd__sock_kind(qd))
		ret = qd__sock_pop(qt_out, qd, 0);
	else if (qd__file_is(qd))
		ret = qd__file_pop(qt_out, qd, NULL, 0, 0);
	else
		ret = pop_kernel(r, qt_out, qd, 0);
	qd__hidden = 0;
	return ret;
}

void qd__ring_nop(struct qd_ring *r)
{
	struct qd_sqe sqe = { .opcode = QD_OP_NOP };

	qd_lock(&r->lock);
	if (sq_add(r, &sqe, NULL)) {
		qd_unlock(&r->lock);
		return;
	}
	qd_unlock(&r->lock);
	qd__ring_submit(r);
}

int qd_submit(void)
{
	struct qd_ring *r;
	int ret;

	ret = qd_get();
	if (ret)
		return ret;
	r = qd__ring_mine_peek();
	if (!r)
		return 0;
	ret = qd__ring_submit(r);
	return ret < 0 ? ret : 0;
}
