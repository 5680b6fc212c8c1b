// SPDX-License-Identifier: GPL-2.0
/*
 * Storage queues: the object. QD_OP_OPEN (fileop.c) opens a regular file or
 * a block device here, as open(2) would, in the submitting task; pushes and
 * pops go to file_rw.c (kiocb paths) or file_bio.c (bios).
 *
 * Contexts: open, close and show run in process context; push, pop and sync
 * in the submitter's (process context); completions in any context
 * (bi_end_io, ki_complete: hardirq, softirq or a worker); release in any
 * context (the last reference may be a completing op's).
 */
#include <linux/blkdev.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "ctx.h"
#include "file.h"
#include "object.h"
#include "op.h"
#include "stats.h"

static int qd_file_push(struct qd_object *obj, struct qd_op *op)
{
	struct qd_file *f = to_qd_file(obj);

	if (!(f->file->f_mode & FMODE_WRITE))
		return -EBADF;
	return qd_file_rw(f, op, true);
}

static int qd_file_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_file *f = to_qd_file(obj);

	if (!(f->file->f_mode & FMODE_READ))
		return -EBADF;
	/* A storage pop reads into the buffer it brings. */
	if (!op->dst)
		return -EINVAL;
	return qd_file_rw(f, op, false);
}

static int qd_file_sync_op(struct qd_object *obj, struct qd_op *op)
{
	return qd_file_sync(to_qd_file(obj), op);
}

/*
 * Process context, ctx->lock held. Later pushes and pops are refused; what
 * is in flight completes with its result (a bio or kiocb cannot be called
 * back), and what waits for the worker with -ECANCELED (file_rw.c).
 */
static void qd_file_close(struct qd_object *obj)
{
	struct qd_file *f = to_qd_file(obj);

	spin_lock_irq(&f->lock);
	f->closed = true;
	spin_unlock_irq(&f->lock);
	atomic_dec(&obj->ctx->nr_files);
}

/*
 * Any context (an op completing in hardirq may drop the last reference).
 * All of it is safe there: fput() closes the file when the task returns to
 * user space (so a QD_IOC_CLOSE with nothing in flight has closed it when
 * it returns, as close(2)), or from a work item in interrupt context, a
 * kernel thread or an exiting task; the other puts only drop counts.
 */
static void qd_file_release(struct qd_object *obj)
{
	struct qd_file *f = to_qd_file(obj);

	fput(f->file);
	mem_cgroup_put(f->memcg);
	put_cred(f->cred);
	atomic_long_dec(&qd_stats.files);
	kfree_rcu(f, obj.rcu);
}

/*
 * Process context (debugfs), ctx->lock held. The memq columns (depth,
 * max_depth 0; pops and pushes: reads and writes in flight; pushed and
 * popped: bytes written and read), then key=value columns.
 */
static void qd_file_show(struct qd_object *obj, struct seq_file *m)
{
	struct qd_file *f = to_qd_file(obj);
	fmode_t mode = f->file->f_mode;
	loff_t rpos, wpos;

	spin_lock_irq(&f->lock);
	rpos = f->rpos;
	wpos = f->wpos;
	spin_unlock_irq(&f->lock);
	seq_printf(m, "%d %s 0 0 %d %d %lld %lld %s%s%s", obj->qd,
		   f->bdev ? "blk" : "file", atomic_read(&f->reads),
		   atomic_read(&f->writes),
		   (long long)atomic64_read(&f->bytes_written),
		   (long long)atomic64_read(&f->bytes_read),
		   mode & FMODE_WRITE ? "push" : "",
		   (mode & FMODE_WRITE) && (mode & FMODE_READ) ? "," : "",
		   mode & FMODE_READ ? "pop" : "");
	seq_printf(m, " rpos=%lld wpos=%lld direct=%d align=%u errors=%lld punted=%lld bios=%lld path=",
		   (long long)rpos, (long long)wpos, f->direct, f->align,
		   (long long)atomic64_read(&f->errors),
		   (long long)atomic64_read(&f->punted),
		   (long long)atomic64_read(&f->bios));
	seq_file_path(m, f->file, " \t\n\\");
	seq_putc(m, '\n');
}

static const struct qd_object_ops qd_file_ops = {
	.type = "file",
	.push = qd_file_push,
	.pop = qd_file_pop,
	.sync = qd_file_sync_op,
	.close = qd_file_close,
	.release = qd_file_release,
	.show = qd_file_show,
	.positional = true,
};

/* Flags QD_OP_OPEN takes (uapi/linux/qd.h); O_CLOEXEC means nothing here. */
#define QD_OPEN_FLAGS	(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | \
			 O_DIRECT | O_DSYNC | __O_SYNC | O_NOATIME | \
			 O_NOFOLLOW | O_CLOEXEC | O_LARGEFILE | O_NOCTTY)

static u32 qd_file_align(struct file *file, struct block_device *bdev)
{
	struct super_block *sb = file_inode(file)->i_sb;

	if (!(file->f_flags & O_DIRECT))
		return 1;
	if (bdev)
		return bdev_logical_block_size(bdev);
	if (sb->s_bdev)
		return bdev_logical_block_size(sb->s_bdev);
	return SECTOR_SIZE;
}

/*
 * QD_OP_OPEN, in the submitting task (process context, no lock held):
 * filp_open() resolves name in its root, working directory and mount
 * namespace and makes open(2)'s checks with its credentials. Returns the
 * new qd or -errno.
 */
int qd_file_open(struct qd_ctx *ctx, const char *name, int flags,
		 umode_t mode)
{
	struct block_device *bdev = NULL;
	struct file *file;
	struct inode *inode;
	struct qd_file *f;
	u32 qd;
	int ret;

	if (flags & ~QD_OPEN_FLAGS || (flags & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if (mode & ~S_IALLUGO)
		return -EINVAL;
	/* Bounded as a process's files are: by its RLIMIT_NOFILE. */
	if (atomic_inc_return(&ctx->nr_files) > rlimit(RLIMIT_NOFILE)) {
		ret = -EMFILE;
		goto err_count;
	}
	file = filp_open(name, (flags & ~O_CLOEXEC) | O_LARGEFILE,
			 flags & O_CREAT ? mode : 0);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_count;
	}
	inode = file_inode(file);
	if (S_ISDIR(inode->i_mode)) {
		ret = -EISDIR;
		goto err_fput;
	}
	if (S_ISBLK(inode->i_mode)) {
		bdev = I_BDEV(file->f_mapping->host);
	} else if (!S_ISREG(inode->i_mode)) {
		ret = -EINVAL;
		goto err_fput;
	}

	f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	if (!f) {
		ret = -ENOMEM;
		goto err_fput;
	}
	f->file = file;
	f->bdev = bdev;
	f->direct = flags & O_DIRECT;
	f->align = qd_file_align(file, bdev);
	f->memcg = get_mem_cgroup_from_mm(current->mm);
	f->cred = get_current_cred();
	spin_lock_init(&f->lock);

	ret = mutex_lock_killable(&ctx->lock);
	if (ret)
		goto err_free;
	ret = qd_object_reserve(ctx, &qd);
	if (ret) {
		mutex_unlock(&ctx->lock);
		goto err_free;
	}
	qd_object_install(ctx, qd, &f->obj, &qd_file_ops);
	mutex_unlock(&ctx->lock);
	atomic_long_inc(&qd_stats.files);
	return qd;

err_free:
	mem_cgroup_put(f->memcg);
	put_cred(f->cred);
	kfree(f);
err_fput:
	fput(file);
err_count:
	atomic_dec(&ctx->nr_files);
	return ret;
}

int qd_file_init(void)
{
	return qd_file_rw_init();
}

/* After the last context: every op has completed, every file was released. */
void qd_file_exit(void)
{
	qd_file_rw_exit();
}
