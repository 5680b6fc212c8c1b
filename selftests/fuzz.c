// SPDX-License-Identifier: GPL-2.0
/*
 * Randomised SQEs against the raw ABI: whatever user space puts in an SQE,
 * each consumed SQE yields exactly one CQE with a result from the
 * documented set, the kernel stays healthy (scripts/vm checks dmesg), and
 * everything is released at the end. The seed is printed; QD_FUZZ_SEED and
 * QD_FUZZ_SQES reproduce or lengthen a run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "harness.h"

#define NQ		4
#define NREG		3
#define REG_BYTES	(16 * 4096)
#define MAX_SQES	(1 << 20)

struct fuzz {
	unsigned long long rng;
	struct qd_raw r;
	char *mem[NREG];
	unsigned int region[NREG];
	int qds[NQ];			/* read by the submitter, changed by control */
	unsigned char *seen;		/* CQEs per user_data */
	unsigned int made, reaped;
	struct qd_seg segs[64][QD_SGA_MAX + 2];	/* per SQ slot, alive until consumed */
};

static unsigned long long xorshift(unsigned long long *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static unsigned long long rnd(struct fuzz *f)
{
	return xorshift(&f->rng);
}

static unsigned int pct(struct fuzz *f)
{
	return rnd(f) % 100;
}

static int pick_qd(struct fuzz *f)
{
	unsigned int i = rnd(f) % (NQ + 2);

	if (i == NQ)
		return -1;
	if (i == NQ + 1)
		return 1000 + rnd(f) % 100;
	return __atomic_load_n(&f->qds[i], __ATOMIC_RELAXED);
}

static void random_seg(struct fuzz *f, struct qd_seg *s)
{
	unsigned int r = f->region[rnd(f) % NREG];

	memset(s, 0, sizeof(*s));
	s->region = pct(f) < 85 ? r : rnd(f) % 300;
	switch (rnd(f) % 4) {
	case 0:	s->offset = rnd(f) % REG_BYTES; break;
	case 1:	s->offset = REG_BYTES - 1 - rnd(f) % 64; break;
	case 2:	s->offset = ~0ULL - rnd(f) % 64; break;
	default: s->offset = 0; break;
	}
	s->len = pct(f) < 10 ? 0 : 1 + rnd(f) % (pct(f) < 80 ? 512 : REG_BYTES);
	if (pct(f) < 5)
		s->resv = 1 + rnd(f) % 0xffff;
}

static void random_sqe(struct fuzz *f, struct qd_sqe *s, unsigned int slot)
{
	struct qd_seg *segs = f->segs[slot % 64];
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->opcode = pct(f) < 95 ? rnd(f) % QD_OP_LAST : rnd(f) % 256;
	s->qd = s->opcode == QD_OP_NOP && pct(f) < 90 ? 0 : pick_qd(f);
	s->user_data = f->made;
	if (pct(f) < 5)
		s->flags = 1 + rnd(f) % 255;
	if (pct(f) < 5)
		s->resv[rnd(f) % 5] = rnd(f) | 1;
	if (s->opcode == QD_OP_PUSH || pct(f) < 5) {
		s->nsegs = pct(f) < 90 ? 1 + rnd(f) % QD_SGA_MAX : rnd(f) % 12;
		for (i = 0; i < QD_SGA_MAX + 2; i++)
			random_seg(f, &segs[i]);
		if (pct(f) < 50)	/* half the pushes well formed */
			for (i = 0; i < QD_SGA_MAX + 2; i++)
				segs[i] = qd_seg(f->region[rnd(f) % NREG],
						 rnd(f) % 4096, 1 + rnd(f) % 4096);
		s->addr = (uintptr_t)segs;
		if (pct(f) < 5)
			s->addr = pct(f) < 50 ? 0 : 16;	/* NULL, unmapped */
	}
}

static int result_allowed(const struct qd_cqe *c)
{
	switch (c->res) {
	case -EINVAL: case -EFAULT: case -EBADF: case -ECANCELED:
		return 1;
	}
	if (c->res < 0)
		return 0;
	if (c->opcode == QD_OP_NOP)
		return c->res == 0;
	return c->opcode == QD_OP_PUSH || c->opcode == QD_OP_POP;
}

/* Reap what is in the CQ; returns how many CQEs broke a rule. */
static int reap(struct fuzz *f)
{
	struct qd_cqe c;
	int bad = 0;

	while (qd_raw_peek_cqe(&f->r, &c, NULL)) {
		f->reaped++;
		if (c.user_data >= f->made || f->seen[c.user_data]++ ||
		    !result_allowed(&c)) {
			bad++;
			fprintf(stderr, "# bad cqe: user_data %llu opcode %u res %lld\n",
				(unsigned long long)c.user_data, c.opcode,
				(long long)c.res);
		}
	}
	return bad;
}

static void fuzz_init(struct __test_metadata *_metadata, struct fuzz *f)
{
	const char *seed = getenv("QD_FUZZ_SEED");
	int i;

	f->rng = seed ? strtoull(seed, NULL, 0) : (unsigned long long)time(NULL);
	f->rng |= 1;
	TH_LOG("seed %llu (QD_FUZZ_SEED reproduces)", f->rng);
	ASSERT_EQ(0, qd_raw_init(&f->r, 64, 128));
	for (i = 0; i < NREG; i++) {
		f->mem[i] = qd_raw_pages(REG_BYTES);
		ASSERT_NE(NULL, f->mem[i]);
		ASSERT_EQ(0, qd_raw_register(f->r.fd, f->mem[i], REG_BYTES,
					     &f->region[i]));
	}
	for (i = 0; i < NQ; i++)
		ASSERT_EQ(0, qd_raw_queue(f->r.fd, 1 + rnd(f) % 8, &f->qds[i]));
	f->seen = calloc(MAX_SQES, 1);
	ASSERT_NE(NULL, f->seen);
}

/* Submit n random SQEs, reaping as we go. */
static int fuzz_run(struct __test_metadata *_metadata, struct fuzz *f,
		    unsigned int n, int control)
{
	struct qd_raw *r = &f->r;
	unsigned int i, bad = 0, q;
	int ret;

	while (f->made < n) {
		for (i = 0; i < 16 && f->made < n && qd_raw_sq_pending(r) < r->sq_entries; i++) {
			struct qd_sqe s;

			random_sqe(f, &s, *r->sq_tail);
			if (qd_raw_queue_sqe(r, &s))
				break;
			f->made++;
		}
		ret = qd_raw_submit(r);
		if (ret < 0 && ret != -ENOMEM) {
			TH_LOG("enter: %d", ret);
			return -1;
		}
		bad += reap(f);
		/* now and then a queue is replaced: ends pending pops, unsticks the SQ */
		if (control && pct(f) < 3) {
			q = rnd(f) % NQ;
			qd_raw_close(r->fd, f->qds[q]);
			ASSERT_EQ(0, qd_raw_queue(r->fd, 1 + rnd(f) % 8, &f->qds[q]));
		}
	}
	return bad;
}

/* Close every queue and reap until each SQE made has its CQE. */
static int fuzz_drain(struct fuzz *f)
{
	struct qd_raw *r = &f->r;
	int bad = 0, spins = 0, i;

	for (i = 0; i < NQ; i++)
		qd_raw_close(r->fd, f->qds[i]);
	while (f->reaped < f->made && spins++ < 100000) {
		/* SQEs still queued run now, against closed qds: -EBADF */
		qd_raw_enter(r, qd_raw_sq_pending(r), 0, 0, 0);
		bad += reap(f);
	}
	return bad;
}

static void fuzz_fini(struct __test_metadata *_metadata, struct fuzz *f)
{
	struct qd_proc s;
	int i;

	qd_raw_exit(&f->r);
	for (i = 0; i < NREG; i++)
		munmap(f->mem[i], REG_BYTES);
	free(f->seen);
	/* our context was the only one: everything is released */
	EXPECT_EQ(0, qd_proc_wait_idle(0, 0, 2000, &s));
	EXPECT_EQ(0, s.inflight);
	EXPECT_EQ(0, s.queues);
	EXPECT_EQ(0, s.regions);
}

static unsigned int fuzz_sqes(void)
{
	const char *n = getenv("QD_FUZZ_SQES");
	unsigned long v = n ? strtoul(n, NULL, 0) : 20000;

	return v > MAX_SQES ? MAX_SQES : v;
}

FIXTURE(fuzz) {
	struct fuzz *f;
};

FIXTURE_SETUP(fuzz)
{
	self->f = calloc(1, sizeof(*self->f));
	ASSERT_NE(NULL, self->f);
	fuzz_init(_metadata, self->f);
}

FIXTURE_TEARDOWN(fuzz)
{
	free(self->f);
}

TEST_F(fuzz, random_sqes_each_get_exactly_one_allowed_cqe)
{
	struct fuzz *f = self->f;

	EXPECT_EQ(0, fuzz_run(_metadata, f, fuzz_sqes(), 1));
	EXPECT_EQ(0, fuzz_drain(f));
	EXPECT_EQ(f->made, f->reaped);
	fuzz_fini(_metadata, f);
}

/* Control ioctls race with submission from another thread. */
struct racer {
	struct fuzz *f;
	volatile int stop;
	unsigned int ops;
};

static void *control_thread(void *arg)
{
	struct racer *rc = arg;
	struct fuzz *f = rc->f;
	unsigned long long rng = f->rng * 7 + 1;
	unsigned int id;
	char *mem = qd_raw_pages(4096);
	int qd;

	while (!rc->stop) {
		switch (xorshift(&rng) % 4) {
		case 0:
			if (mem && !qd_raw_register(f->r.fd, mem, 4096, &id))
				qd_raw_unregister(f->r.fd, id);
			break;
		case 1:	/* -EBUSY while elements reference it, else gone */
			if (!qd_raw_unregister(f->r.fd, f->region[rng % NREG]))
				f->region[rng % NREG] = 999;
			break;
		case 2:
			if (!qd_raw_queue(f->r.fd, 1 + rng % 4, &qd)) {
				int i = (rng >> 8) % NQ;
				int old = __atomic_exchange_n(&f->qds[i], qd, __ATOMIC_RELAXED);

				qd_raw_close(f->r.fd, old);
			}
			break;
		default:
			qd_raw_close(f->r.fd, 1000 + rng % 8);	/* -EBADF */
			break;
		}
		rc->ops++;
	}
	if (mem)
		munmap(mem, 4096);
	return NULL;
}

TEST_F(fuzz, control_ioctls_race_with_submission)
{
	struct fuzz *f = self->f;
	struct racer rc = { .f = f };
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, control_thread, &rc));
	EXPECT_EQ(0, fuzz_run(_metadata, f, fuzz_sqes() / 2, 0));
	rc.stop = 1;
	pthread_join(t, NULL);
	TH_LOG("%u control ioctls raced %u SQEs", rc.ops, f->made);
	EXPECT_EQ(0, fuzz_drain(f));
	EXPECT_EQ(f->made, f->reaped);
	fuzz_fini(_metadata, f);
}

TEST_HARNESS_MAIN
