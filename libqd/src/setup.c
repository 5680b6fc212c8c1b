// SPDX-License-Identifier: MIT
/*
 * The context: open /dev/qd, set up ring 0 (rings.c); forget it all in a
 * child of fork(), which the kernel would refuse with -EPERM anyway.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"
#include "mq.h"
#include "syscall.h"

struct qd_ctx qd__ctx = {
	.fd = -1,
	.init_lock = PTHREAD_MUTEX_INITIALIZER,
};

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

/*
 * QD_SQPOLL=<ms>: a kernel poller that sleeps after ms idle (1 to
 * QD_SQPOLL_MAX_IDLE_MS); unset, empty or 0: none. 0 or -EINVAL.
 */
static int env_sqpoll(uint32_t *idle_ms)
{
	const char *s = getenv("QD_SQPOLL");
	unsigned long v;
	char *end;

	*idle_ms = 0;
	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > QD_SQPOLL_MAX_IDLE_MS)
		return -EINVAL;
	*idle_ms = (uint32_t)v;
	return 0;
}

static int ctx_params(struct qd_params *p)
{
	uint32_t sq = QD_DEFAULT_SQ_ENTRIES, cq = 0, idle_ms;
	int sq_set, cq_set;

	sq_set = env_entries("QD_SQ_ENTRIES", &sq);
	cq_set = env_entries("QD_CQ_ENTRIES", &cq);
	if (sq_set < 0 || cq_set < 0 || env_sqpoll(&idle_ms))
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
	if (idle_ms) {
		p->flags = QD_SETUP_SQPOLL;
		p->sq_idle_ms = idle_ms;
	}
	return 0;
}

static int ctx_open(struct qd_ctx *c)
{
	struct qd_ring *r;
	int ret;

	ret = ctx_params(&c->params);
	if (ret)
		return ret;
	c->fd = qd__open();
	if (c->fd < 0) {
		ret = c->fd;
		goto err_out;
	}
	/* Ring 0 is set up now; it goes to the first thread that needs one. */
	ret = qd__ring_open(c, &r);
	if (ret)
		goto err_close;
	__atomic_store_n(&c->ready, 1, __ATOMIC_RELEASE);
	return 0;

err_close:
	qd__close_fd(c->fd);
err_out:
	c->fd = -1;
	c->features = c->max_inflight = 0;
	c->sqpoll = 0;
	return ret;
}

/* Every lock, in order, so that the child inherits none held mid-change. */
static void atfork_prepare(void)
{
	struct qd_ring *r;
	uint32_t i;

	pthread_mutex_lock(&qd__ctx.init_lock);
	for (i = 0; i < QD_MAX_RINGS; i++) {
		r = qd__ctx.rings[i];
		if (r)
			qd_lock(&r->lock);
	}
	qd__alloc_lock();
}

static void atfork_parent(void)
{
	struct qd_ring *r;
	uint32_t i;

	qd__alloc_unlock();
	for (i = QD_MAX_RINGS; i-- > 0;) {
		r = qd__ctx.rings[i];
		if (r)
			qd_unlock(&r->lock);
	}
	pthread_mutex_unlock(&qd__ctx.init_lock);
}

/*
 * The child has no context: the fd is the parent's (refused with -EPERM),
 * the rings were not inherited (MADV_DONTFORK), tokens and regions name
 * nothing. The child's copies of allocator memory stay mapped but are no
 * longer libqd's. Only the forking thread exists here, so no lock is
 * contended; the ring locks are released with their rings.
 */
static void atfork_child(void)
{
	struct qd_ctx *c = &qd__ctx;

	if (c->ready)
		qd__close_fd(c->fd);
	c->ready = 0;
	c->fd = -1;
	c->features = c->max_inflight = 0;
	c->sqpoll = 0;
	qd__rings_forget(c);
	qd__thread_forget();
	qd__alloc_forget();
	qd__mq_forget_all();
	qd__sock_forget_all();
	qd__file_forget_all();
	qd__dfn_forget_all();
	qd__pool_forget();
	memset(&qd__cnt, 0, sizeof(qd__cnt));

	qd__alloc_unlock();
	pthread_mutex_unlock(&c->init_lock);
}

static void init_once_fn(void)
{
	qd__thread_init();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int qd_init(void)
{
	int ret = 0;

	if (qd_ready())
		return 0;
	pthread_once(&init_once, init_once_fn);
	pthread_mutex_lock(&qd__ctx.init_lock);
	if (!qd__ctx.ready)
		ret = ctx_open(&qd__ctx);
	pthread_mutex_unlock(&qd__ctx.init_lock);
	return ret;
}

int qd_stats(struct qd_stats *st)
{
	struct qd_ctx *c = &qd__ctx;
	struct qd_ring *r;

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
	st->forget_failed = qd_counted(&qd__cnt.forget_failed);
	st->forget_last_error = __atomic_load_n(&qd__cnt.forget_last_error,
						__ATOMIC_RELAXED);
	if (qd_ready()) {
		r = qd__ring_get(0);
		st->sq_entries = r->sq.entries;
		st->cq_entries = r->cq.entries;
		st->max_inflight = c->max_inflight;
		st->features = c->features;
		st->rings = __atomic_load_n(&c->nrings, __ATOMIC_ACQUIRE);
	}
	return 0;
}

int qd__ctl(unsigned long req, void *arg)
{
	int ret = qd_get();

	return ret ? ret : qd__ioctl(qd__ctx.fd, req, arg);
}
