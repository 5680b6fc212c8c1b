// SPDX-License-Identifier: MIT
/*
 * Socket qds: qd_socket(), qd_bind(), qd_listen(), qd_accept(),
 * qd_connect(), qd_pushto(), qd_setsockopt(), qd_getsockopt(),
 * qd_getpeername(), and the buffer a plain qd_pop() on a socket brings.
 *
 * Making and configuring a socket are ioctls (they do not wait); accept,
 * connect, push, pushto and pop are operations like any other, with
 * tokens. A pop on a socket must bring the buffer the kernel copies into:
 * qd_pop() takes one from the allocator (QD_SOCK_RECV_SIZE bytes), which
 * belongs to the caller with the result (qd_sgafree()), and which libqd
 * frees itself when the pop yields no bytes or fails. libqd remembers
 * which qds are sockets (and of which type) in a table indexed by qd,
 * read without a lock.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "int.h"
#include "region.h"
#include "syscall.h"

#define QD_SOCK_TABLE	65536

/* 0: not a socket; else SOCK_STREAM or SOCK_DGRAM. Atomic bytes. */
static uint8_t sock_kind[QD_SOCK_TABLE];

int qd__sock_kind(int qd)
{
	if (qd < 0 || qd >= QD_SOCK_TABLE)
		return 0;
	return __atomic_load_n(&sock_kind[qd], __ATOMIC_RELAXED);
}

void qd__sock_set(int qd, int kind)
{
	if (qd >= 0 && qd < QD_SOCK_TABLE)
		__atomic_store_n(&sock_kind[qd], (uint8_t)kind,
				 __ATOMIC_RELAXED);
}

void qd__sock_forget_all(void)
{
	memset(sock_kind, 0, sizeof(sock_kind));
}

int qd_socket(int *qd_out, int domain, int type, int protocol)
{
	struct qd_socket_create c = { .domain = domain, .type = type,
				      .protocol = protocol };
	int ret;

	if (!qd_out)
		return -EINVAL;
	ret = qd__ctl(QD_IOC_SOCKET, &c);
	if (ret)
		return ret;
	qd__sock_set(c.qd, type);
	*qd_out = c.qd;
	return 0;
}

int qd_bind(int qd, const struct sockaddr *addr, socklen_t len)
{
	struct qd_sock_name n = { .qd = qd, .addr = (uintptr_t)addr,
				  .addr_len = len };

	if (!addr)
		return -EINVAL;
	return qd__ctl(QD_IOC_BIND, &n);
}

int qd_listen(int qd, int backlog)
{
	struct qd_sock_listen l = { .qd = qd, .backlog = backlog };

	return qd__ctl(QD_IOC_LISTEN, &l);
}

static int getname(int qd, struct sockaddr *addr, socklen_t *len,
		   uint32_t flags)
{
	struct qd_sock_name n = { .qd = qd, .addr = (uintptr_t)addr,
				  .flags = flags };
	int ret;

	if (!addr || !len)
		return -EINVAL;
	n.addr_len = *len;
	ret = qd__ctl(QD_IOC_GETNAME, &n);
	if (ret)
		return ret;
	*len = n.addr_len;
	return 0;
}

int qd_getpeername(int qd, struct sockaddr *addr, socklen_t *len)
{
	return getname(qd, addr, len, QD_NAME_PEER);
}

int qd_getsockname(int qd, struct sockaddr *addr, socklen_t *len)
{
	return getname(qd, addr, len, 0);
}

int qd_setsockopt(int qd, int level, int optname, const void *optval,
		  socklen_t optlen)
{
	struct qd_sockopt o = { .qd = qd, .level = level, .optname = optname,
				.optlen = optlen, .optval = (uintptr_t)optval };

	return qd__ctl(QD_IOC_SETSOCKOPT, &o);
}

int qd_getsockopt(int qd, int level, int optname, void *optval,
		  socklen_t *optlen)
{
	struct qd_sockopt o = { .qd = qd, .level = level, .optname = optname,
				.optval = (uintptr_t)optval };
	int ret;

	if (!optlen)
		return -EINVAL;
	o.optlen = *optlen;
	ret = qd__ctl(QD_IOC_GETSOCKOPT, &o);
	if (ret)
		return ret;
	*optlen = o.optlen;
	return 0;
}

int qd_accept(qd_token_t *qt_out, int qd)
{
	struct qd_sqe sqe = { .opcode = QD_OP_ACCEPT, .qd = qd };

	if (!qt_out)
		return -EINVAL;
	return qd__submit_ext(qt_out, &sqe, NULL, NULL, 0, NULL, 0);
}

int qd_connect(qd_token_t *qt_out, int qd, const struct sockaddr *addr,
	       socklen_t len)
{
	struct qd_sqe sqe = { .opcode = QD_OP_CONNECT, .qd = qd };

	if (!qt_out || !addr || len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	return qd__submit_ext(qt_out, &sqe, NULL, NULL, 0, addr, len);
}

int qd_pushto(qd_token_t *qt_out, int qd, const struct qd_sga *sga,
	      const struct sockaddr *to, socklen_t len)
{
	struct qd_sqe sqe = { .opcode = QD_OP_PUSHTO, .qd = qd };
	struct qd_seg segs[QD_SGA_MAX];
	int ret;

	if (!qt_out || !to || len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	ret = qd__sga_check(sga);
	if (ret)
		return ret;
	ret = qd_get();
	if (ret)
		return ret;
	ret = qd__alloc_translate(sga, segs);
	if (ret)
		return ret;
	sqe.nsegs = (uint16_t)sga->numsegs;
	return qd__submit_ext(qt_out, &sqe, sga, segs, 0, to, len);
}

/* A pop that takes buffers from pool g (stocked first) as bytes come. */
static int pool_pop(qd_token_t *qt_out, int qd, int g, uint32_t op_flags,
		    unsigned int max_segs)
{
	struct qd_sqe sqe = { .opcode = QD_OP_POP, .qd = qd,
			      .op_flags = QD_POP_POOL | op_flags,
			      .nsegs = (uint16_t)max_segs,
			      .buf_group = (uint32_t)g };

	qd__pool_stock(g);
	return qd__submit_ext(qt_out, &sqe, NULL, NULL, QD_SOCKBUF_POOL + g,
			       NULL, 0);
}

/*
 * qd_pop_multi() on a socket: one pool pop that delivers every chunk of
 * bytes as it comes (TCP; QD_POP_POOL | QD_POP_MULTISHOT), until the
 * peer's close (a result of 0 bytes), an error or qd_cancel().
 */
int qd__sock_pop_multi(qd_token_t *qt_out, int qd)
{
	int kind = qd__sock_kind(qd), g = qd__pool_for(kind);

	if (kind != SOCK_STREAM || g < 0 ||
	    !(qd__ctx.features & QD_FEAT_MULTISHOT))
		return -EOPNOTSUPP;
	return pool_pop(qt_out, qd, g, QD_POP_MULTISHOT, 0);
}

/*
 * qd_pop() on a socket: buffers from the socket pool when the bytes come
 * (pool.c), or, without pools, a buffer from the allocator rides with it.
 */
int qd__sock_pop(qd_token_t *qt_out, int qd, unsigned int max_segs)
{
	struct qd_sqe sqe = { .opcode = QD_OP_POP, .qd = qd, .nsegs = 1 };
	int g = qd__pool_for(qd__sock_kind(qd));
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_sga buf;
	int ret;

	if (g >= 0)
		return pool_pop(qt_out, qd, g, 0, max_segs);
	buf = qd_sgaalloc(QD_SOCK_RECV_SIZE);
	if (!buf.numsegs)
		return -errno;
	ret = qd__alloc_translate(&buf, segs);
	if (!ret)
		ret = qd__submit_ext(qt_out, &sqe, &buf, segs,
				      QD_SOCKBUF_OWN, NULL, 0);
	if (ret)
		qd_sgafree(&buf);
	return ret;
}
