// SPDX-License-Identifier: GPL-2.0
/*
 * eventfd+shm: payloads go through a MAP_SHARED|MAP_ANONYMOUS buffer, the
 * signal through eventfds. The sender memcpy's its payload into a slot and
 * writes an eventfd; the receiver reads the eventfd and uses the payload in
 * place: one copy per transfer.
 *
 * Ping-pong: slot 0 carries A -> B (signalled on ab), slot 1 B -> A (ba).
 * Stream: a ring of window slots. The eventfds count like semaphores: A
 * writes 1 to `items` per element, B writes 1 to `space` per element it is
 * done with; a reader takes the whole count in one read(2) and blocks only
 * when it is zero (ring empty for B, ring full for A).
 * Batch: the same ring of `batch` slots; A copies each element into its
 * slot and adds the whole batch to `items` with one write, B reads the
 * count once, and adds what it consumed to `space` with one write at the
 * end of the batch; A reads `space` until every slot is free again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "qdbench.h"

struct efd_state {
	int	ab, ba;		/* ping-pong signals; stream: items, space */
	char	*shm;
	size_t	slot, shm_len;
	unsigned int nslots;
	void	*a_tx;		/* A's payload before it is copied in */
	/* each side's counters on a cache line of their own */
	_Alignas(64) uint64_t a_idx, a_credits, a_unsig;	/* stream, A */
	_Alignas(64) uint64_t b_idx, b_avail, b_unsig;	/* stream, B */
};

static uint64_t efd_copied(size_t size)
{
	return size;		/* into the shared slot */
}

static int efd_probe(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static void efd_teardown(struct run *r)
{
	struct efd_state *s = r->priv;

	if (!s)
		return;
	if (s->ab >= 0)
		close(s->ab);
	if (s->ba >= 0)
		close(s->ba);
	shm_free(s->shm, s->shm_len);
	buf_free(s->a_tx, r->size);
	free(s);
	r->priv = NULL;
}

static int efd_setup(struct run *r)
{
	struct efd_state *s = aligned_alloc(64, sizeof(*s));

	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	r->priv = s;
	s->ab = eventfd(0, EFD_CLOEXEC);
	s->ba = eventfd(0, EFD_CLOEXEC);
	if (s->ab < 0 || s->ba < 0) {
		int err = -errno;

		efd_teardown(r);
		return err;
	}
	s->slot = (r->size + 63) & ~(size_t)63;
	s->nslots = r->mode == MODE_PINGPONG ? 2 : r->window;
	s->shm_len = s->slot * s->nslots;
	s->shm = shm_alloc(s->shm_len);
	s->a_tx = buf_alloc(r->size);
	s->a_credits = s->nslots;
	return 0;
}

static char *slot(struct efd_state *s, uint64_t i)
{
	return s->shm + (i % s->nslots) * s->slot;
}

static int efd_a_buf(struct run *r, struct payload *p)
{
	struct efd_state *s = r->priv;

	if (r->mode == MODE_STREAM && !s->a_credits) {
		uint64_t v;
		int err = efd_read(s->ba, &v);	/* blocks while the ring is full */

		if (err)
			return err;
		s->a_credits += v;
	}
	pl_flat(p, s->a_tx, r->size);
	return 0;
}

static int efd_a_send(struct run *r, bool last, bool flush)
{
	struct efd_state *s = r->priv;
	struct payload p;
	uint64_t n;

	(void)last;
	pl_flat(&p, s->a_tx, r->size);
	if (r->mode == MODE_PINGPONG) {
		pl_copy(slot(s, 0), &p);
		return efd_write(s->ab, 1);
	}
	pl_copy(slot(s, s->a_idx++), &p);
	s->a_credits--;
	s->a_unsig++;
	if (!flush)
		return 0;
	n = s->a_unsig;
	s->a_unsig = 0;
	return efd_write(s->ab, n);
}

static int efd_a_recv(struct run *r, struct payload *p)
{
	struct efd_state *s = r->priv;
	uint64_t v;

	pl_flat(p, slot(s, 1), r->size);
	return efd_read(s->ba, &v);
}

/* Batch: wait until B has freed every slot. */
static int efd_a_sync(struct run *r)
{
	struct efd_state *s = r->priv;
	uint64_t v;
	int err;

	while (s->a_credits < s->nslots) {
		err = efd_read(s->ba, &v);
		if (err)
			return err;
		s->a_credits += v;
	}
	return 0;
}

static int efd_a_done(struct run *r)
{
	(void)r;
	return 0;
}

static int efd_b_recv(struct run *r, struct payload *p)
{
	struct efd_state *s = r->priv;
	uint64_t v;
	int err;

	if (r->mode == MODE_PINGPONG) {
		pl_flat(p, slot(s, 0), r->size);
		return efd_read(s->ab, &v);
	}
	if (!s->b_avail) {
		err = efd_read(s->ab, &v);	/* blocks while the ring is empty */
		if (err)
			return err;
		s->b_avail = v;
	}
	pl_flat(p, slot(s, s->b_idx), r->size);
	return 0;
}

/* Ping-pong: the reply is the received payload, copied into slot 1. */
static int efd_b_send(struct run *r, bool last)
{
	struct efd_state *s = r->priv;
	struct payload p;

	(void)last;
	pl_flat(&p, slot(s, 0), r->size);
	pl_copy(slot(s, 1), &p);
	return efd_write(s->ba, 1);
}

static int efd_b_release(struct run *r, bool last, bool flush)
{
	struct efd_state *s = r->priv;
	uint64_t n;

	(void)last;
	s->b_idx++;
	s->b_avail--;
	s->b_unsig++;
	if (!flush)
		return 0;
	n = s->b_unsig;
	s->b_unsig = 0;
	return efd_write(s->ba, n);
}

static int efd_b_done(struct run *r)
{
	(void)r;
	return 0;
}

const struct mech mech_efd = {
	.name = "eventfd",
	.label = "eventfd+shm",
	.copied = efd_copied,
	.probe = efd_probe,
	.setup = efd_setup,
	.teardown = efd_teardown,
	.a_buf = efd_a_buf,
	.a_send = efd_a_send,
	.a_recv = efd_a_recv,
	.a_sync = efd_a_sync,
	.a_done = efd_a_done,
	.b_recv = efd_b_recv,
	.b_send = efd_b_send,
	.b_release = efd_b_release,
	.b_done = efd_b_done,
	.thread_syscalls = count_thread_syscalls,
};
