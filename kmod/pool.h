/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_POOL_H
#define _QD_POOL_H

#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/qd.h>

struct qd_ctx;
struct qd_kelem;
struct qd_object;
struct qd_op;
struct qd_region;
struct seq_file;

/* One provided buffer: a segment of a region, with a reference on it. */
struct qd_pool_buf {
	struct qd_region *region;
	struct qd_seg seg;
};

/*
 * Something that found its pool empty and waits for a PROVIDE (a socket
 * with bytes and a pop but no buffer). ready() runs in process context
 * (the PROVIDE's submitter, or the context's release, then with live
 * false), without the pool's lock, once per qd_pool_take_or_wait() that
 * queued the waiter; obj is held from the queueing until ready() returned.
 */
struct qd_pool_waiter {
	struct list_head node;		/* empty while not waiting */
	struct qd_object *obj;		/* referenced while waiting */
	u32 group;			/* the pool it waits on */
	void (*ready)(struct qd_pool_waiter *w, bool live);
};

/*
 * A pool of provided buffers (QD_OP_PROVIDE), one per buf_group of a
 * context. lock is irq-safe: buffers are taken in the socket callbacks
 * (softirq). bufs is a stack, so the buffer provided or freed last (the
 * one most likely in the cache) goes first; it grows in process context
 * up to QD_POOL_MAX_BUFS.
 */
struct qd_pool {
	spinlock_t lock;		/* irq-safe: guards all below */
	u32 nr, cap;
	struct qd_pool_buf *bufs;
	struct list_head waiters;
	bool dead;			/* the context's release: no waiters */
	u64 provided, taken;		/* buffers, ever */
};

void qd_pools_init(struct qd_ctx *ctx);
void qd_pools_release(struct qd_ctx *ctx);
void qd_pools_free(struct qd_ctx *ctx);
bool qd_pool_take_or_wait(struct qd_ctx *ctx, u32 group, struct qd_kelem *dst,
			  struct qd_pool_waiter *w);
void qd_pool_unwait(struct qd_ctx *ctx, struct qd_pool_waiter *w);
void qd_pools_show(struct qd_ctx *ctx, struct seq_file *m);

#endif /* _QD_POOL_H */
