// SPDX-License-Identifier: GPL-2.0
/*
 * A context: one open of /dev/qd, with its rings, qds and regions.
 *
 * Lifetime: the file holds one reference and every live op another, so a
 * completion that arrives after close still finds its context. The last
 * reference frees the context: in release when the file's is the last,
 * otherwise from a work item, since a completion callback (any context,
 * hardirq included) may drop it. A context also holds a reference on the
 * module from open until it is freed, so qd.ko cannot be unloaded while a
 * backend may still complete one of its ops; the module's exit destroys the
 * workqueue, which waits for a last free that is still running.
 */
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/sched/user.h>
#include <linux/slab.h>
#include <linux/nsproxy.h>
#include <net/net_namespace.h>

#include "ctx.h"
#include "debugfs.h"
#include "object.h"
#include "region.h"
#include "sqpoll.h"
#include "stats.h"
#include "user.h"

static struct workqueue_struct *qd_wq;
static atomic_t qd_ctx_ids = ATOMIC_INIT(0);

/* Every context, for per-user sums in /proc/qd. Process context. */
static DEFINE_MUTEX(qd_ctx_list_lock);
static LIST_HEAD(qd_ctx_list);

static void qd_ctx_free(struct qd_ctx *ctx)
{
	mutex_lock(&qd_ctx_list_lock);
	list_del(&ctx->node);
	mutex_unlock(&qd_ctx_list_lock);

	qd_pools_free(ctx);
	qd_region_free_all(ctx);
	qd_rings_free(ctx);
	xa_destroy(&ctx->qds);
	xa_destroy(&ctx->regions);
	WARN_ON_ONCE(atomic_read(&ctx->nr_queued));
	qd_user_del_context(ctx->quser);
	qd_user_put(ctx->quser);
	put_net(ctx->net);
	put_cred(ctx->cred);
	free_uid(ctx->user);
	mmdrop(ctx->mm);
	mutex_destroy(&ctx->lock);
	kfree(ctx);
	atomic_long_dec(&qd_stats.contexts);
	module_put(THIS_MODULE);
}

static void qd_ctx_free_work(struct work_struct *work)
{
	qd_ctx_free(container_of(work, struct qd_ctx, free_work));
}

/* Any context. */
void qd_ctx_put(struct qd_ctx *ctx)
{
	if (refcount_dec_and_test(&ctx->refs))
		queue_work(qd_wq, &ctx->free_work);
}

struct qd_ctx *qd_ctx_create(void)
{
	struct qd_ctx *ctx;
	int ret = -ENOMEM;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return ERR_PTR(-ENOMEM);
	ctx->quser = qd_user_get(current_uid());
	if (!ctx->quser)
		goto err_free;
	ret = qd_user_add_context(ctx->quser);
	if (ret)
		goto err_user;

	/* The file holds the module while we run: this cannot fail. */
	__module_get(THIS_MODULE);
	refcount_set(&ctx->refs, 1);
	ctx->id = atomic_inc_return(&qd_ctx_ids);
	ctx->pid = task_tgid_nr(current);
	get_task_comm(ctx->comm, current);
	mmgrab(current->mm);
	ctx->mm = current->mm;
	ctx->cred = get_current_cred();
	ctx->net = get_net(current->nsproxy->net_ns);
	ctx->user = get_uid(current_user());
	ctx->max_queued = READ_ONCE(qd_max_queued);
	mutex_init(&ctx->lock);
	xa_init_flags(&ctx->qds, XA_FLAGS_ALLOC);
	xa_init_flags(&ctx->regions, XA_FLAGS_ALLOC);
	init_waitqueue_head(&ctx->wait);
	qd_pools_init(ctx);
	INIT_WORK(&ctx->free_work, qd_ctx_free_work);

	mutex_lock(&qd_ctx_list_lock);
	list_add_tail(&ctx->node, &qd_ctx_list);
	mutex_unlock(&qd_ctx_list_lock);
	atomic_long_inc(&qd_stats.contexts);
	qd_debugfs_ctx_add(ctx);
	return ctx;

err_user:
	qd_user_put(ctx->quser);
err_free:
	kfree(ctx);
	return ERR_PTR(ret);
}

/* The file is gone: cancel everything, then drop the file's reference. */
void qd_ctx_release(struct qd_ctx *ctx)
{
	qd_debugfs_ctx_remove(ctx);
	/* Before anything goes: the poller submits no more (sqpoll.c). */
	if (ctx->sqp) {
		qd_sqpoll_stop(ctx->sqp);
		ctx->sqp = NULL;
	}

	mutex_lock(&ctx->lock);
	qd_object_close_all(ctx);
	mutex_unlock(&ctx->lock);
	qd_pools_release(ctx);

	/* Nobody will reap these; later completions are dropped, not parked. */
	qd_cq_discard_overflow(ctx);

	/*
	 * Usually nothing else holds the context now: free it here, so that
	 * pins and the memlock charge are gone when close() returns.
	 */
	if (refcount_dec_and_test(&ctx->refs))
		qd_ctx_free(ctx);
}

/* What the contexts of uid hold (all contexts if uid is INVALID_UID). */
void qd_ctx_sum_uid(kuid_t uid, struct qd_ctx_sums *s)
{
	struct qd_ctx *ctx;

	memset(s, 0, sizeof(*s));
	mutex_lock(&qd_ctx_list_lock);
	list_for_each_entry(ctx, &qd_ctx_list, node) {
		if (uid_valid(uid) && !uid_eq(ctx->quser->uid, uid))
			continue;
		s->contexts++;
		s->queues += atomic_read(&ctx->nr_queues);
		s->regions += atomic_read(&ctx->nr_regions);
		s->pinned_pages += atomic_long_read(&ctx->pinned_pages);
		s->inflight += atomic_read(&ctx->nr_ops);
		s->queued += atomic_read(&ctx->nr_queued);
		s->sockets += atomic_read(&ctx->nr_sockets);
		s->files += atomic_read(&ctx->nr_files);
	}
	mutex_unlock(&qd_ctx_list_lock);
}

/* Run work on qd's work queue, which module exit drains. Any context. */
void qd_ctx_defer(struct work_struct *work)
{
	queue_work(qd_wq, work);
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
