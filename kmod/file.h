/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_FILE_H
#define _QD_FILE_H

#include <linux/atomic.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include "object.h"

struct block_device;
struct file;
struct mem_cgroup;
struct qd_ctx;
struct qd_op;
struct qd_kelem;
struct iov_iter;

/*
 * A storage queue: a regular file or a block device opened by QD_OP_OPEN
 * (fileop.c). Pushes write, pops read, at the queue's offsets or at the
 * op's (QD_PUSH_AT/QD_POP_AT). Three paths (file_rw.c, file_bio.c):
 *  - bio:    O_DIRECT on a block device with no page cache: bios built on
 *            the region's pages, completed from bi_end_io (any context);
 *  - direct: O_DIRECT on a file (or a block device with cached pages):
 *            the kiocb's ->read_iter/->write_iter, completed from
 *            ki_complete (any context), tried with IOCB_NOWAIT in the
 *            submitter and moved to the worker on -EAGAIN;
 *  - buffered: the page cache, one copy: reads tried with IOCB_NOWAIT in
 *            the submitter, writes and misses in the worker (qd_file_wq)
 *            with the owner's credentials and memory cgroup.
 *
 * lock (irq-safe: completions take it) guards rpos, wpos and closed. The
 * object lives while an op holds a reference: ops in flight keep the file
 * open after QD_IOC_CLOSE, and complete with their result.
 */
struct qd_file {
	struct qd_object obj;
	struct file *file;
	struct block_device *bdev;	/* a block device, else NULL */
	struct mem_cgroup *memcg;	/* the opener's: the worker charges it */
	const struct cred *cred;	/* the opener's, for the worker */
	u32 align;			/* O_DIRECT: logical block size, else 1 */
	bool direct;			/* O_DIRECT */
	bool closed;
	spinlock_t lock;			/* rpos, wpos, closed */
	loff_t rpos;			/* next pop without an offset */
	loff_t wpos;			/* next push without an offset */
	atomic_t reads;			/* in flight */
	atomic_t writes;
	atomic64_t bytes_read;
	atomic64_t bytes_written;
	atomic64_t errors;		/* operations that failed */
	atomic64_t punted;		/* operations the worker ran */
	atomic64_t bios;		/* operations sent as bios */
};

static inline struct qd_file *to_qd_file(struct qd_object *obj)
{
	return container_of(obj, struct qd_file, obj);
}

int qd_file_open(struct qd_ctx *ctx, const char *name, int flags,
		 umode_t mode);
int qd_file_rw(struct qd_file *f, struct qd_op *op, bool write);
void qd_file_seg_iter(const struct qd_kelem *elem, u32 i, unsigned int dir,
		      struct iov_iter *iter);
int qd_file_bio_rw(struct qd_file *f, struct qd_op *op);
int qd_file_bio_flush(struct qd_file *f, struct qd_op *op);
void qd_file_rw_done(struct qd_op *op, long res);
int qd_file_sync(struct qd_file *f, struct qd_op *op);

int qd_file_rw_init(void);
void qd_file_rw_exit(void);
int qd_file_init(void);
void qd_file_exit(void);

#endif /* _QD_FILE_H */
