// SPDX-License-Identifier: GPL-2.0
/*
 * Derived queues: filter, merge and sort (QD_IOC_DERIVE, uapi/linux/qd.h;
 * the rules in Documentation/abi.md, "Derived queues").
 *
 * A derived queue is fed at arrival time: when an element reaches a source
 * (a memory queue's push; an element a derived queue passes on), the
 * source offers it to its takers in creation order before it queues it
 * itself, in the same call and under its own lock, so that a pop waiting
 * on a derived queue is woken only by an element for it. A filter takes
 * what its predicate (common/qd_pred.h, evaluated on the pinned pages of
 * the element) holds for; a merge and a sort take everything. A derived
 * queue offers what it takes to its own takers first, then hands it to its
 * oldest waiting pop or keeps it: a filter in a list, a merge in one list
 * per source (pops alternate), a sort in a red-black tree ordered by (has
 * the key, key, arrival).
 *
 * Context and locks: arrivals come from any context a source's push runs
 * in (process context today: the submitter; softirq or hardirq as sockets
 * and devices become sources), so dn->lock is irq-safe. It nests under the
 * source's lock, and a derived queue's lock under its sources' by level
 * (its lockdep subclass): a path of arrivals only ever goes up in level,
 * and nothing takes a source's lock under a derived queue's. Structural
 * changes (create, close, a source closing) happen under ctx->lock, in
 * process context. Completions are posted after the locks are dropped
 * (qd_derive_finish()), except a multishot pop's deliveries, posted under
 * them as memory queues do.
 *
 * Elements held here are bounded by their pushers' element budget
 * (max_queued), which charged them when they were made: no depth of its
 * own.
 */
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "common/qd_pred.h"
#include "ctx.h"
#include "derive.h"
#include "object.h"
#include "op.h"
#include "stats.h"

struct qd_dnode {
	struct qd_object obj;
	spinlock_t lock;		/* everything below; irq-safe, by level */
	struct qd_dsrc src;		/* as a source of derived queues */
	struct qd_dlink links[2];	/* from its sources (nsrc) */
	u8 kind;			/* QD_DERIVE_* */
	u8 nsrc;			/* 1, or 2 for a merge */
	u8 live;			/* sources not gone */
	u8 next;			/* merge: the input a pop tries first */
	bool closed;
	union {
		struct qd_pred pred;	/* filter */
		struct qd_key key;	/* sort */
	};
	struct list_head elems[2];	/* filter: [0]; merge: per input */
	struct rb_root_cached tree;	/* sort */
	u32 held[2];			/* elements in elems[i] (sort: [0]) */
	u64 seq;			/* sort: arrivals so far */
	struct list_head pops;		/* waiting pop ops */
	u32 nr_pops;
	u64 taken;			/* elements that arrived */
	u64 popped;
};

static const char *const qd_derive_names[] = {
	[QD_DERIVE_FILTER] = "filter",
	[QD_DERIVE_MERGE] = "merge",
	[QD_DERIVE_SORT] = "sort",
};

static struct qd_dnode *to_dnode(struct qd_object *obj)
{
	return container_of(obj, struct qd_dnode, obj);
}

static bool qd_derive_multishot(const struct qd_op *op)
{
	return op->op_flags & QD_POP_MULTISHOT;
}

/*
 * The merges an element went through, by level: bit L is its input at the
 * merge of level L (levels grow along a path, so each has its own bit).
 * Read when a queue derived from that merge gives it back.
 */
static void qd_elem_set_din(struct qd_kelem *elem, u8 level, u8 input)
{
	elem->din = (elem->din & ~BIT(level)) | (input << level);
}

static u8 qd_elem_din(const struct qd_kelem *elem, u8 level)
{
	return (elem->din >> level) & 1;
}

/* Sort order: elements with the key first, by key, then by arrival. */
static bool qd_sort_before(const struct qd_kelem *a, const struct qd_kelem *b)
{
	if (a->dkeyed != b->dkeyed)
		return a->dkeyed;
	if (a->dkeyed && a->dkey != b->dkey)
		return a->dkey < b->dkey;
	return a->dseq < b->dseq;
}

static void qd_sort_insert(struct qd_dnode *dn, struct qd_kelem *elem)
{
	struct rb_node **p = &dn->tree.rb_root.rb_node, *parent = NULL;
	bool leftmost = true;

	elem->dkeyed = qd_key_get(&dn->key, qd_elem_read, elem, &elem->dkey);
	elem->dseq = dn->seq++;
	while (*p) {
		parent = *p;
		if (qd_sort_before(elem, rb_entry(parent, struct qd_kelem, drb))) {
			p = &parent->rb_left;
		} else {
			p = &parent->rb_right;
			leftmost = false;
		}
	}
	rb_link_node(&elem->drb, parent, p);
	rb_insert_color_cached(&elem->drb, &dn->tree, leftmost);
}

/* Keep elem (from input). Called with dn->lock held. */
static void qd_dnode_store(struct qd_dnode *dn, u8 input,
			   struct qd_kelem *elem)
{
	if (dn->kind == QD_DERIVE_SORT) {
		qd_sort_insert(dn, elem);
		dn->held[0]++;
		return;
	}
	if (dn->kind != QD_DERIVE_MERGE)
		input = 0;
	list_add_tail(&elem->node, &dn->elems[input]);
	dn->held[input]++;
}

static u32 qd_dnode_held(const struct qd_dnode *dn)
{
	return dn->held[0] + dn->held[1];
}

/* The element a pop gets now, or NULL. Called with dn->lock held. */
static struct qd_kelem *qd_dnode_take(struct qd_dnode *dn)
{
	struct qd_kelem *elem;
	struct rb_node *rb;
	u8 i = 0;

	if (!qd_dnode_held(dn))
		return NULL;
	if (dn->kind == QD_DERIVE_SORT) {
		rb = rb_first_cached(&dn->tree);
		rb_erase_cached(rb, &dn->tree);
		dn->held[0]--;
		return rb_entry(rb, struct qd_kelem, drb);
	}
	if (dn->kind == QD_DERIVE_MERGE) {
		/* Fair: the sources take turns while both have elements. */
		i = dn->held[dn->next] ? dn->next : !dn->next;
		dn->next = !i;
	}
	elem = list_first_entry(&dn->elems[i], struct qd_kelem, node);
	list_del_init(&elem->node);
	dn->held[i]--;
	return elem;
}

/*
 * Move what dn holds from input (a sort, a filter: everything) to the tail
 * of list, in the order pops would get it. Called with dn->lock held.
 */
static void qd_dnode_drain(struct qd_dnode *dn, u8 input,
			   struct list_head *list)
{
	struct qd_kelem *elem;
	struct rb_node *rb;

	if (dn->kind == QD_DERIVE_SORT) {
		while ((rb = rb_first_cached(&dn->tree))) {
			rb_erase_cached(rb, &dn->tree);
			elem = rb_entry(rb, struct qd_kelem, drb);
			list_add_tail(&elem->node, list);
		}
		dn->held[0] = 0;
		return;
	}
	if (dn->kind != QD_DERIVE_MERGE)
		input = 0;
	list_splice_tail_init(&dn->elems[input], list);
	dn->held[input] = 0;
}

/*
 * Give elem to the oldest waiting pop, or keep it. Called with dn->lock
 * held; the pop's completion goes on done.
 */
static void qd_dnode_hand(struct qd_dnode *dn, u8 input, struct qd_kelem *elem,
			  struct list_head *done)
{
	struct qd_op *pop;

	if (list_empty(&dn->pops)) {
		qd_dnode_store(dn, input, elem);
		return;
	}
	pop = list_first_entry(&dn->pops, struct qd_op, node);
	dn->popped++;
	/* A merge's turn passes as if the pop had taken it from the list. */
	if (dn->kind == QD_DERIVE_MERGE)
		dn->next = !input;
	if (qd_derive_multishot(pop)) {
		/* Delivered now; back of the line. */
		list_move_tail(&pop->node, &dn->pops);
		qd_op_deliver(pop, elem);
		return;
	}
	list_del(&pop->node);
	dn->nr_pops--;
	qd_op_unwait(pop);
	pop->elem = elem;
	pop->res = elem->bytes;
	list_add_tail(&pop->node, done);
}

/* elem arrives from input: its takers first, then its pops or its store. */
static void qd_dnode_arrive(struct qd_dnode *dn, u8 input,
			    struct qd_kelem *elem, struct list_head *done)
{
	if (dn->kind == QD_DERIVE_MERGE)
		qd_elem_set_din(elem, dn->src.level, input);
	dn->taken++;
	if (qd_dsrc_busy(&dn->src) && qd_derive_route(&dn->src, elem, done))
		return;
	qd_dnode_hand(dn, input, elem, done);
}

/*
 * elem arrives at src: offer it to src's derived queues in creation order.
 * True if one took it (it is theirs now, with the completions it caused on
 * done). Called with src's lock held, interrupts off; any context. The
 * recursion follows levels: at most QD_DERIVE_MAX_LEVEL deep.
 */
bool qd_derive_route(struct qd_dsrc *src, struct qd_kelem *elem,
		     struct list_head *done)
{
	struct qd_dnode *dn;
	struct qd_dlink *l;

	list_for_each_entry(l, &src->takers, node) {
		dn = l->dn;
		/* The predicate is constant: evaluated outside dn->lock. */
		if (dn->kind == QD_DERIVE_FILTER &&
		    !qd_pred_match(&dn->pred, qd_elem_read, elem))
			continue;
		spin_lock_nested(&dn->lock, dn->src.level);
		if (!dn->closed) {
			qd_dnode_arrive(dn, l->input, elem, done);
			spin_unlock(&dn->lock);
			return true;
		}
		spin_unlock(&dn->lock);
	}
	return false;
}

/* Move dn's waiting pops to cancel. Called with dn->lock held. */
static void qd_dnode_take_pops(struct qd_dnode *dn, struct list_head *cancel)
{
	struct qd_op *op, *tmp;

	list_for_each_entry_safe(op, tmp, &dn->pops, node) {
		qd_op_unwait(op);
		list_move_tail(&op->node, cancel);
	}
	dn->nr_pops = 0;
}

/*
 * src closes (or, a derived queue, ends): its derived queues lose it. Their
 * waiting pops go to cancel (for -ECANCELED); one left with no source ends,
 * and so on up. Called with src's lock held, interrupts off.
 */
void qd_derive_src_gone(struct qd_dsrc *src, struct list_head *cancel)
{
	struct qd_dlink *l, *tmp;
	struct qd_dnode *dn;

	src->gone = true;
	list_for_each_entry_safe(l, tmp, &src->takers, node) {
		list_del_init(&l->node);
		dn = l->dn;
		spin_lock_nested(&dn->lock, dn->src.level);
		dn->live--;
		qd_dnode_take_pops(dn, cancel);
		if (!dn->live)
			qd_derive_src_gone(&dn->src, cancel);
		spin_unlock(&dn->lock);
	}
}

/*
 * The derived queue of link l closes: take l off its source's takers (if
 * still there) and move what the queue holds from that source to elems, in
 * pop order, for the source to keep. Called from the source's
 * derive_unlink with the source's lock held.
 */
void qd_derive_unlink(struct qd_dlink *l, struct list_head *elems)
{
	struct qd_dnode *dn = l->dn;

	if (list_empty(&l->node))
		return;
	list_del_init(&l->node);
	spin_lock_nested(&dn->lock, dn->src.level);
	dn->live--;
	qd_dnode_drain(dn, l->input, elems);
	spin_unlock(&dn->lock);
}

/* Complete the ops on done with their results. Any context, no lock. */
void qd_derive_finish(struct list_head *done)
{
	struct qd_op *op, *tmp;

	list_for_each_entry_safe(op, tmp, done, node) {
		list_del_init(&op->node);
		qd_op_complete(op, op->res);
	}
}

static void qd_derive_cancel_list(struct list_head *cancel)
{
	struct qd_op *op, *tmp;

	list_for_each_entry_safe(op, tmp, cancel, node) {
		list_del_init(&op->node);
		qd_op_complete(op, -ECANCELED);
		cond_resched();
	}
}

static void qd_derive_free_list(struct list_head *elems)
{
	struct qd_kelem *elem, *tmp;

	list_for_each_entry_safe(elem, tmp, elems, node) {
		list_del(&elem->node);
		qd_elem_free(elem);
		cond_resched();
	}
}

/* A push to a filter is a push to its source; merges and sorts refuse. */
static int qd_dnode_push(struct qd_object *obj, struct qd_op *op)
{
	struct qd_dnode *dn = to_dnode(obj);
	struct qd_object *src = dn->links[0].src;

	if (dn->kind != QD_DERIVE_FILTER)
		return -EOPNOTSUPP;
	if (READ_ONCE(dn->closed))
		return -EBADF;
	if (!READ_ONCE(dn->live))
		return -EPIPE;
	return src->ops->push(src, op);
}

static int qd_dnode_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_dnode *dn = to_dnode(obj);
	struct qd_kelem *elem;
	unsigned long flags;
	LIST_HEAD(done);
	int ret = 0;

	spin_lock_irqsave_nested(&dn->lock, flags, dn->src.level);
	if (dn->closed) {
		ret = -EBADF;
	} else if (qd_derive_multishot(op)) {
		/* Everything held now, then wait for more (or end). */
		while ((elem = qd_dnode_take(dn))) {
			dn->popped++;
			qd_op_deliver(op, elem);
		}
		ret = dn->live ? qd_op_wait(op, QD_OP_WAIT_POP) : -EPIPE;
		if (!ret) {
			list_add_tail(&op->node, &dn->pops);
			dn->nr_pops++;
		}
	} else {
		elem = qd_dnode_take(dn);
		if (elem) {
			dn->popped++;
			op->elem = elem;
			op->res = elem->bytes;
			list_add_tail(&op->node, &done);
		} else if (!dn->live) {
			ret = -EPIPE;
		} else {
			ret = qd_op_wait(op, QD_OP_WAIT_POP);
			if (!ret) {
				list_add_tail(&op->node, &dn->pops);
				dn->nr_pops++;
			}
		}
	}
	spin_unlock_irqrestore(&dn->lock, flags);

	qd_derive_finish(&done);
	return ret;
}

static int qd_dnode_cancel(struct qd_object *obj, struct qd_ctx *ctx,
			   u64 user_data)
{
	struct qd_dnode *dn = to_dnode(obj);
	struct qd_object *src;
	unsigned long flags;
	struct qd_op *op;

	spin_lock_irqsave_nested(&dn->lock, flags, dn->src.level);
	op = qd_op_find(&dn->pops, ctx, user_data);
	if (op) {
		list_del_init(&op->node);
		dn->nr_pops--;
		qd_op_unwait(op);
	}
	spin_unlock_irqrestore(&dn->lock, flags);

	if (op) {
		qd_op_complete(op, -ECANCELED);
		return 0;
	}
	/* A filter's push waits on its source (qd_dnode_push()). */
	src = dn->links[0].src;
	if (dn->kind == QD_DERIVE_FILTER && src->ops->cancel)
		return src->ops->cancel(src, ctx, user_data);
	return -ENOENT;
}

/*
 * Process context, ctx->lock held. The queue stops taking; its pops end
 * with -ECANCELED and the queues derived from it lose their source; what
 * it holds goes back to its live sources (derive_unlink), the rest (from
 * sources that are gone) is freed.
 */
static void qd_dnode_close(struct qd_object *obj)
{
	struct qd_dnode *dn = to_dnode(obj);
	struct qd_object *src;
	unsigned long flags;
	LIST_HEAD(cancel);
	LIST_HEAD(elems);
	u8 i;

	spin_lock_irqsave_nested(&dn->lock, flags, dn->src.level);
	dn->closed = true;
	qd_dnode_take_pops(dn, &cancel);
	qd_derive_src_gone(&dn->src, &cancel);
	spin_unlock_irqrestore(&dn->lock, flags);

	for (i = 0; i < dn->nsrc; i++) {
		src = dn->links[i].src;
		src->ops->derive_unlink(src, &dn->links[i]);
	}

	spin_lock_irqsave_nested(&dn->lock, flags, dn->src.level);
	for (i = 0; i < 2; i++)
		qd_dnode_drain(dn, i, &elems);
	spin_unlock_irqrestore(&dn->lock, flags);

	qd_derive_cancel_list(&cancel);
	qd_derive_free_list(&elems);
}

/* Any context: the last reference may be an op's. */
static void qd_dnode_release(struct qd_object *obj)
{
	struct qd_dnode *dn = to_dnode(obj);
	u8 i;

	for (i = 0; i < dn->nsrc; i++)
		qd_object_put(dn->links[i].src);
	atomic_long_dec(&qd_stats.derived);
	kfree_rcu(dn, obj.rcu);
}

static void qd_dnode_show(struct qd_object *obj, struct seq_file *m)
{
	struct qd_dnode *dn = to_dnode(obj);
	u32 held, pops, live;
	u64 taken, popped;
	unsigned long flags;

	spin_lock_irqsave_nested(&dn->lock, flags, dn->src.level);
	held = qd_dnode_held(dn);
	pops = dn->nr_pops;
	taken = dn->taken;
	popped = dn->popped;
	live = dn->live;
	spin_unlock_irqrestore(&dn->lock, flags);
	seq_printf(m, "%d %s %u 0 %u 0 %llu %llu %s level=%u sources=%d",
		   obj->qd, qd_derive_names[dn->kind], held, pops, taken,
		   popped, dn->kind == QD_DERIVE_FILTER ? "push,pop" : "pop",
		   dn->src.level, dn->links[0].src->qd);
	if (dn->nsrc > 1)
		seq_printf(m, ",%d", dn->links[1].src->qd);
	seq_printf(m, " live=%u\n", live);
}

static struct qd_dsrc *qd_dnode_dsrc(struct qd_object *obj)
{
	return &to_dnode(obj)->src;
}

/* A queue derived from this one. -EPIPE: this one has no source left. */
static int qd_dnode_derive_link(struct qd_object *obj, struct qd_dlink *l)
{
	struct qd_dnode *dn = to_dnode(obj);
	unsigned long flags;
	int ret = 0;

	spin_lock_irqsave_nested(&dn->lock, flags, dn->src.level);
	if (dn->closed)
		ret = -EBADF;
	else if (dn->src.gone)
		ret = -EPIPE;
	else
		list_add_tail(&l->node, &dn->src.takers);
	spin_unlock_irqrestore(&dn->lock, flags);
	return ret;
}

/*
 * A queue derived from this one closes: what it gives back is handed to
 * this one's pops or kept, not offered to its takers again.
 */
static void qd_dnode_derive_unlink(struct qd_object *obj, struct qd_dlink *l)
{
	struct qd_dnode *dn = to_dnode(obj);
	struct qd_kelem *elem, *tmp;
	unsigned long flags;
	LIST_HEAD(elems);
	LIST_HEAD(done);

	spin_lock_irqsave_nested(&dn->lock, flags, dn->src.level);
	qd_derive_unlink(l, &elems);
	list_for_each_entry_safe(elem, tmp, &elems, node) {
		list_del_init(&elem->node);
		qd_dnode_hand(dn, qd_elem_din(elem, dn->src.level), elem,
			      &done);
	}
	spin_unlock_irqrestore(&dn->lock, flags);

	qd_derive_finish(&done);
}

static const struct qd_object_ops qd_dnode_ops = {
	.type = "derived",
	.push = qd_dnode_push,
	.pop = qd_dnode_pop,
	.cancel = qd_dnode_cancel,
	.close = qd_dnode_close,
	.release = qd_dnode_release,
	.show = qd_dnode_show,
	.dsrc = qd_dnode_dsrc,
	.derive_link = qd_dnode_derive_link,
	.derive_unlink = qd_dnode_derive_unlink,
};

/* Check a QD_IOC_DERIVE request: 0 or -EINVAL. */
static int qd_derive_check(const struct qd_derive *d)
{
	const void *rest;
	size_t n;

	if (d->flags || d->resv)
		return -EINVAL;
	switch (d->kind) {
	case QD_DERIVE_FILTER:
		if (d->src2 || qd_pred_check(&d->pred))
			return -EINVAL;
		return 0;
	case QD_DERIVE_SORT:
		if (d->src2 || qd_key_check(&d->key))
			return -EINVAL;
		rest = (const u8 *)d->args + sizeof(d->key);
		n = sizeof(d->args) - sizeof(d->key);
		return memchr_inv(rest, 0, n) ? -EINVAL : 0;
	case QD_DERIVE_MERGE:
		if (d->src == d->src2 || memchr_inv(d->args, 0, sizeof(d->args)))
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

/*
 * The sources, referenced, and the new queue's level. -EBADF: no such qd;
 * -EOPNOTSUPP: not a queue that can feed derived queues; -EINVAL: one
 * source twice (a merge), or too many levels.
 */
static int qd_derive_sources(struct qd_ctx *ctx, const struct qd_derive *d,
			     struct qd_dnode *dn)
{
	struct qd_object *src;
	struct qd_dsrc *s;
	u8 level = 0;
	int i;

	for (i = 0; i < dn->nsrc; i++) {
		src = qd_object_get(ctx, i ? d->src2 : d->src);
		if (!src)
			return -EBADF;
		dn->links[i].src = src;
		dn->links[i].dn = dn;
		dn->links[i].input = i;
		INIT_LIST_HEAD(&dn->links[i].node);
		s = src->ops->dsrc ? src->ops->dsrc(src) : NULL;
		if (!s)
			return -EOPNOTSUPP;
		level = max(level, s->level);
	}
	if (dn->nsrc > 1 && dn->links[0].src == dn->links[1].src)
		return -EINVAL;
	if (level >= QD_DERIVE_MAX_LEVEL)
		return -EINVAL;
	qd_dsrc_init(&dn->src, level + 1);
	return 0;
}

static struct qd_dnode *qd_dnode_alloc(const struct qd_derive *d)
{
	struct qd_dnode *dn;

	dn = kzalloc(sizeof(*dn), GFP_KERNEL_ACCOUNT);
	if (!dn)
		return NULL;
	spin_lock_init(&dn->lock);
	INIT_LIST_HEAD(&dn->elems[0]);
	INIT_LIST_HEAD(&dn->elems[1]);
	INIT_LIST_HEAD(&dn->pops);
	dn->tree = RB_ROOT_CACHED;
	dn->kind = d->kind;
	dn->nsrc = d->kind == QD_DERIVE_MERGE ? 2 : 1;
	if (d->kind == QD_DERIVE_FILTER)
		dn->pred = d->pred;
	else if (d->kind == QD_DERIVE_SORT)
		dn->key = d->key;
	return dn;
}

/*
 * Undo what qd_derive_sources() and linking did: what arrived through the
 * first links meanwhile goes back to those sources.
 */
static void qd_dnode_unmake(struct qd_dnode *dn, int linked)
{
	struct qd_object *src;
	int i;

	for (i = 0; i < linked; i++) {
		src = dn->links[i].src;
		src->ops->derive_unlink(src, &dn->links[i]);
	}
	for (i = 0; i < dn->nsrc; i++)
		if (dn->links[i].src)
			qd_object_put(dn->links[i].src);
	kfree(dn);
}

/*
 * QD_IOC_DERIVE: make a filter, merge or sort. Process context. The new
 * qd is reserved and reported first (the copy may fault), then the queue
 * is linked to its sources and installed under ctx->lock, which also
 * orders it with closes: nothing can arrive before the links exist.
 */
int qd_derive_create(struct qd_ctx *ctx, struct qd_derive __user *arg)
{
	struct qd_derive d;
	struct qd_dnode *dn;
	struct qd_object *src;
	int linked = 0;
	u32 qd;
	int ret;

	if (copy_from_user(&d, arg, sizeof(d)))
		return -EFAULT;
	ret = qd_derive_check(&d);
	if (ret)
		return ret;
	dn = qd_dnode_alloc(&d);
	if (!dn)
		return -ENOMEM;
	ret = qd_derive_sources(ctx, &d, dn);
	if (ret)
		goto err;

	ret = qd_object_claim(ctx, &qd);
	if (ret)
		goto err;
	d.qd = qd;
	if (copy_to_user(arg, &d, sizeof(d))) {
		qd_object_unclaim(ctx, qd);
		ret = -EFAULT;
		goto err;
	}
	mutex_lock(&ctx->lock);
	dn->live = dn->nsrc;
	for (; linked < dn->nsrc; linked++) {
		src = dn->links[linked].src;
		ret = src->ops->derive_link(src, &dn->links[linked]);
		if (ret)
			break;
	}
	if (ret) {
		qd_object_unreserve(ctx, qd);
		qd_dnode_unmake(dn, linked);
		mutex_unlock(&ctx->lock);
		return ret;
	}
	qd_object_install(ctx, qd, &dn->obj, &qd_dnode_ops);
	atomic_long_inc(&qd_stats.derived);
	mutex_unlock(&ctx->lock);
	return 0;

err:
	qd_dnode_unmake(dn, 0);
	return ret;
}
