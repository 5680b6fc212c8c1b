// SPDX-License-Identifier: GPL-2.0
/*
 * spsc: the physical limit of a same-host queue. Per direction, a lock-free
 * single-producer/single-consumer ring of (pointer, length) descriptors in
 * shared memory (MAP_SHARED): the producer fills a slot and publishes its
 * tail with a release store, the consumer reads the tail with an acquire
 * load, takes the slot and publishes its head the same way. The kernel is
 * entered only to sleep and to wake a sleeper:
 *
 *   consumer, ring empty:  waiting = 1; full fence; re-check the tail;
 *                          still empty: FUTEX_WAIT(&waiting, 1)
 *   producer, publishing:  tail = t (release); full fence;
 *                          waiting && xchg(&waiting, 0): FUTEX_WAKE
 *
 * so a wake-up costs a system call only when the consumer has said it
 * sleeps (private futexes: both ends are threads of one process; shared
 * futexes, and the buffers in MAP_SHARED memory too, with --procs 2). No
 * spinning before sleeping. The buffers travel, as with qd and io_uring:
 * zero payload bytes copied.
 *
 * Ping-pong: A pushes its buffer on ring ab, B pops it and pushes it back
 * on ring ba. Stream: A owns a pool of `window` buffers and publishes each
 * element at once; B returns each buffer on ba at once; A pops returns
 * when its pool runs dry. Batch: A fills the batch's slots and publishes
 * them with one tail store (one wake at most); B publishes the batch's
 * returns at its end; A pops until all are back. A thread always
 * publishes what it holds before it sleeps.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qdbench.h"

struct desc {
	uint64_t	ptr;
	uint64_t	len;
};

/* One direction, in shared memory; each writer's word on its own line. */
struct spsc_ring {
	_Alignas(64) _Atomic uint32_t tail;	/* producer: slots filled */
	_Alignas(64) _Atomic uint32_t head;	/* consumer: slots taken */
	_Alignas(64) _Atomic uint32_t waiting;	/* consumer sleeps: futex word */
	_Alignas(64) struct desc slot[];
};

/* Each end's private view. */
struct prod {
	struct spsc_ring *q;
	uint32_t	mask, tail, published, head_cache;
};

struct cons {
	struct spsc_ring *q;
	uint32_t	mask, head, tail_cache;
};

struct spsc_state {
	struct spsc_ring *ab, *ba;
	size_t		ring_len;
	unsigned int	nbufs;
	char		**bufs;

	_Alignas(64) struct prod a_tx;	/* A side */
	struct cons	a_rx;
	char		**a_free;
	unsigned int	a_nfree, a_out;
	char		*a_cur;

	_Alignas(64) struct prod b_tx;	/* B side */
	struct cons	b_rx;
	char		*b_cur;
};

static uint64_t spsc_copied(size_t size)
{
	(void)size;
	return 0;
}

static int spsc_probe(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static const char *spsc_note(void)
{
	if (procs == 2)
		return "two rings (A->B, B->A) of 16-byte (pointer, length) descriptors in MAP_SHARED memory, at least 64 slots; buffers in MAP_SHARED memory mapped before the fork; shared futexes, no spinning";
	return "two rings (A->B, B->A) of 16-byte (pointer, length) descriptors in MAP_SHARED memory, at least 64 slots; private futexes, no spinning";
}

/* Two processes share the futex words' pages, not an mm: no _PRIVATE. */
static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, procs == 2 ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE,
		val, NULL, NULL, 0);
	tl_syscalls++;
}

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, procs == 2 ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE,
		1, NULL, NULL, 0);
	tl_syscalls++;
}

static int push(struct prod *p, void *buf, size_t len)
{
	struct desc *d;

	if (p->tail - p->head_cache > p->mask) {
		p->head_cache = atomic_load_explicit(&p->q->head, memory_order_acquire);
		/* cannot happen: the ring holds every buffer there is */
		if (p->tail - p->head_cache > p->mask)
			return -ENOSPC;
	}
	d = &p->q->slot[p->tail & p->mask];
	d->ptr = (uintptr_t)buf;
	d->len = len;
	p->tail++;
	return 0;
}

static void publish(struct prod *p)
{
	if (p->tail == p->published)
		return;
	atomic_store_explicit(&p->q->tail, p->tail, memory_order_release);
	p->published = p->tail;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&p->q->waiting, memory_order_relaxed) &&
	    atomic_exchange_explicit(&p->q->waiting, 0, memory_order_relaxed))
		futex_wake(&p->q->waiting);
}

static bool avail(struct cons *c)
{
	if (c->head != c->tail_cache)
		return true;
	c->tail_cache = atomic_load_explicit(&c->q->tail, memory_order_acquire);
	return c->head != c->tail_cache;
}

/* The next descriptor; sleeps while the ring is empty, after publishing mine. */
static int pop(struct run *r, struct cons *c, struct prod *mine, char **buf)
{
	struct desc d;

	while (!avail(c)) {
		publish(mine);
		atomic_store_explicit(&c->q->waiting, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (avail(c)) {
			atomic_store_explicit(&c->q->waiting, 0, memory_order_relaxed);
			break;
		}
		futex_wait(&c->q->waiting, 1);
	}
	d = c->q->slot[c->head & c->mask];
	c->head++;
	atomic_store_explicit(&c->q->head, c->head, memory_order_release);
	if (d.len != r->size) {
		fprintf(stderr, "qdbench: spsc: an element of %llu bytes, expected %zu\n",
			(unsigned long long)d.len, r->size);
		return -EIO;
	}
	*buf = (char *)(uintptr_t)d.ptr;
	return 0;
}

static void spsc_teardown(struct run *r)
{
	struct spsc_state *s = r->priv;
	unsigned int i;

	if (!s)
		return;
	shm_free(s->ab, s->ring_len);
	shm_free(s->ba, s->ring_len);
	for (i = 0; s->bufs && i < s->nbufs; i++)
		buf_free(s->bufs[i], r->size);	/* munmap: shared or not */
	free(s->bufs);
	free(s->a_free);
	free(s);
	r->priv = NULL;
}

static int spsc_setup(struct run *r)
{
	struct spsc_state *s = aligned_alloc(64, sizeof(struct spsc_state));
	unsigned int i, cap;

	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	r->priv = s;
	s->nbufs = r->mode == MODE_PINGPONG ? 1 : r->window;
	for (cap = 64; cap < s->nbufs; cap <<= 1)
		;
	s->ring_len = sizeof(struct spsc_ring) + cap * sizeof(struct desc);
	s->ab = shm_alloc(s->ring_len);
	s->ba = shm_alloc(s->ring_len);
	memset(s->ab, 0, s->ring_len);
	memset(s->ba, 0, s->ring_len);
	s->a_tx = (struct prod){ .q = s->ab, .mask = cap - 1 };
	s->b_rx = (struct cons){ .q = s->ab, .mask = cap - 1 };
	s->b_tx = (struct prod){ .q = s->ba, .mask = cap - 1 };
	s->a_rx = (struct cons){ .q = s->ba, .mask = cap - 1 };
	s->bufs = calloc(s->nbufs, sizeof(*s->bufs));
	s->a_free = calloc(s->nbufs, sizeof(*s->a_free));
	if (!s->bufs || !s->a_free) {
		spsc_teardown(r);
		return -ENOMEM;
	}
	for (i = 0; i < s->nbufs; i++) {
		/* two processes: B reads the payload in place, in A's pages */
		s->bufs[i] = procs == 2 ? shm_alloc(r->size) : buf_alloc(r->size);
		s->a_free[s->a_nfree++] = s->bufs[i];
	}
	return 0;
}

static int spsc_a_buf(struct run *r, struct payload *p)
{
	struct spsc_state *s = r->priv;
	int err;

	if (r->mode == MODE_PINGPONG) {
		s->a_cur = s->bufs[0];
	} else if (s->a_nfree) {
		s->a_cur = s->a_free[--s->a_nfree];
	} else {
		/* the pool is empty: wait for a buffer to come back */
		err = pop(r, &s->a_rx, &s->a_tx, &s->a_cur);
		if (err)
			return err;
		s->a_out--;
	}
	pl_flat(p, s->a_cur, r->size);
	return 0;
}

static int spsc_a_send(struct run *r, bool last, bool flush)
{
	struct spsc_state *s = r->priv;
	int err;

	(void)last;
	err = push(&s->a_tx, s->a_cur, r->size);
	if (err)
		return err;
	s->a_out++;
	if (flush)
		publish(&s->a_tx);
	return 0;
}

static int spsc_a_recv(struct run *r, struct payload *p)
{
	struct spsc_state *s = r->priv;
	char *buf;
	int err;

	err = pop(r, &s->a_rx, &s->a_tx, &buf);
	if (err)
		return err;
	if (buf != s->a_cur)
		return -EPROTO;
	s->a_out--;
	pl_flat(p, buf, r->size);
	return 0;
}

/* Batch (and the end of a stream): every buffer back home. */
static int spsc_a_sync(struct run *r)
{
	struct spsc_state *s = r->priv;
	char *buf;
	int err;

	while (s->a_out) {
		err = pop(r, &s->a_rx, &s->a_tx, &buf);
		if (err)
			return err;
		s->a_free[s->a_nfree++] = buf;
		s->a_out--;
	}
	return 0;
}

static int spsc_a_done(struct run *r)
{
	return r->mode == MODE_PINGPONG ? 0 : spsc_a_sync(r);
}

static int spsc_b_recv(struct run *r, struct payload *p)
{
	struct spsc_state *s = r->priv;
	int err;

	err = pop(r, &s->b_rx, &s->b_tx, &s->b_cur);
	if (err)
		return err;
	pl_flat(p, s->b_cur, r->size);
	return 0;
}

static int spsc_b_send(struct run *r, bool last)
{
	struct spsc_state *s = r->priv;
	int err;

	(void)last;
	err = push(&s->b_tx, s->b_cur, r->size);
	if (!err)
		publish(&s->b_tx);
	return err;
}

static int spsc_b_release(struct run *r, bool last, bool flush)
{
	struct spsc_state *s = r->priv;
	int err;

	err = push(&s->b_tx, s->b_cur, r->size);
	if (!err && (flush || last))
		publish(&s->b_tx);
	return err;
}

static int spsc_b_done(struct run *r)
{
	struct spsc_state *s = r->priv;

	publish(&s->b_tx);
	return 0;
}

const struct mech mech_spsc = {
	.name = "spsc",
	.label = "spsc-limit",
	.copied = spsc_copied,
	.probe = spsc_probe,
	.note = spsc_note,
	.setup = spsc_setup,
	.teardown = spsc_teardown,
	.a_buf = spsc_a_buf,
	.a_send = spsc_a_send,
	.a_recv = spsc_a_recv,
	.a_sync = spsc_a_sync,
	.a_done = spsc_a_done,
	.b_recv = spsc_b_recv,
	.b_send = spsc_b_send,
	.b_release = spsc_b_release,
	.b_done = spsc_b_done,
	.thread_syscalls = count_thread_syscalls,
};
