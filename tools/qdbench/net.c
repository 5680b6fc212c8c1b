// SPDX-License-Identifier: GPL-2.0
/*
 * qdbench net: a TCP echo over loopback with 1..N concurrent connections,
 * served in turn by qd socket qds, epoll, io_uring and a thread per
 * connection, each in a process of its own, all driven by the same load
 * generator (this process). See Documentation/tools.md for the method.
 *
 * The client: one thread, epoll over N connections, each a closed loop
 * (send one S-byte message, wait until all S bytes came back, send the
 * next), every request's latency taken with clock_gettime. It warms up,
 * tells the server's control thread to take its counters ('B'), measures
 * for the configured time, and asks for the counters again ('E').
 *
 * The server process: its control thread is made first, then the main
 * thread opens a perf counter on raw_syscalls:sys_enter that every thread
 * it makes inherits (the control thread's own calls are not counted), and
 * serves. The control thread reads that counter, getrusage (the process's
 * minus its own), the bytes the server's calls moved (net_cnt), libqd's
 * own system call count and /proc/qd's socket byte counters.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qdbench.h"
#include "net.h"

/* in table order: the base (epoll) first, then io_uring, the other base */
static const struct net_srv *const servers[] = {
	&net_epoll, &net_uring, &net_threads, &net_qd,
};
#define NSRV		4
#define MAX_LIST	16
#define MAX_RES		(MAX_LIST * MAX_LIST * NSRV)
#define MAX_ROUNDS	9

static struct {
	int		conns[MAX_LIST];
	int		nconns;
	size_t		sizes[MAX_LIST];
	int		nsizes;
	bool		use[NSRV];
	double		budget, warm;
	int		cpu_srv, cpu_cl;
	int		cpus;		/* 0: none, 1: same, 2: split, 3: given */
	bool		json;
	const char	*json_path;
	unsigned int	timeout;
	int		spin;		/* --idle-spin: 1 on, 0 off, -1 by --cpus */
	int		rounds;		/* measurements per server and cell */
} opt = {
	.conns = { 1, 16, 256 },
	.nconns = 3,
	.sizes = { 64, 1024, 16384, 65536 },
	.nsizes = 4,
	.use = { true, true, true, true },
	.budget = 1.0,
	.warm = 0.25,
	.cpu_srv = -1,
	.cpu_cl = -1,
	.cpus = 1,
	.timeout = 60,
	.spin = -1,
	.rounds = 1,
};

/* The server's counters at one phase boundary. */
struct snap {
	uint64_t	sys;		/* raw_syscalls:sys_enter, all threads */
	uint64_t	libsys;		/* libqd's qd_stats().syscalls */
	uint64_t	csw;		/* voluntary + involuntary */
	uint64_t	cpu_ns;		/* user + system */
	uint64_t	rx, tx;		/* net_cnt */
	uint64_t	kin, kout;	/* /proc/qd sock_bytes_in/out */
};

struct hello {
	int	port;		/* or -errno */
	int	sys_ok;		/* the syscall counter opened */
};

struct net_res {
	const struct net_srv *m;
	int		conns;
	size_t		size;
	bool		ok;
	uint64_t	n;		/* requests the client completed */
	double		secs, rps;
	double		p50, p99, p999;	/* us */
	double		srv_req;	/* requests the server echoed (rx / S) */
	double		sys, libsys, csw, cpu_us, copied;	/* per request */
	double		fair;		/* least requests of a connection / mean */
	bool		sys_ok;
};

static struct net_res results[MAX_RES];
static int nresults;
static bool usable[NSRV];
static char notes[NSRV][512];
static FILE *out;
static volatile pid_t srv_pid;
static char current[128];

/* ---- the server process ---- */

static int cmd_fd = -1, rep_fd = -1, srv_sysfd = -1;
static const struct net_srv *srv_m;

static void proc_qd(uint64_t *in, uint64_t *outb)
{
	FILE *f = fopen("/proc/qd", "re");
	unsigned long long v;
	char line[256];

	*in = *outb = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "sock_bytes_in %llu", &v) == 1)
			*in = v;
		else if (sscanf(line, "sock_bytes_out %llu", &v) == 1)
			*outb = v;
	}
	fclose(f);
}

static uint64_t tv_ns(const struct timeval *t)
{
	return (uint64_t)t->tv_sec * 1000000000ull + t->tv_usec * 1000ull;
}

static void take_snap(struct snap *s)
{
	struct rusage all, me;

	memset(s, 0, sizeof(*s));
	s->sys = srv_sysfd >= 0 && read(srv_sysfd, &s->sys, sizeof(s->sys)) == sizeof(s->sys) ?
		 s->sys : 0;
	getrusage(RUSAGE_SELF, &all);
	getrusage(RUSAGE_THREAD, &me);
	s->csw = all.ru_nvcsw + all.ru_nivcsw - me.ru_nvcsw - me.ru_nivcsw;
	s->cpu_ns = tv_ns(&all.ru_utime) + tv_ns(&all.ru_stime) -
		    tv_ns(&me.ru_utime) - tv_ns(&me.ru_stime);
	s->rx = atomic_load_explicit(&net_cnt.rx, memory_order_relaxed);
	s->tx = atomic_load_explicit(&net_cnt.tx, memory_order_relaxed);
	if (srv_m->lib_syscalls)
		s->libsys = srv_m->lib_syscalls();
	if (srv_m->qd_counters)
		proc_qd(&s->kin, &s->kout);
}

static void *ctl_main(void *arg)
{
	struct snap s[2];
	char c;

	(void)arg;
	while (read(cmd_fd, &c, 1) == 1) {
		if (c == 'B') {
			take_snap(&s[0]);
			if (write(rep_fd, "b", 1) != 1)
				break;
		} else if (c == 'E') {
			take_snap(&s[1]);
			if (write(rep_fd, s, sizeof(s)) != sizeof(s))
				break;
		}
	}
	_exit(0);
}

static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("cannot pin to CPU %d", cpu);
}

static __attribute__((noreturn)) void server_main(const struct net_srv *m)
{
	struct hello h = { 0 };
	pthread_t t;
	int ret;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGALRM, SIG_DFL);
	alarm(0);
	pin_self(opt.cpu_srv);
	srv_m = m;
	h.port = m->listen();
	if (pthread_create(&t, NULL, ctl_main, NULL))
		_exit(1);
	/* after the control thread: the counter is the serving threads' */
	srv_sysfd = sysc_open_inherit();
	h.sys_ok = srv_sysfd >= 0;
	if (write(rep_fd, &h, sizeof(h)) != sizeof(h) || h.port < 0)
		_exit(1);
	ret = m->serve();
	fprintf(stderr, "qdbench net: %s server: %s\n", m->name, strerror(-ret));
	_exit(1);
}

/* ---- the client ---- */

struct cl_conn {
	int		fd;
	bool		out;		/* waiting for EPOLLOUT */
	uint32_t	sent, got;
	uint64_t	t0, seq;
	uint64_t	done;		/* requests completed while measuring */
	char		*sbuf;
};

struct cl {
	struct cl_conn	*c;
	int		n, ep;
	size_t		size;
	char		*rbuf;
	uint64_t	done;
	bool		rec;
	uint64_t	*lat, nlat, cap;
};

static void cl_watch(struct cl *cl, struct cl_conn *c, bool outw)
{
	struct epoll_event ev = {
		.events = EPOLLIN | (outw ? EPOLLOUT : 0),
		.data.u32 = c - cl->c,
	};

	if (epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &ev))
		die("epoll_ctl: %s", strerror(errno));
	c->out = outw;
}

static void cl_send(struct cl *cl, struct cl_conn *c)
{
	ssize_t w;

	while (c->sent < cl->size) {
		w = write(c->fd, c->sbuf + c->sent, cl->size - c->sent);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				die("client write: %s", strerror(errno));
			if (!c->out)
				cl_watch(cl, c, true);
			return;
		}
		c->sent += w;
	}
	if (c->out)
		cl_watch(cl, c, false);
}

static void cl_start(struct cl *cl, struct cl_conn *c)
{
	uint64_t v = ++c->seq, nv = ~v;

	memcpy(c->sbuf, &v, sizeof(v));
	memcpy(c->sbuf + cl->size - sizeof(nv), &nv, sizeof(nv));
	c->sent = c->got = 0;
	c->t0 = now_ns();
	cl_send(cl, c);
}

static void cl_recv(struct cl *cl, struct cl_conn *c)
{
	ssize_t r = read(c->fd, cl->rbuf, cl->size - c->got);
	uint64_t v, t;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0)
		die("%s: the server closed connection %d (%s)", current,
		    (int)(c - cl->c), r ? strerror(errno) : "EOF");
	if (!c->got && r >= 8) {
		memcpy(&v, cl->rbuf, sizeof(v));
		if (v != c->seq)
			die("%s: echo out of order on connection %d", current,
			    (int)(c - cl->c));
	}
	c->got += r;
	if (c->got < cl->size)
		return;
	if (r >= 8) {
		memcpy(&v, cl->rbuf + r - 8, sizeof(v));
		if (v != ~c->seq)
			die("%s: echo corrupted on connection %d", current,
			    (int)(c - cl->c));
	}
	t = now_ns();
	if (cl->rec) {
		cl->done++;
		c->done++;
		if (cl->nlat < cl->cap)
			cl->lat[cl->nlat++] = t - c->t0;
	}
	cl_start(cl, c);
}

static void cl_drive(struct cl *cl, uint64_t until)
{
	struct epoll_event evs[512];
	uint64_t now;
	int i, n, ms;

	while ((now = now_ns()) < until) {
		ms = (int)((until - now) / 1000000) + 1;
		n = epoll_wait(cl->ep, evs, 512, ms);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			struct cl_conn *c = &cl->c[evs[i].data.u32];

			if ((evs[i].events & EPOLLOUT) && c->out)
				cl_send(cl, c);
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				cl_recv(cl, c);
		}
	}
}

static int cl_connect(int port, struct cl_conn *c)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int one = 1;

	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 ||
	    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    connect(c->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    fcntl(c->fd, F_SETFL, O_NONBLOCK))
		return -errno;
	return 0;
}

static void read_all(int fd, void *buf, size_t len, const char *what)
{
	if (read_full(fd, buf, len))
		die("%s: the server process died (%s)", current, what);
}

static void watchdog(int sig)
{
	static const char msg[] = "qdbench net: timed out in ";

	(void)sig;
	if (srv_pid > 0)
		kill(srv_pid, SIGKILL);
	if (write(2, msg, sizeof(msg) - 1) < 0 ||
	    write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

static void measure(struct net_res *res, const struct net_srv *m, int conns,
		    size_t size, uint64_t *lat, uint64_t cap)
{
	int cmd[2], rep[2], i, st;
	struct snap s[2];
	struct hello h;
	struct cl cl = { .n = conns, .size = size, .lat = lat, .cap = cap };
	uint64_t t0, t1;
	char sz[32], c;
	pid_t pid;
	double k;

	memset(res, 0, sizeof(*res));
	res->m = m;
	res->conns = conns;
	res->size = size;
	snprintf(current, sizeof(current), "%s, %d connections, %s B", m->name,
		 conns, size_str(size, sz, sizeof(sz)));
	alarm(opt.timeout);
	if (pipe2(cmd, O_CLOEXEC) || pipe2(rep, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		close(cmd[1]);
		close(rep[0]);
		cmd_fd = cmd[0];
		rep_fd = rep[1];
		server_main(m);
	}
	srv_pid = pid;
	close(cmd[0]);
	close(rep[1]);
	read_all(rep[0], &h, sizeof(h), "listen");
	if (h.port < 0)
		die("%s: listen: %s", current, strerror(-h.port));
	res->sys_ok = h.sys_ok;

	cl.c = calloc(conns, sizeof(*cl.c));
	cl.rbuf = malloc(size);
	cl.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl.c || !cl.rbuf || cl.ep < 0)
		die("client setup: %s", strerror(errno));
	for (i = 0; i < conns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		int ret = cl_connect(h.port, &cl.c[i]);

		if (ret)
			die("%s: connect: %s", current, strerror(-ret));
		cl.c[i].sbuf = malloc(size);
		if (!cl.c[i].sbuf)
			die("no memory");
		memset(cl.c[i].sbuf, 0x5a, size);
		if (epoll_ctl(cl.ep, EPOLL_CTL_ADD, cl.c[i].fd, &ev))
			die("epoll_ctl: %s", strerror(errno));
	}
	for (i = 0; i < conns; i++)
		cl_start(&cl, &cl.c[i]);
	cl_drive(&cl, now_ns() + (uint64_t)(opt.warm * 1e9));

	/* the server takes its counters; then the measured phase */
	if (write(cmd[1], "B", 1) != 1)
		die("%s: the server process died", current);
	read_all(rep[0], &c, 1, "begin");
	cl.rec = true;
	t0 = now_ns();
	cl_drive(&cl, t0 + (uint64_t)(opt.budget * 1e9));
	t1 = now_ns();
	cl.rec = false;
	if (write(cmd[1], "E", 1) != 1)
		die("%s: the server process died", current);
	read_all(rep[0], s, sizeof(s), "end");

	res->fair = -1;
	for (i = 0; i < conns; i++) {
		if (cl.done && (res->fair < 0 || cl.c[i].done * (double)conns / cl.done < res->fair))
			res->fair = cl.c[i].done * (double)conns / cl.done;
		close(cl.c[i].fd);
		free(cl.c[i].sbuf);
	}
	close(cl.ep);
	free(cl.c);
	free(cl.rbuf);
	/* EOF on its command pipe: the server exits (tools like callgrind then
	 * write their results); one that does not within 2 s is killed */
	close(cmd[1]);
	for (i = 0; i < 200 && waitpid(pid, &st, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 200) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	close(rep[0]);
	srv_pid = 0;
	alarm(0);

	res->n = cl.done;
	res->secs = (t1 - t0) / 1e9;
	res->rps = res->n / res->secs;
	qsort(lat, cl.nlat, sizeof(*lat), cmp_u64);
	res->p50 = pct_us(lat, cl.nlat, 50);
	res->p99 = pct_us(lat, cl.nlat, 99);
	res->p999 = pct_us(lat, cl.nlat, 99.9);
	res->srv_req = (double)(s[1].rx - s[0].rx) / size;
	res->ok = res->n > 0 && res->srv_req > 0;
	if (!res->ok)
		return;
	k = 1.0 / res->srv_req;
	res->sys = (s[1].sys - s[0].sys) * k;
	res->libsys = (s[1].libsys - s[0].libsys) * k;
	res->csw = (s[1].csw - s[0].csw) * k;
	res->cpu_us = (s[1].cpu_ns - s[0].cpu_ns) * k / 1000.0;
	if (m->qd_counters)
		res->copied = (s[1].kin - s[0].kin + s[1].kout - s[0].kout) * k;
	else
		res->copied = (s[1].rx - s[0].rx + s[1].tx - s[0].tx) * k;
}

/*
 * --idle-spin: a SCHED_IDLE process busy on each of the two CPUs, so that a
 * vCPU never halts. Under QEMU TCG a wake-up sent to a halted vCPU often
 * waits for its next timer tick (milliseconds); a busy one takes it at
 * once, as real hardware would. The spinner runs only when nothing else
 * wants the CPU, and none of the server's counters include it.
 */
static pid_t spinners[2];

static void spin_start(void)
{
	struct sched_param sp = { 0 };
	int cpus[2] = { opt.cpu_srv, opt.cpu_cl }, i;

	for (i = 0; i < 2; i++) {
		if (cpus[i] < 0 || (i && cpus[1] == cpus[0]))
			continue;
		spinners[i] = fork();
		if (spinners[i] < 0)
			die("fork: %s", strerror(errno));
		if (!spinners[i]) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			pin_self(cpus[i]);
			sched_setscheduler(0, SCHED_IDLE, &sp);
			for (;;)
				__asm__ volatile("" ::: "memory");
		}
	}
}

static void spin_stop(void)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (spinners[i] > 0) {
			kill(spinners[i], SIGKILL);
			waitpid(spinners[i], NULL, 0);
		}
	}
}

/* The round with the median req/s of server i (failed rounds last). */
static const struct net_res *median(struct net_res (*rounds)[NSRV], int i)
{
	const struct net_res *by[MAX_ROUNDS], *t;
	int r, j;

	for (r = 0; r < opt.rounds; r++)
		by[r] = &rounds[r][i];
	for (r = 1; r < opt.rounds; r++)
		for (j = r; j > 0 && (!by[j - 1]->ok ||
				      (by[j]->ok && by[j]->rps < by[j - 1]->rps)); j--) {
			t = by[j];
			by[j] = by[j - 1];
			by[j - 1] = t;
		}
	for (r = opt.rounds; r > 0 && !by[r - 1]->ok; r--)
		;
	return by[r ? (r - 1) / 2 : 0];
}

/* ---- output ---- */

static const struct net_res *base_of(const struct net_res *r, const char *name)
{
	int i;

	for (i = 0; i < nresults; i++)
		if (results[i].conns == r->conns && results[i].size == r->size &&
		    !strcmp(results[i].m->name, name) && results[i].ok)
			return &results[i];
	return NULL;
}

static void ratio(char *buf, size_t len, double a, double b)
{
	if (b > 0 && a > 0)
		snprintf(buf, len, "%.2fx", a / b);
	else
		snprintf(buf, len, "-");
}

static void print_head(void)
{
	fprintf(out, "\n%5s %6s  %-9s %9s %7s %7s %9s %9s %9s %-17s %7s %7s %8s %7s %8s %10s\n",
		"conns", "size", "server", "req/s", "x epoll", "x uring", "p50 us",
		"p99 us", "p99.9 us", "lat x epoll", "p99 xur", "sys/req",
		"qdsys/req", "csw/req", "cpu us/r", "copied/req");
}

static void print_row(const struct net_res *r)
{
	const struct net_res *ep = base_of(r, "epoll"), *ur = base_of(r, "uring");
	char sz[32], xe[16], xu[16], le[48], l1[16], l2[16], l3[16], p99u[16];
	char sys[16], lib[16];

	size_str(r->size, sz, sizeof(sz));
	if (!r->ok) {
		fprintf(out, "%5d %6s  %-9s failed\n", r->conns, sz, r->m->label);
		return;
	}
	ratio(xe, sizeof(xe), r->rps, ep ? ep->rps : 0);
	ratio(xu, sizeof(xu), r->rps, ur ? ur->rps : 0);
	ratio(l1, sizeof(l1), r->p50, ep ? ep->p50 : 0);
	ratio(l2, sizeof(l2), r->p99, ep ? ep->p99 : 0);
	ratio(l3, sizeof(l3), r->p999, ep ? ep->p999 : 0);
	snprintf(le, sizeof(le), "%s/%s/%s", l1, l2, l3);
	ratio(p99u, sizeof(p99u), r->p99, ur ? ur->p99 : 0);
	if (r->sys_ok)
		snprintf(sys, sizeof(sys), "%.3f", r->sys);
	else
		snprintf(sys, sizeof(sys), "-");
	if (r->m->lib_syscalls)
		snprintf(lib, sizeof(lib), "%.3f", r->libsys);
	else
		snprintf(lib, sizeof(lib), "-");
	fprintf(out, "%5d %6s  %-9s %9.0f %7s %7s %9.1f %9.1f %9.1f %-17s %7s %7s %8s %7.3f %8.1f %10.0f\n",
		r->conns, sz, r->m->label, r->rps, xe, xu, r->p50, r->p99,
		r->p999, le, p99u, sys, lib, r->csw, r->cpu_us, r->copied);
	fflush(out);
}

static void print_header(void)
{
	struct utsname u;
	int i;

	uname(&u);
	fprintf(out, "qdbench net: TCP echo over loopback, %s %s, %ld CPUs; server on CPU %d, client on CPU %d\n",
		u.sysname, u.release, sysconf(_SC_NPROCESSORS_ONLN), opt.cpu_srv, opt.cpu_cl);
	fprintf(out, "run      %.0f ms measured after %.0f ms of warm-up per server and cell; %d round%s, servers\n"
		     "         interleaved%s; SCHED_IDLE spinners on both CPUs: %s\n",
		opt.budget * 1e3, opt.warm * 1e3, opt.rounds, opt.rounds > 1 ? "s" : "",
		opt.rounds > 1 ? ", the median round (by req/s) shown" : "",
		opt.spin > 0 ? "on" : "off");
	fprintf(out, "request  the client sends one S-byte message and waits until all S bytes came back (closed\n"
		     "         loop per connection; one client process, epoll over the N connections)\n"
		     "servers  epoll: one thread, level-triggered, nonblocking read then write at once\n"
		     "         threads: a thread per connection, blocking read/write\n"
		     "         qd: socket qds through libqd, one wait over every pending accept/pop/push\n");
	for (i = 0; i < NSRV; i++)
		if (opt.use[i] && notes[i][0])
			fprintf(out, "         %s: %s\n", servers[i]->label, notes[i]);
	fprintf(out, "req/s    requests the client completed per second; x epoll, x uring: ratio to them\n"
		     "p50..    request latency at the client (us); lat x epoll: p50/p99/p99.9 ratio to epoll;\n"
		     "         p99 xur: p99 ratio to io_uring\n"

		     "sys/req  the SERVER process's system calls per request, counted by the kernel (perf counter\n"
		     "         on raw_syscalls:sys_enter inherited by all its threads); qdsys/req: libqd's own count\n"
		     "csw/req  the server's context switches per request (getrusage, all its threads)\n"
		     "cpu us/r the server's CPU time (user + system) per request: the work it was charged for\n"
		     "copied/req payload bytes the kernel copied for the server per request, counted: read/write\n"
		     "         and io_uring: the bytes its calls / CQEs moved, both ways; qd: /proc/qd\n"
		     "         sock_bytes_in + sock_bytes_out\n"
		     "Per-request server figures divide by the requests the server echoed (its bytes in / S).\n"
		     "Under emulation (QEMU TCG) absolute times are distorted: read the ratios and the counts.\n");
}

static void print_targets(void)
{
	double worst_sys = -1, worst_ep = -1, worst_ur = -1, worst_p99 = -1;
	const char *why_p99 = "";
	int i;

	for (i = 0; i < nresults; i++) {
		const struct net_res *r = &results[i], *ep, *ur;

		if (!r->ok || r->conns != 256 || strcmp(r->m->name, "qd"))
			continue;
		ep = base_of(r, "epoll");
		ur = base_of(r, "uring");
		if (r->sys_ok && r->sys > worst_sys)
			worst_sys = r->sys;
		if (ep && (worst_ep < 0 || r->rps / ep->rps < worst_ep))
			worst_ep = r->rps / ep->rps;
		if (ur && (worst_ur < 0 || r->rps / ur->rps < worst_ur))
			worst_ur = r->rps / ur->rps;
		if (ep && r->p99 / ep->p99 > worst_p99) {
			worst_p99 = r->p99 / ep->p99;
			why_p99 = "epoll";
		}
		if (ur && r->p99 / ur->p99 > worst_p99) {
			worst_p99 = r->p99 / ur->p99;
			why_p99 = "io_uring";
		}
	}
	if (worst_sys < 0 && worst_ep < 0)
		return;
	fprintf(out, "\ntargets at 256 connections (reported, not asserted):\n");
	if (worst_sys >= 0)
		fprintf(out, "  qd system calls per request <= 0.05: %s (highest %.3f)\n",
			worst_sys <= 0.05 ? "MET" : "NOT MET", worst_sys);
	if (worst_ep >= 0)
		fprintf(out, "  qd req/s >= 1.3x epoll: %s (lowest %.2fx)\n",
			worst_ep >= 1.3 ? "MET" : "NOT MET", worst_ep);
	if (worst_ur >= 0)
		fprintf(out, "  qd req/s >= 1.1x io_uring: %s (lowest %.2fx)\n",
			worst_ur >= 1.1 ? "MET" : "NOT MET", worst_ur);
	if (worst_p99 >= 0)
		fprintf(out, "  qd p99 no worse than epoll's and io_uring's: %s (worst %.2fx, vs %s)\n",
			worst_p99 <= 1.0 ? "MET" : "NOT MET", worst_p99, why_p99);
}

static void json_ratio(FILE *f, const char *key, double a, double b)
{
	if (a > 0 && b > 0)
		fprintf(f, ", \"%s\": %.4f", key, a / b);
}

static void print_json(FILE *f)
{
	int i, j;

	fprintf(f, "{\n  \"bench\": \"net\",\n  \"config\": {\"time_ms\": %.0f, \"warmup_ms\": %.0f, \"rounds\": %d, \"idle_spin\": %s, \"cpu_server\": %d, \"cpu_client\": %d, \"conns\": [",
		opt.budget * 1e3, opt.warm * 1e3, opt.rounds, opt.spin > 0 ? "true" : "false",
		opt.cpu_srv, opt.cpu_cl);
	for (j = 0; j < opt.nconns; j++)
		fprintf(f, "%s%d", j ? ", " : "", opt.conns[j]);
	fprintf(f, "], \"sizes\": [");
	for (j = 0; j < opt.nsizes; j++)
		fprintf(f, "%s%zu", j ? ", " : "", opt.sizes[j]);
	fprintf(f, "]},\n  \"servers\": [\n");
	for (i = 0, j = 0; i < NSRV; i++) {
		if (!opt.use[i])
			continue;
		fprintf(f, "%s    {\"server\": \"%s\", \"ok\": %s, \"note\": ", j++ ? ",\n" : "",
			servers[i]->name, usable[i] ? "true" : "false");
		json_str(f, notes[i]);
		fputc('}', f);
	}
	fprintf(f, "\n  ],\n  \"results\": [\n");
	for (i = 0; i < nresults; i++) {
		const struct net_res *r = &results[i];
		const struct net_res *ep = base_of(r, "epoll"), *ur = base_of(r, "uring");

		fprintf(f, "    {\"conns\": %d, \"size\": %zu, \"server\": \"%s\", \"ok\": %s, \"requests\": %llu, \"secs\": %.6f, \"req_per_sec\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"server_requests\": %.1f, \"ctxsw_per_req\": %.4f, \"cpu_us_per_req\": %.3f, \"copied_per_req\": %.1f, \"fairness\": %.4f",
			r->conns, r->size, r->m->name, r->ok ? "true" : "false",
			(unsigned long long)r->n, r->secs, r->rps, r->p50, r->p99,
			r->p999, r->srv_req, r->csw, r->cpu_us, r->copied, r->fair);
		if (r->sys_ok)
			fprintf(f, ", \"syscalls_per_req\": %.4f", r->sys);
		if (r->m->lib_syscalls)
			fprintf(f, ", \"lib_syscalls_per_req\": %.4f", r->libsys);
		if (ep) {
			json_ratio(f, "vs_epoll", r->rps, ep->rps);
			json_ratio(f, "p50_vs_epoll", r->p50, ep->p50);
			json_ratio(f, "p99_vs_epoll", r->p99, ep->p99);
			json_ratio(f, "p999_vs_epoll", r->p999, ep->p999);
		}
		if (ur) {
			json_ratio(f, "vs_uring", r->rps, ur->rps);
			json_ratio(f, "p99_vs_uring", r->p99, ur->p99);
		}
		fprintf(f, "}%s\n", i + 1 < nresults ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qdbench net [options]\n"
		"  A TCP echo over loopback: N connections, each a closed loop of S-byte requests,\n"
		"  served by qd socket qds, epoll, io_uring and a thread per connection, side by side.\n"
		"  --conns LIST      concurrent connections (default 1,16,256)\n"
		"  --sizes LIST      message sizes, 16 B .. 64 KiB (default 64,1K,16K,64K)\n"
		"  --mech LIST       of epoll,uring,threads,qd (default all)\n"
		"  --time-ms MS      measured time per configuration (default 1000)\n"
		"  --warmup-ms MS    warm-up per configuration (default 250)\n"
		"  --rounds R        measure each server R times per cell, the servers interleaved,\n"
		"                    and show the round with the median req/s (default 1)\n"
		"  --qd-pop M        qd's receive: multi (qd_pop_multi(), a multishot pop per connection,\n"
		"                    default) or single (qd_pop() posted again after each chunk)\n"
		"  --qd-wait W       qd's wait: next (qd_wait_next(), results in completion order, no token\n"
		"                    array, default), many (qd_wait_any_many(), every ready result per walk\n"
		"                    of the token array) or any (qd_wait_any(), one per walk)\n"
		"  --uring-send M    io_uring's send: copy (IORING_OP_SEND, default) or zc\n"
		"                    (IORING_OP_SEND_ZC from registered buffers)\n"
		"  --cpus P          same: server and client on the first CPU (default); split: server\n"
		"                    on the first, client on the second; S,C: given CPUs; none: the\n"
		"                    scheduler's (see Documentation/tools.md for why same)\n"
		"  --json[=FILE]     JSON results to FILE, or to stdout (tables then go to stderr)\n"
		"  --idle-spin on|off a SCHED_IDLE busy loop on the server's and the client's CPU so that\n"
		"                    no vCPU halts (default on with split CPUs: under QEMU TCG a wake-up\n"
		"                    of a halted vCPU waits for its timer tick)\n"
		"  --timeout S       give up if one configuration takes longer (default 60)\n");
}

static void parse_list(const char *arg, bool sizes)
{
	char *s = strdup(arg), *save, *tok;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == MAX_LIST)
			die("at most %d values in '%s'", MAX_LIST, arg);
		if (sizes) {
			size_t v = parse_size(tok);

			if (v < 16 || v > NET_BUF)
				die("bad size '%s' (16 B .. 64 KiB)", tok);
			opt.sizes[n++] = v;
		} else {
			long v = strtol(tok, NULL, 10);

			if (v < 1 || v > 4000)
				die("bad connection count '%s' (1 .. 4000)", tok);
			opt.conns[n++] = v;
		}
	}
	free(s);
	if (!n)
		die("empty list '%s'", arg);
	if (sizes)
		opt.nsizes = n;
	else
		opt.nconns = n;
}

static void parse_mechs(const char *arg)
{
	char *s = strdup(arg), *save, *tok;
	int i;

	memset(opt.use, 0, sizeof(opt.use));
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NSRV; i++)
			if (!strcmp(tok, servers[i]->name) || !strcmp(tok, servers[i]->label))
				break;
		if (i == NSRV)
			die("unknown server '%s' (epoll, uring, threads, qd)", tok);
		opt.use[i] = true;
	}
	free(s);
}

static void pick_cpus(void)
{
	cpu_set_t set;
	int i, first = -1, second = -1;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (first < 0)
			first = i;
		else if (second < 0)
			second = i;
	}
	opt.cpu_srv = first;
	opt.cpu_cl = opt.cpus == 2 && second >= 0 ? second : first;
}

int net_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "conns", required_argument, NULL, 'C' },
		{ "sizes", required_argument, NULL, 's' },
		{ "mech", required_argument, NULL, 'M' },
		{ "time-ms", required_argument, NULL, 't' },
		{ "warmup-ms", required_argument, NULL, 'W' },
		{ "uring-send", required_argument, NULL, 'U' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "json", optional_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "idle-spin", required_argument, NULL, 'S' },
		{ "rounds", required_argument, NULL, 'R' },
		{ "qd-pop", required_argument, NULL, 'Q' },
		{ "qd-wait", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool failed = false;
	uint64_t *lat, cap = 4u << 20;
	struct rlimit rl;
	static struct net_res rounds[MAX_ROUNDS][NSRV];
	int c, i, r, ci, si, first;
	char why[400];

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			parse_list(optarg, false);
			break;
		case 's':
			parse_list(optarg, true);
			break;
		case 'M':
			parse_mechs(optarg);
			break;
		case 't':
			opt.budget = strtod(optarg, NULL) / 1e3;
			if (opt.budget <= 0)
				die("bad --time-ms '%s'", optarg);
			break;
		case 'W':
			opt.warm = strtod(optarg, NULL) / 1e3;
			if (opt.warm < 0)
				die("bad --warmup-ms '%s'", optarg);
			break;
		case 'U':
			if (net_uring_send_opt(optarg))
				die("bad --uring-send '%s' (copy, zc)", optarg);
			break;
		case 'c':
			if (!strcmp(optarg, "split"))
				opt.cpus = 2;
			else if (!strcmp(optarg, "same"))
				opt.cpus = 1;
			else if (!strcmp(optarg, "none"))
				opt.cpus = 0;
			else if (sscanf(optarg, "%d,%d", &opt.cpu_srv, &opt.cpu_cl) == 2 &&
				 opt.cpu_srv >= 0 && opt.cpu_cl >= 0)
				opt.cpus = 3;
			else
				die("bad --cpus '%s' (split, same, none or S,C)", optarg);
			break;
		case 'j':
			opt.json = true;
			opt.json_path = optarg;
			break;
		case 'o':
			opt.timeout = strtoul(optarg, NULL, 10);
			break;
		case 'A':
			if (net_qd_wait_opt(optarg))
				die("bad --qd-wait '%s' (next, many, any)", optarg);
			break;
		case 'Q':
			if (net_qd_pop_opt(optarg))
				die("bad --qd-pop '%s' (multi, single)", optarg);
			break;
		case 'R':
			opt.rounds = atoi(optarg);
			if (opt.rounds < 1 || opt.rounds > MAX_ROUNDS)
				die("bad --rounds '%s' (1..%d)", optarg, MAX_ROUNDS);
			break;
		case 'S':
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				die("bad --idle-spin '%s' (on, off)", optarg);
			opt.spin = !strcmp(optarg, "on");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	out = opt.json && !opt.json_path ? stderr : stdout;
	/* 256+ connections, and io_uring's fixed-file table, need fds */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (opt.cpus == 1 || opt.cpus == 2)
		pick_cpus();
	else if (!opt.cpus)
		opt.cpu_srv = opt.cpu_cl = -1;
	/* by default only when server and client are on CPUs of their own */
	if (opt.spin < 0)
		opt.spin = opt.cpus == 2 || (opt.cpus == 3 && opt.cpu_srv != opt.cpu_cl);
	signal(SIGALRM, watchdog);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < NSRV; i++) {
		if (!opt.use[i])
			continue;
		why[0] = 0;
		if (servers[i]->probe(why, sizeof(why))) {
			snprintf(notes[i], sizeof(notes[i]), "unavailable: %s", why);
			failed = true;
			continue;
		}
		usable[i] = true;
		if (servers[i]->note)
			snprintf(notes[i], sizeof(notes[i]), "%s", servers[i]->note());
	}
	print_header();
	for (i = 0; i < NSRV; i++)
		if (opt.use[i] && !usable[i])
			fprintf(out, "%s: %s (the others run)\n", servers[i]->label, notes[i]);
	lat = malloc(cap * sizeof(*lat));
	if (!lat)
		die("no memory for latencies");
	pin_self(opt.cpu_cl);

	if (opt.spin)
		spin_start();
	print_head();
	for (ci = 0; ci < opt.nconns; ci++) {
		for (si = 0; si < opt.nsizes; si++) {
			first = nresults;
			/* rounds interleaved: a slow spell of the host hits all */
			for (r = 0; r < opt.rounds; r++)
				for (i = 0; i < NSRV; i++)
					if (usable[i])
						measure(&rounds[r][i], servers[i], opt.conns[ci],
							opt.sizes[si], lat, cap);
			for (i = 0; i < NSRV; i++)
				if (usable[i])
					results[nresults++] = *median(rounds, i);
			for (i = first; i < nresults; i++) {
				print_row(&results[i]);
				if (!results[i].ok)
					failed = true;
			}
			if (nresults > first)
				fputc('\n', out);
		}
	}
	spin_stop();
	print_targets();
	free(lat);
	if (opt.json) {
		FILE *f = stdout;

		if (opt.json_path) {
			f = fopen(opt.json_path, "we");
			if (!f)
				die("%s: %s", opt.json_path, strerror(errno));
		}
		print_json(f);
		if (f != stdout)
			fclose(f);
	}
	return failed ? 1 : 0;
}
