// SPDX-License-Identifier: MIT
/* The token slot tables (see token.h). */
#include <stdlib.h>
#include <string.h>

#include "token.h"

static struct qd_slot *slot_at(const struct qd_slots *t, uint32_t idx)
{
	return &t->blocks[idx >> QD_SLOT_BLOCK_SHIFT][idx & (QD_SLOT_BLOCK - 1)];
}

static int grow(struct qd_slots *t)
{
	uint32_t base = t->nblocks * QD_SLOT_BLOCK, i;
	struct qd_slot **blocks, *b;

	if (base >= QD_SLOT_MAX)
		return -1;
	blocks = realloc(t->blocks, (t->nblocks + 1) * sizeof(*blocks));
	if (!blocks)
		return -1;
	t->blocks = blocks;
	b = calloc(QD_SLOT_BLOCK, sizeof(*b));
	if (!b)
		return -1;
	/* Thread the new slots onto the free list, lowest index first. */
	for (i = 0; i < QD_SLOT_BLOCK; i++) {
		b[i].idx = base + i;
		b[i].gen = 1;
		b[i].next_free = i + 1 < QD_SLOT_BLOCK ? base + i + 1 :
							 t->free_head;
	}
	t->blocks[t->nblocks++] = b;
	t->free_head = base;
	return 0;
}

void qd__slots_init(struct qd_slots *t, uint32_t ring)
{
	memset(t, 0, sizeof(*t));
	t->free_head = QD_SLOT_NONE;
	t->ring = ring;
}

struct qd_slot *qd__slot_at(struct qd_slots *t, uint32_t idx)
{
	if (idx >= t->nblocks * QD_SLOT_BLOCK)
		return NULL;
	return slot_at(t, idx);
}

int qd__slot_reserve(struct qd_slots *t)
{
	return t->free_head != QD_SLOT_NONE || !grow(t);
}

struct qd_slot *qd__slot_alloc(struct qd_slots *t)
{
	struct qd_slot *s;

	if (t->free_head == QD_SLOT_NONE && grow(t))
		return NULL;
	s = slot_at(t, t->free_head);
	t->free_head = s->next_free;
	s->next_free = QD_SLOT_NONE;
	s->state = QD_SLOT_PENDING;
	s->op = 0;
	s->nsegs = 0;
	s->multishot = 0;
	s->lazy = 0;
	s->qd = -1;
	s->res = 0;
	s->shots = NULL;
	s->shots_tail = &s->shots;
	t->used++;
	return s;
}

struct qd_slot *qd__slot_get(struct qd_slots *t, qd_token_t qt)
{
	uint32_t idx = qd_token_idx(qt);
	struct qd_slot *s;

	if (qd_token_ring(qt) != t->ring || idx >= t->nblocks * QD_SLOT_BLOCK)
		return NULL;
	s = slot_at(t, idx);
	if (s->state == QD_SLOT_FREE || s->gen != qd_token_gen(qt))
		return NULL;
	return s;
}

static void shots_free(struct qd_slot *s)
{
	struct qd_shot *sh;

	while ((sh = s->shots)) {
		s->shots = sh->next;
		free(sh);
	}
	s->shots_tail = &s->shots;
}

void qd__slot_free(struct qd_slots *t, struct qd_slot *s)
{
	shots_free(s);
	s->state = QD_SLOT_FREE;
	/* Generation 0 never names a slot, so token 0 is always invalid. */
	if (++s->gen == 0)
		s->gen = 1;
	s->next_free = t->free_head;
	t->free_head = s->idx;
	t->used--;
}

void qd__slots_fini(struct qd_slots *t)
{
	uint32_t i, j;

	for (i = 0; i < t->nblocks; i++) {
		for (j = 0; j < QD_SLOT_BLOCK; j++)
			shots_free(&t->blocks[i][j]);
		free(t->blocks[i]);
	}
	free(t->blocks);
	qd__slots_init(t, t->ring);
}
