/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_SOCK_H
#define _QD_SOCK_H

#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/qd.h>

#include "object.h"
#include "op.h"
#include "pool.h"

struct qd_ctx;
struct qd_op;
struct sock;
struct socket;

/* s->flags bits: one receiver and one sender at a time (sock_rx/tx.c). */
enum {
	QD_SOCK_RX_BUSY,
	QD_SOCK_RX_AGAIN,
	QD_SOCK_TX_BUSY,
	QD_SOCK_TX_AGAIN,
};

/*
 * A socket qd: a kernel socket and the operations waiting on it.
 *
 * lock (irq-safe, like a memory queue's) guards the lists, their counts,
 * closed and connect; it is never held across a call into the network
 * stack. The socket callbacks (softirq, with the socket's bh lock for TCP)
 * find the qd_sock through sk_user_data under sk_callback_lock, which
 * close takes for writing to detach them. Everything that runs later (the
 * work item, pending ops) holds an object reference; the socket is
 * released when the last one goes (free_work: sock_release sleeps).
 */
struct qd_sock {
	struct qd_object obj;
	struct socket *sock;
	u16 family;
	u16 type;			/* SOCK_STREAM or SOCK_DGRAM */
	spinlock_t lock;
	bool closed;
	struct list_head pops;		/* waiting for bytes, in order */
	struct list_head pushes;	/* waiting for room, in order */
	struct list_head accepts;	/* waiting for a connection */
	struct qd_op *connect;		/* the connect in progress */
	u32 nr_pops, nr_pushes, nr_accepts;
	unsigned long flags;		/* QD_SOCK_* bits */
	int err;			/* sticky: the error that ended it */
	bool eof;			/* sticky: the peer's FIN was popped */
	u64 pushed, popped;		/* ops completed */
	u64 bytes_in, bytes_out;
	/*
	 * Queued on a pool while bytes wait for a buffer (QD_POP_POOL): the
	 * pool of the socket's first pool pop, the only one it may use
	 * (pool_group, -1 before; set once), so the waiter's group never
	 * changes under a concurrent close.
	 */
	struct qd_pool_waiter pool_wait;
	int pool_group;
	struct work_struct work;	/* accept, receive when owned, send */
	struct work_struct free_work;
	void (*saved_data_ready)(struct sock *sk);
	void (*saved_write_space)(struct sock *sk);
	void (*saved_state_change)(struct sock *sk);
	void (*saved_error_report)(struct sock *sk);
};

static inline struct qd_sock *to_qd_sock(struct qd_object *obj)
{
	return container_of(obj, struct qd_sock, obj);
}

/* sock.c */
struct qd_socket_create;
int qd_sock_create(struct qd_ctx *ctx, struct qd_socket_create __user *arg);
struct qd_sock *qd_sock_get(struct qd_ctx *ctx, int qd);
int qd_sock_addr_copy(struct qd_cqe_addr *out, u64 uaddr, u32 len);
void qd_sock_kick(struct qd_sock *s);
struct qd_op *qd_sock_take(struct qd_sock *s, struct list_head *list);
void qd_sock_putback(struct qd_sock *s, struct list_head *list,
		     struct qd_op *op);
void qd_sock_done(struct qd_sock *s, struct list_head *list, struct qd_op *op,
		  s64 res);
void qd_sock_finish(struct qd_sock *s, struct qd_op *op, s64 res);
int qd_sock_enqueue(struct qd_sock *s, struct qd_op *op, enum qd_op_wait why,
		    struct list_head *list, u32 *nr);
int qd_sock_install(struct qd_ctx *ctx, struct socket *sock,
		    struct qd_sock *parent);
int qd_sock_init(void);
void qd_sock_exit(void);

/* sock_ctl.c */
int qd_sock_ioctl(struct qd_ctx *ctx, unsigned int cmd, void __user *arg);

/* sock_rx.c */
int qd_sock_pop(struct qd_object *obj, struct qd_op *op);
int qd_sock_prep_pop(struct qd_object *obj, struct qd_op *op);
void qd_sock_rx(struct qd_sock *s);
void qd_sock_rx_process(struct qd_sock *s);
int qd_sock_accept(struct qd_object *obj, struct qd_op *op);
void qd_sock_accept_run(struct qd_sock *s);
void qd_sock_rx_event(struct qd_sock *s, struct sock *sk);
void qd_sock_data_ready(struct sock *sk);
void qd_sock_pool_ready(struct qd_pool_waiter *w, bool live);

/* sock_tx.c */
int qd_sock_push(struct qd_object *obj, struct qd_op *op);
void qd_sock_tx(struct qd_sock *s);
void qd_sock_write_space(struct sock *sk);

#endif /* _QD_SOCK_H */
