/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_USER_H
#define _QD_USER_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/refcount.h>
#include <linux/uidgid.h>

/*
 * What one user (real uid) holds over all its contexts: the per-user bounds
 * are checked against these. The counters are atomics, touched from any
 * context; lookup and release take a spinlock, process context only.
 */
struct qd_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t refs;
	atomic_t contexts;
	atomic_long_t queued;		/* elements held by its contexts */
	atomic_long_t ring_bytes;	/* ring memory of its contexts */
};

/* Module parameters (see user.c). */
extern unsigned int qd_max_queued;

struct qd_user *qd_user_get(kuid_t uid);
void qd_user_put(struct qd_user *u);
int qd_user_add_context(struct qd_user *u);
void qd_user_del_context(struct qd_user *u);
bool qd_user_charge_elem(struct qd_user *u);
void qd_user_uncharge_elem(struct qd_user *u);
long qd_user_queued_total(void);

struct qd_ctx;
int qd_ring_bytes_charge(struct qd_ctx *ctx, size_t bytes);
void qd_ring_bytes_uncharge(struct qd_ctx *ctx, size_t bytes);
void qd_ring_bytes_uncharge_ctx(struct qd_ctx *ctx, size_t bytes);
void qd_ring_bytes_uncharge_user(struct qd_user *u, size_t bytes);
void qd_user_hold(struct qd_user *u);

#endif /* _QD_USER_H */
