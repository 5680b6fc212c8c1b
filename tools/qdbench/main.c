// SPDX-License-Identifier: GPL-2.0
/*
 * qdbench memq: qd memory queues vs pipes, eventfd + shared memory,
 * io_uring MSG_RING and a lock-free SPSC ring (the limit), two threads,
 * ping-pong, stream and batches, side by side in one run. See
 * Documentation/tools.md for the method.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qdbench.h"
#include "net.h"
#include "derived.h"

#define MAX_SIZES	32

/* in table order: the two bases (pipe, io_uring) before the others */
static const struct mech *const all_mechs[] = {
	&mech_pipe, &mech_efd, &mech_uring, &mech_spsc, &mech_qd, &mech_qd_sqpoll,
};
#define NMECHS	6
#define MAX_RESULTS	(MAX_SIZES * NMODES * NMECHS)

static struct {
	size_t		sizes[MAX_SIZES];
	int		nsizes;
	uint64_t	iters;
	double		budget, warm;
	bool		modes[NMODES];
	bool		use[NMECHS];
	unsigned int	window;		/* 0: by size */
	unsigned int	batch;
	enum touch	touch;
	int		cpu_a, cpu_b;
	int		cpus_auto;	/* 1: same CPU, 2: two CPUs */
	bool		json;
	const char	*json_path;
	unsigned int	timeout;
} opt = {
	.iters = 1000000,
	.budget = 0.3,
	.warm = 0.03,
	.modes = { true, true, true },
	/* qd-sqpoll only when asked for: its poller wants a CPU of its own */
	.use = { true, true, true, true, true, false },
	.batch = 32,
	.cpu_a = -1,
	.cpu_b = -1,
	.cpus_auto = 1,
	.timeout = 120,
};

static struct result results[MAX_RESULTS];
static int nresults;
static bool usable[NMECHS];
static char notes[NMECHS][768];
static FILE *out;		/* the human-readable tables */
static char current[128];	/* the configuration running, for the watchdog */

static void watchdog(int sig)
{
	static const char msg[] = "qdbench: timed out in ";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0 ||
	    write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qdbench memq [options]\n"
		"       qdbench net [options]   (TCP echo: qd, epoll, io_uring, threads; net --help)\n"
		"       qdbench derived [options]   (filters: in the kernel, in the application,\n"
		"                                   a libqd callback; derived --help)\n"
		"  Two threads exchange S-byte elements over qd memory queues, pipes,\n"
		"  eventfd+shm, io_uring MSG_RING and a lock-free SPSC ring, side by side.\n"
		"  --sizes LIST      element sizes, e.g. 64,1K,1M (default 64,256,1K,4K,16K,64K,256K,1M)\n"
		"  --iters N         measured ops per configuration at most (default 1000000)\n"
		"  --time-ms MS      measured time per configuration at most (default 300)\n"
		"  --warmup-ms MS    warm-up per configuration at most (default 30)\n"
		"  --mode LIST       of pingpong,stream,batch; both = pingpong,stream; all (default)\n"
		"  --mech LIST       of pipe,eventfd,uring,spsc,qd,qd-sqpoll (default the first\n"
		"                    five; qd-sqpoll: qd with libqd's kernel SQ poller, QD_SQPOLL,\n"
		"                    default idle 1000 ms, each run in a process of its own)\n"
		"  --window N        stream: elements in flight (default min(64, max(4, 16 MiB / S)))\n"
		"  --batch N         batch: elements per batch, then wait for all (default 32)\n"
		"  --uring-flags F   io_uring setup: auto (default: the first the kernel takes of)\n"
		"                    defer (SINGLE_ISSUER|DEFER_TASKRUN), single (SINGLE_ISSUER|\n"
		"                    COOP_TASKRUN), coop (COOP_TASKRUN), none\n"
		"  --touch T         ends: 8 bytes at each end (default); all: one byte per cache line\n"
		"  --cpus P          same: A and B pinned to one CPU (default); split: to two\n"
		"                    CPUs; A,B: to CPUs A and B; none: placed by the scheduler\n"
		"  --json[=FILE]     JSON results to FILE, or to stdout (tables then go to stderr)\n"
		"  --procs N         1: A and B are two threads (default); 2: two processes,\n"
		"                    B forked per configuration (pipe, eventfd, uring, spsc, qd\n"
		"                    with a memfd both register: see Documentation/tools.md)\n"
		"  --timeout S       give up if one configuration takes longer (default 120)\n");
}

static void parse_sizes(const char *arg)
{
	char *s = strdup(arg), *save, *tok;

	opt.nsizes = 0;
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t v = parse_size(tok);

		if (v < 16 || v > (1u << 30))
			die("bad size '%s' (16 B .. 1 GiB)", tok);
		if (opt.nsizes == MAX_SIZES)
			die("at most %d sizes", MAX_SIZES);
		opt.sizes[opt.nsizes++] = v;
	}
	free(s);
	if (!opt.nsizes)
		die("no sizes in '%s'", arg);
}

static void parse_mechs(const char *arg)
{
	char *s = strdup(arg), *save, *tok;
	int i;

	memset(opt.use, 0, sizeof(opt.use));
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NMECHS; i++)
			if (!strcmp(tok, all_mechs[i]->name) ||
			    !strcmp(tok, all_mechs[i]->label))
				break;
		if (i == NMECHS)
			die("unknown mechanism '%s' (pipe, eventfd, uring, spsc, qd, qd-sqpoll)", tok);
		opt.use[i] = true;
	}
	free(s);
}

static void parse_modes(const char *arg)
{
	char *s = strdup(arg), *save, *tok;

	memset(opt.modes, 0, sizeof(opt.modes));
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "pingpong") || !strcmp(tok, "ping-pong")) {
			opt.modes[MODE_PINGPONG] = true;
		} else if (!strcmp(tok, "stream")) {
			opt.modes[MODE_STREAM] = true;
		} else if (!strcmp(tok, "batch")) {
			opt.modes[MODE_BATCH] = true;
		} else if (!strcmp(tok, "both")) {
			opt.modes[MODE_PINGPONG] = opt.modes[MODE_STREAM] = true;
		} else if (!strcmp(tok, "all")) {
			opt.modes[MODE_PINGPONG] = opt.modes[MODE_STREAM] = true;
			opt.modes[MODE_BATCH] = true;
		} else {
			die("bad --mode '%s' (pingpong, stream, batch, both, all)", tok);
		}
	}
	free(s);
	if (!opt.modes[MODE_PINGPONG] && !opt.modes[MODE_STREAM] &&
	    !opt.modes[MODE_BATCH])
		die("no mode in '%s'", arg);
}

static unsigned int window_for(enum mode mode, size_t size)
{
	size_t w;

	if (mode == MODE_BATCH)
		return opt.batch;
	if (opt.window)
		return opt.window;
	w = (16u << 20) / size;
	if (w > 64)
		w = 64;
	if (w < 4)
		w = 4;
	return w;
}

static void measure_here(struct result *res, const struct mech *m, enum mode mode,
			 size_t size, uint64_t *lat, uint64_t lat_cap);

/*
 * qd-sqpoll: the run in a child process forked for it, with QD_SQPOLL set
 * before libqd's first call there (one libqd context per process, the
 * poller chosen when it is set up), A in the child's main thread and B in a
 * thread of its own, pinned as usual. The child's poller goes with it.
 */
static void measure_forked(struct result *res, const struct mech *m, enum mode mode,
			   size_t size, uint64_t *lat, uint64_t lat_cap)
{
	int fds[2], st;
	ssize_t got;
	pid_t pid;

	if (pipe(fds))
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		close(fds[0]);
		if (!getenv("QD_SQPOLL"))
			setenv("QD_SQPOLL", QD_SQPOLL_BENCH_IDLE, 1);
		worker_forked();
		worker_start(0);
		measure_here(res, m, mode, size, lat, lat_cap);
		worker_stop();
		if (write(fds[1], res, sizeof(*res)) != sizeof(*res))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	got = read(fds[0], res, sizeof(*res));
	close(fds[0]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) ||
	    got != sizeof(*res))
		die("%s %s %zu bytes: its process failed", m->name, mode_name(mode), size);
	/* the strings are the parent's too (same image) */
}

static void measure(struct result *res, const struct mech *m, enum mode mode,
		    size_t size, uint64_t *lat, uint64_t lat_cap)
{
	if (m == &mech_qd_sqpoll)
		measure_forked(res, m, mode, size, lat, lat_cap);
	else
		measure_here(res, m, mode, size, lat, lat_cap);
}

static void measure_here(struct result *res, const struct mech *m, enum mode mode,
			 size_t size, uint64_t *lat, uint64_t lat_cap)
{
	struct run r = {
		.m = m,
		.mode = mode,
		.size = size,
		.window = window_for(mode, size),
		.batch = mode == MODE_BATCH ? opt.batch : 1,
		.iters = opt.iters,
		.budget = opt.budget,
		.warm_budget = opt.warm,
		.touch = opt.touch,
		.lat_ns = lat,
		.lat_cap = lat_cap,
	};
	uint64_t nlat;
	double per_n, per_b;
	int err;

	memset(res, 0, sizeof(*res));
	res->mech = m->name;
	res->label = m->label;
	res->mode = mode;
	res->size = size;
	res->window = mode == MODE_PINGPONG ? 1 : r.window;
	res->copied_per_op = m->copied(size) * (mode == MODE_PINGPONG ? 2 : 1);
	res->procs = procs;
	snprintf(current, sizeof(current), "%s %s %zu bytes", m->name,
		 mode_name(mode), size);

	alarm(opt.timeout);
	err = m->setup(&r);
	if (err)
		die("%s: setup: %s", current, strerror(-err));
	run_one(&r);
	m->teardown(&r);
	alarm(0);

	res->ok = true;
	res->n = r.n;
	res->a_cpu = r.a_cpu;
	res->b_cpu = r.b_cpu;
	if (mode == MODE_PINGPONG) {
		res->secs = r.a_secs;
		res->ops = r.n / r.a_secs;
		nlat = r.n < lat_cap ? r.n : lat_cap;
		qsort(lat, nlat, sizeof(*lat), cmp_u64);
		res->p50_us = pct_us(lat, nlat, 50);
		res->p99_us = pct_us(lat, nlat, 99);
		res->p999_us = pct_us(lat, nlat, 99.9);
	} else if (mode == MODE_STREAM && r.b_n) {
		res->secs = r.b_secs;
		res->ops = r.b_n / r.b_secs;
	} else {
		/* batch: A's rate, which includes waiting for every batch */
		res->secs = r.a_secs;
		res->ops = r.n / r.a_secs;
	}
	res->mbps = mode != MODE_PINGPONG ? res->ops * size / 1e6 : 0;

	per_n = 1.0 / r.n;
	per_b = r.b_n ? 1.0 / r.b_n : per_n;
	/* two processes: process-wide counts are per side (run.c) */
	if (m->thread_syscalls || procs == 2)
		res->sys_per_op = r.a_sys * per_n + r.b_sys * per_b;
	else
		res->sys_per_op = (double)(r.proc_sys1 - r.proc_sys0) * per_n;
	res->csw_per_op = r.a_csw * per_n + r.b_csw * per_b;
	if (m->thread_cqes || (procs == 2 && m->process_cqes))
		res->cqe_per_op = r.a_cqe * per_n + r.b_cqe * per_b;
	else if (m->process_cqes)
		res->cqe_per_op = (double)(r.proc_cqe1 - r.proc_cqe0) * per_n;
	else
		res->cqe_per_op = -1;
	res->all_per_op = r.all_ok ? r.a_all * per_n + r.b_all * per_b : -1;
}

/*
 * Pin A and B to the first CPU we may run on (same) or to the first two
 * (split), so every mechanism runs with the same placement: left to the
 * scheduler, it changes from run to run and so do the results.
 */
static void pick_cpus(bool split)
{
	cpu_set_t set;
	int i;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (opt.cpu_a < 0) {
			opt.cpu_a = i;
			if (!split)
				break;
		} else {
			opt.cpu_b = i;
			break;
		}
	}
	if (opt.cpu_b < 0)
		opt.cpu_b = opt.cpu_a;
}

static void print_header(void)
{
	struct utsname u;
	char cs[64] = "?";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
	const char *who = procs == 2 ? "processes" : "threads";
	int mi;

	if (f) {
		if (fgets(cs, sizeof(cs), f))
			cs[strcspn(cs, "\n")] = 0;
		fclose(f);
	}
	uname(&u);
	fprintf(out, "qdbench memq: %s %s %s, %ld CPUs, clocksource %s\n",
		u.sysname, u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN), cs);
	if (procs == 2)
		fprintf(out, "TWO PROCESSES (--procs 2): A in qdbench, B in a child forked for each configuration\n");
	if (opt.cpu_a >= 0 && opt.cpu_a == opt.cpu_b)
		fprintf(out, "%s: A and B pinned to CPU %d (--cpus split: on two CPUs)\n", who, opt.cpu_a);
	else if (opt.cpu_a >= 0)
		fprintf(out, "%s: A pinned to CPU %d, B to CPU %d\n", who, opt.cpu_a, opt.cpu_b);
	else
		fprintf(out, "%s: placed by the scheduler (not pinned)\n", who);
	fprintf(out, "per configuration: warm-up <= %.0f ms, then <= %.0f ms or %llu ops; payload touch: %s\n",
		opt.warm * 1e3, opt.budget * 1e3, (unsigned long long)opt.iters,
		opt.touch == TOUCH_ALL ? "one byte per cache line + 8 B at each end" :
		"8 B at each end, written by the sender, checked by the receiver");
	fprintf(out, "mechanisms: pipe; eventfd+shm (memcpy into shared slots, eventfd signals);\n"
		     "         io_uring (IORING_OP_MSG_RING between two rings, one per thread, carrying the\n"
		     "         buffer pointer and length: zero copy); spsc-limit (lock-free SPSC descriptor rings\n"
		     "         in shared memory, futex wake only when the consumer said it sleeps: the limit);\n"
		     "         qd (memory queues through libqd)\n");
	if (procs == 2)
		fprintf(out, "two processes: pipe and eventfd+shm as with threads (fds and MAP_SHARED slots inherited);\n"
			     "         spsc-limit with its buffers in MAP_SHARED memory and shared futexes; io_uring with\n"
			     "         B's ring made by A disabled (IORING_SETUP_R_DISABLED) and enabled by B after the fork;\n"
			     "         qd with two shareable queues A exports and B imports (qd_queue_export/import), the\n"
			     "         buffers in one memfd mapped before the fork and qd_memregister()ed by both processes:\n"
			     "         shared mapped queues when the kernel has them (both processes push and pop in the\n"
			     "         mapped ring, each element a binding looked up once into the popper's region), else\n"
			     "         the kernel rewrites each popped element into the popper's region; no copy either way\n");
	for (mi = 0; mi < NMECHS; mi++)
		if (usable[mi] && notes[mi][0])
			fprintf(out, "%s: %s\n", all_mechs[mi]->label, notes[mi]);
	fprintf(out, "sys/op   system calls per op: pipe, eventfd, spsc, io_uring counted by qdbench at each\n"
		     "         read/write/futex/io_uring_enter (short ones too); qd from libqd's qd_stats()\n"
		     "         (every syscall libqd made, process-wide%s)\n", procs == 2 ?
		     ": A's process plus B's" : "");
	fprintf(out, "all/op   every system call of both threads per op, counted by the kernel (perf on\n"
		     "         raw_syscalls:sys_enter, clock_gettime excluded): qd's futex waits show here\n"
		     "csw/op   context switches per op: getrusage(RUSAGE_THREAD) of both threads\n"
		     "cqe/op   completions consumed per op, both threads: io_uring CQEs (the sender's are\n"
		     "         skipped, so one per hand-off: element to B, buffer back to A); qd CQEs reaped\n"
		     "         (qd_stats, push and pop completions); - where there are none\n"
		     "copied/op payload bytes copied per op BY CONSTRUCTION, not measured: pipe 2*S per transfer\n"
		     "         (user->kernel->user), eventfd+shm 1*S (memcpy into shm), io_uring, spsc and qd 0\n"
		     "         (the buffers travel: only pointers and lengths move; with --procs 2 qd's pops\n"
		     "         are checked to land in the popper's own mapping of the shared memfd)\n"
		     "vs pipe, vs uring: ops/s ratio to the pipe and to io_uring at the same size and mode\n"
		     "cpus     the CPUs A / B ran on at the end\n"
		     "Under emulation (QEMU TCG) absolute times are distorted: read the ratios and the counts.\n");
}

static void fmt_ratio(char *buf, size_t len, const struct result *r, const struct result *base)
{
	if (!base || !base->ok || !r->ok || base->ops <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2fx", r->ops / base->ops);
}

static void print_table_head(enum mode mode)
{
	if (procs == 2)
		fprintf(out, "\n[two processes: A in qdbench, B in a forked child (--procs 2)]");
	if (mode == MODE_PINGPONG) {
		fprintf(out, "\nping-pong: op = one round trip of an S-byte element, A -> B -> A\n");
		fprintf(out, "%7s  %-12s %10s %8s %8s %9s %9s %9s %7s %7s %7s %7s %10s %5s\n",
			"size", "mechanism", "rt/s", "vs pipe", "vs uring", "p50 us",
			"p99 us", "p99.9 us", "sys/op", "all/op", "csw/op", "cqe/op",
			"copied/op", "cpus");
	} else if (mode == MODE_STREAM) {
		fprintf(out, "\nstream: op = one S-byte element A -> B, at most `window` in flight, buffers returned to A\n");
		fprintf(out, "%7s  %-12s %6s %10s %9s %8s %8s %7s %7s %7s %7s %10s %5s\n",
			"size", "mechanism", "window", "elem/s", "MB/s", "vs pipe",
			"vs uring", "sys/op", "all/op", "csw/op", "cqe/op",
			"copied/op", "cpus");
	} else {
		fprintf(out, "\nbatch: op = one S-byte element A -> B; A sends `batch` of them, then waits until all are back\n");
		fprintf(out, "%7s  %-12s %6s %10s %9s %8s %8s %7s %7s %7s %7s %10s %5s\n",
			"size", "mechanism", "batch", "elem/s", "MB/s", "vs pipe",
			"vs uring", "sys/op", "all/op", "csw/op", "cqe/op",
			"copied/op", "cpus");
	}
}

static void fmt_count(char *buf, size_t len, double v)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2f", v);
}

static void print_row(const struct result *r, const struct result *pipe,
		      const struct result *uring)
{
	char sz[32], vp[32], vu[32], cpus[32], all[32], cqe[32];

	size_str(r->size, sz, sizeof(sz));
	snprintf(cpus, sizeof(cpus), "%d/%d", r->a_cpu, r->b_cpu);
	fmt_count(all, sizeof(all), r->all_per_op);
	fmt_count(cqe, sizeof(cqe), r->cqe_per_op);
	fmt_ratio(vp, sizeof(vp), r, pipe);
	fmt_ratio(vu, sizeof(vu), r, uring);
	if (r->mode == MODE_PINGPONG)
		fprintf(out, "%7s  %-12s %10.0f %8s %8s %9.1f %9.1f %9.1f %7.2f %7s %7.2f %7s %10llu %5s\n",
			sz, r->label, r->ops, vp, vu, r->p50_us, r->p99_us,
			r->p999_us, r->sys_per_op, all, r->csw_per_op, cqe,
			(unsigned long long)r->copied_per_op, cpus);
	else
		fprintf(out, "%7s  %-12s %6u %10.0f %9.1f %8s %8s %7.2f %7s %7.2f %7s %10llu %5s\n",
			sz, r->label, r->window, r->ops, r->mbps, vp, vu,
			r->sys_per_op, all, r->csw_per_op, cqe,
			(unsigned long long)r->copied_per_op, cpus);
	fflush(out);
}

/* The pipe's and io_uring's result for r's mode and size, if any. */
static const struct result *base_of(const struct result *r, const char *mech)
{
	int i;

	for (i = 0; i < nresults; i++)
		if (results[i].mode == r->mode && results[i].size == r->size &&
		    !strcmp(results[i].mech, mech))
			return &results[i];
	return NULL;
}

static void json_ratio(FILE *f, const char *key, const struct result *r,
		       const struct result *base)
{
	if (base && base->ok && r->ok && base->ops > 0)
		fprintf(f, ", \"%s\": %.4f", key, r->ops / base->ops);
}

static void print_json(FILE *f)
{
	int i, j;

	fprintf(f, "{\n  \"bench\": \"memq\",\n  \"config\": {\"procs\": %d, \"iters\": %llu, \"time_ms\": %.0f, \"warmup_ms\": %.0f, \"touch\": \"%s\", \"batch\": %u, \"sizes\": [",
		procs, (unsigned long long)opt.iters, opt.budget * 1e3, opt.warm * 1e3,
		opt.touch == TOUCH_ALL ? "all" : "ends", opt.batch);
	for (j = 0; j < opt.nsizes; j++)
		fprintf(f, "%s%zu", j ? ", " : "", opt.sizes[j]);
	fprintf(f, "]},\n  \"copied_per_op\": \"by construction\",\n  \"mechanisms\": [\n");
	for (i = 0, j = 0; i < NMECHS; i++) {
		if (!opt.use[i])
			continue;
		fprintf(f, "%s    {\"mechanism\": \"%s\", \"label\": \"%s\", \"ok\": %s, \"note\": ",
			j++ ? ",\n" : "", all_mechs[i]->name, all_mechs[i]->label,
			usable[i] ? "true" : "false");
		json_str(f, notes[i]);
		fputc('}', f);
	}
	fprintf(f, "\n  ],\n  \"results\": [\n");
	for (i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		fprintf(f, "    {\"procs\": %d, \"mode\": \"%s\", \"size\": %zu, \"mechanism\": \"%s\", \"ok\": %s, "
			"\"ops\": %llu, \"secs\": %.6f, \"ops_per_sec\": %.1f, ",
			r->procs, r->mode == MODE_PINGPONG ? "pingpong" : mode_name(r->mode),
			r->size, r->mech, r->ok ? "true" : "false",
			(unsigned long long)r->n, r->secs, r->ops);
		if (r->mode == MODE_PINGPONG)
			fprintf(f, "\"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, ",
				r->p50_us, r->p99_us, r->p999_us);
		else if (r->mode == MODE_STREAM)
			fprintf(f, "\"window\": %u, \"mb_per_sec\": %.1f, ", r->window, r->mbps);
		else
			fprintf(f, "\"batch\": %u, \"mb_per_sec\": %.1f, ", r->window, r->mbps);
		fprintf(f, "\"syscalls_per_op\": %.3f, \"ctxsw_per_op\": %.3f, \"copied_per_op\": %llu, \"cpu_a\": %d, \"cpu_b\": %d",
			r->sys_per_op, r->csw_per_op, (unsigned long long)r->copied_per_op,
			r->a_cpu, r->b_cpu);
		if (r->all_per_op >= 0)
			fprintf(f, ", \"all_syscalls_per_op\": %.3f", r->all_per_op);
		if (r->cqe_per_op >= 0)
			fprintf(f, ", \"cqes_per_op\": %.3f", r->cqe_per_op);
		json_ratio(f, "vs_pipe", r, base_of(r, "pipe"));
		json_ratio(f, "vs_uring", r, base_of(r, "uring"));
		fprintf(f, "}%s\n", i + 1 < nresults ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
}

/*
 * --procs 2: issue 7's target for qd across processes with a shared
 * region, checked on this run's rows: no payload byte copied at any size,
 * and at least 2x a pipe's ops/s from 64 KiB up, per mode.
 */
static void print_target(void)
{
	bool zero = true, any = false;
	int i, mode;

	for (i = 0; i < nresults; i++)
		if (!strcmp(results[i].mech, "qd") && results[i].ok) {
			any = true;
			if (results[i].copied_per_op)
				zero = false;
		}
	if (procs != 2 || !any)
		return;
	fprintf(out, "\ntarget (two processes, shared region): qd copies 0 payload bytes at every size: %s\n",
		zero ? "MET" : "NOT MET");
	for (mode = MODE_PINGPONG; mode < NMODES; mode++) {
		double worst = 0;
		size_t at = 0;
		int n = 0;

		for (i = 0; i < nresults; i++) {
			const struct result *r = &results[i], *p;

			if ((int)r->mode != mode || r->size < 65536 ||
			    strcmp(r->mech, "qd"))
				continue;
			p = base_of(r, "pipe");
			if (!p || !p->ok || p->ops <= 0 || !r->ok)
				continue;
			if (!n++ || r->ops / p->ops < worst) {
				worst = r->ops / p->ops;
				at = r->size;
			}
		}
		if (n) {
			char sz[32];

			fprintf(out, "target (two processes, shared region): qd >= 2x a pipe from 64 KiB up, %s: %s (lowest %.2fx, at %s)\n",
				mode_name(mode), worst >= 2 ? "MET" : "NOT MET", worst,
				size_str(at, sz, sizeof(sz)));
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "iters", required_argument, NULL, 'i' },
		{ "time-ms", required_argument, NULL, 't' },
		{ "warmup-ms", required_argument, NULL, 'W' },
		{ "mode", required_argument, NULL, 'm' },
		{ "mech", required_argument, NULL, 'M' },
		{ "window", required_argument, NULL, 'w' },
		{ "batch", required_argument, NULL, 'b' },
		{ "uring-flags", required_argument, NULL, 'U' },
		{ "touch", required_argument, NULL, 'T' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "json", optional_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "procs", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static const size_t def_sizes[] = {
		64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
	};
	char why[600];
	bool failed = false;
	uint64_t *lat, lat_cap;
	int c, i, mi, si, mode;

	if (argc >= 2 && !strcmp(argv[1], "net"))
		return net_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "derived"))
		return derived_main(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "memq")) {
		if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	argv++;
	argc--;
	for (i = 0; i < (int)(sizeof(def_sizes) / sizeof(def_sizes[0])); i++)
		opt.sizes[opt.nsizes++] = def_sizes[i];

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			parse_sizes(optarg);
			break;
		case 'i':
			opt.iters = strtoull(optarg, NULL, 10);
			if (opt.iters < 2)
				die("--iters must be at least 2");
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
		case 'm':
			parse_modes(optarg);
			break;
		case 'M':
			parse_mechs(optarg);
			break;
		case 'w':
			opt.window = strtoul(optarg, NULL, 10);
			if (opt.window < 1 || opt.window > 1024)
				die("bad --window '%s' (1..1024)", optarg);
			break;
		case 'U':
			if (uring_flags_opt(optarg))
				die("bad --uring-flags '%s' (auto, defer, single, coop, none)", optarg);
			break;
		case 'b':
			opt.batch = strtoul(optarg, NULL, 10);
			if (opt.batch < 1 || opt.batch > 1024)
				die("bad --batch '%s' (1..1024)", optarg);
			break;
		case 'T':
			if (!strcmp(optarg, "ends"))
				opt.touch = TOUCH_ENDS;
			else if (!strcmp(optarg, "all"))
				opt.touch = TOUCH_ALL;
			else
				die("bad --touch '%s' (ends, all)", optarg);
			break;
		case 'c':
			opt.cpus_auto = 0;
			opt.cpu_a = opt.cpu_b = -1;
			if (!strcmp(optarg, "same"))
				opt.cpus_auto = 1;
			else if (!strcmp(optarg, "split"))
				opt.cpus_auto = 2;
			else if (strcmp(optarg, "none") &&
				 (sscanf(optarg, "%d,%d", &opt.cpu_a, &opt.cpu_b) != 2 ||
				  opt.cpu_a < 0 || opt.cpu_b < 0))
				die("bad --cpus '%s' (same, split, none or A,B)", optarg);
			break;
		case 'j':
			opt.json = true;
			opt.json_path = optarg;
			break;
		case 'o':
			opt.timeout = strtoul(optarg, NULL, 10);
			break;
		case 'P':
			if (strcmp(optarg, "1") && strcmp(optarg, "2"))
				die("bad --procs '%s' (1: threads, 2: processes)", optarg);
			procs = atoi(optarg);
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
	if (opt.cpus_auto)
		pick_cpus(opt.cpus_auto == 2);
	signal(SIGALRM, watchdog);

	for (mi = 0; mi < NMECHS; mi++) {
		if (!opt.use[mi])
			continue;
		why[0] = 0;
		if (procs == 2 && all_mechs[mi]->no_procs) {
			/* not a failure: the mechanism has no two-process form */
			snprintf(notes[mi], sizeof(notes[mi]), "n/a with --procs 2: %s",
				 all_mechs[mi]->no_procs);
			continue;
		}
		if (all_mechs[mi]->probe(why, sizeof(why))) {
			snprintf(notes[mi], sizeof(notes[mi]), "unavailable: %s", why);
			failed = true;
			continue;
		}
		usable[mi] = true;
		if (all_mechs[mi]->note)
			snprintf(notes[mi], sizeof(notes[mi]), "%s", all_mechs[mi]->note());
	}
	print_header();
	for (mi = 0; mi < NMECHS; mi++)
		if (opt.use[mi] && !usable[mi])
			fprintf(out, "%s: %s (the others run)\n", all_mechs[mi]->label, notes[mi]);

	/* percentiles from the first 4M round trips at most */
	lat_cap = opt.iters < (4u << 20) ? opt.iters : (4u << 20);
	lat = malloc(lat_cap * sizeof(*lat));
	if (!lat)
		die("no memory for %llu latencies", (unsigned long long)lat_cap);
	set_cpus(opt.cpu_a, opt.cpu_b);
	worker_start(0);

	for (mode = MODE_PINGPONG; mode < NMODES; mode++) {
		if (!opt.modes[mode])
			continue;
		print_table_head(mode);
		for (si = 0; si < opt.nsizes; si++) {
			int first = nresults;

			/* all mechanisms at this size, then their rows */
			for (mi = 0; mi < NMECHS; mi++) {
				if (!usable[mi])
					continue;
				measure(&results[nresults++], all_mechs[mi], mode,
					opt.sizes[si], lat, lat_cap);
			}
			for (i = first; i < nresults; i++)
				print_row(&results[i], base_of(&results[i], "pipe"),
					  base_of(&results[i], "uring"));
		}
	}
	print_target();
	worker_stop();
	free(lat);
	/* what the runs found out (e.g. a registration that failed) */
	for (mi = 0; mi < NMECHS; mi++)
		if (usable[mi] && all_mechs[mi]->note)
			snprintf(notes[mi], sizeof(notes[mi]), "%s", all_mechs[mi]->note());

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
