// SPDX-License-Identifier: GPL-2.0
/*
 * pipe: ping-pong over a pair of pipes (A writes S bytes, B reads all S and
 * writes them back, A reads them); stream over one pipe, one element = S
 * bytes read in full. Each pipe's capacity is raised to cover the bytes in
 * flight (S, or window * S for a stream or a batch), at most 1 MiB.
 *
 * Batch: A stages the batch's elements back to back in one buffer and
 * writes them with one write(2) (looping on short writes); B reads whatever
 * is there (a whole batch in one read when it can), and at the end of the
 * batch writes an 8-byte acknowledgement on the second pipe, which A waits
 * for: a pipe's "all consumed".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qdbench.h"

struct pipe_state {
	int	ab[2];		/* A -> B */
	int	ba[2];		/* B -> A (ping-pong; batch: acknowledgements) */
	void	*a_tx, *a_rx, *b_buf;
	size_t	buf_len;	/* a_tx and b_buf: batch * S in batch mode */
	unsigned int a_staged;	/* batch: elements in a_tx not yet written */
	size_t	b_have, b_off;	/* batch: bytes in b_buf, next element */
	uint64_t b_acked;	/* batch: elements consumed, not yet acked */
};

static uint64_t pipe_copied(size_t size)
{
	return 2 * (uint64_t)size;	/* user -> pipe buffer -> user */
}

static int pipe_probe(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static int pipe_open(int fds[2], size_t inflight)
{
	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	/* best effort: an unprivileged limit may refuse it, 64 KiB stays */
	fcntl(fds[1], F_SETPIPE_SZ, (int)pipe_capacity(inflight));
	return 0;
}

static void pipe_teardown(struct run *r)
{
	struct pipe_state *s = r->priv;
	int i;

	if (!s)
		return;
	for (i = 0; i < 2; i++) {
		if (s->ab[i] >= 0)
			close(s->ab[i]);
		if (s->ba[i] >= 0)
			close(s->ba[i]);
	}
	buf_free(s->a_tx, s->buf_len);
	buf_free(s->a_rx, r->size);
	buf_free(s->b_buf, s->buf_len);
	free(s);
	r->priv = NULL;
}

static int pipe_setup(struct run *r)
{
	struct pipe_state *s = calloc(1, sizeof(*s));
	size_t inflight = r->mode == MODE_PINGPONG ? r->size : r->window * r->size;
	int err;

	if (!s)
		return -ENOMEM;
	s->ab[0] = s->ab[1] = s->ba[0] = s->ba[1] = -1;
	r->priv = s;
	err = pipe_open(s->ab, inflight);
	if (!err && r->mode == MODE_PINGPONG)
		err = pipe_open(s->ba, inflight);
	if (!err && r->mode == MODE_BATCH)
		err = pipe_open(s->ba, 0);
	if (err) {
		pipe_teardown(r);
		return err;
	}
	s->buf_len = r->mode == MODE_BATCH ? r->batch * r->size : r->size;
	s->a_tx = buf_alloc(s->buf_len);
	s->a_rx = buf_alloc(r->size);
	s->b_buf = buf_alloc(s->buf_len);
	return 0;
}

static int pipe_a_buf(struct run *r, struct payload *p)
{
	struct pipe_state *s = r->priv;

	pl_flat(p, (char *)s->a_tx + s->a_staged * r->size, r->size);
	return 0;
}

static int pipe_a_send(struct run *r, bool last, bool flush)
{
	struct pipe_state *s = r->priv;
	size_t len;

	(void)last;
	if (r->mode != MODE_BATCH)
		return write_full(s->ab[1], s->a_tx, r->size);
	s->a_staged++;
	if (!flush)
		return 0;
	len = s->a_staged * r->size;
	s->a_staged = 0;
	return write_full(s->ab[1], s->a_tx, len);
}

static int pipe_a_recv(struct run *r, struct payload *p)
{
	struct pipe_state *s = r->priv;

	pl_flat(p, s->a_rx, r->size);
	return read_full(s->ba[0], s->a_rx, r->size);
}

/* Batch: B has consumed everything sent. */
static int pipe_a_sync(struct run *r)
{
	struct pipe_state *s = r->priv;
	uint64_t v;

	return read_full(s->ba[0], &v, sizeof(v));
}

static int pipe_nothing(struct run *r)
{
	(void)r;
	return 0;
}

static int pipe_b_recv(struct run *r, struct payload *p)
{
	struct pipe_state *s = r->priv;
	char *b = s->b_buf;

	if (r->mode != MODE_BATCH) {
		pl_flat(p, s->b_buf, r->size);
		return read_full(s->ab[0], s->b_buf, r->size);
	}
	/* batch: take what is there, at least one whole element */
	if (s->b_have - s->b_off < r->size) {
		s->b_have -= s->b_off;
		memmove(b, b + s->b_off, s->b_have);
		s->b_off = 0;
		while (s->b_have < r->size) {
			ssize_t n = read(s->ab[0], b + s->b_have,
					 s->buf_len - s->b_have);

			tl_syscalls++;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				return -EPIPE;
			s->b_have += n;
		}
	}
	pl_flat(p, b + s->b_off, r->size);
	return 0;
}

static int pipe_b_send(struct run *r, bool last)
{
	struct pipe_state *s = r->priv;

	(void)last;
	return write_full(s->ba[1], s->b_buf, r->size);
}

static int pipe_b_release(struct run *r, bool last, bool flush)
{
	struct pipe_state *s = r->priv;
	int err;

	(void)last;
	if (r->mode != MODE_BATCH)
		return 0;
	s->b_off += r->size;
	s->b_acked++;
	if (!flush)
		return 0;
	err = write_full(s->ba[1], &s->b_acked, sizeof(s->b_acked));
	s->b_acked = 0;
	return err;
}

const struct mech mech_pipe = {
	.name = "pipe",
	.label = "pipe",
	.copied = pipe_copied,
	.probe = pipe_probe,
	.setup = pipe_setup,
	.teardown = pipe_teardown,
	.a_buf = pipe_a_buf,
	.a_send = pipe_a_send,
	.a_recv = pipe_a_recv,
	.a_sync = pipe_a_sync,
	.a_done = pipe_nothing,
	.b_recv = pipe_b_recv,
	.b_send = pipe_b_send,
	.b_release = pipe_b_release,
	.b_done = pipe_nothing,
	.thread_syscalls = count_thread_syscalls,
};
