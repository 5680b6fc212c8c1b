// SPDX-License-Identifier: GPL-2.0
/*
 * Socket qds: a kernel TCP or UDP socket behind a queue descriptor. This
 * file makes, closes and shows them, hooks the socket's callbacks and
 * connects; the other ioctls are in sock_ctl.c, receive and accept in
 * sock_rx.c, send in sock_tx.c, the opcodes in sockop.c.
 *
 * Sockets are made with __sock_create(kern = 0) in the context's network
 * namespace by the task that asks (ioctls and submissions run in the
 * context's owner, with its current credentials), so socket(2)'s
 * permission and LSM checks apply, and bind(2)'s capability check
 * (CAP_NET_BIND_SERVICE for a privileged port) sees the submitter's
 * credentials of the moment: a process that dropped a capability after
 * qd_init() does not have it for qd either.
 *
 * Contexts: ioctls, submission, close and show run in process context;
 * the socket callbacks in softirq (TCP: with the socket's bh lock held,
 * or in the lock owner's process context when it processes its backlog);
 * the work item in process context (a kworker).
 */
#include <linux/module.h>
#include <linux/net.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <net/inet_sock.h>
#include <net/ipv6.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "ctx.h"
#include "object.h"
#include "op.h"
#include "sock.h"
#include "sock_zc.h"
#include "stats.h"

static unsigned int qd_max_sockets = 16384;
module_param_named(max_sockets, qd_max_sockets, uint, 0644);
MODULE_PARM_DESC(max_sockets, "socket qds one context may have open (EMFILE past it)");

static struct workqueue_struct *qd_sock_wq;
/*
 * qd_sock objects: a cache of their own (a kmalloc bucket rounds them up
 * to 512 bytes; a server holds one per connection), charged to the
 * allocating task's memory cgroup.
 */
static struct kmem_cache *qd_sock_cache;

static const struct qd_object_ops qd_sock_ops;

/* The qd_sock of a socket callback, or NULL once close detached it. */
static struct qd_sock *qd_sock_of(struct sock *sk)
{
	return rcu_dereference_sk_user_data(sk);
}

/*
 * Run the work item (accept, receive or send in process context). It holds
 * an object reference while queued. Any context.
 */
void qd_sock_kick(struct qd_sock *s)
{
	if (!refcount_inc_not_zero(&s->obj.refs))
		return;
	if (!queue_work(qd_sock_wq, &s->work))
		qd_object_put(&s->obj);
}

static void qd_sock_work(struct work_struct *work)
{
	struct qd_sock *s = container_of(work, struct qd_sock, work);

	if (READ_ONCE(s->nr_accepts))
		qd_sock_accept_run(s);
	if (READ_ONCE(s->nr_pops))
		qd_sock_rx_process(s);
	if (READ_ONCE(s->nr_pushes))
		qd_sock_tx(s);
	qd_object_put(&s->obj);
}

static u32 *qd_sock_count(struct qd_sock *s, struct list_head *list)
{
	if (list == &s->pops)
		return &s->nr_pops;
	if (list == &s->pushes)
		return &s->nr_pushes;
	return &s->nr_accepts;
}

/*
 * The oldest op on list, taken off it, or NULL. It still counts as pending
 * (nr_*) until qd_sock_done(): a callback that looks at the count while the
 * op is being served must see it. Only the one receiver, sender or
 * acceptor of the socket takes ops, so they complete in order. Any context.
 */
struct qd_op *qd_sock_take(struct qd_sock *s, struct list_head *list)
{
	struct qd_op *op = NULL;
	unsigned long flags;

	spin_lock_irqsave(&s->lock, flags);
	if (!s->closed && !list_empty(list)) {
		op = list_first_entry(list, struct qd_op, node);
		list_del_init(&op->node);
	}
	spin_unlock_irqrestore(&s->lock, flags);
	return op;
}

/* A taken op could not finish yet: first in line again, or cancelled. */
void qd_sock_putback(struct qd_sock *s, struct list_head *list,
		     struct qd_op *op)
{
	unsigned long flags;
	bool closed;

	spin_lock_irqsave(&s->lock, flags);
	closed = s->closed;
	if (!closed)
		list_add(&op->node, list);
	spin_unlock_irqrestore(&s->lock, flags);
	if (closed)
		qd_sock_finish(s, op, -ECANCELED);
}

/* A taken op is done: it stops counting (close zeroed the counts). */
void qd_sock_done(struct qd_sock *s, struct list_head *list, struct qd_op *op,
		  s64 res)
{
	unsigned long flags;

	spin_lock_irqsave(&s->lock, flags);
	if (!s->closed)
		(*qd_sock_count(s, list))--;
	spin_unlock_irqrestore(&s->lock, flags);
	qd_sock_finish(s, op, res);
}

/*
 * Queue op (counted by *nr) on list unless the socket is closed, waiting as
 * why. 0 with an extra reference on the socket, which the caller drops with
 * qd_object_put() once it has served the list (once queued, the op and its
 * own reference may go at any time); -EBADF or qd_op_wait()'s error with
 * nothing queued. Any context.
 */
int qd_sock_enqueue(struct qd_sock *s, struct qd_op *op, enum qd_op_wait why,
		    struct list_head *list, u32 *nr)
{
	unsigned long flags;
	int ret;

	ret = qd_op_wait(op, why);
	if (ret)
		return ret;
	refcount_inc(&s->obj.refs);
	spin_lock_irqsave(&s->lock, flags);
	if (s->closed) {
		ret = -EBADF;
	} else {
		list_add_tail(&op->node, list);
		(*nr)++;
	}
	spin_unlock_irqrestore(&s->lock, flags);
	if (ret) {
		qd_op_unwait(op);
		qd_object_put(&s->obj);
	}
	return ret;
}

/* Complete an op that no list or count holds any more. Any context. */
void qd_sock_finish(struct qd_sock *s, struct qd_op *op, s64 res)
{
	qd_op_unwait(op);
	/*
	 * A pool pop ending with buffers it did not fill (an error, a
	 * cancel): its CQE hands them to the popper (QD_CQE_F_POOL).
	 */
	if (op->dst && op->dst->nsegs && op->op_flags & QD_POP_POOL) {
		op->elem = op->dst;
		op->dst = NULL;
		op->cqe_flags |= QD_CQE_F_POOL;
	}
	if (res >= 0) {
		if (op->opcode == QD_OP_POP)
			WRITE_ONCE(s->popped, s->popped + 1);
		else if (op->opcode != QD_OP_ACCEPT &&
			 op->opcode != QD_OP_CONNECT)
			WRITE_ONCE(s->pushed, s->pushed + 1);
	}
	if (op->sock.zc)
		qd_zc_end(op, res);	/* completes once the stack lets go */
	else
		qd_op_complete(op, res);
}

/*
 * A socket address from user space (CONNECT, PUSHTO): AF_INET or AF_INET6,
 * at least the family's size, at most a sockaddr_storage (the tail beyond
 * a sockaddr_in6 is ignored, as the stack does). Process context.
 */
int qd_sock_addr_copy(struct qd_cqe_addr *out, u64 uaddr, u32 len)
{
	struct sockaddr_storage ss;

	if (len < sizeof(sa_family_t) || len > sizeof(ss) || !uaddr)
		return -EINVAL;
	if (copy_from_user(&ss, u64_to_user_ptr(uaddr), len))
		return -EFAULT;
	if (ss.ss_family == AF_INET) {
		if (len < sizeof(struct sockaddr_in))
			return -EINVAL;
		len = sizeof(struct sockaddr_in);
	} else if (ss.ss_family == AF_INET6) {
		if (len < SIN6_LEN_RFC2133)
			return -EINVAL;
		len = min_t(u32, len, sizeof(struct sockaddr_in6));
	} else {
		return -EAFNOSUPPORT;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out->addr, &ss, len);
	out->len = len;
	return 0;
}

static void qd_sock_connect_done(struct qd_sock *s, struct sock *sk)
{
	int state = READ_ONCE(sk->sk_state), err = 0;
	unsigned long flags;
	struct qd_op *op;

	if (!READ_ONCE(s->connect) ||
	    (1 << state) & (TCPF_SYN_SENT | TCPF_SYN_RECV))
		return;
	spin_lock_irqsave(&s->lock, flags);
	op = s->connect;
	s->connect = NULL;
	spin_unlock_irqrestore(&s->lock, flags);
	if (!op)
		return;
	if (!((1 << state) & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT)))
		err = -(READ_ONCE(sk->sk_err) ?: ECONNREFUSED);
	qd_sock_finish(s, op, err);
}

/* sk_state_change and sk_error_report: softirq or the lock owner. */
static void qd_sock_event(struct sock *sk, bool error)
{
	struct qd_sock *s;

	read_lock_bh(&sk->sk_callback_lock);
	rcu_read_lock();
	s = qd_sock_of(sk);
	if (s) {
		if (error)
			s->saved_error_report(sk);
		else
			s->saved_state_change(sk);
		qd_sock_connect_done(s, sk);
		qd_sock_rx_event(s, sk);
		if (READ_ONCE(s->nr_pushes))
			qd_sock_kick(s);
	}
	rcu_read_unlock();
	read_unlock_bh(&sk->sk_callback_lock);
}

static void qd_sock_state_change(struct sock *sk)
{
	qd_sock_event(sk, false);
}

static void qd_sock_error_report(struct sock *sk)
{
	qd_sock_event(sk, true);
}

/*
 * Hook the socket's callbacks. An accepted socket is a clone of its
 * listener, callbacks included (sk_user_data is not copied:
 * SK_USER_DATA_NOCOPY): it takes the listener's saved originals. Until
 * then our callbacks find no qd_sock and do nothing: the data waits in
 * the socket for the first pop. Process context.
 */
static void qd_sock_attach(struct qd_sock *s, struct qd_sock *parent)
{
	struct sock *sk = s->sock->sk;

	write_lock_bh(&sk->sk_callback_lock);
	if (parent) {
		s->saved_data_ready = parent->saved_data_ready;
		s->saved_write_space = parent->saved_write_space;
		s->saved_state_change = parent->saved_state_change;
		s->saved_error_report = parent->saved_error_report;
	} else {
		s->saved_data_ready = sk->sk_data_ready;
		s->saved_write_space = sk->sk_write_space;
		s->saved_state_change = sk->sk_state_change;
		s->saved_error_report = sk->sk_error_report;
	}
	__rcu_assign_sk_user_data_with_flags(sk, s, SK_USER_DATA_NOCOPY);
	sk->sk_data_ready = qd_sock_data_ready;
	sk->sk_write_space = qd_sock_write_space;
	sk->sk_state_change = qd_sock_state_change;
	sk->sk_error_report = qd_sock_error_report;
	write_unlock_bh(&sk->sk_callback_lock);
}

/* After this no callback finds s, and none still runs with it. */
static void qd_sock_detach(struct qd_sock *s)
{
	struct sock *sk = s->sock->sk;

	write_lock_bh(&sk->sk_callback_lock);
	rcu_assign_sk_user_data(sk, NULL);
	sk->sk_data_ready = s->saved_data_ready;
	sk->sk_write_space = s->saved_write_space;
	sk->sk_state_change = s->saved_state_change;
	sk->sk_error_report = s->saved_error_report;
	write_unlock_bh(&sk->sk_callback_lock);
}

static int qd_sock_cancel(struct qd_object *obj, struct qd_ctx *ctx,
			  u64 user_data)
{
	struct qd_sock *s = to_qd_sock(obj);
	struct list_head *lists[] = { &s->pops, &s->pushes, &s->accepts };
	struct qd_op *op = NULL;
	unsigned long flags;
	int i;

	spin_lock_irqsave(&s->lock, flags);
	for (i = 0; i < ARRAY_SIZE(lists) && !op; i++) {
		op = qd_op_find(lists[i], ctx, user_data);
		if (op) {
			list_del_init(&op->node);
			(*qd_sock_count(s, lists[i]))--;
		}
	}
	if (!op && s->connect && s->connect->user_data == user_data) {
		op = s->connect;
		s->connect = NULL;
	}
	spin_unlock_irqrestore(&s->lock, flags);
	if (!op)
		return -ENOENT;
	qd_sock_finish(s, op, -ECANCELED);
	return 0;
}

/*
 * Process context, ctx->lock held. Every pending op ends with -ECANCELED
 * and the callbacks are detached; the socket itself is released with the
 * last reference (a work item may still hold one for a moment). A
 * listener stops listening now.
 */
static void qd_sock_close(struct qd_object *obj)
{
	struct qd_sock *s = to_qd_sock(obj);
	struct qd_op *op, *tmp;
	unsigned long flags;
	LIST_HEAD(cancel);

	spin_lock_irqsave(&s->lock, flags);
	s->closed = true;
	list_splice_init(&s->pops, &cancel);
	list_splice_tail_init(&s->pushes, &cancel);
	list_splice_tail_init(&s->accepts, &cancel);
	if (s->connect)
		list_add_tail(&s->connect->node, &cancel);
	s->connect = NULL;
	s->nr_pops = 0;
	s->nr_pushes = 0;
	s->nr_accepts = 0;
	spin_unlock_irqrestore(&s->lock, flags);

	qd_sock_detach(s);
	qd_pool_unwait(obj->ctx, &s->pool_wait);
	if (READ_ONCE(s->sock->sk->sk_state) == TCP_LISTEN)
		kernel_sock_shutdown(s->sock, SHUT_RDWR);
	atomic_dec(&obj->ctx->nr_sockets);

	list_for_each_entry_safe(op, tmp, &cancel, node) {
		list_del_init(&op->node);
		qd_sock_finish(s, op, -ECANCELED);
		cond_resched();
	}
}

/* After lockless lookups are done with it; rcu_barrier() at exit. */
static void qd_sock_free_rcu(struct rcu_head *rcu)
{
	kmem_cache_free(qd_sock_cache, container_of(rcu, struct qd_sock, obj.rcu));
}

static void qd_sock_free_work(struct work_struct *work)
{
	struct qd_sock *s = container_of(work, struct qd_sock, free_work);

	sock_release(s->sock);
	atomic_long_dec(&qd_stats.sockets);
	call_rcu(&s->obj.rcu, qd_sock_free_rcu);
}

/* Any context: sock_release() sleeps, so it runs from the work queue. */
static void qd_sock_release(struct qd_object *obj)
{
	queue_work(qd_sock_wq, &to_qd_sock(obj)->free_work);
}

static const char *qd_sock_state_name(int state)
{
	static const char *const names[] = {
		[TCP_ESTABLISHED] = "established", [TCP_SYN_SENT] = "syn-sent",
		[TCP_SYN_RECV] = "syn-recv", [TCP_FIN_WAIT1] = "fin-wait1",
		[TCP_FIN_WAIT2] = "fin-wait2", [TCP_TIME_WAIT] = "time-wait",
		[TCP_CLOSE] = "close", [TCP_CLOSE_WAIT] = "close-wait",
		[TCP_LAST_ACK] = "last-ack", [TCP_LISTEN] = "listen",
		[TCP_CLOSING] = "closing", [TCP_NEW_SYN_RECV] = "new-syn-recv",
	};

	if (state < 0 || state >= ARRAY_SIZE(names) || !names[state])
		return "?";
	return names[state];
}

/*
 * Process context (debugfs), ctx->lock held. The memq columns (depth and
 * max_depth are 0), then key=value columns of the socket.
 */
static void qd_sock_show(struct qd_object *obj, struct seq_file *m)
{
	struct qd_sock *s = to_qd_sock(obj);
	struct sockaddr_storage local, peer;
	u32 pops, pushes, accepts;
	int llen, plen;

	spin_lock_irq(&s->lock);
	pops = s->nr_pops;
	pushes = s->nr_pushes;
	accepts = s->nr_accepts + !!s->connect;
	spin_unlock_irq(&s->lock);
	llen = kernel_getsockname(s->sock, (struct sockaddr *)&local);
	plen = kernel_getpeername(s->sock, (struct sockaddr *)&peer);
	seq_printf(m, "%d %s%s 0 0 %u %u %llu %llu push,pop", obj->qd,
		   s->type == SOCK_STREAM ? "tcp" : "udp",
		   s->family == AF_INET6 ? "6" : "", pops, pushes,
		   READ_ONCE(s->pushed), READ_ONCE(s->popped));
	if (llen > 0)
		seq_printf(m, " local=%pISpc", &local);
	else
		seq_puts(m, " local=-");
	if (plen > 0)
		seq_printf(m, " peer=%pISpc", &peer);
	else
		seq_puts(m, " peer=-");
	seq_printf(m, " state=%s pending_accepts=%u bytes_in=%llu bytes_out=%llu\n",
		   qd_sock_state_name(READ_ONCE(s->sock->sk->sk_state)),
		   accepts, READ_ONCE(s->bytes_in), READ_ONCE(s->bytes_out));
}

/*
 * CONNECT, in the submitter's process context: the stack's connect with
 * O_NONBLOCK; a TCP connect in progress completes from the state change
 * callback (established, or refused/timed out with the socket's error).
 * The op is in s->connect before the stack can call back.
 */
static int qd_sock_connect(struct qd_object *obj, struct qd_op *op)
{
	struct qd_sock *s = to_qd_sock(obj);
	struct sockaddr_storage ss = {};
	unsigned long flags;
	int ret;

	if (((struct sockaddr *)op->sock.addr.addr)->sa_family != s->family)
		return -EAFNOSUPPORT;
	memcpy(&ss, op->sock.addr.addr, op->sock.addr.len);
	ret = qd_op_wait(op, QD_OP_WAIT_POP);
	if (ret)
		return ret;
	/* Ours: once stored, the op (and its reference) may go any time. */
	refcount_inc(&obj->refs);
	spin_lock_irqsave(&s->lock, flags);
	if (s->closed)
		ret = -EBADF;
	else if (s->connect)
		ret = -EALREADY;
	else
		s->connect = op;
	spin_unlock_irqrestore(&s->lock, flags);
	if (ret) {
		qd_op_unwait(op);
		qd_object_put(obj);
		return ret;
	}
	ret = kernel_connect(s->sock, (struct sockaddr *)&ss,
			     op->sock.addr.len, O_NONBLOCK);
	if (ret == -EINPROGRESS) {
		qd_object_put(obj);
		return 0;
	}
	/* Done already: take it back unless a callback (or close) did. */
	spin_lock_irqsave(&s->lock, flags);
	if (s->connect == op)
		s->connect = NULL;
	else
		op = NULL;
	spin_unlock_irqrestore(&s->lock, flags);
	if (op)
		qd_sock_finish(s, op, ret);
	qd_object_put(obj);
	return 0;
}

static const struct qd_object_ops qd_sock_ops = {
	.type = "sock",
	.push = qd_sock_push,
	.pushto = qd_sock_push,
	.pop = qd_sock_pop,
	.prep_pop = qd_sock_prep_pop,
	.cancel = qd_sock_cancel,
	.close = qd_sock_close,
	.release = qd_sock_release,
	.show = qd_sock_show,
	.accept = qd_sock_accept,
	.connect = qd_sock_connect,
	.pool = true,
};

static struct qd_sock *qd_sock_alloc(struct socket *sock)
{
	struct qd_sock *s;

	s = kmem_cache_zalloc(qd_sock_cache, GFP_KERNEL_ACCOUNT);
	if (!s)
		return NULL;
	s->sock = sock;
	s->family = sock->sk->sk_family;
	s->type = sock->type;
	spin_lock_init(&s->lock);
	INIT_LIST_HEAD(&s->pops);
	INIT_LIST_HEAD(&s->pushes);
	INIT_LIST_HEAD(&s->accepts);
	INIT_LIST_HEAD(&s->pool_wait.node);
	s->pool_group = -1;
	s->pool_wait.obj = &s->obj;
	s->pool_wait.ready = qd_sock_pool_ready;
	INIT_WORK(&s->work, qd_sock_work);
	INIT_WORK(&s->free_work, qd_sock_free_work);
	atomic_long_inc(&qd_stats.sockets);
	return s;
}

/* Free a socket qd that was never installed. Process context. */
static void qd_sock_free(struct qd_sock *s)
{
	sock_release(s->sock);
	atomic_long_dec(&qd_stats.sockets);
	kmem_cache_free(qd_sock_cache, s);
}

static bool qd_sock_charge(struct qd_ctx *ctx)
{
	if (atomic_inc_return(&ctx->nr_sockets) <= READ_ONCE(qd_max_sockets))
		return true;
	atomic_dec(&ctx->nr_sockets);
	return false;
}

/*
 * An accepted socket becomes a qd of ctx, unless its listener was closed
 * meanwhile (checked under ctx->lock, which close holds). Returns the qd,
 * or -errno with sock released. Process context (the work item).
 */
int qd_sock_install(struct qd_ctx *ctx, struct socket *sock,
		    struct qd_sock *parent)
{
	struct qd_sock *s;
	u32 qd;
	int ret;

	s = qd_sock_alloc(sock);
	if (!s) {
		sock_release(sock);
		return -ENOMEM;
	}
	mutex_lock(&ctx->lock);
	if (READ_ONCE(parent->closed)) {
		ret = -ECANCELED;
		goto err_unlock;
	}
	if (!qd_sock_charge(ctx)) {
		ret = -EMFILE;
		goto err_unlock;
	}
	ret = qd_object_reserve(ctx, &qd);
	if (ret) {
		atomic_dec(&ctx->nr_sockets);
		goto err_unlock;
	}
	qd_sock_attach(s, parent);
	qd_object_install(ctx, qd, &s->obj, &qd_sock_ops);
	mutex_unlock(&ctx->lock);
	return qd;

err_unlock:
	mutex_unlock(&ctx->lock);
	qd_sock_free(s);
	return ret;
}

/* QD_IOC_SOCKET (sock_ctl.c). Process context, the caller. */
int qd_sock_create(struct qd_ctx *ctx, struct qd_socket_create __user *arg)
{
	struct qd_socket_create c;
	struct socket *sock;
	struct qd_sock *s;
	u32 qd;
	int i, ret;

	if (copy_from_user(&c, arg, sizeof(c)))
		return -EFAULT;
	if (c.flags || c.qd)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(c.resv); i++)
		if (c.resv[i])
			return -EINVAL;
	if (c.domain != AF_INET && c.domain != AF_INET6)
		return -EAFNOSUPPORT;
	if (c.type == SOCK_STREAM) {
		if (c.protocol && c.protocol != IPPROTO_TCP)
			return -EPROTONOSUPPORT;
	} else if (c.type == SOCK_DGRAM) {
		if (c.protocol && c.protocol != IPPROTO_UDP)
			return -EPROTONOSUPPORT;
	} else {
		return c.type & ~SOCK_TYPE_MASK ? -EINVAL : -ESOCKTNOSUPPORT;
	}
	if (!qd_sock_charge(ctx))
		return -EMFILE;
	/* socket(2)'s checks, with the caller's credentials (kern = 0). */
	ret = __sock_create(ctx->net, c.domain, c.type, c.protocol, &sock, 0);
	if (ret)
		goto err_charge;
	s = qd_sock_alloc(sock);
	if (!s) {
		sock_release(sock);
		ret = -ENOMEM;
		goto err_charge;
	}

	ret = qd_object_claim(ctx, &qd);
	if (ret)
		goto err_free;
	c.qd = qd;
	if (copy_to_user(arg, &c, sizeof(c))) {
		qd_object_unclaim(ctx, qd);
		ret = -EFAULT;
		goto err_free;
	}
	mutex_lock(&ctx->lock);
	qd_sock_attach(s, NULL);
	qd_object_install(ctx, qd, &s->obj, &qd_sock_ops);
	mutex_unlock(&ctx->lock);
	return 0;

err_free:
	qd_sock_free(s);
err_charge:
	atomic_dec(&ctx->nr_sockets);
	return ret;
}

/* The socket qd names, referenced, or an ERR_PTR. Any context. */
struct qd_sock *qd_sock_get(struct qd_ctx *ctx, int qd)
{
	struct qd_object *obj = qd_object_get(ctx, qd);

	if (!obj)
		return ERR_PTR(-EBADF);
	if (obj->ops != &qd_sock_ops) {
		qd_object_put(obj);
		return ERR_PTR(-ENOTSOCK);
	}
	return to_qd_sock(obj);
}

int qd_sock_init(void)
{
	qd_sock_cache = KMEM_CACHE(qd_sock, SLAB_ACCOUNT);
	if (!qd_sock_cache)
		return -ENOMEM;
	qd_sock_wq = alloc_workqueue("qd_sock", WQ_UNBOUND, 0);
	if (!qd_sock_wq) {
		kmem_cache_destroy(qd_sock_cache);
		return -ENOMEM;
	}
	return 0;
}

void qd_sock_exit(void)
{
	destroy_workqueue(qd_sock_wq);
	rcu_barrier();		/* the qd_sock_free_rcu() callbacks */
	kmem_cache_destroy(qd_sock_cache);
	qd_zc_exit();
}
