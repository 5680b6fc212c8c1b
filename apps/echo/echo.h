/* SPDX-License-Identifier: MIT */
/* qdecho: a TCP and UDP echo server on libqd, and a qd echo client. */
#ifndef QDECHO_ECHO_H
#define QDECHO_ECHO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct server_opts {
	const char	*addr;		/* -a: numeric IPv4 or IPv6 address */
	unsigned short	port;		/* -p: 0 picks one (printed) */
	int		threads;	/* -t: default the online CPUs */
	bool		udp;		/* -u: serve UDP as well as TCP */
	bool		quiet;		/* -q: no per-connection errors */
};

struct client_opts {
	const char	*host, *port;
	long		msgs;		/* -n: messages per connection */
	long		size;		/* -s: bytes per message */
	int		conns;		/* -c: connections at once */
	bool		udp;		/* -u: datagrams instead of TCP */
	int		timeout_ms;	/* -w: longest wait for progress */
};

int server_run(const struct server_opts *o);
int client_run(const struct client_opts *o);

/* "ADDR:PORT" ("[ADDR]:PORT" for IPv6) into buf. */
const char *addr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
