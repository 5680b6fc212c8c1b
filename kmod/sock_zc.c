// SPDX-License-Identifier: GPL-2.0
/*
 * Zero-copy send: a socket push whose pages the network stack references
 * instead of copying, as MSG_ZEROCOPY and io_uring's send_zc do.
 *
 * A push of at least zc_min_bytes (or with QD_PUSH_ZC; not to a peer on
 * a loopback route unless zc_local is set) gets a struct
 * qd_zc, whose ubuf_info goes down with every sendmsg of the push
 * (msg_ubuf, MSG_ZEROCOPY: TCP and UDP take it without SOCK_ZEROCOPY).
 * Each skb that references the push's pages holds a reference on it, and
 * the push holds one more (the "master") until it is done sending: sent
 * all, failed, or cancelled by close (qd_zc_end(), from qd_sock_finish()).
 * The push completes, with the result qd_zc_end() recorded, when the last
 * reference drops: from the last skb's release (TCP: usually the ACK), or
 * from qd_zc_end() itself when the stack already let go. Until then the op
 * holds its element, whose region references keep the pages pinned and
 * the region registered, and the op holds its context, which holds the
 * module. The op gives up its socket reference at qd_zc_end(), so a closed
 * socket is released (and its queued skbs with it) while pushes wait.
 *
 * The callback (qd_zc_callback) runs where the stack frees skbs: softirq
 * (ACK processing, TX completion), process context (sendmsg's own
 * reference, socket release, a receiver copying them on loopback), with
 * the socket's lock or bh lock sometimes held; possibly with hardirqs off.
 * Completing there is allowed: qd_op_complete() and the frees it does are
 * any-context and take only irq-safe locks, none of which we hold across a
 * call into the stack.
 *
 * Unload: every qd_zc pins, through its op, a context and so the module;
 * the callback drops what may be the last context reference and then still
 * returns through this file, so it runs inside an RCU read-side section
 * and module exit waits for a grace period (qd_zc_exit()).
 */
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/rcupdate.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <net/sock.h>

#include "object.h"
#include "op.h"
#include "sock_zc.h"
#include "stats.h"

/*
 * Measured crossover (Documentation/design.md, "Send"): below it a copy
 * costs less than pinning the pages into skbs and waiting for the ACK.
 */
static unsigned int qd_zc_min_bytes = 65536;
module_param_named(zc_min_bytes, qd_zc_min_bytes, uint, 0644);
MODULE_PARM_DESC(zc_min_bytes,
		 "socket pushes of at least this many bytes are sent zero-copy (0: all; 4294967295: none but QD_PUSH_ZC)");

/*
 * A route through the loopback device delivers by copying the pages
 * (skb_orphan_frags_rx()): zero-copy there only delays the completion.
 */
static bool qd_zc_local;
module_param_named(zc_local, qd_zc_local, bool, 0644);
MODULE_PARM_DESC(zc_local,
		 "also send zero-copy to local peers (loopback routes), where the receiver copies anyway");

struct qd_zc {
	struct ubuf_info ubuf;		/* refcnt: skbs, plus the master */
	struct qd_op *op;
	s64 res;			/* what the push completes with */
	bool used;			/* an skb carried the pages */
	bool copied;			/* the stack copied them after all */
};

/* Whether sk's cached route goes through the loopback device. */
static bool qd_zc_route_local(struct sock *sk)
{
	struct dst_entry *dst;
	bool local;

	rcu_read_lock();
	dst = __sk_dst_get(sk);
	local = dst && dst->dev && (dst->dev->flags & IFF_LOOPBACK);
	rcu_read_unlock();
	return local;
}

/*
 * Whether push op (a PUSH or PUSHTO on a socket) should go zero-copy.
 * Process context (submission).
 */
bool qd_zc_wanted(const struct qd_op *op, struct sock *sk)
{
	if (op->op_flags & QD_PUSH_ZC)
		return true;
	if (op->op_flags & QD_PUSH_COPY)
		return false;
	if (op->elem->bytes < READ_ONCE(qd_zc_min_bytes))
		return false;
	return READ_ONCE(qd_zc_local) || !qd_zc_route_local(sk);
}

/* The last reference is gone: the pages are free, complete the push. */
static void qd_zc_release(struct qd_zc *zc)
{
	struct qd_op *op = zc->op;
	s64 res = zc->res;

	if (zc->copied || (!zc->used && res > 0))
		qd_stat_inc(sock_zc_copied);
	op->sock.zc = NULL;
	kfree(zc);
	atomic_long_dec(&qd_stats.sock_zc_inflight);
	qd_op_complete(op, res);
}

/*
 * ubuf_info callback: an skb (or sendmsg, skb NULL) drops its reference.
 * Any context; see the top of the file.
 */
static void qd_zc_callback(struct sk_buff *skb, struct ubuf_info *ubuf,
			   bool success)
{
	struct qd_zc *zc = container_of(ubuf, struct qd_zc, ubuf);

	rcu_read_lock();	/* module text: see qd_zc_exit() */
	if (!success)
		WRITE_ONCE(zc->copied, true);
	else if (skb && !READ_ONCE(zc->used))
		WRITE_ONCE(zc->used, true);
	/* Acquire on the last drop: every skb's flag store is seen. */
	if (refcount_dec_and_test(&ubuf->refcnt))
		qd_zc_release(zc);
	rcu_read_unlock();
}

/*
 * Make push op zero-copy, unless memory is short (it then goes by copy).
 * Process context (submission: charged to the submitter).
 */
void qd_zc_start(struct qd_op *op)
{
	struct qd_zc *zc;

	zc = kmalloc(sizeof(*zc), GFP_KERNEL_ACCOUNT);
	if (!zc)
		return;
	zc->ubuf.callback = qd_zc_callback;
	zc->ubuf.flags = SKBFL_ZEROCOPY_FRAG | SKBFL_DONT_ORPHAN;
	refcount_set(&zc->ubuf.refcnt, 1);
	zc->op = op;
	zc->res = 0;
	zc->used = false;
	zc->copied = false;
	op->sock.zc = zc;
	atomic_long_inc(&qd_stats.sock_zc_inflight);
}

/* The push was refused before anything was sent: no longer zero-copy. */
void qd_zc_cancel(struct qd_op *op)
{
	if (!op->sock.zc)
		return;
	kfree(op->sock.zc);
	op->sock.zc = NULL;
	atomic_long_dec(&qd_stats.sock_zc_inflight);
}

/* One sendmsg of a zero-copy push: the stack takes references on zc. */
void qd_zc_msg(struct qd_op *op, struct msghdr *msg)
{
	msg->msg_flags |= MSG_ZEROCOPY;
	msg->msg_ubuf = &op->sock.zc->ubuf;
}

/*
 * The push is done sending (res: its bytes or -errno): drop the master
 * reference and the socket's. It completes now if no skb holds its pages,
 * else when the last one goes. Any context (qd_sock_finish()).
 */
void qd_zc_end(struct qd_op *op, s64 res)
{
	struct qd_zc *zc = op->sock.zc;

	zc->res = res;
	if (op->obj) {
		qd_object_put(op->obj);
		op->obj = NULL;
	}
	qd_zc_callback(NULL, &zc->ubuf, true);
}

/*
 * Module exit, after the last context is freed: a callback that dropped
 * the last reference may still be returning through this file.
 */
void qd_zc_exit(void)
{
	WARN_ON_ONCE(atomic_long_read(&qd_stats.sock_zc_inflight));
	synchronize_rcu();
}
