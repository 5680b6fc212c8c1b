// SPDX-License-Identifier: GPL-2.0
/*
 * Storage queues: reads and writes. qd_file_rw() (the submitter, process
 * context) checks the op, takes its offset and picks a path:
 *  - bio (file_bio.c) for O_DIRECT on a block device with no cached pages;
 *  - else a kiocb on ->read_iter/->write_iter over the region's pages
 *    (ITER_BVEC: the buffer is the pinned pages themselves), first with
 *    IOCB_NOWAIT in the submitter: a page-cache hit or a direct I/O the
 *    file system can start without blocking is issued there; -EAGAIN moves
 *    the op to the worker, which issues it again without IOCB_NOWAIT with
 *    the opener's credentials and memory cgroup. Buffered writes (which
 *    block on the page cache and ext4 refuses without waiting) and
 *    O_APPEND writes go to the worker at once.
 * A kiocb completes from ki_complete (any context: a bio's end_io, a
 * workqueue) when ->*_iter returned -EIOCBQUEUED, else at once. Either way
 * qd_file_rw_done() posts the result. SYNC runs vfs_fsync() in the worker,
 * or sends a flush bio (QD_SYNC_FLUSH).
 */
#include <linux/blkdev.h>
#include <linux/bvec.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "ctx.h"
#include "file.h"
#include "op.h"
#include "region.h"
#include "stats.h"

static struct workqueue_struct *qd_file_wq;

/* Iterate segment i of elem in place: its region's bio_vecs. Any context. */
void qd_file_seg_iter(const struct qd_kelem *elem, u32 i, unsigned int dir,
		      struct iov_iter *iter)
{
	u64 off = elem->segs[i].offset;
	u32 len = elem->segs[i].len;
	size_t in_page = offset_in_page(off);
	unsigned long nr = DIV_ROUND_UP(in_page + len, PAGE_SIZE);

	iov_iter_bvec(iter, dir, elem->regions[i]->bvecs + (off >> PAGE_SHIFT),
		      nr, in_page + len);
	iov_iter_advance(iter, in_page);
}

/*
 * The iterator over all of elem: one segment in place, several through an
 * array of their pages (op->file.bvecs, freed when the op is done).
 * Process context.
 */
static int qd_file_iter(struct qd_op *op, const struct qd_kelem *elem,
			unsigned int dir, struct iov_iter *iter)
{
	unsigned long nr = 0, k = 0;
	struct bio_vec *bv;
	u32 i;

	if (elem->nsegs == 1) {
		qd_file_seg_iter(elem, 0, dir, iter);
		return 0;
	}
	for (i = 0; i < elem->nsegs; i++)
		nr += DIV_ROUND_UP(offset_in_page(elem->segs[i].offset) +
				   elem->segs[i].len, PAGE_SIZE);
	kfree(op->file.bvecs);
	bv = kmalloc_array(nr, sizeof(*bv), GFP_KERNEL_ACCOUNT);
	op->file.bvecs = bv;
	if (!bv)
		return -ENOMEM;
	for (i = 0; i < elem->nsegs; i++) {
		const struct qd_region *r = elem->regions[i];
		u64 off = elem->segs[i].offset;
		u32 left = elem->segs[i].len;

		while (left) {
			size_t in_page = offset_in_page(off);
			u32 n = min_t(u64, left, PAGE_SIZE - in_page);

			bvec_set_page(&bv[k++], r->pages[off >> PAGE_SHIFT], n,
				      in_page);
			off += n;
			left -= n;
		}
	}
	iov_iter_bvec(iter, dir, bv, nr, elem->bytes);
	return 0;
}

/* Process context (the worker, the submitter). */
static bool qd_file_closed(struct qd_file *f)
{
	bool closed;

	spin_lock_irq(&f->lock);
	closed = f->closed;
	spin_unlock_irq(&f->lock);
	return closed;
}

static bool qd_file_is_reg(const struct qd_file *f)
{
	return S_ISREG(file_inode(f->file)->i_mode);
}

/*
 * Freeze protection of a write to a regular file, held from issue to
 * completion as aio and io_uring hold it; lockdep is told the owner
 * changes (the completion may run anywhere).
 */
static void qd_file_start_write(struct qd_file *f)
{
	struct super_block *sb = file_inode(f->file)->i_sb;

	sb_start_write(sb);
	__sb_writers_release(sb, SB_FREEZE_WRITE);
}

static void qd_file_end_write(struct qd_file *f)
{
	struct super_block *sb = file_inode(f->file)->i_sb;

	__sb_writers_acquired(sb, SB_FREEZE_WRITE);
	sb_end_write(sb);
}

/* Any context: the op's final result. Frees what the op built, posts it. */
void qd_file_rw_done(struct qd_op *op, long res)
{
	struct qd_file *f = to_qd_file(op->obj);
	bool write = op->file.write;
	unsigned long flags;

	kfree(op->file.bvecs);
	op->file.bvecs = NULL;
	atomic_dec(write ? &f->writes : &f->reads);
	if (res < 0) {
		atomic64_inc(&f->errors);
		qd_stat_inc(file_errors);
	} else if (write) {
		atomic64_add(res, &f->bytes_written);
		qd_stat_add(file_bytes_written, res);
	} else {
		atomic64_add(res, &f->bytes_read);
		qd_stat_add(file_bytes_read, res);
	}
	/*
	 * It moved less than it took: give the rest back to the queue's
	 * offset if nothing was issued after it.
	 */
	if (op->file.queue_pos && res < (long)op->file.len) {
		loff_t *p = write ? &f->wpos : &f->rpos;

		spin_lock_irqsave(&f->lock, flags);
		if (*p == op->file.pos + op->file.len)
			*p = op->file.pos + max(res, 0L);
		spin_unlock_irqrestore(&f->lock, flags);
	}
	if (!write && res >= 0) {
		/* A pop: its buffer, trimmed to what it holds. */
		qd_elem_trim(op->dst, res);
		op->elem = op->dst;
		op->dst = NULL;
		op->copy = 1;
	}
	qd_op_complete(op, res);
}

static void qd_file_work(struct work_struct *work);
static void qd_file_punt(struct qd_file *f, struct qd_op *op,
			 work_func_t fn);

/*
 * Any context. With IOCB_NOWAIT the refusal can also come late: a
 * REQ_NOWAIT bio the block layer would have to split, or that finds no
 * tag, ends BLK_STS_AGAIN. Then the worker issues it again (as io_uring
 * reissues): nothing moved that matters (a read), or the same bytes go to
 * the same place (a write; never O_APPEND, which is not tried NOWAIT).
 */
static void qd_file_kiocb_complete(struct kiocb *kiocb, long res)
{
	struct qd_op *op = container_of(kiocb, struct qd_op, file.iocb);
	struct qd_file *f = to_qd_file(op->obj);

	if (op->file.write && qd_file_is_reg(f))
		qd_file_end_write(f);
	if (res == -EAGAIN && kiocb->ki_flags & IOCB_NOWAIT) {
		qd_file_punt(f, op, qd_file_work);
		return;
	}
	qd_file_rw_done(op, res);
}

/*
 * Issue op's kiocb. Returns 0 when it is issued or done (posted), -EAGAIN
 * when it must go to the worker (nowait only), or -errno before it was
 * issued. Process context: the submitter (nowait) or the worker.
 */
static int qd_file_kiocb_issue(struct qd_file *f, struct qd_op *op,
			       bool nowait)
{
	struct kiocb *kiocb = &op->file.iocb;
	bool write = op->file.write;
	struct iov_iter iter;
	ssize_t ret;

	ret = qd_file_iter(op, write ? op->elem : op->dst, write ? WRITE : READ,
			   &iter);
	if (ret)
		return ret;
	iov_iter_truncate(&iter, op->file.max);
	init_sync_kiocb(kiocb, f->file);
	kiocb->ki_pos = op->file.pos;
	kiocb->ki_complete = qd_file_kiocb_complete;
	if (nowait)
		kiocb->ki_flags |= IOCB_NOWAIT;
	if (write) {
		kiocb->ki_flags |= IOCB_WRITE;
		if (qd_file_is_reg(f))
			qd_file_start_write(f);
		ret = call_write_iter(f->file, kiocb, &iter);
	} else {
		ret = call_read_iter(f->file, kiocb, &iter);
	}
	if (ret == -EIOCBQUEUED)
		return 0;
	if (nowait && (ret == -EAGAIN || ret == -EOPNOTSUPP ||
		       (!write && ret >= 0 && ret < op->file.max &&
			op->file.pos + ret < i_size_read(f->file->f_mapping->host)))) {
		/*
		 * It would block, or read only part of what is there (the
		 * rest is not cached): the worker does it all again.
		 */
		if (write && qd_file_is_reg(f))
			qd_file_end_write(f);
		return -EAGAIN;
	}
	if (write && qd_file_is_reg(f))
		qd_file_end_write(f);
	qd_file_rw_done(op, ret);
	return 0;
}

/* The worker: the op again, allowed to block, as the opener. */
static void qd_file_work(struct work_struct *work)
{
	struct qd_op *op = container_of(work, struct qd_op, file.work);
	struct qd_file *f = to_qd_file(op->obj);
	struct mem_cgroup *old_memcg;
	const struct cred *old_cred;
	int ret;

	if (qd_file_closed(f)) {
		qd_file_rw_done(op, -ECANCELED);
		return;
	}
	old_cred = override_creds(f->cred);
	old_memcg = set_active_memcg(f->memcg);
	ret = qd_file_kiocb_issue(f, op, false);
	set_active_memcg(old_memcg);
	revert_creds(old_cred);
	if (ret)
		qd_file_rw_done(op, ret);
}

/* Any context: queue_work() and per-CPU counters are irq-safe. */
static void qd_file_punt(struct qd_file *f, struct qd_op *op,
			 work_func_t fn)
{
	atomic64_inc(&f->punted);
	qd_stat_inc(file_punted);
	INIT_WORK(&op->file.work, fn);
	queue_work(qd_file_wq, &op->file.work);
}

/*
 * A write past the submitter's RLIMIT_FSIZE fails or is cut as write(2)
 * would (SIGXFSZ included). Checked here, in the submitter: the worker
 * has no such limit. Returns the bytes allowed or -EFBIG.
 */
static long qd_file_fsize(struct qd_file *f, loff_t pos, u64 len)
{
	unsigned long limit = rlimit(RLIMIT_FSIZE);

	if (limit == RLIM_INFINITY || !qd_file_is_reg(f) ||
	    (current->flags & PF_KTHREAD))
		return len;
	if (f->file->f_flags & O_APPEND)
		pos = i_size_read(file_inode(f->file));
	if (pos >= limit) {
		send_sig(SIGXFSZ, current, 0);
		return -EFBIG;
	}
	return min_t(u64, len, limit - pos);
}

static bool qd_file_aligned(const struct qd_file *f,
			    const struct qd_kelem *elem, loff_t pos)
{
	u64 bits = pos;
	u32 i;

	for (i = 0; i < elem->nsegs; i++)
		bits |= elem->segs[i].offset | elem->segs[i].len;
	return !(bits & (f->align - 1));
}

/*
 * PUSH (write) or POP (read) on a storage queue: the submitter, process
 * context. Owns the op on 0 (it completes from the path's completion).
 */
int qd_file_rw(struct qd_file *f, struct qd_op *op, bool write)
{
	const struct qd_kelem *elem = write ? op->elem : op->dst;
	u64 len = elem->bytes;
	long allowed;
	loff_t pos;
	int ret;

	if (len > MAX_RW_COUNT)
		return -EINVAL;
	/* QD_POP_AT is the same bit as QD_PUSH_AT. */
	if (op->op_flags & QD_PUSH_AT) {
		pos = op->file.pos;
		if (pos < 0 || len > LLONG_MAX - pos)
			return -EINVAL;
	}
	spin_lock_irq(&f->lock);
	if (f->closed) {
		spin_unlock_irq(&f->lock);
		return -EBADF;
	}
	if (!(op->op_flags & QD_PUSH_AT)) {
		loff_t *p = write ? &f->wpos : &f->rpos;

		pos = *p;
		*p += len;
		op->file.queue_pos = true;
	}
	spin_unlock_irq(&f->lock);
	op->file.pos = pos;
	op->file.len = len;
	op->file.max = len;
	op->file.write = write;
	atomic_inc(write ? &f->writes : &f->reads);

	/* A block device that went away: its size is 0 now, but say why. */
	if (f->bdev && !disk_live(f->bdev->bd_disk)) {
		ret = -ENODEV;
		goto done;
	}
	/*
	 * A read at or past the end gives 0 whatever its alignment, as
	 * read(2) does (a short O_DIRECT read leaves the offset unaligned).
	 */
	if (!write && pos >= i_size_read(f->file->f_mapping->host)) {
		ret = 0;
		goto done;
	}
	if (f->direct && !qd_file_aligned(f, elem, pos)) {
		ret = -EINVAL;
		goto done;
	}
	if (write) {
		allowed = qd_file_fsize(f, pos, len);
		if (allowed < 0) {
			ret = allowed;
			goto done;
		}
		op->file.max = allowed;
	}
	if (f->bdev && f->direct && !f->file->f_mapping->nrpages)
		return qd_file_bio_rw(f, op);
	if (write && (!f->direct || f->file->f_flags & O_APPEND))
		ret = -EAGAIN;	/* would block: straight to the worker */
	else if (!(f->file->f_mode & FMODE_NOWAIT))
		ret = -EAGAIN;
	else
		ret = qd_file_kiocb_issue(f, op, true);
	if (ret == -EAGAIN) {
		qd_file_punt(f, op, qd_file_work);
		return 0;
	}
	if (!ret)
		return 0;
done:
	qd_file_rw_done(op, ret);
	return 0;
}

/* The worker: fsync(2) or fdatasync(2), as the opener. */
static void qd_file_sync_work(struct work_struct *work)
{
	struct qd_op *op = container_of(work, struct qd_op, file.work);
	struct qd_file *f = to_qd_file(op->obj);
	const struct cred *old_cred;
	int ret;

	old_cred = override_creds(f->cred);
	ret = vfs_fsync(f->file, !!(op->op_flags & QD_SYNC_DATASYNC));
	revert_creds(old_cred);
	if (ret < 0) {
		atomic64_inc(&f->errors);
		qd_stat_inc(file_errors);
	}
	qd_op_complete(op, ret);
}

/* QD_OP_SYNC: the submitter, process context; owns the op on 0. */
int qd_file_sync(struct qd_file *f, struct qd_op *op)
{
	if (qd_file_closed(f))
		return -EBADF;
	if (op->op_flags & QD_SYNC_FLUSH) {
		if (!f->bdev || op->op_flags & QD_SYNC_DATASYNC)
			return -EINVAL;
		return qd_file_bio_flush(f, op);
	}
	qd_file_punt(f, op, qd_file_sync_work);
	return 0;
}

int qd_file_rw_init(void)
{
	/*
	 * Unbound: a blocked write or fsync must not hold up the others.
	 * Bounded anyway by every context's max_inflight.
	 */
	qd_file_wq = alloc_workqueue("qd_file", WQ_UNBOUND, 0);
	return qd_file_wq ? 0 : -ENOMEM;
}

void qd_file_rw_exit(void)
{
	destroy_workqueue(qd_file_wq);
}
