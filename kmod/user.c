// SPDX-License-Identifier: GPL-2.0
/*
 * Per-user bounds. Without a memory cgroup limit (the default for a login
 * session) nothing else stops an unprivileged user from filling kernel
 * memory with contexts or queued elements, so both are bounded per real uid,
 * like RLIMIT_MEMLOCK, and per context. Everything here is also charged to
 * the memory cgroup of the task that caused it.
 *
 * Bounds are module parameters, root-writable in /sys/module/qd/parameters:
 *  max_queued         elements one context may hold (sampled at open)
 *  max_user_queued    elements all contexts of one uid may hold
 *  max_user_contexts  contexts one uid may have open (or not yet freed)
 *  max_ring_bytes     ring memory of one context: SQ/CQ rings (one pair
 *                     per thread with libqd) and mapped queues' rings
 *  max_user_ring_bytes  the same over all contexts of one uid
 */
#include <linux/hashtable.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "ctx.h"
#include "user.h"

unsigned int qd_max_queued = 65536;
module_param_named(max_queued, qd_max_queued, uint, 0644);
MODULE_PARM_DESC(max_queued, "elements one context may hold (default 65536)");

static unsigned long qd_max_user_queued = 262144;
module_param_named(max_user_queued, qd_max_user_queued, ulong, 0644);
MODULE_PARM_DESC(max_user_queued, "elements all contexts of a user may hold (default 262144)");

static unsigned int qd_max_user_contexts = 128;
module_param_named(max_user_contexts, qd_max_user_contexts, uint, 0644);
MODULE_PARM_DESC(max_user_contexts, "contexts a user may have (default 128)");

static unsigned long qd_max_ring_bytes = 64UL << 20;
module_param_named(max_ring_bytes, qd_max_ring_bytes, ulong, 0644);
MODULE_PARM_DESC(max_ring_bytes, "ring memory of one context (default 64 MiB)");

static unsigned long qd_max_user_ring_bytes = 256UL << 20;
module_param_named(max_user_ring_bytes, qd_max_user_ring_bytes, ulong, 0644);
MODULE_PARM_DESC(max_user_ring_bytes, "ring memory of a user's contexts (default 256 MiB)");

/* Process context only: taken by context creation and freeing. */
static DEFINE_SPINLOCK(qd_users_lock);
static DEFINE_HASHTABLE(qd_users, 6);

static struct qd_user *qd_user_find(kuid_t uid)
{
	struct qd_user *u;

	hash_for_each_possible(qd_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid) && refcount_inc_not_zero(&u->refs))
			return u;
	return NULL;
}

struct qd_user *qd_user_get(kuid_t uid)
{
	struct qd_user *u, *new;

	spin_lock(&qd_users_lock);
	u = qd_user_find(uid);
	spin_unlock(&qd_users_lock);
	if (u)
		return u;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return NULL;
	new->uid = uid;
	refcount_set(&new->refs, 1);

	spin_lock(&qd_users_lock);
	u = qd_user_find(uid);
	if (!u) {
		hash_add(qd_users, &new->node, __kuid_val(uid));
		u = new;
		new = NULL;
	}
	spin_unlock(&qd_users_lock);
	kfree(new);
	return u;
}

/* One more reference on a user the caller holds one on. Any context. */
void qd_user_hold(struct qd_user *u)
{
	refcount_inc(&u->refs);
}

/* Process context: takes qd_users_lock. */
void qd_user_put(struct qd_user *u)
{
	bool last;

	spin_lock(&qd_users_lock);
	last = refcount_dec_and_test(&u->refs);
	if (last)
		hash_del(&u->node);
	spin_unlock(&qd_users_lock);
	if (!last)
		return;
	WARN_ON_ONCE(atomic_read(&u->contexts) ||
		     atomic_long_read(&u->queued));
	kfree(u);
}

/* Returns 0, or -EMFILE when the user has max_user_contexts already. */
int qd_user_add_context(struct qd_user *u)
{
	if (atomic_inc_return(&u->contexts) > READ_ONCE(qd_max_user_contexts)) {
		atomic_dec(&u->contexts);
		return -EMFILE;
	}
	return 0;
}

void qd_user_del_context(struct qd_user *u)
{
	atomic_dec(&u->contexts);
}

/* Any context. */
bool qd_user_charge_elem(struct qd_user *u)
{
	if (atomic_long_inc_return(&u->queued) >
	    (long)READ_ONCE(qd_max_user_queued)) {
		atomic_long_dec(&u->queued);
		return false;
	}
	return true;
}

/* Any context. */
void qd_user_uncharge_elem(struct qd_user *u)
{
	atomic_long_dec(&u->queued);
}

/* Elements held by all users: for /proc/qd. */
long qd_user_queued_total(void)
{
	struct qd_user *u;
	long sum = 0;
	int bkt;

	spin_lock(&qd_users_lock);
	hash_for_each(qd_users, bkt, u, node)
		sum += atomic_long_read(&u->queued);
	spin_unlock(&qd_users_lock);
	return sum;
}

/*
 * Charge bytes of ring memory to ctx and its user: -ENOBUFS past either
 * bound. Process context (ring and queue creation); uncharging is any
 * context (a mapped queue's ring is freed with its last mapping or
 * reference, always before its context).
 */
int qd_ring_bytes_charge(struct qd_ctx *ctx, size_t bytes)
{
	struct qd_user *u = ctx->quser;

	if (atomic_long_add_return(bytes, &ctx->ring_bytes) >
	    (long)READ_ONCE(qd_max_ring_bytes))
		goto err_ctx;
	if (atomic_long_add_return(bytes, &u->ring_bytes) >
	    (long)READ_ONCE(qd_max_user_ring_bytes))
		goto err_user;
	return 0;
err_user:
	atomic_long_sub(bytes, &u->ring_bytes);
err_ctx:
	atomic_long_sub(bytes, &ctx->ring_bytes);
	return -ENOBUFS;
}

void qd_ring_bytes_uncharge(struct qd_ctx *ctx, size_t bytes)
{
	atomic_long_sub(bytes, &ctx->quser->ring_bytes);
	atomic_long_sub(bytes, &ctx->ring_bytes);
}

/*
 * The two halves of qd_ring_bytes_uncharge(), for a ring that outlives its
 * queue in another process's mapping (a shared mapped queue): the context's
 * share goes with the queue, the user's with the memory. Any context.
 */
void qd_ring_bytes_uncharge_ctx(struct qd_ctx *ctx, size_t bytes)
{
	atomic_long_sub(bytes, &ctx->ring_bytes);
}

void qd_ring_bytes_uncharge_user(struct qd_user *u, size_t bytes)
{
	atomic_long_sub(bytes, &u->ring_bytes);
}
