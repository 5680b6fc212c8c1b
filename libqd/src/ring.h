/* SPDX-License-Identifier: MIT */
/*
 * User space's view of one ring's SQ and CQ (protocol in uapi/linux/qd.h).
 * libqd is the only producer of the SQ and the only consumer of the CQ,
 * both under the ring's lock (rings.h). The index math is the kernel's
 * own, from kmod/common/qd_ring.h.
 */
#ifndef LIBQD_RING_H
#define LIBQD_RING_H

#include <stddef.h>
#include <stdint.h>

#include <linux/qd.h>

#include "qd_ring.h"

struct qd_sqring {
	uint32_t	*khead;		/* kernel-owned */
	uint32_t	*ktail;		/* ours */
	uint32_t	*kflags;
	struct qd_sqe	*sqes;
	uint32_t	mask;
	uint32_t	entries;
	uint32_t	tail;		/* our copy of *ktail */
};

struct qd_cqring {
	uint32_t	*khead;		/* ours */
	uint32_t	*ktail;		/* kernel-owned */
	uint32_t	*kflags;
	uint32_t	*koverflow;
	struct qd_cqe	*cqes;
	struct qd_elem	*elems;
	uint32_t	mask;
	uint32_t	entries;
	uint32_t	head;		/* our copy of *khead */
};

static inline uint32_t qd_load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void qd_store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* SQEs written and not yet consumed by the kernel (at most entries). */
static inline uint32_t qd_sq_queued(const struct qd_sqring *sq)
{
	uint32_t used = qd_ring_used(qd_load_acquire(sq->khead), sq->tail);

	return used > sq->entries ? sq->entries : used;
}

/* The next free SQE, zeroed, or NULL when the SQ is full. */
static inline struct qd_sqe *qd_sq_next(struct qd_sqring *sq)
{
	struct qd_sqe *sqe;

	if (!qd_ring_space(qd_load_acquire(sq->khead), sq->tail, sq->entries))
		return NULL;
	sqe = &sq->sqes[qd_ring_slot(sq->tail, sq->mask)];
	*sqe = (struct qd_sqe){ 0 };
	return sqe;
}

/* Publish the SQE qd_sq_next() returned. */
static inline void qd_sq_commit(struct qd_sqring *sq)
{
	sq->tail++;
	qd_store_release(sq->ktail, sq->tail);
}

/* Completions waiting in the CQ. */
static inline uint32_t qd_cq_ready(const struct qd_cqring *cq)
{
	return qd_ring_used(cq->head, qd_load_acquire(cq->ktail));
}

static inline int qd_cq_overflowed(const struct qd_cqring *cq)
{
	return !!(__atomic_load_n(cq->kflags, __ATOMIC_ACQUIRE) &
		  QD_CQ_F_OVERFLOW);
}

/*
 * Locate the ring fields in the two mappings through the offsets
 * QD_IOC_SETUP returned, checking that everything lies inside them.
 * Returns 0 or -EINVAL.
 */
int qd__rings_init(struct qd_sqring *sq, struct qd_cqring *cq,
		   void *sqmem, size_t sqbytes, void *cqmem, size_t cqbytes,
		   const struct qd_params *p);

/*
 * The context-wide completion counter in ring 0's CQ mapping
 * (QD_FEAT_RINGS), or NULL when the kernel has none. -EINVAL when its
 * offset lies outside the mapping.
 */
int qd__cq_ctx_seq(void *cqmem, size_t cqbytes, const struct qd_params *p,
		   uint32_t **out);

/* 0 when the CQE was taken; < 0 to leave it (and what follows) in the CQ. */
typedef int (*qd_cqe_fn)(void *arg, const struct qd_cqe *cqe,
			 const struct qd_elem *elem);

/*
 * Hand every CQE in the ring (with its element slot) to fn, then release
 * the slots fn took to the kernel. Afterwards cq->head is the tail that
 * was read: every CQE posted before that read has been handed over.
 * Returns the number reaped, -EIO when the kernel's tail is impossible, or
 * fn's error when it took none.
 */
int qd__cq_reap(struct qd_cqring *cq, qd_cqe_fn fn, void *arg);

#endif
