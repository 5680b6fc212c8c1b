// SPDX-License-Identifier: GPL-2.0
/*
 * QD_OP_PUSH, QD_OP_POP, QD_OP_CANCEL and QD_OP_WAKE: the element
 * operations of queues. prep gathers and checks the element; issue hands the
 * op to the object's backend.
 */
#include <linux/uaccess.h>

#include "common/qd_sga.h"
#include "ctx.h"
#include "object.h"
#include "op.h"
#include "opdef.h"
#include "region.h"
#include "stats.h"

/*
 * QD_PUSH_AT and QD_POP_AT (the same bit): the offset, for a storage queue
 * (file.c); without the flag, off must be zero.
 */
static int qd_at_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	if (!(sqe->op_flags & QD_PUSH_AT))
		return sqe->off ? -EINVAL : 0;
	op->file.pos = sqe->off;
	return 0;
}

/* A positional op on an object without offsets is -ESPIPE, as pread(2). */
static bool qd_at_bad(const struct qd_op *op)
{
	return op->op_flags & QD_PUSH_AT && !op->obj->ops->positional;
}

/*
 * Called with the ring's sq_lock held (not ctx->lock: the copy may fault). Each
 * region is resolved with a reference, which keeps it registered.
 */
int qd_push_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	if (qd_push_flags_bad(sqe->op_flags))
		return -EINVAL;
	if (qd_at_prep(op, sqe))
		return -EINVAL;
	return qd_elem_build(op->ctx, sqe->addr, sqe->nsegs, &op->elem);
}

int qd_push_issue(struct qd_op *op)
{
	struct qd_object *obj;

	if (qd_op_target(op))
		return -EBADF;
	obj = op->obj;
	if (qd_at_bad(op))
		return -ESPIPE;
	return obj->ops->push ? obj->ops->push(obj, op) : -EOPNOTSUPP;
}

/* The object is looked up here, so that its prep_pop runs in process context. */
int qd_pop_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	struct qd_object *obj;

	int ret;

	if (qd_at_prep(op, sqe) ||
	    (sqe->op_flags & QD_POP_AT &&
	     sqe->op_flags & (QD_POP_POOL | QD_POP_MULTISHOT)))
		return -EINVAL;
	if (sqe->op_flags & QD_POP_POOL) {
		/* Buffers from a pool when bytes arrive (pool.c, sockets). */
		if (sqe->nsegs > QD_SGA_MAX || sqe->addr ||
		    sqe->buf_group >= QD_POOL_GROUPS)
			return -EINVAL;
		op->pool_group = sqe->buf_group;
		op->pool_max = sqe->nsegs ?: QD_SGA_MAX;
	} else if (sqe->buf_group) {
		return -EINVAL;
	} else if (sqe->nsegs || sqe->addr) {
		/* A buffer for a copy, if the element cannot come without one. */
		if (sqe->op_flags & QD_POP_MULTISHOT)
			return -EINVAL;
		ret = qd_elem_build(op->ctx, sqe->addr, sqe->nsegs, &op->dst);
		if (ret)
			return ret;
	}
	if (qd_op_target(op))
		return -EBADF;
	obj = op->obj;
	if (sqe->op_flags & QD_POP_POOL && !obj->ops->pool)
		return -EOPNOTSUPP;
	if (qd_at_bad(op))
		return -ESPIPE;
	return obj->ops->prep_pop ? obj->ops->prep_pop(obj, op) : 0;
}

int qd_pop_issue(struct qd_op *op)
{
	struct qd_object *obj = op->obj;

	return obj->ops->pop ? obj->ops->pop(obj, op) : -EOPNOTSUPP;
}

int qd_cancel_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	if (sqe->nsegs)
		return -EINVAL;
	op->cancel_data = sqe->addr;
	return 0;
}

/* Only ops of the submitting context can be cancelled (obj->ops->cancel). */
int qd_cancel_issue(struct qd_op *op)
{
	struct qd_object *obj;
	int ret;

	if (qd_op_target(op))
		return -EBADF;
	obj = op->obj;
	if (!obj->ops->cancel)
		return -EOPNOTSUPP;
	ret = obj->ops->cancel(obj, op->ctx, op->cancel_data);
	if (!ret)
		qd_op_complete(op, 0);
	return ret;
}

int qd_wake_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	if (sqe->nsegs || sqe->addr)
		return -EINVAL;
	return 0;
}

/* -EINVAL for a queue that has nothing to wake (not mapped). */
int qd_wake_issue(struct qd_op *op)
{
	struct qd_object *obj;
	int ret;

	if (qd_op_target(op))
		return -EBADF;
	obj = op->obj;
	if (!obj->ops->wake)
		return -EINVAL;
	ret = obj->ops->wake(obj);
	if (!ret)
		qd_op_complete(op, 0);
	return ret;
}

/*
 * A QD_OP_WAKE that posts nothing when it succeeds (SKIP_SUCCESS, as libqd
 * sends them) needs no operation: the submission loop tries this first,
 * with the SQE's reserved fields already checked, and allocates an op only
 * when it returns false (invalid, or the wake failed: the ordinary path
 * then checks and reports it). One per hop of a ping-pong through a mapped
 * queue. Called with the ring's sq_lock held.
 */
bool qd_wake_direct(struct qd_ctx *ctx, const struct qd_sqe *sqe)
{
	struct qd_object *obj;
	int ret;

	if (sqe->flags != QD_SQE_F_SKIP_SUCCESS || sqe->op_flags ||
	    sqe->nsegs || sqe->addr)
		return false;
	obj = qd_object_get(ctx, sqe->qd);
	if (!obj)
		return false;
	ret = obj->ops->wake ? obj->ops->wake(obj) : -EINVAL;
	qd_object_put(obj);
	if (ret)
		return false;
	qd_stat_inc(op[QD_OP_WAKE].submitted);
	qd_stat_inc(op[QD_OP_WAKE].completed);
	return true;
}
