/* SPDX-License-Identifier: MIT */
/*
 * The layout of the predicate types, which <qd.h> and <linux/qd.h> each
 * define (whichever comes first, QD_PRED_TYPES_DEFINED): derive.c includes
 * <qd.h> first and checks libqd's definitions, the other files include
 * <linux/qd.h> first (int.h) and check the kernel's, against the same
 * numbers. QD_IOC_DERIVE copies the caller's struct as it is.
 */
#ifndef LIBQD_PRED_LAYOUT_H
#define LIBQD_PRED_LAYOUT_H

#include <stddef.h>

#define QD_PRED_LAYOUT_CHECK(tag)					\
	_Static_assert(sizeof(struct qd_field) == 16 &&			\
		       offsetof(struct qd_field, width) == 4 &&		\
		       offsetof(struct qd_field, flags) == 5 &&		\
		       offsetof(struct qd_field, resv) == 6 &&		\
		       offsetof(struct qd_field, mask) == 8,		\
		       "struct qd_field (" tag ")");			\
	_Static_assert(sizeof(struct qd_pred_term) == 32 &&		\
		       offsetof(struct qd_pred_term, cmp) == 16 &&	\
		       offsetof(struct qd_pred_term, resv) == 20 &&	\
		       offsetof(struct qd_pred_term, value) == 24,	\
		       "struct qd_pred_term (" tag ")");		\
	_Static_assert(sizeof(struct qd_pred) == 136 &&			\
		       offsetof(struct qd_pred, resv) == 4 &&		\
		       offsetof(struct qd_pred, terms) == 8,		\
		       "struct qd_pred (" tag ")");			\
	_Static_assert(sizeof(struct qd_key) == 24 &&			\
		       offsetof(struct qd_key, flags) == 16 &&		\
		       offsetof(struct qd_key, resv) == 20,		\
		       "struct qd_key (" tag ")");			\
	_Static_assert(QD_PRED_MAX_TERMS == 4 &&			\
		       QD_DERIVE_MAX_LEVEL == 7 &&			\
		       QD_FIELD_MAX_END == 4096 && QD_FIELD_BE == 1 &&	\
		       QD_KEY_DESC == 1 && QD_CMP_EQ == 1 &&		\
		       QD_CMP_GE == 6, "constants (" tag ")")

#endif
