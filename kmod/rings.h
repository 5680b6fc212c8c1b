/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_RINGS_H
#define _QD_RINGS_H

#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/qd.h>

struct qd_ctx;
struct qd_op;
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
	u32 pad2[12];
};

struct qd_sq {
	struct qd_ring_hdr *hdr;	/* vmalloc memory, mapped by user */
	struct qd_sqe *sqes;
	size_t bytes;
	u32 entries;
	u32 mask;
	u32 head;			/* the kernel's own copy; hdr->head mirrors it */
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
	struct list_head overflow;	/* qd_op waiting for a CQ slot */
	u32 nr_overflow;
	bool dead;			/* context released: drop, don't park */
	wait_queue_head_t wait;
};

int qd_rings_setup(struct qd_ctx *ctx, struct qd_params *p);
void qd_rings_free(struct qd_ctx *ctx);
int qd_rings_mmap(struct qd_ctx *ctx, struct vm_area_struct *vma);

void qd_cq_post(struct qd_ctx *ctx, struct qd_op *op);
void qd_cq_flush_overflow(struct qd_ctx *ctx);
void qd_cq_discard_overflow(struct qd_ctx *ctx);
u32 qd_cq_ready(struct qd_ctx *ctx);
bool qd_cq_pending(struct qd_ctx *ctx);
bool qd_cq_should_wake(struct qd_ctx *ctx, u32 min);

#endif /* _QD_RINGS_H */
