/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_OP_H
#define _QD_OP_H

#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/rbtree.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/qd.h>

#include "rings.h"

struct qd_ctx;
struct qd_object;
struct qd_region;
struct qd_zc;
struct bio_vec;

/*
 * An element in flight: what one push carries and one pop yields. Charged
 * to its context's and user's element bounds from allocation to free.
 */
struct qd_kelem {
	struct list_head node;		/* in a queue */
	struct qd_ctx *ctx;		/* charged, referenced: the pusher's */
	struct qd_parked park;		/* delivered by a multishot pop, parked */
	u64 user_data;			/* parked: the pop's */
	s32 qd;				/* parked: the pop's */
	u32 cqe_flags;			/* delivered: besides QD_CQE_F_MORE */
	u32 nsegs;
	bool whole;			/* all segments resolved (a push's prep) */
	u64 bytes;
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_region *regions[QD_SGA_MAX];	/* one reference each */
	/* In a derived queue (derive.c), under its lock: */
	struct rb_node drb;		/* a sort's tree, instead of node */
	u64 dkey;			/* sort: the key (dkeyed) */
	u64 dseq;			/* sort: arrival order */
	bool dkeyed;			/* sort: long enough for the key */
	u8 din;				/* merge: the source it came from */
};

/* Why an op waits inside a backend (see qd_op_wait()). */
enum qd_op_wait {
	QD_OP_RUNNING = 0,
	QD_OP_WAIT_PUSH,	/* a push waiting for room: a pop completes it */
	QD_OP_WAIT_POP,		/* a pop waiting for an element: a push does */
};

/* One submitted operation, from its SQE until its CQE is in the ring. */
struct qd_op {
	struct list_head node;		/* pending list of its object */
	struct qd_parked park;		/* in its ring's overflow list */
	struct qd_ctx *ctx;		/* holds a context reference */
	struct qd_ring *ring;		/* completes here; lives as long as ctx */
	struct qd_object *obj;		/* target, referenced; NULL for nop */
	struct qd_kelem *elem;		/* push: to enqueue; pop: what it got */
	struct qd_kelem *dst;		/* pop with a buffer: where a copy goes */
	u64 user_data;
	s64 res;
	s32 qd;
	u8 opcode;
	u8 sqe_flags;			/* QD_SQE_F_* */
	u8 wait;			/* enum qd_op_wait */
	u8 wait_charged;		/* the wait holds an element charge */
	u8 copy;			/* pop: elem must be copied into dst */
	u8 cqe_flags;			/* QD_CQE_F_ADDR, _TRUNC (sockets) */
	u8 pool_group;			/* PROVIDE, POP with QD_POP_POOL */
	u8 pool_max;			/* POP with QD_POP_POOL: buffers at most */
	u32 op_flags;			/* sqe->op_flags, checked by the opdef */
	union {				/* per-opcode state, from prep */
		struct {
			u64 delay_ns;
			u32 flags;
		} nop;
		u64 cancel_data;	/* CANCEL: user_data of its target */
		struct {		/* sockets (sock*.c) */
			/* CONNECT, PUSHTO: the peer; POP, ACCEPT: whence */
			struct qd_cqe_addr addr;
			u64 done;	/* PUSH, POP: bytes moved so far */
			bool starved;	/* POP: bytes wait, the pool is empty */
			struct qd_zc *zc; /* PUSH sent zero-copy (sock_zc.c) */
		} sock;
		struct {		/* OPEN (fileop.c), from prep */
			u64 path;	/* user pointer */
			u32 flags;
			u32 mode;
		} open;
		struct {		/* PUSH, POP, SYNC on storage (file*.c) */
			struct kiocb iocb;
			struct work_struct work;	/* in the worker */
			struct bio_vec *bvecs;	/* several segments: built */
			loff_t pos;	/* _AT: from the SQE; else assigned */
			u64 len;	/* bytes asked: what the offset took */
			u64 max;	/* bytes tried (device end, FSIZE) */
			atomic_t pending; /* bio path: bios in flight, + 1 */
			int err;	/* bio path: the first error */
			bool write;
			bool queue_pos;	/* took the queue's offset */
		} file;
	};
};

struct qd_op *qd_op_alloc(struct qd_ring *ring);
void qd_op_free(struct qd_op *op);
void qd_op_complete(struct qd_op *op, s64 res);
void qd_op_deliver(struct qd_op *op, struct qd_kelem *elem);
int qd_op_wait(struct qd_op *op, enum qd_op_wait why);
void qd_op_unwait(struct qd_op *op);
int qd_op_target(struct qd_op *op);

struct qd_kelem *qd_elem_alloc(struct qd_ctx *ctx, int *err);
struct qd_kelem *qd_elem_alloc_gfp(struct qd_ctx *ctx, gfp_t gfp, int *err);
void qd_elem_free(struct qd_kelem *elem);
int qd_elem_translate(struct qd_kelem *elem, struct qd_ctx *ctx);
int qd_elem_build(struct qd_ctx *ctx, u64 addr, u32 nsegs,
		  struct qd_kelem **out);
void qd_elem_copy(const struct qd_kelem *src, struct qd_kelem *dst);
void qd_elem_trim(struct qd_kelem *e, u64 n);
int qd_elem_read(const void *e, u32 off, void *buf, u32 len);

int qd_op_init(void);
void qd_op_exit(void);

struct qd_op *qd_op_find(struct list_head *list, struct qd_ctx *ctx,
			 u64 user_data);

#endif /* _QD_OP_H */
