/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_DERIVE_H
#define _QD_DERIVE_H

#include <linux/list.h>
#include <linux/types.h>

struct qd_ctx;
struct qd_derive;
struct qd_dnode;
struct qd_kelem;
struct qd_object;

/*
 * Derived queues (derive.c): filter, merge and sort, fed by their sources
 * when an element arrives there.
 *
 * A source (a memory queue, a derived queue; sockets later) embeds a
 * struct qd_dsrc and calls, with its own lock held (irqs off):
 *   qd_derive_route()     when an element arrives, before it queues it:
 *                         true if a derived queue took it;
 *   qd_derive_src_gone()  when it closes: its derived queues lose it;
 *   qd_derive_unlink()    from its derive_unlink object op: a derived
 *                         queue closes and gives back what it holds.
 * Lock order: a source's lock, then its derived queues' locks, by level
 * (lockdep subclass = level: a derived queue's level is above its
 * sources'); never a source's lock under a derived queue's.
 */
struct qd_dsrc {
	struct list_head takers;	/* struct qd_dlink, creation order */
	u8 level;			/* 0: a base queue */
	bool gone;			/* closed or ended: no more takers */
};

/* One edge: a source feeding a derived queue (its input 0 or 1). */
struct qd_dlink {
	struct list_head node;		/* in src's takers; empty once gone */
	struct qd_dnode *dn;
	struct qd_object *src;		/* referenced by the derived queue */
	u8 input;
};

static inline void qd_dsrc_init(struct qd_dsrc *s, u8 level)
{
	INIT_LIST_HEAD(&s->takers);
	s->level = level;
	s->gone = false;
}

static inline bool qd_dsrc_busy(const struct qd_dsrc *s)
{
	return !list_empty(&s->takers);
}

bool qd_derive_route(struct qd_dsrc *src, struct qd_kelem *elem,
		     struct list_head *done);
void qd_derive_src_gone(struct qd_dsrc *src, struct list_head *cancel);
void qd_derive_unlink(struct qd_dlink *l, struct list_head *elems);
void qd_derive_finish(struct list_head *done);
int qd_derive_create(struct qd_ctx *ctx, struct qd_derive __user *arg);

#endif /* _QD_DERIVE_H */
