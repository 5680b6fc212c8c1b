// SPDX-License-Identifier: GPL-2.0
/*
 * echo: apps/echo/qdecho served to ordinary clients — nc (netcat-openbsd),
 * socat and python3's socket module — over TCP (IPv4 and IPv6, sizes from
 * 1 B to 2 MiB, hundreds of connections at once, a client that sends
 * everything before it reads) and UDP (datagrams up to 65,507 bytes, with
 * the reply from the address they were sent to); `qdecho client` against
 * plain python3 and socat echo servers (and failing on a server that
 * corrupts a byte); a clean exit at SIGTERM with connections open; and
 * conn-scale: thousands of idle connections at once (QD_ECHO_CONNS, default
 * 2000), echoed and closed, the kernel memory per connection printed.
 *
 * Each test gets its own qdecho (-p 0 -u -t 2), whose exit status at
 * SIGTERM is checked when the test ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "qd_net.h"
#include "qd_proc.h"
#include "qd_child.h"
#include "harness.h"

static char top[PATH_MAX / 2];	/* the tree: this program's directory/.. */

static bool have(const char *prog)
{
	static const char *const dirs[] = { "/usr/bin", "/bin", "/usr/sbin" };
	char path[256];
	unsigned int i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], prog);
		if (!access(path, X_OK))
			return true;
	}
	return false;
}

/*
 * Run a command (words separated by single spaces; no shell, a fork and
 * an exec cost a lot under TCG) with stdin from in, stdout to out and
 * stderr to err when given, for at most 60 s. Its exit status, or -1
 * (killed, or could not run).
 */
static int run(const char *in, const char *out, const char *err,
	       const char *fmt, ...)
{
	char cmd[4096], *argv[32], *save;
	int argc = 0, st, i;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	for (argv[argc] = strtok_r(cmd, " ", &save); argv[argc] && argc < 31;
	     argv[++argc] = strtok_r(NULL, " ", &save))
		;
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int fd;

		if (in && ((fd = open(in, O_RDONLY)) < 0 || dup2(fd, 0) < 0))
			_exit(126);
		if (out && ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
			    dup2(fd, 1) < 0))
			_exit(126);
		if (err && ((fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
			    dup2(fd, 2) < 0))
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	for (i = 0; i < 600; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		usleep(100 * 1000);
	}
	fprintf(stderr, "# %s: still running after 60 s, killed\n", argv[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* dir/name into buf. */
static const char *at(char *buf, const char *dir, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
	return buf;
}

/* dir/in: n random bytes. */
static int random_file(const char *dir, size_t n)
{
	char path[PATH_MAX], buf[65536];
	int r = open("/dev/urandom", O_RDONLY | O_CLOEXEC), ret = 0;
	int w = open(at(path, dir, "in"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	while (r >= 0 && w >= 0 && n && !ret) {
		size_t c = n < sizeof(buf) ? n : sizeof(buf);

		if (read(r, buf, c) != (ssize_t)c || write(w, buf, c) != (ssize_t)c)
			ret = -1;
		n -= c;
	}
	if (r < 0 || w < 0)
		ret = -1;
	if (r >= 0)
		close(r);
	if (w >= 0)
		close(w);
	return ret;
}

/* Whether dir/a and dir/b hold the same bytes. */
static bool same(const char *dir, const char *a, const char *b)
{
	char pa[PATH_MAX], pb[PATH_MAX], x[65536], y[65536];
	FILE *fa = fopen(at(pa, dir, a), "re"), *fb = fopen(at(pb, dir, b), "re");
	bool eq = fa && fb;
	size_t na, nb;

	while (eq) {
		na = fread(x, 1, sizeof(x), fa);
		nb = fread(y, 1, sizeof(y), fb);
		eq = na == nb && !memcmp(x, y, na);
		if (!na)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return eq;
}

/* Write text to dir/name. */
static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f = fopen(at(path, dir, name), "we");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* A port nobody listens on now (bound, read back, released). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/*
 * Start argv with its stdout on a pipe and read lines until one contains
 * marker; the number after the last ':' of that line (a port), or -1.
 * The child's pid in *pid; its later output is left in the pipe (*fd).
 */
static int start_until(char *const argv[], const char *marker, pid_t *pid,
		       int *fd)
{
	char buf[1024];
	size_t len = 0;
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return -1;
	*pid = fork();
	if (*pid < 0)
		return -1;
	if (!*pid) {
		dup2(p[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	*fd = p[0];
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		char *nl, *colon;
		ssize_t r;

		if (poll(&pfd, 1, 20000) != 1)
			return -1;
		r = read(p[0], buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			return -1;
		len += r;
		buf[len] = 0;
		nl = strchr(buf, '\n');
		if (!nl)
			continue;
		*nl = 0;
		if (strstr(buf, marker) && (colon = strrchr(buf, ':')))
			return atoi(colon + 1);
		len -= nl + 1 - buf;
		memmove(buf, nl + 1, len + 1);
	}
}

/* /proc/qd's sockets once it is want (released from a work item), or after ms. */
static long long wait_sockets(long long want, int ms)
{
	long long n = -1;
	int i;

	for (i = 0; i <= ms / 20; i++) {
		n = qd_kv(QD_PROC_PATH, "sockets");
		if (n == want)
			break;
		usleep(20 * 1000);
	}
	return n;
}

static void stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		qd_wait_child(pid);
	}
}

/* A plain echo server in python3 (TCP, or UDP with "udp"): its port. */
static const char py_server[] =
	"import socket, sys, threading\n"
	"udp = sys.argv[1] == 'udp'\n"
	"corrupt = len(sys.argv) > 2\n"
	"s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)\n"
	"s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
	"s.bind(('::', 0))\n"
	"print('python echo server port:%d' % s.getsockname()[1], flush=True)\n"
	"def serve(c):\n"
	"    n = 0\n"
	"    while True:\n"
	"        d = c.recv(65536)\n"
	"        if not d:\n"
	"            break\n"
	"        if corrupt and n <= 5000 < n + len(d):\n"
	"            i = 5000 - n\n"
	"            d = d[:i] + bytes([d[i] ^ 1]) + d[i + 1:]\n"
	"        n += len(d)\n"
	"        c.sendall(d)\n"
	"    c.close()\n"
	"if udp:\n"
	"    while True:\n"
	"        d, a = s.recvfrom(65536)\n"
	"        s.sendto(d, a)\n"
	"s.listen(64)\n"
	"while True:\n"
	"    c, a = s.accept()\n"
	"    threading.Thread(target=serve, args=(c,), daemon=True).start()\n";

/*
 * Plain TCP clients in python3 (non-blocking sockets and selectors; asyncio
 * takes seconds to import under TCG): CONNS connections at once,
 * alternating ::1 and 127.0.0.1, each sending a payload of one of SIZES
 * (then FIN) while reading, until EOF; every echo compared. With "slow",
 * each sends everything before it reads anything.
 */
static const char py_tcp_clients[] =
	"import os, selectors, socket, sys, time\n"
	"port, conns = int(sys.argv[1]), int(sys.argv[2])\n"
	"sizes = [int(x) for x in sys.argv[3].split(',')]\n"
	"slow = len(sys.argv) > 4\n"
	"sel = selectors.DefaultSelector()\n"
	"cs = []\n"
	"for i in range(conns):\n"
	"    fam, host = (socket.AF_INET6, '::1') if i % 2 else (socket.AF_INET, '127.0.0.1')\n"
	"    s = socket.socket(fam, socket.SOCK_STREAM)\n"
	"    s.connect((host, port))\n"
	"    s.setblocking(False)\n"
	"    c = {'i': i, 's': s, 'data': os.urandom(sizes[i % len(sizes)]), 'off': 0, 'got': [], 'n': 0}\n"
	"    cs.append(c)\n"
	"    sel.register(s, selectors.EVENT_WRITE | (0 if slow else selectors.EVENT_READ), c)\n"
	"left, bad, end = conns, 0, time.time() + 50\n"
	"while left and time.time() < end:\n"
	"    for key, ev in sel.select(5):\n"
	"        c, s = key.data, key.fileobj\n"
	"        if ev & selectors.EVENT_WRITE:\n"
	"            c['off'] += s.send(c['data'][c['off']:c['off'] + 262144])\n"
	"            if c['off'] == len(c['data']):\n"
	"                s.shutdown(socket.SHUT_WR)\n"
	"                sel.modify(s, selectors.EVENT_READ, c)\n"
	"        if ev & selectors.EVENT_READ:\n"
	"            d = s.recv(1 << 20)\n"
	"            c['got'].append(d)\n"
	"            c['n'] += len(d)\n"
	"            if not d:\n"
	"                sel.unregister(s)\n"
	"                s.close()\n"
	"                left -= 1\n"
	"                if b''.join(c['got']) != c['data']:\n"
	"                    print('connection %d: %d bytes sent, %d back, different' % (c['i'], len(c['data']), c['n']))\n"
	"                    bad += 1\n"
	"print('%d of %d connections echoed exactly, %d unfinished' % (conns - left - bad, conns, left))\n"
	"sys.exit(1 if bad or left else 0)\n";

/*
 * Datagrams of SIZES from a plain UDP socket of each family: each echo
 * must equal what was sent and come from the address it was sent to.
 */
static const char py_udp_client[] =
	"import os, socket, sys\n"
	"port, sizes = int(sys.argv[1]), [int(x) for x in sys.argv[2].split(',')]\n"
	"bad = 0\n"
	"for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):\n"
	"    s = socket.socket(fam, socket.SOCK_DGRAM)\n"
	"    s.settimeout(10)\n"
	"    for n in sizes:\n"
	"        d = os.urandom(n)\n"
	"        s.sendto(d, (host, port))\n"
	"        r, a = s.recvfrom(70000)\n"
	"        if r != d or a[0] != host or a[1] != port:\n"
	"            print('%s %d bytes: %d back from %s' % (host, n, len(r), a))\n"
	"            bad += 1\n"
	"print('%d datagrams echoed exactly' % (2 * len(sizes) - bad))\n"
	"sys.exit(1 if bad else 0)\n";

/*
 * N connections that each send a megabyte and reset (SO_LINGER 0) without
 * reading, while the server is still echoing to them.
 */
static const char py_resets[] =
	"import socket, struct, sys\n"
	"port, n = int(sys.argv[1]), int(sys.argv[2])\n"
	"for i in range(n):\n"
	"    s = socket.create_connection(('127.0.0.1', port))\n"
	"    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
	"    s.settimeout(5)\n"
	"    try:\n"
	"        s.sendall(bytes(1 << 20))\n"
	"    except OSError:\n"
	"        pass\n"
	"    s.close()\n"
	"print('%d connections reset' % n)\n";

/* Hold N connections to the port open until stdin closes. */
static const char py_hold[] =
	"import socket, sys\n"
	"cs = [socket.create_connection(('127.0.0.1', int(sys.argv[1]))) for i in range(int(sys.argv[2]))]\n"
	"for c in cs:\n"
	"    c.sendall(b'x')\n"
	"for c in cs:\n"
	"    assert c.recv(1) == b'x'\n"
	"print('holding:0', flush=True)\n"
	"sys.stdin.read()\n";

FIXTURE(echo) {
	char dir[64];
	char qdecho[PATH_MAX];
	struct timespec t0;
	pid_t pid;		/* qdecho */
	int out;		/* its stdout */
	int port;
};

FIXTURE_SETUP(echo)
{
	char *argv[] = { self->qdecho, "-p", "0", "-u", "-t", "2", "-q", NULL };

	clock_gettime(CLOCK_MONOTONIC, &self->t0);
	qd_proc_wait_idle(0, 0, 3000, NULL);
	ASSERT_EQ(0, lo_up());
	snprintf(self->qdecho, sizeof(self->qdecho), "%s/apps/echo/qdecho", top);
	if (access(self->qdecho, X_OK))
		SKIP(return, "apps/echo/qdecho is not built (make apps)");
	strcpy(self->dir, "/tmp/qd-echo.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	write_file(self->dir, "server.py", py_server);
	write_file(self->dir, "tcp_clients.py", py_tcp_clients);
	write_file(self->dir, "udp_client.py", py_udp_client);
	write_file(self->dir, "hold.py", py_hold);
	write_file(self->dir, "resets.py", py_resets);
	self->port = start_until(argv, "listening on", &self->pid, &self->out);
	ASSERT_LT(0, self->port);
}

FIXTURE_TEARDOWN(echo)
{
	struct timespec t1;
	char line[512];
	FILE *f;
	int st;

	if (self->pid > 0) {
		/* qdecho's clean shutdown: exit 0 at SIGTERM, its summary */
		kill(self->pid, SIGTERM);
		st = qd_wait_child(self->pid);
		EXPECT_EQ(0, st) TH_LOG("qdecho exited with %d", st);
		f = fdopen(self->out, "r");
		while (f && fgets(line, sizeof(line), f))
			printf("# %s", line);
		if (f)
			fclose(f);
	}
	if (self->dir[0]) {
		DIR *d = opendir(self->dir);
		struct dirent *e;

		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		if (d)
			closedir(d);
		rmdir(self->dir);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# %s took %.1f s\n", _metadata->name,
	       t1.tv_sec - self->t0.tv_sec + (t1.tv_nsec - self->t0.tv_nsec) / 1e9);
}

TEST_F(echo, nc_over_tcp4_gets_every_size_back)
{
	static const size_t sizes[] = { 1, 65537, 2 << 20 };
	char in[PATH_MAX], out[PATH_MAX];
	unsigned int i;

	if (!have("nc"))
		SKIP(return, "nc (netcat-openbsd) not installed");
	at(in, self->dir, "in");
	at(out, self->dir, "out");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ASSERT_EQ(0, random_file(self->dir, sizes[i]));
		/* -N: FIN after stdin's end, then read until qdecho closes */
		EXPECT_EQ(0, run(in, out, NULL, "nc -N 127.0.0.1 %d", self->port));
		EXPECT_TRUE(same(self->dir, "in", "out")) TH_LOG("%zu bytes", sizes[i]);
	}
}

TEST_F(echo, socat_over_tcp6_gets_every_size_back)
{
	static const size_t sizes[] = { 70000, 1 << 20 };
	char in[PATH_MAX], out[PATH_MAX];
	unsigned int i;

	if (!have("socat"))
		SKIP(return, "socat not installed");
	at(in, self->dir, "in");
	at(out, self->dir, "out");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ASSERT_EQ(0, random_file(self->dir, sizes[i]));
		EXPECT_EQ(0, run(in, out, NULL, "socat -t 20 - TCP6:[::1]:%d", self->port));
		EXPECT_TRUE(same(self->dir, "in", "out")) TH_LOG("%zu bytes", sizes[i]);
	}
}

TEST_F(echo, socat_and_nc_over_udp_get_their_datagram_back)
{
	char in[PATH_MAX], out[PATH_MAX];

	if (!have("socat") || !have("nc"))
		SKIP(return, "socat or nc not installed");
	write_file(self->dir, "in", "hello over udp\n");
	at(in, self->dir, "in");
	at(out, self->dir, "out");
	/* UDP has no end: each waits a second for more after the echo */
	EXPECT_EQ(0, run(in, out, NULL, "socat -t 1 - UDP4:127.0.0.1:%d", self->port));
	EXPECT_TRUE(same(self->dir, "in", "out"));
	EXPECT_EQ(0, run(in, out, NULL, "socat -t 1 - UDP6:[::1]:%d", self->port));
	EXPECT_TRUE(same(self->dir, "in", "out"));
	EXPECT_EQ(0, run(in, out, NULL, "nc -u -w 1 127.0.0.1 %d", self->port));
	EXPECT_TRUE(same(self->dir, "in", "out"));
}

TEST_F(echo, python_udp_datagrams_up_to_65507_bytes_come_back_whole)
{
	EXPECT_EQ(0, run(NULL, NULL, NULL, "/usr/bin/python3 %s/udp_client.py %d 1,100,1472,1473,9000,32768,65507",
			 self->dir, self->port));
}

TEST_F(echo, python_200_concurrent_tcp_connections_v4_and_v6)
{
	EXPECT_EQ(0, run(NULL, NULL, NULL, "/usr/bin/python3 %s/tcp_clients.py %d 200 1,17,1000,4096,65536,100000",
			 self->dir, self->port));
}

/* Throttled, not lost: the echoes back up into TCP until the client reads. */
TEST_F(echo, python_clients_that_send_megabytes_before_reading)
{
	EXPECT_EQ(0, run(NULL, NULL, NULL, "/usr/bin/python3 %s/tcp_clients.py %d 4 3000000,8000000 slow",
			 self->dir, self->port));
}

/* Resets in the middle of echoes cost those connections, nothing else. */
TEST_F(echo, clients_that_reset_mid_stream_leave_the_server_serving)
{
	char port[16];

	snprintf(port, sizeof(port), "%d", self->port);
	EXPECT_EQ(0, run(NULL, NULL, NULL, "/usr/bin/python3 %s/resets.py %s 16",
			 self->dir, port));
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -c 8 -n 4 -s 100000 127.0.0.1 %s",
			 self->qdecho, port));
	/* every reset connection is closed and released: 2 listeners, 2 UDP */
	EXPECT_EQ(4, wait_sockets(4, 5000));
}

TEST_F(echo, qd_client_checks_its_own_server_tcp_and_udp)
{
	char port[16];

	snprintf(port, sizeof(port), "%d", self->port);
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -c 32 -n 20 -s 3000 127.0.0.1 %s", self->qdecho, port));
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -c 4 -n 3 -s 200000 ::1 %s", self->qdecho, port));
	/*
	 * Not more 64 KiB datagrams at once than the server's receive
	 * buffer (net.core.rmem_default, 208 KiB) holds: UDP drops the rest.
	 */
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -u -c 2 -n 10 -s 65507 ::1 %s", self->qdecho, port));
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -u -c 16 -n 10 -s 1000 127.0.0.1 %s", self->qdecho, port));
}

TEST_F(echo, qd_client_against_plain_python_servers)
{
	char *tcp[] = { "/usr/bin/python3", NULL, "tcp", NULL };
	char *udp[] = { "/usr/bin/python3", NULL, "udp", NULL };
	char script[PATH_MAX];
	int tport, uport, tfd, ufd;
	pid_t tpid, upid;

	snprintf(script, sizeof(script), "%s/server.py", self->dir);
	tcp[1] = udp[1] = script;
	tport = start_until(tcp, "port:", &tpid, &tfd);
	ASSERT_LT(0, tport);
	uport = start_until(udp, "port:", &upid, &ufd);
	if (uport <= 0)
		stop(tpid);
	ASSERT_LT(0, uport);
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -c 8 -n 5 -s 70000 127.0.0.1 %d", self->qdecho, tport));
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -c 2 -n 2 -s 1000000 ::1 %d", self->qdecho, tport));
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -u -c 4 -n 20 -s 1400 127.0.0.1 %d", self->qdecho, uport));
	stop(tpid);
	stop(upid);
	close(tfd);
	close(ufd);
}

TEST_F(echo, qd_client_against_socat_echo_servers)
{
	int port = free_port(), i, st = -1;
	pid_t pid;

	if (!have("socat"))
		SKIP(return, "socat not installed");
	ASSERT_LT(0, port);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char addr[64];

		snprintf(addr, sizeof(addr), "TCP6-LISTEN:%d,fork,reuseaddr,ipv6only=0", port);
		execlp("socat", "socat", addr, "PIPE", (char *)NULL);
		_exit(127);
	}
	/* until socat listens */
	for (i = 0; i < 100 && st; i++) {
		st = run(NULL, "/dev/null", "/dev/null",
			 "%s client -c 1 -n 1 -s 1 -w 2000 127.0.0.1 %d", self->qdecho, port);
		if (st)
			usleep(100 * 1000);
	}
	EXPECT_EQ(0, st);
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -c 8 -n 5 -s 100000 127.0.0.1 %d", self->qdecho, port));
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s client -c 8 -n 5 -s 1000 ::1 %d", self->qdecho, port));
	stop(pid);
}

/* The qd client's check can fail: one flipped byte is reported. */
TEST_F(echo, qd_client_fails_on_a_server_that_corrupts_a_byte)
{
	char *argv[] = { "/usr/bin/python3", NULL, "tcp", "corrupt", NULL };
	char script[PATH_MAX], err[PATH_MAX], msg[1024];
	FILE *f;
	int port, fd;
	pid_t pid;

	snprintf(script, sizeof(script), "%s/server.py", self->dir);
	argv[1] = script;
	port = start_until(argv, "port:", &pid, &fd);
	ASSERT_LT(0, port);
	EXPECT_EQ(1, run(NULL, NULL, at(err, self->dir, "err"),
			 "%s client -c 1 -n 1 -s 20000 127.0.0.1 %d", self->qdecho, port));
	f = fopen(err, "re");
	ASSERT_NE(NULL, f);
	msg[fread(msg, 1, sizeof(msg) - 1, f)] = 0;
	fclose(f);
	EXPECT_NE(NULL, strstr(msg, "message 0: byte 5000 is")) TH_LOG("stderr: %s", msg);
	stop(pid);
	close(fd);
}

/* SIGTERM with 100 connections open, each with a pop pending: exit 0, all released. */
TEST_F(echo, sigterm_with_open_connections_exits_0_and_releases_them)
{
	char *argv[] = { "/usr/bin/python3", NULL, NULL, "100", NULL };
	char script[PATH_MAX], port[16];
	int hport, fd, st;
	long long socks;
	pid_t hpid;

	snprintf(script, sizeof(script), "%s/hold.py", self->dir);
	snprintf(port, sizeof(port), "%d", self->port);
	argv[1] = script;
	argv[2] = port;
	hport = start_until(argv, "holding", &hpid, &fd);
	ASSERT_EQ(0, hport);
	socks = qd_kv(QD_PROC_PATH, "sockets");
	/* 2 listeners, 2 UDP sockets, the 100 connections */
	EXPECT_EQ(104, socks);
	kill(self->pid, SIGTERM);
	st = qd_wait_child(self->pid);
	self->pid = 0;
	EXPECT_EQ(0, st);
	EXPECT_EQ(0, qd_proc_wait_idle(0, 0, 5000, NULL));
	EXPECT_EQ(0, wait_sockets(0, 5000));
	kill(hpid, SIGKILL);
	qd_wait_child(hpid);
	close(fd);
}

/*
 * QD_ECHO_CONNS (default 2000) plain connections at once to qdecho, each
 * echoing 16 bytes, all idle and open while the kernel's memory is taken,
 * then closed; the same client against an epoll server and a listener that
 * never accepts, for comparison. The figures are diagnostics.
 */
TEST_F_TIMEOUT(echo, thousands_of_idle_connections_on_one_context, 600)
{
	const char *n = getenv("QD_ECHO_CONNS");
	char cmd[2 * PATH_MAX + 128], line[512];
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/apps/echo/conn-scale -q %s -n %s -t 1 qd epoll bare 2>&1",
		 top, self->qdecho, n && *n ? n : "2000");
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		printf("# %s", line);
	fflush(stdout);
	st = pclose(f);
	EXPECT_EQ(0, st) TH_LOG("conn-scale exited with 0x%x", st);
}

int main(int argc, char **argv)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return 1;
	exe[n] = 0;
	snprintf(top, sizeof(top), "%s/..", dirname(exe));
	signal(SIGPIPE, SIG_IGN);
	return test_harness_run(argc, argv);
}
