// SPDX-License-Identifier: MIT
/* Tokens and the slot table. */
#include <string.h>

#include "../src/token.h"
#include "tap.h"

static void token_roundtrip(void)
{
	qd_token_t qt = qd_token_make(0x12345678, 0x9abcdef0);

	CHECK_EQ(qd_token_idx(qt), 0x12345678);
	CHECK_EQ(qd_token_gen(qt), 0x9abcdef0);
	CHECK(qt == 0x9abcdef012345678ULL);
	CHECK_EQ(qd_token_idx(qd_token_make(UINT32_MAX, 1)), UINT32_MAX);
}

static void slot_alloc_get_free(void)
{
	struct qd_slots t = { 0 };
	struct qd_slot *a, *b;
	qd_token_t qa, qb;

	qd__slots_reset(&t);
	a = qd__slot_alloc(&t);
	b = qd__slot_alloc(&t);
	REQUIRE(a && b && a != b);
	CHECK_EQ(a->state, QD_SLOT_PENDING);
	CHECK_EQ(t.used, 2);
	qa = qd_slot_token(a);
	qb = qd_slot_token(b);
	CHECK(qa != 0 && qb != 0 && qa != qb);
	CHECK(qd__slot_get(&t, qa) == a);
	CHECK(qd__slot_get(&t, qb) == b);
	qd__slot_free(&t, a);
	CHECK_EQ(t.used, 1);
	CHECK(qd__slot_get(&t, qa) == NULL);
	CHECK(qd__slot_get(&t, qb) == b);
	qd__slots_reset(&t);
}

static void token_zero_and_garbage_invalid(void)
{
	struct qd_slots t;
	struct qd_slot *s;

	memset(&t, 0, sizeof(t));
	CHECK(qd__slot_get(&t, 0) == NULL);
	CHECK(qd__slot_get(&t, 1) == NULL);
	s = qd__slot_alloc(&t);
	REQUIRE(s);
	CHECK_EQ(qd_slot_token(s), qd_token_make(0, 1));
	CHECK(qd__slot_get(&t, 0) == NULL);
	CHECK(qd__slot_get(&t, qd_token_make(0, 2)) == NULL);
	CHECK(qd__slot_get(&t, qd_token_make(QD_SLOT_BLOCK, 1)) == NULL);
	CHECK(qd__slot_get(&t, UINT64_MAX) == NULL);
	qd__slots_reset(&t);
}

static void stale_after_reuse(void)
{
	struct qd_slots t;
	struct qd_slot *a, *b;
	qd_token_t qa;

	memset(&t, 0, sizeof(t));
	a = qd__slot_alloc(&t);
	REQUIRE(a);
	qa = qd_slot_token(a);
	qd__slot_free(&t, a);
	b = qd__slot_alloc(&t);
	/* Same slot again (LIFO), new generation: the old token is stale. */
	CHECK(b == a);
	CHECK(qd_slot_token(b) != qa);
	CHECK(qd__slot_get(&t, qa) == NULL);
	CHECK(qd__slot_get(&t, qd_slot_token(b)) == b);
	qd__slots_reset(&t);
}

static void generation_wraps_past_zero(void)
{
	struct qd_slots t;
	struct qd_slot *a;

	memset(&t, 0, sizeof(t));
	a = qd__slot_alloc(&t);
	REQUIRE(a);
	a->gen = UINT32_MAX;
	qd__slot_free(&t, a);
	CHECK_EQ(a->gen, 1);
	a = qd__slot_alloc(&t);
	CHECK(qd_token_gen(qd_slot_token(a)) != 0);
	qd__slots_reset(&t);
}

static void grows_with_stable_slots(void)
{
	enum { N = 5 * QD_SLOT_BLOCK + 3 };
	static struct qd_slot *s[N];
	static qd_token_t qt[N];
	struct qd_slots t;
	int i, bad = 0;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < N; i++) {
		s[i] = qd__slot_alloc(&t);
		REQUIRE(s[i]);
		s[i]->qd = i;
		qt[i] = qd_slot_token(s[i]);
	}
	CHECK_EQ(t.nblocks, 6);
	CHECK_EQ(t.used, N);
	for (i = 0; i < N; i++)
		bad += qd__slot_get(&t, qt[i]) != s[i] || s[i]->qd != i;
	CHECK_EQ(bad, 0);
	for (i = 0; i < N; i += 2)
		qd__slot_free(&t, s[i]);
	for (i = 0; i < N; i++)
		bad += (qd__slot_get(&t, qt[i]) == NULL) != (i % 2 == 0);
	CHECK_EQ(bad, 0);
	/* Reuse fills the holes before growing. */
	for (i = 0; i < N; i += 2)
		CHECK(qd__slot_alloc(&t) != NULL);
	CHECK_EQ(t.nblocks, 6);
	qd__slots_reset(&t);
	CHECK_EQ(t.nblocks, 0);
	CHECK(t.blocks == NULL);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "token";
	RUN(token_roundtrip);
	RUN(slot_alloc_get_free);
	RUN(token_zero_and_garbage_invalid);
	RUN(stale_after_reuse);
	RUN(generation_wraps_past_zero);
	RUN(grows_with_stable_slots);
	return tap_done();
}
