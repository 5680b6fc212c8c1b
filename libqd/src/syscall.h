/* SPDX-License-Identifier: MIT */
/*
 * Every system call libqd makes goes through these wrappers, which count
 * it for qd_stats(). Each returns >= 0 or -errno.
 */
#ifndef LIBQD_SYSCALL_H
#define LIBQD_SYSCALL_H

#include <stddef.h>
#include <stdint.h>

#include <linux/qd.h>

struct qd_counters {
	uint64_t	syscalls;
	uint64_t	enters;
	uint64_t	enter_waits;
	uint64_t	sqes_submitted;
	uint64_t	cqes_reaped;
	uint64_t	overflow_flushes;
	uint64_t	regions;
	uint64_t	region_bytes;
};

extern struct qd_counters qd__cnt;

static inline void qd_count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline void qd_uncount(uint64_t *c, uint64_t n)
{
	__atomic_fetch_sub(c, n, __ATOMIC_RELAXED);
}

static inline uint64_t qd_counted(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

int qd__open(void);
int qd__close_fd(int fd);
int qd__setup(int fd, struct qd_params *p);
/* Map a ring MAP_SHARED, kept out of fork children. */
void *qd__mmap_ring(int fd, size_t len, uint64_t off, int *err);
int qd__munmap_ring(void *addr, size_t len);
/* Returns the number of SQEs the kernel consumed. */
int qd__enter(int fd, uint32_t to_submit, uint32_t min_complete,
	      uint32_t flags, int64_t timeout_ns);
int qd__register(int fd, void *addr, size_t len, uint32_t *id);
int qd__unregister(int fd, uint32_t id, size_t len);
int qd__queue_create(int fd, uint32_t depth, int *qd_out);
int qd__close_qd(int fd, int qd);
/*
 * futex(2) on a private word, for libqd's own thread wake-ups (as pthread's
 * would be); not counted in qd_stats(): it is not made for the context.
 * qd__futex_wait sleeps while *word == val, until the absolute
 * CLOCK_MONOTONIC time at_ns (INT64_MAX: no limit), a wake-up or a signal.
 */
int qd__futex_wait(uint32_t *word, uint32_t val, int64_t at_ns);
int qd__futex_wake_all(uint32_t *word);

/* Anonymous private memory, populated. */
void *qd__mmap_anon(size_t len, int *err);
int qd__munmap_anon(void *addr, size_t len);

#endif
