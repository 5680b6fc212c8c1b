// SPDX-License-Identifier: MIT
/*
 * The context: open /dev/qd, QD_IOC_SETUP, map the rings; forget it all in
 * a child of fork(), which the kernel would refuse with -EPERM anyway.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "int.h"
#include "syscall.h"

struct qd_ctx qd__ctx = {
	.fd = -1,
	.sq_lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
	.cq_lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
};

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* A ring size from the environment: 1 if set, 0 (*val untouched) if not. */
static int env_entries(const char *name, uint32_t *val)
{
	const char *s = getenv(name);
	unsigned long v;
	char *end;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*val = (uint32_t)v;
	return 1;
}

static int ctx_params(struct qd_params *p)
{
	uint32_t sq = QD_DEFAULT_SQ_ENTRIES, cq = 0;
	int sq_set, cq_set;

	sq_set = env_entries("QD_SQ_ENTRIES", &sq);
	cq_set = env_entries("QD_CQ_ENTRIES", &cq);
	if (sq_set < 0 || cq_set < 0)
		return -EINVAL;
	if (!cq_set) {
		cq = QD_DEFAULT_CQ_ENTRIES;
		if (sq > QD_MAX_CQ_ENTRIES / 2)
			cq = QD_MAX_CQ_ENTRIES;
		else if (cq < 2 * sq)
			cq = 2 * sq;
	} else if (!sq_set && sq > cq) {
		/* Only the CQ was sized: keep the default SQ within it. */
		sq = cq;
	}
	*p = (struct qd_params){ .sq_entries = sq, .cq_entries = cq };
	return 0;
}

static int ctx_open(struct qd_ctx *c)
{
	struct qd_params p;
	int ret, err = 0;

	ret = ctx_params(&p);
	if (ret)
		return ret;
	c->fd = qd__open();
	if (c->fd < 0) {
		ret = c->fd;
		goto err_out;
	}
	ret = qd__setup(c->fd, &p);
	if (ret < 0)
		goto err_close;
	ret = -EOPNOTSUPP;
	if ((p.features & (QD_FEAT_CQ_ELEMS | QD_FEAT_REGIONS)) !=
	    (QD_FEAT_CQ_ELEMS | QD_FEAT_REGIONS))
		goto err_close;

	c->sq_bytes = p.sq_ring_bytes;
	c->sq_map = qd__mmap_ring(c->fd, c->sq_bytes, QD_OFF_SQ_RING, &err);
	if (c->sq_map == MAP_FAILED) {
		ret = err;
		goto err_close;
	}
	c->cq_bytes = p.cq_ring_bytes;
	c->cq_map = qd__mmap_ring(c->fd, c->cq_bytes, QD_OFF_CQ_RING, &err);
	if (c->cq_map == MAP_FAILED) {
		ret = err;
		goto err_unmap_sq;
	}
	ret = qd__rings_init(&c->sq, &c->cq, c->sq_map, c->sq_bytes,
			     c->cq_map, c->cq_bytes, &p);
	if (ret)
		goto err_unmap_cq;

	c->features = p.features;
	c->max_inflight = p.max_inflight;
	c->kernel_waiters = 0;
	__atomic_store_n(&c->ready, 1, __ATOMIC_RELEASE);
	return 0;

err_unmap_cq:
	qd__munmap_ring(c->cq_map, c->cq_bytes);
err_unmap_sq:
	qd__munmap_ring(c->sq_map, c->sq_bytes);
err_close:
	qd__close_fd(c->fd);
err_out:
	c->fd = -1;
	c->sq_map = c->cq_map = NULL;
	return ret;
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&init_lock);
	pthread_mutex_lock(&qd__ctx.cq_lock);
	pthread_mutex_lock(&qd__ctx.sq_lock);
	qd__alloc_lock();
}

static void atfork_parent(void)
{
	qd__alloc_unlock();
	pthread_mutex_unlock(&qd__ctx.sq_lock);
	pthread_mutex_unlock(&qd__ctx.cq_lock);
	pthread_mutex_unlock(&init_lock);
}

/*
 * The child has no context: the fd is the parent's (refused with -EPERM),
 * the rings were not inherited (MADV_DONTFORK), tokens and regions name
 * nothing. The child's copies of allocator memory stay mapped but are no
 * longer libqd's. Only the forking thread exists here, so no lock is
 * contended: the locks prepare took are released at the end.
 */
static void atfork_child(void)
{
	struct qd_ctx *c = &qd__ctx;

	if (c->ready)
		qd__close_fd(c->fd);
	c->ready = 0;
	c->fd = -1;
	c->sq_map = c->cq_map = NULL;
	c->sq_bytes = c->cq_bytes = 0;
	c->features = c->max_inflight = 0;
	memset(&c->sq, 0, sizeof(c->sq));
	memset(&c->cq, 0, sizeof(c->cq));
	c->kernel_waiters = 0;
	qd__slots_reset(&c->slots);
	qd__alloc_forget();
	memset(&qd__cnt, 0, sizeof(qd__cnt));
	qd__wait_init();

	qd__alloc_unlock();
	pthread_mutex_unlock(&c->sq_lock);
	pthread_mutex_unlock(&c->cq_lock);
	pthread_mutex_unlock(&init_lock);
}

static void init_once_fn(void)
{
	qd__wait_init();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int qd_init(void)
{
	int ret = 0;

	if (qd_ready())
		return 0;
	pthread_once(&init_once, init_once_fn);
	pthread_mutex_lock(&init_lock);
	if (!qd__ctx.ready)
		ret = ctx_open(&qd__ctx);
	pthread_mutex_unlock(&init_lock);
	return ret;
}

int qd_stats(struct qd_stats *st)
{
	struct qd_ctx *c = &qd__ctx;

	if (!st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->syscalls = qd_counted(&qd__cnt.syscalls);
	st->enters = qd_counted(&qd__cnt.enters);
	st->enter_waits = qd_counted(&qd__cnt.enter_waits);
	st->sqes_submitted = qd_counted(&qd__cnt.sqes_submitted);
	st->cqes_reaped = qd_counted(&qd__cnt.cqes_reaped);
	st->overflow_flushes = qd_counted(&qd__cnt.overflow_flushes);
	st->regions = qd_counted(&qd__cnt.regions);
	st->region_bytes = qd_counted(&qd__cnt.region_bytes);
	if (qd_ready()) {
		st->sq_entries = c->sq.entries;
		st->cq_entries = c->cq.entries;
		st->max_inflight = c->max_inflight;
		st->features = c->features;
	}
	return 0;
}
