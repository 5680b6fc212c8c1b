// SPDX-License-Identifier: GPL-2.0
/* QD_OP_NOP: completes at once; measures the ring round trip. */
#include "op.h"
#include "opdef.h"

int qd_nop_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	if (sqe->qd || sqe->nsegs || sqe->addr)
		return -EINVAL;
	return 0;
}

int qd_nop_issue(struct qd_op *op)
{
	qd_op_complete(op, 0);
	return 0;
}
