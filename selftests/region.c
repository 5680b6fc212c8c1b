// SPDX-License-Identifier: GPL-2.0
/*
 * region: QD_IOC_REGISTER / QD_IOC_UNREGISTER, segment bounds, references
 * held by queued elements, memlock accounting, which mappings may be
 * registered (anonymous, shmem, hugetlbfs; not other files), through the
 * raw ABI.
 */
#include <sys/statfs.h>

#include "qd_raw.h"
#include "qd_child.h"
#include "qd_proc.h"
#include "harness.h"

#define REGION_BYTES	(64 * 1024)
#define MAX_REGIONS_U	((unsigned int)QD_MAX_REGIONS)

FIXTURE(region) {
	struct qd_raw r;
	size_t pg;
	char *buf;	/* REGION_BYTES, not registered by the fixture */
};

FIXTURE_SETUP(region)
{
	self->pg = qd_page_size();
	/* earlier tests' contexts may still be on their way out: pins are per user */
	qd_proc_wait_idle(0, 0, 3000, NULL);
	ASSERT_EQ(0, qd_raw_init(&self->r, 16, 32));
	self->buf = qd_raw_pages(REGION_BYTES);
	ASSERT_NE(NULL, self->buf);
	memset(self->buf, 0x5a, REGION_BYTES);
}

FIXTURE_TEARDOWN(region)
{
	qd_raw_exit(&self->r);
	if (self->buf)
		munmap(self->buf, REGION_BYTES);
}

static int reg_raw(int fd, struct qd_region_reg *reg)
{
	return qd_raw_ioctl(fd, QD_IOC_REGISTER, reg);
}

TEST_F(region, register_page_aligned_memory_returns_ids)
{
	unsigned int a, b, c;

	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, self->pg, &a));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf + self->pg, 2 * self->pg, &b));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf + 4 * self->pg,
				     REGION_BYTES - 4 * self->pg, &c));
	EXPECT_GT(MAX_REGIONS_U, a);
	EXPECT_GT(MAX_REGIONS_U, b);
	EXPECT_GT(MAX_REGIONS_U, c);
	EXPECT_NE(a, b);
	EXPECT_NE(b, c);
	EXPECT_NE(a, c);
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, b));
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, a));
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, c));
}

TEST_F(region, unaligned_address_is_einval)
{
	EXPECT_EQ(-EINVAL, qd_raw_register(self->r.fd, self->buf + 1, self->pg, NULL));
	EXPECT_EQ(-EINVAL, qd_raw_register(self->r.fd, self->buf + 512, self->pg, NULL));
	EXPECT_EQ(-EINVAL, qd_raw_register(self->r.fd, self->buf + self->pg - 8,
					   2 * self->pg, NULL));
}

TEST_F(region, zero_length_is_einval)
{
	EXPECT_EQ(-EINVAL, qd_raw_register(self->r.fd, self->buf, 0, NULL));
}

TEST_F(region, length_not_page_multiple_is_einval)
{
	EXPECT_EQ(-EINVAL, qd_raw_register(self->r.fd, self->buf, 1, NULL));
	EXPECT_EQ(-EINVAL, qd_raw_register(self->r.fd, self->buf, self->pg + 100, NULL));
	EXPECT_EQ(-EINVAL, qd_raw_register(self->r.fd, self->buf, 2 * self->pg - 1, NULL));
}

TEST_F(region, length_above_max_is_einval)
{
	struct qd_region_reg reg = { .addr = (__u64)(uintptr_t)self->buf };

	reg.len = QD_MAX_REGION_BYTES + self->pg;
	EXPECT_EQ(-EINVAL, reg_raw(self->r.fd, &reg));
	reg.len = 1ULL << 40;
	EXPECT_EQ(-EINVAL, reg_raw(self->r.fd, &reg));
	/* a length that wraps addr + len around 2^64 */
	reg.len = (~0ULL - self->pg + 1) & ~(__u64)(self->pg - 1);
	EXPECT_EQ(-EINVAL, reg_raw(self->r.fd, &reg));
}

TEST_F(region, nonzero_flags_or_resv_is_einval)
{
	struct qd_region_reg reg = {
		.addr = (__u64)(uintptr_t)self->buf, .len = self->pg,
	};

	reg.flags = 1;
	EXPECT_EQ(-EINVAL, reg_raw(self->r.fd, &reg));
	reg.flags = 0;
	reg.resv[0] = 1;
	EXPECT_EQ(-EINVAL, reg_raw(self->r.fd, &reg));
	reg.resv[0] = 0;
	reg.resv[1] = 1ULL << 63;
	EXPECT_EQ(-EINVAL, reg_raw(self->r.fd, &reg));
	reg.resv[1] = 0;
	EXPECT_EQ(0, reg_raw(self->r.fd, &reg));
}

TEST_F(region, unmapped_memory_is_efault)
{
	struct qd_proc before, after;
	char *m;

	m = qd_raw_pages(4 * self->pg);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, qd_proc_read(&before));
	/* a hole at the end of an otherwise mapped range */
	ASSERT_EQ(0, munmap(m + 2 * self->pg, 2 * self->pg));
	EXPECT_EQ(-EFAULT, qd_raw_register(self->r.fd, m, 4 * self->pg, NULL));
	/* entirely unmapped */
	EXPECT_EQ(-EFAULT, qd_raw_register(self->r.fd, m + 2 * self->pg, 2 * self->pg, NULL));
	/* a kernel address */
	EXPECT_EQ(-EFAULT, qd_raw_register(self->r.fd, (void *)0xffff888000000000ULL,
					   self->pg, NULL));
	/* the pages pinned before the hole were released again */
	ASSERT_EQ(0, qd_proc_read(&after));
	EXPECT_EQ(before.pinned_pages, after.pinned_pages);
	EXPECT_EQ(before.regions, after.regions);
	munmap(m, 2 * self->pg);
}

TEST_F(region, unregister_unknown_id_is_enoent)
{
	unsigned int id;

	EXPECT_EQ(-ENOENT, qd_raw_unregister(self->r.fd, 0));
	EXPECT_EQ(-ENOENT, qd_raw_unregister(self->r.fd, 200));
	EXPECT_EQ(-ENOENT, qd_raw_unregister(self->r.fd, QD_MAX_REGIONS));
	EXPECT_EQ(-ENOENT, qd_raw_unregister(self->r.fd, 0xffffffffu));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, self->pg, &id));
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, id));
	EXPECT_EQ(-ENOENT, qd_raw_unregister(self->r.fd, id));
}

/* Push one segment, return the push CQE's res. */
static long long push_one(struct __test_metadata *_metadata, struct qd_raw *r,
			  int qd, struct qd_seg seg)
{
	struct qd_sqe s = qd_sqe_push(qd, &seg, 1, 77);
	struct qd_cqe cqe = { .res = -9999 };

	EXPECT_EQ(0, qd_raw_do(r, &s, &cqe, NULL));
	EXPECT_EQ(77u, cqe.user_data);
	return cqe.res;
}

TEST_F(region, segment_in_unregistered_region_is_efault)
{
	unsigned int id;
	int qd;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qd));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, REGION_BYTES, &id));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg((id + 1) % QD_MAX_REGIONS, 0, 16)));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(QD_MAX_REGIONS - 1, 0, 16)));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(0xffff, 0, 16)));
	/* an id that was registered once and is gone */
	ASSERT_EQ(0, qd_raw_unregister(self->r.fd, id));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(id, 0, 16)));
}

TEST_F(region, segment_outside_its_region_is_efault)
{
	const __u64 len = 2 * self->pg;
	unsigned int id;
	int qd;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qd));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, len, &id));
	/* inside, up to the last byte */
	EXPECT_EQ((long long)len, push_one(_metadata, &self->r, qd, qd_seg(id, 0, len)));
	EXPECT_EQ(1, push_one(_metadata, &self->r, qd, qd_seg(id, len - 1, 1)));
	/* past the end */
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(id, 0, len + 1)));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(id, len - 10, 20)));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(id, len, 1)));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(id, 1ULL << 40, 16)));
	/* offset + len overflows 2^64 and would wrap to a small number */
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(id, ~0ULL - 5, 10)));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd, qd_seg(id, ~0ULL, 0xffffffffu)));
	EXPECT_EQ(-EFAULT, push_one(_metadata, &self->r, qd,
				    qd_seg(id, ~0ULL - 0xfffffffeULL + 16, 0xffffffffu)));
}

TEST_F(region, bad_segment_anywhere_in_element_rejects_whole_push)
{
	struct qd_seg segs[3];
	struct qd_sqe s;
	struct qd_cqe cqe;
	unsigned int id;
	int qd;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qd));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, self->pg, &id));
	segs[0] = qd_seg(id, 0, 16);
	segs[1] = qd_seg(id, 16, 16);
	segs[2] = qd_seg(id, self->pg - 8, 16);
	s = qd_sqe_push(qd, segs, 3, 1);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	EXPECT_EQ(-EFAULT, cqe.res);
	/* nothing was queued and nothing references the region */
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, id));
	s = qd_sqe_pop(qd, 2);
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
	ASSERT_EQ(1, qd_raw_submit(&self->r));
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &cqe, NULL, 20 * QD_RAW_MS));
}

TEST_F(region, unregister_while_element_queued_is_ebusy)
{
	struct qd_sqe s;
	struct qd_cqe cqe;
	struct qd_elem el;
	unsigned int id, other;
	int qd;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qd));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, self->pg, &id));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf + self->pg, self->pg, &other));
	ASSERT_EQ(100, push_one(_metadata, &self->r, qd, qd_seg(id, 0, 100)));
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->r.fd, id));
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->r.fd, id));
	/* an unrelated region is not held */
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, other));
	s = qd_sqe_pop(qd, 5);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, &el));
	ASSERT_EQ(100, cqe.res);
	EXPECT_EQ(id, el.segs[0].region);
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, id));
}

TEST_F(region, element_holds_every_region_it_names)
{
	struct qd_seg segs[2];
	struct qd_sqe s;
	struct qd_cqe cqe;
	unsigned int a, b;
	int qd;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qd));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, self->pg, &a));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf + self->pg, self->pg, &b));
	segs[0] = qd_seg(a, 0, 10);
	segs[1] = qd_seg(b, 0, 10);
	s = qd_sqe_push(qd, segs, 2, 1);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	ASSERT_EQ(20, cqe.res);
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->r.fd, a));
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->r.fd, b));
	s = qd_sqe_pop(qd, 2);
	ASSERT_EQ(0, qd_raw_do(&self->r, &s, &cqe, NULL));
	ASSERT_EQ(20, cqe.res);
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, a));
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, b));
}

TEST_F(region, pending_push_holds_region_until_queue_closed)
{
	struct qd_raw *r = &self->r;
	struct qd_seg sa, sb;
	struct qd_sqe s;
	struct qd_cqe cqe;
	unsigned int a, b;
	int qd;

	ASSERT_EQ(0, qd_raw_queue(r->fd, 1, &qd));
	ASSERT_EQ(0, qd_raw_register(r->fd, self->buf, self->pg, &a));
	ASSERT_EQ(0, qd_raw_register(r->fd, self->buf + self->pg, self->pg, &b));
	sa = qd_seg(a, 0, 8);
	sb = qd_seg(b, 0, 8);
	ASSERT_EQ(8, push_one(_metadata, r, qd, sa));
	/* the queue is full: this push stays pending */
	s = qd_sqe_push(qd, &sb, 1, 2);
	ASSERT_EQ(0, qd_raw_queue_sqe(r, &s));
	ASSERT_EQ(1, qd_raw_submit(r));
	ASSERT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(r, &cqe, NULL, 20 * QD_RAW_MS));
	EXPECT_EQ(-EBUSY, qd_raw_unregister(r->fd, a));
	EXPECT_EQ(-EBUSY, qd_raw_unregister(r->fd, b));
	/* closing the queue drops the element and cancels the push */
	ASSERT_EQ(0, qd_raw_close(r->fd, qd));
	ASSERT_EQ(0, qd_raw_wait_cqe(r, &cqe, NULL, 1000 * QD_RAW_MS));
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_EQ(0, qd_raw_unregister(r->fd, a));
	EXPECT_EQ(0, qd_raw_unregister(r->fd, b));
}

TEST_F(region, pinned_pages_accounted_and_returned)
{
	const long long kb = REGION_BYTES / 1024;
	const long long pages = REGION_BYTES / self->pg;
	struct qd_proc p0, p1, p2;
	long long pin0, pin1, pin2, lck0, lck1, lck2;
	unsigned int id;

	pin0 = qd_status_kb(getpid(), "VmPin");
	lck0 = qd_status_kb(getpid(), "VmLck");
	ASSERT_EQ(0, qd_proc_read(&p0));
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, REGION_BYTES, &id));
	pin1 = qd_status_kb(getpid(), "VmPin");
	lck1 = qd_status_kb(getpid(), "VmLck");
	ASSERT_EQ(0, qd_proc_read(&p1));
	EXPECT_EQ(p0.pinned_pages + pages, p1.pinned_pages);
	EXPECT_EQ(p0.regions + 1, p1.regions);
	TH_LOG("VmPin %lld -> %lld kB, VmLck %lld -> %lld kB", pin0, pin1, lck0, lck1);
	/* the pin is charged to this mm as VmPin (pinned_vm) or VmLck (locked_vm) */
	EXPECT_TRUE(pin1 - pin0 == kb || lck1 - lck0 == kb ||
		    (pin0 < 0 && lck0 < 0));

	ASSERT_EQ(0, qd_raw_unregister(self->r.fd, id));
	pin2 = qd_status_kb(getpid(), "VmPin");
	lck2 = qd_status_kb(getpid(), "VmLck");
	ASSERT_EQ(0, qd_proc_read(&p2));
	EXPECT_EQ(p0.pinned_pages, p2.pinned_pages);
	EXPECT_EQ(p0.regions, p2.regions);
	EXPECT_EQ(pin0, pin2);
	EXPECT_EQ(lck0, lck2);
}

TEST_F(region, memlock_limit_enforced_without_cap_ipc_lock)
{
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw c;
		char *m = qd_raw_pages(256 * 1024);
		unsigned int a, b;

		CHILD_CHECK(m);
		CHILD_CHECK(qd_drop_ipc_lock() == 0);
		CHILD_CHECK(qd_set_memlock(64 * 1024) == 0);
		CHILD_CHECK(qd_raw_init(&c, 4, 8) == 0);
		CHILD_CHECK(qd_raw_register(c.fd, m, 128 * 1024, NULL) == -ENOMEM);
		CHILD_CHECK(qd_raw_register(c.fd, m, 32 * 1024, &a) == 0);
		/* 32 + 48 KiB is past the limit */
		CHILD_CHECK(qd_raw_register(c.fd, m + 64 * 1024, 48 * 1024, &b) == -ENOMEM);
		/* unregistering returns the charge */
		CHILD_CHECK(qd_raw_unregister(c.fd, a) == 0);
		CHILD_CHECK(qd_raw_register(c.fd, m + 64 * 1024, 48 * 1024, &b) == 0);
		CHILD_CHECK(qd_raw_unregister(c.fd, b) == 0);
		CHILD_CHECK(qd_raw_register(c.fd, m, 32 * 1024, &a) == 0);
		CHILD_CHECK(qd_raw_register(c.fd, m + 128 * 1024, 16 * 1024, &b) == 0);
		qd_raw_exit(&c);
		_exit(0);
	}
	EXPECT_EQ(0, qd_wait_child(pid));
}

TEST_F(region, memlock_limit_not_enforced_with_cap_ipc_lock)
{
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct qd_raw c;
		char *m = qd_raw_pages(256 * 1024);
		unsigned int a;

		CHILD_CHECK(m);
		CHILD_CHECK(qd_set_memlock(64 * 1024) == 0);
		CHILD_CHECK(qd_raw_init(&c, 4, 8) == 0);
		CHILD_CHECK(qd_raw_register(c.fd, m, 256 * 1024, &a) == 0);
		CHILD_CHECK(qd_raw_unregister(c.fd, a) == 0);
		qd_raw_exit(&c);
		_exit(0);
	}
	EXPECT_EQ(0, qd_wait_child(pid));
}

TEST_F(region, more_than_max_regions_is_enospc)
{
	char *m = qd_raw_pages((QD_MAX_REGIONS + 1) * self->pg);
	unsigned int ids[QD_MAX_REGIONS];
	unsigned char seen[QD_MAX_REGIONS] = { 0 };
	unsigned int i, extra;

	ASSERT_NE(NULL, m);
	for (i = 0; i < QD_MAX_REGIONS; i++) {
		ASSERT_EQ(0, qd_raw_register(self->r.fd, m + i * self->pg, self->pg, &ids[i]))
			TH_LOG("region %u", i);
		ASSERT_GT(MAX_REGIONS_U, ids[i]);
		EXPECT_EQ(0, seen[ids[i]]);
		seen[ids[i]] = 1;
	}
	EXPECT_EQ(-ENOSPC, qd_raw_register(self->r.fd, m + QD_MAX_REGIONS * self->pg,
					   self->pg, NULL));
	EXPECT_EQ(-ENOSPC, qd_raw_register(self->r.fd, m, self->pg, NULL));
	/* a freed id can be used again */
	ASSERT_EQ(0, qd_raw_unregister(self->r.fd, ids[100]));
	EXPECT_EQ(0, qd_raw_register(self->r.fd, m + QD_MAX_REGIONS * self->pg,
				     self->pg, &extra));
	EXPECT_GT(MAX_REGIONS_U, extra);
	munmap(m, (QD_MAX_REGIONS + 1) * self->pg);
}

/* --- which mappings may be pinned ----------------------------------------- */

#define SH_PATH	"/bin/sh"	/* a regular file on the guest's 9p root */

/* Map pages of SH_PATH privately and writably at addr (NULL: anywhere). */
static char *map_file_private(void *addr, size_t len)
{
	struct stat st;
	char *m;
	int fd = open(SH_PATH, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || (size_t)st.st_size < len) {
		close(fd);
		return NULL;
	}
	m = mmap(addr, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | (addr ? MAP_FIXED : 0), fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

/*
 * Registering [addr, addr + len) is refused with -EOPNOTSUPP and leaves
 * nothing behind: no region, no pinned page, no pinned_vm.
 */
static void expect_refused(struct __test_metadata *_metadata, int fd,
			   void *addr, size_t len)
{
	struct qd_proc before, after;
	long long pin0, pin1;

	ASSERT_EQ(0, qd_proc_read(&before));
	pin0 = qd_status_kb(getpid(), "VmPin");
	EXPECT_EQ(-EOPNOTSUPP, qd_raw_register(fd, addr, len, NULL));
	ASSERT_EQ(0, qd_proc_read(&after));
	pin1 = qd_status_kb(getpid(), "VmPin");
	EXPECT_EQ(before.pinned_pages, after.pinned_pages);
	EXPECT_EQ(before.regions, after.regions);
	EXPECT_EQ(pin0, pin1);
}

/* Registering works; the region is unregistered again. */
static void expect_allowed(struct __test_metadata *_metadata, int fd,
			   void *addr, size_t len, const char *what)
{
	unsigned int id;
	int ret = qd_raw_register(fd, addr, len, &id);

	EXPECT_EQ(0, ret) TH_LOG("%s: %s", what, strerror(-ret));
	if (!ret)
		EXPECT_EQ(0, qd_raw_unregister(fd, id));
}

TEST_F(region, private_file_mapping_is_eopnotsupp)
{
	const size_t len = 2 * self->pg;
	struct statfs sf;
	char *m = map_file_private(NULL, len);

	ASSERT_NE(NULL, m) TH_LOG("cannot map %s", SH_PATH);
	if (!statfs(SH_PATH, &sf))
		TH_LOG("%s: f_type %#lx (9p reports the host's)", SH_PATH,
		       (unsigned long)sf.f_type);
	/* untouched: page cache pages */
	expect_refused(_metadata, self->r.fd, m, len);
	/* written: private copies, but still a file's mapping */
	memset(m, 0, len);
	expect_refused(_metadata, self->r.fd, m, len);
	munmap(m, len);
}

/* ramfs is not shmem: a shared mapping of one of its files is page cache. */
TEST_F(region, shared_ramfs_mapping_is_eopnotsupp)
{
	char dir[] = "/tmp/qd-ramfs-XXXXXX";
	pid_t pid;

	ASSERT_NE(NULL, mkdtemp(dir));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		const size_t len = 4 * self->pg;
		struct qd_proc before, after;
		struct statfs sf;
		struct qd_raw c;
		char path[64];
		char *m;
		int fd;

		/* a private mount namespace: the guest's mounts stay as they are */
		CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
		CHILD_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
		CHILD_CHECK(mount("ramfs", dir, "ramfs", 0, NULL) == 0);
		CHILD_CHECK(statfs(dir, &sf) == 0 && sf.f_type == RAMFS_MAGIC);
		snprintf(path, sizeof(path), "%s/f", dir);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(ftruncate(fd, (off_t)len) == 0);
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHILD_CHECK(m != MAP_FAILED);
		memset(m, 0x5a, len);
		CHILD_CHECK(qd_raw_init(&c, 4, 8) == 0);
		CHILD_CHECK(qd_proc_read(&before) == 0);
		CHILD_CHECK(qd_raw_register(c.fd, m, len, NULL) == -EOPNOTSUPP);
		CHILD_CHECK(qd_proc_read(&after) == 0);
		CHILD_CHECK(before.pinned_pages == after.pinned_pages);
		CHILD_CHECK(before.regions == after.regions);
		qd_raw_exit(&c);
		munmap(m, len);
		close(fd);
		umount2(dir, MNT_DETACH);
		_exit(0);
	}
	EXPECT_EQ(0, qd_wait_child(pid));
	rmdir(dir);
}

TEST_F(region, range_spanning_anonymous_and_file_vmas_is_eopnotsupp)
{
	const size_t len = 4 * self->pg, half = 2 * self->pg;
	char *a, *b;

	/* [anon anon file file] */
	a = qd_raw_pages(len);
	ASSERT_NE(NULL, a);
	memset(a, 1, len);
	ASSERT_EQ(a + half, map_file_private(a + half, half));
	expect_refused(_metadata, self->r.fd, a, len);
	/* the anonymous half alone is fine */
	expect_allowed(_metadata, self->r.fd, a, half, "anonymous half");

	/* [file file anon anon] */
	b = qd_raw_pages(len);
	ASSERT_NE(NULL, b);
	memset(b, 1, len);
	ASSERT_EQ(b, map_file_private(b, half));
	expect_refused(_metadata, self->r.fd, b, len);
	expect_allowed(_metadata, self->r.fd, b + half, half, "anonymous half");
	munmap(a, len);
	munmap(b, len);
}

/*
 * What the refusal must not catch: anonymous memory, private or shared,
 * and shmem files (memfd, tmpfs in /dev/shm), shared or private; hugetlbfs
 * when the guest has huge pages.
 */
TEST_F(region, anonymous_and_shmem_mappings_stay_allowed)
{
	const size_t len = 4 * self->pg;
	char path[64];
	struct statfs sf;
	char *m;
	int fd;

	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	expect_allowed(_metadata, self->r.fd, m, len, "MAP_SHARED|MAP_ANONYMOUS");
	munmap(m, len);
	expect_allowed(_metadata, self->r.fd, self->buf, len, "MAP_PRIVATE|MAP_ANONYMOUS");

	fd = memfd_create("qd-region", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, (off_t)len));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	expect_allowed(_metadata, self->r.fd, m, len, "memfd MAP_SHARED");
	munmap(m, len);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	expect_allowed(_metadata, self->r.fd, m, len, "memfd MAP_PRIVATE");
	munmap(m, len);
	close(fd);

	ASSERT_EQ(0, statfs("/dev/shm", &sf));
	ASSERT_EQ(TMPFS_MAGIC, sf.f_type) TH_LOG("/dev/shm is not tmpfs");
	snprintf(path, sizeof(path), "/dev/shm/qd-region-%d", getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	unlink(path);
	ASSERT_EQ(0, ftruncate(fd, (off_t)len));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	expect_allowed(_metadata, self->r.fd, m, len, "/dev/shm MAP_SHARED");
	munmap(m, len);
	close(fd);

	m = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (m == MAP_FAILED) {
		TH_LOG("no huge pages in this guest: hugetlbfs not tried");
	} else {
		expect_allowed(_metadata, self->r.fd, m, 2 << 20, "MAP_HUGETLB");
		munmap(m, 2 << 20);
	}
}

TEST_HARNESS_MAIN
