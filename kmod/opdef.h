/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_OPDEF_H
#define _QD_OPDEF_H

#include <linux/types.h>
#include <linux/qd.h>

struct qd_op;

/* Opcodes this module knows; not part of the ABI. */
#define QD_OP_COUNT	(QD_OP_SYNC + 1)

/*
 * One entry per opcode. prep validates the (already copied) SQE and gathers
 * what issue needs; issue starts the operation. Both return 0 or -errno; an
 * error completes the op with that result.
 */
struct qd_opdef {
	const char *name;
	u32 op_flags;		/* sqe->op_flags bits the opcode defines */
	bool no_skip;		/* success carries data: no SKIP_SUCCESS */
	bool addr2;		/* uses the addr2 slot (addr2, off, open_mode) */
	bool resv0;		/* uses the resv0 slot (addr_len, buf_group,
				 * open_flags)
				 */
	int (*prep)(struct qd_op *op, const struct qd_sqe *sqe);
	int (*issue)(struct qd_op *op);
};

extern const struct qd_opdef qd_opdefs[QD_OP_COUNT];

/* PUSH, PUSHTO: QD_PUSH_ZC and QD_PUSH_COPY are exclusive. */
static inline bool qd_push_flags_bad(u32 op_flags)
{
	return (op_flags & (QD_PUSH_ZC | QD_PUSH_COPY)) ==
	       (QD_PUSH_ZC | QD_PUSH_COPY);
}

/* Per-family prep/issue functions. */
int qd_nop_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_nop_issue(struct qd_op *op);
int qd_push_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_push_issue(struct qd_op *op);
int qd_pop_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_pop_issue(struct qd_op *op);
int qd_cancel_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_cancel_issue(struct qd_op *op);
int qd_wake_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_wake_issue(struct qd_op *op);
int qd_accept_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_accept_issue(struct qd_op *op);
int qd_connect_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_connect_issue(struct qd_op *op);
int qd_pushto_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_pushto_issue(struct qd_op *op);
int qd_provide_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_provide_issue(struct qd_op *op);
int qd_open_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_open_issue(struct qd_op *op);
int qd_sync_prep(struct qd_op *op, const struct qd_sqe *sqe);
int qd_sync_issue(struct qd_op *op);
struct qd_ctx;
bool qd_wake_direct(struct qd_ctx *ctx, const struct qd_sqe *sqe);

#endif /* _QD_OPDEF_H */
