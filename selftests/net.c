// SPDX-License-Identifier: GPL-2.0
/*
 * net: kernel TCP and UDP sockets as qds, over loopback — libqd's socket
 * API against plain Linux sockets both ways, the server rules (orderly
 * close, reset, refused, cancel on close), datagrams with their source and
 * truncation, ordering of many pending pops and accepts, bad input through
 * libqd and the raw ABI, credentials (a privileged bind after dropping the
 * capability), and clean-up after SIGKILL.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <qd.h>

#include "qd_raw.h"
#include "qd_net.h"
#include "qd_proc.h"
#include "qd_child.h"
#include "harness.h"

static const struct timespec LONG = { 5, 0 };
static const struct timespec SHORT = { 0, 50 * 1000 * 1000 };	/* 50 ms */

/* A qd socket bound to 127.0.0.1 (port 0: any), its address in *a. */
static int qd_bound(int type, struct sockaddr_in *a, int *qd)
{
	socklen_t len = sizeof(*a);
	int ret;

	*a = lo4(0);
	ret = qd_socket(qd, AF_INET, type, 0);
	if (!ret)
		ret = qd_bind(*qd, (struct sockaddr *)a, sizeof(*a));
	if (!ret)
		ret = qd_getsockname(*qd, (struct sockaddr *)a, &len);
	return ret;
}

static int qd_listener(struct sockaddr_in *a, int *qd)
{
	int ret = qd_bound(SOCK_STREAM, a, qd);

	return ret ? ret : qd_listen(*qd, 64);
}

/* Wait for qt with the long timeout: its result's ret, or -ETIME. */
static int64_t waitr(qd_token_t qt, struct qd_result *qr)
{
	struct qd_result tmp;

	if (!qr)
		qr = &tmp;
	if (qd_wait(qr, qt, &LONG))
		return -ETIME;
	if (qr->ret > 0 && qr->opcode == QD_OPC_POP && !qr->value.sga.numsegs)
		return -EPROTO;
	return qr->ret;
}

/* Push len bytes of buf through a fresh buffer, waiting for it. */
static int64_t push_bytes(int qd, const void *buf, size_t len)
{
	struct qd_sga sga = qd_sgaalloc(len);
	qd_token_t qt;
	int64_t ret;

	if (!sga.numsegs)
		return -ENOMEM;
	memcpy(sga.segs[0].buf, buf, len);
	ret = qd_push(&qt, qd, &sga);
	if (!ret)
		ret = waitr(qt, NULL);
	qd_sgafree(&sga);
	return ret;
}

/* Pop once; the bytes into out (up to cap); the popped count or -errno. */
static int64_t pop_bytes(int qd, void *out, size_t cap)
{
	struct qd_result qr;
	qd_token_t qt;
	int64_t ret;
	size_t n = 0;
	uint32_t i;

	ret = qd_pop(&qt, qd);
	if (ret)
		return ret;
	ret = waitr(qt, &qr);
	if (ret <= 0)
		return ret;
	for (i = 0; i < qr.value.sga.numsegs; i++) {
		size_t c = qr.value.sga.segs[i].len;

		if (n + c > cap)
			c = cap - n;
		memcpy((char *)out + n, qr.value.sga.segs[i].buf, c);
		n += c;
	}
	qd_sgafree(&qr.value.sga);
	return ret;
}

/* Pop until n bytes arrived (TCP may split them). */
static int pop_exact(int qd, void *out, size_t n)
{
	size_t got = 0;
	int64_t ret;

	while (got < n) {
		ret = pop_bytes(qd, (char *)out + got, n - got);
		if (ret <= 0)
			return ret ? (int)ret : -EPIPE;
		got += ret;
	}
	return 0;
}

/* qd_accept() and wait: the new qd (peer in *peer if given) or -errno. */
static int accept_qd(int lq, struct sockaddr_storage *peer)
{
	struct qd_result qr;
	qd_token_t qt;
	int64_t ret;

	ret = qd_accept(&qt, lq);
	if (ret)
		return ret;
	ret = waitr(qt, &qr);
	if (ret < 0)
		return ret;
	if (qr.opcode != QD_OPC_ACCEPT || qr.value.accept.qd != ret)
		return -EPROTO;
	if (peer)
		*peer = qr.value.accept.addr;
	return ret;
}

/* A connected pair: a qd server side (*sq) and a plain client (*cfd). */
static int qd_pair(int *lq, int *sq, int *cfd)
{
	struct sockaddr_in a;
	int ret = qd_listener(&a, lq);

	if (ret)
		return ret;
	*cfd = plain_connect(&a);
	if (*cfd < 0)
		return *cfd;
	*sq = accept_qd(*lq, NULL);
	return *sq < 0 ? *sq : 0;
}

static long long proc_key(const char *key)
{
	return qd_kv(QD_PROC_PATH, key);
}

FIXTURE(net) {
	int unused;
};

FIXTURE_SETUP(net)
{
	qd_proc_wait_idle(0, 0, 3000, NULL);
	ASSERT_EQ(0, lo_up());
	ASSERT_EQ(0, qd_init());
}

FIXTURE_TEARDOWN(net)
{
}

/* --- TCP, both ways with plain sockets -------------------------------- */

TEST_F(net, plain_client_talks_to_a_qd_server)
{
	struct sockaddr_storage peer;
	struct sockaddr_in a, me;
	socklen_t len = sizeof(me);
	char buf[64] = "";
	int lq, sq, cfd;

	ASSERT_EQ(0, qd_listener(&a, &lq));
	cfd = plain_connect(&a);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, getsockname(cfd, (struct sockaddr *)&me, &len));
	sq = accept_qd(lq, &peer);
	ASSERT_LE(0, sq);
	/* the accept's peer is the client */
	EXPECT_EQ(AF_INET, peer.ss_family);
	EXPECT_EQ(me.sin_port, ((struct sockaddr_in *)&peer)->sin_port);
	ASSERT_EQ(5, send(cfd, "hello", 5, 0));
	ASSERT_EQ(0, pop_exact(sq, buf, 5));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	ASSERT_EQ(5, push_bytes(sq, "world", 5));
	ASSERT_EQ(5, recv(cfd, buf, sizeof(buf), MSG_WAITALL));
	EXPECT_EQ(0, memcmp(buf, "world", 5));
	close(cfd);
	EXPECT_EQ(0, qd_close(sq));
	EXPECT_EQ(0, qd_close(lq));
}

TEST_F(net, qd_client_talks_to_a_plain_server)
{
	struct sockaddr_in a, peer;
	socklen_t len = sizeof(peer);
	struct qd_result qr;
	char buf[64] = "";
	int lfd, afd, cq;
	qd_token_t qt;

	lfd = plain_listener(&a, 8);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, qd_socket(&cq, AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(0, qd_connect(&qt, cq, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, waitr(qt, &qr));
	EXPECT_EQ(QD_OPC_CONNECT, (int)qr.opcode);
	afd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, afd);
	ASSERT_EQ(0, qd_getpeername(cq, (struct sockaddr *)&peer, &len));
	EXPECT_EQ(a.sin_port, peer.sin_port);
	ASSERT_EQ(4, push_bytes(cq, "ping", 4));
	ASSERT_EQ(4, recv(afd, buf, 4, MSG_WAITALL));
	EXPECT_EQ(0, memcmp(buf, "ping", 4));
	ASSERT_EQ(4, send(afd, "pong", 4, 0));
	ASSERT_EQ(0, pop_exact(cq, buf, 4));
	EXPECT_EQ(0, memcmp(buf, "pong", 4));
	close(afd);
	close(lfd);
	EXPECT_EQ(0, qd_close(cq));
}

TEST_F(net, tcp_over_ipv6_loopback)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t len = sizeof(a);
	struct qd_result qr;
	int lq, sq, cq;
	char buf[8];
	qd_token_t qt;

	ASSERT_EQ(0, qd_socket(&lq, AF_INET6, SOCK_STREAM, 0));
	if (qd_bind(lq, (struct sockaddr *)&a, sizeof(a)))
		SKIP(return, "no ::1 in this guest");
	ASSERT_EQ(0, qd_getsockname(lq, (struct sockaddr *)&a, &len));
	ASSERT_EQ(0, qd_listen(lq, 4));
	ASSERT_EQ(0, qd_socket(&cq, AF_INET6, SOCK_STREAM, IPPROTO_TCP));
	ASSERT_EQ(0, qd_connect(&qt, cq, (struct sockaddr *)&a, sizeof(a)));
	sq = accept_qd(lq, NULL);
	ASSERT_LE(0, sq);
	ASSERT_EQ(0, waitr(qt, &qr));
	ASSERT_EQ(3, push_bytes(cq, "six", 3));
	ASSERT_EQ(0, pop_exact(sq, buf, 3));
	EXPECT_EQ(0, memcmp(buf, "six", 3));
}

/* --- server rules ------------------------------------------------------ */

TEST_F(net, orderly_peer_close_pops_zero_then_zero_again)
{
	int lq, sq, cfd;
	char buf[8];

	ASSERT_EQ(0, qd_pair(&lq, &sq, &cfd));
	ASSERT_EQ(2, send(cfd, "hi", 2, 0));
	close(cfd);
	ASSERT_EQ(0, pop_exact(sq, buf, 2));
	EXPECT_EQ(0, pop_bytes(sq, buf, sizeof(buf)));
	EXPECT_EQ(0, pop_bytes(sq, buf, sizeof(buf)));
	EXPECT_EQ(0, pop_bytes(sq, buf, sizeof(buf)));
}

TEST_F(net, reset_completes_pending_pops_with_econnreset)
{
	struct linger lg = { 1, 0 };
	int lq, sq, cfd, i, small = 4096;
	struct qd_result qr;
	struct qd_sga big;
	qd_token_t qt[3], push;
	int64_t ret;

	ASSERT_EQ(0, qd_pair(&lq, &sq, &cfd));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, qd_pop(&qt[i], sq));
	/* and a push the peer does not read */
	ASSERT_EQ(0, setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)));
	ASSERT_EQ(0, qd_setsockopt(sq, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)));
	big = qd_sgaalloc(8 << 20);
	ASSERT_EQ(1u, big.numsegs);
	ASSERT_EQ(0, qd_push(&push, sq, &big));
	ASSERT_EQ(-ETIMEDOUT, qd_wait(&qr, qt[0], &SHORT));
	ASSERT_EQ(-ETIMEDOUT, qd_wait(&qr, push, &SHORT));
	ASSERT_EQ(0, setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	close(cfd);		/* RST */
	for (i = 0; i < 3; i++)
		EXPECT_EQ(-ECONNRESET, waitr(qt[i], &qr)) TH_LOG("pop %d", i);
	ret = waitr(push, &qr);
	EXPECT_TRUE(ret == -ECONNRESET || ret == -EPIPE) TH_LOG("push: %lld", (long long)ret);
	qd_sgafree(&big);
	/* and later ones too */
	ASSERT_EQ(0, qd_pop(&qt[0], sq));
	EXPECT_EQ(-ECONNRESET, waitr(qt[0], &qr));
}

TEST_F(net, connect_to_a_closed_port_is_econnrefused)
{
	struct sockaddr_in a;
	struct qd_result qr;
	qd_token_t qt;
	int lq, cq;

	/* a port that was just free */
	ASSERT_EQ(0, qd_listener(&a, &lq));
	ASSERT_EQ(0, qd_close(lq));
	ASSERT_EQ(0, qd_socket(&cq, AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(0, qd_connect(&qt, cq, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(-ECONNREFUSED, waitr(qt, &qr));
	EXPECT_EQ(QD_OPC_CONNECT, (int)qr.opcode);
	/* a second connect while one is pending on another socket */
}

TEST_F(net, close_cancels_pending_accept_connect_push_and_pop)
{
	struct sockaddr_in full;
	int lq, sq, cfd, cq, lfd, fill, small = 4096;
	qd_token_t acc, con, pop, push;
	struct qd_result qr;
	struct qd_sga big;

	ASSERT_EQ(0, qd_pair(&lq, &sq, &cfd));
	ASSERT_EQ(0, qd_accept(&acc, lq));
	ASSERT_EQ(0, qd_pop(&pop, sq));
	/* a push that cannot finish: the peer does not read */
	ASSERT_EQ(0, setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)));
	ASSERT_EQ(0, qd_setsockopt(sq, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)));
	big = qd_sgaalloc(8 << 20);
	ASSERT_EQ(1u, big.numsegs);
	ASSERT_EQ(0, qd_push(&push, sq, &big));
	/* a connect that cannot finish: the listener's queue is full */
	lfd = plain_listener(&full, 0);
	ASSERT_LE(0, lfd);
	fill = plain_connect(&full);
	ASSERT_LE(0, fill);
	ASSERT_EQ(0, qd_socket(&cq, AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(0, qd_connect(&con, cq, (struct sockaddr *)&full, sizeof(full)));
	ASSERT_EQ(-ETIMEDOUT, qd_wait(&qr, con, &SHORT));
	ASSERT_EQ(-ETIMEDOUT, qd_wait(&qr, push, &SHORT));
	ASSERT_EQ(-ETIMEDOUT, qd_wait(&qr, acc, &SHORT));
	ASSERT_EQ(-ETIMEDOUT, qd_wait(&qr, pop, &SHORT));

	EXPECT_EQ(0, qd_close(cq));
	EXPECT_EQ(-ECANCELED, waitr(con, &qr));
	EXPECT_EQ(0, qd_close(sq));
	EXPECT_EQ(-ECANCELED, waitr(pop, &qr));
	EXPECT_EQ(-ECANCELED, waitr(push, &qr));
	EXPECT_EQ(0, qd_close(lq));
	EXPECT_EQ(-ECANCELED, waitr(acc, &qr));
	qd_sgafree(&big);
	close(fill);
	close(lfd);
	close(cfd);
}

TEST_F(net, pending_pops_complete_in_order)
{
	enum { N = 16, CHUNK = 100 };
	unsigned char sent[N * CHUNK], got[N * CHUNK];
	struct qd_result qr;
	qd_token_t qt[N];
	int lq, sq, cfd, i;
	size_t n = 0;
	uint32_t s;

	for (i = 0; i < N * CHUNK; i++)
		sent[i] = (unsigned char)(i * 7 + i / 251);
	ASSERT_EQ(0, qd_pair(&lq, &sq, &cfd));
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, qd_pop(&qt[i], sq));
	ASSERT_EQ(0, qd_submit());
	for (i = 0; i < N; i++) {
		ASSERT_EQ(CHUNK, send(cfd, sent + i * CHUNK, CHUNK, 0));
		usleep(2000);
	}
	/* every byte, in pop order; a pop may carry more than one send */
	for (i = 0; i < N && n < sizeof(got); i++) {
		ASSERT_LT(0, waitr(qt[i], &qr)) TH_LOG("pop %d", i);
		for (s = 0; s < qr.value.sga.numsegs; s++) {
			memcpy(got + n, qr.value.sga.segs[s].buf, qr.value.sga.segs[s].len);
			n += qr.value.sga.segs[s].len;
		}
		qd_sgafree(&qr.value.sga);
	}
	ASSERT_EQ(sizeof(got), n);
	EXPECT_EQ(0, memcmp(sent, got, sizeof(got)));
	EXPECT_EQ(0, qd_close(sq));
	/* the pops the bytes did not need end cancelled */
	for (; i < N; i++)
		EXPECT_EQ(-ECANCELED, waitr(qt[i], &qr));
	close(cfd);
}

TEST_F(net, many_pending_accepts_each_get_a_connection)
{
	enum { N = 8 };
	int lq, fds[N], qds[N], i, j;
	struct sockaddr_in a;
	struct qd_result qr;
	qd_token_t qt[N];

	ASSERT_EQ(0, qd_listener(&a, &lq));
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, qd_accept(&qt[i], lq));
	ASSERT_EQ(0, qd_submit());
	for (i = 0; i < N; i++) {
		fds[i] = plain_connect(&a);
		ASSERT_LE(0, fds[i]);
	}
	for (i = 0; i < N; i++) {
		qds[i] = (int)waitr(qt[i], &qr);
		ASSERT_LE(0, qds[i]);
		for (j = 0; j < i; j++)
			EXPECT_NE(qds[j], qds[i]);
	}
	/* each accepted qd works: one byte from each client */
	for (i = 0; i < N; i++)
		ASSERT_EQ(1, send(fds[i], "x", 1, 0));
	for (i = 0; i < N; i++) {
		char c;

		EXPECT_EQ(0, pop_exact(qds[i], &c, 1));
		close(fds[i]);
	}
}

TEST_F(net, big_push_completes_with_all_its_bytes)
{
	size_t len = 4 << 20, got = 0;
	struct qd_result qr;
	int lq, sq, cfd;
	struct qd_sga sga;
	qd_token_t qt;
	char *buf;
	ssize_t n;

	ASSERT_EQ(0, qd_pair(&lq, &sq, &cfd));
	sga = qd_sgaalloc(len);
	ASSERT_EQ(1u, sga.numsegs);
	memset(sga.segs[0].buf, 0x5a, len);
	ASSERT_EQ(0, qd_push(&qt, sq, &sga));
	ASSERT_EQ(0, qd_submit());
	buf = malloc(1 << 16);
	ASSERT_NE(NULL, buf);
	while (got < len) {
		n = recv(cfd, buf, 1 << 16, 0);
		ASSERT_LT(0, n);
		for (ssize_t k = 0; k < n; k++)
			ASSERT_EQ(0x5a, (unsigned char)buf[k]);
		got += n;
	}
	EXPECT_EQ((int64_t)len, waitr(qt, &qr));
	EXPECT_EQ(QD_OPC_PUSH, (int)qr.opcode);
	EXPECT_EQ(sga.segs[0].buf, qr.value.sga.segs[0].buf);
	free(buf);
	qd_sgafree(&sga);
	close(cfd);
}

TEST_F(net, the_tcp_echo_example_serves_plain_clients)
{
	const char *bin = "../libqd/examples/tcp-echo";
	struct sockaddr_in a = lo4(17777);
	int fds[4], i, tries;
	char buf[16], msg[16];
	pid_t pid;

	if (access(bin, X_OK))
		SKIP(return, "libqd/examples not built");
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		execl(bin, bin, "17777", (char *)NULL);
		_exit(127);
	}
	for (tries = 0; tries < 300; tries++) {
		fds[0] = plain_connect(&a);
		if (fds[0] >= 0)
			break;
		usleep(10000);
	}
	ASSERT_LE(0, fds[0]);
	for (i = 1; i < 4; i++) {
		fds[i] = plain_connect(&a);
		ASSERT_LE(0, fds[i]);
	}
	for (i = 3; i >= 0; i--) {
		snprintf(msg, sizeof(msg), "echo %d", i);
		ASSERT_EQ(6, send(fds[i], msg, 6, 0));
	}
	for (i = 0; i < 4; i++) {
		snprintf(msg, sizeof(msg), "echo %d", i);
		ASSERT_EQ(6, recv(fds[i], buf, 6, MSG_WAITALL));
		EXPECT_EQ(0, memcmp(buf, msg, 6));
		close(fds[i]);
	}
	kill(pid, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, qd_wait_child(pid));
}

/* --- UDP ------------------------------------------------------------------ */

TEST_F(net, udp_pop_gives_one_datagram_and_its_source)
{
	struct sockaddr_in a, me;
	socklen_t len = sizeof(me);
	struct qd_result qr;
	qd_token_t qt;
	int uq, fd;

	ASSERT_EQ(0, qd_bound(SOCK_DGRAM, &a, &uq));
	fd = plain(SOCK_DGRAM);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET,
		  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) }, sizeof(me)));
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&me, &len));
	ASSERT_EQ(3, sendto(fd, "one", 3, 0, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(5, sendto(fd, "three", 5, 0, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, qd_pop(&qt, uq));
	ASSERT_EQ(3, waitr(qt, &qr));
	EXPECT_EQ(0, memcmp(qr.value.sga.segs[0].buf, "one", 3));
	EXPECT_EQ(0u, qr.value.sga.flags);
	EXPECT_EQ(AF_INET, qr.value.sga.addr.ss_family);
	EXPECT_EQ(me.sin_port, ((struct sockaddr_in *)&qr.value.sga.addr)->sin_port);
	EXPECT_EQ(me.sin_addr.s_addr,
		  ((struct sockaddr_in *)&qr.value.sga.addr)->sin_addr.s_addr);
	qd_sgafree(&qr.value.sga);
	ASSERT_EQ(0, qd_pop(&qt, uq));
	ASSERT_EQ(5, waitr(qt, &qr));
	EXPECT_EQ(0, memcmp(qr.value.sga.segs[0].buf, "three", 5));
	qd_sgafree(&qr.value.sga);
	/* pushto answers the source; a plain recvfrom sees it from the qd */
	do {
		struct qd_sga sga = qd_sgaalloc(4);
		struct sockaddr_in from;
		char b[8];

		memcpy(sga.segs[0].buf, "back", 4);
		ASSERT_EQ(0, qd_pushto(&qt, uq, &sga, (struct sockaddr *)&me, sizeof(me)));
		ASSERT_EQ(4, waitr(qt, &qr));
		len = sizeof(from);
		ASSERT_EQ(4, recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &len));
		EXPECT_EQ(0, memcmp(b, "back", 4));
		EXPECT_EQ(a.sin_port, from.sin_port);
		qd_sgafree(&sga);
	} while (0);
	close(fd);
}

TEST_F(net, udp_pop_with_a_small_buffer_truncates_and_flags_it)
{
	struct sockaddr_in a;
	struct qd_result qr;
	struct qd_sga buf;
	char big[100];
	qd_token_t qt;
	int uq, fd;

	memset(big, 'z', sizeof(big));
	ASSERT_EQ(0, qd_bound(SOCK_DGRAM, &a, &uq));
	buf = qd_sgaalloc(4096);
	ASSERT_EQ(1u, buf.numsegs);
	memset(buf.segs[0].buf, 0, 4096);
	buf.segs[0].len = 8;
	fd = plain(SOCK_DGRAM);
	ASSERT_EQ(100, sendto(fd, big, 100, 0, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, qd_pop_into(&qt, uq, &buf));
	ASSERT_EQ(8, waitr(qt, &qr));
	EXPECT_EQ(QD_SGA_TRUNC, qr.value.sga.flags);
	EXPECT_EQ(8u, qr.value.sga.segs[0].len);
	/* not a byte past the buffer */
	EXPECT_EQ(0, ((char *)buf.segs[0].buf)[8]);
	buf.segs[0].len = 4096;
	qd_sgafree(&buf);
	close(fd);
}

TEST_F(net, udp_connected_push_and_pop)
{
	struct sockaddr_in a, b;
	struct qd_result qr;
	qd_token_t qt;
	int q1, q2;
	char x[4];

	ASSERT_EQ(0, qd_bound(SOCK_DGRAM, &a, &q1));
	ASSERT_EQ(0, qd_bound(SOCK_DGRAM, &b, &q2));
	ASSERT_EQ(0, qd_connect(&qt, q1, (struct sockaddr *)&b, sizeof(b)));
	ASSERT_EQ(0, waitr(qt, &qr));
	ASSERT_EQ(3, push_bytes(q1, "dg!", 3));
	ASSERT_EQ(3, pop_bytes(q2, x, sizeof(x)));
	EXPECT_EQ(0, memcmp(x, "dg!", 3));
}

/* --- bad input ------------------------------------------------------------ */

TEST_F(net, bad_families_types_and_lengths)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in a = lo4(0);
	struct qd_result qr;
	qd_token_t qt;
	int q;

	EXPECT_EQ(-EAFNOSUPPORT, qd_socket(&q, AF_UNIX, SOCK_STREAM, 0));
	EXPECT_EQ(-EAFNOSUPPORT, qd_socket(&q, AF_PACKET, SOCK_DGRAM, 0));
	EXPECT_EQ(-ESOCKTNOSUPPORT, qd_socket(&q, AF_INET, SOCK_RAW, 0));
	EXPECT_EQ(-EINVAL, qd_socket(&q, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	EXPECT_EQ(-EPROTONOSUPPORT, qd_socket(&q, AF_INET, SOCK_STREAM, IPPROTO_UDP));
	EXPECT_EQ(-EPROTONOSUPPORT, qd_socket(&q, AF_INET, SOCK_DGRAM, IPPROTO_SCTP));
	ASSERT_EQ(0, qd_socket(&q, AF_INET, SOCK_STREAM, 0));
	EXPECT_EQ(-EAFNOSUPPORT, qd_bind(q, (struct sockaddr *)&a6, sizeof(a6)));
	EXPECT_EQ(-EINVAL, qd_bind(q, (struct sockaddr *)&a, 1));
	EXPECT_EQ(-EINVAL, qd_bind(q, (struct sockaddr *)&a, 8));
	EXPECT_EQ(-EINVAL, qd_bind(q, (struct sockaddr *)&a, 4096));
	ASSERT_EQ(0, qd_connect(&qt, q, (struct sockaddr *)&a, 8));
	EXPECT_EQ(-EINVAL, waitr(qt, &qr));
	ASSERT_EQ(0, qd_connect(&qt, q, (struct sockaddr *)&a6, sizeof(a6)));
	EXPECT_EQ(-EAFNOSUPPORT, waitr(qt, &qr));
	a.sin_family = AF_UNIX;
	ASSERT_EQ(0, qd_connect(&qt, q, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(-EAFNOSUPPORT, waitr(qt, &qr));
	/* a memory queue is not a socket */
	do {
		int mq;

		ASSERT_EQ(0, qd_queue(&mq));
		EXPECT_EQ(-ENOTSOCK, qd_listen(mq, 1));
		ASSERT_EQ(0, qd_accept(&qt, mq));
		EXPECT_EQ(-ENOTSOCK, waitr(qt, &qr));
	} while (0);
}

TEST_F(net, socket_used_before_bind_or_connect)
{
	struct sockaddr_in a = lo4(9);
	struct qd_result qr;
	qd_token_t qt;
	int tq, uq;
	char c;

	ASSERT_EQ(0, qd_socket(&tq, AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(0, qd_socket(&uq, AF_INET, SOCK_DGRAM, 0));
	EXPECT_EQ(-ENOTCONN, pop_bytes(tq, &c, 1));
	EXPECT_EQ(-ENOTCONN, push_bytes(tq, "x", 1));
	EXPECT_EQ(-ENOTCONN, pop_bytes(uq, &c, 1));
	EXPECT_EQ(-EDESTADDRREQ, push_bytes(uq, "x", 1));
	ASSERT_EQ(0, qd_accept(&qt, tq));
	EXPECT_EQ(-EINVAL, waitr(qt, &qr));	/* not listening */
	ASSERT_EQ(0, qd_accept(&qt, uq));
	EXPECT_EQ(-EOPNOTSUPP, waitr(qt, &qr));
	EXPECT_EQ(-EOPNOTSUPP, qd_listen(uq, 1));
	do {
		struct qd_sga sga = qd_sgaalloc(1);

		/* pushto is for datagrams */
		ASSERT_EQ(0, qd_pushto(&qt, tq, &sga, (struct sockaddr *)&a, sizeof(a)));
		EXPECT_EQ(-EOPNOTSUPP, waitr(qt, &qr));
		EXPECT_EQ(-EOPNOTSUPP, qd_push_forget(tq, &sga));
		qd_sgafree(&sga);
	} while (0);
}

TEST_F(net, push_and_pop_on_a_listening_socket)
{
	struct sockaddr_in a;
	int lq;
	char c;

	ASSERT_EQ(0, qd_listener(&a, &lq));
	EXPECT_EQ(-ENOTCONN, push_bytes(lq, "x", 1));
	EXPECT_EQ(-ENOTCONN, pop_bytes(lq, &c, 1));
}

TEST_F(net, operations_after_close_are_ebadf)
{
	struct sockaddr_in a = lo4(9);
	socklen_t len = sizeof(a);
	struct qd_result qr;
	qd_token_t qt;
	int q, one = 1;
	char c;

	ASSERT_EQ(0, qd_socket(&q, AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(0, qd_close(q));
	EXPECT_EQ(-EBADF, qd_close(q));
	EXPECT_EQ(-EBADF, qd_bind(q, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(-EBADF, qd_listen(q, 1));
	EXPECT_EQ(-EBADF, qd_setsockopt(q, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	EXPECT_EQ(-EBADF, qd_getpeername(q, (struct sockaddr *)&a, &len));
	EXPECT_EQ(-EBADF, push_bytes(q, "x", 1));
	ASSERT_EQ(0, qd_accept(&qt, q));
	EXPECT_EQ(-EBADF, waitr(qt, &qr));
	ASSERT_EQ(0, qd_connect(&qt, q, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(-EBADF, waitr(qt, &qr));
	(void)c;
}

TEST_F(net, socket_options)
{
	int q, v = 1, lq, sq, cfd;
	socklen_t len = sizeof(v);
	struct sockaddr_in a;

	ASSERT_EQ(0, qd_socket(&q, AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(0, qd_setsockopt(q, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)));
	v = 0;
	ASSERT_EQ(0, qd_getsockopt(q, SOL_SOCKET, SO_REUSEADDR, &v, &len));
	EXPECT_EQ(1, v);
	EXPECT_EQ(sizeof(int), len);
	v = 1;
	ASSERT_EQ(0, qd_setsockopt(q, SOL_SOCKET, SO_REUSEPORT, &v, sizeof(v)));
	ASSERT_EQ(0, qd_setsockopt(q, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)));
	v = 0;
	len = sizeof(v);
	ASSERT_EQ(0, qd_getsockopt(q, IPPROTO_TCP, TCP_NODELAY, &v, &len));
	EXPECT_EQ(1, v);
	v = 65536;
	ASSERT_EQ(0, qd_setsockopt(q, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)));
	len = sizeof(v);
	ASSERT_EQ(0, qd_getsockopt(q, SOL_SOCKET, SO_RCVBUF, &v, &len));
	EXPECT_EQ(2 * 65536, v);
	len = sizeof(v);
	ASSERT_EQ(0, qd_getsockopt(q, SOL_SOCKET, SO_TYPE, &v, &len));
	EXPECT_EQ(SOCK_STREAM, v);
	EXPECT_EQ(-ENOPROTOOPT, qd_setsockopt(q, SOL_SOCKET, SO_ATTACH_FILTER, &v, sizeof(v)));
	EXPECT_EQ(-ENOPROTOOPT, qd_setsockopt(q, SOL_SOCKET, SO_TYPE, &v, sizeof(v)));
	EXPECT_EQ(-ENOPROTOOPT, qd_getsockopt(q, IPPROTO_TCP, TCP_ULP, &v, &len));
	len = 2;
	EXPECT_EQ(-EINVAL, qd_getsockopt(q, SOL_SOCKET, SO_TYPE, &v, &len));
	/* getpeername: not connected, then the client */
	len = sizeof(a);
	EXPECT_EQ(-ENOTCONN, qd_getpeername(q, (struct sockaddr *)&a, &len));
	ASSERT_EQ(0, qd_pair(&lq, &sq, &cfd));
	len = sizeof(a);
	ASSERT_EQ(0, qd_getpeername(sq, (struct sockaddr *)&a, &len));
	EXPECT_EQ(sizeof(a), len);
	EXPECT_EQ(htonl(INADDR_LOOPBACK), a.sin_addr.s_addr);
	close(cfd);
}

TEST_F(net, region_in_use_by_a_socket_pop_is_ebusy)
{
	size_t len = 1 << 16;
	void *mem = qd_raw_pages(len);
	struct qd_sga buf = { .numsegs = 1 };
	struct qd_result qr;
	int lq, sq, cfd;
	qd_token_t qt;

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, qd_memregister(mem, len));
	ASSERT_EQ(0, qd_pair(&lq, &sq, &cfd));
	buf.segs[0].buf = mem;
	buf.segs[0].len = 4096;
	ASSERT_EQ(0, qd_pop_into(&qt, sq, &buf));
	ASSERT_EQ(0, qd_submit());
	ASSERT_EQ(-ETIMEDOUT, qd_wait(&qr, qt, &SHORT));
	EXPECT_EQ(-EBUSY, qd_memunregister(mem));
	ASSERT_EQ(3, send(cfd, "abc", 3, 0));
	ASSERT_EQ(3, waitr(qt, &qr));
	EXPECT_EQ(mem, qr.value.sga.segs[0].buf);
	EXPECT_EQ(0, memcmp(mem, "abc", 3));
	EXPECT_EQ(0, qd_memunregister(mem));
	close(cfd);
}

/* Clear one capability from the effective and permitted sets. */
static int drop_cap(unsigned int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	unsigned int bit = 1u << (cap % 32);

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[cap / 32].effective &= ~bit;
	d[cap / 32].permitted &= ~bit;
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

TEST_F(net, privileged_bind_after_dropping_the_capability_is_eacces)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		struct sockaddr_in a = lo4(0);
		int q1, q2, q3;

		/* root, with the capability: a port below 1024 binds */
		CHILD_CHECK(!qd_init());
		CHILD_CHECK(!qd_socket(&q1, AF_INET, SOCK_STREAM, 0));
		a.sin_port = htons(611);
		CHILD_CHECK(!qd_bind(q1, (struct sockaddr *)&a, sizeof(a)));
		/* the context stays; the process loses the capability */
		CHILD_CHECK(!drop_cap(CAP_NET_BIND_SERVICE));
		CHILD_CHECK(!qd_socket(&q2, AF_INET, SOCK_STREAM, 0));
		a.sin_port = htons(612);
		CHILD_CHECK(qd_bind(q2, (struct sockaddr *)&a, sizeof(a)) == -EACCES);
		CHILD_CHECK(!qd_socket(&q3, AF_INET, SOCK_DGRAM, 0));
		CHILD_CHECK(qd_bind(q3, (struct sockaddr *)&a, sizeof(a)) == -EACCES);
		/* an unprivileged port still binds */
		a.sin_port = 0;
		CHILD_CHECK(!qd_bind(q2, (struct sockaddr *)&a, sizeof(a)));
		_exit(0);
	}
	EXPECT_EQ(0, qd_wait_child(pid));
}

/*
 * Connections accepted for a qd listener are accepted by a work item, not
 * by the owner: what that allocates (the socket's inode, the qd socket)
 * must still be charged to the owner's memory cgroup, as accept(2) would.
 * The clients are the parent's, outside the cgroup; the child (inside)
 * measures memory.current around accepting CG_CONNS of them.
 */
#define CG_CONNS	256

/* Slab bytes charged to cgroup dir (memory.stat), or -1. */
static long long cg_slab(const char *dir)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	return qd_kv(path, "slab");
}

TEST_F_TIMEOUT(net, accepted_connections_are_charged_to_the_owners_memory_cgroup, 120)
{
	char why[256], cg[256];
	int enabled = 0, to_child[2], to_parent[2], ret, i;
	int cfd[CG_CONNS + 1];
	struct sockaddr_in a;
	long long vals[2];
	pid_t pid;

	ret = qd_cgroup_memory_ready(&enabled, why, sizeof(why));
	if (ret)
		SKIP(return, "%s", why);
	snprintf(cg, sizeof(cg), QD_CGROUP_ROOT "/qd-net-%d", getpid());
	ASSERT_EQ(0, mkdir(cg, 0755)) TH_LOG("mkdir %s: %m", cg);
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_result qr;
		qd_token_t qts[CG_CONNS];
		char go;
		int lq;

		CHILD_CHECK(qd_cgroup_enter(cg) == 0);
		CHILD_CHECK(qd_init() == 0);
		CHILD_CHECK(qd_listener(&a, &lq) == 0);
		CHILD_CHECK(qd_listen(lq, 2 * CG_CONNS) == 0);
		CHILD_CHECK(write(to_parent[1], &a, sizeof(a)) == sizeof(a));
		/* One first, so that libqd's own first allocations are done. */
		CHILD_CHECK(read(to_child[0], &go, 1) == 1);
		CHILD_CHECK(accept_qd(lq, NULL) >= 0);
		CHILD_CHECK(read(to_child[0], &go, 1) == 1);
		qd_sleep_ms(2500);	/* memory.stat is flushed every 2 s */
		vals[0] = cg_slab(cg);
		for (i = 0; i < CG_CONNS; i++)
			CHILD_CHECK(qd_accept(&qts[i], lq) == 0);
		for (i = 0; i < CG_CONNS; i++) {
			CHILD_CHECK(qd_wait(&qr, qts[i], &LONG) == 0);
			CHILD_CHECK(qr.ret >= 0);
		}
		qd_sleep_ms(2500);
		vals[1] = cg_slab(cg);
		CHILD_CHECK(write(to_parent[1], vals, sizeof(vals)) == sizeof(vals));
		CHILD_CHECK(read(to_child[0], &go, 1) == 1);
		_exit(0);
	}
	ASSERT_EQ((ssize_t)sizeof(a), read(to_parent[0], &a, sizeof(a)));
	cfd[0] = plain_connect(&a);
	ASSERT_LE(0, cfd[0]);
	ASSERT_EQ(1, write(to_child[1], "g", 1));
	for (i = 1; i <= CG_CONNS; i++) {
		cfd[i] = plain_connect(&a);
		ASSERT_LE(0, cfd[i]);
	}
	ASSERT_EQ(1, write(to_child[1], "g", 1));
	ret = (int)read(to_parent[0], vals, sizeof(vals));
	ASSERT_EQ(1, write(to_child[1], "g", 1));
	EXPECT_EQ(0, qd_wait_child(pid));
	for (i = 0; i <= CG_CONNS; i++)
		close(cfd[i]);
	rmdir(cg);
	qd_cgroup_memory_restore(enabled);
	ASSERT_EQ((int)sizeof(vals), ret);
	TH_LOG("slab %lld -> %lld (+%lld) for %d accepted connections",
	       vals[0], vals[1], vals[1] - vals[0], CG_CONNS);
	EXPECT_LE(CG_CONNS * 1024LL, vals[1] - vals[0]);
}

TEST_F(net, sigkill_with_connections_and_ops_pending_leaves_nothing)
{
	enum { N = 1000 };	/* 2,001 sockets, 1,004 operations pending */
	int pfd[2];
	pid_t pid;
	char c;
	struct qd_proc p;

	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_result qr;
		struct sockaddr_in a;
		qd_token_t qt;
		int lq, cq[N], i;

		close(pfd[0]);
		CHILD_CHECK(!qd_init());
		CHILD_CHECK(!qd_listener(&a, &lq));
		for (i = 0; i < N; i++) {
			CHILD_CHECK(!qd_socket(&cq[i], AF_INET, SOCK_STREAM, 0));
			CHILD_CHECK(!qd_connect(&qt, cq[i], (struct sockaddr *)&a, sizeof(a)));
			CHILD_CHECK(accept_qd(lq, NULL) >= 0);
			CHILD_CHECK(waitr(qt, &qr) == 0);
			/* a pending pop on each side, some bytes unread */
			CHILD_CHECK(!qd_pop(&qt, cq[i]));
			CHILD_CHECK(push_bytes(cq[i], "data", 4) == 4);
		}
		for (i = 0; i < 4; i++)
			CHILD_CHECK(!qd_accept(&qt, lq));
		CHILD_CHECK(!qd_submit());
		CHILD_CHECK(write(pfd[1], "k", 1) == 1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	EXPECT_LE(2 * N + 1, proc_key("sockets"));
	EXPECT_LE(N, proc_key("inflight"));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, qd_wait_child(pid));
	EXPECT_EQ(0, qd_proc_wait_idle(1, 0, 5000, &p));
	/* this test's own context is idle */
	for (int i = 0; i < 300 && proc_key("sockets"); i++)
		usleep(10000);
	EXPECT_EQ(0, proc_key("sockets"));
	EXPECT_EQ(0, proc_key("inflight"));
	EXPECT_EQ(0, proc_key("queued"));
	EXPECT_EQ(0, proc_key("pinned_pages") - p.pinned_pages);
	close(pfd[0]);
}

TEST_F(net, debugfs_and_proc_show_sockets)
{
	char names[4][256], path[512], line[512];
	int lq, sq, cfd, found = 0;
	long long before = proc_key("sockets");
	FILE *f;

	long long in = proc_key("sock_bytes_in"), out = proc_key("sock_bytes_out");
	char b[8];

	ASSERT_EQ(0, qd_pair(&lq, &sq, &cfd));
	EXPECT_EQ(before + 2, proc_key("sockets"));
	ASSERT_EQ(3, send(cfd, "abc", 3, 0));
	ASSERT_EQ(0, pop_exact(sq, b, 3));
	ASSERT_EQ(2, push_bytes(sq, "de", 2));
	EXPECT_LE(in + 3, proc_key("sock_bytes_in"));
	EXPECT_LE(out + 2, proc_key("sock_bytes_out"));
	if (qd_debugfs_ready())
		SKIP(return, "no debugfs");
	ASSERT_EQ(1, qd_debugfs_ctx_dirs(getpid(), names, 4));
	snprintf(path, sizeof(path), "%s/queues", names[0]);
	f = fopen(path, "re");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, " tcp ") && strstr(line, "state=listen") &&
		    strstr(line, "local=127.0.0.1:"))
			found |= 1;
		if (strstr(line, " tcp ") && strstr(line, "state=established") &&
		    strstr(line, "peer=127.0.0.1:") && strstr(line, "bytes_in=3 ") &&
		    strstr(line, "bytes_out=2"))
			found |= 2;
	}
	fclose(f);
	EXPECT_EQ(3, found);
	close(cfd);
}

/* --- the raw ABI ------------------------------------------------------------ */

FIXTURE(raw) {
	struct qd_raw r;
	char *buf;
	unsigned int region;
};

FIXTURE_SETUP(raw)
{
	ASSERT_EQ(0, lo_up());
	ASSERT_EQ(0, qd_raw_init(&self->r, 16, 32));
	self->buf = qd_raw_pages(1 << 16);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, 1 << 16, &self->region));
}

FIXTURE_TEARDOWN(raw)
{
	qd_raw_exit(&self->r);
}

TEST_F(raw, socket_ioctls_check_reserved_fields)
{
	struct qd_socket_create c = { .domain = AF_INET, .type = SOCK_STREAM };
	struct sockaddr_in a = lo4(0);
	struct qd_sock_name n = { .addr = (uintptr_t)&a, .addr_len = sizeof(a) };
	struct qd_sock_listen l = { .backlog = 1 };
	struct qd_sockopt o = { .level = SOL_SOCKET, .optname = SO_REUSEADDR };
	int q;

	c.resv[2] = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_SOCKET, &c));
	c.resv[2] = 0;
	c.flags = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_SOCKET, &c));
	c.flags = 0;
	c.qd = 3;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_SOCKET, &c));
	q = qd_raw_socket(&self->r, SOCK_STREAM);
	ASSERT_LE(0, q);
	n.qd = l.qd = o.qd = q;
	n.resv[0] = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_BIND, &n));
	n.resv[0] = 0;
	n.flags = QD_NAME_PEER;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_BIND, &n));
	n.flags = 2;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_GETNAME, &n));
	n.flags = 0;
	n.addr = 8;	/* unmapped */
	EXPECT_EQ(-EFAULT, qd_raw_ioctl(self->r.fd, QD_IOC_BIND, &n));
	l.resv[1] = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_LISTEN, &l));
	o.resv[3] = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_SETSOCKOPT, &o));
	o.resv[3] = 0;
	o.qd = 999;
	EXPECT_EQ(-EBADF, qd_raw_ioctl(self->r.fd, QD_IOC_SETSOCKOPT, &o));
}

TEST_F(raw, socket_sqes_check_their_fields)
{
	struct sockaddr_in a = lo4(9);
	struct qd_seg segs[8];
	struct qd_cqe cqe;
	struct qd_sqe s;
	int tq, uq, i;

	tq = qd_raw_socket(&self->r, SOCK_STREAM);
	uq = qd_raw_socket(&self->r, SOCK_DGRAM);
	ASSERT_LE(0, tq);
	ASSERT_LE(0, uq);
	for (i = 0; i < 8; i++)
		segs[i] = qd_seg(self->region, i * 64, 64);

	/* ACCEPT uses no address: addr2 / addr_len are reserved for it */
	s = (struct qd_sqe){ .opcode = QD_OP_ACCEPT, .qd = tq, .user_data = 1, .addr2 = 1 };
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = (struct qd_sqe){ .opcode = QD_OP_ACCEPT, .qd = tq, .user_data = 1, .addr_len = 4 };
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* CONNECT: resv2 stays reserved, addr and nsegs unused */
	s = (struct qd_sqe){ .opcode = QD_OP_CONNECT, .qd = tq, .user_data = 2,
			     .addr2 = (uintptr_t)&a, .addr_len = sizeof(a) };
	s.resv2[1] = 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.resv2[1] = 0;
	s.addr = 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.addr = 0;
	s.addr2 = 16;	/* unmapped */
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EFAULT, cqe.res);
	s.addr2 = (uintptr_t)&a;
	s.addr_len = 129;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* a pop on a socket brings its buffer; no multishot */
	s = qd_sqe_pop(tq, 3);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.op_flags = QD_POP_MULTISHOT;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* a datagram pop leaves two segments' room for the address */
	s = qd_sqe_pop(uq, 4);
	s.addr = (uintptr_t)segs;
	s.nsegs = 7;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* PUSHTO without an address */
	s = qd_sqe_push(uq, segs, 1, 5);
	s.opcode = QD_OP_PUSHTO;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* CONNECT on a memory queue */
	do {
		int mq;

		ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &mq));
		s = (struct qd_sqe){ .opcode = QD_OP_CONNECT, .qd = mq, .user_data = 6,
				     .addr2 = (uintptr_t)&a, .addr_len = sizeof(a) };
		ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
		EXPECT_EQ(-ENOTSOCK, cqe.res);
	} while (0);
}

TEST_F(raw, datagram_pop_cqe_carries_the_source_after_the_segments)
{
	struct sockaddr_in a = lo4(0), from;
	struct qd_sock_name n = { .addr = (uintptr_t)&a, .addr_len = sizeof(a) };
	struct qd_seg seg = qd_seg(self->region, 4096, 1024);
	const struct qd_cqe_addr *ca;
	struct qd_elem elem;
	struct qd_cqe cqe;
	struct qd_sqe s;
	socklen_t len = sizeof(from);
	int uq, fd;

	uq = qd_raw_socket(&self->r, SOCK_DGRAM);
	n.qd = uq;
	ASSERT_EQ(0, qd_raw_ioctl(self->r.fd, QD_IOC_BIND, &n));
	n.addr_len = sizeof(a);
	ASSERT_EQ(0, qd_raw_ioctl(self->r.fd, QD_IOC_GETNAME, &n));
	fd = plain(SOCK_DGRAM);
	from = lo4(0);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&from, sizeof(from)));
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&from, &len));
	ASSERT_EQ(4, sendto(fd, "raw!", 4, 0, (struct sockaddr *)&a, sizeof(a)));
	s = qd_sqe_pop(uq, 7);
	s.addr = (uintptr_t)&seg;
	s.nsegs = 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, &elem));
	ASSERT_EQ(4, cqe.res);
	EXPECT_EQ(QD_CQE_F_ELEM | QD_CQE_F_COPIED | QD_CQE_F_ADDR, cqe.flags);
	ASSERT_EQ(1, cqe.nsegs);
	EXPECT_EQ(4u, elem.segs[0].len);
	EXPECT_EQ(4096u, elem.segs[0].offset);
	EXPECT_EQ(0, memcmp(self->buf + 4096, "raw!", 4));
	ca = (const struct qd_cqe_addr *)&elem.segs[QD_CQE_ADDR_SEG];
	EXPECT_EQ(sizeof(struct sockaddr_in), ca->len);
	EXPECT_EQ(0, memcmp(ca->addr, &from, sizeof(from)));
	close(fd);
}

TEST_HARNESS_MAIN
