// SPDX-License-Identifier: GPL-2.0
/* Operations and elements: allocation, completion, release. */
#include <linux/slab.h>

#include "ctx.h"
#include "object.h"
#include "op.h"
#include "region.h"
#include "stats.h"

static struct kmem_cache *qd_op_cache;
static struct kmem_cache *qd_elem_cache;

struct qd_op *qd_op_alloc(struct qd_ctx *ctx)
{
	struct qd_op *op;

	op = kmem_cache_zalloc(qd_op_cache, GFP_KERNEL);
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
	if (op->opcode < QD_OP_LAST) {
		qd_stat_inc(op[op->opcode].completed);
		if (res < 0)
			qd_stat_inc(op[op->opcode].failed);
	}
	qd_cq_post(op->ctx, op);
}

struct qd_kelem *qd_elem_alloc(void)
{
	struct qd_kelem *elem;

	elem = kmem_cache_alloc(qd_elem_cache, GFP_KERNEL);
	if (!elem)
		return NULL;
	INIT_LIST_HEAD(&elem->node);
	elem->nsegs = 0;
	elem->bytes = 0;
	return elem;
}

/* Any context. Drops the element's region references. */
void qd_elem_free(struct qd_kelem *elem)
{
	u32 i;

	for (i = 0; i < elem->nsegs; i++)
		qd_region_put(elem->regions[i]);
	kmem_cache_free(qd_elem_cache, elem);
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
