// SPDX-License-Identifier: MIT
/* The table of a thread's operations in flight (pending.h). */
#include <errno.h>
#include <stdlib.h>

#include "pending.h"

int pending_add(struct pending *p, qd_token_t qt, enum op_kind kind,
		void *owner, const struct qd_sga *sga)
{
	if (p->n == p->cap) {
		int cap = p->cap ? p->cap * 2 : 64;
		qd_token_t *qts = realloc(p->qts, cap * sizeof(*qts));
		struct op *ops;

		if (!qts)
			return -ENOMEM;
		p->qts = qts;
		ops = realloc(p->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		p->ops = ops;
		p->cap = cap;
	}
	p->qts[p->n] = qt;
	p->ops[p->n].kind = kind;
	p->ops[p->n].owner = owner;
	if (sga)
		p->ops[p->n].sga = *sga;
	else
		p->ops[p->n].sga.numsegs = 0;
	p->n++;
	return 0;
}

void pending_take(struct pending *p, int i, struct op *out)
{
	*out = p->ops[i];
	p->n--;
	p->qts[i] = p->qts[p->n];
	p->ops[i] = p->ops[p->n];
}

void pending_free(struct pending *p)
{
	free(p->qts);
	free(p->ops);
	p->qts = NULL;
	p->ops = NULL;
	p->n = p->cap = 0;
}
