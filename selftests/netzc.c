// SPDX-License-Identifier: GPL-2.0
/*
 * netzc: zero-copy send of socket pushes (QD_FEAT_SEND_ZC), over loopback
 * on the raw ABI (the per-push QD_PUSH_ZC / QD_PUSH_COPY flags).
 *
 * What loopback lets us prove: its receive path copies a zero-copy skb's
 * pages (skb_orphan_frags_rx), so the receiver never sees the sender's
 * pages, and TCP drops its own reference (the retransmit queue's skb) only
 * when the peer ACKs. A zero-copy push therefore completes only once the
 * peer's window let all its bytes go and they were acknowledged: a peer
 * that does not read (a small SO_RCVBUF) holds the completion back, where
 * a copied push of the same size completes at once. That is the behaviour
 * a module without zero-copy fails.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "qd_raw.h"
#include "qd_net.h"
#include "qd_proc.h"
#include "qd_child.h"
#include "harness.h"

#define BUF		(8 << 20)
#define MS		QD_RAW_MS
#define PARAM		"/sys/module/qd/parameters/zc_min_bytes"
#define PARAM_LOCAL	"/sys/module/qd/parameters/zc_local"

static long long proc_key(const char *key)
{
	return qd_kv(QD_PROC_PATH, key);
}

/* A plain socket (qd_net.h) with rcvbuf, if non-zero, set first. */
static int plain_rcvbuf(int type, int rcvbuf)
{
	int fd = plain(type);

	if (fd >= 0 && rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return fd;
}

static int raw_setsockopt(struct qd_raw *r, int q, int name, int val)
{
	struct qd_sockopt o = { .qd = q, .level = SOL_SOCKET, .optname = name,
				.optlen = sizeof(val), .optval = (uintptr_t)&val };

	return qd_raw_ioctl(r->fd, QD_IOC_SETSOCKOPT, &o);
}

static int raw_connect(struct qd_raw *r, int q, const struct sockaddr_in *a)
{
	struct qd_sqe s = { .opcode = QD_OP_CONNECT, .qd = q, .user_data = 77,
			    .addr2 = (uintptr_t)a, .addr_len = sizeof(*a) };
	struct qd_cqe cqe;
	int ret = qd_raw_do(r, &s, &cqe, NULL);

	return ret ? ret : (int)cqe.res;
}

/*
 * A qd TCP socket *q connected to a plain peer *fd whose receive buffer is
 * rcvbuf (0: the default); the qd's send buffer is sndbuf (0: default).
 */
static int tcp_pair(struct qd_raw *r, int rcvbuf, int sndbuf, int *q, int *fd)
{
	struct sockaddr_in a = lo4(0);
	socklen_t len = sizeof(a);
	int lfd = plain_rcvbuf(SOCK_STREAM, rcvbuf), ret;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(lfd, 4) || getsockname(lfd, (struct sockaddr *)&a, &len))
		return -errno;
	*q = qd_raw_socket(r, SOCK_STREAM);
	if (*q < 0)
		return *q;
	if (sndbuf) {
		ret = raw_setsockopt(r, *q, SO_SNDBUF, sndbuf);
		if (ret)
			return ret;
	}
	ret = raw_connect(r, *q, &a);
	if (ret)
		return ret;
	*fd = accept(lfd, NULL, NULL);
	close(lfd);
	return *fd < 0 ? -errno : 0;
}

/* Submit a push of len bytes at off, with op_flags; no wait. */
static int push(struct qd_raw *r, unsigned int region, int q, size_t off,
		size_t len, __u32 flags, __u64 ud)
{
	struct qd_seg seg = qd_seg(region, off, len);
	struct qd_sqe s = qd_sqe_push(q, &seg, 1, ud);
	int ret;

	s.op_flags = flags;
	ret = qd_raw_queue_sqe(r, &s);
	if (ret)
		return ret;
	ret = qd_raw_submit(r);
	return ret == 1 ? 0 : ret < 0 ? ret : -EIO;
}

static int recv_all(int fd, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t c;

	while (got < n) {
		c = recv(fd, (char *)buf + got, n - got, 0);
		if (c <= 0)
			return c ? -errno : -EPIPE;
		got += c;
	}
	return 0;
}

static void fill(char *p, size_t n, unsigned int seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (char)(i * 7 + seed + (i >> 12));
}

struct reader {
	int fd;
	size_t n;
	char *out;
	int delay_ms;
	int ret;
};

static void *reader_run(void *arg)
{
	struct reader *rd = arg;

	usleep(rd->delay_ms * 1000);
	rd->ret = recv_all(rd->fd, rd->out, rd->n);
	return NULL;
}

FIXTURE(zc) {
	struct qd_raw r;
	char *buf;
	char *out;
	unsigned int region;
	char param[32];
	char local[8];
};

static int param_read(const char *path, char *buf, int len)
{
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, len, f))
		ret = -EIO;
	fclose(f);
	return ret;
}

static int param_write(const char *path, const char *v)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f)
		return -errno;
	ret = fputs(v, f) < 0 ? -EIO : 0;
	return fclose(f) ? -errno : ret;
}

FIXTURE_SETUP(zc)
{
	ASSERT_EQ(0, lo_up());
	ASSERT_EQ(0, qd_raw_init(&self->r, 64, 128));
	ASSERT_NE(0u, self->r.p.features & QD_FEAT_SEND_ZC)
		TH_LOG("the module does not send zero-copy");
	self->buf = qd_raw_pages(BUF);
	ASSERT_NE(NULL, self->buf);
	self->out = malloc(BUF);
	ASSERT_NE(NULL, self->out);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, BUF, &self->region));
	ASSERT_EQ(0, param_read(PARAM, self->param, sizeof(self->param)));
	ASSERT_EQ(0, param_read(PARAM_LOCAL, self->local, sizeof(self->local)));
}

FIXTURE_TEARDOWN(zc)
{
	param_write(PARAM, self->param);
	param_write(PARAM_LOCAL, self->local);
	qd_raw_exit(&self->r);
	free(self->out);
}

static int set_param(unsigned long v)
{
	char b[32];

	snprintf(b, sizeof(b), "%lu\n", v);
	return param_write(PARAM, b);
}

TEST_F(zc, tcp_zc_push_of_a_large_buffer_arrives_intact)
{
	size_t n = 4 << 20;
	long long zp = proc_key("sock_zc_pushes"), zb = proc_key("sock_zc_bytes");
	struct qd_cqe cqe;
	int q, fd;

	ASSERT_EQ(0, tcp_pair(&self->r, 0, 0, &q, &fd));
	fill(self->buf, n, 1);
	ASSERT_EQ(0, push(&self->r, self->region, q, 0, n, QD_PUSH_ZC, 1));
	ASSERT_EQ(0, recv_all(fd, self->out, n));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ((long long)n, cqe.res);
	EXPECT_EQ(0, memcmp(self->buf, self->out, n));
	EXPECT_EQ(zp + 1, proc_key("sock_zc_pushes"));
	EXPECT_LE(zb + (long long)n, proc_key("sock_zc_bytes"));
	/* and a tiny one, forced */
	ASSERT_EQ(0, push(&self->r, self->region, q, 100, 3, QD_PUSH_ZC, 2));
	ASSERT_EQ(0, recv_all(fd, self->out, 3));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
	EXPECT_EQ(3, cqe.res);
	EXPECT_EQ(0, memcmp(self->buf + 100, self->out, 3));
	close(fd);
}

TEST_F(zc, udp_zc_push_and_pushto_arrive_intact)
{
	struct sockaddr_in a = lo4(0);
	socklen_t len = sizeof(a);
	long long zp = proc_key("sock_zc_pushes");
	struct qd_seg seg = qd_seg(self->region, 8192, 40000);
	struct qd_cqe cqe;
	struct qd_sqe s;
	int fd = plain_rcvbuf(SOCK_DGRAM, 1 << 20), q;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&a, &len));
	fill(self->buf, 65536, 2);
	q = qd_raw_socket(&self->r, SOCK_DGRAM);
	ASSERT_LE(0, q);
	s = qd_sqe_push(q, &seg, 1, 3);
	s.opcode = QD_OP_PUSHTO;
	s.op_flags = QD_PUSH_ZC;
	s.addr2 = (uintptr_t)&a;
	s.addr_len = sizeof(a);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(40000, cqe.res);
	ASSERT_EQ(40000, recv(fd, self->out, BUF, 0));
	EXPECT_EQ(0, memcmp(self->buf + 8192, self->out, 40000));
	/* connected, a plain push of a datagram */
	ASSERT_EQ(0, raw_connect(&self->r, q, &a));
	ASSERT_EQ(0, push(&self->r, self->region, q, 100, 30000, QD_PUSH_ZC, 4));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
	EXPECT_EQ(4u, cqe.user_data);
	EXPECT_EQ(30000, cqe.res);
	ASSERT_EQ(30000, recv(fd, self->out, BUF, 0));
	EXPECT_EQ(0, memcmp(self->buf + 100, self->out, 30000));
	EXPECT_EQ(zp + 2, proc_key("sock_zc_pushes"));
	close(fd);
}

/*
 * The peer does not read and its window is small: a copied push fits the
 * send buffer and completes, a zero-copy one waits until the peer read
 * (and ACKed) its bytes.
 */
TEST_F(zc, zc_push_completes_only_after_the_peer_took_its_bytes)
{
	size_t n = 256 << 10;
	struct qd_cqe cqe;
	int q, fd;

	ASSERT_EQ(0, tcp_pair(&self->r, 4096, 4 << 20, &q, &fd));
	fill(self->buf, n, 3);
	fill(self->buf + n, n, 4);
	ASSERT_EQ(0, push(&self->r, self->region, q, 0, n, QD_PUSH_COPY, 1));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 2000 * MS));
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ((long long)n, cqe.res);
	ASSERT_EQ(0, push(&self->r, self->region, q, n, n, QD_PUSH_ZC, 2));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 300 * MS))
		TH_LOG("the zc push completed (res %lld) while its bytes were unread",
		       (long long)cqe.res);
	ASSERT_EQ(0, recv_all(fd, self->out, 2 * n));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ((long long)n, cqe.res);
	EXPECT_EQ(0, memcmp(self->buf, self->out, 2 * n));
	close(fd);
}

/* Overwrite the buffer the moment the push completes: the peer got the original. */
TEST_F(zc, buffer_reused_at_completion_does_not_change_what_was_sent)
{
	size_t n = 1 << 20;
	struct reader rd = { .n = n, .delay_ms = 100 };
	struct qd_cqe cqe;
	pthread_t t;
	char *copy = malloc(n);
	int q, fd;

	ASSERT_NE(NULL, copy);
	ASSERT_EQ(0, tcp_pair(&self->r, 4096, 0, &q, &fd));
	fill(self->buf, n, 5);
	memcpy(copy, self->buf, n);
	rd.fd = fd;
	rd.out = self->out;
	ASSERT_EQ(0, push(&self->r, self->region, q, 0, n, QD_PUSH_ZC, 1));
	ASSERT_EQ(0, pthread_create(&t, NULL, reader_run, &rd));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 10000 * MS));
	memset(self->buf, 0xff, n);
	pthread_join(t, NULL);
	EXPECT_EQ((long long)n, cqe.res);
	ASSERT_EQ(0, rd.ret);
	EXPECT_EQ(0, memcmp(copy, self->out, n));
	free(copy);
	close(fd);
}

/* A small send buffer: the pushes go out in pieces, in order. */
TEST_F(zc, partial_sends_continue_on_write_space_in_order)
{
	size_t n = 1 << 20;
	struct reader rd = { .n = 3 * n };
	struct qd_cqe cqe;
	pthread_t t;
	int q, fd, i;

	ASSERT_EQ(0, tcp_pair(&self->r, 0, 4096, &q, &fd));
	fill(self->buf, 3 * n, 6);
	rd.fd = fd;
	rd.out = self->out;
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, push(&self->r, self->region, q, i * n, n, QD_PUSH_ZC, 10 + i));
	ASSERT_EQ(0, pthread_create(&t, NULL, reader_run, &rd));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 10000 * MS));
		EXPECT_EQ(10u + i, cqe.user_data);
		EXPECT_EQ((long long)n, cqe.res);
	}
	pthread_join(t, NULL);
	ASSERT_EQ(0, rd.ret);
	EXPECT_EQ(0, memcmp(self->buf, self->out, 3 * n));
	close(fd);
}

/* The peer resets while the push waits: one error completion, once. */
TEST_F(zc, reset_during_a_zc_push_completes_it_once_with_an_error)
{
	struct linger lg = { 1, 0 };
	long long inflight = proc_key("sock_zc_inflight");
	struct qd_cqe cqe;
	int q, fd;

	ASSERT_EQ(0, tcp_pair(&self->r, 4096, 0, &q, &fd));
	ASSERT_EQ(0, push(&self->r, self->region, q, 0, 2 << 20, QD_PUSH_ZC, 1));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 200 * MS));
	EXPECT_EQ(inflight + 1, proc_key("sock_zc_inflight"));
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	close(fd);
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_TRUE(cqe.res == -ECONNRESET || cqe.res == -EPIPE)
		TH_LOG("res %lld", (long long)cqe.res);
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 200 * MS));
	EXPECT_EQ(inflight, proc_key("sock_zc_inflight"));
}

/*
 * Close with zc pushes queued and in the stack: each completes exactly
 * once (-ECANCELED, or its bytes if they had all gone), the one in the
 * stack only after the stack let go of its pages.
 */
TEST_F(zc, close_with_zc_pushes_in_flight_completes_each_once)
{
	size_t n = 512 << 10;
	long long inflight = proc_key("sock_zc_inflight");
	int q, fd, i, seen = 0;
	struct qd_cqe cqe;

	ASSERT_EQ(0, tcp_pair(&self->r, 4096, 65536, &q, &fd));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, push(&self->r, self->region, q, i * n, n, QD_PUSH_ZC, 1 + i));
	usleep(100 * 1000);
	ASSERT_EQ(0, qd_raw_close(self->r.fd, q));
	/* the pushes that never reached the stack end now */
	while (!qd_raw_wait_cqe(&self->r, &cqe, NULL, 300 * MS)) {
		ASSERT_TRUE(cqe.user_data >= 1 && cqe.user_data <= 4);
		ASSERT_FALSE(seen & (1 << cqe.user_data));
		seen |= 1 << cqe.user_data;
		EXPECT_TRUE(cqe.res == -ECANCELED || cqe.res == (long long)n);
	}
	/* the first one's pages are still in the (closed) socket */
	EXPECT_FALSE(seen & 2) TH_LOG("completed while the stack held its pages");
	EXPECT_LT(inflight, proc_key("sock_zc_inflight"));
	/* the peer drains the orphaned socket: the rest completes */
	while (recv(fd, self->out, BUF, 0) > 0)
		;
	while (seen != 0x1e && !qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS)) {
		ASSERT_TRUE(cqe.user_data >= 1 && cqe.user_data <= 4);
		ASSERT_FALSE(seen & (1 << cqe.user_data));
		seen |= 1 << cqe.user_data;
		EXPECT_TRUE(cqe.res == -ECANCELED || cqe.res == (long long)n);
	}
	EXPECT_EQ(0x1e, seen);
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 100 * MS));
	EXPECT_EQ(inflight, proc_key("sock_zc_inflight"));
	close(fd);
}

/*
 * SIGKILL with zc pushes in the stack: the dead process's pages stay
 * pinned while the stack holds them, and everything goes once it lets go.
 */
TEST_F(zc, sigkill_with_zc_pushes_in_flight_leaks_nothing)
{
	struct sockaddr_in a = lo4(0);
	socklen_t len = sizeof(a);
	int lfd = plain_rcvbuf(SOCK_STREAM, 4096), fd, pfd[2];
	long long pinned = proc_key("pinned_pages");
	long long inflight = proc_key("sock_zc_inflight");
	struct qd_proc p;
	pid_t pid;
	char c;

	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(lfd, 4));
	ASSERT_EQ(0, getsockname(lfd, (struct sockaddr *)&a, &len));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw r;
		unsigned int region;
		char *m = qd_raw_pages(4 << 20);
		int q, i;

		close(pfd[0]);
		CHILD_CHECK(m && !qd_raw_init(&r, 16, 32));
		CHILD_CHECK(!qd_raw_register(r.fd, m, 4 << 20, &region));
		q = qd_raw_socket(&r, SOCK_STREAM);
		CHILD_CHECK(q >= 0);
		CHILD_CHECK(!raw_connect(&r, q, &a));
		for (i = 0; i < 4; i++)
			CHILD_CHECK(!push(&r, region, q, i << 20, 1 << 20, QD_PUSH_ZC, i));
		usleep(100 * 1000);
		CHILD_CHECK(write(pfd[1], "k", 1) == 1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	fd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	EXPECT_LT(inflight, proc_key("sock_zc_inflight"));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, qd_wait_child(pid));
	usleep(200 * 1000);
	/* the stack still holds pages of the dead context: still pinned */
	EXPECT_LT(inflight, proc_key("sock_zc_inflight"));
	EXPECT_LE(pinned + 1, proc_key("pinned_pages"));
	/* the peer reads what the orphaned socket still sends, then closes */
	while (recv(fd, self->out, BUF, MSG_DONTWAIT) > 0)
		;
	close(fd);
	close(lfd);
	EXPECT_EQ(0, qd_proc_wait_idle(1, pinned, 10000, &p));
	for (int i = 0; i < 500 && proc_key("sockets"); i++)
		usleep(10000);
	EXPECT_EQ(0, proc_key("sockets"));
	EXPECT_EQ(inflight, proc_key("sock_zc_inflight"));
	EXPECT_EQ(0, proc_key("inflight"));
	EXPECT_EQ(pinned, proc_key("pinned_pages"));
	close(pfd[0]);
}

/* zc_min_bytes picks the path; QD_PUSH_ZC and QD_PUSH_COPY override it. */
TEST_F(zc, threshold_parameter_and_flags_choose_zc_or_copy)
{
	static const struct {
		unsigned long param;
		size_t len;
		__u32 flags;
		int zc;
	} c[] = {
		{ 4096, 8192, 0, 1 }, { 4096, 4096, 0, 1 }, { 4096, 4095, 0, 0 },
		{ 4294967295ul, 1 << 20, 0, 0 }, { 4294967295ul, 10, QD_PUSH_ZC, 1 },
		{ 0, 1, 0, 1 }, { 0, 1 << 20, QD_PUSH_COPY, 0 },
	};
	struct qd_cqe cqe;
	unsigned int i;
	int q, fd;

	/* loopback is the only route here: let it count as remote */
	ASSERT_EQ(0, param_write(PARAM_LOCAL, "1\n"));
	ASSERT_EQ(0, tcp_pair(&self->r, 0, 0, &q, &fd));
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		long long zp = proc_key("sock_zc_pushes");
		long long cp = proc_key("sock_copy_pushes");

		ASSERT_EQ(0, set_param(c[i].param));
		ASSERT_EQ(0, push(&self->r, self->region, q, 0, c[i].len, c[i].flags, i));
		ASSERT_EQ(0, recv_all(fd, self->out, c[i].len));
		ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
		EXPECT_EQ((long long)c[i].len, cqe.res);
		EXPECT_EQ(zp + c[i].zc, proc_key("sock_zc_pushes")) TH_LOG("case %u", i);
		EXPECT_EQ(cp + !c[i].zc, proc_key("sock_copy_pushes")) TH_LOG("case %u", i);
	}
	/* both flags: refused */
	ASSERT_EQ(0, push(&self->r, self->region, q, 0, 10, QD_PUSH_ZC | QD_PUSH_COPY, 99));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
	EXPECT_EQ(-EINVAL, cqe.res);
	close(fd);
}

/*
 * To a peer on a loopback route a push goes by copy whatever its size
 * (the receiver would copy anyway), unless forced or zc_local is set.
 */
TEST_F(zc, loopback_peers_get_copies_unless_forced_or_zc_local)
{
	static const struct {
		const char *local;
		__u32 flags;
		int zc;
	} c[] = {
		{ "0\n", 0, 0 }, { "0\n", QD_PUSH_ZC, 1 }, { "1\n", 0, 1 },
	};
	size_t n = 256 << 10;
	struct qd_cqe cqe;
	unsigned int i;
	int q, fd;

	ASSERT_EQ(0, set_param(4096));
	ASSERT_EQ(0, tcp_pair(&self->r, 0, 0, &q, &fd));
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		long long zp = proc_key("sock_zc_pushes");
		long long cp = proc_key("sock_copy_pushes");

		ASSERT_EQ(0, param_write(PARAM_LOCAL, c[i].local));
		ASSERT_EQ(0, push(&self->r, self->region, q, 0, n, c[i].flags, i));
		ASSERT_EQ(0, recv_all(fd, self->out, n));
		ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
		EXPECT_EQ((long long)n, cqe.res);
		EXPECT_EQ(zp + c[i].zc, proc_key("sock_zc_pushes")) TH_LOG("case %u", i);
		EXPECT_EQ(cp + !c[i].zc, proc_key("sock_copy_pushes")) TH_LOG("case %u", i);
	}
	close(fd);
}

/* Loopback's receive path copies the pages: counted as copied anyway. */
TEST_F(zc, loopback_counts_zc_sends_the_stack_copied)
{
	long long copied = proc_key("sock_zc_copied");
	struct qd_cqe cqe;
	int q, fd;

	ASSERT_EQ(0, tcp_pair(&self->r, 0, 0, &q, &fd));
	ASSERT_EQ(0, push(&self->r, self->region, q, 0, 65536, QD_PUSH_ZC, 1));
	ASSERT_EQ(0, recv_all(fd, self->out, 65536));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 5000 * MS));
	EXPECT_EQ(65536, cqe.res);
	EXPECT_EQ(copied + 1, proc_key("sock_zc_copied"));
	close(fd);
}

TEST_HARNESS_MAIN
