// SPDX-License-Identifier: GPL-2.0
/*
 * share: memory queues shared between processes (QD_IOC_QUEUE_EXPORT and
 * QD_IOC_QUEUE_IMPORT) through the raw ABI. Contexts are per process, so
 * every peer is a forked child that opens its own context (and closes the
 * inherited fd of its parent's); the export fd reaches it by inheritance or
 * over a socketpair with SCM_RIGHTS. The memory is a memfd (or shared
 * anonymous memory) that each side maps and registers itself: an element
 * crosses without a copy, its segments rewritten into the popper's regions.
 *
 * In a child, failures are CHILD_CHECK()s (exit status 1 and the line on
 * stderr); the parent asserts the child's status.
 */
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "qd_child.h"

#include "qd_mq_user.h"

#include "harness.h"

#define MEM_BYTES	(64 * 1024)
#define SHORT_NS	(30 * QD_RAW_MS)	/* "stays pending" window */
#define LONG_NS		(2000 * QD_RAW_MS)	/* "must complete" bound */
#define HEAR_MS		20000			/* a peer's message */
#define HEAR_ERR	(-0x7fffffffffffffffLL)

/* --- the sharing ioctls ------------------------------------------------- */

static int share_export(int fd, int qd, unsigned int rights, int *xfd)
{
	struct qd_queue_export e = { .qd = qd, .rights = rights };
	int ret = qd_raw_ioctl(fd, QD_IOC_QUEUE_EXPORT, &e);

	if (!ret)
		*xfd = e.fd;
	return ret;
}

static int share_import(int fd, int xfd, int *qd, unsigned int *rights)
{
	struct qd_queue_import im = { .fd = xfd };
	int ret = qd_raw_ioctl(fd, QD_IOC_QUEUE_IMPORT, &im);

	if (!ret) {
		*qd = im.qd;
		if (rights)
			*rights = im.rights;
	}
	return ret;
}

/* --- messages between parent and child ---------------------------------- */

/* Send v, and fd (>= 0) with SCM_RIGHTS: 0 or -errno. */
static int tell_fd(int sock, long long v, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &v, .iov_len = sizeof(v) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(v) ? 0 : -errno;
}

static int tell(int sock, long long v)
{
	return tell_fd(sock, v, -1);
}

/* The next value (and its fd, or -1, if fd), waiting HEAR_MS; HEAR_ERR on error. */
static long long hear_fd(int sock, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	long long v;
	struct iovec iov = { .iov_base = &v, .iov_len = sizeof(v) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *cm;

	if (fd)
		*fd = -1;
	if (poll(&p, 1, HEAR_MS) != 1)
		return HEAR_ERR;
	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(v))
		return HEAR_ERR;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int got;

			memcpy(&got, CMSG_DATA(cm), sizeof(int));
			if (fd)
				*fd = got;
			else
				close(got);
		}
	}
	return v;
}

static long long hear(int sock)
{
	return hear_fd(sock, NULL);
}

/* --- memory ------------------------------------------------------------- */

/* A memfd of len bytes: fd or -errno. */
static int mem_create(size_t len)
{
	int fd = memfd_create("qd-share", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Map len bytes of memfd from file offset off, MAP_SHARED, or NULL. */
static char *mem_map(int memfd, off_t off, size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, off);

	return m == MAP_FAILED ? NULL : m;
}

/* The byte pattern of payload seed at byte i. */
static char pat(unsigned int seed, size_t i)
{
	return (char)(seed * 131 + i * 7 + 1);
}

static void fill(char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pat(seed, i);
}

static int check(const char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pat(seed, i))
			return 0;
	return 1;
}

/* --- a peer: a forked child with its own context ------------------------ */

struct peer {
	struct qd_raw r;
	char *mem;		/* its own mapping of the memfd */
	size_t mem_len;
	off_t mem_off;		/* file offset of mem */
	unsigned int region;	/* mem registered, when it is */
	unsigned int dummy;	/* a private region registered first */
};

/*
 * In a child: open a context, register a private page first (so that the
 * shared memory gets another region id than in the parent), then map
 * [off, off + len) of memfd and register it (len 0: no shared memory).
 */
static void peer_open(struct peer *p, int memfd, off_t off, size_t len)
{
	void *d;

	memset(p, 0, sizeof(*p));
	CHILD_CHECK(qd_raw_init(&p->r, 64, 128) == 0);
	d = qd_raw_pages(qd_page_size());
	CHILD_CHECK(d != NULL);
	CHILD_CHECK(qd_raw_register(p->r.fd, d, qd_page_size(), &p->dummy) == 0);
	if (!len)
		return;
	p->mem = mem_map(memfd, off, len);
	CHILD_CHECK(p->mem != NULL);
	p->mem_len = len;
	p->mem_off = off;
	CHILD_CHECK(qd_raw_register(p->r.fd, p->mem, len, &p->region) == 0);
	CHILD_CHECK(p->region != p->dummy);
}

/* In a child: one SQE, its CQE (and element). */
static void peer_do(struct peer *p, struct qd_sqe s, struct qd_cqe *cqe,
		    struct qd_elem *elem)
{
	CHILD_CHECK(qd_raw_do(&p->r, &s, cqe, elem) == 0);
	CHILD_CHECK(cqe->user_data == s.user_data);
}

static void peer_submit(struct peer *p, struct qd_sqe s)
{
	CHILD_CHECK(qd_raw_queue_sqe(&p->r, &s) == 0);
	CHILD_CHECK(qd_raw_submit(&p->r) == 1);
}

static void peer_reap(struct peer *p, struct qd_cqe *cqe, struct qd_elem *elem)
{
	CHILD_CHECK(qd_raw_wait_cqe(&p->r, cqe, elem, LONG_NS) == 0);
}

static void peer_nothing_more(struct peer *p)
{
	struct qd_cqe c;
	int ret = qd_raw_wait_cqe(&p->r, &c, NULL, SHORT_NS);

	if (ret != -ETIMEDOUT)
		fprintf(stderr, "# child: unexpected CQE user_data %llu res %lld\n",
			c.user_data, c.res);
	CHILD_CHECK(ret == -ETIMEDOUT);
}

/* --- the fixture: the parent's context, memfd, region, queue ------------ */

FIXTURE(share) {
	struct qd_raw r;
	int memfd;
	char *mem;		/* the whole memfd, from file offset 0 */
	unsigned int region;
	int qd;
	int sv[2];		/* [0] the parent's end, [1] the child's */
	pid_t pid;
};

FIXTURE_SETUP(share)
{
	self->pid = 0;
	self->sv[0] = self->sv[1] = -1;
	ASSERT_EQ(0, qd_raw_init(&self->r, 64, 128));
	ASSERT_TRUE(!!(self->r.p.features & QD_FEAT_SHARED_QUEUE));
	self->memfd = mem_create(MEM_BYTES);
	ASSERT_LE(0, self->memfd);
	self->mem = mem_map(self->memfd, 0, MEM_BYTES);
	ASSERT_NE(NULL, self->mem);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->mem, MEM_BYTES, &self->region));
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &self->qd));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, self->sv));
}

FIXTURE_TEARDOWN(share)
{
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	qd_raw_exit(&self->r);
	if (self->mem)
		munmap(self->mem, MEM_BYTES);
	if (self->memfd >= 0)
		close(self->memfd);
	if (self->sv[0] >= 0)
		close(self->sv[0]);
	if (self->sv[1] >= 0)
		close(self->sv[1]);
}

typedef FIXTURE_DATA(share) share_t;

/*
 * Fork a child running fn(self): it dies with the parent, and closes the
 * parent's context fd (its own context is its own open) and the parent's
 * end of the socketpair.
 */
static pid_t spawn(share_t *self, void (*fn)(share_t *self))
{
	pid_t pid = fork();

	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (self->r.fd >= 0)
			close(self->r.fd);
		close(self->sv[0]);
		fn(self);
		_exit(0);
	}
	if (pid > 0) {
		self->pid = pid;
		close(self->sv[1]);
		self->sv[1] = -1;
	}
	return pid;
}

#define SPAWN(fn) ASSERT_LT(0, spawn(self, (fn)))

/* The child exited with 0. */
#define CHILD_OK() do {							\
	ASSERT_EQ(0, qd_wait_child(self->pid));				\
	self->pid = 0;							\
} while (0)

#define SUBMIT(sqe_) do {						\
	struct qd_sqe __s = (sqe_);					\
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &__s));			\
	ASSERT_EQ(1, qd_raw_submit(&self->r));				\
} while (0)

#define REAP(cqe_, elem_) \
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, (cqe_), (elem_), LONG_NS))

#define DO(sqe_, cqe_, elem_) do {					\
	SUBMIT(sqe_);							\
	REAP((cqe_), (elem_));						\
} while (0)

#define NOTHING_MORE() do {						\
	struct qd_cqe __c;						\
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &__c, NULL, SHORT_NS)) \
		TH_LOG("unexpected CQE user_data %llu res %lld",	\
		       __c.user_data, __c.res);				\
} while (0)

#define TELL(v)	ASSERT_EQ(0, tell(self->sv[0], (v)))
#define HEAR(v)	ASSERT_EQ((long long)(v), hear(self->sv[0]))

#define KTELL(v) CHILD_CHECK(tell(self->sv[1], (v)) == 0)
#define KHEAR(v) CHILD_CHECK(hear(self->sv[1]) == (long long)(v))

/* Push one segment from the parent's mapping, filled with seed first. */
#define PUSH_SEG(off_, len_, seed_, ud_) do {				\
	struct qd_seg __g = qd_seg(self->region, (off_), (len_));	\
	struct qd_cqe __c;						\
	fill(self->mem + (off_), (len_), (seed_));			\
	DO(qd_sqe_push(self->qd, &__g, 1, (ud_)), &__c, NULL);		\
	ASSERT_EQ((long long)(len_), __c.res);				\
} while (0)

/* --- export and import: the fd, the rights, the errors ------------------ */

static void kid_basics(share_t *self)
{
	struct qd_seg seg;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct peer p;
	unsigned int rights = 0;
	int own, qd;

	/* the export fd came by inheritance: the parent tells its number */
	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(qd_raw_queue(p.r.fd, 0, &own) == 0);
	CHILD_CHECK(share_import(p.r.fd, (int)hear(self->sv[1]), &qd, &rights) == 0);
	CHILD_CHECK(rights == QD_SHARE_ALL);
	CHILD_CHECK(qd != own);

	/* push through the import: the CQE is ours, with our qd */
	fill(p.mem + 8192 + 10, 300, 7);
	seg = qd_seg(p.region, 8192 + 10, 300);
	peer_do(&p, qd_sqe_push(qd, &seg, 1, 1), &cqe, NULL);
	CHILD_CHECK(cqe.res == 300);
	CHILD_CHECK(cqe.qd == qd);
	CHILD_CHECK(cqe.opcode == QD_OP_PUSH);
	KTELL(1);
	KHEAR(2);		/* the parent popped it */

	/* a pop through the import waits for the parent's push */
	peer_submit(&p, qd_sqe_pop(qd, 2));
	KTELL(3);
	KHEAR(4);
	peer_reap(&p, &cqe, &el);
	CHILD_CHECK(cqe.user_data == 2);
	CHILD_CHECK(cqe.res == 500);
	CHILD_CHECK(cqe.qd == qd);
	CHILD_CHECK(cqe.flags == QD_CQE_F_ELEM);
	CHILD_CHECK(cqe.nsegs == 1);
	CHILD_CHECK(el.segs[0].region == p.region);
	CHILD_CHECK(el.segs[0].offset == 12288 + 5);
	CHILD_CHECK(el.segs[0].len == 500);
	CHILD_CHECK(check(p.mem + el.segs[0].offset, 500, 8));
	/* nothing for the own queue, nothing else */
	peer_nothing_more(&p);
}

/*
 * The export fd is an O_CLOEXEC "[qd-queue]" anon inode; a child imports it
 * into its own context (rights out: the fd's), pushes and pops through it,
 * and its completions come to its own ring under its own qd.
 */
TEST_F(share, export_fd_imported_by_child_pushes_and_pops)
{
	char link[64], target[128];
	struct qd_cqe cqe;
	struct qd_elem el;
	ssize_t n;
	int xfd;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	ASSERT_LE(0, xfd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(xfd, F_GETFD) & FD_CLOEXEC);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", xfd);
	n = readlink(link, target, sizeof(target) - 1);
	ASSERT_LT(0, n);
	target[n] = 0;
	EXPECT_STREQ("anon_inode:[qd-queue]", target);

	SPAWN(kid_basics);
	TELL(xfd);		/* inherited: the number is the same */
	HEAR(1);
	/* the child's element, in our region at the same file offset */
	DO(qd_sqe_pop(self->qd, 10), &cqe, &el);
	EXPECT_EQ(300, cqe.res);
	EXPECT_EQ(self->qd, cqe.qd);
	ASSERT_EQ(1, cqe.nsegs);
	EXPECT_EQ(self->region, el.segs[0].region);
	EXPECT_EQ(8192u + 10, el.segs[0].offset);
	EXPECT_EQ(300u, el.segs[0].len);
	EXPECT_TRUE(check(self->mem + 8192 + 10, 300, 7));
	TELL(2);
	HEAR(3);
	PUSH_SEG(12288 + 5, 500, 8, 11);
	TELL(4);
	CHILD_OK();
	NOTHING_MORE();
	close(xfd);
}

static void kid_rights(share_t *self)
{
	unsigned int rights = 0;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct qd_seg seg;
	struct peer p;
	int xp, xo, qp, qo, x2, q2;

	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(hear_fd(self->sv[1], &xp) == 1 && xp >= 0);
	CHILD_CHECK(hear_fd(self->sv[1], &xo) == 2 && xo >= 0);
	CHILD_CHECK(share_import(p.r.fd, xp, &qp, &rights) == 0);
	CHILD_CHECK(rights == QD_SHARE_PUSH);
	CHILD_CHECK(share_import(p.r.fd, xo, &qo, &rights) == 0);
	CHILD_CHECK(rights == QD_SHARE_POP);
	CHILD_CHECK(qp != qo);

	/* a push-only import cannot pop */
	peer_do(&p, qd_sqe_pop(qp, 1), &cqe, NULL);
	CHILD_CHECK(cqe.res == -EPERM);
	CHILD_CHECK(!(cqe.flags & QD_CQE_F_ELEM));
	/* a pop-only import cannot push; the element comes back */
	seg = qd_seg(p.region, 640, 64);
	peer_do(&p, qd_sqe_push(qo, &seg, 1, 2), &cqe, &el);
	CHILD_CHECK(cqe.res == -EPERM);
	CHILD_CHECK(cqe.flags & QD_CQE_F_ELEM);
	CHILD_CHECK(cqe.nsegs == 1 && qd_seg_eq(&seg, &el.segs[0]));
	/* the push-only import pushes */
	fill(p.mem + 4096, 100, 3);
	seg = qd_seg(p.region, 4096, 100);
	peer_do(&p, qd_sqe_push(qp, &seg, 1, 3), &cqe, NULL);
	CHILD_CHECK(cqe.res == 100);

	/* re-exports grant no more than the import has */
	CHILD_CHECK(share_export(p.r.fd, qo, QD_SHARE_PUSH, &x2) == -EPERM);
	CHILD_CHECK(share_export(p.r.fd, qo, QD_SHARE_ALL, &x2) == -EPERM);
	CHILD_CHECK(share_export(p.r.fd, qp, QD_SHARE_POP, &x2) == -EPERM);
	CHILD_CHECK(share_export(p.r.fd, qp, QD_SHARE_ALL, &x2) == -EPERM);
	CHILD_CHECK(share_export(p.r.fd, qp, QD_SHARE_PUSH, &x2) == 0);
	close(x2);
	CHILD_CHECK(share_export(p.r.fd, qo, QD_SHARE_POP, &x2) == 0);
	CHILD_CHECK(share_import(p.r.fd, x2, &q2, &rights) == 0);
	CHILD_CHECK(rights == QD_SHARE_POP);
	close(x2);
	KTELL(3);

	/* the re-export's import pops what the parent pushed */
	KHEAR(4);
	peer_do(&p, qd_sqe_pop(q2, 4), &cqe, &el);
	CHILD_CHECK(cqe.res == 200);
	CHILD_CHECK(cqe.qd == q2);
	CHILD_CHECK(el.segs[0].region == p.region && el.segs[0].offset == 20000);
	CHILD_CHECK(check(p.mem + 20000, 200, 4));
	/* and the first pop-only import too */
	KHEAR(5);
	peer_do(&p, qd_sqe_pop(qo, 5), &cqe, &el);
	CHILD_CHECK(cqe.res == 10);
	CHILD_CHECK(el.segs[0].offset == 30000);
	peer_nothing_more(&p);
}

/*
 * Rights, with the fds passed over a socketpair (SCM_RIGHTS): a push-only
 * import cannot pop, a pop-only one cannot push (-EPERM, the element given
 * back), and a re-export of an import with more rights than it has is
 * -EPERM, with the same or fewer it works.
 */
TEST_F(share, rights_enforced_and_reexport_cannot_widen)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	int xp, xo;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_PUSH, &xp));
	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_POP, &xo));
	SPAWN(kid_rights);
	ASSERT_EQ(0, tell_fd(self->sv[0], 1, xp));
	ASSERT_EQ(0, tell_fd(self->sv[0], 2, xo));
	/* the child's copies are its own: ours can go */
	close(xp);
	close(xo);
	HEAR(3);
	DO(qd_sqe_pop(self->qd, 1), &cqe, &el);
	EXPECT_EQ(100, cqe.res);
	EXPECT_EQ(self->region, el.segs[0].region);
	EXPECT_EQ(4096u, el.segs[0].offset);
	EXPECT_TRUE(check(self->mem + 4096, 100, 3));
	PUSH_SEG(20000, 200, 4, 2);
	TELL(4);
	PUSH_SEG(30000, 10, 5, 3);
	TELL(5);
	CHILD_OK();
	NOTHING_MORE();
}

/* Count the open fds of this process. */
static int nr_fds(void)
{
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

static int export_raw(int fd, struct qd_queue_export *e)
{
	return qd_raw_ioctl(fd, QD_IOC_QUEUE_EXPORT, e);
}

static int import_raw(int fd, struct qd_queue_import *im)
{
	return qd_raw_ioctl(fd, QD_IOC_QUEUE_IMPORT, im);
}

/*
 * QD_IOC_QUEUE_EXPORT: -EBADF no such qd (never opened, closed, negative);
 * -EINVAL no rights, unknown rights, resv or the fd (out) non-zero;
 * -EOPNOTSUPP a mapped queue. None of them leaves an fd behind.
 */
TEST_F(share, export_errors)
{
	struct qd_queue_create mc = { .depth = 8, .flags = QD_QUEUE_MAPPED };
	struct qd_queue_export e;
	int fds, closed, xfd;
	unsigned int i;

	fds = nr_fds();
	ASSERT_LT(0, fds);
	EXPECT_EQ(-EBADF, share_export(self->r.fd, self->qd + 100, QD_SHARE_ALL, &xfd));
	EXPECT_EQ(-EBADF, share_export(self->r.fd, -1, QD_SHARE_ALL, &xfd));
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &closed));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, closed));
	EXPECT_EQ(-EBADF, share_export(self->r.fd, closed, QD_SHARE_ALL, &xfd));
	EXPECT_EQ(-EINVAL, share_export(self->r.fd, self->qd, 0, &xfd));
	EXPECT_EQ(-EINVAL, share_export(self->r.fd, self->qd, 1u << 2, &xfd));
	EXPECT_EQ(-EINVAL, share_export(self->r.fd, self->qd,
					QD_SHARE_ALL | 1u << 31, &xfd));
	for (i = 0; i < 5; i++) {
		memset(&e, 0, sizeof(e));
		e.qd = self->qd;
		e.rights = QD_SHARE_POP;
		e.resv[i] = 1;
		EXPECT_EQ(-EINVAL, export_raw(self->r.fd, &e)) TH_LOG("resv[%u]", i);
	}
	memset(&e, 0, sizeof(e));
	e.qd = self->qd;
	e.rights = QD_SHARE_POP;
	e.fd = 5;
	EXPECT_EQ(-EINVAL, export_raw(self->r.fd, &e));

	ASSERT_EQ(0, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &mc));
	EXPECT_EQ(-EOPNOTSUPP, share_export(self->r.fd, mc.qd, QD_SHARE_ALL, &xfd));
	EXPECT_EQ(-EOPNOTSUPP, share_export(self->r.fd, mc.qd, QD_SHARE_POP, &xfd));
	EXPECT_EQ(fds, nr_fds());

	/* and the good one works, once per call */
	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_PUSH, &xfd));
	EXPECT_EQ(fds + 1, nr_fds());
	close(xfd);
}

/*
 * QD_IOC_QUEUE_IMPORT: -EBADF not an fd; -EINVAL an fd that is not a qd
 * queue's (a pipe, a memfd, a /dev/qd context), qd or rights (out) or resv
 * non-zero. Importing in the exporting context works too: another qd.
 */
TEST_F(share, import_errors)
{
	struct qd_queue_import im;
	unsigned int i, rights;
	struct qd_cqe cqe;
	struct qd_elem el;
	int pfd[2], xfd, qd;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	EXPECT_EQ(-EBADF, share_import(self->r.fd, -1, &qd, NULL));
	EXPECT_EQ(-EBADF, share_import(self->r.fd, 1000, &qd, NULL));
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	EXPECT_EQ(-EINVAL, share_import(self->r.fd, pfd[0], &qd, NULL));
	EXPECT_EQ(-EINVAL, share_import(self->r.fd, pfd[1], &qd, NULL));
	close(pfd[0]);
	close(pfd[1]);
	EXPECT_EQ(-EINVAL, share_import(self->r.fd, self->memfd, &qd, NULL));
	EXPECT_EQ(-EINVAL, share_import(self->r.fd, self->r.fd, &qd, NULL));

	memset(&im, 0, sizeof(im));
	im.fd = xfd;
	im.qd = 1;
	EXPECT_EQ(-EINVAL, import_raw(self->r.fd, &im));
	memset(&im, 0, sizeof(im));
	im.fd = xfd;
	im.rights = QD_SHARE_POP;
	EXPECT_EQ(-EINVAL, import_raw(self->r.fd, &im));
	for (i = 0; i < 2; i++) {
		memset(&im, 0, sizeof(im));
		im.fd = xfd;
		im.resv[i] = 1;
		EXPECT_EQ(-EINVAL, import_raw(self->r.fd, &im)) TH_LOG("resv[%u]", i);
	}
	/* the mapping's fields are out only */
	memset(&im, 0, sizeof(im));
	im.fd = xfd;
	im.map_bytes = 4096;
	EXPECT_EQ(-EINVAL, import_raw(self->r.fd, &im));
	memset(&im, 0, sizeof(im));
	im.fd = xfd;
	im.map_off = QD_OFF_QUEUE(1);
	EXPECT_EQ(-EINVAL, import_raw(self->r.fd, &im));

	/* in the same context: a second qd for the queue */
	ASSERT_EQ(0, share_import(self->r.fd, xfd, &qd, &rights));
	EXPECT_NE(self->qd, qd);
	EXPECT_EQ(QD_SHARE_ALL, rights);
	PUSH_SEG(100, 10, 1, 1);
	DO(qd_sqe_pop(qd, 2), &cqe, &el);
	EXPECT_EQ(10, cqe.res);
	EXPECT_EQ(qd, cqe.qd);
	EXPECT_EQ(100u, el.segs[0].offset);
	EXPECT_EQ(self->region, el.segs[0].region);
	close(xfd);
}

/*
 * A share fd is not a handle: with every qd of the queue closed, an import
 * is -EBADF. A proxy is one: with the creator's qd closed, the queue lives
 * on through it, elements included.
 */
TEST_F(share, import_after_last_handle_closed_is_ebadf)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	int xfd, qd, qd2;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	ASSERT_EQ(0, share_import(self->r.fd, xfd, &qd, NULL));
	PUSH_SEG(200, 20, 2, 1);
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->qd));
	/* the proxy still names the queue and its element */
	ASSERT_EQ(0, share_import(self->r.fd, xfd, &qd2, NULL));
	DO(qd_sqe_pop(qd, 2), &cqe, &el);
	EXPECT_EQ(20, cqe.res);
	EXPECT_EQ(200u, el.segs[0].offset);
	ASSERT_EQ(0, qd_raw_close(self->r.fd, qd));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, qd2));
	EXPECT_EQ(-EBADF, share_import(self->r.fd, xfd, &qd, NULL));
	close(xfd);

	/* with nothing but the fd from the start */
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &qd));
	ASSERT_EQ(0, share_export(self->r.fd, qd, QD_SHARE_POP, &xfd));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, qd));
	EXPECT_EQ(-EBADF, share_import(self->r.fd, xfd, &qd2, NULL));
	close(xfd);
}

/*
 * An import that fails after taking its handle (here: its result cannot be
 * written back, -EFAULT) must leave the context's other operations on the
 * queue alone: a pending pop stays pending and gets the next element.
 */
TEST_F(share, failed_import_cancels_nothing)
{
	struct qd_queue_import *im;
	struct qd_seg seg;
	struct qd_cqe cqe;
	struct qd_elem el;
	int xfd;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	SUBMIT(qd_sqe_pop(self->qd, 1));
	/* readable, not writable: the copy back fails */
	im = mmap(NULL, qd_page_size(), PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, im);
	im->fd = xfd;
	ASSERT_EQ(0, mprotect(im, qd_page_size(), PROT_READ));
	EXPECT_EQ(-EFAULT, import_raw(self->r.fd, im));
	NOTHING_MORE();
	fill(self->mem + 300, 30, 3);
	seg = qd_seg(self->region, 300, 30);
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 2));
	/* the pop's CQE, then the push's */
	REAP(&cqe, &el);
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(30, cqe.res);
	EXPECT_EQ(300u, el.segs[0].offset);
	REAP(&cqe, NULL);
	EXPECT_EQ(2u, cqe.user_data);
	EXPECT_EQ(30, cqe.res);
	munmap(im, qd_page_size());
	close(xfd);
}

/* --- zero copy across processes ----------------------------------------- */

/*
 * The child maps file range [16K, 48K) of the memfd and registers it as
 * two regions A = [16K, 32K) and B = [32K, 48K): each popped segment is
 * rewritten into the region that holds its pages, at the offset there.
 */
#define KID_OFF		(16 * 1024)
#define KID_HALF	(16 * 1024)

static void kid_offsets(share_t *self)
{
	unsigned int a, b;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct peer p;
	int qd, xfd;

	peer_open(&p, self->memfd, 0, 0);
	p.mem = mem_map(self->memfd, KID_OFF, 2 * KID_HALF);
	CHILD_CHECK(p.mem != NULL);
	CHILD_CHECK(qd_raw_register(p.r.fd, p.mem, KID_HALF, &a) == 0);
	CHILD_CHECK(qd_raw_register(p.r.fd, p.mem + KID_HALF, KID_HALF, &b) == 0);
	CHILD_CHECK(hear_fd(self->sv[1], &xfd) == 1 && xfd >= 0);
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd, NULL) == 0);
	close(xfd);
	KTELL(1);
	KHEAR(2);

	/* E1: file 20K+100, 200 bytes: in A at 4K+100 */
	peer_do(&p, qd_sqe_pop(qd, 1), &cqe, &el);
	CHILD_CHECK(cqe.res == 200 && cqe.nsegs == 1);
	CHILD_CHECK(el.segs[0].region == a);
	CHILD_CHECK(el.segs[0].offset == 4096 + 100);
	CHILD_CHECK(el.segs[0].len == 200);
	CHILD_CHECK(check(p.mem + 4096 + 100, 200, 11));
	/* E2: file 1000, not mapped here: -EXDEV, and it stays first */
	peer_do(&p, qd_sqe_pop(qd, 2), &cqe, NULL);
	CHILD_CHECK(cqe.res == -EXDEV);
	CHILD_CHECK(!(cqe.flags & QD_CQE_F_ELEM));
	peer_do(&p, qd_sqe_pop(qd, 3), &cqe, NULL);
	CHILD_CHECK(cqe.res == -EXDEV);
	KTELL(3);
	KHEAR(4);		/* the parent popped E2 */
	/* E3: file [24K-10, 28K+10): three pages, in A at 8K-10 */
	peer_do(&p, qd_sqe_pop(qd, 4), &cqe, &el);
	CHILD_CHECK(cqe.res == 4096 + 20);
	CHILD_CHECK(el.segs[0].region == a);
	CHILD_CHECK(el.segs[0].offset == 8192 - 10);
	CHILD_CHECK(check(p.mem + 8192 - 10, 4096 + 20, 13));
	/* E4: two segments, one in A and one in B */
	peer_do(&p, qd_sqe_pop(qd, 5), &cqe, &el);
	CHILD_CHECK(cqe.res == 20 && cqe.nsegs == 2);
	CHILD_CHECK(el.segs[0].region == a && el.segs[0].offset == 1024 + 1);
	CHILD_CHECK(el.segs[1].region == b && el.segs[1].offset == 8192 + 3);
	CHILD_CHECK(check(p.mem + 1024 + 1, 10, 14));
	CHILD_CHECK(check(p.mem + KID_HALF + 8192 + 3, 10, 15));
	/* E5: across the A/B boundary (no one region holds it): -EXDEV */
	peer_do(&p, qd_sqe_pop(qd, 6), &cqe, NULL);
	CHILD_CHECK(cqe.res == -EXDEV);
	KTELL(5);
	KHEAR(6);
	/* E6: from file 48K-100, partly past the mapping: -EXDEV */
	peer_do(&p, qd_sqe_pop(qd, 7), &cqe, NULL);
	CHILD_CHECK(cqe.res == -EXDEV);
	KTELL(7);
	KHEAR(8);
	peer_nothing_more(&p);
}

/*
 * Zero copy to a popper whose mapping and regions start elsewhere in the
 * memfd: the segment names the popper's region that holds the pages, at
 * its offset there (not the pusher's), and the popper reads the pusher's
 * bytes through its own mapping. Pages it has not registered: -EXDEV, and
 * the element stays first (the pusher pops it).
 */
TEST_F(share, zero_copy_rewrites_region_and_offset)
{
	struct qd_seg segs[2];
	struct qd_cqe cqe;
	struct qd_elem el;
	int xfd;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_POP, &xfd));
	SPAWN(kid_offsets);
	ASSERT_EQ(0, tell_fd(self->sv[0], 1, xfd));
	close(xfd);
	HEAR(1);
	PUSH_SEG(20 * 1024 + 100, 200, 11, 1);
	PUSH_SEG(1000, 50, 12, 2);
	PUSH_SEG(24 * 1024 - 10, 4096 + 20, 13, 3);
	fill(self->mem + 17 * 1024 + 1, 10, 14);
	fill(self->mem + 40 * 1024 + 3, 10, 15);
	segs[0] = qd_seg(self->region, 17 * 1024 + 1, 10);
	segs[1] = qd_seg(self->region, 40 * 1024 + 3, 10);
	DO(qd_sqe_push(self->qd, segs, 2, 4), &cqe, NULL);
	ASSERT_EQ(20, cqe.res);
	PUSH_SEG(32 * 1024 - 10, 20, 16, 5);
	PUSH_SEG(48 * 1024 - 100, 200, 17, 6);
	TELL(2);
	HEAR(3);
	/* E2 is first, and ours */
	DO(qd_sqe_pop(self->qd, 10), &cqe, &el);
	EXPECT_EQ(50, cqe.res);
	EXPECT_EQ(1000u, el.segs[0].offset);
	EXPECT_EQ(self->region, el.segs[0].region);
	TELL(4);
	HEAR(5);
	DO(qd_sqe_pop(self->qd, 11), &cqe, &el);
	EXPECT_EQ(20, cqe.res);
	EXPECT_EQ(32u * 1024 - 10, el.segs[0].offset);
	TELL(6);
	HEAR(7);
	DO(qd_sqe_pop(self->qd, 12), &cqe, &el);
	EXPECT_EQ(200, cqe.res);
	EXPECT_EQ(48u * 1024 - 100, el.segs[0].offset);
	TELL(8);
	CHILD_OK();
}

static char *shared_anon;

static void kid_shared_anon(share_t *self)
{
	unsigned int id;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct qd_seg seg;
	struct peer p;
	int qd, xfd = (int)hear(self->sv[1]);

	peer_open(&p, -1, 0, 0);
	/* another id than the parent's (1) */
	CHILD_CHECK(qd_raw_register(p.r.fd, qd_raw_pages(4096), 4096, &id) == 0);
	/* the inherited mapping, at the same address */
	CHILD_CHECK(qd_raw_register(p.r.fd, shared_anon, 4 * 4096, &id) == 0);
	CHILD_CHECK(id != p.dummy);
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd, NULL) == 0);
	KTELL(1);
	peer_do(&p, qd_sqe_pop(qd, 1), &cqe, &el);
	CHILD_CHECK(cqe.res == 700);
	CHILD_CHECK(el.segs[0].region == id && el.segs[0].offset == 5000);
	CHILD_CHECK(check(shared_anon + 5000, 700, 21));
	/* and back: the parent finds our bytes in its region */
	fill(shared_anon + 9000, 33, 22);
	seg = qd_seg(id, 9000, 33);
	peer_do(&p, qd_sqe_push(qd, &seg, 1, 2), &cqe, NULL);
	CHILD_CHECK(cqe.res == 33);
	KTELL(2);
	KHEAR(3);
}

/* The same with MAP_SHARED|MAP_ANONYMOUS memory inherited across fork. */
TEST_F(share, zero_copy_shared_anonymous_inherited)
{
	unsigned int id;
	struct qd_seg seg;
	struct qd_cqe cqe;
	struct qd_elem el;
	int xfd;

	shared_anon = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shared_anon);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, shared_anon, 4 * 4096, &id));
	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_shared_anon);
	TELL(xfd);
	HEAR(1);
	fill(shared_anon + 5000, 700, 21);
	seg = qd_seg(id, 5000, 700);
	DO(qd_sqe_push(self->qd, &seg, 1, 1), &cqe, NULL);
	ASSERT_EQ(700, cqe.res);
	HEAR(2);
	DO(qd_sqe_pop(self->qd, 2), &cqe, &el);
	EXPECT_EQ(33, cqe.res);
	EXPECT_EQ(id, el.segs[0].region);
	EXPECT_EQ(9000u, el.segs[0].offset);
	EXPECT_TRUE(check(shared_anon + 9000, 33, 22));
	TELL(3);
	CHILD_OK();
	close(xfd);
}

/* --- -EXDEV and the copy ------------------------------------------------ */

static void kid_exdev(share_t *self)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	struct qd_seg buf[2];
	struct peer p;
	char *priv;
	unsigned int pr;
	int qd, xfd = (int)hear(self->sv[1]);

	/* no shared memory registered: only private pages */
	peer_open(&p, -1, 0, 0);
	priv = qd_raw_pages(8192);
	CHILD_CHECK(priv != NULL);
	CHILD_CHECK(qd_raw_register(p.r.fd, priv, 8192, &pr) == 0);
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd, NULL) == 0);
	KTELL(1);
	KHEAR(2);		/* E1 queued */
	peer_do(&p, qd_sqe_pop(qd, 1), &cqe, NULL);
	CHILD_CHECK(cqe.res == -EXDEV);
	CHILD_CHECK(cqe.flags == 0);
	peer_do(&p, qd_sqe_pop(qd, 2), &cqe, NULL);
	CHILD_CHECK(cqe.res == -EXDEV);
	/* a pop with a buffer too small: -EMSGSIZE, still there */
	buf[0] = qd_seg(pr, 100, 50);
	{
		struct qd_sqe s = qd_sqe_pop(qd, 3);

		s.addr = (__u64)(uintptr_t)buf;
		s.nsegs = 1;
		peer_do(&p, s, &cqe, NULL);
		CHILD_CHECK(cqe.res == -EMSGSIZE);
	}
	KTELL(3);		/* the parent pops E1 */
	KHEAR(4);

	/* a pending pop meets an element it cannot take: -EXDEV */
	peer_submit(&p, qd_sqe_pop(qd, 4));
	KTELL(5);
	peer_reap(&p, &cqe, NULL);
	CHILD_CHECK(cqe.user_data == 4);
	CHILD_CHECK(cqe.res == -EXDEV);
	KTELL(6);
	KHEAR(7);

	/* with a two-segment buffer: a copy, trimmed to the element */
	buf[0] = qd_seg(pr, 4000, 96);
	buf[1] = qd_seg(pr, 4096 + 8, 2000);
	{
		struct qd_sqe s = qd_sqe_pop(qd, 8);

		s.addr = (__u64)(uintptr_t)buf;
		s.nsegs = 2;
		peer_do(&p, s, &cqe, &el);
	}
	CHILD_CHECK(cqe.res == 1000);
	CHILD_CHECK(cqe.flags == (QD_CQE_F_ELEM | QD_CQE_F_COPIED));
	CHILD_CHECK(cqe.nsegs == 2);
	CHILD_CHECK(el.segs[0].region == pr && el.segs[0].offset == 4000 &&
		    el.segs[0].len == 96);
	CHILD_CHECK(el.segs[1].region == pr && el.segs[1].offset == 4096 + 8 &&
		    el.segs[1].len == 904);
	CHILD_CHECK(check(priv + 4000, 96, 33));
	{
		size_t i;

		for (i = 0; i < 904; i++)
			CHILD_CHECK(priv[4096 + 8 + i] == pat(33, 96 + i));
	}
	peer_nothing_more(&p);
	KTELL(8);
}

/*
 * A popper that has not registered the pusher's memory: its pop completes
 * -EXDEV (again and again) and the element stays first, so the pusher can
 * still pop it; a pending pop of it that meets such an element completes
 * -EXDEV and the element goes to the next pop that can take it. With a
 * buffer, the pop gets a copy (QD_CQE_F_COPIED), or -EMSGSIZE.
 */
TEST_F(share, exdev_without_shared_memory_element_stays)
{
	struct qd_seg seg;
	struct qd_cqe cqe;
	struct qd_elem el;
	int xfd;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_exdev);
	TELL(xfd);
	HEAR(1);
	PUSH_SEG(8192 + 1, 100, 31, 1);
	TELL(2);
	HEAR(3);
	DO(qd_sqe_pop(self->qd, 2), &cqe, &el);
	EXPECT_EQ(100, cqe.res);
	EXPECT_EQ(self->region, el.segs[0].region);
	EXPECT_EQ(8192u + 1, el.segs[0].offset);
	TELL(4);
	/* the child's pop is pending first, then ours */
	HEAR(5);
	SUBMIT(qd_sqe_pop(self->qd, 3));
	fill(self->mem + 1111, 11, 32);
	seg = qd_seg(self->region, 1111, 11);
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 4));
	/* our pop's CQE, then the push's */
	REAP(&cqe, &el);
	EXPECT_EQ(3u, cqe.user_data);
	EXPECT_EQ(11, cqe.res);
	EXPECT_EQ(1111u, el.segs[0].offset);
	REAP(&cqe, NULL);
	EXPECT_EQ(4u, cqe.user_data);
	EXPECT_EQ(11, cqe.res);
	HEAR(6);
	PUSH_SEG(2000, 1000, 33, 5);
	TELL(7);
	HEAR(8);
	CHILD_OK();
	NOTHING_MORE();
	close(xfd);
}

/* --- handles ------------------------------------------------------------ */

static void kid_close(share_t *self)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	struct qd_seg seg;
	struct peer p;
	int qd, qd2, xfd = (int)hear(self->sv[1]), i;

	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd, NULL) == 0);
	peer_submit(&p, qd_sqe_pop(qd, 1));
	peer_submit(&p, qd_sqe_pop(qd, 2));
	KTELL(1);
	KHEAR(2);		/* the parent's pops are pending too */
	CHILD_CHECK(qd_raw_close(p.r.fd, qd) == 0);
	for (i = 1; i <= 2; i++) {
		peer_reap(&p, &cqe, NULL);
		CHILD_CHECK(cqe.user_data == (__u64)i);
		CHILD_CHECK(cqe.res == -ECANCELED);
		CHILD_CHECK(cqe.qd == qd);
	}
	peer_nothing_more(&p);
	KTELL(3);
	KHEAR(4);

	/* again, the other way round: the creator closes its qd */
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd2, NULL) == 0);
	peer_submit(&p, qd_sqe_pop(qd2, 3));
	KTELL(5);
	KHEAR(6);		/* the parent closed; our pop must still wait */
	peer_nothing_more(&p);
	fill(p.mem + 777, 77, 41);
	seg = qd_seg(p.region, 777, 77);
	peer_submit(&p, qd_sqe_push(qd2, &seg, 1, 4));
	for (i = 0; i < 2; i++) {
		peer_reap(&p, &cqe, &el);
		if (cqe.user_data == 4) {
			CHILD_CHECK(cqe.res == 77);
		} else {
			CHILD_CHECK(cqe.user_data == 3);
			CHILD_CHECK(cqe.res == 77);
			CHILD_CHECK(el.segs[0].region == p.region);
			CHILD_CHECK(el.segs[0].offset == 777);
		}
	}
	KTELL(7);
}

/*
 * Closing one handle cancels that context's pending pops only: the other
 * context's stay pending and get the next elements. Either way round (the
 * importer's qd, then the creator's).
 */
TEST_F(share, close_handle_cancels_only_own_pending_pops)
{
	struct qd_seg seg;
	struct qd_cqe cqe;
	struct qd_elem el;
	int i, xfd, pops = 0;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_close);
	TELL(xfd);
	HEAR(1);
	SUBMIT(qd_sqe_pop(self->qd, 11));
	SUBMIT(qd_sqe_pop(self->qd, 12));
	TELL(2);
	HEAR(3);		/* the child closed its qd */
	NOTHING_MORE();
	fill(self->mem + 100, 10, 1);
	seg = qd_seg(self->region, 100, 10);
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 13));
	SUBMIT(qd_sqe_push(self->qd, &seg, 1, 14));
	for (i = 0; i < 4; i++) {
		REAP(&cqe, &el);
		EXPECT_EQ(10, cqe.res) TH_LOG("user_data %llu", cqe.user_data);
		if (cqe.opcode == QD_OP_POP) {
			EXPECT_EQ(11u + pops, cqe.user_data);
			EXPECT_EQ(100u, el.segs[0].offset);
			pops++;
		}
	}
	EXPECT_EQ(2, pops);
	TELL(4);
	HEAR(5);
	SUBMIT(qd_sqe_pop(self->qd, 15));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->qd));
	REAP(&cqe, NULL);
	EXPECT_EQ(15u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	TELL(6);
	HEAR(7);
	CHILD_OK();
	NOTHING_MORE();
	close(xfd);
}

static void kid_outlive(share_t *self)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	struct qd_seg seg;
	struct peer p;
	char dirs[4][256], path[300], line[256];
	int qd, qd2, xfd = (int)hear(self->sv[1]), n;
	FILE *f;

	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd, NULL) == 0);
	KTELL(1);
	KHEAR(2);		/* the parent's context is closed */
	peer_do(&p, qd_sqe_pop(qd, 1), &cqe, &el);
	CHILD_CHECK(cqe.res == 60);
	CHILD_CHECK(el.segs[0].region == p.region && el.segs[0].offset == 6000);
	CHILD_CHECK(check(p.mem + 6000, 60, 51));
	/* the queue works, and can be imported again */
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd2, NULL) == 0);
	seg = qd_seg(p.region, 7000, 70);
	peer_do(&p, qd_sqe_push(qd2, &seg, 1, 2), &cqe, NULL);
	CHILD_CHECK(cqe.res == 70);
	peer_do(&p, qd_sqe_pop(qd, 3), &cqe, &el);
	CHILD_CHECK(cqe.res == 70 && el.segs[0].offset == 7000);
	/* debugfs shows both proxies */
	if (!qd_debugfs_ready()) {
		n = qd_debugfs_ctx_dirs(getpid(), dirs, 4);
		CHILD_CHECK(n == 1);
		snprintf(path, sizeof(path), "%s/queues", dirs[0]);
		f = fopen(path, "re");
		CHILD_CHECK(f != NULL);
		n = 0;
		while (fgets(line, sizeof(line), f))
			n++;
		fclose(f);
		CHILD_CHECK(n == 3);
	}
	CHILD_CHECK(qd_raw_close(p.r.fd, qd) == 0);
	CHILD_CHECK(qd_raw_close(p.r.fd, qd2) == 0);
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd, NULL) == -EBADF);
	KTELL(3);
}

/*
 * The queue outlives its creator's whole context: an element the creator
 * pushed is popped after it closed /dev/qd, the queue can be imported again
 * while a handle is left, and not after the last one closed.
 */
TEST_F(share, queue_outlives_creator_context)
{
	struct qd_proc ps;
	int xfd;

	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	PUSH_SEG(6000, 60, 51, 1);
	SPAWN(kid_outlive);
	TELL(xfd);
	HEAR(1);
	qd_raw_exit(&self->r);
	TELL(2);
	HEAR(3);
	CHILD_OK();
	close(xfd);
	/* nothing of the two contexts left */
	munmap(self->mem, MEM_BYTES);
	self->mem = NULL;
	EXPECT_EQ(0, qd_proc_wait_idle(0, 0, 5000, &ps))
		TH_LOG("contexts %lld pinned_pages %lld", ps.contexts, ps.pinned_pages);
	EXPECT_EQ(0, ps.queues + ps.queued)
		TH_LOG("queues %lld queued %lld", ps.queues, ps.queued);
}

/* --- a killed peer ------------------------------------------------------ */

static void kid_dies(share_t *self)
{
	struct qd_cqe cqe;
	struct qd_seg seg;
	struct peer p;
	int qd, q2, x1, x2, i;

	peer_open(&p, self->memfd, 0, MEM_BYTES);
	x1 = (int)hear(self->sv[1]);
	x2 = (int)hear(self->sv[1]);
	CHILD_CHECK(share_import(p.r.fd, x1, &qd, NULL) == 0);
	CHILD_CHECK(share_import(p.r.fd, x2, &q2, NULL) == 0);
	for (i = 0; i < 3; i++) {
		fill(p.mem + 4096 * (i + 1) + 7, 100 + i, 60 + i);
		seg = qd_seg(p.region, 4096 * (i + 1) + 7, 100 + i);
		peer_do(&p, qd_sqe_push(qd, &seg, 1, i), &cqe, NULL);
		CHILD_CHECK(cqe.res == 100 + i);
	}
	peer_submit(&p, qd_sqe_pop(q2, 10));
	peer_submit(&p, qd_sqe_pop(q2, 11));
	KTELL(1);
	for (;;)
		pause();
}

/* A queue's row in our debugfs queues file: 0 and depth, pending pops. */
static int queue_row(int qd, unsigned long long *depth, unsigned long long *pops)
{
	static const char *const cols[] = { "depth", "pending_pops" };
	unsigned long long v[2] = { 0, 0 };
	char dirs[2][256], path[300];
	int ret;

	if (qd_debugfs_ready() || qd_debugfs_ctx_dirs(getpid(), dirs, 2) != 1)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/queues", dirs[0]);
	ret = qd_table_row(path, qd, cols, 2, v, NULL);
	if (!ret) {
		*depth = v[0];
		*pops = v[1];
	}
	return ret;
}

/*
 * A child with pending pops and queued elements pushed from the shared
 * memfd is SIGKILLed: its pops go (the queue's pending count drops), we
 * still push and pop, and pop its elements (zero copy, its bytes); its
 * pages stay pinned until its elements are gone, and once everything is
 * closed /proc/qd is back where it started. With pop_them false, closing
 * the queues drops the dead child's elements instead.
 */
static void killed_peer(struct __test_metadata *_metadata, share_t *self,
			bool pop_them)
{
	unsigned long long depth = 0, pops = 0;
	struct qd_proc base, ps;
	long long pg = MEM_BYTES / (long long)qd_page_size();
	struct qd_seg seg;
	struct qd_cqe cqe;
	struct qd_elem el;
	int q2, x1, x2, i;

	ASSERT_EQ(0, qd_proc_read(&base));
	/* the fixture's context is counted in base; our numbers are deltas */
	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &q2));
	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &x1));
	ASSERT_EQ(0, share_export(self->r.fd, q2, QD_SHARE_ALL, &x2));
	SPAWN(kid_dies);
	TELL(x1);
	TELL(x2);
	HEAR(1);
	close(x1);
	close(x2);
	ASSERT_EQ(0, queue_row(q2, &depth, &pops));
	EXPECT_EQ(2u, pops);
	ASSERT_EQ(0, queue_row(self->qd, &depth, &pops));
	EXPECT_EQ(3u, depth);

	ASSERT_EQ(0, kill(self->pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, qd_wait_child(self->pid));
	self->pid = 0;
	/* its pops are gone with it */
	ASSERT_EQ(0, queue_row(q2, &depth, &pops));
	EXPECT_EQ(0u, pops);
	/* its context lives on in its elements, with its pages pinned */
	ASSERT_EQ(0, qd_proc_read(&ps));
	EXPECT_EQ(base.contexts + 1, ps.contexts);
	EXPECT_EQ(base.pinned_pages + pg + 1, ps.pinned_pages);	/* + its dummy page */

	/* we push and pop as before */
	seg = qd_seg(self->region, 100, 10);
	DO(qd_sqe_push(q2, &seg, 1, 1), &cqe, NULL);
	EXPECT_EQ(10, cqe.res);
	DO(qd_sqe_pop(q2, 2), &cqe, &el);
	EXPECT_EQ(10, cqe.res);
	EXPECT_EQ(100u, el.segs[0].offset);
	if (pop_them) {
		for (i = 0; i < 3; i++) {
			DO(qd_sqe_pop(self->qd, 3 + i), &cqe, &el);
			EXPECT_EQ(100 + i, cqe.res);
			ASSERT_EQ(1, cqe.nsegs);
			EXPECT_EQ(self->region, el.segs[0].region);
			EXPECT_EQ(4096u * (i + 1) + 7, el.segs[0].offset);
			EXPECT_TRUE(check(self->mem + el.segs[0].offset,
					  100 + i, 60 + i));
		}
		/* the dead child's context goes with its last element */
		EXPECT_EQ(0, qd_proc_wait_idle(base.contexts, base.pinned_pages,
					       5000, &ps))
			TH_LOG("contexts %lld pinned_pages %lld", ps.contexts,
			       ps.pinned_pages);
	}
	NOTHING_MORE();

	/* close everything: nothing left (this suite runs alone in the VM) */
	qd_raw_exit(&self->r);
	munmap(self->mem, MEM_BYTES);
	self->mem = NULL;
	EXPECT_EQ(0, qd_proc_wait_idle(base.contexts - 1,
				       base.pinned_pages - pg, 5000, &ps))
		TH_LOG("contexts %lld pinned_pages %lld", ps.contexts, ps.pinned_pages);
	EXPECT_EQ(base.queues - 1, ps.queues);
	EXPECT_EQ(base.queued, ps.queued);
	EXPECT_EQ(base.regions - 1, ps.regions);
	EXPECT_EQ(0, qd_proc_wait_idle(0, 0, 100, &ps))
		TH_LOG("absolute: contexts %lld pinned_pages %lld", ps.contexts,
		       ps.pinned_pages);
}

TEST_F(share, killed_peer_elements_poppable_pops_gone)
{
	killed_peer(_metadata, self, true);
}

TEST_F(share, killed_peer_elements_dropped_with_last_handle)
{
	killed_peer(_metadata, self, false);
}

/* --- ownership: concurrent poppers -------------------------------------- */

#define N_ELEMS		3000
#define ELEM_STRIDE	16
#define ELEM_LEN	12
#define K_POPS		8

struct tally {
	int total;		/* elements popped, both sides */
	int dup;		/* an element handed out twice */
	int popped[2];		/* by the parent, by the child */
	unsigned char seen[N_ELEMS];
};

static struct tally *tally;

/* Payload of element i: its index and a pattern. */
static void elem_fill(char *mem, unsigned int i)
{
	memcpy(mem + i * ELEM_STRIDE, &i, sizeof(i));
	fill(mem + i * ELEM_STRIDE + 4, ELEM_LEN - 4, i);
}

/*
 * Pop (K_POPS outstanding) until both sides together popped N_ELEMS; the
 * pusher (segs non-NULL) also pushes them, at most 32 in flight. Each
 * popped element is checked (our region, its payload) and marked in the
 * shared tally; a second hand-out is counted in tally->dup. Then close the
 * handle and reap the cancelled pops. 0, or a line number on error.
 */
static int pop_race(struct qd_raw *r, int qd, const char *mem, unsigned int region,
		    int side, struct qd_seg *segs)
{
	unsigned int pushed = 0, push_done = 0, outstanding = 0;
	long long idle_since = qd_now_ns();
	struct qd_cqe cqe;
	struct qd_elem el;
	struct qd_sqe s;

	for (;;) {
		int total = __atomic_load_n(&tally->total, __ATOMIC_ACQUIRE);
		unsigned int q = 0;

		if (total >= N_ELEMS && (!segs || push_done == N_ELEMS))
			break;
		while (outstanding < K_POPS && total < N_ELEMS) {
			s = qd_sqe_pop(qd, 1000000 + outstanding);
			if (qd_raw_queue_sqe(r, &s))
				break;
			outstanding++;
			q++;
		}
		while (segs && pushed < N_ELEMS && pushed - push_done < 32) {
			s = qd_sqe_push(qd, &segs[pushed], 1, pushed);
			if (qd_raw_queue_sqe(r, &s))
				break;
			pushed++;
			q++;
		}
		if (q && qd_raw_submit(r) != (int)q)
			return __LINE__;
		if (qd_raw_wait_cqe(r, &cqe, &el, 10 * QD_RAW_MS)) {
			if (qd_now_ns() - idle_since > 10000 * QD_RAW_MS)
				return __LINE__;
			continue;
		}
		idle_since = qd_now_ns();
		if (cqe.opcode == QD_OP_PUSH) {
			if (cqe.res != ELEM_LEN)
				return __LINE__;
			push_done++;
			continue;
		}
		if (cqe.opcode != QD_OP_POP || cqe.res != ELEM_LEN || cqe.nsegs != 1)
			return __LINE__;
		outstanding--;
		{
			unsigned int i = (unsigned int)(el.segs[0].offset / ELEM_STRIDE), got;

			if (el.segs[0].region != region || i >= N_ELEMS ||
			    el.segs[0].offset % ELEM_STRIDE || el.segs[0].len != ELEM_LEN)
				return __LINE__;
			memcpy(&got, mem + el.segs[0].offset, sizeof(got));
			if (got != i || !check(mem + el.segs[0].offset + 4, ELEM_LEN - 4, i))
				return __LINE__;
			if (__atomic_fetch_add(&tally->seen[i], 1, __ATOMIC_ACQ_REL))
				__atomic_fetch_add(&tally->dup, 1, __ATOMIC_ACQ_REL);
			tally->popped[side]++;
			__atomic_fetch_add(&tally->total, 1, __ATOMIC_ACQ_REL);
		}
	}
	/* nothing left to pop: our pops end with our handle */
	if (qd_raw_close(r->fd, qd))
		return __LINE__;
	while (outstanding) {
		if (qd_raw_wait_cqe(r, &cqe, NULL, LONG_NS))
			return __LINE__;
		if (cqe.opcode != QD_OP_POP || cqe.res != -ECANCELED)
			return __LINE__;
		outstanding--;
	}
	return 0;
}

static void kid_race(share_t *self)
{
	struct peer p;
	int qd, xfd = (int)hear(self->sv[1]), line;

	/* our mapping of the whole memfd, in region 1 (the parent's is 0) */
	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(share_import(p.r.fd, xfd, &qd, NULL) == 0);
	KTELL(1);
	KHEAR(2);
	line = pop_race(&p.r, qd, p.mem, p.region, 1, NULL);
	if (line)
		fprintf(stderr, "# child: pop_race failed at line %d\n", line);
	CHILD_CHECK(!line);
}

/*
 * Two processes pop one queue at once while one of them pushes N elements
 * (each at its own offset, with its index in its payload): every element is
 * popped exactly once in all, each through the popper's own region and
 * mapping.
 */
TEST_F(share, concurrent_poppers_get_each_element_once)
{
	struct qd_seg *segs;
	unsigned int i, missing = 0, twice = 0;
	int xfd, line;

	tally = mmap(NULL, sizeof(*tally), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, tally);
	segs = calloc(N_ELEMS, sizeof(*segs));
	ASSERT_NE(NULL, segs);
	for (i = 0; i < N_ELEMS; i++) {
		elem_fill(self->mem, i);
		segs[i] = qd_seg(self->region, i * ELEM_STRIDE, ELEM_LEN);
	}
	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_race);
	TELL(xfd);
	HEAR(1);
	TELL(2);
	line = pop_race(&self->r, self->qd, self->mem, self->region, 0, segs);
	EXPECT_EQ(0, line);
	CHILD_OK();
	EXPECT_EQ(N_ELEMS, tally->total);
	EXPECT_EQ(0, tally->dup);
	for (i = 0; i < N_ELEMS; i++) {
		missing += !tally->seen[i];
		twice += tally->seen[i] > 1;
	}
	EXPECT_EQ(0u, missing);
	EXPECT_EQ(0u, twice);
	/* how they shared (not asserted: the split depends on scheduling) */
	TH_LOG("popped: parent %d, child %d", tally->popped[0], tally->popped[1]);
	EXPECT_EQ(N_ELEMS, tally->popped[0] + tally->popped[1]);
	free(segs);
	close(xfd);
}

/* --- debugfs ------------------------------------------------------------ */

static void kid_debugfs(share_t *self)
{
	struct peer p;
	int qp, qa, own, x1 = (int)hear(self->sv[1]), x2 = (int)hear(self->sv[1]);

	peer_open(&p, -1, 0, 0);
	CHILD_CHECK(qd_raw_queue(p.r.fd, 5, &own) == 0);
	CHILD_CHECK(share_import(p.r.fd, x1, &qp, NULL) == 0);
	CHILD_CHECK(share_import(p.r.fd, x2, &qa, NULL) == 0);
	KTELL(own);
	KTELL(qp);
	KTELL(qa);
	KHEAR(9);
}

/* Split a line into at most max tokens: how many. */
static int tokens(char *line, char tok[][64], int max)
{
	char *save, *t;
	int n = 0;

	for (t = strtok_r(line, " \t\n", &save); t && n < max;
	     t = strtok_r(NULL, " \t\n", &save))
		snprintf(tok[n++], 64, "%s", t);
	return n;
}

/*
 * The importer's debugfs queues file lists its proxies: the proxy's qd,
 * "shared(RIGHTS)", then the queue's own line (the creator's qd, "memq",
 * depth, max_depth, pending pops and pushes, pushed, popped), as
 * qd_proxy_show() prints it.
 */
TEST_F(share, debugfs_queues_lists_proxies)
{
	char dirs[4][256], path[300], line[256], copy[256], tok[16][64];
	int x1, x2, own, qp, qa, n, seen = 0;
	FILE *f;

	if (qd_debugfs_ready())
		SKIP(return, "debugfs not available");
	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_POP, &x1));
	ASSERT_EQ(0, share_export(self->r.fd, self->qd, QD_SHARE_ALL, &x2));
	PUSH_SEG(0, 1, 1, 1);
	SPAWN(kid_debugfs);
	TELL(x1);
	TELL(x2);
	own = (int)hear(self->sv[0]);
	qp = (int)hear(self->sv[0]);
	qa = (int)hear(self->sv[0]);
	ASSERT_LE(0, own);
	ASSERT_LE(0, qp);
	ASSERT_LE(0, qa);

	ASSERT_EQ(1, qd_debugfs_ctx_dirs(self->pid, dirs, 4));
	snprintf(path, sizeof(path), "%s/queues", dirs[0]);
	f = fopen(path, "re");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(line, sizeof(line), f));
	while (fgets(line, sizeof(line), f)) {
		int q;

		snprintf(copy, sizeof(copy), "%s", line);
		copy[strcspn(copy, "\n")] = 0;
		TH_LOG("%s", copy);
		n = tokens(line, tok, 16);
		ASSERT_LE(2, n);
		q = atoi(tok[0]);
		if (q == own) {
			EXPECT_EQ(9, n);
			EXPECT_STREQ("memq", tok[1]);
			EXPECT_STREQ("push,pop", tok[8]);
			seen |= 1;
			continue;
		}
		EXPECT_TRUE(q == qp || q == qa) TH_LOG("qd %d", q);
		EXPECT_EQ(9, n);
		if (n != 9)
			continue;
		EXPECT_STREQ("proxy", tok[1]);
		EXPECT_EQ(1, atoi(tok[2]));		/* depth */
		EXPECT_EQ(QD_MEMQ_DEFAULT_DEPTH, atoi(tok[3]));
		EXPECT_EQ(0, atoi(tok[4]));		/* pending pops */
		EXPECT_EQ(0, atoi(tok[5]));		/* pending pushes */
		EXPECT_EQ(1, atoi(tok[6]));		/* pushed */
		EXPECT_STREQ(q == qp ? "pop" : "push,pop", tok[8]);
		seen |= q == qp ? 2 : 4;
	}
	fclose(f);
	EXPECT_EQ(7, seen);
	TELL(9);
	CHILD_OK();
	close(x1);
	close(x2);
}

/* --- shared mapped queues (QD_QUEUE_MAPPED | QD_QUEUE_SHARED) ---------- */

/* A shared mapped queue as one context sees it: its qd and its mapping. */
struct smq {
	int qd;
	__u32 bytes;
	__u64 off;
	struct qd_mq_hdr *h;
};

static int smq_create(int fd, unsigned int depth, struct smq *m)
{
	struct qd_queue_create c = {
		.depth = depth, .flags = QD_QUEUE_MAPPED | QD_QUEUE_SHARED,
	};
	void *p = NULL;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = qd_raw_ioctl(fd, QD_IOC_QUEUE, &c);
	if (ret)
		return ret;
	m->qd = c.qd;
	m->bytes = c.map_bytes;
	m->off = c.map_off;
	ret = qd_raw_mmap(fd, m->bytes, m->off, &p);
	m->h = p;
	return ret;
}

/* Import xfd; map the ring when the kernel offers it (both rights). */
static int smq_import(int fd, int xfd, struct smq *m, unsigned int *rights)
{
	struct qd_queue_import im = { .fd = xfd };
	void *p = NULL;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = qd_raw_ioctl(fd, QD_IOC_QUEUE_IMPORT, &im);
	if (ret)
		return ret;
	m->qd = im.qd;
	m->bytes = im.map_bytes;
	m->off = im.map_off;
	if (rights)
		*rights = im.rights;
	if (!m->bytes)
		return 0;
	ret = qd_raw_mmap(fd, m->bytes, m->off, &p);
	m->h = p;
	return ret;
}

static int smq_bind(int fd, int qd, unsigned int region, unsigned int *index)
{
	struct qd_queue_bind b = { .qd = qd, .region = region };
	int ret = qd_raw_ioctl(fd, QD_IOC_QUEUE_BIND, &b);

	if (!ret)
		*index = b.index;
	return ret;
}

static int smq_lookup(int fd, int qd, unsigned int index, unsigned int *region,
		      __u64 *off)
{
	struct qd_queue_bind b = { .qd = qd, .index = index,
				   .flags = QD_BIND_LOOKUP };
	int ret = qd_raw_ioctl(fd, QD_IOC_QUEUE_BIND, &b);

	if (!ret) {
		*region = b.region;
		*off = b.offset;
	}
	return ret;
}

/* A push in user space: QD_MQ_*; then the full barrier before waiters. */
static int smq_push(struct smq *m, unsigned int index, __u64 off, __u32 len)
{
	struct qd_seg sg = qd_seg(index, off, len);
	int ret = qd_mq_produce(m->h, m->h->mask, &sg, 1, 1000000);

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return ret;
}

/* A pop in user space of a one-segment element: QD_MQ_*. */
static int smq_pop(struct smq *m, struct qd_seg *sg)
{
	struct qd_seg segs[QD_SGA_MAX];
	__u16 n = 0;
	int ret = qd_mq_consume(m->h, m->h->mask, segs, &n, 1000000);

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ret == QD_MQ_OK)
		*sg = n == 1 ? segs[0] : qd_seg(0xffff, 0, 0);
	return ret;
}

static __u32 smq_waiters(struct smq *m)
{
	return __atomic_load_n(&m->h->waiters, __ATOMIC_ACQUIRE);
}

/* Wait (up to 5 s) until bits show in m's waiters word: 0 or -ETIMEDOUT. */
static int smq_wait_flag(struct smq *m, __u32 bits)
{
	struct timespec ts = { 0, 1000000 };
	int i;

	for (i = 0; i < 5000; i++) {
		if ((smq_waiters(m) & bits) == bits)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static struct qd_sqe sqe_wake(int qd)
{
	struct qd_sqe s = { .opcode = QD_OP_WAKE, .qd = qd,
			    .flags = QD_SQE_F_SKIP_SUCCESS };

	return s;
}

/* QD_IOC_ENTER(MQ_POP) on qd past CQ tail seq, bounded by timeout_ns. */
static int smq_sleep(struct qd_raw *r, int qd, long long timeout_ns)
{
	struct qd_enter e = {
		.flags = QD_ENTER_MQ_POP | QD_ENTER_TIMEOUT, .ring = r->ring,
		.wait_seq = qd_load_acquire(r->cq_tail), .qd = qd,
		.timeout_ns = timeout_ns,
	};

	return qd_raw_ioctl(r->fd, QD_IOC_ENTER, &e);
}

/* Kernel operations counted in /proc/qd: pushes, pops and wakes submitted. */
static long long kernel_ops(void)
{
	static const char *const names[] = { "push", "pop", "wake" };
	const struct qd_op_stat *o;
	struct qd_proc ps;
	long long n = 0;
	unsigned int i;

	if (qd_proc_read(&ps))
		return -1;
	for (i = 0; i < 3; i++) {
		o = qd_proc_op(&ps, names[i]);
		if (!o)
			return -1;
		n += o->submitted;
	}
	return n;
}

/*
 * QD_QUEUE_SHARED needs QD_QUEUE_MAPPED; a shared mapped queue exports;
 * an import with both rights is offered the ring (the same pages, at
 * QD_OFF_QUEUE of its own qd), one with fewer is not and cannot map it,
 * bind, or sleep on it (a ring mapped writable would let it push and pop
 * regardless), but pushes and pops through the kernel as before.
 */
TEST_F(share, mapped_shared_exports_and_maps_with_both_rights)
{
	struct qd_queue_create c = { .flags = QD_QUEUE_SHARED };
	struct smq m, all, push, pop;
	unsigned int rights, ix, rg;
	struct qd_seg sg;
	struct qd_cqe cqe;
	struct qd_elem el;
	int xa, xp, xo;
	void *p = NULL;
	__u64 off;

	ASSERT_TRUE(!!(self->r.p.features & QD_FEAT_SHARED_MAPPED));
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &c));
	ASSERT_EQ(0, smq_create(self->r.fd, 16, &m));
	EXPECT_EQ(16u, m.h->entries);
	EXPECT_EQ(QD_OFF_QUEUE(m.qd), m.off);
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xa));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_PUSH, &xp));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_POP, &xo));

	ASSERT_EQ(0, smq_import(self->r.fd, xa, &all, &rights));
	EXPECT_EQ(QD_SHARE_ALL, rights);
	EXPECT_EQ(m.bytes, all.bytes);
	EXPECT_EQ(QD_OFF_QUEUE(all.qd), all.off);
	ASSERT_NE(NULL, all.h);
	/* the same ring */
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	EXPECT_EQ(0u, ix);
	ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 64, 8));
	ASSERT_EQ(QD_MQ_OK, smq_pop(&all, &sg));
	EXPECT_EQ(64u, sg.offset);
	EXPECT_EQ(ix, sg.region);

	ASSERT_EQ(0, smq_import(self->r.fd, xp, &push, &rights));
	EXPECT_EQ(QD_SHARE_PUSH, rights);
	EXPECT_EQ(0u, push.bytes);
	EXPECT_EQ(0ull, push.off);
	EXPECT_EQ(-EPERM, qd_raw_mmap(self->r.fd, m.bytes, QD_OFF_QUEUE(push.qd), &p));
	EXPECT_EQ(-EPERM, smq_bind(self->r.fd, push.qd, self->region, &ix));
	EXPECT_EQ(-EINVAL, smq_sleep(&self->r, push.qd, SHORT_NS));
	ASSERT_EQ(0, smq_import(self->r.fd, xo, &pop, &rights));
	EXPECT_EQ(0u, pop.bytes);
	EXPECT_EQ(-EPERM, qd_raw_mmap(self->r.fd, m.bytes, QD_OFF_QUEUE(pop.qd), &p));
	EXPECT_EQ(-EPERM, smq_lookup(self->r.fd, pop.qd, 0, &rg, &off));

	/* the kernel path: a push through push-only, a pop through pop-only */
	sg = qd_seg(self->region, 4096 + 3, 30);
	DO(qd_sqe_push(push.qd, &sg, 1, 1), &cqe, NULL);
	EXPECT_EQ(30, cqe.res);
	DO(qd_sqe_pop(pop.qd, 2), &cqe, &el);
	EXPECT_EQ(30, cqe.res);
	EXPECT_EQ(self->region, el.segs[0].region);
	EXPECT_EQ(4096u + 3, el.segs[0].offset);
	DO(qd_sqe_pop(push.qd, 3), &cqe, NULL);
	EXPECT_EQ(-EPERM, cqe.res);
	NOTHING_MORE();
	munmap(m.h, m.bytes);
	munmap(all.h, all.bytes);
	close(xa);
	close(xp);
	close(xo);
}

/*
 * QD_IOC_QUEUE_BIND: the same region binds to the same index; bindings
 * are per queue and bounded (-ENOSPC for the 65th region, in user space
 * and for a kernel push, whose element comes back); every field checked.
 */
TEST_F(share, mapped_shared_bind_rules)
{
	struct qd_queue_bind b;
	unsigned int ix, ix2, i, rg, regions[QD_MQ_MAX_BINDINGS + 1];
	struct smq m, m2;
	struct qd_seg sg;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct qd_queue_create c = { .flags = QD_QUEUE_MAPPED };
	char *pages;
	__u64 off;

	ASSERT_EQ(0, smq_create(self->r.fd, 8, &m));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix2));
	EXPECT_EQ(ix, ix2);
	ASSERT_EQ(0, smq_lookup(self->r.fd, m.qd, ix, &rg, &off));
	EXPECT_EQ(self->region, rg);
	EXPECT_EQ(0ull, off);
	EXPECT_EQ(-ENOENT, smq_lookup(self->r.fd, m.qd, ix + 1, &rg, &off));
	EXPECT_EQ(-ENOENT, smq_lookup(self->r.fd, m.qd, 1000, &rg, &off));
	EXPECT_EQ(-ENOENT, smq_bind(self->r.fd, m.qd, 200, &ix2));
	EXPECT_EQ(-ENOENT, smq_bind(self->r.fd, m.qd, 100000, &ix2));
	EXPECT_EQ(-EBADF, smq_bind(self->r.fd, 999, self->region, &ix2));
	EXPECT_EQ(-EINVAL, smq_bind(self->r.fd, self->qd, self->region, &ix2));
	/* an unshared mapped queue's descriptors name regions: no bindings */
	ASSERT_EQ(0, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &c));
	EXPECT_EQ(-EINVAL, smq_bind(self->r.fd, c.qd, self->region, &ix2));
	memset(&b, 0, sizeof(b));
	b.qd = m.qd;
	b.flags = 2;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE_BIND, &b));
	b.flags = 0;
	b.offset = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE_BIND, &b));
	b.offset = 0;
	b.index = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE_BIND, &b));
	b.index = 0;
	b.resv[1] = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE_BIND, &b));
	b.resv[1] = 0;
	b.flags = QD_BIND_LOOKUP;
	b.region = 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE_BIND, &b));

	/* bindings are per queue; 64 of them */
	ASSERT_EQ(0, smq_create(self->r.fd, 8, &m2));
	pages = qd_raw_pages(QD_MQ_MAX_BINDINGS * qd_page_size());
	ASSERT_NE(NULL, pages);
	for (i = 0; i <= QD_MQ_MAX_BINDINGS; i++) {
		if (i == QD_MQ_MAX_BINDINGS) {
			regions[i] = self->region;
			break;
		}
		ASSERT_EQ(0, qd_raw_register(self->r.fd, pages + i * qd_page_size(),
					     qd_page_size(), &regions[i]));
		ASSERT_EQ(0, smq_bind(self->r.fd, m2.qd, regions[i], &ix2));
		EXPECT_EQ(i, ix2);
	}
	EXPECT_EQ(-ENOSPC, smq_bind(self->r.fd, m2.qd, self->region, &ix2));
	/* a kernel push of a 65th region fails and hands its element back */
	sg = qd_seg(self->region, 0, 5);
	DO(qd_sqe_push(m2.qd, &sg, 1, 7), &cqe, &el);
	EXPECT_EQ(-ENOSPC, cqe.res);
	EXPECT_TRUE(!!(cqe.flags & QD_CQE_F_ELEM));
	EXPECT_EQ(self->region, el.segs[0].region);
	/* a bound region is the queue's until it closes */
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->r.fd, regions[0]));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, m2.qd));
	EXPECT_EQ(0, qd_raw_unregister(self->r.fd, regions[0]));
	NOTHING_MORE();
	munmap(m.h, m.bytes);
	munmap(m2.h, m2.bytes);
}

static void kid_fast(share_t *self)
{
	unsigned int i, rg, mine;
	struct peer p;
	struct smq m;
	struct qd_seg sg;
	int xfd;
	__u64 off;

	CHILD_CHECK(hear_fd(self->sv[1], &xfd) == 0);
	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(smq_import(p.r.fd, xfd, &m, NULL) == 0);
	CHILD_CHECK(m.h != NULL);
	KTELL(1);
	KHEAR(2);
	/* the parent's 50 elements, popped here: its binding is our region */
	for (i = 0; i < 50; i++) {
		CHILD_CHECK(smq_pop(&m, &sg) == QD_MQ_OK);
		CHILD_CHECK(smq_lookup(p.r.fd, m.qd, sg.region, &rg, &off) == 0);
		CHILD_CHECK(rg == p.region && off == 0);
		CHILD_CHECK(sg.offset == 1024u * i && sg.len == 100 + i);
		CHILD_CHECK(check(p.mem + off + sg.offset, sg.len, i));
	}
	CHILD_CHECK(smq_pop(&m, &sg) == QD_MQ_EMPTY);
	/* and 50 back, from our binding */
	CHILD_CHECK(smq_bind(p.r.fd, m.qd, p.region, &mine) == 0);
	for (i = 0; i < 50; i++) {
		fill(p.mem + 32768 + 512 * i, 50 + i, 100 + i);
		CHILD_CHECK(smq_push(&m, mine, 32768 + 512 * i, 50 + i) == QD_MQ_OK);
		CHILD_CHECK(!(smq_waiters(&m) & (QD_MQ_POP_WAITERS | QD_MQ_POP_SLEEPERS)));
	}
	KTELL(mine);
	KHEAR(3);
}

/*
 * The fast path across processes: the parent pushes 50 elements in user
 * space, a child pops them in user space from its own mapping of the ring
 * and finds the payload in its own mapping of the memfd (its binding
 * lookup: its region, same offsets), then pushes 50 back the same way.
 * The kernel runs no operation for any of them.
 */
TEST_F(share, mapped_shared_user_space_both_ways_zero_copy)
{
	unsigned int i, ix, mine, rg;
	long long ops;
	struct qd_seg sg;
	struct smq m;
	int xfd;
	__u64 off;

	ASSERT_EQ(0, smq_create(self->r.fd, 64, &m));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_fast);
	ASSERT_EQ(0, tell_fd(self->sv[0], 0, xfd));
	HEAR(1);
	ops = kernel_ops();
	ASSERT_LE(0, ops);
	for (i = 0; i < 50; i++) {
		fill(self->mem + 1024 * i, 100 + i, i);
		ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 1024 * i, 100 + i));
	}
	TELL(2);
	mine = (unsigned int)hear(self->sv[0]);
	EXPECT_NE(ix, mine);
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(QD_MQ_OK, smq_pop(&m, &sg));
		EXPECT_EQ(mine, sg.region);
		ASSERT_EQ(0, smq_lookup(self->r.fd, m.qd, sg.region, &rg, &off));
		EXPECT_EQ(self->region, rg);
		EXPECT_EQ(0ull, off);
		EXPECT_EQ(32768u + 512 * i, sg.offset);
		EXPECT_TRUE(check(self->mem + off + sg.offset, 50 + i, 100 + i));
	}
	EXPECT_EQ(ops, kernel_ops());
	TELL(3);
	CHILD_OK();
	munmap(m.h, m.bytes);
	close(xfd);
}

static void kid_offset(share_t *self)
{
	unsigned int rg, mine;
	struct qd_seg sg;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct peer p;
	struct smq m;
	char *priv;
	unsigned int preg;
	int xfd;
	__u64 off;

	CHILD_CHECK(hear_fd(self->sv[1], &xfd) == 0);
	/* the memfd from file offset 16 KiB only */
	peer_open(&p, self->memfd, 16384, MEM_BYTES - 16384);
	CHILD_CHECK(smq_import(p.r.fd, xfd, &m, NULL) == 0);
	CHILD_CHECK(smq_bind(p.r.fd, m.qd, p.region, &mine) == 0);
	fill(p.mem + 100, 10, 21);
	CHILD_CHECK(smq_push(&m, mine, 100, 10) == QD_MQ_OK);
	KTELL(mine);
	KHEAR(2);
	/* the parent's binding is more than our region holds */
	CHILD_CHECK(smq_lookup(p.r.fd, m.qd, 0, &rg, &off) == -EXDEV);
	/* a kernel pop translates what lies in our pages... */
	peer_do(&p, qd_sqe_pop(m.qd, 1), &cqe, &el);
	CHILD_CHECK(cqe.res == 10 && !(cqe.flags & QD_CQE_F_COPIED));
	CHILD_CHECK(el.segs[0].region == p.region);
	CHILD_CHECK(el.segs[0].offset == 20000 - 16384);
	CHILD_CHECK(check(p.mem + el.segs[0].offset, 10, 22));
	/* ...refuses what does not, leaving it first... */
	peer_do(&p, qd_sqe_pop(m.qd, 2), &cqe, &el);
	CHILD_CHECK(cqe.res == -EXDEV);
	CHILD_CHECK(m.h->head == m.h->tail - 1);
	/* ...and copies it once into a buffer the pop brings */
	priv = qd_raw_pages(qd_page_size());
	CHILD_CHECK(priv != NULL);
	CHILD_CHECK(qd_raw_register(p.r.fd, priv, qd_page_size(), &preg) == 0);
	sg = qd_seg(preg, 40, 8);
	{
		struct qd_sqe s = qd_sqe_pop(m.qd, 3);

		s.addr = (__u64)(unsigned long)&sg;
		s.nsegs = 1;
		peer_do(&p, s, &cqe, &el);
		CHILD_CHECK(cqe.res == -EMSGSIZE);
		sg.len = 200;
		peer_do(&p, s, &cqe, &el);
	}
	CHILD_CHECK(cqe.res == 12);
	CHILD_CHECK(cqe.flags & QD_CQE_F_COPIED);
	CHILD_CHECK(el.segs[0].region == preg && el.segs[0].offset == 40);
	CHILD_CHECK(el.segs[0].len == 12);
	CHILD_CHECK(check(priv + 40, 12, 23));
	CHILD_CHECK(m.h->head == m.h->tail);
	KTELL(3);
}

/*
 * Bindings between different ranges of one memfd: a child's region from
 * file offset 16 KiB is found inside the parent's whole-file region (the
 * lookup's offset), the parent's binding is not inside the child's
 * (-EXDEV: its pops go through the kernel, which rewrites an element in
 * the child's pages without a copy, refuses one outside them with -EXDEV
 * and leaves it first, and copies it into a buffer the pop brings).
 */
TEST_F(share, mapped_shared_lookup_offset_exdev_and_copy)
{
	unsigned int ix, mine, rg;
	struct qd_seg sg;
	struct smq m;
	int xfd;
	__u64 off;

	ASSERT_EQ(0, smq_create(self->r.fd, 8, &m));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	ASSERT_EQ(0u, ix);
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_offset);
	ASSERT_EQ(0, tell_fd(self->sv[0], 0, xfd));
	mine = (unsigned int)hear(self->sv[0]);
	EXPECT_EQ(1u, mine);
	ASSERT_EQ(QD_MQ_OK, smq_pop(&m, &sg));
	ASSERT_EQ(0, smq_lookup(self->r.fd, m.qd, sg.region, &rg, &off));
	EXPECT_EQ(self->region, rg);
	EXPECT_EQ(16384ull, off);
	EXPECT_TRUE(check(self->mem + off + sg.offset, 10, 21));
	fill(self->mem + 20000, 10, 22);
	ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 20000, 10));
	fill(self->mem + 100, 12, 23);
	ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 100, 12));
	TELL(2);
	HEAR(3);
	CHILD_OK();
	munmap(m.h, m.bytes);
	close(xfd);
}

static void kid_sleeps(share_t *self)
{
	unsigned int rg;
	struct qd_seg sg;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct peer p;
	struct smq m;
	int xfd;
	__u64 off;

	CHILD_CHECK(hear_fd(self->sv[1], &xfd) == 0);
	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(smq_import(p.r.fd, xfd, &m, NULL) == 0);
	CHILD_CHECK(smq_pop(&m, &sg) == QD_MQ_EMPTY);
	KTELL(1);
	/* asleep on the import, no operation: woken by the parent's wake */
	CHILD_CHECK(smq_sleep(&p.r, m.qd, 10 * LONG_NS) == 0);
	CHILD_CHECK(smq_pop(&m, &sg) == QD_MQ_OK);
	CHILD_CHECK(smq_lookup(p.r.fd, m.qd, sg.region, &rg, &off) == 0);
	CHILD_CHECK(rg == p.region && check(p.mem + off + sg.offset, sg.len, 31));
	/* a pop parked in the kernel, served by the parent's push and wake */
	peer_submit(&p, qd_sqe_pop(m.qd, 5));
	KTELL(2);
	peer_reap(&p, &cqe, &el);
	CHILD_CHECK(cqe.user_data == 5 && cqe.res == 20);
	CHILD_CHECK(el.segs[0].region == p.region);
	CHILD_CHECK(el.segs[0].offset == 8000);
	CHILD_CHECK(check(p.mem + 8000, 20, 32));
	KTELL(3);
}

/*
 * A sleeper in one process, woken by the other's push: a child asleep in
 * QD_ENTER_MQ_POP on its import (QD_MQ_POP_SLEEPERS) is woken by the
 * parent's user-space push and skip-success wake; a pop the child parked
 * in the kernel (QD_MQ_POP_WAITERS) is served by the same.
 */
TEST_F(share, mapped_shared_sleeper_woken_by_other_process)
{
	unsigned int ix;
	struct smq m;
	int xfd;

	ASSERT_EQ(0, smq_create(self->r.fd, 8, &m));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_sleeps);
	ASSERT_EQ(0, tell_fd(self->sv[0], 0, xfd));
	HEAR(1);
	ASSERT_EQ(0, smq_wait_flag(&m, QD_MQ_POP_SLEEPERS));
	fill(self->mem + 300, 40, 31);
	ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 300, 40));
	ASSERT_TRUE(!!(smq_waiters(&m) & QD_MQ_POP_SLEEPERS));
	SUBMIT(sqe_wake(m.qd));
	HEAR(2);
	ASSERT_EQ(0, smq_wait_flag(&m, QD_MQ_POP_WAITERS));
	fill(self->mem + 8000, 20, 32);
	ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 8000, 20));
	ASSERT_TRUE(!!(smq_waiters(&m) & QD_MQ_POP_WAITERS));
	SUBMIT(sqe_wake(m.qd));
	HEAR(3);
	CHILD_OK();
	NOTHING_MORE();
	munmap(m.h, m.bytes);
	close(xfd);
}

static void kid_scribbles(share_t *self)
{
	struct qd_mq_slot *s;
	struct peer p;
	struct smq m;
	__u32 pos;
	int xfd;

	CHILD_CHECK(hear_fd(self->sv[1], &xfd) == 0);
	peer_open(&p, -1, 0, 0);
	CHILD_CHECK(smq_import(p.r.fd, xfd, &m, NULL) == 0);
	/* an unbound index, an offset past the region, a zero length */
	CHILD_CHECK(smq_push(&m, 63, 0, 8) == QD_MQ_OK);
	CHILD_CHECK(smq_push(&m, 0, MEM_BYTES - 4, 8) == QD_MQ_OK);
	CHILD_CHECK(smq_push(&m, 0, 0, 0) == QD_MQ_OK);
	/* too many segments, written by hand */
	CHILD_CHECK(smq_push(&m, 0, 0, 8) == QD_MQ_OK);
	pos = m.h->tail - 1;
	s = &qd_mq_slots(m.h)[pos & m.h->mask];
	s->nsegs = QD_SGA_MAX + 1;
	/* and a good one */
	CHILD_CHECK(smq_push(&m, 0, 500, 9) == QD_MQ_OK);
	/* garbage in the header too: entries and mask (the kernel has its own) */
	m.h->entries = 3;
	m.h->mask = 0xffff;
	KTELL(1);
	KHEAR(2);
}

/*
 * A process that writes garbage descriptors into the shared ring hurts
 * only those elements: the other process's kernel pops get -EBADMSG for
 * each (dropped), then the good element, and the queue works on.
 */
TEST_F(share, mapped_shared_garbage_hurts_only_its_elements)
{
	unsigned int ix, i;
	struct qd_seg sg;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct smq m;
	int xfd;

	ASSERT_EQ(0, smq_create(self->r.fd, 8, &m));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_scribbles);
	ASSERT_EQ(0, tell_fd(self->sv[0], 0, xfd));
	HEAR(1);
	for (i = 0; i < 4; i++) {
		DO(qd_sqe_pop(m.qd, 10 + i), &cqe, NULL);
		EXPECT_EQ(-EBADMSG, cqe.res) TH_LOG("element %u", i);
	}
	DO(qd_sqe_pop(m.qd, 20), &cqe, &el);
	EXPECT_EQ(9, cqe.res);
	EXPECT_EQ(self->region, el.segs[0].region);
	EXPECT_EQ(500u, el.segs[0].offset);
	/* on we go, through the kernel's own mask */
	sg = qd_seg(self->region, 700, 7);
	DO(qd_sqe_push(m.qd, &sg, 1, 21), &cqe, NULL);
	EXPECT_EQ(7, cqe.res);
	DO(qd_sqe_pop(m.qd, 22), &cqe, &el);
	EXPECT_EQ(7, cqe.res);
	EXPECT_EQ(700u, el.segs[0].offset);
	TELL(2);
	CHILD_OK();
	NOTHING_MORE();
	munmap(m.h, m.bytes);
	close(xfd);
}

static void kid_binds_and_dies(share_t *self)
{
	unsigned int mine, i;
	struct peer p;
	struct smq m;
	int xfd;

	CHILD_CHECK(hear_fd(self->sv[1], &xfd) == 0);
	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(smq_import(p.r.fd, xfd, &m, NULL) == 0);
	CHILD_CHECK(smq_bind(p.r.fd, m.qd, p.region, &mine) == 0);
	/* a pop parked in the kernel (never woken: we send no wake) */
	peer_submit(&p, qd_sqe_pop(m.qd, 9));
	CHILD_CHECK(smq_waiters(&m) & QD_MQ_POP_WAITERS);
	for (i = 0; i < 3; i++) {
		fill(p.mem + 4096 * (i + 1), 50, 40 + i);
		CHILD_CHECK(smq_push(&m, mine, 4096 * (i + 1), 50) == QD_MQ_OK);
	}
	KTELL(mine);
	for (;;)
		pause();
}

/*
 * A SIGKILLed peer that bound its region and pushed in user space: its
 * elements stay poppable in user space (the binding holds its region and
 * context, and its pages pinned), and once the queue's last handle is
 * closed /proc/qd is back where it started.
 */
TEST_F(share, mapped_shared_killed_peer_elements_stay)
{
	long long pg = MEM_BYTES / (long long)qd_page_size();
	struct qd_proc base, ps;
	unsigned int mine, rg, i;
	struct qd_seg sg;
	struct smq m;
	int xfd;
	__u64 off;

	ASSERT_EQ(0, qd_proc_read(&base));
	ASSERT_EQ(0, smq_create(self->r.fd, 8, &m));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_binds_and_dies);
	ASSERT_EQ(0, tell_fd(self->sv[0], 0, xfd));
	mine = (unsigned int)hear(self->sv[0]);
	close(xfd);
	ASSERT_EQ(0, smq_wait_flag(&m, QD_MQ_POP_WAITERS));
	ASSERT_EQ(0, kill(self->pid, SIGKILL));
	ASSERT_EQ(128 + SIGKILL, qd_wait_child(self->pid));
	self->pid = 0;
	/* its parked pop went with it */
	for (i = 0; i < 100 && (smq_waiters(&m) & QD_MQ_POP_WAITERS); i++)
		usleep(10000);
	EXPECT_EQ(0ul, smq_waiters(&m) & QD_MQ_POP_WAITERS);
	ASSERT_EQ(0, qd_proc_read(&ps));
	EXPECT_EQ(base.contexts + 1, ps.contexts);
	EXPECT_EQ(base.pinned_pages + pg + 1, ps.pinned_pages);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(QD_MQ_OK, smq_pop(&m, &sg));
		EXPECT_EQ(mine, sg.region);
		ASSERT_EQ(0, smq_lookup(self->r.fd, m.qd, sg.region, &rg, &off));
		EXPECT_EQ(self->region, rg);
		EXPECT_TRUE(check(self->mem + off + sg.offset, 50, 40 + i));
	}
	/* the dead peer's context lives as long as the queue */
	ASSERT_EQ(0, qd_proc_read(&ps));
	EXPECT_EQ(base.contexts + 1, ps.contexts);
	ASSERT_EQ(0, qd_raw_close(self->r.fd, m.qd));
	EXPECT_EQ(0, qd_proc_wait_idle(base.contexts, base.pinned_pages, 5000, &ps))
		TH_LOG("contexts %lld pinned_pages %lld", ps.contexts, ps.pinned_pages);
	/* the mapping holds only the ring */
	EXPECT_EQ(0ul, m.h->waiters & QD_MQ_POP_WAITERS);
	munmap(m.h, m.bytes);
	qd_raw_exit(&self->r);
	munmap(self->mem, MEM_BYTES);
	self->mem = NULL;
	EXPECT_EQ(0, qd_proc_wait_idle(base.contexts - 1, base.pinned_pages - pg,
				       5000, &ps))
		TH_LOG("contexts %lld pinned_pages %lld", ps.contexts, ps.pinned_pages);
	EXPECT_EQ(base.queues - 1, ps.queues);
	EXPECT_EQ(base.queued, ps.queued);
	EXPECT_EQ(0, qd_proc_wait_idle(0, 0, 100, &ps));
}

#define RACE_N		3000
#define RACE_TALLY	32768	/* tally bytes in the memfd, one per element */

/* Pop in user space until the ring is empty: the count; each tallied. */
static int smq_race(struct smq *m, int fd, char *mem)
{
	unsigned int rg;
	struct qd_seg sg;
	int n = 0;
	__u64 off;

	while (smq_pop(m, &sg) == QD_MQ_OK) {
		if (smq_lookup(fd, m->qd, sg.region, &rg, &off) ||
		    sg.offset >= RACE_N)
			return -1;
		__atomic_fetch_add(mem + RACE_TALLY + off + sg.offset, 1,
				   __ATOMIC_RELAXED);
		n++;
	}
	return n;
}

static void kid_race_mapped(share_t *self)
{
	struct peer p;
	struct smq m;
	int xfd, n;

	CHILD_CHECK(hear_fd(self->sv[1], &xfd) == 0);
	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(smq_import(p.r.fd, xfd, &m, NULL) == 0);
	KTELL(1);
	KHEAR(2);
	n = smq_race(&m, p.r.fd, p.mem);
	CHILD_CHECK(n >= 0);
	KTELL(n);
}

/*
 * Two processes popping one shared ring at once in user space: each of
 * 3,000 elements is taken exactly once (a tally in the shared memfd).
 */
TEST_F(share, mapped_shared_concurrent_poppers_each_once)
{
	unsigned int ix, i, bad = 0;
	struct smq m;
	int xfd, n, kid;

	ASSERT_EQ(0, smq_create(self->r.fd, 4096, &m));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xfd));
	memset(self->mem + RACE_TALLY, 0, RACE_N);
	for (i = 0; i < RACE_N; i++) {
		ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, i, 1));
	}
	SPAWN(kid_race_mapped);
	ASSERT_EQ(0, tell_fd(self->sv[0], 0, xfd));
	HEAR(1);
	TELL(2);
	n = smq_race(&m, self->r.fd, self->mem);
	ASSERT_LE(0, n);
	kid = (int)hear(self->sv[0]);
	CHILD_OK();
	TH_LOG("popped: parent %d, child %d", n, kid);
	EXPECT_EQ(RACE_N, n + kid);
	for (i = 0; i < RACE_N; i++)
		bad += self->mem[RACE_TALLY + i] != 1;
	EXPECT_EQ(0u, bad);
	munmap(m.h, m.bytes);
	close(xfd);
}

static void kid_multishot(share_t *self)
{
	struct qd_sqe ms;
	struct qd_cqe cqe;
	struct qd_elem el;
	struct peer p;
	struct smq m;
	int xfd, i;

	CHILD_CHECK(hear_fd(self->sv[1], &xfd) == 0);
	peer_open(&p, self->memfd, 0, MEM_BYTES);
	CHILD_CHECK(smq_import(p.r.fd, xfd, &m, NULL) == 0);
	ms = qd_sqe_pop(m.qd, 77);
	ms.op_flags = QD_POP_MULTISHOT;
	peer_submit(&p, ms);
	KTELL(1);
	for (i = 0; i < 3; i++) {
		peer_reap(&p, &cqe, &el);
		CHILD_CHECK(cqe.user_data == 77 && cqe.res == 10 + i);
		CHILD_CHECK(cqe.flags == (QD_CQE_F_ELEM | QD_CQE_F_MORE));
		CHILD_CHECK(el.segs[0].region == p.region);
		CHILD_CHECK(el.segs[0].offset == 2048u * (i + 1));
		CHILD_CHECK(check(p.mem + el.segs[0].offset, 10 + i, 50 + i));
	}
	/* our handle closes: the final CQE */
	CHILD_CHECK(qd_raw_close(p.r.fd, m.qd) == 0);
	peer_reap(&p, &cqe, &el);
	CHILD_CHECK(cqe.user_data == 77 && cqe.res == -ECANCELED);
	CHILD_CHECK(!(cqe.flags & QD_CQE_F_MORE));
	peer_nothing_more(&p);
	KTELL(3);
}

/*
 * A multishot pop parked by one process on its import of a shared mapped
 * queue takes, in order, what the other pushes in user space (each wake
 * serving it), every element rewritten into the popper's region; it ends
 * when its process closes its handle, and the queue lives on.
 */
TEST_F(share, mapped_shared_multishot_across_processes)
{
	unsigned int ix, i;
	struct smq m;
	int xfd;

	ASSERT_EQ(0, smq_create(self->r.fd, 8, &m));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_multishot);
	ASSERT_EQ(0, tell_fd(self->sv[0], 0, xfd));
	close(xfd);
	HEAR(1);
	ASSERT_EQ(0, smq_wait_flag(&m, QD_MQ_POP_WAITERS));
	for (i = 0; i < 3; i++) {
		fill(self->mem + 2048 * (i + 1), 10 + i, 50 + i);
		ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 2048 * (i + 1), 10 + i));
		ASSERT_TRUE(!!(smq_waiters(&m) & QD_MQ_POP_WAITERS));
		SUBMIT(sqe_wake(m.qd));
	}
	HEAR(3);
	CHILD_OK();
	/* no pop parked any more; the queue still works */
	EXPECT_EQ(0ul, smq_waiters(&m) & QD_MQ_POP_WAITERS);
	ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 64, 4));
	NOTHING_MORE();
	munmap(m.h, m.bytes);
}

static void kid_keeps_ring(share_t *self)
{
	struct peer p;
	struct smq m;
	int xfd;

	int inherited = (int)hear_fd(self->sv[1], &xfd);

	peer_open(&p, -1, 0, 0);
	CHILD_CHECK(smq_import(p.r.fd, xfd, &m, NULL) == 0);
	CHILD_CHECK(m.h != NULL);
	close(xfd);
	/* our handle goes; the mapping and the inherited export fd stay */
	CHILD_CHECK(qd_raw_close(p.r.fd, m.qd) == 0);
	KTELL(1);
	KHEAR(2);
	CHILD_CHECK(m.h->entries == 8 && m.h->mask == 7);
	CHILD_CHECK(m.h->tail == 1);
	close(inherited);
	KTELL(3);
	KHEAR(4);
	CHILD_CHECK(m.h->tail == 1);
	munmap(m.h, m.bytes);
	KTELL(5);
}

/*
 * A ring another process keeps mapped (and an export fd it keeps open)
 * hold only the ring: once every handle is closed and the creator has
 * closed its context, the creator's context, regions and pins are gone
 * (/proc/qd) while the other process still reads the ring; the queue goes
 * with the fd, the ring with the mapping.
 */
TEST_F(share, mapped_shared_ring_mapped_elsewhere_holds_no_context)
{
	long long pg = MEM_BYTES / (long long)qd_page_size();
	struct qd_proc base, ps;
	unsigned int ix;
	struct smq m;
	int xfd;

	ASSERT_EQ(0, qd_proc_read(&base));
	ASSERT_EQ(0, smq_create(self->r.fd, 8, &m));
	ASSERT_EQ(0, smq_bind(self->r.fd, m.qd, self->region, &ix));
	ASSERT_EQ(QD_MQ_OK, smq_push(&m, ix, 0, 8));
	ASSERT_EQ(0, share_export(self->r.fd, m.qd, QD_SHARE_ALL, &xfd));
	SPAWN(kid_keeps_ring);
	ASSERT_EQ(0, tell_fd(self->sv[0], xfd, xfd));
	close(xfd);
	HEAR(1);
	munmap(m.h, m.bytes);
	qd_raw_exit(&self->r);
	munmap(self->mem, MEM_BYTES);
	self->mem = NULL;
	/* ours gone, the child's (and its page) still there */
	EXPECT_EQ(0, qd_proc_wait_idle(base.contexts, base.pinned_pages - pg + 1,
				       5000, &ps))
		TH_LOG("contexts %lld pinned_pages %lld", ps.contexts, ps.pinned_pages);
	EXPECT_EQ(base.queues, ps.queues);	/* the export fd holds it */
	TELL(2);
	HEAR(3);
	ASSERT_EQ(0, qd_proc_read(&ps));
	EXPECT_EQ(base.queues - 1, ps.queues);
	TELL(4);
	HEAR(5);
	CHILD_OK();
	EXPECT_EQ(0, qd_proc_wait_idle(0, 0, 5000, &ps))
		TH_LOG("contexts %lld pinned_pages %lld", ps.contexts, ps.pinned_pages);
}

TEST_HARNESS_MAIN
