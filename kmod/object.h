/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_OBJECT_H
#define _QD_OBJECT_H

#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/types.h>

struct qd_ctx;
struct qd_dlink;
struct qd_dsrc;
struct qd_object;
struct qd_op;
struct seq_file;

/*
 * What a queue descriptor names. Each backend (memory queue today; sockets,
 * files, RDMA and derived queues later) fills in these operations.
 *
 * Contexts each callback may run in, and what it may do there:
 *  prep_pop   process context (submission), optional: get what a pop
 *             needs before it is issued (it may allocate and sleep).
 *  wake       any context, optional: serve parked operations (QD_OP_WAKE).
 *  push, pop  any context: process (submission) today; softirq (socket
 *             callbacks) or hardirq (block completions, derived queues fed
 *             from them) as backends land. Must not sleep; locks they take
 *             must be irq-safe (spin_lock_irqsave). They take ownership of the
 *             op when they return 0 and complete it now or later with
 *             qd_op_complete(); on a negative return the caller completes
 *             the op with that error.
 *  cancel     any context, like push and pop: complete the pending op of
 *             context ctx whose user_data is given with -ECANCELED;
 *             return 0, or -ENOENT when there is none.
 *  close      process context, with ctx->lock held; may sleep (e.g.
 *             cond_resched() while dropping many elements). Cancels
 *             everything pending (-ECANCELED) and refuses later push/pop.
 *  release    any context (the last reference may be an op's, dropped where
 *             it completes); must not sleep. Lookups are lockless, so the
 *             object must be freed after an RCU grace period (kfree_rcu()).
 *  show       process context (debugfs), with ctx->lock held; may sleep.
 *  accept, connect, pushto  (sockets, optional: -EOPNOTSUPP without)
 *             process context (submission, the submitter's credentials);
 *             may sleep briefly (lock_sock) but never wait for the
 *             network: like push and pop they own the op on 0 and
 *             complete it now or later, from any context.
 *  sync       (storage, optional: -EINVAL without) process context
 *             (submission), like push.
 *  dsrc, derive_link, derive_unlink  (sources of derived queues, optional:
 *             -EOPNOTSUPP without; derive.h) process context, ctx->lock
 *             held: the object's struct qd_dsrc (NULL: it cannot be one
 *             now); add a derived queue's link to its takers (0, or
 *             -EBADF closed, -EOPNOTSUPP); take a live link off and give
 *             back what the derived queue holds (qd_derive_unlink()).
 */
struct qd_object_ops {
	const char *type;
	int (*push)(struct qd_object *obj, struct qd_op *op);
	int (*pop)(struct qd_object *obj, struct qd_op *op);
	int (*prep_pop)(struct qd_object *obj, struct qd_op *op);
	int (*wake)(struct qd_object *obj);
	int (*cancel)(struct qd_object *obj, struct qd_ctx *ctx, u64 user_data);
	void (*close)(struct qd_object *obj);
	void (*release)(struct qd_object *obj);
	void (*show)(struct qd_object *obj, struct seq_file *m);
	int (*accept)(struct qd_object *obj, struct qd_op *op);
	int (*connect)(struct qd_object *obj, struct qd_op *op);
	int (*pushto)(struct qd_object *obj, struct qd_op *op);
	int (*sync)(struct qd_object *obj, struct qd_op *op);
	struct qd_dsrc *(*dsrc)(struct qd_object *obj);
	int (*derive_link)(struct qd_object *obj, struct qd_dlink *l);
	void (*derive_unlink)(struct qd_object *obj, struct qd_dlink *l);
	bool pool;	/* pops may take buffers from a pool (QD_POP_POOL) */
	bool positional; /* QD_PUSH_AT, QD_POP_AT: else -ESPIPE */
};

struct qd_object {
	const struct qd_object_ops *ops;
	struct qd_ctx *ctx;
	refcount_t refs;
	int qd;
	struct rcu_head rcu;
};

int qd_object_reserve(struct qd_ctx *ctx, u32 *qd);
void qd_object_unreserve(struct qd_ctx *ctx, u32 qd);
int qd_object_claim(struct qd_ctx *ctx, u32 *qd);
void qd_object_unclaim(struct qd_ctx *ctx, u32 qd);
void qd_object_install(struct qd_ctx *ctx, u32 qd, struct qd_object *obj,
		       const struct qd_object_ops *ops);
struct qd_object *qd_object_get(struct qd_ctx *ctx, int qd);
void qd_object_put(struct qd_object *obj);
int qd_object_close(struct qd_ctx *ctx, int qd);
void qd_object_close_all(struct qd_ctx *ctx);

#endif /* _QD_OBJECT_H */
