// SPDX-License-Identifier: GPL-2.0
/*
 * Buffer pools: QD_OP_PROVIDE and the buffers a QD_POP_POOL pop takes.
 *
 * A pop that brings its buffer pins it for as long as it waits: a server
 * with 10,000 idle connections and a pending pop on each would hold 10,000
 * buffers for nothing. With a pool the pop waits with no buffer, and the
 * receiver (sock_rx.c) takes buffers from the pool only when bytes are
 * there to fill them, as io_uring's provided-buffer rings do. The pool is
 * the context's, not a socket's, so idle connections share it.
 *
 * Contexts: buffers are added in process context (PROVIDE's submitter) and
 * taken in any (the socket callbacks run in softirq), under the pool's
 * irq-safe lock; the array that holds them grows in process context only.
 * A taker that finds the pool empty queues a waiter, under the same lock,
 * so that a PROVIDE cannot slip between its look and its wait; the
 * PROVIDE runs the waiters after it added its buffers.
 */
#include <linux/overflow.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "ctx.h"
#include "object.h"
#include "op.h"
#include "opdef.h"
#include "pool.h"
#include "region.h"

void qd_pools_init(struct qd_ctx *ctx)
{
	struct qd_pool *p;

	for (p = ctx->pools; p < ctx->pools + QD_POOL_GROUPS; p++) {
		spin_lock_init(&p->lock);
		INIT_LIST_HEAD(&p->waiters);
	}
}

/* Run the waiters taken off a pool. Process context, no lock held. */
static void qd_pool_run_waiters(struct list_head *list, bool live)
{
	struct qd_pool_waiter *w, *tmp;

	list_for_each_entry_safe(w, tmp, list, node) {
		struct qd_object *obj = w->obj;

		list_del_init(&w->node);
		w->ready(w, live);
		qd_object_put(obj);
	}
}

/*
 * The context's file is gone and its objects are closed: nothing waits
 * for a buffer any more. Process context.
 */
void qd_pools_release(struct qd_ctx *ctx)
{
	struct qd_pool *p;
	unsigned long flags;
	LIST_HEAD(list);

	for (p = ctx->pools; p < ctx->pools + QD_POOL_GROUPS; p++) {
		spin_lock_irqsave(&p->lock, flags);
		p->dead = true;
		list_splice_init(&p->waiters, &list);
		spin_unlock_irqrestore(&p->lock, flags);
	}
	qd_pool_run_waiters(&list, false);
}

/*
 * w's object is closing: it waits no more (its reference goes now, not at
 * the next PROVIDE). Process context.
 */
void qd_pool_unwait(struct qd_ctx *ctx, struct qd_pool_waiter *w)
{
	struct qd_pool *p = &ctx->pools[w->group];
	unsigned long flags;
	bool queued;

	spin_lock_irqsave(&p->lock, flags);
	queued = !list_empty(&w->node);
	list_del_init(&w->node);
	spin_unlock_irqrestore(&p->lock, flags);
	if (queued)
		qd_object_put(w->obj);
}

/* The context is being freed: no op and no object is left. */
void qd_pools_free(struct qd_ctx *ctx)
{
	struct qd_pool *p;
	u32 i;

	for (p = ctx->pools; p < ctx->pools + QD_POOL_GROUPS; p++) {
		WARN_ON_ONCE(!list_empty(&p->waiters));
		for (i = 0; i < p->nr; i++)
			qd_region_put(p->bufs[i].region);
		kvfree(p->bufs);
		p->bufs = NULL;
		p->nr = 0;
	}
}

/*
 * Take a buffer from pool group of ctx and append it to dst (which has
 * room for a segment). When the pool is empty, queue w (unless it waits
 * already) and return false. Any context.
 */
bool qd_pool_take_or_wait(struct qd_ctx *ctx, u32 group, struct qd_kelem *dst,
			  struct qd_pool_waiter *w)
{
	struct qd_pool *p = &ctx->pools[group];
	struct qd_pool_buf *b;
	unsigned long flags;

	if (WARN_ON_ONCE(dst->nsegs >= QD_SGA_MAX))
		return false;
	spin_lock_irqsave(&p->lock, flags);
	if (!p->nr) {
		/*
		 * On one pool at a time: that of the oldest pop, which the
		 * others wait behind anyway (pops complete in order).
		 */
		if (list_empty(&w->node) && !p->dead) {
			/* The taker holds obj: it cannot reach zero here. */
			refcount_inc(&w->obj->refs);
			w->group = group;
			list_add_tail(&w->node, &p->waiters);
		}
		spin_unlock_irqrestore(&p->lock, flags);
		return false;
	}
	b = &p->bufs[--p->nr];
	p->taken++;
	dst->segs[dst->nsegs] = b->seg;
	dst->regions[dst->nsegs] = b->region;
	dst->nsegs++;
	dst->bytes += b->seg.len;
	spin_unlock_irqrestore(&p->lock, flags);
	return true;
}

/*
 * Make room for n more buffers in p: a bigger array, allocated here and
 * swapped in under the lock. Process context.
 */
static int qd_pool_grow(struct qd_pool *p, u32 n)
{
	struct qd_pool_buf *bufs, *old;
	unsigned long flags;
	u32 cap;

	spin_lock_irqsave(&p->lock, flags);
	cap = p->cap;
	n += p->nr;
	spin_unlock_irqrestore(&p->lock, flags);
	if (n <= cap)
		return 0;
	if (n > QD_POOL_MAX_BUFS)
		return -ENOSPC;
	cap = clamp_t(u32, roundup_pow_of_two(n), 64, QD_POOL_MAX_BUFS);
	bufs = kvmalloc_array(cap, sizeof(*bufs), GFP_KERNEL_ACCOUNT);
	if (!bufs)
		return -ENOMEM;
	spin_lock_irqsave(&p->lock, flags);
	old = p->bufs;
	if (p->cap >= cap) {
		/* Someone else grew it meanwhile. */
		old = bufs;
	} else {
		if (p->nr)
			memcpy(bufs, p->bufs, p->nr * sizeof(*bufs));
		p->bufs = bufs;
		p->cap = cap;
	}
	spin_unlock_irqrestore(&p->lock, flags);
	kvfree(old);
	return 0;
}

/*
 * Run the oldest waiters, as many as there are buffers (each needs one at
 * least), until the buffers or the waiters run out: with thousands of
 * starved sockets, a PROVIDE of 8 buffers serves 8 of them, not all of
 * them in turn to find the pool empty again. A waiter that takes no buffer
 * (its bytes went another way) leaves the buffer to the next round; one
 * that finds the pool empty queues itself again, at the end. Process
 * context.
 */
static void qd_pool_serve(struct qd_pool *p)
{
	unsigned long flags;
	LIST_HEAD(list);
	u32 i;

	for (;;) {
		spin_lock_irqsave(&p->lock, flags);
		for (i = 0; i < p->nr && !list_empty(&p->waiters); i++)
			list_move_tail(p->waiters.next, &list);
		spin_unlock_irqrestore(&p->lock, flags);
		if (list_empty(&list))
			return;
		qd_pool_run_waiters(&list, true);
	}
}

/*
 * Called with the ring's sq_lock held, like every prep. PROVIDE builds its
 * buffers as a push builds its element (each segment checked and its
 * region referenced), so that a failure hands them back the same way.
 */
int qd_provide_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	if (sqe->qd || sqe->buf_group >= QD_POOL_GROUPS)
		return -EINVAL;
	op->pool_group = sqe->buf_group;
	if (sqe->op_flags & QD_PROVIDE_RECLAIM)
		return sqe->addr || sqe->nsegs ? -EINVAL : 0;
	return qd_elem_build(op->ctx, sqe->addr, sqe->nsegs, &op->elem);
}

/* Take back every buffer of p: returns how many. Process context. */
static u32 qd_pool_reclaim(struct qd_pool *p)
{
	struct qd_pool_buf *bufs;
	unsigned long flags;
	u32 i, n;

	spin_lock_irqsave(&p->lock, flags);
	bufs = p->bufs;
	n = p->nr;
	p->bufs = NULL;
	p->nr = 0;
	p->cap = 0;
	spin_unlock_irqrestore(&p->lock, flags);
	for (i = 0; i < n; i++)
		qd_region_put(bufs[i].region);
	kvfree(bufs);
	return n;
}

int qd_provide_issue(struct qd_op *op)
{
	struct qd_pool *p = &op->ctx->pools[op->pool_group];
	struct qd_kelem *e = op->elem;
	unsigned long flags;
	u32 i, n;
	int ret;

	if (!e) {
		qd_op_complete(op, qd_pool_reclaim(p));
		return 0;
	}
	for (;;) {
		ret = qd_pool_grow(p, e->nsegs);
		if (ret)
			return ret;
		spin_lock_irqsave(&p->lock, flags);
		if (p->nr + e->nsegs <= p->cap)
			break;
		/* Another ring's PROVIDE or RECLAIM came between: again. */
		spin_unlock_irqrestore(&p->lock, flags);
	}
	/* The references move from the element to the pool. */
	for (i = 0; i < e->nsegs; i++) {
		p->bufs[p->nr].seg = e->segs[i];
		p->bufs[p->nr].region = e->regions[i];
		p->nr++;
	}
	p->provided += e->nsegs;
	n = e->nsegs;
	e->nsegs = 0;
	spin_unlock_irqrestore(&p->lock, flags);
	qd_pool_serve(p);
	qd_op_complete(op, n);
	return 0;
}

/* debugfs: one line per pool in use. Process context. */
void qd_pools_show(struct qd_ctx *ctx, struct seq_file *m)
{
	struct qd_pool *p;
	unsigned long flags;
	u64 provided, taken;
	u32 nr, waiters;
	struct list_head *pos;

	for (p = ctx->pools; p < ctx->pools + QD_POOL_GROUPS; p++) {
		waiters = 0;
		spin_lock_irqsave(&p->lock, flags);
		nr = p->nr;
		provided = p->provided;
		taken = p->taken;
		list_for_each(pos, &p->waiters)
			waiters++;
		spin_unlock_irqrestore(&p->lock, flags);
		if (provided)
			seq_printf(m, "pool %td buffers %u provided %llu taken %llu waiters %u\n",
				   p - ctx->pools, nr, provided, taken, waiters);
	}
}
