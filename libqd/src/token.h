/* SPDX-License-Identifier: MIT */
/*
 * Tokens and the slot tables. A token is gen << 32 | ring << 22 | slot: the
 * ring whose SQ carried the operation (its CQE arrives there, so a wait
 * knows which ring to reap and sleep on) and a slot in that ring's table.
 * It doubles as the SQE's user_data. A slot lives from qd_push()/qd_pop()
 * until qd_wait*() consumes its (final) result; freeing it bumps the
 * generation, so a stale or consumed token never matches again.
 * Generation 0 never names a slot: user_data 0 marks the operations that
 * have no token (qd_push_forget(), qd_cancel()).
 * Not locked here: the caller holds the ring's lock.
 */
#ifndef LIBQD_TOKEN_H
#define LIBQD_TOKEN_H

#include <stdint.h>

#include <linux/qd.h>

#include "qd.h"

#define QD_TOKEN_RING_SHIFT	22
#define QD_SLOT_MAX		(1U << QD_TOKEN_RING_SHIFT)
#define QD_SLOT_BLOCK_SHIFT	8
#define QD_SLOT_BLOCK		(1U << QD_SLOT_BLOCK_SHIFT)
#define QD_SLOT_NONE		UINT32_MAX

_Static_assert(QD_MAX_RINGS <= (1U << (32 - QD_TOKEN_RING_SHIFT)),
	       "ring ids do not fit in a token");

enum qd_slot_state {
	QD_SLOT_FREE,
	QD_SLOT_PENDING,	/* queued or running in the kernel */
	QD_SLOT_DONE,		/* the (final) result is reaped */
};

/* One result of a multishot pop, queued until a wait takes it. */
struct qd_shot {
	struct qd_shot	*next;
	int64_t		res;
	uint8_t		nsegs;
	struct qd_seg	segs[QD_SGA_MAX];
};

struct qd_slot {
	uint32_t	idx;
	uint32_t	gen;
	uint32_t	next_free;
	uint8_t		state;
	uint8_t		op;		/* QD_OP_* */
	uint8_t		nsegs;		/* segs[] or usegs[] in use */
	uint8_t		multishot;	/* a QD_POP_MULTISHOT pop */
	uint8_t		lazy;		/* a mapped-queue pop still in user space */
	uint8_t		sockbuf;	/* POP: QD_SOCKBUF_* (int.h), or 0 */
	uint8_t		cqe_flags;	/* the final CQE's QD_CQE_F_* */
	uint8_t		dfn;		/* a pop of a callback-derived family */
	uint8_t		hidden;		/* libqd's own: not for qd_wait_next() */
	int32_t		qd;
	int64_t		res;
	/* POP: the element popped */
	struct qd_seg	segs[QD_SGA_MAX];
	/* PUSH: the caller's buffers, returned in the result */
	struct qd_sgaseg usegs[QD_SGA_MAX];
	/* QD_CQE_F_ADDR: the peer of an accept, the source of a datagram */
	struct qd_cqe_addr addr;
	/* MULTISHOT: results not yet waited for, oldest first */
	struct qd_shot	*shots;
	struct qd_shot	**shots_tail;
	/* dfn: the element derive_fn.c gave it (struct qd_delem, int.h) */
	struct qd_delem	*delem;
};

struct qd_slots {
	struct qd_slot	**blocks;
	uint32_t	nblocks;
	uint32_t	free_head;
	uint32_t	used;
	uint32_t	ring;		/* the ring id in this table's tokens */
};

static inline qd_token_t qd_token_make(uint32_t ring, uint32_t idx,
				       uint32_t gen)
{
	return ((uint64_t)gen << 32) | ((uint64_t)ring << QD_TOKEN_RING_SHIFT) |
	       idx;
}

/* The ring a token names; QD_MAX_RINGS or more for garbage. */
static inline uint32_t qd_token_ring(qd_token_t qt)
{
	return (uint32_t)qt >> QD_TOKEN_RING_SHIFT;
}

static inline uint32_t qd_token_idx(qd_token_t qt)
{
	return (uint32_t)qt & (QD_SLOT_MAX - 1);
}

static inline uint32_t qd_token_gen(qd_token_t qt)
{
	return (uint32_t)(qt >> 32);
}

static inline qd_token_t qd_slot_token(const struct qd_slots *t,
				       const struct qd_slot *s)
{
	return qd_token_make(t->ring, s->idx, s->gen);
}

/* A result is there for a wait to take. */
static inline int qd_slot_ready(const struct qd_slot *s)
{
	return s->multishot ? s->shots != NULL : s->state == QD_SLOT_DONE;
}

/* An empty table for ring. */
void qd__slots_init(struct qd_slots *t, uint32_t ring);

/* Add a block of free slots: 0, or -1 (out of memory or token space). */
int qd__slots_grow(struct qd_slots *t);

/* Free a multishot slot's undelivered results. */
void qd__slot_shots_free(struct qd_slot *s);

/*
 * The per-operation slot functions are inline: a push, a pop and a wait
 * each use two or three of them.
 */
static inline struct qd_slot *qd__slot_idx(const struct qd_slots *t,
					   uint32_t idx)
{
	return &t->blocks[idx >> QD_SLOT_BLOCK_SHIFT][idx & (QD_SLOT_BLOCK - 1)];
}

/* A free slot, marked PENDING, or NULL (-ENOMEM). */
static inline struct qd_slot *qd__slot_alloc(struct qd_slots *t)
{
	struct qd_slot *s;

	if (t->free_head == QD_SLOT_NONE && qd__slots_grow(t))
		return NULL;
	s = qd__slot_idx(t, t->free_head);
	t->free_head = s->next_free;
	s->next_free = QD_SLOT_NONE;
	s->state = QD_SLOT_PENDING;
	s->op = 0;
	s->nsegs = 0;
	s->multishot = 0;
	s->lazy = 0;
	s->sockbuf = 0;
	s->cqe_flags = 0;
	s->dfn = 0;
	s->hidden = 0;
	s->delem = NULL;
	s->qd = -1;
	s->res = 0;
	s->shots = NULL;
	s->shots_tail = &s->shots;
	t->used++;
	return s;
}

/* Whether a slot can be allocated now without failing (1) or not (0). */
int qd__slot_reserve(struct qd_slots *t);

/* The live slot at index idx (a lazy pop's), or NULL. */
static inline struct qd_slot *qd__slot_at(struct qd_slots *t, uint32_t idx)
{
	if (idx >= t->nblocks * QD_SLOT_BLOCK)
		return NULL;
	return qd__slot_idx(t, idx);
}

/* The live (PENDING or DONE) slot qt names, or NULL. */
static inline struct qd_slot *qd__slot_get(struct qd_slots *t, qd_token_t qt)
{
	uint32_t idx = qd_token_idx(qt);
	struct qd_slot *s;

	if (qd_token_ring(qt) != t->ring || idx >= t->nblocks * QD_SLOT_BLOCK)
		return NULL;
	s = qd__slot_idx(t, idx);
	if (s->state == QD_SLOT_FREE || s->gen != qd_token_gen(qt))
		return NULL;
	return s;
}

/* Return a slot to the free list; its tokens become stale. */
static inline void qd__slot_free(struct qd_slots *t, struct qd_slot *s)
{
	if (s->shots)
		qd__slot_shots_free(s);
	s->state = QD_SLOT_FREE;
	/* Generation 0 never names a slot, so token 0 is always invalid. */
	if (++s->gen == 0)
		s->gen = 1;
	s->next_free = t->free_head;
	t->free_head = s->idx;
	t->used--;
}

/* Free everything (after fork, in the child). */
void qd__slots_fini(struct qd_slots *t);

#endif
