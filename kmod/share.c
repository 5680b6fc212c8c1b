// SPDX-License-Identifier: GPL-2.0
/*
 * Sharing memory queues between contexts (processes).
 *
 * QD_IOC_QUEUE_EXPORT wraps a queue in a file ("[qd-queue]", an anonymous
 * inode) that holds a reference on the queue and the rights it grants; the
 * exporter passes it as it likes (SCM_RIGHTS over a Unix socket, fork,
 * pidfd_getfd). The fd is the capability: QD_IOC_QUEUE_IMPORT of it makes a
 * proxy object in the importer's context, a qd that forwards push and pop
 * to the queue after checking its rights (-EPERM). Operations keep their
 * own context, so their completions go to the importer's rings; elements
 * keep their pusher's (see op.c, qd_elem_translate()).
 *
 * Lifetime: the file and each proxy hold a reference on the queue object;
 * each proxy is also a handle (memq.c), closed with its qd or its context.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "ctx.h"
#include "memq.h"
#include "object.h"
#include "op.h"
#include "share.h"

struct qd_share {
	struct qd_object *queue;	/* referenced */
	u32 rights;
};

struct qd_proxy {
	struct qd_object obj;
	struct qd_object *queue;	/* referenced */
	u32 rights;
};

static struct qd_proxy *to_proxy(struct qd_object *obj)
{
	return container_of(obj, struct qd_proxy, obj);
}

static int qd_share_release(struct inode *inode, struct file *file)
{
	struct qd_share *share = file->private_data;

	qd_object_put(share->queue);
	kfree(share);
	return 0;
}

static const struct file_operations qd_share_fops = {
	.owner = THIS_MODULE,
	.release = qd_share_release,
	.llseek = no_llseek,
};

static int qd_proxy_push(struct qd_object *obj, struct qd_op *op)
{
	struct qd_proxy *p = to_proxy(obj);

	if (!(p->rights & QD_SHARE_PUSH))
		return -EPERM;
	return p->queue->ops->push(p->queue, op);
}

static int qd_proxy_prep_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_proxy *p = to_proxy(obj);

	if (!(p->rights & QD_SHARE_POP))
		return -EPERM;
	if (!p->queue->ops->prep_pop)
		return 0;
	return p->queue->ops->prep_pop(p->queue, op);
}

static int qd_proxy_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_proxy *p = to_proxy(obj);

	if (!(p->rights & QD_SHARE_POP))
		return -EPERM;
	return p->queue->ops->pop(p->queue, op);
}

/* Anyone holding the queue may ask the kernel to look at its ring. */
static int qd_proxy_wake(struct qd_object *obj)
{
	struct qd_proxy *p = to_proxy(obj);

	return p->queue->ops->wake ? p->queue->ops->wake(p->queue) : -EINVAL;
}

static int qd_proxy_cancel(struct qd_object *obj, struct qd_ctx *ctx,
			   u64 user_data)
{
	struct qd_proxy *p = to_proxy(obj);

	return p->queue->ops->cancel(p->queue, ctx, user_data);
}

static void qd_proxy_close(struct qd_object *obj)
{
	struct qd_proxy *p = to_proxy(obj);

	qd_memq_detach_ctx(p->queue, obj->ctx);
}

/* Any context: the last reference may be an op's. */
static void qd_proxy_release(struct qd_object *obj)
{
	struct qd_proxy *p = to_proxy(obj);

	qd_object_put(p->queue);
	kfree_rcu(p, obj.rcu);
}

static void qd_proxy_show(struct qd_object *obj, struct seq_file *m)
{
	struct qd_proxy *p = to_proxy(obj);

	/* The queue's columns, under this context's qd, and the rights. */
	seq_printf(m, "%d proxy ", obj->qd);
	qd_memq_show_cols(p->queue, m);
	seq_printf(m, " %s\n", p->rights == QD_SHARE_ALL ? "push,pop" :
		   p->rights & QD_SHARE_PUSH ? "push" : "pop");
}

static const struct qd_object_ops qd_proxy_ops = {
	.type = "proxy",
	.push = qd_proxy_push,
	.pop = qd_proxy_pop,
	.prep_pop = qd_proxy_prep_pop,
	.wake = qd_proxy_wake,
	.cancel = qd_proxy_cancel,
	.close = qd_proxy_close,
	.release = qd_proxy_release,
	.show = qd_proxy_show,
};

/* The rights obj grants to its context: all for a queue, or a proxy's. */
static u32 qd_object_rights(struct qd_object *obj, struct qd_object **queue)
{
	if (obj->ops == &qd_proxy_ops) {
		*queue = to_proxy(obj)->queue;
		return to_proxy(obj)->rights;
	}
	*queue = obj;
	return QD_SHARE_ALL;
}

/*
 * The queue whose ring obj may map and use in user space: obj itself, or
 * an import's queue when the import has both rights (a ring mapped
 * writable lets its holder push and pop, whatever the rights say), else
 * ERR_PTR(-EPERM). Callers check it is a mapped queue.
 */
struct qd_object *qd_share_mapped_queue(struct qd_object *obj)
{
	if (obj->ops != &qd_proxy_ops)
		return obj;
	if (to_proxy(obj)->rights != QD_SHARE_ALL)
		return ERR_PTR(-EPERM);
	return to_proxy(obj)->queue;
}

int qd_queue_export(struct qd_ctx *ctx, struct qd_queue_export __user *arg)
{
	struct qd_queue_export e;
	struct qd_object *obj, *queue;
	struct qd_share *share;
	int i, fd, ret;

	if (copy_from_user(&e, arg, sizeof(e)))
		return -EFAULT;
	if (!e.rights || e.rights & ~QD_SHARE_ALL || e.fd)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(e.resv); i++)
		if (e.resv[i])
			return -EINVAL;
	obj = qd_object_get(ctx, e.qd);
	if (!obj)
		return -EBADF;
	/* Re-exporting an import grants no more than it has. */
	ret = -EPERM;
	if (e.rights & ~qd_object_rights(obj, &queue))
		goto out;
	ret = qd_memq_shareable(queue);
	if (ret)
		goto out;
	ret = -ENOMEM;
	share = kzalloc(sizeof(*share), GFP_KERNEL_ACCOUNT);
	if (!share)
		goto out;
	refcount_inc(&queue->refs);
	share->queue = queue;
	share->rights = e.rights;
	fd = anon_inode_getfd("[qd-queue]", &qd_share_fops, share,
			      O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		qd_object_put(queue);
		kfree(share);
		ret = fd;
		goto out;
	}
	/* The fd is installed: a failed copy leaves it to the caller. */
	ret = put_user(fd, &arg->fd) ? -EFAULT : 0;
out:
	qd_object_put(obj);
	return ret;
}

int qd_queue_import(struct qd_ctx *ctx, struct qd_queue_import __user *arg)
{
	struct qd_queue_import im;
	struct qd_proxy *p;
	struct qd_share *share;
	struct fd f;
	u32 qd;
	int i, ret;

	if (copy_from_user(&im, arg, sizeof(im)))
		return -EFAULT;
	if (im.qd || im.rights || im.map_bytes || im.map_off)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(im.resv); i++)
		if (im.resv[i])
			return -EINVAL;
	f = fdget(im.fd);
	if (!f.file)
		return -EBADF;
	ret = -EINVAL;
	if (f.file->f_op != &qd_share_fops)
		goto out_fd;
	share = f.file->private_data;

	ret = -ENOMEM;
	p = kzalloc(sizeof(*p), GFP_KERNEL_ACCOUNT);
	if (!p)
		goto out_fd;
	ret = qd_memq_attach(share->queue);
	if (ret)
		goto out_free;
	refcount_inc(&share->queue->refs);
	p->queue = share->queue;
	p->rights = share->rights;

	/* Reserve a qd, report it (may fault), then install the proxy. */
	ret = qd_object_claim(ctx, &qd);
	if (ret)
		goto out_detach;
	im.qd = qd;
	im.rights = p->rights;
	if (p->rights == QD_SHARE_ALL) {
		im.map_bytes = qd_memq_map_bytes(p->queue);
		im.map_off = im.map_bytes ? QD_OFF_QUEUE(qd) : 0;
	}
	if (copy_to_user(arg, &im, sizeof(im))) {
		ret = -EFAULT;
		qd_object_unclaim(ctx, qd);
		goto out_detach;
	}
	mutex_lock(&ctx->lock);
	qd_object_install(ctx, qd, &p->obj, &qd_proxy_ops);
	mutex_unlock(&ctx->lock);
	fdput(f);
	return 0;

out_detach:
	qd_memq_unattach(p->queue);
	qd_object_put(p->queue);
out_free:
	kfree(p);
out_fd:
	fdput(f);
	return ret;
}
