/* SPDX-License-Identifier: MIT */
/*
 * <demi/libos.h>: Demikernel's queue and socket calls, implemented by libqd
 * on <qd.h>. Every function returns 0 or a positive errno. Memory queues
 * (demi_create_pipe(), demi_open_pipe()) are not offered: see
 * Documentation/libqd.md, "Demikernel compatibility".
 */
#ifndef LIBQD_DEMI_LIBOS_H
#define LIBQD_DEMI_LIBOS_H

#include <stddef.h>
#include <sys/socket.h>
#include <demi/types.h>

#ifdef __cplusplus
extern "C" {
#endif

int demi_init(const struct demi_args *args);
int demi_socket(int *sockqd_out, int domain, int type, int protocol);
int demi_listen(int sockqd, int backlog);
int demi_bind(int sockqd, const struct sockaddr *addr, socklen_t size);
int demi_accept(demi_qtoken_t *qt_out, int sockqd);
int demi_connect(demi_qtoken_t *qt_out, int sockqd,
		 const struct sockaddr *addr, socklen_t size);
int demi_close(int qd);
int demi_push(demi_qtoken_t *qt_out, int qd, const demi_sgarray_t *sga);
int demi_pushto(demi_qtoken_t *qt_out, int sockqd, const demi_sgarray_t *sga,
		const struct sockaddr *dest_addr, socklen_t size);
int demi_pop(demi_qtoken_t *qt_out, int qd);
int demi_setsockopt(int qd, int level, int optname, const void *optval,
		    socklen_t optlen);
int demi_getsockopt(int qd, int level, int optname, void *optval,
		    socklen_t *optlen);
int demi_getpeername(int qd, struct sockaddr *addr, socklen_t *addrlen);

#ifdef __cplusplus
}
#endif

#endif /* LIBQD_DEMI_LIBOS_H */
