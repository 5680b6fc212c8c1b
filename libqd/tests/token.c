// SPDX-License-Identifier: MIT
/* Tokens and the slot tables. */
#include <string.h>

#include "../src/token.h"
#include "tap.h"

static void token_roundtrip(void)
{
	qd_token_t qt = qd_token_make(0xab, 0x345678, 0x9abcdef0);

	CHECK_EQ(qd_token_ring(qt), 0xab);
	CHECK_EQ(qd_token_idx(qt), 0x345678);
	CHECK_EQ(qd_token_gen(qt), 0x9abcdef0);
	CHECK(qt == 0x9abcdef02af45678ULL);
	CHECK_EQ(qd_token_idx(qd_token_make(QD_MAX_RINGS - 1, QD_SLOT_MAX - 1,
					    1)), QD_SLOT_MAX - 1);
	CHECK_EQ(qd_token_ring(qd_token_make(QD_MAX_RINGS - 1, QD_SLOT_MAX - 1,
					     1)), QD_MAX_RINGS - 1);
	/* Bits above the ring ids make no ring. */
	CHECK(qd_token_ring(UINT64_MAX) >= QD_MAX_RINGS);
}

static void slot_alloc_get_free(void)
{
	struct qd_slots t;
	struct qd_slot *a, *b;
	qd_token_t qa, qb;

	qd__slots_init(&t, 3);
	a = qd__slot_alloc(&t);
	b = qd__slot_alloc(&t);
	REQUIRE(a && b && a != b);
	CHECK_EQ(a->state, QD_SLOT_PENDING);
	CHECK_EQ(t.used, 2);
	qa = qd_slot_token(&t, a);
	qb = qd_slot_token(&t, b);
	CHECK(qa != 0 && qb != 0 && qa != qb);
	CHECK_EQ(qd_token_ring(qa), 3);
	CHECK(qd__slot_get(&t, qa) == a);
	CHECK(qd__slot_get(&t, qb) == b);
	qd__slot_free(&t, a);
	CHECK_EQ(t.used, 1);
	CHECK(qd__slot_get(&t, qa) == NULL);
	CHECK(qd__slot_get(&t, qb) == b);
	qd__slots_fini(&t);
}

static void token_of_another_ring_is_not_ours(void)
{
	struct qd_slots t;
	struct qd_slot *s;
	qd_token_t qt;

	qd__slots_init(&t, 1);
	s = qd__slot_alloc(&t);
	REQUIRE(s);
	qt = qd_slot_token(&t, s);
	CHECK(qd__slot_get(&t, qt) == s);
	CHECK(qd__slot_get(&t, qd_token_make(2, s->idx, s->gen)) == NULL);
	CHECK(qd__slot_get(&t, qd_token_make(0, s->idx, s->gen)) == NULL);
	CHECK(qd__slot_get(&t, qt | (1ULL << 31)) == NULL);
	qd__slots_fini(&t);
}

static void token_zero_and_garbage_invalid(void)
{
	struct qd_slots t;
	struct qd_slot *s;

	qd__slots_init(&t, 0);
	CHECK(qd__slot_get(&t, 0) == NULL);
	CHECK(qd__slot_get(&t, 1) == NULL);
	s = qd__slot_alloc(&t);
	REQUIRE(s);
	CHECK_EQ(qd_slot_token(&t, s), qd_token_make(0, 0, 1));
	CHECK(qd__slot_get(&t, 0) == NULL);
	CHECK(qd__slot_get(&t, qd_token_make(0, 0, 2)) == NULL);
	CHECK(qd__slot_get(&t, qd_token_make(0, QD_SLOT_BLOCK, 1)) == NULL);
	CHECK(qd__slot_get(&t, UINT64_MAX) == NULL);
	qd__slots_fini(&t);
}

static void stale_after_reuse(void)
{
	struct qd_slots t;
	struct qd_slot *a, *b;
	qd_token_t qa;

	qd__slots_init(&t, 0);
	a = qd__slot_alloc(&t);
	REQUIRE(a);
	qa = qd_slot_token(&t, a);
	qd__slot_free(&t, a);
	b = qd__slot_alloc(&t);
	/* Same slot again (LIFO), new generation: the old token is stale. */
	CHECK(b == a);
	CHECK(qd_slot_token(&t, b) != qa);
	CHECK(qd__slot_get(&t, qa) == NULL);
	CHECK(qd__slot_get(&t, qd_slot_token(&t, b)) == b);
	qd__slots_fini(&t);
}

static void generation_wraps_past_zero(void)
{
	struct qd_slots t;
	struct qd_slot *a;

	qd__slots_init(&t, 0);
	a = qd__slot_alloc(&t);
	REQUIRE(a);
	a->gen = UINT32_MAX;
	qd__slot_free(&t, a);
	CHECK_EQ(a->gen, 1);
	a = qd__slot_alloc(&t);
	CHECK(qd_token_gen(qd_slot_token(&t, a)) != 0);
	qd__slots_fini(&t);
}

static void multishot_results_queue_and_free(void)
{
	struct qd_slots t;
	struct qd_shot *sh;
	struct qd_slot *s;
	int i;

	qd__slots_init(&t, 0);
	s = qd__slot_alloc(&t);
	REQUIRE(s);
	s->multishot = 1;
	CHECK(!qd_slot_ready(s));
	for (i = 0; i < 3; i++) {
		sh = calloc(1, sizeof(*sh));
		REQUIRE(sh);
		sh->res = i;
		*s->shots_tail = sh;
		s->shots_tail = &sh->next;
	}
	CHECK(qd_slot_ready(s));
	CHECK_EQ(s->shots->res, 0);
	/* Freeing (and fini, under ASan) frees what was not waited for. */
	qd__slot_free(&t, s);
	CHECK(s->shots == NULL);
	s = qd__slot_alloc(&t);
	REQUIRE(s);
	CHECK(s->shots == NULL && !s->multishot);
	s->multishot = 1;
	sh = calloc(1, sizeof(*sh));
	REQUIRE(sh);
	*s->shots_tail = sh;
	s->shots_tail = &sh->next;
	qd__slots_fini(&t);
}

static void grows_with_stable_slots(void)
{
	enum { N = 5 * QD_SLOT_BLOCK + 3 };
	static struct qd_slot *s[N];
	static qd_token_t qt[N];
	struct qd_slots t;
	int i, bad = 0;

	qd__slots_init(&t, 7);
	for (i = 0; i < N; i++) {
		s[i] = qd__slot_alloc(&t);
		REQUIRE(s[i]);
		s[i]->qd = i;
		qt[i] = qd_slot_token(&t, s[i]);
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
	qd__slots_fini(&t);
	CHECK_EQ(t.nblocks, 0);
	CHECK(t.blocks == NULL);
	CHECK_EQ(t.ring, 7);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "token";
	RUN(token_roundtrip);
	RUN(slot_alloc_get_free);
	RUN(token_of_another_ring_is_not_ours);
	RUN(token_zero_and_garbage_invalid);
	RUN(stale_after_reuse);
	RUN(generation_wraps_past_zero);
	RUN(multishot_results_queue_and_free);
	RUN(grows_with_stable_slots);
	return tap_done();
}
