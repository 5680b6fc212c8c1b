// SPDX-License-Identifier: GPL-2.0
/*
 * demi: a program written as for Demikernel's C API (only <demi/...h>, no
 * qd names), built with -I libqd/include and -lqd (the shared library, so
 * the LIBQD_0.4 exports are checked too). TAP output; exits 1 if any test
 * fails.
 *
 * Demikernel's layout of the result types; demi_init(); errors as positive
 * errnos; a TCP echo over loopback (a server thread echoes each popped
 * buffer back, zero copy; the client pushes messages of 1 B .. 300 KiB and
 * pops them back with demi_wait_any()); a zero-timeout wait ETIMEDOUT with
 * the token still valid, then cancelled by demi_close(); a refused
 * connect as DEMI_OPC_FAILED; a UDP datagram with its source in sga_addr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/types.h>
#include <demi/wait.h>

#define PORT 17790

static const struct timespec FIVE_S = { 5, 0 };
static const struct timespec ZERO = { 0, 0 };

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		printf("# %s:%d: %s\n", __func__, __LINE__, #cond);	\
		return 1;						\
	}								\
} while (0)

/* The guest may boot with lo down. */
static void lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return;
	if (!ioctl(fd, SIOCGIFFLAGS, &ifr) && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
}

static struct sockaddr_in lo4(unsigned short port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static unsigned char pattern(size_t msg, size_t i)
{
	return (unsigned char)(i * 7 + msg * 13 + 1);
}

static int layout_matches_demikernel(void)
{
	CHECK(sizeof(demi_sgaseg_t) == 12);
	CHECK(sizeof(demi_sgarray_t) == 8 + 4 + 12 + 16);
	CHECK(offsetof(demi_sgarray_t, sga_addr) == 24);
	CHECK(offsetof(demi_qresult_t, qr_qd) == 4);
	CHECK(offsetof(demi_qresult_t, qr_qt) == 8);
	CHECK(offsetof(demi_qresult_t, qr_ret) == 16);
	CHECK(offsetof(demi_qresult_t, qr_value) == 24);
	CHECK(sizeof(demi_qresult_t) == 24 + 40);
	CHECK(DEMI_OPC_FAILED == 6 && DEMI_OPC_CLOSE == 5);
	return 0;
}

static int init_returns_zero(void)
{
	char *argv[] = { "demi", NULL };
	struct demi_args args = { .argc = 1, .argv = argv };

	CHECK(demi_init(&args) == 0);
	CHECK(demi_init(&args) == 0);
	return 0;
}

static int errors_are_positive_errnos(void)
{
	demi_qresult_t qr;
	demi_qtoken_t qt;
	demi_sgarray_t sga, bad;
	int qd;

	CHECK(demi_close(4000) == EBADF);
	CHECK(demi_socket(&qd, 12345, SOCK_STREAM, 0) > 0);
	/* An operation's error comes from its submission or in its result. */
	qd = demi_pop(&qt, 4000);
	CHECK(qd == EBADF || qd == 0);
	if (qd == 0) {
		CHECK(demi_wait(&qr, qt, &FIVE_S) == 0);
		CHECK(qr.qr_opcode == DEMI_OPC_FAILED && qr.qr_ret == EBADF);
	}
	CHECK(demi_wait(&qr, 0x1234567, &ZERO) == EINVAL);
	sga = demi_sgaalloc(64);
	CHECK(sga.sga_numsegs == 1 && sga.sga_segs[0].sgaseg_len == 64);
	CHECK(sga.sga_segs[0].sgaseg_buf != NULL);
	bad = sga;
	bad.sga_numsegs = 0;
	CHECK(demi_push(&qt, 4000, &bad) == EINVAL);
	CHECK(demi_sgafree(&sga) == 0);
	CHECK(demi_sgafree(&sga) == EINVAL);
	sga = demi_sgaalloc(0);
	CHECK(sga.sga_numsegs == 0 && errno == EINVAL);
	return 0;
}

/* The server's side of the echo: echo what it pops until the peer closes. */
static void *echo_server(void *arg)
{
	int lqd = *(int *)arg, qd, bad = 0;
	demi_qresult_t qr;
	demi_qtoken_t qt;

	if (demi_accept(&qt, lqd) || demi_wait(&qr, qt, NULL) ||
	    qr.qr_opcode != DEMI_OPC_ACCEPT || qr.qr_ret != 0) {
		printf("# server: accept failed (ret %lld)\n", (long long)qr.qr_ret);
		return (void *)1;
	}
	qd = qr.qr_value.ares.qd;
	if (qr.qr_value.ares.addr.sin_family != AF_INET ||
	    qr.qr_value.ares.addr.sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
		printf("# server: accepted peer not 127.0.0.1\n");
		bad = 1;
	}
	for (;;) {
		demi_sgarray_t sga;

		if (demi_pop(&qt, qd) || demi_wait(&qr, qt, NULL) ||
		    qr.qr_opcode != DEMI_OPC_POP) {
			printf("# server: pop failed (opcode %d ret %lld)\n",
			       qr.qr_opcode, (long long)qr.qr_ret);
			bad = 1;
			break;
		}
		sga = qr.qr_value.sga;
		if (sga.sga_segs[0].sgaseg_len == 0) {	/* the peer closed */
			demi_sgafree(&sga);
			break;
		}
		/* Echo the popped buffer itself. */
		if (demi_push(&qt, qd, &sga) || demi_wait(&qr, qt, NULL) ||
		    qr.qr_opcode != DEMI_OPC_PUSH || qr.qr_ret != 0) {
			printf("# server: push failed\n");
			bad = 1;
			break;
		}
		if (demi_sgafree(&sga)) {
			printf("# server: sgafree failed\n");
			bad = 1;
		}
	}
	if (demi_close(qd))
		bad = 1;
	return (void *)(long)bad;
}

/* Push one message of size bytes and pop it back, both at once. */
static int echo_one(int qd, size_t msg, size_t size)
{
	demi_sgarray_t out = demi_sgaalloc(size);
	demi_qtoken_t qts[2];
	demi_qresult_t qr;
	size_t got = 0, i;
	int pushed = 0, n, off;

	CHECK(out.sga_numsegs == 1);
	for (i = 0; i < size; i++)
		((unsigned char *)out.sga_segs[0].sgaseg_buf)[i] = pattern(msg, i);
	CHECK(demi_pop(&qts[0], qd) == 0);
	CHECK(demi_push(&qts[1], qd, &out) == 0);
	n = 2;
	while (got < size || !pushed) {
		CHECK(demi_wait_any(&qr, &off, qts, n, &FIVE_S) == 0);
		CHECK(off >= 0 && off < n);
		CHECK(qr.qr_qt == qts[off] && qr.qr_qd == qd);
		if (off == 1) {
			CHECK(qr.qr_opcode == DEMI_OPC_PUSH && qr.qr_ret == 0);
			pushed = 1;
			n = 1;
			continue;
		}
		CHECK(qr.qr_opcode == DEMI_OPC_POP && qr.qr_ret == 0);
		CHECK(qr.qr_value.sga.sga_numsegs == 1);
		{
			demi_sgarray_t in = qr.qr_value.sga;
			unsigned char *p = in.sga_segs[0].sgaseg_buf;
			size_t len = in.sga_segs[0].sgaseg_len;

			CHECK(len > 0 && got + len <= size);
			for (i = 0; i < len; i++)
				if (p[i] != pattern(msg, got + i)) {
					printf("# message %zu byte %zu: %u, not %u\n",
					       msg, got + i, p[i], pattern(msg, got + i));
					return 1;
				}
			got += len;
			CHECK(demi_sgafree(&in) == 0);
		}
		if (got < size)
			CHECK(demi_pop(&qts[0], qd) == 0);
		else if (!pushed) {	/* wait for the push alone */
			qts[0] = qts[1];
			qts[1] = 0;
			CHECK(demi_wait(&qr, qts[0], &FIVE_S) == 0);
			CHECK(qr.qr_opcode == DEMI_OPC_PUSH && qr.qr_ret == 0);
			pushed = 1;
		}
	}
	CHECK(demi_sgafree(&out) == 0);
	return 0;
}

static int tcp_echo_over_loopback(void)
{
	static const size_t sizes[] = { 1, 64, 1000, 4096, 65536, 300000, 7 };
	struct sockaddr_in a = lo4(PORT);
	int lqd, qd, one = 1, bad = 0;
	demi_qresult_t qr;
	demi_qtoken_t qt;
	pthread_t server;
	void *sret;
	size_t m;

	CHECK(demi_socket(&lqd, AF_INET, SOCK_STREAM, 0) == 0);
	CHECK(demi_setsockopt(lqd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
	CHECK(demi_bind(lqd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(demi_listen(lqd, 16) == 0);
	CHECK(pthread_create(&server, NULL, echo_server, &lqd) == 0);

	CHECK(demi_socket(&qd, AF_INET, SOCK_STREAM, 0) == 0);
	CHECK(demi_connect(&qt, qd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(demi_wait(&qr, qt, &FIVE_S) == 0);
	CHECK(qr.qr_opcode == DEMI_OPC_CONNECT && qr.qr_ret == 0);
	{
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);

		CHECK(demi_getpeername(qd, (struct sockaddr *)&peer, &len) == 0);
		CHECK(peer.sin_port == htons(PORT));
	}
	for (m = 0; m < sizeof(sizes) / sizeof(sizes[0]) && !bad; m++)
		bad = echo_one(qd, m, sizes[m]);

	/* Nothing more comes: a zero timeout, then the close cancels it. */
	CHECK(demi_pop(&qt, qd) == 0);
	CHECK(demi_wait(&qr, qt, &ZERO) == ETIMEDOUT);
	CHECK(demi_close(qd) == 0);
	CHECK(demi_wait(&qr, qt, &FIVE_S) == 0);
	CHECK(qr.qr_opcode == DEMI_OPC_FAILED && qr.qr_ret == ECANCELED);
	CHECK(demi_wait(&qr, qt, &ZERO) == EINVAL);	/* consumed */

	CHECK(pthread_join(server, &sret) == 0);
	CHECK(sret == NULL);
	CHECK(demi_close(lqd) == 0);
	return bad;
}

static int refused_connect_fails_with_its_errno(void)
{
	struct sockaddr_in a = lo4(PORT + 1);
	demi_qresult_t qr;
	demi_qtoken_t qt;
	int qd;

	CHECK(demi_socket(&qd, AF_INET, SOCK_STREAM, 0) == 0);
	CHECK(demi_connect(&qt, qd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(demi_wait(&qr, qt, &FIVE_S) == 0);
	CHECK(qr.qr_opcode == DEMI_OPC_FAILED && qr.qr_ret == ECONNREFUSED);
	CHECK(qr.qr_qt == qt && qr.qr_qd == qd);
	CHECK(demi_close(qd) == 0);
	return 0;
}

static int udp_datagram_carries_its_source(void)
{
	struct sockaddr_in a = lo4(PORT + 2), b = lo4(PORT + 3);
	demi_sgarray_t sga;
	demi_qresult_t qr;
	demi_qtoken_t qt;
	int qa, qb;

	CHECK(demi_socket(&qa, AF_INET, SOCK_DGRAM, 0) == 0);
	CHECK(demi_socket(&qb, AF_INET, SOCK_DGRAM, 0) == 0);
	CHECK(demi_bind(qa, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(demi_bind(qb, (struct sockaddr *)&b, sizeof(b)) == 0);
	sga = demi_sgaalloc(5);
	CHECK(sga.sga_numsegs == 1);
	memcpy(sga.sga_segs[0].sgaseg_buf, "hello", 5);
	CHECK(demi_pushto(&qt, qa, &sga, (struct sockaddr *)&b, sizeof(b)) == 0);
	CHECK(demi_wait(&qr, qt, &FIVE_S) == 0);
	CHECK(qr.qr_opcode == DEMI_OPC_PUSH && qr.qr_ret == 0);
	CHECK(demi_sgafree(&sga) == 0);
	CHECK(demi_pop(&qt, qb) == 0);
	CHECK(demi_wait(&qr, qt, &FIVE_S) == 0);
	CHECK(qr.qr_opcode == DEMI_OPC_POP && qr.qr_ret == 0);
	sga = qr.qr_value.sga;
	CHECK(sga.sga_segs[0].sgaseg_len == 5);
	CHECK(!memcmp(sga.sga_segs[0].sgaseg_buf, "hello", 5));
	CHECK(sga.sga_addr.sin_family == AF_INET);
	CHECK(sga.sga_addr.sin_port == htons(PORT + 2));
	CHECK(sga.sga_addr.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	CHECK(demi_sgafree(&sga) == 0);
	CHECK(demi_close(qa) == 0 && demi_close(qb) == 0);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "layout_matches_demikernel", layout_matches_demikernel },
	{ "init_returns_zero", init_returns_zero },
	{ "errors_are_positive_errnos", errors_are_positive_errnos },
	{ "tcp_echo_over_loopback", tcp_echo_over_loopback },
	{ "refused_connect_fails_with_its_errno", refused_connect_fails_with_its_errno },
	{ "udp_datagram_carries_its_source", udp_datagram_carries_its_source },
};

int main(void)
{
	size_t i, n = sizeof(tests) / sizeof(tests[0]);
	int failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	lo_up();
	printf("TAP version 13\n1..%zu\n", n);
	for (i = 0; i < n; i++) {
		int bad = tests[i].fn();

		printf("%sok %zu demi.%s\n", bad ? "not " : "", i + 1, tests[i].name);
		failed += !!bad;
	}
	printf("# Totals: pass:%zu fail:%d\n", n - failed, failed);
	return failed ? 1 : 0;
}
