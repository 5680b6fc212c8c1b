// SPDX-License-Identifier: MIT
/* The token slot tables (see token.h). */
#include <stdlib.h>
#include <string.h>

#include "token.h"

int qd__slots_grow(struct qd_slots *t)
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

int qd__slot_reserve(struct qd_slots *t)
{
	return t->free_head != QD_SLOT_NONE || !qd__slots_grow(t);
}

void qd__slot_shots_free(struct qd_slot *s)
{
	struct qd_shot *sh;

	while ((sh = s->shots)) {
		s->shots = sh->next;
		free(sh);
	}
	s->shots_tail = &s->shots;
}

void qd__slots_fini(struct qd_slots *t)
{
	uint32_t i, j;

	for (i = 0; i < t->nblocks; i++) {
		for (j = 0; j < QD_SLOT_BLOCK; j++)
			qd__slot_shots_free(&t->blocks[i][j]);
		free(t->blocks[i]);
	}
	free(t->blocks);
	qd__slots_init(t, t->ring);
}
