// SPDX-License-Identifier: GPL-2.0
/*
 * mapped: mapped memory queues (QD_QUEUE_MAPPED) through the raw ABI. User
 * space pushes and pops with loads, stores and compare-and-swaps on the
 * descriptor ring (kmod/common/qd_mq.h, the same code libqd uses); the
 * kernel's push and pop SQEs go through the same ring; parked operations
 * are advertised in hdr.waiters and served by QD_OP_WAKE.
 */
#include <pthread.h>

#include "qd_raw.h"

#include "qd_mq_user.h"

#include "harness.h"

#define REGION_BYTES	(64 * 1024)
#define SHORT_NS	(30 * QD_RAW_MS)
#define LONG_NS		(2000 * QD_RAW_MS)
#define TRIES		1000000

struct mq {
	int qd;
	struct qd_queue_create c;
	struct qd_mq_hdr *h;
};

static int mq_create(int fd, unsigned int depth, struct mq *m)
{
	void *p = NULL;
	int ret;

	memset(m, 0, sizeof(*m));
	m->c.depth = depth;
	m->c.flags = QD_QUEUE_MAPPED;
	ret = qd_raw_ioctl(fd, QD_IOC_QUEUE, &m->c);
	if (ret)
		return ret;
	m->qd = m->c.qd;
	ret = qd_raw_mmap(fd, m->c.map_bytes, m->c.map_off, &p);
	if (ret)
		return ret;
	m->h = p;
	return 0;
}

static int mq_push(struct mq *m, __u16 region, __u64 off, __u32 len)
{
	struct qd_seg s = qd_seg(region, off, len);
	int ret = qd_mq_produce(m->h, m->h->mask, &s, 1, TRIES);

	/* Publish, then look for sleepers (pairs with the kernel's smp_mb). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return ret;
}

static int mq_pop(struct mq *m, struct qd_seg *s)
{
	struct qd_seg segs[QD_SGA_MAX];
	__u16 n;
	int ret = qd_mq_consume(m->h, m->h->mask, segs, &n, TRIES);

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ret == QD_MQ_OK)
		*s = segs[0];
	return ret;
}

static __u32 mq_waiters(struct mq *m)
{
	return __atomic_load_n(&m->h->waiters, __ATOMIC_ACQUIRE);
}

static struct qd_sqe sqe_wake(int qd, __u64 ud)
{
	struct qd_sqe s = { .opcode = QD_OP_WAKE, .qd = qd, .user_data = ud };

	return s;
}

FIXTURE(mapped) {
	struct qd_raw r;
	char *buf;
	unsigned int region;
	struct mq m;
};

FIXTURE_SETUP(mapped)
{
	ASSERT_EQ(0, qd_raw_init(&self->r, 64, 128));
	ASSERT_TRUE(!!(self->r.p.features & QD_FEAT_MAPPED_QUEUE));
	self->buf = qd_raw_pages(REGION_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, qd_raw_register(self->r.fd, self->buf, REGION_BYTES,
				     &self->region));
	ASSERT_EQ(0, mq_create(self->r.fd, 8, &self->m));
}

FIXTURE_TEARDOWN(mapped)
{
	if (self->m.h)
		munmap(self->m.h, self->m.c.map_bytes);
	qd_raw_exit(&self->r);
	if (self->buf)
		munmap(self->buf, REGION_BYTES);
}

#define SUBMIT(sqe_) do {						\
	struct qd_sqe __s = (sqe_);					\
	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &__s));			\
	ASSERT_EQ(1, qd_raw_submit(&self->r));				\
} while (0)

#define REAP(cqe_, elem_) \
	ASSERT_EQ(0, qd_raw_wait_cqe(&self->r, (cqe_), (elem_), LONG_NS))

#define NOTHING_MORE() do {						\
	struct qd_cqe __c;						\
	EXPECT_EQ(-ETIMEDOUT, qd_raw_wait_cqe(&self->r, &__c, NULL, SHORT_NS)) \
		TH_LOG("unexpected CQE user_data %llu res %lld",	\
		       __c.user_data, __c.res);				\
} while (0)

/* The ring as created: rounded-up depth, sizes, every slot's turn. */
TEST_F(mapped, geometry)
{
	struct qd_mq_slot *s = qd_mq_slots(self->m.h);
	unsigned int i;

	EXPECT_EQ(8u, self->m.h->entries);
	EXPECT_EQ(7u, self->m.h->mask);
	EXPECT_EQ(QD_OFF_QUEUE(self->m.qd), self->m.c.map_off);
	EXPECT_GE(self->m.c.map_bytes, qd_mq_bytes(8));
	EXPECT_EQ(0u, self->m.c.map_bytes % qd_page_size());
	for (i = 0; i < 8; i++)
		EXPECT_EQ(i, s[i].seq);
	EXPECT_EQ(0u, mq_waiters(&self->m));
}

TEST_F(mapped, depth_rounds_up)
{
	struct mq m2;

	ASSERT_EQ(0, mq_create(self->r.fd, 5, &m2));
	EXPECT_EQ(8u, m2.h->entries);
	munmap(m2.h, m2.c.map_bytes);
}

/* An element pushed in user space is what a kernel pop yields. */
TEST_F(mapped, user_push_kernel_pop)
{
	struct qd_cqe cqe;
	struct qd_elem elem;

	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 128, 64));
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 256, 32));
	SUBMIT(qd_sqe_pop(self->m.qd, 1));
	REAP(&cqe, &elem);
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(64, cqe.res);
	ASSERT_TRUE(!!(cqe.flags & QD_CQE_F_ELEM));
	EXPECT_EQ(1, cqe.nsegs);
	EXPECT_EQ(128u, elem.segs[0].offset);
	EXPECT_EQ(self->region, elem.segs[0].region);
	SUBMIT(qd_sqe_pop(self->m.qd, 2));
	REAP(&cqe, &elem);
	EXPECT_EQ(32, cqe.res);
	EXPECT_EQ(256u, elem.segs[0].offset);
}

/* A kernel push lands in the ring, where user space finds it. */
TEST_F(mapped, kernel_push_user_pop)
{
	struct qd_seg seg = qd_seg(self->region, 4096, 100), got;
	struct qd_cqe cqe;

	SUBMIT(qd_sqe_push(self->m.qd, &seg, 1, 7));
	REAP(&cqe, NULL);
	EXPECT_EQ(7u, cqe.user_data);
	EXPECT_EQ(100, cqe.res);
	ASSERT_EQ(QD_MQ_OK, mq_pop(&self->m, &got));
	EXPECT_TRUE(qd_seg_eq(&seg, &got));
	EXPECT_EQ(QD_MQ_EMPTY, mq_pop(&self->m, &got));
}

/*
 * A kernel pop on an empty ring parks and says so; a user push then WAKE
 * completes it, and the flag clears.
 */
TEST_F(mapped, parked_pop_woken)
{
	struct qd_cqe cqe;
	struct qd_elem elem;

	SUBMIT(qd_sqe_pop(self->m.qd, 1));
	NOTHING_MORE();
	EXPECT_EQ(QD_MQ_POP_WAITERS, mq_waiters(&self->m));
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 0, 10));
	/* Without a wake, the parked pop is not served. */
	NOTHING_MORE();
	SUBMIT(sqe_wake(self->m.qd, 2));
	REAP(&cqe, &elem);
	if (cqe.user_data == 2) {
		EXPECT_EQ(0, cqe.res);
		REAP(&cqe, &elem);
	}
	EXPECT_EQ(1u, cqe.user_data);
	EXPECT_EQ(10, cqe.res);
	EXPECT_EQ(0u, mq_waiters(&self->m));
}

/* Parked pops are served oldest first, in ring order. */
TEST_F(mapped, fifo)
{
	struct qd_cqe cqe;
	struct qd_elem elem;
	unsigned int i, got = 0;

	for (i = 0; i < 3; i++)
		SUBMIT(qd_sqe_pop(self->m.qd, 10 + i));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region,
					    i * 64, 1 + i));
	SUBMIT(sqe_wake(self->m.qd, 99));
	while (got < 3) {
		REAP(&cqe, &elem);
		if (cqe.user_data == 99)
			continue;
		EXPECT_EQ(10u + got, cqe.user_data);
		EXPECT_EQ((long long)(1 + got), cqe.res);
		EXPECT_EQ(got * 64, elem.segs[0].offset);
		got++;
	}
}

/* A kernel push to a full ring parks until a user pop and a wake. */
TEST_F(mapped, full_ring_parks_push)
{
	struct qd_seg seg = qd_seg(self->region, 512, 8), got;
	struct qd_cqe cqe;
	unsigned int i;

	for (i = 0; i < 8; i++)
		ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, i, 1));
	EXPECT_EQ(QD_MQ_FULL, mq_push(&self->m, self->region, 0, 1));
	SUBMIT(qd_sqe_push(self->m.qd, &seg, 1, 5));
	NOTHING_MORE();
	EXPECT_EQ(QD_MQ_PUSH_WAITERS, mq_waiters(&self->m));
	ASSERT_EQ(QD_MQ_OK, mq_pop(&self->m, &got));
	EXPECT_EQ(0u, got.offset);
	SUBMIT(sqe_wake(self->m.qd, 6));
	REAP(&cqe, NULL);
	if (cqe.user_data == 6)
		REAP(&cqe, NULL);
	EXPECT_EQ(5u, cqe.user_data);
	EXPECT_EQ(8, cqe.res);
	EXPECT_EQ(0u, mq_waiters(&self->m));
	for (i = 1; i < 8; i++) {
		ASSERT_EQ(QD_MQ_OK, mq_pop(&self->m, &got));
		EXPECT_EQ(i, got.offset);
	}
	ASSERT_EQ(QD_MQ_OK, mq_pop(&self->m, &got));
	EXPECT_EQ(512u, got.offset);
}

/* Garbage in the ring is the popper's error, not the kernel's. */
TEST_F(mapped, bad_descriptor)
{
	struct qd_cqe cqe;
	struct qd_mq_slot *s;

	/* A region this context never registered. */
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, 200, 0, 16));
	SUBMIT(qd_sqe_pop(self->m.qd, 1));
	REAP(&cqe, NULL);
	EXPECT_EQ(-EBADMSG, cqe.res);
	/* Past the region's end. */
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, REGION_BYTES - 8, 16));
	SUBMIT(qd_sqe_pop(self->m.qd, 2));
	REAP(&cqe, NULL);
	EXPECT_EQ(-EBADMSG, cqe.res);
	/* Too many segments. */
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 0, 16));
	s = &qd_mq_slots(self->m.h)[(self->m.h->tail - 1) & 7];
	s->nsegs = QD_SGA_MAX + 1;
	SUBMIT(qd_sqe_pop(self->m.qd, 3));
	REAP(&cqe, NULL);
	EXPECT_EQ(-EBADMSG, cqe.res);
	/* A good element after the bad ones still goes through. */
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 64, 16));
	SUBMIT(qd_sqe_pop(self->m.qd, 4));
	REAP(&cqe, NULL);
	EXPECT_EQ(16, cqe.res);
}

/* A corrupted ring makes the kernel give up, never spin. */
TEST_F(mapped, corrupt_ring)
{
	struct qd_mq_slot *s = qd_mq_slots(self->m.h);
	struct qd_seg seg = qd_seg(self->region, 0, 4);
	struct qd_cqe cqe;
	unsigned int i;

	for (i = 0; i < 8; i++)
		s[i].seq = 0xdeadbeef;
	self->m.h->tail = 12345;
	self->m.h->head = 777;
	SUBMIT(qd_sqe_pop(self->m.qd, 1));
	SUBMIT(qd_sqe_push(self->m.qd, &seg, 1, 2));
	NOTHING_MORE();
	/* Closing still cancels both. */
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->m.qd));
	REAP(&cqe, NULL);
	EXPECT_EQ(-ECANCELED, cqe.res);
	REAP(&cqe, NULL);
	EXPECT_EQ(-ECANCELED, cqe.res);
}

TEST_F(mapped, wake_and_multishot_rules)
{
	struct qd_seg b = qd_seg(self->region, 0, 64);
	struct qd_sqe s;
	struct qd_cqe cqe;
	int plain;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &plain));
	SUBMIT(sqe_wake(plain, 1));
	REAP(&cqe, NULL);
	EXPECT_EQ(-EINVAL, cqe.res);
	SUBMIT(sqe_wake(12345, 2));
	REAP(&cqe, NULL);
	EXPECT_EQ(-EBADF, cqe.res);
	/* A pop with a buffer (for copies across contexts) is not for it. */
	s = qd_sqe_pop(self->m.qd, 3);
	s.addr = (uintptr_t)&b;
	s.nsegs = 1;
	SUBMIT(s);
	REAP(&cqe, NULL);
	EXPECT_EQ(-EOPNOTSUPP, cqe.res);
	/* A wake with nothing parked is a no-op that succeeds. */
	SUBMIT(sqe_wake(self->m.qd, 4));
	REAP(&cqe, NULL);
	EXPECT_EQ(0, cqe.res);
}

TEST_F(mapped, mmap_rules)
{
	void *p;
	int plain;

	ASSERT_EQ(0, qd_raw_queue(self->r.fd, 0, &plain));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, qd_page_size(),
				       QD_OFF_QUEUE(plain), &p));
	EXPECT_EQ(-EBADF, qd_raw_mmap(self->r.fd, qd_page_size(),
				      QD_OFF_QUEUE(4000), &p));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, self->m.c.map_bytes + 4096,
				       self->m.c.map_off, &p));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->r.fd, qd_page_size(),
				       self->m.c.map_off + 4096, &p));
}

/*
 * A multishot pop on a mapped queue: what the ring holds at once, then
 * each element a user-space push publishes and a wake announces, each with
 * QD_CQE_F_MORE, in order; the close ends it.
 */
TEST_F(mapped, multishot)
{
	struct qd_cqe cqe;
	struct qd_elem el;
	struct qd_sqe s;
	unsigned int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, i * 64, 8 + i));
	s = qd_sqe_pop(self->m.qd, 7);
	s.op_flags = QD_POP_MULTISHOT;
	SUBMIT(s);
	for (i = 0; i < 3; i++) {
		REAP(&cqe, &el);
		EXPECT_EQ(7u, cqe.user_data);
		EXPECT_EQ((long long)(8 + i), cqe.res);
		EXPECT_TRUE(!!(cqe.flags & QD_CQE_F_MORE));
		EXPECT_EQ(i * 64, el.segs[0].offset);
	}
	NOTHING_MORE();
	EXPECT_EQ(QD_MQ_POP_WAITERS, mq_waiters(&self->m));
	for (i = 3; i < 5; i++)
		ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, i * 64, 8 + i));
	SUBMIT(sqe_wake(self->m.qd, 8));
	for (i = 3; i < 5; i++) {
		REAP(&cqe, &el);
		if (cqe.user_data == 8)
			REAP(&cqe, &el);
		EXPECT_EQ(7u, cqe.user_data);
		EXPECT_EQ(i * 64, el.segs[0].offset);
		EXPECT_TRUE(!!(cqe.flags & QD_CQE_F_MORE));
	}
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->m.qd));
	do {
		REAP(&cqe, NULL);
	} while (cqe.user_data == 8);
	EXPECT_EQ(7u, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_FALSE(!!(cqe.flags & QD_CQE_F_MORE));
}

/* The mapping outlives the queue's close and the context's. */
TEST_F(mapped, mapping_outlives_close)
{
	struct qd_seg got;

	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 0, 4));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->m.qd));
	ASSERT_EQ(QD_MQ_OK, mq_pop(&self->m, &got));
	qd_raw_exit(&self->r);
	EXPECT_EQ(QD_MQ_EMPTY, mq_pop(&self->m, &got));
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 0, 4));
	self->r.fd = -1;
}

/*
 * Ring memory is bounded per context (max_ring_bytes, 64 MiB by default):
 * big mapped queues fail with -ENOBUFS past it, and a closed queue's ring
 * is given back once nothing maps it.
 */
TEST_F(mapped, ring_bytes_bounded)
{
	struct qd_params p = { .sq_entries = 4096 };
	struct qd_queue_create c;
	int qds[64], n = 0, ret = 0;

	while (n < 64) {
		memset(&c, 0, sizeof(c));
		c.depth = QD_MEMQ_MAX_DEPTH;
		c.flags = QD_QUEUE_MAPPED;
		ret = qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &c);
		if (ret)
			break;
		qds[n++] = c.qd;
	}
	EXPECT_EQ(-ENOBUFS, ret);
	/* 64 MiB of 9.4 MB rings, less what the fixture holds. */
	EXPECT_GE(n, 5);
	EXPECT_LE(n, 7);
	/* Rings (SQ/CQ pairs) count against the same bound. */
	EXPECT_EQ(-ENOBUFS, qd_raw_ioctl(self->r.fd, QD_IOC_RING, &p));
	ASSERT_GT(n, 0);
	ASSERT_EQ(0, qd_raw_close(self->r.fd, qds[--n]));
	memset(&c, 0, sizeof(c));
	c.depth = QD_MEMQ_MAX_DEPTH;
	c.flags = QD_QUEUE_MAPPED;
	EXPECT_EQ(0, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &c));
}

/*
 * The fast path racing the kernel path on one queue: a user-space producer
 * thread and a user-space consumer thread share the ring with kernel pushes
 * and kernel pops from the main thread. Every element is taken exactly
 * once; the waiters flags drive the wakes.
 */
struct race {
	struct mq *m;
	unsigned int region;
	unsigned int n;
	unsigned long long sum;		/* consumer: offsets seen */
	unsigned int got;
};

static void *race_producer(void *arg)
{
	struct race *x = arg;
	unsigned int i;
	int ret;

	for (i = 0; i < x->n; i++) {
		do {
			ret = mq_push(x->m, x->region, 1 + i, 1);
		} while (ret != QD_MQ_OK);
	}
	return NULL;
}

static void *race_consumer(void *arg)
{
	struct race *x = arg;
	struct qd_seg s;

	/* Leave kernel pops as many elements as the kernel pushes. */
	while (__atomic_load_n(&x->got, __ATOMIC_RELAXED) < x->n) {
		if (mq_pop(x->m, &s) == QD_MQ_OK) {
			__atomic_add_fetch(&x->sum, s.offset, __ATOMIC_RELAXED);
			__atomic_add_fetch(&x->got, 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

TEST_F(mapped, fast_path_races_kernel_path)
{
	const unsigned int n = 20000, kn = 2000;
	struct qd_seg segs[64];
	struct race x = {
		.m = &self->m, .region = self->region, .n = n,
	};
	unsigned long long expect = 0, ksum = 0;
	unsigned int i, pending = 0, kpushed = 0, kpopped = 0, ud = 0;
	pthread_t p, c;
	struct qd_cqe cqe;
	struct qd_elem elem;
	struct qd_sqe s;

	for (i = 0; i < n; i++)
		expect += 1 + i;
	for (i = 0; i < kn; i++)
		expect += 30000 + i;
	ASSERT_EQ(0, pthread_create(&p, NULL, race_producer, &x));
	ASSERT_EQ(0, pthread_create(&c, NULL, race_consumer, &x));
	/* Kernel pushes and pops, a few in flight at a time. */
	while (kpushed < kn || pending) {
		if (kpushed < kn && pending < 16) {
			segs[kpushed % 64] = qd_seg(self->region,
						    30000 + kpushed, 1);
			s = qd_sqe_push(self->m.qd, &segs[kpushed % 64], 1,
					1000000 + ud++);
			ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
			s = qd_sqe_pop(self->m.qd, ud++);
			ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
			ASSERT_EQ(2, qd_raw_submit(&self->r));
			kpushed++;
			pending += 2;
		}
		/* Anyone may be parked: wake them as a user-space party would. */
		if (mq_waiters(&self->m)) {
			s = sqe_wake(self->m.qd, 2000000);
			ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &s));
			ASSERT_EQ(1, qd_raw_submit(&self->r));
			pending++;
		}
		while (qd_raw_peek_cqe(&self->r, &cqe, &elem) == 1) {
			pending--;
			ASSERT_LE(0, cqe.res) TH_LOG("ud %llu res %lld",
						     cqe.user_data, cqe.res);
			if (cqe.user_data < 1000000 && cqe.opcode == QD_OP_POP) {
				ksum += elem.segs[0].offset;
				kpopped++;
			}
		}
		if (kpushed == kn && pending)
			qd_raw_enter(&self->r, 0, 1, QD_RAW_WAIT, 10 * QD_RAW_MS);
	}
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	EXPECT_EQ(kn, kpopped);
	EXPECT_EQ(n, x.got);
	EXPECT_EQ(expect, x.sum + ksum);
}

/* --- QD_ENTER_MQ_POP: a pop's sleep without an operation -------------- */

/* QD_IOC_ENTER(MQ_POP) on qd, past CQ tail seq; timeout_ns < 0: none. */
static int mq_sleep(struct qd_raw *r, int qd, unsigned int to_submit,
		    unsigned int seq, long long timeout_ns)
{
	struct qd_enter e = {
		.to_submit = to_submit, .flags = QD_ENTER_MQ_POP,
		.ring = r->ring, .wait_seq = seq, .qd = qd,
	};

	if (timeout_ns >= 0) {
		e.flags |= QD_ENTER_TIMEOUT;
		e.timeout_ns = timeout_ns;
	}
	return qd_raw_ioctl(r->fd, QD_IOC_ENTER, &e);
}

struct sleeper {
	struct qd_raw *r;
	int qd;
	unsigned int seq;
	int ret;
	int done;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *sl = arg;

	sl->ret = mq_sleep(sl->r, sl->qd, 0, sl->seq, LONG_NS);
	__atomic_store_n(&sl->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Wait (up to 2 s) until the sleeper has the flag up: it is in the kernel. */
static int sleeping(struct mq *m, struct sleeper *sl)
{
	int i;

	for (i = 0; i < 2000; i++) {
		if (mq_waiters(m) & QD_MQ_POP_SLEEPERS)
			return 1;
		if (__atomic_load_n(&sl->done, __ATOMIC_ACQUIRE))
			return 0;
		usleep(1000);
	}
	return 0;
}

static int joined(struct sleeper *sl, pthread_t t)
{
	int i;

	for (i = 0; i < 2000 && !__atomic_load_n(&sl->done, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	if (!sl->done)
		return 0;
	pthread_join(t, NULL);
	return 1;
}

/*
 * A sleeper advertises itself (QD_MQ_POP_SLEEPERS), is not woken by a
 * push through the ring alone (that push saw the flag: its wake is due),
 * is woken by the QD_OP_WAKE, which posts no CQE, makes no operation, and
 * leaves the element in the ring for user space; the flag goes with it.
 */
TEST_F(mapped, mq_pop_sleep_woken_by_push_and_wake)
{
	struct sleeper sl = { .r = &self->r, .qd = self->m.qd,
			      .seq = *self->r.cq_tail };
	struct qd_seg seg;
	pthread_t t;
	__u32 w;

	ASSERT_TRUE(!!(self->r.p.features & QD_FEAT_MQ_SLEEP));
	ASSERT_EQ(0, pthread_create(&t, NULL, sleeper_main, &sl));
	ASSERT_TRUE(sleeping(&self->m, &sl));
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 64, 20));
	w = mq_waiters(&self->m);
	EXPECT_EQ(QD_MQ_POP_SLEEPERS, w);
	usleep(30 * 1000);
	EXPECT_EQ(0, __atomic_load_n(&sl.done, __ATOMIC_ACQUIRE));
	SUBMIT(((struct qd_sqe){ .opcode = QD_OP_WAKE, .qd = self->m.qd,
				 .flags = QD_SQE_F_SKIP_SUCCESS }));
	ASSERT_TRUE(joined(&sl, t));
	EXPECT_EQ(0, sl.ret);
	EXPECT_EQ(0u, mq_waiters(&self->m));
	/* no CQE for the wake, none for the sleep */
	EXPECT_EQ(sl.seq, *self->r.cq_tail);
	ASSERT_EQ(QD_MQ_OK, mq_pop(&self->m, &seg));
	EXPECT_EQ(64u, seg.offset);
	EXPECT_EQ(20u, seg.len);
}

/* An element already there, or a pop parked in the kernel: no sleep. */
TEST_F(mapped, mq_pop_sleep_returns_at_once_with_something_to_look_at)
{
	struct qd_cqe cqe;
	struct qd_seg seg;
	struct mq m2;

	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 0, 8));
	EXPECT_EQ(0, mq_sleep(&self->r, self->m.qd, 0, *self->r.cq_tail,
			      LONG_NS));
	EXPECT_EQ(0u, mq_waiters(&self->m));
	ASSERT_EQ(QD_MQ_OK, mq_pop(&self->m, &seg));
	/* a kernel pop parked on the queue: user space must join its line */
	SUBMIT(qd_sqe_pop(self->m.qd, 7));
	EXPECT_EQ(QD_MQ_POP_WAITERS, mq_waiters(&self->m));
	EXPECT_EQ(0, mq_sleep(&self->r, self->m.qd, 0, *self->r.cq_tail,
			      LONG_NS));
	/* nothing there: the timeout */
	ASSERT_EQ(0, mq_create(self->r.fd, 8, &m2));
	EXPECT_EQ(-ETIMEDOUT, mq_sleep(&self->r, m2.qd, 0, *self->r.cq_tail,
				       SHORT_NS));
	EXPECT_EQ(0u, mq_waiters(&m2));
	/* a CQE posted past wait_seq ends it too (the CQ_TAIL rule) */
	ASSERT_EQ(QD_MQ_OK, mq_push(&self->m, self->region, 0, 9));
	SUBMIT(sqe_wake(self->m.qd, 8));
	EXPECT_EQ(0, mq_sleep(&self->r, m2.qd, 0, *self->r.cq_tail - 1,
			      LONG_NS));
	REAP(&cqe, NULL);
	munmap(m2.h, m2.c.map_bytes);
}

/* Closing the queue, or a kernel push into its ring, wakes a sleeper. */
TEST_F(mapped, mq_pop_sleep_woken_by_close_and_kernel_push)
{
	struct sleeper sl = { .r = &self->r, .qd = self->m.qd,
			      .seq = *self->r.cq_tail };
	struct qd_cqe cqe;
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, sleeper_main, &sl));
	ASSERT_TRUE(sleeping(&self->m, &sl));
	struct qd_seg pseg = qd_seg(self->region, 128, 5);

	SUBMIT(qd_sqe_push(self->m.qd, &pseg, 1, 3));
	ASSERT_TRUE(joined(&sl, t));
	EXPECT_EQ(0, sl.ret);
	/* the push's own CQE is the only one */
	REAP(&cqe, NULL);
	EXPECT_EQ(3u, cqe.user_data);
	EXPECT_EQ(5, cqe.res);

	sl.seq = *self->r.cq_tail;
	sl.done = 0;
	{
		struct qd_seg seg;

		ASSERT_EQ(QD_MQ_OK, mq_pop(&self->m, &seg));
	}
	ASSERT_EQ(0, pthread_create(&t, NULL, sleeper_main, &sl));
	ASSERT_TRUE(sleeping(&self->m, &sl));
	ASSERT_EQ(0, qd_raw_close(self->r.fd, self->m.qd));
	ASSERT_TRUE(joined(&sl, t));
	EXPECT_EQ(0, sl.ret);
	/* and now the qd is gone */
	EXPECT_EQ(-EBADF, mq_sleep(&self->r, self->m.qd, 0, *self->r.cq_tail,
				   SHORT_NS));
}

/* The rules: what MQ_POP needs, and qd without it. */
TEST_F(mapped, mq_pop_sleep_rules)
{
	struct qd_enter e = { .flags = QD_ENTER_MQ_POP | QD_ENTER_CQ_TAIL,
			      .qd = self->m.qd };
	struct qd_queue_create c = { .depth = 4 };
	unsigned int seq = *self->r.cq_tail;

	/* two wait modes */
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e));
	/* qd without MQ_POP (any non-zero value) */
	e.flags = QD_ENTER_CQ_TAIL | QD_ENTER_TIMEOUT;
	e.wait_seq = seq;
	e.qd = self->m.qd + 1;
	EXPECT_EQ(-EINVAL, qd_raw_ioctl(self->r.fd, QD_IOC_ENTER, &e));
	/* no such qd, a negative one */
	EXPECT_EQ(-EBADF, mq_sleep(&self->r, self->m.qd + 100, 0, seq, SHORT_NS));
	EXPECT_EQ(-EBADF, mq_sleep(&self->r, -1, 0, seq, SHORT_NS));
	/* a queue that is not mapped */
	ASSERT_EQ(0, qd_raw_ioctl(self->r.fd, QD_IOC_QUEUE, &c));
	EXPECT_EQ(-EINVAL, mq_sleep(&self->r, c.qd, 0, seq, SHORT_NS));
	/* nothing left behind: no sleeper flag */
	EXPECT_EQ(0u, mq_waiters(&self->m));
}

/*
 * A successful QD_OP_WAKE with SKIP_SUCCESS (the kernel takes it without
 * an operation) posts nothing; failing ones still post their errors.
 */
TEST_F(mapped, skip_success_wake_posts_nothing_but_errors)
{
	struct qd_cqe cqe;
	int i;

	for (i = 0; i < 100; i++)
		SUBMIT(((struct qd_sqe){ .opcode = QD_OP_WAKE,
					 .qd = self->m.qd,
					 .flags = QD_SQE_F_SKIP_SUCCESS }));
	NOTHING_MORE();
	SUBMIT(((struct qd_sqe){ .opcode = QD_OP_WAKE, .qd = self->m.qd + 100,
				 .user_data = 9,
				 .flags = QD_SQE_F_SKIP_SUCCESS }));
	REAP(&cqe, NULL);
	EXPECT_EQ(9u, cqe.user_data);
	EXPECT_EQ(-EBADF, cqe.res);
	SUBMIT(((struct qd_sqe){ .opcode = QD_OP_WAKE, .qd = self->m.qd,
				 .user_data = 10, .addr = 1,
				 .flags = QD_SQE_F_SKIP_SUCCESS }));
	REAP(&cqe, NULL);
	EXPECT_EQ(10u, cqe.user_data);
	EXPECT_EQ(-EINVAL, cqe.res);
}

TEST_HARNESS_MAIN
