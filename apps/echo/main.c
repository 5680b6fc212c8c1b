// SPDX-License-Identifier: MIT
/*
 * qdecho: an echo server on libqd's socket qds (TCP, and UDP with -u),
 * one thread per CPU; `qdecho client` connects with libqd to any echo
 * server and checks every byte it gets back. See README.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echo.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qdecho [-a ADDR] [-p PORT] [-t THREADS] [-u] [-q]\n"
		"       qdecho client [-u] [-n MSGS] [-s SIZE] [-c CONNS] [-w MS] HOST PORT\n"
		"  server: echo every TCP connection (and UDP datagram with -u) on\n"
		"  ADDR (default ::, IPv4 too) port PORT (default 7777; 0 picks one),\n"
		"  THREADS threads (default: online CPUs); stops at SIGINT or SIGTERM.\n"
		"  client: CONNS connections (default 1) each send MSGS messages\n"
		"  (default 10) of SIZE bytes (default 1000) one at a time and check\n"
		"  that every byte comes back; fails if nothing moves for MS ms\n"
		"  (default 10000). Exit 0 when all came back.\n");
}

/* A decimal number in [lo, hi], or exit 2. */
static long number(const char *what, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "qdecho: bad %s '%s' (%ld..%ld)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

const char *addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(a->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(a->sin_port));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
	return buf;
}

static int client_main(int argc, char **argv)
{
	struct client_opts o = { .msgs = 10, .size = 1000, .conns = 1,
				 .timeout_ms = 10000 };
	int c;

	while ((c = getopt(argc, argv, "un:s:c:w:h")) != -1) {
		switch (c) {
		case 'u':
			o.udp = true;
			break;
		case 'n':
			o.msgs = number("message count", optarg, 1, LONG_MAX / 2);
			break;
		case 's':
			o.size = number("size", optarg, 1, 1L << 30);
			break;
		case 'c':
			o.conns = number("connection count", optarg, 1, 60000);
			break;
		case 'w':
			o.timeout_ms = number("timeout", optarg, 1, INT_MAX);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	o.host = argv[optind];
	o.port = argv[optind + 1];
	if (o.udp && o.size > 65507) {
		fprintf(stderr, "qdecho: a UDP message is at most 65507 bytes\n");
		return 2;
	}
	return client_run(&o);
}

int main(int argc, char **argv)
{
	struct server_opts o = { .addr = NULL, .port = 7777 };
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	if (argc > 1 && !strcmp(argv[1], "client"))
		return client_main(argc - 1, argv + 1);
	o.threads = cpus > 0 ? (int)cpus : 1;
	while ((c = getopt(argc, argv, "a:p:t:uqh")) != -1) {
		switch (c) {
		case 'a':
			o.addr = optarg;
			break;
		case 'p':
			o.port = (unsigned short)number("port", optarg, 0, 65535);
			break;
		case 't':
			o.threads = (int)number("thread count", optarg, 1, 1024);
			break;
		case 'u':
			o.udp = true;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return server_run(&o);
}
