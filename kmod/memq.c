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
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "ctx.h"
#include "memq.h"
#include "object.h"
#include "op.h"
#include "stats.h"

struct qd_memq {
	struct qd_object obj;
	spinlock_t lock;		/* everything below; irq-safe */
	bool closed;
	u32 depth;
	u32 max_depth;
	u32 nr_pops;
	u32 nr_pushes;
	struct list_head elems;		/* queued struct qd_kelem */
	struct list_head pops;		/* waiting pop ops */
	struct list_head pushes;	/* push ops waiting for room */
	u64 pushed;
	u64 popped;
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

/* Complete every op on the list with the result stored in it. */
static void qd_memq_finish(struct list_head *done)
{
	struct qd_op *op, *tmp;

	list_for_each_entry_safe(op, tmp, done, node) {
		list_del_init(&op->node);
		qd_op_complete(op, op->res);
	}
}

static int qd_memq_push(struct qd_object *obj, struct qd_op *op)
{
	struct qd_memq *q = to_memq(obj);
	struct qd_kelem *elem = op->elem;
	struct qd_op *pop;
	unsigned long flags;
	LIST_HEAD(done);

	spin_lock_irqsave(&q->lock, flags);
	if (q->closed) {
		spin_unlock_irqrestore(&q->lock, flags);
		return -EBADF;
	}
	op->res = elem->bytes;
	if (!list_empty(&q->pops)) {
		pop = list_first_entry(&q->pops, struct qd_op, node);
		op->elem = NULL;
		q->pushed++;
		if (qd_memq_multishot(pop)) {
			/* Delivered now; back of the line. */
			list_move_tail(&pop->node, &q->pops);
			q->popped++;
			qd_op_deliver(pop, elem);
		} else {
			list_del(&pop->node);
			q->nr_pops--;
			qd_memq_give(q, pop, elem, &done);
		}
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

	qd_memq_finish(&done);
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
		list_del_init(&elem->node);
		q->depth--;
		qd_memq_give(q, op, elem, &done);
		/* Room now: admit the oldest waiting push. */
		qd_memq_admit_push(q, &done);
	}
	spin_unlock_irqrestore(&q->lock, flags);

	qd_memq_finish(&done);
	return ret;
}

/* Find ctx's pending op with user_data on list; called with q->lock held. */
static struct qd_op *qd_memq_find(struct list_head *list, struct qd_ctx *ctx,
				  u64 user_data)
{
	struct qd_op *op;

	list_for_each_entry(op, list, node)
		if (op->ctx == ctx && op->user_data == user_data)
			return op;
	return NULL;
}

static int qd_memq_cancel(struct qd_object *obj, struct qd_ctx *ctx,
			  u64 user_data)
{
	struct qd_memq *q = to_memq(obj);
	unsigned long flags;
	struct qd_op *op;

	spin_lock_irqsave(&q->lock, flags);
	op = qd_memq_find(&q->pops, ctx, user_data);
	if (op) {
		q->nr_pops--;
	} else {
		op = qd_memq_find(&q->pushes, ctx, user_data);
		if (op)
			q->nr_pushes--;
	}
	if (op) {
		list_del_init(&op->node);
		qd_op_unwait(op);
	}
	spin_unlock_irqrestore(&q->lock, flags);

	if (!op)
		return -ENOENT;
	qd_op_complete(op, -ECANCELED);
	return 0;
}

/* Process context (object.h): may sleep between elements. */
static void qd_memq_close(struct qd_object *obj)
{
	struct qd_memq *q = to_memq(obj);
	struct qd_kelem *elem, *etmp;
	struct qd_op *op, *tmp;
	unsigned long flags;
	LIST_HEAD(cancel);
	LIST_HEAD(elems);

	spin_lock_irqsave(&q->lock, flags);
	q->closed = true;
	list_splice_init(&q->pops, &cancel);
	list_splice_tail_init(&q->pushes, &cancel);
	list_splice_init(&q->elems, &elems);
	q->nr_pops = 0;
	q->nr_pushes = 0;
	q->depth = 0;
	spin_unlock_irqrestore(&q->lock, flags);

	list_for_each_entry_safe(op, tmp, &cancel, node) {
		list_del_init(&op->node);
		qd_op_unwait(op);
		qd_op_complete(op, -ECANCELED);
		cond_resched();
	}
	list_for_each_entry_safe(elem, etmp, &elems, node) {
		list_del(&elem->node);
		qd_elem_free(elem);
		cond_resched();
	}
}

/* Any context: the last reference may be an op's. */
static void qd_memq_release(struct qd_object *obj)
{
	atomic_long_dec(&qd_stats.queues);
	kfree_rcu(to_memq(obj), obj.rcu);
}

static void qd_memq_show(struct qd_object *obj, struct seq_file *m)
{
	struct qd_memq *q = to_memq(obj);
	u32 depth, pops, pushes;
	u64 pushed, popped;

	spin_lock_irq(&q->lock);
	depth = q->depth;
	pops = q->nr_pops;
	pushes = q->nr_pushes;
	pushed = q->pushed;
	popped = q->popped;
	spin_unlock_irq(&q->lock);
	seq_printf(m, "%d memq %u %u %u %u %llu %llu\n", obj->qd, depth,
		   q->max_depth, pops, pushes, pushed, popped);
}

static const struct qd_object_ops qd_memq_ops = {
	.type = "memq",
	.push = qd_memq_push,
	.pop = qd_memq_pop,
	.cancel = qd_memq_cancel,
	.close = qd_memq_close,
	.release = qd_memq_release,
	.show = qd_memq_show,
};

int qd_memq_create(struct qd_ctx *ctx, struct qd_queue_create __user *arg)
{
	struct qd_queue_create c;
	struct qd_memq *q;
	u32 qd;
	int i, ret;

	if (copy_from_user(&c, arg, sizeof(c)))
		return -EFAULT;
	if (c.flags || c.depth > QD_MEMQ_MAX_DEPTH)
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
	q->max_depth = c.depth ? c.depth : QD_MEMQ_DEFAULT_DEPTH;

	/* Reserve a qd, report it (may fault), then install the queue. */
	ret = mutex_lock_killable(&ctx->lock);
	if (ret)
		goto err_free;
	ret = qd_object_reserve(ctx, &qd);
	mutex_unlock(&ctx->lock);
	if (ret)
		goto err_free;
	if (put_user(qd, &arg->qd)) {
		ret = -EFAULT;
		mutex_lock(&ctx->lock);
		qd_object_unreserve(ctx, qd);
		mutex_unlock(&ctx->lock);
		goto err_free;
	}
	mutex_lock(&ctx->lock);
	qd_object_install(ctx, qd, &q->obj, &qd_memq_ops);
	atomic_long_inc(&qd_stats.queues);
	mutex_unlock(&ctx->lock);
	return 0;

err_free:
	kfree(q);
	return ret;
}
