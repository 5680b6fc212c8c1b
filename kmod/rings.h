/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_RINGS_H
#define _QD_RINGS_H

#include <linux/blkdev.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/qd.h>

struct qd_ctx;
struct qd_kelem;
struct qd_op;
struct qd_sqpoll;
struct vm_area_struct;

/* The shared header at the start of each ring mapping. */
struct qd_ring_hdr {
	u32 head;
	u32 pad0[15];
	u32 tail;
	u32 pad1[15];
	u32 ring_mask;
	u32 ring_entries;
	u32 flags;
	u32 overflow;
	u32 ctx_seq;		/* CQ of ring 0 only: see qd_cq_bump_seq() */
	u32 pad2[11];
};

struct qd_sq {
	struct qd_ring_hdr *hdr;	/* vmalloc memory, mapped by user */
	struct qd_sqe *sqes;
	size_t bytes;
	u32 entries;
	u32 mask;
	u32 head;			/* the kernel's own copy; hdr->head mirrors it */
	u32 poll_tail;			/* the tail the poller last saw (sqpoll.c) */
};

struct qd_cq {
	struct qd_ring_hdr *hdr;
	struct qd_cqe *cqes;
	struct qd_elem *elems;
	size_t bytes;
	u32 entries;
	u32 mask;

	spinlock_t lock;		/* tail, overflow list, hdr->flags; any context */
	u32 tail;			/* the kernel's own copy */
	struct list_head overflow;	/* struct qd_parked waiting for a slot */
	u32 nr_overflow;
	bool dead;			/* context released: drop, don't park */
	wait_queue_head_t wait;		/* QD_IOC_ENTER sleepers on this ring */
};

/*
 * One SQ/CQ pair of a context. Ring 0 is made by QD_IOC_SETUP, the others
 * by QD_IOC_RING; all live until the context is freed, so an op (which
 * holds a context reference) may point at its ring. sq_lock serialises the
 * SQ's consumer (QD_IOC_ENTER may run on one ring from several threads).
 */
struct qd_ring {
	struct qd_ctx *ctx;
	u32 id;
	size_t charged;			/* ring bytes charged (user.c) */
	struct mutex sq_lock;		/* the SQ consumer; killable */
	struct qd_sq sq;
	struct qd_cq cq;
	/*
	 * Wake-ups deferred to the end of a submitting task's batch (its
	 * block plug: rings.c, qd_cq_wake()): wake_cb is on that task's
	 * plug list while QD_RING_WAKE_QUEUED is set.
	 */
	struct blk_plug_cb wake_cb;
	unsigned long wake_flags;
};

#define QD_RING_WAKE_QUEUED	0

/*
 * A completion parked in a ring's overflow list: an op's (its final CQE),
 * or an element a multishot pop delivered (a CQE with QD_CQE_F_MORE).
 */
enum qd_parked_kind {
	QD_PARKED_OP = 1,
	QD_PARKED_ELEM,
};

struct qd_parked {
	struct list_head node;
	u8 kind;
};

int qd_params_check(struct qd_params *p, bool setup);
int qd_rings_setup(struct qd_ctx *ctx, struct qd_params *p,
		   struct qd_sqpoll *sqp);
int qd_ring_add(struct qd_ctx *ctx, struct qd_params __user *arg);
void qd_rings_free(struct qd_ctx *ctx);
int qd_rings_mmap(struct qd_ctx *ctx, struct vm_area_struct *vma);
struct qd_ring *qd_ring_get(struct qd_ctx *ctx, u32 id);

void qd_cq_post(struct qd_op *op);
void qd_ring_wake(struct qd_ring *ring);

/* A submission batch: completions during it wake once, at its end. */
struct qd_batch {
	struct blk_plug plug;
	struct blk_plug_cb mark;
};

void qd_batch_start(struct qd_batch *b);
void qd_batch_finish(struct qd_batch *b);
void qd_cq_post_elem(struct qd_op *op, struct qd_kelem *elem);
void qd_cq_flush_overflow(struct qd_ring *ring);
void qd_cq_flush_all(struct qd_ctx *ctx);
void qd_cq_discard_overflow(struct qd_ctx *ctx);
u32 qd_cq_ready(struct qd_ring *ring);
bool qd_cq_pending(struct qd_ring *ring);
bool qd_ctx_cq_pending(struct qd_ctx *ctx);
bool qd_cq_should_wake(struct qd_ring *ring, u32 min);
bool qd_cq_moved(struct qd_ring *ring, u32 tail);
bool qd_ctx_seq_moved(struct qd_ctx *ctx, u32 seq);

#endif /* _QD_RINGS_H */
