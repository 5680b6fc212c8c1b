// SPDX-License-Identifier: GPL-2.0
/*
 * Memory queues: FIFO queues of elements between operations of a context.
 * A push moves the element's descriptors, never its payload; a pop yields
 * the same segments. At most max_depth elements wait in a queue; a push to
 * a full queue waits (FIFO) until a pop makes room, and a pop on an empty
 * queue waits until a push arrives.
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
	spinlock_t lock;		/* everything below */
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
	pop->elem = elem;
	pop->res = elem->bytes;
	q->popped++;
	list_add_tail(&pop->node, done);
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
	LIST_HEAD(done);

	spin_lock(&q->lock);
	if (q->closed) {
		spin_unlock(&q->lock);
		return -EBADF;
	}
	op->res = elem->bytes;
	if (!list_empty(&q->pops)) {
		pop = list_first_entry(&q->pops, struct qd_op, node);
		list_del(&pop->node);
		q->nr_pops--;
		op->elem = NULL;
		q->pushed++;
		qd_memq_give(q, pop, elem, &done);
		list_add_tail(&op->node, &done);
	} else if (q->depth < q->max_depth) {
		op->elem = NULL;
		list_add_tail(&elem->node, &q->elems);
		q->depth++;
		q->pushed++;
		list_add_tail(&op->node, &done);
	} else {
		list_add_tail(&op->node, &q->pushes);
		q->nr_pushes++;
	}
	spin_unlock(&q->lock);

	qd_memq_finish(&done);
	return 0;
}

static int qd_memq_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_memq *q = to_memq(obj);
	struct qd_kelem *elem;
	struct qd_op *push;
	LIST_HEAD(done);

	spin_lock(&q->lock);
	if (q->closed) {
		spin_unlock(&q->lock);
		return -EBADF;
	}
	if (list_empty(&q->elems)) {
		list_add_tail(&op->node, &q->pops);
		q->nr_pops++;
		spin_unlock(&q->lock);
		return 0;
	}
	elem = list_first_entry(&q->elems, struct qd_kelem, node);
	list_del_init(&elem->node);
	q->depth--;
	qd_memq_give(q, op, elem, &done);

	/* Room now: admit the oldest waiting push. */
	if (!list_empty(&q->pushes)) {
		push = list_first_entry(&q->pushes, struct qd_op, node);
		list_del(&push->node);
		q->nr_pushes--;
		list_add_tail(&push->elem->node, &q->elems);
		push->elem = NULL;
		q->depth++;
		q->pushed++;
		list_add_tail(&push->node, &done);
	}
	spin_unlock(&q->lock);

	qd_memq_finish(&done);
	return 0;
}

static void qd_memq_close(struct qd_object *obj)
{
	struct qd_memq *q = to_memq(obj);
	struct qd_kelem *elem, *etmp;
	struct qd_op *op, *tmp;
	LIST_HEAD(cancel);
	LIST_HEAD(elems);

	spin_lock(&q->lock);
	q->closed = true;
	list_splice_init(&q->pops, &cancel);
	list_splice_tail_init(&q->pushes, &cancel);
	list_splice_init(&q->elems, &elems);
	q->nr_pops = 0;
	q->nr_pushes = 0;
	q->depth = 0;
	spin_unlock(&q->lock);

	list_for_each_entry_safe(op, tmp, &cancel, node) {
		list_del_init(&op->node);
		qd_op_complete(op, -ECANCELED);
	}
	list_for_each_entry_safe(elem, etmp, &elems, node) {
		list_del(&elem->node);
		qd_elem_free(elem);
	}
}

static void qd_memq_release(struct qd_object *obj)
{
	atomic_long_dec(&qd_stats.queues);
	kfree(to_memq(obj));
}

static void qd_memq_show(struct qd_object *obj, struct seq_file *m)
{
	struct qd_memq *q = to_memq(obj);

	spin_lock(&q->lock);
	seq_printf(m, "%d memq %u %u %u %u %llu %llu\n", obj->qd, q->depth,
		   q->max_depth, q->nr_pops, q->nr_pushes, q->pushed,
		   q->popped);
	spin_unlock(&q->lock);
}

static const struct qd_object_ops qd_memq_ops = {
	.type = "memq",
	.push = qd_memq_push,
	.pop = qd_memq_pop,
	.close = qd_memq_close,
	.release = qd_memq_release,
	.show = qd_memq_show,
};

int qd_memq_create(struct qd_ctx *ctx, struct qd_queue_create __user *arg)
{
	struct qd_queue_create c;
	struct qd_memq *q;
	int i, qd;

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

	mutex_lock(&ctx->lock);
	qd = qd_object_install(ctx, &q->obj, &qd_memq_ops);
	if (qd < 0) {
		mutex_unlock(&ctx->lock);
		kfree(q);
		return qd;
	}
	atomic_long_inc(&qd_stats.queues);
	if (put_user(qd, &arg->qd)) {
		qd_object_close(ctx, qd);
		mutex_unlock(&ctx->lock);
		return -EFAULT;
	}
	mutex_unlock(&ctx->lock);
	return 0;
}
