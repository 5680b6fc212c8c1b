// SPDX-License-Identifier: GPL-2.0
/*
 * qd: queue descriptors. The misc device /dev/qd; each open is a context.
 */
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/uaccess.h>

#include "ctx.h"
#include "debugfs.h"
#include "derive.h"
#include "file.h"
#include "memq.h"
#include "object.h"
#include "op.h"
#include "region.h"
#include "selftest.h"
#include "share.h"
#include "sock.h"
#include "sqpoll.h"
#include "stats.h"

static int qd_open(struct inode *inode, struct file *file)
{
	struct qd_ctx *ctx;

	if (!current->mm)
		return -EPERM;
	ctx = qd_ctx_create();
	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	file->private_data = ctx;
	return 0;
}

static int qd_release(struct inode *inode, struct file *file)
{
	qd_ctx_release(file->private_data);
	return 0;
}

static long qd_setup(struct qd_ctx *ctx, struct qd_params __user *arg)
{
	struct qd_sqpoll *sqp = NULL;
	struct qd_params p;
	long ret;

	if (copy_from_user(&p, arg, sizeof(p)))
		return -EFAULT;
	/* The poller's thread is made without ctx->lock (cgroup locks). */
	ret = qd_params_check(&p, true);
	if (ret)
		return ret;
	if (p.flags & QD_SETUP_SQPOLL) {
		sqp = qd_sqpoll_create(ctx, p.sq_idle_ms);
		if (IS_ERR(sqp))
			return PTR_ERR(sqp);
	}
	ret = -EINTR;
	if (!mutex_lock_killable(&ctx->lock)) {
		ret = qd_rings_setup(ctx, &p, sqp);
		mutex_unlock(&ctx->lock);
	}
	if (ret) {
		if (sqp)
			qd_sqpoll_stop(sqp);
		return ret;
	}
	if (sqp)
		qd_sqpoll_start(sqp);
	/*
	 * The rings stay even if the copy fails: a second QD_IOC_SETUP gets
	 * -EBUSY, so such a context is only good for closing.
	 */
	return copy_to_user(arg, &p, sizeof(p)) ? -EFAULT : 0;
}

static long qd_close_qd(struct qd_ctx *ctx, s32 __user *arg)
{
	s32 qd;
	long ret;

	if (get_user(qd, arg))
		return -EFAULT;
	if (mutex_lock_killable(&ctx->lock))
		return -EINTR;
	ret = qd_object_close(ctx, qd);
	mutex_unlock(&ctx->lock);
	return ret;
}

static long qd_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct qd_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;
	u32 id;

	if (!qd_ctx_owner(ctx))
		return -EPERM;

	switch (cmd) {
	case QD_IOC_ENTER:
		return qd_enter(ctx, uarg);
	case QD_IOC_SETUP:
		return qd_setup(ctx, uarg);
	case QD_IOC_REGISTER:
		return qd_region_register(ctx, uarg);
	case QD_IOC_UNREGISTER:
		if (get_user(id, (u32 __user *)uarg))
			return -EFAULT;
		return qd_region_unregister(ctx, id);
	case QD_IOC_QUEUE:
		return qd_memq_create(ctx, uarg);
	case QD_IOC_CLOSE:
		return qd_close_qd(ctx, uarg);
	case QD_IOC_RING:
		return qd_ring_add(ctx, uarg);
	case QD_IOC_QUEUE_EXPORT:
		return qd_queue_export(ctx, uarg);
	case QD_IOC_QUEUE_IMPORT:
		return qd_queue_import(ctx, uarg);
	case QD_IOC_QUEUE_BIND:
		return qd_memq_bind(ctx, uarg);
	case QD_IOC_DERIVE:
		return qd_derive_create(ctx, uarg);
	case QD_IOC_SOCKET:
	case QD_IOC_BIND:
	case QD_IOC_LISTEN:
	case QD_IOC_GETNAME:
	case QD_IOC_SETSOCKOPT:
	case QD_IOC_GETSOCKOPT:
		return qd_sock_ioctl(ctx, cmd, uarg);
	default:
		return -ENOTTY;
	}
}

static int qd_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct qd_ctx *ctx = file->private_data;

	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;

	if (!qd_ctx_owner(ctx))
		return -EPERM;
	if (off >= QD_OFF_QUEUES)
		return qd_memq_mmap(ctx, off, vma);
	return qd_rings_mmap(ctx, vma);
}

/*
 * Readable when completions are in a CQ ring (any of the context's) or
 * parked in an overflow list; parked ones are first moved into their ring
 * when it has room. Every post and park wakes ctx->wait. It exists from
 * open, so a poll or epoll registration made before QD_IOC_SETUP is woken
 * by the first completion. Only the owner may use
 * the context: any other process gets EPOLLERR, as it gets -EPERM from
 * every ioctl and mmap.
 */
static __poll_t qd_poll(struct file *file, poll_table *wait)
{
	struct qd_ctx *ctx = file->private_data;

	if (!qd_ctx_owner(ctx))
		return EPOLLERR;
	poll_wait(file, &ctx->wait, wait);
	qd_cq_flush_all(ctx);
	return qd_ctx_cq_pending(ctx) ? EPOLLIN | EPOLLRDNORM : 0;
}

static const struct file_operations qd_fops = {
	.owner = THIS_MODULE,
	.open = qd_open,
	.release = qd_release,
	.unlocked_ioctl = qd_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = qd_mmap,
	.poll = qd_poll,
	.llseek = no_llseek,
};

static struct miscdevice qd_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "qd",
	.fops = &qd_fops,
	.mode = 0666,
};

static int __init qd_init(void)
{
	int ret;

	ret = qd_selftest();
	if (ret)
		return ret;
	ret = qd_op_init();
	if (ret)
		return ret;
	ret = qd_ctx_init();
	if (ret)
		goto err_op;
	ret = qd_sock_init();
	if (ret)
		goto err_ctx;
	ret = qd_file_init();
	if (ret)
		goto err_sock;
	ret = qd_stats_init();
	if (ret)
		goto err_file;
	qd_debugfs_init();
	ret = misc_register(&qd_misc);
	if (ret)
		goto err_debugfs;
	return 0;

err_debugfs:
	qd_debugfs_exit();
	qd_stats_exit();
err_file:
	qd_file_exit();
err_sock:
	qd_sock_exit();
err_ctx:
	qd_ctx_exit();
err_op:
	qd_op_exit();
	return ret;
}

static void __exit qd_exit(void)
{
	misc_deregister(&qd_misc);
	qd_debugfs_exit();
	qd_stats_exit();
	qd_ctx_exit();		/* runs the last context frees */
	qd_sock_exit();		/* then the last socket frees they queued */
	qd_file_exit();		/* and the last file frees */
	qd_op_exit();
}

module_init(qd_init);
module_exit(qd_exit);
MODULE_DESCRIPTION("qd: queue descriptors over shared rings");
MODULE_LICENSE("GPL");
