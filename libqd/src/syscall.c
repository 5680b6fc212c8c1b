// SPDX-License-Identifier: MIT
/* Counted system-call wrappers (see syscall.h). */
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "syscall.h"
#include "sys.h"

struct qd_counters qd__cnt;

static void count1(void)
{
	qd_count(&qd__cnt.syscalls, 1);
}

int qd__open(void)
{
	count1();
	return qd__sys_open();
}

int qd__close_fd(int fd)
{
	count1();
	return qd__sys_close(fd);
}

int qd__setup(int fd, struct qd_params *p)
{
	count1();
	return qd__sys_ioctl(fd, QD_IOC_SETUP, p);
}

int qd__ring_create(int fd, struct qd_params *p)
{
	count1();
	return qd__sys_ioctl(fd, QD_IOC_RING, p);
}

void *qd__mmap_ring(int fd, size_t len, uint64_t off, int *err)
{
	void *p;

	count1();
	p = qd__sys_mmap(fd, len, off, err);
	if (p == MAP_FAILED)
		return p;
	/*
	 * A child of fork() must not see its parent's rings: it would touch
	 * them while its own context starts from scratch.
	 */
	count1();
	madvise(p, len, MADV_DONTFORK);
	return p;
}

int qd__munmap_ring(void *addr, size_t len)
{
	count1();
	return qd__sys_munmap(addr, len);
}

/* QD_IOC_ENTER with e, counted (a wait when e asks to sleep). */
static int enter(int fd, struct qd_enter *e)
{
	int ret;

	count1();
	qd_count(&qd__cnt.enters, 1);
	if (e->flags & (QD_ENTER_CQ_TAIL | QD_ENTER_CTX_SEQ | QD_ENTER_MQ_POP))
		qd_count(&qd__cnt.enter_waits, 1);
	ret = qd__sys_ioctl(fd, QD_IOC_ENTER, e);
	if (ret > 0)
		qd_count(&qd__cnt.sqes_submitted, ret);
	return ret;
}

int qd__enter(int fd, uint32_t ring, uint32_t to_submit, uint32_t flags,
	      int64_t timeout_ns, uint32_t wait_seq)
{
	struct qd_enter e = {
		.to_submit = to_submit,
		.flags = flags,
		.ring = ring,
		.timeout_ns = timeout_ns,
		.wait_seq = wait_seq,
	};

	return enter(fd, &e);
}

int qd__enter_mq(int fd, uint32_t ring, uint32_t to_submit, int qd,
		 int64_t timeout_ns, uint32_t wait_seq)
{
	struct qd_enter e = {
		.to_submit = to_submit,
		.flags = QD_ENTER_MQ_POP |
			 (timeout_ns >= 0 ? QD_ENTER_TIMEOUT : 0),
		.ring = ring,
		.timeout_ns = timeout_ns >= 0 ? timeout_ns : 0,
		.wait_seq = wait_seq,
		.qd = qd,
	};

	return enter(fd, &e);
}

int qd__register(int fd, void *addr, size_t len, uint32_t *id)
{
	struct qd_region_reg r = {
		.addr = (uintptr_t)addr,
		.len = len,
	};
	int ret;

	count1();
	ret = qd__sys_ioctl(fd, QD_IOC_REGISTER, &r);
	if (ret < 0)
		return ret;
	*id = r.id;
	qd_count(&qd__cnt.regions, 1);
	qd_count(&qd__cnt.region_bytes, len);
	return 0;
}

int qd__unregister(int fd, uint32_t id, size_t len)
{
	int ret;

	count1();
	ret = qd__sys_ioctl(fd, QD_IOC_UNREGISTER, &id);
	if (ret < 0)
		return ret;
	qd_uncount(&qd__cnt.regions, 1);
	qd_uncount(&qd__cnt.region_bytes, len);
	return 0;
}

int qd__queue_create(int fd, uint32_t depth, int *qd_out)
{
	struct qd_queue_create q = { .depth = depth };
	int ret;

	count1();
	ret = qd__sys_ioctl(fd, QD_IOC_QUEUE, &q);
	if (ret < 0)
		return ret;
	*qd_out = q.qd;
	return 0;
}

int qd__ioctl(int fd, unsigned long req, void *arg)
{
	count1();
	return qd__sys_ioctl(fd, req, arg);
}

int qd__queue_create_ex(int fd, struct qd_queue_create *c)
{
	count1();
	return qd__sys_ioctl(fd, QD_IOC_QUEUE, c);
}

int qd__close_qd(int fd, int qd)
{
	__s32 arg = qd;

	count1();
	return qd__sys_ioctl(fd, QD_IOC_CLOSE, &arg);
}

void *qd__mmap_anon(size_t len, int *err)
{
	void *p;

	count1();
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		*err = -errno;
	return p;
}

int qd__munmap_anon(void *addr, size_t len)
{
	count1();
	return munmap(addr, len) ? -errno : 0;
}

void qd__futex(uint32_t *word, int op, uint32_t val)
{
	count1();
	syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}
