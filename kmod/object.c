// SPDX-License-Identifier: GPL-2.0
/*
 * The qd table: small integers naming objects of a context.
 *
 * Changes happen under ctx->lock; lookups are lockless: RCU finds the
 * object and refcount_inc_not_zero() keeps it, so the submission path takes
 * no context-wide lock and release frees objects after a grace period.
 *
 * A new qd is first reserved (the index is taken, lookups see nothing),
 * then reported to user space with no lock held (the copy may fault), then
 * installed; a close of a reserved index is -EBADF and leaves the
 * reservation alone, so nothing else can take the index meanwhile.
 */
#include <linux/sched.h>
#include <linux/xarray.h>

#include "ctx.h"
#include "object.h"

#ifndef CONFIG_QD_MAX_QDS
#define CONFIG_QD_MAX_QDS 65536
#endif

/* Called with ctx->lock held. */
int qd_object_reserve(struct qd_ctx *ctx, u32 *qd)
{
	int ret;

	lockdep_assert_held(&ctx->lock);
	ret = xa_alloc(&ctx->qds, qd, NULL, XA_LIMIT(0, CONFIG_QD_MAX_QDS - 1),
		       GFP_KERNEL_ACCOUNT);
	return ret == -EBUSY ? -EMFILE : ret;
}

/* Called with ctx->lock held: give back a reserved, never installed qd. */
void qd_object_unreserve(struct qd_ctx *ctx, u32 qd)
{
	lockdep_assert_held(&ctx->lock);
	xa_release(&ctx->qds, qd);
}

/*
 * The first half of "reserve a qd, report it to user space (which may
 * fault: no ctx->lock held), then install": qd_object_reserve() under a
 * killable ctx->lock. Process context.
 */
int qd_object_claim(struct qd_ctx *ctx, u32 *qd)
{
	int ret;

	ret = mutex_lock_killable(&ctx->lock);
	if (ret)
		return ret;
	ret = qd_object_reserve(ctx, qd);
	mutex_unlock(&ctx->lock);
	return ret;
}

/* The report failed: give the claimed qd back. Process context. */
void qd_object_unclaim(struct qd_ctx *ctx, u32 qd)
{
	mutex_lock(&ctx->lock);
	qd_object_unreserve(ctx, qd);
	mutex_unlock(&ctx->lock);
}

/* Called with ctx->lock held: make obj visible at a reserved qd. */
void qd_object_install(struct qd_ctx *ctx, u32 qd, struct qd_object *obj,
		       const struct qd_object_ops *ops)
{
	lockdep_assert_held(&ctx->lock);
	obj->ops = ops;
	obj->ctx = ctx;
	obj->qd = qd;
	refcount_set(&obj->refs, 1);
	atomic_inc(&ctx->nr_queues);
	/* The slot exists (reserved): storing into it allocates nothing. */
	WARN_ON_ONCE(xa_err(xa_store(&ctx->qds, qd, obj, GFP_KERNEL_ACCOUNT)));
}

/* Any context. Returns the object with a reference, or NULL. */
struct qd_object *qd_object_get(struct qd_ctx *ctx, int qd)
{
	struct qd_object *obj;

	if (qd < 0)
		return NULL;
	rcu_read_lock();
	obj = xa_load(&ctx->qds, qd);
	if (obj && !refcount_inc_not_zero(&obj->refs))
		obj = NULL;
	rcu_read_unlock();
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
	/* A reserved index loads as NULL: not ours to release. */
	obj = xa_load(&ctx->qds, qd);
	if (!obj)
		return -EBADF;
	xa_erase(&ctx->qds, qd);
	atomic_dec(&ctx->nr_queues);
	obj->ops->close(obj);
	qd_object_put(obj);
	return 0;
}

/* Called with ctx->lock held, from release: may sleep. */
void qd_object_close_all(struct qd_ctx *ctx)
{
	struct qd_object *obj;
	unsigned long qd;

	lockdep_assert_held(&ctx->lock);
	xa_for_each(&ctx->qds, qd, obj) {
		qd_object_close(ctx, qd);
		cond_resched();
	}
}
