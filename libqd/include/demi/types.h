/* SPDX-License-Identifier: MIT */
/*
 * <demi/types.h>: Demikernel's C types, for programs written against
 * Demikernel's C API and built with libqd (-lqd). The names, field names,
 * types and layout (packed, as Demikernel declares them on Linux) follow
 * Demikernel's include/demi/types.h; libqd/src/demi.c maps them onto
 * <qd.h>. See Documentation/libqd.md, "Demikernel compatibility".
 */
#ifndef LIBQD_DEMI_TYPES_H
#define LIBQD_DEMI_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most segments in one demi_sgarray_t (Demikernel's value). */
#define DEMI_SGARRAY_MAXSIZE 1

/* An operation's token: a libqd qd_token_t. */
typedef uint64_t demi_qtoken_t;

typedef struct __attribute__((__packed__)) demi_sgaseg {
	void		*sgaseg_buf;	/* the bytes */
	uint32_t	sgaseg_len;	/* how many */
} demi_sgaseg_t;

typedef struct __attribute__((__packed__)) demi_sgarray {
	void		*sga_buf;	/* reserved (libqd: the buffer's start) */
	uint32_t	sga_numsegs;	/* 1 */
	demi_sgaseg_t	sga_segs[DEMI_SGARRAY_MAXSIZE];
	struct sockaddr_in sga_addr;	/* source of a popped datagram */
} demi_sgarray_t;

typedef enum demi_opcode {
	DEMI_OPC_INVALID = 0,
	DEMI_OPC_PUSH,
	DEMI_OPC_POP,
	DEMI_OPC_ACCEPT,
	DEMI_OPC_CONNECT,
	DEMI_OPC_CLOSE,
	DEMI_OPC_FAILED,	/* the operation failed: qr_ret holds its errno */
} demi_opcode_t;

typedef struct __attribute__((__packed__)) demi_accept_result {
	int32_t			qd;	/* the accepted connection */
	struct sockaddr_in	addr;	/* its peer (zero unless IPv4) */
} demi_accept_result_t;

typedef struct __attribute__((__packed__)) demi_qresult {
	enum demi_opcode	qr_opcode;
	int32_t			qr_qd;
	demi_qtoken_t		qr_qt;
	int64_t			qr_ret;	/* 0, or a positive errno (FAILED) */
	union {
		demi_sgarray_t		sga;	/* POP: the bytes */
		demi_accept_result_t	ares;	/* ACCEPT */
	} qr_value;
} demi_qresult_t;

typedef void (*demi_callback_t)(const char *, uint32_t, uint64_t);

/* demi_init()'s arguments; libqd reads none of them. */
struct __attribute__((__packed__)) demi_args {
	int			argc;
	char *const		*argv;
	demi_callback_t		callback;
};

#ifdef __cplusplus
}
#endif

#endif /* LIBQD_DEMI_TYPES_H */
