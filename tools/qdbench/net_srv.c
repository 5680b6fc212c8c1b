// SPDX-License-Identifier: GPL-2.0
/*
 * qdbench net's servers on system calls and on qd: epoll with nonblocking
 * read/write, a thread per connection with blocking read/write, and qd
 * socket qds through libqd. Each echoes what it receives at once, as an
 * application would, and adds the bytes its calls moved to net_cnt.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#ifndef QDBENCH_NO_LIBQD
#include <qd.h>
#endif

struct net_count net_cnt;

int net_lfd = -1;

/* A TCP listener on 127.0.0.1, an ephemeral port: the port, or -errno. */
int net_listen_tcp(bool nonblock)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	net_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
		     (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (net_lfd < 0)
		return -errno;
	/* accepted sockets inherit TCP_NODELAY from the listener */
	if (setsockopt(net_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(net_lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    bind(net_lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(net_lfd, NET_BACKLOG) ||
	    getsockname(net_lfd, (struct sockaddr *)&a, &len))
		return -errno;
	return ntohs(a.sin_port);
}

static int always(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

/* ---- epoll: one thread, level-triggered, nonblocking read/write ---- */

struct ep_conn {
	int		fd;
	uint32_t	off, len;	/* bytes read but not yet written */
	char		buf[NET_BUF];
};

static int ep_listen(void)
{
	return net_listen_tcp(true);
}

static void ep_close(int ep, struct ep_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

static int ep_mod(int ep, struct ep_conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) ? -errno : 0;
}

static int ep_accept(int ep)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ep_conn *c;
	int fd;

	while ((fd = accept4(net_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		c = malloc(sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->fd = fd;
		c->off = c->len = 0;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
			return -errno;
	}
	return errno == EAGAIN || errno == ECONNABORTED ? 0 : -errno;
}

/* What is left to write, written; EPOLLIN again once it all went. */
static int ep_flush(int ep, struct ep_conn *c)
{
	ssize_t w = write(c->fd, c->buf + c->off, c->len);

	if (w < 0)
		return errno == EAGAIN ? 0 : -errno;
	net_add(&net_cnt.tx, w);
	c->off += w;
	c->len -= w;
	return c->len ? 0 : ep_mod(ep, c, EPOLLIN);
}

/* One read per readiness event, and its bytes written back at once. */
static int ep_echo(int ep, struct ep_conn *c)
{
	ssize_t r = read(c->fd, c->buf, sizeof(c->buf)), w;

	if (r <= 0)
		return r < 0 && errno == EAGAIN ? 0 : -EPIPE;
	net_add(&net_cnt.rx, r);
	w = write(c->fd, c->buf, r);
	if (w < 0) {
		if (errno != EAGAIN)
			return -errno;
		w = 0;
	}
	net_add(&net_cnt.tx, w);
	if (w == r)
		return 0;
	/* the socket is full: wait for room, reading nothing meanwhile */
	c->off = w;
	c->len = r - w;
	return ep_mod(ep, c, EPOLLOUT);
}

static int ep_serve(void)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC), n, i, ret;

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, net_lfd, &ev))
		return -errno;
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (i = 0; i < n; i++) {
			struct ep_conn *c = evs[i].data.ptr;

			if (!c) {
				ret = ep_accept(ep);
				if (ret)
					return ret;
				continue;
			}
			ret = c->len ? ep_flush(ep, c) : ep_echo(ep, c);
			if (ret)
				ep_close(ep, c);
		}
	}
}

const struct net_srv net_epoll = {
	.name = "epoll",
	.label = "epoll",
	.probe = always,
	.listen = ep_listen,
	.serve = ep_serve,
};

/* ---- a thread per connection, blocking read/write ---- */

static void *th_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(NET_BUF);
	ssize_t r, w, off;

	while (buf) {
		r = read(fd, buf, NET_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		net_add(&net_cnt.rx, r);
		for (off = 0; off < r; off += w) {
			w = write(fd, buf + off, r - off);
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w < 0)
				goto out;
			net_add(&net_cnt.tx, w);
		}
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static int th_listen(void)
{
	return net_listen_tcp(false);
}

static int th_serve(void)
{
	pthread_attr_t at;
	pthread_t t;
	int fd;

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64 << 10);
	for (;;) {
		fd = accept4(net_lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return -errno;
		}
		if (pthread_create(&t, &at, th_conn, (void *)(intptr_t)fd))
			return -EAGAIN;
	}
}

const struct net_srv net_threads = {
	.name = "threads",
	.label = "threads",
	.probe = always,
	.listen = th_listen,
	.serve = th_serve,
};

/* ---- qd: socket qds, every accept, pop and push an operation ---- */

#ifdef QDBENCH_NO_LIBQD

static int nq_probe(char *why, size_t len)
{
	snprintf(why, len, "qdbench was built without libqd (NO_LIBQD=1)");
	return -ENOSYS;
}

int net_qd_pop_opt(const char *arg)
{
	(void)arg;
	return 0;
}

int net_qd_wait_opt(const char *arg)
{
	(void)arg;
	return 0;
}

const struct net_srv net_qd = {
	.name = "qd",
	.label = "qd",
	.probe = nq_probe,
};

#else

/*
 * The server tcp-echo.c is: the tokens of every pending operation in one
 * array, qd_wait_any() over all of them; a popped buffer (libqd's) is
 * pushed back as it is and freed when that push completes. A connection
 * has one multishot pop (qd_pop_multi(): its token gives every chunk until
 * the peer closes), or with --qd-pop single a pop posted again after each
 * chunk, and as many pushes as have not completed (they go out in order).
 */
enum nq_kind { NQ_ACCEPT, NQ_POP, NQ_POPM, NQ_PUSH };

#define NQ_MAX_TOKENS	16384

static qd_token_t nq_tokens[NQ_MAX_TOKENS];
static uint8_t nq_kinds[NQ_MAX_TOKENS];
static int nq_n, nq_lq = -1;
static bool nq_multi = true;	/* --qd-pop multi */
/* --qd-wait: qd_wait_next() (no token array), _any_many(), _any() */
static enum { NQ_NEXT, NQ_MANY, NQ_ANY } nq_wait = NQ_NEXT;

/* In the driver: no context there (the server's process makes its own). */
static int nq_probe(char *why, size_t len)
{
	if (access("/dev/qd", R_OK | W_OK)) {
		snprintf(why, len, "/dev/qd: %s (qd.ko not loaded?)", strerror(errno));
		return -errno;
	}
	return 0;
}

static int nq_add(qd_token_t qt, enum nq_kind k)
{
	if (nq_wait == NQ_NEXT)
		return 0;	/* results come with what they are */
	if (nq_n == NQ_MAX_TOKENS)
		return -ENOSPC;
	nq_tokens[nq_n] = qt;
	nq_kinds[nq_n++] = k;
	return 0;
}

static int nq_listen(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1, ret;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ret = qd_socket(&nq_lq, AF_INET, SOCK_STREAM, 0)) ||
	    (ret = qd_setsockopt(nq_lq, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) ||
	    (ret = qd_setsockopt(nq_lq, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))) ||
	    (ret = qd_bind(nq_lq, (struct sockaddr *)&a, sizeof(a))) ||
	    (ret = qd_listen(nq_lq, NET_BACKLOG)) ||
	    (ret = qd_getsockname(nq_lq, (struct sockaddr *)&a, &len)))
		return ret;
	return ntohs(a.sin_port);
}

/* A connection's pop: multishot (one token for all its chunks) if we may. */
static int nq_pop(int qd)
{
	qd_token_t qt;
	int ret = -EOPNOTSUPP;

	if (nq_multi) {
		ret = qd_pop_multi(&qt, qd);
		if (!ret)
			return nq_add(qt, NQ_POPM);
		if (ret != -EOPNOTSUPP && ret != -EINVAL)
			return ret;
		nq_multi = false;	/* the kernel has no multishot TCP pop */
	}
	ret = qd_pop(&qt, qd);
	return ret ? ret : nq_add(qt, NQ_POP);
}

/* One result: what it leads to is appended; 1 if its token is done. */
static int nq_handle(const struct qd_result *qr, enum nq_kind k, int *ret)
{
	struct qd_sga sga = qr->value.sga;
	qd_token_t qt;

	*ret = 0;
	switch (k) {
	case NQ_ACCEPT:
		if (qr->ret < 0) {
			*ret = (int)qr->ret;
			break;
		}
		if ((*ret = nq_pop(qr->value.accept.qd)) ||
		    (*ret = qd_accept(&qt, nq_lq)))
			break;
		*ret = nq_add(qt, NQ_ACCEPT);
		break;
	case NQ_POP:
	case NQ_POPM:
		if (qr->ret <= 0) {	/* the peer closed, or an error */
			qd_close(qr->qd);
			break;
		}
		net_add(&net_cnt.rx, qr->ret);
		if (qd_push(&qt, qr->qd, &sga))
			qd_sgafree(&sga);
		else if ((*ret = nq_add(qt, NQ_PUSH)))
			break;
		if (k == NQ_POP)
			*ret = nq_pop(qr->qd);
		break;
	case NQ_PUSH:
		/* value.sga names the buffer only on success */
		if (qr->ret >= 0) {
			net_add(&net_cnt.tx, qr->ret);
			qd_sgafree(&sga);
		}
		break;
	}
	/* a multishot pop's token lives on until its final result */
	return k != NQ_POPM || qr->ret <= 0;
}

#define NQ_BATCH	64

/* What a result of qd_wait_next() is, from its opcode. */
static enum nq_kind nq_kind_of(const struct qd_result *qr)
{
	switch (qr->opcode) {
	case QD_OPC_ACCEPT:
		return NQ_ACCEPT;
	case QD_OPC_POP:
		return nq_multi ? NQ_POPM : NQ_POP;
	default:
		return NQ_PUSH;
	}
}

static int nq_serve(void)
{
	static struct qd_result qrs[NQ_BATCH];
	int offs[NQ_BATCH], rm[NQ_BATCH];
	int i, j, n, nrm, ret, t;
	qd_token_t qt;

	ret = qd_accept(&qt, nq_lq);
	if (ret || (ret = nq_add(qt, NQ_ACCEPT)))
		return ret;
	for (;;) {
		if (nq_wait == NQ_NEXT) {
			ret = qd_wait_next(qrs, NQ_BATCH, &n, NULL);
			for (i = 0; !ret && i < n; i++)
				nq_handle(&qrs[i], nq_kind_of(&qrs[i]), &ret);
			/*
			 * The echoes go now, one system call per batch (as
			 * io_uring's submit_and_wait per round), not when the
			 * next wait would sleep or the SQ fills.
			 */
			if (!ret)
				ret = qd_submit();
			if (ret)
				return ret;
			continue;
		}
		if (nq_wait == NQ_MANY) {
			ret = qd_wait_any_many(qrs, offs, NQ_BATCH, &n, nq_tokens,
					       nq_n, NULL);
		} else {
			ret = qd_wait_any(&qrs[0], &offs[0], nq_tokens, nq_n, NULL);
			n = 1;
		}
		if (ret)
			return ret;
		/* handle all (new tokens go to the end), then drop the done
		 * ones from the highest index down: each is replaced by the
		 * last token, which is never one still to drop */
		for (i = nrm = 0; i < n; i++) {
			if (nq_handle(&qrs[i], nq_kinds[offs[i]], &ret)) {
				for (j = nrm++; j > 0 && rm[j - 1] < offs[i]; j--)
					rm[j] = rm[j - 1];
				rm[j] = offs[i];
			}
			if (ret)
				return ret;
		}
		for (i = 0; i < nrm; i++) {
			t = rm[i];
			nq_tokens[t] = nq_tokens[--nq_n];
			nq_kinds[t] = nq_kinds[nq_n];
		}
	}
}

static const char *nq_note(void)
{
	static char note[320];

	snprintf(note, sizeof(note), "%s; %s",
		 nq_multi ? "qd_pop_multi() per connection (a multishot pool pop: one token for all "
			    "its chunks; qd_pop() if the kernel refuses)" :
			    "qd_pop() per chunk (--qd-pop single)",
		 nq_wait == NQ_NEXT ? "qd_wait_next(): results in completion order, no token array" :
		 nq_wait == NQ_MANY ? "qd_wait_any_many(): every ready result per walk of the tokens (--qd-wait many)" :
			   "qd_wait_any(): one result per walk of the tokens (--qd-wait any)");
	return note;
}

/* --qd-wait next|many|any */
int net_qd_wait_opt(const char *arg)
{
	if (!strcmp(arg, "next"))
		nq_wait = NQ_NEXT;
	else if (!strcmp(arg, "many"))
		nq_wait = NQ_MANY;
	else if (!strcmp(arg, "any"))
		nq_wait = NQ_ANY;
	else
		return -EINVAL;
	return 0;
}

/* --qd-pop multi|single */
int net_qd_pop_opt(const char *arg)
{
	if (!strcmp(arg, "multi"))
		nq_multi = true;
	else if (!strcmp(arg, "single"))
		nq_multi = false;
	else
		return -EINVAL;
	return 0;
}

static uint64_t nq_syscalls(void)
{
	struct qd_stats st;

	return qd_stats(&st) ? 0 : st.syscalls;
}

const struct net_srv net_qd = {
	.name = "qd",
	.label = "qd",
	.probe = nq_probe,
	.note = nq_note,
	.listen = nq_listen,
	.serve = nq_serve,
	.lib_syscalls = nq_syscalls,
	.qd_counters = true,
};

#endif
