/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_OBJECT_H
#define _QD_OBJECT_H

#include <linux/refcount.h>
#include <linux/types.h>

struct qd_ctx;
struct qd_object;
struct qd_op;
struct seq_file;

/*
 * What a queue descriptor names. Each backend (memory queue today; sockets,
 * files, RDMA and derived queues later) fills in these operations.
 *
 * push/pop take ownership of the op when they return 0 and complete it now
 * or later with qd_op_complete(); on a negative return the caller completes
 * the op with that error.
 */
struct qd_object_ops {
	const char *type;
	int (*push)(struct qd_object *obj, struct qd_op *op);
	int (*pop)(struct qd_object *obj, struct qd_op *op);
	void (*close)(struct qd_object *obj);	/* cancel everything pending */
	void (*release)(struct qd_object *obj);	/* free; last reference gone */
	void (*show)(struct qd_object *obj, struct seq_file *m);
};

struct qd_object {
	const struct qd_object_ops *ops;
	struct qd_ctx *ctx;
	refcount_t refs;
	int qd;
};

int qd_object_install(struct qd_ctx *ctx, struct qd_object *obj,
		      const struct qd_object_ops *ops);
struct qd_object *qd_object_get(struct qd_ctx *ctx, int qd);
void qd_object_put(struct qd_object *obj);
int qd_object_close(struct qd_ctx *ctx, int qd);
void qd_object_close_all(struct qd_ctx *ctx);

#endif /* _QD_OBJECT_H */
