// SPDX-License-Identifier: MIT
/*
 * The context's rings (see rings.h): set one up with QD_IOC_SETUP (ring 0)
 * or QD_IOC_RING, map its SQ and CQ at the offsets the uapi gives for its
 * id, locate the fields through the offsets the kernel returned, and
 * publish it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "int.h"
#include "syscall.h"

static void ring_publish(struct qd_ctx *c, struct qd_ring *r)
{
	__atomic_store_n(&c->rings[r->id], r, __ATOMIC_RELEASE);
	__atomic_store_n(&c->nrings, c->nrings + 1, __ATOMIC_RELEASE);
}

/* Map ring r->id as QD_IOC_SETUP or QD_IOC_RING described it in *p. */
static int ring_map(struct qd_ctx *c, struct qd_ring *r,
		    const struct qd_params *p)
{
	uint64_t sq_off = r->id ? QD_OFF_RING_SQ(r->id) : QD_OFF_SQ_RING;
	uint64_t cq_off = r->id ? QD_OFF_RING_CQ(r->id) : QD_OFF_CQ_RING;
	int ret, err = 0;

	r->sq_bytes = p->sq_ring_bytes;
	r->sq_map = qd__mmap_ring(c->fd, r->sq_bytes, sq_off, &err);
	if (r->sq_map == MAP_FAILED)
		return err;
	r->cq_bytes = p->cq_ring_bytes;
	r->cq_map = qd__mmap_ring(c->fd, r->cq_bytes, cq_off, &err);
	if (r->cq_map == MAP_FAILED) {
		ret = err;
		goto err_unmap_sq;
	}
	ret = qd__rings_init(&r->sq, &r->cq, r->sq_map, r->sq_bytes,
			     r->cq_map, r->cq_bytes, p);
	if (ret)
		goto err_unmap_cq;
	if (!r->id) {
		ret = qd__cq_ctx_seq(r->cq_map, r->cq_bytes, p, &c->ctx_seq);
		if (ret)
			goto err_unmap_cq;
	}
	return 0;

err_unmap_cq:
	qd__munmap_ring(r->cq_map, r->cq_bytes);
err_unmap_sq:
	qd__munmap_ring(r->sq_map, r->sq_bytes);
	return ret;
}

int qd__ring_open(struct qd_ctx *c, struct qd_ring **out)
{
	struct qd_params p = c->params;
	struct qd_ring *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (r)
		for (uint32_t w = 0; w < 4; w++)
			r->wakes[w].qd = -1;
	if (!r)
		return -ENOMEM;
	r->lock = QD_LOCK_INIT;
	if (!c->nrings) {
		ret = qd__setup(c->fd, &p);
		p.ring = 0;
	} else {
		/* The poller is ring 0's business only. */
		p.flags = 0;
		p.sq_idle_ms = 0;
		ret = qd__ring_create(c->fd, &p);
	}
	if (ret < 0)
		goto err_free;
	/* Ids are the kernel's; one it already gave is a kernel bug. */
	ret = -EIO;
	if (p.ring >= QD_MAX_RINGS || c->rings[p.ring])
		goto err_free;
	r->id = p.ring;
	if (!c->nrings) {
		c->features = p.features;
		c->max_inflight = p.max_inflight;
		c->sqpoll = !!(p.flags & QD_SETUP_SQPOLL);
		ret = -EOPNOTSUPP;
		if ((p.features & (QD_FEAT_CQ_ELEMS | QD_FEAT_REGIONS)) !=
		    (QD_FEAT_CQ_ELEMS | QD_FEAT_REGIONS))
			goto err_free;
	}
	ret = ring_map(c, r, &p);
	if (ret)
		goto err_free;
	ret = -ENOMEM;
	r->pushsegs = calloc(r->sq.entries, sizeof(*r->pushsegs));
	if (!r->pushsegs)
		goto err_unmap;
	qd__slots_init(&r->slots, r->id);
	ring_publish(c, r);
	*out = r;
	return 0;

err_unmap:
	qd__munmap_ring(r->cq_map, r->cq_bytes);
	qd__munmap_ring(r->sq_map, r->sq_bytes);
err_free:
	free(r);
	return ret;
}

int qd__ring_kick(struct qd_ring *r, uint32_t n)
{
	if (!qd__ctx.sqpoll)
		return qd__enter(qd__ctx.fd, r->id, n, 0, 0, 0);
	/*
	 * The tail is published (release). Pairs with the poller's barrier
	 * between setting QD_SQ_F_NEED_WAKEUP and its last look at the
	 * tails: either it sees our SQEs, or we see the flag.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(r->sq.kflags, __ATOMIC_RELAXED) &
	      QD_SQ_F_NEED_WAKEUP))
		return (int)n;
	/* Asleep: this enter takes the SQEs itself and wakes it. */
	return qd__enter(qd__ctx.fd, r->id, n, QD_ENTER_SQ_WAKEUP, 0, 0);
}

int qd__ring_flush(struct qd_ring *r)
{
	uint32_t n = qd__ring_queued(r);

	return n ? qd__enter(qd__ctx.fd, r->id, n, 0, 0, 0) : 0;
}

/*
 * The child has none of the rings (MADV_DONTFORK) and no lock is contended
 * here (only the forking thread exists, and it took every ring lock before
 * fork()): free what describes them.
 */
void qd__rings_forget(struct qd_ctx *c)
{
	struct qd_ring *r;
	uint32_t i;

	for (i = 0; i < QD_MAX_RINGS; i++) {
		r = c->rings[i];
		if (!r)
			continue;
		qd_unlock(&r->lock);
		qd__slots_fini(&r->slots);
		free(r->pushsegs);
		qd__lazy_fini(r);
		qd__next_free(r);
		free(r);
		c->rings[i] = NULL;
	}
	c->nrings = 0;
	c->ctx_seq = NULL;
	c->rings_full = 0;
}
