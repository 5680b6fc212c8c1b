// SPDX-License-Identifier: GPL-2.0
/*
 * The submission and completion rings: setup, mmap, and posting
 * completions. A context has up to QD_MAX_RINGS rings (libqd makes one per
 * thread); an op completes on the ring it was submitted from and wakes
 * only that ring's sleepers, plus the context's (poll, QD_ENTER_CTX_SEQ)
 * through ctx_seq. Ring memory is vmalloc memory charged to the opener's
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
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "common/qd_ring.h"
#include "ctx.h"
#include "op.h"
#include "stats.h"
#include "user.h"

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
	co->ctx_seq = offsetof(struct qd_ring_hdr, ctx_seq);
	co->cqes = QD_RING_HDR_BYTES;
	co->elems = QD_RING_HDR_BYTES + p->cq_entries * sizeof(struct qd_cqe);
}

/* Ring memory, as charged to the context and its user (user.c). */
static size_t qd_ring_bytes(const struct qd_params *p)
{
	return PAGE_ALIGN(QD_RING_HDR_BYTES +
			  p->sq_entries * sizeof(struct qd_sqe)) +
	       PAGE_ALIGN(QD_RING_HDR_BYTES + p->cq_entries *
			  (sizeof(struct qd_cqe) + sizeof(struct qd_elem)));
}

static void qd_ring_free(struct qd_ring *ring)
{
	WARN_ON_ONCE(!list_empty(&ring->cq.overflow));
	if (ring->charged)
		qd_ring_bytes_uncharge(ring->ctx, ring->charged);
	vfree(ring->sq.hdr);
	vfree(ring->cq.hdr);
	mutex_destroy(&ring->sq_lock);
	kfree(ring);
}

/*
 * The sizes and flags of QD_IOC_SETUP (setup) or QD_IOC_RING; fills in the
 * default CQ size. Only QD_IOC_SETUP takes QD_SETUP_SQPOLL and an idle time.
 */
int qd_params_check(struct qd_params *p, bool setup)
{
	u32 flags = setup ? QD_SETUP_SQPOLL : 0;
	int i;

	if (p->flags & ~flags || p->ring)
		return -EINVAL;
	if (p->flags & QD_SETUP_SQPOLL ? p->sq_idle_ms > QD_SQPOLL_MAX_IDLE_MS :
	    p->sq_idle_ms)
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

/* Called with ctx->lock held. Sizes from p (checked); fills p's outputs. */
static struct qd_ring *qd_ring_new(struct qd_ctx *ctx, struct qd_params *p)
{
	struct qd_ring *ring;
	struct qd_sq *sq;
	struct qd_cq *cq;
	int ret;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL_ACCOUNT);
	if (!ring)
		return ERR_PTR(-ENOMEM);
	sq = &ring->sq;
	cq = &ring->cq;
	ring->ctx = ctx;
	mutex_init(&ring->sq_lock);
	spin_lock_init(&cq->lock);
	INIT_LIST_HEAD(&cq->overflow);
	init_waitqueue_head(&cq->wait);
	ret = qd_ring_bytes_charge(ctx, qd_ring_bytes(p));
	if (ret)
		goto err;
	ring->charged = qd_ring_bytes(p);

	ret = -ENOMEM;
	sq->entries = p->sq_entries;
	sq->mask = p->sq_entries - 1;
	sq->bytes = QD_RING_HDR_BYTES + sq->entries * sizeof(struct qd_sqe);
	sq->hdr = qd_ring_alloc(sq->bytes);
	if (!sq->hdr)
		goto err;
	sq->sqes = (void *)sq->hdr + QD_RING_HDR_BYTES;

	cq->entries = p->cq_entries;
	cq->mask = p->cq_entries - 1;
	cq->bytes = QD_RING_HDR_BYTES +
		    cq->entries * (sizeof(struct qd_cqe) + sizeof(struct qd_elem));
	cq->hdr = qd_ring_alloc(cq->bytes);
	if (!cq->hdr)
		goto err;
	cq->cqes = (void *)cq->hdr + QD_RING_HDR_BYTES;
	cq->elems = (void *)cq->cqes + cq->entries * sizeof(struct qd_cqe);

	sq->hdr->ring_mask = sq->mask;
	sq->hdr->ring_entries = sq->entries;
	/* A poller wakes for a ring it has not seen yet (sqpoll.c). */
	if (ctx->sqp)
		sq->hdr->flags = QD_SQ_F_NEED_WAKEUP;
	cq->hdr->ring_mask = cq->mask;
	cq->hdr->ring_entries = cq->entries;

	qd_fill_offsets(p);
	p->features = QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS |
		      QD_FEAT_NOOVERFLOW_LOSS | QD_FEAT_REGIONS |
		      QD_FEAT_NOP_IRQ | QD_FEAT_ELEM_LIMIT | QD_FEAT_RINGS |
		      QD_FEAT_SKIP_SUCCESS | QD_FEAT_MULTISHOT |
		      QD_FEAT_MAPPED_QUEUE | QD_FEAT_SHARED_QUEUE |
		      QD_FEAT_MQ_SLEEP | QD_FEAT_SHARED_MAPPED |
		      QD_FEAT_SQPOLL | QD_FEAT_SOCKETS | QD_FEAT_POOL |
		      QD_FEAT_SEND_ZC | QD_FEAT_STORAGE | QD_FEAT_DERIVED;
	p->sq_ring_bytes = PAGE_ALIGN(sq->bytes);
	p->cq_ring_bytes = PAGE_ALIGN(cq->bytes);
	return ring;
err:
	qd_ring_free(ring);
	return ERR_PTR(ret);
}

/* Called with ctx->lock held: make ring n visible to lockless readers. */
static void qd_ring_publish(struct qd_ctx *ctx, struct qd_ring *ring,
			    struct qd_params *p)
{
	u32 n = ctx->nr_rings;

	ring->id = n;
	p->ring = n;
	p->max_inflight = ctx->max_inflight;
	p->max_queued = ctx->max_queued;
	ctx->rings[n] = ring;
	/* Pairs with qd_ctx_nr_rings(): the ring is complete when counted. */
	smp_store_release(&ctx->nr_rings, n + 1);
}

/*
 * QD_IOC_SETUP: ring 0, and the poller if there is one (not running yet).
 * Called with ctx->lock held.
 */
int qd_rings_setup(struct qd_ctx *ctx, struct qd_params *p,
		   struct qd_sqpoll *sqp)
{
	struct qd_ring *ring;
	int ret;

	if (ctx->nr_rings)
		return -EBUSY;
	ret = qd_params_check(p, true);
	if (ret)
		return ret;
	ring = qd_ring_new(ctx, p);
	if (IS_ERR(ring))
		return PTR_ERR(ring);
	ctx->max_inflight = 2 * ring->cq.entries;
	/* Seen by QD_IOC_ENTER once it sees the ring (qd_ctx_nr_rings()). */
	ctx->sqp = sqp;
	qd_ring_publish(ctx, ring, p);
	return 0;
}

/*
 * QD_IOC_RING: one more ring. Like QD_IOC_SETUP, the ring stays if the
 * copy back fails (it is freed with the context).
 */
int qd_ring_add(struct qd_ctx *ctx, struct qd_params __user *arg)
{
	struct qd_params p;
	struct qd_ring *ring;
	int ret;

	if (copy_from_user(&p, arg, sizeof(p)))
		return -EFAULT;
	ret = qd_params_check(&p, false);
	if (ret)
		return ret;
	if (mutex_lock_killable(&ctx->lock))
		return -EINTR;
	if (!ctx->nr_rings) {
		ret = -ENXIO;
	} else if (ctx->nr_rings >= QD_MAX_RINGS) {
		ret = -ENOSPC;
	} else {
		ring = qd_ring_new(ctx, &p);
		if (IS_ERR(ring))
			ret = PTR_ERR(ring);
		else
			qd_ring_publish(ctx, ring, &p);
	}
	mutex_unlock(&ctx->lock);
	if (ret)
		return ret;
	return copy_to_user(arg, &p, sizeof(p)) ? -EFAULT : 0;
}

/* The ring with this id, or NULL. Lockless; the context must be live. */
struct qd_ring *qd_ring_get(struct qd_ctx *ctx, u32 id)
{
	u32 n = qd_ctx_nr_rings(ctx);

	if (id >= n)
		return NULL;
	return ctx->rings[array_index_nospec(id, n)];
}

void qd_rings_free(struct qd_ctx *ctx)
{
	u32 i;

	for (i = 0; i < ctx->nr_rings; i++)
		qd_ring_free(ctx->rings[i]);
}

/*
 * Which ring memory an mmap offset names: ring 0 at the two historical
 * offsets, ring n at QD_OFF_RING_SQ(n) and QD_OFF_RING_CQ(n).
 */
static int qd_mmap_target(struct qd_ctx *ctx, u64 off, void **mem,
			  size_t *bytes)
{
	struct qd_ring *ring;
	bool sq;
	u64 n;

	if (off == QD_OFF_SQ_RING || off == QD_OFF_CQ_RING) {
		n = 0;
		sq = off == QD_OFF_SQ_RING;
	} else if (off >= QD_OFF_RINGS) {
		n = div64_u64(off - QD_OFF_RINGS, QD_OFF_RING_STRIDE);
		off -= QD_OFF_RING_SQ(n);
		if (off != 0 && off != QD_OFF_RING_STRIDE / 2)
			return -EINVAL;
		sq = off == 0;
	} else {
		return -EINVAL;
	}
	if (n >= QD_MAX_RINGS)
		return -EINVAL;
	ring = qd_ring_get(ctx, n);
	if (!ring)
		return qd_ctx_nr_rings(ctx) ? -EINVAL : -ENXIO;
	if (sq) {
		*mem = ring->sq.hdr;
		*bytes = PAGE_ALIGN(ring->sq.bytes);
	} else {
		*mem = ring->cq.hdr;
		*bytes = PAGE_ALIGN(ring->cq.bytes);
	}
	return 0;
}

int qd_rings_mmap(struct qd_ctx *ctx, struct vm_area_struct *vma)
{
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long i;
	size_t bytes;
	void *mem;
	int ret;

	ret = qd_mmap_target(ctx, off, &mem, &bytes);
	if (ret)
		return ret;
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
u32 qd_cq_ready(struct qd_ring *ring)
{
	struct qd_cq *cq = &ring->cq;
	/* Pairs with user space's release of head after reading CQEs. */
	u32 head = smp_load_acquire(&cq->hdr->head);
	u32 tail = READ_ONCE(cq->tail);

	return min(qd_ring_used(head, tail), cq->entries);
}

/* Completions are in the ring or parked. */
bool qd_cq_pending(struct qd_ring *ring)
{
	return qd_cq_ready(ring) || !list_empty_careful(&ring->cq.overflow);
}

/* What poll reports: completions on any ring. */
bool qd_ctx_cq_pending(struct qd_ctx *ctx)
{
	u32 i, n = qd_ctx_nr_rings(ctx);

	for (i = 0; i < n; i++)
		if (qd_cq_pending(ctx->rings[i]))
			return true;
	return false;
}

/*
 * Parked completions could be moved into the ring now (a waiter flushes
 * them before it sleeps again).
 */
static bool qd_cq_flushable(struct qd_ring *ring, u32 ready)
{
	return ready < ring->cq.entries &&
	       !list_empty_careful(&ring->cq.overflow);
}

/* Wake-up condition of a QD_ENTER_GETEVENTS waiter for min CQEs. */
bool qd_cq_should_wake(struct qd_ring *ring, u32 min)
{
	u32 ready = qd_cq_ready(ring);

	return ready >= min || qd_cq_flushable(ring, ready);
}

/* Wake-up condition of a QD_ENTER_CQ_TAIL waiter. */
bool qd_cq_moved(struct qd_ring *ring, u32 tail)
{
	return READ_ONCE(ring->cq.tail) != tail ||
	       qd_cq_flushable(ring, qd_cq_ready(ring));
}

/*
 * Wake-up condition of a QD_ENTER_CTX_SEQ waiter. It compares with the
 * value user space reads (ring 0's ctx_seq), not with the counter: posters
 * on different rings may publish their values out of order, and a stale
 * value must not make a waiter return at once for ever.
 */
bool qd_ctx_seq_moved(struct qd_ctx *ctx, u32 seq)
{
	return READ_ONCE(ctx->rings[0]->cq.hdr->ctx_seq) != seq;
}

/*
 * A completion was posted or parked on some ring: publish a new ctx_seq
 * after it (qd_cq_wake() then wakes the context's waiters: poll,
 * CTX_SEQ). Called with the ring's cq->lock held.
 */
static void qd_cq_seq(struct qd_ctx *ctx)
{
	WRITE_ONCE(ctx->rings[0]->cq.hdr->ctx_seq,
		   (u32)atomic_inc_return(&ctx->cq_seq));
}

/* Called with cq->lock held and a free slot. */
static void qd_cq_fill(struct qd_cq *cq, u64 user_data, s64 res, s32 qd,
		       u8 opcode, u32 flags, const struct qd_kelem *elem)
{
	u32 slot = qd_ring_slot(cq->tail, cq->mask);
	struct qd_cqe *cqe = &cq->cqes[slot];
	struct qd_cqe c = {
		.user_data = user_data,
		.res = res,
		.qd = qd,
		.opcode = opcode,
		.flags = flags,
	};

	if (elem) {
		memcpy(cq->elems[slot].segs, elem->segs,
		       elem->nsegs * sizeof(struct qd_seg));
		c.flags |= QD_CQE_F_ELEM;
		c.nsegs = elem->nsegs;
	}
	memcpy(cqe, &c, sizeof(c));
	cq->tail++;
	/* Publish the CQE (and element) before the tail that exposes it. */
	smp_store_release(&cq->hdr->tail, cq->tail);
}

/*
 * The element an op's final CQE carries: what a pop got, or what a push
 * that failed after its element was built had (so that its submitter finds
 * its buffers; a push refused while building it carries none).
 */
static const struct qd_kelem *qd_op_cqe_elem(const struct qd_op *op)
{
	if (!op->elem || !op->elem->nsegs)
		return NULL;
	/* A pool pop's buffers go back even when it failed (sock.c). */
	if (op->opcode == QD_OP_POP &&
	    (op->res >= 0 || op->cqe_flags & QD_CQE_F_POOL))
		return op->elem;
	if ((op->opcode == QD_OP_PUSH || op->opcode == QD_OP_PROVIDE) &&
	    op->res < 0 && op->elem->whole)
		return op->elem;
	return NULL;
}

static u32 qd_op_cqe_flags(const struct qd_op *op)
{
	return op->cqe_flags |
	       (op->copy && op->res >= 0 ? QD_CQE_F_COPIED : 0);
}

/*
 * A socket op's address (QD_CQE_F_ADDR) goes into its slot's element,
 * after the segments, before qd_cq_fill() publishes the slot. Called with
 * cq->lock held and a free slot.
 */
static void qd_cq_fill_addr(struct qd_cq *cq, const struct qd_op *op)
{
	u32 slot = qd_ring_slot(cq->tail, cq->mask);

	if (op->cqe_flags & QD_CQE_F_ADDR)
		memcpy(&cq->elems[slot].segs[QD_CQE_ADDR_SEG], &op->sock.addr,
		       sizeof(op->sock.addr));
}

static void qd_cq_fill_parked(struct qd_cq *cq, struct qd_parked *p)
{
	struct qd_kelem *elem;
	struct qd_op *op;

	if (p->kind == QD_PARKED_OP) {
		op = container_of(p, struct qd_op, park);
		qd_cq_fill_addr(cq, op);
		qd_cq_fill(cq, op->user_data, op->res, op->qd, op->opcode,
			   qd_op_cqe_flags(op), qd_op_cqe_elem(op));
	} else {
		elem = container_of(p, struct qd_kelem, park);
		qd_cq_fill(cq, elem->user_data, elem->bytes, elem->qd,
			   QD_OP_POP, QD_CQE_F_MORE | elem->cqe_flags, elem);
	}
}

static bool qd_cq_has_space(struct qd_cq *cq)
{
	/* User space is done with a slot once it has released head past it. */
	u32 head = smp_load_acquire(&cq->hdr->head);

	return qd_ring_space(head, cq->tail, cq->entries) > 0;
}

/* Called with cq->lock held. */
static void qd_cq_park(struct qd_ring *ring, struct qd_parked *p)
{
	struct qd_cq *cq = &ring->cq;

	list_add_tail(&p->node, &cq->overflow);
	cq->nr_overflow++;
	cq->hdr->overflow++;
	/* The count is visible once the flag is. */
	smp_store_release(&cq->hdr->flags, cq->hdr->flags | QD_CQ_F_OVERFLOW);
	atomic_long_inc(&qd_stats.overflowed);
}

/*
 * The end of a submitting task's batch (blk_finish_plug()), or the task
 * is about to sleep (from_schedule): wake the sleepers of a ring that got
 * completions meanwhile. Process context; the ring's context is held.
 */
static void qd_cq_unplug(struct blk_plug_cb *cb, bool from_schedule)
{
	struct qd_ring *ring = container_of(cb, struct qd_ring, wake_cb);
	struct qd_ctx *ctx = ring->ctx;

	clear_bit(QD_RING_WAKE_QUEUED, &ring->wake_flags);
	/* Pairs with the barrier of the poster's test_and_set_bit(). */
	smp_mb__after_atomic();
	if (wq_has_sleeper(&ring->cq.wait))
		wake_up_all(&ring->cq.wait);
	if (wq_has_sleeper(&ctx->wait))
		wake_up_all(&ctx->wait);
	qd_ctx_put(ctx);
}

/* The mark of a submission batch on its task's plug: it does nothing. */
static void qd_batch_mark(struct blk_plug_cb *cb, bool from_schedule)
{
}

/*
 * Start a submission batch (submit.c): the task's block plug, and on it
 * the batch's mark, which says that the plug is ours and not yet flushed.
 * Nested in a plug of someone else's, no batch (and no deferral).
 */
void qd_batch_start(struct qd_batch *b)
{
	blk_start_plug(&b->plug);
	if (current->plug != &b->plug)
		return;
	b->mark.callback = qd_batch_mark;
	b->mark.data = NULL;
	list_add(&b->mark.list, &b->plug.cb_list);
}

/*
 * End it: the plug's flush runs the callbacks first (the mark's and the
 * deferred wake-ups), then issues the plugged bios; a completion posted
 * while those are issued (a driver that completes inline) finds no mark
 * and wakes at once.
 */
void qd_batch_finish(struct qd_batch *b)
{
	blk_finish_plug(&b->plug);
}

/* Whether plug is a batch's, not flushed yet (its mark still on it). */
static bool qd_in_batch(struct blk_plug *plug)
{
	struct blk_plug_cb *cb;

	list_for_each_entry(cb, &plug->cb_list, list)
		if (cb->callback == qd_batch_mark)
			return true;
	return false;
}

/*
 * A task that posts completions while it submits a batch (a push that
 * completes another thread's pop, a filter's element) wakes their sleepers
 * once, when its batch ends, instead of at every completion: a woken
 * thread on the same CPU would otherwise preempt it after each element,
 * and take one element per wake-up. The batch's plug (qd_batch_start():
 * QD_IOC_ENTER's, the poller's) carries the ring's callback, as md defers
 * its bios. Only in task context, in a batch whose plug has not been
 * flushed (a flush, at its end or when the task sleeps, runs the callback;
 * one added after it would never run); otherwise, or when the ring's
 * callback is queued on another task's plug (that task wakes it after
 * this completion: the bit is cleared before its wake-up), now. Any
 * context, the ring's context alive. True when the wake-up is deferred.
 */
static bool qd_cq_defer_wake(struct qd_ring *ring)
{
	struct blk_plug *plug = current->plug;

	if (!plug || !in_task() || !qd_in_batch(plug))
		return false;
	if (test_and_set_bit(QD_RING_WAKE_QUEUED, &ring->wake_flags))
		return true;
	qd_ctx_get(ring->ctx);
	ring->wake_cb.callback = qd_cq_unplug;
	ring->wake_cb.data = ring;
	list_add(&ring->wake_cb.list, &plug->cb_list);
	return true;
}

/*
 * Wake the ring's sleepers without a completion (a mapped queue's
 * QD_ENTER_MQ_POP sleepers: memq.c), batched as completions are. Any
 * context.
 */
void qd_ring_wake(struct qd_ring *ring)
{
	if (!qd_cq_defer_wake(ring))
		wake_up_all(&ring->cq.wait);
}

/*
 * After a completion: publish ctx_seq, then wake the ring's and the
 * context's sleepers, now or at the end of the task's batch. One barrier
 * orders the CQE and ctx_seq before both looks at the wait queues (it
 * pairs with the sleepers' set_current_state() before they check). Called
 * with cq->lock held, for the reason qd_cq_post() gives.
 */
static void qd_cq_wake(struct qd_ring *ring)
{
	struct qd_ctx *ctx = ring->ctx;
	bool cq_sleeper, ctx_sleeper;

	qd_cq_seq(ctx);
	smp_mb();	/* CQE and ctx_seq before the looks: wq_has_sleeper() */
	/* waitqueue_active() after the barrier above, as wq_has_sleeper() */
	cq_sleeper = waitqueue_active(&ring->cq.wait);
	/* waitqueue_active() after the same barrier */
	ctx_sleeper = waitqueue_active(&ctx->wait);
	if ((!cq_sleeper && !ctx_sleeper) || qd_cq_defer_wake(ring))
		return;
	if (cq_sleeper)
		wake_up_all(&ring->cq.wait);
	if (ctx_sleeper)
		wake_up_all(&ctx->wait);
}

/*
 * Post op's final completion and free it, or park it in its ring's
 * overflow list when the CQ is full. With QD_SQE_F_SKIP_SUCCESS a success
 * posts nothing. Any context. Once a parked op is in the list it belongs
 * to the context, which may be released (and freed) the moment cq->lock is
 * dropped: so the wake-up happens under the lock, and only a posted op,
 * still ours and holding a context reference, is freed after it.
 */
void qd_cq_post(struct qd_op *op)
{
	struct qd_ring *ring = op->ring;
	struct qd_cq *cq = &ring->cq;
	unsigned long flags;
	bool done = true;

	if ((op->sqe_flags & QD_SQE_F_SKIP_SUCCESS) && op->res >= 0) {
		qd_op_free(op);
		return;
	}
	spin_lock_irqsave(&cq->lock, flags);
	if (cq->dead) {
		/* released context: nobody will ever read it */
	} else if (list_empty(&cq->overflow) && qd_cq_has_space(cq)) {
		qd_cq_fill_addr(cq, op);
		qd_cq_fill(cq, op->user_data, op->res, op->qd, op->opcode,
			   qd_op_cqe_flags(op), qd_op_cqe_elem(op));
		qd_cq_wake(ring);
	} else {
		op->park.kind = QD_PARKED_OP;
		qd_cq_park(ring, &op->park);
		qd_cq_wake(ring);
		done = false;
	}
	spin_unlock_irqrestore(&cq->lock, flags);

	if (done)
		qd_op_free(op);
}

/*
 * A multishot pop delivers elem: a CQE with QD_CQE_F_MORE in op's ring, or
 * the element parked in order in its overflow list. op stays pending. The
 * caller holds the lock that keeps op pending (the queue's), so the op's
 * final CQE cannot overtake its elements. Any context.
 */
void qd_cq_post_elem(struct qd_op *op, struct qd_kelem *elem)
{
	struct qd_ring *ring = op->ring;
	struct qd_cq *cq = &ring->cq;
	unsigned long flags;
	bool done = true;

	spin_lock_irqsave(&cq->lock, flags);
	if (cq->dead) {
		/* dropped */
	} else if (list_empty(&cq->overflow) && qd_cq_has_space(cq)) {
		qd_cq_fill(cq, op->user_data, elem->bytes, op->qd, QD_OP_POP,
			   QD_CQE_F_MORE | elem->cqe_flags, elem);
		qd_cq_wake(ring);
	} else {
		elem->user_data = op->user_data;
		elem->qd = op->qd;
		elem->park.kind = QD_PARKED_ELEM;
		qd_cq_park(ring, &elem->park);
		qd_cq_wake(ring);
		done = false;
	}
	spin_unlock_irqrestore(&cq->lock, flags);

	if (done)
		qd_elem_free(elem);
}

static void qd_parked_free(struct qd_parked *p)
{
	if (p->kind == QD_PARKED_OP)
		qd_op_free(container_of(p, struct qd_op, park));
	else
		qd_elem_free(container_of(p, struct qd_kelem, park));
}

/* Process context. */
static void qd_free_list(struct list_head *list)
{
	struct qd_parked *p, *tmp;

	list_for_each_entry_safe(p, tmp, list, node) {
		list_del(&p->node);
		qd_parked_free(p);
		cond_resched();
	}
}

/*
 * Move parked completions into the ring while it has room, a batch per
 * hold of the lock, and wake waiters when some moved. Process context (the
 * caller holds the context: its file or a reference); may sleep.
 */
void qd_cq_flush_overflow(struct qd_ring *ring)
{
	struct qd_cq *cq = &ring->cq;
	struct qd_parked *p, *tmp;
	bool more = true;
	unsigned int n;
	LIST_HEAD(done);

	while (more && !list_empty_careful(&cq->overflow)) {
		n = 0;
		spin_lock_irq(&cq->lock);
		list_for_each_entry_safe(p, tmp, &cq->overflow, node) {
			if (n == QD_CQ_FLUSH_BATCH || !qd_cq_has_space(cq))
				break;
			qd_cq_fill_parked(cq, p);
			list_move_tail(&p->node, &done);
			cq->nr_overflow--;
			n++;
		}
		more = n == QD_CQ_FLUSH_BATCH;
		if (list_empty(&cq->overflow))
			/* The flushed CQEs are visible before the flag clears. */
			smp_store_release(&cq->hdr->flags,
					  cq->hdr->flags & ~QD_CQ_F_OVERFLOW);
		if (n)
			qd_cq_wake(ring);
		spin_unlock_irq(&cq->lock);

		qd_free_list(&done);
	}
}

/* Flush every ring (poll). Process context. */
void qd_cq_flush_all(struct qd_ctx *ctx)
{
	u32 i, n = qd_ctx_nr_rings(ctx);

	for (i = 0; i < n; i++)
		qd_cq_flush_overflow(ctx->rings[i]);
}

/* The context is being released: drop parked completions, park no more. */
void qd_cq_discard_overflow(struct qd_ctx *ctx)
{
	u32 i, n = qd_ctx_nr_rings(ctx);
	struct qd_cq *cq;
	unsigned long flags;
	LIST_HEAD(done);

	for (i = 0; i < n; i++) {
		cq = &ctx->rings[i]->cq;
		spin_lock_irqsave(&cq->lock, flags);
		cq->dead = true;
		list_splice_tail_init(&cq->overflow, &done);
		cq->nr_overflow = 0;
		spin_unlock_irqrestore(&cq->lock, flags);
	}
	qd_free_list(&done);
}
