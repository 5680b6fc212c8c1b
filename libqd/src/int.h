/* SPDX-License-Identifier: MIT */
/*
 * libqd's private state: the process's one context and its rings.
 *
 * Locks, always taken in this order:
 *   dfn_lock    callback-derived queues and their callbacks (derive_fn.c)
 *   init_lock   setting the context up, adding rings, handing them to
 *               threads (setup.c, rings.c, thread.c)
 *   ring lock   one ring's SQ tail, CQ head and token slots (rings.h);
 *               a thread holds at most one ring lock at a time
 *   alloc lock  the chunk table and the allocator (alloc.c)
 * All are taken in process context only. No lock is held across a system
 * call that sleeps.
 *
 * Both spin a little before they sleep: their critical sections are a
 * few loads and stores, and a plain mutex that two threads on different
 * CPUs take for every element sleeps and wakes in the kernel on most
 * acquisitions. The rare long holds (a full SQ's enter, registering a
 * region) just spin a little longer before they sleep. The ring lock is
 * libqd's own (lock.h: one atomic each way, inline); the alloc lock is an
 * adaptive pthread mutex, and the common push and pop skip it (alloc.c's
 * per-thread translation cache).
 */
#ifndef LIBQD_INT_H
#define LIBQD_INT_H

#include <pthread.h>
#include <stdint.h>

#include <linux/qd.h>

#include "qd.h"
#include "rings.h"

/* libqd's QD_SGA_MAX must be the kernel's. */
_Static_assert(sizeof(((struct qd_sga *)0)->segs) / sizeof(struct qd_sgaseg) ==
	       sizeof(struct qd_elem) / sizeof(struct qd_seg),
	       "QD_SGA_MAX differs between qd.h and linux/qd.h");

#define QD_DEFAULT_SQ_ENTRIES	256
#define QD_DEFAULT_CQ_ENTRIES	1024

struct qd_ctx {
	int			ready;		/* atomic; set up */
	int			fd;
	uint32_t		features;
	uint32_t		max_inflight;
	pthread_mutex_t		init_lock;
	/* the sizes asked for every ring (QD_SQ_ENTRIES, QD_CQ_ENTRIES) */
	struct qd_params	params;
	/* rings by id; each set once, with a release store (rings.c) */
	struct qd_ring		*rings[QD_MAX_RINGS];
	uint32_t		nrings;		/* atomic; rings set up */
	/* QD_IOC_RING failed for good: threads share; init_lock */
	int			rings_full;
	/* completions posted on any ring (ring 0's CQ), or NULL */
	uint32_t		*ctx_seq;
	/* QD_SQPOLL: a kernel poller consumes the SQs (rings.c) */
	int			sqpoll;
};

extern struct qd_ctx qd__ctx;

static inline int qd_ready(void)
{
	return __atomic_load_n(&qd__ctx.ready, __ATOMIC_ACQUIRE);
}

/* The ring with this id, or NULL. No lock needed. */
static inline struct qd_ring *qd__ring_get(uint32_t id)
{
	if (id >= QD_MAX_RINGS)
		return NULL;
	/* Pairs with the release in ring_publish() (rings.c). */
	return __atomic_load_n(&qd__ctx.rings[id], __ATOMIC_ACQUIRE);
}

/* qd_init() unless already done: the fast path is one load. */
static inline int qd_get(void)
{
	return qd_ready() ? 0 : qd_init();
}

/* A control ioctl on the context (setup.c), initialising it first. */
int qd__ctl(unsigned long req, void *arg);

/* thread.c */
void qd__thread_init(void);
/*
 * The calling thread's ring. initial-exec: one load from the thread
 * pointer, not a __tls_get_addr() call, on every push, pop and wait.
 */
extern __thread struct qd_ring *qd__mine
	__attribute__((tls_model("initial-exec")));
int qd__ring_mine_slow(struct qd_ring **out);

/* The calling thread's ring, set up or assigned on first use. */
static inline int qd__ring_mine(struct qd_ring **out)
{
	struct qd_ring *r = qd__mine;

	if (__builtin_expect(!!r, 1)) {
		*out = r;
		return 0;
	}
	return qd__ring_mine_slow(out);
}

/* The calling thread's ring, or NULL if it has none yet. */
static inline struct qd_ring *qd__ring_mine_peek(void)
{
	return qd__mine;
}
/* In a fork child: the forking thread has no ring any more. */
void qd__thread_forget(void);

/* submit.c */
/* Hand r's queued SQEs to the kernel, no wait: SQEs consumed or -errno. */
int qd__ring_submit(struct qd_ring *r);
/*
 * r's lazy pops (mq.h), r->lock held: serve them from their rings (the
 * number served), or hand them to the kernel (the number put into r's
 * SQ): all, or (before a wait sleeps) the oldest of each queue.
 */
int qd__ring_serve_lazy(struct qd_ring *r);
int qd__ring_convert_lazy(struct qd_ring *r, int all);
/* Free r's lazy-pop FIFOs (their pops are gone with the ring). */
void qd__lazy_fini(struct qd_ring *r);
/*
 * If r's SQ holds a QD_OP_WAKE its fast path queued (mq.h), submit: a wait
 * for a push that completed in user space makes sure a popper asleep in
 * the kernel hears of it.
 */
void qd__ring_send_wakes(struct qd_ring *r);
/* SQEs queued in r's SQ. */
uint32_t qd__ring_queued(struct qd_ring *r);

/*
 * rings.c: hand n SQEs published in r's SQ to the kernel, no wait. With a
 * poller (QD_SQPOLL) that is no system call unless it sleeps; returns n
 * then, else the SQEs QD_IOC_ENTER consumed, or -errno.
 */
int qd__ring_kick(struct qd_ring *r, uint32_t n);
/* The same, but consumed by the kernel when it returns (before a close). */
int qd__ring_flush(struct qd_ring *r);

/*
 * Queue a socket or storage operation on the calling thread's ring
 * (sock.c, file.c): tmpl with segs (a push's element or a pop's buffer,
 * tmpl->nsegs of them); sga is kept in the token slot (a push's buffers
 * for its result; the buffer of a pop, which libqd frees itself if the pop
 * yields nothing when own_buf is QD_SOCKBUF_OWN);
 * sa/salen, if any, is copied into the slot, where the kernel reads it
 * (addr2) when it takes the SQE.
 */
int qd__submit_ext(qd_token_t *qt_out, const struct qd_sqe *tmpl,
		    const struct qd_sga *sga, const struct qd_seg *segs,
		    int own_buf, const void *sa, uint32_t salen);

/* sock.c: which qds are sockets (0, SOCK_STREAM, SOCK_DGRAM). */
#define QD_SOCK_RECV_SIZE	65536	/* qd_pop()'s buffer on a socket */
int qd__sock_kind(int qd);
void qd__sock_set(int qd, int kind);
void qd__sock_forget_all(void);
/* max_segs: pool buffers the pop may take (0: QD_SGA_MAX). */
int qd__sock_pop(qd_token_t *qt_out, int qd, unsigned int max_segs);
int qd__sock_pop_multi(qd_token_t *qt_out, int qd);

/*
 * file.c: which qds are storage queues; a storage pop into buf, or into a
 * buffer of QD_FILE_POP_SIZE bytes from the allocator (buf NULL).
 */
int qd__file_is(int qd);
void qd__file_set(int qd, int on);
void qd__file_forget_all(void);
int qd__file_pop(qd_token_t *qt_out, int qd, const struct qd_sga *buf,
		 uint32_t op_flags, uint64_t off);

/*
 * pool.c: the buffer pools socket pops take from (QD_POP_POOL). A slot's
 * sockbuf says where a socket or storage pop's buffer came from.
 */
#define QD_POOL_STREAM		0	/* the kernel's buf_group */
#define QD_POOL_DGRAM		1
#define QD_POOLS		2
#define QD_SOCKBUF_OWN		1	/* usegs[0]: libqd's, freed if unused */
#define QD_SOCKBUF_POOL		2	/* + group: the pool's buffers */
int qd__pool_for(int kind);
int qd__pool_stock(int g);
int qd__pool_stock_all(void);
void qd__pool_back(int g, unsigned int n);
void qd__pool_forget(void);
/* submit.c: QD_OP_PROVIDE n buffers into group g, no token. */
int qd__submit_provide(const struct qd_seg *segs, uint32_t n, uint32_t g);

/* next.c: results in completion order for qd_wait_next(); r->lock held. */
void qd__next_note(struct qd_ring *r, struct qd_slot *s);
void qd__next_start(struct qd_ring *r);
struct qd_slot *qd__next_find(struct qd_ring *r, uint64_t *qt);
void qd__next_free(struct qd_ring *r);

/* wait.c: empty r's CQ into its slots; r->lock held. */
int qd__ring_reap(struct qd_ring *r);

/*
 * derive_fn.c: callback-derived queues (qd_filter_fn(), qd_sort_fn()).
 * An element libqd popped from a family's source, held for a pop.
 */
struct qd_delem {
	struct qd_delem		*next;
	int64_t			ret;
	struct qd_sga		sga;
};
#define QD_DFN_NOT	1	/* not a qd of a callback-derived family */
/* Whether any family exists (one load): the hooks cost nothing before. */
extern uint32_t qd__dfn_nodes;
static inline int qd__dfn_active(void)
{
	return !!__atomic_load_n(&qd__dfn_nodes, __ATOMIC_ACQUIRE);
}
/* What qd is: 0 (nothing of ours), a root (a source), a derived queue. */
#define QD_DFN_ROOT	1
#define QD_DFN_DERIVED	2
int qd__dfn_is(int qd);
/* qd_pop() on a family's qd: 0, -errno, or QD_DFN_NOT. */
int qd__dfn_pop(qd_token_t *qt_out, int qd);
/* Where a push to qd goes: 0 (*target), -EOPNOTSUPP (a sort), -EPIPE. */
int qd__dfn_push_target(int qd, int *target);
/* qd_cancel() of the pending dfn pop qt on qd. */
int qd__dfn_cancel(qd_token_t qt, int qd);
/*
 * qd_close(): a derived queue is closed here (0 or -errno); for a root
 * or any other qd QD_DFN_NOT, and *pump the root's pop, if one was
 * outstanding, for the caller to reap after closing the qd.
 */
int qd__dfn_close(int qd, qd_token_t *pump);
/* The waits: start the pumps that are wanted; their tokens (up to max). */
int qd__dfn_pumps(qd_token_t *out, int max);
/* A pump's result, taken by a wait: route it (held for the next serve). */
void qd__dfn_pumped(qd_token_t qt, const struct qd_result *qr);
/*
 * Pending pops take what their queues hold, each family's root drained
 * first (what it has now, routed): how many pops were served.
 */
int qd__dfn_serve(void);
/*
 * wait.c: the result of the (non-dfn) token qt if it is there, without
 * sleeping: 1 (in *qr), 0 not yet, -EINVAL (gone: another thread took
 * it). Called with dfn_lock held: takes only ring locks and may enter the
 * kernel without waiting.
 */
int qd__dfn_poll(qd_token_t qt, struct qd_result *qr);
/*
 * submit.c: a pop of the mapped queue qd from its ring, in user space, as
 * qd_pop() would make it: 1 (the result in *qr), 0 the ring is empty,
 * -EAGAIN the kernel must take it (not a mapped queue of this process,
 * shared, pops parked in the kernel, this thread's operations still
 * queued). Takes only the calling thread's ring lock and the allocator's.
 */
int qd__mq_pop_now(int qd, struct qd_result *qr);
/* The calling thread enters (1) or leaves (0) a wait for dfn pops. */
void qd__dfn_waiting(int on);
void qd__dfn_forget_all(void);
/*
 * submit.c: a pop straight to the kernel (no lazy form, no interception),
 * its slot hidden from qd_wait_next() (qd__hidden, set while it is made).
 */
extern __thread uint8_t qd__hidden;
int qd__pop_raw(qd_token_t *qt_out, int qd);
/* submit.c: a NOP without a token into r's SQ, submitted: its CQE wakes. */
void qd__ring_nop(struct qd_ring *r);

/* alloc.c */
int qd__alloc_translate(const struct qd_sga *sga, struct qd_seg *segs);
int qd__alloc_resolve(const struct qd_seg *segs, unsigned int n,
		      struct qd_sga *sga);
/* Free the live qd_sgaalloc() buffers among segs; the others stay. */
void qd__alloc_free_segs(const struct qd_seg *segs, unsigned int n);
void qd__alloc_lock(void);
void qd__alloc_unlock(void);
void qd__alloc_forget(void);

#endif
