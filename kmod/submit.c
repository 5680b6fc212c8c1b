// SPDX-License-Identifier: GPL-2.0
/*
 * QD_IOC_ENTER: consume SQEs, then optionally wait for completions.
 *
 * Each SQE is copied out of the shared ring once, before anything looks at
 * it, so user space changing the ring meanwhile cannot change what was
 * validated. Every consumed SQE yields exactly one CQE.
 */
#include <linux/blkdev.h>
#include <linux/err.h>
#include <linux/hrtimer.h>
#include <linux/nospec.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "common/qd_ring.h"
#include "ctx.h"
#include "memq.h"
#include "object.h"
#include "op.h"
#include "opdef.h"
#include "share.h"
#include "sqpoll.h"
#include "stats.h"
#include "submit.h"

/* SQE flags this module knows. */
#define QD_SQE_F_ALL	QD_SQE_F_SKIP_SUCCESS

/*
 * The reserved fields the opcode does not use are zero: the addr2 slot
 * (resv[0]: addr2, off, open_mode) and the resv0 slot (addr_len,
 * buf_group, open_flags).
 */
static bool qd_sqe_resv_clear(const struct qd_sqe *sqe,
			      const struct qd_opdef *def)
{
	int i;

	if (sqe->resv0 && !def->resv0)
		return false;
	for (i = def->addr2 ? 1 : 0; i < ARRAY_SIZE(sqe->resv); i++)
		if (sqe->resv[i])
			return false;
	return true;
}

static void qd_submit_one(struct qd_op *op, const struct qd_sqe *sqe)
{
	const struct qd_opdef *def;
	unsigned int opcode = sqe->opcode;
	int ret;

	op->user_data = sqe->user_data;
	op->opcode = opcode;
	op->qd = sqe->qd;
	op->sqe_flags = sqe->flags & QD_SQE_F_ALL;
	op->op_flags = sqe->op_flags;

	if (opcode >= QD_OP_COUNT) {
		qd_stat_inc(invalid_opcode);
		qd_op_complete(op, -EINVAL);
		return;
	}
	/* No speculative call through a table entry past its end. */
	opcode = array_index_nospec(opcode, QD_OP_COUNT);
	def = &qd_opdefs[opcode];
	qd_stat_inc(op[opcode].submitted);

	if (sqe->flags & ~QD_SQE_F_ALL || sqe->op_flags & ~def->op_flags ||
	    (def->no_skip && sqe->flags & QD_SQE_F_SKIP_SUCCESS) ||
	    !qd_sqe_resv_clear(sqe, def))
		ret = -EINVAL;
	else
		ret = def->prep(op, sqe);
	if (!ret)
		ret = def->issue(op);
	if (ret)
		qd_op_complete(op, ret);
}

/*
 * Bound the operations a context runs at once by max_inflight. Ops waiting
 * in a queue for an op of the other kind (op.c: qd_op_wait()) do not count:
 * they are bounded by max_queued, and counting them here would let pending
 * pushes refuse the pops that complete them (or the reverse), with the rest
 * of the SQ stuck behind the refused SQE. What counts always finishes on its
 * own or when user space reaps the CQ (parked completions), so a context
 * at the bound drains without needing a new submission.
 */
static bool qd_admit(struct qd_ctx *ctx)
{
	int running = atomic_read(&ctx->nr_ops) -
		      atomic_read(&ctx->nr_wait_push) -
		      atomic_read(&ctx->nr_wait_pop);

	return running < (int)ctx->max_inflight;
}

/*
 * Called with ring->sq_lock held, by QD_IOC_ENTER or the poller (sqpoll.c).
 * Returns SQEs consumed or -errno.
 */
int qd_submit_sqes(struct qd_ring *ring, u32 to_submit)
{
	struct qd_ctx *ctx = ring->ctx;
	struct qd_sq *sq = &ring->sq;
	struct qd_batch batch;
	struct qd_sqe sqe;
	struct qd_op *op;
	u32 tail, avail, n;

	lockdep_assert_held(&ring->sq_lock);
	/* Pairs with user space's release of tail after writing SQEs. */
	tail = smp_load_acquire(&sq->hdr->tail);
	if (!qd_ring_valid(sq->head, tail, sq->entries))
		return -EINVAL;
	avail = min(qd_ring_used(sq->head, tail), to_submit);

	/*
	 * Block I/O the batch issues reaches the driver at once (file_bio.c);
	 * the wake-ups of its completions come at its end (rings.c).
	 */
	qd_batch_start(&batch);
	for (n = 0; n < avail; n++) {
		if (!qd_admit(ctx))
			break;
		memcpy(&sqe, &sq->sqes[qd_ring_slot(sq->head, sq->mask)],
		       sizeof(sqe));
		/* An OPEN is the application's own task's (fileop.c). */
		if (sqe.opcode == QD_OP_OPEN && current->flags & PF_KTHREAD)
			break;
		/* A wake that succeeds posts nothing: no op (queue.c). */
		if (sqe.opcode == QD_OP_WAKE &&
		    qd_sqe_resv_clear(&sqe, &qd_opdefs[QD_OP_WAKE]) &&
		    qd_wake_direct(ctx, &sqe)) {
			sq->head++;
			continue;
		}
		op = qd_op_alloc(ring);
		if (!op)
			break;
		sq->head++;
		qd_submit_one(op, &sqe);
	}
	qd_batch_finish(&batch);
	/* The SQE copies are done: user space may reuse the slots. */
	smp_store_release(&sq->hdr->head, sq->head);
	if (!n && avail && !atomic_read(&ctx->nr_ops))
		return -ENOMEM;
	return n;
}

/* What a QD_ENTER_MQ_POP sleeper waits on besides its ring's CQ tail. */
struct qd_mq_wait {
	struct qd_object *obj;		/* the queue (an import's, held by it) */
	struct qd_mq_sleeper sl;
};

/* Whether the waiter of e may return: its condition holds. */
static bool qd_wait_done(struct qd_ring *ring, const struct qd_enter *e,
			 struct qd_mq_wait *mw)
{
	if (e->flags & QD_ENTER_MQ_POP)
		return qd_cq_moved(ring, e->wait_seq) ||
		       qd_memq_sleep_ready(mw->obj, &mw->sl);
	if (e->flags & QD_ENTER_CQ_TAIL)
		return qd_cq_moved(ring, e->wait_seq);
	if (e->flags & QD_ENTER_CTX_SEQ)
		return qd_ctx_seq_moved(ring->ctx, e->wait_seq);
	return qd_cq_should_wake(ring, e->min_complete);
}

/*
 * Wait until e's condition holds. Parked completions of the ring are moved
 * into it before every sleep, so a waiter never sleeps while completions
 * are parked and the ring has room for them: after the flush, either the
 * condition holds, or nothing is parked, or the ring is full (and a
 * GETEVENTS waiter has its min, since min <= entries).
 */
static int qd_wait_cqes(struct qd_ring *ring, const struct qd_enter *e,
			struct qd_mq_wait *mw)
{
	struct qd_ctx *ctx = ring->ctx;
	wait_queue_head_t *wq = &ring->cq.wait;
	ktime_t end = 0;
	long ret;

	if (e->flags & QD_ENTER_CTX_SEQ)
		wq = &ctx->wait;
	if (e->flags & QD_ENTER_TIMEOUT)
		end = ktime_add_safe(ktime_get(), ns_to_ktime(e->timeout_ns));

	for (;;) {
		qd_cq_flush_overflow(ring);
		if (e->flags & QD_ENTER_CTX_SEQ) {
			if (qd_ctx_seq_moved(ctx, e->wait_seq))
				return 0;
		} else if (e->flags & (QD_ENTER_CQ_TAIL | QD_ENTER_MQ_POP)) {
			if (READ_ONCE(ring->cq.tail) != e->wait_seq)
				return 0;
			if (mw && qd_memq_sleep_ready(mw->obj, &mw->sl))
				return 0;
		} else if (qd_cq_ready(ring) >= e->min_complete) {
			return 0;
		}
		if (e->flags & QD_ENTER_TIMEOUT) {
			ktime_t left = ktime_sub(end, ktime_get());

			if (ktime_compare(left, 0) <= 0)
				return -ETIMEDOUT;
			ret = wait_event_interruptible_hrtimeout(*wq,
								 qd_wait_done(ring, e, mw),
								 left);
		} else {
			ret = wait_event_interruptible(*wq,
						       qd_wait_done(ring, e, mw));
		}
		if (ret == -ETIME)
			return -ETIMEDOUT;
		if (ret)
			return -EINTR;
	}
}

/*
 * QD_ENTER_MQ_POP: sleep on the ring's CQ like CQ_TAIL, registered with the
 * mapped queue e->qd as a sleeper (memq.c), which kicks the ring's wait
 * queue when something may be there for a pop in user space. Process
 * context; the object reference keeps the queue while we sleep.
 */
static int qd_wait_mq(struct qd_ring *ring, const struct qd_enter *e)
{
	struct qd_mq_wait mw = { .sl = { .ring = ring, .ctx = ring->ctx } };
	struct qd_object *obj;
	int ret;

	obj = qd_object_get(ring->ctx, e->qd);
	if (!obj)
		return -EBADF;
	/* An import with both rights sleeps on its queue. */
	mw.obj = qd_share_mapped_queue(obj);
	ret = IS_ERR(mw.obj) ? -EINVAL : qd_memq_sleep_begin(mw.obj, &mw.sl);
	if (!ret) {
		ret = qd_wait_cqes(ring, e, &mw);
		qd_memq_sleep_end(mw.obj, &mw.sl);
	}
	qd_object_put(obj);
	return ret;
}

#define QD_ENTER_WAITS	(QD_ENTER_GETEVENTS | QD_ENTER_CQ_TAIL | \
			 QD_ENTER_CTX_SEQ | QD_ENTER_MQ_POP)
#define QD_ENTER_SEQ	(QD_ENTER_CQ_TAIL | QD_ENTER_CTX_SEQ | QD_ENTER_MQ_POP)

static int qd_enter_check(const struct qd_enter *e)
{
	u32 waits = e->flags & QD_ENTER_WAITS;

	if (e->flags & ~QD_ENTER_ALL || e->resv)
		return -EINVAL;
	if (!(e->flags & QD_ENTER_MQ_POP) && e->qd)
		return -EINVAL;
	if (waits & (waits - 1))
		return -EINVAL;		/* more than one wait mode */
	if ((e->flags & QD_ENTER_TIMEOUT) && e->timeout_ns < 0)
		return -EINVAL;
	if (!(e->flags & QD_ENTER_SEQ) && e->wait_seq)
		return -EINVAL;
	return 0;
}

int qd_enter(struct qd_ctx *ctx, struct qd_enter __user *arg)
{
	struct qd_ring *ring;
	struct qd_enter e;
	int submitted = 0, ret;
	bool wait;

	if (copy_from_user(&e, arg, sizeof(e)))
		return -EFAULT;
	ret = qd_enter_check(&e);
	if (ret)
		return ret;
	if (!qd_ctx_nr_rings(ctx))
		return -ENXIO;
	ring = qd_ring_get(ctx, e.ring);
	if (!ring)
		return -EINVAL;
	if ((e.flags & QD_ENTER_GETEVENTS) && e.min_complete > ring->cq.entries)
		return -EINVAL;
	if (e.flags & QD_ENTER_SQ_WAKEUP) {
		if (!ctx->sqp)
			return -EINVAL;
		qd_sqpoll_wake(ctx->sqp);
	}

	atomic64_inc(&ctx->enters);
	qd_cq_flush_overflow(ring);
	if (e.to_submit) {
		if (mutex_lock_killable(&ring->sq_lock))
			return -EINTR;
		submitted = qd_submit_sqes(ring, e.to_submit);
		mutex_unlock(&ring->sq_lock);
		if (submitted < 0)
			return submitted;
	}

	wait = e.flags & QD_ENTER_SEQ ||
	       (e.flags & QD_ENTER_GETEVENTS && e.min_complete);
	if (wait) {
		if (e.flags & QD_ENTER_MQ_POP)
			ret = qd_wait_mq(ring, &e);
		else
			ret = qd_wait_cqes(ring, &e, NULL);
		if (ret && !submitted)
			return ret;
	}
	return submitted;
}
