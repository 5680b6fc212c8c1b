// SPDX-License-Identifier: GPL-2.0
/*
 * QD_OP_OPEN and QD_OP_SYNC: the storage operations. PUSH and POP on a
 * storage queue are queue.c's, dispatched through the object (file.c).
 *
 * OPEN runs in the submitter's context (QD_IOC_ENTER: process context,
 * the ring's sq_lock held): the path is copied once, then opened there,
 * with the task's root, working directory, mount namespace and
 * credentials, as open(2) would. The SQPOLL poller never gets one (it
 * stops at an OPEN SQE: submit.c), so that "the submitter" is always the
 * application's own task.
 */
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "file.h"
#include "object.h"
#include "op.h"
#include "opdef.h"

int qd_open_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	if (sqe->nsegs || sqe->qd || !sqe->addr)
		return -EINVAL;
	if (sqe->open_mode > U32_MAX)
		return -EINVAL;
	op->open.path = sqe->addr;
	op->open.flags = sqe->open_flags;
	op->open.mode = sqe->open_mode;
	return 0;
}

int qd_open_issue(struct qd_op *op)
{
	char *name;
	long len;
	int ret;

	name = kmalloc(PATH_MAX, GFP_KERNEL_ACCOUNT);
	if (!name)
		return -ENOMEM;
	len = strncpy_from_user(name, u64_to_user_ptr(op->open.path),
				PATH_MAX);
	if (len < 0)
		ret = len;
	else if (len == PATH_MAX)
		ret = -ENAMETOOLONG;
	else if (!len)
		ret = -ENOENT;		/* as open(2) of "" */
	else
		ret = qd_file_open(op->ctx, name, op->open.flags,
				   op->open.mode);
	kfree(name);
	if (ret < 0)
		return ret;
	qd_op_complete(op, ret);
	return 0;
}

int qd_sync_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	return sqe->nsegs || sqe->addr ? -EINVAL : 0;
}

int qd_sync_issue(struct qd_op *op)
{
	if (qd_op_target(op))
		return -EBADF;
	if (!op->obj->ops->sync)
		return -EINVAL;		/* as fsync(2) of a socket or a pipe */
	return op->obj->ops->sync(op->obj, op);
}
