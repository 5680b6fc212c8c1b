// SPDX-License-Identifier: MIT
/*
 * Callback-derived queues: qd_filter_fn() and qd_sort_fn(), run in libqd
 * on any qd, with the rules of the kernel's derived queues
 * (Documentation/libqd.md, Derived queues).
 *
 * A source with callback-derived queues is a *root*: a qd libqd pops from
 * itself (the *pump*: one ordinary kernel pop at a time, never a lazy
 * one, kept outstanding while any pop in the family waits) and whose pops
 * (qd_pop() on it) libqd serves. Each element the pump brings is offered
 * to the root's derived queues in creation order, the first that takes it
 * offers it to its own, and so on; where it stops it joins that queue's
 * list (a filter's in arrival order, a sort's in cmp order, ties in
 * arrival order). What no derived queue takes stays on the root. Pops are
 * served only after a drain (drain()): everything the root has now is
 * pumped and routed first (a mapped root's ring in user space), so a sort
 * yields the smallest of all that reached its source; then each queue's
 * pending pops, oldest first, take its oldest (smallest) elements: a new
 * pop joins the line behind the pending ones, never ahead of them. The root, its derived queues and theirs form a
 * family; the number of a derived queue is a plain kernel memory queue
 * libqd creates and never uses otherwise (so no kernel qd can have it).
 *
 * Pops on the family are tokens in the popping thread's ring, marked dfn
 * in their slots: pending until an element reaches them here, then done
 * like a lazy pop served in user space (no CQE). The waits (wait.c) that
 * wait for one keep the pumps going: they wait for the pumps' tokens too,
 * and route each element that comes (qd__dfn_pumped()). A wait in another
 * thread sleeps on the context's completion counter, so a pump completion
 * anywhere wakes it, and a pop completed here for another thread's wait
 * is followed by a NOP, whose CQE wakes the sleepers.
 *
 * One lock, dfn_lock, for the table, every family and the callbacks, so
 * callbacks never run concurrently. Taken in process context only, before
 * a ring lock and the allocator's, never while holding one of those.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"
#include "pred_layout.h"
#include "syscall.h"

QD_PRED_LAYOUT_CHECK("<linux/qd.h>");

enum { DN_ROOT, DN_FILTER, DN_SORT };

/* A pending pop: the token of a PENDING dfn slot. */
struct dpop {
	struct dpop	*next;
	qd_token_t	qt;
};

struct dfam;

struct dnode {
	int		qd;
	int		kind;		/* DN_* */
	int		level;		/* root 0 */
	struct dfam	*fam;
	/* the source; NULL for the root and once the source is gone */
	struct dnode	*parent;
	struct dnode	*kids;		/* derived from this one, oldest first */
	struct dnode	*sib;
	bool		(*fn)(const struct qd_sga *sga, void *arg);
	int		(*cmp)(const struct qd_sga *a, const struct qd_sga *b,
			       void *arg);
	void		*arg;
	/* what it holds, in pop order */
	struct qd_delem	*held;
	struct qd_delem	**held_tail;
	struct dpop	*pops;
	struct dpop	**pops_tail;
	int		ended;		/* a derived queue whose source is gone */
};

struct dfam {
	struct dnode	*root;		/* NULL once closed */
	qd_token_t	pump;		/* the root's pop, or 0 */
	uint32_t	npending;	/* pops pending in the family */
	uint32_t	nodes;		/* nodes alive; freed at 0 */
	int		end;		/* the root's pop gave end_res (<= 0) */
	int64_t		end_res;
	struct dfam	*next;
};

static pthread_mutex_t dfn_lock = PTHREAD_MUTEX_INITIALIZER;
/* qd -> node, grown on demand; dfn_lock */
static struct dnode **tab;
static uint32_t tab_cap;
static struct dfam *fams;
/* nodes in tab: 0 keeps every hook off the fast path (atomic; int.h) */
uint32_t qd__dfn_nodes;
/* threads inside a wait for a dfn pop (atomic) */
static uint32_t waiters;
static __thread int in_wait;
/* a pop was completed here for someone else's wait (dfn_lock) */
static int woke;

static struct dnode *lookup(int qd)
{
	return qd >= 0 && (uint32_t)qd < tab_cap ? tab[qd] : NULL;
}

static int tab_set(int qd, struct dnode *n)
{
	struct dnode **t;
	uint32_t cap;

	if (qd < 0)
		return -EBADF;
	if ((uint32_t)qd >= tab_cap) {
		cap = tab_cap ? tab_cap : 64;
		while (cap <= (uint32_t)qd)
			cap *= 2;
		t = realloc(tab, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		memset(t + tab_cap, 0, (cap - tab_cap) * sizeof(*t));
		tab = t;
		tab_cap = cap;
	}
	if (n && !tab[qd])
		__atomic_add_fetch(&qd__dfn_nodes, 1, __ATOMIC_RELEASE);
	else if (!n && tab[qd])
		__atomic_sub_fetch(&qd__dfn_nodes, 1, __ATOMIC_RELEASE);
	tab[qd] = n;
	return 0;
}

static struct dnode *node_new(int qd, int kind)
{
	struct dnode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->qd = qd;
	n->kind = kind;
	n->held_tail = &n->held;
	n->pops_tail = &n->pops;
	return n;
}

static void elem_free(struct qd_delem *e)
{
	/* As a popper would: qd_sgaalloc() buffers go, others stay. */
	if (e->ret > 0 && e->sga.numsegs)
		qd_sgafree(&e->sga);
	free(e);
}

/* A dfn slot of the calling thread's ring: done with e or res, or pending. */
static int slot_new(qd_token_t *qt_out, int qd, int pending,
		    struct qd_delem *e, int64_t res)
{
	struct qd_ring *r;
	struct qd_slot *s;
	int ret;

	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	qd_lock(&r->lock);
	s = qd__slot_alloc(&r->slots);
	if (!s) {
		qd_unlock(&r->lock);
		return -ENOMEM;
	}
	s->op = QD_OP_POP;
	s->qd = qd;
	s->dfn = 1;
	if (pending) {
		/* Read without the lock by qd_wait_next() (wait.c). */
		__atomic_add_fetch(&r->ndfn, 1, __ATOMIC_RELAXED);
	} else {
		s->delem = e;
		s->res = e ? e->ret : res;
		s->state = QD_SLOT_DONE;
		if (r->next_on)
			qd__next_note(r, s);
	}
	*qt_out = qd_slot_token(&r->slots, s);
	qd_unlock(&r->lock);
	return 0;
}

/* Complete the pending dfn pop qt with e or res: 1, or 0 if it is gone. */
static int slot_complete(qd_token_t qt, struct qd_delem *e, int64_t res)
{
	struct qd_ring *r = qd__ring_get(qd_token_ring(qt));
	struct qd_slot *s;
	int ok = 0;

	if (!r)
		return 0;
	qd_lock(&r->lock);
	s = qd__slot_get(&r->slots, qt);
	if (s && s->dfn && s->state == QD_SLOT_PENDING) {
		s->delem = e;
		s->res = e ? e->ret : res;
		s->state = QD_SLOT_DONE;
		__atomic_sub_fetch(&r->ndfn, 1, __ATOMIC_RELAXED);
		if (r->next_on)
			qd__next_note(r, s);
		ok = 1;
	}
	qd_unlock(&r->lock);
	/* Someone else may sleep on it (see dfn_unlock()). */
	if (ok && __atomic_load_n(&waiters, __ATOMIC_SEQ_CST) > (in_wait ? 1u : 0u))
		woke = 1;
	return ok;
}

/* Complete every pending pop of n with res. */
static void pops_fail(struct dnode *n, int64_t res)
{
	struct dpop *p;

	while ((p = n->pops)) {
		n->pops = p->next;
		n->fam->npending--;
		slot_complete(p->qt, NULL, res);
		free(p);
	}
	n->pops_tail = &n->pops;
}

/* The same for n and every queue derived from it, down the tree. */
static void pops_fail_tree(struct dnode *n, int64_t res)
{
	struct dnode *k;

	pops_fail(n, res);
	for (k = n->kids; k; k = k->sib)
		pops_fail_tree(k, res);
}

/* e joins n's list: at the end, or (a sort) in cmp order. */
static void hold(struct dnode *n, struct qd_delem *e)
{
	struct qd_delem **pp;

	e->next = NULL;
	if (n->kind != DN_SORT) {
		*n->held_tail = e;
		n->held_tail = &e->next;
		return;
	}
	/* After every element that does not sort after it: stable. */
	for (pp = &n->held; *pp; pp = &(*pp)->next)
		if (n->cmp(&(*pp)->sga, &e->sga, n->arg) > 0)
			break;
	e->next = *pp;
	*pp = e;
	if (!e->next)
		n->held_tail = &e->next;
}

/* n's pending pops, oldest first, take what n holds: how many did. */
static int serve(struct dnode *n)
{
	struct qd_delem *e;
	struct dpop *p;
	int served = 0;

	while ((p = n->pops) && (e = n->held)) {
		n->pops = p->next;
		if (!n->pops)
			n->pops_tail = &n->pops;
		n->fam->npending--;
		/* Off the list first: once handed over, e is the popper's. */
		n->held = e->next;
		if (!n->held)
			n->held_tail = &n->held;
		if (slot_complete(p->qt, e, 0)) {
			served++;
		} else {
			e->next = n->held;
			n->held = e;
			if (!e->next)
				n->held_tail = &e->next;
		}
		free(p);
	}
	return served;
}

static int serve_tree(struct dnode *n)
{
	struct dnode *k;
	int served = serve(n);

	for (k = n->kids; k; k = k->sib)
		served += serve_tree(k);
	return served;
}

/* e stays in n (given back by a derived queue closing): a pop gets it. */
static void deliver(struct dnode *n, struct qd_delem *e)
{
	hold(n, e);
	serve(n);
}

/*
 * An element arrives at n: offered down the tree, first taker wins; it
 * waits there for qd__dfn_serve(), so that a sort sees all that came.
 */
static void route(struct dnode *n, struct qd_delem *e)
{
	struct dnode *k;

again:
	for (k = n->kids; k; k = k->sib) {
		if (k->kind == DN_SORT || k->fn(&e->sga, k->arg)) {
			n = k;
			goto again;
		}
	}
	hold(n, e);
}

/*
 * n lost its source: it ends. Its pending pops complete with res
 * (-ECANCELED, as the kernel's), and its own derived queues count their
 * source as gone too, down the tree.
 */
static void detach(struct dnode *n, int64_t res)
{
	struct dnode *k, *next;

	n->parent = NULL;
	n->ended = 1;
	pops_fail(n, res);
	for (k = n->kids; k; k = next) {
		next = k->sib;
		k->sib = NULL;
		detach(k, res);
	}
	n->kids = NULL;
}

/* Keep the root's pop outstanding while a pop of the family waits. */
static void pump(struct dfam *f)
{
	int ret;

	if (!f->root || f->pump || !f->npending || f->end)
		return;
	ret = qd__pop_raw(&f->pump, f->root->qd);
	if (!ret)
		return;
	f->pump = 0;
	/* No pop could be made: the waiting pops hear why. */
	pops_fail_tree(f->root, ret);
}

/*
 * The pump's result qr reached f (f->pump taken): route its element, or
 * (no element: end of stream, an error) end the family's pumping. e: the
 * element made of qr, or NULL.
 */
static void pumped(struct dfam *f, struct qd_delem *e,
		   const struct qd_result *qr)
{
	f->pump = 0;
	if (e) {
		route(f->root, e);
	} else if (qr->ret <= 0 && qr->ret != -ECANCELED) {
		/* The source has nothing more (end of stream, an error). */
		f->end = 1;
		f->end_res = qr->ret;
		serve_tree(f->root);
		pops_fail_tree(f->root, qr->ret);
	}
}

/* qr's element in a struct qd_delem, or NULL (none, or no memory: freed). */
static struct qd_delem *elem_of(const struct qd_result *qr)
{
	struct qd_delem *e;

	if (qr->ret <= 0)
		return NULL;
	e = malloc(sizeof(*e));
	if (e) {
		e->ret = qr->ret;
		e->sga = qr->value.sga;
	} else {
		/* Nowhere to keep it: as a close would, it goes. */
		qd_sgafree((struct qd_sga *)&qr->value.sga);
	}
	return e;
}

/* Whether pops in f must wait for a drain of the root before being served. */
static int drainable(const struct dfam *f)
{
	return f->root && f->root->kids && !f->end;
}

/*
 * Before pops are served: pump everything the root has now and route it,
 * so that a sort orders all that reached its source (Documentation/
 * libqd.md: the pops yield the smallest key among what arrived before
 * they are served). The pump's result first, if it has one; then a
 * mapped root's ring in user space, or else one kernel pop at a time,
 * until the ring is empty or the root's pop would wait (it stays
 * outstanding: the next drain only looks at it), or another thread took
 * its result; bounded by a queue's default depth, so a fast producer
 * cannot keep the pops waiting. dfn_lock held.
 */
static void drain(struct dfam *f)
{
	struct qd_result qr;
	int i, ret;

	for (i = 0; i < QD_MEMQ_DEFAULT_DEPTH && drainable(f); i++) {
		/*
		 * A mapped root without a pop in the kernel: from its ring,
		 * no system call; empty, the drain is done.
		 */
		if (!f->pump) {
			ret = qd__mq_pop_now(f->root->qd, &qr);
			if (!ret)
				return;
			if (ret > 0) {
				pumped(f, elem_of(&qr), &qr);
				continue;
			}
		}
		if (!f->pump) {
			ret = qd__pop_raw(&f->pump, f->root->qd);
			if (ret) {
				f->pump = 0;
				pops_fail_tree(f->root, ret);
				return;
			}
		}
		ret = qd__dfn_poll(f->pump, &qr);
		if (ret <= 0)
			return;
		pumped(f, elem_of(&qr), &qr);
	}
}

static void fam_unlink(struct dfam *f)
{
	struct dfam **pp;

	for (pp = &fams; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	free(f);
}

/*
 * A root with nothing derived, held, waiting or pumping is a plain qd
 * again. dfn_lock held.
 */
static void dissolve(struct dfam *f)
{
	struct dnode *r = f->root;

	if (!r || r->kids || r->held || r->pops || f->pump)
		return;
	tab_set(r->qd, NULL);
	free(r);
	f->root = NULL;
	if (!--f->nodes)
		fam_unlink(f);
}

static void dfn_unlock(void)
{
	struct qd_ring *r;
	int wake = woke;

	woke = 0;
	pthread_mutex_unlock(&dfn_lock);
	/*
	 * A pop completed here may be another thread's, asleep in a wait:
	 * a CQE on any ring bumps the completion counter it sleeps on.
	 */
	if (wake && !qd__ring_mine(&r))
		qd__ring_nop(r);
}

/* The root node for qd, made if needed (the source of a new derived queue). */
static struct dnode *root_get(int qd, int *err)
{
	struct dnode *n = lookup(qd);
	struct dfam *f;

	if (n)
		return n;
	f = calloc(1, sizeof(*f));
	n = f ? node_new(qd, DN_ROOT) : NULL;
	if (!n || tab_set(qd, n)) {
		free(n);
		free(f);
		*err = -ENOMEM;
		return NULL;
	}
	n->fam = f;
	f->root = n;
	f->nodes = 1;
	f->next = fams;
	fams = f;
	return n;
}

static int derive(int *qd_out, int src, int kind,
		  bool (*fn)(const struct qd_sga *, void *),
		  int (*cmp)(const struct qd_sga *, const struct qd_sga *,
			     void *),
		  void *arg)
{
	struct dnode *parent, *n, **pp;
	int ret, qd;

	if (!qd_out || (!fn && !cmp))
		return -EINVAL;
	if (src < 0)
		return -EBADF;
	ret = qd_get();
	if (ret)
		return ret;
	/* Its number: a kernel queue nothing else ever uses. */
	ret = qd__queue_create(qd__ctx.fd, 1, &qd);
	if (ret)
		return ret;
	pthread_mutex_lock(&dfn_lock);
	parent = lookup(src);
	if (parent && parent->kind != DN_ROOT && parent->ended) {
		ret = -EPIPE;
		goto err;
	}
	if (parent && parent->level >= QD_DERIVE_MAX_LEVEL) {
		ret = -EINVAL;
		goto err;
	}
	n = node_new(qd, kind);
	if (!n) {
		ret = -ENOMEM;
		goto err;
	}
	if (!parent)
		parent = root_get(src, &ret);
	if (!parent || tab_set(qd, n)) {
		free(n);
		ret = parent ? -ENOMEM : ret;
		if (parent)
			dissolve(parent->fam);
		goto err;
	}
	n->fn = fn;
	n->cmp = cmp;
	n->arg = arg;
	n->parent = parent;
	n->level = parent->level + 1;
	n->fam = parent->fam;
	n->fam->nodes++;
	for (pp = &parent->kids; *pp; pp = &(*pp)->sib)
		;
	*pp = n;
	*qd_out = qd;
	pthread_mutex_unlock(&dfn_lock);
	return 0;
err:
	pthread_mutex_unlock(&dfn_lock);
	qd__close_qd(qd__ctx.fd, qd);
	return ret;
}

int qd_filter_fn(int *qd_out, int qd,
		 bool (*fn)(const struct qd_sga *sga, void *arg), void *arg)
{
	if (!fn)
		return -EINVAL;
	return derive(qd_out, qd, DN_FILTER, fn, NULL, arg);
}

int qd_sort_fn(int *qd_out, int qd,
	       int (*cmp)(const struct qd_sga *a, const struct qd_sga *b,
			  void *arg),
	       void *arg)
{
	if (!cmp)
		return -EINVAL;
	return derive(qd_out, qd, DN_SORT, NULL, cmp, arg);
}

int qd__dfn_is(int qd)
{
	struct dnode *n;
	int ret;

	if (!qd__dfn_active())
		return 0;
	pthread_mutex_lock(&dfn_lock);
	n = lookup(qd);
	ret = !n ? 0 : n->kind == DN_ROOT ? QD_DFN_ROOT : QD_DFN_DERIVED;
	pthread_mutex_unlock(&dfn_lock);
	return ret;
}

int qd__dfn_pop(qd_token_t *qt_out, int qd)
{
	struct dnode *n;
	struct dpop *p;
	struct dfam *f;
	int ret;

	if (!qd__dfn_active())
		return QD_DFN_NOT;
	pthread_mutex_lock(&dfn_lock);
	n = lookup(qd);
	if (!n) {
		pthread_mutex_unlock(&dfn_lock);
		return QD_DFN_NOT;
	}
	f = n->fam;
	if (!n->held && !n->pops && n->ended) {
		ret = slot_new(qt_out, qd, 0, NULL, -EPIPE);
	} else if (!n->held && !n->pops && f->end) {
		ret = slot_new(qt_out, qd, 0, NULL, f->end_res);
	} else {
		/*
		 * In line behind the older pops of n (pops complete in the
		 * order they were made), served at once if n has an element
		 * for it once the root is drained; else it waits.
		 */
		p = malloc(sizeof(*p));
		ret = p ? slot_new(qt_out, qd, 1, NULL, 0) : -ENOMEM;
		if (!ret) {
			p->qt = *qt_out;
			p->next = NULL;
			*n->pops_tail = p;
			n->pops_tail = &p->next;
			f->npending++;
			if (n->held || drainable(f)) {
				drain(f);
				if (f->root)
					serve_tree(f->root);
				else
					serve(n);
			}
			pump(f);
			dissolve(f);
		} else {
			free(p);
		}
	}
	dfn_unlock();
	return ret;
}

int qd__dfn_push_target(int qd, int *target)
{
	struct dnode *n;
	int ret = 0;

	*target = qd;
	if (!qd__dfn_active())
		return 0;
	pthread_mutex_lock(&dfn_lock);
	/* A push to a filter is a push to its source, up to the root. */
	for (n = lookup(qd); n && n->kind != DN_ROOT; n = n->parent) {
		if (n->kind == DN_SORT) {
			ret = -EOPNOTSUPP;
			break;
		}
		if (!n->parent) {
			ret = -EPIPE;
			break;
		}
		*target = n->parent->qd;
	}
	pthread_mutex_unlock(&dfn_lock);
	return ret;
}

int qd__dfn_cancel(qd_token_t qt, int qd)
{
	struct dpop **pp, *p;
	struct dnode *n;

	pthread_mutex_lock(&dfn_lock);
	n = lookup(qd);
	for (pp = n ? &n->pops : NULL; pp && (p = *pp); pp = &p->next) {
		if (p->qt != qt)
			continue;
		*pp = p->next;
		if (n->pops_tail == &p->next)
			n->pops_tail = pp;
		n->fam->npending--;
		slot_complete(qt, NULL, -ECANCELED);
		free(p);
		break;
	}
	dfn_unlock();
	return 0;
}

/* Close a root: everything derived from it ends. */
static void close_root(struct dnode *n, qd_token_t *pump_out)
{
	struct dfam *f = n->fam;
	struct qd_delem *e;
	struct dnode *k, *next;

	tab_set(n->qd, NULL);
	*pump_out = f->pump;
	f->pump = 0;
	f->root = NULL;
	pops_fail(n, -ECANCELED);
	for (k = n->kids; k; k = next) {
		next = k->sib;
		k->sib = NULL;
		detach(k, -ECANCELED);
	}
	while ((e = n->held)) {
		n->held = e->next;
		elem_free(e);
	}
	free(n);
	if (!--f->nodes)
		fam_unlink(f);
}

/* Close a derived queue: what it holds goes back to its source. */
static void close_derived(struct dnode *n, qd_token_t *reclaim)
{
	struct dfam *f = n->fam;
	struct dnode **pp, *k, *next;
	struct qd_delem *e;

	tab_set(n->qd, NULL);
	pops_fail(n, -ECANCELED);
	if (n->parent) {
		for (pp = &n->parent->kids; *pp != n; pp = &(*pp)->sib)
			;
		*pp = n->sib;
	}
	while ((e = n->held)) {
		n->held = e->next;
		/* Not offered again: straight to the source's line. */
		if (n->parent)
			deliver(n->parent, e);
		else
			elem_free(e);
	}
	for (k = n->kids; k; k = next) {
		next = k->sib;
		k->sib = NULL;
		detach(k, -ECANCELED);
	}
	/* Nothing waits any more: take the root's pop back. */
	if (f->root && !f->root->kids && !f->npending)
		*reclaim = f->pump;
	free(n);
	if (!--f->nodes)
		fam_unlink(f);
	else
		dissolve(f);
}

int qd__dfn_close(int qd, qd_token_t *pump_out)
{
	qd_token_t reclaim = 0;
	struct qd_result qr;
	struct dnode *n;
	int root_qd = -1, ret, cancel;

	*pump_out = 0;
	if (!qd__dfn_active())
		return QD_DFN_NOT;
	pthread_mutex_lock(&dfn_lock);
	n = lookup(qd);
	if (!n) {
		pthread_mutex_unlock(&dfn_lock);
		return QD_DFN_NOT;
	}
	if (n->kind == DN_ROOT) {
		close_root(n, pump_out);
		dfn_unlock();
		return QD_DFN_NOT;	/* the caller closes the qd itself */
	}
	if (n->fam->root)
		root_qd = n->fam->root->qd;
	close_derived(n, &reclaim);
	dfn_unlock();
	ret = qd__close_qd(qd__ctx.fd, qd);
	/*
	 * Cancelled, it completes at once (0, or -EALREADY: its result is
	 * in); -EINVAL: a wait took it; -EOPNOTSUPP: it stays, and so does
	 * the root.
	 */
	cancel = reclaim ? qd_cancel(reclaim) : -EINVAL;
	if ((!cancel || cancel == -EALREADY) &&
	    !qd_wait(&qr, reclaim, NULL)) {
		/* Cancelled, or an element that arrived first: it routes. */
		qd__dfn_pumped(reclaim, &qr);
		pthread_mutex_lock(&dfn_lock);
		n = lookup(root_qd);
		if (n && n->kind == DN_ROOT)
			dissolve(n->fam);
		dfn_unlock();
	}
	return ret;
}

int qd__dfn_pumps(qd_token_t *out, int max)
{
	struct dfam *f;
	int n = 0;

	pthread_mutex_lock(&dfn_lock);
	for (f = fams; f; f = f->next) {
		pump(f);
		if (f->pump && n < max)
			out[n++] = f->pump;
	}
	dfn_unlock();
	return n;
}

void qd__dfn_pumped(qd_token_t qt, const struct qd_result *qr)
{
	struct qd_delem *e = elem_of(qr);
	struct dfam *f;

	pthread_mutex_lock(&dfn_lock);
	for (f = fams; f && f->pump != qt; f = f->next)
		;
	if (!f) {
		/* Its root closed meanwhile: dropped with the source's. */
		if (e)
			elem_free(e);
		pthread_mutex_unlock(&dfn_lock);
		return;
	}
	pumped(f, e, qr);
	pump(f);
	dissolve(f);
	dfn_unlock();
}

int qd__dfn_serve(void)
{
	struct dfam *f, *next;
	int served = 0;

	pthread_mutex_lock(&dfn_lock);
	for (f = fams; f; f = next) {
		next = f->next;
		if (f->root && f->npending) {
			drain(f);
			served += serve_tree(f->root);
		}
		dissolve(f);
	}
	dfn_unlock();
	return served;
}

void qd__dfn_waiting(int on)
{
	in_wait = on;
	if (on)
		__atomic_add_fetch(&waiters, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_sub_fetch(&waiters, 1, __ATOMIC_SEQ_CST);
}

void qd__dfn_forget_all(void)
{
	/* The child's copies name a context that is not its own. */
	tab = NULL;
	tab_cap = 0;
	fams = NULL;
	qd__dfn_nodes = 0;
	waiters = 0;
	pthread_mutex_init(&dfn_lock, NULL);
}
