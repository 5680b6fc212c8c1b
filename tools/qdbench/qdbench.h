/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qdbench: the same two-thread exchange over three mechanisms (qd memory
 * queues, pipes, eventfd + shared memory), measured the same way.
 *
 * Thread A drives; thread B answers (ping-pong) or consumes (stream). The
 * driver (run.c) owns the loops, the clock, the payload touches and the
 * counters; a mechanism (pipe.c, efd.c, qd.c) only moves one element.
 */
#ifndef QDBENCH_H
#define QDBENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PL_MAXSEGS	8

enum mode { MODE_PINGPONG, MODE_STREAM };
enum touch { TOUCH_ENDS, TOUCH_ALL };

/* Where an element's bytes are: what the driver marks and checks. */
struct payload {
	int		n;
	struct iovec	iov[PL_MAXSEGS];
};

struct run;

/*
 * One mechanism. Every hook returns 0 or -errno. A side: a_buf gives the
 * buffer to fill, a_send sends it, a_recv (ping-pong) waits for the reply,
 * a_done finishes (stream: collect what is still in flight). B side: b_recv
 * waits for the next element, b_send (ping-pong) sends it back, b_release
 * (stream) is done with it, b_done finishes. last is true for the final
 * element of the run.
 */
struct mech {
	const char	*name;		/* option name: pipe, eventfd, qd */
	const char	*label;		/* shown in tables */
	/* payload bytes copied per transfer, by construction */
	uint64_t	(*copied)(size_t size);
	/* 0 when usable; otherwise why not, in why */
	int		(*probe)(char *why, size_t len);
	int		(*setup)(struct run *r);
	void		(*teardown)(struct run *r);
	int		(*a_buf)(struct run *r, struct payload *p);
	int		(*a_send)(struct run *r, bool last);
	int		(*a_recv)(struct run *r, struct payload *p);
	int		(*a_done)(struct run *r);
	int		(*b_recv)(struct run *r, struct payload *p);
	int		(*b_send)(struct run *r, bool last);
	int		(*b_release)(struct run *r, bool last);
	int		(*b_done)(struct run *r);
	/* this thread's system calls, or NULL: count process-wide (qd_stats) */
	uint64_t	(*thread_syscalls)(void);
	/* process-wide system calls (qd_stats), or NULL */
	uint64_t	(*process_syscalls)(void);
};

extern const struct mech mech_pipe, mech_efd, mech_qd;

/* One (mode, size, mechanism) measurement. */
struct run {
	const struct mech *m;
	enum mode	mode;
	size_t		size;
	unsigned int	window;		/* stream: elements in flight at most */
	uint64_t	iters;		/* measured ops at most */
	double		budget;		/* measured seconds at most */
	double		warm_budget;	/* warm-up seconds at most */
	enum touch	touch;
	void		*priv;		/* the mechanism's state */

	/* A publishes these so that B knows where the phases are. */
	_Atomic uint64_t warm;		/* ops in the warm-up (0: not yet known) */
	_Atomic uint64_t total;		/* ops in the run (0: not yet known) */

	/* results */
	uint64_t	n;		/* measured ops (A) */
	double		a_secs;
	uint64_t	a_sys, a_csw;
	uint64_t	b_n;		/* B's measured receives */
	double		b_secs;
	uint64_t	b_sys, b_csw;
	uint64_t	a_all, b_all;	/* every syscall, kernel-counted */
	bool		all_ok;
	uint64_t	proc_sys0, proc_sys1; /* process-wide, mechanism-counted */
	int		a_cpu, b_cpu;	/* where each thread was at the end */
	uint64_t	*lat_ns;	/* ping-pong round trips, n of them */
	uint64_t	lat_cap;
};

/* Results kept for the tables and JSON. */
struct result {
	const char	*mech;
	const char	*label;
	enum mode	mode;
	size_t		size;
	bool		ok;
	uint64_t	n;
	double		secs;
	double		ops;		/* round trips/s or elements/s */
	double		mbps;		/* stream: MB/s (10^6 bytes) */
	double		p50_us, p99_us, p999_us;
	double		sys_per_op, csw_per_op;
	double		all_per_op;	/* every syscall, measured; < 0 n/a */
	uint64_t	copied_per_op;	/* by construction */
	unsigned int	window;
	int		a_cpu, b_cpu;
};

/* run.c */
void run_one(struct run *r);
void worker_start(int cpu);
void worker_stop(void);
void set_cpus(int a, int b);

/* util.c */
uint64_t now_ns(void);
void *buf_alloc(size_t size);
void buf_free(void *p, size_t size);
void *shm_alloc(size_t size);
void shm_free(void *p, size_t size);
extern __thread uint64_t tl_syscalls;
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int efd_read(int fd, uint64_t *v);
int efd_write(int fd, uint64_t v);
uint64_t count_thread_syscalls(void);
bool sysc_open(void);
uint64_t sysc_read(void);
bool sysc_ok(void);
void pl_flat(struct payload *p, void *buf, size_t len);
size_t pl_len(const struct payload *p);
void pl_mark(const struct payload *p, uint64_t v, enum touch t);
int pl_check(const struct payload *p, uint64_t v, enum touch t);
void pl_copy(void *dst, const struct payload *src);
size_t pipe_capacity(size_t want);
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);

#endif /* QDBENCH_H */
