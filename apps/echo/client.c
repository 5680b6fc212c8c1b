// SPDX-License-Identifier: MIT
/*
 * qdecho client: CONNS connections (TCP, or connected UDP sockets with -u)
 * to any echo server, all driven by one thread through qd_wait_any(). Each
 * sends MSGS messages of SIZE bytes one after the other: the push and the
 * pops that gather its echo are in flight together, and every byte that
 * comes back is compared with what was sent (a pattern of the connection,
 * the message and the offset, so a byte from the wrong connection, message
 * or place is caught). The next message goes when the whole echo is in.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <qd.h>

#include "echo.h"
#include "pending.h"

struct cconn {
	int		id, qd;
	long		msg;		/* the message in flight */
	long		got;		/* its bytes back so far */
	bool		pushing, popping, done;
};

struct client {
	const struct client_opts *o;
	struct sockaddr_storage	sa;
	socklen_t		salen;
	struct cconn		*cs;
	struct pending		p;
	int			done;
	unsigned long long	bytes;
};

static uint8_t pattern(int conn, long msg, long off)
{
	return (uint8_t)(off * 7 + (off >> 8) + msg * 13 + conn * 31);
}

static int fail(struct cconn *c, const char *what, int err)
{
	fprintf(stderr, "qdecho client: connection %d, message %ld: %s: %s\n",
		c->id, c->msg, what, strerror(err));
	return -1;
}

static int track(struct client *cl, qd_token_t qt, enum op_kind k,
		 struct cconn *c, const struct qd_sga *sga)
{
	int ret = pending_add(&cl->p, qt, k, c, sga);

	return ret ? fail(c, "tracking", -ret) : 0;
}

static int send_msg(struct client *cl, struct cconn *c)
{
	struct qd_sga sga = qd_sgaalloc(cl->o->size);
	uint8_t *b;
	qd_token_t qt;
	long i;
	int ret;

	if (!sga.numsegs)
		return fail(c, "qd_sgaalloc", errno);
	b = sga.segs[0].buf;
	for (i = 0; i < cl->o->size; i++)
		b[i] = pattern(c->id, c->msg, i);
	ret = qd_push(&qt, c->qd, &sga);
	if (ret) {
		qd_sgafree(&sga);
		return fail(c, "qd_push", -ret);
	}
	c->got = 0;
	c->pushing = true;
	return track(cl, qt, OP_PUSH, c, &sga);
}

static int pop(struct client *cl, struct cconn *c)
{
	qd_token_t qt;
	int ret = qd_pop(&qt, c->qd);

	if (ret)
		return fail(c, "qd_pop", -ret);
	c->popping = true;
	return track(cl, qt, OP_POP, c, NULL);
}

/* Both halves of message c->msg are in: the next one, or the end. */
static int next_msg(struct client *cl, struct cconn *c)
{
	if (c->pushing || c->got < cl->o->size)
		return 0;
	if (++c->msg < cl->o->msgs)
		return send_msg(cl, c) ?: pop(cl, c);
	c->done = true;
	cl->done++;
	qd_close(c->qd);
	return 0;
}

static int on_connect(struct client *cl, struct cconn *c,
		      const struct qd_result *r)
{
	if (r->ret < 0)
		return fail(c, "connect", (int)-r->ret);
	return send_msg(cl, c) ?: pop(cl, c);
}

/* Compare what arrived with what message c->msg holds there. */
static int check(struct client *cl, struct cconn *c, const struct qd_sga *sga)
{
	uint32_t s, i;

	for (s = 0; s < sga->numsegs; s++) {
		const uint8_t *b = sga->segs[s].buf;

		for (i = 0; i < sga->segs[s].len; i++, c->got++) {
			uint8_t want = pattern(c->id, c->msg, c->got);

			if (c->got >= cl->o->size) {
				fprintf(stderr, "qdecho client: connection %d, message %ld: more than %ld bytes came back\n",
					c->id, c->msg, cl->o->size);
				return -1;
			}
			if (b[i] != want) {
				fprintf(stderr, "qdecho client: connection %d, message %ld: byte %ld is 0x%02x, sent 0x%02x\n",
					c->id, c->msg, c->got, b[i], want);
				return -1;
			}
		}
	}
	return 0;
}

static int on_pop(struct client *cl, struct cconn *c, struct qd_result *r)
{
	int ret;

	c->popping = false;
	if (r->ret < 0)
		return fail(c, "pop", (int)-r->ret);
	if (r->ret == 0 && !cl->o->udp) {
		fprintf(stderr, "qdecho client: connection %d, message %ld: the server closed after %ld of %ld bytes\n",
			c->id, c->msg, c->got, cl->o->size);
		return -1;
	}
	if (cl->o->udp && (r->value.sga.flags & QD_SGA_TRUNC)) {
		qd_sgafree(&r->value.sga);
		return fail(c, "datagram", EMSGSIZE);
	}
	ret = check(cl, c, &r->value.sga);
	if (r->value.sga.numsegs)
		qd_sgafree(&r->value.sga);
	if (ret)
		return ret;
	cl->bytes += r->ret;
	if (cl->o->udp && c->got != cl->o->size) {
		fprintf(stderr, "qdecho client: connection %d, message %ld: a datagram of %ld bytes came back, sent %ld\n",
			c->id, c->msg, c->got, cl->o->size);
		return -1;
	}
	if (c->got < cl->o->size)
		return pop(cl, c);
	return next_msg(cl, c);
}

static int on_push(struct client *cl, struct cconn *c, struct op *op,
		   const struct qd_result *r)
{
	qd_sgafree(&op->sga);
	c->pushing = false;
	if (r->ret < 0)
		return fail(c, "push", (int)-r->ret);
	if (r->ret != cl->o->size) {
		fprintf(stderr, "qdecho client: connection %d, message %ld: push sent %lld of %ld bytes\n",
			c->id, c->msg, (long long)r->ret, cl->o->size);
		return -1;
	}
	return next_msg(cl, c);
}

static int start(struct client *cl, struct cconn *c)
{
	qd_token_t qt;
	int ret;

	ret = qd_socket(&c->qd, cl->sa.ss_family,
			cl->o->udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (ret)
		return fail(c, "qd_socket", -ret);
	ret = qd_connect(&qt, c->qd, (struct sockaddr *)&cl->sa, cl->salen);
	if (ret)
		return fail(c, "qd_connect", -ret);
	return track(cl, qt, OP_CONNECT, c, NULL);
}

static int resolve(struct client *cl)
{
	struct addrinfo hints = {
		.ai_socktype = cl->o->udp ? SOCK_DGRAM : SOCK_STREAM,
	};
	struct addrinfo *ai;
	int ret;

	ret = getaddrinfo(cl->o->host, cl->o->port, &hints, &ai);
	if (ret) {
		fprintf(stderr, "qdecho client: %s port %s: %s\n", cl->o->host,
			cl->o->port, gai_strerror(ret));
		return -1;
	}
	memcpy(&cl->sa, ai->ai_addr, ai->ai_addrlen);
	cl->salen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int client_run(const struct client_opts *o)
{
	struct timespec tmo = { o->timeout_ms / 1000,
				(o->timeout_ms % 1000) * 1000000L };
	struct client cl = { .o = o };
	struct qd_result r;
	struct cconn *c;
	struct op op;
	double t0 = now();
	char buf[80];
	int i, ret = 0;

	if (resolve(&cl))
		return 1;
	ret = qd_init();
	if (ret) {
		fprintf(stderr, "qdecho client: qd_init: %s\n", strerror(-ret));
		return 1;
	}
	cl.cs = calloc(o->conns, sizeof(*cl.cs));
	if (!cl.cs) {
		perror("qdecho client");
		return 1;
	}
	for (i = 0; i < o->conns && !ret; i++) {
		cl.cs[i].id = i;
		ret = start(&cl, &cl.cs[i]);
	}
	while (!ret && cl.done < o->conns) {
		ret = qd_wait_any(&r, &i, cl.p.qts, cl.p.n, &tmo);
		if (ret == -ETIMEDOUT) {
			fprintf(stderr, "qdecho client: nothing came back for %d ms (%d of %d connections done)\n",
				o->timeout_ms, cl.done, o->conns);
			break;
		}
		if (ret) {
			fprintf(stderr, "qdecho client: wait: %s\n", strerror(-ret));
			break;
		}
		pending_take(&cl.p, i, &op);
		c = op.owner;
		switch (op.kind) {
		case OP_CONNECT:
			ret = on_connect(&cl, c, &r);
			break;
		case OP_POP:
			ret = on_pop(&cl, c, &r);
			break;
		case OP_PUSH:
			ret = on_push(&cl, c, &op, &r);
			break;
		default:
			ret = -1;
			break;
		}
	}
	if (cl.done == o->conns) {
		printf("qdecho client: %s: %d connection%s x %ld message%s x %ld bytes echoed and checked in %.3f s\n",
		       addr_str((struct sockaddr *)&cl.sa, buf, sizeof(buf)),
		       o->conns, o->conns == 1 ? "" : "s", o->msgs,
		       o->msgs == 1 ? "" : "s", o->size, now() - t0);
	}
	/* The process's exit closes the qds and releases what is in flight. */
	pending_free(&cl.p);
	free(cl.cs);
	return cl.done == o->conns ? 0 : 1;
}
