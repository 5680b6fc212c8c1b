// SPDX-License-Identifier: GPL-2.0
/*
 * Storage queues: O_DIRECT on a block device as bios built on the pinned
 * region pages. Each segment of the element is one bio whose bio_vecs are
 * the region's own (bio_iov_iter_get_pages() on ITER_BVEC shares the
 * array and takes no page reference: the region's pin holds the pages
 * until the op, which holds the region, is done). The device DMAs into and
 * out of the user's pages: no copy, no page cache, no worker. The block
 * layer splits a bio past the device's limits.
 *
 * Contexts: qd_file_bio_rw() and qd_file_bio_flush() run in the submitter
 * (process context, may sleep in bio_alloc()); bi_end_io in any context
 * (hardirq for most drivers, the submitter for null_blk's irqmode=0) and
 * posts the op's completion there.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>

#include "file.h"
#include "op.h"
#include "stats.h"

/* One bio of op is done; the last one (or the submitter's bias) posts it. */
static void qd_file_bio_put(struct qd_op *op)
{
	if (atomic_dec_and_test(&op->file.pending))
		qd_file_rw_done(op, op->file.err ?: (long)op->file.max);
}

static void qd_file_bio_end_io(struct bio *bio)
{
	struct qd_op *op = bio->bi_private;

	if (bio->bi_status)
		cmpxchg(&op->file.err, 0, blk_status_to_errno(bio->bi_status));
	bio_put(bio);
	qd_file_bio_put(op);
}

static blk_opf_t qd_file_bio_opf(const struct qd_file *f, bool write)
{
	blk_opf_t opf = REQ_OP_WRITE | REQ_SYNC | REQ_IDLE;

	if (!write)
		return REQ_OP_READ;
	/* As block/fops.c: FUA rather than a flush after the write. */
	if (f->file->f_flags & O_DSYNC || IS_SYNC(file_inode(f->file)))
		opf |= REQ_FUA;
	return opf;
}

/*
 * op's read or write (aligned, checked by file_rw.c) at op->file.pos. Owns
 * the op: always returns 0, the result is posted from the last bio's
 * end_io. Reads at the end of the device are short (0 past it), writes
 * short, -ENOSPC past it, as read(2) and write(2) on the device are.
 */
int qd_file_bio_rw(struct qd_file *f, struct qd_op *op)
{
	const struct qd_kelem *elem = op->file.write ? op->elem : op->dst;
	struct block_device *bdev = f->bdev;
	loff_t size = bdev_nr_bytes(bdev), pos = op->file.pos;
	bool write = op->file.write;
	u64 left;
	u32 i;

	if (write && bdev_read_only(bdev)) {
		qd_file_rw_done(op, -EPERM);
		return 0;
	}
	if (pos >= size) {
		qd_file_rw_done(op, write ? -ENOSPC : 0);
		return 0;
	}
	op->file.max = min_t(u64, op->file.max, size - pos);
	left = op->file.max;
	atomic64_inc(&f->bios);
	qd_stat_inc(file_bios);
	atomic_set(&op->file.pending, 1);
	for (i = 0; i < elem->nsegs && left; i++) {
		u32 len = min_t(u64, elem->segs[i].len, left);
		struct iov_iter iter;
		struct bio *bio;

		qd_file_seg_iter(elem, i, write ? WRITE : READ, &iter);
		iov_iter_truncate(&iter, len);
		bio = bio_alloc(bdev, 0, qd_file_bio_opf(f, write), GFP_KERNEL);
		bio->bi_iter.bi_sector = pos >> SECTOR_SHIFT;
		bio->bi_end_io = qd_file_bio_end_io;
		bio->bi_private = op;
		/* ITER_BVEC: shares the array, cannot fail. */
		bio_iov_iter_get_pages(bio, &iter);
		atomic_inc(&op->file.pending);
		submit_bio(bio);
		pos += len;
		left -= len;
	}
	qd_file_bio_put(op);
	return 0;
}

static void qd_file_flush_end_io(struct bio *bio)
{
	struct qd_op *op = bio->bi_private;
	int err = blk_status_to_errno(bio->bi_status);

	bio_put(bio);
	qd_op_complete(op, err);
}

/* QD_SYNC_FLUSH: an empty flush bio. Owns the op. */
int qd_file_bio_flush(struct qd_file *f, struct qd_op *op)
{
	struct bio *bio;

	bio = bio_alloc(f->bdev, 0, REQ_OP_WRITE | REQ_PREFLUSH, GFP_KERNEL);
	bio->bi_end_io = qd_file_flush_end_io;
	bio->bi_private = op;
	submit_bio(bio);
	return 0;
}
