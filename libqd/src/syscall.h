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
	uint64_t	forget_failed;
	int64_t		forget_last_error;
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
/* QD_IOC_RING: one more ring; its id in p->ring. */
int qd__ring_create(int fd, struct qd_params *p);
/* Map a ring MAP_SHARED, kept out of fork children. */
void *qd__mmap_ring(int fd, size_t len, uint64_t off, int *err);
int qd__munmap_ring(void *addr, size_t len);
/*
 * QD_IOC_ENTER on ring: submit up to to_submit SQEs, then wait as flags
 * say (wait_seq for QD_ENTER_CQ_TAIL and QD_ENTER_CTX_SEQ). Returns the
 * number of SQEs the kernel consumed.
 */
int qd__enter(int fd, uint32_t ring, uint32_t to_submit, uint32_t flags,
	      int64_t timeout_ns, uint32_t wait_seq);
/*
 * QD_IOC_ENTER with QD_ENTER_MQ_POP on mapped queue qd (timeout_ns < 0:
 * none): the sleep of a pop still in user space.
 */
int qd__enter_mq(int fd, uint32_t ring, uint32_t to_submit, int qd,
		 int64_t timeout_ns, uint32_t wait_seq);
int qd__register(int fd, void *addr, size_t len, uint32_t *id);
int qd__unregister(int fd, uint32_t id, size_t len);
int qd__queue_create(int fd, uint32_t depth, int *qd_out);
/* QD_IOC_QUEUE with the caller's request (flags, depth); fills it in. */
int qd__queue_create_ex(int fd, struct qd_queue_create *c);
int qd__close_qd(int fd, int qd);
/* Any other ioctl on the context, counted like the rest. */
int qd__ioctl(int fd, unsigned long req, void *arg);
/* Anonymous private memory, populated. */
void *qd__mmap_anon(size_t len, int *err);
int qd__munmap_anon(void *addr, size_t len);
/* futex(2) on a private word (the ring lock's slow path). */
void qd__futex(uint32_t *word, int op, uint32_t val);

#endif
