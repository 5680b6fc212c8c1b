// SPDX-License-Identifier: MIT
/* Mapped memory queues, the user-space fast path (see mq.h). */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "int.h"
#include "mq.h"
#include "syscall.h"

static inline int mq_cas(uint32_t *p, uint32_t old, uint32_t new)
{
	return __atomic_compare_exchange_n(p, &old, new, 0, __ATOMIC_SEQ_CST,
					   __ATOMIC_RELAXED);
}

#define QD_MQ_LOAD(p)			__atomic_load_n((p), __ATOMIC_RELAXED)
#define QD_MQ_LOAD_ACQUIRE(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define QD_MQ_STORE_RELEASE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define QD_MQ_CAS(p, o, n)		mq_cas((p), (o), (n))
#include "qd_mq.h"

/* Lost races before giving the operation to the kernel instead. */
#define MQ_TRIES	1024

/* See mq.h; writers hold mq_lock. */
struct qd_mq **qd__mq_tab[QD_MQ_BLOCKS];
static pthread_mutex_t mq_lock = PTHREAD_MUTEX_INITIALIZER;

/* Called with mq_lock held. */
static int mq_publish(int qd, struct qd_mq *m)
{
	struct qd_mq **b;

	if (qd < 0 || (unsigned int)qd >= QD_MQ_BLOCKS * QD_MQ_BLOCK)
		return -EINVAL;
	b = qd__mq_tab[qd >> QD_MQ_BLOCK_SHIFT];
	if (!b) {
		b = calloc(QD_MQ_BLOCK, sizeof(*b));
		if (!b)
			return -ENOMEM;
		__atomic_store_n(&qd__mq_tab[qd >> QD_MQ_BLOCK_SHIFT], b,
				 __ATOMIC_RELEASE);
	}
	__atomic_store_n(&b[qd & (QD_MQ_BLOCK - 1)], m, __ATOMIC_RELEASE);
	return 0;
}

static int mq_wanted(uint32_t features)
{
	const char *e = getenv("QD_MEMQ_KERNEL");

	return (features & QD_FEAT_MAPPED_QUEUE) && !(e && *e && *e != '0');
}

/* Map qd's ring (bytes at off) and publish it: 0 or -errno. */
static int mq_attach(int fd, int qd, uint32_t bytes, uint64_t off,
		     int shared)
{
	struct qd_mq *m;
	int ret, err = 0;
	void *p;

	m = calloc(1, sizeof(*m));
	p = m ? qd__mmap_ring(fd, bytes, off, &err) : MAP_FAILED;
	if (p == MAP_FAILED) {
		free(m);
		return m ? err : -ENOMEM;
	}
	m->h = p;
	m->mask = m->h->mask;
	m->bytes = bytes;
	m->qd = qd;
	m->shared = shared;
	/* The kernel's mask must fit the mapping it gave us. */
	if (m->h->entries != m->mask + 1 ||
	    qd_mq_bytes(m->h->entries) > m->bytes) {
		ret = -EINVAL;
		goto err;
	}
	pthread_mutex_lock(&mq_lock);
	ret = mq_publish(qd, m);
	pthread_mutex_unlock(&mq_lock);
	if (!ret)
		return 0;
err:
	qd__munmap_ring(p, bytes);
	free(m);
	return ret;
}

static int mq_create(int fd, uint32_t flags, int *qd_out)
{
	struct qd_queue_create c = { .flags = flags };
	int ret;

	ret = qd__queue_create_ex(fd, &c);
	if (ret == -ENOBUFS)	/* ring memory used up: a queue still */
		return qd__queue_create(fd, 0, qd_out);
	if (ret)
		return ret;
	ret = mq_attach(fd, c.qd, c.map_bytes, c.map_off,
			!!(flags & QD_QUEUE_SHARED));
	if (ret) {
		qd__close_qd(fd, c.qd);
		return ret;
	}
	*qd_out = c.qd;
	return 0;
}

int qd__mq_create(int fd, uint32_t features, int *qd_out)
{
	if (!mq_wanted(features))
		return qd__queue_create(fd, 0, qd_out);
	return mq_create(fd, QD_QUEUE_MAPPED, qd_out);
}

int qd__mq_create_shared(int fd, uint32_t features, int *qd_out)
{
	if (!mq_wanted(features) || !(features & QD_FEAT_SHARED_MAPPED))
		return qd__queue_create(fd, 0, qd_out);
	return mq_create(fd, QD_QUEUE_MAPPED | QD_QUEUE_SHARED, qd_out);
}

void qd__mq_import(int fd, uint32_t features,
		   const struct qd_queue_import *im)
{
	if (im->map_bytes && mq_wanted(features))
		mq_attach(fd, im->qd, im->map_bytes, im->map_off, 1);
}

/*
 * After the kernel closed qd. A thread still pushing or popping on it at
 * this very moment is a use after close (as for any descriptor): it is not
 * guarded against.
 */
void qd__mq_forget(int qd)
{
	struct qd_mq *m;

	pthread_mutex_lock(&mq_lock);
	m = qd__mq_get(qd);
	if (m)
		mq_publish(qd, NULL);
	pthread_mutex_unlock(&mq_lock);
	if (m) {
		qd__munmap_ring(m->h, m->bytes);
		free(m);
	}
}

void qd__mq_forget_all(void)
{
	unsigned int i, j;

	for (i = 0; i < QD_MQ_BLOCKS; i++) {
		if (!qd__mq_tab[i])
			continue;
		for (j = 0; j < QD_MQ_BLOCK; j++) {
			free(qd__mq_tab[i][j]);
			qd__mq_tab[i][j] = NULL;
		}
	}
}


/*
 * A shared queue: segs (this process's regions) as the queue's bindings,
 * into out. Each region is bound once (a system call the first time).
 */
static int mq_to_bindings(struct qd_mq *m, const struct qd_seg *segs,
			  unsigned int n, struct qd_seg *out)
{
	struct qd_queue_bind b = { .qd = m->qd };
	unsigned int i, ix;

	for (i = 0; i < n; i++) {
		if (segs[i].region >= QD_MAX_REGIONS)
			return -EINVAL;
		ix = __atomic_load_n(&m->bind_of[segs[i].region],
				     __ATOMIC_RELAXED);
		if (!ix) {
			b.region = segs[i].region;
			b.index = 0;
			if (qd__ioctl(qd__ctx.fd, QD_IOC_QUEUE_BIND, &b) ||
			    b.index >= QD_MQ_MAX_BINDINGS)
				return -EAGAIN;
			ix = b.index + 1;
			__atomic_store_n(&m->bind_of[segs[i].region],
					 (uint8_t)ix, __ATOMIC_RELAXED);
		}
		out[i] = segs[i];
		out[i].region = (uint16_t)(ix - 1);
	}
	return 0;
}

int qd__mq_push(struct qd_mq *m, const struct qd_seg *segs, unsigned int n,
		int *wake)
{
	struct qd_seg bsegs[QD_SGA_MAX];

	/*
	 * Pushes parked in the kernel go first; while the queue has derived
	 * queues every arrival goes through the kernel, which routes it.
	 */
	if (qd__mq_waiters(m) & (QD_MQ_PUSH_WAITERS | QD_MQ_PUSH_KERNEL))
		return -EAGAIN;
	if (m->shared) {
		if (n > QD_SGA_MAX || mq_to_bindings(m, segs, n, bsegs))
			return -EAGAIN;		/* the kernel binds or fails */
		segs = bsegs;
	}
	if (qd_mq_produce(m->h, m->mask, segs, (uint16_t)n, MQ_TRIES) !=
	    QD_MQ_OK)
		return -EAGAIN;
	/* Published, then look for sleepers: pairs with the kernel's smp_mb. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*wake = !!(qd__mq_waiters(m) & (QD_MQ_POP_WAITERS | QD_MQ_POP_SLEEPERS));
	return 0;
}

/*
 * What binding ix of a shared queue is in this process: QD_MQ_LK_MINE
 * (*lk filled), QD_MQ_LK_FOREIGN, or -1 for no such binding. Asked of the
 * kernel once (again for a foreign one after a region was registered).
 */
static int mq_look(struct qd_mq *m, uint32_t ix, struct qd_mq_look *lk)
{
	struct qd_queue_bind b = { .qd = m->qd, .flags = QD_BIND_LOOKUP };
	struct qd_mq_look *l = &m->look[ix];
	uint64_t gen = qd_counted(&qd__cnt.regions);
	int ret;

	switch (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE)) {
	case QD_MQ_LK_MINE:
		lk->region = __atomic_load_n(&l->region, __ATOMIC_RELAXED);
		lk->base = __atomic_load_n(&l->base, __ATOMIC_RELAXED);
		return QD_MQ_LK_MINE;
	case QD_MQ_LK_FOREIGN:
		if (__atomic_load_n(&l->gen, __ATOMIC_RELAXED) == gen)
			return QD_MQ_LK_FOREIGN;
		break;
	}
	b.index = ix;
	ret = qd__ioctl(qd__ctx.fd, QD_IOC_QUEUE_BIND, &b);
	if (ret == -ENOENT || ret == -EINVAL)
		return -1;
	if (ret) {
		/* -EXDEV, or anything else: let the kernel take it. */
		__atomic_store_n(&l->gen, gen, __ATOMIC_RELAXED);
		__atomic_store_n(&l->state, QD_MQ_LK_FOREIGN,
				 __ATOMIC_RELEASE);
		return QD_MQ_LK_FOREIGN;
	}
	__atomic_store_n(&l->region, b.region, __ATOMIC_RELAXED);
	__atomic_store_n(&l->base, b.offset, __ATOMIC_RELAXED);
	__atomic_store_n(&l->state, QD_MQ_LK_MINE, __ATOMIC_RELEASE);
	lk->region = b.region;
	lk->base = b.offset;
	return QD_MQ_LK_MINE;
}

/*
 * Bindings to this process's regions, in place: 1, 0 for an element only
 * the kernel can hand over, -1 for garbage.
 */
static int mq_from_bindings(struct qd_mq *m, struct qd_seg *segs,
			    unsigned int n)
{
	struct qd_mq_look lk;
	unsigned int i;
	int ret;

	if (!n || n > QD_SGA_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (segs[i].region >= QD_MQ_MAX_BINDINGS)
			return -1;
		ret = mq_look(m, segs[i].region, &lk);
		if (ret != QD_MQ_LK_MINE)
			return ret == QD_MQ_LK_FOREIGN ? 0 : -1;
		if (segs[i].offset + lk.base < segs[i].offset)
			return -1;
		segs[i].region = (uint16_t)lk.region;
		segs[i].offset += lk.base;
	}
	return 1;
}

/*
 * Take the oldest element of a shared ring if it is in our memory: look
 * at it, translate it, then claim it (or look again: another consumer
 * was faster). An element elsewhere stays for the kernel.
 */
static int mq_pop_shared(struct qd_mq *m, struct qd_seg *segs,
			 uint16_t *got)
{
	unsigned int tries;
	uint32_t pos;
	int ret;

	for (tries = 0; tries < MQ_TRIES; tries++) {
		ret = qd_mq_peek(m->h, m->mask, segs, got, &pos);
		if (ret == QD_MQ_EMPTY)
			return -EAGAIN;
		if (ret != QD_MQ_OK)
			continue;
		ret = mq_from_bindings(m, segs, *got);
		if (!ret) {
			__atomic_store_n(&m->xdev, pos + 1, __ATOMIC_RELAXED);
			return -EAGAIN;
		}
		if (ret < 0)
			*got = 0;	/* garbage: consumed, -EBADMSG */
		if (qd_mq_claim(m->h, m->mask, pos))
			return 0;
	}
	return -EAGAIN;
}

int qd__mq_pop(struct qd_mq *m, struct qd_seg *segs, unsigned int *n,
	       int *wake)
{
	uint16_t got;

	/* Pops parked in the kernel go first. */
	if (qd__mq_waiters(m) & QD_MQ_POP_WAITERS)
		return -EAGAIN;
	if (m->shared) {
		if (mq_pop_shared(m, segs, &got))
			return -EAGAIN;
	} else if (qd_mq_consume(m->h, m->mask, segs, &got, MQ_TRIES) !=
		   QD_MQ_OK) {
		return -EAGAIN;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*wake = !!(qd__mq_waiters(m) & QD_MQ_PUSH_WAITERS);
	/* What another thread wrote: resolving it checks it (wait.c). */
	*n = got <= QD_SGA_MAX ? got : 0;
	return 0;
}
