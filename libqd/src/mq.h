/* SPDX-License-Identifier: MIT */
/*
 * Mapped memory queues: the user-space fast path (QD_QUEUE_MAPPED).
 *
 * qd_queue() makes its queues mapped when the kernel can: their elements
 * live in a descriptor ring mapped into the process (protocol in
 * kmod/common/qd_mq.h, the kernel's own code), so a push or a pop is a
 * compare-and-swap and a few stores, and completes at once in user space.
 * The kernel is needed only to sleep and to wake: a pop that finds the
 * ring empty (or a push that finds it full) is submitted as usual and the
 * kernel parks it, advertising it in the ring's waiters word; a thread
 * whose push (pop) then gets through the ring while pops (pushes) are
 * parked queues a QD_OP_WAKE in its SQ (one per queue until the kernel has
 * it), sent like any queued operation: by the thread's next wait that has
 * to sleep or poll, qd_submit(), qd_close(), or a full SQ. A pop on a mapped
 * queue whose ring is empty is not even submitted at once: it stays "lazy"
 * in the thread's ring, is served from the queue's ring by the next wait,
 * and goes to the kernel only when that wait would sleep.
 *
 * Shared mapped queues (QD_QUEUE_SHARED: qd_queue_shareable(), and
 * qd_queue_import() of one with both rights) map the same ring into every
 * process that holds them. Their descriptors name the queue's bindings,
 * not regions: a push translates each region to its binding (bound once
 * per region with QD_IOC_QUEUE_BIND), a pop each binding to a region of
 * this process over the same shared memory (looked up once per binding
 * with QD_BIND_LOOKUP). A pop whose element lies in memory this process
 * cannot see is left in the ring for the kernel, which copies it into a
 * buffer the pop brought (qd_pop_into()) or fails it with -EXDEV.
 */
#ifndef LIBQD_MQ_H
#define LIBQD_MQ_H

#include <stdint.h>

#include <linux/qd.h>

/* What this process knows of a binding of a shared queue (look[]). */
enum {
	QD_MQ_LK_UNKNOWN = 0,
	QD_MQ_LK_MINE,		/* region, base: where it lies here */
	QD_MQ_LK_FOREIGN,	/* not here, as of regions == gen */
};

struct qd_mq_look {
	uint32_t		state;	/* QD_MQ_LK_*, stored last (release) */
	uint32_t		region;
	uint64_t		base;	/* MINE: offset of its byte 0 in region */
	uint64_t		gen;	/* FOREIGN: qd__cnt.regions then */
};

struct qd_mq {
	struct qd_mq_hdr	*h;
	uint32_t		mask;
	size_t			bytes;
	int			qd;
	int			shared;		/* QD_QUEUE_SHARED */
	/*
	 * shared: region id -> binding + 1 (0: not bound yet), and what each
	 * binding is here. Filled by whichever thread asks first, with the
	 * same answer for all: atomic stores, no lock.
	 */
	uint8_t			bind_of[QD_MAX_REGIONS];
	struct qd_mq_look	look[QD_MQ_MAX_BINDINGS];
	/* shared: head + 1 when the head element is not in our memory */
	uint32_t		xdev;
};

/*
 * qd -> struct qd_mq *, in blocks of 256 allocated on first use and never
 * freed: readers load two pointers, no lock. Writers (create, close,
 * fork) hold mq.c's lock.
 */
#define QD_MQ_BLOCK_SHIFT	8
#define QD_MQ_BLOCK		(1u << QD_MQ_BLOCK_SHIFT)
#define QD_MQ_BLOCKS		(65536u / QD_MQ_BLOCK)

extern struct qd_mq **qd__mq_tab[QD_MQ_BLOCKS];

/* The mapped queue qd names in this process, or NULL. Lock-free. */
static inline struct qd_mq *qd__mq_get(int qd)
{
	struct qd_mq **b;

	if (qd < 0 || (unsigned int)qd >= QD_MQ_BLOCKS * QD_MQ_BLOCK)
		return NULL;
	b = __atomic_load_n(&qd__mq_tab[qd >> QD_MQ_BLOCK_SHIFT],
			    __ATOMIC_ACQUIRE);
	if (!b)
		return NULL;
	return __atomic_load_n(&b[qd & (QD_MQ_BLOCK - 1)], __ATOMIC_ACQUIRE);
}

/* The ring's waiters word (QD_MQ_*), as the kernel last wrote it. */
static inline uint32_t qd__mq_waiters(const struct qd_mq *m)
{
	return __atomic_load_n(&m->h->waiters, __ATOMIC_ACQUIRE);
}

/*
 * Whether a pop still in user space may sleep on m (QD_ENTER_MQ_POP):
 * not when pops are parked in the kernel (they go first), nor when the
 * oldest element is one only the kernel can hand over (shared queues).
 */
static inline int qd__mq_sleepable(const struct qd_mq *m)
{
	if (qd__mq_waiters(m) & QD_MQ_POP_WAITERS)
		return 0;
	return !m->shared ||
	       __atomic_load_n(&m->xdev, __ATOMIC_RELAXED) !=
	       __atomic_load_n(&m->h->head, __ATOMIC_RELAXED) + 1;
}

/*
 * Create a queue: mapped when the kernel has QD_FEAT_MAPPED_QUEUE (and
 * QD_MEMQ_KERNEL is not set in the environment), else, or when the
 * context's ring memory is used up, an ordinary one.
 */
int qd__mq_create(int fd, uint32_t features, int *qd_out);

/*
 * A shared queue (qd_queue_shareable()): mapped when the kernel has
 * QD_FEAT_SHARED_MAPPED (and QD_MEMQ_KERNEL is not set), else ordinary.
 */
int qd__mq_create_shared(int fd, uint32_t features, int *qd_out);

/*
 * After QD_IOC_QUEUE_IMPORT: map the queue's ring when the kernel offered
 * it (im->map_bytes; both rights). A failure leaves the qd on the kernel
 * path.
 */
void qd__mq_import(int fd, uint32_t features,
		   const struct qd_queue_import *im);

/* qd was closed: stop using its ring and unmap it. */
void qd__mq_forget(int qd);

/* In a fork child: the mappings were not inherited. */
void qd__mq_forget_all(void);

/*
 * Push through the ring: 0 (and *wake if parked pops must be woken), or
 * -EAGAIN when the kernel must take it (ring full, pushes parked, or
 * QD_MQ_PUSH_KERNEL: the queue has derived queues, which the kernel feeds).
 */
int qd__mq_push(struct qd_mq *m, const struct qd_seg *segs, unsigned int n,
		int *wake);

/*
 * Pop through the ring: 0 with the element in segs/n (and *wake if parked
 * pushes must be woken), or -EAGAIN when the kernel must take it (ring
 * empty, pops parked, or, shared, an element in memory this process has
 * not registered: see qd__mq_sleepable()).
 */
int qd__mq_pop(struct qd_mq *m, struct qd_seg *segs, unsigned int *n,
	       int *wake);

#endif
