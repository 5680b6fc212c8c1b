// SPDX-License-Identifier: MIT
/*
 * Submission: qd_push(), qd_pop(), qd_queue(), qd_close(), qd_submit().
 *
 * SQEs are batched: they wait in the SQ for the next QD_IOC_ENTER libqd
 * makes anyway (a wait that must sleep, qd_close(), qd_submit(), a full
 * SQ). The exception: when another thread is asleep in the kernel waiting
 * for completions, a new SQE is submitted at once, or it might be the very
 * one that thread waits for. A waiter counts itself in kernel_waiters
 * under sq_lock before it reads how many SQEs to submit, and a submitter
 * reads kernel_waiters under the same lock after appending, so every SQE
 * is either in the waiter's enter or submitted by its own thread.
 */
#include <errno.h>
#include <string.h>

#include "int.h"
#include "region.h"
#include "syscall.h"

int qd__flush(void)
{
	struct qd_ctx *c = &qd__ctx;
	uint32_t n;

	pthread_mutex_lock(&c->sq_lock);
	n = qd_sq_queued(&c->sq);
	pthread_mutex_unlock(&c->sq_lock);
	if (!n)
		return 0;
	return qd__enter(c->fd, n, 0, 0, 0);
}

/* Append one SQE; user_data is the token. */
static int sq_add(uint8_t op, int qd, const struct qd_seg *segs,
		  uint16_t nsegs, qd_token_t qt)
{
	struct qd_ctx *c = &qd__ctx;
	struct qd_sqe *sqe;
	int ret, reaped = 0;
	uint32_t now = 0;

	pthread_mutex_lock(&c->sq_lock);
	while (!(sqe = qd_sq_next(&c->sq))) {
		/*
		 * Full: submit, holding the lock so that nobody refills the
		 * SQ meanwhile. Still full means the kernel took nothing: its
		 * in-flight cap is reached, perhaps by completions parked in
		 * its overflow list, so reap the CQ once for the next enter
		 * to move them in.
		 */
		ret = qd__enter(c->fd, qd_sq_queued(&c->sq), 0, 0, 0);
		if (ret < 0)
			goto out;
		sqe = qd_sq_next(&c->sq);
		if (sqe)
			break;
		ret = -EBUSY;
		if (reaped)
			goto out;
		pthread_mutex_unlock(&c->sq_lock);
		qd__reap();
		reaped = 1;
		pthread_mutex_lock(&c->sq_lock);
	}
	sqe->opcode = op;
	sqe->qd = qd;
	sqe->nsegs = nsegs;
	sqe->addr = (uintptr_t)segs;
	sqe->user_data = qt;
	qd_sq_commit(&c->sq);
	if (c->kernel_waiters)
		now = qd_sq_queued(&c->sq);
	pthread_mutex_unlock(&c->sq_lock);

	/* An error leaves the SQEs queued; the next enter reports it. */
	if (now)
		qd__enter(c->fd, now, 0, 0, 0);
	return 0;
out:
	pthread_mutex_unlock(&c->sq_lock);
	return ret;
}

static struct qd_slot *slot_new(uint8_t op, int qd)
{
	struct qd_ctx *c = &qd__ctx;
	struct qd_slot *s;

	pthread_mutex_lock(&c->cq_lock);
	s = qd__slot_alloc(&c->slots);
	if (s) {
		s->op = op;
		s->qd = qd;
	}
	pthread_mutex_unlock(&c->cq_lock);
	return s;
}

static void slot_drop(struct qd_slot *s)
{
	struct qd_ctx *c = &qd__ctx;

	pthread_mutex_lock(&c->cq_lock);
	qd__slot_free(&c->slots, s);
	pthread_mutex_unlock(&c->cq_lock);
}

int qd_push(qd_token_t *qt_out, int qd, const struct qd_sga *sga)
{
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_slot *s;
	qd_token_t qt;
	int ret;

	if (!qt_out)
		return -EINVAL;
	ret = qd__sga_check(sga);
	if (ret)
		return ret;
	ret = qd_get();
	if (ret)
		return ret;
	ret = qd__alloc_translate(sga, segs);
	if (ret)
		return ret;

	s = slot_new(QD_OP_PUSH, qd);
	if (!s)
		return -ENOMEM;
	/*
	 * The kernel reads the segment array when it consumes the SQE, which
	 * may be long after we return: it lives in the slot, which stays put
	 * until the result is consumed. Nobody else touches a PENDING slot's
	 * arrays before its CQE arrives.
	 */
	s->nsegs = (uint8_t)sga->numsegs;
	memcpy(s->segs, segs, sga->numsegs * sizeof(segs[0]));
	memcpy(s->usegs, sga->segs, sga->numsegs * sizeof(sga->segs[0]));
	qt = qd_slot_token(s);

	ret = sq_add(QD_OP_PUSH, qd, s->segs, (uint16_t)sga->numsegs, qt);
	if (ret) {
		slot_drop(s);
		return ret;
	}
	*qt_out = qt;
	return 0;
}

int qd_pop(qd_token_t *qt_out, int qd)
{
	struct qd_slot *s;
	qd_token_t qt;
	int ret;

	if (!qt_out)
		return -EINVAL;
	ret = qd_get();
	if (ret)
		return ret;
	s = slot_new(QD_OP_POP, qd);
	if (!s)
		return -ENOMEM;
	qt = qd_slot_token(s);
	ret = sq_add(QD_OP_POP, qd, NULL, 0, qt);
	if (ret) {
		slot_drop(s);
		return ret;
	}
	*qt_out = qt;
	return 0;
}

int qd_queue(int *qd_out)
{
	int ret;

	if (!qd_out)
		return -EINVAL;
	ret = qd_get();
	if (ret)
		return ret;
	return qd__queue_create(qd__ctx.fd, 0, qd_out);
}

int qd_close(int qd)
{
	int ret;

	ret = qd_get();
	if (ret)
		return ret;
	/*
	 * Operations queued for qd must reach the kernel before it closes,
	 * to be cancelled rather than fail with -EBADF. A failure here leaves
	 * them queued for the next enter to report.
	 */
	qd__flush();
	return qd__close_qd(qd__ctx.fd, qd);
}

int qd_submit(void)
{
	int ret;

	ret = qd_get();
	if (ret)
		return ret;
	ret = qd__flush();
	return ret < 0 ? ret : 0;
}
