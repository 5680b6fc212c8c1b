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

int qd__mq_create(int fd, uint32_t features, int *qd_out)
{
	struct qd_queue_create c = { .flags = QD_QUEUE_MAPPED };
	struct qd_mq *m;
	int ret, err = 0;
	void *p;

	if (!mq_wanted(features))
		return qd__queue_create(fd, 0, qd_out);
	ret = qd__queue_create_ex(fd, &c);
	if (ret == -ENOBUFS)	/* ring memory used up: a queue still */
		return qd__queue_create(fd, 0, qd_out);
	if (ret)
		return ret;
	m = calloc(1, sizeof(*m));
	p = m ? qd__mmap_ring(fd, c.map_bytes, c.map_off, &err) : MAP_FAILED;
	if (p == MAP_FAILED) {
		free(m);
		qd__close_qd(fd, c.qd);
		return m ? err : -ENOMEM;
	}
	m->h = p;
	m->mask = m->h->mask;
	m->bytes = c.map_bytes;
	/* The kernel's mask must fit the mapping it gave us. */
	if (m->h->entries != m->mask + 1 ||
	    qd_mq_bytes(m->h->entries) > m->bytes) {
		ret = -EINVAL;
		goto err;
	}
	pthread_mutex_lock(&mq_lock);
	ret = mq_publish(c.qd, m);
	pthread_mutex_unlock(&mq_lock);
	if (ret)
		goto err;
	*qd_out = c.qd;
	return 0;
err:
	qd__munmap_ring(p, c.map_bytes);
	free(m);
	qd__close_qd(fd, c.qd);
	return ret;
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


int qd__mq_push(struct qd_mq *m, const struct qd_seg *segs, unsigned int n,
		int *wake)
{
	/* Pushes parked in the kernel go first. */
	if (qd__mq_waiters(m) & QD_MQ_PUSH_WAITERS)
		return -EAGAIN;
	if (qd_mq_produce(m->h, m->mask, segs, (uint16_t)n, MQ_TRIES) !=
	    QD_MQ_OK)
		return -EAGAIN;
	/* Published, then look for sleepers: pairs with the kernel's smp_mb. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*wake = !!(qd__mq_waiters(m) & (QD_MQ_POP_WAITERS | QD_MQ_POP_SLEEPERS));
	return 0;
}

int qd__mq_pop(struct qd_mq *m, struct qd_seg *segs, unsigned int *n,
	       int *wake)
{
	uint16_t got;

	/* Pops parked in the kernel go first. */
	if (qd__mq_waiters(m) & QD_MQ_POP_WAITERS)
		return -EAGAIN;
	if (qd_mq_consume(m->h, m->mask, segs, &got, MQ_TRIES) != QD_MQ_OK)
		return -EAGAIN;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*wake = !!(qd__mq_waiters(m) & QD_MQ_PUSH_WAITERS);
	/* What another thread wrote: resolving it checks it (wait.c). */
	*n = got <= QD_SGA_MAX ? got : 0;
	return 0;
}
