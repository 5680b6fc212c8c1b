/* SPDX-License-Identifier: MIT */
/*
 * Tokens and the slot table. A token is (generation << 32) | slot index
 * and doubles as the SQE's user_data. A slot lives from qd_push()/qd_pop()
 * until qd_wait*() consumes its result; freeing it bumps the generation,
 * so a stale or consumed token never matches again. Slots sit in blocks
 * that never move: the kernel reads a push's segment array in place.
 * Not locked here: the caller holds the completion lock.
 */
#ifndef LIBQD_TOKEN_H
#define LIBQD_TOKEN_H

#include <stdint.h>

#include <linux/qd.h>

#include "qd.h"

#define QD_SLOT_BLOCK_SHIFT	8
#define QD_SLOT_BLOCK		(1U << QD_SLOT_BLOCK_SHIFT)
#define QD_SLOT_NONE		UINT32_MAX
#define QD_SLOT_MAX		(1U << 30)

enum qd_slot_state {
	QD_SLOT_FREE,
	QD_SLOT_PENDING,	/* queued or running in the kernel */
	QD_SLOT_DONE,		/* result reaped, waiting to be consumed */
};

struct qd_slot {
	uint32_t	idx;
	uint32_t	gen;
	uint32_t	next_free;
	uint8_t		state;
	uint8_t		op;		/* QD_OP_* */
	uint8_t		nsegs;		/* segs[] in use */
	int32_t		qd;
	int64_t		res;
	/* PUSH: the array the SQE points at; POP: the element popped */
	struct qd_seg	segs[QD_SGA_MAX];
	/* PUSH: the caller's buffers, returned in the result */
	struct qd_sgaseg usegs[QD_SGA_MAX];
};

struct qd_slots {
	struct qd_slot	**blocks;
	uint32_t	nblocks;
	uint32_t	free_head;
	uint32_t	used;
};

static inline qd_token_t qd_token_make(uint32_t idx, uint32_t gen)
{
	return ((uint64_t)gen << 32) | idx;
}

static inline uint32_t qd_token_idx(qd_token_t qt)
{
	return (uint32_t)qt;
}

static inline uint32_t qd_token_gen(qd_token_t qt)
{
	return (uint32_t)(qt >> 32);
}

static inline qd_token_t qd_slot_token(const struct qd_slot *s)
{
	return qd_token_make(s->idx, s->gen);
}

/* A free slot, marked PENDING, or NULL (-ENOMEM). */
struct qd_slot *qd__slot_alloc(struct qd_slots *t);

/* The live (PENDING or DONE) slot qt names, or NULL. */
struct qd_slot *qd__slot_get(struct qd_slots *t, qd_token_t qt);

/* Return a slot to the free list; its tokens become stale. */
void qd__slot_free(struct qd_slots *t, struct qd_slot *s);

/* Forget everything (after fork, in the child). */
void qd__slots_reset(struct qd_slots *t);

#endif
