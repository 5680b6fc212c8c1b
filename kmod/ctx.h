/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_CTX_H
#define _QD_CTX_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "pool.h"
#include "rings.h"

struct cred;
struct dentry;
struct mm_struct;
struct net;
struct qd_sqpoll;
struct qd_user;
struct user_struct;

/*
 * One open of /dev/qd.
 *
 * Locks (all process context; none is held across a wait for completions):
 *  ring->sq_lock  (rings.h) one ring's SQ consumer (QD_IOC_ENTER's
 *           submission). Held while SQEs are copied and prepared, which may
 *           fault on user memory; taken killable.
 *  lock     setup, new rings, changes to the qd and region tables. Never
 *           held across a user fault; taken killable from ioctls.
 *  ring->cq.lock  (rings.h) a CQ's tail and overflow list; any context.
 * Lookups of qds and regions are lockless (RCU plus a reference), so
 * submission does not take ctx->lock.
 */
struct qd_ctx {
	refcount_t refs;		/* the file, plus one per live op */
	u32 id;
	pid_t pid;
	char comm[TASK_COMM_LEN];
	struct mm_struct *mm;		/* grabbed: only its owner may use us */
	const struct cred *cred;
	struct net *net;
	struct user_struct *user;	/* RLIMIT_MEMLOCK accounting */
	struct qd_user *quser;		/* per-user bounds (user.c) */
	struct list_head node;		/* in the list of all contexts */

	struct mutex lock;		/* see above */
	/*
	 * rings[0..nr_rings-1] are set and never change until the context is
	 * freed; nr_rings is published with a release once rings[n] is set.
	 */
	u32 nr_rings;
	struct qd_ring *rings[QD_MAX_RINGS];
	/*
	 * QD_SETUP_SQPOLL's poller (sqpoll.c), or NULL: set with ring 0,
	 * before nr_rings is published, and stopped by the release.
	 */
	struct qd_sqpoll *sqp;
	atomic_t cq_seq;		/* completions posted or parked, any ring */
	atomic_long_t ring_bytes;	/* rings and mapped queues (user.c) */
	wait_queue_head_t wait;		/* poll and QD_ENTER_CTX_SEQ sleepers */
	u32 max_inflight;
	u32 max_queued;
	atomic_t nr_ops;		/* ops allocated and not yet freed */
	atomic_t nr_wait_push;		/* pushes pending on full queues */
	atomic_t nr_wait_pop;		/* pops pending on empty queues */
	atomic_t nr_queued;		/* elements held (op.c) */
	atomic_t nr_queues;
	atomic_t nr_regions;
	atomic_t nr_sockets;		/* socket qds open (sock.c) */
	atomic_t nr_files;		/* storage qds open (file.c) */
	atomic64_t enters;

	struct xarray qds;		/* qd -> struct qd_object */
	struct xarray regions;		/* id -> struct qd_region */
	struct qd_pool pools[QD_POOL_GROUPS];	/* provided buffers (pool.c) */
	atomic_long_t pinned_pages;

	struct dentry *debugfs;
	struct work_struct free_work;
};

struct qd_ctx *qd_ctx_create(void);
void qd_ctx_release(struct qd_ctx *ctx);
void qd_ctx_put(struct qd_ctx *ctx);

static inline void qd_ctx_get(struct qd_ctx *ctx)
{
	refcount_inc(&ctx->refs);
}

static inline bool qd_ctx_owner(struct qd_ctx *ctx)
{
	return current->mm == ctx->mm;
}

/* Rings set up so far; 0 before QD_IOC_SETUP. */
static inline u32 qd_ctx_nr_rings(struct qd_ctx *ctx)
{
	/* Pairs with the release in qd_ring_publish(): rings[n] is set. */
	return smp_load_acquire(&ctx->nr_rings);
}

/* Sums over contexts, for /proc/qd. */
struct qd_ctx_sums {
	long contexts, queues, regions, pinned_pages, inflight, queued, sockets;
	long files;
};

void qd_ctx_sum_uid(kuid_t uid, struct qd_ctx_sums *s);

int qd_enter(struct qd_ctx *ctx, struct qd_enter __user *arg);

void qd_ctx_defer(struct work_struct *work);

int qd_ctx_init(void);
void qd_ctx_exit(void);

#endif /* _QD_CTX_H */
