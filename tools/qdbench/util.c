// SPDX-License-Identifier: GPL-2.0
/* qdbench helpers: clock, buffers, counted system calls, payload touches. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/perf_event.h>

#include "qdbench.h"

/* Pin the calling thread to cpu (nothing for a negative one). */
void pin_thread(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		die("cannot pin to CPU %d", cpu);
}

int tokq_init(struct tokq *q, unsigned int cap)
{
	q->t = calloc(cap, sizeof(*q->t));
	q->cap = cap;
	q->head = q->n = 0;
	return q->t ? 0 : -ENOMEM;
}

void tokq_put(struct tokq *q, uint64_t t)
{
	q->t[(q->head + q->n++) % q->cap] = t;
}

uint64_t tokq_get(struct tokq *q)
{
	uint64_t t = q->t[q->head];

	q->head = (q->head + 1) % q->cap;
	q->n--;
	return t;
}

/*
 * The system calls the mechanisms make in this thread (read/write/eventfd,
 * io_uring_enter, futex), and the completions (io_uring CQEs) it consumes.
 */
__thread uint64_t tl_syscalls;
__thread uint64_t tl_cqes;

const char *mode_name(enum mode m)
{
	switch (m) {
	case MODE_PINGPONG:
		return "ping-pong";
	case MODE_STREAM:
		return "stream";
	case MODE_BATCH:
		return "batch";
	default:
		return "?";
	}
}

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("qdbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static size_t page_round(size_t size)
{
	long pg = sysconf(_SC_PAGESIZE);

	return (size + pg - 1) & ~(size_t)(pg - 1);
}

/* Private memory, faulted in now so no run pays for first touches. */
void *buf_alloc(size_t size)
{
	void *p = mmap(NULL, page_round(size), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", size, strerror(errno));
	memset(p, 0x5a, size);
	return p;
}

void buf_free(void *p, size_t size)
{
	if (p)
		munmap(p, page_round(size));
}

void *shm_alloc(size_t size)
{
	void *p = mmap(NULL, page_round(size), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap shared %zu bytes: %s", size, strerror(errno));
	memset(p, 0x5a, size);
	return p;
}

void shm_free(void *p, size_t size)
{
	buf_free(p, size);
}

/* Read exactly len bytes, looping on short reads; every call counts. */
int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		tl_syscalls++;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		tl_syscalls++;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int efd_read(int fd, uint64_t *v)
{
	for (;;) {
		ssize_t n = read(fd, v, sizeof(*v));

		tl_syscalls++;
		if (n == sizeof(*v))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

int efd_write(int fd, uint64_t v)
{
	for (;;) {
		ssize_t n = write(fd, &v, sizeof(v));

		tl_syscalls++;
		if (n == sizeof(v))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

uint64_t count_thread_syscalls(void)
{
	return tl_syscalls;
}

uint64_t count_thread_cqes(void)
{
	return tl_cqes;
}

/*
 * Pipe capacity for want bytes in flight: at least the default 64 KiB, at
 * most 1 MiB (the default /proc/sys/fs/pipe-max-size), a power of two.
 */
size_t pipe_capacity(size_t want)
{
	size_t c = 65536;

	while (c < want && c < (1u << 20))
		c <<= 1;
	return c;
}

void pl_flat(struct payload *p, void *buf, size_t len)
{
	p->n = 1;
	p->iov[0].iov_base = buf;
	p->iov[0].iov_len = len;
}

size_t pl_len(const struct payload *p)
{
	size_t len = 0;
	int i;

	for (i = 0; i < p->n; i++)
		len += p->iov[i].iov_len;
	return len;
}

/* Copy n bytes at offset off of the payload to or from buf. */
static void pl_rw(const struct payload *p, size_t off, void *buf, size_t n,
		  bool write)
{
	char *b = buf;
	int i;

	for (i = 0; i < p->n && n; i++) {
		size_t l = p->iov[i].iov_len, k;

		if (off >= l) {
			off -= l;
			continue;
		}
		k = l - off < n ? l - off : n;
		if (write)
			memcpy((char *)p->iov[i].iov_base + off, b, k);
		else
			memcpy(b, (char *)p->iov[i].iov_base + off, k);
		b += k;
		n -= k;
		off = 0;
	}
}

/*
 * The sender's touch: v in the first 8 bytes, ~v in the last 8 (TOUCH_ALL:
 * also one byte in every cache line). The receiver's touch reads the same
 * bytes back and checks them, which also proves order and integrity.
 */
void pl_mark(const struct payload *p, uint64_t v, enum touch t)
{
	size_t len = pl_len(p);
	uint64_t nv = ~v;
	int i;

	if (t == TOUCH_ALL) {
		for (i = 0; i < p->n; i++) {
			volatile char *b = p->iov[i].iov_base;
			size_t o;

			for (o = 0; o < p->iov[i].iov_len; o += 64)
				b[o] = (char)o;
		}
	}
	pl_rw(p, 0, &v, sizeof(v), true);
	pl_rw(p, len - sizeof(nv), &nv, sizeof(nv), true);
}

static volatile unsigned long touch_sink;

int pl_check(const struct payload *p, uint64_t v, enum touch t)
{
	size_t len = pl_len(p);
	uint64_t a, b;
	int i;

	if (t == TOUCH_ALL) {
		unsigned long sum = 0;

		for (i = 0; i < p->n; i++) {
			const volatile unsigned char *c = p->iov[i].iov_base;
			size_t o;

			for (o = 0; o < p->iov[i].iov_len; o += 64)
				sum += c[o];
		}
		touch_sink = sum;
	}
	pl_rw(p, 0, &a, sizeof(a), false);
	pl_rw(p, len - sizeof(b), &b, sizeof(b), false);
	if (a != v || b != ~v) {
		fprintf(stderr, "qdbench: payload check failed: expected %#llx, got head %#llx tail %#llx (len %zu)\n",
			(unsigned long long)v, (unsigned long long)a,
			(unsigned long long)~b, len);
		return -EBADMSG;
	}
	return 0;
}

/* Flatten a payload into dst (eventfd+shm's one copy). */
void pl_copy(void *dst, const struct payload *src)
{
	char *d = dst;
	int i;

	for (i = 0; i < src->n; i++) {
		memcpy(d, src->iov[i].iov_base, src->iov[i].iov_len);
		d += src->iov[i].iov_len;
	}
}

/*
 * Every system call this thread makes, counted by the kernel: a perf
 * counter on the raw_syscalls:sys_enter tracepoint (root or a permissive
 * perf_event_paranoid, and tracefs mounted). clock_gettime is filtered out:
 * without a vDSO clock (some emulated clocksources) the benchmark's own
 * timestamps would count.
 */
static __thread int sysc_fd = -1;
static long sysc_id = -2;

static long sysc_tracepoint(void)
{
	static const char *const paths[] = {
		"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
		"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
	};
	unsigned int i;
	long id = -1;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]) && id < 0; i++) {
		FILE *f = fopen(paths[i], "re");

		if (!f)
			continue;
		if (fscanf(f, "%ld", &id) != 1)
			id = -1;
		fclose(f);
	}
	return id;
}

bool sysc_open(void)
{
	struct perf_event_attr a;
	char filter[64];

	if (sysc_id == -2)
		sysc_id = sysc_tracepoint();
	if (sysc_id < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = sysc_id;
	sysc_fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (sysc_fd < 0)
		return false;
	snprintf(filter, sizeof(filter), "id != %d", SYS_clock_gettime);
	ioctl(sysc_fd, PERF_EVENT_IOC_SET_FILTER, filter);
	return true;
}

/*
 * The same counter for this thread and every thread it creates from now
 * on (inherit): a whole server process's system calls, read from a thread
 * made before it (whose own calls it does not count). An fd, or -1.
 */
int sysc_open_inherit(void)
{
	struct perf_event_attr a;
	int fd;

	if (sysc_id == -2)
		sysc_id = sysc_tracepoint();
	if (sysc_id < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = sysc_id;
	a.inherit = 1;
	fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -1 : fd;
}

/* The count so far; the read(2) that fetches it counts itself. */
uint64_t sysc_read(void)
{
	uint64_t v = 0;

	if (sysc_fd < 0 || read(sysc_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

bool sysc_ok(void)
{
	return sysc_fd >= 0;
}

/* Close this thread's counter (a thread that ends before the process). */
void sysc_close(void)
{
	if (sysc_fd >= 0)
		close(sysc_fd);
	sysc_fd = -1;
}

/* Helpers of both benchmarks' drivers (memq, net): sizes, percentiles, JSON. */

/* A size: digits and an optional K, M or G (binary), then i or B or iB. 0 if malformed. */
size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K':
		v <<= 10;
		end++;
		break;
	case 'm': case 'M':
		v <<= 20;
		end++;
		break;
	case 'g': case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' && end[1] == 'B' ? 2 : 1;
	if (*end)
		return 0;
	return v;
}

const char *size_str(size_t s, char *buf, size_t len)
{
	if (s >= (1u << 20) && !(s & ((1u << 20) - 1)))
		snprintf(buf, len, "%zuM", s >> 20);
	else if (s >= 1024 && !(s & 1023))
		snprintf(buf, len, "%zuK", s >> 10);
	else
		snprintf(buf, len, "%zu", s);
	return buf;
}

int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n], in microseconds. */
double pct_us(const uint64_t *v, uint64_t n, double p)
{
	uint64_t i;

	if (!n)
		return 0;
	i = (uint64_t)(p / 100.0 * n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1] / 1000.0;
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}
