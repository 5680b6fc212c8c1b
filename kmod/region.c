// SPDX-License-Identifier: GPL-2.0
/*
 * Registered regions: user memory pinned long-term (FOLL_LONGTERM) so that
 * queues and, later, devices can use the pages without faulting, charged
 * to the owner's RLIMIT_MEMLOCK as mlock and io_uring do.
 */
#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "common/qd_sga.h"
#include "ctx.h"
#include "region.h"
#include "stats.h"

static int qd_account_pages(struct qd_ctx *ctx, unsigned long nr)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	unsigned long cur, new;

	cur = atomic_long_read(&ctx->user->locked_vm);
	do {
		new = cur + nr;
		if (new > limit && !capable(CAP_IPC_LOCK))
			return -ENOMEM;
	} while (!atomic_long_try_cmpxchg(&ctx->user->locked_vm, &cur, new));

	atomic64_add(nr, &ctx->mm->pinned_vm);
	ctx->pinned_pages += nr;
	atomic_long_add(nr, &qd_stats.pinned_pages);
	return 0;
}

static void qd_unaccount_pages(struct qd_ctx *ctx, unsigned long nr)
{
	atomic_long_sub(nr, &ctx->user->locked_vm);
	atomic64_sub(nr, &ctx->mm->pinned_vm);
	ctx->pinned_pages -= nr;
	atomic_long_sub(nr, &qd_stats.pinned_pages);
}

static void qd_region_destroy(struct qd_ctx *ctx, struct qd_region *region)
{
	unpin_user_pages_dirty_lock(region->pages, region->nr_pages, true);
	kvfree(region->pages);
	qd_unaccount_pages(ctx, region->nr_pages);
	kfree(region);
	atomic_long_dec(&qd_stats.regions);
}

static int qd_region_pin(struct qd_region *region)
{
	unsigned long done = 0;
	int ret;

	while (done < region->nr_pages) {
		ret = pin_user_pages_fast(region->addr + (done << PAGE_SHIFT),
					  min_t(unsigned long, region->nr_pages - done,
						INT_MAX),
					  FOLL_WRITE | FOLL_LONGTERM,
					  region->pages + done);
		if (ret <= 0) {
			unpin_user_pages(region->pages, done);
			return ret ? ret : -EFAULT;
		}
		done += ret;
	}
	return 0;
}

static int qd_reg_check(const struct qd_region_reg *r)
{
	if (r->flags || r->resv[0] || r->resv[1])
		return -EINVAL;
	if (!r->len || r->len > QD_MAX_REGION_BYTES)
		return -EINVAL;
	if (!PAGE_ALIGNED(r->addr) || !PAGE_ALIGNED(r->len))
		return -EINVAL;
	if (r->addr + r->len < r->addr || r->addr + r->len > TASK_SIZE)
		return -EFAULT;
	return 0;
}

int qd_region_register(struct qd_ctx *ctx, struct qd_region_reg __user *arg)
{
	struct qd_region_reg r;
	struct qd_region *region;
	u32 id;
	int ret;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	ret = qd_reg_check(&r);
	if (ret)
		return ret;

	region = kzalloc(sizeof(*region), GFP_KERNEL_ACCOUNT);
	if (!region)
		return -ENOMEM;
	region->addr = r.addr;
	region->len = r.len;
	region->nr_pages = r.len >> PAGE_SHIFT;
	atomic_set(&region->users, 0);
	region->pages = kvmalloc_array(region->nr_pages, sizeof(struct page *),
				       GFP_KERNEL_ACCOUNT);
	if (!region->pages) {
		ret = -ENOMEM;
		goto err_free;
	}

	mutex_lock(&ctx->lock);
	ret = qd_account_pages(ctx, region->nr_pages);
	if (ret)
		goto err_unlock;
	ret = qd_region_pin(region);
	if (ret)
		goto err_unaccount;
	ret = xa_alloc(&ctx->regions, &id, region,
		       XA_LIMIT(0, QD_MAX_REGIONS - 1), GFP_KERNEL_ACCOUNT);
	if (ret) {
		ret = ret == -EBUSY ? -ENOSPC : ret;
		goto err_unpin;
	}
	region->id = id;
	atomic_long_inc(&qd_stats.regions);
	if (put_user(id, &arg->id)) {
		xa_erase(&ctx->regions, id);
		qd_region_destroy(ctx, region);
		mutex_unlock(&ctx->lock);
		return -EFAULT;
	}
	mutex_unlock(&ctx->lock);
	return 0;

err_unpin:
	unpin_user_pages(region->pages, region->nr_pages);
err_unaccount:
	qd_unaccount_pages(ctx, region->nr_pages);
err_unlock:
	mutex_unlock(&ctx->lock);
	kvfree(region->pages);
err_free:
	kfree(region);
	return ret;
}

int qd_region_unregister(struct qd_ctx *ctx, u32 id)
{
	struct qd_region *region;
	int ret = 0;

	mutex_lock(&ctx->lock);
	region = xa_load(&ctx->regions, id);
	if (!region) {
		ret = -ENOENT;
	} else if (atomic_read(&region->users)) {
		ret = -EBUSY;
	} else {
		xa_erase(&ctx->regions, id);
		qd_region_destroy(ctx, region);
	}
	mutex_unlock(&ctx->lock);
	return ret;
}

/* The context is being freed: no element or op is left. */
void qd_region_free_all(struct qd_ctx *ctx)
{
	struct qd_region *region;
	unsigned long id;

	xa_for_each(&ctx->regions, id, region) {
		WARN_ON_ONCE(atomic_read(&region->users));
		xa_erase(&ctx->regions, id);
		qd_region_destroy(ctx, region);
	}
}

/*
 * Find the region a segment lies in and take a reference on it. Called
 * with ctx->lock held.
 */
int qd_region_resolve(struct qd_ctx *ctx, const struct qd_seg *seg,
		      struct qd_region **out)
{
	struct qd_region *region;

	lockdep_assert_held(&ctx->lock);
	region = xa_load(&ctx->regions, seg->region);
	if (!region || !qd_seg_in_region(seg->offset, seg->len, region->len))
		return -EFAULT;
	atomic_inc(&region->users);
	*out = region;
	return 0;
}

/* Any context. */
void qd_region_put(struct qd_region *region)
{
	atomic_dec(&region->users);
}
