// SPDX-License-Identifier: MIT
/*
 * The ring's list of results in completion order, for qd_wait_next(): a
 * server with thousands of pending operations takes each result in O(1)
 * instead of walking its token array (qd_wait_any(), O(tokens) per
 * result). Appended wherever a slot gets a result (a CQE reaped, a shot of
 * a multishot pop, a mapped-queue pop or push served in user space), once
 * qd_wait_next() has been used on the ring; before that it costs nothing.
 * Everything here runs with r->lock held.
 */
#include <stdlib.h>

#include "int.h"

/* Append s's token; on no memory, remember to rescan (next_lost). */
void qd__next_note(struct qd_ring *r, struct qd_slot *s)
{
	uint32_t cap, i;
	uint64_t *n;

	/* qd_open() waits for its OPEN itself: never anyone else's result. */
	if (s->op == QD_OP_OPEN || s->hidden)
		return;
	if (r->next_n == r->next_cap) {
		cap = r->next_cap ? 2 * r->next_cap : 64;
		n = malloc(cap * sizeof(*n));
		if (!n) {
			r->next_lost = 1;
			return;
		}
		for (i = 0; i < r->next_n; i++)
			n[i] = r->next[(r->next_head + i) & (r->next_cap - 1)];
		free(r->next);
		r->next = n;
		r->next_cap = cap;
		r->next_head = 0;
	}
	r->next[(r->next_head + r->next_n++) & (r->next_cap - 1)] =
		qd_slot_token(&r->slots, s);
}

/* Every slot with a result, once (its first result is all it needs). */
static void rescan(struct qd_ring *r)
{
	uint32_t i, n = r->slots.nblocks * QD_SLOT_BLOCK;
	struct qd_slot *s;

	r->next_lost = 0;
	r->next_n = 0;
	for (i = 0; i < n; i++) {
		s = qd__slot_idx(&r->slots, i);
		if (s->state != QD_SLOT_FREE && qd_slot_ready(s))
			qd__next_note(r, s);
	}
}

/* Start keeping the list: the results already there go in first. */
void qd__next_start(struct qd_ring *r)
{
	if (r->next_on)
		return;
	r->next_on = 1;
	rescan(r);
}

/*
 * The oldest token in the list whose slot has a result: its slot and token
 * (taken off the list), or NULL.
 */
struct qd_slot *qd__next_find(struct qd_ring *r, uint64_t *qt)
{
	struct qd_slot *s;

	if (r->next_lost)
		rescan(r);
	while (r->next_n) {
		*qt = r->next[r->next_head];
		r->next_head = (r->next_head + 1) & (r->next_cap - 1);
		r->next_n--;
		s = qd__slot_get(&r->slots, *qt);
		if (s && qd_slot_ready(s))
			return s;
	}
	return NULL;
}

void qd__next_free(struct qd_ring *r)
{
	free(r->next);
	r->next = NULL;
	r->next_n = r->next_cap = r->next_head = 0;
	r->next_on = r->next_lost = 0;
}
