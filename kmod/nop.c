// SPDX-License-Identifier: GPL-2.0
/*
 * QD_OP_NOP: completes at once, which measures the ring round trip; or,
 * with QD_NOP_HARDIRQ / QD_NOP_SOFTIRQ, from an hrtimer callback in that
 * context after delay_ns, as a device or socket backend would complete an
 * op: while its context is being torn down, with the CQ full, after the
 * file is closed. The selftests and the fuzzer use it to prove the
 * completion path safe from interrupt context.
 */
#include <linux/hrtimer.h>
#include <linux/slab.h>

#include "op.h"
#include "opdef.h"

#define QD_NOP_ALL	(QD_NOP_HARDIRQ | QD_NOP_SOFTIRQ)

struct qd_nop_timer {
	struct hrtimer timer;
	struct qd_op *op;
};

int qd_nop_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	u32 f = sqe->nop_flags;

	if (sqe->qd || sqe->nsegs)
		return -EINVAL;
	if (f & ~QD_NOP_ALL || f == QD_NOP_ALL)
		return -EINVAL;
	if (!f && sqe->delay_ns)
		return -EINVAL;
	if (sqe->delay_ns > QD_NOP_MAX_DELAY_NS)
		return -EINVAL;
	op->nop.flags = f;
	op->nop.delay_ns = sqe->delay_ns;
	return 0;
}

/* hardirq or softirq context, per the timer's mode. */
static enum hrtimer_restart qd_nop_fire(struct hrtimer *timer)
{
	struct qd_nop_timer *t = container_of(timer, struct qd_nop_timer, timer);

	qd_op_complete(t->op, 0);
	kfree(t);
	return HRTIMER_NORESTART;
}

int qd_nop_issue(struct qd_op *op)
{
	enum hrtimer_mode mode = HRTIMER_MODE_REL_HARD;
	struct qd_nop_timer *t;

	if (!op->nop.flags) {
		qd_op_complete(op, 0);
		return 0;
	}
	t = kmalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);
	if (!t)
		return -ENOMEM;
	if (op->nop.flags & QD_NOP_SOFTIRQ)
		mode = HRTIMER_MODE_REL_SOFT;
	t->op = op;
	hrtimer_init(&t->timer, CLOCK_MONOTONIC, mode);
	t->timer.function = qd_nop_fire;
	hrtimer_start(&t->timer, ns_to_ktime(op->nop.delay_ns), mode);
	return 0;
}
