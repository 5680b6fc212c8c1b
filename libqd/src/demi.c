// SPDX-License-Identifier: MIT
/*
 * Demikernel's C API (<demi/libos.h>, <demi/sga.h>, <demi/wait.h>) on top
 * of libqd's: thin wrappers that turn -errno into a positive errno and
 * translate the types. Tokens and qds are libqd's own; buffers are
 * qd_sgaalloc() ones and payload is never copied: only the one-segment
 * demi_sgarray_t and qd_sga headers are translated.
 */
#include <errno.h>
#include <string.h>

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>
#include <qd.h>

#include "int.h"

/* Demikernel's layout, which <demi/types.h> declares packed. */
_Static_assert(sizeof(demi_sgaseg_t) == sizeof(void *) + 4, "sgaseg");
_Static_assert(offsetof(demi_qresult_t, qr_qt) == 8, "qresult");
_Static_assert(offsetof(demi_qresult_t, qr_value) == 24, "qresult");
_Static_assert(sizeof(demi_qtoken_t) == sizeof(qd_token_t), "qtoken");

static inline int pos(int ret)
{
	return ret < 0 ? -ret : ret;
}

/* sga's one segment as a qd_sga (the buffer stays where it is). */
static int from_demi(struct qd_sga *out, const demi_sgarray_t *sga)
{
	if (!sga || sga->sga_numsegs != 1)
		return EINVAL;
	out->numsegs = 1;
	out->segs[0].buf = sga->sga_segs[0].sgaseg_buf;
	out->segs[0].len = sga->sga_segs[0].sgaseg_len;
	return 0;
}

/* An IPv4 address as Demikernel carries it; anything else stays zero. */
static void to_sin(void *out, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		memcpy(out, ss, sizeof(struct sockaddr_in));
}

int demi_init(const struct demi_args *args)
{
	(void)args;
	return pos(qd_init());
}

int demi_socket(int *sockqd_out, int domain, int type, int protocol)
{
	return pos(qd_socket(sockqd_out, domain, type, protocol));
}

int demi_listen(int sockqd, int backlog)
{
	return pos(qd_listen(sockqd, backlog));
}

int demi_bind(int sockqd, const struct sockaddr *addr, socklen_t size)
{
	return pos(qd_bind(sockqd, addr, size));
}

int demi_accept(demi_qtoken_t *qt_out, int sockqd)
{
	return pos(qd_accept(qt_out, sockqd));
}

int demi_connect(demi_qtoken_t *qt_out, int sockqd,
		 const struct sockaddr *addr, socklen_t size)
{
	return pos(qd_connect(qt_out, sockqd, addr, size));
}

int demi_close(int qd)
{
	return pos(qd_close(qd));
}

int demi_push(demi_qtoken_t *qt_out, int qd, const demi_sgarray_t *sga)
{
	struct qd_sga s;
	int ret = from_demi(&s, sga);

	return ret ? ret : pos(qd_push(qt_out, qd, &s));
}

int demi_pushto(demi_qtoken_t *qt_out, int sockqd, const demi_sgarray_t *sga,
		const struct sockaddr *dest_addr, socklen_t size)
{
	struct qd_sga s;
	int ret = from_demi(&s, sga);

	return ret ? ret : pos(qd_pushto(qt_out, sockqd, &s, dest_addr, size));
}

int demi_pop(demi_qtoken_t *qt_out, int qd)
{
	/* A socket pop takes one pool buffer: a demi_sgarray_t has one. */
	if (qt_out && qd__sock_kind(qd))
		return pos(qd__sock_pop(qt_out, qd, 1));
	return pos(qd_pop(qt_out, qd));
}

int demi_setsockopt(int qd, int level, int optname, const void *optval,
		    socklen_t optlen)
{
	return pos(qd_setsockopt(qd, level, optname, optval, optlen));
}

int demi_getsockopt(int qd, int level, int optname, void *optval,
		    socklen_t *optlen)
{
	return pos(qd_getsockopt(qd, level, optname, optval, optlen));
}

int demi_getpeername(int qd, struct sockaddr *addr, socklen_t *addrlen)
{
	return pos(qd_getpeername(qd, addr, addrlen));
}

demi_sgarray_t demi_sgaalloc(size_t size)
{
	struct qd_sga s = qd_sgaalloc(size);
	demi_sgarray_t sga;

	memset(&sga, 0, sizeof(sga));
	if (!s.numsegs)
		return sga;	/* errno set by qd_sgaalloc() */
	sga.sga_buf = s.segs[0].buf;
	sga.sga_numsegs = 1;
	sga.sga_segs[0].sgaseg_buf = s.segs[0].buf;
	sga.sga_segs[0].sgaseg_len = s.segs[0].len;
	return sga;
}

/* A pop's empty result (end of stream) carries no buffer: nothing to free. */
int demi_sgafree(demi_sgarray_t *sga)
{
	struct qd_sga s;
	int ret = from_demi(&s, sga);

	if (ret)
		return ret;
	if (!s.segs[0].buf && !s.segs[0].len)
		return 0;
	return pos(qd_sgafree(&s));
}

/*
 * Demikernel's result from libqd's: success keeps the opcode with qr_ret
 * 0 (a pop's byte count is its segment's length), failure is
 * DEMI_OPC_FAILED with the positive errno in qr_ret. A popped element of
 * several segments (pushed through qd_push()) does not fit a
 * demi_sgarray_t: it is freed and the pop fails with EMSGSIZE.
 */
static void to_demi(demi_qresult_t *qr, struct qd_result *r)
{
	static const demi_opcode_t opc[] = {
		[QD_OPC_INVALID] = DEMI_OPC_INVALID,
		[QD_OPC_PUSH] = DEMI_OPC_PUSH,
		[QD_OPC_POP] = DEMI_OPC_POP,
		[QD_OPC_ACCEPT] = DEMI_OPC_ACCEPT,
		[QD_OPC_CONNECT] = DEMI_OPC_CONNECT,
		[QD_OPC_CLOSE] = DEMI_OPC_CLOSE,
		[QD_OPC_FAILED] = DEMI_OPC_FAILED,
	};
	int64_t ret = r->ret;

	memset(qr, 0, sizeof(*qr));
	qr->qr_qd = r->qd;
	qr->qr_qt = r->qt;
	if (ret >= 0 && r->opcode == QD_OPC_POP &&
	    r->value.sga.numsegs > DEMI_SGARRAY_MAXSIZE) {
		qd_sgafree(&r->value.sga);
		ret = -EMSGSIZE;
	}
	if (ret < 0) {
		qr->qr_opcode = DEMI_OPC_FAILED;
		qr->qr_ret = -ret;
		return;
	}
	qr->qr_opcode = (unsigned int)r->opcode < sizeof(opc) / sizeof(opc[0]) ?
			opc[r->opcode] : DEMI_OPC_INVALID;
	if (r->opcode == QD_OPC_POP) {
		demi_sgarray_t *sga = &qr->qr_value.sga;

		sga->sga_numsegs = 1;
		if (r->value.sga.numsegs) {
			sga->sga_buf = r->value.sga.segs[0].buf;
			sga->sga_segs[0].sgaseg_buf = r->value.sga.segs[0].buf;
			sga->sga_segs[0].sgaseg_len = r->value.sga.segs[0].len;
		}
		to_sin(&sga->sga_addr, &r->value.sga.addr);
	} else if (r->opcode == QD_OPC_ACCEPT) {
		qr->qr_value.ares.qd = r->value.accept.qd;
		to_sin(&qr->qr_value.ares.addr, &r->value.accept.addr);
	}
}

int demi_wait(demi_qresult_t *qr_out, demi_qtoken_t qt,
	      const struct timespec *timeout)
{
	struct qd_result r;
	int ret = qd_wait(&r, qt, timeout);

	if (ret)
		return pos(ret);
	to_demi(qr_out, &r);
	return 0;
}

int demi_wait_any(demi_qresult_t *qr_out, int *ready_offset,
		  const demi_qtoken_t qts[], int num_qts,
		  const struct timespec *timeout)
{
	struct qd_result r;
	int ret = qd_wait_any(&r, ready_offset, qts, num_qts, timeout);

	if (ret)
		return pos(ret);
	to_demi(qr_out, &r);
	return 0;
}
