// SPDX-License-Identifier: GPL-2.0
/*
 * pipe: ping-pong over a pair of pipes (A writes S bytes, B reads all S and
 * writes them back, A reads them); stream over one pipe, one element = S
 * bytes read in full. Each pipe's capacity is raised to cover the bytes in
 * flight (S, or window * S for a stream), at most 1 MiB.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "qdbench.h"

struct pipe_state {
	int	ab[2];		/* A -> B */
	int	ba[2];		/* B -> A (ping-pong) */
	void	*a_tx, *a_rx, *b_buf;
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
	buf_free(s->a_tx, r->size);
	buf_free(s->a_rx, r->size);
	buf_free(s->b_buf, r->size);
	free(s);
	r->priv = NULL;
}

static int pipe_setup(struct run *r)
{
	struct pipe_state *s = calloc(1, sizeof(*s));
	size_t inflight = r->mode == MODE_STREAM ? r->window * r->size : r->size;
	int err;

	if (!s)
		return -ENOMEM;
	s->ab[0] = s->ab[1] = s->ba[0] = s->ba[1] = -1;
	r->priv = s;
	err = pipe_open(s->ab, inflight);
	if (!err && r->mode == MODE_PINGPONG)
		err = pipe_open(s->ba, inflight);
	if (err) {
		pipe_teardown(r);
		return err;
	}
	s->a_tx = buf_alloc(r->size);
	s->a_rx = buf_alloc(r->size);
	s->b_buf = buf_alloc(r->size);
	return 0;
}

static int pipe_a_buf(struct run *r, struct payload *p)
{
	struct pipe_state *s = r->priv;

	pl_flat(p, s->a_tx, r->size);
	return 0;
}

static int pipe_a_send(struct run *r, bool last)
{
	struct pipe_state *s = r->priv;

	(void)last;
	return write_full(s->ab[1], s->a_tx, r->size);
}

static int pipe_a_recv(struct run *r, struct payload *p)
{
	struct pipe_state *s = r->priv;

	pl_flat(p, s->a_rx, r->size);
	return read_full(s->ba[0], s->a_rx, r->size);
}

static int pipe_nothing(struct run *r)
{
	(void)r;
	return 0;
}

static int pipe_b_recv(struct run *r, struct payload *p)
{
	struct pipe_state *s = r->priv;

	pl_flat(p, s->b_buf, r->size);
	return read_full(s->ab[0], s->b_buf, r->size);
}

static int pipe_b_send(struct run *r, bool last)
{
	struct pipe_state *s = r->priv;

	(void)last;
	return write_full(s->ba[1], s->b_buf, r->size);
}

static int pipe_b_release(struct run *r, bool last)
{
	(void)r;
	(void)last;
	return 0;
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
	.a_done = pipe_nothing,
	.b_recv = pipe_b_recv,
	.b_send = pipe_b_send,
	.b_release = pipe_b_release,
	.b_done = pipe_nothing,
	.thread_syscalls = count_thread_syscalls,
};
