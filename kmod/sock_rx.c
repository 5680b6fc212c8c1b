// SPDX-License-Identifier: GPL-2.0
/*
 * Receiving on socket qds: pops and accepts.
 *
 * A pop brings its buffer (pinned region pages). Bytes are copied once,
 * from the skb straight into those pages through the kernel mapping
 * (skb_copy_bits() into kmap_local_page()), and the CQE is posted where
 * the copy was made: no thread hop and no wake-up but the CQ's.
 *
 * Who copies, as strparser does (strp_data_ready()): the socket's
 * sk_data_ready callback, in softirq. For TCP it holds the socket's bh
 * lock, so unless the socket is owned by a process (lock_sock(): our own
 * submission or work item, or the backlog being processed at release_sock())
 * it reads with tcp_read_sock() on the spot; when it is owned, the work
 * item does it in process context under lock_sock(). UDP receive takes no
 * socket lock: the callback dequeues with __skb_recv_udp(). A pop submitted
 * when bytes are already queued reads them at once, in the submitter's
 * context. With no pop pending a callback does nothing: the bytes wait in
 * the socket (and TCP's window closes as it would for a slow reader).
 *
 * One receiver at a time (QD_SOCK_RX_BUSY; for TCP the socket lock too)
 * serves pops oldest first, so pops on a socket complete in order. An op
 * being served still counts in nr_pops, so a callback that comes meanwhile
 * sets QD_SOCK_RX_AGAIN and the receiver looks again before it leaves.
 *
 * Accepts need process context (kernel_accept(), and ctx->lock to make the
 * new qd): the listener's data-ready callback queues the work item.
 */
#include <linux/highmem.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>
#include <linux/net.h>
#include <net/inet_connection_sock.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/udp.h>

#include "ctx.h"
#include "op.h"
#include "region.h"
#include "sock.h"
#include "stats.h"

/*
 * Copy len bytes at off of skb into dst, from byte at of its buffer on,
 * page by page. Any context.
 */
static int qd_sock_copy_skb(const struct sk_buff *skb, int off,
			    struct qd_kelem *dst, u64 at, size_t len)
{
	u32 seg = 0;
	size_t in, n;
	struct page *page;
	u64 pos;
	void *d;
	int ret;

	while (seg < dst->nsegs && at >= dst->segs[seg].len)
		at -= dst->segs[seg++].len;
	while (len) {
		if (WARN_ON_ONCE(seg >= dst->nsegs))
			return -EFAULT;
		pos = dst->segs[seg].offset + at;
		page = dst->regions[seg]->pages[pos >> PAGE_SHIFT];
		in = offset_in_page(pos);
		n = min3(len, PAGE_SIZE - in, (size_t)(dst->segs[seg].len - at));
		d = kmap_local_page(page);
		ret = skb_copy_bits(skb, off, d + in, n);
		kunmap_local(d);
		if (ret)
			return ret;
		flush_dcache_page(page);
		off += n;
		len -= n;
		at += n;
		if (at == dst->segs[seg].len) {
			seg++;
			at = 0;
		}
	}
	return 0;
}

/*
 * A multishot pool pop (TCP) got bytes in op->dst: post them with
 * QD_CQE_F_MORE and stay first in line with an empty element for the next
 * ones (GFP_ATOMIC: we may be in softirq; when that fails the pop ends,
 * -ENOMEM or -ENOBUFS past max_queued, as a final CQE). Any context.
 */
static void qd_sock_deliver(struct qd_sock *s, struct qd_op *op)
{
	struct qd_kelem *e = op->dst, *next;
	int err;

	e->cqe_flags = QD_CQE_F_POOL | QD_CQE_F_COPIED;
	next = qd_elem_alloc_gfp(op->ctx, GFP_ATOMIC, &err);
	op->dst = next;
	op->sock.done = 0;
	qd_op_deliver(op, e);
	if (!next) {
		qd_sock_done(s, &s->pops, op, err);
		return;
	}
	qd_sock_putback(s, &s->pops, op);
}

/* Trim a pop's buffer to the n bytes it holds; it becomes the element. */
static void qd_sock_pop_done(struct qd_sock *s, struct qd_op *op, u64 n)
{
	struct qd_kelem *e = op->dst;

	if (op->op_flags & QD_POP_POOL)
		op->cqe_flags |= QD_CQE_F_POOL;
	/* An empty datagram's pool buffer goes back whole. */
	if (n || !(op->op_flags & QD_POP_POOL))
		qd_elem_trim(e, n);
	e->bytes = n;
	WRITE_ONCE(s->bytes_in, s->bytes_in + n);
	qd_stat_add(sock_bytes_in, n);
	if (op->op_flags & QD_POP_MULTISHOT && n) {
		qd_sock_deliver(s, op);
		return;
	}
	op->elem = e;
	op->dst = NULL;
	op->copy = 1;
	qd_sock_done(s, &s->pops, op, n);
}

/*
 * One more buffer for a pool pop (QD_POP_POOL) that filled those it has:
 * TCP takes up to the pop's nsegs (0: QD_SGA_MAX), UDP one per datagram. false when it has all
 * it may take, or when the pool is empty: then the socket waits on the
 * pool (pool.c), and a PROVIDE serves its pops again. Any context.
 */
static bool qd_sock_pool_take(struct qd_sock *s, struct qd_op *op)
{
	u32 max = s->type == SOCK_STREAM ? op->pool_max : 1;

	if (!(op->op_flags & QD_POP_POOL) || op->dst->nsegs >= max)
		return false;
	if (qd_pool_take_or_wait(op->ctx, op->pool_group, op->dst,
				 &s->pool_wait))
		return true;
	op->sock.starved = true;
	/*
	 * Closed meanwhile (a work item may serve pops while close runs):
	 * close's qd_pool_unwait() came first, or comes after and finds us.
	 */
	if (READ_ONCE(s->closed))
		qd_pool_unwait(op->ctx, &s->pool_wait);
	return false;
}

static int qd_sock_recv_actor(read_descriptor_t *desc, struct sk_buff *skb,
			      unsigned int offset, size_t len)
{
	struct qd_op *op = desc->arg.data;
	struct qd_sock *s = to_qd_sock(op->obj);
	size_t n, used = 0;

	while (len && desc->count) {
		/* A pool pop takes buffers only for bytes that are here. */
		if (op->sock.done == op->dst->bytes && !qd_sock_pool_take(s, op))
			break;
		n = min3(len, desc->count,
			 (size_t)(op->dst->bytes - op->sock.done));
		if (qd_sock_copy_skb(skb, offset, op->dst, op->sock.done, n)) {
			desc->error = -EFAULT;
			break;
		}
		op->sock.done += n;
		desc->count -= n;
		offset += n;
		len -= n;
		used += n;
	}
	return used;
}

/* Called with the socket locked (bh lock, or owned by us). */
static void qd_sock_rx_tcp(struct qd_sock *s)
{
	struct sock *sk = s->sock->sk;
	read_descriptor_t desc;
	struct qd_op *op;
	int err;

	while ((op = qd_sock_take(s, &s->pops))) {
		desc.arg.data = op;
		/* A pool pop: as much as QD_SGA_MAX buffers hold. */
		desc.count = op->op_flags & QD_POP_POOL ? INT_MAX :
			     op->dst->bytes;
		desc.written = 0;
		desc.error = 0;
		op->sock.starved = false;
		if (tcp_read_sock(sk, &desc, qd_sock_recv_actor) > 0 &&
		    !desc.error) {
			qd_sock_pop_done(s, op, op->sock.done);
			continue;
		}
		err = desc.error ?: READ_ONCE(s->err) ?: READ_ONCE(sk->sk_err);
		if (op->sock.starved && !desc.error) {
			/* Bytes (and maybe a FIN) wait for a PROVIDE. */
			qd_sock_putback(s, &s->pops, op);
			return;
		}
		if (err) {
			if (err > 0)
				WRITE_ONCE(s->err, err);
			qd_sock_done(s, &s->pops, op, err > 0 ? -err : err);
		} else if (READ_ONCE(s->eof) || sk->sk_shutdown & RCV_SHUTDOWN) {
			/* The peer's FIN: 0 bytes, now and for every later pop. */
			WRITE_ONCE(s->eof, true);
			qd_sock_pop_done(s, op, 0);
		} else {
			qd_sock_putback(s, &s->pops, op);
			return;
		}
	}
}

/* Where a datagram came from, as recvfrom(2) says it. */
static void qd_sock_udp_source(struct qd_sock *s, struct sk_buff *skb,
			       struct qd_cqe_addr *a)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)a->addr;
	struct sockaddr_in *sin = (struct sockaddr_in *)a->addr;

	memset(a, 0, sizeof(*a));
	if (s->family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = udp_hdr(skb)->source;
		sin->sin_addr.s_addr = ip_hdr(skb)->saddr;
		a->len = sizeof(*sin);
		return;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = udp_hdr(skb)->source;
	if (skb->protocol == htons(ETH_P_IP)) {
		ipv6_addr_set_v4mapped(ip_hdr(skb)->saddr, &sin6->sin6_addr);
	} else {
		sin6->sin6_addr = ipv6_hdr(skb)->saddr;
		sin6->sin6_scope_id = ipv6_iface_scope_id(&sin6->sin6_addr,
							  inet6_iif(skb));
	}
	a->len = sizeof(*sin6);
}

/* One datagram per pop, truncated to its buffer (QD_CQE_F_TRUNC). */
static void qd_sock_rx_udp(struct qd_sock *s)
{
	struct sock *sk = s->sock->sk;
	struct sk_buff *skb;
	struct qd_op *op;
	unsigned int ulen, n;
	int off, err;

	while ((op = qd_sock_take(s, &s->pops))) {
		/*
		 * A pool pop takes its buffer before it dequeues a datagram
		 * (we are the only reader: what is queued stays queued).
		 */
		if (op->op_flags & QD_POP_POOL && !op->dst->nsegs &&
		    ((skb_queue_empty_lockless(&udp_sk(sk)->reader_queue) &&
		      skb_queue_empty_lockless(&sk->sk_receive_queue)) ||
		     !qd_sock_pool_take(s, op))) {
			qd_sock_putback(s, &s->pops, op);
			return;
		}
		off = 0;
		skb = __skb_recv_udp(sk, MSG_DONTWAIT, &off, &err);
		if (!skb) {
			if (err == -EAGAIN) {
				qd_sock_putback(s, &s->pops, op);
				return;
			}
			qd_sock_done(s, &s->pops, op, err);
			continue;
		}
		ulen = udp_skb_len(skb);
		if (!udp_skb_csum_unnecessary(skb) &&
		    __udp_lib_checksum_complete(skb)) {
			atomic_inc(&sk->sk_drops);
			skb_consume_udp(sk, skb, 0);
			qd_sock_putback(s, &s->pops, op);
			continue;
		}
		n = min_t(u64, ulen, op->dst->bytes);
		err = qd_sock_copy_skb(skb, 0, op->dst, 0, n);
		if (n < ulen)
			op->cqe_flags |= QD_CQE_F_TRUNC;
		qd_sock_udp_source(s, skb, &op->sock.addr);
		op->cqe_flags |= QD_CQE_F_ADDR;
		skb_consume_udp(sk, skb, n);
		if (err)
			qd_sock_done(s, &s->pops, op, err);
		else
			qd_sock_pop_done(s, op, n);
	}
}

/*
 * Serve the pending pops from what the socket holds. Any context; for TCP
 * with the socket locked (bh lock in a callback, lock_sock() otherwise).
 */
void qd_sock_rx(struct qd_sock *s)
{
	set_bit(QD_SOCK_RX_AGAIN, &s->flags);
	while (test_bit(QD_SOCK_RX_AGAIN, &s->flags) &&
	       !test_and_set_bit(QD_SOCK_RX_BUSY, &s->flags)) {
		clear_bit(QD_SOCK_RX_AGAIN, &s->flags);
		if (s->type == SOCK_STREAM)
			qd_sock_rx_tcp(s);
		else
			qd_sock_rx_udp(s);
		clear_bit(QD_SOCK_RX_BUSY, &s->flags);
		smp_mb__after_atomic();	/* pairs with test_and_set_bit() */
	}
}

/* Process context (submission, the work item). */
void qd_sock_rx_process(struct qd_sock *s)
{
	struct sock *sk = s->sock->sk;

	if (s->type != SOCK_STREAM) {
		qd_sock_rx(s);
		return;
	}
	lock_sock(sk);
	qd_sock_rx(s);
	release_sock(sk);
}

/*
 * Something arrived (bytes, a connection, a FIN, an error): serve the
 * pending pops here or from the work item, and wake the acceptor. Called
 * from the socket callbacks with sk_callback_lock held for reading:
 * softirq (TCP: with the bh lock held) or the socket owner's process
 * context while it processes the backlog.
 */
void qd_sock_rx_event(struct qd_sock *s, struct sock *sk)
{
	unsigned long flags;
	u32 pops, accepts;

	/* Under the lock, so a pop queued before it is seen. */
	spin_lock_irqsave(&s->lock, flags);
	pops = s->nr_pops;
	accepts = s->nr_accepts;
	spin_unlock_irqrestore(&s->lock, flags);
	if (accepts)
		qd_sock_kick(s);
	if (!pops)
		return;
	if (s->type == SOCK_STREAM && sock_owned_by_user_nocheck(sk))
		qd_sock_kick(s);
	else
		qd_sock_rx(s);
}

/* sk_data_ready. */
void qd_sock_data_ready(struct sock *sk)
{
	struct qd_sock *s;

	read_lock_bh(&sk->sk_callback_lock);
	rcu_read_lock();
	s = rcu_dereference_sk_user_data(sk);
	if (s)
		qd_sock_rx_event(s, sk);
	rcu_read_unlock();
	read_unlock_bh(&sk->sk_callback_lock);
}

/*
 * Process context: a socket pop brings its buffer (QD_OP_POP addr/nsegs) or
 * takes buffers from a pool when bytes come (QD_POP_POOL).
 */
int qd_sock_prep_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_sock *s = to_qd_sock(obj);

	int ret;

	if (op->op_flags & QD_POP_MULTISHOT && s->type != SOCK_STREAM)
		return -EINVAL;	/* a datagram's source has no room when parked */
	if (op->op_flags & QD_POP_POOL) {
		/* One pool per socket: the first pool pop's. */
		ret = cmpxchg(&s->pool_group, -1, (int)op->pool_group);
		if (ret != -1 && ret != op->pool_group)
			return -EINVAL;
		/* An empty element: the pool's buffers go in as bytes come. */
		op->dst = qd_elem_alloc(op->ctx, &ret);
		return op->dst ? 0 : ret;
	}
	if (!op->dst)
		return -EINVAL;
	if (s->type == SOCK_DGRAM && op->dst->nsegs > QD_CQE_ADDR_SEG)
		return -EINVAL;
	return 0;
}

/* A PROVIDE refilled the pool this socket waited on (process context). */
void qd_sock_pool_ready(struct qd_pool_waiter *w, bool live)
{
	struct qd_sock *s = container_of(w, struct qd_sock, pool_wait);

	if (live)
		qd_sock_rx_process(s);
}

/* Whether a pop on s has nothing to wait for: -ENOTCONN, or 0. */
static int qd_sock_pop_check(struct qd_sock *s)
{
	struct sock *sk = s->sock->sk;
	int state = READ_ONCE(sk->sk_state);

	if (s->type == SOCK_DGRAM)
		return inet_sk(sk)->inet_num ? 0 : -ENOTCONN;
	if (state == TCP_LISTEN)
		return -ENOTCONN;
	if (state == TCP_CLOSE && !READ_ONCE(s->eof) && !READ_ONCE(s->err) &&
	    !READ_ONCE(sk->sk_err) && !(READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN) &&
	    skb_queue_empty_lockless(&sk->sk_receive_queue))
		return -ENOTCONN;
	return 0;
}

/* Submission (process context, the submitter). */
int qd_sock_pop(struct qd_object *obj, struct qd_op *op)
{
	struct qd_sock *s = to_qd_sock(obj);
	int ret;

	ret = qd_sock_pop_check(s);
	if (ret)
		return ret;
	op->sock.done = 0;
	ret = qd_sock_enqueue(s, op, QD_OP_WAIT_POP, &s->pops, &s->nr_pops);
	if (ret)
		return ret;
	qd_sock_rx_process(s);
	qd_object_put(obj);
	return 0;
}

/* Submission: an accept waits for the work item (process context). */
int qd_sock_accept(struct qd_object *obj, struct qd_op *op)
{
	struct qd_sock *s = to_qd_sock(obj);
	struct sock *sk = s->sock->sk;
	int ret;

	if (s->type != SOCK_STREAM)
		return -EOPNOTSUPP;
	if (READ_ONCE(sk->sk_state) != TCP_LISTEN)
		return -EINVAL;
	/* The kick below may outlive the op's reference: our own. */
	ret = qd_sock_enqueue(s, op, QD_OP_WAIT_POP, &s->accepts,
			      &s->nr_accepts);
	if (ret)
		return ret;
	/* A connection already queued; later ones call data_ready. */
	if (!reqsk_queue_empty(&inet_csk(sk)->icsk_accept_queue))
		qd_sock_kick(s);
	qd_object_put(obj);
	return 0;
}

/*
 * The work item: accept connections for the pending accepts, in order.
 * It runs in a kworker, so what accepting allocates with __GFP_ACCOUNT or
 * from SLAB_ACCOUNT caches (the socket's inode, our qd_sock) is charged to
 * the memory cgroup of the context's owner, made the active one around
 * each accept, as accept(2) in the owner would charge it. (The socket
 * buffers' own accounting, sk_memcg, is set by inet_csk_accept() from the
 * current task's cgroup only: a kworker's, i.e. none.) The context is the
 * op's, which holds it: the socket alone does not.
 */
void qd_sock_accept_run(struct qd_sock *s)
{
	struct mem_cgroup *memcg, *old;
	struct sockaddr_storage ss;
	struct socket *newsock;
	struct qd_op *op;
	int ret, len = 0;
	bool none;

	while ((op = qd_sock_take(s, &s->accepts))) {
		memcg = get_mem_cgroup_from_mm(op->ctx->mm);
		old = set_active_memcg(memcg);
		ret = kernel_accept(s->sock, &newsock, O_NONBLOCK);
		none = ret == -EAGAIN;
		if (!ret) {
			len = kernel_getpeername(newsock, (struct sockaddr *)&ss);
			ret = qd_sock_install(op->ctx, newsock, s);
		}
		set_active_memcg(old);
		mem_cgroup_put(memcg);
		if (none) {
			qd_sock_putback(s, &s->accepts, op);
			return;
		}
		if (ret >= 0 && len > 0) {
			len = min_t(int, len, QD_SOCK_ADDR_MAX);
			memset(&op->sock.addr, 0, sizeof(op->sock.addr));
			memcpy(op->sock.addr.addr, &ss, len);
			op->sock.addr.len = len;
			op->cqe_flags |= QD_CQE_F_ADDR;
		}
		qd_sock_done(s, &s->accepts, op, ret);
		cond_resched();
	}
}
