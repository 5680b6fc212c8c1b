// SPDX-License-Identifier: GPL-2.0
/*
 * Sending on socket qds: PUSH and PUSHTO.
 *
 * sock_sendmsg() over a bio_vec iterator on the pinned region pages,
 * MSG_DONTWAIT. Below zc_min_bytes, to a peer on a loopback route, or with
 * QD_PUSH_COPY, the stack copies the bytes: once it has, the buffers may
 * be reused and the push completes. Otherwise (or with QD_PUSH_ZC) the
 * skbs reference the pages themselves and the push completes when the
 * stack has released them all (sock_zc.c). TCP pushes complete with all their bytes or an
 * error, UDP pushes are one datagram each. Pushes on a socket go out in
 * order, one sender at a time (QD_SOCK_TX_BUSY); the first try is made by
 * the submitter, and when the socket is full (-EAGAIN) the push waits for
 * sk_write_space, which queues the work item to go on in process context.
 * The submitting thread never waits for the network.
 */
#include <linux/bvec.h>
#include <linux/net.h>
#include <linux/uio.h>
#include <net/sock.h>
#include <net/tcp_states.h>

#include "op.h"
#include "region.h"
#include "sock.h"
#include "sock_zc.h"
#include "stats.h"

/* Pages handed to the stack per sendmsg: a datagram must fit. */
#define QD_SOCK_TX_BVECS	32

/* bio_vecs for e's bytes from at on; their total in *len. */
static unsigned int qd_sock_bvecs(const struct qd_kelem *e, u64 at,
				  struct bio_vec *bv, size_t *len)
{
	unsigned int n = 0;
	u32 seg = 0;
	size_t in, c;
	u64 pos;

	*len = 0;
	while (seg < e->nsegs && at >= e->segs[seg].len)
		at -= e->segs[seg++].len;
	while (seg < e->nsegs && n < QD_SOCK_TX_BVECS) {
		pos = e->segs[seg].offset + at;
		in = offset_in_page(pos);
		c = min_t(u64, PAGE_SIZE - in, e->segs[seg].len - at);
		bv[n].bv_page = e->regions[seg]->pages[pos >> PAGE_SHIFT];
		bv[n].bv_offset = in;
		bv[n].bv_len = c;
		n++;
		*len += c;
		at += c;
		if (at == e->segs[seg].len) {
			seg++;
			at = 0;
		}
	}
	return n;
}

/*
 * Send what is left of op: its bytes once all went, -EAGAIN when the
 * socket is full (op->sock.done says how far it got), or -errno.
 * Process context.
 */
static s64 qd_sock_send(struct qd_sock *s, struct qd_op *op)
{
	struct bio_vec bv[QD_SOCK_TX_BVECS];
	struct qd_kelem *e = op->elem;
	struct sockaddr_storage to;
	struct msghdr msg;
	unsigned int n;
	size_t len;
	int ret;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
		if (op->sock.zc)
			qd_zc_msg(op, &msg);
		n = qd_sock_bvecs(e, op->sock.done, bv, &len);
		if (s->type == SOCK_DGRAM && len < e->bytes)
			return -EMSGSIZE;
		if (op->opcode == QD_OP_PUSHTO) {
			memset(&to, 0, sizeof(to));
			memcpy(&to, op->sock.addr.addr, op->sock.addr.len);
			msg.msg_name = &to;
			msg.msg_namelen = op->sock.addr.len;
		}
		iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bv, n, len);
		ret = sock_sendmsg(s->sock, &msg);
		if (ret < 0) {
			if (ret == -ECONNRESET || ret == -ETIMEDOUT)
				WRITE_ONCE(s->err, -ret);
			return ret;
		}
		op->sock.done += ret;
		WRITE_ONCE(s->bytes_out, s->bytes_out + ret);
		qd_stat_add(sock_bytes_out, ret);
		if (op->sock.zc)
			qd_stat_add(sock_zc_bytes, ret);
		if (op->sock.done >= e->bytes || s->type == SOCK_DGRAM)
			return op->sock.done;
	}
}

static void qd_sock_tx_run(struct qd_sock *s)
{
	struct qd_op *op;
	s64 ret;

	while ((op = qd_sock_take(s, &s->pushes))) {
		ret = qd_sock_send(s, op);
		if (ret == -EAGAIN) {
			qd_sock_putback(s, &s->pushes, op);
			return;
		}
		qd_sock_done(s, &s->pushes, op, ret);
	}
}

/* Send the pending pushes, in order, until done or full. Process context. */
void qd_sock_tx(struct qd_sock *s)
{
	set_bit(QD_SOCK_TX_AGAIN, &s->flags);
	while (test_bit(QD_SOCK_TX_AGAIN, &s->flags) &&
	       !test_and_set_bit(QD_SOCK_TX_BUSY, &s->flags)) {
		clear_bit(QD_SOCK_TX_AGAIN, &s->flags);
		qd_sock_tx_run(s);
		clear_bit(QD_SOCK_TX_BUSY, &s->flags);
		smp_mb__after_atomic();	/* pairs with test_and_set_bit() */
	}
}

/*
 * sk_write_space: softirq (TCP: bh lock held) or process context. Room
 * again: a push being sent or waiting goes on from the work item.
 */
void qd_sock_write_space(struct sock *sk)
{
	struct qd_sock *s;

	read_lock_bh(&sk->sk_callback_lock);
	rcu_read_lock();
	s = rcu_dereference_sk_user_data(sk);
	if (s) {
		s->saved_write_space(sk);
		if (READ_ONCE(s->nr_pushes))
			qd_sock_kick(s);
	}
	rcu_read_unlock();
	read_unlock_bh(&sk->sk_callback_lock);
}

/* Submission (process context, the submitter): PUSH and PUSHTO. */
int qd_sock_push(struct qd_object *obj, struct qd_op *op)
{
	struct qd_sock *s = to_qd_sock(obj);
	struct sock *sk = s->sock->sk;
	int state = READ_ONCE(sk->sk_state), err;
	bool zc;
	int ret;

	if (op->opcode == QD_OP_PUSHTO) {
		if (s->type != SOCK_DGRAM)
			return -EOPNOTSUPP;
		if (((struct sockaddr *)op->sock.addr.addr)->sa_family != s->family)
			return -EAFNOSUPPORT;
	} else if (s->type == SOCK_STREAM) {
		if (!((1 << state) & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT))) {
			err = READ_ONCE(s->err) ?: READ_ONCE(sk->sk_err);
			return err ? -err : -ENOTCONN;
		}
	} else if (state != TCP_ESTABLISHED) {
		return -EDESTADDRREQ;
	}
	op->sock.done = 0;
	if (qd_zc_wanted(op, sk))
		qd_zc_start(op);
	zc = op->sock.zc;
	ret = qd_sock_enqueue(s, op, QD_OP_WAIT_PUSH, &s->pushes,
			      &s->nr_pushes);
	if (ret) {
		qd_zc_cancel(op);
		return ret;
	}
	/* Queued: op is no longer ours to look at. */
	if (zc)
		qd_stat_inc(sock_zc_pushes);
	else
		qd_stat_inc(sock_copy_pushes);
	qd_sock_tx(s);
	qd_object_put(obj);
	return 0;
}
