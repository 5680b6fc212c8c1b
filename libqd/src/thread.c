// SPDX-License-Identifier: MIT
/*
 * A ring per thread. A thread gets a ring the first time it submits: an
 * ownerless one if there is one (ring 0 at first, or the ring of a thread
 * that exited), else a new one (QD_IOC_RING). When the kernel has no more
 * (-ENOSPC past QD_MAX_RINGS) or cannot make them (no QD_FEAT_RINGS), the
 * thread shares the ring with the fewest users: everything still works,
 * its owners just contend for its lock and wake each other.
 *
 * When a thread exits, its queued SQEs are submitted and its ring becomes
 * ownerless; tokens it left pending stay valid in any thread, since a
 * token names its ring.
 */
#include <errno.h>

#include "int.h"

__thread struct qd_ring *qd__mine __attribute__((tls_model("initial-exec")));
static pthread_key_t ring_key;

static void thread_exit(void *arg)
{
	struct qd_ring *r = arg;

	qd__mine = NULL;
	/* A failure leaves them queued for the next user of the ring. */
	qd__ring_submit(r);
	pthread_mutex_lock(&qd__ctx.init_lock);
	r->owners--;
	pthread_mutex_unlock(&qd__ctx.init_lock);
}

void qd__thread_init(void)
{
	pthread_key_create(&ring_key, thread_exit);
}

static struct qd_ring *ring_least_used(struct qd_ctx *c)
{
	struct qd_ring *r, *best = NULL;
	uint32_t i;

	for (i = 0; i < QD_MAX_RINGS; i++) {
		r = c->rings[i];
		if (r && (!best || r->owners < best->owners))
			best = r;
	}
	return best;
}

/* Called with init_lock held. */
static struct qd_ring *ring_claim(struct qd_ctx *c)
{
	struct qd_ring *r = ring_least_used(c);
	int ret;

	if (r->owners && !c->rings_full) {
		if (!(c->features & QD_FEAT_RINGS)) {
			c->rings_full = 1;
		} else {
			ret = qd__ring_open(c, &r);
			if (!ret)
				return r;
			/* Out of memory may pass; anything else will not. */
			if (ret != -ENOMEM && ret != -EINTR)
				c->rings_full = 1;
			r = ring_least_used(c);
		}
	}
	return r;
}

int qd__ring_mine_slow(struct qd_ring **out)
{
	struct qd_ring *r;
	int ret;

	ret = qd_get();
	if (ret)
		return ret;
	pthread_mutex_lock(&qd__ctx.init_lock);
	r = ring_claim(&qd__ctx);
	r->owners++;
	pthread_mutex_unlock(&qd__ctx.init_lock);
	pthread_setspecific(ring_key, r);
	qd__mine = r;
	*out = r;
	return 0;
}

void qd__thread_forget(void)
{
	qd__mine = NULL;
	pthread_setspecific(ring_key, NULL);
}
