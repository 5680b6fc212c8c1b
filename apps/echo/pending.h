/* SPDX-License-Identifier: MIT */
/*
 * The operations one thread has in flight: their tokens side by side (what
 * qd_wait_any() takes) and, at the same index, what each one is for, with
 * a hash from token to index (what a result of qd_wait_next() is found
 * by). A completed entry is removed by moving the last one into its place,
 * so the table stays dense and every operation is O(1).
 */
#ifndef QDECHO_PENDING_H
#define QDECHO_PENDING_H

#include <qd.h>

enum op_kind { OP_ACCEPT, OP_CONNECT, OP_POP, OP_PUSH };

struct op {
	enum op_kind	kind;
	void		*owner;		/* the connection or listener */
	struct qd_sga	sga;		/* OP_PUSH: the buffer to free after */
};

struct pending {
	qd_token_t	*qts;
	struct op	*ops;
	int		n, cap;
	unsigned int	*hash;		/* index + 1, or 0; linear probing */
	unsigned int	hmask;		/* hash size - 1: at least 2 * cap */
};

/* Append qt with what it is for; -ENOMEM when the table cannot grow. */
int pending_add(struct pending *p, qd_token_t qt, enum op_kind kind,
		void *owner, const struct qd_sga *sga);
/* The index of token qt, or -1. */
int pending_find(const struct pending *p, qd_token_t qt);
/* Remove entry i (after its token was consumed); *out gets its op. */
void pending_take(struct pending *p, int i, struct op *out);
void pending_free(struct pending *p);

#endif
