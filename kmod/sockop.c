// SPDX-License-Identifier: GPL-2.0
/*
 * QD_OP_ACCEPT, QD_OP_CONNECT and QD_OP_PUSHTO: the socket operations.
 * prep copies what the SQE points to (the address, the element) once;
 * issue hands the op to the object (sock.c), which owns it from there.
 * PUSH and POP on sockets are queue.c's, dispatched through the object.
 */
#include "object.h"
#include "op.h"
#include "opdef.h"
#include "sock.h"

int qd_accept_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	return sqe->nsegs || sqe->addr ? -EINVAL : 0;
}

int qd_accept_issue(struct qd_op *op)
{
	if (qd_op_target(op))
		return -EBADF;
	if (!op->obj->ops->accept)
		return -ENOTSOCK;
	return op->obj->ops->accept(op->obj, op);
}

/* Called with the ring's sq_lock held: the copy may fault. */
int qd_connect_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	if (sqe->nsegs || sqe->addr)
		return -EINVAL;
	return qd_sock_addr_copy(&op->sock.addr, sqe->addr2, sqe->addr_len);
}

int qd_connect_issue(struct qd_op *op)
{
	if (qd_op_target(op))
		return -EBADF;
	if (!op->obj->ops->connect)
		return -ENOTSOCK;
	return op->obj->ops->connect(op->obj, op);
}

int qd_pushto_prep(struct qd_op *op, const struct qd_sqe *sqe)
{
	int ret;

	if (qd_push_flags_bad(sqe->op_flags))
		return -EINVAL;
	ret = qd_sock_addr_copy(&op->sock.addr, sqe->addr2, sqe->addr_len);
	if (ret)
		return ret;
	return qd_elem_build(op->ctx, sqe->addr, sqe->nsegs, &op->elem);
}

int qd_pushto_issue(struct qd_op *op)
{
	if (qd_op_target(op))
		return -EBADF;
	if (!op->obj->ops->pushto)
		return -ENOTSOCK;
	return op->obj->ops->pushto(op->obj, op);
}
