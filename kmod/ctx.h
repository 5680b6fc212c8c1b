/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_CTX_H
#define _QD_CTX_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "rings.h"

struct cred;
struct dentry;
struct mm_struct;
struct net;
struct user_struct;

/* One open of /dev/qd. */
struct qd_ctx {
	refcount_t refs;		/* the file, plus one per live op */
	u32 id;
	pid_t pid;
	char comm[TASK_COMM_LEN];
	struct mm_struct *mm;		/* grabbed: only its owner may use us */
	const struct cred *cred;
	struct net *net;
	struct user_struct *user;	/* RLIMIT_MEMLOCK accounting */

	/*
	 * Serialises the SQ consumer, setup, registration and changes to the
	 * qd and region tables.
	 */
	struct mutex lock;
	bool rings_ready;
	struct qd_sq sq;
	struct qd_cq cq;
	u32 max_inflight;
	atomic_t nr_ops;		/* ops allocated and not yet freed */
	atomic64_t enters;

	struct xarray qds;		/* qd -> struct qd_object */
	struct xarray regions;		/* id -> struct qd_region */
	unsigned long pinned_pages;

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

int qd_enter(struct qd_ctx *ctx, struct qd_enter __user *arg);

int qd_ctx_init(void);
void qd_ctx_exit(void);

#endif /* _QD_CTX_H */
