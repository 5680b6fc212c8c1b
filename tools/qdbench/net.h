/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qdbench net: a TCP echo over loopback, served by qd socket qds, epoll,
 * io_uring and a thread per connection, driven by one epoll load generator
 * in another process. net.c is the driver and the client; net_srv.c and
 * net_uring.c are the servers. A server runs in a process of its own,
 * forked per configuration; it counts the payload bytes its receive and
 * send calls (or completions) moved in net_cnt, which the server's control
 * thread reads at the phase boundaries.
 */
#ifndef QDBENCH_NET_H
#define QDBENCH_NET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A server's receive buffer: the largest message the benchmark sends. */
#define NET_BUF		65536
#define NET_BACKLOG	4096

/* Payload bytes the server's calls moved (its threads add, relaxed). */
struct net_count {
	_Atomic uint64_t	rx;
	_Atomic uint64_t	tx;
};
extern struct net_count net_cnt;

static inline void net_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct net_srv {
	const char	*name;		/* --mech name */
	const char	*label;		/* shown in tables */
	/* 0 when usable; otherwise why not, in why (runs in the driver) */
	int		(*probe)(char *why, size_t len);
	/* how it is set up, after probe; or NULL */
	const char	*(*note)(void);
	/* in the server process: listen on 127.0.0.1, port or -errno */
	int		(*listen)(void);
	/* in the server process: serve until killed; returns only on error */
	int		(*serve)(void);
	/* libqd's own count of its system calls (qd_stats), or NULL */
	uint64_t	(*lib_syscalls)(void);
	/* bytes copied are the kernel's /proc/qd socket counters */
	bool		qd_counters;
};

extern const struct net_srv net_epoll, net_uring, net_threads, net_qd;

/* net_uring.c: --uring-send copy|zc (0, or -EINVAL) */
int net_uring_send_opt(const char *arg);

/* net_srv.c: --qd-pop multi|single (0, or -EINVAL) */
int net_qd_pop_opt(const char *arg);
/* net_srv.c: --qd-wait next|many|any (0, or -EINVAL) */
int net_qd_wait_opt(const char *arg);

/* net.c */
int net_main(int argc, char **argv);
int net_listen_tcp(bool nonblock);
extern int net_lfd;	/* the listener net_listen_tcp() made */

#endif /* QDBENCH_NET_H */
