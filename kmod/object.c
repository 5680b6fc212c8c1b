// SPDX-License-Identifier: GPL-2.0
/*
 * The qd table: small integers naming objects of a context. Changes happen
 * under ctx->lock; lookups too (the submission path holds it), so a plain
 * reference count is all an object needs.
 */
#include <linux/xarray.h>

#include "ctx.h"
#include "object.h"

#ifndef CONFIG_QD_MAX_QDS
#define CONFIG_QD_MAX_QDS 65536
#endif

/* Called with ctx->lock held. Returns the new qd or -errno. */
int qd_object_install(struct qd_ctx *ctx, struct qd_object *obj,
		      const struct qd_object_ops *ops)
{
	u32 id;
	int ret;

	lockdep_assert_held(&ctx->lock);
	obj->ops = ops;
	obj->ctx = ctx;
	refcount_set(&obj->refs, 1);
	ret = xa_alloc(&ctx->qds, &id, obj, XA_LIMIT(0, CONFIG_QD_MAX_QDS - 1),
		       GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret == -EBUSY ? -EMFILE : ret;
	obj->qd = id;
	return id;
}

/* Called with ctx->lock held. */
struct qd_object *qd_object_get(struct qd_ctx *ctx, int qd)
{
	struct qd_object *obj;

	lockdep_assert_held(&ctx->lock);
	if (qd < 0)
		return NULL;
	obj = xa_load(&ctx->qds, qd);
	if (obj)
		refcount_inc(&obj->refs);
	return obj;
}

/* Any context. */
void qd_object_put(struct qd_object *obj)
{
	if (refcount_dec_and_test(&obj->refs))
		obj->ops->release(obj);
}

/* Called with ctx->lock held. */
int qd_object_close(struct qd_ctx *ctx, int qd)
{
	struct qd_object *obj;

	lockdep_assert_held(&ctx->lock);
	if (qd < 0)
		return -EBADF;
	obj = xa_erase(&ctx->qds, qd);
	if (!obj)
		return -EBADF;
	obj->ops->close(obj);
	qd_object_put(obj);
	return 0;
}

/* Called with ctx->lock held. */
void qd_object_close_all(struct qd_ctx *ctx)
{
	struct qd_object *obj;
	unsigned long qd;

	lockdep_assert_held(&ctx->lock);
	xa_for_each(&ctx->qds, qd, obj)
		qd_object_close(ctx, qd);
}
