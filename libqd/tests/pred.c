// SPDX-License-Identifier: MIT
/*
 * kmod/common/qd_pred.h, the one evaluator of derived queues' predicates
 * and keys, on the host: every rule of qd_pred_check()/qd_key_check(),
 * evaluation over flat buffers (widths, byte orders, masks, the six
 * comparisons, conjunctions, fields at the very end, short elements), and
 * a randomized cross-check against a straightforward reimplementation.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "qd_pred.h"
#include "tap.h"

/* An element: len bytes at p. */
struct flat {
	const uint8_t	*p;
	uint32_t	len;
};

static int flat_read(const void *elem, __u32 off, void *buf, __u32 len)
{
	const struct flat *f = elem;

	if (off > f->len || len > f->len - off)
		return -1;
	memcpy(buf, f->p + off, len);
	return 0;
}

static struct qd_pred_term term(uint32_t off, uint8_t width, uint8_t flags,
				uint64_t mask, uint32_t cmp, uint64_t value)
{
	return (struct qd_pred_term){
		.field = { .off = off, .width = width, .flags = flags,
			   .mask = mask },
		.cmp = cmp, .value = value };
}

static struct qd_pred pred1(struct qd_pred_term t)
{
	struct qd_pred p = { .nterms = 1 };

	p.terms[0] = t;
	return p;
}

static void check_valid(void)
{
	struct qd_pred p = { .nterms = 4 };
	static const uint8_t widths[] = { 1, 2, 4, 8 };
	int i, c;

	for (i = 0; i < 4; i++)
		p.terms[i] = term(i * 8, widths[i], i & 1 ? QD_FIELD_BE : 0, 0,
				  QD_CMP_EQ + i, 1);
	CHECK_EQ(qd_pred_check(&p), 0);
	for (c = QD_CMP_EQ; c <= QD_CMP_GE; c++) {
		p = pred1(term(0, 1, 0, 0, c, 0xff));
		CHECK_EQ(qd_pred_check(&p), 0);
	}
	/* The last byte a field may reach, and full masks of each width. */
	p = pred1(term(QD_FIELD_MAX_END - 8, 8, 0, ~0ULL, QD_CMP_EQ, ~0ULL));
	CHECK_EQ(qd_pred_check(&p), 0);
	p = pred1(term(QD_FIELD_MAX_END - 1, 1, 0, 0xff, QD_CMP_EQ, 0x80));
	CHECK_EQ(qd_pred_check(&p), 0);
	p = pred1(term(0, 2, 0, 0xffff, QD_CMP_EQ, 0xffff));
	CHECK_EQ(qd_pred_check(&p), 0);
	p = pred1(term(0, 4, 0, 0xf0f0f0f0, QD_CMP_EQ, 0x10203040));
	CHECK_EQ(qd_pred_check(&p), 0);
}

static void check_invalid(void)
{
	struct qd_pred p, ok = pred1(term(4, 2, 0, 0x0ff0, QD_CMP_LT, 0x0100));
	int i;

	CHECK_EQ(qd_pred_check(&ok), 0);
	p = ok;
	p.nterms = 0;
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = ok;
	p.nterms = QD_PRED_MAX_TERMS + 1;
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = ok;
	p.resv = 1;
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	/* Widths. */
	for (i = 0; i <= 16; i++) {
		p = pred1(term(0, (uint8_t)i, 0, 0, QD_CMP_EQ, 0));
		CHECK_EQ(qd_pred_check(&p),
			 i == 1 || i == 2 || i == 4 || i == 8 ? 0 : -EINVAL);
	}
	/* Past QD_FIELD_MAX_END, also where off + width wraps. */
	p = pred1(term(QD_FIELD_MAX_END - 3, 4, 0, 0, QD_CMP_EQ, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(QD_FIELD_MAX_END, 1, 0, 0, QD_CMP_EQ, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(UINT32_MAX, 1, 0, 0, QD_CMP_EQ, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(UINT32_MAX - 2, 4, 0, 0, QD_CMP_EQ, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	/* Mask bits beyond the width; values outside the mask. */
	p = pred1(term(0, 1, 0, 0x100, QD_CMP_EQ, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(0, 4, 0, 0x100000000ULL, QD_CMP_EQ, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(0, 1, 0, 0xf0, QD_CMP_EQ, 0x01));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(0, 1, 0, 0, QD_CMP_EQ, 0x100));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(0, 2, 0, 0, QD_CMP_EQ, 0x10000));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	/* Comparisons. */
	p = pred1(term(0, 1, 0, 0, 0, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(0, 1, 0, 0, QD_CMP_GE + 1, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	/* Flags and reserved fields of a used term. */
	p = pred1(term(0, 1, 2, 0, QD_CMP_EQ, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = pred1(term(0, 1, QD_FIELD_BE | 0x80, 0, QD_CMP_EQ, 0));
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = ok;
	p.terms[0].field.resv = 1;
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	p = ok;
	p.terms[0].resv = 1;
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	/* A bad term after a good one. */
	p = ok;
	p.nterms = 2;
	p.terms[1] = term(0, 3, 0, 0, QD_CMP_EQ, 0);
	CHECK_EQ(qd_pred_check(&p), -EINVAL);
	/* Unused terms: every field must be zero. */
	for (i = 0; i < 8; i++) {
		p = ok;
		switch (i) {
		case 0: p.terms[1].field.off = 1; break;
		case 1: p.terms[1].field.width = 1; break;
		case 2: p.terms[1].field.flags = 1; break;
		case 3: p.terms[1].field.resv = 1; break;
		case 4: p.terms[1].field.mask = 1; break;
		case 5: p.terms[1].cmp = 1; break;
		case 6: p.terms[1].resv = 1; break;
		case 7: p.terms[3].value = 1; break;
		}
		CHECK_EQ(qd_pred_check(&p), -EINVAL);
	}
}

static void key_check(void)
{
	struct qd_key k = { .field = { .off = 8, .width = 4 } }, b;

	CHECK_EQ(qd_key_check(&k), 0);
	b = k;
	b.flags = QD_KEY_DESC;
	CHECK_EQ(qd_key_check(&b), 0);
	b.field.flags = QD_FIELD_BE;
	b.field.mask = 0xffff0000;
	CHECK_EQ(qd_key_check(&b), 0);
	b = k;
	b.flags = 2;
	CHECK_EQ(qd_key_check(&b), -EINVAL);
	b = k;
	b.resv = 1;
	CHECK_EQ(qd_key_check(&b), -EINVAL);
	b = k;
	b.field.width = 3;
	CHECK_EQ(qd_key_check(&b), -EINVAL);
	b = k;
	b.field.off = QD_FIELD_MAX_END - 3;
	CHECK_EQ(qd_key_check(&b), -EINVAL);
	b = k;
	b.field.mask = 0x100000000ULL;
	CHECK_EQ(qd_key_check(&b), -EINVAL);
	b = k;
	b.field.flags = 4;
	CHECK_EQ(qd_key_check(&b), -EINVAL);
	b = k;
	b.field.resv = 1;
	CHECK_EQ(qd_key_check(&b), -EINVAL);
}

/* qd_pred_match of one term over buf. */
static int match1(const uint8_t *buf, uint32_t len, struct qd_pred_term t)
{
	struct qd_pred p = pred1(t);
	struct flat f = { buf, len };

	if (qd_pred_check(&p))
		return -1;
	return qd_pred_match(&p, flat_read, &f);
}

static void widths_and_byte_orders(void)
{
	static const uint8_t b[16] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
				       0x07, 0x08, 0x90, 0xa0, 0xb0, 0xc0,
				       0xd0, 0xe0, 0xf0, 0xff };

	CHECK_EQ(match1(b, 16, term(0, 1, 0, 0, QD_CMP_EQ, 0x01)), 1);
	CHECK_EQ(match1(b, 16, term(0, 1, QD_FIELD_BE, 0, QD_CMP_EQ, 0x01)), 1);
	CHECK_EQ(match1(b, 16, term(0, 2, 0, 0, QD_CMP_EQ, 0x0201)), 1);
	CHECK_EQ(match1(b, 16, term(0, 2, QD_FIELD_BE, 0, QD_CMP_EQ, 0x0102)),
		 1);
	CHECK_EQ(match1(b, 16, term(0, 4, 0, 0, QD_CMP_EQ, 0x04030201)), 1);
	CHECK_EQ(match1(b, 16, term(0, 4, QD_FIELD_BE, 0, QD_CMP_EQ,
				    0x01020304)), 1);
	CHECK_EQ(match1(b, 16, term(0, 8, 0, 0, QD_CMP_EQ,
				    0x0807060504030201ULL)), 1);
	CHECK_EQ(match1(b, 16, term(8, 8, QD_FIELD_BE, 0, QD_CMP_EQ,
				    0x90a0b0c0d0e0f0ffULL)), 1);
	CHECK_EQ(match1(b, 16, term(8, 8, 0, 0, QD_CMP_EQ,
				    0xfff0e0d0c0b0a090ULL)), 1);
	/* Masks: applied to the value read, in its byte order. */
	CHECK_EQ(match1(b, 16, term(1, 2, 0, 0xff00, QD_CMP_EQ, 0x0300)), 1);
	CHECK_EQ(match1(b, 16, term(1, 2, QD_FIELD_BE, 0xff00, QD_CMP_EQ,
				    0x0200)), 1);
	CHECK_EQ(match1(b, 16, term(8, 1, 0, 0xf0, QD_CMP_EQ, 0x90)), 1);
	CHECK_EQ(match1(b, 16, term(8, 1, 0, 0x0f, QD_CMP_EQ, 0x00)), 1);
	CHECK_EQ(match1(b, 16, term(15, 1, 0, 0x81, QD_CMP_EQ, 0x81)), 1);
	CHECK_EQ(match1(b, 16, term(12, 4, 0, 0x00ff00ff, QD_CMP_EQ,
				    0x00f000d0)), 1);
	/* A field ending at the element's last byte; one byte short. */
	CHECK_EQ(match1(b, 16, term(12, 4, QD_FIELD_BE, 0, QD_CMP_EQ,
				    0xd0e0f0ff)), 1);
	CHECK_EQ(match1(b, 15, term(12, 4, QD_FIELD_BE, 0, QD_CMP_EQ,
				    0xd0e0f0ff)), 0);
	CHECK_EQ(match1(b, 15, term(12, 4, 0, 0, QD_CMP_NE, 0)), 0);
	CHECK_EQ(match1(b, 0, term(0, 1, 0, 0, QD_CMP_GE, 0)), 0);
	CHECK_EQ(match1(b, 7, term(0, 8, 0, 0, QD_CMP_GE, 0)), 0);
	CHECK_EQ(match1(b, 8, term(0, 8, 0, 0, QD_CMP_GE, 0)), 1);
}

static void comparisons(void)
{
	/* 0x80 as one byte: unsigned, so 0x80 > 0x7f. */
	static const uint8_t b[1] = { 0x80 };
	static const struct { uint32_t cmp; uint64_t v; int want; } t[] = {
		{ QD_CMP_EQ, 0x80, 1 }, { QD_CMP_EQ, 0x7f, 0 },
		{ QD_CMP_NE, 0x80, 0 }, { QD_CMP_NE, 0x81, 1 },
		{ QD_CMP_LT, 0x81, 1 }, { QD_CMP_LT, 0x80, 0 },
		{ QD_CMP_LT, 0x7f, 0 }, { QD_CMP_LE, 0x80, 1 },
		{ QD_CMP_LE, 0x7f, 0 }, { QD_CMP_LE, 0xff, 1 },
		{ QD_CMP_GT, 0x7f, 1 }, { QD_CMP_GT, 0x80, 0 },
		{ QD_CMP_GT, 0x00, 1 }, { QD_CMP_GE, 0x80, 1 },
		{ QD_CMP_GE, 0x81, 0 }, { QD_CMP_GE, 0x00, 1 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (match1(b, 1, term(0, 1, 0, 0, t[i].cmp, t[i].v)) !=
		    t[i].want) {
			tap_cur++;
			tap_diag("cmp %u value %#llx: expected %d", t[i].cmp,
				 (unsigned long long)t[i].v, t[i].want);
		}
	}
	/* 64-bit unsigned at the extremes. */
	{
		uint8_t m[8];

		memset(m, 0xff, 8);
		CHECK_EQ(match1(m, 8, term(0, 8, 0, 0, QD_CMP_GT,
					   0x7fffffffffffffffULL)), 1);
		CHECK_EQ(match1(m, 8, term(0, 8, 0, 0, QD_CMP_LT, ~0ULL)), 0);
		CHECK_EQ(match1(m, 8, term(0, 8, 0, 0, QD_CMP_LE, ~0ULL)), 1);
	}
}

static void conjunctions(void)
{
	static const uint8_t b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct flat f = { b, 8 };
	struct qd_pred p = { .nterms = 3 };

	p.terms[0] = term(0, 1, 0, 0, QD_CMP_EQ, 1);
	p.terms[1] = term(1, 2, 0, 0, QD_CMP_GT, 0x0300);
	p.terms[2] = term(4, 4, QD_FIELD_BE, 0, QD_CMP_LE, 0x05060708);
	REQUIRE(qd_pred_check(&p) == 0);
	CHECK(qd_pred_match(&p, flat_read, &f));
	p.terms[2].value = 0x05060707;		/* the last one fails */
	CHECK(!qd_pred_match(&p, flat_read, &f));
	p.terms[2].value = 0x05060708;
	p.terms[0].value = 2;			/* the first one fails */
	CHECK(!qd_pred_match(&p, flat_read, &f));
	p.terms[0].value = 1;
	p.nterms = 4;
	p.terms[3] = term(6, 4, 0, 0, QD_CMP_NE, 0);	/* past the end */
	REQUIRE(qd_pred_check(&p) == 0);
	CHECK(!qd_pred_match(&p, flat_read, &f));
	p.terms[3] = term(6, 2, 0, 0, QD_CMP_NE, 0);
	CHECK(qd_pred_match(&p, flat_read, &f));
}

static void keys(void)
{
	static const uint8_t b[4] = { 0x10, 0x20, 0x30, 0x40 };
	struct qd_key k = { .field = { .off = 1, .width = 2 } };
	struct flat f = { b, 4 }, s = { b, 2 };
	__u64 v = 0;

	REQUIRE(qd_key_check(&k) == 0);
	CHECK(qd_key_get(&k, flat_read, &f, &v));
	CHECK_EQ(v, 0x3020);
	k.field.flags = QD_FIELD_BE;
	CHECK(qd_key_get(&k, flat_read, &f, &v));
	CHECK_EQ(v, 0x2030);
	k.flags = QD_KEY_DESC;		/* largest first: inverted */
	CHECK(qd_key_get(&k, flat_read, &f, &v));
	CHECK(v == ~0x2030ULL);
	k.field.mask = 0x00f0;
	CHECK(qd_key_get(&k, flat_read, &f, &v));
	CHECK(v == ~0x0030ULL);
	CHECK(!qd_key_get(&k, flat_read, &s, &v));	/* too short */
	k.field.off = 3;
	k.field.width = 1;
	k.field.mask = 0;
	k.flags = 0;
	CHECK(qd_key_get(&k, flat_read, &f, &v));	/* the last byte */
	CHECK_EQ(v, 0x40);
}

/* An independent evaluator, written from the ABI's words. */
static int ref_field(const uint8_t *b, uint32_t len, const struct qd_field *fl,
		     uint64_t *out)
{
	uint64_t v = 0, mask;
	int i;

	if ((uint64_t)fl->off + fl->width > len)
		return 0;
	if (fl->flags & QD_FIELD_BE) {
		for (i = 0; i < fl->width; i++)
			v = (v << 8) | b[fl->off + i];
	} else {
		for (i = fl->width - 1; i >= 0; i--)
			v = (v << 8) | b[fl->off + i];
	}
	mask = fl->width == 8 ? UINT64_MAX : (1ULL << (8 * fl->width)) - 1;
	if (fl->mask)
		mask = fl->mask;
	*out = v & mask;
	return 1;
}

static int ref_match(const uint8_t *b, uint32_t len, const struct qd_pred *p)
{
	uint64_t v, c;
	uint32_t i;
	int ok;

	for (i = 0; i < p->nterms; i++) {
		if (!ref_field(b, len, &p->terms[i].field, &v))
			return 0;
		c = p->terms[i].value;
		switch (p->terms[i].cmp) {
		case QD_CMP_EQ: ok = v == c; break;
		case QD_CMP_NE: ok = v != c; break;
		case QD_CMP_LT: ok = v < c; break;
		case QD_CMP_LE: ok = v <= c; break;
		case QD_CMP_GT: ok = v > c; break;
		default: ok = v >= c; break;
		}
		if (!ok)
			return 0;
	}
	return 1;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible without libc's rand(). */
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545f4914f6cdd1dULL;
}

static void random_cross_check(void)
{
	static const uint8_t widths[] = { 1, 2, 4, 8 };
	uint8_t buf[48];
	struct qd_pred p;
	struct qd_key k;
	struct flat f;
	uint64_t ones, v2 = 0;
	__u64 v1 = 0;
	int i, j, bad = 0, hits = 0, r1, r2;

	for (i = 0; i < 20000 && bad < 5; i++) {
		memset(&p, 0, sizeof(p));
		p.nterms = 1 + rnd() % QD_PRED_MAX_TERMS;
		for (j = 0; j < (int)p.nterms; j++) {
			struct qd_pred_term *t = &p.terms[j];

			t->field.width = widths[rnd() % 4];
			t->field.off = rnd() % 44;
			t->field.flags = rnd() & 1 ? QD_FIELD_BE : 0;
			ones = t->field.width == 8 ? UINT64_MAX :
			       (1ULL << (8 * t->field.width)) - 1;
			t->field.mask = rnd() & 1 ? rnd() & ones : 0;
			t->cmp = QD_CMP_EQ + rnd() % 6;
			/* Small values too, so that EQ sometimes holds. */
			t->value = (rnd() & 1 ? rnd() : rnd() % 4) &
				   (t->field.mask ? t->field.mask : ones);
		}
		if (qd_pred_check(&p)) {
			bad++;
			tap_diag("valid predicate refused at %d", i);
			continue;
		}
		for (j = 0; j < 48; j++)
			buf[j] = rnd() & 1 ? (uint8_t)rnd() : (uint8_t)(rnd() % 4);
		f.p = buf;
		f.len = rnd() % 49;
		r1 = qd_pred_match(&p, flat_read, &f);
		r2 = ref_match(buf, f.len, &p);
		hits += r2;
		if (r1 != r2) {
			bad++;
			tap_diag("iteration %d: qd_pred_match %d, reference %d",
				 i, r1, r2);
		}
		k = (struct qd_key){ .field = p.terms[0].field,
				     .flags = rnd() & 1 ? QD_KEY_DESC : 0 };
		r1 = qd_key_get(&k, flat_read, &f, &v1);
		r2 = ref_field(buf, f.len, &k.field, &v2);
		if (r2 && (k.flags & QD_KEY_DESC))
			v2 = ~v2;
		if (r1 != r2 || (r1 && v1 != v2)) {
			bad++;
			tap_diag("iteration %d: qd_key_get differs", i);
		}
	}
	CHECK_EQ(bad, 0);
	/* The generator exercised both outcomes. */
	CHECK(hits > 100 && hits < 19900);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "pred";
	RUN(check_valid);
	RUN(check_invalid);
	RUN(key_check);
	RUN(widths_and_byte_orders);
	RUN(comparisons);
	RUN(conjunctions);
	RUN(keys);
	RUN(random_cross_check);
	return tap_done();
}
