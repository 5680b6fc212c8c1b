// SPDX-License-Identifier: GPL-2.0
/*
 * Memory queues: FIFO queues of elements between operations of a context.
 * A push moves the element's descriptors, never its payload; a pop yields
 * the same segments. At most max_depth elements wait in a queue; a push to
 * a full queue waits (FIFO) until a pop makes room, and a pop on an empty
 * queue waits until a push arrives. A multishot pop (QD_POP_MULTISHOT)
 * stays among the waiting pops and takes its turn with them: each element
 * it gets is posted at once with QD_CQE_F_MORE, and it goes to the back of
 * the line, so it cannot starve one-shot pops.
 *
 * q->lock is taken with interrupts off: push and pop may run in any
 * context (object.h), and an op may be completed (and its queue reached)
 * from softirq or hardirq while process context holds the lock. Final
 * completions are posted after it is dropped; a multishot delivery is
 * posted under it (q->lock, then the ring's cq->lock), so that the pop's
 * final CQE, posted once it has left the queue, comes after its elements.
 */
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "ctx.h"
#include "derive.h"
#include "memq.h"
#include "memq_map.h"
#include "object.h"
#include "op.h"
#include "region.h"
#include "share.h"
#include "stats.h"

struct qd_memq {
	struct qd_object obj;
	spinlock_t lock;		/* everything below; irq-safe */
	bool closed;
	u32 handles;			/* qds naming it, in all contexts */
	u32 depth;
	u32 max_depth;
	u32 nr_pops;
	u32 nr_pushes;
	struct list_head elems;		/* queued struct qd_kelem */
	struct list_head pops;		/* waiting pop ops */
	struct list_head pushes;	/* push ops waiting for room */
	u64 pushed;
	u64 popped;
	/*
	 * QD_QUEUE_MAPPED: the elements live in this ring instead of elems,
	 * and the kernel's ops wait in pops/pushes like user space's would.
	 */
	struct qd_mq_map *map;
	/* Threads asleep in QD_ENTER_MQ_POP (struct qd_mq_sleeper). */
	struct list_head sleepers;
	u32 nr_sleepers;
	u32 nr_kicked;			/* sleepers kicked, not yet gone */
	/* Derived queues fed by this one (derive.c). */
	struct qd_dsrc src;
	/* Mapped: elements a closed derived queue gave back, for the ring. */
	struct list_head giveback;
};

static struct qd_memq *to_memq(struct qd_object *obj)
{
	return container_of(obj, struct qd_memq, obj);
}

/* Hand elem to a pop; called with q->lock held. */
static void qd_memq_give(struct qd_memq *q, struct qd_op *pop,
			 struct qd_kelem *elem, struct list_head *done)
{
	qd_op_unwait(pop);
	pop->elem = elem;
	pop->res = elem->bytes;
	q->popped++;
	list_add_tail(&pop->node, done);
}

static bool qd_memq_multishot(const struct qd_op *op)
{
	return op->opcode == QD_OP_POP && op->op_flags & QD_POP_MULTISHOT;
}

/*
 * The oldest waiting push fills the room a pop just made; called with
 * q->lock held.
 */
static void qd_memq_admit_push(struct qd_memq *q, struct list_head *done)
{
	struct qd_op *push;

	if (list_empty(&q->pushes))
		return;
	push = list_first_entry(&q->pushes, struct qd_op, node);
	list_del(&push->node);
	q->nr_pushes--;
	qd_op_unwait(push);
	list_add_tail(&push->elem->node, &q->elems);
	push->elem = NULL;
	q->depth++;
	q->pushed++;
	list_add_tail(&push->node, done);
}

/*
 * Whether pop may take elem: always in the pusher's context; in another
 * one when elem's segments can be rewritten into the popper's regions
 * (shared memory both registered: done here), else when the pop brought a
 * buffer big enough for a copy (marked; made by qd_memq_finish()). Returns
 * 0, or -EXDEV / -EMSGSIZE. Called with q->lock held.
 */
static int qd_memq_fits(struct qd_op *pop, struct qd_kelem *elem)
{
	if (pop->ctx == elem->ctx || !qd_elem_translate(elem, pop->ctx))
		return 0;
	if (!pop->dst)
		return -EXDEV;
	if (pop->dst->bytes < elem->bytes)
		return -EMSGSIZE;
	pop->copy = 1;
	return 0;
}

/*
 * The first waiting pop that can take elem. Those before it cannot: they
 * complete with -EXDEV or -EMSGSIZE (elem stays first in the queue for the
 * others).
 * Called with q->lock held.
 */
static struct qd_op *qd_memq_taker(struct qd_memq *q, struct qd_kelem *elem,
				   struct list_head *done)
{
	struct qd_op *pop;

	int ret;

	while (!list_empty(&q->pops)) {
		pop = list_first_entry(&q->pops, struct qd_op, node);
		ret = qd_memq_fits(pop, elem);
		if (!ret)
			return pop;
		list_del(&pop->node);
		q->nr_pops--;
		qd_op_unwait(pop);
		pop->res = ret;
		list_add_tail(&pop->node, done);
	}
	return NULL;
}

/*
 * Complete every op on the list with the result stored in it, after making
 * the copies pops across contexts need (outside q->lock: a copy may be
 * long). Process context for a copy (memory queues: the submitting task).
 */
static void qd_memq_finish(struct qd_memq *q, struct list_head *done)
{
	struct qd_op *op, *tmp;
	unsigned long flags;

	list_for_each_entry_safe(op, tmp, done, node) {
		list_del_init(&op->node);
		if (op->copy && op->res >= 0) {
			qd_elem_copy(op->elem, op->dst);
			qd_elem_free(op->elem);
			op->elem = op->dst;
			op->dst = NULL;
			/* From a shared ring: the binder's pages are let go. */
			if (q->map && q->map->binds) {
				spin_lock_irqsave(&q->lock, flags);
				qd_mq_map_copy_done(q->map);
				spin_unlock_irqrestore(&q->lock, flags);
			}
		}
		qd_op_complete(op, op->res);
	}
}

static void qd_memq_set_waiters(struct qd_memq *q);

/*
 * Kick the sleepers (all, or ctx's) back to user space to look at the ring
 * again: at once, or when the kicking task's batch ends (qd_ring_wake()),
 * so that a burst of pushes wakes a sleeper once. A kicked sleeper will
 * look at the ring before it sleeps again, so it no longer counts in
 * QD_MQ_POP_SLEEPERS: pushes meanwhile send no QD_OP_WAKE for it. Called
 * with q->lock held: wake_up() takes the CQ wait queue's own irq-safe
 * lock, as qd_cq_post() does under the CQ's.
 */
static void qd_memq_kick(struct qd_memq *q, struct qd_ctx *ctx)
{
	struct qd_mq_sleeper *sl;
	bool kicked = false;

	list_for_each_entry(sl, &q->sleepers, node) {
		if ((ctx && sl->ctx != ctx) || sl->kicked)
			continue;
		WRITE_ONCE(sl->kicked, true);
		q->nr_kicked++;
		kicked = true;
		qd_ring_wake(sl->ring);
	}
	if (kicked && q->map)
		qd_memq_set_waiters(q);
}

/*
 * A multishot pop at the head of a mapped queue's line takes the ring's
 * oldest element into a new element (no sleeping here: GFP_ATOMIC; when
 * that fails the element stays in the ring and the pop stays parked, to be
 * served by the next wake), posts it and goes to the back of the line.
 * Returns 1 if it moved, 0 if not, or the error that ends it.
 */
static int qd_memq_serve_multishot(struct qd_memq *q, struct qd_op *op)
{
	struct qd_kelem *elem;
	int ret;

	elem = qd_elem_alloc_gfp(op->ctx, GFP_ATOMIC | __GFP_ACCOUNT |
				 __GFP_NOWARN, &ret);
	if (!elem)
		return ret == -ENOBUFS ? ret : 0;
	ret = qd_mq_map_take_elem(q->map, op->ctx, elem, NULL);
	if (ret) {
		qd_elem_free(elem);
		return ret == -EAGAIN ? 0 : ret;
	}
	q->popped++;
	qd_op_deliver(op, elem);
	list_move_tail(&op->node, &q->pops);
	return 1;
}

/*
 * Mapped queues. Every op the kernel is given joins the back of its line
 * (pops or pushes), then the lines are served from the ring in order: the
 * oldest pops take the ring's oldest elements, the oldest pushes take its
 * free slots. A line that cannot move is advertised in hdr.waiters, and the
 * ring is looked at once more after that store, so that an element (or a
 * slot) user space published before it read the flag is not missed; an
 * element published after it comes with a QD_OP_WAKE. Called with q->lock.
 */
static bool qd_memq_serve_once(struct qd_memq *q, struct list_head *done)
{
	struct qd_kelem *elem;
	struct qd_op *op;
	bool moved = false;
	int ret;

	/*
	 * Given back by a derived queue: ahead of the parked pushes. (Only
	 * unshared rings have derived queues: no -ENOSPC for want of a
	 * binding.)
	 */
	while (!list_empty(&q->giveback)) {
		elem = list_first_entry(&q->giveback, struct qd_kelem, node);
		if (qd_mq_map_put_elem(q->map, elem))
			break;
		list_del(&elem->node);
		qd_elem_free(elem);	/* the ring has its descriptor */
		if (q->nr_sleepers)
			qd_memq_kick(q, NULL);
		moved = true;
	}
	while (!list_empty(&q->pops)) {
		op = list_first_entry(&q->pops, struct qd_op, node);
		if (qd_memq_multishot(op)) {
			ret = qd_memq_serve_multishot(q, op);
			if (!ret)
				break;
			moved = true;
			if (ret > 0)
				continue;
			/* It ends with the error (its elements came first). */
			op->res = ret;
			list_del(&op->node);
			q->nr_pops--;
			qd_op_unwait(op);
			list_add_tail(&op->node, done);
			continue;
		}
		ret = qd_mq_map_take_elem(q->map, op->ctx, op->elem, op->dst);
		if (ret == -EAGAIN)
			break;
		/* -EXDEV, -EMSGSIZE: the element stays for the next pop. */
		if (ret != -EXDEV && ret != -EMSGSIZE)
			q->popped++;
		if (ret == QD_MQ_TAKE_COPY) {
			op->copy = 1;
			q->map->copiers++;	/* the bindings stay till the copy */
		}
		op->res = ret < 0 ? ret : op->elem->bytes;
		list_del(&op->node);
		q->nr_pops--;
		qd_op_unwait(op);
		list_add_tail(&op->node, done);
		moved = true;
	}
	while (!list_empty(&q->pushes)) {
		op = list_first_entry(&q->pushes, struct qd_op, node);
		ret = qd_mq_map_put_elem(q->map, op->elem);
		if (ret == -EAGAIN)
			break;
		if (!ret && q->nr_sleepers)
			qd_memq_kick(q, NULL);
		/* -ENOSPC (no binding left): it fails, with its element. */
		op->res = ret ? ret : op->elem->bytes;
		list_del(&op->node);
		q->nr_pushes--;
		if (!ret)
			q->pushed++;
		qd_op_unwait(op);
		list_add_tail(&op->node, done);
		moved = true;
	}
	return moved;
}

/*
 * Derived queues need every arrival in the kernel (QD_MQ_PUSH_KERNEL);
 * elements given back wait for slots like parked pushes.
 */
static void qd_memq_set_waiters(struct qd_memq *q)
{
	qd_mq_map_set_waiters(q->map,
			      (q->nr_pops ? QD_MQ_POP_WAITERS : 0) |
			      (q->nr_pushes || !list_empty(&q->giveback) ?
			       QD_MQ_PUSH_WAITERS : 0) |
			      (q->nr_sleepers > q->nr_kicked ?
			       QD_MQ_POP_SLEEPERS : 0) |
			      (qd_dsrc_busy(&q->src) ? QD_MQ_PUSH_KERNEL : 0));
}

static void qd_memq_serve(struct qd_memq *q, struct list_head *done)
{
	for (;;) {
		while (qd_memq_serve_once(q, done))
			;
		qd_memq_set_waiters(q);
		if (!qd_memq_serve_once(q, done))
			break;
	}
}

/* Join op to the back of its line and serve; called with q->lock held. */
static int qd_memq_map_queue(struct qd_memq *q, struct qd_op *op, bool push,
			     struct list_head *done)
{
	int ret;

	ret = qd_op_wait(op, push ? QD_OP_WAIT_PUSH : QD_OP_WAIT_POP);
	if (ret)
		return ret;
	if (push) {
		list_add_tail(&op->node, &q->pushes);
		q->nr_pushes++;
	} else {
		list_add_tail(&op->node, &q->pops);
		q->nr_pops++;
	}
	qd_memq_serve(q, done);
	return 0;
}

/* Process context: a pop of a mapped queue brings the element it fills. */
static int qd_memq_prep_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_memq *q = to_memq(obj);
	int ret;

	if (!q->map)
		return 0;
	/* Copies are for shared queues: an unshared one is the context's. */
	if (op->dst && !q->map->binds)
		return -EOPNOTSUPP;
	/* A multishot pop takes a new element per delivery instead. */
	if (op->op_flags & QD_POP_MULTISHOT)
		return 0;
	op->elem = qd_elem_alloc(op->ctx, &ret);
	return op->elem ? 0 : ret;
}

static int qd_memq_wake(struct qd_object *obj)
{
	struct qd_memq *q = to_memq(obj);
	unsigned long flags;
	LIST_HEAD(done);
	int ret = 0;

	if (!q->map)
		return -EINVAL;
	spin_lock_irqsave(&q->lock, flags);
	if (q->closed) {
		ret = -EBADF;
	} else {
		qd_memq_serve(q, &done);
		/* What is left in the ring is for the sleepers to take. */
		if (q->nr_sleepers)
			qd_memq_kick(q, NULL);
	}
	spin_unlock_irqrestore(&q->lock, flags);

	qd_memq_finish(q, &done);
	return ret;
}

/*
 * Hand elem to the first waiting pop that can take it: true if one did.
 * Called with q->lock held (not mapped).
 */
static bool qd_memq_hand(struct qd_memq *q, struct qd_kelem *elem,
			 struct list_head *done)
{
	struct qd_op *pop;

	pop = qd_memq_taker(q, elem, done);
	if (!pop)
		return false;
	if (qd_memq_multishot(pop)) {
		/* Delivered now; back of the line. */
		list_move_tail(&pop->node, &q->pops);
		q->popped++;
		qd_op_deliver(pop, elem);
	} else {
		list_del(&pop->node);
		q->nr_pops--;
		qd_memq_give(q, pop, elem, done);
	}
	return true;
}

static int qd_memq_push(struct qd_object *obj, struct qd_op *op)
{
	struct qd_memq *q = to_memq(obj);
	struct qd_kelem *elem = op->elem;
	unsigned long flags;
	LIST_HEAD(done);
	int ret;

	spin_lock_irqsave(&q->lock, flags);
	if (q->closed) {
		spin_unlock_irqrestore(&q->lock, flags);
		return -EBADF;
	}
	op->res = elem->bytes;
	/* Its derived queues first, at arrival (derive.c). */
	if (qd_dsrc_busy(&q->src) && qd_derive_route(&q->src, elem, &done)) {
		op->elem = NULL;
		q->pushed++;
		list_add_tail(&op->node, &done);
	} else if (q->map) {
		ret = qd_memq_map_queue(q, op, true, &done);
		spin_unlock_irqrestore(&q->lock, flags);
		qd_memq_finish(q, &done);
		return ret;
	} else if (qd_memq_hand(q, elem, &done)) {
		op->elem = NULL;
		q->pushed++;
		list_add_tail(&op->node, &done);
	} else if (q->depth < q->max_depth) {
		op->elem = NULL;
		list_add_tail(&elem->node, &q->elems);
		q->depth++;
		q->pushed++;
		list_add_tail(&op->node, &done);
	} else {
		qd_op_wait(op, QD_OP_WAIT_PUSH);
		list_add_tail(&op->node, &q->pushes);
		q->nr_pushes++;
	}
	spin_unlock_irqrestore(&q->lock, flags);

	qd_memq_finish(q, &done);
	return 0;
}

/*
 * A multishot pop takes every element queued now (admitting waiting
 * pushes into the room it makes), then waits for more. Called with q->lock
 * held; the element count is bounded by max_depth.
 */
static int qd_memq_pop_multishot(struct qd_memq *q, struct qd_op *op,
				 struct list_head *done)
{
	struct qd_kelem *elem;
	int ret;

	while (!list_empty(&q->elems)) {
		elem = list_first_entry(&q->elems, struct qd_kelem, node);
		ret = qd_memq_fits(op, elem);
		if (ret)
			return ret;
		list_del_init(&elem->node);
		q->depth--;
		q->popped++;
		qd_op_deliver(op, elem);
		qd_memq_admit_push(q, done);
	}
	ret = qd_op_wait(op, QD_OP_WAIT_POP);
	if (!ret) {
		list_add_tail(&op->node, &q->pops);
		q->nr_pops++;
	}
	return ret;
}

static int qd_memq_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_memq *q = to_memq(obj);
	struct qd_kelem *elem;
	unsigned long flags;
	LIST_HEAD(done);
	int ret = 0;

	spin_lock_irqsave(&q->lock, flags);
	if (q->closed) {
		ret = -EBADF;
	} else if (q->map) {
		ret = qd_memq_map_queue(q, op, false, &done);
	} else if (qd_memq_multishot(op)) {
		ret = qd_memq_pop_multishot(q, op, &done);
	} else if (list_empty(&q->elems)) {
		ret = qd_op_wait(op, QD_OP_WAIT_POP);
		if (!ret) {
			list_add_tail(&op->node, &q->pops);
			q->nr_pops++;
		}
	} else {
		elem = list_first_entry(&q->elems, struct qd_kelem, node);
		ret = qd_memq_fits(op, elem);
		if (!ret) {
			list_del_init(&elem->node);
			q->depth--;
			qd_memq_give(q, op, elem, &done);
			/* Room now: admit the oldest waiting push. */
			qd_memq_admit_push(q, &done);
		}
	}
	spin_unlock_irqrestore(&q->lock, flags);

	qd_memq_finish(q, &done);
	return ret;
}

static int qd_memq_cancel(struct qd_object *obj, struct qd_ctx *ctx,
			  u64 user_data)
{
	struct qd_memq *q = to_memq(obj);
	unsigned long flags;
	struct qd_op *op;

	spin_lock_irqsave(&q->lock, flags);
	op = qd_op_find(&q->pops, ctx, user_data);
	if (op) {
		q->nr_pops--;
	} else {
		op = qd_op_find(&q->pushes, ctx, user_data);
		if (op)
			q->nr_pushes--;
	}
	if (op) {
		list_del_init(&op->node);
		qd_op_unwait(op);
		if (q->map)
			qd_memq_set_waiters(q);
	}
	spin_unlock_irqrestore(&q->lock, flags);

	if (!op)
		return -ENOENT;
	qd_op_complete(op, -ECANCELED);
	return 0;
}

/* Complete the ops on list with -ECANCELED. Process context. */
static void qd_memq_cancel_list(struct list_head *cancel)
{
	struct qd_op *op, *tmp;

	list_for_each_entry_safe(op, tmp, cancel, node) {
		list_del_init(&op->node);
		qd_op_unwait(op);
		qd_op_complete(op, -ECANCELED);
		cond_resched();
	}
}

/* Move ctx's ops on list to cancel; called with q->lock held. */
static u32 qd_memq_take_ctx_ops(struct list_head *list, struct qd_ctx *ctx,
				struct list_head *cancel)
{
	struct qd_op *op, *tmp;
	u32 n = 0;

	list_for_each_entry_safe(op, tmp, list, node) {
		if (op->ctx == ctx) {
			list_move_tail(&op->node, cancel);
			n++;
		}
	}
	return n;
}

/*
 * A handle of ctx closes (its qd, or its context going away). Its pending
 * ops end with -ECANCELED; the last handle's close also drops the queued
 * elements and refuses later operations. Process context: may sleep
 * between ops and elements.
 */
static void qd_memq_detach(struct qd_memq *q, struct qd_ctx *ctx)
{
	struct qd_kelem *elem, *etmp;
	unsigned long flags;
	LIST_HEAD(cancel);
	LIST_HEAD(elems);

	spin_lock_irqsave(&q->lock, flags);
	if (--q->handles) {
		q->nr_pops -= qd_memq_take_ctx_ops(&q->pops, ctx, &cancel);
		q->nr_pushes -= qd_memq_take_ctx_ops(&q->pushes, ctx, &cancel);
	} else {
		q->closed = true;
		list_splice_init(&q->pops, &cancel);
		list_splice_tail_init(&q->pushes, &cancel);
		list_splice_init(&q->elems, &elems);
		list_splice_tail_init(&q->giveback, &elems);
		/* Its derived queues' pops end too (-ECANCELED). */
		qd_derive_src_gone(&q->src, &cancel);
		q->nr_pops = 0;
		q->nr_pushes = 0;
		q->depth = 0;
		if (q->map) {
			qd_mq_map_unbind_all(q->map);
			qd_mq_map_unlink(q->map);
		}
	}
	if (q->map)
		qd_memq_set_waiters(q);
	/* ctx's sleepers (all at the last close) look at their qd again. */
	if (q->nr_sleepers)
		qd_memq_kick(q, q->closed ? NULL : ctx);
	spin_unlock_irqrestore(&q->lock, flags);

	qd_memq_cancel_list(&cancel);
	list_for_each_entry_safe(elem, etmp, &elems, node) {
		list_del(&elem->node);
		qd_elem_free(elem);
		cond_resched();
	}
}

/* Process context (object.h): the creating context's handle closes. */
static void qd_memq_close(struct qd_object *obj)
{
	qd_memq_detach(to_memq(obj), obj->ctx);
}

/* Any context: the last reference may be an op's. */
static void qd_memq_release(struct qd_object *obj)
{
	struct qd_memq *q = to_memq(obj);

	if (q->map) {
		qd_mq_map_unlink(q->map);
		qd_mq_map_put(q->map);
	}
	atomic_long_dec(&qd_stats.queues);
	kfree_rcu(q, obj.rcu);
}

static void qd_memq_show(struct qd_object *obj, struct seq_file *m)
{
	seq_printf(m, "%d memq ", obj->qd);
	qd_memq_show_cols(obj, m);
	seq_puts(m, " push,pop\n");
}

/*
 * A source of derived queues: a queue of this context alone (one handle),
 * not a shared ring (whose elements name bindings). Process context.
 */
static struct qd_dsrc *qd_memq_dsrc(struct qd_object *obj)
{
	struct qd_memq *q = to_memq(obj);

	return q->map && q->map->binds ? NULL : &q->src;
}

static int qd_memq_derive_link(struct qd_object *obj, struct qd_dlink *l)
{
	struct qd_memq *q = to_memq(obj);
	int ret = 0;

	spin_lock_irq(&q->lock);
	if (q->closed) {
		ret = -EBADF;
	} else if (q->handles > 1) {
		ret = -EOPNOTSUPP;
	} else {
		list_add_tail(&l->node, &q->src.takers);
		if (q->map)
			qd_memq_set_waiters(q);
	}
	spin_unlock_irq(&q->lock);
	return ret;
}

/*
 * A derived queue closes: what it gives back goes to the waiting pops, then
 * to the end of the queue, past max_depth if need be (the elements are
 * charged already); a mapped queue's go to its ring as slots free up.
 */
static void qd_memq_derive_unlink(struct qd_object *obj, struct qd_dlink *l)
{
	struct qd_memq *q = to_memq(obj);
	struct qd_kelem *elem, *tmp;
	unsigned long flags;
	LIST_HEAD(elems);
	LIST_HEAD(done);

	spin_lock_irqsave(&q->lock, flags);
	qd_derive_unlink(l, &elems);
	if (q->map) {
		list_splice_tail_init(&elems, &q->giveback);
		qd_memq_serve(q, &done);
		if (q->nr_sleepers)
			qd_memq_kick(q, NULL);
	} else {
		list_for_each_entry_safe(elem, tmp, &elems, node) {
			list_del_init(&elem->node);
			if (qd_memq_hand(q, elem, &done))
				continue;
			list_add_tail(&elem->node, &q->elems);
			q->depth++;
		}
	}
	spin_unlock_irqrestore(&q->lock, flags);

	qd_memq_finish(q, &done);
}

static const struct qd_object_ops qd_memq_ops = {
	.type = "memq",
	.push = qd_memq_push,
	.pop = qd_memq_pop,
	.prep_pop = qd_memq_prep_pop,
	.wake = qd_memq_wake,
	.cancel = qd_memq_cancel,
	.close = qd_memq_close,
	.release = qd_memq_release,
	.show = qd_memq_show,
	.dsrc = qd_memq_dsrc,
	.derive_link = qd_memq_derive_link,
	.derive_unlink = qd_memq_derive_unlink,
};

int qd_memq_create(struct qd_ctx *ctx, struct qd_queue_create __user *arg)
{
	struct qd_queue_create c;
	struct qd_memq *q;
	u32 qd;
	int i, ret;

	if (copy_from_user(&c, arg, sizeof(c)))
		return -EFAULT;
	if (c.flags & ~(QD_QUEUE_MAPPED | QD_QUEUE_SHARED) ||
	    (c.flags & QD_QUEUE_SHARED && !(c.flags & QD_QUEUE_MAPPED)) ||
	    c.depth > QD_MEMQ_MAX_DEPTH || c.map_bytes || c.map_off)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(c.resv); i++)
		if (c.resv[i])
			return -EINVAL;

	q = kzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT);
	if (!q)
		return -ENOMEM;
	spin_lock_init(&q->lock);
	INIT_LIST_HEAD(&q->elems);
	INIT_LIST_HEAD(&q->pops);
	INIT_LIST_HEAD(&q->pushes);
	INIT_LIST_HEAD(&q->sleepers);
	INIT_LIST_HEAD(&q->giveback);
	qd_dsrc_init(&q->src, 0);
	q->max_depth = c.depth ? c.depth : QD_MEMQ_DEFAULT_DEPTH;
	q->handles = 1;
	if (c.flags & QD_QUEUE_MAPPED) {
		/* A one-slot ring cannot tell full from empty: two at least. */
		q->max_depth = roundup_pow_of_two(max(q->max_depth, 2U));
		q->map = qd_mq_map_alloc(ctx, q->max_depth,
					 c.flags & QD_QUEUE_SHARED);
		if (IS_ERR(q->map)) {
			ret = PTR_ERR(q->map);
			kfree(q);
			return ret;
		}
	}

	/* Reserve a qd, report it (may fault), then install the queue. */
	ret = qd_object_claim(ctx, &qd);
	if (ret)
		goto err_free;
	c.qd = qd;
	if (q->map) {
		c.map_bytes = q->map->bytes;
		c.map_off = QD_OFF_QUEUE(qd);
	}
	if (copy_to_user(arg, &c, sizeof(c))) {
		ret = -EFAULT;
		qd_object_unclaim(ctx, qd);
		goto err_free;
	}
	mutex_lock(&ctx->lock);
	qd_object_install(ctx, qd, &q->obj, &qd_memq_ops);
	atomic_long_inc(&qd_stats.queues);
	mutex_unlock(&ctx->lock);
	return 0;

err_free:
	if (q->map)
		qd_mq_map_put(q->map);
	kfree(q);
	return ret;
}

/*
 * QD_ENTER_MQ_POP (submit.c). Process context. sleep_begin puts sl on the
 * queue's list and publishes QD_MQ_POP_SLEEPERS with a full barrier (as
 * for parked pops), so that a pusher that published an element before it
 * read the flag is seen by the ready check that follows, and one that
 * reads the flag after sends a QD_OP_WAKE, which kicks sl. -EINVAL: not a
 * mapped queue of this context (an imported one included); -EBADF:
 * closed. sleep_end takes sl off again.
 */
int qd_memq_sleep_begin(struct qd_object *obj, struct qd_mq_sleeper *sl)
{
	struct qd_memq *q = to_memq(obj);
	unsigned long flags;
	int ret = 0;

	if (obj->ops != &qd_memq_ops || !q->map)
		return -EINVAL;
	spin_lock_irqsave(&q->lock, flags);
	if (q->closed) {
		ret = -EBADF;
	} else {
		sl->kicked = false;
		list_add_tail(&sl->node, &q->sleepers);
		q->nr_sleepers++;
		qd_memq_set_waiters(q);
	}
	spin_unlock_irqrestore(&q->lock, flags);
	return ret;
}

/*
 * The sleeper's wake-up condition: kicked, closed, pops parked in the
 * kernel (they go first: user space must join their line), or an element
 * in the ring. Any context, no lock (a hint, looked at again in user
 * space).
 */
bool qd_memq_sleep_ready(struct qd_object *obj, struct qd_mq_sleeper *sl)
{
	struct qd_memq *q = to_memq(obj);

	return READ_ONCE(sl->kicked) || READ_ONCE(q->closed) ||
	       READ_ONCE(q->nr_pops) || qd_mq_map_has_elem(q->map);
}

void qd_memq_sleep_end(struct qd_object *obj, struct qd_mq_sleeper *sl)
{
	struct qd_memq *q = to_memq(obj);
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	list_del(&sl->node);
	q->nr_sleepers--;
	if (sl->kicked)
		q->nr_kicked--;
	qd_memq_set_waiters(q);
	spin_unlock_irqrestore(&q->lock, flags);
}

/* The memory queue obj names, or NULL if it is something else (or NULL). */
static struct qd_memq *qd_memq_of(struct qd_object *obj)
{
	return obj && obj->ops == &qd_memq_ops ? to_memq(obj) : NULL;
}

/*
 * mmap of QD_OFF_QUEUE(qd): the ring of the mapped queue qd (of this
 * context, or imported with both rights).
 */
int qd_memq_mmap(struct qd_ctx *ctx, u64 off, struct vm_area_struct *vma)
{
	struct qd_object *obj, *obj2;
	struct qd_memq *q;
	u64 qd;
	int ret = -EINVAL;

	qd = div64_u64(off - QD_OFF_QUEUES, QD_OFF_QUEUE_STRIDE);
	if (off != QD_OFF_QUEUE(qd) || qd > INT_MAX)
		return -EINVAL;
	obj = qd_object_get(ctx, qd);
	if (!obj)
		return -EBADF;
	/* An import maps the ring of its queue, given both rights. */
	obj2 = qd_share_mapped_queue(obj);
	q = IS_ERR(obj2) ? NULL : qd_memq_of(obj2);
	if (IS_ERR(obj2))
		ret = PTR_ERR(obj2);
	else if (q && q->map)
		ret = qd_mq_map_mmap(q->map, vma);
	qd_object_put(obj);
	return ret;
}

/* Whether obj is a memory queue that can be shared (share.c). */
int qd_memq_shareable(struct qd_object *obj)
{
	struct qd_memq *q = qd_memq_of(obj);

	if (!q)
		return -EOPNOTSUPP;
	return q->map && !q->map->binds ? -EOPNOTSUPP : 0;
}

/* The bytes of a shared queue's ring to map, or 0 (share.c). */
u32 qd_memq_map_bytes(struct qd_object *obj)
{
	struct qd_memq *q = qd_memq_of(obj);

	return q && q->map && q->map->binds ? q->map->bytes : 0;
}

/* Bind ctx's region id to q: the binding's index, or -errno. */
static int qd_memq_bind_region(struct qd_memq *q, struct qd_ctx *ctx, u32 id)
{
	struct qd_seg seg = { .len = 1, .region = id };
	struct qd_region *region;
	int ret;

	if (id >= QD_MAX_REGIONS || qd_region_resolve(ctx, &seg, &region))
		return -ENOENT;
	spin_lock_irq(&q->lock);
	ret = q->closed ? -EBADF : qd_mq_map_bind(q->map, region, ctx);
	spin_unlock_irq(&q->lock);
	qd_region_put(region);
	return ret;
}

/*
 * Where binding b->index lies in ctx's memory. The region found is bound
 * too, so that it stays registered (and the answer true) while the queue
 * lives.
 */
static int qd_memq_lookup(struct qd_memq *q, struct qd_ctx *ctx,
			  struct qd_queue_bind *b)
{
	struct qd_mq_binding bd;
	int ret;

	spin_lock_irq(&q->lock);
	ret = q->closed ? -EBADF :
	      qd_mq_map_binding_get(q->map, b->index, &bd);
	spin_unlock_irq(&q->lock);
	if (ret)
		return ret;
	b->region = bd.region->id;
	b->offset = 0;
	if (bd.ctx != ctx) {
		ret = qd_region_find_shm(ctx, bd.region, &b->region,
					 &b->offset);
		if (!ret) {
			ret = qd_memq_bind_region(q, ctx, b->region);
			ret = ret < 0 ? ret : 0;
		}
	}
	qd_region_put(bd.region);
	qd_ctx_put(bd.ctx);
	return ret;
}

static int qd_memq_bind_one(struct qd_memq *q, struct qd_ctx *ctx,
			    struct qd_queue_bind *b)
{
	int ret;

	if (b->flags & QD_BIND_LOOKUP)
		return qd_memq_lookup(q, ctx, b);
	ret = qd_memq_bind_region(q, ctx, b->region);
	if (ret < 0)
		return ret;
	b->index = ret;
	return 0;
}

/*
 * QD_IOC_QUEUE_BIND: bind a region to a shared mapped queue, or look up
 * where a binding lies in this context's memory (uapi/linux/qd.h).
 * Process context.
 */
int qd_memq_bind(struct qd_ctx *ctx, struct qd_queue_bind __user *arg)
{
	struct qd_queue_bind b;
	struct qd_object *obj, *queue;
	struct qd_memq *q;
	int ret;

	if (copy_from_user(&b, arg, sizeof(b)))
		return -EFAULT;
	if (b.flags & ~QD_BIND_LOOKUP || b.offset || b.resv[0] || b.resv[1] ||
	    (b.flags & QD_BIND_LOOKUP ? b.region : b.index))
		return -EINVAL;
	obj = qd_object_get(ctx, b.qd);
	if (!obj)
		return -EBADF;
	queue = qd_share_mapped_queue(obj);
	q = IS_ERR(queue) ? NULL : qd_memq_of(queue);
	ret = IS_ERR(queue) ? PTR_ERR(queue) : -EINVAL;
	if (q && q->map && q->map->binds)
		ret = qd_memq_bind_one(q, ctx, &b);
	qd_object_put(obj);
	if (!ret && copy_to_user(arg, &b, sizeof(b)))
		ret = -EFAULT;
	return ret;
}

/* One more handle (an import). -EBADF once the last handle closed. */
int qd_memq_attach(struct qd_object *obj)
{
	struct qd_memq *q = qd_memq_of(obj);
	unsigned long flags;
	int ret = 0;

	if (!q)
		return -EINVAL;
	spin_lock_irqsave(&q->lock, flags);
	if (q->closed)
		ret = -EBADF;
	else if (qd_dsrc_busy(&q->src))
		ret = -EBUSY;	/* derived queues take one context's elements */
	else
		q->handles++;
	spin_unlock_irqrestore(&q->lock, flags);
	return ret;
}

/* An imported handle of ctx closes. Process context. */
void qd_memq_detach_ctx(struct qd_object *obj, struct qd_ctx *ctx)
{
	qd_memq_detach(to_memq(obj), ctx);
}

/*
 * Undo qd_memq_attach() for an import that failed: no op went through the
 * handle, so none is cancelled (the queue closes if it was the last one).
 */
void qd_memq_unattach(struct qd_object *obj)
{
	qd_memq_detach(to_memq(obj), NULL);
}

/* The columns after "qd type" in debugfs "queues" (see qd_memq_show()). */
void qd_memq_show_cols(struct qd_object *obj, struct seq_file *m)
{
	struct qd_memq *q = to_memq(obj);
	u32 depth, pops, pushes;
	u64 pushed, popped;

	spin_lock_irq(&q->lock);
	depth = q->map && !q->closed ? qd_mq_map_depth(q->map) : q->depth;
	pops = q->nr_pops;
	pushes = q->nr_pushes;
	pushed = q->pushed;
	popped = q->popped;
	spin_unlock_irq(&q->lock);
	seq_printf(m, "%u %u %u %u %llu %llu", depth, q->max_depth, pops,
		   pushes, pushed, popped);
}
