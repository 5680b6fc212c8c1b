// SPDX-License-Identifier: MIT
/*
 * conn-scale: how much kernel memory an idle TCP connection costs a server
 * on qd, next to an epoll server, under the same plain client.
 *
 * For each server kind it starts the server, snapshots the kernel's memory
 * (/proc/meminfo, every /proc/slabinfo cache, /proc/net/sockstat, /proc/qd
 * and the server's VmRSS), opens CONNS plain TCP connections to it over
 * loopback, sends SIZE bytes on each and reads them back, snapshots again
 * with all of them idle and open, closes them, and stops the server
 * (qdecho must exit 0 at SIGTERM). It prints the difference per connection.
 * Both ends are in this kernel: the figures hold the client's sockets too,
 * which is why the same client runs against every kind:
 *
 *   qd     qdecho (accepted qd sockets, each with a pop pending)
 *   epoll  a plain epoll echo server (an fd, file, inode and epitem each)
 *   bare   a listener that never accepts: both ends' TCP sockets and
 *          nothing else (no echo), the floor under the other two
 *
 * qd - bare is what qd adds to a kernel TCP socket; qd - epoll what a qd
 * server saves or costs against the usual one. Needs root (slabinfo, raising
 * RLIMIT_NOFILE and net.core.somaxconn for 10,000 connections).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CACHES	512

struct cache {
	char		name[64];
	long long	bytes;		/* num_objs * objsize */
};

struct snap {
	long long	slab, sunreclaim, kstack, pagetables;	/* kB */
	long long	tcp_mem_pages, qd_sockets, qd_pinned, qd_queued;
	long long	rss_kb;		/* the server's VmRSS */
	int		ncaches;
	struct cache	caches[MAX_CACHES];
};

static int conns = 2000, size = 16, threads = 1;
static const char *qdecho = "qdecho";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long key_in(const char *path, const char *fmt)
{
	char line[512];
	long long v = -1, x;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &x) == 1) {
			v = x;
			break;
		}
	fclose(f);
	return v;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0)
			fprintf(stderr, "conn-scale: %s: %s\n", path, strerror(errno));
		close(fd);
	}
}

static void take(struct snap *s, pid_t server)
{
	char line[512], path[64];
	FILE *f;

	/* Reclaimable slab (dentries of exec'd files...) is noise here. */
	sync();
	write_file("/proc/sys/vm/drop_caches", "2");
	memset(s, 0, sizeof(*s));
	s->slab = key_in("/proc/meminfo", "Slab: %lld");
	s->sunreclaim = key_in("/proc/meminfo", "SUnreclaim: %lld");
	s->kstack = key_in("/proc/meminfo", "KernelStack: %lld");
	s->pagetables = key_in("/proc/meminfo", "PageTables: %lld");
	s->tcp_mem_pages = key_in("/proc/net/sockstat",
				  "TCP: inuse %*d orphan %*d tw %*d alloc %*d mem %lld");
	s->qd_sockets = key_in("/proc/qd", "sockets %lld");
	s->qd_pinned = key_in("/proc/qd", "pinned_pages %lld");
	s->qd_queued = key_in("/proc/qd", "queued %lld");
	snprintf(path, sizeof(path), "/proc/%d/status", (int)server);
	s->rss_kb = key_in(path, "VmRSS: %lld");
	f = fopen("/proc/slabinfo", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && s->ncaches < MAX_CACHES) {
		struct cache *c = &s->caches[s->ncaches];
		long long active, num, objsize;

		if (sscanf(line, "%63s %lld %lld %lld", c->name, &active, &num,
			   &objsize) == 4) {
			c->bytes = num * objsize;
			s->ncaches++;
		}
	}
	fclose(f);
}

static void report(const char *kind, const struct snap *a, const struct snap *b)
{
	double n = conns;
	int i, j;

	printf("%s: per connection (%d connections; both ends in this kernel):\n",
	       kind, conns);
	printf("  Slab %+.0f B (unreclaimable %+.0f B), KernelStack %+.0f B, PageTables %+.0f B\n",
	       (b->slab - a->slab) * 1024 / n,
	       (b->sunreclaim - a->sunreclaim) * 1024 / n,
	       (b->kstack - a->kstack) * 1024 / n,
	       (b->pagetables - a->pagetables) * 1024 / n);
	printf("  TCP socket buffers %+.0f B (sockstat mem), server VmRSS %+.0f B\n",
	       (b->tcp_mem_pages - a->tcp_mem_pages) * 4096 / n,
	       (b->rss_kb - a->rss_kb) * 1024 / n);
	if (a->qd_sockets >= 0)
		printf("  /proc/qd: sockets %+lld, queued %+lld, pinned %+.0f B per connection\n",
		       b->qd_sockets - a->qd_sockets, b->qd_queued - a->qd_queued,
		       (b->qd_pinned - a->qd_pinned) * 4096 / n);
	printf("  slab caches that grew by 8 B or more per connection:");
	for (i = 0; i < b->ncaches; i++) {
		long long before = 0;
		double d;

		for (j = 0; j < a->ncaches; j++)
			if (!strcmp(a->caches[j].name, b->caches[i].name))
				before = a->caches[j].bytes;
		d = (b->caches[i].bytes - before) / n;
		if (d >= 8 || d <= -8)
			printf(" %s %+.0f", b->caches[i].name, d);
	}
	printf("\n");
	fflush(stdout);
}

/* ---- the servers ------------------------------------------------------ */

static int listener(int backlog, unsigned short *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		perror("conn-scale: listener");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* An epoll echo server: level-triggered, one read and write per event. */
static void epoll_server(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	char buf[65536];
	int ep = epoll_create1(EPOLL_CLOEXEC), n, i, fd;
	ssize_t r;

	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		_exit(1);
	for (;;) {
		n = epoll_wait(ep, evs, 64, -1);
		for (i = 0; i < n; i++) {
			fd = evs[i].data.fd;
			if (fd == lfd) {
				fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (fd < 0)
					continue;
				ev.data.fd = fd;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
					close(fd);
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			/* blocking writes: the client reads all it sent */
			if (r <= 0 || write(fd, buf, r) != r)
				close(fd);
		}
	}
}

/* Start a server of kind; its pid, its port in *port. */
static pid_t start_server(const char *kind, unsigned short *port)
{
	int pfd[2], lfd;
	char line[256], tbuf[16];
	pid_t pid;
	FILE *f;
	char *p;

	if (strcmp(kind, "qd")) {
		lfd = listener(conns + 64, port);
		pid = fork();
		if (pid == 0) {
			if (!strcmp(kind, "epoll"))
				epoll_server(lfd);
			for (;;)
				pause();
		}
		close(lfd);
		return pid;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		perror("conn-scale: pipe");
		exit(1);
	}
	snprintf(tbuf, sizeof(tbuf), "%d", threads);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		execlp(qdecho, qdecho, "-a", "127.0.0.1", "-p", "0", "-t", tbuf,
		       "-q", (char *)NULL);
		fprintf(stderr, "conn-scale: %s: %s\n", qdecho, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (!f || !fgets(line, sizeof(line), f) ||
	    !(p = strstr(line, "listening on ")) || !(p = strchr(p, ':'))) {
		fprintf(stderr, "conn-scale: qdecho did not start\n");
		exit(1);
	}
	*port = (unsigned short)atoi(p + 1);
	/* the rest of its output (the summary at exit) to ours */
	if (fork() == 0) {
		while (fgets(line, sizeof(line), f))
			fputs(line, stdout);
		_exit(0);
	}
	fclose(f);
	return pid;
}

/* ---- the client ------------------------------------------------------- */

static int connect_all(int *fds, unsigned short port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	/*
	 * Generous: with thousands of echoes due at once a server may answer
	 * one connection late (qdecho's qd_wait_any() scans every token).
	 */
	struct timeval tv = { 60, 0 };
	int i;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < conns; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 ||
		    setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
		    connect(fds[i], (struct sockaddr *)&a, sizeof(a))) {
			fprintf(stderr, "conn-scale: connection %d: %s\n", i,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Send size bytes on each, then read each one's echo back and compare. */
static int echo_all(const int *fds)
{
	char out[4096], in[4096];
	int i, j;

	for (i = 0; i < conns; i++) {
		for (j = 0; j < size; j++)
			out[j] = (char)(i + j * 3);
		if (write(fds[i], out, size) != size) {
			fprintf(stderr, "conn-scale: write %d: %s\n", i, strerror(errno));
			return -1;
		}
	}
	for (i = 0; i < conns; i++) {
		ssize_t got = 0, r;

		while (got < size) {
			r = read(fds[i], in + got, size - got);
			if (r <= 0) {
				fprintf(stderr, "conn-scale: echo %d: %s\n", i,
					r ? strerror(errno) : "closed");
				return -1;
			}
			got += r;
		}
		for (j = 0; j < size; j++)
			if (in[j] != (char)(i + j * 3)) {
				fprintf(stderr, "conn-scale: echo %d: byte %d differs\n", i, j);
				return -1;
			}
	}
	return 0;
}

static int run(const char *kind, int *fds)
{
	struct snap *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	unsigned short port;
	double t0, t1, t2;
	int status, i, ret = 0;
	pid_t pid;

	if (!a || !b) {
		perror("conn-scale");
		exit(1);
	}
	for (i = 0; i < conns; i++)
		fds[i] = -1;
	pid = start_server(kind, &port);
	usleep(200 * 1000);
	take(a, pid);
	t0 = now();
	if (connect_all(fds, port))
		ret = -1;
	t1 = now();
	if (!ret && strcmp(kind, "bare") && echo_all(fds))
		ret = -1;
	t2 = now();
	if (!ret) {
		/* the server's last pushes and pops settle */
		usleep(500 * 1000);
		take(b, pid);
		printf("%s: %d connections in %.2f s, echoed in %.2f s\n", kind,
		       conns, t1 - t0, t2 - t1);
		report(kind, a, b);
	}
	for (i = 0; i < conns; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid) {
		perror("conn-scale: waitpid");
		ret = -1;
	} else if (!strcmp(kind, "qd") &&
		   (!WIFEXITED(status) || WEXITSTATUS(status))) {
		fprintf(stderr, "conn-scale: qdecho did not exit 0 at SIGTERM (status 0x%x)\n",
			status);
		ret = -1;
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	free(a);
	free(b);
	return ret;
}

#define PORT_RANGE	"/proc/sys/net/ipv4/ip_local_port_range"

/* The port range as it was, put back at exit (the tests that follow bind fixed ports). */
static char saved_range[64];

static void restore_range(void)
{
	if (saved_range[0])
		write_file(PORT_RANGE, saved_range);
}

static void raise_limits(void)
{
	struct rlimit rl = { conns + 256, conns + 256 };
	char buf[32];
	long cur;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 256) {
		rl.rlim_cur = conns + 256;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			fprintf(stderr, "conn-scale: RLIMIT_NOFILE %d: %s\n",
				conns + 256, strerror(errno));
	}
	cur = key_in("/proc/sys/net/core/somaxconn", "%lld");
	if (cur >= 0 && cur < conns + 64) {
		snprintf(buf, sizeof(buf), "%d", conns + 64);
		write_file("/proc/sys/net/core/somaxconn", buf);
		write_file("/proc/sys/net/ipv4/tcp_max_syn_backlog", buf);
	}
	/* enough client ports on one destination, only if there are not */
	{
		FILE *f = fopen(PORT_RANGE, "r");
		int lo = 0, hi = 0;

		if (f) {
			if (fscanf(f, "%d %d", &lo, &hi) != 2)
				lo = hi = 0;
			fclose(f);
		}
		if (hi - lo + 1 < conns + 1000) {
			snprintf(saved_range, sizeof(saved_range), "%d %d", lo, hi);
			if (lo && hi)
				atexit(restore_range);
			else
				saved_range[0] = 0;
			write_file(PORT_RANGE, "10000 65001");
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: conn-scale [-n CONNS] [-s SIZE] [-t THREADS] [-q QDECHO] [KIND...]\n"
		"  KIND: qd, epoll, bare (default: all three, in that order)\n"
		"  -n connections (default 2000), -s bytes echoed on each (default 16,\n"
		"  at most 4096), -t qdecho's threads (default 1), -q qdecho's path\n");
}

int main(int argc, char **argv)
{
	static const char *const all[] = { "qd", "epoll", "bare" };
	int c, i, *fds, failed = 0;

	while ((c = getopt(argc, argv, "n:s:t:q:h")) != -1) {
		switch (c) {
		case 'n':
			conns = atoi(optarg);
			break;
		case 's':
			size = atoi(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'q':
			qdecho = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (conns < 1 || conns > 50000 || size < 1 || size > 4096 || threads < 1) {
		usage(stderr);
		return 2;
	}
	for (i = optind; i < argc; i++)
		if (strcmp(argv[i], "qd") && strcmp(argv[i], "epoll") &&
		    strcmp(argv[i], "bare")) {
			usage(stderr);
			return 2;
		}
	raise_limits();
	signal(SIGPIPE, SIG_IGN);
	fds = malloc(conns * sizeof(*fds));
	if (!fds) {
		perror("conn-scale");
		return 1;
	}
	if (optind == argc) {
		for (i = 0; i < 3; i++)
			failed |= run(all[i], fds) != 0;
	} else {
		for (i = optind; i < argc; i++)
			failed |= run(argv[i], fds) != 0;
	}
	free(fds);
	return failed;
}
