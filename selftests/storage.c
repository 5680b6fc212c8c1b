// SPDX-License-Identifier: GPL-2.0
/*
 * storage: files and block devices as queues (QD_OP_OPEN, PUSH/POP at the
 * queue's offsets or QD_PUSH_AT/QD_POP_AT, QD_OP_SYNC), through the raw
 * ABI, on devices each test makes and removes (qd_storage.h): memory-backed
 * null_blk (512 B and 4 KiB blocks, delayed completions), device-mapper
 * error, linear and flakey targets, ext4 on null_blk, tmpfs; and the QEMU
 * NVMe namespace when scripts/vm gives one ($QD_NVME).
 *
 * Data integrity (checksummed patterns through the direct and buffered
 * paths, across close and reopen, 128 operations in flight at random
 * aligned offsets each matched to its user_data), the offsets, every error
 * as a completion (EIO, ENOSPC, EFBIG, a device removed with I/O in
 * flight), bad input, open(2)'s semantics (flags, umask, credentials, cwd,
 * chroot), close and SIGKILL with I/O in flight (nothing lost, nothing
 * leaked), SYNC, admission at max_inflight, debugfs and /proc/qd. A few
 * through libqd (qd_open, qd_pushat, qd_popat, qd_sync, qd_close) on the
 * same devices.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <qd.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "qd_child.h"
#include "qd_storage.h"
#include "harness.h"

#define KB		1024LL
#define MB		(1024 * KB)
#define RBUF		(4 * MB)	/* the registered buffer */
#define WAIT_NS		(10000 * QD_RAW_MS)

/* --- patterns --------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The bytes of generation gen at file offset pos (8-byte aligned). */
static void pat_fill(void *p, size_t len, uint64_t gen, uint64_t pos)
{
	uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = mix64(gen * 0x100000001b3ULL ^ (pos / 8 + i));
}

/* Offset of the first byte that differs from the pattern, or -1. */
static long long pat_check(const void *p, size_t len, uint64_t gen, uint64_t pos)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != mix64(gen * 0x100000001b3ULL ^ (pos / 8 + i)))
			return (long long)(i * 8);
	return -1;
}

/* --- the fixture -------------------------------------------------------------- */

FIXTURE(st) {
	struct qd_raw r;
	unsigned char *buf;	/* RBUF bytes registered as region */
	unsigned int region;
	struct qd_nullb nb[3];
	struct qd_dm dm[2];
	char dir[2][PATH_MAX];	/* mounts */
	long long files0;	/* /proc/qd files before the test */
};

static long long proc_key(const char *key)
{
	char v[64];

	return qd_kv_str(QD_PROC_PATH, key, v, sizeof(v)) ? -1 : strtoll(v, NULL, 10);
}

/* Wait up to ms for /proc/qd's `files` to come down to n: 0 or -ETIMEDOUT. */
static int wait_files(long long n, int ms)
{
	int i;

	for (i = 0; i <= ms / 10; i++) {
		if (proc_key("files") <= n)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

FIXTURE_SETUP(st)
{
	qd_st_sweep();
	self->files0 = proc_key("files");
	ASSERT_EQ(0, qd_raw_init(&self->r, 256, 512));
	ASSERT_NE(0u, self->r.p.features & QD_FEAT_STORAGE);
	self->buf = qd_raw_pages(RBUF);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, RBUF, &self->region));
}

FIXTURE_TEARDOWN(st)
{
	int i;

	/* The context's files go first: they hold the devices and mounts. */
	qd_raw_exit(&self->r);
	wait_files(self->files0, 5000);
	for (i = 0; i < 2; i++)
		qd_dm_remove(&self->dm[i]);
	for (i = 0; i < 2; i++)
		qd_st_umount(self->dir[i]);
	for (i = 0; i < 3; i++)
		qd_nullb_remove(&self->nb[i]);
}

/* --- raw helpers ---------------------------------------------------------------- */

/* Queue s, submit, reap its CQE (10 s): 0 or -errno. */
static int st_do(struct qd_raw *r, const struct qd_sqe *s, struct qd_cqe *cqe,
		 struct qd_elem *elem)
{
	int ret = qd_raw_queue_sqe(r, s);

	if (ret) {
		fprintf(stderr, "# st_do: SQ full (%u pending)\n", qd_raw_sq_pending(r));
		return ret;
	}
	ret = qd_raw_submit(r);
	if (ret != 1) {
		fprintf(stderr, "# st_do: submit %d\n", ret);
		return ret < 0 ? ret : -EIO;
	}
	ret = qd_raw_wait_cqe(r, cqe, elem, WAIT_NS);
	if (ret)
		fprintf(stderr, "# st_do: wait %d\n", ret);
	if (!ret && cqe->user_data != s->user_data) {
		fprintf(stderr, "# st_do: CQE for %llu, not %llu\n",
			(unsigned long long)cqe->user_data,
			(unsigned long long)s->user_data);
		return -EPROTO;
	}
	return ret;
}

static struct qd_sqe open_sqe(const char *path, int flags, unsigned int mode)
{
	struct qd_sqe s = { .opcode = QD_OP_OPEN, .user_data = 0x09e7,
			    .addr = (uintptr_t)path, .open_flags = (__u32)flags,
			    .open_mode = mode };

	return s;
}

/* QD_OP_OPEN: the new qd or -errno. */
static int st_open(struct qd_raw *r, const char *path, int flags, unsigned int mode)
{
	struct qd_sqe s = open_sqe(path, flags, mode);
	struct qd_cqe cqe;
	int ret = st_do(r, &s, &cqe, NULL);

	return ret ? ret : (int)cqe.res;
}

/* A push or pop of segs, at off (at) or the queue's offset. */
static struct qd_sqe rw_sqe(__u8 opcode, int qd, const struct qd_seg *segs,
			    unsigned int n, int at, __u64 off, __u64 user_data)
{
	struct qd_sqe s = { .opcode = opcode, .qd = qd, .nsegs = (__u16)n,
			    .addr = (uintptr_t)segs, .user_data = user_data };

	if (at) {
		s.op_flags = QD_PUSH_AT;
		s.off = off;
	}
	return s;
}

/*
 * One push or pop of len bytes at buffer offset boff: res or -errno. A
 * pop's CQE must carry its buffer, trimmed to res (QD_CQE_F_COPIED):
 * else -EPROTO.
 */
static long long st_rw_at(struct qd_raw *r, unsigned int region, __u8 opcode,
			  int qd, size_t boff, size_t len, int at, __u64 off)
{
	struct qd_seg seg = qd_seg((__u16)region, boff, (__u32)len);
	struct qd_sqe s = rw_sqe(opcode, qd, &seg, 1, at, off, 0x5e);
	struct qd_elem elem;
	struct qd_cqe cqe;
	int ret = st_do(r, &s, &cqe, &elem);

	if (ret)
		return ret;
	if (opcode == QD_OP_POP && cqe.res > 0 &&
	    (!(cqe.flags & QD_CQE_F_COPIED) || !(cqe.flags & QD_CQE_F_ELEM) ||
	     cqe.nsegs != 1 || elem.segs[0].offset != boff ||
	     elem.segs[0].len != cqe.res))
		return -EPROTO;
	return cqe.res;
}

/* at < 0: at the queue's offset, else at that offset */
static long long st_rw(struct qd_raw *r, unsigned int region, __u8 opcode,
		       int qd, size_t boff, size_t len, long long at)
{
	return st_rw_at(r, region, opcode, qd, boff, len, at >= 0, at >= 0 ? at : 0);
}

#define PUSH(qd, boff, len)	st_rw(&self->r, self->region, QD_OP_PUSH, qd, boff, len, -1)
#define POP(qd, boff, len)	st_rw(&self->r, self->region, QD_OP_POP, qd, boff, len, -1)
#define PUSHAT(qd, boff, len, off) \
	st_rw_at(&self->r, self->region, QD_OP_PUSH, qd, boff, len, 1, off)
#define POPAT(qd, boff, len, off) \
	st_rw_at(&self->r, self->region, QD_OP_POP, qd, boff, len, 1, off)

static long long st_sync(struct qd_raw *r, int qd, unsigned int flags)
{
	struct qd_sqe s = { .opcode = QD_OP_SYNC, .qd = qd, .op_flags = flags,
			    .user_data = 0x5c };
	struct qd_cqe cqe;
	int ret = st_do(r, &s, &cqe, NULL);

	return ret ? ret : cqe.res;
}

static int st_close(struct qd_raw *r, int qd)
{
	return qd_raw_close(r->fd, qd);
}

/* pread(2) of a file or device by path (checks qd's results): bytes or -errno. */
static ssize_t plain_pread(const char *path, void *p, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, p, len, off);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

static ssize_t plain_pwrite(const char *path, const void *p, size_t len, off_t off)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pwrite(fd, p, len, off);
	if (n < 0)
		n = -errno;
	fsync(fd);
	close(fd);
	return n;
}

/* Drop the page cache of a block device (its buffered reads go to the device). */
static void blk_flushbufs(const char *dev)
{
	qd_sh("blockdev --flushbufs %s >&2", dev);
}

/* The debugfs `queues` row of qd in this process's (only) context, or "". */
static int queue_row(int qd, char *row, size_t len)
{
	char dirs[4][256], path[300], line[1024];
	int n, ret = -ENOENT;
	FILE *f;

	row[0] = 0;
	if (qd_debugfs_ready())
		return -ENOENT;
	n = qd_debugfs_ctx_dirs(getpid(), dirs, 4);
	if (n != 1)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/queues", dirs[0]);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *end;

		if (strtol(line, &end, 10) == qd && end != line && *end == ' ') {
			snprintf(row, len, "%s", line);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* The value of key=VALUE in a debugfs row, or -1. */
static long long row_val(const char *row, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), " %s=", key);
	p = strstr(row, k);
	return p ? strtoll(p + strlen(k), NULL, 0) : -1;
}

/* Column n (0 = qd) of a debugfs row, or -1. */
static long long row_col(const char *row, int n)
{
	const char *p = row;
	int i;

	for (i = 0; i < n && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoll(p, NULL, 10) : -1;
}

static const struct qd_nullb_conf nb_mem512 = { .size_mb = 16, .bs = 512 };
static const struct qd_nullb_conf nb_mem4k = { .size_mb = 16, .bs = 4096 };

/* A memory-backed null_blk with ext4 mounted at self->dir[i]. */
#define EXT4_ON_NULLB(i) EXT4_ON(i, i)
#define EXT4_ON(n, d) do {						\
		static const struct qd_nullb_conf c = { .size_mb = 64, .bs = 512 }; \
		ASSERT_EQ(0, qd_nullb_create(&self->nb[n], "fs", &c));	\
		ASSERT_EQ(0, qd_ext4_mount(self->nb[n].dev, self->dir[d])); \
	} while (0)

static void path_in(char *out, const char *dir, const char *name)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		out[0] = 0;
}

/*
 * In a forked child: let go of the parent's context. Its rings are not
 * mapped in the child (qd mappings are not inherited), so nothing to unmap:
 * munmap() at their addresses would hit the child's own new mappings.
 */
static void child_forget(struct qd_raw *pr)
{
	close(pr->fd);
	pr->fd = -1;
}

/* Submit n pops of len at 0, len, ... (user_data i) on qd: 0 or -errno. */
static int submit_pops(struct qd_raw *r, unsigned int region, int qd,
		       unsigned int n, size_t len, struct qd_seg *segs)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		struct qd_sqe s;

		segs[i] = qd_seg((__u16)region, i * len, (__u32)len);
		s = rw_sqe(QD_OP_POP, qd, &segs[i], 1, 1, i * len, i);
		ret = qd_raw_queue_sqe(r, &s);
		if (ret)
			return ret;
	}
	ret = qd_raw_submit(r);
	return ret == (int)n ? 0 : ret < 0 ? ret : -EIO;
}

/* Reap n CQEs for user_data 0..n-1, each once, results in res[]. */
static int reap(struct qd_raw *r, unsigned int n, long long *res)
{
	unsigned char seen[1024] = { 0 };
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		struct qd_cqe cqe;

		ret = qd_raw_wait_cqe(r, &cqe, NULL, WAIT_NS);
		if (ret)
			return ret;
		if (cqe.user_data >= n || seen[cqe.user_data]++)
			return -EPROTO;
		res[cqe.user_data] = cqe.res;
	}
	return 0;
}

/* A null_blk whose every request takes ms to complete (a timer). */
static int delayed_nullb(struct qd_nullb *nb, const char *tag, unsigned int ms)
{
	struct qd_nullb_conf c = { .size_mb = 16, .bs = 512, .irqmode = 2,
				   .completion_nsec = ms * 1000000UL,
				   .queue_depth = 256 };

	return qd_nullb_create(nb, tag, &c);
}

/* --- data integrity ------------------------------------------------------------ */

/*
 * Write [0, size) through qd (pushes of chunk bytes at the queue's write
 * offset), generation gen; 0 or the failing result.
 */
static long long fill_seq(FIXTURE_DATA(st) *self, int qd, size_t size,
			  size_t chunk, uint64_t gen)
{
	size_t pos;
	long long n;

	for (pos = 0; pos < size; pos += chunk) {
		pat_fill(self->buf, chunk, gen, pos);
		n = PUSH(qd, 0, chunk);
		if (n != (long long)chunk)
			return n < 0 ? n : -EIO;
	}
	return 0;
}

/*
 * Read [0, size) through qd at the queue's read offset and compare with
 * generation gen (per 4 KiB block, gens[] if non-NULL): -1 if intact,
 * else the first bad offset, or a negative result below -1.
 */
static long long check_seq(FIXTURE_DATA(st) *self, int qd, size_t size,
			   size_t chunk, uint64_t gen, const uint64_t *gens)
{
	size_t pos, b;
	long long n, bad;

	for (pos = 0; pos < size; pos += chunk) {
		memset(self->buf, 0xa5, chunk);
		n = POP(qd, 0, chunk);
		if (n != (long long)chunk) {
			fprintf(stderr, "# check_seq: pop of %zu at %zu: %lld\n", chunk, pos, n);
			return n < 0 ? n - 1 : -EIO - 1;
		}
		for (b = 0; b < chunk; b += 4096) {
			uint64_t g = gens ? gens[(pos + b) / 4096] : gen;

			bad = pat_check(self->buf + b, 4096, g, pos + b);
			if (bad >= 0)
				return pos + b + bad;
		}
	}
	return -1;
}

TEST_F(st, direct_pushes_on_a_block_device_read_back_through_both_paths)
{
	long long bios = proc_key("file_bios");
	int qd, qb;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	EXPECT_EQ(0, fill_seq(self, qd, 4 * MB, 256 * KB, 1));
	EXPECT_LT(bios, proc_key("file_bios"));
	/* read back direct, then buffered from a second qd */
	EXPECT_EQ(-1, check_seq(self, qd, 4 * MB, 64 * KB, 1, NULL));
	qb = st_open(&self->r, self->nb[0].dev, O_RDONLY, 0);
	ASSERT_LE(0, qb);
	EXPECT_EQ(-1, check_seq(self, qb, 4 * MB, 64 * KB, 1, NULL));
	/* and with read(2) */
	ASSERT_EQ(64 * KB, plain_pread(self->nb[0].dev, self->buf + MB, 64 * KB, MB));
	EXPECT_EQ(-1, pat_check(self->buf + MB, 64 * KB, 1, MB));
	EXPECT_EQ(0, st_close(&self->r, qd));
	EXPECT_EQ(0, st_close(&self->r, qb));
}

TEST_F(st, buffered_pushes_on_a_block_device_read_back_direct_after_sync)
{
	int qd, qb;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem4k));
	qb = st_open(&self->r, self->nb[0].dev, O_WRONLY, 0);
	ASSERT_LE(0, qb);
	EXPECT_EQ(0, fill_seq(self, qb, 2 * MB, 128 * KB, 7));
	EXPECT_EQ(0, st_sync(&self->r, qb, 0));
	EXPECT_EQ(0, st_close(&self->r, qb));
	blk_flushbufs(self->nb[0].dev);
	qd = st_open(&self->r, self->nb[0].dev, O_RDONLY | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	EXPECT_EQ(-1, check_seq(self, qd, 2 * MB, 128 * KB, 7, NULL));
}

TEST_F(st, direct_push_to_a_cached_block_device_is_seen_by_buffered_pops)
{
	int qd, qb;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	qb = st_open(&self->r, self->nb[0].dev, O_RDONLY, 0);
	qd = st_open(&self->r, self->nb[0].dev, O_WRONLY | O_DIRECT, 0);
	ASSERT_LE(0, qb);
	ASSERT_LE(0, qd);
	/* the buffered pop caches the first 64 KiB (zeroes) */
	ASSERT_EQ(64 * KB, POPAT(qb, 0, 64 * KB, 0));
	pat_fill(self->buf, 64 * KB, 3, 0);
	ASSERT_EQ(64 * KB, PUSHAT(qd, 0, 64 * KB, 0));
	memset(self->buf, 0, 64 * KB);
	ASSERT_EQ(64 * KB, POPAT(qb, 0, 64 * KB, 0));
	EXPECT_EQ(-1, pat_check(self->buf, 64 * KB, 3, 0));
}

TEST_F(st, file_bytes_survive_close_and_reopen_across_paths)
{
	char f[PATH_MAX];
	int qd;

	EXT4_ON_NULLB(0);
	path_in(f, self->dir[0], "data");
	/* direct writes, read back buffered after a reopen */
	qd = st_open(&self->r, f, O_RDWR | O_CREAT | O_DIRECT, 0600);
	ASSERT_LE(0, qd);
	EXPECT_EQ(0, fill_seq(self, qd, 3 * MB, 192 * KB, 11));
	EXPECT_EQ(0, st_sync(&self->r, qd, 0));
	EXPECT_EQ(0, st_close(&self->r, qd));
	qd = st_open(&self->r, f, O_RDONLY, 0);
	ASSERT_LE(0, qd);
	EXPECT_EQ(-1, check_seq(self, qd, 3 * MB, 96 * KB, 11, NULL));
	EXPECT_EQ(0, st_close(&self->r, qd));
	/* buffered overwrite, read back direct */
	qd = st_open(&self->r, f, O_WRONLY, 0);
	ASSERT_LE(0, qd);
	EXPECT_EQ(0, fill_seq(self, qd, 3 * MB, 64 * KB, 12));
	EXPECT_EQ(0, st_sync(&self->r, qd, QD_SYNC_DATASYNC));
	EXPECT_EQ(0, st_close(&self->r, qd));
	qd = st_open(&self->r, f, O_RDONLY | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	EXPECT_EQ(-1, check_seq(self, qd, 3 * MB, 512 * KB, 12, NULL));
	/* and read(2) agrees */
	ASSERT_EQ(4096, plain_pread(f, self->buf + 2 * MB, 4096, 5 * 4096));
	EXPECT_EQ(-1, pat_check(self->buf + 2 * MB, 4096, 12, 5 * 4096));
}

TEST_F(st, multi_segment_elements_write_and_read_in_segment_order)
{
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_elem elem;
	struct qd_cqe cqe;
	struct qd_sqe s;
	char f[PATH_MAX];
	int qd, qf, i;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	EXT4_ON_NULLB(1);
	path_in(f, self->dir[1], "segs");
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	qf = st_open(&self->r, f, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, qd);
	ASSERT_LE(0, qf);
	/* 8 segments, scattered and out of order in the buffer: 36 KiB */
	for (i = 0; i < QD_SGA_MAX; i++)
		segs[i] = qd_seg((__u16)self->region, (QD_SGA_MAX - i) * 64 * KB + 512 * i,
				 (i + 1) * 1024);
	for (i = 0; i < 2; i++) {
		int q = i ? qf : qd;
		uint64_t pos = 0;
		int j;

		for (j = 0; j < QD_SGA_MAX; j++) {
			pat_fill(self->buf + segs[j].offset, segs[j].len, 21, 8192 + pos);
			pos += segs[j].len;
		}
		s = rw_sqe(QD_OP_PUSH, q, segs, QD_SGA_MAX, 1, 8192, 1);
		ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
		EXPECT_EQ((long long)pos, cqe.res);
		/* one contiguous read sees them in segment order */
		ASSERT_EQ((long long)pos, st_rw(&self->r, self->region, QD_OP_POP, q,
						2 * MB, pos, 8192));
		EXPECT_EQ(-1, pat_check(self->buf + 2 * MB, pos, 21, 8192));
		/* and a scattered pop fills the segments in order */
		memset(self->buf, 0, RBUF);
		s = rw_sqe(QD_OP_POP, q, segs, QD_SGA_MAX, 1, 8192, 2);
		ASSERT_EQ(0, st_do(&self->r, &s, &cqe, &elem));
		EXPECT_EQ((long long)pos, cqe.res);
		EXPECT_EQ(QD_SGA_MAX, cqe.nsegs);
		pos = 0;
		for (j = 0; j < QD_SGA_MAX; j++) {
			EXPECT_TRUE(qd_seg_eq(&segs[j], &elem.segs[j]));
			EXPECT_EQ(-1, pat_check(self->buf + segs[j].offset, segs[j].len,
						21, 8192 + pos));
			pos += segs[j].len;
		}
	}
}

/*
 * 128 operations in flight on qd (size bytes, 4 KiB blocks): pushes and
 * pops of 1-4 blocks in one or two segments at random offsets, never two
 * at once on a block; each CQE matched to its op by user_data, every pop's
 * bytes checked against the generation its blocks had, every push's
 * recorded. Then the whole file read back in order. Returns the number of
 * CQEs that came out of submission order (a diagnostic), or -1 after a
 * failed expectation.
 */
#define MIX_DEPTH	128
#define MIX_OPS		1500
#define MIX_SLOT	(16 * KB)

struct mix_op {
	struct qd_seg	segs[2];	/* read by the kernel at submission */
	int		push;
	unsigned int	block, nblocks, nsegs;
	uint64_t	gen;
	unsigned long long seq;
};

static int mix_run(struct __test_metadata *_metadata, FIXTURE_DATA(st) *self,
		   int qd, size_t size, uint64_t *gens, unsigned int seed)
{
	unsigned int nblk = size / 4096, slots[MIX_DEPTH], nfree = MIX_DEPTH;
	struct mix_op ops[MIX_DEPTH];
	unsigned long long issued = 0, done = 0, last_done = 0, ooo = 0;
	unsigned char *busy = calloc(nblk, 1);
	uint64_t genctr = 1000;
	unsigned int i;

	ASSERT_NE(NULL, busy);
	srandom(seed);
	for (i = 0; i < MIX_DEPTH; i++)
		slots[i] = i;
	while (done < MIX_OPS) {
		struct qd_cqe cqe;
		struct qd_elem elem;
		int queued = 0;

		while (nfree && issued < MIX_OPS) {
			unsigned int slot = slots[nfree - 1], k = 1 + random() % 4;
			unsigned int b = 0, tries, j;
			struct mix_op *o = &ops[slot];
			struct qd_seg *segs = o->segs;
			unsigned char *p = self->buf + slot * MIX_SLOT;
			struct qd_sqe s;

			for (tries = 0; tries < 20; tries++) {
				b = random() % (nblk - k + 1);
				for (j = 0; j < k && !busy[b + j]; j++)
					;
				if (j == k)
					break;
			}
			if (tries == 20)
				break;
			nfree--;
			memset(busy + b, 1, k);
			*o = (struct mix_op){ .push = random() & 1, .block = b,
					      .nblocks = k, .seq = issued };
			o->nsegs = k > 1 && random() % 2 ? 2 : 1;
			if (o->push) {
				o->gen = ++genctr;
				for (j = 0; j < k; j++)
					pat_fill(p + j * 4096, 4096, o->gen, (b + j) * 4096ULL);
			} else {
				memset(p, 0x5a, k * 4096);
			}
			if (o->nsegs == 1) {
				segs[0] = qd_seg((__u16)self->region, slot * MIX_SLOT, k * 4096);
			} else {
				segs[0] = qd_seg((__u16)self->region, slot * MIX_SLOT, 4096);
				segs[1] = qd_seg((__u16)self->region, slot * MIX_SLOT + 4096,
						 (k - 1) * 4096);
			}
			s = rw_sqe(o->push ? QD_OP_PUSH : QD_OP_POP, qd, segs, o->nsegs,
				   1, b * 4096ULL, (issued << 8) | slot);
			ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
			issued++;
			queued++;
			if (qd_raw_sq_pending(&self->r) == self->r.sq_entries)
				break;
		}
		if (queued)
			ASSERT_EQ(queued, qd_raw_submit(&self->r));
		ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, &elem, WAIT_NS));
		do {
			unsigned int slot = cqe.user_data & 0xff, j;
			struct mix_op *o = &ops[slot];
			unsigned char *p = self->buf + slot * MIX_SLOT;

			ASSERT_GT(MIX_DEPTH, (int)slot);
			ASSERT_EQ(o->seq, cqe.user_data >> 8);
			ASSERT_EQ(o->push ? QD_OP_PUSH : QD_OP_POP, cqe.opcode);
			ASSERT_EQ(qd, cqe.qd);
			ASSERT_EQ(o->nblocks * 4096LL, cqe.res)
				TH_LOG("%s of blocks %u+%u", o->push ? "push" : "pop",
				       o->block, o->nblocks);
			if (o->seq < last_done)
				ooo++;
			last_done = o->seq;
			for (j = 0; j < o->nblocks; j++) {
				if (o->push) {
					gens[o->block + j] = o->gen;
					continue;
				}
				ASSERT_EQ(-1, pat_check(p + j * 4096, 4096, gens[o->block + j],
							(o->block + j) * 4096ULL))
					TH_LOG("block %u (gen %llu) read by op %llu",
					       o->block + j,
					       (unsigned long long)gens[o->block + j], o->seq);
			}
			if (!o->push) {
				ASSERT_EQ(o->nsegs, cqe.nsegs);
				ASSERT_NE(0u, cqe.flags & QD_CQE_F_COPIED);
			}
			memset(busy + o->block, 0, o->nblocks);
			slots[nfree++] = slot;
			done++;
		} while (qd_raw_peek_cqe(&self->r, &cqe, &elem));
	}
	free(busy);
	return (int)ooo;
}

/* The QEMU NVMe namespace scripts/vm gives the guest ($QD_NVME), or NULL. */
static const char *nvme_dev(void)
{
	const char *dev = getenv("QD_NVME");
	struct stat st;

	if (!dev || !*dev || stat(dev, &st) || !S_ISBLK(st.st_mode))
		return NULL;
	return dev;
}

enum { ON_NULLB, ON_EXT4, ON_NVME };

/* The mixed test on a null_blk device, an ext4 file or NVMe, direct or buffered. */
static void mix_test(struct __test_metadata *_metadata, FIXTURE_DATA(st) *self,
		     int on, int direct)
{
	const size_t size = 8 * MB;
	uint64_t gens[8 * MB / 4096];
	char f[PATH_MAX];
	const char *path;
	int qd, ooo, flags = direct ? O_DIRECT : 0;
	size_t i;

	if (on == ON_EXT4) {
		EXT4_ON_NULLB(0);
		path_in(f, self->dir[0], "mix");
		path = f;
	} else if (on == ON_NVME) {
		path = nvme_dev();
		if (!path)
			SKIP(return, "no NVMe namespace ($QD_NVME)");
	} else {
		ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &(struct qd_nullb_conf){
			.size_mb = 8, .bs = 512, .queue_depth = 256 }));
		path = self->nb[0].dev;
	}
	qd = st_open(&self->r, path, O_RDWR | (on == ON_EXT4 ? O_CREAT : 0) | flags, 0600);
	ASSERT_LE(0, qd);
	ASSERT_EQ(0, fill_seq(self, qd, size, 256 * KB, 1));
	for (i = 0; i < size / 4096; i++)
		gens[i] = 1;
	ooo = mix_run(_metadata, self, qd, size, gens, 1234 + on * 2 + direct);
	ASSERT_LE(0, ooo);
	TH_LOG("%d of %d completions out of submission order", ooo, MIX_OPS);
	/* everything again, in order, after a close and a reopen the other way */
	ASSERT_EQ(0, st_sync(&self->r, qd, 0));
	ASSERT_EQ(0, st_close(&self->r, qd));
	if (on != ON_EXT4 && direct)
		blk_flushbufs(path);
	qd = st_open(&self->r, path, O_RDONLY | (flags ^ O_DIRECT), 0);
	ASSERT_LE(0, qd);
	EXPECT_EQ(-1, check_seq(self, qd, size, 256 * KB, 0, gens));
}

TEST_F_TIMEOUT(st, depth_128_mixed_on_a_block_device_direct, 300)
{
	mix_test(_metadata, self, ON_NULLB, 1);
}

TEST_F_TIMEOUT(st, depth_128_mixed_on_a_block_device_buffered, 300)
{
	mix_test(_metadata, self, ON_NULLB, 0);
}

TEST_F_TIMEOUT(st, depth_128_mixed_on_an_ext4_file_direct, 300)
{
	mix_test(_metadata, self, ON_EXT4, 1);
}

TEST_F_TIMEOUT(st, depth_128_mixed_on_an_ext4_file_buffered, 300)
{
	mix_test(_metadata, self, ON_EXT4, 0);
}

TEST_F_TIMEOUT(st, depth_128_mixed_on_nvme_direct, 300)
{
	mix_test(_metadata, self, ON_NVME, 1);
}

/* --- offsets -------------------------------------------------------------------- */

TEST_F(st, queue_offsets_advance_and_positional_ops_leave_them_alone)
{
	char row[1024];
	int qd;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	/* three pushes land one after the other */
	pat_fill(self->buf, 12 * KB, 5, 0);
	ASSERT_EQ(4096, PUSH(qd, 0, 4096));
	ASSERT_EQ(4096, PUSH(qd, 4096, 4096));
	/* a positional push elsewhere does not move the write offset */
	pat_fill(self->buf + MB, 4096, 6, MB);
	ASSERT_EQ(4096, PUSHAT(qd, MB, 4096, MB));
	ASSERT_EQ(4096, PUSH(qd, 8192, 4096));
	if (!queue_row(qd, row, sizeof(row))) {
		EXPECT_EQ(12288, row_val(row, "wpos"));
		EXPECT_EQ(0, row_val(row, "rpos"));
	}
	/* pops read consecutive chunks; a positional one does not move them */
	memset(self->buf + 2 * MB, 0, 16 * KB);
	ASSERT_EQ(4096, POP(qd, 2 * MB, 4096));
	ASSERT_EQ(4096, POPAT(qd, 2 * MB + 12 * KB, 4096, MB));
	ASSERT_EQ(8192, POP(qd, 2 * MB + 4096, 8192));
	EXPECT_EQ(-1, pat_check(self->buf + 2 * MB, 12 * KB, 5, 0));
	EXPECT_EQ(-1, pat_check(self->buf + 2 * MB + 12 * KB, 4096, 6, MB));
	if (!queue_row(qd, row, sizeof(row))) {
		EXPECT_EQ(12288, row_val(row, "wpos"));
		EXPECT_EQ(12288, row_val(row, "rpos"));
	}
}

TEST_F(st, o_append_pushes_land_at_the_end_of_the_file)
{
	char f[PATH_MAX];
	struct stat st;
	int qd, fd;

	ASSERT_EQ(0, qd_tmpfs_mount("size=8m", self->dir[0]));
	path_in(f, self->dir[0], "log");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(3, write(fd, "xyz", 3));
	close(fd);
	qd = st_open(&self->r, f, O_WRONLY | O_CREAT | O_APPEND, 0644);
	ASSERT_LE(0, qd);
	memcpy(self->buf, "abc", 3);
	ASSERT_EQ(3, PUSH(qd, 0, 3));
	memcpy(self->buf, "defg", 4);
	ASSERT_EQ(4, PUSH(qd, 0, 4));
	/* even at an explicit offset, as pwrite(2) with O_APPEND */
	memcpy(self->buf, "h", 1);
	ASSERT_EQ(1, PUSHAT(qd, 0, 1, 0));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(11, st.st_size);
	ASSERT_EQ(11, plain_pread(f, self->buf + 64, 11, 0));
	EXPECT_EQ(0, memcmp(self->buf + 64, "xyzabcdefgh", 11));
}

TEST_F(st, pops_at_the_end_of_a_file_are_short_then_zero)
{
	char f[PATH_MAX];
	int qd, qdd, fd;

	EXT4_ON_NULLB(0);
	path_in(f, self->dir[0], "short");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	pat_fill(self->buf, 10000 + 8, 9, 0);
	ASSERT_EQ(10000, write(fd, self->buf, 10000));
	close(fd);
	/* buffered: 8192, then the 1808 left, then 0 and 0 */
	qd = st_open(&self->r, f, O_RDONLY, 0);
	ASSERT_LE(0, qd);
	memset(self->buf, 0, 64 * KB);
	EXPECT_EQ(8192, POP(qd, 0, 8192));
	EXPECT_EQ(1808, POP(qd, 8192, 8192));
	EXPECT_EQ(-1, pat_check(self->buf, 10000 - 16, 9, 0));
	EXPECT_EQ(0, POP(qd, 32 * KB, 8192));
	EXPECT_EQ(0, POPAT(qd, 32 * KB, 8192, 1 * MB));
	/* direct: the same, with block-sized requests */
	qdd = st_open(&self->r, f, O_RDONLY | O_DIRECT, 0);
	ASSERT_LE(0, qdd);
	EXPECT_EQ(10000 - 8192, POPAT(qdd, 0, 8192, 8192));
	EXPECT_EQ(0, POPAT(qdd, 0, 4096, 12288));
}

TEST_F(st, block_device_end_short_reads_zero_past_it_and_enospc_writes)
{
	long long n;
	int qd;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &(struct qd_nullb_conf){
		.size_mb = 1, .bs = 512 }));
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	/* a write across the end is short, past it -ENOSPC */
	pat_fill(self->buf, 8192, 4, MB - 4096);
	EXPECT_EQ(4096, PUSHAT(qd, 0, 8192, MB - 4096));
	EXPECT_EQ(-ENOSPC, PUSHAT(qd, 0, 4096, MB));
	/* a read across it is short, at it 0 */
	memset(self->buf, 0, 8192);
	EXPECT_EQ(4096, POPAT(qd, 0, 8192, MB - 4096));
	EXPECT_EQ(-1, pat_check(self->buf, 4096, 4, MB - 4096));
	EXPECT_EQ(0, POPAT(qd, 0, 4096, MB));
	EXPECT_EQ(0, POPAT(qd, 0, 4096, 16 * MB));
	/* the queue's offsets run to the end too */
	for (n = 0; n < 1024; n++)
		if (POP(qd, 0, 64 * KB) != 64 * KB)
			break;
	EXPECT_EQ(16, n);
	EXPECT_EQ(0, POP(qd, 0, 64 * KB));
	/* buffered the same */
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR, 0);
	ASSERT_LE(0, qd);
	EXPECT_EQ(4096, POPAT(qd, 0, 8192, MB - 4096));
	EXPECT_EQ(0, POPAT(qd, 0, 4096, MB));
	EXPECT_EQ(4096, PUSHAT(qd, 0, 8192, MB - 4096));
	EXPECT_EQ(-ENOSPC, PUSHAT(qd, 0, 4096, MB));
}

TEST_F(st, direct_io_past_the_devices_request_size_completes_whole)
{
	char f[PATH_MAX];
	int qd, qf, fd;

	/*
	 * Cached pages send O_DIRECT on a block device through the kiocb
	 * path (an fd kept open keeps them: the last close drops them), where
	 * a 1 MiB request is one bio past null_blk's limits.
	 */
	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	fd = open(self->nb[0].dev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	pat_fill(self->buf, 2 * MB, 61, 0);
	ASSERT_EQ(2 * MB, pwrite(fd, self->buf, 2 * MB, 0));
	ASSERT_EQ(0, fsync(fd));
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	memset(self->buf, 0, 2 * MB);
	EXPECT_EQ(1 * MB, POPAT(qd, 0, MB, 0));
	EXPECT_EQ(-1, pat_check(self->buf, MB, 61, 0));
	pat_fill(self->buf, MB, 62, MB);
	EXPECT_EQ(1 * MB, PUSHAT(qd, 0, MB, MB));
	ASSERT_EQ(4096, pread(fd, self->buf + 3 * MB, 4096, MB + 8192));
	EXPECT_EQ(-1, pat_check(self->buf + 3 * MB, 4096, 62, MB + 8192));
	close(fd);
	/* a file on ext4: iomap's bios, split by the block layer */
	EXT4_ON_NULLB(1);
	path_in(f, self->dir[1], "big");
	qf = st_open(&self->r, f, O_RDWR | O_CREAT | O_DIRECT, 0600);
	ASSERT_LE(0, qf);
	pat_fill(self->buf, 2 * MB, 63, 0);
	EXPECT_EQ(2 * MB, PUSHAT(qf, 0, 2 * MB, 0));
	EXPECT_EQ(2 * MB, PUSHAT(qf, 0, 2 * MB, 0));	/* overwrite: no allocation */
	memset(self->buf, 0, 2 * MB);
	EXPECT_EQ(2 * MB, POPAT(qf, 0, 2 * MB, 0));
	EXPECT_EQ(-1, pat_check(self->buf, 2 * MB, 63, 0));
}

TEST_F(st, skip_success_pushes_post_only_their_failures)
{
	struct qd_seg seg = qd_seg(0, 0, 4096);
	struct qd_cqe cqe;
	struct qd_sqe s;
	int qd, i;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	seg.region = (__u16)self->region;
	for (i = 0; i < 4; i++) {
		s = rw_sqe(QD_OP_PUSH, qd, &seg, 1, 1, i * 4096ULL, 10 + i);
		s.flags = QD_SQE_F_SKIP_SUCCESS;
		ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	}
	/* a failing one (unaligned) and a NOP behind them all */
	s = rw_sqe(QD_OP_PUSH, qd, &seg, 1, 1, 100, 20);
	s.flags = QD_SQE_F_SKIP_SUCCESS;
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(5, qd_raw_submit(&self->r));
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, &cqe, NULL, WAIT_NS));
	EXPECT_EQ(20u, cqe.user_data);
	EXPECT_EQ(-EINVAL, cqe.res);
	/* the others wrote and posted nothing */
	EXPECT_EQ(4096, POPAT(qd, MB, 4096, 12288));
	qd_sleep_ms(30);
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
}

TEST_F(st, a_region_under_storage_io_is_busy_until_it_completes)
{
	struct qd_seg segs[8];
	long long res[8];
	unsigned int region;
	unsigned char *mem = qd_raw_pages(64 * KB);
	int qd, i;

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, delayed_nullb(&self->nb[0], "d", 500));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, mem, 64 * KB, &region));
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	ASSERT_EQ(0, submit_pops(&self->r, region, qd, 8, 4096, segs));
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->r.fd, region));
	ASSERT_EQ(0, reap(&self->r, 8, res));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(4096, res[i]);
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, region));
}

/* --- errors as completions ------------------------------------------------------- */

TEST_F(st, io_errors_from_the_device_complete_with_eio)
{
	char table[256], row[1024];
	long long errs = proc_key("file_errors");
	int qd, qb;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	/* 1 MiB good, 1 MiB of errors, 1 MiB good */
	snprintf(table, sizeof(table),
		 "0 2048 linear %s 0\n2048 2048 error\n4096 2048 linear %s 4096",
		 self->nb[0].dev, self->nb[0].dev);
	ASSERT_EQ(0, qd_dm_create(&self->dm[0], "e", table));
	qd = st_open(&self->r, self->dm[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	pat_fill(self->buf, 64 * KB, 2, 0);
	EXPECT_EQ(64 * KB, PUSHAT(qd, 0, 64 * KB, 0));
	EXPECT_EQ(-EIO, PUSHAT(qd, 0, 64 * KB, MB + 4096));
	EXPECT_EQ(64 * KB, POPAT(qd, 0, 64 * KB, 0));
	EXPECT_EQ(-EIO, POPAT(qd, 0, 4096, MB));
	/* across the good and the bad part: the whole op fails */
	EXPECT_EQ(-EIO, POPAT(qd, 0, 64 * KB, MB - 4096));
	EXPECT_EQ(64 * KB, POPAT(qd, 0, 64 * KB, 2 * MB));
	/* buffered too */
	qb = st_open(&self->r, self->dm[0].dev, O_RDWR, 0);
	ASSERT_LE(0, qb);
	EXPECT_EQ(-EIO, POPAT(qb, 0, 4096, MB + 8192));
	EXPECT_EQ(64 * KB, POPAT(qb, 0, 64 * KB, 2 * MB));
	EXPECT_LE(errs + 4, proc_key("file_errors"));
	if (!queue_row(qd, row, sizeof(row)))
		EXPECT_EQ(3, row_val(row, "errors"));
}

TEST_F(st, dm_flakey_down_fails_io_or_drops_writes)
{
	char table[256];
	long long sectors;
	int qd;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	pat_fill(self->buf, 8192, 8, 0);
	ASSERT_EQ(8192, plain_pwrite(self->nb[0].dev, self->buf, 8192, 0));
	sectors = qd_blk_sectors(self->nb[0].dev);
	/* up 0 s, down 100 s: down for the whole test, every I/O fails */
	snprintf(table, sizeof(table), "0 %lld flakey %s 0 0 100", sectors,
		 self->nb[0].dev);
	/* Debian's kernel has the target; a kernel built without it does not */
	if (system("modprobe -q dm_flakey 2>/dev/null; dmsetup targets | grep -q '^flakey'"))
		SKIP(return, "no dm-flakey target in this kernel");
	ASSERT_EQ(0, qd_dm_create(&self->dm[0], "f", table));
	qd = st_open(&self->r, self->dm[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	EXPECT_EQ(-EIO, POPAT(qd, 0, 4096, 0));
	pat_fill(self->buf, 8192, 9, 0);
	EXPECT_EQ(-EIO, PUSHAT(qd, 0, 8192, 0));
	/* drop_writes: writes succeed and go nowhere, reads pass */
	snprintf(table, sizeof(table), "0 %lld flakey %s 0 0 100 1 drop_writes",
		 sectors, self->nb[0].dev);
	ASSERT_EQ(0, qd_dm_reload(&self->dm[0], table));
	EXPECT_EQ(8192, PUSHAT(qd, 0, 8192, 0));
	memset(self->buf + MB, 0, 8192);
	EXPECT_EQ(8192, POPAT(qd, MB, 8192, 0));
	EXPECT_EQ(-1, pat_check(self->buf + MB, 8192, 8, 0));
}

TEST_F(st, null_blk_removed_with_io_in_flight_completes_it_then_enodev)
{
	struct qd_seg segs[32];
	long long res[32];
	unsigned int i;
	int qd;

	ASSERT_EQ(0, delayed_nullb(&self->nb[0], "d", 1000));
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	ASSERT_EQ(0, submit_pops(&self->r, self->region, qd, 32, 4096, segs));
	EXPECT_LE(32, proc_key("inflight"));
	/* rmdir waits for the requests in flight, which complete */
	ASSERT_EQ(0, qd_nullb_remove(&self->nb[0]));
	ASSERT_EQ(0, reap(&self->r, 32, res));
	for (i = 0; i < 32; i++) {
		long long v = res[i];

		EXPECT_TRUE(v == 4096 || v < 0) TH_LOG("op %u: %lld", i, v);
	}
	/* later operations: -ENODEV */
	EXPECT_EQ(-ENODEV, POPAT(qd, 0, 4096, 0));
	EXPECT_EQ(-ENODEV, PUSHAT(qd, 0, 4096, 0));
	EXPECT_EQ(-ENODEV, POP(qd, 0, 4096));
	EXPECT_EQ(0, st_close(&self->r, qd));
}

TEST_F(st, dm_table_replaced_by_error_with_io_in_flight_loses_nothing)
{
	struct qd_seg segs[32];
	long long res[32];
	char table[256];
	unsigned int i;
	int qd;

	ASSERT_EQ(0, delayed_nullb(&self->nb[0], "d", 500));
	snprintf(table, sizeof(table), "0 %lld linear %s 0",
		 qd_blk_sectors(self->nb[0].dev), self->nb[0].dev);
	ASSERT_EQ(0, qd_dm_create(&self->dm[0], "l", table));
	qd = st_open(&self->r, self->dm[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	ASSERT_EQ(0, submit_pops(&self->r, self->region, qd, 32, 4096, segs));
	/* what `dmsetup remove --force` does to an open device */
	snprintf(table, sizeof(table), "0 %lld error", qd_blk_sectors(self->nb[0].dev));
	ASSERT_EQ(0, qd_dm_reload(&self->dm[0], table));
	ASSERT_EQ(0, reap(&self->r, 32, res));
	for (i = 0; i < 32; i++) {
		long long v = res[i];

		EXPECT_TRUE(v == 4096 || v == -EIO) TH_LOG("op %u: %lld", i, v);
	}
	EXPECT_EQ(-EIO, POPAT(qd, 0, 4096, 0));
	EXPECT_EQ(-EIO, PUSHAT(qd, 0, 4096, 0));
	/* the device cannot go while the qd holds it, and can after */
	EXPECT_NE(0, qd_sh("dmsetup --noudevsync remove %s 2>/dev/null", self->dm[0].name));
	EXPECT_EQ(0, st_close(&self->r, qd));
	EXPECT_EQ(0, wait_files(self->files0, 5000));
	EXPECT_EQ(0, qd_dm_remove(&self->dm[0]));
}

TEST_F(st, a_full_file_system_is_enospc)
{
	long long n, total = 0;
	char f[PATH_MAX], row[1024];
	int qd, i, enospc = 0;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "big");
	qd = st_open(&self->r, f, O_WRONLY | O_CREAT, 0600);
	ASSERT_LE(0, qd);
	for (i = 0; i < 6 && !enospc; i++) {
		n = PUSH(qd, 0, 512 * KB);
		if (n == -ENOSPC)
			enospc = 1;
		else
			ASSERT_LE(0, n);
		if (n > 0)
			total += n;
	}
	EXPECT_TRUE(enospc);
	EXPECT_GE((long long)MB, total);
	/* the failed push gave its span back to the write offset */
	if (!queue_row(qd, row, sizeof(row)))
		EXPECT_EQ(total, row_val(row, "wpos"));
}

TEST_F(st, writes_past_the_file_systems_maximum_size_are_efbig)
{
	char f[PATH_MAX];
	int qd, qb;

	EXT4_ON_NULLB(0);
	path_in(f, self->dir[0], "huge");
	qd = st_open(&self->r, f, O_RDWR | O_CREAT | O_DIRECT, 0600);
	qb = st_open(&self->r, f, O_RDWR, 0);
	ASSERT_LE(0, qd);
	ASSERT_LE(0, qb);
	/* ext4 with 4 KiB blocks: files end before 16 TiB */
	EXPECT_EQ(-EFBIG, PUSHAT(qd, 0, 4096, 1ULL << 44));
	EXPECT_EQ(-EFBIG, PUSHAT(qb, 0, 4096, 1ULL << 44));
	/* an offset the kernel cannot represent */
	EXPECT_EQ(-EINVAL, PUSHAT(qb, 0, 4096, ~0ULL - 100));
	EXPECT_EQ(-EINVAL, POPAT(qb, 0, 4096, 1ULL << 63));
}

/* In a child: RLIMIT_FSIZE 64 KiB, SIGXFSZ ignored (or not). */
static int fsize_child(struct qd_raw *pr, const char *f, int ignore)
{
	struct rlimit rl = { 64 * KB, 64 * KB }, core = { 0, 0 };
	struct qd_raw r;
	unsigned int region;
	unsigned char *buf = qd_raw_pages(64 * KB);
	long long n;
	int qd;

	child_forget(pr);
	CHILD_CHECK(buf);
	CHILD_CHECK(!qd_raw_init(&r, 8, 16));
	n = qd_raw_register(r.fd, buf, 64 * KB, &region);
	CHILD_CHECK(!n);
	CHILD_CHECK(!setrlimit(RLIMIT_CORE, &core));
	CHILD_CHECK(signal(SIGXFSZ, ignore ? SIG_IGN : SIG_DFL) != SIG_ERR);
	qd = st_open(&r, f, O_WRONLY | O_CREAT, 0600);
	CHILD_CHECK(qd >= 0);
	CHILD_CHECK(!setrlimit(RLIMIT_FSIZE, &rl));
	/* across the limit: cut at it */
	n = st_rw(&r, region, QD_OP_PUSH, qd, 0, 8192, 60 * KB);
	CHILD_CHECK(n == 4096);
	/* from it: -EFBIG (and SIGXFSZ) */
	n = st_rw(&r, region, QD_OP_PUSH, qd, 0, 4096, 64 * KB);
	CHILD_CHECK(n == -EFBIG);
	n = st_rw(&r, region, QD_OP_PUSH, qd, 0, 4096, -1);
	CHILD_CHECK(n == 4096);		/* at 0: below the limit */
	_exit(0);
}

TEST_F(st, writes_past_rlimit_fsize_are_cut_then_efbig_with_sigxfsz)
{
	char f[PATH_MAX];
	struct stat st;
	pid_t pid;

	ASSERT_EQ(0, qd_tmpfs_mount("size=8m", self->dir[0]));
	path_in(f, self->dir[0], "limited");
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		fsize_child(&self->r, f, 1);
	EXPECT_EQ(0, qd_wait_child(pid));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(64 * KB, st.st_size);
	/* without SIG_IGN the signal kills it, as write(2) would */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		fsize_child(&self->r, f, 0);
	EXPECT_EQ(128 + SIGXFSZ, qd_wait_child(pid));
}

/* --- bad input ------------------------------------------------------------------- */

TEST_F(st, unaligned_direct_io_is_einval_and_moves_nothing)
{
	struct qd_seg segs[2];
	struct qd_cqe cqe;
	struct qd_sqe s;
	char f[PATH_MAX];
	int qd, q4, qf, i;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	ASSERT_EQ(0, qd_nullb_create(&self->nb[1], "b", &nb_mem4k));
	EXT4_ON(2, 0);
	path_in(f, self->dir[0], "aligned");
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	q4 = st_open(&self->r, self->nb[1].dev, O_RDWR | O_DIRECT, 0);
	qf = st_open(&self->r, f, O_RDWR | O_CREAT | O_DIRECT, 0600);
	ASSERT_LE(0, qd);
	ASSERT_LE(0, q4);
	ASSERT_LE(0, qf);
	pat_fill(self->buf, 64 * KB, 31, 0);
	for (i = 0; i < 3; i++) {
		int q = i == 0 ? qd : i == 1 ? q4 : qf;

		ASSERT_EQ(64 * KB, PUSHAT(q, 0, 64 * KB, 0));
	}
	memset(self->buf, 0xee, 64 * KB);
	/* 512-byte blocks: 512 multiples pass, anything else -EINVAL */
	EXPECT_EQ(-EINVAL, PUSHAT(qd, 0, 4096, 256));		/* offset */
	EXPECT_EQ(-EINVAL, PUSHAT(qd, 0, 1000, 0));		/* length */
	EXPECT_EQ(-EINVAL, PUSHAT(qd, 100, 512, 0));		/* address */
	EXPECT_EQ(-EINVAL, POPAT(qd, 0, 4096, 256));
	EXPECT_EQ(-EINVAL, POPAT(qd, 0, 1000, 0));
	EXPECT_EQ(-EINVAL, POPAT(qd, 100, 512, 0));
	EXPECT_EQ(512, POPAT(qd, MB + 512, 512, 512));
	/* one bad segment of two */
	segs[0] = qd_seg((__u16)self->region, 0, 512);
	segs[1] = qd_seg((__u16)self->region, 1024, 100);
	s = rw_sqe(QD_OP_PUSH, qd, segs, 2, 1, 0, 3);
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* the queue's offset given back: the next aligned push lands at 0 */
	EXPECT_EQ(-EINVAL, PUSH(qd, 0, 100));
	/* 4 KiB blocks: 512 is not enough */
	EXPECT_EQ(-EINVAL, PUSHAT(q4, 0, 4096, 512));
	EXPECT_EQ(-EINVAL, PUSHAT(q4, 0, 512, 0));
	EXPECT_EQ(-EINVAL, PUSHAT(q4, 512, 4096, 0));
	EXPECT_EQ(-EINVAL, POPAT(q4, 0, 4096, 512));
	/* a file: its device's logical block size (512) */
	EXPECT_EQ(-EINVAL, PUSHAT(qf, 0, 4096, 100));
	EXPECT_EQ(-EINVAL, PUSHAT(qf, 0, 100, 0));
	EXPECT_EQ(-EINVAL, POPAT(qf, 8, 512, 0));
	/* nothing was written by any of them */
	for (i = 0; i < 3; i++) {
		int q = i == 0 ? qd : i == 1 ? q4 : qf;

		ASSERT_EQ(64 * KB, POPAT(q, 0, 64 * KB, 0));
		EXPECT_EQ(-1, pat_check(self->buf, 64 * KB, 31, 0)) TH_LOG("qd %d", q);
	}
}

TEST_F(st, o_direct_on_tmpfs_is_einval_at_open)
{
	char f[PATH_MAX];

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "nodirect");
	EXPECT_EQ(-EINVAL, st_open(&self->r, f, O_RDWR | O_CREAT | O_DIRECT, 0600));
	/* as open(2) says */
	EXPECT_EQ(-1, open(f, O_RDWR | O_DIRECT));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_LE(0, st_open(&self->r, f, O_RDWR, 0));
}

TEST_F(st, buffers_outside_registered_memory_are_efault)
{
	struct qd_seg seg;
	struct qd_cqe cqe;
	struct qd_sqe s;
	char f[PATH_MAX];
	int qd;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "x");
	qd = st_open(&self->r, f, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, qd);
	/* past the region's end, and a region that does not exist */
	EXPECT_EQ(-EFAULT, PUSHAT(qd, RBUF - 100, 4096, 0));
	EXPECT_EQ(-EFAULT, POPAT(qd, RBUF, 1, 0));
	seg = qd_seg((__u16)(self->region + 7), 0, 4096);
	s = rw_sqe(QD_OP_POP, qd, &seg, 1, 0, 0, 1);
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EFAULT, cqe.res);
	/* a segment array at a bad address */
	s = rw_sqe(QD_OP_PUSH, qd, (struct qd_seg *)8, 1, 0, 0, 2);
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EFAULT, cqe.res);
	/* a storage pop needs a buffer */
	s = qd_sqe_pop(qd, 3);
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
}

TEST_F(st, push_to_a_read_only_qd_and_pop_from_a_write_only_one_are_ebadf)
{
	char f[PATH_MAX];
	int ro, wo, rw;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "modes");
	wo = st_open(&self->r, f, O_WRONLY | O_CREAT, 0600);
	ro = st_open(&self->r, f, O_RDONLY, 0);
	rw = st_open(&self->r, f, O_RDWR, 0);
	ASSERT_LE(0, wo);
	ASSERT_LE(0, ro);
	ASSERT_LE(0, rw);
	EXPECT_EQ(-EBADF, PUSH(ro, 0, 16));
	EXPECT_EQ(-EBADF, PUSHAT(ro, 0, 16, 0));
	EXPECT_EQ(-EBADF, POP(wo, 0, 16));
	EXPECT_EQ(-EBADF, POPAT(wo, 0, 16, 0));
	EXPECT_EQ(16, PUSH(wo, 0, 16));
	EXPECT_EQ(16, POP(ro, 0, 16));
	EXPECT_EQ(16, POP(rw, 0, 16));
	/* closed: -EBADF for everything */
	EXPECT_EQ(0, st_close(&self->r, rw));
	EXPECT_EQ(-EBADF, POP(rw, 0, 16));
	EXPECT_EQ(-EBADF, PUSH(rw, 0, 16));
	EXPECT_EQ(-EBADF, st_sync(&self->r, rw, 0));
	EXPECT_EQ(-EBADF, st_close(&self->r, rw));
	/* a block device opened read-only */
	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	ro = st_open(&self->r, self->nb[0].dev, O_RDONLY | O_DIRECT, 0);
	ASSERT_LE(0, ro);
	EXPECT_EQ(-EBADF, PUSHAT(ro, 0, 512, 0));
}

TEST_F(st, opening_bad_paths_fails_as_open_does)
{
	char f[PATH_MAX], lnk[PATH_MAX], fifo[PATH_MAX], sub[PATH_MAX];
	char *longp = malloc(PATH_MAX + 16);
	int fd;

	ASSERT_NE(NULL, longp);
	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "file");
	path_in(lnk, self->dir[0], "link");
	path_in(fifo, self->dir[0], "fifo");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, symlink(f, lnk));
	ASSERT_EQ(0, mkfifo(fifo, 0644));
	EXPECT_EQ(-EISDIR, st_open(&self->r, self->dir[0], O_RDONLY, 0));
	EXPECT_EQ(-EISDIR, st_open(&self->r, "/", O_RDONLY, 0));
	EXPECT_EQ(-ENOENT, st_open(&self->r, "/nonexistent/qd", O_RDONLY, 0));
	path_in(sub, self->dir[0], "missing");
	EXPECT_EQ(-ENOENT, st_open(&self->r, sub, O_RDONLY, 0));
	EXPECT_EQ(-ENOENT, st_open(&self->r, "", O_RDONLY, 0));
	path_in(sub, f, "below");
	EXPECT_EQ(-ENOTDIR, st_open(&self->r, sub, O_RDONLY, 0));
	/* PATH_MAX bytes and more without a NUL within PATH_MAX */
	memset(longp, 'a', PATH_MAX + 15);
	longp[0] = '/';
	longp[PATH_MAX + 15] = 0;
	EXPECT_EQ(-ENAMETOOLONG, st_open(&self->r, longp, O_RDONLY, 0));
	longp[PATH_MAX] = 0;
	EXPECT_EQ(-ENAMETOOLONG, st_open(&self->r, longp, O_RDONLY, 0));
	/* a component longer than NAME_MAX */
	longp[300] = 0;
	EXPECT_EQ(-ENAMETOOLONG, st_open(&self->r, longp, O_RDONLY, 0));
	/* not a regular file or a block device */
	EXPECT_EQ(-EINVAL, st_open(&self->r, "/dev/null", O_RDWR, 0));
	EXPECT_EQ(-EINVAL, st_open(&self->r, fifo, O_RDWR, 0));
	/* symlinks: followed, unless O_NOFOLLOW */
	EXPECT_LE(0, st_open(&self->r, lnk, O_RDONLY, 0));
	EXPECT_EQ(-ELOOP, st_open(&self->r, lnk, O_RDONLY | O_NOFOLLOW, 0));
	/* the path at a bad address */
	EXPECT_EQ(-EFAULT, st_open(&self->r, (const char *)8, O_RDONLY, 0));
	free(longp);
}

TEST_F(st, open_with_bad_flags_or_fields_is_einval)
{
	static const int bad[] = { O_PATH, O_DIRECTORY, O_TMPFILE | O_RDWR,
				   O_ASYNC, O_RDWR | O_WRONLY | O_RDONLY | 3,
				   1 << 30 };
	struct qd_cqe cqe;
	struct qd_sqe s;
	char f[PATH_MAX];
	unsigned int i;
	int fd;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "file");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(-EINVAL, st_open(&self->r, f, bad[i], 0)) TH_LOG("flags %#x", bad[i]);
	/* flags open(2) takes and qd accepts */
	EXPECT_LE(0, st_open(&self->r, f, O_RDONLY | O_CLOEXEC | O_NOATIME | O_NOCTTY |
			     O_LARGEFILE, 0));
	EXPECT_LE(0, st_open(&self->r, f, O_WRONLY | O_DSYNC | O_SYNC, 0));
	/* a mode beyond 07777, with O_CREAT */
	EXPECT_EQ(-EINVAL, st_open(&self->r, f, O_RDWR | O_CREAT, 010644));
	/* the fields OPEN does not use */
	s = open_sqe(f, O_RDONLY, 0);
	s.qd = 3;
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = open_sqe(f, O_RDONLY, 0);
	s.nsegs = 1;
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = open_sqe(f, O_RDONLY, 0);
	s.op_flags = 1;
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = open_sqe(f, O_RDONLY, 0);
	s.open_mode = 1ULL << 32;
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	for (i = 0; i < 3; i++) {
		s = open_sqe(f, O_RDONLY, 0);
		s.resv2[i] = 1;
		ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
		EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("resv2[%u]", i);
	}
	/* its result is the qd: no skipping it */
	s = open_sqe(f, O_RDONLY, 0);
	s.flags = QD_SQE_F_SKIP_SUCCESS;
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = open_sqe(NULL, O_RDONLY, 0);
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* nothing was left open by the failures */
	EXPECT_EQ(self->files0 + 2, proc_key("files"));
}

TEST_F(st, push_pop_and_sync_check_their_reserved_fields)
{
	struct qd_seg seg = qd_seg(0, 0, 512);
	struct qd_cqe cqe;
	struct qd_sqe s;
	char f[PATH_MAX];
	int qd, i, op;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "file");
	qd = st_open(&self->r, f, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, qd);
	seg.region = (__u16)self->region;
	for (op = QD_OP_PUSH; op <= QD_OP_POP; op++) {
		/* off without QD_PUSH_AT */
		s = rw_sqe((__u8)op, qd, &seg, 1, 0, 0, 1);
		s.off = 512;
		ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
		EXPECT_EQ(-EINVAL, cqe.res);
		for (i = 0; i < 3; i++) {
			s = rw_sqe((__u8)op, qd, &seg, 1, 1, 0, 2);
			s.resv2[i] = 1;
			ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
			EXPECT_EQ(-EINVAL, cqe.res) TH_LOG("op %d resv2[%d]", op, i);
		}
		s = rw_sqe((__u8)op, qd, &seg, 1, 1, 0, 3);
		s.resv0 = 1;
		ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
		EXPECT_EQ(-EINVAL, cqe.res);
		s = rw_sqe((__u8)op, qd, &seg, 1, 1, 0, 4);
		s.op_flags |= 1u << 7;
		ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
		EXPECT_EQ(-EINVAL, cqe.res);
	}
	/* a positional multishot or pool pop */
	s = rw_sqe(QD_OP_POP, qd, &seg, 1, 1, 0, 5);
	s.op_flags |= QD_POP_MULTISHOT;
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = rw_sqe(QD_OP_POP, qd, NULL, 0, 1, 0, 6);
	s.op_flags |= QD_POP_POOL;
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	/* SYNC: no buffer, no unknown flag, no reserved field */
	s = (struct qd_sqe){ .opcode = QD_OP_SYNC, .qd = qd, .user_data = 7,
			     .addr = (uintptr_t)&seg };
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = (struct qd_sqe){ .opcode = QD_OP_SYNC, .qd = qd, .user_data = 8, .nsegs = 1 };
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = (struct qd_sqe){ .opcode = QD_OP_SYNC, .qd = qd, .user_data = 9,
			     .op_flags = 1u << 2 };
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = (struct qd_sqe){ .opcode = QD_OP_SYNC, .qd = qd, .user_data = 10 };
	s.off = 1;
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EINVAL, cqe.res);
	s = (struct qd_sqe){ .opcode = QD_OP_SYNC, .qd = qd + 100, .user_data = 11 };
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EBADF, cqe.res);
	EXPECT_EQ(0, st_sync(&self->r, qd, 0));
}

TEST_F(st, positional_ops_and_sync_on_a_memory_queue_are_refused)
{
	struct qd_seg seg = qd_seg(0, 0, 64);
	struct qd_cqe cqe;
	struct qd_sqe s;
	int q;

	seg.region = (__u16)self->region;
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &q));
	s = rw_sqe(QD_OP_PUSH, q, &seg, 1, 1, 0, 1);
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-ESPIPE, cqe.res);
	s = rw_sqe(QD_OP_POP, q, &seg, 1, 1, 4096, 2);
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-ESPIPE, cqe.res);
	/* fsync(2) of a pipe: -EINVAL */
	EXPECT_EQ(-EINVAL, st_sync(&self->r, q, 0));
	EXPECT_EQ(-EINVAL, st_sync(&self->r, q, QD_SYNC_FLUSH));
	/* the queue is untouched: a plain push and pop still work */
	EXPECT_EQ(64, st_rw(&self->r, self->region, QD_OP_PUSH, q, 0, 64, -1));
	s = qd_sqe_pop(q, 3);
	ASSERT_EQ(0, st_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(64, cqe.res);
}

/* --- open(2)'s semantics ------------------------------------------------------------ */

TEST_F(st, o_creat_o_excl_o_trunc_and_the_umask)
{
	char f[PATH_MAX], g[PATH_MAX];
	struct stat st;
	int qd;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "new");
	path_in(g, self->dir[0], "other");
	EXPECT_EQ(-ENOENT, st_open(&self->r, f, O_RDWR, 0644));
	umask(027);
	qd = st_open(&self->r, f, O_RDWR | O_CREAT | O_EXCL, 0666);
	ASSERT_LE(0, qd);
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(0640, (int)(st.st_mode & 07777));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	umask(0);
	qd = st_open(&self->r, g, O_WRONLY | O_CREAT, 04751);
	ASSERT_LE(0, qd);
	ASSERT_EQ(0, stat(g, &st));
	EXPECT_EQ(04751, (int)(st.st_mode & 07777));
	umask(022);
	EXPECT_EQ(-EEXIST, st_open(&self->r, f, O_RDWR | O_CREAT | O_EXCL, 0666));
	/* O_CREAT on an existing file keeps it and its mode */
	memcpy(self->buf, "0123456789", 10);
	qd = st_open(&self->r, f, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, qd);
	EXPECT_EQ(10, PUSH(qd, 0, 10));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(10, st.st_size);
	EXPECT_EQ(0640, (int)(st.st_mode & 07777));
	/* O_TRUNC empties it at open */
	qd = st_open(&self->r, f, O_RDWR | O_TRUNC, 0);
	ASSERT_LE(0, qd);
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(0, st.st_size);
	EXPECT_EQ(0, POP(qd, 0, 10));
}

/* A child that drops to uid 65534 after setting up its context. */
static void perm_child(struct qd_raw *pr, const char *dir)
{
	char secret[PATH_MAX], public[PATH_MAX], newf[PATH_MAX];
	unsigned char *buf = qd_raw_pages(4096);
	unsigned int region;
	struct qd_raw r;
	int qd;

	child_forget(pr);
	path_in(secret, dir, "secret");
	path_in(public, dir, "public");
	path_in(newf, dir, "new");
	CHILD_CHECK(buf);
	CHILD_CHECK(!qd_raw_init(&r, 8, 16));
	CHILD_CHECK(!qd_raw_register(r.fd, buf, 4096, &region));
	/* as root: both open, and one stays open */
	CHILD_CHECK(st_open(&r, secret, O_RDONLY, 0) >= 0);
	qd = st_open(&r, secret, O_RDWR, 0);
	CHILD_CHECK(qd >= 0);
	CHILD_CHECK(!qd_become_uid(QD_NOBODY));
	/* what is open stays usable, as an fd would (the worker writes as the opener) */
	memcpy(buf, "SECRET", 6);
	CHILD_CHECK(st_rw(&r, region, QD_OP_PUSH, qd, 0, 6, 0) == 6);
	CHILD_CHECK(st_rw(&r, region, QD_OP_POP, qd, 0, 64, 0) == 6);
	CHILD_CHECK(st_sync(&r, qd, 0) == 0);
	CHILD_CHECK(st_open(&r, secret, O_RDONLY, 0) == -EACCES);
	CHILD_CHECK(st_open(&r, secret, O_WRONLY, 0) == -EACCES);
	CHILD_CHECK(st_open(&r, public, O_WRONLY, 0) == -EACCES);
	CHILD_CHECK(st_open(&r, newf, O_WRONLY | O_CREAT, 0644) == -EACCES);
	qd = st_open(&r, public, O_RDONLY, 0);
	CHILD_CHECK(qd >= 0);
	CHILD_CHECK(st_rw(&r, region, QD_OP_POP, qd, 0, 64, -1) == 6);
	CHILD_CHECK(!memcmp(buf, "public", 6));
	_exit(0);
}

TEST_F(st, opens_are_checked_with_the_submitters_credentials)
{
	char f[PATH_MAX];
	pid_t pid;
	int fd;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m,mode=0755", self->dir[0]));
	path_in(f, self->dir[0], "secret");
	fd = open(f, O_WRONLY | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(6, write(fd, "secret", 6));
	close(fd);
	path_in(f, self->dir[0], "public");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(6, write(fd, "public", 6));
	close(fd);
	ASSERT_EQ(0, chmod(f, 0644));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		perm_child(&self->r, self->dir[0]);
	EXPECT_EQ(0, qd_wait_child(pid));
}

/* A child that opens relative to its cwd, then inside a chroot. */
static void root_child(struct qd_raw *pr, const char *dir)
{
	unsigned char *buf = qd_raw_pages(4096);
	char outside[PATH_MAX];
	unsigned int region;
	struct qd_raw r;
	int qd;

	child_forget(pr);
	CHILD_CHECK(buf);
	CHILD_CHECK(!qd_raw_init(&r, 8, 16));
	CHILD_CHECK(!qd_raw_register(r.fd, buf, 4096, &region));
	CHILD_CHECK(!chdir(dir));
	CHILD_CHECK(!chdir("sub"));
	qd = st_open(&r, "inner", O_RDONLY, 0);
	if (qd < 0)
		fprintf(stderr, "# open inner: %d\n", qd);
	CHILD_CHECK(qd >= 0);
	CHILD_CHECK(st_rw(&r, region, QD_OP_POP, qd, 0, 64, -1) == 5);
	CHILD_CHECK(!memcmp(buf, "inner", 5));
	qd = st_open(&r, "../top", O_RDONLY, 0);
	if (qd < 0)
		fprintf(stderr, "# open ../top: %d\n", qd);
	CHILD_CHECK(qd >= 0);
	CHILD_CHECK(st_rw(&r, region, QD_OP_POP, qd, 0, 64, -1) == 3);
	CHILD_CHECK(!memcmp(buf, "top", 3));
	/* a relative O_CREAT lands in the cwd */
	CHILD_CHECK(st_open(&r, "made", O_WRONLY | O_CREAT, 0600) >= 0);
	/* chroot to dir: "/top" is dir/top, dir's own path is gone */
	path_in(outside, dir, "top");
	CHILD_CHECK(!chdir(dir));
	CHILD_CHECK(!chroot("."));
	qd = st_open(&r, "/top", O_RDONLY, 0);
	CHILD_CHECK(qd >= 0);
	CHILD_CHECK(st_rw(&r, region, QD_OP_POP, qd, 0, 64, -1) == 3);
	CHILD_CHECK(st_open(&r, outside, O_RDONLY, 0) == -ENOENT);
	/* ".." stops at the root */
	CHILD_CHECK(st_open(&r, "/../../top", O_RDONLY, 0) >= 0);
	CHILD_CHECK(st_open(&r, "/sub/made", O_RDONLY, 0) >= 0);
	_exit(0);
}

TEST_F(st, relative_paths_resolve_in_the_cwd_and_the_root_of_the_submitter)
{
	char f[PATH_MAX];
	pid_t pid;
	int fd;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "sub");
	ASSERT_EQ(0, mkdir(f, 0755));
	path_in(f, self->dir[0], "sub/inner");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_EQ(5, write(fd, "inner", 5));
	close(fd);
	path_in(f, self->dir[0], "top");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_EQ(3, write(fd, "top", 3));
	close(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		root_child(&self->r, self->dir[0]);
	EXPECT_EQ(0, qd_wait_child(pid));
	path_in(f, self->dir[0], "sub/made");
	EXPECT_EQ(0, access(f, F_OK));
}

TEST_F(st, a_context_holds_at_most_rlimit_nofile_storage_qds)
{
	char f[PATH_MAX];
	pid_t pid;
	int fd;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "many");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct rlimit rl = { 16, 16 };
		struct qd_raw r;
		int i, qd[16];

		child_forget(&self->r);
		CHILD_CHECK(!qd_raw_init(&r, 8, 16));
		CHILD_CHECK(!setrlimit(RLIMIT_NOFILE, &rl));
		for (i = 0; i < 16; i++) {
			qd[i] = st_open(&r, f, O_RDONLY, 0);
			CHILD_CHECK(qd[i] >= 0);
		}
		CHILD_CHECK(st_open(&r, f, O_RDONLY, 0) == -EMFILE);
		CHILD_CHECK(!qd_raw_close(r.fd, qd[3]));
		CHILD_CHECK(st_open(&r, f, O_RDONLY, 0) >= 0);
		CHILD_CHECK(st_open(&r, f, O_RDONLY, 0) == -EMFILE);
		_exit(0);
	}
	EXPECT_EQ(0, qd_wait_child(pid));
}

/* --- SYNC ------------------------------------------------------------------------- */

TEST_F(st, sync_datasync_and_flush_complete_where_they_apply)
{
	long long failed0 = -1, failed1 = -1;
	const struct qd_op_stat *op;
	struct qd_proc p;
	char f[PATH_MAX];
	int qd, qf;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem512));
	EXT4_ON_NULLB(1);
	path_in(f, self->dir[1], "synced");
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	qf = st_open(&self->r, f, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, qd);
	ASSERT_LE(0, qf);
	if (!qd_proc_read(&p) && (op = qd_proc_op(&p, "sync")))
		failed0 = op->failed;
	pat_fill(self->buf, 64 * KB, 1, 0);
	ASSERT_EQ(64 * KB, PUSH(qd, 0, 64 * KB));
	ASSERT_EQ(64 * KB, PUSH(qf, 0, 64 * KB));
	EXPECT_EQ(0, st_sync(&self->r, qd, 0));
	EXPECT_EQ(0, st_sync(&self->r, qd, QD_SYNC_DATASYNC));
	EXPECT_EQ(0, st_sync(&self->r, qd, QD_SYNC_FLUSH));
	EXPECT_EQ(-EINVAL, st_sync(&self->r, qd, QD_SYNC_FLUSH | QD_SYNC_DATASYNC));
	EXPECT_EQ(0, st_sync(&self->r, qf, 0));
	EXPECT_EQ(0, st_sync(&self->r, qf, QD_SYNC_DATASYNC));
	/* a file has no device cache of its own to flush */
	EXPECT_EQ(-EINVAL, st_sync(&self->r, qf, QD_SYNC_FLUSH));
	/* read-only qds sync too, as fsync(2) on an O_RDONLY fd */
	qf = st_open(&self->r, f, O_RDONLY, 0);
	ASSERT_LE(0, qf);
	EXPECT_EQ(0, st_sync(&self->r, qf, 0));
	if (!qd_proc_read(&p) && (op = qd_proc_op(&p, "sync")))
		failed1 = op->failed;
	EXPECT_EQ(failed0 + 2, failed1);
}

/* --- close and kill with I/O in flight ---------------------------------------------- */

TEST_F(st, close_with_bios_in_flight_completes_every_one)
{
	char row[1024];
	struct qd_seg segs[64];
	long long res[64];
	unsigned int i;
	int qd;

	ASSERT_EQ(0, delayed_nullb(&self->nb[0], "d", 1000));
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	ASSERT_EQ(0, submit_pops(&self->r, self->region, qd, 64, 4096, segs));
	/* debugfs counts them as reads in flight */
	if (!queue_row(qd, row, sizeof(row)))
		EXPECT_EQ(64, row_col(row, 4)) TH_LOG("%s", row);
	ASSERT_EQ(0, st_close(&self->r, qd));
	/* bios cannot be called back: each completes with its bytes */
	ASSERT_EQ(0, reap(&self->r, 64, res));
	for (i = 0; i < 64; i++) {
		long long v = res[i];

		EXPECT_TRUE(v == 4096 || v == -ECANCELED) TH_LOG("op %u: %lld", i, v);
	}
	EXPECT_EQ(0, wait_files(self->files0, 5000));
	EXPECT_EQ(0, proc_key("inflight"));
}

TEST_F(st, close_with_buffered_writes_queued_loses_none)
{
	enum { N = 192 };
	long long res[N];
	struct qd_seg seg;
	char f[PATH_MAX];
	unsigned int i, done = 0, cancelled = 0;
	int qd, fd;

	EXT4_ON_NULLB(0);
	path_in(f, self->dir[0], "queued");
	qd = st_open(&self->r, f, O_WRONLY | O_CREAT, 0600);
	ASSERT_LE(0, qd);
	pat_fill(self->buf, 64 * KB, 77, 0);
	seg = qd_seg((__u16)self->region, 0, 16 * KB);
	for (i = 0; i < N; i++) {
		struct qd_sqe s = rw_sqe(QD_OP_PUSH, qd, &seg, 1, 1, i * 16 * KB, i);

		ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	}
	ASSERT_EQ(N, qd_raw_submit(&self->r));
	ASSERT_EQ(0, st_close(&self->r, qd));
	ASSERT_EQ(0, reap(&self->r, N, res));
	for (i = 0; i < N; i++) {
		long long v = res[i];

		EXPECT_TRUE(v == 16 * KB || v == -ECANCELED) TH_LOG("op %u: %lld", i, v);
		done += res[i] == 16 * KB;
		cancelled += res[i] == -ECANCELED;
	}
	TH_LOG("%u written, %u cancelled", done, cancelled);
	EXPECT_EQ(0, wait_files(self->files0, 5000));
	/* what completed is in the file, what was cancelled is not */
	fd = open(f, O_RDONLY);
	ASSERT_LE(0, fd);
	for (i = 0; i < N; i++) {
		ssize_t n = pread(fd, self->buf + MB, 16 * KB, i * 16 * KB);

		if (res[i] == 16 * KB) {
			EXPECT_EQ(16 * KB, n);
			EXPECT_EQ(-1, pat_check(self->buf + MB, 16 * KB, 77, 0));
		}
	}
	close(fd);
}

TEST_F(st, sigkill_with_storage_io_in_flight_leaves_nothing)
{
	struct qd_proc before, p;
	char f[PATH_MAX];
	int pfd[2];
	pid_t pid;
	char c;

	ASSERT_EQ(0, delayed_nullb(&self->nb[0], "d", 1000));
	EXT4_ON_NULLB(1);
	path_in(f, self->dir[1], "killed");
	ASSERT_EQ(0, qd_proc_read(&before));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		unsigned char *buf = qd_raw_pages(MB);
		struct qd_seg segs[64], seg;
		unsigned int region, i;
		struct qd_raw r;
		int qd, qf;

		child_forget(&self->r);
		close(pfd[0]);
		CHILD_CHECK(buf);
		CHILD_CHECK(!qd_raw_init(&r, 256, 512));
		CHILD_CHECK(!qd_raw_register(r.fd, buf, MB, &region));
		qd = st_open(&r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
		qf = st_open(&r, f, O_RDWR | O_CREAT, 0600);
		CHILD_CHECK(qd >= 0 && qf >= 0);
		CHILD_CHECK(!submit_pops(&r, region, qd, 64, 4096, segs));
		seg = qd_seg((__u16)region, 0, 64 * KB);
		for (i = 0; i < 64; i++) {
			struct qd_sqe s = rw_sqe(QD_OP_PUSH, qf, &seg, 1, 1, i * 64 * KB, 100 + i);

			CHILD_CHECK(!qd_raw_queue_sqe(&r, &s));
		}
		CHILD_CHECK(qd_raw_submit(&r) == 64);
		CHILD_CHECK(write(pfd[1], "k", 1) == 1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	EXPECT_LE(before.files + 2, proc_key("files"));
	EXPECT_LE(before.inflight + 1, proc_key("inflight"));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, qd_wait_child(pid));
	/* the delayed bios finish, then the context and its files go */
	EXPECT_EQ(0, qd_proc_wait_idle(before.contexts, before.pinned_pages, 15000, &p));
	EXPECT_EQ(0, wait_files(before.files, 5000));
	EXPECT_EQ(before.inflight, proc_key("inflight"));
	EXPECT_EQ(before.pinned_pages, proc_key("pinned_pages"));
	EXPECT_EQ(before.queued, proc_key("queued"));
	EXPECT_EQ(before.regions, proc_key("regions"));
	/* the device and the file system can go */
	EXPECT_EQ(0, qd_st_umount(self->dir[1]));
	EXPECT_EQ(0, qd_nullb_remove(&self->nb[0]));
	close(pfd[0]);
}

/* --- many in flight ----------------------------------------------------------------- */

TEST_F_TIMEOUT(st, more_operations_than_max_inflight_all_complete, 90)
{
	enum { N = 400 };
	struct qd_raw r;
	unsigned char seen[N] = { 0 };
	unsigned int region, submitted = 0, reaped = 0, stalls = 0, bound;
	long long base = proc_key("inflight"), peak = 0;
	int qd;

	ASSERT_EQ(0, delayed_nullb(&self->nb[0], "d", 500));
	ASSERT_EQ(0, qd_raw_init(&r, 32, 32));
	bound = r.p.max_inflight;
	ASSERT_GT(N, (int)bound * 4);
	ASSERT_EQ(0, qd_raw_register(r.fd, self->buf, RBUF, &region));
	qd = st_open(&r, self->nb[0].dev, O_RDONLY | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	while (reaped < N) {
		struct qd_cqe cqe;
		unsigned int pending;
		long long now;
		int ret;

		while (submitted < N) {
			struct qd_seg seg = qd_seg((__u16)region, (submitted % 512) * 4096, 4096);
			struct qd_sqe s = rw_sqe(QD_OP_POP, qd, &seg, 1, 1,
						 (submitted % 4096) * 4096ULL, submitted);

			if (qd_raw_queue_sqe(&r, &s))
				break;
			submitted++;
		}
		/* the segments are read at submission: one SQ's worth at a time */
		pending = qd_raw_sq_pending(&r);
		ret = qd_raw_enter(&r, pending, 0, 0, 0);
		ASSERT_LE(0, ret);
		now = proc_key("inflight") - base;
		if (now > peak)
			peak = now;
		/* at the bound the rest waits in the SQ for a completion */
		stalls += (unsigned int)ret < pending;
		if ((unsigned int)ret < pending || submitted == N) {
			ASSERT_EQ(0, qd_raw_wait_cqe(&r, &cqe, NULL, WAIT_NS));
			ASSERT_GT((__u64)N, cqe.user_data);
			ASSERT_EQ(0, seen[cqe.user_data]++);
			ASSERT_EQ(4096, cqe.res);
			reaped++;
		}
		while (qd_raw_peek_cqe(&r, &cqe, NULL)) {
			ASSERT_GT((__u64)N, cqe.user_data);
			ASSERT_EQ(0, seen[cqe.user_data]++);
			ASSERT_EQ(4096, cqe.res);
			reaped++;
		}
	}
	TH_LOG("max_inflight %u, %u enters stopped at the bound, at most %lld in flight",
	       bound, stalls, peak);
	EXPECT_GE((long long)bound, peak);
	EXPECT_LT(0u, stalls);
	qd_raw_exit(&r);
}

/* --- visible ------------------------------------------------------------------------- */

TEST_F(st, debugfs_and_proc_show_storage_queues)
{
	long long files = proc_key("files"), rd = proc_key("file_bytes_read");
	long long wr = proc_key("file_bytes_written");
	char row[1024], f[PATH_MAX], want[PATH_MAX + 8];
	int qd, qf;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem4k));
	EXT4_ON_NULLB(1);
	path_in(f, self->dir[1], "shown");
	qd = st_open(&self->r, self->nb[0].dev, O_RDWR | O_DIRECT, 0);
	qf = st_open(&self->r, f, O_WRONLY | O_CREAT, 0600);
	ASSERT_LE(0, qd);
	ASSERT_LE(0, qf);
	EXPECT_EQ(files + 2, proc_key("files"));
	ASSERT_EQ(8192, PUSH(qd, 0, 8192));
	ASSERT_EQ(4096, POP(qd, 0, 4096));
	ASSERT_EQ(-EINVAL, POP(qd, 0, 100));
	ASSERT_EQ(1000, PUSH(qf, 0, 1000));
	EXPECT_LE(rd + 4096, proc_key("file_bytes_read"));
	EXPECT_LE(wr + 9192, proc_key("file_bytes_written"));
	if (qd_debugfs_ready())
		SKIP(return, "no debugfs");
	ASSERT_EQ(0, queue_row(qd, row, sizeof(row)));
	TH_LOG("%s", row);
	EXPECT_NE(NULL, strstr(row, " blk "));
	EXPECT_EQ(0, row_col(row, 4));		/* reads in flight */
	EXPECT_EQ(0, row_col(row, 5));		/* writes in flight */
	EXPECT_EQ(8192, row_col(row, 6));	/* bytes written */
	EXPECT_EQ(4096, row_col(row, 7));	/* bytes read */
	EXPECT_NE(NULL, strstr(row, " push,pop "));
	EXPECT_EQ(4096, row_val(row, "rpos"));
	EXPECT_EQ(8192, row_val(row, "wpos"));
	EXPECT_EQ(1, row_val(row, "direct"));
	EXPECT_EQ(4096, row_val(row, "align"));
	EXPECT_EQ(1, row_val(row, "errors"));
	EXPECT_EQ(2, row_val(row, "bios"));
	snprintf(want, sizeof(want), " path=%s\n", self->nb[0].dev);
	EXPECT_NE(NULL, strstr(row, want));
	ASSERT_EQ(0, queue_row(qf, row, sizeof(row)));
	TH_LOG("%s", row);
	EXPECT_NE(NULL, strstr(row, " file "));
	EXPECT_EQ(1000, row_col(row, 6));
	EXPECT_NE(NULL, strstr(row, " push "));
	EXPECT_EQ(1000, row_val(row, "wpos"));
	EXPECT_EQ(0, row_val(row, "direct"));
	EXPECT_EQ(1, row_val(row, "align"));
	EXPECT_EQ(0, row_val(row, "errors"));
	EXPECT_LE(1, row_val(row, "punted"));
	snprintf(want, sizeof(want), " path=%s\n", f);
	EXPECT_NE(NULL, strstr(row, want));
	/* closed: the row goes */
	EXPECT_EQ(0, st_close(&self->r, qf));
	EXPECT_EQ(-ENOENT, queue_row(qf, row, sizeof(row)));
}

/* --- submission ----------------------------------------------------------------------- */

TEST_F(st, the_sq_poller_leaves_open_to_the_submitter)
{
	struct qd_params prm = { .sq_entries = 8, .cq_entries = 16,
				 .flags = QD_SETUP_SQPOLL, .sq_idle_ms = 1000 };
	struct qd_sqe s;
	struct qd_cqe cqe;
	struct qd_raw r;
	char f[PATH_MAX];
	int i, fd;

	ASSERT_EQ(0, qd_tmpfs_mount("size=1m", self->dir[0]));
	path_in(f, self->dir[0], "polled");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, qd_raw_init_params(&r, &prm));
	s = qd_sqe_nop(1);
	ASSERT_EQ(0, qd_raw_queue_sqe(&r, &s));
	s = open_sqe(f, O_RDONLY, 0);
	ASSERT_EQ(0, qd_raw_queue_sqe(&r, &s));
	s = qd_sqe_nop(3);
	ASSERT_EQ(0, qd_raw_queue_sqe(&r, &s));
	if (*r.sq_flags & QD_SQ_F_NEED_WAKEUP)
		ASSERT_EQ(0, qd_raw_enter(&r, 0, 0, QD_ENTER_SQ_WAKEUP, 0));
	/* the poller runs the first NOP and stops at the OPEN */
	ASSERT_EQ(0, qd_raw_wait_cqe(&r, &cqe, NULL, WAIT_NS));
	EXPECT_EQ(1u, cqe.user_data);
	for (i = 0; i < 5; i++) {
		qd_sleep_ms(10);
		EXPECT_EQ(0u, qd_raw_cq_ready(&r));
		EXPECT_EQ(2u, qd_raw_sq_pending(&r));
	}
	/* QD_IOC_ENTER takes it, and the NOP behind it */
	EXPECT_EQ(2, qd_raw_enter(&r, 2, 0, 0, 0));
	ASSERT_EQ(0, qd_raw_wait_cqe(&r, &cqe, NULL, WAIT_NS));
	EXPECT_EQ(0x09e7u, cqe.user_data);
	EXPECT_LE(0, cqe.res);
	ASSERT_EQ(0, qd_raw_wait_cqe(&r, &cqe, NULL, WAIT_NS));
	EXPECT_EQ(3u, cqe.user_data);
	qd_raw_exit(&r);
}

/* --- through libqd ------------------------------------------------------------------ */

static const struct timespec LQ_WAIT = { 10, 0 };

/* Wait for qt: its result (bytes or -errno), *qr filled. */
static int64_t lq_wait(qd_token_t qt, struct qd_result *qr)
{
	int ret = qd_wait(qr, qt, &LQ_WAIT);

	return ret ? ret : qr->ret;
}

/* A positional push through libqd: its result, or the call's error. */
static int64_t lq_pushat(int qd, const struct qd_sga *sga, uint64_t off)
{
	struct qd_result qr;
	qd_token_t qt;
	int ret = qd_pushat(&qt, qd, sga, off);

	return ret ? ret : lq_wait(qt, &qr);
}

TEST_F(st, libqd_direct_io_on_a_block_device_with_its_own_buffers)
{
	struct qd_sga a, small;
	struct qd_result qr;
	qd_token_t qt;
	int qd;

	ASSERT_EQ(0, qd_nullb_create(&self->nb[0], "a", &nb_mem4k));
	ASSERT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_open(&qd, self->nb[0].dev, O_RDWR | O_DIRECT, 0));
	a = qd_sgaalloc(256 * KB);
	ASSERT_EQ(1u, a.numsegs);
	pat_fill(a.segs[0].buf, 256 * KB, 41, 40960);
	EXPECT_EQ(256 * KB, lq_pushat(qd, &a, 40960));
	/* libqd's buffer: QD_FILE_POP_SIZE (64 KiB), 4096-aligned */
	ASSERT_EQ(0, qd_popat(&qt, qd, NULL, 40960 + 8192));
	ASSERT_EQ(64 * KB, lq_wait(qt, &qr));
	ASSERT_EQ(1u, qr.value.sga.numsegs);
	EXPECT_EQ(64 * KB, qr.value.sga.segs[0].len);
	EXPECT_EQ(0u, (uintptr_t)qr.value.sga.segs[0].buf % 4096);
	EXPECT_EQ(-1, pat_check(qr.value.sga.segs[0].buf, 64 * KB, 41, 40960 + 8192));
	EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
	ASSERT_EQ(0, qd_sync(&qt, qd, QD_SYNC_FLUSH));
	EXPECT_EQ(0, lq_wait(qt, &qr));
	EXPECT_EQ((int)QD_OPC_SYNC, (int)qr.opcode);
	/* misaligned for 4 KiB blocks: the offset, then the length */
	EXPECT_EQ(-EINVAL, lq_pushat(qd, &a, 512));
	small = a;
	small.segs[0].len = 1000;
	EXPECT_EQ(-EINVAL, lq_pushat(qd, &small, 0));
	EXPECT_EQ(0, qd_close(qd));
	EXPECT_EQ(0, qd_sgafree(&a));
}

TEST_F(st, libqd_pops_read_an_ext4_file_in_chunks_then_zero)
{
	enum { SIZE = 200000 };
	struct qd_result qr;
	char f[PATH_MAX];
	unsigned char *want;
	qd_token_t qt;
	int qd, fd, pass;

	EXT4_ON_NULLB(0);
	path_in(f, self->dir[0], "chunks");
	want = malloc(SIZE + 8);
	ASSERT_NE(NULL, want);
	pat_fill(want, SIZE + 8, 51, 0);
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(SIZE, write(fd, want, SIZE));
	close(fd);
	ASSERT_EQ(0, qd_init());
	for (pass = 0; pass < 2; pass++) {
		size_t have = 0;

		ASSERT_EQ(0, qd_open(&qd, f, O_RDONLY | (pass ? O_DIRECT : 0), 0));
		for (;;) {
			ASSERT_EQ(0, qd_pop(&qt, qd));
			ASSERT_LE(0, lq_wait(qt, &qr)) TH_LOG("pass %d at %zu", pass, have);
			if (!qr.ret)
				break;
			ASSERT_EQ(qr.ret, qr.value.sga.segs[0].len);
			ASSERT_GE((int64_t)SIZE, (int64_t)have + qr.ret);
			EXPECT_EQ(0, memcmp(want + have, qr.value.sga.segs[0].buf, qr.ret))
				TH_LOG("pass %d at %zu", pass, have);
			have += qr.ret;
			EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
		}
		EXPECT_EQ((size_t)SIZE, have);
		EXPECT_EQ(0, qd_close(qd));
	}
	free(want);
}

TEST_F(st, libqd_results_carry_device_errors)
{
	struct qd_sga a;
	struct qd_result qr;
	qd_token_t qt;
	int qd;

	ASSERT_EQ(0, qd_dm_create(&self->dm[0], "e", "0 2048 error"));
	ASSERT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_open(&qd, self->dm[0].dev, O_RDWR | O_DIRECT, 0));
	a = qd_sgaalloc(4096);
	ASSERT_EQ(1u, a.numsegs);
	EXPECT_EQ(-EIO, lq_pushat(qd, &a, 0));
	ASSERT_EQ(0, qd_popat(&qt, qd, &a, 4096));
	EXPECT_EQ(-EIO, lq_wait(qt, &qr));
	ASSERT_EQ(0, qd_sync(&qt, qd, 0));
	EXPECT_EQ(0, lq_wait(qt, &qr));
	EXPECT_EQ(0, qd_close(qd));
	EXPECT_EQ(0, qd_sgafree(&a));
}

TEST_F(st, libqd_close_with_io_in_flight_completes_every_token)
{
	enum { N = 32 };
	struct qd_result qr;
	qd_token_t qt[N];
	int qd, i;

	ASSERT_EQ(0, delayed_nullb(&self->nb[0], "d", 300));
	ASSERT_EQ(0, qd_init());
	ASSERT_EQ(0, qd_open(&qd, self->nb[0].dev, O_RDONLY | O_DIRECT, 0));
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, qd_popat(&qt[i], qd, NULL, i * 64 * KB));
	ASSERT_EQ(0, qd_submit());
	EXPECT_EQ(0, qd_close(qd));
	for (i = 0; i < N; i++) {
		int64_t n = lq_wait(qt[i], &qr);

		EXPECT_TRUE(n == 64 * KB || n == -ECANCELED) TH_LOG("token %d: %lld", i, (long long)n);
		if (n > 0)
			EXPECT_EQ(0, qd_sgafree(&qr.value.sga));
	}
	EXPECT_EQ(-EBADF, qd_close(qd));
}

/* --- NVMe (scripts/vm's QEMU NVMe namespace, when there is one) ---------------------- */

TEST_F(st, nvme_direct_round_trip_and_flush)
{
	const char *dev = nvme_dev();
	int qd;

	if (!dev)
		SKIP(return, "no NVMe namespace ($QD_NVME)");
	qd = st_open(&self->r, dev, O_RDWR | O_DIRECT, 0);
	ASSERT_LE(0, qd);
	pat_fill(self->buf, MB, 99, 0);
	EXPECT_EQ((long long)MB, PUSHAT(qd, 0, MB, 0));
	EXPECT_EQ(0, st_sync(&self->r, qd, QD_SYNC_FLUSH));
	memset(self->buf, 0, MB);
	EXPECT_EQ((long long)MB, POPAT(qd, 0, MB, 0));
	EXPECT_EQ(-1, pat_check(self->buf, MB, 99, 0));
	EXPECT_EQ(-EINVAL, PUSHAT(qd, 0, 4096, 1));
}

TEST_HARNESS_MAIN
