/* SPDX-License-Identifier: MIT */
/*
 * The context's rings. Ring 0 comes from QD_IOC_SETUP, the others from
 * QD_IOC_RING, one per thread (thread.c hands them out). Each ring is an
 * SQ/CQ pair with its own token slots, so a thread's submissions,
 * completions and wake-ups touch only its own ring; a ring is never freed
 * while the context lives, so a pointer to one stays good.
 */
#ifndef LIBQD_RINGS_H
#define LIBQD_RINGS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/qd.h>

#include "lock.h"
#include "ring.h"
#include "token.h"

struct qd_ctx;

/* The lazy pops of one mapped queue on one ring (a ring buffer). */
struct qd_lazyq {
	int32_t			qd;
	uint32_t		head;
	uint32_t		n;
	uint32_t		cap;	/* a power of two, or 0 */
	uint32_t		*idx;
};

struct qd_ring {
	/*
	 * The SQ tail, the CQ head, the slots and the push arrays. Taken in
	 * process context by the threads that use the ring (its owner; any
	 * thread waiting on one of its tokens, closing a queue, cancelling)
	 * and by nobody else, so the owner's fast path finds it free.
	 * lock.h: the critical sections are a few loads and stores, and a
	 * cross-thread wait takes it for as long. Never held across a system
	 * call that sleeps, never together with another ring's lock.
	 */
	struct qd_lock		lock;
	uint32_t		id;
	uint32_t		owners;		/* threads using it; init_lock */
	struct qd_sqring	sq;
	struct qd_cqring	cq;
	struct qd_slots		slots;
	/*
	 * A push's segment array, one per SQ entry: the kernel reads entry
	 * i's array while it consumes SQE i, before it moves the SQ head on,
	 * so the array is free again exactly when the SQ entry is.
	 */
	struct qd_elem		*pushsegs;
	/*
	 * QD_OP_WAKEs queued for mapped queues (mq.h): which qd, at which SQ
	 * index, so that a burst of pushes queues one per queue.
	 */
	struct {
		int32_t		qd;
		uint32_t	sq_index;
	}			wakes[4];
	uint32_t		wake_next;
	/* The SQ index of the newest wake queued (if wake_last_set). */
	uint32_t		wake_last;
	uint32_t		wake_last_set;
	/*
	 * SQ index of the last other operation queued (valid if last_op_set):
	 * until the kernel has it, this thread's mapped-queue operations go
	 * through the kernel too, behind it, to keep their order.
	 */
	uint32_t		last_op;
	int			last_op_set;
	/*
	 * Pops of mapped queues not handed to the kernel yet (mq.h): one
	 * FIFO of token slot indices per queue, oldest first, so that
	 * serving them stops at the first empty ring and costs nothing per
	 * pop still waiting. Served from the rings by the next wait on the
	 * ring, submitted only when that wait would sleep. nlazy counts them
	 * all; a FIFO left empty is reused for the next queue.
	 */
	struct qd_lazyq		*lazyq;
	uint32_t		nlazyq;
	uint32_t		nlazy;
	/* pops of callback-derived families pending here (derive_fn.c) */
	uint32_t		ndfn;
	/*
	 * qd_wait_next() (next.c): the tokens of this ring's results in the
	 * order they came (one per result of a multishot pop), kept from the
	 * first qd_wait_next() on the ring (next_on) so that it finds a
	 * result without walking anything. A token whose result was taken
	 * otherwise (qd_wait()) is stale there and skipped. next_lost: an
	 * append found no memory; the next qd_wait_next() scans the slots.
	 */
	uint64_t		*next;
	uint32_t		next_head;
	uint32_t		next_n;
	uint32_t		next_cap;	/* a power of two, or 0 */
	uint8_t			next_on;
	uint8_t			next_lost;
	void			*sq_map;
	void			*cq_map;
	size_t			sq_bytes;
	size_t			cq_bytes;
};

/*
 * Set up ring 0 (QD_IOC_SETUP) or one more (QD_IOC_RING) with the sizes in
 * c->params, map it and publish it in c->rings. Called with init_lock held.
 */
int qd__ring_open(struct qd_ctx *c, struct qd_ring **out);


/* In a fork child: forget every ring (they were not inherited). */
void qd__rings_forget(struct qd_ctx *c);

#endif
