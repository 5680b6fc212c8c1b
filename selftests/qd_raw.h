/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qd_raw.h: the qd ABI used directly, as an application without libqd would.
 *
 * Open /dev/qd, QD_IOC_SETUP, mmap both rings through the returned offsets,
 * write SQEs at the SQ tail, QD_IOC_ENTER, read CQEs (and their elements) at
 * the CQ head. Every function returns 0 (or a count) on success and a
 * negative errno on failure, like the ABI itself.
 */
#ifndef QD_RAW_H
#define QD_RAW_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/qd.h>

#define QD_RAW_MS	1000000LL	/* ns per ms */

/*
 * The wait every helper uses: GETEVENTS bounded by a timeout. (QD_ENTER_ALL
 * also holds CQ_TAIL and CTX_SEQ, and at most one wait flag is allowed.)
 */
#define QD_RAW_WAIT	(QD_ENTER_GETEVENTS | QD_ENTER_TIMEOUT)

/*
 * One ring of a context: ring 0 from qd_raw_init(), or another from
 * qd_raw_ring_create(), which shares the context's fd (fd_borrowed: its
 * qd_raw_exit() only unmaps). Every SQ/CQ helper below works on either.
 */
struct qd_raw {
	int			fd;
	unsigned int		ring;		/* qd_enter.ring */
	int			fd_borrowed;	/* the fd belongs to ring 0's qd_raw */
	struct qd_params	p;

	void			*sq_ring;
	size_t			sq_len;
	unsigned int		*sq_head;	/* kernel writes */
	unsigned int		*sq_tail;	/* we write */
	unsigned int		*sq_flags;
	unsigned int		sq_mask;
	unsigned int		sq_entries;
	struct qd_sqe		*sqes;

	void			*cq_ring;
	size_t			cq_len;
	unsigned int		*cq_head;	/* we write */
	unsigned int		*cq_tail;	/* kernel writes */
	unsigned int		*cq_flags;
	unsigned int		*cq_overflow;
	unsigned int		cq_mask;
	unsigned int		cq_entries;
	struct qd_cqe		*cqes;
	struct qd_elem		*elems;
	unsigned int		*ctx_seq;	/* in ring 0's CQ mapping */
};

static inline long long qd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void qd_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static inline unsigned int qd_load_acquire(const unsigned int *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void qd_store_release(unsigned int *p, unsigned int v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* ioctl(2) with the result as 0/count or -errno. */
static inline int qd_raw_ioctl(int fd, unsigned long req, void *arg)
{
	int ret = ioctl(fd, req, arg);

	return ret < 0 ? -errno : ret;
}

static inline int qd_raw_open(void)
{
	int fd = open(QD_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static inline int qd_raw_setup(int fd, struct qd_params *p)
{
	return qd_raw_ioctl(fd, QD_IOC_SETUP, p);
}

/* mmap(2) as 0 or -errno. */
static inline int qd_raw_mmap(int fd, size_t len, unsigned long long off, void **out)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);

	if (m == MAP_FAILED)
		return -errno;
	*out = m;
	return 0;
}

/* Map the SQ and CQ of a ring (r->fd, r->p valid) at the given offsets. */
static inline int qd_raw_map_at(struct qd_raw *r, unsigned long long sq_off,
				unsigned long long cq_off)
{
	const struct qd_params *p = &r->p;
	char *sq, *cq;
	int ret;

	r->sq_len = p->sq_ring_bytes;
	r->cq_len = p->cq_ring_bytes;
	ret = qd_raw_mmap(r->fd, r->sq_len, sq_off, &r->sq_ring);
	if (ret)
		return ret;
	ret = qd_raw_mmap(r->fd, r->cq_len, cq_off, &r->cq_ring);
	if (ret) {
		munmap(r->sq_ring, r->sq_len);
		r->sq_ring = NULL;
		return ret;
	}
	sq = r->sq_ring;
	cq = r->cq_ring;
	r->sq_head = (unsigned int *)(sq + p->sq_off.head);
	r->sq_tail = (unsigned int *)(sq + p->sq_off.tail);
	r->sq_flags = (unsigned int *)(sq + p->sq_off.flags);
	r->sq_mask = *(unsigned int *)(sq + p->sq_off.ring_mask);
	r->sq_entries = *(unsigned int *)(sq + p->sq_off.ring_entries);
	r->sqes = (struct qd_sqe *)(sq + p->sq_off.sqes);
	r->cq_head = (unsigned int *)(cq + p->cq_off.head);
	r->cq_tail = (unsigned int *)(cq + p->cq_off.tail);
	r->cq_flags = (unsigned int *)(cq + p->cq_off.flags);
	r->cq_overflow = (unsigned int *)(cq + p->cq_off.overflow);
	r->cq_mask = *(unsigned int *)(cq + p->cq_off.ring_mask);
	r->cq_entries = *(unsigned int *)(cq + p->cq_off.ring_entries);
	r->cqes = (struct qd_cqe *)(cq + p->cq_off.cqes);
	r->elems = (struct qd_elem *)(cq + p->cq_off.elems);
	r->ctx_seq = (unsigned int *)(cq + p->cq_off.ctx_seq);
	return 0;
}

/* Map both rings of a context that is already set up (r->fd, r->p valid). */
static inline int qd_raw_map(struct qd_raw *r)
{
	return qd_raw_map_at(r, QD_OFF_SQ_RING, QD_OFF_CQ_RING);
}

/* open + setup(*p: sizes, flags) + mmap: a ready context. */
static inline int qd_raw_init_params(struct qd_raw *r,
				     const struct qd_params *p)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->fd = qd_raw_open();
	if (r->fd < 0)
		return r->fd;
	r->p = *p;
	ret = qd_raw_setup(r->fd, &r->p);
	if (!ret)
		ret = qd_raw_map(r);
	if (ret) {
		close(r->fd);
		r->fd = -1;
	}
	return ret;
}

/* open + setup(sq, cq) + mmap: a ready context. */
static inline int qd_raw_init(struct qd_raw *r, unsigned int sq, unsigned int cq)
{
	struct qd_params p = { .sq_entries = sq, .cq_entries = cq };

	return qd_raw_init_params(r, &p);
}

static inline void qd_raw_unmap(struct qd_raw *r)
{
	if (r->sq_ring)
		munmap(r->sq_ring, r->sq_len);
	if (r->cq_ring)
		munmap(r->cq_ring, r->cq_len);
	r->sq_ring = r->cq_ring = NULL;
}

/*
 * Drop the mappings and the fd: the last references to the context. For a
 * ring from qd_raw_ring_create(), only its mappings.
 */
static inline void qd_raw_exit(struct qd_raw *r)
{
	qd_raw_unmap(r);
	if (r->fd >= 0 && !r->fd_borrowed)
		close(r->fd);
	r->fd = -1;
}

/* QD_IOC_RING: 0 (p->ring and the rest filled in) or -errno. */
static inline int qd_raw_ring_ioctl(int fd, struct qd_params *p)
{
	return qd_raw_ioctl(fd, QD_IOC_RING, p);
}

/*
 * One more ring (sq, cq entries) on ctx's context, mapped at
 * QD_OFF_RING_SQ/CQ(id) into *r, which shares ctx's fd and sees ctx's
 * ctx_seq. 0 or -errno (then *r holds nothing to release).
 */
static inline int qd_raw_ring_create(struct qd_raw *ctx, struct qd_raw *r,
				     unsigned int sq, unsigned int cq)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->fd = ctx->fd;
	r->fd_borrowed = 1;
	r->p.sq_entries = sq;
	r->p.cq_entries = cq;
	ret = qd_raw_ring_ioctl(ctx->fd, &r->p);
	if (!ret) {
		r->ring = r->p.ring;
		ret = qd_raw_map_at(r, QD_OFF_RING_SQ(r->ring), QD_OFF_RING_CQ(r->ring));
	}
	if (ret) {
		r->fd = -1;
		return ret;
	}
	r->ctx_seq = ctx->ctx_seq;
	return 0;
}

/* --- SQ --------------------------------------------------------------- */

/* SQEs written but not yet consumed by the kernel. */
static inline unsigned int qd_raw_sq_pending(struct qd_raw *r)
{
	return *r->sq_tail - qd_load_acquire(r->sq_head);
}

/* Copy an SQE into the ring at the tail and publish it. -EAGAIN if full. */
static inline int qd_raw_queue_sqe(struct qd_raw *r, const struct qd_sqe *sqe)
{
	unsigned int tail = *r->sq_tail;

	if (tail - qd_load_acquire(r->sq_head) >= r->sq_entries)
		return -EAGAIN;
	r->sqes[tail & r->sq_mask] = *sqe;
	qd_store_release(r->sq_tail, tail + 1);
	return 0;
}

static inline struct qd_sqe qd_sqe_nop(__u64 user_data)
{
	struct qd_sqe s = { .opcode = QD_OP_NOP, .user_data = user_data };

	return s;
}

static inline struct qd_sqe qd_sqe_push(int qd, const struct qd_seg *segs,
					unsigned int nsegs, __u64 user_data)
{
	struct qd_sqe s = {
		.opcode = QD_OP_PUSH, .qd = qd, .nsegs = (__u16)nsegs,
		.addr = (__u64)(uintptr_t)segs, .user_data = user_data,
	};

	return s;
}

static inline struct qd_sqe qd_sqe_pop(int qd, __u64 user_data)
{
	struct qd_sqe s = { .opcode = QD_OP_POP, .qd = qd, .user_data = user_data };

	return s;
}

static inline struct qd_seg qd_seg(__u16 region, __u64 offset, __u32 len)
{
	struct qd_seg s = { .offset = offset, .len = len, .region = region };

	return s;
}

/* QD_IOC_ENTER: returns SQEs consumed or -errno. */
static inline int qd_raw_enter(struct qd_raw *r, unsigned int to_submit,
			       unsigned int min_complete, unsigned int flags,
			       long long timeout_ns)
{
	struct qd_enter e = {
		.to_submit = to_submit, .min_complete = min_complete,
		.flags = flags, .ring = r->ring, .timeout_ns = timeout_ns,
	};

	return qd_raw_ioctl(r->fd, QD_IOC_ENTER, &e);
}

/*
 * QD_IOC_ENTER on r's ring with a sequence wait (QD_ENTER_CQ_TAIL or
 * QD_ENTER_CTX_SEQ in flags, plus QD_ENTER_TIMEOUT if timeout_ns >= 0).
 */
static inline int qd_raw_enter_seq(struct qd_raw *r, unsigned int to_submit,
				   unsigned int flags, unsigned int wait_seq,
				   long long timeout_ns)
{
	struct qd_enter e = {
		.to_submit = to_submit, .flags = flags, .ring = r->ring,
		.wait_seq = wait_seq,
	};

	if (timeout_ns >= 0) {
		e.flags |= QD_ENTER_TIMEOUT;
		e.timeout_ns = timeout_ns;
	}
	return qd_raw_ioctl(r->fd, QD_IOC_ENTER, &e);
}

/* Submit everything pending in the SQ, wait for nothing. */
static inline int qd_raw_submit(struct qd_raw *r)
{
	return qd_raw_enter(r, qd_raw_sq_pending(r), 0, 0, 0);
}

/* --- CQ --------------------------------------------------------------- */

static inline unsigned int qd_raw_cq_ready(struct qd_raw *r)
{
	return qd_load_acquire(r->cq_tail) - *r->cq_head;
}

/* Take one CQE (and its element, if elem) from the ring: 1, or 0 if empty. */
static inline int qd_raw_peek_cqe(struct qd_raw *r, struct qd_cqe *cqe,
				  struct qd_elem *elem)
{
	unsigned int head = *r->cq_head;
	unsigned int slot;

	if (qd_load_acquire(r->cq_tail) == head)
		return 0;
	slot = head & r->cq_mask;
	*cqe = r->cqes[slot];
	if (elem)
		*elem = r->elems[slot];
	qd_store_release(r->cq_head, head + 1);
	return 1;
}

/*
 * Reap one CQE, waiting up to timeout_ns in QD_IOC_ENTER if the ring is
 * empty (which also moves overflowed completions into the ring).
 * 0, or -ETIMEDOUT / -errno.
 */
static inline int qd_raw_wait_cqe(struct qd_raw *r, struct qd_cqe *cqe,
				  struct qd_elem *elem, long long timeout_ns)
{
	long long end = qd_now_ns() + timeout_ns;
	int ret;

	for (;;) {
		long long left;

		if (qd_raw_peek_cqe(r, cqe, elem))
			return 0;
		left = end - qd_now_ns();
		if (left <= 0)
			left = 0;
		ret = qd_raw_enter(r, 0, 1, QD_RAW_WAIT, left);
		if (ret < 0 && ret != -EINTR) {
			if (qd_raw_peek_cqe(r, cqe, elem))
				return 0;
			return ret;
		}
		if (!left && !qd_raw_cq_ready(r))
			return -ETIMEDOUT;
	}
}

/* Queue one SQE, submit it, reap one CQE (the caller knows it is the one). */
static inline int qd_raw_do(struct qd_raw *r, const struct qd_sqe *sqe,
			    struct qd_cqe *cqe, struct qd_elem *elem)
{
	int ret = qd_raw_queue_sqe(r, sqe);

	if (ret)
		return ret;
	ret = qd_raw_submit(r);
	if (ret < 0)
		return ret;
	if (ret != 1)
		return -EIO;
	return qd_raw_wait_cqe(r, cqe, elem, 2000 * QD_RAW_MS);
}

/* --- resources -------------------------------------------------------- */

static inline int qd_raw_register(int fd, void *addr, size_t len, unsigned int *id)
{
	struct qd_region_reg reg = { .addr = (__u64)(uintptr_t)addr, .len = len };
	int ret = qd_raw_ioctl(fd, QD_IOC_REGISTER, &reg);

	if (!ret && id)
		*id = reg.id;
	return ret;
}

static inline int qd_raw_unregister(int fd, unsigned int id)
{
	__u32 v = id;

	return qd_raw_ioctl(fd, QD_IOC_UNREGISTER, &v);
}

static inline int qd_raw_queue(int fd, unsigned int depth, int *qd)
{
	struct qd_queue_create q = { .depth = depth };
	int ret = qd_raw_ioctl(fd, QD_IOC_QUEUE, &q);

	if (!ret && qd)
		*qd = q.qd;
	return ret;
}

/* A kernel socket qd (AF_INET, type) made with QD_IOC_SOCKET, or -errno. */
static inline int qd_raw_socket(struct qd_raw *r, int type)
{
	struct qd_socket_create c = { .domain = 2 /* AF_INET */, .type = type };
	int ret = qd_raw_ioctl(r->fd, QD_IOC_SOCKET, &c);

	return ret ? ret : c.qd;
}

static inline int qd_raw_close(int fd, int qd)
{
	__s32 v = qd;

	return qd_raw_ioctl(fd, QD_IOC_CLOSE, &v);
}

/* Anonymous page-aligned memory, or NULL. */
static inline void *qd_raw_pages(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return m == MAP_FAILED ? NULL : m;
}

static inline size_t qd_page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static inline int qd_seg_eq(const struct qd_seg *a, const struct qd_seg *b)
{
	return a->offset == b->offset && a->len == b->len &&
	       a->region == b->region && a->resv == b->resv;
}

#endif /* QD_RAW_H */
