// SPDX-License-Identifier: GPL-2.0
/*
 * QD_IOC_ENTER: consume SQEs, then optionally wait for completions.
 *
 * Each SQE is copied out of the shared ring once, before anything looks at
 * it, so user space changing the ring meanwhile cannot change what was
 * validated. Every consumed SQE yields exactly one CQE.
 */
#include <linux/hrtimer.h>
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

	for (i = 0; i < ARRAY_SIZE(sqe->resv); i++)
		if (sqe->resv[i])
			return false;
	return true;
}

static void qd_submit_one(struct qd_op *op, const struct qd_sqe *sqe)
{
	const struct qd_opdef *def;
	int ret;

	op->user_data = sqe->user_data;
	op->opcode = sqe->opcode;
	op->qd = sqe->qd;

	if (sqe->opcode >= QD_OP_LAST) {
		qd_stat_inc(invalid_opcode);
		qd_op_complete(op, -EINVAL);
		return;
	}
	def = &qd_opdefs[sqe->opcode];
	qd_stat_inc(op[sqe->opcode].submitted);

	if (sqe->flags || !qd_sqe_resv_clear(sqe))
		ret = -EINVAL;
	else
		ret = def->prep(op, sqe);
	if (!ret)
		ret = def->issue(op);
	if (ret)
		qd_op_complete(op, ret);
}

/*
 * Bound the operations a context has in flight. At max_inflight only pushes
 * are still admitted (up to twice that): pending pops can only be completed
 * by a push, so refusing pushes too could wedge the context for good.
 */
static bool qd_admit(struct qd_ctx *ctx, const struct qd_sqe *sqe)
{
	int nr = atomic_read(&ctx->nr_ops);

	if (nr < ctx->max_inflight)
		return true;
	return sqe->opcode == QD_OP_PUSH && nr < 2 * ctx->max_inflight;
}

/* Called with ctx->lock held. Returns SQEs consumed or -errno. */
static int qd_submit_sqes(struct qd_ctx *ctx, u32 to_submit)
{
	struct qd_sq *sq = &ctx->sq;
	struct qd_sqe sqe;
	struct qd_op *op;
	u32 tail, avail, n;

	/* Pairs with user space's release of tail after writing SQEs. */
	tail = smp_load_acquire(&sq->hdr->tail);
	if (!qd_ring_valid(sq->head, tail, sq->entries))
		return -EINVAL;
	avail = min(qd_ring_used(sq->head, tail), to_submit);

	for (n = 0; n < avail; n++) {
		memcpy(&sqe, &sq->sqes[qd_ring_slot(sq->head, sq->mask)],
		       sizeof(sqe));
		if (!qd_admit(ctx, &sqe))
			break;
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

static int qd_wait_cqes(struct qd_ctx *ctx, const struct qd_enter *e)
{
	struct qd_cq *cq = &ctx->cq;
	u32 min = e->min_complete;
	long ret;

	if (e->flags & QD_ENTER_TIMEOUT)
		ret = wait_event_interruptible_hrtimeout(cq->wait,
							 qd_cq_ready(ctx) >= min,
							 ns_to_ktime(e->timeout_ns));
	else
		ret = wait_event_interruptible(cq->wait, qd_cq_ready(ctx) >= min);

	if (ret == -ETIME)
		return -ETIMEDOUT;
	if (ret)
		return -EINTR;
	return 0;
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
	mutex_lock(&ctx->lock);
	qd_cq_flush_overflow(ctx);
	if (e.to_submit)
		submitted = qd_submit_sqes(ctx, e.to_submit);
	mutex_unlock(&ctx->lock);
	if (submitted < 0)
		return submitted;

	if (e.flags & QD_ENTER_GETEVENTS && e.min_complete) {
		ret = qd_wait_cqes(ctx, &e);
		if (ret && !submitted)
			return ret;
	}
	return submitted;
}
