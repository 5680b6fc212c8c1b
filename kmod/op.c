// SPDX-License-Identifier: GPL-2.0
/* Operations and elements: allocation, completion, release. */
#include <linux/highmem.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "common/qd_sga.h"

#include "ctx.h"
#include "object.h"
#include "op.h"
#include "opdef.h"
#include "region.h"
#include "stats.h"
#include "user.h"

static struct kmem_cache *qd_op_cache;
static struct kmem_cache *qd_elem_cache;

/* Process context (submission). */
struct qd_op *qd_op_alloc(struct qd_ring *ring)
{
	struct qd_ctx *ctx = ring->ctx;
	struct qd_op *op;

	op = kmem_cache_zalloc(qd_op_cache, GFP_KERNEL_ACCOUNT);
	if (!op)
		return NULL;
	INIT_LIST_HEAD(&op->node);
	qd_ctx_get(ctx);
	op->ctx = ctx;
	op->ring = ring;
	atomic_inc(&ctx->nr_ops);
	qd_stat_inc(inflight);
	return op;
}

/* Any context. */
void qd_op_free(struct qd_op *op)
{
	struct qd_ctx *ctx = op->ctx;

	WARN_ON_ONCE(op->wait != QD_OP_RUNNING);
	if (op->elem)
		qd_elem_free(op->elem);
	if (op->dst)
		qd_elem_free(op->dst);
	if (op->obj)
		qd_object_put(op->obj);
	kmem_cache_free(qd_op_cache, op);
	qd_stat_dec(inflight);
	atomic_dec(&ctx->nr_ops);
	qd_ctx_put(ctx);
}

/* Finish op with res: post its CQE (or park it). Any context. */
void qd_op_complete(struct qd_op *op, s64 res)
{
	op->res = res;
	if (op->opcode < QD_OP_COUNT) {
		qd_stat_inc(op[op->opcode].completed);
		if (res < 0)
			qd_stat_inc(op[op->opcode].failed);
	}
	qd_cq_post(op);
}

/*
 * A multishot pop got elem: post it with QD_CQE_F_MORE; op stays pending.
 * Called under the lock that keeps op in its queue. Any context.
 */
void qd_op_deliver(struct qd_op *op, struct qd_kelem *elem)
{
	qd_cq_post_elem(op, elem);
}

/*
 * The context's budget of max_queued (and the user's of max_user_queued)
 * counts elements held and pops waiting for one: what a context can make
 * the kernel hold without bound otherwise. Any context.
 */
static bool qd_charge(struct qd_ctx *ctx)
{
	if (atomic_inc_return(&ctx->nr_queued) > ctx->max_queued)
		goto err;
	if (!qd_user_charge_elem(ctx->quser))
		goto err;
	return true;
err:
	atomic_dec(&ctx->nr_queued);
	return false;
}

static void qd_uncharge(struct qd_ctx *ctx)
{
	qd_user_uncharge_elem(ctx->quser);
	atomic_dec(&ctx->nr_queued);
}

/*
 * A backend parks op until an operation of the other kind arrives. Waiting
 * ops do not count against max_inflight (submit.c): a waiting push is what
 * a pop completes and vice versa, so counting either would let one kind
 * starve the other, and a FIFO SQ would block behind it. They are bounded
 * by max_queued instead: a waiting push holds an element, a waiting pop is
 * charged as one (unless it holds one already: a pop of a mapped queue
 * brings the element it fills, a pop with a buffer holds that). Socket
 * ops waiting for the network (sock*.c) are waiting ops too. Returns 0,
 * or -ENOBUFS when a pop cannot be charged. Any context.
 */
int qd_op_wait(struct qd_op *op, enum qd_op_wait why)
{
	struct qd_ctx *ctx = op->ctx;

	if (why == QD_OP_WAIT_POP) {
		/* A pop that brought its buffer holds an element already. */
		if (!op->elem && !op->dst) {
			if (!qd_charge(ctx))
				return -ENOBUFS;
			op->wait_charged = 1;
		}
		atomic_inc(&ctx->nr_wait_pop);
	} else {
		atomic_inc(&ctx->nr_wait_push);
	}
	op->wait = why;
	return 0;
}

/* The backend takes op out of its pending list. Any context. */
void qd_op_unwait(struct qd_op *op)
{
	struct qd_ctx *ctx = op->ctx;

	if (op->wait == QD_OP_WAIT_POP) {
		atomic_dec(&ctx->nr_wait_pop);
		if (op->wait_charged)
			qd_uncharge(ctx);
		op->wait_charged = 0;
	} else if (op->wait == QD_OP_WAIT_PUSH) {
		atomic_dec(&ctx->nr_wait_push);
	}
	op->wait = QD_OP_RUNNING;
}

/*
 * Process context (push prep). Fails with *err = -ENOBUFS past the
 * context's max_queued or the user's max_user_queued, -ENOMEM otherwise.
 */
struct qd_kelem *qd_elem_alloc(struct qd_ctx *ctx, int *err)
{
	return qd_elem_alloc_gfp(ctx, GFP_KERNEL_ACCOUNT, err);
}

/* The same with other allocation flags (GFP_ATOMIC: any context). */
struct qd_kelem *qd_elem_alloc_gfp(struct qd_ctx *ctx, gfp_t gfp, int *err)
{
	struct qd_kelem *elem;

	*err = -ENOBUFS;
	if (!qd_charge(ctx))
		return NULL;
	elem = kmem_cache_alloc(qd_elem_cache, gfp);
	if (!elem) {
		qd_uncharge(ctx);
		*err = -ENOMEM;
		return NULL;
	}
	INIT_LIST_HEAD(&elem->node);
	/*
	 * The element names the context's regions and is charged to it: it
	 * holds the context until freed, even in another context's queue.
	 */
	qd_ctx_get(ctx);
	elem->ctx = ctx;
	elem->nsegs = 0;
	elem->whole = false;
	elem->cqe_flags = 0;
	elem->bytes = 0;
	return elem;
}

/* Any context. Drops the element's region references and its charge. */
void qd_elem_free(struct qd_kelem *elem)
{
	struct qd_ctx *ctx = elem->ctx;
	u32 i;

	for (i = 0; i < elem->nsegs; i++)
		qd_region_put(elem->regions[i]);
	kmem_cache_free(qd_elem_cache, elem);
	qd_uncharge(ctx);
	qd_ctx_put(ctx);
}

/*
 * elem, pushed in another context, goes to a pop of ctx: rewrite its
 * segments into ctx's regions backed by the same shared pages (no copy).
 * All or nothing: -EXDEV leaves elem as it was. Any context.
 */
int qd_elem_translate(struct qd_kelem *elem, struct qd_ctx *ctx)
{
	struct qd_region *regions[QD_SGA_MAX];
	struct qd_seg segs[QD_SGA_MAX];
	u32 i, n;
	int ret = 0;

	for (n = 0; n < elem->nsegs; n++) {
		ret = qd_region_translate(ctx, elem->regions[n],
					  &elem->segs[n], &segs[n],
					  &regions[n]);
		if (ret)
			break;
	}
	if (ret) {
		for (i = 0; i < n; i++)
			qd_region_put(regions[i]);
		return ret;
	}
	for (i = 0; i < n; i++) {
		qd_region_put(elem->regions[i]);
		elem->regions[i] = regions[i];
		elem->segs[i] = segs[i];
	}
	return 0;
}

int qd_op_init(void)
{
	qd_op_cache = KMEM_CACHE(qd_op, SLAB_ACCOUNT);
	if (!qd_op_cache)
		return -ENOMEM;
	qd_elem_cache = KMEM_CACHE_USERCOPY(qd_kelem, SLAB_ACCOUNT, segs);
	if (!qd_elem_cache) {
		kmem_cache_destroy(qd_op_cache);
		return -ENOMEM;
	}
	return 0;
}

void qd_op_exit(void)
{
	kmem_cache_destroy(qd_elem_cache);
	kmem_cache_destroy(qd_op_cache);
}

/*
 * An element from nsegs struct qd_seg at user address addr, each resolved
 * in ctx's regions (a reference each). Process context (copies from user
 * space). On failure *out may hold a partial element (elem->whole false)
 * for the caller to free with the op.
 */
int qd_elem_build(struct qd_ctx *ctx, u64 addr, u32 nsegs,
		  struct qd_kelem **out)
{
	struct qd_kelem *elem;
	u32 i;
	int ret;

	if (nsegs == 0 || nsegs > QD_SGA_MAX || !addr)
		return -EINVAL;
	elem = qd_elem_alloc(ctx, &ret);
	if (!elem)
		return ret;
	*out = elem;
	if (copy_from_user(elem->segs, u64_to_user_ptr(addr),
			   nsegs * sizeof(struct qd_seg)))
		return -EFAULT;
	ret = qd_sga_check(elem->segs, nsegs, &elem->bytes);
	if (ret)
		return ret;
	for (i = 0; i < nsegs; i++) {
		ret = qd_region_resolve(ctx, &elem->segs[i], &elem->regions[i]);
		if (ret)
			return ret;
		elem->nsegs = i + 1;	/* references held so far */
	}
	elem->whole = true;
	return 0;
}

/* Where byte off of segment seg of elem lies: its page and offset in it. */
static struct page *qd_elem_page(const struct qd_kelem *elem, u32 seg,
				 u64 off, size_t *in_page)
{
	u64 pos = elem->segs[seg].offset + off;

	*in_page = offset_in_page(pos);
	return elem->regions[seg]->pages[pos >> PAGE_SHIFT];
}

/*
 * Copy len bytes of element e (a struct qd_kelem) at byte off into buf: 0,
 * or -1 when the element is shorter than off + len. The read function of
 * the predicate evaluator (common/qd_pred.h). Any context: the pages are
 * pinned, and mapped with kmap_local_page().
 */
int qd_elem_read(const void *e, u32 off, void *buf, u32 len)
{
	const struct qd_kelem *elem = e;
	u64 pos = off;
	size_t in_page, n;
	struct page *page;
	u8 *to = buf;
	u32 seg = 0;

	if ((u64)off + len > elem->bytes)
		return -1;
	while (seg < elem->nsegs && pos >= elem->segs[seg].len)
		pos -= elem->segs[seg++].len;
	while (len) {
		if (seg >= elem->nsegs)
			return -1;
		n = min3((u64)len, elem->segs[seg].len - pos,
			 PAGE_SIZE - offset_in_page(elem->segs[seg].offset + pos));
		page = qd_elem_page(elem, seg, pos, &in_page);
		memcpy_from_page(to, page, in_page, n);
		to += n;
		len -= n;
		pos += n;
		if (pos == elem->segs[seg].len) {
			seg++;
			pos = 0;
		}
	}
	return 0;
}

/*
 * Copy src's payload into dst's buffers (dst->bytes >= src->bytes), page
 * by page through the kernel mapping of the pinned pages, then trim dst to
 * src's length. The one copy an element makes when it crosses into a
 * context that cannot see its memory. Process context (may take a while:
 * called with no lock held).
 */
void qd_elem_copy(const struct qd_kelem *src, struct qd_kelem *dst)
{
	u32 si = 0, di = 0;
	u64 so = 0, dof = 0, left = src->bytes;
	size_t sp, dp, n;
	struct page *spage, *dpage;
	void *s, *d;

	while (left) {
		spage = qd_elem_page(src, si, so, &sp);
		dpage = qd_elem_page(dst, di, dof, &dp);
		n = min3((u64)PAGE_SIZE - sp, (u64)PAGE_SIZE - dp, left);
		n = min3((u64)n, src->segs[si].len - so, dst->segs[di].len - dof);
		s = kmap_local_page(spage);
		d = kmap_local_page(dpage);
		memcpy(d + dp, s + sp, n);
		kunmap_local(d);
		kunmap_local(s);
		left -= n;
		so += n;
		dof += n;
		if (so == src->segs[si].len) {
			si++;
			so = 0;
		}
		if (dof == dst->segs[di].len) {
			di++;
			dof = 0;
		}
		cond_resched();
	}
	/* The buffer, trimmed to what it now holds. */
	if (dof)
		dst->segs[di++].len = dof;
	while (dst->nsegs > di)
		qd_region_put(dst->regions[--dst->nsegs]);
	dst->bytes = src->bytes;
}

/* Look up the op's qd into op->obj (a reference, dropped with the op). */
int qd_op_target(struct qd_op *op)
{
	op->obj = qd_object_get(op->ctx, op->qd);
	return op->obj ? 0 : -EBADF;
}

/*
 * Trim a pop's buffer to the n bytes (at most its length) it now holds,
 * dropping the references of the segments left empty. Any context.
 */
void qd_elem_trim(struct qd_kelem *e, u64 n)
{
	u64 left = n;
	u32 i = 0;

	while (i < e->nsegs && left >= e->segs[i].len)
		left -= e->segs[i++].len;
	if (left)
		e->segs[i++].len = left;
	while (e->nsegs > i)
		qd_region_put(e->regions[--e->nsegs]);
	e->bytes = n;
}

/*
 * ctx's op with user_data on a backend's list of pending ops (a cancel), or
 * NULL. Called with the lock that guards the list.
 */
struct qd_op *qd_op_find(struct list_head *list, struct qd_ctx *ctx,
			 u64 user_data)
{
	struct qd_op *op;

	list_for_each_entry(op, list, node)
		if (op->ctx == ctx && op->user_data == user_data)
			return op;
	return NULL;
}
