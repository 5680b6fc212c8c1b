// SPDX-License-Identifier: GPL-2.0
/* Operations and elements: allocation, completion, release. */
#include <linux/slab.h>

#include "ctx.h"
#include "object.h"
#include "op.h"
#include "opdef.h"
#include "region.h"
#include "stats.h"
#include "user.h"

static struct kmem_cache *qd_op_cache;
static struct kmem_cache *qd_elem_cache;

/* Process context (submission). */
struct qd_op *qd_op_alloc(struct qd_ctx *ctx)
{
	struct qd_op *op;

	op = kmem_cache_zalloc(qd_op_cache, GFP_KERNEL_ACCOUNT);
	if (!op)
		return NULL;
	INIT_LIST_HEAD(&op->node);
	qd_ctx_get(ctx);
	op->ctx = ctx;
	atomic_inc(&ctx->nr_ops);
	qd_stat_inc(inflight);
	return op;
}

/* Any context. */
void qd_op_free(struct qd_op *op)
{
	struct qd_ctx *ctx = op->ctx;

	WARN_ON_ONCE(op->wait != QD_OP_RUNNING);
	if (op->elem)
		qd_elem_free(op->elem);
	if (op->obj)
		qd_object_put(op->obj);
	kmem_cache_free(qd_op_cache, op);
	qd_stat_dec(inflight);
	atomic_dec(&ctx->nr_ops);
	qd_ctx_put(ctx);
}

/* Finish op with res: post its CQE (or park it). Any context. */
void qd_op_complete(struct qd_op *op, s64 res)
{
	op->res = res;
	if (op->opcode < QD_OP_COUNT) {
		qd_stat_inc(op[op->opcode].completed);
		if (res < 0)
			qd_stat_inc(op[op->opcode].failed);
	}
	qd_cq_post(op->ctx, op);
}

/*
 * A backend parks op until an operation of the other kind arrives. Pending
 * pushes do not count against the admission of pops, nor pending pops
 * against pushes (submit.c), so neither kind can starve the kind that
 * completes it. Any context.
 */
void qd_op_wait(struct qd_op *op, enum qd_op_wait why)
{
	op->wait = why;
	atomic_inc(why == QD_OP_WAIT_PUSH ? &op->ctx->nr_wait_push :
					    &op->ctx->nr_wait_pop);
}

/* The backend takes op out of its pending list. Any context. */
void qd_op_unwait(struct qd_op *op)
{
	if (op->wait == QD_OP_RUNNING)
		return;
	atomic_dec(op->wait == QD_OP_WAIT_PUSH ? &op->ctx->nr_wait_push :
						 &op->ctx->nr_wait_pop);
	op->wait = QD_OP_RUNNING;
}

/*
 * Process context (push prep). Fails with *err = -ENOBUFS past the
 * context's max_queued or the user's max_user_queued, -ENOMEM otherwise.
 */
struct qd_kelem *qd_elem_alloc(struct qd_ctx *ctx, int *err)
{
	struct qd_kelem *elem;

	*err = -ENOBUFS;
	if (atomic_inc_return(&ctx->nr_queued) > ctx->max_queued)
		goto err_ctx;
	if (!qd_user_charge_elem(ctx->quser))
		goto err_ctx;
	*err = -ENOMEM;
	elem = kmem_cache_alloc(qd_elem_cache, GFP_KERNEL_ACCOUNT);
	if (!elem)
		goto err_user;
	INIT_LIST_HEAD(&elem->node);
	elem->ctx = ctx;
	elem->nsegs = 0;
	elem->bytes = 0;
	return elem;

err_user:
	qd_user_uncharge_elem(ctx->quser);
err_ctx:
	atomic_dec(&ctx->nr_queued);
	return NULL;
}

/* Any context. Drops the element's region references and its charge. */
void qd_elem_free(struct qd_kelem *elem)
{
	struct qd_ctx *ctx = elem->ctx;
	u32 i;

	for (i = 0; i < elem->nsegs; i++)
		qd_region_put(elem->regions[i]);
	kmem_cache_free(qd_elem_cache, elem);
	qd_user_uncharge_elem(ctx->quser);
	atomic_dec(&ctx->nr_queued);
}

int qd_op_init(void)
{
	qd_op_cache = KMEM_CACHE(qd_op, SLAB_ACCOUNT);
	if (!qd_op_cache)
		return -ENOMEM;
	qd_elem_cache = KMEM_CACHE_USERCOPY(qd_kelem, SLAB_ACCOUNT, segs);
	if (!qd_elem_cache) {
		kmem_cache_destroy(qd_op_cache);
		return -ENOMEM;
	}
	return 0;
}

void qd_op_exit(void)
{
	kmem_cache_destroy(qd_elem_cache);
	kmem_cache_destroy(qd_op_cache);
}
