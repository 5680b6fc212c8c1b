/* SPDX-License-Identifier: MIT */
/*
 * libqd's private state: the process's one context.
 *
 * Locks, always taken in this order:
 *   init_lock   setting the context up (setup.c)
 *   cq_lock     the CQ head, the token slots, kernel_waiters (to change it)
 *   sq_lock     the SQ tail, kernel_waiters (to change or read it)
 *   alloc lock  the chunk table and the allocator (alloc.c)
 * No lock is held across a system call that sleeps.
 *
 * cq_lock, sq_lock and the alloc lock are adaptive (they spin a little
 * before sleeping): on the hot paths their critical sections are a few
 * loads and stores, and two threads on different CPUs take them for every
 * element. A plain mutex then sleeps and wakes in the kernel on most
 * acquisitions (a futex wait and a futex wake: more system calls than
 * libqd's own). The rare long holds (a full SQ's enter, registering a
 * region) just spin a little longer before they sleep.
 */
#ifndef LIBQD_INT_H
#define LIBQD_INT_H

#include <pthread.h>
#include <stdint.h>

#include <linux/qd.h>

#include "qd.h"
#include "ring.h"
#include "token.h"

/* libqd's QD_SGA_MAX must be the kernel's. */
_Static_assert(sizeof(((struct qd_sga *)0)->segs) / sizeof(struct qd_sgaseg) ==
	       sizeof(struct qd_elem) / sizeof(struct qd_seg),
	       "QD_SGA_MAX differs between qd.h and linux/qd.h");

#define QD_DEFAULT_SQ_ENTRIES	256
#define QD_DEFAULT_CQ_ENTRIES	1024

struct qd_ctx {
	int			ready;		/* atomic; set up */
	int			fd;
	void			*sq_map;
	void			*cq_map;
	size_t			sq_bytes;
	size_t			cq_bytes;
	uint32_t		features;
	uint32_t		max_inflight;

	pthread_mutex_t		sq_lock;
	struct qd_sqring	sq;
	/* threads asleep (or about to be) in a QD_IOC_ENTER wait */
	unsigned int		kernel_waiters;

	pthread_mutex_t		cq_lock;
	/*
	 * The followers' condition (a futex, not a pthread condvar: a
	 * condvar hands its mutex back marked contended, so the next unlock
	 * is a futex call even when nobody waits). cq_seq is bumped by
	 * every broadcast; cq_sleepers is set by a thread about to sleep on
	 * it and cleared by the broadcast that wakes the sleepers, so a
	 * broadcast makes a system call only when somebody sleeps.
	 */
	uint32_t		cq_seq;		/* atomic */
	uint32_t		cq_sleepers;	/* atomic flag */
	struct qd_cqring	cq;
	struct qd_slots		slots;
};

extern struct qd_ctx qd__ctx;

static inline int qd_ready(void)
{
	return __atomic_load_n(&qd__ctx.ready, __ATOMIC_ACQUIRE);
}

/* qd_init() unless already done: the fast path is one load. */
static inline int qd_get(void)
{
	return qd_ready() ? 0 : qd_init();
}

/* submit.c: hand queued SQEs to the kernel, no wait. SQEs consumed. */
int qd__flush(void);

/* wait.c */
void qd__wait_init(void);
/* Empty the CQ into the token slots (or let the leader do it). */
int qd__reap(void);

/* alloc.c */
int qd__alloc_translate(const struct qd_sga *sga, struct qd_seg *segs);
int qd__alloc_resolve(const struct qd_seg *segs, unsigned int n,
		      struct qd_sga *sga);
void qd__alloc_lock(void);
void qd__alloc_unlock(void);
void qd__alloc_forget(void);

#endif
