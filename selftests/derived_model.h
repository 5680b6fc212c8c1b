/* SPDX-License-Identifier: GPL-2.0 */
/*
 * derived_model.h: the reference model of derived queues
 * (Documentation/abi.md, "Derived queues"; issue 10's semantics), plain C
 * lists, for selftests/derived.c's model-based test. It knows nothing of
 * the kernel or libqd: queues are indices, elements are indices with their
 * bytes. Its predicate and key evaluation is its own (not
 * kmod/common/qd_pred.h), so that the two are checked against each other.
 *
 * Every operation says what the ABI must answer: a push's result, a pop's
 * element or error or "pending"; pending pops are completed by later
 * operations (an arrival, a close), which the model records in the pop
 * (struct dm_pop: done, res, elem) for the driver to compare.
 */
#ifndef QD_DERIVED_MODEL_H
#define QD_DERIVED_MODEL_H

#include <errno.h>
#include <string.h>

#include <linux/qd.h>

#define DM_MAXQ		640	/* queues ever made in one run */
#define DM_MAXE		4096	/* elements ever pushed in one run */
#define DM_MAXPOP	4096	/* pops ever made in one run */
#define DM_LIST		256	/* elements one list holds */
#define DM_ELEM_BYTES	24	/* payload bytes of an element, at most */
#define DM_MAXDER	32	/* queues derived from one queue */

enum { DM_MEMQ, DM_FILTER, DM_SORT, DM_MERGE };

struct dm_elem {
	unsigned char	b[DM_ELEM_BYTES];
	unsigned int	len;
	unsigned int	nsegs;
	unsigned int	seglen[QD_SGA_MAX];
	/* where it is: a queue (and input), a pop, or nowhere (gone) */
	int		q;		/* -1: not in a queue */
	unsigned long long seq;		/* arrival at its queue */
	/* the input it came in through at each merge it passed */
	int		via_q[8];
	int		via_in[8];
	int		nvia;
};

struct dm_list {
	int		e[DM_LIST];
	int		n;
};

struct dm_pop {
	int		q;
	int		done;		/* completed (res, elem) */
	long long	res;		/* bytes, or -errno */
	int		elem;		/* the element, or -1 */
};

struct dm_queue {
	int		kind;		/* DM_* */
	int		open;
	int		src[2];		/* FILTER, SORT: src[0]; MERGE: both */
	int		live[2];	/* the source still feeds this queue */
	int		nsrc;
	int		level;
	struct qd_pred	pred;
	struct qd_key	key;
	struct dm_list	l[2];		/* MERGE: per input; else l[0] */
	int		next;		/* MERGE: the input a pop tries first */
	int		der[DM_MAXDER];	/* queues derived from it, in order */
	int		nder;
	int		pend[DM_LIST];	/* pending pops, oldest first */
	int		npend;
};

struct dm {
	struct dm_queue	q[DM_MAXQ];
	int		nq;
	struct dm_elem	e[DM_MAXE];
	int		ne;
	struct dm_pop	p[DM_MAXPOP];
	int		np;
	unsigned long long seq;
	int		held;		/* elements in queues now */
	int		overflow;	/* a fixed bound was hit: the run stops */
	/*
	 * A diagnostic switch, not the semantics: an element handed to a pop
	 * waiting on a merge leaves next alone (to look past that difference
	 * for others; derived --hand-keeps-next).
	 */
	int		hand_keeps_next;
	/* elements the model freed (closes), for the driver to release */
	int		freed[DM_MAXE];
	int		nfreed;
};

/* --- predicates and keys, evaluated independently of qd_pred.h ------ */

/* The field's value (masked) in *v; 0 if the element is too short. */
static inline int dm_field(const struct qd_field *f, const struct dm_elem *e,
			   unsigned long long *v)
{
	unsigned long long x = 0, m;
	unsigned int i;

	if ((unsigned long long)f->off + f->width > e->len)
		return 0;
	for (i = 0; i < f->width; i++) {
		unsigned int byte = e->b[f->off + i];

		if (f->flags & QD_FIELD_BE)
			x = x << 8 | byte;
		else
			x |= (unsigned long long)byte << (8 * i);
	}
	m = f->width == 8 ? ~0ULL : (1ULL << (8 * f->width)) - 1;
	*v = x & (f->mask ? f->mask : m);
	return 1;
}

static inline int dm_pred(const struct qd_pred *p, const struct dm_elem *e)
{
	unsigned long long v;
	unsigned int i;

	for (i = 0; i < p->nterms; i++) {
		const struct qd_pred_term *t = &p->terms[i];
		int ok;

		if (!dm_field(&t->field, e, &v))
			return 0;
		switch (t->cmp) {
		case QD_CMP_EQ: ok = v == t->value; break;
		case QD_CMP_NE: ok = v != t->value; break;
		case QD_CMP_LT: ok = v < t->value; break;
		case QD_CMP_LE: ok = v <= t->value; break;
		case QD_CMP_GT: ok = v > t->value; break;
		case QD_CMP_GE: ok = v >= t->value; break;
		default: ok = 0;
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* Sort order: -1 if a pops before b under key k (both in one sort). */
static inline int dm_before(const struct qd_key *k, const struct dm_elem *a,
			    const struct dm_elem *b)
{
	unsigned long long va = 0, vb = 0;
	int ha = dm_field(&k->field, a, &va), hb = dm_field(&k->field, b, &vb);

	if (ha != hb)
		return ha;		/* keyed ones first */
	if (ha && va != vb)
		return k->flags & QD_KEY_DESC ? va > vb : va < vb;
	return a->seq < b->seq;
}

/* --- lists ------------------------------------------------------------ */

static inline void dm_append(struct dm *m, struct dm_list *l, int e)
{
	if (l->n >= DM_LIST) {
		m->overflow = 1;
		return;
	}
	l->e[l->n++] = e;
}

static inline int dm_take_at(struct dm_list *l, int i)
{
	int e = l->e[i];

	memmove(&l->e[i], &l->e[i + 1], (l->n - i - 1) * sizeof(int));
	l->n--;
	return e;
}

static inline int dm_held(const struct dm_queue *q)
{
	return q->l[0].n + q->l[1].n;
}

/* Whether q still gets elements: a memq, or a derived queue with a source. */
static inline int dm_alive(const struct dm_queue *q)
{
	return q->open && (q->kind == DM_MEMQ || q->live[0] ||
			   (q->nsrc == 2 && q->live[1]));
}

/* Take what a pop of q yields next (q holds something): the element. */
static inline int dm_take(struct dm *m, struct dm_queue *q)
{
	int i, best = 0, in;

	switch (q->kind) {
	case DM_SORT:
		for (i = 1; i < q->l[0].n; i++)
			if (dm_before(&q->key, &m->e[q->l[0].e[i]],
				      &m->e[q->l[0].e[best]]))
				best = i;
		return dm_take_at(&q->l[0], best);
	case DM_MERGE:
		in = q->l[q->next].n ? q->next : 1 - q->next;
		q->next = 1 - in;
		return dm_take_at(&q->l[in], 0);
	default:
		return dm_take_at(&q->l[0], 0);
	}
}

static inline void dm_pop_done(struct dm *m, int p, long long res, int e)
{
	m->p[p].done = 1;
	m->p[p].res = res;
	m->p[p].elem = e;
}

static inline int dm_elem_bytes(const struct dm_elem *e)
{
	return (int)e->len;
}

/* An element stays in q (from input `in`): to a waiting pop, else queued. */
static inline void dm_deliver(struct dm *m, int qi, int e, int in)
{
	struct dm_queue *q = &m->q[qi];
	int p, i;

	if (q->npend) {
		p = q->pend[0];
		memmove(&q->pend[0], &q->pend[1], (q->npend - 1) * sizeof(int));
		q->npend--;
		if (q->kind == DM_MERGE && !m->hand_keeps_next)
			q->next = 1 - in;
		m->e[e].q = -1;
		dm_pop_done(m, p, dm_elem_bytes(&m->e[e]), e);
		return;
	}
	m->e[e].q = qi;
	m->e[e].seq = ++m->seq;
	if (q->kind == DM_MERGE) {
		for (i = 0; i < m->e[e].nvia; i++)
			if (m->e[e].via_q[i] == qi)
				break;
		if (i == m->e[e].nvia && i < 8) {
			m->e[e].via_q[i] = qi;
			m->e[e].nvia++;
		}
		if (i < 8)
			m->e[e].via_in[i] = in;
		dm_append(m, &q->l[in], e);
	} else {
		dm_append(m, &q->l[0], e);
	}
	m->held++;
}

/* The input of merge qi that e came in through (0 if unknown). */
static inline int dm_via(const struct dm *m, int qi, int e)
{
	int i;

	for (i = 0; i < m->e[e].nvia; i++)
		if (m->e[e].via_q[i] == qi)
			return m->e[e].via_in[i];
	return 0;
}

/* e arrives at q through input `in`: its derived queues first. */
static inline void dm_arrive(struct dm *m, int qi, int e, int in)
{
	struct dm_queue *q = &m->q[qi];
	int i, j;

	for (i = 0; i < q->nder; i++) {
		struct dm_queue *d = &m->q[q->der[i]];

		if (!d->open)
			continue;
		for (j = 0; j < d->nsrc; j++)
			if (d->src[j] == qi && d->live[j])
				break;
		if (j == d->nsrc)
			continue;
		if (d->kind == DM_FILTER && !dm_pred(&d->pred, &m->e[e]))
			continue;
		if (d->kind == DM_MERGE) {
			/* remember the input at this merge before going on */
			int k = m->e[e].nvia;

			for (k = 0; k < m->e[e].nvia; k++)
				if (m->e[e].via_q[k] == q->der[i])
					break;
			if (k == m->e[e].nvia && k < 8)
				m->e[e].nvia++;
			if (k < 8) {
				m->e[e].via_q[k] = q->der[i];
				m->e[e].via_in[k] = j;
			}
		}
		dm_arrive(m, q->der[i], e, j);
		return;
	}
	dm_deliver(m, qi, e, in);
}

/* --- operations --------------------------------------------------------- */

/* A new element (bytes, segments) to push: its index, or -1. */
static inline int dm_elem_new(struct dm *m, const unsigned char *b,
			      unsigned int len, unsigned int nsegs,
			      const unsigned int *seglen)
{
	struct dm_elem *e;

	if (m->ne >= DM_MAXE || len > DM_ELEM_BYTES) {
		m->overflow = 1;
		return -1;
	}
	e = &m->e[m->ne];
	memset(e, 0, sizeof(*e));
	memcpy(e->b, b, len);
	e->len = len;
	e->nsegs = nsegs;
	memcpy(e->seglen, seglen, nsegs * sizeof(*seglen));
	e->q = -1;
	return m->ne++;
}

static inline int dm_queue_new(struct dm *m)
{
	struct dm_queue *q;

	if (m->nq >= DM_MAXQ) {
		m->overflow = 1;
		return -1;
	}
	q = &m->q[m->nq];
	memset(q, 0, sizeof(*q));
	q->open = 1;
	q->src[0] = q->src[1] = -1;
	return m->nq++;
}

static inline int dm_memq(struct dm *m)
{
	int qi = dm_queue_new(m);

	if (qi >= 0)
		m->q[qi].kind = DM_MEMQ;
	return qi;
}

/*
 * A derived queue of kind on src (and src2, MERGE): its index, or -errno
 * as QD_IOC_DERIVE must answer (sources are open queues of the model).
 */
static inline int dm_derive(struct dm *m, int kind, int src, int src2,
			    const struct qd_pred *pred, const struct qd_key *key)
{
	int level = m->q[src].level + 1, qi;
	struct dm_queue *q;

	if (kind == DM_MERGE) {
		if (src == src2)
			return -EINVAL;
		if (m->q[src2].level + 1 > level)
			level = m->q[src2].level + 1;
	}
	if (level > QD_DERIVE_MAX_LEVEL)
		return -EINVAL;
	/* a source that ended (open, its own sources gone) feeds nobody */
	if (!dm_alive(&m->q[src]) || (kind == DM_MERGE && !dm_alive(&m->q[src2])))
		return -EPIPE;
	if (m->q[src].nder >= DM_MAXDER ||
	    (kind == DM_MERGE && m->q[src2].nder >= DM_MAXDER)) {
		m->overflow = 1;
		return -ENOSPC;
	}
	qi = dm_queue_new(m);
	if (qi < 0)
		return -ENOSPC;
	q = &m->q[qi];
	q->kind = kind;
	q->level = level;
	q->src[0] = src;
	q->live[0] = 1;
	q->nsrc = 1;
	if (kind == DM_MERGE) {
		q->src[1] = src2;
		q->live[1] = 1;
		q->nsrc = 2;
		m->q[src2].der[m->q[src2].nder++] = qi;
	}
	if (pred)
		q->pred = *pred;
	if (key)
		q->key = *key;
	m->q[src].der[m->q[src].nder++] = qi;
	return qi;
}

/* A push of element e to q: the result (bytes or -errno). */
static inline long long dm_push(struct dm *m, int qi, int e)
{
	struct dm_queue *q = &m->q[qi];

	while (q->kind == DM_FILTER) {
		if (!q->live[0])
			return -EPIPE;
		qi = q->src[0];
		q = &m->q[qi];
	}
	if (q->kind != DM_MEMQ)
		return -EOPNOTSUPP;
	dm_arrive(m, qi, e, 0);
	return dm_elem_bytes(&m->e[e]);
}

/* A pop of q: the pop's index; done at once, or pending. */
static inline int dm_pop(struct dm *m, int qi)
{
	struct dm_queue *q = &m->q[qi];
	int p, e;

	if (m->np >= DM_MAXPOP || q->npend >= DM_LIST) {
		m->overflow = 1;
		return -1;
	}
	p = m->np++;
	memset(&m->p[p], 0, sizeof(m->p[p]));
	m->p[p].q = qi;
	m->p[p].elem = -1;
	if (dm_held(q)) {
		e = dm_take(m, q);
		m->held--;
		m->e[e].q = -1;
		dm_pop_done(m, p, dm_elem_bytes(&m->e[e]), e);
	} else if (!dm_alive(q)) {
		dm_pop_done(m, p, -EPIPE, -1);
	} else {
		q->pend[q->npend++] = p;
	}
	return p;
}

/* QD_OP_CANCEL of pop p: 1 if it was waiting (now -ECANCELED), else 0. */
static inline int dm_cancel(struct dm *m, int p)
{
	struct dm_queue *q = &m->q[m->p[p].q];
	int i;

	for (i = 0; i < q->npend; i++) {
		if (q->pend[i] != p)
			continue;
		memmove(&q->pend[i], &q->pend[i + 1], (q->npend - i - 1) * sizeof(int));
		q->npend--;
		dm_pop_done(m, p, -ECANCELED, -1);
		return 1;
	}
	return 0;
}

static inline void dm_cancel_pops(struct dm *m, struct dm_queue *q)
{
	int i;

	for (i = 0; i < q->npend; i++)
		dm_pop_done(m, q->pend[i], -ECANCELED, -1);
	q->npend = 0;
}

/* Source s of d is gone (closed, or ended). */
static inline void dm_source_gone(struct dm *m, int di, int si)
{
	struct dm_queue *d = &m->q[di];
	int j, lost = 0, k;

	if (!d->open)
		return;
	for (j = 0; j < d->nsrc; j++) {
		if (d->src[j] == si && d->live[j]) {
			d->live[j] = 0;
			lost = 1;
		}
	}
	if (!lost)
		return;
	dm_cancel_pops(m, d);
	if (dm_alive(d))
		return;
	/* d ended: its derived queues lose their source too */
	for (k = 0; k < d->nder; k++)
		dm_source_gone(m, d->der[k], di);
}

static inline void dm_free_elem(struct dm *m, int e)
{
	m->e[e].q = -1;
	m->freed[m->nfreed++] = e;
}

/* Close q: pops cancelled, elements dropped or given back, sources gone. */
static inline void dm_close(struct dm *m, int qi)
{
	struct dm_queue *q = &m->q[qi];
	int k, e, in, to;

	dm_cancel_pops(m, q);
	q->open = 0;
	while (dm_held(q)) {
		/* in the order q would have popped them */
		if (q->kind == DM_MERGE)
			in = q->l[q->next].n ? q->next : 1 - q->next;
		else
			in = 0;
		e = dm_take(m, q);
		m->held--;
		m->e[e].q = -1;
		if (q->kind == DM_MEMQ) {
			dm_free_elem(m, e);
			continue;
		}
		to = q->src[in];
		if (!q->live[in] || !m->q[to].open) {
			dm_free_elem(m, e);
			continue;
		}
		/* back on the source, after what it holds, not re-offered */
		dm_deliver(m, to, e, m->q[to].kind == DM_MERGE ? dm_via(m, to, e) : 0);
	}
	for (k = 0; k < q->nder; k++)
		dm_source_gone(m, q->der[k], qi);
	/* its sources forget it (arrivals skip closed queues anyway) */
	for (in = 0; in < q->nsrc; in++) {
		struct dm_queue *s = &m->q[q->src[in]];

		for (k = 0; k < s->nder; k++) {
			if (s->der[k] != qi)
				continue;
			memmove(&s->der[k], &s->der[k + 1], (s->nder - k - 1) * sizeof(int));
			s->nder--;
			break;
		}
	}
}

#endif /* QD_DERIVED_MODEL_H */
