// SPDX-License-Identifier: GPL-2.0
/*
 * Registered regions: user memory pinned long-term (FOLL_LONGTERM) so that
 * queues and, later, devices can use the pages without faulting, charged
 * to the owner's RLIMIT_MEMLOCK as mlock and io_uring do (not for a task
 * with CAP_IPC_LOCK, as io_uring) and always to mm->pinned_vm.
 *
 * Only anonymous memory, shmem (tmpfs, memfd, shared anonymous) and
 * hugetlbfs can be registered: receive and block reads will write into
 * regions, and a long-term pin of page cache pages of another file system
 * would write them behind that file system's back (io_uring refuses them
 * for the same reason).
 *
 * Pinning and the copy of the id to user space happen without ctx->lock
 * held; resolving a segment is lockless (RCU and a user count that
 * unregistration turns negative).
 */
#include <linux/bvec.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/hugetlb.h>
#include <linux/magic.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "common/qd_sga.h"
#include "ctx.h"
#include "region.h"
#include "stats.h"

#define QD_REGION_DEAD	INT_MIN

static int qd_account_pages(struct qd_ctx *ctx, struct qd_region *region)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	unsigned long nr = region->nr_pages;
	unsigned long cur, new;

	region->charged = !capable(CAP_IPC_LOCK);
	if (region->charged) {
		cur = atomic_long_read(&ctx->user->locked_vm);
		do {
			new = cur + nr;
			if (new > limit)
				return -ENOMEM;
		} while (!atomic_long_try_cmpxchg(&ctx->user->locked_vm, &cur,
						  new));
	}
	atomic64_add(nr, &ctx->mm->pinned_vm);
	atomic_long_add(nr, &ctx->pinned_pages);
	atomic_long_add(nr, &qd_stats.pinned_pages);
	return 0;
}

static void qd_unaccount_pages(struct qd_ctx *ctx, struct qd_region *region)
{
	unsigned long nr = region->nr_pages;

	if (region->charged)
		atomic_long_sub(nr, &ctx->user->locked_vm);
	atomic64_sub(nr, &ctx->mm->pinned_vm);
	atomic_long_sub(nr, &ctx->pinned_pages);
	atomic_long_sub(nr, &qd_stats.pinned_pages);
}

/* Process context: unpinning may sleep. Nobody can take a reference now. */
static void qd_region_destroy(struct qd_ctx *ctx, struct qd_region *region)
{
	unpin_user_pages_dirty_lock(region->pages, region->nr_pages, true);
	kvfree(region->bvecs);
	kvfree(region->pages);
	qd_unaccount_pages(ctx, region);
	atomic_dec(&ctx->nr_regions);
	atomic_long_dec(&qd_stats.regions);
	/* A lockless resolve may still be looking at it. */
	kfree_rcu(region, rcu);
}

/* Whether a VMA's pages may be pinned long-term and written by devices. */
static bool qd_vma_pinnable(struct vm_area_struct *vma)
{
	struct file *file = vma->vm_file;

	if (!file || vma_is_anonymous(vma) || is_vm_hugetlb_page(vma))
		return true;
	/* shmem: tmpfs, memfd, MAP_SHARED|MAP_ANONYMOUS, SysV shm */
	return file_inode(file)->i_sb->s_magic == TMPFS_MAGIC;
}

/* Called with the mmap lock held. */
static int qd_region_check_vmas(struct mm_struct *mm, unsigned long start,
				unsigned long end)
{
	struct vm_area_struct *vma;
	unsigned long addr;

	for (addr = start; addr < end; addr = vma->vm_end) {
		vma = find_vma(mm, addr);
		if (!vma || vma->vm_start > addr)
			return -EFAULT;
		if (!qd_vma_pinnable(vma))
			return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * Called with the mmap lock held, the range pinned: note which shmem file
 * pages the region holds when it is one range of one file.
 */
static void qd_region_note_shm(struct mm_struct *mm, struct qd_region *region)
{
	struct vm_area_struct *vma = find_vma(mm, region->addr);
	struct address_space *mapping;
	unsigned long i;
	pgoff_t index;

	region->shm_mapping = NULL;
	if (!vma || !vma->vm_file || is_vm_hugetlb_page(vma) ||
	    vma->vm_end < region->addr + region->len ||
	    file_inode(vma->vm_file)->i_sb->s_magic != TMPFS_MAGIC)
		return;
	mapping = vma->vm_file->f_mapping;
	index = vma->vm_pgoff + ((region->addr - vma->vm_start) >> PAGE_SHIFT);
	/* What is pinned is what counts: each page must be that file's. */
	for (i = 0; i < region->nr_pages; i++) {
		struct folio *folio = page_folio(region->pages[i]);

		if (folio->mapping != mapping ||
		    folio->index + folio_page_idx(folio, region->pages[i]) !=
		    index + i)
			return;
	}
	region->shm_mapping = mapping;
	region->shm_index = index;
}

static int qd_region_pin(struct qd_region *region)
{
	struct mm_struct *mm = current->mm;
	unsigned long done = 0;
	long ret;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	/* Under the same lock as the pin, so the VMAs checked are pinned. */
	ret = qd_region_check_vmas(mm, region->addr,
				   region->addr + region->len);
	while (!ret && done < region->nr_pages) {
		ret = pin_user_pages(region->addr + (done << PAGE_SHIFT),
				     region->nr_pages - done,
				     FOLL_WRITE | FOLL_LONGTERM,
				     region->pages + done, NULL);
		if (ret > 0) {
			done += ret;
			ret = 0;
		} else if (!ret) {
			ret = -EFAULT;
		}
	}
	if (!ret)
		qd_region_note_shm(mm, region);
	mmap_read_unlock(mm);
	if (ret)
		unpin_user_pages(region->pages, done);
	return ret;
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

static void qd_region_fill_bvecs(struct qd_region *region)
{
	unsigned long i;

	for (i = 0; i < region->nr_pages; i++)
		bvec_set_page(&region->bvecs[i], region->pages[i], PAGE_SIZE,
			      0);
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
	region->bvecs = kvmalloc_array(region->nr_pages,
				       sizeof(struct bio_vec),
				       GFP_KERNEL_ACCOUNT);
	if (!region->pages || !region->bvecs) {
		ret = -ENOMEM;
		goto err_free;
	}

	ret = qd_account_pages(ctx, region);
	if (ret)
		goto err_pages;
	ret = qd_region_pin(region);
	if (ret)
		goto err_unaccount;
	qd_region_fill_bvecs(region);

	/* Reserve an id, report it (may fault), then publish the region. */
	if (mutex_lock_killable(&ctx->lock)) {
		ret = -EINTR;
		goto err_unpin;
	}
	ret = xa_alloc(&ctx->regions, &id, NULL,
		       XA_LIMIT(0, QD_MAX_REGIONS - 1), GFP_KERNEL_ACCOUNT);
	mutex_unlock(&ctx->lock);
	if (ret) {
		ret = ret == -EBUSY ? -ENOSPC : ret;
		goto err_unpin;
	}
	region->id = id;
	if (put_user(id, &arg->id)) {
		ret = -EFAULT;
		mutex_lock(&ctx->lock);
		xa_release(&ctx->regions, id);
		mutex_unlock(&ctx->lock);
		goto err_unpin;
	}
	mutex_lock(&ctx->lock);
	WARN_ON_ONCE(xa_err(xa_store(&ctx->regions, id, region,
				     GFP_KERNEL_ACCOUNT)));
	atomic_inc(&ctx->nr_regions);
	atomic_long_inc(&qd_stats.regions);
	mutex_unlock(&ctx->lock);
	return 0;

err_unpin:
	unpin_user_pages(region->pages, region->nr_pages);
err_unaccount:
	qd_unaccount_pages(ctx, region);
err_pages:
	kvfree(region->bvecs);
	kvfree(region->pages);
err_free:
	kfree(region);
	return ret;
}

int qd_region_unregister(struct qd_ctx *ctx, u32 id)
{
	struct qd_region *region;
	int ret = 0;

	if (mutex_lock_killable(&ctx->lock))
		return -EINTR;
	region = xa_load(&ctx->regions, id);
	if (!region) {
		ret = -ENOENT;
	} else if (atomic_cmpxchg(&region->users, 0, QD_REGION_DEAD)) {
		/* Elements or ops still use it. */
		ret = -EBUSY;
	} else {
		xa_erase(&ctx->regions, id);
	}
	mutex_unlock(&ctx->lock);
	if (!ret)
		qd_region_destroy(ctx, region);
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
		cond_resched();
	}
}

/*
 * Find the region a segment lies in and take a reference on it, which
 * keeps it registered until qd_region_put(). Any context; no lock needed.
 */
int qd_region_resolve(struct qd_ctx *ctx, const struct qd_seg *seg,
		      struct qd_region **out)
{
	struct qd_region *region;
	int ret = -EFAULT;

	rcu_read_lock();
	region = xa_load(&ctx->regions, seg->region);
	if (region && qd_seg_in_region(seg->offset, seg->len, region->len) &&
	    atomic_inc_unless_negative(&region->users)) {
		*out = region;
		ret = 0;
	}
	rcu_read_unlock();
	return ret;
}

/* One more reference on a region the caller holds one on. Any context. */
void qd_region_hold(struct qd_region *region)
{
	atomic_inc(&region->users);
}

/* Any context. */
void qd_region_put(struct qd_region *region)
{
	atomic_dec(&region->users);
}

/*
 * seg lies in region from, of another context: find the same pages in a
 * region of ctx, by shared memory identity, and take a reference on it.
 * Returns 0 with the segment rewritten into *out and the region in
 * *out_region, or -EXDEV when ctx has not registered those pages. Any
 * context; no lock needed (the reference is taken before the region's
 * pages are looked at, so an unregistration cannot free them under us).
 */
int qd_region_translate(struct qd_ctx *ctx, const struct qd_region *from,
			const struct qd_seg *seg, struct qd_seg *out,
			struct qd_region **out_region)
{
	pgoff_t first = seg->offset >> PAGE_SHIFT, want, k;
	unsigned long n, i, id;
	struct qd_region *r;
	int ret = -EXDEV;

	if (!from->shm_mapping)
		return -EXDEV;
	n = DIV_ROUND_UP(offset_in_page(seg->offset) + seg->len, PAGE_SIZE);
	want = from->shm_index + first;
	rcu_read_lock();
	xa_for_each(&ctx->regions, id, r) {
		if (r->shm_mapping != from->shm_mapping || want < r->shm_index ||
		    want - r->shm_index + n > r->nr_pages)
			continue;
		if (!atomic_inc_unless_negative(&r->users))
			continue;
		k = want - r->shm_index;
		for (i = 0; i < n; i++)
			if (r->pages[k + i] != from->pages[first + i])
				break;
		if (i < n) {
			qd_region_put(r);
			continue;
		}
		out->region = r->id;
		out->offset = ((u64)k << PAGE_SHIFT) + offset_in_page(seg->offset);
		out->len = seg->len;
		out->resv = 0;
		*out_region = r;
		ret = 0;
		break;
	}
	rcu_read_unlock();
	return ret;
}

/*
 * A region of ctx over all of from's shared memory pages (from is held by
 * the caller): its id, and where from's byte 0 lies in it. -EXDEV if ctx
 * has none. Process context (QD_BIND_LOOKUP): the pages are compared one
 * by one, once per binding and context.
 */
int qd_region_find_shm(struct qd_ctx *ctx, struct qd_region *from,
		       u32 *id, u64 *offset)
{
	unsigned long i, rid;
	struct qd_region *r;
	pgoff_t k;
	int ret = -EXDEV;

	if (!from->shm_mapping)
		return -EXDEV;
	rcu_read_lock();
	xa_for_each(&ctx->regions, rid, r) {
		if (r->shm_mapping != from->shm_mapping ||
		    from->shm_index < r->shm_index ||
		    from->shm_index - r->shm_index + from->nr_pages >
		    r->nr_pages)
			continue;
		/* Held, so that an unregistration cannot free its pages. */
		if (!atomic_inc_unless_negative(&r->users))
			continue;
		k = from->shm_index - r->shm_index;
		for (i = 0; i < from->nr_pages; i++)
			if (r->pages[k + i] != from->pages[i])
				break;
		qd_region_put(r);
		if (i < from->nr_pages)
			continue;
		*id = r->id;
		*offset = (u64)k << PAGE_SHIFT;
		ret = 0;
		break;
	}
	rcu_read_unlock();
	return ret;
}
