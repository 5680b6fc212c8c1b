/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Loopback helpers shared by the socket suites (net, pool): the loopback
 * interface up, IPv4 loopback addresses, plain Linux sockets with 5 s
 * timeouts on either side of a qd socket.
 */
#ifndef QD_NET_H
#define QD_NET_H

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The guest may boot with lo down: bring it up (and keep it). */
static inline int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		ret = -errno;
	else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr))
			ret = -errno;
	}
	close(fd);
	return ret;
}

static inline struct sockaddr_in lo4(unsigned short port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* A plain socket with 5 s timeouts. */
static inline int plain(int type)
{
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static inline int plain_connect(const struct sockaddr_in *a)
{
	int fd = plain(SOCK_STREAM);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)a, sizeof(*a))) {
		close(fd);
		return -errno;
	}
	return fd;
}

static inline int plain_listener(struct sockaddr_in *a, int backlog)
{
	socklen_t len = sizeof(*a);
	int fd = plain(SOCK_STREAM);

	*a = lo4(0);
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) ||
	    listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)a, &len))
		return -1;
	return fd;
}

#endif /* QD_NET_H */
