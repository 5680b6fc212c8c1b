// SPDX-License-Identifier: MIT
/*
 * The echo server: one worker thread per CPU, each owning its listening
 * socket qd (and, with -u, its UDP socket qd), its connections and the
 * table of its operations in flight, and looping on qd_wait_next(): its
 * results in completion order, found in the table by token, so a result
 * costs the same with 10 or 10,000 connections (qd_wait_any() would walk
 * every token per result); the echoes they lead to are submitted once per
 * batch. Nothing is shared between workers: every listener is bound to the
 * same address with SO_REUSEPORT and the kernel spreads connections (and
 * datagrams) across them by hash, so no lock, no hand-off of accepted
 * connections, and each worker's completions arrive on its own ring (libqd
 * gives each thread one). One listener with accepts spread over threads
 * would make every accepted qd cross threads and the idle workers compete
 * for the listener.
 *
 * A TCP connection always has one pop in flight while it may read (a UDP
 * socket UDP_POPS). A pop's
 * bytes (libqd's buffer, ours with the result) are pushed back as they are
 * and freed when that push completes, failed or not. At most MAX_PUSHES
 * echoes are in flight per connection: past that it stops popping until
 * one completes, so a client that sends without reading is throttled by
 * TCP instead of growing our memory. The peer's FIN (a pop of 0 bytes)
 * closes the connection once its echoes have gone; an error closes it at
 * once (its pending pushes complete -ECANCELED). A connection is freed
 * when it is closed and its last operation has been waited for.
 *
 * SIGINT/SIGTERM: the main thread closes the listeners; each worker sees
 * its accepts cancelled, closes its connections, waits for every token,
 * and returns its counts.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qd.h>

#include "echo.h"
#include "pending.h"

#define ACCEPTS		8	/* accepts in flight per listener: bursts */
#define MAX_PUSHES	4	/* echoes in flight per TCP connection */
#define UDP_PUSHES	64	/* echoes in flight per UDP socket */
/*
 * Pops in flight per UDP socket: a pending pop takes a datagram out of the
 * socket as it arrives (in the stack's callback), so a burst waits in our
 * buffers instead of overflowing the socket's receive buffer.
 */
#define UDP_POPS	8
#define BACKLOG		4096	/* capped by net.core.somaxconn */

struct conn {
	int		qd;
	int		ops;		/* tokens in flight that name it */
	int		pushes;		/* of which pushes */
	int		pops;		/* of which pops */
	bool		eof;		/* the peer closed its side */
	bool		closed;		/* qd_close() done */
	bool		udp;
	bool		listener;
	struct conn	*prev, *next;	/* the worker's live connections */
};

struct worker {
	pthread_t		tid;
	int			id;
	const struct server_opts *o;
	struct conn		lsn, udp;	/* listener, UDP socket (qd -1: none) */
	struct conn		conns;		/* list head */
	struct pending		p;
	unsigned long long	accepted, bytes, datagrams, errors;
	int			err;		/* fatal: -errno */
};

static int stop_flag;	/* set by the main thread at SIGINT/SIGTERM */

static bool stopping(void)
{
	return __atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE);
}

static void conn_link(struct worker *w, struct conn *c)
{
	c->next = w->conns.next;
	c->prev = &w->conns;
	w->conns.next->prev = c;
	w->conns.next = c;
}

static void conn_close(struct conn *c)
{
	if (!c->closed) {
		qd_close(c->qd);
		c->closed = true;
	}
}

/* Free a closed connection once nothing in flight names it. */
static void conn_put(struct worker *w, struct conn *c)
{
	if (!c->closed || c->ops || c->listener || c == &w->udp)
		return;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
}

static int add(struct worker *w, qd_token_t qt, enum op_kind k,
	       struct conn *c, const struct qd_sga *sga)
{
	int ret = pending_add(&w->p, qt, k, c, sga);

	if (ret) {
		/* The op runs on; we just cannot track it. Out of memory. */
		fprintf(stderr, "qdecho: worker %d: %s\n", w->id, strerror(-ret));
		w->err = ret;
		return ret;
	}
	c->ops++;
	return 0;
}

static void pop(struct worker *w, struct conn *c)
{
	qd_token_t qt;
	int ret = qd_pop(&qt, c->qd);

	if (ret) {
		w->errors++;
		if (!w->o->quiet)
			fprintf(stderr, "qdecho: pop on qd %d: %s\n", c->qd,
				strerror(-ret));
		conn_close(c);
		return;
	}
	if (!add(w, qt, OP_POP, c, NULL))
		c->pops++;
}

/* Pop (again) unless c's echoes are backed up or it is done. */
static void maybe_pop(struct worker *w, struct conn *c)
{
	int max_pushes = c->udp ? UDP_PUSHES : MAX_PUSHES;
	int max_pops = c->udp ? UDP_POPS : 1;

	while (c->pops < max_pops && !c->closed && !c->eof && !stopping() &&
	       c->pushes < max_pushes && !w->err) {
		int before = c->pops;

		pop(w, c);
		if (c->pops == before)
			break;
	}
}

static void accept_one(struct worker *w)
{
	qd_token_t qt;
	int ret = qd_accept(&qt, w->lsn.qd);

	if (ret) {
		fprintf(stderr, "qdecho: worker %d: accept: %s\n", w->id,
			strerror(-ret));
		w->err = ret;
		return;
	}
	add(w, qt, OP_ACCEPT, &w->lsn, NULL);
}

static void on_accept(struct worker *w, const struct qd_result *r)
{
	struct conn *c;

	if (r->ret < 0) {
		if (stopping() || r->ret == -ECANCELED)
			return;
		/* -EMFILE and friends: this connection is lost, not the server */
		w->errors++;
		if (!w->o->quiet)
			fprintf(stderr, "qdecho: accept: %s\n",
				strerror((int)-r->ret));
		accept_one(w);
		return;
	}
	w->accepted++;
	if (stopping()) {
		/* after close_all(): nobody would close it */
		qd_close(r->value.accept.qd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		qd_close(r->value.accept.qd);
		w->errors++;
	} else {
		c->qd = r->value.accept.qd;
		conn_link(w, c);
		maybe_pop(w, c);
		conn_put(w, c);
	}
	if (!stopping())
		accept_one(w);
}

static void on_pop(struct worker *w, struct conn *c, struct qd_result *r)
{
	struct qd_sga *sga = &r->value.sga;
	qd_token_t qt;
	int ret;

	c->pops--;
	if (c->udp && r->ret <= 0) {
		/* An empty datagram echoes nothing; an error loses one. */
		if (r->ret < 0 && r->ret != -ECANCELED) {
			w->errors++;
			if (!w->o->quiet)
				fprintf(stderr, "qdecho: udp pop: %s\n",
					strerror((int)-r->ret));
		}
		maybe_pop(w, c);
		return;
	}
	if (r->ret <= 0) {
		if (r->ret == 0) {
			/* The peer's FIN: close once the echoes are out. */
			c->eof = true;
			if (!c->pushes)
				conn_close(c);
		} else if (r->ret < 0 && r->ret != -ECANCELED) {
			w->errors++;
			if (!w->o->quiet)
				fprintf(stderr, "qdecho: pop on qd %d: %s\n",
					c->qd, strerror((int)-r->ret));
			conn_close(c);
		}
		return;
	}
	w->bytes += r->ret;
	if (c->udp) {
		w->datagrams++;
		ret = qd_pushto(&qt, c->qd, sga, (struct sockaddr *)&sga->addr,
				sga->addr.ss_family == AF_INET6 ?
				sizeof(struct sockaddr_in6) :
				sizeof(struct sockaddr_in));
	} else {
		ret = qd_push(&qt, c->qd, sga);
	}
	if (ret) {
		qd_sgafree(sga);
		w->errors++;
		if (!w->o->quiet)
			fprintf(stderr, "qdecho: push on qd %d: %s\n", c->qd,
				strerror(-ret));
		if (!c->udp)
			conn_close(c);
	} else if (!add(w, qt, OP_PUSH, c, sga)) {
		c->pushes++;
	}
	maybe_pop(w, c);
}

static void on_push(struct worker *w, struct conn *c, struct op *op,
		    const struct qd_result *r)
{
	/* Ours either way: a failed push's result does not carry it. */
	qd_sgafree(&op->sga);
	c->pushes--;
	if (r->ret < 0 && r->ret != -ECANCELED) {
		w->errors++;
		if (!w->o->quiet)
			fprintf(stderr, "qdecho: push on qd %d: %s\n", c->qd,
				strerror((int)-r->ret));
		if (!c->udp)
			conn_close(c);
	}
	if (c->eof && !c->pushes)
		conn_close(c);
	maybe_pop(w, c);
}

static void close_all(struct worker *w)
{
	struct conn *c;

	for (c = w->conns.next; c != &w->conns; c = c->next)
		conn_close(c);
}

#define BATCH	64

static void *worker_main(void *arg)
{
	static __thread struct qd_result rs[BATCH];
	struct worker *w = arg;
	bool closing = false;
	struct conn *c;
	struct op op;
	int i, k, n, ret;

	for (i = 0; i < ACCEPTS && !w->err; i++)
		accept_one(w);
	if (w->udp.qd >= 0)
		maybe_pop(w, &w->udp);
	while (w->p.n > 0) {
		if (stopping() && !closing) {
			closing = true;
			close_all(w);
		}
		ret = qd_wait_next(rs, BATCH, &n, NULL);
		if (ret) {
			fprintf(stderr, "qdecho: worker %d: wait: %s\n", w->id,
				strerror(-ret));
			w->err = ret;
			break;
		}
		for (k = 0; k < n; k++) {
			i = pending_find(&w->p, rs[k].qt);
			if (i < 0)
				continue;	/* not ours: cannot happen */
			pending_take(&w->p, i, &op);
			c = op.owner;
			c->ops--;
			switch (op.kind) {
			case OP_ACCEPT:
				on_accept(w, &rs[k]);
				break;
			case OP_POP:
				on_pop(w, c, &rs[k]);
				break;
			case OP_PUSH:
				on_push(w, c, &op, &rs[k]);
				break;
			default:
				break;
			}
			conn_put(w, c);
		}
		/* this batch's echoes go now, in one system call */
		qd_submit();
	}
	if (!closing)
		close_all(w);
	pending_free(&w->p);
	return NULL;
}

/* A socket qd of type bound to *sa with SO_REUSEPORT; -errno. */
static int bound(int type, struct sockaddr_storage *sa, socklen_t len,
		 int *qd_out)
{
	int on = 1, off = 0, qd, ret;

	ret = qd_socket(&qd, sa->ss_family, type, 0);
	if (ret)
		return ret;
	ret = qd_setsockopt(qd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (!ret)
		ret = qd_setsockopt(qd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	/* "::" serves IPv4 too, whatever net.ipv6.bindv6only says */
	if (!ret && sa->ss_family == AF_INET6)
		ret = qd_setsockopt(qd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
				    sizeof(off));
	if (!ret)
		ret = qd_bind(qd, (struct sockaddr *)sa, len);
	if (!ret && type == SOCK_STREAM)
		ret = qd_listen(qd, BACKLOG);
	if (ret) {
		qd_close(qd);
		return ret;
	}
	*qd_out = qd;
	return 0;
}

/* The address to serve: -a, else :: (or 0.0.0.0 without IPv6). */
static int resolve(const char *addr, int family, unsigned short port,
		   struct sockaddr_storage *sa, socklen_t *len)
{
	struct addrinfo hints = { .ai_family = family,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST };
	struct addrinfo *ai;
	char portstr[8];
	int ret;

	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(addr, portstr, &hints, &ai);
	if (ret) {
		fprintf(stderr, "qdecho: address '%s': %s\n", addr ? addr : "",
			gai_strerror(ret));
		return -EINVAL;
	}
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Make every worker's sockets, all on one port (the first one's when 0). */
static int make_sockets(const struct server_opts *o, struct worker *ws,
			struct sockaddr_storage *sa, socklen_t *len)
{
	const char *what = "tcp";
	int i, ret;

	for (i = 0; i < o->threads; i++) {
		ret = bound(SOCK_STREAM, sa, *len, &ws[i].lsn.qd);
		if (!ret && i == 0) {
			/* the port the kernel picked, for the others and -u */
			ret = qd_getsockname(ws[0].lsn.qd, (struct sockaddr *)sa,
					     len);
		}
		if (!ret && o->udp) {
			what = "udp";
			ret = bound(SOCK_DGRAM, sa, *len, &ws[i].udp.qd);
		}
		if (ret) {
			char buf[80];

			fprintf(stderr, "qdecho: %s socket on %s: %s\n", what,
				addr_str((struct sockaddr *)sa, buf, sizeof(buf)),
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int server_run(const struct server_opts *o)
{
	struct sockaddr_storage sa;
	unsigned long long acc = 0, bytes = 0, dgrams = 0, errs = 0;
	struct worker *ws;
	sigset_t sigs;
	socklen_t len;
	char buf[80];
	int i, sig, ret, failed = 0, started = 0;

	ret = qd_init();
	if (ret) {
		fprintf(stderr, "qdecho: qd_init: %s%s\n", strerror(-ret),
			ret == -ENOENT ? " (is qd.ko loaded?)" : "");
		return 1;
	}
	if (resolve(o->addr ? o->addr : "::", AF_UNSPEC, o->port, &sa, &len))
		return 1;
	ws = calloc(o->threads, sizeof(*ws));
	if (!ws) {
		perror("qdecho");
		return 1;
	}
	for (i = 0; i < o->threads; i++) {
		ws[i].id = i;
		ws[i].o = o;
		ws[i].lsn.qd = ws[i].udp.qd = -1;
		ws[i].lsn.listener = true;
		ws[i].udp.udp = true;
		ws[i].conns.next = ws[i].conns.prev = &ws[i].conns;
	}
	ret = make_sockets(o, ws, &sa, &len);
	/* No IPv6 in this kernel: the default address falls back to IPv4. */
	if (ret == -EAFNOSUPPORT && !o->addr) {
		if (resolve("0.0.0.0", AF_INET, o->port, &sa, &len))
			return 1;
		ret = make_sockets(o, ws, &sa, &len);
	}
	if (ret)
		return 1;

	/* Workers inherit the blocked signals; only sigwait() takes them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	for (i = 0; i < o->threads; i++) {
		ret = pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
		if (ret) {
			fprintf(stderr, "qdecho: thread: %s\n", strerror(ret));
			break;
		}
		started++;
	}
	if (started == o->threads) {
		printf("qdecho: listening on %s tcp%s, %d thread%s\n",
		       addr_str((struct sockaddr *)&sa, buf, sizeof(buf)),
		       o->udp ? "+udp" : "", o->threads,
		       o->threads == 1 ? "" : "s");
		fflush(stdout);
		sigwait(&sigs, &sig);
	} else {
		failed = 1;
	}

	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
	/* Cancels the accepts and UDP pops: every worker wakes and winds up. */
	for (i = 0; i < o->threads; i++) {
		qd_close(ws[i].lsn.qd);
		if (ws[i].udp.qd >= 0)
			qd_close(ws[i].udp.qd);
	}
	for (i = 0; i < started; i++) {
		pthread_join(ws[i].tid, NULL);
		acc += ws[i].accepted;
		bytes += ws[i].bytes;
		dgrams += ws[i].datagrams;
		errs += ws[i].errors;
		if (ws[i].err)
			failed = 1;
	}
	printf("qdecho: stopped: %llu connections, %llu datagrams, %llu bytes echoed, %llu errors\n",
	       acc, dgrams, bytes, errs);
	free(ws);
	return failed;
}
