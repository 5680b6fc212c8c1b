// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend: where zero-copy send pays off. Streams socket pushes of each size
 * over TCP, once sent zero-copy and once by copy (the module parameter
 * zc_min_bytes set to 0, then to the maximum, and zc_local to 1 so that
 * loopback counts too; both restored at exit), and
 * prints the throughput and the CPU the whole machine spent per MiB sent
 * (from /proc/stat: the send path runs in the submitter, kworkers and
 * softirq, so the process's own rusage would miss most of it).
 *
 *   zcsend send [-d HOST:PORT] [-s SIZES] [-t SECS] [-q DEPTH]
 *   zcsend sink PORT [ADDR] read and discard (plain sockets; no qd needed)
 *
 * Without -d, send runs its own sink on loopback (whose receive path copies
 * anyway); tools/zcsend/measure also runs it over a virtio-net NIC to a
 * sink on the host. Root only (the parameter). See
 * Documentation/design.md, "Send".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <qd.h>

#define PARAM	"/sys/module/qd/parameters/zc_min_bytes"
#define LOCAL	"/sys/module/qd/parameters/zc_local"
#define MAXQ	64

static char saved_param[32], saved_local[8];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int param_write(const char *path, const char *v)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f)
		return -errno;
	ret = fputs(v, f) < 0 ? -EIO : 0;
	return fclose(f) ? -errno : ret;
}

static void param_restore(void)
{
	if (saved_param[0])
		param_write(PARAM, saved_param);
	if (saved_local[0])
		param_write(LOCAL, saved_local);
}

/* Busy and total jiffies of all CPUs. */
static void cpu_jiffies(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	int i;

	*busy = *total = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
		   &v[8], &v[9]) >= 8) {
		for (i = 0; i < 8; i++)
			*total += v[i];
		*busy = *total - v[3] - v[4];	/* minus idle and iowait */
	}
	fclose(f);
}

static long long proc_qd(const char *key)
{
	char line[128];
	size_t n = strlen(key);
	long long v = -1;
	FILE *f = fopen("/proc/qd", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ' ')
			v = atoll(line + n + 1);
	fclose(f);
	return v;
}

static void *sink_conn(void *arg)
{
	int fd = (int)(long)arg;
	static char buf[1 << 20];	/* contents do not matter: shared */

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	close(fd);
	return NULL;
}

/* Accept connections on lfd for ever, a thread each. */
static void *sink_run(void *arg)
{
	int lfd = (int)(long)arg, fd;
	pthread_t t;

	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (pthread_create(&t, NULL, sink_conn, (void *)(long)fd))
			close(fd);
		else
			pthread_detach(t);
	}
	return NULL;
}

static int sink_listen(struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)a, sizeof(*a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)a, &len)) {
		close(fd);
		return -1;
	}
	return fd;
}

struct point {
	double mbps, pushes, cpu_us_per_mib, busy_pct, copied_pct;
};

/* Stream pushes of size bytes to dst for secs with depth in flight. */
static int run_point(const struct sockaddr_in *dst, size_t size, double secs,
		     int depth, struct point *pt)
{
	unsigned long long b0, t0, b1, t1;
	long long c0, z0;
	struct qd_sga sga[MAXQ];
	qd_token_t qt[MAXQ];
	int ix[MAXQ];
	struct qd_result qr;
	double start, end;
	unsigned long long bytes = 0, n = 0;
	int q, i, idx, ret, live = depth;

	ret = qd_socket(&q, AF_INET, SOCK_STREAM, 0);
	if (!ret)
		ret = qd_connect(&qt[0], q, (const struct sockaddr *)dst, sizeof(*dst));
	if (!ret)
		ret = qd_wait(&qr, qt[0], NULL);
	if (!ret)
		ret = qr.ret;
	if (ret) {
		fprintf(stderr, "zcsend: connect: %s\n", strerror(-ret));
		return ret;
	}
	for (i = 0; i < depth; i++) {
		sga[i] = qd_sgaalloc(size);
		if (!sga[i].numsegs)
			return -ENOMEM;
		memset(sga[i].segs[0].buf, 'a' + i, size);
	}
	c0 = proc_qd("sock_zc_copied");
	z0 = proc_qd("sock_zc_pushes");
	cpu_jiffies(&b0, &t0);
	start = now();
	end = start + secs;
	for (i = 0; i < depth; i++) {
		ix[i] = i;
		if (qd_push(&qt[i], q, &sga[i]))
			return -EIO;
	}
	while (live) {
		ret = qd_wait_any(&qr, &idx, qt, live, NULL);
		if (ret)
			return ret;
		if (qr.ret < 0) {
			fprintf(stderr, "zcsend: push: %s\n", strerror((int)-qr.ret));
			return (int)qr.ret;
		}
		bytes += qr.ret;
		n++;
		if (now() < end) {
			if (qd_push(&qt[idx], q, &sga[ix[idx]]))
				return -EIO;
		} else {
			/* done: keep the live tokens dense */
			live--;
			qt[idx] = qt[live];
			ix[idx] = ix[live];
		}
	}
	end = now();
	cpu_jiffies(&b1, &t1);
	pt->mbps = bytes / (end - start) / (1 << 20);
	pt->pushes = n / (end - start);
	pt->busy_pct = t1 > t0 ? 100.0 * (b1 - b0) / (t1 - t0) : 0;
	/* busy jiffies are USER_HZ (100/s) */
	pt->cpu_us_per_mib = bytes ? (b1 - b0) * 1e4 / (bytes / 1048576.0) : 0;
	z0 = proc_qd("sock_zc_pushes") - z0;
	pt->copied_pct = z0 > 0 ? 100.0 * (proc_qd("sock_zc_copied") - c0) / z0 : 0;
	qd_close(q);
	for (i = 0; i < depth; i++)
		qd_sgafree(&sga[i]);
	return 0;
}

static int parse_dst(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || colon - s >= (long)sizeof(host))
		return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(atoi(colon + 1));
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int do_sink(int port, const char *addr)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int lfd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (addr && inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
		fprintf(stderr, "zcsend sink: bad address %s\n", addr);
		return 2;
	}
	lfd = sink_listen(&a);
	if (lfd < 0) {
		perror("zcsend sink");
		return 1;
	}
	printf("zcsend: sink on %s:%d\n", inet_ntoa(a.sin_addr), port);
	fflush(stdout);
	sink_run((void *)(long)lfd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *sizes = "1024,4096,8192,16384,32768,65536,262144,1048576";
	const char *modes[2] = { "copy", "zc" };
	struct sockaddr_in dst;
	struct point pt[2];
	char *list, *tok, *save;
	double secs = 2;
	int depth = 8, c, m;
	FILE *f;

	if (argc >= 3 && !strcmp(argv[1], "sink"))
		return do_sink(atoi(argv[2]), argc >= 4 ? argv[3] : NULL);
	if (argc < 2 || strcmp(argv[1], "send")) {
		fprintf(stderr, "usage: zcsend send [-d HOST:PORT] [-s SIZES] [-t SECS] [-q DEPTH]\n"
				"       zcsend sink PORT [ADDR]\n");
		return 2;
	}
	argv++;
	argc--;
	memset(&dst, 0, sizeof(dst));
	while ((c = getopt(argc, argv, "d:s:t:q:")) != -1) {
		switch (c) {
		case 'd':
			if (parse_dst(optarg, &dst)) {
				fprintf(stderr, "zcsend: bad -d %s\n", optarg);
				return 2;
			}
			break;
		case 's':
			sizes = optarg;
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'q':
			depth = atoi(optarg);
			if (depth < 1 || depth > MAXQ)
				depth = 8;
			break;
		default:
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (!dst.sin_family) {
		pthread_t t;
		int lfd;

		dst.sin_family = AF_INET;
		dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		lfd = sink_listen(&dst);
		if (lfd < 0 || pthread_create(&t, NULL, sink_run, (void *)(long)lfd)) {
			perror("zcsend: sink");
			return 1;
		}
	}
	f = fopen(PARAM, "re");
	if (!f || !fgets(saved_param, sizeof(saved_param), f)) {
		fprintf(stderr, "zcsend: %s: qd.ko with zero-copy send is not loaded\n", PARAM);
		return 1;
	}
	fclose(f);
	f = fopen(LOCAL, "re");
	if (!f || !fgets(saved_local, sizeof(saved_local), f)) {
		fprintf(stderr, "zcsend: %s: missing\n", LOCAL);
		return 1;
	}
	fclose(f);
	atexit(param_restore);
	/* loopback too: qd would otherwise copy to local peers */
	if (param_write(LOCAL, "1\n"))
		return 1;
	if (qd_init()) {
		fprintf(stderr, "zcsend: qd_init failed\n");
		return 1;
	}
	printf("zcsend: TCP to %s:%d, depth %d, %.1f s a point\n",
	       inet_ntoa(dst.sin_addr), ntohs(dst.sin_port), depth, secs);
	printf("%9s  %5s %9s %9s %7s %12s %8s\n", "size", "mode", "MiB/s",
	       "pushes/s", "busy%", "cpu-us/MiB", "copied%");
	list = strdup(sizes);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t size = strtoul(tok, NULL, 0);

		for (m = 0; m < 2; m++) {
			if (param_write(PARAM, m ? "0\n" : "4294967295\n") ||
			    run_point(&dst, size, secs, depth, &pt[m]))
				return 1;
			printf("%9zu  %5s %9.1f %9.0f %7.1f %12.0f %8.0f\n", size,
			       modes[m], pt[m].mbps, pt[m].pushes, pt[m].busy_pct,
			       pt[m].cpu_us_per_mib, pt[m].copied_pct);
			fflush(stdout);
		}
		printf("%9zu  zc/copy: throughput x%.2f, cpu per MiB x%.2f\n", size,
		       pt[1].mbps / pt[0].mbps, pt[1].cpu_us_per_mib / pt[0].cpu_us_per_mib);
	}
	free(list);
	return 0;
}
