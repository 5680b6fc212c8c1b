// SPDX-License-Identifier: GPL-2.0
/*
 * QD_IOC_ENTER: consume SQEs, then optionally wait for completions.
 *
 * Each SQE is copied out of the shared ring once, before anything looks at
 * it, so user space changing the ring meanwhile cannot change what was
 * validated. Every consumed SQE yields exactly one CQE.
 */
#include <linux/hrtimer.h>
#include <linux/nospec.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "common/qd_ring.h"
#include "ctx.h"
#include "op.h"
#include "opdef.h"
#include "stats.h"

static bool qd_sqe_resv_clear(const struct qd_sqe *sqe)
{
	int i;

	if (sqe->resv0)
		return false;
	for (i = 0; i < ARRAY_SIZE(sqe->resv); i++)
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

	if (opcode >= QD_OP_COUNT) {
		qd_stat_inc(invalid_opcode);
		qd_op_complete(op, -EINVAL);
		return;
	}
	/* No speculative call through a table entry past its end. */
	opcode = array_index_nospec(opcode, QD_OP_COUNT);
	def = &qd_opdefs[opcode];
	qd_stat_inc(op[opcode].submitted);

	if (sqe->flags || sqe->op_flags & ~def->op_flags ||
	    !qd_sqe_resv_clear(sqe))
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

/* Called with ctx->sq_lock held. Returns SQEs consumed or -errno. */
static int qd_submit_sqes(struct qd_ctx *ctx, u32 to_submit)
{
	struct qd_sq *sq = &ctx->sq;
	struct qd_sqe sqe;
	struct qd_op *op;
	u32 tail, avail, n;

	lockdep_assert_held(&ctx->sq_lock);
	/* Pairs with user space's release of tail after writing SQEs. */
	tail = smp_load_acquire(&sq->hdr->tail);
	if (!qd_ring_valid(sq->head, tail, sq->entries))
		return -EINVAL;
	avail = min(qd_ring_used(sq->head, tail), to_submit);

	for (n = 0; n < avail; n++) {
		if (!qd_admit(ctx))
			break;
		memcpy(&sqe, &sq->sqes[qd_ring_slot(sq->head, sq->mask)],
		       sizeof(sqe));
		op = qd_op_alloc(ctx);
		if (!op)
			break;
		sq->head++;
		qd_submit_one(op, &sqe);
	}
	/* The SQE copies are done: user space may reuse the slots. */
	smp_store_release(&sq->hdr->head, sq->head);
	if (!n && avail && !atomic_read(&ctx->nr_ops))
		return -ENOMEM;
	return n;
}

/*
 * Wait until min CQEs are in the ring. Parked completions are moved into
 * the ring before every sleep, so a waiter never sleeps while completions
 * are parked and the ring has room for them: after the flush, either the
 * ring holds min, or nothing is parked, or the ring is full (and so holds
 * min too, since min <= entries).
 */
static int qd_wait_cqes(struct qd_ctx *ctx, const struct qd_enter *e)
{
	struct qd_cq *cq = &ctx->cq;
	u32 min = e->min_complete;
	ktime_t end = 0;
	long ret;

	if (e->flags & QD_ENTER_TIMEOUT)
		end = ktime_add_safe(ktime_get(), ns_to_ktime(e->timeout_ns));

	for (;;) {
		qd_cq_flush_overflow(ctx);
		if (qd_cq_ready(ctx) >= min)
			return 0;
		if (e->flags & QD_ENTER_TIMEOUT) {
			ktime_t left = ktime_sub(end, ktime_get());

			if (ktime_compare(left, 0) <= 0)
				return -ETIMEDOUT;
			ret = wait_event_interruptible_hrtimeout(cq->wait,
								 qd_cq_should_wake(ctx, min),
								 left);
		} else {
			ret = wait_event_interruptible(cq->wait,
						       qd_cq_should_wake(ctx, min));
		}
		if (ret == -ETIME)
			return -ETIMEDOUT;
		if (ret)
			return -EINTR;
	}
}

int qd_enter(struct qd_ctx *ctx, struct qd_enter __user *arg)
{
	struct qd_enter e;
	int submitted = 0, ret;

	if (copy_from_user(&e, arg, sizeof(e)))
		return -EFAULT;
	if (e.flags & ~QD_ENTER_ALL || e.resv1 || e.resv[0] || e.resv[1])
		return -EINVAL;
	if ((e.flags & QD_ENTER_TIMEOUT) && e.timeout_ns < 0)
		return -EINVAL;
	/* Pairs with the release in qd_rings_setup(). */
	if (!smp_load_acquire(&ctx->rings_ready))
		return -ENXIO;
	if ((e.flags & QD_ENTER_GETEVENTS) && e.min_complete > ctx->cq.entries)
		return -EINVAL;

	atomic64_inc(&ctx->enters);
	qd_cq_flush_overflow(ctx);
	if (e.to_submit) {
		if (mutex_lock_killable(&ctx->sq_lock))
			return -EINTR;
		submitted = qd_submit_sqes(ctx, e.to_submit);
		mutex_unlock(&ctx->sq_lock);
		if (submitted < 0)
			return submitted;
	}

	if (e.flags & QD_ENTER_GETEVENTS && e.min_complete) {
		ret = qd_wait_cqes(ctx, &e);
		if (ret && !submitted)
			return ret;
	}
	return submitted;
}
