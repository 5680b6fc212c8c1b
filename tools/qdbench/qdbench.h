/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qdbench: the same two-thread exchange over five mechanisms (qd memory
 * queues, pipes, eventfd + shared memory, io_uring MSG_RING between two
 * rings, a lock-free SPSC ring with futex wake-ups), measured the same way.
 *
 * Thread A drives; thread B answers (ping-pong) or consumes (stream,
 * batch). The driver (run.c) owns the loops, the clock, the payload touches
 * and the counters; a mechanism (pipe.c, efd.c, qd.c, uring.c, spsc.c)
 * only moves one element.
 */
#ifndef QDBENCH_H
#define QDBENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#define PL_MAXSEGS	8

enum mode { MODE_PINGPONG, MODE_STREAM, MODE_BATCH, NMODES };
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
 * a_sync (batch) waits until every element sent so far is back (its buffer
 * returned, or consumed), a_done finishes (stream, batch: collect what is
 * still in flight). B side: b_recv waits for the next element, b_send
 * (ping-pong) sends it back, b_release (stream, batch) is done with it,
 * b_done finishes. last is true for the final element of the run.
 *
 * flush (a_send, b_release) is true when the element must be on its way
 * now: always in ping-pong and stream, at the end of each batch in batch
 * mode. Without it a mechanism may hold the element back until the next
 * flush, or until the thread is about to block, whichever comes first;
 * it must never block while holding one back.
 *
 * a_init and b_init (optional) run in A's and B's thread before the first
 * element, B's first: per-thread setup such as an io_uring that only its
 * owner may submit to.
 */
struct mech {
	const char	*name;		/* option name: pipe, eventfd, qd */
	const char	*label;		/* shown in tables */
	/* payload bytes copied per transfer, by construction */
	uint64_t	(*copied)(size_t size);
	/* 0 when usable; otherwise why not, in why */
	int		(*probe)(char *why, size_t len);
	/* how it was set up (e.g. io_uring's flags), after probe; or NULL */
	const char	*(*note)(void);
	int		(*setup)(struct run *r);
	void		(*teardown)(struct run *r);
	int		(*a_init)(struct run *r);
	int		(*b_init)(struct run *r);
	int		(*a_buf)(struct run *r, struct payload *p);
	int		(*a_send)(struct run *r, bool last, bool flush);
	int		(*a_recv)(struct run *r, struct payload *p);
	int		(*a_sync)(struct run *r);
	int		(*a_done)(struct run *r);
	int		(*b_recv)(struct run *r, struct payload *p);
	int		(*b_send)(struct run *r, bool last);
	int		(*b_release)(struct run *r, bool last, bool flush);
	int		(*b_done)(struct run *r);
	/* this thread's system calls, or NULL: count process-wide (qd_stats) */
	uint64_t	(*thread_syscalls)(void);
	/* process-wide system calls (qd_stats), or NULL */
	uint64_t	(*process_syscalls)(void);
	/* completions (CQEs) consumed, per thread or process-wide; NULL: n/a */
	uint64_t	(*thread_cqes)(void);
	uint64_t	(*process_cqes)(void);
	/*
	 * --procs 2 (A in the parent, B in a forked child): NULL when the
	 * mechanism runs that way, else why not. setup() then runs in A's
	 * process before the fork (procs == 2 says so), b_init() in the
	 * child after it; state both sides change must be in MAP_SHARED
	 * memory, and buffers must be too when the peer reads them in place.
	 */
	const char	*no_procs;
};

extern const struct mech mech_pipe, mech_efd, mech_qd, mech_uring, mech_spsc;
/*
 * qd with libqd's kernel SQ poller (QD_SQPOLL): mech_qd's hooks, measured
 * in a child process of its own (libqd has one context per process, and
 * the poller is chosen when it is set up). Not in the default list.
 */
extern const struct mech mech_qd_sqpoll;
#define QD_SQPOLL_BENCH_IDLE	"1000"	/* ms, unless QD_SQPOLL is set */

/* One (mode, size, mechanism) measurement. */
struct run {
	const struct mech *m;
	enum mode	mode;
	size_t		size;
	unsigned int	window;		/* stream, batch: elements in flight at most */
	unsigned int	batch;		/* batch: elements per batch (= window) */
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
	uint64_t	a_cqe, b_cqe;	/* CQEs consumed, per thread */
	uint64_t	proc_cqe0, proc_cqe1; /* CQEs consumed, process-wide */
	int		a_cpu, b_cpu;	/* where each thread was at the end */
	uint64_t	*lat_ns;	/* ping-pong round trips, n of them */
	uint64_t	lat_cap;
	bool		b_sysc;		/* B counted every syscall (all/op) */
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
	double		cqe_per_op;	/* CQEs consumed; < 0 n/a */
	uint64_t	copied_per_op;	/* by construction */
	unsigned int	window;
	int		a_cpu, b_cpu;
	int		procs;		/* 1: two threads, 2: two processes */
};

/* uring.c: --uring-flags */
int uring_flags_opt(const char *arg);

/* run.c */
extern int procs;		/* 1: A and B are threads; 2: processes */
void run_one(struct run *r);
void worker_start(int cpu);
void worker_forked(void);
void worker_stop(void);
void set_cpus(int a, int b);

/* util.c */
uint64_t now_ns(void);
void pin_thread(int cpu);

/* A FIFO of tokens (qd_token_t), cap at most in it. */
struct tokq {
	uint64_t	*t;
	unsigned int	cap, head, n;
};

int tokq_init(struct tokq *q, unsigned int cap);
void tokq_put(struct tokq *q, uint64_t t);
uint64_t tokq_get(struct tokq *q);
size_t parse_size(const char *s);
const char *size_str(size_t s, char *buf, size_t len);
int cmp_u64(const void *a, const void *b);
double pct_us(const uint64_t *v, uint64_t n, double p);
void json_str(FILE *f, const char *s);
void *buf_alloc(size_t size);
void buf_free(void *p, size_t size);
void *shm_alloc(size_t size);
void shm_free(void *p, size_t size);
extern __thread uint64_t tl_syscalls;
extern __thread uint64_t tl_cqes;
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int efd_read(int fd, uint64_t *v);
int efd_write(int fd, uint64_t v);
uint64_t count_thread_syscalls(void);
uint64_t count_thread_cqes(void);
const char *mode_name(enum mode m);
bool sysc_open(void);
uint64_t sysc_read(void);
bool sysc_ok(void);
void sysc_close(void);
int sysc_open_inherit(void);
void pl_flat(struct payload *p, void *buf, size_t len);
size_t pl_len(const struct payload *p);
void pl_mark(const struct payload *p, uint64_t v, enum touch t);
int pl_check(const struct payload *p, uint64_t v, enum touch t);
void pl_copy(void *dst, const struct payload *src);
size_t pipe_capacity(size_t want);
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);

#endif /* QDBENCH_H */
