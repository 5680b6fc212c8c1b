// SPDX-License-Identifier: GPL-2.0
/*
 * pool: buffer pools for socket pops (QD_OP_PROVIDE, QD_POP_POOL). A pool
 * pop waits holding no buffer and takes buffers only when bytes arrive,
 * as many as they need (TCP, up to the pop's nsegs) or one per datagram;
 * with the pool empty the bytes wait in the socket until a PROVIDE; a
 * failed or empty pop hands its buffers back in the CQE; RECLAIM takes
 * the pool back (a region a pool holds cannot be unregistered); bad
 * specifications are refused. Then libqd: qd_pop() on sockets through a
 * tiny pool (QD_SOCK_POOL=2) with many connections, so pops starve and
 * the refills serve them, every byte intact.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <qd.h>

#include "qd_raw.h"
#include "qd_net.h"
#include "qd_proc.h"
#include "harness.h"

#define BUF	4096

FIXTURE(raw) {
	struct qd_raw r;
	unsigned char *buf;
	unsigned int region;
	int lq, sq, cfd;	/* a raw listener, its accepted qd, the client */
};

/* Bind q to 127.0.0.1, any port; its address in *a. */
static int raw_bind(struct qd_raw *r, int q, struct sockaddr_in *a)
{
	struct qd_sock_name n = { .qd = q, .addr = (uintptr_t)a,
				  .addr_len = sizeof(*a) };
	int ret;

	*a = lo4(0);
	ret = qd_raw_ioctl(r->fd, QD_IOC_BIND, &n);
	n.addr_len = sizeof(*a);
	return ret ? ret : qd_raw_ioctl(r->fd, QD_IOC_GETNAME, &n);
}

/* A raw TCP listener, a plain client connected to it, the accepted qd. */
static int raw_pair(struct qd_raw *r, int *lq, int *sq, int *cfd)
{
	struct qd_sock_listen l = { .backlog = 4 };
	struct sockaddr_in a;
	struct qd_cqe cqe;
	struct qd_sqe s;
	int ret;

	*lq = qd_raw_socket(r, SOCK_STREAM);
	if (*lq < 0)
		return *lq;
	l.qd = *lq;
	ret = raw_bind(r, *lq, &a);
	if (!ret)
		ret = qd_raw_ioctl(r->fd, QD_IOC_LISTEN, &l);
	if (ret)
		return ret;
	*cfd = plain_connect(&a);
	if (*cfd < 0)
		return *cfd;
	s = (struct qd_sqe){ .opcode = QD_OP_ACCEPT, .qd = *lq, .user_data = 99 };
	ret = qd_raw_do(r, &s, &cqe, NULL);
	if (ret)
		return ret;
	*sq = (int)cqe.res;
	return cqe.res < 0 ? (int)cqe.res : 0;
}

/* PROVIDE n buffers of BUF bytes at offsets first, first + BUF, ... */
static int64_t provide(struct qd_raw *r, unsigned int region, __u32 group,
		       unsigned int first, unsigned int n)
{
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_sqe s = { .opcode = QD_OP_PROVIDE, .user_data = 7,
			    .addr = (uintptr_t)segs, .nsegs = (__u16)n,
			    .buf_group = group };
	struct qd_cqe cqe;
	unsigned int i;
	int ret;

	for (i = 0; i < n && i < QD_SGA_MAX; i++)
		segs[i] = qd_seg((__u16)region, (first + i) * BUF, BUF);
	ret = qd_raw_do(r, &s, &cqe, NULL);
	return ret ? ret : cqe.res;
}

static struct qd_sqe pool_pop(int qd, __u32 group, __u16 max, __u64 user_data)
{
	struct qd_sqe s = qd_sqe_pop(qd, user_data);

	s.op_flags = QD_POP_POOL;
	s.buf_group = group;
	s.nsegs = max;
	return s;
}

/*
 * The "pool G buffers N ..." line of this process's (newest) context in
 * debugfs: N, or -1 when the pool was never used.
 */
static long pool_buffers(unsigned int group)
{
	char dirs[8][256], path[300], line[256];
	unsigned int g;
	long n = -1, b;
	int nd;
	FILE *f;

	if (qd_debugfs_ready())
		return -2;
	nd = qd_debugfs_ctx_dirs(getpid(), dirs, 8);
	if (nd <= 0)
		return -2;
	snprintf(path, sizeof(path), "%s/info", dirs[nd - 1]);
	f = fopen(path, "r");
	if (!f)
		return -2;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "pool %u buffers %ld", &g, &b) == 2 && g == group)
			n = b;
	fclose(f);
	return n;
}

FIXTURE_SETUP(raw)
{
	ASSERT_EQ(0, lo_up());
	ASSERT_EQ(0, qd_raw_init(&self->r, 16, 32));
	self->buf = qd_raw_pages(1 << 16);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, 1 << 16, &self->region));
	self->cfd = -1;
}

FIXTURE_TEARDOWN(raw)
{
	if (self->cfd >= 0)
		close(self->cfd);
	qd_raw_exit(&self->r);
}

TEST_F(raw, a_pool_pop_takes_buffers_only_for_the_bytes_that_came)
{
	unsigned char msg[10000];
	struct qd_elem elem;
	struct qd_cqe cqe;
	struct qd_sqe s;
	unsigned int i, off = 0;

	ASSERT_EQ(0, raw_pair(&self->r, &self->lq, &self->sq, &self->cfd));
	ASSERT_EQ(8, provide(&self->r, self->region, 3, 0, 8));
	EXPECT_EQ(8, pool_buffers(3));
	/* Waiting, the pop holds none of them. */
	s = pool_pop(self->sq, 3, 0, 1);
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 50 * QD_RAW_MS));
	EXPECT_EQ(8, pool_buffers(3));
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)(i * 7 + 1);
	ASSERT_EQ((ssize_t)sizeof(msg), send(self->cfd, msg, sizeof(msg), 0));
	qd_sleep_ms(100);	/* all of it queued before the pop is served */
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, &elem, 2000 * QD_RAW_MS));
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(QD_CQE_F_ELEM | QD_CQE_F_COPIED | QD_CQE_F_POOL, cqe.flags);
	ASSERT_LT(0, cqe.res);
	ASSERT_GE((long long)sizeof(msg), cqe.res);
	/* Only the buffers the bytes filled, the last one trimmed. */
	ASSERT_EQ((cqe.res + BUF - 1) / BUF, cqe.nsegs);
	EXPECT_EQ(8 - cqe.nsegs, pool_buffers(3));
	for (i = 0; i < cqe.nsegs; i++) {
		EXPECT_EQ(self->region, elem.segs[i].region);
		EXPECT_EQ(0u, elem.segs[i].offset % BUF);
		EXPECT_EQ(0, memcmp(self->buf + elem.segs[i].offset, msg + off,
				    elem.segs[i].len));
		off += elem.segs[i].len;
	}
	EXPECT_EQ(cqe.res, off);
}

TEST_F(raw, nsegs_bounds_what_a_pool_pop_takes)
{
	char msg[3 * BUF];
	struct qd_elem elem;
	struct qd_cqe cqe;
	struct qd_sqe s;

	ASSERT_EQ(0, raw_pair(&self->r, &self->lq, &self->sq, &self->cfd));
	ASSERT_EQ(4, provide(&self->r, self->region, 0, 0, 4));
	memset(msg, 'x', sizeof(msg));
	ASSERT_EQ((ssize_t)sizeof(msg), send(self->cfd, msg, sizeof(msg), 0));
	qd_sleep_ms(100);
	s = pool_pop(self->sq, 0, 1, 2);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, &elem));
	EXPECT_EQ(BUF, cqe.res);
	EXPECT_EQ(1, cqe.nsegs);
	s = pool_pop(self->sq, 0, 2, 3);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, &elem));
	EXPECT_EQ(2 * BUF, cqe.res);
	EXPECT_EQ(2, cqe.nsegs);
	EXPECT_EQ(1, pool_buffers(0));
}

TEST_F(raw, an_empty_pool_holds_the_bytes_until_a_provide)
{
	struct qd_elem elem;
	struct qd_cqe cqe;
	struct qd_sqe s;

	ASSERT_EQ(0, raw_pair(&self->r, &self->lq, &self->sq, &self->cfd));
	ASSERT_EQ(5, send(self->cfd, "hello", 5, 0));
	s = pool_pop(self->sq, 1, 0, 4);
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	/* No buffer: no completion, nothing lost. */
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 100 * QD_RAW_MS));
	/* A FIN behind the bytes does not end the pop early either. */
	shutdown(self->cfd, SHUT_WR);
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 100 * QD_RAW_MS));
	/* The PROVIDE's own CQE, then the pop's: its buffer, the bytes. */
	s = (struct qd_sqe){ .opcode = QD_OP_PROVIDE, .user_data = 5,
			     .nsegs = 1, .buf_group = 1 };
	do {
		struct qd_seg seg = qd_seg((__u16)self->region, 8 * BUF, BUF);

		s.addr = (uintptr_t)&seg;
		ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
		ASSERT_EQ(1, qd_raw_submit(&self->r));
	} while (0);
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, &elem, 2000 * QD_RAW_MS));
	if (cqe.user_data == 5) {
		EXPECT_EQ(1, cqe.res);
		ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, &elem, 2000 * QD_RAW_MS));
	} else {
		struct qd_cqe prov;

		ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &prov, NULL, 2000 * QD_RAW_MS));
		EXPECT_EQ(5u, prov.user_data);
	}
	EXPECT_EQ(4u, cqe.user_data);
	ASSERT_EQ(5, cqe.res);
	ASSERT_EQ(1, cqe.nsegs);
	EXPECT_EQ(8u * BUF, elem.segs[0].offset);
	EXPECT_EQ(0, memcmp(self->buf + 8 * BUF, "hello", 5));
	/* Then the FIN: 0 bytes, and no buffer taken for it. */
	ASSERT_EQ(1, provide(&self->r, self->region, 1, 9, 1));
	s = pool_pop(self->sq, 1, 0, 6);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(0, cqe.res);
	EXPECT_EQ(0, cqe.nsegs);
	EXPECT_EQ(1, pool_buffers(1));
}

TEST_F(raw, a_datagram_takes_one_buffer_and_carries_its_source)
{
	struct sockaddr_in a, from = lo4(0);
	socklen_t len = sizeof(from);
	const struct qd_cqe_addr *ca;
	struct qd_elem elem;
	struct qd_cqe cqe;
	struct qd_sqe s;
	char big[BUF + 100];
	int uq, fd;

	uq = qd_raw_socket(&self->r, SOCK_DGRAM);
	ASSERT_LE(0, uq);
	ASSERT_EQ(0, raw_bind(&self->r, uq, &a));
	fd = plain(SOCK_DGRAM);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&from, sizeof(from)));
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&from, &len));
	ASSERT_EQ(2, provide(&self->r, self->region, 2, 0, 2));
	ASSERT_EQ(3, sendto(fd, "abc", 3, 0, (struct sockaddr *)&a, sizeof(a)));
	memset(big, 'b', sizeof(big));
	ASSERT_EQ((ssize_t)sizeof(big),
		  sendto(fd, big, sizeof(big), 0, (struct sockaddr *)&a, sizeof(a)));
	s = pool_pop(uq, 2, 0, 8);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, &elem));
	ASSERT_EQ(3, cqe.res);
	EXPECT_EQ(QD_CQE_F_ELEM | QD_CQE_F_COPIED | QD_CQE_F_ADDR | QD_CQE_F_POOL,
		  cqe.flags);
	ASSERT_EQ(1, cqe.nsegs);
	EXPECT_EQ(0, memcmp(self->buf + elem.segs[0].offset, "abc", 3));
	ca = (const struct qd_cqe_addr *)&elem.segs[QD_CQE_ADDR_SEG];
	EXPECT_EQ(0, memcmp(ca->addr, &from, sizeof(from)));
	/* One buffer per datagram: a longer one is truncated, flagged. */
	s = pool_pop(uq, 2, 0, 9);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, &elem));
	EXPECT_EQ(BUF, cqe.res);
	EXPECT_NE(0u, cqe.flags & QD_CQE_F_TRUNC);
	EXPECT_EQ(1, cqe.nsegs);
	EXPECT_EQ(0, pool_buffers(2));
	close(fd);
}

/* The next CQE within 2 s, or fail. */
static int next_cqe(struct qd_raw *r, struct qd_cqe *cqe, struct qd_elem *elem)
{
	return qd_raw_wait_cqe(r, cqe, elem, 2000 * QD_RAW_MS);
}

TEST_F(raw, a_multishot_pool_pop_delivers_each_chunk_until_the_fin)
{
	const unsigned int more = QD_CQE_F_MORE | QD_CQE_F_ELEM |
				  QD_CQE_F_COPIED | QD_CQE_F_POOL;
	struct qd_elem elem;
	struct qd_cqe cqe;
	struct qd_sqe s;

	ASSERT_EQ(0, raw_pair(&self->r, &self->lq, &self->sq, &self->cfd));
	ASSERT_EQ(8, provide(&self->r, self->region, 0, 0, 8));
	s = pool_pop(self->sq, 0, 0, 1);
	s.op_flags |= QD_POP_MULTISHOT;
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	ASSERT_EQ(3, send(self->cfd, "one", 3, 0));
	ASSERT_EQ(0, next_cqe(&self->r, &cqe, &elem));
	EXPECT_EQ(1u, cqe.user_data);
	ASSERT_EQ(3, cqe.res);
	EXPECT_EQ(more, cqe.flags);
	EXPECT_EQ(0, memcmp(self->buf + elem.segs[0].offset, "one", 3));
	ASSERT_EQ(4, send(self->cfd, "two!", 4, 0));
	ASSERT_EQ(0, next_cqe(&self->r, &cqe, &elem));
	ASSERT_EQ(4, cqe.res);
	EXPECT_EQ(more, cqe.flags);
	EXPECT_EQ(0, memcmp(self->buf + elem.segs[0].offset, "two!", 4));
	EXPECT_EQ(6, pool_buffers(0));
	/* The FIN ends it: 0 bytes, no QD_CQE_F_MORE, no buffer taken. */
	shutdown(self->cfd, SHUT_WR);
	ASSERT_EQ(0, next_cqe(&self->r, &cqe, NULL));
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(0, cqe.res);
	EXPECT_EQ(0u, cqe.flags & (QD_CQE_F_MORE | QD_CQE_F_ELEM));
	EXPECT_EQ(6, pool_buffers(0));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 50 * QD_RAW_MS));
}

TEST_F(raw, a_multishot_pool_pop_waits_for_buffers_and_a_cancel_ends_it)
{
	struct qd_cqe cqe, c2;
	struct qd_elem elem;
	struct qd_sqe s;

	ASSERT_EQ(0, raw_pair(&self->r, &self->lq, &self->sq, &self->cfd));
	s = pool_pop(self->sq, 0, 0, 1);
	s.op_flags |= QD_POP_MULTISHOT;
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	ASSERT_EQ(2, send(self->cfd, "hi", 2, 0));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 100 * QD_RAW_MS));
	/* One buffer: the PROVIDE's CQE and the chunk's, in either order. */
	s = (struct qd_sqe){ .opcode = QD_OP_PROVIDE, .user_data = 5,
			     .nsegs = 1 };
	do {
		struct qd_seg seg = qd_seg((__u16)self->region, 0, BUF);

		s.addr = (uintptr_t)&seg;
		ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
		ASSERT_EQ(1, qd_raw_submit(&self->r));
	} while (0);
	ASSERT_EQ(0, next_cqe(&self->r, &cqe, &elem));
	if (cqe.user_data == 5) {
		ASSERT_EQ(0, next_cqe(&self->r, &cqe, &elem));
	} else {
		ASSERT_EQ(0, next_cqe(&self->r, &c2, NULL));
	}
	EXPECT_EQ(1u, cqe.user_data);
	ASSERT_EQ(2, cqe.res);
	EXPECT_NE(0u, cqe.flags & QD_CQE_F_MORE);
	/* A cancel: its own CQE and the pop's last, -ECANCELED. */
	s = (struct qd_sqe){ .opcode = QD_OP_CANCEL, .qd = self->sq,
			     .addr = 1, .user_data = 6 };
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	ASSERT_EQ(0, next_cqe(&self->r, &cqe, NULL));
	ASSERT_EQ(0, next_cqe(&self->r, &c2, NULL));
	if (cqe.user_data == 6) {
		struct qd_cqe t = cqe;

		cqe = c2;
		c2 = t;
	}
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_EQ(0u, cqe.flags & QD_CQE_F_MORE);
	EXPECT_EQ(6u, c2.user_data);
	EXPECT_EQ(0, c2.res);
}

TEST_F(raw, reclaim_takes_the_pool_back_and_frees_its_region)
{
	struct qd_sqe s = { .opcode = QD_OP_PROVIDE, .user_data = 3,
			    .op_flags = QD_PROVIDE_RECLAIM, .buf_group = 4 };
	struct qd_cqe cqe;

	ASSERT_EQ(6, provide(&self->r, self->region, 4, 0, 6));
	/* The pool holds references on the region. */
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->r.fd, self->region));
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(6, cqe.res);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(0, cqe.res);
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, self->region));
}

TEST_F(raw, provide_and_pool_pops_check_their_fields)
{
	struct qd_seg segs[QD_SGA_MAX + 1];
	struct qd_elem elem;
	struct qd_cqe cqe;
	struct qd_sqe s;
	int tq, mq, i;

	tq = qd_raw_socket(&self->r, SOCK_STREAM);
	ASSERT_LE(0, tq);
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &mq));
	for (i = 0; i <= QD_SGA_MAX; i++)
		segs[i] = qd_seg((__u16)self->region, i * BUF, BUF);
	/* PROVIDE: a group in range, qd zero, at most QD_SGA_MAX buffers */
	s = (struct qd_sqe){ .opcode = QD_OP_PROVIDE, .user_data = 1,
			     .addr = (uintptr_t)segs, .nsegs = 1,
			     .buf_group = QD_POOL_GROUPS };
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.buf_group = 0;
	s.qd = 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.qd = 0;
	s.nsegs = QD_SGA_MAX + 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.nsegs = 0;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.nsegs = 1;
	s.resv2[0] = 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.resv2[0] = 0;
	/* RECLAIM names no buffers */
	s.op_flags = QD_PROVIDE_RECLAIM;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s.op_flags = 2;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* A buffer outside the region: nothing added, none handed back */
	s.op_flags = 0;
	segs[1] = qd_seg((__u16)self->region, 1 << 16, BUF);
	s.nsegs = 2;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, &elem));
	EXPECT_GT(0, cqe.res);
	EXPECT_EQ(0u, cqe.flags & QD_CQE_F_ELEM);
	EXPECT_EQ(-1, pool_buffers(0));
	/* Success with SKIP_SUCCESS posts nothing */
	segs[1] = qd_seg((__u16)self->region, BUF, BUF);
	s.flags = QD_SQE_F_SKIP_SUCCESS;
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 50 * QD_RAW_MS));
	EXPECT_EQ(2, pool_buffers(0));

	/* POOL pops: no buffer of their own, no multishot, nsegs bounded */
	s = pool_pop(tq, 0, 0, 2);
	s.addr = (uintptr_t)segs;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = pool_pop(tq, 0, QD_SGA_MAX + 1, 2);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = pool_pop(tq, QD_POOL_GROUPS, 0, 2);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* multishot: TCP only (a parked datagram would lose its source) */
	s = pool_pop(qd_raw_socket(&self->r, SOCK_DGRAM), 0, 0, 2);
	s.op_flags |= QD_POP_MULTISHOT;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* and with a pool: a multishot pop that brings a buffer is refused */
	s = qd_sqe_pop(tq, 2);
	s.op_flags = QD_POP_MULTISHOT;
	s.addr = (uintptr_t)segs;
	s.nsegs = 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* buf_group is reserved for a pop without a pool */
	s = qd_sqe_pop(mq, 2);
	s.buf_group = 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* and for the other opcodes */
	s = qd_sqe_push(mq, segs, 1, 2);
	s.buf_group = 1;
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* memory queues have no pools */
	s = pool_pop(mq, 0, 0, 2);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EOPNOTSUPP, cqe.res);
	/* a pool pop on an unconnected socket */
	s = pool_pop(tq, 0, 0, 2);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-ENOTCONN, cqe.res);
	/* a socket takes from one pool: its first pool pop's (0) */
	s = pool_pop(tq, 1, 0, 2);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
}

TEST_F(raw, a_starved_socket_closed_is_released_without_a_provide)
{
	long long before, now = 0;
	struct qd_cqe cqe;
	struct qd_sqe s;
	int i;

	ASSERT_EQ(0, raw_pair(&self->r, &self->lq, &self->sq, &self->cfd));
	ASSERT_EQ(3, send(self->cfd, "abc", 3, 0));
	s = pool_pop(self->sq, 0, 0, 1);
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	ASSERT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 100 * QD_RAW_MS));
	before = qd_kv(QD_PROC_PATH, "sockets");
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->sq));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, 2000 * QD_RAW_MS));
	EXPECT_EQ(-ECANCELED, cqe.res);
	/* The pool let go of it: the socket goes now, not at a PROVIDE. */
	for (i = 0; i < 200; i++) {
		now = qd_kv(QD_PROC_PATH, "sockets");
		if (now < before)
			break;
		qd_sleep_ms(10);
	}
	EXPECT_EQ(before - 1, now);
}

TEST_F(raw, closing_the_context_with_starved_pops_and_a_full_pool_leaks_nothing)
{
	struct qd_cqe cqe;
	struct qd_sqe s;
	int lq2, sq2, cfd2;

	ASSERT_EQ(0, raw_pair(&self->r, &self->lq, &self->sq, &self->cfd));
	ASSERT_EQ(0, raw_pair(&self->r, &lq2, &sq2, &cfd2));
	ASSERT_EQ(3, send(self->cfd, "abc", 3, 0));
	s = pool_pop(self->sq, 5, 0, 1);
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	ASSERT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 50 * QD_RAW_MS));
	/* Another pool: the pop stays starved. */
	ASSERT_EQ(8, provide(&self->r, self->region, 6, 0, 8));
	close(cfd2);
	qd_raw_exit(&self->r);
	/* The pool's region references and pins go with the context. */
	EXPECT_EQ(0, qd_proc_wait_idle(0, 0, 3000, NULL));
	ASSERT_EQ(0, qd_raw_init(&self->r, 16, 32));
}

/* --- libqd: qd_pop() on sockets through a tiny pool ---------------------- */

#define CONNS	16
#define BYTES	(20 * 1000)

static unsigned char pattern(int conn, size_t i)
{
	return (unsigned char)(conn * 31 + i * 7 + (i >> 8));
}

FIXTURE(lib) {
	int unused;
};

FIXTURE_SETUP(lib)
{
	ASSERT_EQ(0, lo_up());
}

FIXTURE_TEARDOWN(lib)
{
}

TEST_F(lib, pops_starve_on_a_tiny_pool_and_the_refills_serve_them)
{
	static unsigned char got[CONNS][BYTES];
	size_t have[CONNS] = { 0 };
	qd_token_t qts[CONNS], at;
	int lq, sq[CONNS], cfd[CONNS], i, left = CONNS, idx, quiet;
	struct sockaddr_in a = lo4(0);
	socklen_t alen = sizeof(a);
	unsigned char msg[BYTES];
	struct qd_result qr;
	uint32_t k;

	/* Two buffers, refilled below one: most pops find it empty. */
	ASSERT_EQ(0, setenv("QD_SOCK_POOL", "2", 1));
	ASSERT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_queue(&quiet));	/* an empty queue: pops wait */
	ASSERT_EQ(0, qd_socket(&lq, AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(0, qd_bind(lq, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, qd_getsockname(lq, (struct sockaddr *)&a, &alen));
	ASSERT_EQ(0, qd_listen(lq, CONNS));
	for (i = 0; i < CONNS; i++) {
		cfd[i] = plain_connect(&a);
		ASSERT_LE(0, cfd[i]);
		ASSERT_EQ(0, qd_accept(&at, lq));
		ASSERT_EQ(0, qd_wait(&qr, at, NULL));
		ASSERT_LE(0, qr.ret);
		sq[i] = qr.value.accept.qd;
		ASSERT_EQ(0, qd_pop(&qts[i], sq[i]));
	}
	for (i = 0; i < CONNS; i++) {
		size_t j;

		for (j = 0; j < BYTES; j++)
			msg[j] = pattern(i, j);
		ASSERT_EQ(BYTES, send(cfd[i], msg, BYTES, 0));
	}
	while (left) {
		struct timespec t = { 10, 0 };

		ASSERT_EQ(0, qd_wait_any(&qr, &idx, qts, CONNS, &t));
		ASSERT_LT(0, qr.ret);
		for (k = 0; k < qr.value.sga.numsegs; k++) {
			ASSERT_GE((size_t)BYTES, have[idx] + qr.value.sga.segs[k].len);
			memcpy(got[idx] + have[idx], qr.value.sga.segs[k].buf,
			       qr.value.sga.segs[k].len);
			have[idx] += qr.value.sga.segs[k].len;
		}
		ASSERT_EQ(0, qd_sgafree(&qr.value.sga));
		if (have[idx] < BYTES) {
			ASSERT_EQ(0, qd_pop(&qts[idx], sq[idx]));
			continue;
		}
		/* Done: a pop that never completes keeps its slot quiet. */
		left--;
		ASSERT_EQ(0, qd_pop(&qts[idx], quiet));
	}
	for (i = 0; i < CONNS; i++) {
		size_t j;

		for (j = 0; j < BYTES; j++)
			if (got[i][j] != pattern(i, j))
				break;
		EXPECT_EQ((size_t)BYTES, j);
		close(cfd[i]);
	}
}

TEST_F(lib, qd_pop_multi_on_a_socket_yields_each_chunk_then_zero)
{
	struct sockaddr_in a = lo4(0);
	socklen_t alen = sizeof(a);
	const char *msgs[] = { "alpha", "beta", "gamma" };
	struct qd_result qr;
	qd_token_t qt, mt;
	int lq, sq, cfd, udp;
	unsigned int i;

	ASSERT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_socket(&lq, AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(0, qd_bind(lq, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, qd_getsockname(lq, (struct sockaddr *)&a, &alen));
	ASSERT_EQ(0, qd_listen(lq, 4));
	cfd = plain_connect(&a);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, qd_accept(&qt, lq));
	ASSERT_EQ(0, qd_wait(&qr, qt, NULL));
	sq = qr.value.accept.qd;
	ASSERT_EQ(0, qd_pop_multi(&mt, sq));
	for (i = 0; i < 3; i++) {
		size_t n = strlen(msgs[i]);

		ASSERT_EQ((ssize_t)n, send(cfd, msgs[i], n, 0));
		ASSERT_EQ(0, qd_wait(&qr, mt, NULL));
		ASSERT_EQ((int64_t)n, qr.ret);
		ASSERT_EQ(1u, qr.value.sga.numsegs);
		EXPECT_EQ(0, memcmp(qr.value.sga.segs[0].buf, msgs[i], n));
		EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
	}
	close(cfd);
	ASSERT_EQ(0, qd_wait(&qr, mt, NULL));
	EXPECT_EQ(0, qr.ret);
	EXPECT_EQ(-EINVAL, qd_wait(&qr, mt, NULL));	/* it ended */
	ASSERT_EQ(0, qd_socket(&udp, AF_INET, SOCK_DGRAM, 0));
	EXPECT_EQ(-EOPNOTSUPP, qd_pop_multi(&mt, udp));
}

TEST_HARNESS_MAIN
