// SPDX-License-Identifier: MIT
/*
 * Storage qds (regular files and block devices): qd_open(), qd_pushat(),
 * qd_popat(), qd_sync(), and the buffer a plain qd_pop() on one brings.
 *
 * qd_open() is synchronous for its caller but an operation for the kernel
 * (QD_OP_OPEN), so that the path is resolved with the submitting task's
 * credentials, root and working directory at that moment. The SQPOLL
 * poller leaves an OPEN to QD_IOC_ENTER, so qd_open() always enters
 * itself, then waits for the result like any token.
 *
 * A storage pop must bring the buffer the kernel reads into: qd_pop() and
 * qd_popat(buf NULL) take one from the allocator (QD_FILE_POP_SIZE bytes),
 * which belongs to the caller with the result (qd_sgafree()), and which
 * libqd frees itself when the pop reads nothing (end of file) or fails, as
 * for a socket. A push is the ordinary one; its buffers stay the caller's.
 * libqd remembers which qds are storage queues in a table indexed by qd,
 * read without a lock, as sock.c does for sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"
#include "region.h"

#define QD_FILE_TABLE		65536
#define QD_FILE_POP_DEFAULT	65536

/* open(2) flags the kernel accepts for a storage queue (kmod/file.c). */
#define QD_OPEN_FLAGS	(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | \
			 O_DIRECT | O_DSYNC | O_SYNC | O_NOATIME | \
			 O_NOFOLLOW | O_CLOEXEC | O_LARGEFILE | O_NOCTTY)

/* 1: qd is a storage queue. Atomic bytes. */
static uint8_t file_qd[QD_FILE_TABLE];

/* qd_pop()'s size on a storage qd; 0 until read from the environment. */
static int64_t pop_size_cached;

int qd__file_is(int qd)
{
	if (qd < 0 || qd >= QD_FILE_TABLE)
		return 0;
	return __atomic_load_n(&file_qd[qd], __ATOMIC_RELAXED);
}

void qd__file_set(int qd, int on)
{
	if (qd >= 0 && qd < QD_FILE_TABLE)
		__atomic_store_n(&file_qd[qd], (uint8_t)!!on, __ATOMIC_RELAXED);
}

void qd__file_forget_all(void)
{
	memset(file_qd, 0, sizeof(file_qd));
}

/* QD_FILE_POP_SIZE: 1 B to 1 GiB, default 64 KiB; -EINVAL if malformed. */
static int64_t pop_size(void)
{
	int64_t size = __atomic_load_n(&pop_size_cached, __ATOMIC_RELAXED);
	const char *s;
	unsigned long long v;
	char *end;

	if (size)
		return size;
	size = QD_FILE_POP_DEFAULT;
	s = getenv("QD_FILE_POP_SIZE");
	if (s && *s) {
		errno = 0;
		v = strtoull(s, &end, 0);
		if (errno || *end || !v || v > (1ULL << 30))
			return -EINVAL;
		size = (int64_t)v;
	}
	/* Every thread computes the same value: a plain store is enough. */
	__atomic_store_n(&pop_size_cached, size, __ATOMIC_RELAXED);
	return size;
}

/* The context, on a kernel with storage queues. */
static int storage_get(void)
{
	int ret = qd_get();

	if (ret)
		return ret;
	return (qd__ctx.features & QD_FEAT_STORAGE) ? 0 : -EOPNOTSUPP;
}

int qd_open(int *qd_out, const char *path, int flags, mode_t mode)
{
	struct qd_sqe sqe = { .opcode = QD_OP_OPEN };
	struct qd_result qr;
	struct qd_ring *r;
	qd_token_t qt;
	int ret;

	if (!qd_out || !path)
		return -EINVAL;
	if (strnlen(path, PATH_MAX) == PATH_MAX)
		return -ENAMETOOLONG;
	if ((flags & ~QD_OPEN_FLAGS) || (flags & O_ACCMODE) == O_ACCMODE ||
	    (mode & ~(mode_t)07777))
		return -EINVAL;
	ret = storage_get();
	if (ret)
		return ret;
	ret = qd__ring_mine(&r);
	if (ret)
		return ret;
	sqe.addr = (uintptr_t)path;
	sqe.open_flags = (uint32_t)flags;
	sqe.open_mode = mode;
	ret = qd__submit_ext(&qt, &sqe, NULL, NULL, 0, NULL, 0);
	if (ret)
		return ret;
	/*
	 * An enter of our own, poller or not (it stops at an OPEN). Should
	 * it fail or take less than the OPEN, the wait's enter submits it.
	 */
	qd__ring_flush(r);
	ret = qd_wait(&qr, qt, NULL);
	if (ret)
		return ret;
	if (qr.ret < 0)
		return (int)qr.ret;
	qd__file_set((int)qr.ret, 1);
	*qd_out = (int)qr.ret;
	return 0;
}

int qd_pushat(qd_token_t *qt_out, int qd, const struct qd_sga *sga,
	      uint64_t off)
{
	struct qd_sqe sqe = { .opcode = QD_OP_PUSH, .qd = qd,
			      .op_flags = QD_PUSH_AT, .off = off };
	struct qd_seg segs[QD_SGA_MAX];
	int ret;

	if (!qt_out || off > INT64_MAX)
		return -EINVAL;
	ret = qd__sga_check(sga);
	if (ret)
		return ret;
	ret = storage_get();
	if (ret)
		return ret;
	ret = qd__alloc_translate(sga, segs);
	if (ret)
		return ret;
	sqe.nsegs = (uint16_t)sga->numsegs;
	return qd__submit_ext(qt_out, &sqe, sga, segs, 0, NULL, 0);
}

/*
 * A storage pop into buf, or into a buffer from the allocator (buf NULL),
 * at the read offset or (QD_POP_AT) at off.
 */
int qd__file_pop(qd_token_t *qt_out, int qd, const struct qd_sga *buf,
		 uint32_t op_flags, uint64_t off)
{
	struct qd_sqe sqe = { .opcode = QD_OP_POP, .qd = qd,
			      .op_flags = op_flags, .off = off };
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_sga own;
	int64_t size;
	int ret;

	if (buf) {
		ret = qd__sga_check(buf);
		if (ret)
			return ret;
		ret = qd__alloc_translate(buf, segs);
		if (ret)
			return ret;
		sqe.nsegs = (uint16_t)buf->numsegs;
		/* The caller's buffer: the result names it, libqd keeps none. */
		return qd__submit_ext(qt_out, &sqe, NULL, segs, 0, NULL, 0);
	}
	size = pop_size();
	if (size < 0)
		return (int)size;
	own = qd_sgaalloc((size_t)size);
	if (!own.numsegs)
		return -errno;
	ret = qd__alloc_translate(&own, segs);
	sqe.nsegs = 1;
	if (!ret)
		ret = qd__submit_ext(qt_out, &sqe, &own, segs, QD_SOCKBUF_OWN,
				     NULL, 0);
	if (ret)
		qd_sgafree(&own);
	return ret;
}

int qd_popat(qd_token_t *qt_out, int qd, const struct qd_sga *buf,
	     uint64_t off)
{
	int ret;

	if (!qt_out || off > INT64_MAX)
		return -EINVAL;
	ret = storage_get();
	if (ret)
		return ret;
	return qd__file_pop(qt_out, qd, buf, QD_POP_AT, off);
}

int qd_sync(qd_token_t *qt_out, int qd, unsigned int flags)
{
	struct qd_sqe sqe = { .opcode = QD_OP_SYNC, .qd = qd,
			      .op_flags = flags };
	int ret;

	if (!qt_out || (flags & ~(QD_SYNC_DATASYNC | QD_SYNC_FLUSH)))
		return -EINVAL;
	ret = storage_get();
	if (ret)
		return ret;
	return qd__submit_ext(qt_out, &sqe, NULL, NULL, 0, NULL, 0);
}
