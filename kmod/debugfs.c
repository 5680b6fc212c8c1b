// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs qd/<pid>-<id>/{info,queues,regions}: one directory per context.
 * debugfs proxies the file operations and waits for readers on removal,
 * so a reader never sees a freed context.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "ctx.h"
#include "debugfs.h"
#include "object.h"
#include "region.h"

static struct dentry *qd_debugfs_root;

static int info_show(struct seq_file *m, void *v)
{
	struct qd_ctx *ctx = m->private;
	unsigned long nr_qds = 0, nr_regions = 0, i;
	struct qd_region *region;
	struct qd_object *obj;
	u32 sq_tail = 0, cq_head = 0;

	if (mutex_lock_killable(&ctx->lock))
		return -EINTR;
	xa_for_each(&ctx->qds, i, obj)
		nr_qds++;
	xa_for_each(&ctx->regions, i, region)
		nr_regions++;
	if (ctx->rings_ready) {
		sq_tail = READ_ONCE(ctx->sq.hdr->tail);
		cq_head = READ_ONCE(ctx->cq.hdr->head);
	}
	seq_printf(m, "pid %d\ncomm %s\n", ctx->pid, ctx->comm);
	seq_printf(m, "sq_entries %u\nsq_head %u\nsq_tail %u\n",
		   ctx->sq.entries, ctx->sq.head, sq_tail);
	seq_printf(m, "cq_entries %u\ncq_head %u\ncq_tail %u\n",
		   ctx->cq.entries, cq_head, READ_ONCE(ctx->cq.tail));
	seq_printf(m, "overflow %u\n", READ_ONCE(ctx->cq.nr_overflow));
	seq_printf(m, "inflight %d\n", atomic_read(&ctx->nr_ops));
	seq_printf(m, "queued %d\nmax_queued %u\n", atomic_read(&ctx->nr_queued),
		   ctx->max_queued);
	seq_printf(m, "enters %lld\n", atomic64_read(&ctx->enters));
	seq_printf(m, "regions %lu\nqueues %lu\n", nr_regions, nr_qds);
	seq_printf(m, "pinned_pages %ld\n", atomic_long_read(&ctx->pinned_pages));
	mutex_unlock(&ctx->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(info);

static int queues_show(struct seq_file *m, void *v)
{
	struct qd_ctx *ctx = m->private;
	struct qd_object *obj;
	unsigned long qd;

	seq_puts(m, "qd type depth max_depth pending_pops pending_pushes pushed popped\n");
	if (mutex_lock_killable(&ctx->lock))
		return -EINTR;
	xa_for_each(&ctx->qds, qd, obj)
		obj->ops->show(obj, m);
	mutex_unlock(&ctx->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(queues);

static int regions_show(struct seq_file *m, void *v)
{
	struct qd_ctx *ctx = m->private;
	struct qd_region *region;
	unsigned long id;

	seq_puts(m, "id addr len pages users\n");
	if (mutex_lock_killable(&ctx->lock))
		return -EINTR;
	xa_for_each(&ctx->regions, id, region)
		seq_printf(m, "%u 0x%llx %llu %lu %d\n", region->id,
			   region->addr, region->len, region->nr_pages,
			   atomic_read(&region->users));
	mutex_unlock(&ctx->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(regions);

void qd_debugfs_ctx_add(struct qd_ctx *ctx)
{
	char name[32];

	if (!qd_debugfs_root)
		return;
	snprintf(name, sizeof(name), "%d-%u", ctx->pid, ctx->id);
	ctx->debugfs = debugfs_create_dir(name, qd_debugfs_root);
	debugfs_create_file("info", 0444, ctx->debugfs, ctx, &info_fops);
	debugfs_create_file("queues", 0444, ctx->debugfs, ctx, &queues_fops);
	debugfs_create_file("regions", 0444, ctx->debugfs, ctx, &regions_fops);
}

void qd_debugfs_ctx_remove(struct qd_ctx *ctx)
{
	debugfs_remove_recursive(ctx->debugfs);
	ctx->debugfs = NULL;
}

void qd_debugfs_init(void)
{
	qd_debugfs_root = debugfs_create_dir("qd", NULL);
}

void qd_debugfs_exit(void)
{
	debugfs_remove_recursive(qd_debugfs_root);
}
