// SPDX-License-Identifier: MIT
/* The table of a thread's operations in flight (pending.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "pending.h"

static unsigned int home(const struct pending *p, qd_token_t qt)
{
	return (unsigned int)(((uint64_t)qt * 0x9e3779b97f4a7c15ULL) >> 32) &
	       p->hmask;
}

static void hash_put(struct pending *p, int i)
{
	unsigned int j = home(p, p->qts[i]);

	while (p->hash[j])
		j = (j + 1) & p->hmask;
	p->hash[j] = (unsigned int)i + 1;
}

/* The hash slot of qt, or -1. */
static int hash_slot(const struct pending *p, qd_token_t qt)
{
	unsigned int j;

	if (!p->hash)
		return -1;
	for (j = home(p, qt); p->hash[j]; j = (j + 1) & p->hmask)
		if (p->qts[p->hash[j] - 1] == qt)
			return (int)j;
	return -1;
}

/* Empty slot j, shifting back the entries its emptiness would orphan. */
static void hash_del(struct pending *p, unsigned int j)
{
	unsigned int k = j, h;

	p->hash[j] = 0;
	for (;;) {
		k = (k + 1) & p->hmask;
		if (!p->hash[k])
			return;
		h = home(p, p->qts[p->hash[k] - 1]);
		/* k stays if its home lies cyclically in (j, k] */
		if (j <= k ? (h > j && h <= k) : (h > j || h <= k))
			continue;
		p->hash[j] = p->hash[k];
		p->hash[k] = 0;
		j = k;
	}
}

int pending_find(const struct pending *p, qd_token_t qt)
{
	int j = hash_slot(p, qt);

	return j < 0 ? -1 : (int)p->hash[j] - 1;
}

int pending_add(struct pending *p, qd_token_t qt, enum op_kind kind,
		void *owner, const struct qd_sga *sga)
{
	if (p->n == p->cap) {
		int cap = p->cap ? p->cap * 2 : 64, i;
		qd_token_t *qts = realloc(p->qts, cap * sizeof(*qts));
		unsigned int *hash;
		struct op *ops;

		if (!qts)
			return -ENOMEM;
		p->qts = qts;
		ops = realloc(p->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		p->ops = ops;
		hash = calloc(2 * (size_t)cap, sizeof(*hash));
		if (!hash)
			return -ENOMEM;
		free(p->hash);
		p->hash = hash;
		p->hmask = 2 * (unsigned int)cap - 1;
		p->cap = cap;
		for (i = 0; i < p->n; i++)
			hash_put(p, i);
	}
	p->qts[p->n] = qt;
	p->ops[p->n].kind = kind;
	p->ops[p->n].owner = owner;
	if (sga)
		p->ops[p->n].sga = *sga;
	else
		p->ops[p->n].sga.numsegs = 0;
	hash_put(p, p->n++);
	return 0;
}

void pending_take(struct pending *p, int i, struct op *out)
{
	int j = hash_slot(p, p->qts[i]);

	*out = p->ops[i];
	if (j >= 0)
		hash_del(p, (unsigned int)j);
	p->n--;
	if (i == p->n)
		return;
	/* the last entry moves to i: its hash slot says so */
	j = hash_slot(p, p->qts[p->n]);
	if (j >= 0)
		p->hash[j] = (unsigned int)i + 1;
	p->qts[i] = p->qts[p->n];
	p->ops[i] = p->ops[p->n];
}

void pending_free(struct pending *p)
{
	free(p->qts);
	free(p->ops);
	free(p->hash);
	p->qts = NULL;
	p->ops = NULL;
	p->hash = NULL;
	p->n = p->cap = 0;
	p->hmask = 0;
}
