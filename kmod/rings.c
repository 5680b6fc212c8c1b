// SPDX-License-Identifier: GPL-2.0
/*
 * The submission and completion rings: setup, mmap, and posting
 * completions. Ring memory is vmalloc memory charged to the opener's
 * memory cgroup and mapped into the owner page by page, so a completion is
 * written through the kernel mapping from any context, never with
 * copy_to_user().
 *
 * cq->lock (irq-safe) orders posting, parking in the overflow list and
 * flushing it; every access to a context by a poster happens under it,
 * wake-up included, because a context release (which takes it to discard
 * the overflow list) may free the context as soon as it is dropped.
 *
 * Ordering (see uapi/linux/qd.h): the producer writes the entry, then
 * store-releases its tail; the consumer load-acquires the tail, reads the
 * entry, then store-releases its head.
 */
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "common/qd_ring.h"
#include "ctx.h"
#include "op.h"
#include "stats.h"

#define QD_RING_HDR_BYTES	sizeof(struct qd_ring_hdr)

static_assert(sizeof(struct qd_ring_hdr) % 64 == 0);
static_assert(sizeof(struct qd_sqe) == 64);
static_assert(sizeof(struct qd_cqe) == 32);
static_assert(sizeof(struct qd_seg) == 16);

/* Rings are user-caused memory: charge them to the memory cgroup. */
static void *qd_ring_alloc(size_t bytes)
{
	return __vmalloc(PAGE_ALIGN(bytes), GFP_KERNEL_ACCOUNT | __GFP_ZERO);
}

/* Flushing moves at most this many CQEs per hold of cq->lock (irqs off). */
#define QD_CQ_FLUSH_BATCH	32

static void qd_fill_offsets(struct qd_params *p)
{
	struct qd_sq_offsets *so = &p->sq_off;
	struct qd_cq_offsets *co = &p->cq_off;

	memset(so, 0, sizeof(*so));
	memset(co, 0, sizeof(*co));

	so->head = offsetof(struct qd_ring_hdr, head);
	so->tail = offsetof(struct qd_ring_hdr, tail);
	so->ring_mask = offsetof(struct qd_ring_hdr, ring_mask);
	so->ring_entries = offsetof(struct qd_ring_hdr, ring_entries);
	so->flags = offsetof(struct qd_ring_hdr, flags);
	so->sqes = QD_RING_HDR_BYTES;

	co->head = offsetof(struct qd_ring_hdr, head);
	co->tail = offsetof(struct qd_ring_hdr, tail);
	co->ring_mask = offsetof(struct qd_ring_hdr, ring_mask);
	co->ring_entries = offsetof(struct qd_ring_hdr, ring_entries);
	co->flags = offsetof(struct qd_ring_hdr, flags);
	co->overflow = offsetof(struct qd_ring_hdr, overflow);
	co->cqes = QD_RING_HDR_BYTES;
	co->elems = QD_RING_HDR_BYTES + p->cq_entries * sizeof(struct qd_cqe);
}

static int qd_params_check(struct qd_params *p)
{
	int i;

	if (p->flags)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(p->resv); i++)
		if (p->resv[i])
			return -EINVAL;
	if (!qd_is_pow2(p->sq_entries) || p->sq_entries > QD_MAX_SQ_ENTRIES)
		return -EINVAL;
	if (!p->cq_entries)
		p->cq_entries = 2 * p->sq_entries;
	if (!qd_is_pow2(p->cq_entries) || p->cq_entries > QD_MAX_CQ_ENTRIES ||
	    p->cq_entries < p->sq_entries)
		return -EINVAL;
	return 0;
}

/* Called with ctx->lock held. */
int qd_rings_setup(struct qd_ctx *ctx, struct qd_params *p)
{
	struct qd_sq *sq = &ctx->sq;
	struct qd_cq *cq = &ctx->cq;
	int ret;

	if (ctx->rings_ready)
		return -EBUSY;
	ret = qd_params_check(p);
	if (ret)
		return ret;

	sq->entries = p->sq_entries;
	sq->mask = p->sq_entries - 1;
	sq->bytes = QD_RING_HDR_BYTES + sq->entries * sizeof(struct qd_sqe);
	sq->hdr = qd_ring_alloc(sq->bytes);
	if (!sq->hdr)
		return -ENOMEM;
	sq->sqes = (void *)sq->hdr + QD_RING_HDR_BYTES;

	cq->entries = p->cq_entries;
	cq->mask = p->cq_entries - 1;
	cq->bytes = QD_RING_HDR_BYTES +
		    cq->entries * (sizeof(struct qd_cqe) + sizeof(struct qd_elem));
	cq->hdr = qd_ring_alloc(cq->bytes);
	if (!cq->hdr) {
		vfree(sq->hdr);
		sq->hdr = NULL;
		return -ENOMEM;
	}
	cq->cqes = (void *)cq->hdr + QD_RING_HDR_BYTES;
	cq->elems = (void *)cq->cqes + cq->entries * sizeof(struct qd_cqe);

	sq->hdr->ring_mask = sq->mask;
	sq->hdr->ring_entries = sq->entries;
	cq->hdr->ring_mask = cq->mask;
	cq->hdr->ring_entries = cq->entries;

	ctx->max_inflight = 2 * cq->entries;
	p->max_queued = ctx->max_queued;
	/* Pairs with the acquire in readers: rings are complete when seen. */
	smp_store_release(&ctx->rings_ready, true);

	qd_fill_offsets(p);
	p->features = QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS |
		      QD_FEAT_NOOVERFLOW_LOSS | QD_FEAT_REGIONS |
		      QD_FEAT_NOP_IRQ | QD_FEAT_ELEM_LIMIT;
	p->sq_ring_bytes = PAGE_ALIGN(sq->bytes);
	p->cq_ring_bytes = PAGE_ALIGN(cq->bytes);
	p->max_inflight = ctx->max_inflight;
	return 0;
}

void qd_rings_free(struct qd_ctx *ctx)
{
	vfree(ctx->sq.hdr);
	vfree(ctx->cq.hdr);
}

int qd_rings_mmap(struct qd_ctx *ctx, struct vm_area_struct *vma)
{
	unsigned long off = vma->vm_pgoff << PAGE_SHIFT;
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long i;
	size_t bytes;
	void *mem;
	int ret;

	/* Pairs with the release in qd_rings_setup(). */
	if (!smp_load_acquire(&ctx->rings_ready))
		return -ENXIO;
	if (off == QD_OFF_SQ_RING) {
		mem = ctx->sq.hdr;
		bytes = PAGE_ALIGN(ctx->sq.bytes);
	} else if (off == QD_OFF_CQ_RING) {
		mem = ctx->cq.hdr;
		bytes = PAGE_ALIGN(ctx->cq.bytes);
	} else {
		return -EINVAL;
	}
	if (len > bytes)
		return -EINVAL;

	/*
	 * Not copied into a forked child (unless it asks, MADV_DOFORK); a
	 * child cannot use the context anyway (qd_ctx_owner()).
	 */
	vma->vm_flags |= VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP;
	for (i = 0; i < len >> PAGE_SHIFT; i++) {
		ret = vm_insert_page(vma, vma->vm_start + (i << PAGE_SHIFT),
				     vmalloc_to_page(mem + (i << PAGE_SHIFT)));
		if (ret)
			return ret;
	}
	return 0;
}

/* Entries posted and not yet consumed by user space. */
u32 qd_cq_ready(struct qd_ctx *ctx)
{
	struct qd_cq *cq = &ctx->cq;
	/* Pairs with user space's release of head after reading CQEs. */
	u32 head = smp_load_acquire(&cq->hdr->head);
	u32 tail = READ_ONCE(cq->tail);

	return min(qd_ring_used(head, tail), cq->entries);
}

/* Completions are in the ring or parked: what poll reports. */
bool qd_cq_pending(struct qd_ctx *ctx)
{
	return qd_cq_ready(ctx) || !list_empty_careful(&ctx->cq.overflow);
}

/*
 * Wake-up condition of a waiter for min CQEs: they are there, or parked
 * completions could be moved into a ring with room (the waiter flushes).
 */
bool qd_cq_should_wake(struct qd_ctx *ctx, u32 min)
{
	u32 ready = qd_cq_ready(ctx);

	return ready >= min || (ready < ctx->cq.entries &&
				!list_empty_careful(&ctx->cq.overflow));
}

/* Called with cq->lock held and a free slot. */
static void qd_cq_fill(struct qd_cq *cq, struct qd_op *op)
{
	u32 slot = qd_ring_slot(cq->tail, cq->mask);
	struct qd_cqe *cqe = &cq->cqes[slot];
	struct qd_kelem *elem = op->elem;
	struct qd_cqe c = {
		.user_data = op->user_data,
		.res = op->res,
		.qd = op->qd,
		.opcode = op->opcode,
	};

	if (elem && op->opcode == QD_OP_POP && op->res >= 0) {
		memcpy(cq->elems[slot].segs, elem->segs,
		       elem->nsegs * sizeof(struct qd_seg));
		c.flags = QD_CQE_F_ELEM;
		c.nsegs = elem->nsegs;
	}
	memcpy(cqe, &c, sizeof(c));
	cq->tail++;
	/* Publish the CQE (and element) before the tail that exposes it. */
	smp_store_release(&cq->hdr->tail, cq->tail);
}

static bool qd_cq_has_space(struct qd_cq *cq)
{
	/* User space is done with a slot once it has released head past it. */
	u32 head = smp_load_acquire(&cq->hdr->head);

	return qd_ring_space(head, cq->tail, cq->entries) > 0;
}

/* Called with cq->lock held. */
static void qd_cq_wake(struct qd_cq *cq)
{
	if (wq_has_sleeper(&cq->wait))
		wake_up_all(&cq->wait);
}

/*
 * Post op's completion and free it, or park it in the overflow list when
 * the CQ is full. Any context. Once a parked op is in the list it belongs
 * to the context, which may be released (and freed) the moment cq->lock is
 * dropped: so the wake-up happens under the lock, and only a posted op,
 * still ours and holding a context reference, is freed after it.
 */
void qd_cq_post(struct qd_ctx *ctx, struct qd_op *op)
{
	struct qd_cq *cq = &ctx->cq;
	unsigned long flags;
	bool done = true;

	spin_lock_irqsave(&cq->lock, flags);
	if (cq->dead) {
		/* released context: nobody will ever read it */
	} else if (list_empty(&cq->overflow) && qd_cq_has_space(cq)) {
		qd_cq_fill(cq, op);
	} else {
		list_add_tail(&op->node, &cq->overflow);
		cq->nr_overflow++;
		cq->hdr->overflow++;
		/* The count is visible once the flag is. */
		smp_store_release(&cq->hdr->flags,
				  cq->hdr->flags | QD_CQ_F_OVERFLOW);
		atomic_long_inc(&qd_stats.overflowed);
		done = false;
	}
	qd_cq_wake(cq);
	spin_unlock_irqrestore(&cq->lock, flags);

	if (done)
		qd_op_free(op);
}

/* Process context. */
static void qd_free_list(struct list_head *list)
{
	struct qd_op *op, *tmp;

	list_for_each_entry_safe(op, tmp, list, node) {
		list_del(&op->node);
		qd_op_free(op);
		cond_resched();
	}
}

/*
 * Move parked completions into the ring while it has room, a batch per
 * hold of the lock, and wake waiters when some moved. Process context (the
 * caller holds the context: its file or a reference); may sleep.
 */
void qd_cq_flush_overflow(struct qd_ctx *ctx)
{
	struct qd_cq *cq = &ctx->cq;
	struct qd_op *op, *tmp;
	bool more = true;
	unsigned int n;
	LIST_HEAD(done);

	while (more && !list_empty_careful(&cq->overflow)) {
		n = 0;
		spin_lock_irq(&cq->lock);
		list_for_each_entry_safe(op, tmp, &cq->overflow, node) {
			if (n == QD_CQ_FLUSH_BATCH || !qd_cq_has_space(cq))
				break;
			qd_cq_fill(cq, op);
			list_move_tail(&op->node, &done);
			cq->nr_overflow--;
			n++;
		}
		more = n == QD_CQ_FLUSH_BATCH;
		if (list_empty(&cq->overflow))
			/* The flushed CQEs are visible before the flag clears. */
			smp_store_release(&cq->hdr->flags,
					  cq->hdr->flags & ~QD_CQ_F_OVERFLOW);
		if (n)
			qd_cq_wake(cq);
		spin_unlock_irq(&cq->lock);

		qd_free_list(&done);
	}
}

/* The context is being released: drop parked completions, park no more. */
void qd_cq_discard_overflow(struct qd_ctx *ctx)
{
	struct qd_cq *cq = &ctx->cq;
	unsigned long flags;
	LIST_HEAD(done);

	spin_lock_irqsave(&cq->lock, flags);
	cq->dead = true;
	list_splice_init(&cq->overflow, &done);
	cq->nr_overflow = 0;
	spin_unlock_irqrestore(&cq->lock, flags);

	qd_free_list(&done);
}
