// SPDX-License-Identifier: GPL-2.0
/*
 * A context: one open of /dev/qd, with its rings, qds and regions.
 *
 * Lifetime: the file holds one reference and every live op another, so a
 * completion that arrives after close still finds its context. The last
 * reference frees the context: in release when the file's is the last,
 * otherwise from a work item, since a completion callback may drop it.
 */
#include <linux/cred.h>
#include <linux/sched/mm.h>
#include <linux/sched/user.h>
#include <linux/slab.h>
#include <linux/nsproxy.h>
#include <net/net_namespace.h>

#include "ctx.h"
#include "debugfs.h"
#include "object.h"
#include "region.h"
#include "stats.h"

static struct workqueue_struct *qd_wq;
static atomic_t qd_ctx_ids = ATOMIC_INIT(0);

static void qd_ctx_free(struct qd_ctx *ctx)
{
	qd_region_free_all(ctx);
	qd_rings_free(ctx);
	xa_destroy(&ctx->qds);
	xa_destroy(&ctx->regions);
	put_net(ctx->net);
	put_cred(ctx->cred);
	free_uid(ctx->user);
	mmdrop(ctx->mm);
	mutex_destroy(&ctx->lock);
	kfree(ctx);
	atomic_long_dec(&qd_stats.contexts);
}

static void qd_ctx_free_work(struct work_struct *work)
{
	qd_ctx_free(container_of(work, struct qd_ctx, free_work));
}

void qd_ctx_put(struct qd_ctx *ctx)
{
	if (refcount_dec_and_test(&ctx->refs))
		queue_work(qd_wq, &ctx->free_work);
}

struct qd_ctx *qd_ctx_create(void)
{
	struct qd_ctx *ctx;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return NULL;

	refcount_set(&ctx->refs, 1);
	ctx->id = atomic_inc_return(&qd_ctx_ids);
	ctx->pid = task_tgid_nr(current);
	get_task_comm(ctx->comm, current);
	mmgrab(current->mm);
	ctx->mm = current->mm;
	ctx->cred = get_current_cred();
	ctx->net = get_net(current->nsproxy->net_ns);
	ctx->user = get_uid(current_user());
	mutex_init(&ctx->lock);
	atomic_set(&ctx->nr_ops, 0);
	atomic64_set(&ctx->enters, 0);
	xa_init_flags(&ctx->qds, XA_FLAGS_ALLOC);
	xa_init_flags(&ctx->regions, XA_FLAGS_ALLOC);
	spin_lock_init(&ctx->cq.lock);
	INIT_LIST_HEAD(&ctx->cq.overflow);
	init_waitqueue_head(&ctx->cq.wait);
	INIT_WORK(&ctx->free_work, qd_ctx_free_work);

	atomic_long_inc(&qd_stats.contexts);
	qd_debugfs_ctx_add(ctx);
	return ctx;
}

/* The file is gone: cancel everything, then drop the file's reference. */
void qd_ctx_release(struct qd_ctx *ctx)
{
	qd_debugfs_ctx_remove(ctx);

	mutex_lock(&ctx->lock);
	qd_object_close_all(ctx);
	mutex_unlock(&ctx->lock);

	/* Nobody will reap these; later completions are dropped, not parked. */
	qd_cq_discard_overflow(ctx);

	/*
	 * Usually nothing else holds the context now: free it here, so that
	 * pins and the memlock charge are gone when close() returns.
	 */
	if (refcount_dec_and_test(&ctx->refs))
		qd_ctx_free(ctx);
}

int qd_ctx_init(void)
{
	qd_wq = alloc_workqueue("qd", WQ_UNBOUND, 0);
	return qd_wq ? 0 : -ENOMEM;
}

void qd_ctx_exit(void)
{
	destroy_workqueue(qd_wq);
}
