// SPDX-License-Identifier: GPL-2.0
/*
 * derived: derived queues (QD_IOC_DERIVE: filter, merge, sort).
 *
 * derive_spec: every invalid specification (-EINVAL), bad and unsupported
 * sources (-EBADF, -EOPNOTSUPP: a socket, a storage queue, a shared mapped
 * queue, an imported queue and its exporter's handle), the level limit.
 *
 * derived (twice: over a plain memory queue and over a mapped one, pushed
 * through its ring by the protocol, so that QD_MQ_PUSH_KERNEL decides):
 * each rule of the semantics through the raw ABI: routing at arrival in
 * creation order, predicates (widths, endianness, masks, the six
 * comparisons, conjunctions, fields across segments, short elements), sort
 * order, merge fairness and nesting, pushes to derived queues, closes of
 * sources and of derived queues, waiters woken only for their elements,
 * multishot pops, QD_OP_CANCEL, a process exiting with derived queues full.
 *
 * model: a reference model (derived_model.h) and the kernel, through
 * libqd's public API, driven by the same random sequence of pushes, pops,
 * cancels, derives and closes and compared after every step (modes: 0
 * libqd's mapped queues, 1 plain ones, 2 both, 3 the callback forms
 * qd_filter_fn/qd_sort_fn); seeded:
 *
 *   derived --seed N [--steps M] [--mode K]   one run (default 3000 steps,
 *                                   mode 2)
 *   derived --secs S [--seed N]    rounds of 3000 steps for S seconds, the
 *                                   modes in turn (make fuzz), each round's
 *                                   seed printed
 *   QD_DERIVED_SEED=N              the seed of the suite's short run
 */
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <qd.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "qd_mq_user.h"
#include "derived_model.h"
#include "harness.h"

#define REGION_BYTES	(256 * 1024)
#define SLOT		64			/* bytes per element segment */
#define NSLOTS		(REGION_BYTES / SLOT)
#define SHORT_NS	(30 * QD_RAW_MS)	/* "stays pending" window */
#define LONG_NS		(5000 * QD_RAW_MS)	/* "must complete" bound */
#define TRIES		1000000
#define STASH		512
#define MAXMQ		64

/* --- a context for the raw tests --------------------------------------- */

struct dt_mq {
	int			qd;
	struct qd_mq_hdr	*h;
	size_t			len;
};

struct dt {
	struct qd_raw		r;
	char			*buf;
	unsigned int		region;
	unsigned int		slot;		/* next free SLOT in buf */
	__u64			ud;		/* next user_data */
	struct dt_mq		mq[MAXMQ];	/* mapped queues and their rings */
	int			nmq;
	/* CQEs reaped while waiting for another */
	struct qd_cqe		cqe[STASH];
	struct qd_elem		elem[STASH];
	int			ncqe;
	unsigned int		ring_pushes;	/* pushes that went through a ring */
	unsigned int		kernel_pushes;
};

static int dt_init(struct dt *t)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->ud = 1;
	ret = qd_raw_init(&t->r, 64, 256);
	if (ret)
		return ret;
	t->buf = qd_raw_pages(REGION_BYTES);
	if (!t->buf)
		return -ENOMEM;
	return qd_raw_register(t->r.fd, t->buf, REGION_BYTES, &t->region);
}

static void dt_fini(struct dt *t)
{
	int i;

	for (i = 0; i < t->nmq; i++)
		if (t->mq[i].h)
			munmap(t->mq[i].h, t->mq[i].len);
	qd_raw_exit(&t->r);
	if (t->buf)
		munmap(t->buf, REGION_BYTES);
}

/* A memory queue (mapped: its ring mapped too): the qd, or -errno. */
static int dt_queue(struct dt *t, int mapped, unsigned int depth)
{
	struct qd_queue_create c = { .depth = depth };
	void *p = NULL;
	int ret;

	if (mapped)
		c.flags = QD_QUEUE_MAPPED;
	ret = qd_raw_ioctl(t->r.fd, QD_IOC_QUEUE, &c);
	if (ret)
		return ret;
	if (!mapped)
		return c.qd;
	if (t->nmq >= MAXMQ)
		return -ENOSPC;
	ret = qd_raw_mmap(t->r.fd, c.map_bytes, c.map_off, &p);
	if (ret)
		return ret;
	t->mq[t->nmq].qd = c.qd;
	t->mq[t->nmq].h = p;
	t->mq[t->nmq].len = c.map_bytes;
	t->nmq++;
	return c.qd;
}

/* The ring of mapped queue qd, or NULL. */
static struct qd_mq_hdr *dt_ring(struct dt *t, int qd)
{
	int i;

	for (i = t->nmq - 1; i >= 0; i--)
		if (t->mq[i].qd == qd)
			return t->mq[i].h;
	return NULL;
}

/* A closed qd's number may come back: forget its ring (kept mapped). */
static int dt_close(struct dt *t, int qd)
{
	int i;

	for (i = 0; i < t->nmq; i++)
		if (t->mq[i].qd == qd)
			t->mq[i].qd = -1;
	return qd_raw_close(t->r.fd, qd);
}

static __u32 dt_waiters(struct qd_mq_hdr *h)
{
	return __atomic_load_n(&h->waiters, __ATOMIC_ACQUIRE);
}

/* QD_IOC_DERIVE: the new qd, or -errno. */
static int dt_derive(struct dt *t, struct qd_derive *d)
{
	int ret = qd_raw_ioctl(t->r.fd, QD_IOC_DERIVE, d);

	return ret ? ret : d->qd;
}

static int dt_filter(struct dt *t, int src, const struct qd_pred *p)
{
	struct qd_derive d = { .kind = QD_DERIVE_FILTER, .src = src };

	d.pred = *p;
	return dt_derive(t, &d);
}

static int dt_sort(struct dt *t, int src, const struct qd_key *k)
{
	struct qd_derive d = { .kind = QD_DERIVE_SORT, .src = src };

	d.key = *k;
	return dt_derive(t, &d);
}

static int dt_merge(struct dt *t, int a, int b)
{
	struct qd_derive d = { .kind = QD_DERIVE_MERGE, .src = a, .src2 = b };

	return dt_derive(t, &d);
}

static struct qd_pred_term term(__u32 off, __u8 width, __u8 flags, __u64 mask,
				__u32 cmp, __u64 value)
{
	struct qd_pred_term x = {
		.field = { .off = off, .width = width, .flags = flags, .mask = mask },
		.cmp = cmp, .value = value,
	};

	return x;
}

static struct qd_pred pred1(struct qd_pred_term a)
{
	struct qd_pred p = { .nterms = 1, .terms = { a } };

	return p;
}

static struct qd_pred pred2(struct qd_pred_term a, struct qd_pred_term b)
{
	struct qd_pred p = { .nterms = 2, .terms = { a, b } };

	return p;
}

/* byte off of the element, compared with v */
static struct qd_pred byte_is(__u32 off, __u32 cmp, __u64 v)
{
	return pred1(term(off, 1, 0, 0, cmp, v));
}

static struct qd_key key_of(__u32 off, __u8 width, __u8 fflags, __u64 mask,
			    __u32 flags)
{
	struct qd_key k = {
		.field = { .off = off, .width = width, .flags = fflags, .mask = mask },
		.flags = flags,
	};

	return k;
}

/* --- CQEs ----------------------------------------------------------------- */

static void dt_stash_ring(struct dt *t)
{
	while (t->ncqe < STASH &&
	       qd_raw_peek_cqe(&t->r, &t->cqe[t->ncqe], &t->elem[t->ncqe]))
		t->ncqe++;
}

/* Take the stashed CQE of ud: 1, or 0 if it is not there. */
static int dt_take(struct dt *t, __u64 ud, struct qd_cqe *c, struct qd_elem *e)
{
	int i;

	for (i = 0; i < t->ncqe; i++) {
		if (t->cqe[i].user_data != ud)
			continue;
		if (c)
			*c = t->cqe[i];
		if (e)
			*e = t->elem[i];
		t->ncqe--;
		memmove(&t->cqe[i], &t->cqe[i + 1], (t->ncqe - i) * sizeof(t->cqe[0]));
		memmove(&t->elem[i], &t->elem[i + 1], (t->ncqe - i) * sizeof(t->elem[0]));
		return 1;
	}
	return 0;
}

/* Wait up to ns for ud's CQE: 0, or -ETIMEDOUT. */
static int dt_wait(struct dt *t, __u64 ud, struct qd_cqe *c, struct qd_elem *e,
		   long long ns)
{
	long long end = qd_now_ns() + ns;

	for (;;) {
		long long left;

		dt_stash_ring(t);
		if (dt_take(t, ud, c, e))
			return 0;
		left = end - qd_now_ns();
		if (left <= 0)
			return -ETIMEDOUT;
		qd_raw_enter(&t->r, 0, 1, QD_RAW_WAIT, left);
	}
}

static int dt_submit(struct dt *t, struct qd_sqe s)
{
	int ret = qd_raw_queue_sqe(&t->r, &s);

	if (ret)
		return ret;
	ret = qd_raw_submit(&t->r);
	return ret == 1 ? 0 : ret < 0 ? ret : -EIO;
}

/* --- elements ------------------------------------------------------------- */

/*
 * Write len bytes as an element of nsegs segments, each in its own SLOT
 * (not adjacent: a field across segments is read across them), into segs.
 * Its identity: segs[0].offset.
 */
static unsigned int dt_elem(struct dt *t, const void *bytes, unsigned int len,
			    unsigned int nsegs, struct qd_seg *segs)
{
	const unsigned char *b = bytes;
	unsigned int i, done = 0;

	if (!nsegs)
		nsegs = 1;
	for (i = 0; i < nsegs; i++) {
		unsigned int n = (len - done) / (nsegs - i);
		unsigned int off;

		if (!n)
			n = 1;	/* a segment is never empty */
		t->slot = (t->slot + 2) % NSLOTS;
		off = t->slot * SLOT;
		memcpy(t->buf + off, b + done, n <= len - done ? n : len - done);
		segs[i] = qd_seg(t->region, off, n);
		done += n;
	}
	return nsegs;
}

/*
 * Push segs to qd: through a mapped queue's ring when the protocol allows
 * it (no QD_MQ_PUSH_KERNEL, no parked pushes; then a WAKE if pops wait),
 * else a PUSH SQE. The push's result: bytes, or -errno.
 */
static long long dt_push_segs(struct dt *t, int qd, const struct qd_seg *segs,
			      unsigned int n)
{
	struct qd_mq_hdr *h = dt_ring(t, qd);
	struct qd_cqe c;
	long long bytes = 0;
	unsigned int i;
	__u64 ud;

	for (i = 0; i < n; i++)
		bytes += segs[i].len;
	if (h && !(dt_waiters(h) & (QD_MQ_PUSH_KERNEL | QD_MQ_PUSH_WAITERS)) &&
	    qd_mq_produce(h, h->mask, segs, (__u16)n, TRIES) == QD_MQ_OK) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		t->ring_pushes++;
		if (dt_waiters(h) & (QD_MQ_POP_WAITERS | QD_MQ_POP_SLEEPERS)) {
			struct qd_sqe w = { .opcode = QD_OP_WAKE, .qd = qd,
					    .user_data = ud = t->ud++ };

			if (dt_submit(t, w) || dt_wait(t, ud, &c, NULL, LONG_NS))
				return -EIO;
		}
		return bytes;
	}
	t->kernel_pushes++;
	ud = t->ud++;
	if (dt_submit(t, qd_sqe_push(qd, segs, n, ud)))
		return -EIO;
	if (dt_wait(t, ud, &c, NULL, LONG_NS))
		return -ETIMEDOUT;
	return c.res;
}

/* Push len bytes in nsegs segments to qd; *id: the element's identity. */
static long long dt_push(struct dt *t, int qd, const void *bytes, unsigned int len,
			 unsigned int nsegs, __u64 *id)
{
	struct qd_seg segs[QD_SGA_MAX];
	unsigned int n = dt_elem(t, bytes, len, nsegs, segs);

	if (id)
		*id = segs[0].offset;
	return dt_push_segs(t, qd, segs, n);
}

/* Push one byte v (an element of len bytes, the rest v too). */
static long long dt_push_v(struct dt *t, int qd, unsigned char v, unsigned int len,
			   __u64 *id)
{
	unsigned char b[SLOT];

	memset(b, v, sizeof(b));
	return dt_push(t, qd, b, len, 1, id);
}

/* Submit a pop of qd (op_flags): its user_data. */
static __u64 dt_pop(struct dt *t, int qd, __u32 op_flags)
{
	struct qd_sqe s = qd_sqe_pop(qd, t->ud);

	s.op_flags = op_flags;
	if (dt_submit(t, s))
		return 0;
	return t->ud++;
}

/* Pop qd and wait: the result; *id the element's identity (or ~0). */
static long long dt_pop_now(struct dt *t, int qd, __u64 *id)
{
	struct qd_cqe c;
	struct qd_elem e;
	__u64 ud = dt_pop(t, qd, 0);

	*id = ~0ULL;
	if (!ud || dt_wait(t, ud, &c, &e, LONG_NS))
		return -ETIMEDOUT;
	if (c.res >= 0 && c.flags & QD_CQE_F_ELEM)
		*id = e.segs[0].offset;
	return c.res;
}

/* The result of the pop ud, waited for; *id as dt_pop_now(). */
static long long dt_result(struct dt *t, __u64 ud, __u64 *id)
{
	struct qd_cqe c;
	struct qd_elem e;

	*id = ~0ULL;
	if (dt_wait(t, ud, &c, &e, LONG_NS))
		return -ETIMEDOUT;
	if (c.res >= 0 && c.flags & QD_CQE_F_ELEM)
		*id = e.segs[0].offset;
	return c.res;
}

/* Whether the operation ud stays pending for SHORT_NS. */
static int dt_pending(struct dt *t, __u64 ud)
{
	struct qd_cqe c;

	return dt_wait(t, ud, &c, NULL, SHORT_NS) == -ETIMEDOUT;
}

/* A (kernel) pop from a mapped queue's ring in user space: its identity. */
static int dt_ring_pop(struct qd_mq_hdr *h, __u64 *id)
{
	struct qd_seg segs[QD_SGA_MAX];
	__u16 n;
	int ret = qd_mq_consume(h, h->mask, segs, &n, TRIES);

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ret == QD_MQ_OK)
		*id = segs[0].offset;
	return ret;
}

/* ======================================================================== */
/* derive_spec: what QD_IOC_DERIVE refuses                                  */
/* ======================================================================== */

FIXTURE(derive_spec) {
	struct dt t;
	int q;
};

FIXTURE_SETUP(derive_spec)
{
	ASSERT_EQ(0, dt_init(&self->t));
	ASSERT_TRUE(!!(self->t.r.p.features & QD_FEAT_DERIVED))
		TH_LOG("features %#x: no QD_FEAT_DERIVED", self->t.r.p.features);
	self->q = dt_queue(&self->t, 0, 0);
	ASSERT_LE(0, self->q);
}

FIXTURE_TEARDOWN(derive_spec)
{
	dt_fini(&self->t);
}

/* A good filter on q (byte 0 == 1): the base every case mutates. */
static struct qd_derive good_filter(int q)
{
	struct qd_derive d = { .kind = QD_DERIVE_FILTER, .src = q };

	d.pred = byte_is(0, QD_CMP_EQ, 1);
	return d;
}

static struct qd_derive good_sort(int q)
{
	struct qd_derive d = { .kind = QD_DERIVE_SORT, .src = q };

	d.key = key_of(0, 4, 0, 0, 0);
	return d;
}

/* d must be refused with err, and make no queue (the next qd is unused). */
#define EXPECT_REFUSED(err, d_, what) do {				\
	struct qd_derive __d = (d_);					\
	EXPECT_EQ(err, dt_derive(&self->t, &__d)) TH_LOG("%s", what);	\
} while (0)

TEST_F(derive_spec, good_specs_make_queues)
{
	struct qd_derive d = good_filter(self->q);
	int f, s, m, q2 = dt_queue(&self->t, 0, 0);

	ASSERT_LE(0, q2);
	f = dt_derive(&self->t, &d);
	ASSERT_LE(0, f);
	EXPECT_EQ(f, d.qd);
	EXPECT_NE(self->q, f);
	d = good_sort(self->q);
	s = dt_derive(&self->t, &d);
	ASSERT_LE(0, s);
	m = dt_merge(&self->t, self->q, q2);
	ASSERT_LE(0, m);
	EXPECT_NE(f, s);
	EXPECT_NE(s, m);
	/* the field may end exactly at QD_FIELD_MAX_END */
	d = good_filter(self->q);
	d.pred.terms[0].field.off = QD_FIELD_MAX_END - 8;
	d.pred.terms[0].field.width = 8;
	EXPECT_LE(0, dt_derive(&self->t, &d));
	d = good_sort(self->q);
	d.key.field.off = QD_FIELD_MAX_END - 1;
	d.key.field.width = 1;
	EXPECT_LE(0, dt_derive(&self->t, &d));
	/* four terms, every comparison, masks, both byte orders */
	d = good_filter(self->q);
	d.pred.nterms = 4;
	d.pred.terms[1] = term(1, 2, QD_FIELD_BE, 0xff0f, QD_CMP_GE, 0x0f);
	d.pred.terms[2] = term(3, 4, 0, 0, QD_CMP_NE, 0xffffffff);
	d.pred.terms[3] = term(7, 8, QD_FIELD_BE, ~0ULL, QD_CMP_LE, ~0ULL);
	EXPECT_LE(0, dt_derive(&self->t, &d));
	d = good_sort(self->q);
	d.key = key_of(2, 8, QD_FIELD_BE, 0x00ff00ff00ff00ffULL, QD_KEY_DESC);
	EXPECT_LE(0, dt_derive(&self->t, &d));
}

TEST_F(derive_spec, kind_flags_resv_src2)
{
	struct qd_derive d;
	int q2 = dt_queue(&self->t, 0, 0);
	static const __u32 kinds[] = { 0, 4, 5, 0x100, 0xffffffff };
	unsigned int i;

	ASSERT_LE(0, q2);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		d = good_filter(self->q);
		d.kind = kinds[i];
		EXPECT_REFUSED(-EINVAL, d, "kind");
	}
	for (i = 0; i < 32; i++) {
		d = good_filter(self->q);
		d.flags = 1u << i;
		EXPECT_REFUSED(-EINVAL, d, "flags");
	}
	d = good_filter(self->q);
	d.resv = 1;
	EXPECT_REFUSED(-EINVAL, d, "resv");
	d = good_filter(self->q);
	d.src2 = q2;
	EXPECT_REFUSED(-EINVAL, d, "filter with src2");
	d = good_sort(self->q);
	d.src2 = q2;
	EXPECT_REFUSED(-EINVAL, d, "sort with src2");
	d = good_sort(self->q);
	d.src2 = -1;
	EXPECT_REFUSED(-EINVAL, d, "sort with src2 -1");
	/* a merge of a queue with itself */
	d = (struct qd_derive){ .kind = QD_DERIVE_MERGE, .src = q2, .src2 = q2 };
	EXPECT_REFUSED(-EINVAL, d, "merge with src == src2");
}

/* The union beyond what the kind uses must be zero. */
TEST_F(derive_spec, union_bytes_beyond_the_spec)
{
	struct qd_derive d;
	int q2 = dt_queue(&self->t, 0, 0);
	unsigned int i;

	ASSERT_LE(0, q2);
	/* SORT: everything after struct qd_key */
	for (i = sizeof(struct qd_key); i < sizeof(d.args); i += 7) {
		d = good_sort(self->q);
		((unsigned char *)d.args)[i] = 0x40;
		EXPECT_REFUSED(-EINVAL, d, "sort: byte of the union");
	}
	d = good_sort(self->q);
	((unsigned char *)d.args)[sizeof(d.args) - 1] = 1;
	EXPECT_REFUSED(-EINVAL, d, "sort: last byte of the union");
	/* MERGE: all of it */
	for (i = 0; i < sizeof(d.args); i += 5) {
		d = (struct qd_derive){ .kind = QD_DERIVE_MERGE, .src = self->q,
					.src2 = q2 };
		((unsigned char *)d.args)[i] = 1;
		EXPECT_REFUSED(-EINVAL, d, "merge: byte of the union");
	}
	d = (struct qd_derive){ .kind = QD_DERIVE_MERGE, .src = self->q, .src2 = q2 };
	d.args[16] = 1ULL << 63;
	EXPECT_REFUSED(-EINVAL, d, "merge: last word");
	/* and nothing was made: a good merge works */
	EXPECT_LE(0, dt_merge(&self->t, self->q, q2));
}

TEST_F(derive_spec, predicate_terms)
{
	struct qd_derive d;
	unsigned int i;

	d = good_filter(self->q);
	d.pred.nterms = 0;
	EXPECT_REFUSED(-EINVAL, d, "nterms 0");
	d = good_filter(self->q);
	d.pred.nterms = QD_PRED_MAX_TERMS + 1;
	EXPECT_REFUSED(-EINVAL, d, "nterms 5");
	d = good_filter(self->q);
	d.pred.nterms = 0xffffffff;
	EXPECT_REFUSED(-EINVAL, d, "nterms ~0");
	d = good_filter(self->q);
	d.pred.resv = 1;
	EXPECT_REFUSED(-EINVAL, d, "pred resv");
	/* every cmp outside 1..6, in the first and in a later term */
	for (i = 0; i < 10; i++) {
		__u32 cmp = i < 2 ? i * 7 : 7 + i * 1000;

		d = good_filter(self->q);
		d.pred.terms[0].cmp = cmp;
		EXPECT_REFUSED(-EINVAL, d, "cmp");
		d = good_filter(self->q);
		d.pred.nterms = 3;
		d.pred.terms[1] = term(0, 1, 0, 0, QD_CMP_NE, 3);
		d.pred.terms[2] = term(0, 1, 0, 0, cmp, 3);
		EXPECT_REFUSED(-EINVAL, d, "cmp of the third term");
	}
	d = good_filter(self->q);
	d.pred.terms[0].resv = 1;
	EXPECT_REFUSED(-EINVAL, d, "term resv");
}

/* Terms past nterms must be all zero, field by field. */
TEST_F(derive_spec, unused_terms_nonzero)
{
	struct qd_derive d;
	unsigned int t;

	for (t = 1; t < QD_PRED_MAX_TERMS; t++) {
		struct qd_pred_term *x;

#define UNUSED(stmt) do {						\
		d = good_filter(self->q);				\
		x = &d.pred.terms[t];					\
		stmt;							\
		EXPECT_REFUSED(-EINVAL, d, #stmt);			\
} while (0)
		UNUSED(x->field.off = 1);
		UNUSED(x->field.width = 1);
		UNUSED(x->field.flags = QD_FIELD_BE);
		UNUSED(x->field.resv = 1);
		UNUSED(x->field.mask = 1);
		UNUSED(x->cmp = QD_CMP_EQ);
		UNUSED(x->resv = 1);
		UNUSED(x->value = 1);
		/* a whole valid term beyond nterms is still "not zero" */
		UNUSED(*x = term(0, 1, 0, 0, QD_CMP_EQ, 0));
#undef UNUSED
	}
	(void)t;
}

TEST_F(derive_spec, fields)
{
	static const __u8 widths[] = { 0, 3, 5, 6, 7, 9, 16, 32, 255 };
	struct qd_derive d;
	unsigned int i;

	for (i = 0; i < sizeof(widths); i++) {
		d = good_filter(self->q);
		d.pred.terms[0].field.width = widths[i];
		EXPECT_REFUSED(-EINVAL, d, "filter width");
		d = good_sort(self->q);
		d.key.field.width = widths[i];
		EXPECT_REFUSED(-EINVAL, d, "key width");
	}
	/* off + width > QD_FIELD_MAX_END, and its overflow */
	d = good_filter(self->q);
	d.pred.terms[0].field.off = QD_FIELD_MAX_END - 7;
	d.pred.terms[0].field.width = 8;
	EXPECT_REFUSED(-EINVAL, d, "off 4089 width 8");
	d = good_filter(self->q);
	d.pred.terms[0].field.off = QD_FIELD_MAX_END;
	EXPECT_REFUSED(-EINVAL, d, "off 4096 width 1");
	d = good_filter(self->q);
	d.pred.terms[0].field.off = 0xffffffff;
	EXPECT_REFUSED(-EINVAL, d, "off ~0");
	d = good_filter(self->q);
	d.pred.terms[0].field.off = 0xfffffffc;
	d.pred.terms[0].field.width = 8;
	EXPECT_REFUSED(-EINVAL, d, "off + width wraps");
	d = good_sort(self->q);
	d.key.field.off = QD_FIELD_MAX_END - 3;
	EXPECT_REFUSED(-EINVAL, d, "key off 4093 width 4");
	d = good_sort(self->q);
	d.key.field.off = 0xffffffff;
	EXPECT_REFUSED(-EINVAL, d, "key off ~0");
	/* field flags other than QD_FIELD_BE, field resv */
	for (i = 1; i < 8; i++) {
		d = good_filter(self->q);
		d.pred.terms[0].field.flags = 1u << i;
		EXPECT_REFUSED(-EINVAL, d, "field flags");
		d = good_sort(self->q);
		d.key.field.flags = (1u << i) | QD_FIELD_BE;
		EXPECT_REFUSED(-EINVAL, d, "key field flags");
	}
	d = good_filter(self->q);
	d.pred.terms[0].field.resv = 0x8000;
	EXPECT_REFUSED(-EINVAL, d, "field resv");
	d = good_sort(self->q);
	d.key.field.resv = 1;
	EXPECT_REFUSED(-EINVAL, d, "key field resv");
}

/* Mask bits past the width; a value outside the mask (or the width). */
TEST_F(derive_spec, masks_and_values)
{
	static const struct { __u8 w; __u64 mask; } bad[] = {
		{ 1, 0x100 }, { 1, 0x1ff }, { 2, 0x10000 }, { 4, 0x100000000ULL },
		{ 4, ~0ULL }, { 2, 1ULL << 63 },
	};
	static const struct { __u8 w; __u64 mask, value; } badv[] = {
		{ 1, 0, 0x100 }, { 1, 0x0f, 0x10 }, { 1, 0xf0, 0x01 },
		{ 2, 0, 0x10000 }, { 4, 0, 1ULL << 32 }, { 8, 0xff, 0x100 },
		{ 8, 0x8000000000000000ULL, 1 },
	};
	struct qd_derive d;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = good_filter(self->q);
		d.pred.terms[0] = term(0, bad[i].w, 0, bad[i].mask, QD_CMP_EQ, 0);
		EXPECT_REFUSED(-EINVAL, d, "filter mask beyond the width");
		d = good_sort(self->q);
		d.key = key_of(0, bad[i].w, 0, bad[i].mask, 0);
		EXPECT_REFUSED(-EINVAL, d, "key mask beyond the width");
	}
	for (i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
		d = good_filter(self->q);
		d.pred.terms[0] = term(0, badv[i].w, 0, badv[i].mask, QD_CMP_LT,
				       badv[i].value);
		EXPECT_REFUSED(-EINVAL, d, "value outside the mask");
	}
	/* the edges that are fine */
	d = good_filter(self->q);
	d.pred.terms[0] = term(0, 1, 0, 0xf0, QD_CMP_EQ, 0xf0);
	EXPECT_LE(0, dt_derive(&self->t, &d));
	d = good_filter(self->q);
	d.pred.terms[0] = term(0, 8, 0, 0, QD_CMP_EQ, ~0ULL);
	EXPECT_LE(0, dt_derive(&self->t, &d));
}

TEST_F(derive_spec, key_flags_and_resv)
{
	struct qd_derive d;
	unsigned int i;

	for (i = 1; i < 32; i++) {
		d = good_sort(self->q);
		d.key.flags = 1u << i;
		EXPECT_REFUSED(-EINVAL, d, "key flags");
	}
	d = good_sort(self->q);
	d.key.resv = 1;
	EXPECT_REFUSED(-EINVAL, d, "key resv");
	d = good_sort(self->q);
	d.key.field.mask = 0x100000000ULL;	/* width 4 */
	EXPECT_REFUSED(-EINVAL, d, "key mask");
}

/* Levels: memq 0, +1 per filter or sort, max + 1 per merge; 7 at most. */
TEST_F(derive_spec, level_limit)
{
	struct qd_pred p = byte_is(0, QD_CMP_NE, 0);
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int chain[QD_DERIVE_MAX_LEVEL + 1], i, q2, m, s, six, m7;

	chain[0] = self->q;
	for (i = 1; i <= QD_DERIVE_MAX_LEVEL; i++) {
		chain[i] = i % 2 ? dt_filter(&self->t, chain[i - 1], &p) :
				   dt_sort(&self->t, chain[i - 1], &k);
		ASSERT_LE(0, chain[i]) TH_LOG("level %d", i);
	}
	/* one more on level 7, by each kind */
	EXPECT_EQ(-EINVAL, dt_filter(&self->t, chain[QD_DERIVE_MAX_LEVEL], &p));
	EXPECT_EQ(-EINVAL, dt_sort(&self->t, chain[QD_DERIVE_MAX_LEVEL], &k));
	q2 = dt_queue(&self->t, 0, 0);
	ASSERT_LE(0, q2);
	EXPECT_EQ(-EINVAL, dt_merge(&self->t, chain[QD_DERIVE_MAX_LEVEL], q2));
	EXPECT_EQ(-EINVAL, dt_merge(&self->t, q2, chain[QD_DERIVE_MAX_LEVEL]));
	/* a merge is max + 1: of levels 6 and 0 is 7, fine; then nothing on it */
	m = dt_merge(&self->t, q2, chain[QD_DERIVE_MAX_LEVEL - 1]);
	ASSERT_LE(0, m);
	EXPECT_EQ(-EINVAL, dt_filter(&self->t, m, &p));
	/* of two level-6 queues: 7 */
	six = chain[QD_DERIVE_MAX_LEVEL - 1];
	s = dt_sort(&self->t, chain[QD_DERIVE_MAX_LEVEL - 2], &k);
	ASSERT_LE(0, s);	/* level 6 */
	m7 = dt_merge(&self->t, six, s);
	ASSERT_LE(0, m7);
	EXPECT_EQ(-EINVAL, dt_sort(&self->t, m7, &k));
	EXPECT_EQ(-EINVAL, dt_merge(&self->t, m7, m));
	/* closing the lower levels does not lower a level */
	ASSERT_EQ(0, dt_close(&self->t, chain[1]));
	EXPECT_EQ(-EINVAL, dt_filter(&self->t, chain[QD_DERIVE_MAX_LEVEL], &p));
}

TEST_F(derive_spec, bad_sources_ebadf)
{
	struct qd_derive d;
	int f, q2 = dt_queue(&self->t, 0, 0);
	static const int bad[] = { -1, -1000, 999, 65535, 0x7fffffff };
	unsigned int i;

	ASSERT_LE(0, q2);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_REFUSED(-EBADF, good_filter(bad[i]), "filter of a bad qd");
		EXPECT_REFUSED(-EBADF, good_sort(bad[i]), "sort of a bad qd");
		EXPECT_EQ(-EBADF, dt_merge(&self->t, bad[i], self->q));
		EXPECT_EQ(-EBADF, dt_merge(&self->t, self->q, bad[i]));
	}
	/* a closed memq and a closed derived queue */
	d = good_filter(self->q);
	f = dt_derive(&self->t, &d);
	ASSERT_LE(0, f);
	ASSERT_EQ(0, dt_close(&self->t, f));
	EXPECT_REFUSED(-EBADF, good_filter(f), "filter of a closed filter");
	EXPECT_EQ(-EBADF, dt_merge(&self->t, f, q2));
	ASSERT_EQ(0, dt_close(&self->t, q2));
	EXPECT_REFUSED(-EBADF, good_sort(q2), "sort of a closed memq");
	EXPECT_EQ(-EBADF, dt_merge(&self->t, self->q, q2));
	/* closing a derived queue twice */
	EXPECT_EQ(-EBADF, dt_close(&self->t, f));
	/* and a bad pointer */
	EXPECT_EQ(-EFAULT, qd_raw_ioctl(self->t.r.fd, QD_IOC_DERIVE, NULL));
	EXPECT_EQ(-EFAULT, qd_raw_ioctl(self->t.r.fd, QD_IOC_DERIVE, (void *)16));
}

/* A socket, a storage queue, a shared mapped queue: not sources. */
TEST_F(derive_spec, unsupported_sources)
{
	char path[] = "/tmp/qd-derived-XXXXXX";
	struct qd_queue_create c = { .flags = QD_QUEUE_MAPPED | QD_QUEUE_SHARED };
	struct qd_sqe s;
	struct qd_cqe cqe;
	int sock, file, fd, shared;

	sock = qd_raw_socket(&self->t.r, SOCK_DGRAM);
	ASSERT_LE(0, sock);
	EXPECT_REFUSED(-EOPNOTSUPP, good_filter(sock), "filter of a UDP socket");
	EXPECT_REFUSED(-EOPNOTSUPP, good_sort(sock), "sort of a UDP socket");
	EXPECT_EQ(-EOPNOTSUPP, dt_merge(&self->t, sock, self->q));
	EXPECT_EQ(-EOPNOTSUPP, dt_merge(&self->t, self->q, sock));
	sock = qd_raw_socket(&self->t.r, SOCK_STREAM);
	ASSERT_LE(0, sock);
	EXPECT_REFUSED(-EOPNOTSUPP, good_filter(sock), "filter of a TCP socket");

	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	close(fd);
	s = (struct qd_sqe){ .opcode = QD_OP_OPEN, .user_data = 77,
			     .addr = (uintptr_t)path, .open_flags = O_RDWR };
	ASSERT_EQ(0, dt_submit(&self->t, s));
	ASSERT_EQ(0, dt_wait(&self->t, 77, &cqe, NULL, LONG_NS));
	unlink(path);
	ASSERT_LE(0, cqe.res) TH_LOG("OPEN %s: %lld", path, cqe.res);
	file = (int)cqe.res;
	EXPECT_REFUSED(-EOPNOTSUPP, good_filter(file), "filter of a file");
	EXPECT_REFUSED(-EOPNOTSUPP, good_sort(file), "sort of a file");
	EXPECT_EQ(-EOPNOTSUPP, dt_merge(&self->t, self->q, file));

	ASSERT_EQ(0, qd_raw_ioctl(self->t.r.fd, QD_IOC_QUEUE, &c));
	shared = c.qd;
	EXPECT_REFUSED(-EOPNOTSUPP, good_filter(shared), "filter of a shared mapped queue");
	EXPECT_REFUSED(-EOPNOTSUPP, good_sort(shared), "sort of a shared mapped queue");
	EXPECT_EQ(-EOPNOTSUPP, dt_merge(&self->t, shared, self->q));
	/* nothing was made: the good source still takes a filter */
	EXPECT_LE(0, dt_derive(&self->t, &(struct qd_derive){ .kind = QD_DERIVE_MERGE,
							       .src = self->q,
							       .src2 = dt_queue(&self->t, 0, 0) }));
}

/* An imported queue, and the exporter's own handle once imported. */
TEST_F(derive_spec, imported_queue_and_its_exporter)
{
	struct qd_queue_export e = { .qd = self->q, .rights = QD_SHARE_ALL };
	struct qd_queue_import im = { 0 };
	struct qd_raw r2;
	struct qd_derive d;
	int other;

	ASSERT_EQ(0, qd_raw_ioctl(self->t.r.fd, QD_IOC_QUEUE_EXPORT, &e));
	ASSERT_EQ(0, qd_raw_init(&r2, 8, 16));
	im.fd = e.fd;
	ASSERT_EQ(0, qd_raw_ioctl(r2.fd, QD_IOC_QUEUE_IMPORT, &im));
	close(e.fd);
	d = good_filter(im.qd);
	EXPECT_EQ(-EOPNOTSUPP, qd_raw_ioctl(r2.fd, QD_IOC_DERIVE, &d));
	d = good_sort(im.qd);
	EXPECT_EQ(-EOPNOTSUPP, qd_raw_ioctl(r2.fd, QD_IOC_DERIVE, &d));
	/* a merge of an import with a queue of r2's own */
	ASSERT_EQ(0, qd_raw_queue(r2.fd, 0, &other));
	d = (struct qd_derive){ .kind = QD_DERIVE_MERGE, .src = other, .src2 = im.qd };
	EXPECT_EQ(-EOPNOTSUPP, qd_raw_ioctl(r2.fd, QD_IOC_DERIVE, &d));
	d = (struct qd_derive){ .kind = QD_DERIVE_MERGE, .src = im.qd, .src2 = other };
	EXPECT_EQ(-EOPNOTSUPP, qd_raw_ioctl(r2.fd, QD_IOC_DERIVE, &d));
	/* the exporter's qd has another handle now */
	EXPECT_REFUSED(-EOPNOTSUPP, good_filter(self->q),
		       "filter of a queue another context imported");
	qd_raw_exit(&r2);
}

/* ======================================================================== */
/* derived: the semantics, over a plain and over a mapped memory queue      */
/* ======================================================================== */

FIXTURE(derived) {
	struct dt t;
	int q;			/* the source: plain or mapped */
	int mapped;
};

FIXTURE_VARIANT(derived) {
	int mapped;
};

FIXTURE_VARIANT_ADD(derived, plain) {
	.mapped = 0,
};

FIXTURE_VARIANT_ADD(derived, mapped) {
	.mapped = 1,
};

FIXTURE_SETUP(derived)
{
	ASSERT_EQ(0, dt_init(&self->t));
	ASSERT_TRUE(!!(self->t.r.p.features & QD_FEAT_DERIVED));
	self->mapped = variant->mapped;
	self->q = dt_queue(&self->t, self->mapped, 0);
	ASSERT_LE(0, self->q);
}

FIXTURE_TEARDOWN(derived)
{
	dt_fini(&self->t);
}

/* A memory queue like the source (plain or mapped); what uses it asserts. */
#define NEWQ() dt_queue(&self->t, self->mapped, 0)

#define PUSH(q_, v_, len_, id_) \
	ASSERT_EQ((long long)(len_), dt_push_v(&self->t, (q_), (v_), (len_), (id_)))

/* Pop q_ and expect the element id_ (of len_ bytes). */
#define POP_IS(q_, id_, len_) do {					\
	__u64 __got;							\
	long long __r = dt_pop_now(&self->t, (q_), &__got);		\
	EXPECT_EQ((long long)(len_), __r);				\
	EXPECT_EQ((__u64)(id_), __got) TH_LOG("pop of qd %d: offset %llu, wanted %llu", \
					     (q_), (unsigned long long)__got,	\
					     (unsigned long long)(id_));	\
} while (0)

/* A pop of q_ that must stay pending: its user_data into ud_. */
#define POP_WAITS(q_, ud_) do {						\
	(ud_) = dt_pop(&self->t, (q_), 0);				\
	ASSERT_NE(0ULL, (ud_));						\
	EXPECT_TRUE(dt_pending(&self->t, (ud_))) TH_LOG("pop of qd %d completed", (q_)); \
} while (0)

/* The pending pop ud_ completes with res_ (and element id_ unless ~0). */
#define DONE_WITH(ud_, res_, id_) do {					\
	__u64 __got;							\
	long long __r = dt_result(&self->t, (ud_), &__got);		\
	EXPECT_EQ((long long)(res_), __r);				\
	if ((__u64)(id_) != ~0ULL)					\
		EXPECT_EQ((__u64)(id_), __got);				\
} while (0)

/* q_ is empty: a pop stays pending; then cancel it by closing nothing. */
#define EMPTY(q_) do {							\
	__u64 __ud = dt_pop(&self->t, (q_), 0);				\
	struct qd_sqe __c = { .opcode = QD_OP_CANCEL, .qd = (q_),	\
			      .addr = __ud, .user_data = self->t.ud++ }; \
	EXPECT_TRUE(dt_pending(&self->t, __ud)) TH_LOG("qd %d is not empty", (q_)); \
	ASSERT_EQ(0, dt_submit(&self->t, __c));				\
	DONE_WITH(__ud, -ECANCELED, ~0ULL);				\
	DONE_WITH(__c.user_data, 0, ~0ULL);				\
} while (0)

/*
 * Whether a filter of pred takes an element of bytes (len, nsegs): a fresh
 * source and filter, the element pushed, a pop on each; then closing the
 * source cancels the pop that got nothing. 1 (filter), 0 (source), -1.
 */
static int dt_takes(struct dt *t, int mapped, const struct qd_pred *p,
		    const void *bytes, unsigned int len, unsigned int nsegs)
{
	int q = dt_queue(t, mapped, 0), f = q < 0 ? q : dt_filter(t, q, p);
	__u64 id, pf, pq, got_f, got_q;
	long long rf, rq;

	if (f < 0 || dt_push(t, q, bytes, len, nsegs, &id) != len)
		return -1;
	pf = dt_pop(t, f, 0);
	pq = dt_pop(t, q, 0);
	if (!pf || !pq || dt_close(t, q) || dt_close(t, f))
		return -1;
	rf = dt_result(t, pf, &got_f);
	rq = dt_result(t, pq, &got_q);
	if (rf == len && got_f == id && rq == -ECANCELED)
		return 1;
	if (rq == len && got_q == id && rf == -ECANCELED)
		return 0;
	fprintf(stderr, "# dt_takes: filter pop %lld (%llu), source pop %lld (%llu), element %llu\n",
		rf, (unsigned long long)got_f, rq, (unsigned long long)got_q,
		(unsigned long long)id);
	return -1;
}

#define TAKES(want, p_, bytes_, len_, nsegs_) do {			\
	struct qd_pred __p = (p_);					\
	EXPECT_EQ((want), dt_takes(&self->t, self->mapped, &__p, (bytes_), (len_), (nsegs_))) \
		TH_LOG("line %d", __LINE__);				\
} while (0)

/* Matching elements go to the filter in order; the others stay, in order. */
TEST_F(derived, filter_takes_matching_in_order_the_rest_stays)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 7);
	__u64 id[8];
	int f = dt_filter(&self->t, self->q, &p), i;

	ASSERT_LE(0, f);
	for (i = 0; i < 8; i++)
		PUSH(self->q, i % 2 ? 7 : i, 10 + i, &id[i]);
	for (i = 1; i < 8; i += 2)
		POP_IS(f, id[i], 10 + i);
	for (i = 0; i < 8; i += 2)
		POP_IS(self->q, id[i], 10 + i);
	EMPTY(f);
	EMPTY(self->q);
}

/* Filters are tried in creation order; the first that matches takes it. */
TEST_F(derived, filters_in_creation_order_first_match_wins)
{
	struct qd_pred le5 = byte_is(0, QD_CMP_LE, 5);
	struct qd_pred ge3 = pred2(term(0, 1, 0, 0, QD_CMP_GE, 3), term(0, 1, 0, 0, QD_CMP_LE, 100));
	struct qd_pred any = byte_is(0, QD_CMP_NE, 200);
	int f1 = dt_filter(&self->t, self->q, &le5);
	int f2 = dt_filter(&self->t, self->q, &ge3);
	int f3 = dt_filter(&self->t, self->q, &any);
	__u64 a, b, c, d, e;

	ASSERT_LE(0, f3);
	PUSH(self->q, 4, 8, &a);	/* both f1 and f2 match: f1 */
	PUSH(self->q, 9, 8, &b);	/* f2 (and f3) */
	PUSH(self->q, 1, 8, &c);	/* f1 (and f3) */
	PUSH(self->q, 200, 8, &d);	/* none (f2: not <= 100, f3: != 200) */
	PUSH(self->q, 5, 8, &e);	/* f1 */
	POP_IS(f1, a, 8);
	POP_IS(f1, c, 8);
	POP_IS(f1, e, 8);
	POP_IS(f2, b, 8);
	POP_IS(self->q, d, 8);
	EMPTY(f1);
	EMPTY(f2);
	EMPTY(f3);
	EMPTY(self->q);
}

/* What was queued before the filter stays where it is. */
TEST_F(derived, elements_queued_before_derive_stay)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	__u64 a, b, c;
	int f;

	PUSH(self->q, 1, 4, &a);
	PUSH(self->q, 1, 5, &b);
	f = dt_filter(&self->t, self->q, &p);
	ASSERT_LE(0, f);
	PUSH(self->q, 1, 6, &c);
	EXPECT_EQ((long long)4, dt_pop_now(&self->t, self->q, &(__u64){0}));
	POP_IS(self->q, b, 5);
	POP_IS(f, c, 6);
	EMPTY(self->q);
	EMPTY(f);
	(void)a;
}

/* Widths and byte orders: the field's value as the ABI reads it. */
TEST_F(derived, predicate_widths_and_endianness)
{
	static const unsigned char b[16] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98,
	};

	TAKES(1, pred1(term(0, 2, 0, 0, QD_CMP_EQ, 0x0201)), b, 16, 1);
	TAKES(0, pred1(term(0, 2, 0, 0, QD_CMP_EQ, 0x0102)), b, 16, 1);
	TAKES(1, pred1(term(0, 2, QD_FIELD_BE, 0, QD_CMP_EQ, 0x0102)), b, 16, 1);
	TAKES(1, pred1(term(1, 4, 0, 0, QD_CMP_EQ, 0x05040302)), b, 16, 1);
	TAKES(1, pred1(term(1, 4, QD_FIELD_BE, 0, QD_CMP_EQ, 0x02030405)), b, 16, 1);
	TAKES(1, pred1(term(8, 8, 0, 0, QD_CMP_EQ, 0x98badcfeefcdab89ULL)), b, 16, 1);
	TAKES(1, pred1(term(8, 8, QD_FIELD_BE, 0, QD_CMP_EQ, 0x89abcdeffedcba98ULL)), b, 16, 1);
	TAKES(0, pred1(term(8, 8, QD_FIELD_BE, 0, QD_CMP_EQ, 0x98badcfeefcdab89ULL)), b, 16, 1);
	TAKES(1, pred1(term(15, 1, 0, 0, QD_CMP_EQ, 0x98)), b, 16, 1);
	/* unsigned comparisons: 0x89... is large, not negative */
	TAKES(1, pred1(term(8, 1, 0, 0, QD_CMP_GT, 0x7f)), b, 16, 1);
	TAKES(1, pred1(term(8, 8, QD_FIELD_BE, 0, QD_CMP_GT, 0x7fffffffffffffffULL)), b, 16, 1);
	TAKES(1, pred1(term(12, 4, 0, 0, QD_CMP_GT, 0x7fffffff)), b, 16, 1);
}

/* The mask applies before the comparison; mask 0 is the whole field. */
TEST_F(derived, predicate_masks)
{
	static const unsigned char b[8] = { 0x5a, 0xa5, 0xff, 0x00, 0x12, 0x34, 0x56, 0x78 };

	TAKES(1, pred1(term(0, 1, 0, 0x0f, QD_CMP_EQ, 0x0a)), b, 8, 1);
	TAKES(1, pred1(term(0, 1, 0, 0xf0, QD_CMP_EQ, 0x50)), b, 8, 1);
	TAKES(0, pred1(term(0, 1, 0, 0xf0, QD_CMP_EQ, 0x5a & 0xf0 ? 0x60 : 0)), b, 8, 1);
	TAKES(1, pred1(term(0, 2, 0, 0xff00, QD_CMP_EQ, 0xa500)), b, 8, 1);
	TAKES(1, pred1(term(0, 2, QD_FIELD_BE, 0xff00, QD_CMP_EQ, 0x5a00)), b, 8, 1);
	TAKES(1, pred1(term(4, 4, 0, 0x00ff00ff, QD_CMP_EQ, 0x00560012)), b, 8, 1);
	TAKES(1, pred1(term(0, 8, 0, 0x00000000ffffffffULL, QD_CMP_EQ, 0x00ffa55a)), b, 8, 1);
	/* a mask that leaves nothing: the field is 0 */
	TAKES(1, pred1(term(0, 1, 0, 0x01, QD_CMP_EQ, 0)), b, 8, 1);
	TAKES(1, pred1(term(3, 1, 0, 0, QD_CMP_EQ, 0)), b, 8, 1);
}

/* The six comparisons, below, at and above the constant. */
TEST_F(derived, predicate_six_comparisons)
{
	static const struct { __u32 cmp; int below, at, above; } c[] = {
		{ QD_CMP_EQ, 0, 1, 0 }, { QD_CMP_NE, 1, 0, 1 },
		{ QD_CMP_LT, 1, 0, 0 }, { QD_CMP_LE, 1, 1, 0 },
		{ QD_CMP_GT, 0, 0, 1 }, { QD_CMP_GE, 0, 1, 1 },
	};
	unsigned char below[4] = { 0x00, 0x01, 0, 0 }, at[4] = { 0x00, 0x02, 0, 0 };
	unsigned char above[4] = { 0x01, 0x02, 0, 0 };
	unsigned int i;

	for (i = 0; i < 6; i++) {
		struct qd_pred p = pred1(term(0, 2, QD_FIELD_BE, 0, c[i].cmp, 0x0002));

		TAKES(c[i].below, p, below, 4, 1);
		TAKES(c[i].at, p, at, 4, 1);
		TAKES(c[i].above, p, above, 4, 1);
	}
}

/* All terms must hold. */
TEST_F(derived, predicate_conjunction)
{
	static const unsigned char b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct qd_pred p;

	TAKES(1, pred2(term(0, 1, 0, 0, QD_CMP_EQ, 1), term(7, 1, 0, 0, QD_CMP_EQ, 8)), b, 8, 1);
	TAKES(0, pred2(term(0, 1, 0, 0, QD_CMP_EQ, 1), term(7, 1, 0, 0, QD_CMP_EQ, 9)), b, 8, 1);
	TAKES(0, pred2(term(0, 1, 0, 0, QD_CMP_EQ, 0), term(7, 1, 0, 0, QD_CMP_EQ, 8)), b, 8, 1);
	p = pred2(term(0, 1, 0, 0, QD_CMP_GE, 1), term(0, 1, 0, 0, QD_CMP_LE, 1));
	p.nterms = 4;
	p.terms[2] = term(2, 2, 0, 0, QD_CMP_GT, 0x0403);
	p.terms[3] = term(4, 4, QD_FIELD_BE, 0, QD_CMP_LT, 0x05060709);
	TAKES(0, p, b, 8, 1);
	p.terms[2].value = 0x0402;
	TAKES(1, p, b, 8, 1);
	p.terms[3].value = 0x05060708;
	TAKES(0, p, b, 8, 1);
}

/* A field is read across the element's segments. */
TEST_F(derived, predicate_field_across_segments)
{
	static const unsigned char b[16] = {
		0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
		0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
	};

	/* 8 segments of 2 bytes: an 8-byte field over 4 of them */
	TAKES(1, pred1(term(3, 8, 0, 0, QD_CMP_EQ, 0x1a19181716151413ULL)), b, 16, 8);
	TAKES(1, pred1(term(3, 8, QD_FIELD_BE, 0, QD_CMP_EQ, 0x131415161718191aULL)), b, 16, 8);
	/* 2 segments of 8: a 4-byte field over the boundary */
	TAKES(1, pred1(term(6, 4, 0, 0, QD_CMP_EQ, 0x19181716)), b, 16, 2);
	TAKES(0, pred1(term(6, 4, 0, 0, QD_CMP_EQ, 0x19181717)), b, 16, 2);
	/* 3 segments (5, 5, 6): the last byte */
	TAKES(1, pred1(term(15, 1, 0, 0, QD_CMP_EQ, 0x1f)), b, 16, 3);
	TAKES(1, pred1(term(4, 2, QD_FIELD_BE, 0, QD_CMP_EQ, 0x1415)), b, 16, 3);
}

/* An element too short for a field does not match, whatever the test. */
TEST_F(derived, predicate_too_short_never_matches)
{
	static const unsigned char b[16] = { 0 };
	static const __u32 cmps[] = { QD_CMP_NE, QD_CMP_LE, QD_CMP_GE, QD_CMP_EQ };
	unsigned int i;

	for (i = 0; i < 4; i++) {
		struct qd_pred p = pred1(term(4, 4, 0, 0, cmps[i], cmps[i] == QD_CMP_NE ? 1 : 0));

		TAKES(1, p, b, 8, 1);	/* exactly long enough */
		TAKES(0, p, b, 7, 1);	/* one byte short */
		TAKES(0, p, b, 7, 3);	/* ... in segments */
		TAKES(0, p, b, 1, 1);
	}
	/* the second term too short fails the conjunction */
	TAKES(0, pred2(term(0, 1, 0, 0, QD_CMP_EQ, 0), term(9, 1, 0, 0, QD_CMP_EQ, 0)), b, 9, 1);
	TAKES(1, pred2(term(0, 1, 0, 0, QD_CMP_EQ, 0), term(9, 1, 0, 0, QD_CMP_EQ, 0)), b, 10, 2);
	/* a field near QD_FIELD_MAX_END: no element here is that long */
	TAKES(0, pred1(term(QD_FIELD_MAX_END - 8, 8, 0, 0, QD_CMP_GE, 0)), b, 16, 1);
}

/* Push elements of bytes keys[i] (8 of them, or lens[i]): ids[i]. */
static int push_keys(struct dt *t, int q, const unsigned char *keys,
		     const unsigned int *lens, unsigned int n, __u64 *ids)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		unsigned int len = lens ? lens[i] : 8;
		unsigned char b[8];

		memset(b, keys[i], sizeof(b));

		if (dt_push(t, q, b, len, 1, &ids[i]) != len)
			return -1;
	}
	return 0;
}

/* Smallest key first; equal keys in arrival order. */
TEST_F(derived, sort_ascending_ties_in_arrival_order)
{
	static const unsigned char keys[] = { 5, 1, 3, 1, 9, 3, 0, 255, 1 };
	static const int order[] = { 6, 1, 3, 8, 2, 5, 0, 4, 7 };
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	__u64 ids[9];
	int s = dt_sort(&self->t, self->q, &k), i;

	ASSERT_LE(0, s);
	ASSERT_EQ(0, push_keys(&self->t, self->q, keys, NULL, 9, ids));
	for (i = 0; i < 9; i++)
		POP_IS(s, ids[order[i]], 8);
	EMPTY(s);
	EMPTY(self->q);	/* a sort takes everything */
}

TEST_F(derived, sort_descending_ties_in_arrival_order)
{
	static const unsigned char keys[] = { 5, 1, 3, 1, 9, 3, 0, 255, 1 };
	static const int order[] = { 7, 4, 0, 2, 5, 1, 3, 8, 6 };
	struct qd_key k = key_of(0, 1, 0, 0, QD_KEY_DESC);
	__u64 ids[9];
	int s = dt_sort(&self->t, self->q, &k), i;

	ASSERT_LE(0, s);
	ASSERT_EQ(0, push_keys(&self->t, self->q, keys, NULL, 9, ids));
	for (i = 0; i < 9; i++)
		POP_IS(s, ids[order[i]], 8);
	EMPTY(s);
}

/* Too short for the key: after every keyed one, in arrival order. */
TEST_F(derived, sort_short_elements_last_in_arrival_order)
{
	/* key: bytes 4..5, big-endian; elements of 1..8 bytes */
	struct qd_key k = key_of(4, 2, QD_FIELD_BE, 0, 0);
	struct qd_key kd = key_of(4, 2, QD_FIELD_BE, 0, QD_KEY_DESC);
	static const unsigned char keys[] = { 9, 7, 8, 1, 2, 6 };
	static const unsigned int lens[] = { 5, 8, 1, 6, 5, 6 };
	/* keyed: 1 (0x0707), 3 (0x0101), 5 (0x0606); 0, 2, 4 too short */
	static const int asc[] = { 3, 5, 1, 0, 2, 4 };
	static const int desc[] = { 1, 5, 3, 0, 2, 4 };
	__u64 ids[6];
	int s = dt_sort(&self->t, self->q, &k), i, q2, sd;

	ASSERT_LE(0, s);
	ASSERT_EQ(0, push_keys(&self->t, self->q, keys, lens, 6, ids));
	for (i = 0; i < 6; i++)
		POP_IS(s, ids[asc[i]], lens[asc[i]]);
	/* descending too: short ones still last */
	q2 = NEWQ();
	sd = dt_sort(&self->t, q2, &kd);
	ASSERT_LE(0, sd);
	ASSERT_EQ(0, push_keys(&self->t, q2, keys, lens, 6, ids));
	for (i = 0; i < 6; i++)
		POP_IS(sd, ids[desc[i]], lens[desc[i]]);
}

/* The key is the masked field, read in its byte order, as an unsigned. */
TEST_F(derived, sort_key_mask_and_byte_order)
{
	/* 2-byte little-endian key, mask 0xff00: only byte 1 counts */
	struct qd_key k = key_of(0, 2, 0, 0xff00, 0);
	static const unsigned char b[][2] = {
		{ 0x01, 0x80 }, { 0xff, 0x01 }, { 0x00, 0x80 }, { 0x55, 0x00 },
	};
	static const int order[] = { 3, 1, 0, 2 };	/* 0x00, 0x01, 0x80, 0x80 */
	__u64 ids[4];
	int s = dt_sort(&self->t, self->q, &k), i;

	ASSERT_LE(0, s);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(2, dt_push(&self->t, self->q, b[i], 2, i % 2 + 1, &ids[i]));
	for (i = 0; i < 4; i++)
		POP_IS(s, ids[order[i]], 2);
}

/* A pop on an empty sort waits; the next arrival completes it. */
TEST_F(derived, sort_pop_waits_for_the_next_arrival)
{
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int s = dt_sort(&self->t, self->q, &k);
	__u64 ud, a, b;

	ASSERT_LE(0, s);
	POP_WAITS(s, ud);
	PUSH(self->q, 50, 3, &a);
	DONE_WITH(ud, 3, a);
	PUSH(self->q, 60, 3, &b);
	PUSH(self->q, 40, 3, &a);
	POP_IS(s, a, 3);
	POP_IS(s, b, 3);
}

/* With both sources full, pops alternate, starting with src. */
TEST_F(derived, merge_alternates_when_both_sources_have_elements)
{
	int b = NEWQ(), m = dt_merge(&self->t, self->q, b), i;
	__u64 ia[5], ib[5];

	ASSERT_LE(0, m);
	for (i = 0; i < 5; i++) {
		PUSH(b, 0xb0 + i, 4, &ib[i]);		/* b first: order of */
		PUSH(self->q, 0xa0 + i, 4, &ia[i]);	/* arrival does not matter */
	}
	for (i = 0; i < 5; i++) {
		POP_IS(m, ia[i], 4);
		POP_IS(m, ib[i], 4);
	}
	EMPTY(m);
	EMPTY(self->q);
	EMPTY(b);
}

/* A pop takes from `next` if it can, else the other; next = 1 - taken. */
TEST_F(derived, merge_takes_the_other_input_when_next_is_empty)
{
	int b = NEWQ(), m = dt_merge(&self->t, self->q, b);
	__u64 a1, a2, a3, a4, b1, b2, ud;

	ASSERT_LE(0, m);
	PUSH(self->q, 1, 4, &a1);
	PUSH(self->q, 2, 4, &a2);
	PUSH(self->q, 3, 4, &a3);
	POP_IS(m, a1, 4);	/* next was 0: a; next = 1 */
	POP_IS(m, a2, 4);	/* b empty: a; next = 1 */
	PUSH(self->q, 4, 4, &a4);
	PUSH(b, 5, 4, &b1);
	POP_IS(m, b1, 4);	/* next = 1: b */
	POP_IS(m, a3, 4);
	/* a waiting pop takes what arrives, from either input */
	POP_IS(m, a4, 4);
	POP_WAITS(m, ud);
	PUSH(b, 6, 4, &b2);
	DONE_WITH(ud, 4, b2);
}

/*
 * A pop that waited and got its element from input i at arrival took from
 * input i: next = 1 - i, as after any pop (the "after taking from
 * input i, next = 1 - i").
 */
TEST_F(derived, merge_pop_served_at_arrival_moves_next)
{
	int b = NEWQ(), m = dt_merge(&self->t, self->q, b);
	__u64 ud, a1, a2, b1;

	ASSERT_LE(0, m);
	POP_WAITS(m, ud);
	PUSH(self->q, 1, 4, &a1);
	DONE_WITH(ud, 4, a1);	/* from input 0: next = 1 */
	PUSH(self->q, 2, 4, &a2);
	PUSH(b, 3, 4, &b1);
	POP_IS(m, b1, 4);
	POP_IS(m, a2, 4);
}

/* Neither input starves the other, and every element comes out once. */
TEST_F(derived, merge_each_element_once_neither_starves)
{
	int b = NEWQ(), m = dt_merge(&self->t, self->q, b), i, n = 40, ka = 0, kb = 0;
	__u64 ia[40], ib[10], got;

	ASSERT_LE(0, m);
	for (i = 0; i < n; i++)
		PUSH(self->q, 1, 4, &ia[i]);
	for (i = 0; i < 10; i++)
		PUSH(b, 2, 4, &ib[i]);
	/* 10 of b interleaved with the first 10 of a, then the rest of a */
	for (i = 0; i < n + 10; i++) {
		ASSERT_EQ(4, dt_pop_now(&self->t, m, &got));
		if (ka < n && got == ia[ka] && (kb == 10 || ka <= kb)) {
			ka++;
		} else if (kb < 10 && got == ib[kb]) {
			kb++;
		} else {
			EXPECT_TRUE(0) TH_LOG("pop %d: offset %llu out of turn (a %d b %d)",
					      i, (unsigned long long)got, ka, kb);
			break;
		}
	}
	EXPECT_EQ(n, ka);
	EXPECT_EQ(10, kb);
	EMPTY(m);
	EMPTY(self->q);
	EMPTY(b);
}

/* A merge of merges: the outer takes everything the inner ones get. */
TEST_F(derived, merge_of_merges)
{
	int b = NEWQ(), c = NEWQ(), d = NEWQ();
	int m1 = dt_merge(&self->t, self->q, b), m2 = dt_merge(&self->t, c, d);
	int m3 = dt_merge(&self->t, m1, m2);
	__u64 ia, ib, ic, id, ia2;

	ASSERT_LE(0, m3);
	PUSH(self->q, 1, 4, &ia);
	PUSH(self->q, 1, 4, &ia2);
	PUSH(b, 2, 4, &ib);
	PUSH(c, 3, 4, &ic);
	PUSH(d, 4, 4, &id);
	/* m3: input m1 holds a, a2, b (m1's order of arrival); m2: c, d */
	POP_IS(m3, ia, 4);
	POP_IS(m3, ic, 4);
	POP_IS(m3, ia2, 4);
	POP_IS(m3, id, 4);
	POP_IS(m3, ib, 4);
	EMPTY(m3);
	EMPTY(m1);
	EMPTY(m2);
}

/* A filter of a merge takes what matches from both sources. */
TEST_F(derived, filter_of_merge)
{
	struct qd_pred p = byte_is(0, QD_CMP_GE, 10);
	int b = NEWQ(), m = dt_merge(&self->t, self->q, b), f = dt_filter(&self->t, m, &p);
	__u64 x1, x2, y1, y2;

	ASSERT_LE(0, f);
	PUSH(self->q, 10, 4, &x1);
	PUSH(b, 1, 4, &y1);
	PUSH(b, 11, 4, &x2);
	PUSH(self->q, 2, 4, &y2);
	POP_IS(f, x1, 4);
	POP_IS(f, x2, 4);
	POP_IS(m, y2, 4);	/* next = input 0 */
	POP_IS(m, y1, 4);
	EMPTY(f);
	EMPTY(m);
}

/* A merge of a filter and its own source gets both halves. */
TEST_F(derived, merge_of_filter_and_its_source)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	int f = dt_filter(&self->t, self->q, &p), m = dt_merge(&self->t, f, self->q);
	__u64 i1, i2, o1, o2;

	ASSERT_LE(0, m);
	PUSH(self->q, 0, 4, &o1);	/* not f's: the merge's input 1 */
	PUSH(self->q, 0, 4, &o2);
	PUSH(self->q, 1, 4, &i1);	/* f's, then the merge's input 0 */
	PUSH(self->q, 1, 4, &i2);
	POP_IS(m, i1, 4);
	POP_IS(m, o1, 4);
	POP_IS(m, i2, 4);
	POP_IS(m, o2, 4);
	EMPTY(f);
	EMPTY(self->q);
	EMPTY(m);
}

/* A push to a filter is a push to its source, routed as any arrival. */
TEST_F(derived, push_to_filter_goes_to_source_and_is_routed)
{
	struct qd_pred p1 = byte_is(0, QD_CMP_EQ, 1), p2 = byte_is(0, QD_CMP_EQ, 2);
	struct qd_pred p3 = byte_is(1, QD_CMP_EQ, 9);
	int f1 = dt_filter(&self->t, self->q, &p1), f2 = dt_filter(&self->t, self->q, &p2);
	int g = dt_filter(&self->t, f1, &p3);
	unsigned char b[4] = { 1, 9, 0, 0 };
	__u64 a, c, d, e;

	ASSERT_LE(0, g);
	PUSH(f1, 2, 4, &a);		/* f2's */
	PUSH(f1, 3, 4, &c);		/* nobody's: stays on the source */
	PUSH(f2, 1, 4, &d);		/* f1's */
	ASSERT_EQ(4, dt_push(&self->t, g, b, 4, 1, &e));	/* to f1 and on to g */
	POP_IS(f2, a, 4);
	POP_IS(self->q, c, 4);
	POP_IS(f1, d, 4);
	POP_IS(g, e, 4);
	EMPTY(f1);
	EMPTY(f2);
	EMPTY(g);
	EMPTY(self->q);
}

/* A push to a merge or a sort (or a filter of one) is -EOPNOTSUPP. */
TEST_F(derived, push_to_merge_or_sort_eopnotsupp)
{
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	int b = NEWQ(), s = dt_sort(&self->t, self->q, &k), m = dt_merge(&self->t, s, b);
	int f = dt_filter(&self->t, m, &p);

	ASSERT_LE(0, f);
	EXPECT_EQ(-EOPNOTSUPP, dt_push_v(&self->t, s, 1, 4, NULL));
	EXPECT_EQ(-EOPNOTSUPP, dt_push_v(&self->t, m, 1, 4, NULL));
	EXPECT_EQ(-EOPNOTSUPP, dt_push_v(&self->t, f, 1, 4, NULL));
	EMPTY(s);
	EMPTY(m);
	EMPTY(f);
	EMPTY(self->q);
	EMPTY(b);
}

/*
 * Closing a source: pending pops of the queues derived from it end
 * -ECANCELED; those left with no source pop what they hold, then -EPIPE
 * at once; a merge with a live source keeps working; a push to a filter
 * of the closed source is -EPIPE.
 */
TEST_F(derived, close_source_cancels_pops_then_held_then_epipe)
{
	struct qd_pred p1 = byte_is(0, QD_CMP_EQ, 1), p2 = byte_is(0, QD_CMP_EQ, 2);
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int b = NEWQ(), f1 = dt_filter(&self->t, self->q, &p1);
	int f2 = dt_filter(&self->t, self->q, &p2), s, m;
	__u64 x1, x2, uf2, us, um, y, got;

	ASSERT_LE(0, f2);
	PUSH(self->q, 1, 4, &x1);
	PUSH(self->q, 1, 5, &x2);
	s = dt_sort(&self->t, self->q, &k);
	m = dt_merge(&self->t, self->q, b);
	ASSERT_LE(0, m);
	POP_WAITS(f2, uf2);
	POP_WAITS(s, us);
	POP_WAITS(m, um);
	ASSERT_EQ(0, dt_close(&self->t, self->q));
	DONE_WITH(uf2, -ECANCELED, ~0ULL);
	DONE_WITH(us, -ECANCELED, ~0ULL);
	DONE_WITH(um, -ECANCELED, ~0ULL);
	/* f1 ended: what it holds, then -EPIPE without waiting */
	POP_IS(f1, x1, 4);
	POP_IS(f1, x2, 5);
	EXPECT_EQ(-EPIPE, dt_pop_now(&self->t, f1, &got));
	EXPECT_EQ(-EPIPE, dt_pop_now(&self->t, f1, &got));
	EXPECT_EQ(-EPIPE, dt_pop_now(&self->t, f2, &got));
	EXPECT_EQ(-EPIPE, dt_pop_now(&self->t, s, &got));
	/* a push to a filter of the closed source */
	EXPECT_EQ(-EPIPE, dt_push_v(&self->t, f1, 1, 4, NULL));
	EXPECT_EQ(-EPIPE, dt_push_v(&self->t, f2, 3, 4, NULL));
	/* the merge still has b: its pops wait and get b's elements */
	POP_WAITS(m, um);
	PUSH(b, 9, 7, &y);
	DONE_WITH(um, 7, y);
	EMPTY(m);
}

/* Ending is recursive: the derived queues of an ended queue end too. */
TEST_F(derived, close_source_ends_derived_queues_recursively)
{
	struct qd_pred ge1 = byte_is(0, QD_CMP_GE, 1), ge2 = byte_is(0, QD_CMP_GE, 2);
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int f = dt_filter(&self->t, self->q, &ge1), g = dt_filter(&self->t, f, &ge2), h;
	__u64 x1, x5, uh, got;

	ASSERT_LE(0, g);
	PUSH(self->q, 1, 4, &x1);	/* f's (g wants >= 2) */
	PUSH(self->q, 5, 4, &x5);	/* f's, then g's */
	h = dt_sort(&self->t, g, &k);
	ASSERT_LE(0, h);
	POP_WAITS(h, uh);
	ASSERT_EQ(0, dt_close(&self->t, self->q));
	/* f ended, so g has no source, so h has none: its pop ends too */
	DONE_WITH(uh, -ECANCELED, ~0ULL);
	POP_IS(f, x1, 4);
	EXPECT_EQ(-EPIPE, dt_pop_now(&self->t, f, &got));
	POP_IS(g, x5, 4);
	EXPECT_EQ(-EPIPE, dt_pop_now(&self->t, g, &got));
	EXPECT_EQ(-EPIPE, dt_pop_now(&self->t, h, &got));
	EXPECT_EQ(-EPIPE, dt_push_v(&self->t, g, 5, 4, NULL));
	/* an ended queue feeds nobody: no queue derives from it (-EPIPE) */
	EXPECT_EQ(-EPIPE, dt_filter(&self->t, g, &ge1));
	EXPECT_EQ(-EPIPE, dt_sort(&self->t, f, &k));
	EXPECT_EQ(-EPIPE, dt_merge(&self->t, NEWQ(), h));
}

/*
 * Closing a derived queue: its pending pops end -ECANCELED; what it holds
 * goes back to the source after what that holds, in the order it would
 * have popped them, and is not offered to the source's other filters.
 */
TEST_F(derived, close_filter_gives_back_in_order_not_reoffered)
{
	struct qd_pred lt5 = byte_is(0, QD_CMP_LT, 5), lt9 = byte_is(0, QD_CMP_LT, 9);
	struct qd_pred none = byte_is(0, QD_CMP_EQ, 100);
	int f1 = dt_filter(&self->t, self->q, &lt5), f2 = dt_filter(&self->t, self->q, &lt9);
	int f3 = dt_filter(&self->t, self->q, &none);
	__u64 a, b, c, d, u3;

	ASSERT_LE(0, f3);
	PUSH(self->q, 20, 4, &a);	/* the source's */
	PUSH(self->q, 3, 4, &b);	/* f1 */
	PUSH(self->q, 7, 4, &c);	/* f2 */
	PUSH(self->q, 1, 4, &d);	/* f1 */
	POP_WAITS(f3, u3);
	ASSERT_EQ(0, dt_close(&self->t, f3));
	DONE_WITH(u3, -ECANCELED, ~0ULL);
	ASSERT_EQ(0, dt_close(&self->t, f1));
	POP_IS(self->q, a, 4);
	POP_IS(self->q, b, 4);
	POP_IS(self->q, d, 4);
	POP_IS(f2, c, 4);	/* b and d were not given to f2 */
	EMPTY(f2);
	EMPTY(self->q);
	/* and f2 still takes new arrivals; a closed f1 none */
	PUSH(self->q, 2, 4, &a);
	POP_IS(f2, a, 4);
}

/* A sort gives back in key order; a pop waiting on the source gets them. */
TEST_F(derived, close_sort_gives_back_in_key_order_to_waiting_pop)
{
	static const unsigned char keys[] = { 5, 1, 3, 1 };
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int s = dt_sort(&self->t, self->q, &k), i;
	__u64 ids[4], ud, got;

	ASSERT_LE(0, s);
	ASSERT_EQ(0, push_keys(&self->t, self->q, keys, NULL, 4, ids));
	POP_WAITS(self->q, ud);
	ASSERT_EQ(0, dt_close(&self->t, s));
	DONE_WITH(ud, 8, ids[1]);
	if (self->mapped) {
		/* given back into the ring: user space pops them there */
		struct qd_mq_hdr *h = dt_ring(&self->t, self->q);
		static const int rest[] = { 3, 2, 0 };

		for (i = 0; i < 3; i++) {
			ASSERT_EQ(QD_MQ_OK, dt_ring_pop(h, &got));
			EXPECT_EQ(ids[rest[i]], got);
		}
		EXPECT_EQ(QD_MQ_EMPTY, dt_ring_pop(h, &got));
	} else {
		POP_IS(self->q, ids[3], 8);
		POP_IS(self->q, ids[2], 8);
		POP_IS(self->q, ids[0], 8);
	}
	EMPTY(self->q);
}

/* A merge gives each element back to the source it came from. */
TEST_F(derived, close_merge_gives_each_back_to_its_source)
{
	int b = NEWQ(), m;
	__u64 a0, a1, a2, b1, b2;

	PUSH(self->q, 1, 4, &a0);	/* before the merge: stays */
	m = dt_merge(&self->t, self->q, b);
	ASSERT_LE(0, m);
	PUSH(self->q, 2, 4, &a1);
	PUSH(b, 3, 4, &b1);
	PUSH(self->q, 4, 4, &a2);
	PUSH(b, 5, 4, &b2);
	POP_IS(m, a1, 4);	/* next: b */
	ASSERT_EQ(0, dt_close(&self->t, m));
	POP_IS(self->q, a0, 4);
	POP_IS(self->q, a2, 4);
	POP_IS(b, b1, 4);
	POP_IS(b, b2, 4);
	EMPTY(self->q);
	EMPTY(b);
}

/* A merge of merges gives back to the inner merge's own inputs. */
TEST_F(derived, close_outer_merge_gives_back_to_inner_inputs)
{
	int b = NEWQ(), c = NEWQ(), m1 = dt_merge(&self->t, self->q, b), m2;
	__u64 a1, a2, b1, c1;

	ASSERT_LE(0, m1);
	m2 = dt_merge(&self->t, m1, c);
	ASSERT_LE(0, m2);
	PUSH(b, 1, 4, &b1);
	PUSH(b, 1, 4, &a2);	/* a second one of b's */
	PUSH(self->q, 2, 4, &a1);
	PUSH(c, 3, 4, &c1);
	ASSERT_EQ(0, dt_close(&self->t, m2));
	/* m1 gets b1, a2 (its input 1) and a1 (input 0): pops a1, b1, a2 */
	POP_IS(m1, a1, 4);
	POP_IS(m1, b1, 4);
	POP_IS(m1, a2, 4);
	POP_IS(c, c1, 4);
	EMPTY(m1);
}

/* Held elements keep their region busy until they are popped or freed. */
TEST_F(derived, elements_in_derived_queues_freed_with_them)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	char *buf2 = qd_raw_pages(REGION_BYTES), *buf1 = self->t.buf;
	unsigned int r2, r1 = self->t.region;
	struct qd_proc base, now;
	int f, s, b = dt_queue(&self->t, 0, 0), m, i;	/* b: counted in queued */
	__u64 id;

	ASSERT_NE(NULL, buf2);
	ASSERT_EQ(0, qd_raw_register(self->t.r.fd, buf2, REGION_BYTES, &r2));
	ASSERT_EQ(0, qd_proc_read(&base));
	f = dt_filter(&self->t, self->q, &p);
	s = dt_sort(&self->t, self->q, &k);
	m = dt_merge(&self->t, b, f);
	ASSERT_LE(0, m);
	/* elements in r2: 3 to f (then m), 2 to s, 1 to b (then m) */
	self->t.buf = buf2;
	self->t.region = r2;
	for (i = 0; i < 3; i++)
		PUSH(self->q, 1, 4, NULL);
	PUSH(self->q, 2, 4, NULL);
	PUSH(self->q, 3, 4, NULL);
	PUSH(b, 3, 4, NULL);
	self->t.buf = buf1;
	self->t.region = r1;
	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base.queued + 6, now.queued);
	EXPECT_EQ(base.derived + 3, now.derived);
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->t.r.fd, r2));
	/* the merge gives back: 3 to f, 1 to b; nothing freed */
	ASSERT_EQ(0, dt_close(&self->t, m));
	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base.queued + 6, now.queued);
	/* the sort's two popped: the popper's now */
	EXPECT_EQ(4, dt_pop_now(&self->t, s, &id));
	EXPECT_EQ(4, dt_pop_now(&self->t, s, &id));
	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base.queued + 4, now.queued);
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->t.r.fd, r2));
	/* f's source closed: f keeps its 3 until it closes, then frees them */
	ASSERT_EQ(0, dt_close(&self->t, self->q));
	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base.queued + 4, now.queued);
	ASSERT_EQ(0, dt_close(&self->t, f));
	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base.queued + 1, now.queued);
	EXPECT_EQ(-EBUSY, qd_raw_unregister(self->t.r.fd, r2));	/* b's */
	ASSERT_EQ(0, dt_close(&self->t, b));
	ASSERT_EQ(0, dt_close(&self->t, s));
	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base.queued, now.queued);
	EXPECT_EQ(base.derived, now.derived);
	EXPECT_EQ(0, qd_raw_unregister(self->t.r.fd, r2));
	munmap(buf2, REGION_BYTES);
}

/*
 * A push to a filter waits on its full source like any push there (what the
 * filter does not take stays on the source), and QD_OP_CANCEL through the
 * filter finds it.
 */
TEST_F(derived, push_to_filter_waits_on_full_source_cancel_through_filter)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	/* depth 2: a mapped queue of depth 1 has a ring of one slot, broken */
	int q = dt_queue(&self->t, self->mapped, 2), f = dt_filter(&self->t, q, &p);
	struct qd_seg segs[QD_SGA_MAX];
	unsigned char b[4] = { 0, 0, 0, 0 };
	__u64 o1, o2, up, uc, x, y, got;
	struct qd_sqe s;
	int n;

	ASSERT_LE(0, f);
	PUSH(q, 0, 4, &o1);
	PUSH(q, 0, 4, &o2);			/* q is full */
	PUSH(f, 1, 4, &x);			/* the filter's: no wait */
	n = dt_elem(&self->t, b, 4, 1, segs);
	up = self->t.ud++;
	ASSERT_EQ(0, dt_submit(&self->t, qd_sqe_push(f, segs, n, up)));
	EXPECT_TRUE(dt_pending(&self->t, up)) TH_LOG("a push to a full source did not wait");
	s = (struct qd_sqe){ .opcode = QD_OP_CANCEL, .qd = f, .addr = up,
			     .user_data = uc = self->t.ud++ };
	ASSERT_EQ(0, dt_submit(&self->t, s));
	DONE_WITH(up, -ECANCELED, ~0ULL);
	DONE_WITH(uc, 0, ~0ULL);
	/* again, and a pop of the source lets it in */
	y = segs[0].offset;
	up = self->t.ud++;
	ASSERT_EQ(0, dt_submit(&self->t, qd_sqe_push(f, segs, n, up)));
	EXPECT_TRUE(dt_pending(&self->t, up));
	POP_IS(q, o1, 4);
	DONE_WITH(up, 4, ~0ULL);
	POP_IS(q, o2, 4);
	POP_IS(q, y, 4);
	POP_IS(f, x, 4);
	(void)got;
}

/* A pool pop (QD_POP_POOL) on a derived queue is -EOPNOTSUPP. */
TEST_F(derived, pool_pop_on_derived_queue_eopnotsupp)
{
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int s = dt_sort(&self->t, self->q, &k);
	struct qd_sqe pop;
	struct qd_cqe c;
	__u64 ud;

	ASSERT_LE(0, s);
	pop = qd_sqe_pop(s, ud = self->t.ud++);
	pop.op_flags = QD_POP_POOL;
	ASSERT_EQ(0, dt_submit(&self->t, pop));
	ASSERT_EQ(0, dt_wait(&self->t, ud, &c, NULL, LONG_NS));
	EXPECT_EQ(-EOPNOTSUPP, c.res);
}

/* The debugfs row of a derived queue of pid's first context, or "". */
static void dt_debugfs_row(int qd, char *out, size_t len)
{
	char dirs[4][256], path[300], line[512];
	FILE *f;
	int n = qd_debugfs_ctx_dirs(getpid(), dirs, 4);

	out[0] = 0;
	if (n < 1)
		return;
	snprintf(path, sizeof(path), "%s/queues", dirs[0]);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (atoi(line) == qd && line[0] >= '0' && line[0] <= '9') {
			snprintf(out, len, "%s", line);
			break;
		}
	}
	fclose(f);
}

/* debugfs `queues`: a row per derived queue (kind, held, level, sources). */
TEST_F(derived, debugfs_rows_and_proc_count)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int b = NEWQ(), f = dt_filter(&self->t, self->q, &p), s = dt_sort(&self->t, f, &k);
	int m = dt_merge(&self->t, self->q, b);
	char row[512], want[128];
	struct qd_proc base, now;
	unsigned int i;

	ASSERT_LE(0, m);
	ASSERT_EQ(0, qd_debugfs_ready());
	for (i = 0; i < 3; i++)
		PUSH(self->q, 1, 4, NULL);	/* f, then s */
	PUSH(b, 7, 4, NULL);			/* m */
	dt_debugfs_row(s, row, sizeof(row));
	snprintf(want, sizeof(want), "%d sort 3 ", s);
	EXPECT_EQ(0, strncmp(row, want, strlen(want))) TH_LOG("row '%s'", row);
	snprintf(want, sizeof(want), "level=2 sources=%d live=1", f);
	EXPECT_NE(NULL, strstr(row, want)) TH_LOG("row '%s', want '%s'", row, want);
	dt_debugfs_row(f, row, sizeof(row));
	snprintf(want, sizeof(want), "%d filter 0 ", f);
	EXPECT_EQ(0, strncmp(row, want, strlen(want))) TH_LOG("row '%s'", row);
	dt_debugfs_row(m, row, sizeof(row));
	snprintf(want, sizeof(want), "level=1 sources=%d,%d live=2", self->q, b);
	EXPECT_NE(NULL, strstr(row, want)) TH_LOG("row '%s', want '%s'", row, want);
	snprintf(want, sizeof(want), "%d merge 1 ", m);
	EXPECT_EQ(0, strncmp(row, want, strlen(want))) TH_LOG("row '%s'", row);
	ASSERT_EQ(0, qd_proc_read(&base));
	ASSERT_EQ(0, dt_close(&self->t, b));
	dt_debugfs_row(m, row, sizeof(row));
	EXPECT_NE(NULL, strstr(row, "live=1")) TH_LOG("row '%s'", row);
	ASSERT_EQ(0, dt_close(&self->t, s));
	ASSERT_EQ(0, qd_proc_read(&now));
	EXPECT_EQ(base.derived - 1, now.derived);
	dt_debugfs_row(s, row, sizeof(row));
	EXPECT_EQ(0, (int)strlen(row)) TH_LOG("row '%s' after close", row);
}

/* Elements in derived queues are bounded by the element budget, not a depth. */
TEST_F(derived, derived_queue_not_bounded_by_source_depth)
{
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int q = dt_queue(&self->t, self->mapped, 2), s = dt_sort(&self->t, q, &k), i;
	__u64 ids[12];

	ASSERT_LE(0, s);
	for (i = 0; i < 12; i++)
		PUSH(q, 12 - i, 4, &ids[i]);	/* none of them parks */
	for (i = 11; i >= 0; i--)
		POP_IS(s, ids[i], 4);
}

/* A pop waiting on a filter is not completed by others' elements. */
TEST_F(derived, pop_on_filter_waits_through_non_matching_pushes)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 42);
	int f = dt_filter(&self->t, self->q, &p), i;
	__u64 ud, x, others[6];

	ASSERT_LE(0, f);
	POP_WAITS(f, ud);
	for (i = 0; i < 6; i++)
		PUSH(self->q, i, 4, &others[i]);
	EXPECT_TRUE(dt_pending(&self->t, ud)) TH_LOG("woken by another's element");
	PUSH(self->q, 42, 9, &x);
	DONE_WITH(ud, 9, x);
	for (i = 0; i < 6; i++)
		POP_IS(self->q, others[i], 4);
}

/* voluntary_ctxt_switches of a thread of this process, or -1. */
static long long task_switches(pid_t tid)
{
	char path[64], line[128];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

struct sleeper {
	struct qd_raw	*r;
	pid_t		tid;
	int		ret;
	int		done;
};

static void *sleeper_fn(void *arg)
{
	struct sleeper *s = arg;

	__atomic_store_n(&s->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	s->ret = qd_raw_enter(s->r, 0, 1, QD_RAW_WAIT, 20000 * QD_RAW_MS);
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Wait until the sleeper sleeps in the ioctl: 1, or 0 if it returned. */
static int sleeper_asleep(struct sleeper *s)
{
	long long end = qd_now_ns() + 10000 * QD_RAW_MS;

	while (qd_now_ns() < end) {
		pid_t tid = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);

		if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
			return 0;
		if (tid && qd_task_asleep_in(tid, SYS_ioctl))
			return 1;
		sched_yield();
	}
	return 0;
}

/*
 * "Woken only for its own elements": a thread sleeping for the CQE of a
 * pop on a filter (its own ring) is not woken by elements the filter does
 * not take (pushed without CQEs from another ring): it stays asleep and
 * its voluntary context switches do not move; the first element the
 * filter takes wakes it.
 */
TEST_F(derived, waiter_on_filter_woken_only_for_its_elements)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 42);
	struct sleeper sl = { 0 };
	struct qd_sqe pop;
	struct qd_raw r2;
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_cqe c;
	struct qd_elem e;
	int f = dt_filter(&self->t, self->q, &p), i, n;
	long long before, after;
	pthread_t th;
	__u64 x;

	ASSERT_LE(0, f);
	ASSERT_EQ(0, qd_raw_ring_create(&self->t.r, &r2, 8, 16));
	pop = qd_sqe_pop(f, 4242);
	ASSERT_EQ(0, qd_raw_queue_sqe(&r2, &pop));
	ASSERT_EQ(1, qd_raw_submit(&r2));
	sl.r = &r2;
	ASSERT_EQ(0, pthread_create(&th, NULL, sleeper_fn, &sl));
	ASSERT_TRUE(sleeper_asleep(&sl));
	before = task_switches(sl.tid);
	ASSERT_LE(0, before);
	for (i = 0; i < 20; i++) {
		unsigned char b[4] = { (unsigned char)i, 42, 42, 42 };
		struct qd_sqe s;

		/* through the kernel, no CQE: nothing for any ring to see */
		n = dt_elem(&self->t, b, 4, 1, segs);
		s = qd_sqe_push(self->q, segs, n, 0);
		s.flags = QD_SQE_F_SKIP_SUCCESS;
		ASSERT_EQ(0, dt_submit(&self->t, s));
	}
	/* a wake-up would have made it runnable before the pushes returned */
	ASSERT_TRUE(sleeper_asleep(&sl));
	after = task_switches(sl.tid);
	EXPECT_EQ(before, after) TH_LOG("the waiter was woken %lld times", after - before);
	EXPECT_EQ(0u, qd_raw_cq_ready(&r2));
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->t.r)) TH_LOG("a CQE on ring 0");
	PUSH(self->q, 42, 5, &x);
	pthread_join(th, NULL);
	EXPECT_EQ(0, sl.ret);
	ASSERT_EQ(0, qd_raw_wait_cqe(&r2, &c, &e, LONG_NS));
	EXPECT_EQ(4242u, c.user_data);
	EXPECT_EQ(5, c.res);
	EXPECT_EQ(x, e.segs[0].offset);
	qd_raw_exit(&r2);
}

/* A multishot pop on a filter gets each of its elements, and only those. */
TEST_F(derived, multishot_pop_on_filter_and_sort)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	int f = dt_filter(&self->t, self->q, &p), q2 = NEWQ(), s = dt_sort(&self->t, q2, &k);
	__u64 ud, us, x1, x2, o, y1, y2;
	struct qd_cqe c;
	struct qd_elem e;

	ASSERT_LE(0, s);
	ud = dt_pop(&self->t, f, QD_POP_MULTISHOT);
	ASSERT_NE(0ULL, ud);
	PUSH(self->q, 1, 4, &x1);
	PUSH(self->q, 0, 4, &o);
	PUSH(self->q, 1, 6, &x2);
	ASSERT_EQ(0, dt_wait(&self->t, ud, &c, &e, LONG_NS));
	EXPECT_EQ(4, c.res);
	EXPECT_TRUE(!!(c.flags & QD_CQE_F_MORE));
	EXPECT_EQ(x1, e.segs[0].offset);
	ASSERT_EQ(0, dt_wait(&self->t, ud, &c, &e, LONG_NS));
	EXPECT_EQ(6, c.res);
	EXPECT_TRUE(!!(c.flags & QD_CQE_F_MORE));
	EXPECT_EQ(x2, e.segs[0].offset);
	EXPECT_TRUE(dt_pending(&self->t, ud));
	POP_IS(self->q, o, 4);
	/* a sort with a multishot pop: each arrival at once */
	us = dt_pop(&self->t, s, QD_POP_MULTISHOT);
	PUSH(q2, 9, 3, &y1);
	PUSH(q2, 2, 3, &y2);
	ASSERT_EQ(0, dt_wait(&self->t, us, &c, &e, LONG_NS));
	EXPECT_EQ(y1, e.segs[0].offset);
	ASSERT_EQ(0, dt_wait(&self->t, us, &c, &e, LONG_NS));
	EXPECT_EQ(y2, e.segs[0].offset);
	EXPECT_TRUE(!!(c.flags & QD_CQE_F_MORE));
	/* closing ends them: one final CQE without MORE */
	ASSERT_EQ(0, dt_close(&self->t, f));
	ASSERT_EQ(0, dt_wait(&self->t, ud, &c, &e, LONG_NS));
	EXPECT_EQ(-ECANCELED, c.res);
	EXPECT_FALSE(!!(c.flags & QD_CQE_F_MORE));
	ASSERT_EQ(0, dt_close(&self->t, q2));	/* the sort's source */
	ASSERT_EQ(0, dt_wait(&self->t, us, &c, &e, LONG_NS));
	EXPECT_EQ(-ECANCELED, c.res);
	EXPECT_FALSE(!!(c.flags & QD_CQE_F_MORE));
	EXPECT_TRUE(dt_pending(&self->t, ud));
}

/* QD_OP_CANCEL ends a pop waiting on a derived queue; nothing is lost. */
TEST_F(derived, cancel_pop_on_derived_queue)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	int b = NEWQ(), f = dt_filter(&self->t, self->q, &p), m = dt_merge(&self->t, f, b);
	__u64 ud, um, uc, x;
	struct qd_cqe c;
	struct qd_sqe s;
	int g = dt_filter(&self->t, self->q, &p);	/* never gets anything: m is first */

	ASSERT_LE(0, g);
	POP_WAITS(m, um);
	POP_WAITS(g, ud);
	s = (struct qd_sqe){ .opcode = QD_OP_CANCEL, .qd = m, .addr = um,
			     .user_data = uc = self->t.ud++ };
	ASSERT_EQ(0, dt_submit(&self->t, s));
	ASSERT_EQ(0, dt_wait(&self->t, uc, &c, NULL, LONG_NS));
	EXPECT_EQ(0, c.res);
	DONE_WITH(um, -ECANCELED, ~0ULL);
	/* a second cancel finds nothing */
	s.user_data = uc = self->t.ud++;
	ASSERT_EQ(0, dt_submit(&self->t, s));
	ASSERT_EQ(0, dt_wait(&self->t, uc, &c, NULL, LONG_NS));
	EXPECT_NE(0, c.res);
	/* the element goes to f, then m, and waits there */
	PUSH(self->q, 1, 4, &x);
	EXPECT_TRUE(dt_pending(&self->t, ud));
	POP_IS(m, x, 4);
	s = (struct qd_sqe){ .opcode = QD_OP_CANCEL, .qd = g, .addr = ud,
			     .user_data = uc = self->t.ud++ };
	ASSERT_EQ(0, dt_submit(&self->t, s));
	DONE_WITH(ud, -ECANCELED, ~0ULL);
	DONE_WITH(uc, 0, ~0ULL);
}

/* QD_MQ_PUSH_KERNEL: set while the mapped queue has derived queues. */
TEST_F(derived, mapped_push_kernel_bit_while_derived_queues_exist)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 1);
	struct qd_key k = key_of(0, 1, 0, 0, 0);
	struct qd_mq_hdr *h, *hb;
	int f, s, b, m, g;
	unsigned int kp;
	__u64 x, o, got;

	if (!self->mapped)
		SKIP(return, "a plain queue has no ring");
	h = dt_ring(&self->t, self->q);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(0u, dt_waiters(h) & QD_MQ_PUSH_KERNEL);
	f = dt_filter(&self->t, self->q, &p);
	ASSERT_LE(0, f);
	EXPECT_EQ(QD_MQ_PUSH_KERNEL, dt_waiters(h) & QD_MQ_PUSH_KERNEL);
	/* the helper honours it: pushes go to the kernel and are routed */
	kp = self->t.kernel_pushes;
	PUSH(self->q, 1, 4, &x);
	PUSH(self->q, 0, 4, &o);
	EXPECT_EQ(kp + 2, self->t.kernel_pushes);
	/* pops from the ring are unaffected: the unmatched one is there */
	ASSERT_EQ(QD_MQ_OK, dt_ring_pop(h, &got));
	EXPECT_EQ(o, got);
	EXPECT_EQ(QD_MQ_EMPTY, dt_ring_pop(h, &got));
	POP_IS(f, x, 4);
	g = dt_filter(&self->t, f, &p);		/* derived of derived */
	s = dt_sort(&self->t, self->q, &k);
	ASSERT_LE(0, s);
	ASSERT_LE(0, g);
	ASSERT_EQ(0, dt_close(&self->t, f));
	EXPECT_EQ(QD_MQ_PUSH_KERNEL, dt_waiters(h) & QD_MQ_PUSH_KERNEL) TH_LOG("s is left");
	ASSERT_EQ(0, dt_close(&self->t, s));
	EXPECT_EQ(0u, dt_waiters(h) & QD_MQ_PUSH_KERNEL) TH_LOG("g is not derived from q");
	/* through the ring again */
	kp = self->t.ring_pushes;
	PUSH(self->q, 1, 4, &x);
	EXPECT_EQ(kp + 1, self->t.ring_pushes);
	/* as a merge's second source, and both at once */
	b = NEWQ();
	hb = dt_ring(&self->t, b);
	m = dt_merge(&self->t, self->q, b);
	ASSERT_LE(0, m);
	EXPECT_EQ(QD_MQ_PUSH_KERNEL, dt_waiters(h) & QD_MQ_PUSH_KERNEL);
	EXPECT_EQ(QD_MQ_PUSH_KERNEL, dt_waiters(hb) & QD_MQ_PUSH_KERNEL);
	ASSERT_EQ(0, dt_close(&self->t, m));
	EXPECT_EQ(0u, dt_waiters(h) & QD_MQ_PUSH_KERNEL);
	EXPECT_EQ(0u, dt_waiters(hb) & QD_MQ_PUSH_KERNEL);
	/* a derived queue that ended (its merge partner closed) */
	m = dt_merge(&self->t, b, self->q);
	ASSERT_LE(0, m);
	ASSERT_EQ(0, dt_close(&self->t, b));
	EXPECT_EQ(QD_MQ_PUSH_KERNEL, dt_waiters(h) & QD_MQ_PUSH_KERNEL) TH_LOG("m still takes q's");
	ASSERT_EQ(0, dt_close(&self->t, m));
	EXPECT_EQ(0u, dt_waiters(h) & QD_MQ_PUSH_KERNEL);
}

/*
 * A process that exits (or is killed) with derived queues holding
 * elements, pops waiting on them and a multishot pop leaves nothing behind.
 */
static int busy_child(int mapped, int ready)
{
	struct qd_pred p = byte_is(0, QD_CMP_LT, 3);
	struct qd_key k = key_of(0, 1, 0, 0, QD_KEY_DESC);
	struct dt *t = calloc(1, sizeof(*t));
	int q, b, f, s, m, g, i;

	if (!t || dt_init(t))
		return 1;
	q = dt_queue(t, mapped, 0);
	b = dt_queue(t, mapped, 0);
	f = dt_filter(t, q, &p);
	m = dt_merge(t, f, b);
	g = dt_filter(t, q, &p);
	s = dt_sort(t, q, &k);
	if (q < 0 || b < 0 || f < 0 || m < 0 || g < 0 || s < 0)
		return 2;
	for (i = 0; i < 30; i++)
		if (dt_push_v(t, i % 3 ? q : b, (unsigned char)i, 4, NULL) != 4)
			return 3;
	if (!dt_pop(t, g, 0) || !dt_pop(t, g, QD_POP_MULTISHOT) ||
	    dt_close(t, f) || !dt_pop(t, m, 0))
		return 4;
	if (write(ready, "r", 1) != 1)
		return 5;
	pause();
	return 0;
}

TEST_F(derived, process_exit_or_kill_with_full_derived_queues_leaves_nothing)
{
	struct qd_proc base;
	int how;

	ASSERT_EQ(0, qd_proc_read(&base));
	for (how = 0; how < 2; how++) {
		int pfd[2], st;
		pid_t pid;
		char c;

		ASSERT_EQ(0, pipe(pfd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			close(pfd[0]);
			if (how == 0)
				alarm(20);	/* SIGALRM: an exit by a signal's default */
			_exit(busy_child(self->mapped, pfd[1]));
		}
		close(pfd[1]);
		ASSERT_EQ(1, read(pfd[0], &c, 1)) TH_LOG("the child failed");
		close(pfd[0]);
		if (how == 1)
			kill(pid, SIGKILL);
		else
			kill(pid, SIGTERM);
		ASSERT_EQ(pid, waitpid(pid, &st, 0));
		EXPECT_TRUE(WIFSIGNALED(st));
		QD_EXPECT_SETTLED(&base, 5000);
	}
}

/* ======================================================================== */
/* model: the kernel through libqd, step by step against derived_model.h    */
/* ======================================================================== */

#define MD_STEPS	3000		/* steps of a round */
#define MD_PENDING	6		/* pops left pending at once, at most */
#define MD_HELD		150		/* elements held before pops are favoured */
#define MD_LOG		64

/*
 * How memory queues are made: libqd's mapped ones, plain ones, or both;
 * MD_FN: the callback forms (qd_filter_fn, qd_sort_fn) on memory queues
 * of both kinds, made before the first push, pushes to the memory queues
 * only, closes at the end (libqd routes when a pop waits: the same answers
 * as at arrival only in such runs).
 */
enum { MD_MAPPED, MD_PLAIN, MD_MIXED, MD_FN };

struct md {
	struct dm		m;
	int			qd[DM_MAXQ];	/* libqd's qd of model queue i */
	int			mapped[DM_MAXQ];
	struct qd_sga		sga[DM_MAXE];	/* element i's buffers */
	qd_token_t		tok[DM_MAXPOP];
	int			out[MD_PENDING * 4];	/* pops not yet compared */
	int			nout;
	int			nfreed;		/* m.freed[] released so far */
	unsigned long long	rng;
	int			mode;		/* MD_* */
	int			step;
	char			log[MD_LOG][160];
	int			nlog;
	char			err[512];
	/* what the run did */
	unsigned int		pushes, pops, pending, derives, closes, refused, cancels;
	unsigned int		matched, popped;
	/* MD_FN: the argument of each queue's callback */
	struct md_fnarg {
		struct md	*d;
		int		qi;
	}			fnarg[DM_MAXQ];
};

static unsigned long long xorshift_u(unsigned long long *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static unsigned long long md_r(struct md *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return d->rng;
}

static unsigned int md_pct(struct md *d)
{
	return md_r(d) % 100;
}

static void __attribute__((format(printf, 2, 3))) md_say(struct md *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->log[d->nlog++ % MD_LOG], sizeof(d->log[0]), fmt, ap);
	va_end(ap);
}

static int __attribute__((format(printf, 2, 3))) md_fail(struct md *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *md_kind(int kind)
{
	return (const char *[]){ "memq", "filter", "sort", "merge" }[kind];
}

/* Payload bytes: few values, so that predicates hold now and then. */
static unsigned char md_byte(struct md *d)
{
	static const unsigned char v[] = { 0, 1, 2, 3, 0x7f, 0x80, 0xfe, 0xff };

	return v[md_r(d) % sizeof(v)];
}

static struct qd_field md_field(struct md *d)
{
	static const __u8 w[] = { 1, 1, 1, 2, 2, 4, 8 };
	struct qd_field f = { 0 };
	__u64 ones;

	f.width = w[md_r(d) % sizeof(w)];
	f.off = md_r(d) % (md_pct(d) < 90 ? 8 : 20);
	f.flags = md_pct(d) < 30 ? QD_FIELD_BE : 0;
	ones = f.width == 8 ? ~0ULL : (1ULL << (8 * f.width)) - 1;
	if (md_pct(d) < 25)
		f.mask = md_r(d) & ones;
	return f;
}

static struct qd_pred md_pred_make(struct md *d)
{
	struct qd_pred p = { 0 };
	unsigned int i, j;

	p.nterms = md_pct(d) < 70 ? 1 : 2 + md_r(d) % (QD_PRED_MAX_TERMS - 1);
	for (i = 0; i < p.nterms; i++) {
		struct qd_pred_term *t = &p.terms[i];
		unsigned char b[8];
		struct dm_elem e = { .len = 64 };
		unsigned long long v = 0;

		t->field = md_field(d);
		t->cmp = QD_CMP_EQ + md_r(d) % 6;
		/* a constant that looks like the payload */
		for (j = 0; j < 8; j++)
			b[j] = md_byte(d);
		memcpy(e.b + t->field.off, b, t->field.width);
		dm_field(&t->field, &e, &v);
		t->value = v;
	}
	return p;
}

static struct qd_key md_key_make(struct md *d)
{
	struct qd_key k = { 0 };

	k.field = md_field(d);
	k.flags = md_pct(d) < 40 ? QD_KEY_DESC : 0;
	return k;
}

/* A model queue (open; alive if asked), uniformly, or -1. */
static int md_pick(struct md *d, int alive, int kind)
{
	int n = 0, i, k;

	for (i = 0; i < d->m.nq; i++)
		if (d->m.q[i].open && (!alive || dm_alive(&d->m.q[i])) &&
		    (kind < 0 || d->m.q[i].kind == kind))
			n++;
	if (!n)
		return -1;
	k = md_r(d) % n;
	for (i = 0; i < d->m.nq; i++)
		if (d->m.q[i].open && (!alive || dm_alive(&d->m.q[i])) &&
		    (kind < 0 || d->m.q[i].kind == kind) && !k--)
			return i;
	return -1;
}

static int md_count(struct md *d, int kind)
{
	int n = 0, i;

	for (i = 0; i < d->m.nq; i++)
		n += d->m.q[i].open && (kind < 0 || d->m.q[i].kind == kind);
	return n;
}

static int md_new_memq(struct md *d)
{
	int qi = dm_memq(&d->m), plain, ret;

	if (qi < 0)
		return md_fail(d, "model: too many queues");
	plain = d->mode == MD_PLAIN ||
		((d->mode == MD_MIXED || d->mode == MD_FN) && md_pct(d) < 50);
	if (plain)
		setenv("QD_MEMQ_KERNEL", "1", 1);
	ret = qd_queue(&d->qd[qi]);
	if (plain)
		unsetenv("QD_MEMQ_KERNEL");
	d->mapped[qi] = !plain;
	md_say(d, "q%d = memq (%s): qd %d", qi, plain ? "plain" : "mapped", d->qd[qi]);
	if (ret)
		return md_fail(d, "qd_queue: %d", ret);
	return 0;
}

/* Release the buffers of the elements the model dropped. */
static void md_release(struct md *d)
{
	while (d->nfreed < d->m.nfreed)
		qd_sgafree(&d->sga[d->m.freed[d->nfreed++]]);
}

static const struct timespec md_zero = { 0, 0 };
static int md_hand_keeps_next;	/* derived --hand-keeps-next (diagnosis) */

/* Compare a completed pop with the model's answer. */
static int md_check_pop(struct md *d, int p, const struct qd_result *r)
{
	const struct dm_pop *mp = &d->m.p[p];
	int e = mp->elem;

	if (r->ret != mp->res)
		return md_fail(d, "pop p%d on q%d (qd %d): ret %lld, model %lld (element e%d)",
			       p, mp->q, d->qd[mp->q], (long long)r->ret, mp->res, e);
	if (e < 0)
		return 0;
	if (r->value.sga.numsegs != d->sga[e].numsegs ||
	    r->value.sga.segs[0].buf != d->sga[e].segs[0].buf) {
		int i, who = -1;

		for (i = 0; i < d->m.ne; i++)
			if (d->sga[i].numsegs && d->sga[i].segs[0].buf == r->value.sga.segs[0].buf)
				who = i;
		return md_fail(d, "pop p%d on q%d (qd %d): element e%d (%u segments), model e%d (%u)",
			       p, mp->q, d->qd[mp->q], who, r->value.sga.numsegs, e,
			       d->sga[e].numsegs);
	}
	d->popped++;
	qd_sgafree(&d->sga[e]);
	d->sga[e].numsegs = 0;
	return 0;
}

/* Every pop not yet compared: done ones must be done, the others not. */
static int md_check_outstanding(struct md *d)
{
	struct qd_result r;
	int i, p, ret;

	for (i = 0; i < d->nout; i++) {
		p = d->out[i];
		ret = qd_wait(&r, d->tok[p], &md_zero);
		if (!d->m.p[p].done) {
			if (ret == -ETIMEDOUT)
				continue;
			return md_fail(d, "pop p%d on q%d (qd %d): completed (%d, ret %lld), model: pending",
				       p, d->m.p[p].q, d->qd[d->m.p[p].q], ret,
				       ret ? 0LL : (long long)r.ret);
		}
		if (ret)
			return md_fail(d, "pop p%d on q%d (qd %d): qd_wait %d, model: done with %lld (e%d)",
				       p, d->m.p[p].q, d->qd[d->m.p[p].q], ret,
				       d->m.p[p].res, d->m.p[p].elem);
		if (md_check_pop(d, p, &r))
			return -1;
		md_say(d, "  pop p%d of q%d completed: %lld e%d", p, d->m.p[p].q,
		       d->m.p[p].res, d->m.p[p].elem);
		d->out[i--] = d->out[--d->nout];
	}
	return 0;
}

static int md_push(struct md *d)
{
	unsigned int len, nsegs, i, seglen[QD_SGA_MAX], done = 0;
	unsigned char b[DM_ELEM_BYTES];
	struct qd_result r;
	qd_token_t t;
	long long want;
	int qi, e, ret;

	i = d->mode == MD_FN ? 0 : md_pct(d);
	qi = md_pick(d, 0, i < 70 ? DM_MEMQ : i < 95 ? DM_FILTER : -1);
	if (qi < 0)
		qi = md_pick(d, 0, DM_MEMQ);
	if (qi < 0)
		return 0;
	len = 1 + md_r(d) % 16;
	nsegs = 1 + md_r(d) % (len < 3 ? len : 3);
	for (i = 0; i < len; i++)
		b[i] = md_byte(d);
	for (i = 0; i < nsegs; i++) {
		seglen[i] = i + 1 < nsegs ? 1 + md_r(d) % (len - done - (nsegs - i - 1)) :
					    len - done;
		done += seglen[i];
	}
	e = dm_elem_new(&d->m, b, len, nsegs, seglen);
	if (e < 0)
		return md_fail(d, "model: too many elements");
	d->sga[e].numsegs = nsegs;
	for (i = 0, done = 0; i < nsegs; i++) {
		struct qd_sga one = qd_sgaalloc(seglen[i]);

		if (!one.numsegs)
			return md_fail(d, "qd_sgaalloc(%u): %s", seglen[i], strerror(errno));
		memcpy(one.segs[0].buf, b + done, seglen[i]);
		d->sga[e].segs[i] = one.segs[0];
		done += seglen[i];
	}
	want = dm_push(&d->m, qi, e);
	{
		char hex[3 * DM_ELEM_BYTES + 1];

		for (i = 0; i < len; i++)
			snprintf(hex + 3 * i, 4, "%02x ", b[i]);
		md_say(d, "push e%d (%u B, %u segs: %s) to q%d %s (qd %d): model %lld", e, len,
		       nsegs, hex, qi, md_kind(d->m.q[qi].kind), d->qd[qi], want);
	}
	ret = qd_push(&t, d->qd[qi], &d->sga[e]);
	if (ret)
		return md_fail(d, "qd_push to qd %d: %d", d->qd[qi], ret);
	ret = qd_wait(&r, t, &md_zero);
	if (ret)
		return md_fail(d, "push of e%d to q%d (qd %d) not complete at once: %d",
			       e, qi, d->qd[qi], ret);
	if (r.ret != want)
		return md_fail(d, "push of e%d to q%d (qd %d): %lld, model %lld", e, qi,
			       d->qd[qi], (long long)r.ret, want);
	d->pushes++;
	if (want < 0) {
		d->refused++;
		qd_sgafree(&d->sga[e]);
		d->sga[e].numsegs = 0;
	}
	return 0;
}

static int md_pop(struct md *d)
{
	struct qd_result r;
	int qi, p, ret, pend = 0, i;

	for (i = 0; i < d->nout; i++)
		pend += !d->m.p[d->out[i]].done;
	qi = md_pick(d, 0, -1);
	if (pend >= MD_PENDING) {
		/* only where the model has something (or the answer is -EPIPE) */
		for (i = 0; i < 8 && qi >= 0 && dm_held(&d->m.q[qi]) == 0 &&
			    dm_alive(&d->m.q[qi]); i++)
			qi = md_pick(d, 0, -1);
		if (qi < 0 || (!dm_held(&d->m.q[qi]) && dm_alive(&d->m.q[qi])))
			return 0;
	}
	if (qi < 0)
		return 0;
	p = dm_pop(&d->m, qi);
	if (p < 0)
		return md_fail(d, "model: too many pops");
	md_say(d, "pop p%d of q%d %s (qd %d): model %s %lld e%d", p, qi,
	       md_kind(d->m.q[qi].kind), d->qd[qi], d->m.p[p].done ? "done" : "pending",
	       d->m.p[p].res, d->m.p[p].elem);
	ret = qd_pop(&d->tok[p], d->qd[qi]);
	if (ret)
		return md_fail(d, "qd_pop of qd %d: %d", d->qd[qi], ret);
	d->pops++;
	ret = qd_wait(&r, d->tok[p], &md_zero);
	if (!d->m.p[p].done) {
		if (ret != -ETIMEDOUT)
			return md_fail(d, "pop p%d of q%d (qd %d): done at once (%d, ret %lld), model: waits",
				       p, qi, d->qd[qi], ret, ret ? 0LL : (long long)r.ret);
		d->pending++;
		d->out[d->nout++] = p;
		return 0;
	}
	if (ret)
		return md_fail(d, "pop p%d of q%d (qd %d): qd_wait %d, model: done with %lld (e%d)",
			       p, qi, d->qd[qi], ret, d->m.p[p].res, d->m.p[p].elem);
	return md_check_pop(d, p, &r);
}

static int md_derive(struct md *d)
{
	int kind = DM_FILTER + md_r(d) % 3, src, src2 = -1, want, ret, out = -1;
	struct qd_pred p = { 0 };
	struct qd_key k = { 0 };

	if (md_count(d, -1) >= 14)
		return 0;
	/* now and then one that ended: -EPIPE */
	src = md_pick(d, md_pct(d) >= 10, -1);
	if (src < 0 || d->m.q[src].nder >= DM_MAXDER - 1)
		return 0;
	if (kind == DM_MERGE) {
		src2 = md_pct(d) < 5 ? src : md_pick(d, md_pct(d) >= 10, -1);
		if (src2 < 0 || d->m.q[src2].nder >= DM_MAXDER - 1)
			return 0;
	}
	if (kind == DM_FILTER)
		p = md_pred_make(d);
	if (kind == DM_SORT)
		k = md_key_make(d);
	want = dm_derive(&d->m, kind, src, src2, kind == DM_FILTER ? &p : NULL,
			 kind == DM_SORT ? &k : NULL);
	if (want == -ENOSPC)
		return md_fail(d, "model: too many queues");
	if (kind == DM_FILTER)
		ret = qd_filter(&out, d->qd[src], &p);
	else if (kind == DM_SORT)
		ret = qd_sort(&out, d->qd[src], &k);
	else
		ret = qd_merge(&out, d->qd[src], d->qd[src2]);
	if (kind == DM_FILTER)
		md_say(d, "q%d = filter of q%d: %u terms, [0] off %u w %u %s mask %#llx cmp %u %#llx: %d (qd %d)",
		       want, src, p.nterms, p.terms[0].field.off, p.terms[0].field.width,
		       p.terms[0].field.flags ? "be" : "le",
		       (unsigned long long)p.terms[0].field.mask, p.terms[0].cmp,
		       (unsigned long long)p.terms[0].value, ret, out);
	else if (kind == DM_SORT)
		md_say(d, "q%d = sort of q%d: off %u w %u %s mask %#llx %s: %d (qd %d)", want, src,
		       k.field.off, k.field.width, k.field.flags ? "be" : "le",
		       (unsigned long long)k.field.mask, k.flags ? "desc" : "asc", ret, out);
	else
		md_say(d, "q%d = merge of q%d, q%d: %d (qd %d)", want, src, src2, ret, out);
	if (want < 0) {
		d->refused++;
		if (ret != want)
			return md_fail(d, "derive %s of q%d: %d, model %d", md_kind(kind), src, ret,
				       want);
		return 0;
	}
	if (ret)
		return md_fail(d, "derive %s of q%d (qd %d, level %d): %d", md_kind(kind), src,
			       d->qd[src], d->m.q[want].level, ret);
	d->qd[want] = out;
	d->derives++;
	return 0;
}

/* A derive of a qd nobody has open: -EBADF. */
static int md_derive_bad(struct md *d)
{
	struct qd_pred p = byte_is(0, QD_CMP_EQ, 0);
	int i, bad = 0, out, ret;

	for (i = 0; i < d->m.nq; i++)
		if (d->m.q[i].open && d->qd[i] >= bad)
			bad = d->qd[i] + 1;
	bad += md_r(d) % 4;
	ret = qd_filter(&out, bad, &p);
	md_say(d, "filter of qd %d (not open): %d", bad, ret);
	if (ret != -EBADF)
		return md_fail(d, "filter of qd %d, which is not open: %d", bad, ret);
	return 0;
}

static int md_close(struct md *d)
{
	int qi = md_pct(d) < 15 ? md_pick(d, 0, DM_MEMQ) : md_pick(d, 0, -1), ret;

	if (qi < 0 || (d->m.q[qi].kind == DM_MEMQ && md_count(d, DM_MEMQ) < 2))
		return 0;
	md_say(d, "close q%d %s (qd %d), holding %d, %d pops waiting", qi,
	       md_kind(d->m.q[qi].kind), d->qd[qi], dm_held(&d->m.q[qi]), d->m.q[qi].npend);
	dm_close(&d->m, qi);
	ret = qd_close(d->qd[qi]);
	if (ret)
		return md_fail(d, "qd_close(%d): %d", d->qd[qi], ret);
	d->closes++;
	md_release(d);
	return 0;
}

/* An element's bytes as the model sees them. */
static void md_flatten(const struct qd_sga *sga, struct dm_elem *e)
{
	unsigned int i, n;

	memset(e, 0, sizeof(*e));
	for (i = 0; i < sga->numsegs && i < QD_SGA_MAX; i++) {
		n = sga->segs[i].len;
		if (e->len + n > DM_ELEM_BYTES)
			n = DM_ELEM_BYTES - e->len;
		memcpy(e->b + e->len, sga->segs[i].buf, n);
		e->len += n;
	}
}

static bool md_fn_filter(const struct qd_sga *sga, void *arg)
{
	struct md_fnarg *a = arg;
	struct dm_elem e;

	md_flatten(sga, &e);
	return dm_pred(&a->d->m.q[a->qi].pred, &e);
}

/* The key order without arrival: libqd keeps ties in arrival order. */
static int md_fn_cmp(const struct qd_sga *x, const struct qd_sga *y, void *arg)
{
	struct md_fnarg *a = arg;
	const struct qd_key *k = &a->d->m.q[a->qi].key;
	struct dm_elem ex, ey;

	md_flatten(x, &ex);
	md_flatten(y, &ey);
	ex.seq = ey.seq = 0;
	if (dm_before(k, &ex, &ey))
		return -1;
	return dm_before(k, &ey, &ex) ? 1 : 0;
}

/* MD_FN: a callback filter or sort on a memq or on one of them. */
static int md_derive_fn(struct md *d)
{
	int kind = md_pct(d) < 60 ? DM_FILTER : DM_SORT, src, want, ret, out = -1;
	struct qd_pred p = { 0 };
	struct qd_key k = { 0 };

	src = md_pick(d, 1, -1);
	if (src < 0 || d->m.q[src].nder >= DM_MAXDER - 1 || d->m.q[src].level >= 3)
		return 0;
	if (kind == DM_FILTER)
		p = md_pred_make(d);
	else
		k = md_key_make(d);
	want = dm_derive(&d->m, kind, src, -1, kind == DM_FILTER ? &p : NULL,
			 kind == DM_SORT ? &k : NULL);
	if (want < 0)
		return md_fail(d, "model: derive %d", want);
	d->fnarg[want].d = d;
	d->fnarg[want].qi = want;
	if (kind == DM_FILTER)
		ret = qd_filter_fn(&out, d->qd[src], md_fn_filter, &d->fnarg[want]);
	else
		ret = qd_sort_fn(&out, d->qd[src], md_fn_cmp, &d->fnarg[want]);
	md_say(d, "q%d = %s_fn of q%d: %d (qd %d)", want, md_kind(kind), src, ret, out);
	if (ret)
		return md_fail(d, "qd_%s_fn of q%d (qd %d): %d", md_kind(kind), src,
			       d->qd[src], ret);
	d->qd[want] = out;
	d->derives++;
	return 0;
}

/* qd_cancel() of a waiting pop: it ends -ECANCELED (checked with the rest). */
static int md_cancel(struct md *d)
{
	int i, p = -1, n = 0, ret;

	for (i = 0; i < d->nout; i++)
		if (!d->m.p[d->out[i]].done && !(md_r(d) % ++n))
			p = d->out[i];
	if (p < 0)
		return 0;
	if (!dm_cancel(&d->m, p))
		return md_fail(d, "model: pop p%d is not waiting", p);
	md_say(d, "cancel p%d on q%d", p, d->m.p[p].q);
	ret = qd_cancel(d->tok[p]);
	if (ret)
		return md_fail(d, "qd_cancel of p%d (q%d, qd %d): %d", p, d->m.p[p].q,
			       d->qd[d->m.p[p].q], ret);
	d->cancels++;
	return 0;
}

/* MD_FN: two memqs and their callback queues first, then pushes and pops. */
static int md_step_fn(struct md *d)
{
	unsigned int p = md_pct(d);
	int i;

	if (d->step == 0) {
		for (i = 0; i < 2; i++)
			if (md_new_memq(d))
				return -1;
		for (i = 2 + md_r(d) % 5; i; i--)
			if (md_derive_fn(d))
				return -1;
		return 0;
	}
	if (d->m.held > MD_HELD && p < 50)
		return md_pop(d);
	if (p < 2)
		return md_cancel(d);
	return p < 55 ? md_push(d) : md_pop(d);
}

static int md_step(struct md *d)
{
	unsigned int p = md_pct(d);

	if (d->mode == MD_FN)
		return md_step_fn(d);

	if (md_count(d, DM_MEMQ) < 2 || (p < 3 && md_count(d, DM_MEMQ) < 5))
		return md_new_memq(d);
	if (d->m.held > MD_HELD && p < 50)
		return md_pop(d);
	if (p < 45)
		return md_push(d);
	if (p < 75)
		return md_pop(d);
	if (p < 90)
		return md_derive(d);
	if (p < 91)
		return md_derive_bad(d);
	if (p < 93)
		return md_cancel(d);
	return md_close(d);
}

static void md_dump(struct md *d, FILE *f)
{
	int i = d->nlog > MD_LOG ? d->nlog - MD_LOG : 0, j, k;

	for (; i < d->nlog; i++)
		fprintf(f, "#   %s\n", d->log[i % MD_LOG]);
	fprintf(f, "# model: the open queues (the model's state after the step):\n");
	for (i = 0; i < d->m.nq; i++) {
		const struct dm_queue *q = &d->m.q[i];
		char line[1024];
		int n = 0;

		if (!q->open)
			continue;
		n += snprintf(line + n, sizeof(line) - n, "#   q%d qd %d %s%s level %d", i,
			      d->qd[i], md_kind(q->kind),
			      q->kind == DM_MEMQ ? (d->mapped[i] ? " mapped" : " plain") : "",
			      q->level);
		for (j = 0; j < q->nsrc; j++)
			n += snprintf(line + n, sizeof(line) - n, " src%d q%d%s", j, q->src[j],
				      q->live[j] ? "" : " (gone)");
		if (q->kind == DM_MERGE)
			n += snprintf(line + n, sizeof(line) - n, " next %d", q->next);
		if (q->kind == DM_SORT)
			n += snprintf(line + n, sizeof(line) - n, " key off %u w %u %s mask %#llx %s",
				      q->key.field.off, q->key.field.width,
				      q->key.field.flags ? "be" : "le",
				      (unsigned long long)q->key.field.mask,
				      q->key.flags ? "desc" : "asc");
		if (q->kind == DM_FILTER)
			n += snprintf(line + n, sizeof(line) - n, " pred %u terms, [0] off %u w %u cmp %u %#llx",
				      q->pred.nterms, q->pred.terms[0].field.off,
				      q->pred.terms[0].field.width, q->pred.terms[0].cmp,
				      (unsigned long long)q->pred.terms[0].value);
		for (j = 0; j < 2; j++) {
			if (!q->l[j].n)
				continue;
			n += snprintf(line + n, sizeof(line) - n, " holds%s", j ? "[1]" : "");
			for (k = 0; k < q->l[j].n && n < 900; k++)
				n += snprintf(line + n, sizeof(line) - n, " e%d", q->l[j].e[k]);
		}
		if (q->npend)
			n += snprintf(line + n, sizeof(line) - n, " pops waiting %d", q->npend);
		if (q->nder) {
			n += snprintf(line + n, sizeof(line) - n, " derived:");
			for (k = 0; k < q->nder && n < 1000; k++)
				n += snprintf(line + n, sizeof(line) - n, " q%d", q->der[k]);
		}
		fprintf(f, "%s\n", line);
	}
}

/*
 * One run: steps steps from seed in this process (a fresh libqd context is
 * best: the caller forks). 0, or -1 with d->err and d->step set.
 */
static int md_run(struct md *d, unsigned long long seed, int steps, int mode)
{
	int ret = 0, i;

	memset(d, 0, sizeof(*d));
	d->m.hand_keeps_next = md_hand_keeps_next;
	d->rng = (seed ^ 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
	d->rng ^= d->rng >> 31;
	d->rng |= 1;
	d->mode = mode;
	for (d->step = 0; d->step < steps && !ret; d->step++) {
		if (d->m.nq > DM_MAXQ - 8 || d->m.ne > DM_MAXE - 8 || d->m.np > DM_MAXPOP - 8)
			break;	/* the model is full: the run ends here */
		ret = md_step(d);
		if (!ret && d->m.overflow)
			ret = md_fail(d, "model: a fixed bound was hit");
		if (!ret)
			ret = md_check_outstanding(d);
	}
	if (ret)
		return ret;
	/* the end: close everything, every pop ends */
	for (i = 0; i < d->m.nq && !ret; i++) {
		if (!d->m.q[i].open)
			continue;
		dm_close(&d->m, i);
		md_say(d, "close q%d at the end", i);
		ret = qd_close(d->qd[i]) ? md_fail(d, "qd_close(%d) at the end", d->qd[i]) : 0;
		md_release(d);
		if (!ret)
			ret = md_check_outstanding(d);
	}
	if (!ret && d->nout)
		ret = md_fail(d, "%d pops still pending after every queue closed", d->nout);
	return ret;
}

/* A run in a child process: 0 if it passed, else 1 (its report printed). */
static int md_child_run(unsigned long long seed, int steps, int mode)
{
	struct md *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return 1;
	ret = md_run(d, seed, steps, mode);
	if (ret) {
		printf("# model: seed %#llx mode %d: step %d: %s\n", seed, mode, d->step, d->err);
		printf("# model: the last operations:\n");
		md_dump(d, stdout);
		printf("# model: replay: selftests/derived --seed %#llx --steps %d --mode %d\n",
		       seed, d->step + 1, mode);
	} else {
		printf("# model: seed %#llx mode %d: %d steps: %u pushes (%u refused or failed), "
		       "%u pops (%u waited, %u cancelled), %u derives, %u closes, %u elements popped\n",
		       seed, mode, d->step, d->pushes, d->refused, d->pops, d->pending,
		       d->cancels, d->derives, d->closes, d->popped);
	}
	fflush(stdout);
	free(d);
	return ret ? 1 : 0;
}

/* Fork a run: 0 passed, 1 failed, 2 the child died. */
static int md_fork_run(unsigned long long seed, int steps, int mode)
{
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 2;
	if (!pid)
		_exit(md_child_run(seed, steps, mode));
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		printf("# model: seed %#llx mode %d: the run died (status %#x)\n", seed, mode, st);
		return 2;
	}
	return WEXITSTATUS(st) ? 1 : 0;
}

static unsigned long long md_seed(void)
{
	const char *s = getenv("QD_DERIVED_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return (unsigned long long)qd_now_ns() ^ (unsigned long long)getpid() << 32;
}

FIXTURE(model) {
	int unused;
};

FIXTURE_SETUP(model)
{
}

FIXTURE_TEARDOWN(model)
{
}

/* The short run of the suite: a round in each mode. */
TEST_F_TIMEOUT(model, short_run_matches_the_kernel, 300)
{
	unsigned long long seed = md_seed();
	int mode;

	TH_LOG("seed %#llx (QD_DERIVED_SEED=%#llx reproduces)", seed, seed);
	for (mode = MD_MAPPED; mode <= MD_FN; mode++)
		EXPECT_EQ(0, md_fork_run(seed + mode, 1500, mode));
}

/*
 * Threads push to a memory queue while another makes and closes filters
 * and sorts on it and pops from them; then every derived queue closes
 * (giving back what it holds) and the queue is emptied: each element
 * pushed came out exactly once.
 */
#define CC_PUSHERS	2
#define CC_EACH		400		/* under the queue's depth in all */

struct cc {
	int		q;
	int		stop;
	unsigned char	seen[CC_PUSHERS * CC_EACH];
	int		dup;		/* an element seen twice */
	int		bad;		/* an element that was never pushed */
	int		errors;
	unsigned int	derived, closed, popped;
	pthread_mutex_t	lock;
};

static void cc_take(struct cc *c, struct qd_sga *sga)
{
	unsigned int id = 0;

	if (sga->numsegs == 1 && sga->segs[0].len == 8)
		memcpy(&id, sga->segs[0].buf, sizeof(id));
	pthread_mutex_lock(&c->lock);
	if (sga->numsegs != 1 || sga->segs[0].len != 8 || id >= CC_PUSHERS * CC_EACH)
		c->bad++;
	else if (c->seen[id]++)
		c->dup++;
	pthread_mutex_unlock(&c->lock);
	qd_sgafree(sga);
}

struct cc_pusher {
	struct cc	*c;
	unsigned int	first;
};

static void *cc_push(void *arg)
{
	struct cc_pusher *p = arg;
	struct qd_result r;
	unsigned int i;
	qd_token_t t;

	for (i = 0; i < CC_EACH; i++) {
		struct qd_sga sga = qd_sgaalloc(8);
		unsigned int id = p->first + i;

		if (!sga.numsegs) {
			__atomic_fetch_add(&p->c->errors, 1, __ATOMIC_RELAXED);
			break;
		}
		memcpy(sga.segs[0].buf, &id, sizeof(id));
		memset((char *)sga.segs[0].buf + 4, (int)(id * 7), 4);
		if (qd_push(&t, p->c->q, &sga) || qd_wait(&r, t, NULL) || r.ret != 8)
			__atomic_fetch_add(&p->c->errors, 1, __ATOMIC_RELAXED);
		if (i % 4 == 0)
			sched_yield();	/* let the deriver in between */
	}
	return NULL;
}

/* A pop of qd that takes what is there now: 1 (taken), 0, or -1. */
static int cc_pop_now(struct cc *c, int qd)
{
	static const struct timespec zero = { 0, 0 };
	struct qd_result r;
	qd_token_t t;
	int ret;

	if (qd_pop(&t, qd))
		return -1;
	ret = qd_wait(&r, t, &zero);
	if (ret == -ETIMEDOUT) {
		qd_cancel(t);
		ret = qd_wait(&r, t, NULL);
		if (ret)
			return -1;
		if (r.ret == -ECANCELED)
			return 0;
	} else if (ret) {
		return -1;
	}
	if (r.ret < 0)
		return r.ret == -EPIPE ? 0 : -1;
	cc_take(c, &r.value.sga);
	return 1;
}

static void *cc_derive(void *arg)
{
	struct cc *c = arg;
	unsigned long long rng = 0x2545f4914f6cdd1dULL;
	int d[4] = { -1, -1, -1, -1 }, i, ret, n;

	/* until the pushers are done, and at least 400 steps */
	for (n = 0; n < 400 || !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE); n++) {
		i = xorshift_u(&rng) % 4;
		if (d[i] >= 0 && xorshift_u(&rng) % 2) {
			ret = cc_pop_now(c, d[i]);
			if (ret < 0)
				__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
			c->popped += ret > 0;
			continue;
		}
		if (d[i] >= 0) {
			if (qd_close(d[i]))
				__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
			d[i] = -1;
			c->closed++;
			continue;
		}
		if (xorshift_u(&rng) % 2) {
			struct qd_pred p = byte_is(0, QD_CMP_LT, xorshift_u(&rng) % 256);

			ret = qd_filter(&d[i], c->q, &p);
		} else {
			struct qd_key k = key_of(4, 4, 0, 0, 0);

			ret = qd_sort(&d[i], c->q, &k);
		}
		if (ret) {
			d[i] = -1;
			__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
		}
		c->derived++;
	}
	for (i = 0; i < 4; i++)
		if (d[i] >= 0 && qd_close(d[i]))
			__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
	return NULL;
}

TEST_F_TIMEOUT(model, concurrent_pushes_derives_closes_lose_nothing, 300)
{
	struct cc *c = calloc(1, sizeof(*c));
	struct cc_pusher p[CC_PUSHERS];
	pthread_t tp[CC_PUSHERS], td;
	unsigned int i, left = 0;
	int mode, ret;

	ASSERT_NE(NULL, c);
	for (mode = 0; mode < 2; mode++) {	/* a mapped queue, a plain one */
		memset(c, 0, sizeof(*c));
		pthread_mutex_init(&c->lock, NULL);
		if (mode)
			setenv("QD_MEMQ_KERNEL", "1", 1);
		ASSERT_EQ(0, qd_queue(&c->q));
		unsetenv("QD_MEMQ_KERNEL");
		ASSERT_EQ(0, pthread_create(&td, NULL, cc_derive, c));
		for (i = 0; i < CC_PUSHERS; i++) {
			p[i].c = c;
			p[i].first = i * CC_EACH;
			ASSERT_EQ(0, pthread_create(&tp[i], NULL, cc_push, &p[i]));
		}
		for (i = 0; i < CC_PUSHERS; i++)
			pthread_join(tp[i], NULL);
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
		pthread_join(td, NULL);
		/* everything is back on the queue now: empty it */
		while ((ret = cc_pop_now(c, c->q)) > 0)
			;
		EXPECT_EQ(0, ret);
		for (i = 0, left = 0; i < CC_PUSHERS * CC_EACH; i++)
			left += !c->seen[i];
		TH_LOG("%s queue: %u derived queues made, %u closed, %u elements popped from them",
		       mode ? "plain" : "mapped", c->derived, c->closed, c->popped);
		EXPECT_EQ(0, c->errors);
		EXPECT_EQ(0, c->dup);
		EXPECT_EQ(0, c->bad);
		EXPECT_EQ(0u, left) TH_LOG("%u elements lost", left);
		EXPECT_LT(0u, c->derived);
		EXPECT_EQ(0, qd_close(c->q));
	}
	free(c);
}

/*
 * derived --seed N [--steps M] [--mode K] | --secs S [--seed N]; and
 * --hand-keeps-next (diagnosis: see struct dm).
 */
static int md_main(int argc, char **argv)
{
	unsigned long long seed = md_seed();
	long long end = 0;
	int steps = MD_STEPS, mode = -1, i, rounds = 0, bad = 0;

	for (i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "0";

		if (!strcmp(argv[i], "--hand-keeps-next")) {
			md_hand_keeps_next = 1;
			continue;
		}
		if (!strcmp(argv[i], "--seed"))
			seed = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i], "--steps"))
			steps = atoi(v);
		else if (!strcmp(argv[i], "--mode"))
			mode = atoi(v);
		else if (!strcmp(argv[i], "--secs"))
			end = qd_now_ns() + atoll(v) * 1000000000LL;
		i++;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..1\n");
	printf("# model: seed %#llx\n", seed);
	if (!end) {
		bad = md_fork_run(seed, steps, mode < 0 ? MD_MIXED : mode);
		rounds = 1;
	} else {
		/* rounds with seeds derived from the first, until the time is up */
		unsigned long long s = seed;

		while (qd_now_ns() < end && !bad) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			bad = md_fork_run(s, steps, mode < 0 ? rounds % 4 : mode);
			rounds++;
		}
	}
	printf("%sok 1 derived.model (%d rounds, seed %#llx)\n", bad ? "not " : "", rounds, seed);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--seed") || !strcmp(argv[i], "--secs") ||
		    !strcmp(argv[i], "--steps"))
			return md_main(argc, argv);
	return test_harness_run(argc, argv);
}
