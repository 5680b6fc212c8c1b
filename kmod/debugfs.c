// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs qd/<pid>-<id>/{info,queues,regions,rings}: one directory per context.
 * debugfs proxies the file operations and waits for readers on removal,
 * so a reader never sees a freed context.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "ctx.h"
#include "debugfs.h"
#include "object.h"
#include "region.h"
#include "sqpoll.h"

static struct dentry *qd_debugfs_root;

static int info_show(struct seq_file *m, void *v)
{
	struct qd_ctx *ctx = m->private;
	unsigned long nr_qds = 0, nr_regions = 0, i;
	struct qd_region *region;
	struct qd_object *obj;
	u32 sq_tail = 0, cq_head = 0, nr_rings, nr_overflow, r;
	struct qd_ring *r0;

	if (mutex_lock_killable(&ctx->lock))
		return -EINTR;
	xa_for_each(&ctx->qds, i, obj)
		nr_qds++;
	xa_for_each(&ctx->regions, i, region)
		nr_regions++;
	nr_rings = qd_ctx_nr_rings(ctx);
	seq_printf(m, "pid %d\ncomm %s\n", ctx->pid, ctx->comm);
	/* Ring 0 as before rings multiplied; all rings in the "rings" file. */
	if (nr_rings) {
		r0 = ctx->rings[0];
		sq_tail = READ_ONCE(r0->sq.hdr->tail);
		cq_head = READ_ONCE(r0->cq.hdr->head);
		seq_printf(m, "sq_entries %u\nsq_head %u\nsq_tail %u\n",
			   r0->sq.entries, r0->sq.head, sq_tail);
		seq_printf(m, "cq_entries %u\ncq_head %u\ncq_tail %u\n",
			   r0->cq.entries, cq_head, READ_ONCE(r0->cq.tail));
	} else {
		seq_puts(m, "sq_entries 0\nsq_head 0\nsq_tail 0\n");
		seq_puts(m, "cq_entries 0\ncq_head 0\ncq_tail 0\n");
	}
	for (r = 0, nr_overflow = 0; r < nr_rings; r++)
		nr_overflow += READ_ONCE(ctx->rings[r]->cq.nr_overflow);
	seq_printf(m, "overflow %u\n", nr_overflow);
	seq_printf(m, "rings %u\n", nr_rings);
	seq_printf(m, "inflight %d\n", atomic_read(&ctx->nr_ops));
	seq_printf(m, "queued %d\nmax_queued %u\n", atomic_read(&ctx->nr_queued),
		   ctx->max_queued);
	seq_printf(m, "enters %lld\n", atomic64_read(&ctx->enters));
	seq_printf(m, "regions %lu\nqueues %lu\n", nr_regions, nr_qds);
	seq_printf(m, "pinned_pages %ld\n", atomic_long_read(&ctx->pinned_pages));
	qd_pools_show(ctx, m);
	/* Set before nr_rings, which was read above; stopped after removal. */
	if (nr_rings && ctx->sqp)
		qd_sqpoll_show(m, ctx->sqp);
	mutex_unlock(&ctx->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(info);

static int rings_show(struct seq_file *m, void *v)
{
	struct qd_ctx *ctx = m->private;
	u32 i, n = qd_ctx_nr_rings(ctx);
	struct qd_ring *r;

	seq_puts(m, "ring sq_entries sq_head sq_tail cq_entries cq_head cq_tail overflow\n");
	for (i = 0; i < n; i++) {
		r = ctx->rings[i];
		seq_printf(m, "%u %u %u %u %u %u %u %u\n", r->id, r->sq.entries,
			   READ_ONCE(r->sq.head), READ_ONCE(r->sq.hdr->tail),
			   r->cq.entries, READ_ONCE(r->cq.hdr->head),
			   READ_ONCE(r->cq.tail), READ_ONCE(r->cq.nr_overflow));
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(rings);

static int queues_show(struct seq_file *m, void *v)
{
	struct qd_ctx *ctx = m->private;
	struct qd_object *obj;
	unsigned long qd;

	seq_puts(m, "qd type depth max_depth pending_pops pending_pushes pushed popped rights\n");
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
	debugfs_create_file("rings", 0444, ctx->debugfs, ctx, &rings_fops);
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
