/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Predicates and keys of derived queues (struct qd_pred, struct qd_key in
 * uapi/linux/qd.h): checked and evaluated by this one implementation, in
 * qd.ko and in the host unit tests. Freestanding: <linux/types.h>, the uapi
 * header and errno values only.
 *
 * An evaluation reads each field through a function the includer passes,
 * read(elem, off, buf, len): copy len (1..8) bytes of the element at byte
 * off into buf; 0, or -1 when the element is shorter than off + len. The
 * functions are static inline, so that a constant read is inlined.
 */
#ifndef _QD_PRED_H
#define _QD_PRED_H

#include <linux/types.h>
#include <linux/qd.h>

#ifdef __KERNEL__
#include <linux/errno.h>
#else
#include <errno.h>
#include <stdbool.h>
#endif

typedef int (*qd_pred_read_t)(const void *elem, __u32 off, void *buf,
			      __u32 len);

/* All ones in the low width bytes; width is 1, 2, 4 or 8. */
static inline __u64 qd_field_ones(__u8 width)
{
	return width == 8 ? ~0ULL : (1ULL << (8 * width)) - 1;
}

/* The mask a field applies: its own, or the whole field for 0. */
static inline __u64 qd_field_mask(const struct qd_field *f)
{
	return f->mask ? f->mask : qd_field_ones(f->width);
}

/*
 * 0, or -EINVAL: width not 1/2/4/8, past QD_FIELD_MAX_END, bad flags, resv
 * set, or mask bits beyond the width.
 */
static inline int qd_field_check(const struct qd_field *f)
{
	if (f->width != 1 && f->width != 2 && f->width != 4 && f->width != 8)
		return -EINVAL;
	if (f->off > QD_FIELD_MAX_END - (__u32)f->width)
		return -EINVAL;
	if (f->flags & ~QD_FIELD_BE || f->resv)
		return -EINVAL;
	if (f->mask & ~qd_field_ones(f->width))
		return -EINVAL;
	return 0;
}

/* 0, or -EINVAL for a predicate the kernel refuses (see uapi). */
static inline int qd_pred_check(const struct qd_pred *p)
{
	const struct qd_pred_term *t;
	__u32 i;

	if (p->nterms < 1 || p->nterms > QD_PRED_MAX_TERMS || p->resv)
		return -EINVAL;
	for (i = 0; i < QD_PRED_MAX_TERMS; i++) {
		t = &p->terms[i];
		if (i >= p->nterms) {
			/* Unused terms are zero: room to grow. */
			if (t->field.off || t->field.width || t->field.flags ||
			    t->field.resv || t->field.mask || t->cmp ||
			    t->resv || t->value)
				return -EINVAL;
			continue;
		}
		if (qd_field_check(&t->field) || t->resv)
			return -EINVAL;
		if (t->cmp < QD_CMP_EQ || t->cmp > QD_CMP_GE)
			return -EINVAL;
		if (t->value & ~qd_field_mask(&t->field))
			return -EINVAL;
	}
	return 0;
}

static inline int qd_key_check(const struct qd_key *k)
{
	if (qd_field_check(&k->field) || k->flags & ~QD_KEY_DESC || k->resv)
		return -EINVAL;
	return 0;
}

/* The field's value in *val; false when the element is too short. */
static inline bool qd_field_get(const struct qd_field *f, qd_pred_read_t read,
				const void *elem, __u64 *val)
{
	__u8 b[8];
	__u64 v = 0;
	__u32 i;

	if (read(elem, f->off, b, f->width))
		return false;
	for (i = 0; i < f->width; i++) {
		if (f->flags & QD_FIELD_BE)
			v = v << 8 | b[i];
		else
			v |= (__u64)b[i] << (8 * i);
	}
	*val = v & qd_field_mask(f);
	return true;
}

static inline bool qd_cmp_holds(__u32 cmp, __u64 a, __u64 b)
{
	switch (cmp) {
	case QD_CMP_EQ:
		return a == b;
	case QD_CMP_NE:
		return a != b;
	case QD_CMP_LT:
		return a < b;
	case QD_CMP_LE:
		return a <= b;
	case QD_CMP_GT:
		return a > b;
	case QD_CMP_GE:
		return a >= b;
	}
	return false;
}

/* Whether every term of a checked predicate holds for the element. */
static inline bool qd_pred_match(const struct qd_pred *p, qd_pred_read_t read,
				 const void *elem)
{
	__u64 v;
	__u32 i;

	for (i = 0; i < p->nterms && i < QD_PRED_MAX_TERMS; i++) {
		if (!qd_field_get(&p->terms[i].field, read, elem, &v) ||
		    !qd_cmp_holds(p->terms[i].cmp, v, p->terms[i].value))
			return false;
	}
	return true;
}

/*
 * The sort order of an element under a checked key: elements compare by
 * (has the key, key, arrival) with the key's direction applied. *key gets
 * the value to sort on ascending (QD_KEY_DESC: inverted); false when the
 * element is too short (it sorts after all that have the key).
 */
static inline bool qd_key_get(const struct qd_key *k, qd_pred_read_t read,
			      const void *elem, __u64 *key)
{
	__u64 v;

	if (!qd_field_get(&k->field, read, elem, &v))
		return false;
	*key = k->flags & QD_KEY_DESC ? ~v : v;
	return true;
}

#endif /* _QD_PRED_H */
