// SPDX-License-Identifier: GPL-2.0
/*
 * qd-engine.so: an fio external ioengine that does its I/O through libqd's
 * storage queues (qd_open, qd_popat, qd_pushat, qd_sync), so that qd is
 * measured and verified with the tool users already trust:
 *
 *	fio --ioengine=external:tools/fio/qd-engine.so --filename=/dev/nvme0n1 ...
 *
 * Built against the headers of the installed fio's own source (Debian's
 * source package; tools/fio/Makefile). Only libqd's public API is used:
 *
 * - the job's I/O buffers are one anonymous mapping, registered with
 *   qd_memregister() (the iomem hooks), so every read and write moves data
 *   straight between the device or page cache and fio's own io_u buffers;
 * - queue() adds a pop or push at io_u->offset to the thread's ring (no
 *   system call), commit() hands the batch to the kernel with qd_submit(),
 *   getevents() takes results in completion order with qd_wait_next();
 * - DDIR_SYNC and DDIR_DATASYNC are qd_sync() operations; trims are not
 *   supported (EOPNOTSUPP).
 *
 * fio's process model is kept: each job process (or thread) has its own
 * libqd context (or ring), set up lazily in the job, never in fio's parent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "fio.h"

#include <qd.h>

struct qd_fio {
	/* results of one qd_wait_next(), and the io_us ->event() hands out */
	struct qd_result *res;
	struct io_u **events;
	unsigned int nr_events;

	/* io_us queued since the last commit (their issue time is set there) */
	struct io_u **queued;
	unsigned int nr_queued;

	/* in flight: token -> io_u, open addressing with linear probing */
	qd_token_t *tok;
	struct io_u **tok_io_u;
	unsigned int tok_mask;
	unsigned int tok_shift;

	/* the registered I/O buffers (iomem_alloc) */
	void *mem;
	size_t mem_len;
};

static unsigned int tok_slot(const struct qd_fio *d, qd_token_t qt)
{
	return (unsigned int)((qt * 0x9e3779b97f4a7c15ULL) >> d->tok_shift);
}

static void tok_add(struct qd_fio *d, qd_token_t qt, struct io_u *io_u)
{
	unsigned int i = tok_slot(d, qt);

	while (d->tok[i])
		i = (i + 1) & d->tok_mask;
	d->tok[i] = qt;
	d->tok_io_u[i] = io_u;
}

/* Removes qt, shifting back the entries probed past it (no tombstones). */
static struct io_u *tok_take(struct qd_fio *d, qd_token_t qt)
{
	unsigned int i = tok_slot(d, qt), j, home;
	struct io_u *io_u;

	while (d->tok[i] != qt) {
		if (!d->tok[i])
			return NULL;
		i = (i + 1) & d->tok_mask;
	}
	io_u = d->tok_io_u[i];
	for (j = (i + 1) & d->tok_mask; d->tok[j]; j = (j + 1) & d->tok_mask) {
		home = tok_slot(d, d->tok[j]);
		/* j's entry may move to i unless its home lies in (i, j] */
		if (((j - home) & d->tok_mask) >= ((j - i) & d->tok_mask)) {
			d->tok[i] = d->tok[j];
			d->tok_io_u[i] = d->tok_io_u[j];
			i = j;
		}
	}
	d->tok[i] = 0;
	return io_u;
}

static int qd_fio_init(struct thread_data *td)
{
	unsigned int depth = td->o.iodepth, slots = 16, bits = 4;
	struct qd_fio *d;
	int ret;

	ret = qd_init();
	if (ret) {
		log_err("qd: qd_init: %s%s\n", strerror(-ret),
			ret == -ENOENT ? " (is qd.ko loaded?)" : "");
		return 1;
	}
	while (slots < 2 * depth) {
		slots <<= 1;
		bits++;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	d->res = calloc(depth, sizeof(*d->res));
	d->events = calloc(depth, sizeof(*d->events));
	d->queued = calloc(depth, sizeof(*d->queued));
	d->tok = calloc(slots, sizeof(*d->tok));
	d->tok_io_u = calloc(slots, sizeof(*d->tok_io_u));
	d->tok_mask = slots - 1;
	d->tok_shift = 64 - bits;
	td->io_ops_data = d;
	if (!d->res || !d->events || !d->queued || !d->tok || !d->tok_io_u) {
		log_err("qd: out of memory\n");
		return 1;
	}
	return 0;
}

static void qd_fio_cleanup(struct thread_data *td)
{
	struct qd_fio *d = td->io_ops_data;

	if (!d)
		return;
	free(d->res);
	free(d->events);
	free(d->queued);
	free(d->tok);
	free(d->tok_io_u);
	free(d);
	td->io_ops_data = NULL;
}

/*
 * fio's io_u buffers: one page-aligned anonymous mapping, registered (and
 * so pinned) once; every push and pop names a buffer inside it.
 */
static int qd_fio_iomem_alloc(struct thread_data *td, size_t total)
{
	struct qd_fio *d = td->io_ops_data;
	size_t len = (total + page_size - 1) & ~((size_t)page_size - 1);
	void *p;
	int ret;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		td_verror(td, errno, "mmap");
		return 1;
	}
	ret = qd_memregister(p, len);
	if (ret) {
		log_err("qd: qd_memregister of %zu bytes: %s%s\n", len,
			strerror(-ret), ret == -ENOMEM ?
			" (RLIMIT_MEMLOCK? ulimit -l)" : "");
		munmap(p, len);
		return 1;
	}
	d->mem = p;
	d->mem_len = len;
	td->orig_buffer = p;
	return 0;
}

static void qd_fio_iomem_free(struct thread_data *td)
{
	struct qd_fio *d = td->io_ops_data;
	int ret;

	if (!d || !d->mem)
		return;
	ret = qd_memunregister(d->mem);
	if (ret)
		log_err("qd: qd_memunregister: %s\n", strerror(-ret));
	munmap(d->mem, d->mem_len);
	d->mem = NULL;
}

static int qd_fio_open_file(struct thread_data *td, struct fio_file *f)
{
	int flags = 0, qd, ret;

	if (td_trim(td)) {
		td_verror(td, EOPNOTSUPP, "qd: trim");
		return 1;
	}
	if (td->o.odirect)
		flags |= O_DIRECT;
	flags |= td->o.sync_io;
	if (td_write(td)) {
		flags |= read_only ? O_RDONLY : O_RDWR;
		if (f->filetype == FIO_TYPE_FILE && td->o.allow_create)
			flags |= O_CREAT;
	} else {
		flags |= O_RDONLY;
	}

	ret = qd_open(&qd, f->file_name, flags, 0644);
	if (ret) {
		char buf[FIO_VERROR_SIZE];

		snprintf(buf, sizeof(buf), "qd_open(%s)", f->file_name);
		td_verror(td, -ret, buf);
		return 1;
	}
	f->engine_pos = (uint64_t)qd;
	return 0;
}

static int qd_fio_close_file(struct thread_data *td, struct fio_file *f)
{
	int ret = qd_close((int)f->engine_pos);

	f->engine_pos = 0;
	if (ret) {
		td_verror(td, -ret, "qd_close");
		return 1;
	}
	return 0;
}

/*
 * fio asks for sizes in its parent process, before the jobs fork: answer
 * without libqd (a context made there would be the parent's), as fio's
 * own code does, but for block devices without its open_file detour.
 */
static int qd_fio_get_file_size(struct thread_data *td, struct fio_file *f)
{
	unsigned long long bytes;
	int fd;

	if (fio_file_size_known(f))
		return 0;
	if (f->filetype != FIO_TYPE_BLOCK)
		return generic_get_file_size(td, f);

	fd = open(f->file_name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		td_verror(td, errno, "open");
		return 1;
	}
	if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
		td_verror(td, errno, "BLKGETSIZE64");
		close(fd);
		return 1;
	}
	close(fd);
	if (!bytes) {
		log_err("%s: zero sized block device?\n", f->file_name);
		return 1;
	}
	f->real_file_size = bytes;
	fio_file_set_size_known(f);
	return 0;
}

/* invalidate=1: drop the cached pages of the range, as fio would. */
static int qd_fio_invalidate(struct thread_data *td, struct fio_file *f)
{
	int fd, ret;

	(void)td;
	fd = open(f->file_name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = posix_fadvise(fd, f->file_offset, f->io_size,
			    POSIX_FADV_DONTNEED);
	close(fd);
	return -ret;
}

static enum fio_q_status qd_fio_queue(struct thread_data *td,
				      struct io_u *io_u)
{
	struct qd_fio *d = td->io_ops_data;
	int qd = (int)io_u->file->engine_pos;
	struct qd_sga sga;
	qd_token_t qt;
	int ret;

	fio_ro_check(td, io_u);

	sga.numsegs = 1;
	sga.segs[0].buf = io_u->xfer_buf;
	sga.segs[0].len = (uint32_t)io_u->xfer_buflen;
	switch (io_u->ddir) {
	case DDIR_READ:
		ret = qd_popat(&qt, qd, &sga, io_u->offset);
		break;
	case DDIR_WRITE:
		ret = qd_pushat(&qt, qd, &sga, io_u->offset);
		break;
	case DDIR_SYNC:
		ret = qd_sync(&qt, qd, 0);
		break;
	case DDIR_DATASYNC:
		ret = qd_sync(&qt, qd, QD_SYNC_DATASYNC);
		break;
	default:
		ret = -EOPNOTSUPP;
		break;
	}
	if (ret) {
		io_u->error = -ret;
		td_verror(td, io_u->error, "xfer");
		return FIO_Q_COMPLETED;
	}
	tok_add(d, qt, io_u);
	d->queued[d->nr_queued++] = io_u;
	return FIO_Q_QUEUED;
}

/* The batch reaches the kernel now: that is its issue time. */
static void qd_fio_queued(struct thread_data *td, struct qd_fio *d)
{
	struct timespec now;
	unsigned int i;

	if (!fio_fill_issue_time(td))
		return;
	fio_gettime(&now, NULL);
	for (i = 0; i < d->nr_queued; i++) {
		d->queued[i]->issue_time = now;
		io_u_queued(td, d->queued[i]);
	}
	if (td->o.read_iolog_file)
		td->last_issue = now;
}

static int qd_fio_commit(struct thread_data *td)
{
	struct qd_fio *d = td->io_ops_data;
	int ret;

	if (!d->nr_queued)
		return 0;
	ret = qd_submit();
	if (ret) {
		td_verror(td, -ret, "qd_submit");
		return ret;
	}
	qd_fio_queued(td, d);
	io_u_mark_submit(td, d->nr_queued);
	d->nr_queued = 0;
	return 0;
}

static void qd_fio_complete(struct qd_fio *d, const struct qd_result *r)
{
	struct io_u *io_u = tok_take(d, r->qt);

	if (!io_u) {
		log_err("qd: a result for unknown token %llu\n",
			(unsigned long long)r->qt);
		return;
	}
	io_u->error = 0;
	if (r->ret < 0) {
		io_u->error = (unsigned int)-r->ret;
	} else if (ddir_rw(io_u->ddir) &&
		   (unsigned long long)r->ret != io_u->xfer_buflen) {
		if ((unsigned long long)r->ret > io_u->xfer_buflen)
			io_u->error = EIO;
		else
			io_u->resid = io_u->xfer_buflen - r->ret;
	}
	d->events[d->nr_events++] = io_u;
}

static int qd_fio_getevents(struct thread_data *td, unsigned int min,
			    unsigned int max, const struct timespec *t)
{
	static const struct timespec poll = { 0, 0 };
	struct qd_fio *d = td->io_ops_data;
	int n, i, ret;

	d->nr_events = 0;
	do {
		ret = qd_wait_next(d->res, (int)(max - d->nr_events), &n,
				   d->nr_events < min ? t : &poll);
		if (ret == -ETIMEDOUT)
			break;
		if (ret == -EINTR)
			continue;
		if (ret) {
			td_verror(td, -ret, "qd_wait_next");
			return ret;
		}
		for (i = 0; i < n; i++)
			qd_fio_complete(d, &d->res[i]);
	} while (d->nr_events < min);
	return (int)d->nr_events;
}

static struct io_u *qd_fio_event(struct thread_data *td, int event)
{
	struct qd_fio *d = td->io_ops_data;

	return d->events[event];
}

struct ioengine_ops ioengine = {
	.name			= "qd",
	.version		= FIO_IOOPS_VERSION,
	.flags			= FIO_NO_OFFLOAD | FIO_ASYNCIO_SETS_ISSUE_TIME,
	.init			= qd_fio_init,
	.cleanup		= qd_fio_cleanup,
	.queue			= qd_fio_queue,
	.commit			= qd_fio_commit,
	.getevents		= qd_fio_getevents,
	.event			= qd_fio_event,
	.open_file		= qd_fio_open_file,
	.close_file		= qd_fio_close_file,
	.get_file_size		= qd_fio_get_file_size,
	.invalidate		= qd_fio_invalidate,
	.iomem_alloc		= qd_fio_iomem_alloc,
	.iomem_free		= qd_fio_iomem_free,
};
