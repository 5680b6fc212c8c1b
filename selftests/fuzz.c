// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzzing the raw ABI. Whatever user space does, each consumed SQE yields
 * exactly one CQE with a result from the documented set, the kernel stays
 * healthy (scripts/vm checks dmesg), and everything is released at the end.
 *
 * Two short tests (random SQEs; control ioctls racing submission) and a
 * brief campaign run in `make check`. The campaign is the long mode:
 * several worker processes, each with several threads and contexts, doing
 * random and mutated SQEs (deferred hardirq/softirq NOPs included), random
 * ioctls with random and mutated arguments, ring index corruption, closes of
 * queues and of the context fd under other threads, region registration
 * racing pushes, forks (the child must get -EPERM), extra mmaps, epoll and
 * debugfs reads, while the master SIGKILLs workers mid-operation, starts new
 * ones and turns the module's limits up and down. Beside them two engines
 * (see "the newer features" below) fuzz what breaks one CQE per SQE: rings
 * per context and the three wait modes, SKIP_SUCCESS, multishot pops,
 * QD_OP_CANCEL, mapped queues (the user-space ring protocol racing kernel
 * SQEs and WAKE, a scribbler, closes and unmaps) and queues shared with
 * forked importers (rights, copies, zero copy, kills), with their own
 * bookkeeping. At the end /proc/qd must be back to zero.
 *
 *   QD_FUZZ_SEED=N      seed (default: the time); every run prints it
 *   QD_FUZZ_SQES=N      SQEs of each short test (default 20000)
 *   QD_FUZZ_SECS=N      run only the campaign, for N seconds (make fuzz)
 *   QD_FUZZ_WORKERS=N   campaign worker processes (default 4)
 *   QD_FUZZ_REPLAY=W.G  run only generation G of worker W of seed N
 *
 * Or: fuzz --secs N [--seed N] [--workers N] [--replay W.G].
 * Each worker generation's seed derives from the master seed, so the same
 * seed replays the same decisions (not the same thread interleaving).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "qd_raw.h"
#include "qd_proc.h"
#include "harness.h"

/* The first opcode the module does not know (QD_OP_LAST is not ABI). */
#define FZ_OP_UNKNOWN	(QD_OP_SYNC + 1)

/*
 * The short tests and the campaign's main threads check one CQE per SQE, so
 * their SQEs leave out what breaks that: SKIP_SUCCESS (no CQE), a multishot
 * pop (many) and QD_OP_CANCEL (ends another SQE), QD_OP_WAKE; the
 * campaign's engines (fe_*, fs_*) fuzz those with their own bookkeeping.
 * What was invalid stays invalid: SKIP_SUCCESS and MULTISHOT become the
 * next bit, CANCEL and WAKE an unknown opcode.
 */
static void sqe_one_cqe_only(struct qd_sqe *s)
{
	if (s->flags & QD_SQE_F_SKIP_SUCCESS)
		s->flags = (s->flags & ~QD_SQE_F_SKIP_SUCCESS) | 2;
	if (s->opcode == QD_OP_CANCEL || s->opcode == QD_OP_WAKE)
		s->opcode = 0x7f;
	if (s->opcode == QD_OP_POP && s->op_flags & QD_POP_MULTISHOT)
		s->op_flags = (s->op_flags & ~QD_POP_MULTISHOT) | 4;
}

#define NQ		4
#define NDQ		8
#define NREG		3
#define REG_BYTES	(16 * 4096)
#define MAX_SQES	(1 << 20)

struct fuzz {
	unsigned long long rng;
	struct qd_raw r;
	char *mem[NREG];
	unsigned int region[NREG];
	int qds[NQ];			/* read by the submitter, changed by control */
	int derive;			/* the derive test: dqs are targets too */
	int dqs[NDQ];			/* its derived queues, -1: none */
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

/* Set one of the SQE's nine reserved 32-bit words (resv0, resv[0..3]). */
static void sqe_set_resv(struct qd_sqe *s, unsigned int word, __u32 v)
{
	memcpy((char *)s + offsetof(struct qd_sqe, resv0) + 4 * (word % 9), &v,
	       sizeof(v));
}

static int pick_qd(struct fuzz *f)
{
	unsigned int i = rnd(f) % (NQ + 2);

	if (f->derive && pct(f) < 40)
		return __atomic_load_n(&f->dqs[rnd(f) % NDQ], __ATOMIC_RELAXED);

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
	s->opcode = pct(f) < 95 ? rnd(f) % FZ_OP_UNKNOWN : rnd(f) % 256;
	s->qd = s->opcode == QD_OP_NOP && pct(f) < 90 ? 0 : pick_qd(f);
	s->user_data = f->made;
	if (pct(f) < 5)
		s->flags = 1 + rnd(f) % 255;
	if (pct(f) < 5)
		sqe_set_resv(s, rnd(f) % 9, rnd(f) | 1);
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
	sqe_one_cqe_only(s);
}

/*
 * A struct qd_derive for QD_IOC_DERIVE (*d, zeroed first): mostly valid
 * (sources from src[0..nsrc), a predicate or key of random fields), else
 * with one rule broken, or random bytes. The kernel must answer a qd,
 * -EINVAL, -EBADF, -EOPNOTSUPP, -EPIPE (a source that ended), or -ENOMEM
 * or -EMFILE, whatever it is.
 */
static void fz_derive_spec(unsigned long long *rng, struct qd_derive *d,
			   const int *src, unsigned int nsrc)
{
	unsigned int i, n, p = xorshift(rng) % 100;
	static const __u8 widths[] = { 1, 2, 4, 8 };

	memset(d, 0, sizeof(*d));
	if (p < 8) {		/* random bytes */
		for (i = 0; i < sizeof(*d); i++)
			((unsigned char *)d)[i] = xorshift(rng);
		if (xorshift(rng) % 2)
			d->kind = 1 + xorshift(rng) % 3;
		return;
	}
	d->kind = QD_DERIVE_FILTER + xorshift(rng) % 3;
	d->src = src[xorshift(rng) % nsrc];
	if (d->kind == QD_DERIVE_MERGE)
		d->src2 = src[xorshift(rng) % nsrc];
	if (d->kind == QD_DERIVE_FILTER) {
		d->pred.nterms = 1 + xorshift(rng) % QD_PRED_MAX_TERMS;
		for (i = 0; i < d->pred.nterms; i++) {
			struct qd_pred_term *t = &d->pred.terms[i];
			__u64 ones;

			t->field.width = widths[xorshift(rng) % 4];
			t->field.off = xorshift(rng) % (xorshift(rng) % 4 ? 64 : QD_FIELD_MAX_END - 7);
			t->field.flags = xorshift(rng) % 2 ? QD_FIELD_BE : 0;
			ones = t->field.width == 8 ? ~0ULL : (1ULL << (8 * t->field.width)) - 1;
			t->field.mask = xorshift(rng) % 3 ? 0 : xorshift(rng) & ones;
			t->cmp = QD_CMP_EQ + xorshift(rng) % 6;
			t->value = xorshift(rng) & (t->field.mask ? t->field.mask : ones) &
				   (xorshift(rng) % 2 ? 0xff : ~0ULL);
		}
	} else if (d->kind == QD_DERIVE_SORT) {
		d->key.field.width = widths[xorshift(rng) % 4];
		d->key.field.off = xorshift(rng) % 64;
		d->key.field.flags = xorshift(rng) % 2 ? QD_FIELD_BE : 0;
		d->key.flags = xorshift(rng) % 2 ? QD_KEY_DESC : 0;
	}
	if (p < 30) {		/* one rule broken, or a bit flipped anywhere */
		n = xorshift(rng) % 6;
		if (n == 0)
			d->kind = xorshift(rng) % 8;
		else if (n == 1)
			d->flags = 1u << xorshift(rng) % 32;
		else if (n == 2)
			d->src2 = src[xorshift(rng) % nsrc];
		else if (n == 3)
			d->pred.terms[xorshift(rng) % QD_PRED_MAX_TERMS].cmp = xorshift(rng) % 9;
		else if (n == 4)
			d->src = xorshift(rng) % 2 ? -1 : 1000 + (int)(xorshift(rng) % 100);
		else
			((unsigned char *)d)[xorshift(rng) % sizeof(*d)] ^= 1 << xorshift(rng) % 8;
	}
}

static int fz_derive_allowed(int ret)
{
	/* -EPIPE: a source that ended; -EMFILE: the qd limit */
	return ret >= 0 || ret == -EINVAL || ret == -EBADF || ret == -EOPNOTSUPP ||
	       ret == -EPIPE || ret == -ENOMEM || ret == -EMFILE;
}

/* The socket test: socket qds may be targets (sock_result_allowed()). */
static int fz_sockets;
/* The derive test: derived queues may be targets. */
static int fz_derived;

/* What an operation on a socket qd may end with (and ACCEPT's new qd). */
static int sock_result_allowed(const struct qd_cqe *c)
{
	switch (c->res) {
	case -EINVAL: case -EFAULT: case -EBADF: case -ECANCELED: case -ENOBUFS:
	case -ENOTSOCK: case -EAFNOSUPPORT: case -ENOTCONN: case -EDESTADDRREQ:
	case -EOPNOTSUPP: case -EISCONN: case -EALREADY: case -ECONNREFUSED:
	case -ECONNRESET: case -EPIPE: case -EMSGSIZE: case -EADDRNOTAVAIL:
	case -ENETUNREACH: case -EHOSTUNREACH: case -EACCES: case -EPERM:
	case -EADDRINUSE: case -ECONNABORTED: case -EMFILE: case -ENOMEM:
	case -ENOSPC: case -ESPIPE:
		return 1;
	}
	return c->res >= 0;
}

static int result_allowed(const struct qd_cqe *c)
{
	if (fz_sockets)
		return sock_result_allowed(c);
	/*
	 * A derived queue: a push to a merge or a sort (or a filter of one)
	 * -EOPNOTSUPP, to a filter whose source is gone -EPIPE; a pop of an
	 * ended one -EPIPE.
	 */
	if (fz_derived && (c->res == -EPIPE || c->res == -EOPNOTSUPP) &&
	    (c->opcode == QD_OP_PUSH || c->opcode == QD_OP_POP))
		return 1;
	switch (c->res) {
	case -EINVAL: case -EFAULT: case -EBADF: case -ECANCELED: case -ENOBUFS:
		return 1;
	/* a socket opcode on a memory queue */
	case -ENOTSOCK:
		return c->opcode >= QD_OP_ACCEPT && c->opcode <= QD_OP_PUSHTO;
	/* a pool pop (QD_POP_POOL) on a memory queue */
	case -EOPNOTSUPP:
		return c->opcode == QD_OP_POP;
	/* a pool full (QD_POOL_MAX_BUFS) */
	case -ENOSPC:
		return c->opcode == QD_OP_PROVIDE;
	/* QD_PUSH_AT/QD_POP_AT on a memory queue */
	case -ESPIPE:
		return c->opcode == QD_OP_PUSH || c->opcode == QD_OP_POP;
	/* an OPEN of a random path (the fuzzer runs in an empty dir) */
	case -ENOENT: case -ENAMETOOLONG: case -EACCES: case -EISDIR:
	case -EEXIST: case -ENOTDIR: case -ELOOP: case -EROFS: case -EMFILE:
	case -ENXIO: case -ENODEV: case -ETXTBSY: case -EPERM:
		return c->opcode == QD_OP_OPEN;
	}
	if (c->res < 0)
		return 0;
	if (c->opcode == QD_OP_NOP)
		return c->res == 0;
	return c->opcode == QD_OP_PUSH || c->opcode == QD_OP_POP ||
	       c->opcode == QD_OP_PROVIDE || c->opcode == QD_OP_OPEN;
}

static void fz_ignore_exit_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
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
	for (i = 0; i < NDQ; i++)
		f->dqs[i] = -1;
	f->seen = calloc(MAX_SQES, 1);
	ASSERT_NE(NULL, f->seen);
}

/*
 * Queue up to 16 random SQEs (of n in all), submit them and reap: the bad
 * CQEs reaped, or -1 if the enter failed.
 */
static int fuzz_step(struct __test_metadata *_metadata, struct fuzz *f,
		     unsigned int n)
{
	struct qd_raw *r = &f->r;
	unsigned int i;
	int ret;

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
	return reap(f);
}

/* Submit n random SQEs, reaping as we go. */
static int fuzz_run(struct __test_metadata *_metadata, struct fuzz *f,
		    unsigned int n, int control)
{
	struct qd_raw *r = &f->r;
	unsigned int bad = 0, q;
	int ret;

	while (f->made < n) {
		ret = fuzz_step(_metadata, f, n);
		if (ret < 0)
			return -1;
		bad += ret;
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
	EXPECT_EQ(0, s.derived);
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

/*
 * Sockets: random ACCEPT, CONNECT, PUSH, PUSHTO and POP SQEs (well formed,
 * mutated, or with bad addresses and lengths) and socket ioctls with random
 * arguments, against a listener, connected and unconnected TCP and UDP
 * sockets on loopback; qds are replaced now and then (pending operations
 * end cancelled). One allowed CQE per SQE, and nothing left afterwards.
 */
#define NSOCK	6

static void fz_sock_open(struct fuzz *f, int *socks, int i, struct sockaddr_in *lst)
{
	static const int kinds[NSOCK][2] = {
		{ AF_INET, SOCK_STREAM }, { AF_INET, SOCK_STREAM },
		{ AF_INET, SOCK_DGRAM }, { AF_INET, SOCK_DGRAM },
		{ AF_INET6, SOCK_STREAM }, { AF_INET6, SOCK_DGRAM },
	};
	struct qd_socket_create c = { .domain = kinds[i][0], .type = kinds[i][1] };
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct qd_sock_name n = { .addr = (uintptr_t)&a, .addr_len = sizeof(a) };
	struct qd_sock_listen l = { .backlog = 16 };

	socks[i] = -1;
	if (qd_raw_ioctl(f->r.fd, QD_IOC_SOCKET, &c))
		return;
	socks[i] = c.qd;
	if (i == 0 || i == 2) {		/* the listener; a bound UDP socket */
		n.qd = l.qd = c.qd;
		qd_raw_ioctl(f->r.fd, QD_IOC_BIND, &n);
		qd_raw_ioctl(f->r.fd, QD_IOC_GETNAME, &n);
		if (i == 0) {
			qd_raw_ioctl(f->r.fd, QD_IOC_LISTEN, &l);
			*lst = a;
		}
	}
}

static void fz_sock_ioctl(struct fuzz *f, const int *socks)
{
	static const unsigned long cmds[] = {
		QD_IOC_SOCKET, QD_IOC_BIND, QD_IOC_LISTEN, QD_IOC_GETNAME,
		QD_IOC_SETSOCKOPT, QD_IOC_GETSOCKOPT,
	};
	static const int opts[][2] = {
		{ SOL_SOCKET, SO_REUSEADDR }, { SOL_SOCKET, SO_RCVBUF },
		{ SOL_SOCKET, SO_SNDBUF }, { SOL_SOCKET, SO_ERROR },
		{ IPPROTO_TCP, TCP_NODELAY }, { IPPROTO_TCP, TCP_MAXSEG },
		{ IPPROTO_IPV6, IPV6_V6ONLY }, { SOL_SOCKET, 99 }, { 77, 1 },
	};
	unsigned long cmd = cmds[rnd(f) % 6];
	unsigned char buf[64] __attribute__((aligned(8))) = { 0 };
	unsigned char sa[160] __attribute__((aligned(8)));
	/* optlen goes up to 299: GETSOCKOPT may fill that much of val */
	int val[80] = { (int)rnd(f) }, i;
	struct qd_sock_name *n = (void *)buf;
	struct qd_sockopt *o = (void *)buf;
	struct qd_socket_create *c = (void *)buf;

	for (i = 0; i < (int)sizeof(sa); i++)
		sa[i] = pct(f) < 70 ? 0 : rnd(f);
	((struct sockaddr_in *)sa)->sin_family = pct(f) < 80 ? AF_INET : rnd(f);
	((struct sockaddr_in *)sa)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (cmd == QD_IOC_SOCKET) {
		c->domain = pct(f) < 80 ? AF_INET : rnd(f) % 48;
		c->type = pct(f) < 80 ? 1 + rnd(f) % 2 : rnd(f);
		c->protocol = pct(f) < 80 ? 0 : rnd(f) % 140;
	} else if (cmd == QD_IOC_SETSOCKOPT || cmd == QD_IOC_GETSOCKOPT) {
		o->qd = socks[rnd(f) % NSOCK];
		o->level = opts[rnd(f) % 9][0];
		o->optname = opts[rnd(f) % 9][1];
		o->optval = pct(f) < 90 ? (uintptr_t)val : rnd(f) % 64;
		o->optlen = pct(f) < 80 ? sizeof(val[0]) : rnd(f) % 300;
	} else {
		n->qd = socks[rnd(f) % NSOCK];
		n->addr = pct(f) < 90 ? (uintptr_t)sa : rnd(f) % 64;
		n->addr_len = pct(f) < 70 ? 16 : rnd(f) % 200;
		if (cmd == QD_IOC_LISTEN)
			((struct qd_sock_listen *)buf)->backlog = (int)rnd(f);
	}
	if (pct(f) < 10)
		buf[rnd(f) % 40] ^= 1 << rnd(f) % 8;
	if (!qd_raw_ioctl(f->r.fd, cmd, buf) && cmd == QD_IOC_SOCKET)
		qd_raw_close(f->r.fd, c->qd);	/* a qd left over would be harmless */
}

static void fz_sock_sqe(struct fuzz *f, const int *socks,
			const struct sockaddr_in *lst, struct qd_sqe *s,
			unsigned int slot)
{
	static const __u8 ops[] = { QD_OP_ACCEPT, QD_OP_CONNECT, QD_OP_PUSH,
				    QD_OP_PUSHTO, QD_OP_POP, QD_OP_PROVIDE };
	static struct sockaddr_in6 addrs[64];
	struct qd_seg *segs = f->segs[slot % 64];
	struct sockaddr_in6 *a = &addrs[slot % 64];
	unsigned int i;

	memset(s, 0, sizeof(*s));
	memset(a, 0, sizeof(*a));
	s->opcode = ops[rnd(f) % 6];
	s->qd = pct(f) < 95 ? socks[rnd(f) % NSOCK] : pick_qd(f);
	/* buffers for pool pops (QD_POP_POOL, op_flags below) */
	if (s->opcode == QD_OP_PROVIDE && pct(f) < 95)
		s->qd = 0;
	s->user_data = f->made;
	if (pct(f) < 70)
		memcpy(a, lst, sizeof(*lst));	/* the listener */
	else
		for (i = 0; i < sizeof(*a); i++)
			((unsigned char *)a)[i] = pct(f) < 50 ? 0 : rnd(f);
	if (pct(f) < 10)
		a->sin6_family = AF_INET6;
	if (s->opcode == QD_OP_CONNECT || s->opcode == QD_OP_PUSHTO) {
		s->addr2 = pct(f) < 95 ? (uintptr_t)a : rnd(f) % 64;
		s->addr_len = pct(f) < 80 ? 16 : rnd(f) % 200;
	}
	if (s->opcode == QD_OP_PUSH || s->opcode == QD_OP_PUSHTO ||
	    s->opcode == QD_OP_PROVIDE ||
	    (s->opcode == QD_OP_POP && pct(f) < 90)) {
		s->nsegs = 1 + rnd(f) % QD_SGA_MAX;
		for (i = 0; i < QD_SGA_MAX; i++)
			segs[i] = qd_seg(f->region[rnd(f) % NREG],
					 rnd(f) % 4096, 1 + rnd(f) % 4096);
		if (pct(f) < 10)
			random_seg(f, &segs[rnd(f) % QD_SGA_MAX]);
		s->addr = (uintptr_t)segs;
	}
	if (s->opcode == QD_OP_POP && pct(f) < 25) {
		/* a pool pop: takes what the PROVIDEs above gave */
		s->op_flags = QD_POP_POOL;
		s->addr = 0;
		s->nsegs = rnd(f) % (QD_SGA_MAX + 1);
	}
	if (pct(f) < 5)
		sqe_set_resv(s, rnd(f) % 9, rnd(f) | 1);
	if (pct(f) < 3)
		s->op_flags = 1 << rnd(f) % 4;
	sqe_one_cqe_only(s);
}

/* Slow on the debug kernel (KASAN, lockdep under TCG): a longer timeout. */
TEST_F_TIMEOUT(fuzz, random_socket_sqes_and_ioctls, 300)
{
	struct fuzz *f = self->f;
	struct qd_raw *r = &f->r;
	unsigned int n = fuzz_sqes() / 4, i, bad = 0;
	struct sockaddr_in lst = { .sin_family = AF_INET };
	int socks[NSOCK], q;

	fz_ignore_exit_sigpipe();
	fz_sockets = 1;
	{
		struct ifreq ifr = { .ifr_name = "lo" };
		int fd = socket(AF_INET, SOCK_DGRAM, 0);

		if (fd >= 0 && !ioctl(fd, SIOCGIFFLAGS, &ifr)) {
			ifr.ifr_flags |= IFF_UP;
			ioctl(fd, SIOCSIFFLAGS, &ifr);
		}
		if (fd >= 0)
			close(fd);
	}
	for (i = 0; i < NSOCK; i++)
		fz_sock_open(f, socks, i, &lst);
	ASSERT_LE(0, socks[0]);
	while (f->made < n) {
		for (i = 0; i < 16 && f->made < n && qd_raw_sq_pending(r) < r->sq_entries; i++) {
			struct qd_sqe s;

			if (pct(f) < 15) {
				fz_sock_ioctl(f, socks);
				continue;
			}
			fz_sock_sqe(f, socks, &lst, &s, *r->sq_tail);
			if (qd_raw_queue_sqe(r, &s))
				break;
			f->made++;
		}
		q = qd_raw_submit(r);
		if (q < 0 && q != -ENOMEM) {
			TH_LOG("enter: %d", q);
			break;
		}
		bad += reap(f);
		if (pct(f) < 4) {	/* replace one: its pending ops end */
			q = rnd(f) % NSOCK;
			qd_raw_close(r->fd, socks[q]);
			fz_sock_open(f, socks, q, &lst);
		}
	}
	/* every qd of the context: the sockets, the accepted ones */
	for (q = 0; q < 4096; q++)
		qd_raw_close(r->fd, q);
	for (i = 0; f->reaped < f->made && i < 100000; i++) {
		qd_raw_enter(r, qd_raw_sq_pending(r), 0, 0, 0);
		bad += reap(f);
	}
	EXPECT_EQ(0u, bad);
	EXPECT_EQ(f->made, f->reaped);
	TH_LOG("%u socket SQEs, %u CQEs", f->made, f->reaped);
	fuzz_fini(_metadata, f);
	for (i = 0; i < 200 && qd_kv(QD_PROC_PATH, "sockets"); i++)
		usleep(10000);
	EXPECT_EQ(0, qd_kv(QD_PROC_PATH, "sockets"));
}

/*
 * Derived queues: random QD_IOC_DERIVE specifications (valid, one rule
 * broken, random bytes; on memory queues, derived queues, sockets and bad
 * qds) each get a qd or -EINVAL/-EBADF/-EOPNOTSUPP/-EPIPE; random SQEs then go to
 * the memory queues and the derived queues alike (a push to a merge or a
 * sort -EOPNOTSUPP, -EPIPE once sources are gone), which are closed and
 * made again under them; one CQE per SQE, everything released at the end.
 */
TEST_F(fuzz, random_derive_specs_and_derived_queue_sqes)
{
	struct fuzz *f = self->f;
	struct qd_raw *r = &f->r;
	unsigned int n = fuzz_sqes() / 2, i, bad = 0, derives = 0, made = 0;
	struct qd_socket_create sc = { .domain = AF_INET, .type = SOCK_DGRAM };
	int src[NQ + NDQ + 3], ret, sock;

	ASSERT_TRUE(!!(r->p.features & QD_FEAT_DERIVED));
	ASSERT_EQ(0, qd_raw_ioctl(r->fd, QD_IOC_SOCKET, &sc));
	sock = sc.qd;
	fz_derived = 1;
	f->derive = 1;
	while (f->made < n) {
		ret = fuzz_step(_metadata, f, n);
		if (ret < 0) {
			bad++;
			break;
		}
		bad += ret;
		/* derive: on any of the queues, a socket, or a bad qd */
		for (i = 0; i < 2; i++) {
			struct qd_derive d;
			unsigned int k = 0, j;

			for (j = 0; j < NQ; j++)
				src[k++] = f->qds[j];
			for (j = 0; j < NDQ; j++)
				src[k++] = f->dqs[j];
			src[k++] = sock;
			src[k++] = -1;
			src[k++] = 999;
			fz_derive_spec(&f->rng, &d, src, k);
			ret = qd_raw_ioctl(r->fd, QD_IOC_DERIVE, &d);
			derives++;
			if (!fz_derive_allowed(ret)) {
				TH_LOG("QD_IOC_DERIVE kind %u src %d src2 %d: %d", d.kind,
				       d.src, d.src2, ret);
				bad++;
			}
			if (ret >= 0) {
				j = rnd(f) % NDQ;
				made++;
				if (f->dqs[j] >= 0)
					qd_raw_close(r->fd, f->dqs[j]);
				f->dqs[j] = d.qd;
			}
		}
		/* a memory queue or a derived queue closed now and then */
		if (pct(f) < 3) {
			unsigned int q = rnd(f) % NQ;

			qd_raw_close(r->fd, f->qds[q]);
			ASSERT_EQ(0, qd_raw_queue(r->fd, 1 + rnd(f) % 8, &f->qds[q]));
		} else if (pct(f) < 5) {
			unsigned int q = rnd(f) % NDQ;

			qd_raw_close(r->fd, f->dqs[q]);
			f->dqs[q] = -1;
		}
	}
	TH_LOG("%u derives, %u derived queues made, %u SQEs", derives, made, f->made);
	EXPECT_EQ(0u, bad);
	EXPECT_LT(0u, made);
	for (i = 0; i < NDQ; i++)
		qd_raw_close(r->fd, f->dqs[i]);
	qd_raw_close(r->fd, sock);
	EXPECT_EQ(0, fuzz_drain(f));
	EXPECT_EQ(f->made, f->reaped);
	fz_derived = 0;
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

/* ====================================================================== */
/* The campaign.                                                          */
/* ====================================================================== */

#define FZ_MAX_WORKERS	16
#define FZ_NCTX		3		/* contexts per worker (its main thread's) */
#define FZ_NQ		4		/* queues per context */
#define FZ_NREG		4		/* regions per context */
#define FZ_MAXREC	(1U << 18)	/* SQEs per context before it is replaced */
#define FZ_PG		4096UL
#define FZ_NS		1000000000LL
#define FZ_MS		1000000LL

/* Shared by every process of the campaign; updated with atomics. */
struct fz_counters {
	unsigned long long made;	/* SQEs written into SQs */
	unsigned long long sqes;	/* SQEs consumed by QD_IOC_ENTER */
	unsigned long long mutated;	/* SQEs made random or mutated */
	unsigned long long deferred;	/* deferred (hardirq/softirq) NOPs */
	unsigned long long cqes;	/* CQEs checked (intact rings) */
	unsigned long long ioctls;	/* ioctls on /dev/qd fds, ENTER included */
	unsigned long long random_ioctls;	/* of which random cmd/arg */
	unsigned long long mmaps;
	unsigned long long contexts;
	unsigned long long regions;
	unsigned long long corruptions;
	unsigned long long fd_closes;
	unsigned long long forks;
	unsigned long long stalls;
	unsigned long long drains;
	unsigned long long workers;
	unsigned long long kills;
	unsigned long long param_writes;
	unsigned long long violations;
	/* the engines */
	unsigned long long rounds;	/* engine rounds (each ends in a drain) */
	unsigned long long rings;	/* QD_IOC_RING */
	unsigned long long skips;	/* SKIP_SUCCESS SQEs */
	unsigned long long multishots;
	unsigned long long cancels;
	unsigned long long wakes;
	unsigned long long mq_user;	/* pushes and pops through a mapped ring */
	unsigned long long scribbles;	/* garbage written into a mapped ring */
	unsigned long long importers;	/* forked importer processes */
	unsigned long long imports;
	unsigned long long importer_kills;
	unsigned long long copies;	/* pops served by a copy (QD_CQE_F_COPIED) */
	unsigned long long shared_mapped;	/* share rounds on a shared mapped queue */
	unsigned long long binds;	/* QD_IOC_QUEUE_BIND (bind or lookup) */
	unsigned long long derived;	/* derived queues made */
};

static struct fz_counters *fz_cnt;
static char fz_who[96] = "master";
static __thread const char *fz_doing = "starting";	/* for fz_crash() */
static int fz_new_module;		/* QD_FEAT_NOP_IRQ: the hardened module */

#define FZ_ADD(field, n) \
	__atomic_fetch_add(&fz_cnt->field, (unsigned long long)(n), __ATOMIC_RELAXED)

static long long fz_now(void)
{
	return qd_now_ns();
}

/* One line on stdout in one write, so processes do not interleave. */
static void __attribute__((format(printf, 1, 2))) fz_say(const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDOUT_FILENO, buf, n) < 0)
		return;
}

/* A broken rule: counted, the first 40 printed with who broke it. */
static void __attribute__((format(printf, 1, 2))) fz_violation(const char *fmt, ...)
{
	char msg[480];
	va_list ap;

	if (FZ_ADD(violations, 1) >= 40)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fz_say("# VIOLATION %s: %s", fz_who, msg);
}

static unsigned long long fz_mix(unsigned long long x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The seed of generation g of worker w (never 0: xorshift state). */
static unsigned long long fz_seed(unsigned long long master, unsigned int w,
				  unsigned int g)
{
	return fz_mix(fz_mix(master) ^ ((unsigned long long)w << 32 | g)) | 1;
}

static unsigned long long fz_r(unsigned long long *rng)
{
	return xorshift(rng);
}

static unsigned int fz_pct(unsigned long long *rng)
{
	return fz_r(rng) % 100;
}

/* ioctl as 0/count or -errno, counted. */
static int fz_ioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	FZ_ADD(ioctls, 1);
	ret = ioctl(fd, req, arg);
	return ret < 0 ? -errno : ret;
}

static int fz_enter(int fd, unsigned int to_submit, unsigned int min,
		    unsigned int flags, long long timeout_ns)
{
	struct qd_enter e = {
		.to_submit = to_submit, .min_complete = min,
		.flags = flags, .timeout_ns = timeout_ns,
	};
	int ret = fz_ioctl(fd, QD_IOC_ENTER, &e);

	if (ret > 0)
		FZ_ADD(sqes, ret);
	return ret;
}

/* ---------------------------------------------------------------- worker */

struct fz_rec {			/* one per SQE made, indexed by user_data */
	unsigned char	op;
	unsigned char	seen;
	unsigned char	expect;	/* FZ_EXP_* */
	unsigned char	pad;
	int		qd;
	unsigned int	bytes;	/* FZ_EXP_PUSH: the element's bytes */
};

enum {
	FZ_EXP_ANY,		/* random or mutated: any allowed result */
	FZ_EXP_NOP,		/* a well-formed NOP: 0 */
	FZ_EXP_DEFERRED,	/* a well-formed deferred NOP: 0 (hardened module) */
	FZ_EXP_PUSH,		/* well formed: bytes, or the queue/region went */
	FZ_EXP_POP,		/* well formed: an element, or the queue went */
};

struct fz_ctx {
	/* The main thread's. */
	struct qd_raw	r;
	struct qd_seg	(*segs)[QD_SGA_MAX + 2];	/* per SQ slot */
	struct fz_rec	*rec;
	unsigned int	made, reaped, head0;
	unsigned long long gen;
	int		tainted;	/* rings corrupted: no accounting */
	int		sqpoll;		/* QD_SETUP_SQPOLL: a poller consumes the SQ */
	char		*mem[FZ_NREG];
	size_t		memlen[FZ_NREG];
	/* Shared with the other threads. */
	pthread_mutex_t	lock;		/* live, fd, fd_closed */
	int		live;
	int		fd;
	int		fd_closed;	/* fd is /dev/null now: the context's was closed */
	int		qds[FZ_NQ];
	unsigned long long regs[FZ_NREG];	/* id | pages << 16, 0: none */
	int		derived;	/* QD_IOC_DERIVE tried: its results allowed */
};

struct fz_worker {
	unsigned int	w, g;
	unsigned long long seed;
	int		killmode;	/* the master SIGKILLs it at deadline */
	int		stall;		/* killmode: a thread blocks on userfaultfd */
	long long	deadline;
	int		stop;
	struct fz_ctx	ctx[FZ_NCTX];
	unsigned long long ctx_gen;
	int		maxqd;
	char		*guard;		/* a page, then a PROT_NONE page */
	/*
	 * A page no access may reach (PROT_NONE, kept mapped: an address
	 * merely unmapped would be reused by the next mmap, a ring maybe, and
	 * QD_IOC_QUEUE would write its qd there).
	 */
	char		*hole;
	const char	*exe;		/* a regular file to map */
	int		epfd;
	int		nullfd;
};

static dev_t fz_qd_rdev;

/*
 * A worker killed by a signal other than the master's SIGKILL is a broken
 * rule: say where (address, mapping) and doing what, then die of it.
 */
static void fz_crash(int sig, siginfo_t *si, void *uc)
{
	char maps[8192], msg[700], *line, *save;
	unsigned long addr = (unsigned long)si->si_addr, lo, hi;
	const char *where = "";
	ssize_t n;
	int fd;

	(void)uc;
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, maps, sizeof(maps) - 1);
	maps[n > 0 ? n : 0] = 0;
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi)
			where = line;
	snprintf(msg, sizeof(msg), "# VIOLATION %s: signal %d at %#lx (%s) while %s\n",
		 fz_who, sig, addr, *where ? where : "no mapping", fz_doing);
	if (write(STDOUT_FILENO, msg, strlen(msg)) < 0)
		_exit(128 + sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Is fd an open of /dev/qd? */
static int fz_is_qd(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISCHR(st.st_mode) && st.st_rdev == fz_qd_rdev;
}

static int fz_stopped(struct fz_worker *w)
{
	return __atomic_load_n(&w->stop, __ATOMIC_RELAXED);
}

/*
 * Another thread's reference to c's file (a dup), or -1. Threads other than
 * the main one never use c->fd itself: a number closed meanwhile could be
 * reused by any open, and their ioctls would hit someone else's context.
 */
static int fz_ctx_dup(struct fz_ctx *c)
{
	int fd = -1;

	pthread_mutex_lock(&c->lock);
	if (c->live)
		fd = dup(c->fd);
	pthread_mutex_unlock(&c->lock);
	return fd;
}

static void fz_note_qd(struct fz_worker *w, int qd)
{
	int m = __atomic_load_n(&w->maxqd, __ATOMIC_RELAXED);

	while (qd > m && qd < 1 << 20 &&
	       !__atomic_compare_exchange_n(&w->maxqd, &m, qd, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* Memory for a region: private anonymous or shmem (memfd), or NULL. */
static char *fz_region_mem(unsigned long long *rng, size_t len)
{
	char *m;
	int fd;

	if (fz_pct(rng) < 60)
		return qd_raw_pages(len);
	fd = memfd_create("qd-fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, len)) {
		close(fd);
		return NULL;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static int fz_register(int fd, void *addr, size_t len, unsigned int *id)
{
	struct qd_region_reg reg = { .addr = (__u64)(uintptr_t)addr, .len = len };
	int ret = fz_ioctl(fd, QD_IOC_REGISTER, &reg);

	if (!ret) {
		FZ_ADD(regions, 1);
		if (reg.id >= QD_MAX_REGIONS)
			fz_violation("QD_IOC_REGISTER returned region id %u", reg.id);
		*id = reg.id;
	}
	return ret;
}

static int fz_queue(struct fz_worker *w, int fd, unsigned int depth, int *qd)
{
	struct qd_queue_create q = { .depth = depth };
	int ret = fz_ioctl(fd, QD_IOC_QUEUE, &q);

	if (!ret) {
		if (q.qd < 0)
			fz_violation("QD_IOC_QUEUE returned qd %d", q.qd);
		fz_note_qd(w, q.qd);
		*qd = q.qd;
	}
	return ret;
}

static int fz_close_qd(int fd, int qd)
{
	__s32 v = qd;

	return fz_ioctl(fd, QD_IOC_CLOSE, &v);
}

static void fz_ctx_open(struct fz_worker *w, unsigned long long *rng, struct fz_ctx *c)
{
	struct qd_params p;
	unsigned int i, n, id;
	int fd, ret, qd;

	fd = open(QD_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		/* EMFILE: the master lowered max_user_contexts */
		if (errno != EMFILE && errno != ENFILE && errno != ENOMEM)
			fz_violation("open %s: %s", QD_DEVICE_PATH, strerror(errno));
		qd_sleep_ms(1);
		return;
	}
	memset(&p, 0, sizeof(p));
	p.sq_entries = 1U << fz_r(rng) % 9;
	p.cq_entries = fz_pct(rng) < 30 ? 0 : p.sq_entries << fz_r(rng) % 3;
	if (fz_pct(rng) < 15) {
		/* a poller that falls asleep often (or, rarely, never does) */
		p.flags = QD_SETUP_SQPOLL;
		p.sq_idle_ms = fz_pct(rng) < 90 ? 1 + fz_r(rng) % 20 : QD_SQPOLL_MAX_IDLE_MS;
	}
	ret = fz_ioctl(fd, QD_IOC_SETUP, &p);
	if (ret) {
		if (ret != -ENOMEM)
			fz_violation("QD_IOC_SETUP sq %u cq %u flags %#x: %d", p.sq_entries,
				     p.cq_entries, p.flags, ret);
		close(fd);
		return;
	}
	memset(&c->r, 0, sizeof(c->r));
	c->r.fd = fd;
	c->r.p = p;
	ret = qd_raw_map(&c->r);
	FZ_ADD(mmaps, 2);
	if (ret) {
		fz_violation("mmap of the rings: %d", ret);
		close(fd);
		return;
	}
	c->segs = calloc(c->r.sq_entries, sizeof(*c->segs));
	c->rec = mmap(NULL, FZ_MAXREC * sizeof(*c->rec), PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!c->segs || c->rec == MAP_FAILED) {
		fz_violation("out of memory in the fuzzer");
		exit(3);
	}
	c->gen = ++w->ctx_gen;
	c->made = c->reaped = 0;
	c->head0 = qd_load_acquire(c->r.sq_head);
	c->tainted = 0;
	c->derived = 0;
	c->sqpoll = !!(p.flags & QD_SETUP_SQPOLL);
	n = 1 + fz_r(rng) % FZ_NREG;
	for (i = 0; i < FZ_NREG; i++) {
		size_t pages = 1 + fz_r(rng) % 16;

		__atomic_store_n(&c->regs[i], 0, __ATOMIC_RELAXED);
		c->mem[i] = NULL;
		if (i >= n)
			continue;
		c->memlen[i] = pages * FZ_PG;
		c->mem[i] = fz_region_mem(rng, c->memlen[i]);
		if (!c->mem[i])
			continue;
		ret = fz_register(fd, c->mem[i], c->memlen[i], &id);
		if (!ret)
			__atomic_store_n(&c->regs[i], id | pages << 16, __ATOMIC_RELAXED);
		else if (ret != -ENOMEM && ret != -ENOSPC)
			fz_violation("QD_IOC_REGISTER of %zu pages: %d", pages, ret);
	}
	for (i = 0; i < FZ_NQ; i++) {
		ret = fz_queue(w, fd, fz_pct(rng) < 20 ? 0 : 1 + fz_r(rng) % 16, &qd);
		__atomic_store_n(&c->qds[i], ret ? -1 : qd, __ATOMIC_RELAXED);
		if (ret && ret != -ENOMEM && ret != -EMFILE)
			fz_violation("QD_IOC_QUEUE: %d", ret);
	}
	pthread_mutex_lock(&c->lock);
	c->fd_closed = 0;
	c->fd = fd;
	__atomic_store_n(&c->live, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->lock);
	FZ_ADD(contexts, 1);
}

/* A queue of c, or a bad qd now and then. */
static int fz_pick_qd(struct fz_worker *w, unsigned long long *rng, struct fz_ctx *c)
{
	unsigned int p = fz_pct(rng);

	if (p < 90)
		return __atomic_load_n(&c->qds[fz_r(rng) % FZ_NQ], __ATOMIC_RELAXED);
	if (p < 94)
		return fz_r(rng) % (__atomic_load_n(&w->maxqd, __ATOMIC_RELAXED) + 2);
	if (p < 97)
		return -1 - (int)(fz_r(rng) % 3);
	return 1000 + fz_r(rng) % 100;
}

/* A well-formed segment in one of c's regions, 0 if it has none. */
static int fz_good_seg(unsigned long long *rng, struct fz_ctx *c, struct qd_seg *s)
{
	unsigned long long v = __atomic_load_n(&c->regs[fz_r(rng) % FZ_NREG],
					       __ATOMIC_RELAXED);
	unsigned long long bytes = (v >> 16) * FZ_PG;
	unsigned int len;

	if (!v)
		return 0;
	len = 1 + fz_r(rng) % (fz_pct(rng) < 80 ? 512 : 4096);
	*s = qd_seg(v & 0xffff, fz_r(rng) % (bytes - len + 1), len);
	return 1;
}

static const __u64 fz_addrs[] = {
	0, 16, 4095, ~0ULL, ~0ULL - 63, 0xffff888000000000ULL,
	0xffffffff81000000ULL, 0x00007ffffffff000ULL, 0x8000000000000000ULL,
};

/* Mutate a valid SQE: a few fields or bits, never user_data. */
static void fz_mutate(struct fz_worker *w, unsigned long long *rng,
		      struct qd_sqe *s, struct qd_seg *segs)
{
	static const __u8 ops[] = { 0, 1, 2, 3, 4, 0x7f, 0x80, 0xff };
	static const __u16 nsegs[] = { 0, 1, QD_SGA_MAX, QD_SGA_MAX + 1, 0xffff };
	unsigned char *b = (unsigned char *)s;
	unsigned int n = 1 + fz_r(rng) % 3, i;

	while (n--) {
		switch (fz_r(rng) % 12) {
		case 0:	/* a bit anywhere but user_data (bytes 8..15) */
			i = fz_r(rng) % 56;
			b[i < 8 ? i : i + 8] ^= 1 << fz_r(rng) % 8;
			break;
		case 1:
			s->opcode = ops[fz_r(rng) % sizeof(ops)];
			break;
		case 2:
			s->flags = 1 << fz_r(rng) % 8;
			break;
		case 3:
			s->nsegs = nsegs[fz_r(rng) % 5];
			break;
		case 4:
			s->qd = fz_pct(rng) < 50 ? (int)fz_r(rng) :
				fz_pick_qd(w, rng, &w->ctx[fz_r(rng) % FZ_NCTX]);
			break;
		case 5:
			switch (fz_r(rng) % 4) {
			case 0: s->addr = fz_addrs[fz_r(rng) % 9]; break;
			case 1: s->addr = (uintptr_t)(w->guard + FZ_PG - 8 * (1 + fz_r(rng) % 24)); break;
			case 2: s->addr = (uintptr_t)w->hole + fz_r(rng) % FZ_PG; break;
			default: s->addr = (uintptr_t)segs + 1 + fz_r(rng) % 15; break;
			}
			break;
		case 6:
			s->nop_flags = fz_pct(rng) < 50 ? QD_NOP_HARDIRQ | QD_NOP_SOFTIRQ :
				       1U << fz_r(rng) % 32;
			break;
		case 7:
			s->delay_ns = fz_pct(rng) < 50 ? QD_NOP_MAX_DELAY_NS + fz_r(rng) % 2 :
				      fz_r(rng);
			break;
		case 8:
		case 9:
			sqe_set_resv(s, fz_r(rng) % 9, 1U << fz_r(rng) % 32);
			break;
		case 10: {	/* a segment's field */
			struct qd_seg *g = &segs[fz_r(rng) % QD_SGA_MAX];

			switch (fz_r(rng) % 5) {
			case 0: g->region = fz_r(rng); break;
			case 1: g->offset = fz_pct(rng) < 50 ? ~0ULL - fz_r(rng) % 4096 : fz_r(rng); break;
			case 2: g->len = fz_pct(rng) < 50 ? 0 : (__u32)fz_r(rng); break;
			case 3: g->resv = 1 + fz_r(rng) % 0xffff; break;
			default: g->len = QD_MAX_REGION_BYTES - 1; break;
			}
			break;
		}
		default:	/* another opcode's fields */
			s->opcode = fz_r(rng) % FZ_OP_UNKNOWN;
			break;
		}
	}
}

/*
 * Build the SQE for SQ slot `slot` of c into s and its record. Half are
 * well formed (NOPs, deferred NOPs, pushes, pops), the rest random bytes or
 * well-formed ones mutated.
 */
static void fz_make_sqe(struct fz_worker *w, unsigned long long *rng,
			struct fz_ctx *c, unsigned int slot, struct qd_sqe *s,
			struct fz_rec *rec)
{
	struct qd_seg *segs = c->segs[slot & c->r.sq_mask];
	unsigned int p = fz_pct(rng), kind, i, bytes = 0;

	memset(s, 0, sizeof(*s));
	memset(rec, 0, sizeof(*rec));
	if (p < 8) {		/* random bytes, a plausible opcode */
		unsigned long long *q = (unsigned long long *)s;

		for (i = 0; i < sizeof(*s) / 8; i++)
			q[i] = fz_r(rng);
		if (fz_pct(rng) < 70)
			s->opcode = fz_r(rng) % FZ_OP_UNKNOWN;
		if (fz_pct(rng) < 50)
			s->addr = (uintptr_t)segs;
		for (i = 0; i < QD_SGA_MAX + 2; i++) {
			segs[i].offset = fz_r(rng);
			segs[i].len = fz_r(rng);
			segs[i].region = fz_r(rng) % 8;
			segs[i].resv = fz_pct(rng) < 80 ? 0 : fz_r(rng);
		}
		FZ_ADD(mutated, 1);
		rec->expect = FZ_EXP_ANY;
		goto out;
	}
	kind = fz_r(rng) % 100;
	if (kind < 25) {
		s->opcode = QD_OP_NOP;
		rec->expect = FZ_EXP_NOP;
		if (fz_pct(rng) < 45) {
			unsigned int d = fz_pct(rng);

			s->nop_flags = fz_pct(rng) < 50 ? QD_NOP_HARDIRQ : QD_NOP_SOFTIRQ;
			s->delay_ns = d < 60 ? fz_r(rng) % 200000 :
				      d < 97 ? fz_r(rng) % (5 * FZ_MS) :
				      d < 99 ? fz_r(rng) % (100 * FZ_MS) :
				      QD_NOP_MAX_DELAY_NS - fz_r(rng) % FZ_MS;
			rec->expect = FZ_EXP_DEFERRED;
			FZ_ADD(deferred, 1);
		}
	} else if (kind < 60) {
		s->opcode = QD_OP_PUSH;
		s->qd = fz_pick_qd(w, rng, c);
		s->nsegs = 1 + fz_r(rng) % QD_SGA_MAX;
		for (i = 0; i < s->nsegs; i++) {
			if (!fz_good_seg(rng, c, &segs[i]))
				segs[i] = qd_seg(fz_r(rng) % 4, 0, 1);
			bytes += segs[i].len;
		}
		s->addr = (uintptr_t)segs;
		rec->expect = FZ_EXP_PUSH;
		rec->bytes = bytes;
	} else {
		s->opcode = QD_OP_POP;
		s->qd = fz_pick_qd(w, rng, c);
		rec->expect = FZ_EXP_POP;
	}
	if (fz_pct(rng) < 25) {
		fz_mutate(w, rng, s, segs);
		FZ_ADD(mutated, 1);
		rec->expect = FZ_EXP_ANY;
	}
out:
	sqe_one_cqe_only(s);
	rec->op = s->opcode;
	rec->qd = s->qd;
	if (rec->expect == FZ_EXP_DEFERRED && !fz_new_module)
		rec->expect = FZ_EXP_ANY;	/* the old module: -EINVAL */
	s->user_data = c->gen << 32 | c->made;
}

/* Check one CQE of an intact context against the SQE that made it. */
static void fz_check_cqe(struct fz_ctx *c, const struct qd_cqe *q,
			 const struct qd_elem *e)
{
	unsigned long long ud = q->user_data;
	unsigned int idx = ud & 0xffffffffU, i;
	unsigned long long sum = 0;
	struct fz_rec *r;
	long long res = q->res;
	int ok;

	if (ud >> 32 != c->gen || idx >= c->made) {
		fz_violation("CQE with user_data %#llx that no SQE had (ctx gen %llu, %u made)",
			     ud, c->gen, c->made);
		return;
	}
	r = &c->rec[idx];
	if (r->seen++) {
		fz_violation("a second CQE for SQE %u (opcode %u res %lld)", idx,
			     q->opcode, res);
		return;
	}
	if (q->opcode != r->op || q->qd != r->qd)
		fz_violation("CQE of SQE %u echoes opcode %u qd %d, the SQE had %u %d",
			     idx, q->opcode, q->qd, r->op, r->qd);
	if (q->flags & ~QD_CQE_F_ELEM || q->resv1 || q->resv2)
		fz_violation("CQE of SQE %u: flags %#x resv %u %u", idx, q->flags,
			     q->resv1, q->resv2);
	if (q->flags & QD_CQE_F_ELEM) {
		/* a pop's element, or a failed push's (or provide's) given back */
		if ((r->op == QD_OP_POP ? res < 0 :
		     (r->op != QD_OP_PUSH && r->op != QD_OP_PROVIDE) || res >= 0) ||
		    !q->nsegs || q->nsegs > QD_SGA_MAX) {
			fz_violation("CQE of SQE %u (opcode %u res %lld): an element of %u segments",
				     idx, r->op, res, q->nsegs);
			return;
		}
		for (i = 0; i < q->nsegs; i++)
			sum += e->segs[i].len;
		if (r->op == QD_OP_POP && (long long)sum != res)
			fz_violation("popped element of %llu bytes, res %lld", sum, res);
		if (r->op == QD_OP_PUSH && r->expect == FZ_EXP_PUSH && sum != r->bytes)
			fz_violation("push of %u bytes (SQE %u) failed with %lld and gave back %u segments, %llu bytes",
				     r->bytes, idx, res, q->nsegs, sum);
	} else if (r->op == QD_OP_POP && res >= 0) {
		fz_violation("POP SQE %u completed with %lld and no element", idx, res);
	}

	switch (res) {
	case -EINVAL:
		ok = r->expect == FZ_EXP_ANY;
		break;
	case -EFAULT:
		ok = r->expect == FZ_EXP_ANY || r->expect == FZ_EXP_PUSH;
		break;
	case -EBADF:
	case -ECANCELED:
		ok = r->expect == FZ_EXP_ANY || r->expect == FZ_EXP_PUSH ||
		     r->expect == FZ_EXP_POP;
		break;
	case -ENOBUFS:	/* past max_queued: a push, or a pop that would wait */
		ok = r->op == QD_OP_PUSH || r->op == QD_OP_POP ||
		     r->op == QD_OP_PROVIDE;
		break;
	case -ENOMEM:
		ok = 1;
		break;
	case -ENOTSOCK:		/* a socket opcode on a memory queue */
	case -EAFNOSUPPORT:	/* ... or its address checked first */
		ok = r->expect == FZ_EXP_ANY && r->op >= QD_OP_ACCEPT &&
		     r->op <= QD_OP_PUSHTO;
		break;
	case -ESPIPE:		/* QD_PUSH_AT/QD_POP_AT on a memory queue */
		ok = r->expect == FZ_EXP_ANY &&
		     (r->op == QD_OP_PUSH || r->op == QD_OP_POP);
		break;
	case -ENOENT: case -ENAMETOOLONG: case -EACCES: case -EISDIR:
	case -EEXIST: case -ENOTDIR: case -ELOOP: case -EROFS: case -EMFILE:
	case -ENXIO: case -ENODEV: case -ETXTBSY: case -EPERM:
		/* an OPEN of a random path (the fuzzer runs in an empty dir) */
		ok = r->expect == FZ_EXP_ANY && r->op == QD_OP_OPEN;
		break;
	case -ENOSPC:		/* a full buffer pool */
		ok = r->expect == FZ_EXP_ANY && r->op == QD_OP_PROVIDE;
		break;
	case -EOPNOTSUPP:	/* a pool pop (QD_POP_POOL) on a memory queue */
		ok = r->expect == FZ_EXP_ANY && r->op == QD_OP_POP;
		/* a push to a merge or a sort */
		ok |= __atomic_load_n(&c->derived, __ATOMIC_RELAXED) &&
		      (r->op == QD_OP_PUSH || r->op == QD_OP_POP);
		break;
	case -EPIPE:		/* a derived queue whose sources are gone */
		ok = __atomic_load_n(&c->derived, __ATOMIC_RELAXED) &&
		     (r->op == QD_OP_PUSH || r->op == QD_OP_POP);
		break;
	default:
		if (res < 0)
			ok = 0;
		else if (r->op == QD_OP_NOP)
			ok = res == 0;
		else if (r->op == QD_OP_PUSH)
			ok = r->expect != FZ_EXP_PUSH || res == r->bytes;
		else
			ok = r->op == QD_OP_POP || r->op == QD_OP_PROVIDE ||
			     r->op == QD_OP_OPEN;
	}
	if (r->op >= FZ_OP_UNKNOWN && res != -EINVAL)
		ok = 0;
	if (!ok)
		fz_violation("SQE %u (opcode %u qd %d, %s) completed with %lld", idx,
			     r->op, r->qd,
			     (const char *[]){ "random/mutated", "nop", "deferred nop",
					       "push", "pop" }[r->expect], res);
}

/* Reap c's CQ (bounded: a corrupted head can make it look huge). */
static void fz_reap(struct fz_ctx *c)
{
	unsigned int n = 0, max = 4 * c->r.cq_entries + 64;
	struct qd_elem e;
	struct qd_cqe q;

	while (n++ < max && qd_raw_peek_cqe(&c->r, &q, &e)) {
		c->reaped++;
		if (c->tainted)
			continue;
		FZ_ADD(cqes, 1);
		fz_check_cqe(c, &q, &e);
	}
}

static void fz_sweep_qds(struct fz_worker *w, struct fz_ctx *c)
{
	int i, max = __atomic_load_n(&w->maxqd, __ATOMIC_RELAXED) + 16;

	for (i = 0; i < FZ_NQ; i++)
		fz_close_qd(c->r.fd, __atomic_load_n(&c->qds[i], __ATOMIC_RELAXED));
	for (i = 0; i < max; i++)
		fz_close_qd(c->r.fd, i);
}

/*
 * Close every queue (which ends every pending push and pop) and reap until
 * each consumed SQE has its CQE; deferred NOPs take up to a second.
 */
static void fz_drain(struct fz_worker *w, struct fz_ctx *c)
{
	long long end = fz_now() + 30 * FZ_NS, sweep = 0;
	unsigned int consumed;
	int ret;

	FZ_ADD(drains, 1);
	for (;;) {
		if (fz_now() >= sweep) {	/* again: another thread may add queues */
			fz_sweep_qds(w, c);
			sweep = fz_now() + FZ_NS;
		}
		ret = fz_enter(c->r.fd, qd_raw_sq_pending(&c->r), 1, QD_RAW_WAIT,
			       10 * FZ_MS);
		fz_reap(c);
		consumed = qd_load_acquire(c->r.sq_head) - c->head0;
		if (!qd_raw_sq_pending(&c->r) && c->reaped == consumed)
			return;
		if (__atomic_load_n(&c->fd_closed, __ATOMIC_RELAXED))
			return;
		if (ret < 0 && ret != -ETIMEDOUT && ret != -EINTR && ret != -ENOMEM) {
			fz_violation("draining: QD_IOC_ENTER %d", ret);
			return;
		}
		if (fz_now() > end) {
			fz_violation("draining: %u SQEs consumed, %u CQEs after 30 s (%u pending in the SQ)",
				     consumed, c->reaped, qd_raw_sq_pending(&c->r));
			return;
		}
	}
}

static void fz_ctx_retire(struct fz_worker *w, unsigned long long *rng,
			  struct fz_ctx *c, int drain)
{
	unsigned int i;
	int unmap_first = fz_pct(rng) < 30;

	if (drain && !c->tainted && !__atomic_load_n(&c->fd_closed, __ATOMIC_RELAXED))
		fz_drain(w, c);
	if (unmap_first)
		qd_raw_unmap(&c->r);
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->live, 0, __ATOMIC_RELEASE);
	close(c->r.fd);		/* the context's file, or /dev/null in its place */
	c->fd_closed = 1;
	pthread_mutex_unlock(&c->lock);
	if (!unmap_first)
		qd_raw_unmap(&c->r);
	for (i = 0; i < FZ_NREG; i++)
		if (c->mem[i])
			munmap(c->mem[i], c->memlen[i]);
	free(c->segs);
	munmap(c->rec, FZ_MAXREC * sizeof(*c->rec));
	c->segs = NULL;
	c->rec = NULL;
}

/* Write SQEs into c's SQ and enter, sometimes waiting a little. */
static void fz_submit(struct fz_worker *w, unsigned long long *rng, struct fz_ctx *c)
{
	unsigned int n = 1 + fz_r(rng) % (c->r.sq_entries < 32 ? c->r.sq_entries : 32);
	unsigned int to_submit, flags = 0, min = 0;
	long long timeout = 0;
	struct qd_sqe s;
	int ret;

	while (n-- && c->made < FZ_MAXREC) {
		unsigned int tail = *c->r.sq_tail;

		if (tail - qd_load_acquire(c->r.sq_head) >= c->r.sq_entries)
			break;
		fz_make_sqe(w, rng, c, tail, &s, &c->rec[c->made]);
		c->r.sqes[tail & c->r.sq_mask] = s;
		qd_store_release(c->r.sq_tail, tail + 1);
		c->made++;
		FZ_ADD(made, 1);
	}
	to_submit = qd_raw_sq_pending(&c->r);
	if (c->sqpoll && fz_pct(rng) < 60) {
		/* the poller's protocol: no system call unless it sleeps */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(c->r.sq_flags, __ATOMIC_RELAXED) & QD_SQ_F_NEED_WAKEUP) {
			ret = fz_enter(c->r.fd, fz_pct(rng) < 50 ? to_submit : 0, 0,
				       QD_ENTER_SQ_WAKEUP, 0);
			if (ret < 0 && ret != -ENOMEM && !c->tainted &&
			    !__atomic_load_n(&c->fd_closed, __ATOMIC_RELAXED))
				fz_violation("QD_IOC_ENTER(SQ_WAKEUP) on an intact ring: %d", ret);
		}
		fz_reap(c);
		return;
	}
	if (fz_pct(rng) < 10)
		to_submit = fz_r(rng) % (2 * to_submit + 2);
	if (fz_pct(rng) < 25) {
		flags = QD_RAW_WAIT;
		min = 1 + fz_r(rng) % 4;
		if (min > c->r.cq_entries)
			min = c->r.cq_entries;
		timeout = fz_pct(rng) < 90 ? fz_r(rng) % (2 * FZ_MS) : fz_r(rng) % (50 * FZ_MS);
	}
	ret = fz_enter(c->r.fd, to_submit, min, flags, timeout);
	if (ret < 0 && ret != -ETIMEDOUT && ret != -EINTR && ret != -ENOMEM &&
	    !c->tainted && !__atomic_load_n(&c->fd_closed, __ATOMIC_RELAXED))
		fz_violation("QD_IOC_ENTER(%u, %u, %#x) on an intact ring: %d",
			     to_submit, min, flags, ret);
	fz_reap(c);
}

/* Garbage in the ring indices and fields; the context is tainted. */
static void fz_corrupt(unsigned long long *rng, struct fz_ctx *c)
{
	struct qd_raw *r = &c->r;
	char *sq = r->sq_ring, *cq = r->cq_ring;
	unsigned int v = fz_r(rng);

	c->tainted = 1;
	FZ_ADD(corruptions, 1);
	switch (fz_r(rng) % 9) {
	case 0: *r->sq_tail = v; break;
	case 1: *r->sq_tail = qd_load_acquire(r->sq_head) + r->sq_entries + 1 + v % 64; break;
	case 2: *r->sq_tail = qd_load_acquire(r->sq_head) + r->sq_entries; break;
	case 3: *r->cq_head = v; break;
	case 4: *r->cq_head = qd_load_acquire(r->cq_tail) + 1 + v % 16; break;
	case 5: *r->sq_head = v; break;
	case 6: *r->cq_tail = v; break;
	case 7:
		*(unsigned int *)(sq + r->p.sq_off.ring_mask) = v;
		*(unsigned int *)(sq + r->p.sq_off.ring_entries) = v >> 3;
		*(unsigned int *)(cq + r->p.cq_off.ring_mask) = ~v;
		*(unsigned int *)(cq + r->p.cq_off.ring_entries) = v << 2;
		break;
	default:
		*r->sq_flags = v;
		*r->cq_flags = ~v;
		*r->cq_overflow = v;
		break;
	}
	fz_enter(r->fd, fz_r(rng) % (2 * r->sq_entries + 2), fz_r(rng) % 3,
		 fz_pct(rng) < 50 ? QD_RAW_WAIT : 0, FZ_MS);
	fz_reap(c);
	if (fz_pct(rng) < 60) {		/* back to something sane */
		*r->sq_tail = qd_load_acquire(r->sq_head);
		*r->cq_head = qd_load_acquire(r->cq_tail);
	}
}

/* ------------------------------------------------------ random ioctls */

#define FZ_FIGETBSZ	_IO(0x00, 2)	/* <linux/fs.h> clashes with <sys/mount.h> */

static const unsigned long fz_cmds[] = {
	QD_IOC_SETUP, QD_IOC_ENTER, QD_IOC_REGISTER, QD_IOC_UNREGISTER,
	QD_IOC_QUEUE, QD_IOC_CLOSE, QD_IOC_QUEUE_BIND,
	QD_IOC_SOCKET, QD_IOC_BIND, QD_IOC_LISTEN, QD_IOC_GETNAME,
	QD_IOC_SETSOCKOPT, QD_IOC_GETSOCKOPT, QD_IOC_DERIVE,
};

/* A command: a qd one, a neighbour of one, or a harmless generic one. */
static unsigned long fz_random_cmd(unsigned long long *rng)
{
	unsigned int p = fz_pct(rng);
	unsigned long cmd = fz_cmds[fz_r(rng) % (sizeof(fz_cmds) / sizeof(fz_cmds[0]))];

	if (p < 60)
		return cmd;
	if (p < 75)	/* same number, another direction or size */
		return _IOC(fz_r(rng) % 4, QD_IOC_MAGIC, _IOC_NR(cmd), fz_r(rng) % 256);
	if (p < 85)
		return _IOC(fz_r(rng) % 4, QD_IOC_MAGIC, fz_r(rng) % 64, fz_r(rng) % 256);
	if (p < 92)	/* the old magic, and one no driver uses here */
		return _IOC(_IOC_DIR(cmd), fz_pct(rng) < 50 ? 0xCD : 0xB7, _IOC_NR(cmd),
			    _IOC_SIZE(cmd));
	switch (fz_r(rng) % 4) {
	case 0: return FIONREAD;
	case 1: return FIOQSIZE;
	case 2: return FZ_FIGETBSZ;
	default: return FIONCLEX;
	}
}

/* A valid argument for cmd on context c (fd), written into buf (256 bytes). */
static void fz_valid_arg(struct fz_worker *w, unsigned long long *rng,
			 unsigned long cmd, struct fz_ctx *c, void *buf)
{
	memset(buf, 0, 256);
	if (cmd == QD_IOC_SETUP) {
		struct qd_params *p = buf;

		p->sq_entries = 1U << fz_r(rng) % 13;
		p->cq_entries = fz_pct(rng) < 50 ? 0 : p->sq_entries << fz_r(rng) % 3;
	} else if (cmd == QD_IOC_ENTER) {
		struct qd_enter *e = buf;

		e->to_submit = fz_r(rng) % 8;
		if (fz_pct(rng) < 50) {
			e->flags = QD_RAW_WAIT;
			e->min_complete = fz_r(rng) % 3;
			e->timeout_ns = fz_r(rng) % (3 * FZ_MS);
		} else if (fz_pct(rng) < 30) {
			/* a pop's sleep on a (mapped, or not) queue */
			e->flags = QD_ENTER_MQ_POP | QD_ENTER_TIMEOUT;
			e->qd = c ? fz_pick_qd(w, rng, c) : (int)(fz_r(rng) % 8);
			e->wait_seq = fz_r(rng) % 4;
			e->timeout_ns = fz_r(rng) % (3 * FZ_MS);
		}
	} else if (cmd == QD_IOC_REGISTER) {
		struct qd_region_reg *g = buf;
		unsigned int i = fz_r(rng) % FZ_NREG;

		if (c && c->mem[i] && fz_pct(rng) < 70) {
			g->addr = (uintptr_t)c->mem[i];
			g->len = FZ_PG * (1 + fz_r(rng) % (c->memlen[i] / FZ_PG));
		} else {
			g->addr = (uintptr_t)w->guard;
			g->len = FZ_PG * (1 + fz_r(rng) % 2);	/* 2: the PROT_NONE page */
		}
	} else if (cmd == QD_IOC_UNREGISTER) {
		*(__u32 *)buf = c ? __atomic_load_n(&c->regs[fz_r(rng) % FZ_NREG],
						    __ATOMIC_RELAXED) & 0xffff :
				    fz_r(rng) % 8;
	} else if (cmd == QD_IOC_QUEUE) {
		struct qd_queue_create *q = buf;

		q->depth = fz_r(rng) % 32;
		/* a shared mapped queue (its ring unmapped: the kernel's alone) */
		if (fz_pct(rng) < 20)
			q->flags = QD_QUEUE_MAPPED | QD_QUEUE_SHARED;
	} else if (cmd == QD_IOC_QUEUE_BIND) {
		struct qd_queue_bind *b = buf;

		b->qd = c ? fz_pick_qd(w, rng, c) : (int)(fz_r(rng) % 8);
		if (fz_pct(rng) < 50) {
			b->region = c ? __atomic_load_n(&c->regs[fz_r(rng) % FZ_NREG],
							__ATOMIC_RELAXED) & 0xffff :
					fz_r(rng) % 8;
		} else {
			b->flags = QD_BIND_LOOKUP;
			b->index = fz_r(rng) % (QD_MQ_MAX_BINDINGS + 2);
		}
	} else if (cmd == QD_IOC_CLOSE) {
		*(__s32 *)buf = c ? fz_pick_qd(w, rng, c) : (int)(fz_r(rng) % 8);
	} else if (cmd == QD_IOC_DERIVE) {
		int src[4], i;

		for (i = 0; i < 4; i++)
			src[i] = c ? fz_pick_qd(w, rng, c) : (int)(fz_r(rng) % 8);
		fz_derive_spec(rng, buf, src, 4);
	}
}

/*
 * One random ioctl on fd: a random or neighbouring command with an argument
 * that is valid, valid and mutated, random bytes, straddling a PROT_NONE
 * page, or a bad pointer.
 */
static void fz_random_ioctl(struct fz_worker *w, unsigned long long *rng,
			    int fd, struct fz_ctx *c)
{
	unsigned long cmd = fz_random_cmd(rng);
	unsigned char buf[256] __attribute__((aligned(16)));
	unsigned int p = fz_pct(rng), i;
	void *arg = buf;
	int ret;

	fz_valid_arg(w, rng, cmd, c, buf);
	if (p < 35) {
		/* valid */
	} else if (p < 60) {
		for (i = fz_r(rng) % 4 + 1; i; i--)
			buf[fz_r(rng) % 64] ^= 1 << fz_r(rng) % 8;
	} else if (p < 70) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = fz_r(rng);
	} else if (p < 80) {
		/* the argument runs into the PROT_NONE page */
		size_t k = 1 + fz_r(rng) % (_IOC_SIZE(cmd) ? _IOC_SIZE(cmd) : 64);

		arg = w->guard + FZ_PG - k;
		memcpy(arg, buf, k);
	} else if (p < 88) {
		arg = w->hole + fz_r(rng) % FZ_PG;
	} else {
		arg = (void *)(uintptr_t)fz_addrs[fz_r(rng) % 9];
	}
	/* The generic commands that write: only into buf. */
	if (cmd == FIONREAD || cmd == FIOQSIZE || cmd == FZ_FIGETBSZ)
		arg = buf;
	if (cmd == QD_IOC_ENTER && arg == buf) {
		/* any wait ends within milliseconds */
		struct qd_enter *e = (struct qd_enter *)buf;

		if (e->flags & (QD_ENTER_GETEVENTS | QD_ENTER_CQ_TAIL |
				QD_ENTER_CTX_SEQ | QD_ENTER_MQ_POP)) {
			e->flags |= QD_ENTER_TIMEOUT;
			if (e->timeout_ns > 0)
				e->timeout_ns %= 5 * FZ_MS;
		}
	}
	FZ_ADD(random_ioctls, 1);
	/*
	 * Derived queues answer pushes and pops with -EOPNOTSUPP and -EPIPE:
	 * the context's checks allow them from now on (set first: a CQE may
	 * be checked before this thread runs again).
	 */
	if (cmd == QD_IOC_DERIVE && c)
		__atomic_store_n(&c->derived, 1, __ATOMIC_RELAXED);
	ret = fz_ioctl(fd, cmd, arg);
	if (ret >= 0 && arg == buf && cmd == QD_IOC_QUEUE)
		fz_note_qd(w, ((struct qd_queue_create *)buf)->qd);
	if (cmd == QD_IOC_DERIVE && arg == buf && c) {
		/*
		 * Checked on a context's set-up fd (a fresh one may not be; a
		 * context's fd closed under us is /dev/null: -ENOTTY).
		 */
		if (!fz_derive_allowed(ret) &&
		    !(ret == -ENOTTY && (__atomic_load_n(&c->fd_closed, __ATOMIC_RELAXED) ||
					 !fz_is_qd(fd))))
			fz_violation("QD_IOC_DERIVE kind %u src %d src2 %d: %d",
				     ((struct qd_derive *)buf)->kind,
				     ((struct qd_derive *)buf)->src,
				     ((struct qd_derive *)buf)->src2, ret);
		if (ret >= 0) {
			FZ_ADD(derived, 1);
			fz_note_qd(w, ((struct qd_derive *)buf)->qd);
		}
	}
	if (cmd == QD_IOC_QUEUE_BIND)
		FZ_ADD(binds, 1);
}

/* ------------------------------------------------------- main thread */

static void fz_main_step(struct fz_worker *w, unsigned long long *rng)
{
	struct fz_ctx *c = &w->ctx[fz_r(rng) % FZ_NCTX];
	unsigned int p;

	if (!c->live) {
		fz_doing = "main: opening a context";
		fz_ctx_open(w, rng, c);
		return;
	}
	if (__atomic_load_n(&c->fd_closed, __ATOMIC_RELAXED) || c->made >= FZ_MAXREC ||
	    (c->tainted && fz_pct(rng) < 25)) {
		fz_doing = "main: retiring a context";
		fz_ctx_retire(w, rng, c, c->made >= FZ_MAXREC);
		return;
	}
	p = fz_pct(rng);
	if (p < 62) {
		fz_doing = "main: submitting";
		fz_submit(w, rng, c);
	} else if (p < 77) {
		fz_doing = "main: waiting";
		fz_enter(c->r.fd, 0, 1 + fz_r(rng) % 2, QD_RAW_WAIT,
			 fz_pct(rng) < 90 ? fz_r(rng) % (3 * FZ_MS) : 30 * FZ_MS);
		fz_reap(c);
	} else if (p < 78) {
		fz_doing = "main: corrupting the rings";
		fz_corrupt(rng, c);
	} else if (p < 82) {
		fz_doing = "main: draining and retiring";
		fz_ctx_retire(w, rng, c, fz_pct(rng) < 60);
	} else if (p < 92) {
		fz_doing = "main: random ioctl";
		fz_random_ioctl(w, rng, c->r.fd, c);
	} else {
		fz_doing = "main: poll";
		struct pollfd pfd = { .fd = c->r.fd, .events = POLLIN | POLLOUT };

		if (poll(&pfd, 1, fz_r(rng) % 3) > 0 && pfd.revents & POLLERR &&
		    fz_new_module && !__atomic_load_n(&c->fd_closed, __ATOMIC_RELAXED))
			fz_violation("poll by the owner: revents %#x", pfd.revents);
		fz_reap(c);
	}
}

/* --------------------------------------------------- control thread */

struct fz_mem {
	char	*addr;
	size_t	len;
	int	kind;		/* 0 anon, 1 shmem, 2 read-only, 3 file-backed private */
};

/*
 * A derived queue over c's queues (a random spec, mostly valid): 0 and its
 * qd, or the kernel's refusal, which must be one of the allowed ones.
 */
static int fz_derive(struct fz_worker *w, unsigned long long *rng, int fd,
		     struct fz_ctx *c, int *qd)
{
	struct qd_derive d;
	int src[3], ret;

	src[0] = fz_pick_qd(w, rng, c);
	src[1] = fz_pick_qd(w, rng, c);
	src[2] = fz_pick_qd(w, rng, c);
	fz_derive_spec(rng, &d, src, 3);
	/* its pushes and pops may end -EOPNOTSUPP, -EPIPE from now on */
	__atomic_store_n(&c->derived, 1, __ATOMIC_RELAXED);
	ret = fz_ioctl(fd, QD_IOC_DERIVE, &d);
	/* (a context's fd closed under us is /dev/null: -ENOTTY) */
	if (!fz_derive_allowed(ret) && !(ret == -ENOTTY && !fz_is_qd(fd)))
		fz_violation("QD_IOC_DERIVE kind %u src %d src2 %d: %d", d.kind, d.src,
			     d.src2, ret);
	if (ret)
		return ret;
	FZ_ADD(derived, 1);
	fz_note_qd(w, d.qd);
	*qd = d.qd;
	return 0;
}

static void fz_control_step(struct fz_worker *w, unsigned long long *rng,
			    struct fz_mem *pool, int npool)
{
	struct fz_ctx *c = &w->ctx[fz_r(rng) % FZ_NCTX];
	unsigned int p = fz_pct(rng), slot = fz_r(rng) % FZ_NREG, id;
	unsigned long long old;
	int fd, ret, qd;

	fd = fz_ctx_dup(c);
	if (fd < 0) {
		qd_sleep_ms(0);
		return;
	}
	fz_doing = "control";
	if (p < 30) {		/* register, replacing one of c's regions */
		struct fz_mem *m = &pool[fz_r(rng) % npool];
		size_t pages = 1 + fz_r(rng) % (m->len / FZ_PG);
		size_t off = FZ_PG * (fz_r(rng) % (m->len / FZ_PG - pages + 1));

		if (!m->addr) {
			close(fd);
			return;
		}
		ret = fz_register(fd, m->addr + off, pages * FZ_PG, &id);
		if (!ret) {
			if (m->kind == 3 && fz_new_module)
				fz_violation("a private mapping of a regular file was registered (not -EOPNOTSUPP)");
			old = __atomic_exchange_n(&c->regs[slot], id | pages << 16,
						  __ATOMIC_RELAXED);
			if (old && fz_pct(rng) < 70) {
				__u32 v = old & 0xffff;

				fz_ioctl(fd, QD_IOC_UNREGISTER, &v);
			}
		}
	} else if (p < 50) {	/* unregister, -EBUSY while elements use it */
		__u32 v = fz_pct(rng) < 85 ?
			  __atomic_load_n(&c->regs[slot], __ATOMIC_RELAXED) & 0xffff :
			  fz_r(rng) % 300;

		fz_ioctl(fd, QD_IOC_UNREGISTER, &v);
	} else if (p < 70) {	/* a new queue (a derived one now and then) for an old one */
		if (fz_pct(rng) < 30)
			ret = fz_derive(w, rng, fd, c, &qd);
		else
			ret = fz_queue(w, fd, fz_pct(rng) < 10 ? 0 : 1 + fz_r(rng) % 16, &qd);
		if (!ret) {
			qd = __atomic_exchange_n(&c->qds[fz_r(rng) % FZ_NQ], qd,
						 __ATOMIC_RELAXED);
			if (fz_pct(rng) < 80)
				fz_close_qd(fd, qd);
		}
	} else if (p < 85) {	/* close a queue others push to and pop from */
		fz_close_qd(fd, fz_pick_qd(w, rng, c));
	} else if (p < 95) {	/* wait alongside the main thread */
		fz_enter(fd, 0, 1, QD_RAW_WAIT, fz_r(rng) % (2 * FZ_MS));
	} else {
		fz_random_ioctl(w, rng, fd, c);
	}
	close(fd);
}

static void *fz_control_thread(void *arg)
{
	struct fz_worker *w = arg;
	unsigned long long rng = fz_mix(w->seed ^ 0xc0) | 1;
	struct fz_mem pool[6];
	int i, fd;

	memset(pool, 0, sizeof(pool));
	for (i = 0; i < 3; i++) {
		pool[i].len = 16 * FZ_PG;
		pool[i].addr = qd_raw_pages(pool[i].len);
	}
	pool[3].len = 8 * FZ_PG;
	pool[3].kind = 1;
	pool[3].addr = fz_region_mem(&rng, pool[3].len);
	if (fz_pct(&rng) < 50)	/* not shmem after all: anonymous */
		pool[3].kind = 0;
	pool[4].len = 4 * FZ_PG;
	pool[4].kind = 2;
	pool[4].addr = mmap(NULL, pool[4].len, PROT_READ,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pool[5].len = FZ_PG;
	pool[5].kind = 3;
	fd = open(w->exe, O_RDONLY | O_CLOEXEC);
	pool[5].addr = fd < 0 ? MAP_FAILED :
		       mmap(NULL, FZ_PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (fd >= 0)
		close(fd);
	for (i = 0; i < 6; i++)
		if (pool[i].addr == MAP_FAILED)
			pool[i].addr = NULL;
	while (!fz_stopped(w))
		fz_control_step(w, &rng, pool, 6);
	for (i = 0; i < 6; i++)
		if (pool[i].addr)
			munmap(pool[i].addr, pool[i].len);
	return NULL;
}

/* ----------------------------------------------------- chaos thread */

/* Exit codes of a forked child: which check failed. */
static const char *const fz_child_checks[] = {
	"ok", "QD_IOC_ENTER", "QD_IOC_REGISTER", "QD_IOC_UNREGISTER",
	"QD_IOC_QUEUE", "QD_IOC_CLOSE", "QD_IOC_SETUP", "mmap SQ", "mmap CQ",
	"poll (EPOLLERR)", "dup + QD_IOC_ENTER",
};

/* In a forked child (async-signal-safe calls only): every use is -EPERM. */
static int fz_child(struct qd_raw *r, char *page, unsigned int id, int qd,
		    int scribble)
{
	struct qd_region_reg reg = { .addr = (uintptr_t)page, .len = FZ_PG };
	struct qd_queue_create qc = { .depth = 4 };
	struct qd_params p = { .sq_entries = 4 };
	struct qd_enter e = { .to_submit = 1 };
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
	__u32 uid = id;
	__s32 q = qd;
	void *m;
	int fd;

	if (scribble) {		/* MADV_DOFORK: the parent's ring, shared */
		*r->sq_tail += 3;
		*r->cq_head -= 5;
	}
	if (fz_ioctl(r->fd, QD_IOC_ENTER, &e) != -EPERM)
		return 1;
	if (fz_ioctl(r->fd, QD_IOC_REGISTER, &reg) != -EPERM)
		return 2;
	if (fz_ioctl(r->fd, QD_IOC_UNREGISTER, &uid) != -EPERM)
		return 3;
	if (fz_ioctl(r->fd, QD_IOC_QUEUE, &qc) != -EPERM)
		return 4;
	if (fz_ioctl(r->fd, QD_IOC_CLOSE, &q) != -EPERM)
		return 5;
	if (fz_ioctl(r->fd, QD_IOC_SETUP, &p) != -EPERM)
		return 6;
	m = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, QD_OFF_SQ_RING);
	if (m != MAP_FAILED || errno != EPERM)
		return 7;
	m = mmap(NULL, r->cq_len, PROT_READ, MAP_SHARED, r->fd, QD_OFF_CQ_RING);
	if (m != MAP_FAILED || errno != EPERM)
		return 8;
	if (fz_new_module && (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLERR)))
		return 9;
	fd = dup(r->fd);
	if (fd >= 0 && fz_ioctl(fd, QD_IOC_ENTER, &e) != -EPERM)
		return 10;
	return 0;
}

/*
 * A context with a region, a queue, a pending pop and deferred NOPs; a
 * forked child (sometimes with the rings inherited through MADV_DOFORK,
 * sometimes killed at once) must be refused everything; the parent's
 * context must still work unless the child wrote into its rings.
 */
static void fz_fork_test(struct fz_worker *w, unsigned long long *rng)
{
	struct qd_sqe s;
	struct qd_cqe q;
	struct qd_raw r;
	unsigned int id = 0;
	int qd = -1, ret, status = -1, dofork = 0, scribble = 0, kill_it, usable;
	char *page = qd_raw_pages(FZ_PG);
	pid_t pid;

	if (!page)
		return;
	if (qd_raw_init(&r, 4, 8)) {
		munmap(page, FZ_PG);
		return;
	}
	FZ_ADD(contexts, 1);
	usable = !fz_register(r.fd, page, FZ_PG, &id) & !fz_queue(w, r.fd, 2, &qd);
	s = qd_sqe_pop(qd, 1);
	qd_raw_queue_sqe(&r, &s);
	s = qd_sqe_nop(2);
	s.nop_flags = fz_pct(rng) < 50 ? QD_NOP_HARDIRQ : QD_NOP_SOFTIRQ;
	s.delay_ns = fz_r(rng) % (2 * FZ_MS);
	qd_raw_queue_sqe(&r, &s);
	fz_enter(r.fd, 2, 0, 0, 0);
	if (fz_pct(rng) < 50) {
		dofork = !madvise(r.sq_ring, r.sq_len, MADV_DOFORK) &&
			 !madvise(r.cq_ring, r.cq_len, MADV_DOFORK);
		scribble = dofork && fz_pct(rng) < 50;
	}
	kill_it = fz_pct(rng) < 20;
	FZ_ADD(forks, 1);
	pid = fork();
	if (pid == 0)
		_exit(fz_child(&r, page, id, qd, scribble));
	if (pid > 0) {
		if (kill_it) {
			qd_sleep_ms(fz_r(rng) % 2);
			kill(pid, SIGKILL);
		}
		while ((ret = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
			;
		if (ret == pid && WIFEXITED(status) && WEXITSTATUS(status))
			fz_violation("a forked child was not refused: %s",
				     fz_child_checks[WEXITSTATUS(status) < 11 ?
						     WEXITSTATUS(status) : 0]);
		else if (ret == pid && WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
			fz_violation("a forked child died of signal %d", WTERMSIG(status));
	}
	if (usable && !scribble) {
		/*
		 * The child's exit cancelled nothing of ours: the deferred NOP
		 * completes, and a push completes the pending pop (unless the
		 * master's limits refused the pop or the push: -ENOBUFS).
		 */
		struct qd_seg seg = qd_seg(id, 0, 64);
		long long res[4] = { 1, 1, 1, 1 };

		s = qd_sqe_push(qd, &seg, 1, 3);
		ret = qd_raw_queue_sqe(&r, &s) ? -EAGAIN : fz_enter(r.fd, 1, 0, 0, 0);
		while (ret >= 0 && (res[2] == 1 || res[3] == 1 ||
				    (res[1] == 1 && res[3] != -ENOBUFS))) {
			if (qd_raw_wait_cqe(&r, &q, NULL, 5000 * FZ_MS))
				break;
			FZ_ADD(cqes, 1);
			if (q.user_data >= 1 && q.user_data <= 3)
				res[q.user_data] = q.res;
		}
		if (ret < 0 || (res[1] != 64 && res[1] != -ENOBUFS &&
				(res[1] != 1 || res[3] != -ENOBUFS)) ||
		    (res[2] && (fz_new_module || res[2] != -EINVAL)) ||
		    (res[3] != 64 && res[3] != -ENOBUFS))
			fz_violation("after a forked child exited (fd %d, MADV_DOFORK %d, killed %d, status %#x): enter %d; pop %lld, deferred nop %lld, push %lld (1: no CQE)",
				     r.fd, dofork, kill_it, status, ret, res[1], res[2], res[3]);
	}
	qd_raw_exit(&r);
	munmap(page, FZ_PG);
}

/* A fresh context used carelessly and closed in a random order. */
static void fz_fresh(struct fz_worker *w, unsigned long long *rng)
{
	struct qd_raw r;
	struct qd_params *p = &r.p;
	unsigned int i, n;
	int fd, ret;

	memset(&r, 0, sizeof(r));
	fd = open(QD_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	r.fd = fd;
	FZ_ADD(contexts, 1);
	if (fz_pct(rng) < 20) {		/* not set up, or by a random ioctl */
		void *m = mmap(NULL, FZ_PG, PROT_READ, MAP_SHARED, fd, 0);

		if (m != MAP_FAILED) {
			fz_violation("mmap before QD_IOC_SETUP worked");
			munmap(m, FZ_PG);
		}
		for (i = 0; i < 4; i++)
			fz_random_ioctl(w, rng, fd, NULL);
		close(fd);
		return;
	}
	p->sq_entries = 1U << fz_r(rng) % 13;
	p->cq_entries = fz_pct(rng) < 50 ? 0 : p->sq_entries << fz_r(rng) % 3;
	if (fz_pct(rng) < 3) {
		p->sq_entries = QD_MAX_SQ_ENTRIES;
		p->cq_entries = QD_MAX_CQ_ENTRIES;
	}
	if (fz_pct(rng) < 20)
		((unsigned char *)p)[fz_r(rng) % sizeof(*p)] ^= 1 << fz_r(rng) % 8;
	ret = fz_ioctl(fd, QD_IOC_SETUP, p);
	if (ret || qd_raw_map(&r)) {
		close(fd);
		return;
	}
	FZ_ADD(mmaps, 2);
	/* Garbage and deferred NOPs in its SQ, submitted; never reaped. */
	n = fz_r(rng) % ((r.sq_entries < 64 ? r.sq_entries : 64) + 1);
	for (i = 0; i < n; i++) {
		struct qd_sqe *s = &r.sqes[(*r.sq_tail + i) & r.sq_mask];

		if (fz_pct(rng) < 60) {
			memset(s, 0, sizeof(*s));
			s->nop_flags = fz_pct(rng) < 50 ? QD_NOP_HARDIRQ : QD_NOP_SOFTIRQ;
			s->delay_ns = fz_r(rng) % (fz_pct(rng) < 90 ? 3 * FZ_MS : 300 * FZ_MS);
			FZ_ADD(deferred, 1);
		} else {
			unsigned long long *q = (unsigned long long *)s;
			unsigned int k;

			for (k = 0; k < 8; k++)
				q[k] = fz_r(rng);
			FZ_ADD(mutated, 1);
		}
	}
	qd_store_release(r.sq_tail, *r.sq_tail + n);
	FZ_ADD(made, n);
	fz_enter(fd, n, 0, 0, 0);
	for (i = fz_r(rng) % 4; i; i--)
		fz_random_ioctl(w, rng, fd, NULL);
	if (fz_pct(rng) < 30)
		fz_corrupt(rng, &(struct fz_ctx){ .r = r });
	switch (fz_r(rng) % 3) {
	case 0:		/* the fd first: the mappings hold the context */
		close(fd);
		qd_sleep_ms(fz_r(rng) % 2);
		qd_raw_unmap(&r);
		break;
	case 1:
		qd_raw_unmap(&r);
		close(fd);
		break;
	default:	/* the SQ mapping outlives the fd and the CQ's */
		close(fd);
		munmap(r.cq_ring, r.cq_len);
		qd_sleep_ms(fz_r(rng) % 2);
		munmap(r.sq_ring, r.sq_len);
		break;
	}
}

/* Extra mappings of a main context's rings, poked and cut. */
static void fz_mmap_games(struct fz_worker *w, unsigned long long *rng)
{
	struct fz_ctx *c = &w->ctx[fz_r(rng) % FZ_NCTX];
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE,
				     PROT_READ | PROT_WRITE | PROT_EXEC, PROT_NONE };
	unsigned long long off;
	size_t len;
	char *m, *n;
	int fd, flags;

	/* Ours, and a context's (not /dev/null in place of a closed one). */
	fd = fz_ctx_dup(c);
	if (fd < 0)
		return;
	if (!fz_is_qd(fd)) {
		close(fd);
		return;
	}
	switch (fz_r(rng) % 6) {
	case 0: off = QD_OFF_SQ_RING; break;
	case 1: off = QD_OFF_CQ_RING; break;
	case 2: off = QD_OFF_SQ_RING + FZ_PG * (fz_r(rng) % 4); break;
	case 3: off = QD_OFF_CQ_RING + FZ_PG * (fz_r(rng) % 64); break;
	case 4: off = FZ_PG * (fz_r(rng) % 0x40000); break;
	default: off = 0x20000000ULL + FZ_PG * (fz_r(rng) % 4); break;
	}
	len = FZ_PG * (1 + fz_r(rng) % (fz_pct(rng) < 80 ? 8 : 2048));
	flags = fz_pct(rng) < 85 ? MAP_SHARED : MAP_PRIVATE;
	if (fz_pct(rng) < 20)
		flags |= MAP_POPULATE;
	FZ_ADD(mmaps, 1);
	m = mmap(NULL, len, prots[fz_r(rng) % 4], flags, fd, off);
	close(fd);
	if (m == MAP_FAILED)
		return;
	if (fz_pct(rng) < 70) {		/* read it (it is someone's live ring) */
		volatile char sink;
		size_t i;

		if (!mprotect(m, len, PROT_READ))
			for (i = 0; i < len; i += FZ_PG)
				sink = m[i];
		(void)sink;
	}
	switch (fz_r(rng) % 6) {
	case 0: {	/* growing (VM_DONTEXPAND: refused) or moving it */
		size_t nlen = len + FZ_PG * (fz_r(rng) % 4);

		n = mremap(m, len, nlen, MREMAP_MAYMOVE);
		if (n != MAP_FAILED) {
			m = n;
			len = nlen;
		}
		break;
	}
	case 1:		/* a hole in the middle */
		if (len > 2 * FZ_PG) {
			munmap(m + FZ_PG, FZ_PG);
			munmap(m, FZ_PG);
			m += 2 * FZ_PG;
			len -= 2 * FZ_PG;
		}
		break;
	case 2:		/* not touched again: refaulting a ring page is SIGBUS */
		madvise(m, len, MADV_DONTNEED);
		break;
	case 3:
		madvise(m, len, MADV_DOFORK);
		break;
	case 4: {	/* shrink in place */
		size_t nlen = FZ_PG * (len / FZ_PG / 2 ? len / FZ_PG / 2 : 1);

		if (mremap(m, len, nlen, 0) != MAP_FAILED)
			len = nlen;
		break;
	}
	default:
		mprotect(m, len, PROT_READ | PROT_WRITE);
		break;
	}
	munmap(m, len);
}

/* Read the debugfs files of this process's contexts, and keep one open. */
static void fz_debugfs(unsigned long long *rng, int *keep)
{
	static const char *const files[] = { "info", "queues", "regions" };
	char path[512], buf[4096], prefix[32];
	struct dirent *d;
	DIR *dir;
	int fd;

	if (*keep >= 0) {
		/* the context may be gone: any error will do, no crash */
		ssize_t n = pread(*keep, buf, sizeof(buf), 0);

		(void)n;
		if (fz_pct(rng) < 30) {
			close(*keep);
			*keep = -1;
		}
	}
	dir = opendir(QD_DEBUGFS_DIR);
	if (!dir)
		return;
	snprintf(prefix, sizeof(prefix), "%d-", (int)getpid());
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), "%s/%.200s/%s", QD_DEBUGFS_DIR, d->d_name,
			 files[fz_r(rng) % 3]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		if (*keep < 0 && fz_pct(rng) < 20)
			*keep = fd;
		else
			close(fd);
	}
	closedir(dir);
}

/* A thread that blocks in the kernel on a userfaultfd page nobody serves. */
static void *fz_stall_thread(void *arg)
{
	struct fz_worker *w = arg;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	unsigned long long rng = fz_mix(w->seed ^ 0x57a11) | 1;
	struct fz_ctx *c = &w->ctx[fz_r(&rng) % FZ_NCTX];
	char *area;
	int uffd, fd;

	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api))
		return NULL;
	area = qd_raw_pages(2 * FZ_PG);
	if (!area)
		return NULL;
	reg.range.start = (uintptr_t)area;
	reg.range.len = 2 * FZ_PG;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		return NULL;
	FZ_ADD(stalls, 1);
	fd = fz_ctx_dup(c);
	if (fd < 0)
		return NULL;
	switch (fz_r(&rng) % 3) {
	case 0: {	/* pinning faults on the missing page */
		struct qd_region_reg g = { .addr = (uintptr_t)area, .len = 2 * FZ_PG };

		fz_ioctl(fd, QD_IOC_REGISTER, &g);
		break;
	}
	case 1:		/* the argument itself */
		fz_ioctl(fd, QD_IOC_QUEUE, area);
		break;
	default: {	/* a push whose segment array is there */
		struct qd_raw r;
		struct qd_sqe s;

		if (qd_raw_init(&r, 2, 4))
			break;
		s = qd_sqe_push(0, (struct qd_seg *)area, 1, 1);
		qd_raw_queue_sqe(&r, &s);
		fz_enter(r.fd, 1, 0, 0, 0);
		break;
	}
	}
	return NULL;	/* only if the kernel gave up on the fault */
}

static void fz_chaos_step(struct fz_worker *w, unsigned long long *rng, int *keep,
			  int *stalled)
{
	struct fz_ctx *c = &w->ctx[fz_r(rng) % FZ_NCTX];
	unsigned int p = fz_pct(rng);
	struct epoll_event ev;
	int fd;

	if (w->stall && !*stalled && fz_now() > w->deadline - 700 * FZ_MS) {
		pthread_t t;

		*stalled = 1;
		if (!pthread_create(&t, NULL, fz_stall_thread, w))
			pthread_detach(t);
	} else if (p < 10) {
		fz_doing = "chaos: fork test";
		fz_fork_test(w, rng);
	} else if (p < 25) {
		fz_doing = "chaos: a fresh context";
		fz_fresh(w, rng);
	} else if (p < 27) {
		/*
		 * Close a context's fd under its main thread: /dev/null takes
		 * the number at once (dup2), so that no open elsewhere reuses
		 * it while the main thread still uses it.
		 */
		pthread_mutex_lock(&c->lock);
		if (c->live && !c->fd_closed) {
			/* first the flag: the main thread's next call may fail */
			__atomic_store_n(&c->fd_closed, 1, __ATOMIC_SEQ_CST);
			if (dup2(w->nullfd, c->fd) == c->fd)
				FZ_ADD(fd_closes, 1);
			else
				__atomic_store_n(&c->fd_closed, 0, __ATOMIC_SEQ_CST);
		}
		pthread_mutex_unlock(&c->lock);
	} else if (p < 40) {
		fz_doing = "chaos: mmap games";
		fz_mmap_games(w, rng);
	} else if (p < 52) {	/* through a dup, which closes meanwhile */
		fd = fz_ctx_dup(c);
		if (fd < 0)
			return;
		fz_random_ioctl(w, rng, fd, c);
		fz_enter(fd, 0, 1, QD_RAW_WAIT, fz_r(rng) % FZ_MS);
		close(fd);
	} else if (p < 62) {
		/*
		 * epoll on a context: through a dup closed at once, so the
		 * registration lives until the context's file is released.
		 */
		fd = fz_ctx_dup(c);
		if (fd < 0)
			return;
		ev.events = EPOLLIN | (fz_pct(rng) < 50 ? EPOLLET : 0);
		ev.data.u64 = 0;
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
		close(fd);
		epoll_wait(w->epfd, &ev, 1, fz_r(rng) % 3);
	} else if (p < 72) {
		fz_doing = "chaos: debugfs";
		fz_debugfs(rng, keep);
	} else {
		fd = fz_ctx_dup(c);
		if (fd < 0)
			return;
		fz_random_ioctl(w, rng, fd, c);
		close(fd);
	}
}

static void *fz_chaos_thread(void *arg)
{
	struct fz_worker *w = arg;
	unsigned long long rng = fz_mix(w->seed ^ 0xca05) | 1;
	int keep = -1, stalled = 0;

	while (!fz_stopped(w))
		fz_chaos_step(w, &rng, &keep, &stalled);
	if (keep >= 0)
		close(keep);
	return NULL;
}

/* ============================================ the newer features: engines */
/*
 * Two engines run beside the threads above in a worker (each with some
 * probability, decided by the worker's seed), in rounds of a few hundred
 * milliseconds that end in a verified drain:
 *
 *  rings ("E"): one context with 2-4 rings, one thread per ring submitting
 *  well-formed SQEs from its own ring (NOPs and pushes with and without
 *  SKIP_SUCCESS, pops, multishot pops, QD_OP_CANCEL of pending or random
 *  user_data, QD_OP_WAKE, SQEs that must be -EINVAL) and waiting in the three
 *  modes (GETEVENTS, CQ_TAIL with a fresh tail, CTX_SEQ with a fresh
 *  ctx_seq) with short timeouts; memory and mapped queues, the latter also
 *  pushed and popped through the mapped ring with the real protocol
 *  (qd_mq.h, waiters, WAKE), replaced, closed under their users and
 *  unmapped; sometimes a scribbler writes garbage into the mapped rings.
 *
 *  share ("S"): a context exports a memory queue with random rights to
 *  forked importers, each with its own context (a memfd registered by both
 *  for zero copy, private memory for copies); everyone pushes and pops
 *  (pops with a buffer: the copy path; without: -EXDEV), importers close
 *  their qd or exit or are SIGKILLed with operations pending.
 *
 * Bookkeeping (fe_check): every CQE names an SQE made on its ring, echoes
 * opcode and qd, has a result from the set the SQE allows; a SKIP_SUCCESS
 * SQE posts nothing on success; a multishot pop posts any number of CQEs
 * with MORE (each an element) then exactly one final CQE without it; no CQE
 * after the final one; a successful cancel's target (on the same ring) has
 * completed -ECANCELED before it; popped elements add up to res, name the
 * popper's regions, hold the bytes written there (every source region holds
 * a fixed pattern) or, copied, runs of that pattern in the pop's buffer; in
 * the rings engine without a scribbler, every element popped (by the kernel
 * or from the mapped ring) was pushed and not yet popped (counts per hash).
 * A successful wait says why it returned: min_complete CQEs in the ring, the
 * CQ tail or ctx_seq different from wait_seq. At the end of a round every
 * queue is closed and every non-skip SQE must get its final CQE within 30 s.
 */
#include "qd_mq_user.h"

#define FE_MAXREC	(1U << 16)	/* SQEs per ring per round */
#define FE_NBUCKET	(1U << 16)
#define FE_MAXRINGS	4
#define FE_NQ		4
#define FE_TRIES	64
#define FE_UD_MAGIC	0xfeULL

static __thread unsigned long long fz_eng_rng = 1;

enum { FE_NOP, FE_PUSH, FE_POP, FE_MPOP, FE_CANCEL, FE_WAKE, FE_BAD };
static const char *const fe_kinds[] = {
	"nop", "push", "pop", "multishot pop", "cancel", "wake", "invalid",
};

struct fe_rec {
	unsigned char	kind;
	unsigned char	skip;
	unsigned char	done;
	unsigned char	bufpop;
	unsigned char	noperm;		/* an import without the right */
	unsigned char	bufslot;	/* a pop buffer's slot + 1 (fe_buf) */
	unsigned char	pad[2];
	unsigned int	more;		/* MORE CQEs seen */
	int		qd;
	unsigned int	bytes;		/* push: the element's bytes */
	unsigned int	bucket;		/* push: its hash bucket (counted) */
	unsigned long long target;	/* cancel: user_data */
	long long	res;		/* the final CQE's */
};

/* What a popper may find: its regions, their contents. */
struct fe_env {
	int		*buckets;	/* element counts per hash, or NULL */
	int		scribbled;	/* mapped rings scribbled: -EBADMSG */
	int		has_mapped;	/* -EOPNOTSUPP for pops a mapped queue refuses */
	int		shared;		/* -EXDEV, -EMSGSIZE, copies */
	unsigned int	reglen[QD_MAX_REGIONS];	/* bytes; 0: not a region */
	char		*regmem[QD_MAX_REGIONS];
	unsigned char	dst[QD_MAX_REGIONS];	/* a pop buffer's: no pattern */
};

struct fe_ring {
	struct qd_raw	r;
	unsigned int	idx;
	struct fe_rec	*rec;
	unsigned int	made, outstanding;
	unsigned int	busy;		/* pop buffer slots in use */
	struct qd_seg	(*segs)[QD_SGA_MAX];	/* per SQ slot */
	struct fe_env	*env;
	unsigned int	*ctx_seq;
};

static unsigned char fe_pat(unsigned long long off)
{
	return off % 251;
}

static void fe_fill(char *m, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		m[i] = fe_pat(i);
}

static unsigned int fe_hash(const struct qd_seg *s, unsigned int n)
{
	unsigned long long h = n;
	unsigned int i;

	for (i = 0; i < n && i < QD_SGA_MAX; i++)
		h = fz_mix(h ^ s[i].offset ^ (unsigned long long)s[i].len << 32 ^
			   (unsigned long long)s[i].region << 48);
	return h % FE_NBUCKET;
}

static void fe_bucket_take(struct fe_env *env, unsigned int b, const char *what)
{
	if (env->buckets && __atomic_sub_fetch(&env->buckets[b], 1, __ATOMIC_RELAXED) < 0 &&
	    !__atomic_load_n(&env->scribbled, __ATOMIC_RELAXED))
		fz_violation("%s an element nobody pushed (or popped twice): bucket %u", what, b);
}

static void *fe_alloc(size_t bytes)
{
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return m == MAP_FAILED ? NULL : m;
}

static int fe_ring_init(struct fe_ring *fr, unsigned int idx, struct fe_env *env)
{
	fr->idx = idx;
	fr->env = env;
	fr->made = fr->outstanding = fr->busy = 0;
	fr->rec = fe_alloc(FE_MAXREC * sizeof(*fr->rec));
	fr->segs = fe_alloc(fr->r.sq_entries * sizeof(*fr->segs));
	return fr->rec && fr->segs ? 0 : -ENOMEM;
}

static void fe_ring_free(struct fe_ring *fr)
{
	if (fr->rec)
		munmap(fr->rec, FE_MAXREC * sizeof(*fr->rec));
	if (fr->segs)
		munmap(fr->segs, fr->r.sq_entries * sizeof(*fr->segs));
	fr->rec = NULL;
	fr->segs = NULL;
}

/* The segments of an element a pop delivered, in the popper's memory. */
static void fe_check_elem(struct fe_env *env, const char *who, const struct qd_cqe *q,
			  const struct qd_elem *e, int copied)
{
	unsigned long long sum = 0;
	unsigned int i, k, breaks = 0;
	int prev = -1;

	for (i = 0; i < q->nsegs; i++) {
		const struct qd_seg *s = &e->segs[i];
		unsigned int rl = s->region < QD_MAX_REGIONS ? env->reglen[s->region] : 0;
		const unsigned char *m;

		sum += s->len;
		if (!rl || s->offset > rl || s->len > rl - s->offset || !s->len || s->resv) {
			fz_violation("%s: segment %u (region %u offset %llu len %u resv %u) outside the popper's regions",
				     who, i, s->region, (unsigned long long)s->offset, s->len, s->resv);
			return;
		}
		if (!!env->dst[s->region] != copied &&
		    !__atomic_load_n(&env->scribbled, __ATOMIC_RELAXED)) {
			fz_violation("%s: %s element names region %u, %s", who,
				     copied ? "a copied" : "an uncopied", s->region,
				     env->dst[s->region] ? "a pop buffer" : "not a pop buffer");
			return;
		}
		if (!env->regmem[s->region] || __atomic_load_n(&env->scribbled, __ATOMIC_RELAXED))
			continue;	/* garbage from a scribbled ring may name any region */
		m = (const unsigned char *)env->regmem[s->region] + s->offset;
		for (k = 0; k < s->len; k++) {
			if (!copied && m[k] != fe_pat(s->offset + k)) {
				fz_violation("%s: element byte %u of segment %u (region %u offset %llu) is %u, its memory holds the pattern %u",
					     who, k, i, s->region, (unsigned long long)s->offset,
					     m[k], fe_pat(s->offset + k));
				return;
			}
			if (copied) {
				if (m[k] >= 251 || (prev >= 0 && m[k] != (prev + 1) % 251))
					breaks++;
				prev = m[k];
			}
		}
	}
	if (breaks > QD_SGA_MAX)
		fz_violation("%s: a copy of %lld bytes is not a copy of at most %u runs of its source (%u breaks)",
			     who, (long long)q->res, QD_SGA_MAX, breaks);
	if ((long long)sum != q->res)
		fz_violation("%s: element of %llu bytes, res %lld", who, sum, (long long)q->res);
}

/* Check one CQE of fr against the SQE that made it. */
static void fe_check(struct fe_ring *fr, const struct qd_cqe *q, const struct qd_elem *e)
{
	struct fe_env *env = fr->env;
	unsigned long long ud = q->user_data;
	unsigned int idx = ud & 0xffffffffU, ring = (ud >> 40) & 0xff;
	long long res = q->res;
	struct fe_rec *r;
	char who[64];
	int ok, more = !!(q->flags & QD_CQE_F_MORE), copied = !!(q->flags & QD_CQE_F_COPIED);

	FZ_ADD(cqes, 1);
	if (ud >> 56 != FE_UD_MAGIC || ring != fr->idx || idx >= fr->made) {
		fz_violation("ring %u: CQE with user_data %#llx that no SQE of this ring had (%u made)",
			     fr->idx, ud, fr->made);
		return;
	}
	r = &fr->rec[idx];
	snprintf(who, sizeof(who), "ring %u SQE %u (%s%s qd %d)", fr->idx, idx,
		 fe_kinds[r->kind], r->skip ? ", skip success" : "", r->qd);
	if (r->done) {
		fz_violation("%s: a CQE (res %lld flags %#x) after its final one (res %lld)",
			     who, res, q->flags, r->res);
		return;
	}
	if (q->opcode != (r->kind == FE_NOP ? QD_OP_NOP : r->kind == FE_PUSH ? QD_OP_PUSH :
			  r->kind == FE_CANCEL ? QD_OP_CANCEL : r->kind == FE_WAKE ? QD_OP_WAKE :
			  r->kind == FE_BAD ? q->opcode : QD_OP_POP) || q->qd != r->qd)
		fz_violation("%s: CQE echoes opcode %u qd %d", who, q->opcode, q->qd);
	if (q->flags & ~(QD_CQE_F_ELEM | QD_CQE_F_MORE | QD_CQE_F_COPIED) || q->resv1 || q->resv2)
		fz_violation("%s: CQE flags %#x resv %u %u", who, q->flags, q->resv1, q->resv2);
	if (more) {
		r->more++;
		if (r->kind != FE_MPOP || res <= 0 || !(q->flags & QD_CQE_F_ELEM) || copied)
			fz_violation("%s: a CQE with MORE: res %lld flags %#x", who, res, q->flags);
	}
	if (q->flags & QD_CQE_F_ELEM) {
		if (!q->nsegs || q->nsegs > QD_SGA_MAX) {
			fz_violation("%s: an element of %u segments (res %lld)", who, q->nsegs, res);
		} else if (r->kind == FE_PUSH && res < 0) {
			unsigned long long sum = 0;
			unsigned int i;

			for (i = 0; i < q->nsegs; i++)
				sum += e->segs[i].len;
			if (sum != r->bytes || fe_hash(e->segs, q->nsegs) != r->bucket)
				fz_violation("%s failed with %lld and gave back %u segments, %llu bytes, not its element of %u",
					     who, res, q->nsegs, sum, r->bytes);
		} else if ((r->kind == FE_POP || r->kind == FE_MPOP) && res > 0) {
			if (copied && !r->bufpop)
				fz_violation("%s: COPIED without a buffer", who);
			fe_check_elem(env, who, q, e, copied);
			if (copied)
				FZ_ADD(copies, 1);
			else
				fe_bucket_take(env, fe_hash(e->segs, q->nsegs), who);
		} else {
			fz_violation("%s: an element with res %lld", who, res);
		}
	} else if ((r->kind == FE_POP || r->kind == FE_MPOP) && res >= 0) {
		fz_violation("%s completed with %lld and no element", who, res);
	}
	if (more)
		return;

	/* The final CQE. */
	r->done = 1;
	r->res = res;
	if (r->bufslot)
		fr->busy &= ~(1U << (r->bufslot - 1));
	if (!r->skip)
		fr->outstanding--;
	else if (res >= 0)
		fz_violation("%s: SKIP_SUCCESS, and a CQE for its success (res %lld)", who, res);
	if (r->kind == FE_PUSH && res < 0 && env->buckets)
		__atomic_sub_fetch(&env->buckets[r->bucket], 1, __ATOMIC_RELAXED);
	switch (res) {
	case -ENOMEM:
		ok = 1;
		break;
	case -EPERM:
		ok = r->noperm;
		break;
	case -EBADF:
		ok = r->kind != FE_NOP && r->kind != FE_BAD;
		break;
	case -ECANCELED:
	case -ENOBUFS:
		ok = r->kind == FE_PUSH || r->kind == FE_POP || r->kind == FE_MPOP;
		break;
	case -EBADMSG:
		/* a multishot pop on a mapped ring ends with it, too */
		ok = (r->kind == FE_POP || r->kind == FE_PUSH ||
		      r->kind == FE_MPOP) &&
		     __atomic_load_n(&env->scribbled, __ATOMIC_RELAXED);
		break;
	case -EOPNOTSUPP:
		/* mapped queues take multishot pops, not pops with a buffer */
		ok = env->has_mapped && r->kind == FE_POP && r->bufpop;
		break;
	case -EXDEV:
		ok = env->shared && (r->kind == FE_MPOP || (r->kind == FE_POP && !r->bufpop));
		break;
	case -EMSGSIZE:
		ok = env->shared && r->kind == FE_POP && r->bufpop;
		break;
	case -ENOENT:
		ok = r->kind == FE_CANCEL;
		break;
	case -EINVAL:
		ok = r->kind == FE_BAD || r->kind == FE_WAKE;	/* not a mapped queue */
		break;
	default:
		if (res < 0)
			ok = 0;
		else if (r->kind == FE_PUSH)
			ok = res == r->bytes;
		else if (r->kind == FE_POP)
			ok = res > 0;
		else
			ok = r->kind == FE_NOP || r->kind == FE_CANCEL || r->kind == FE_WAKE ?
			     res == 0 : 0;
	}
	if (r->noperm && res >= 0)
		ok = 0;
	if (!ok)
		fz_violation("%s completed with %lld (%u MORE CQEs before)", who, res, r->more);
	if (r->kind == FE_CANCEL && !res && ((r->target >> 40) & 0xff) == fr->idx &&
	    r->target >> 56 == FE_UD_MAGIC && (r->target & 0xffffffffU) < fr->made) {
		struct fe_rec *t = &fr->rec[r->target & 0xffffffffU];

		if (!t->done || t->res != -ECANCELED)
			fz_violation("%s succeeded before its target SQE %u (%s) completed -ECANCELED (done %u res %lld)",
				     who, (unsigned int)(r->target & 0xffffffffU), fe_kinds[t->kind],
				     t->done, t->res);
	}
}

static void fe_reap(struct fe_ring *fr)
{
	unsigned int n = 0, max = 4 * fr->r.cq_entries + 64;
	struct qd_elem e;
	struct qd_cqe q;

	while (n++ < max && qd_raw_peek_cqe(&fr->r, &q, &e))
		fe_check(fr, &q, &e);
}

/* Write s (user_data set here) and its record; 0, or -EAGAIN if full. */
static int fe_queue(struct fe_ring *fr, struct qd_sqe *s, struct fe_rec *rec)
{
	unsigned int tail = *fr->r.sq_tail;

	if (fr->made >= FE_MAXREC ||
	    tail - qd_load_acquire(fr->r.sq_head) >= fr->r.sq_entries)
		return -EAGAIN;
	s->user_data = FE_UD_MAGIC << 56 | (unsigned long long)fr->idx << 40 | fr->made;
	rec->skip = !!(s->flags & QD_SQE_F_SKIP_SUCCESS);
	rec->qd = s->qd;
	fr->rec[fr->made] = *rec;
	if (!rec->skip)
		fr->outstanding++;
	fr->r.sqes[tail & fr->r.sq_mask] = *s;
	__atomic_store_n(&fr->made, fr->made + 1, __ATOMIC_RELEASE);
	qd_store_release(fr->r.sq_tail, tail + 1);
	FZ_ADD(made, 1);
	if (rec->skip)
		FZ_ADD(skips, 1);
	return 0;
}

/*
 * Enter on fr's ring: submit to_submit, wait in mode (0 none, 1 GETEVENTS,
 * 2 CQ_TAIL with a fresh tail, 3 CTX_SEQ with a fresh ctx_seq) at most
 * timeout. A wait that returns without error with nothing to submit must
 * have had its reason.
 */
static int fe_enter(struct fe_ring *fr, unsigned int to_submit, unsigned int mode,
		    long long timeout, int check)
{
	struct qd_enter e = { .to_submit = to_submit, .ring = fr->r.ring };
	unsigned int seq = 0, min = 0;
	long long t0;
	int ret;

	if (mode == 1) {
		min = 1 + fz_r(&fz_eng_rng) % 4;
		if (min > fr->r.cq_entries)
			min = fr->r.cq_entries;
		e.min_complete = min;
		e.flags = QD_ENTER_GETEVENTS;
	} else if (mode == 2) {
		seq = qd_load_acquire(fr->r.cq_tail);
		fe_reap(fr);
		e.flags = QD_ENTER_CQ_TAIL;
	} else if (mode == 3 && fr->ctx_seq) {
		seq = __atomic_load_n(fr->ctx_seq, __ATOMIC_ACQUIRE);
		fe_reap(fr);
		e.flags = QD_ENTER_CTX_SEQ;
	} else {
		mode = 0;
	}
	if (mode) {
		e.flags |= QD_ENTER_TIMEOUT;
		e.timeout_ns = timeout;
		e.wait_seq = seq;
	}
	t0 = fz_now();
	ret = fz_ioctl(fr->r.fd, QD_IOC_ENTER, &e);
	if (ret > 0)
		FZ_ADD(sqes, ret);
	if (mode && fz_now() - t0 > timeout + 20 * FZ_NS)
		fz_violation("ring %u: a wait (mode %u) for %lld ns took %lld ms", fr->idx,
			     mode, timeout, (fz_now() - t0) / FZ_MS);
	if (check && ret < 0 && ret != -ETIMEDOUT && ret != -EINTR && ret != -ENOMEM)
		fz_violation("ring %u: QD_IOC_ENTER(%u, mode %u, min %u): %d", fr->idx,
			     to_submit, mode, min, ret);
	if (check && ret == 0 && !to_submit && mode) {
		if (mode == 1 && qd_raw_cq_ready(&fr->r) < min)
			fz_violation("ring %u: GETEVENTS for %u returned 0 with %u CQEs in the ring",
				     fr->idx, min, qd_raw_cq_ready(&fr->r));
		if (mode == 2 && qd_load_acquire(fr->r.cq_tail) == seq)
			fz_violation("ring %u: CQ_TAIL wait returned 0 and the tail is still %u",
				     fr->idx, seq);
		if (mode == 3 && __atomic_load_n(fr->ctx_seq, __ATOMIC_ACQUIRE) == seq)
			fz_violation("ring %u: CTX_SEQ wait returned 0 and ctx_seq is still %u",
				     fr->idx, seq);
	}
	fe_reap(fr);
	return ret;
}

/*
 * Every non-skip SQE of the rings gets its final CQE: the caller closed
 * every queue the SQEs name (or will: close is called every second).
 */
static void fe_drain(struct fe_ring *rings, unsigned int n, const char *what,
		     void (*closer)(void *), void *arg)
{
	long long end = fz_now() + 30 * FZ_NS, next = 0;
	unsigned int i, left;

	FZ_ADD(drains, 1);
	for (;;) {
		if (fz_now() >= next) {
			closer(arg);
			next = fz_now() + FZ_NS;
		}
		left = 0;
		for (i = 0; i < n; i++) {
			struct fe_ring *fr = &rings[i];

			fe_enter(fr, qd_raw_sq_pending(&fr->r), fr->outstanding ?
				 1 + fz_r(&fz_eng_rng) % 3 : 0, 2 * FZ_MS, 1);
			left += fr->outstanding + qd_raw_sq_pending(&fr->r);
		}
		if (!left)
			return;
		if (fz_now() > end)
			break;
	}
	for (i = 0; i < n; i++) {
		struct fe_ring *fr = &rings[i];
		unsigned int k;

		for (k = 0; k < fr->made; k++)
			if (!fr->rec[k].done && !fr->rec[k].skip)
				break;
		fz_violation("%s: ring %u: %u SQEs without their final CQE 30 s after closing every queue (%u in the SQ; first: SQE %u, %s qd %d, %u MORE CQEs)",
			     what, fr->idx, fr->outstanding, qd_raw_sq_pending(&fr->r), k,
			     k < fr->made ? fe_kinds[fr->rec[k].kind] : "?",
			     k < fr->made ? fr->rec[k].qd : -1,
			     k < fr->made ? fr->rec[k].more : 0);
	}
}

/*
 * A pop buffer: up to 3 segments in one FZ_PG slot of a dst region no other
 * pending pop of this ring uses (a copy lands there before its CQE is
 * read), or none (addr/nsegs 0). *slot: the slot + 1, 0 for none.
 */
static unsigned int fe_buf(unsigned long long *rng, struct fe_ring *fr, int dst,
			   struct qd_seg *segs, unsigned int *bytes, unsigned char *slot)
{
	unsigned int n = 1 + fz_r(rng) % 3, i, k, off,
		     nslot = dst >= 0 ? fr->env->reglen[dst] / FZ_PG : 0;

	*bytes = 0;
	*slot = 0;
	if (nslot > 32)
		nslot = 32;
	for (k = 0; k < nslot && fr->busy & 1U << k; k++)
		;
	if (k == nslot)
		return 0;
	fr->busy |= 1U << k;
	*slot = k + 1;
	off = k * FZ_PG;
	for (i = 0; i < n && off < (k + 1) * FZ_PG; i++) {
		unsigned int room = (k + 1) * FZ_PG - off,
			     len = 1 + fz_r(rng) % (fz_pct(rng) < 70 ? 2048 : 64);

		if (len > room)
			len = room;
		segs[i] = qd_seg(dst, off, len);
		off += len;
		*bytes += len;
	}
	return i;
}

/* nsegs segments in the pattern regions src[0..nsrc): the element's bytes. */
static unsigned int fe_elem(unsigned long long *rng, struct fe_env *env, const int *src,
			    unsigned int nsrc, struct qd_seg *segs, unsigned int nsegs)
{
	unsigned int i, bytes = 0;

	for (i = 0; i < nsegs; i++) {
		int id = src[fz_r(rng) % nsrc];
		unsigned int rl = env->reglen[id], len = 1 + fz_r(rng) % (fz_pct(rng) < 80 ? 512 : 4096);

		if (len > rl)
			len = rl;
		segs[i] = qd_seg(id, fz_r(rng) % (rl - len + 1), len);
		bytes += len;
	}
	return bytes;
}

/*
 * One SQE on fr for queue qd: what kind decides; noperm: the qd lacks the
 * right for pushes (bit 0) / pops (bit 1). src: the regions pushes take
 * segments from; dst: a pop buffer's region (-1: none).
 */
static int fe_make(unsigned long long *rng, struct fe_ring *fr, int qd, unsigned int noperm,
		   const int *src, unsigned int nsrc, int dst, struct fe_ring *all,
		   unsigned int nall)
{
	struct qd_seg *segs = fr->segs[*fr->r.sq_tail & fr->r.sq_mask];
	struct fe_rec rec;
	struct qd_sqe s;
	unsigned int p = fz_pct(rng), bytes;

	/* the slot's segments belong to an unconsumed SQE while the SQ is full */
	if (fr->made >= FE_MAXREC ||
	    *fr->r.sq_tail - qd_load_acquire(fr->r.sq_head) >= fr->r.sq_entries)
		return -EAGAIN;
	memset(&s, 0, sizeof(s));
	memset(&rec, 0, sizeof(rec));
	s.qd = qd;
	if (p < 14) {
		rec.kind = FE_NOP;
		s.opcode = QD_OP_NOP;
		s.qd = 0;
		if (fz_pct(rng) < 30) {
			s.nop_flags = fz_pct(rng) < 50 ? QD_NOP_HARDIRQ : QD_NOP_SOFTIRQ;
			s.delay_ns = fz_r(rng) % (2 * FZ_MS);
			FZ_ADD(deferred, 1);
		}
		if (fz_pct(rng) < 60)
			s.flags = QD_SQE_F_SKIP_SUCCESS;
	} else if (p < 46) {
		rec.kind = FE_PUSH;
		s.opcode = QD_OP_PUSH;
		s.nsegs = 1 + fz_r(rng) % 4;
		rec.bytes = fe_elem(rng, fr->env, src, nsrc, segs, s.nsegs);
		rec.bucket = fe_hash(segs, s.nsegs);
		rec.noperm = noperm & 1;
		s.addr = (uintptr_t)segs;
		if (fz_pct(rng) < 45)
			s.flags = QD_SQE_F_SKIP_SUCCESS;
		/* counted before anyone can pop it; a failure uncounts it */
		if (fr->env->buckets)
			__atomic_add_fetch(&fr->env->buckets[rec.bucket], 1, __ATOMIC_RELAXED);
	} else if (p < 72) {
		rec.kind = FE_POP;
		s.opcode = QD_OP_POP;
		rec.noperm = !!(noperm & 2);
		if (fz_pct(rng) < (fr->env->shared ? 50 : 10)) {
			s.nsegs = fe_buf(rng, fr, dst, segs, &bytes, &rec.bufslot);
			s.addr = s.nsegs ? (uintptr_t)segs : 0;
			rec.bufpop = !!s.nsegs;
		}
	} else if (p < 80) {
		rec.kind = FE_MPOP;
		s.opcode = QD_OP_POP;
		s.op_flags = QD_POP_MULTISHOT;
		rec.noperm = !!(noperm & 2);
		FZ_ADD(multishots, 1);
	} else if (p < 92) {
		struct fe_ring *t = &all[fz_r(rng) % nall];
		unsigned int made = __atomic_load_n(&t->made, __ATOMIC_ACQUIRE);

		rec.kind = FE_CANCEL;
		s.opcode = QD_OP_CANCEL;
		if (made && fz_pct(rng) < 80) {
			unsigned int k = made - 1 - fz_r(rng) % (made < 16 ? made : 16);

			s.addr = FE_UD_MAGIC << 56 | (unsigned long long)t->idx << 40 | k;
			s.qd = __atomic_load_n(&t->rec[k].qd, __ATOMIC_RELAXED);
		} else {
			s.addr = fz_r(rng);
		}
		rec.target = s.addr;
		if (fz_pct(rng) < 40)
			s.flags = QD_SQE_F_SKIP_SUCCESS;
		FZ_ADD(cancels, 1);
	} else if (p < 97) {
		rec.kind = FE_WAKE;
		s.opcode = QD_OP_WAKE;
		if (fz_pct(rng) < 50)
			s.flags = QD_SQE_F_SKIP_SUCCESS;
		FZ_ADD(wakes, 1);
	} else {
		/* must be -EINVAL, whatever the queue */
		rec.kind = FE_BAD;
		switch (fz_r(rng) % 4) {
		case 0:	/* a pop with SKIP_SUCCESS */
			s.opcode = QD_OP_POP;
			s.flags = QD_SQE_F_SKIP_SUCCESS;
			break;
		case 1:	/* a multishot pop with a buffer */
			s.opcode = QD_OP_POP;
			s.op_flags = QD_POP_MULTISHOT;
			s.nsegs = fe_buf(rng, fr, dst, segs, &bytes, &rec.bufslot);
			if (!s.nsegs)
				s.op_flags |= 4;	/* unknown: -EINVAL */
			s.addr = s.nsegs ? (uintptr_t)segs : 0;
			break;
		case 2:	/* a cancel with nsegs */
			s.opcode = QD_OP_CANCEL;
			s.nsegs = 1 + fz_r(rng) % 8;
			s.flags = fz_pct(rng) < 50 ? QD_SQE_F_SKIP_SUCCESS : 0;
			break;
		default:	/* a wake with an address */
			s.opcode = QD_OP_WAKE;
			s.addr = 1 + fz_r(rng);
			s.flags = fz_pct(rng) < 50 ? QD_SQE_F_SKIP_SUCCESS : 0;
			break;
		}
	}
	return fe_queue(fr, &s, &rec);
}

/* ------------------------------------------------ the rings engine */

struct fe_q {
	pthread_rwlock_t lock;		/* h: users read, replacement writes */
	int		qd;
	int		mapped;
	struct qd_mq_hdr *h;		/* the mapped ring, or NULL */
	size_t		maplen;
	__u32		mask;		/* from creation: never the ring's */
	int		closed;		/* closed under its users, still mapped */
};

struct fe_eng {
	struct fz_worker *w;
	unsigned long long seed;
	int		fd;
	struct fe_ring	rings[FE_MAXRINGS];
	unsigned int	nrings;
	struct fe_env	env;
	struct fe_q	q[FE_NQ];
	int		src[2];
	int		dst;
	char		*mem[3];
	size_t		memlen[3];
	int		scribbler;
	int		stop;		/* the round's threads stop */
};

/* A new queue in slot i (the old one closed, its ring unmapped). */
static void fe_q_replace(struct fe_eng *E, unsigned long long *rng, unsigned int i)
{
	struct fe_q *q = &E->q[i];
	struct qd_queue_create c = { .depth = 1 + fz_r(rng) % 16 };
	void *m;
	int ret;

	if (fz_pct(rng) < 50)
		c.flags = QD_QUEUE_MAPPED;
	pthread_rwlock_wrlock(&q->lock);
	if (q->qd >= 0 && !q->closed)	/* closed: the number may be another's now */
		fz_close_qd(E->fd, q->qd);
	if (q->h)
		munmap(q->h, q->maplen);
	q->h = NULL;
	q->mapped = 0;
	q->closed = 0;
	ret = fz_ioctl(E->fd, QD_IOC_QUEUE, &c);
	__atomic_store_n(&q->qd, ret ? -1 : c.qd, __ATOMIC_RELAXED);
	if (ret) {
		if (ret != -ENOMEM && ret != -ENOBUFS && ret != -EMFILE)
			fz_violation("rings: QD_IOC_QUEUE(flags %#x): %d", c.flags, ret);
	} else if (c.flags) {
		E->env.has_mapped = 1;
		q->mapped = 1;
		FZ_ADD(mmaps, 1);
		m = mmap(NULL, c.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, E->fd,
			 (off_t)c.map_off);
		if (m == MAP_FAILED || c.map_off != QD_OFF_QUEUE(c.qd)) {
			fz_violation("rings: mmap of mapped queue %d (%u bytes at %#llx): %s",
				     c.qd, c.map_bytes, (unsigned long long)c.map_off,
				     m == MAP_FAILED ? strerror(errno) : "wrong offset");
		} else {
			q->h = m;
			q->maplen = c.map_bytes;
			q->mask = q->h->mask;
			if (q->h->entries < c.depth || q->h->entries & q->mask ||
			    q->mask + 1 != q->h->entries ||
			    qd_mq_bytes(q->h->entries) > c.map_bytes)
				fz_violation("rings: mapped queue of depth %u: entries %u mask %u in %u bytes",
					     c.depth, q->h->entries, q->mask, c.map_bytes);
		}
	}
	pthread_rwlock_unlock(&q->lock);
}

static void fe_close_all(void *arg)
{
	struct fe_eng *E = arg;
	unsigned int i;

	for (i = 0; i < FE_NQ; i++)
		if (E->q[i].qd >= 0)
			fz_close_qd(E->fd, E->q[i].qd);
	for (i = 0; i < 64; i++)	/* qds replaced meanwhile */
		fz_close_qd(E->fd, i);
}

/* Push or pop through a mapped ring with the protocol; a WAKE when told. */
static void fe_user_op(struct fe_eng *E, unsigned long long *rng, struct fe_ring *fr)
{
	struct fe_q *q = &E->q[fz_r(rng) % FE_NQ];
	struct qd_seg segs[QD_SGA_MAX];
	unsigned int b = 0, bit;
	__u16 n = 1 + fz_r(rng) % 4;
	int ret, push = fz_pct(rng) < 55, qd;

	pthread_rwlock_rdlock(&q->lock);
	if (!q->h) {
		pthread_rwlock_unlock(&q->lock);
		return;
	}
	qd = q->qd;
	FZ_ADD(mq_user, 1);
	/* our own kind parked: the kernel keeps the order, submit instead */
	bit = push ? QD_MQ_PUSH_WAITERS : QD_MQ_POP_WAITERS;
	if (__atomic_load_n(&q->h->waiters, __ATOMIC_ACQUIRE) & bit &&
	    !__atomic_load_n(&E->env.scribbled, __ATOMIC_RELAXED)) {
		pthread_rwlock_unlock(&q->lock);
		return;
	}
	if (push) {
		fe_elem(rng, &E->env, E->src, 2, segs, n);
		b = fe_hash(segs, n);
		if (E->env.buckets)
			__atomic_add_fetch(&E->env.buckets[b], 1, __ATOMIC_RELAXED);
		ret = qd_mq_produce(q->h, q->mask, segs, n, FE_TRIES);
		if (ret != QD_MQ_OK && E->env.buckets)
			__atomic_sub_fetch(&E->env.buckets[b], 1, __ATOMIC_RELAXED);
	} else {
		ret = qd_mq_consume(q->h, q->mask, segs, &n, FE_TRIES);
		if (ret == QD_MQ_OK && !__atomic_load_n(&E->env.scribbled, __ATOMIC_RELAXED)) {
			struct qd_cqe c = { .res = 0, .nsegs = n };
			unsigned int i;

			if (!n || n > QD_SGA_MAX) {
				fz_violation("rings: popped from mapped queue %d an element of %u segments",
					     qd, n);
			} else {
				for (i = 0; i < n; i++)
					c.res += segs[i].len;
				fe_check_elem(&E->env, "a pop from a mapped ring", &c,
					      (struct qd_elem *)segs, 0);
				fe_bucket_take(&E->env, fe_hash(segs, n), "a pop from a mapped ring:");
			}
		}
	}
	/* published (or freed), then look for sleepers of the other kind */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bit = push ? QD_MQ_POP_WAITERS : QD_MQ_PUSH_WAITERS;
	if (ret == QD_MQ_OK && __atomic_load_n(&q->h->waiters, __ATOMIC_ACQUIRE) & bit) {
		struct qd_sqe s = { .opcode = QD_OP_WAKE, .qd = qd };
		struct fe_rec rec = { .kind = FE_WAKE };

		if (fz_pct(rng) < 50)
			s.flags = QD_SQE_F_SKIP_SUCCESS;
		if (!fe_queue(fr, &s, &rec))
			FZ_ADD(wakes, 1);
		fe_enter(fr, qd_raw_sq_pending(&fr->r), 0, 0, 1);
	}
	pthread_rwlock_unlock(&q->lock);
}

/* Garbage into a mapped ring: seq, head/tail, nsegs, segments, waiters. */
static void fe_scribble(struct fe_eng *E, unsigned long long *rng)
{
	struct fe_q *q = &E->q[fz_r(rng) % FE_NQ];
	struct qd_mq_slot *sl;
	unsigned int v = fz_r(rng);

	pthread_rwlock_rdlock(&q->lock);
	if (!q->h) {
		pthread_rwlock_unlock(&q->lock);
		return;
	}
	__atomic_store_n(&E->env.scribbled, 1, __ATOMIC_RELAXED);
	FZ_ADD(scribbles, 1);
	sl = &qd_mq_slots(q->h)[fz_r(rng) % (q->mask + 1)];
	switch (fz_r(rng) % 9) {
	case 0: __atomic_store_n(&sl->seq, v, __ATOMIC_RELAXED); break;
	case 1: __atomic_fetch_add(&sl->seq, 1 + v % 3, __ATOMIC_RELAXED); break;
	case 2: __atomic_store_n(&q->h->tail, v % 4 ? q->h->tail + v % 5 : v, __ATOMIC_RELAXED); break;
	case 3: __atomic_store_n(&q->h->head, v % 4 ? q->h->head + v % 5 : v, __ATOMIC_RELAXED); break;
	case 4: sl->nsegs = v % 3 ? v % 12 : v; break;
	case 5: {
		struct qd_seg *g = &sl->segs[v % QD_SGA_MAX];

		switch (fz_r(rng) % 5) {
		case 0: g->region = fz_r(rng); break;
		case 1: g->offset = fz_r(rng); break;
		case 2: g->len = fz_pct(rng) < 50 ? 0 : (__u32)fz_r(rng); break;
		case 3: g->resv = fz_r(rng); break;
		default: g->offset = ~0ULL - fz_r(rng) % 4096; g->len = 4096; break;
		}
		break;
	}
	case 6: q->h->entries = v; q->h->mask = v >> 3; break;
	case 7: __atomic_store_n(&q->h->waiters, v, __ATOMIC_RELAXED); break;
	default: sl->resv0 = v; sl->resv[v % 2] = v; break;
	}
	pthread_rwlock_unlock(&q->lock);
}

struct fe_thr {
	struct fe_eng	*E;
	unsigned int	i;
};

static void *fe_ring_thread(void *arg)
{
	struct fe_thr *t = arg;
	struct fe_eng *E = t->E;
	struct fe_ring *fr = &E->rings[t->i];
	unsigned long long rng = fz_mix(E->seed ^ (0x7100 + t->i)) | 1;
	unsigned int p, n;

	fz_eng_rng = fz_mix(rng) | 1;
	fz_doing = "rings engine: a ring thread";
	while (!__atomic_load_n(&E->stop, __ATOMIC_RELAXED)) {
		p = fz_pct(&rng);
		if (p < 55) {
			for (n = 1 + fz_r(&rng) % 8; n; n--) {
				int qd = __atomic_load_n(&E->q[fz_r(&rng) % FE_NQ].qd, __ATOMIC_RELAXED);

				if (fz_pct(&rng) < 3)
					qd = 200 + fz_r(&rng) % 50;	/* not a qd: -EBADF */
				if (fe_make(&rng, fr, qd, 0, E->src, 2, E->dst, E->rings, E->nrings))
					break;
			}
			fe_enter(fr, fz_pct(&rng) < 90 ? qd_raw_sq_pending(&fr->r) :
				 fz_r(&rng) % (qd_raw_sq_pending(&fr->r) + 1),
				 fz_r(&rng) % 4, fz_r(&rng) % (2 * FZ_MS), 1);
		} else if (p < 80) {
			fe_user_op(E, &rng, fr);
		} else if (p < 92) {
			fe_enter(fr, 0, 1 + fz_r(&rng) % 3, fz_r(&rng) % (3 * FZ_MS), 1);
		} else if (p < 95 && t->i == 0) {
			unsigned int i = fz_r(&rng) % FE_NQ;

			if (fz_pct(&rng) < 30) {	/* closed under its users, still mapped */
				pthread_rwlock_wrlock(&E->q[i].lock);
				if (E->q[i].qd >= 0 && !E->q[i].closed)
					fz_close_qd(E->fd, E->q[i].qd);
				E->q[i].closed = 1;
				pthread_rwlock_unlock(&E->q[i].lock);
			} else {
				fe_q_replace(E, &rng, i);
			}
		} else if (p < 97) {
			/* another mapping of a queue's ring, read and dropped */
			int qd = __atomic_load_n(&E->q[fz_r(&rng) % FE_NQ].qd, __ATOMIC_RELAXED);
			size_t len = FZ_PG * (1 + fz_r(&rng) % 3);
			volatile char *m;

			FZ_ADD(mmaps, 1);
			m = mmap(NULL, len, PROT_READ, MAP_SHARED, E->fd,
				 (off_t)QD_OFF_QUEUE(qd < 0 ? 0 : qd));
			if (m != MAP_FAILED) {
				(void)m[0];
				munmap((void *)m, len);
			}
		} else if (t->i == 0) {
			/* export: a memory queue's works, a mapped one's is refused */
			struct fe_q *q = &E->q[fz_r(&rng) % FE_NQ];
			struct qd_queue_export x = { .rights = 1 + fz_r(&rng) % 3 };
			int ret;

			pthread_rwlock_rdlock(&q->lock);
			x.qd = q->qd;
			ret = fz_ioctl(E->fd, QD_IOC_QUEUE_EXPORT, &x);
			if (!ret)
				close(x.fd);
			if (q->qd >= 0 && !q->closed && ret != (q->mapped ? -EOPNOTSUPP : 0) &&
			    ret != -EBADF && ret != -ENOMEM && ret != -EMFILE)
				fz_violation("rings: QD_IOC_QUEUE_EXPORT of %s queue %d: %d",
					     q->mapped ? "mapped" : "memory", q->qd, ret);
			pthread_rwlock_unlock(&q->lock);
		}
	}
	return NULL;
}

static void *fe_scribble_thread(void *arg)
{
	struct fe_eng *E = arg;
	unsigned long long rng = fz_mix(E->seed ^ 0x5c1b) | 1;

	fz_doing = "rings engine: scribbling";
	while (!__atomic_load_n(&E->stop, __ATOMIC_RELAXED)) {
		fe_scribble(E, &rng);
		if (fz_pct(&rng) < 50)
			qd_sleep_ms(fz_r(&rng) % 2);
	}
	return NULL;
}

/* One round: a context with rings, queues and threads, then a drain. */
static void fe_round(struct fz_worker *w, unsigned long long *rng, unsigned long long seed)
{
	struct fe_eng *E = calloc(1, sizeof(*E));
	pthread_t th[FE_MAXRINGS + 1];
	struct fe_thr ta[FE_MAXRINGS];
	unsigned int i, nth = 0, id;
	long long until;
	int ret, killed_mid = 0;

	if (!E)
		return;
	E->w = w;
	E->seed = seed;
	E->dst = -1;
	for (i = 0; i < FE_NQ; i++) {
		pthread_rwlock_init(&E->q[i].lock, NULL);
		E->q[i].qd = -1;
	}
	E->rings[0].r.fd = -1;
	if (qd_raw_init(&E->rings[0].r, 1U << (2 + fz_r(rng) % 5), 0)) {
		free(E);
		qd_sleep_ms(1);
		return;
	}
	FZ_ADD(contexts, 1);
	FZ_ADD(mmaps, 2);
	E->fd = E->rings[0].r.fd;
	E->nrings = 2 + fz_r(rng) % (FE_MAXRINGS - 1);
	for (i = 1; i < E->nrings; i++) {
		unsigned int sq = 1U << fz_r(rng) % 7;

		ret = qd_raw_ring_create(&E->rings[0].r, &E->rings[i].r, sq,
					 fz_pct(rng) < 50 ? 0 : sq << fz_r(rng) % 3);
		FZ_ADD(ioctls, 1);
		if (ret) {
			if (ret != -ENOBUFS && ret != -ENOMEM)
				fz_violation("rings: QD_IOC_RING: %d", ret);
			break;
		}
		FZ_ADD(rings, 1);
		FZ_ADD(mmaps, 2);
		if (E->rings[i].r.ring != i)
			fz_violation("rings: QD_IOC_RING number %u returned ring %u", i,
				     E->rings[i].r.ring);
	}
	E->nrings = i;
	E->env.scribbled = 0;
	E->scribbler = fz_pct(rng) < 35;
	if (!E->scribbler)
		E->env.buckets = fe_alloc(FE_NBUCKET * sizeof(int));
	for (i = 0; i < 3; i++) {
		E->memlen[i] = FZ_PG * (2 + fz_r(rng) % 8);
		E->mem[i] = fz_region_mem(rng, E->memlen[i]);
		if (!E->mem[i] || fz_register(E->fd, E->mem[i], E->memlen[i], &id)) {
			if (E->mem[i])
				munmap(E->mem[i], E->memlen[i]);
			E->mem[i] = NULL;
			goto out;
		}
		if (i < 2) {
			fe_fill(E->mem[i], E->memlen[i]);
			E->src[i] = id;
		} else {
			E->dst = id;
			E->env.dst[id] = 1;
		}
		E->env.reglen[id] = E->memlen[i];
		E->env.regmem[id] = E->mem[i];
	}
	for (i = 0; i < E->nrings; i++) {
		if (fe_ring_init(&E->rings[i], i, &E->env))
			goto out;
		E->rings[i].ctx_seq = E->rings[0].r.ctx_seq;
	}
	for (i = 0; i < FE_NQ; i++)
		fe_q_replace(E, rng, i);
	for (i = 0; i < E->nrings; i++) {
		ta[i].E = E;
		ta[i].i = i;
		if (!pthread_create(&th[nth], NULL, fe_ring_thread, &ta[i]))
			nth++;
	}
	if (E->scribbler && !pthread_create(&th[nth], NULL, fe_scribble_thread, E))
		nth++;
	until = fz_now() + (50 + fz_r(rng) % 400) * FZ_MS;
	while (fz_now() < until && !fz_stopped(w))
		qd_sleep_ms(5);
	__atomic_store_n(&E->stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	/* now and then the context goes with everything pending */
	killed_mid = fz_pct(rng) < 15;
	if (killed_mid) {
		if (fz_pct(rng) < 50)
			fe_enter(&E->rings[0], qd_raw_sq_pending(&E->rings[0].r), 0, 0, 1);
		for (i = 0; i < E->nrings; i++)
			qd_raw_unmap(&E->rings[i].r);
		close(E->fd);
		E->fd = -1;
	}
	if (!killed_mid) {
		fz_doing = "rings engine: draining";
		fe_drain(E->rings, E->nrings, "rings", fe_close_all, E);
	}
out:
	for (i = 0; i < FE_NQ; i++)
		if (E->q[i].h)
			munmap(E->q[i].h, E->q[i].maplen);
	if (!killed_mid) {
		for (i = 0; i < E->nrings; i++)
			qd_raw_unmap(&E->rings[i].r);
		close(E->fd);
	}
	for (i = 0; i < E->nrings; i++)
		fe_ring_free(&E->rings[i]);
	for (i = 0; i < 3; i++)
		if (E->mem[i])
			munmap(E->mem[i], E->memlen[i]);
	if (E->env.buckets)
		munmap(E->env.buckets, FE_NBUCKET * sizeof(int));
	FZ_ADD(rounds, 1);
	free(E);
}

static void *fe_rings_thread(void *arg)
{
	struct fz_worker *w = arg;
	unsigned long long rng = fz_mix(w->seed ^ 0x717) | 1;

	fz_eng_rng = fz_mix(rng ^ 1) | 1;
	while (!fz_stopped(w))
		fe_round(w, &rng, fz_r(&rng));
	return NULL;
}

/* ------------------------------------------------ the share engine */

#define FS_MAXKIDS	3

/*
 * A context of the share engine: ring 0, a pattern region of the shared
 * memfd (when it registered it), one of private memory, a pop buffer region.
 */
struct fs_ctx {
	struct fe_ring	fr;
	struct fe_env	env;
	int		src[2];
	unsigned int	nsrc;
	int		dst;
	char		*priv, *buf;
	int		qd;
	unsigned int	noperm;
};

#define FS_PRIV		(8 * FZ_PG)
#define FS_SHM		(16 * FZ_PG)

/* 0, or -1: nothing to release but what fs_ctx_exit() releases. */
static int fs_ctx_init(struct fs_ctx *c, unsigned long long *rng, char *shm)
{
	unsigned int id;

	memset(c, 0, sizeof(*c));
	c->qd = -1;
	c->dst = -1;
	if (qd_raw_init(&c->fr.r, 1U << (3 + fz_r(rng) % 4), 0)) {
		c->fr.r.fd = -1;
		return -1;
	}
	FZ_ADD(contexts, 1);
	c->env.shared = 1;
	if (shm && !fz_register(c->fr.r.fd, shm, FS_SHM, &id)) {
		c->src[c->nsrc++] = id;
		c->env.reglen[id] = FS_SHM;
		c->env.regmem[id] = shm;
	}
	c->priv = qd_raw_pages(FS_PRIV);
	c->buf = qd_raw_pages(FS_PRIV);
	if (!c->priv || !c->buf)
		return -1;
	fe_fill(c->priv, FS_PRIV);
	if (!fz_register(c->fr.r.fd, c->priv, FS_PRIV, &id)) {
		c->src[c->nsrc++] = id;
		c->env.reglen[id] = FS_PRIV;
		c->env.regmem[id] = c->priv;
	}
	if (!fz_register(c->fr.r.fd, c->buf, FS_PRIV, &id)) {
		c->dst = id;
		c->env.reglen[id] = FS_PRIV;
		c->env.regmem[id] = c->buf;
		c->env.dst[id] = 1;
	}
	if (!c->nsrc)
		return -1;
	return fe_ring_init(&c->fr, 0, &c->env);
}

static void fs_ctx_exit(struct fs_ctx *c)
{
	qd_raw_exit(&c->fr.r);
	fe_ring_free(&c->fr);
	if (c->priv)
		munmap(c->priv, FS_PRIV);
	if (c->buf)
		munmap(c->buf, FS_PRIV);
}

static void fs_close(void *arg)
{
	struct fs_ctx *c = arg;

	if (c->qd >= 0)
		fz_close_qd(c->fr.r.fd, c->qd);
	c->qd = -1;
}

/* A few SQEs on c's queue (or, rarely, a bad qd), an enter, a reap. */
static void fs_step(struct fs_ctx *c, unsigned long long *rng)
{
	unsigned int n;

	for (n = 1 + fz_r(rng) % 6; n; n--)
		if (fe_make(rng, &c->fr, fz_pct(rng) < 97 || c->qd < 0 ? c->qd : 300,
			    c->noperm, c->src, c->nsrc, c->dst, &c->fr, 1))
			break;
	fe_enter(&c->fr, qd_raw_sq_pending(&c->fr.r), fz_r(rng) % 4,
		 fz_r(rng) % (2 * FZ_MS), 1);
}

/*
 * A shared mapped queue's side games: bind one of c's regions, look a
 * binding up (the answer must be one of c's regions), and, in a scribbling
 * round, write garbage into the mapped ring h.
 */
static void fs_mapped_step(struct fs_ctx *c, unsigned long long *rng,
			   struct qd_mq_hdr *h, unsigned int entries, int scrib)
{
	struct qd_queue_bind b = { .qd = c->qd };
	struct qd_mq_slot *sl;
	int ret;

	if (c->qd < 0)
		return;
	FZ_ADD(binds, 1);
	if (c->noperm) {	/* without both rights: no ring, no bindings */
		ret = fz_ioctl(c->fr.r.fd, QD_IOC_QUEUE_BIND, &b);
		if (ret != -EPERM && ret != -EBADF)
			fz_violation("share: QD_IOC_QUEUE_BIND without both rights: %d", ret);
		return;
	}
	if (fz_pct(rng) < 50) {
		b.region = c->src[fz_r(rng) % c->nsrc];
		ret = fz_ioctl(c->fr.r.fd, QD_IOC_QUEUE_BIND, &b);
		if (ret && ret != -ENOSPC && ret != -EBADF && ret != -ENOMEM)
			fz_violation("share: QD_IOC_QUEUE_BIND of region %u: %d", b.region, ret);
		if (!ret && b.index >= QD_MQ_MAX_BINDINGS)
			fz_violation("share: QD_IOC_QUEUE_BIND gave index %u", b.index);
	} else {
		b.flags = QD_BIND_LOOKUP;
		b.index = fz_r(rng) % (QD_MQ_MAX_BINDINGS + 1);
		ret = fz_ioctl(c->fr.r.fd, QD_IOC_QUEUE_BIND, &b);
		if (ret && ret != -ENOENT && ret != -EXDEV && ret != -EBADF &&
		    ret != -ENOSPC && ret != -ENOMEM)
			fz_violation("share: QD_BIND_LOOKUP of binding %u: %d", b.index, ret);
		if (!ret && (b.region >= QD_MAX_REGIONS || !c->env.reglen[b.region] ||
			     b.offset >= c->env.reglen[b.region]))
			fz_violation("share: QD_BIND_LOOKUP of binding %u: region %u offset %llu, not ours",
				     b.index, b.region, (unsigned long long)b.offset);
	}
	if (!h || !scrib || fz_pct(rng) < 70)
		return;
	FZ_ADD(scribbles, 1);
	sl = &qd_mq_slots(h)[fz_r(rng) % entries];
	switch (fz_r(rng) % 5) {
	case 0: __atomic_fetch_add(&sl->seq, 1, __ATOMIC_RELAXED); break;
	case 1: sl->nsegs = fz_r(rng) % (QD_SGA_MAX + 3); break;
	case 2: sl->segs[fz_r(rng) % QD_SGA_MAX].region = fz_r(rng) % (QD_MQ_MAX_BINDINGS + 2); break;
	case 3: sl->segs[fz_r(rng) % QD_SGA_MAX].offset = fz_r(rng) % (2 * FS_SHM); break;
	default: __atomic_store_n(&h->waiters, fz_r(rng), __ATOMIC_RELAXED); break;
	}
}

/* An importer: in a forked child of a threaded process, syscalls only. */
static int fs_child(unsigned long long seed, int efd, unsigned int rights, char *shm,
		    long long life_ms, int sm, int scrib)
{
	struct qd_mq_hdr *h = NULL;
	unsigned int entries = 0;
	unsigned long long rng = seed | 1;
	struct qd_queue_import im = { .fd = efd };
	struct fs_ctx c;
	long long end = fz_now() + life_ms * FZ_MS;
	int ret;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fz_eng_rng = fz_mix(seed) | 1;
	snprintf(fz_who + strlen(fz_who), sizeof(fz_who) - strlen(fz_who), " importer");
	fz_doing = "share engine: an importer";
	if (fs_ctx_init(&c, &rng, fz_pct(&rng) < 70 ? shm : NULL)) {
		fs_ctx_exit(&c);
		return 0;
	}
	if (fz_pct(&rng) < 10) {	/* not a queue's fd */
		struct qd_queue_import bad = { .fd = c.fr.r.fd };

		ret = fz_ioctl(c.fr.r.fd, QD_IOC_QUEUE_IMPORT, &bad);
		if (ret != -EINVAL)
			fz_violation("share: QD_IOC_QUEUE_IMPORT of a context's fd: %d", ret);
	}
	ret = fz_ioctl(c.fr.r.fd, QD_IOC_QUEUE_IMPORT, &im);
	if (ret) {
		/* -EBADF: the exporter closed its handle, the last one */
		if (ret != -ENOMEM && ret != -EMFILE && ret != -EBADF)
			fz_violation("share: QD_IOC_QUEUE_IMPORT: %d", ret);
		fs_ctx_exit(&c);
		return 0;
	}
	FZ_ADD(imports, 1);
	if (im.rights != rights || im.qd < 0)
		fz_violation("share: imported qd %d with rights %#x, exported %#x", im.qd,
			     im.rights, rights);
	c.qd = im.qd;
	c.env.scribbled = scrib;
	/* the ring is offered to an import of a shared mapped queue with both rights */
	if (!!im.map_bytes != (sm && rights == QD_SHARE_ALL) ||
	    (im.map_bytes && im.map_off != QD_OFF_QUEUE(im.qd)))
		fz_violation("share: import with rights %#x of a %s queue: map %u bytes at %#llx",
			     rights, sm ? "shared mapped" : "memory", im.map_bytes,
			     (unsigned long long)im.map_off);
	if (im.map_bytes) {
		void *m = mmap(NULL, im.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
			       c.fr.r.fd, (off_t)im.map_off);

		FZ_ADD(mmaps, 1);
		if (m == MAP_FAILED) {
			fz_violation("share: mmap of an imported ring: %s", strerror(errno));
		} else {
			h = m;
			entries = h->mask + 1;
			if (entries & h->mask || qd_mq_bytes(entries) > im.map_bytes)
				fz_violation("share: imported ring of %u entries in %u bytes",
					     entries, im.map_bytes);
		}
	}
	c.noperm = (rights & QD_SHARE_PUSH ? 0 : 1) | (rights & QD_SHARE_POP ? 0 : 2);
	if (fz_pct(&rng) < 15) {	/* a re-export grants no more than it has */
		struct qd_queue_export x = { .qd = c.qd, .rights = 1 + fz_r(&rng) % 3 };

		ret = fz_ioctl(c.fr.r.fd, QD_IOC_QUEUE_EXPORT, &x);
		if (!ret)
			close(x.fd);
		if (ret != (x.rights & ~rights ? -EPERM : 0) && ret != -ENOMEM && ret != -EMFILE)
			fz_violation("share: re-export with rights %#x of an import with %#x: %d",
				     x.rights, rights, ret);
	}
	close(efd);
	while (fz_now() < end) {
		fs_step(&c, &rng);
		if (sm && fz_pct(&rng) < 20)
			fs_mapped_step(&c, &rng, h, entries, scrib);
	}
	if (fz_pct(&rng) < 75) {	/* close the import: everything ends */
		fz_doing = "share engine: an importer draining";
		fe_drain(&c.fr, 1, "share importer", fs_close, &c);
	}
	/* else exit with operations pending */
	fs_ctx_exit(&c);
	if (h)
		munmap(h, qd_mq_bytes(entries));
	return 0;
}

/* One round: an exporter, importers forked, killed, closing. */
static void fs_round(struct fz_worker *w, unsigned long long *rng)
{
	struct qd_queue_export x;
	struct fs_ctx c;
	pid_t kids[FS_MAXKIDS];
	int killed[FS_MAXKIDS] = { 0 };
	unsigned int nk = 0, i, rights;
	long long until;
	char *shm = NULL;
	int mfd, ret, st, sm = fz_pct(rng) < 50, scrib = sm && fz_pct(rng) < 25;

	memset(kids, 0, sizeof(kids));
	mfd = memfd_create("qd-fuzz-share", MFD_CLOEXEC);
	if (mfd >= 0 && !ftruncate(mfd, FS_SHM)) {
		shm = mmap(NULL, FS_SHM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (shm == MAP_FAILED)
			shm = NULL;
		else
			fe_fill(shm, FS_SHM);
	}
	if (mfd >= 0)
		close(mfd);
	if (fs_ctx_init(&c, rng, shm))
		goto out;
	if (sm) {
		/* a shared mapped queue: the kernel's path, bindings, scribbles */
		struct qd_queue_create qc = {
			.depth = 1 + fz_r(rng) % 16,
			.flags = QD_QUEUE_MAPPED | QD_QUEUE_SHARED,
		};

		ret = fz_ioctl(c.fr.r.fd, QD_IOC_QUEUE, &qc);
		if (ret) {
			if (ret != -ENOMEM && ret != -ENOBUFS && ret != -EMFILE)
				fz_violation("share: QD_IOC_QUEUE shared mapped: %d", ret);
			goto out;
		}
		c.qd = qc.qd;
		c.env.scribbled = scrib;
		FZ_ADD(shared_mapped, 1);
	} else if (fz_queue(w, c.fr.r.fd, 1 + fz_r(rng) % 16, &c.qd)) {
		goto out;
	}
	if (fz_pct(rng) < 5) {	/* no rights, unknown rights */
		memset(&x, 0, sizeof(x));
		x.qd = c.qd;
		x.rights = fz_pct(rng) < 50 ? 0 : 4;
		ret = fz_ioctl(c.fr.r.fd, QD_IOC_QUEUE_EXPORT, &x);
		if (!ret)
			close(x.fd);
		if (ret != -EINVAL)
			fz_violation("share: QD_IOC_QUEUE_EXPORT with rights %#x: %d", x.rights, ret);
	}
	memset(&x, 0, sizeof(x));
	x.qd = c.qd;
	x.rights = rights = 1 + fz_r(rng) % 3;
	ret = fz_ioctl(c.fr.r.fd, QD_IOC_QUEUE_EXPORT, &x);
	if (ret) {
		if (ret != -ENOMEM && ret != -EMFILE)
			fz_violation("share: QD_IOC_QUEUE_EXPORT with rights %#x: %d", rights, ret);
		goto out;
	}
	for (i = 1 + fz_r(rng) % FS_MAXKIDS; i; i--) {
		unsigned long long seed = fz_r(rng);
		long long life = 20 + fz_r(rng) % 300;
		pid_t pid;

		FZ_ADD(importers, 1);
		pid = fork();
		if (pid == 0)
			_exit(fs_child(seed, x.fd, rights, shm, life, sm, scrib));
		if (pid > 0)
			kids[nk++] = pid;
	}
	close(x.fd);
	until = fz_now() + (50 + fz_r(rng) % 350) * FZ_MS;
	fz_doing = "share engine: the exporter";
	while (fz_now() < until && !fz_stopped(w)) {
		unsigned int p = fz_pct(rng);

		if (p < 85) {
			fs_step(&c, rng);
		} else if (p < 86 && sm) {
			fs_mapped_step(&c, rng, NULL, 0, 0);
		} else if (p < 87 && nk && fz_pct(rng) < 25) {	/* an importer killed, ops pending */
			i = fz_r(rng) % nk;
			if (!killed[i] && !kill(kids[i], SIGKILL)) {
				killed[i] = 1;
				FZ_ADD(importer_kills, 1);
			}
		} else if (p < 88 && fz_pct(rng) < 20) {	/* our handle closed: the importers carry on */
			fs_close(&c);
		} else {
			fe_enter(&c.fr, 0, 1 + fz_r(rng) % 3, fz_r(rng) % (3 * FZ_MS), 1);
		}
	}
	for (i = 0; i < nk; i++) {
		long long end = fz_now() + 60 * FZ_NS;

		if (fz_pct(rng) < 40)
			kill(kids[i], SIGKILL);
		while ((ret = waitpid(kids[i], &st, WNOHANG)) == 0 && fz_now() < end)
			qd_sleep_ms(2);
		if (ret == 0) {
			fz_violation("share: an importer still running 60 s after its end: killed");
			kill(kids[i], SIGKILL);
			waitpid(kids[i], &st, 0);
		} else if (ret == kids[i] && !(WIFEXITED(st) && !WEXITSTATUS(st)) &&
			   !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
			fz_violation("share: an importer %s %d",
				     WIFSIGNALED(st) ? "died of signal" : "exited with",
				     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		}
	}
	fz_doing = "share engine: draining";
	fe_drain(&c.fr, 1, "share exporter", fs_close, &c);
out:
	fs_ctx_exit(&c);
	if (shm)
		munmap(shm, FS_SHM);
	FZ_ADD(rounds, 1);
}

static void *fs_thread(void *arg)
{
	struct fz_worker *w = arg;
	unsigned long long rng = fz_mix(w->seed ^ 0x5a5e) | 1;

	fz_eng_rng = fz_mix(rng ^ 2) | 1;
	while (!fz_stopped(w))
		fs_round(w, &rng);
	return NULL;
}

/* A worker process: returns its exit status. */
static int fz_worker_run(unsigned int wi, unsigned int g, unsigned long long seed,
			 int killmode, long long deadline, const char *exe)
{
	struct fz_worker *w = calloc(1, sizeof(*w));
	unsigned long long rng = seed;
	unsigned long long v0 = __atomic_load_n(&fz_cnt->violations, __ATOMIC_RELAXED);
	static const int sigs[] = { SIGBUS, SIGSEGV, SIGILL, SIGFPE, SIGABRT };
	struct sigaction sa = { .sa_sigaction = fz_crash, .sa_flags = SA_SIGINFO };
	pthread_t control, chaos, eng_rings = 0, eng_share = 0;
	unsigned long long erng;
	int i;

	if (!w)
		return 3;
	snprintf(fz_who, sizeof(fz_who), "w%u.g%u (seed %#llx)", wi, g, seed);
	for (i = 0; i < 5; i++)
		sigaction(sigs[i], &sa, NULL);
	w->w = wi;
	w->g = g;
	w->seed = seed;
	w->killmode = killmode;
	w->stall = killmode && fz_pct(&rng) < 30;
	w->deadline = deadline;
	w->exe = exe;
	w->guard = mmap(NULL, 2 * FZ_PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w->hole = mmap(NULL, FZ_PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->guard == MAP_FAILED || w->hole == MAP_FAILED)
		return 3;
	mprotect(w->guard + FZ_PG, FZ_PG, PROT_NONE);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (w->nullfd < 0)
		return 3;
	w->maxqd = 16;
	for (i = 0; i < FZ_NCTX; i++) {
		pthread_mutex_init(&w->ctx[i].lock, NULL);
		w->ctx[i].fd = -1;
	}
	if (pthread_create(&control, NULL, fz_control_thread, w) ||
	    pthread_create(&chaos, NULL, fz_chaos_thread, w))
		return 3;
	/* the engines, from their own stream: the other threads' is unchanged */
	erng = fz_mix(seed ^ 0xe9e9) | 1;
	i = fz_pct(&erng);	/* rings 40%, share 25%, both 35% */
	if (i < 75 && pthread_create(&eng_rings, NULL, fe_rings_thread, w))
		return 3;
	if (i >= 40 && pthread_create(&eng_share, NULL, fs_thread, w))
		return 3;
	while (killmode || fz_now() < deadline)
		fz_main_step(w, &rng);
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED);
	pthread_join(control, NULL);
	pthread_join(chaos, NULL);
	if (eng_rings)
		pthread_join(eng_rings, NULL);
	if (eng_share)
		pthread_join(eng_share, NULL);
	for (i = 0; i < FZ_NCTX; i++)
		if (w->ctx[i].live)
			fz_ctx_retire(w, &rng, &w->ctx[i], 1);
	return __atomic_load_n(&fz_cnt->violations, __ATOMIC_RELAXED) != v0;
}

/* ---------------------------------------------------------------- master */

struct fz_conf {
	unsigned long long seed;
	unsigned int secs;
	unsigned int workers;
	int replay_w, replay_g;		/* -1: a whole campaign */
};

struct fz_plan {
	unsigned long long seed;
	int killmode;
	unsigned int life_ms;
};

static void fz_plan_of(const struct fz_conf *cf, unsigned int w, unsigned int g,
		       struct fz_plan *p)
{
	unsigned long long x = fz_seed(cf->seed, w, g);
	unsigned int span = cf->secs * 250;

	if (span < 1000)
		span = 1000;
	if (span > 12000)
		span = 12000;
	p->seed = x;
	x = fz_mix(x);
	p->killmode = x % 100 < 50;
	p->life_ms = 300 + (x >> 8) % span;
}

struct fz_slot {
	pid_t		pid;
	unsigned int	g;
	struct fz_plan	plan;
	long long	kill_at;	/* killmode: when the master kills it */
	long long	watchdog;	/* exit mode: when it is overdue */
	long long	killed_at;
	int		abandoned;
};

static const char *const fz_params[] = {
	"/sys/module/qd/parameters/max_queued",
	"/sys/module/qd/parameters/max_user_queued",
	"/sys/module/qd/parameters/max_user_contexts",
};

static long long fz_read_param(const char *path)
{
	char buf[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtoll(buf, NULL, 0);
}

static int fz_write_param(const char *path, long long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), n, ret;

	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%lld\n", v);
	ret = write(fd, buf, n) == n ? 0 : -errno;
	close(fd);
	FZ_ADD(param_writes, 1);
	return ret;
}

/* /proc/qd by key: the counts that must return to zero. */
static const char *const fz_idle_keys[] = {
	"contexts", "queues", "regions", "pinned_pages", "inflight", "queued",
};

static int fz_proc_counts(long long v[6])
{
	char line[256], key[64];
	long long x;
	unsigned int i;
	FILE *f = fopen(QD_PROC_PATH, "re");

	for (i = 0; i < 6; i++)
		v[i] = i == 5 ? 0 : -1;	/* "queued": new in version 2 */
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lld", key, &x) != 2)
			continue;
		for (i = 0; i < 6; i++)
			if (!strcmp(key, fz_idle_keys[i]))
				v[i] = x;
	}
	fclose(f);
	return 0;
}

/* The master's own noise: /proc/qd and every context's debugfs files. */
static void fz_master_read(unsigned long long *rng)
{
	char path[512], buf[4096];
	struct dirent *d;
	long long v[6];
	DIR *dir;
	int fd;

	fz_proc_counts(v);
	if (fz_pct(rng) < 70)
		return;
	dir = opendir(QD_DEBUGFS_DIR);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%.200s/%s", QD_DEBUGFS_DIR, d->d_name,
			 (const char *[]){ "info", "queues", "regions" }[fz_r(rng) % 3]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	closedir(dir);
}

static void fz_spawn(const struct fz_conf *cf, struct fz_slot *s, unsigned int wi,
		     unsigned int g, long long end, const char *exe)
{
	long long now = fz_now(), stop;
	pid_t pid;

	fz_plan_of(cf, wi, g, &s->plan);
	stop = now + s->plan.life_ms * FZ_MS;
	if (stop > end)
		stop = end;
	s->g = g;
	s->kill_at = s->plan.killmode ? stop : 0;
	s->watchdog = s->plan.killmode ? 0 : stop + 120 * FZ_NS;
	s->killed_at = 0;
	s->abandoned = 0;
	fz_say("# w%u.g%u seed %#llx: %s after %u ms", wi, g, s->plan.seed,
	       s->plan.killmode ? "SIGKILL" : "exit", s->plan.life_ms);
	FZ_ADD(workers, 1);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fz_worker_run(wi, g, s->plan.seed, s->plan.killmode, stop, exe));
	}
	if (pid < 0) {
		fz_violation("fork: %s", strerror(errno));
		s->pid = 0;
		return;
	}
	s->pid = pid;
}

struct fz_result {
	unsigned long long violations;
	int proc_idle;		/* /proc/qd back to zero */
	int workers_ok;		/* no worker died otherwise than planned */
	double secs;
	struct fz_counters c;
	long long left[6];
};

static void fz_summary(const struct fz_result *r)
{
	const struct fz_counters *c = &r->c;

	fz_say("# fuzz: %.0f s: %llu SQEs made, %llu consumed (%llu random or mutated, %llu deferred NOPs), %llu CQEs checked",
	       r->secs, c->made, c->sqes, c->mutated, c->deferred, c->cqes);
	fz_say("# fuzz: %llu ioctls (%llu random), %llu mmaps, %llu contexts, %llu regions, %llu forks, %llu workers (%llu SIGKILLed), %llu ring corruptions, %llu fd closes, %llu drains, %llu stalls, %llu parameter writes",
	       c->ioctls, c->random_ioctls, c->mmaps, c->contexts, c->regions,
	       c->forks, c->workers, c->kills, c->corruptions, c->fd_closes,
	       c->drains, c->stalls, c->param_writes);
	fz_say("# fuzz: engines: %llu rounds, %llu extra rings, %llu SKIP_SUCCESS SQEs, %llu multishot pops, %llu cancels, %llu wakes, %llu mapped-ring pushes/pops, %llu scribbles, %llu importers (%llu imports, %llu SIGKILLed), %llu copied pops, %llu shared mapped rounds, %llu binds",
	       c->rounds, c->rings, c->skips, c->multishots, c->cancels, c->wakes,
	       c->mq_user, c->scribbles, c->importers, c->imports, c->importer_kills,
	       c->copies, c->shared_mapped, c->binds);
	fz_say("# fuzz: %llu derived queues made (control threads, random ioctls)", c->derived);
	fz_say("# fuzz: %llu violations", r->violations);
}

static void fz_campaign(const struct fz_conf *cf, struct fz_result *res)
{
	struct fz_slot slots[FZ_MAX_WORKERS];
	long long start = fz_now(), end = start + cf->secs * FZ_NS, now;
	long long next_print = start + 60 * FZ_NS, param_until = 0, param_next;
	long long orig[3];
	unsigned long long rng = fz_mix(cf->seed) | 1;
	unsigned int nw = cf->workers, i, alive;
	char exe[512];
	ssize_t n;
	int st, param = -1, workers_ok = 1;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	memset(slots, 0, sizeof(slots));
	fz_cnt = mmap(NULL, sizeof(*fz_cnt), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fz_cnt == MAP_FAILED) {
		res->violations = 1;
		return;
	}
	memset(fz_cnt, 0, sizeof(*fz_cnt));
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	{
		struct stat st;

		if (!stat(QD_DEVICE_PATH, &st))
			fz_qd_rdev = st.st_rdev;
	}
	{
		struct qd_raw r;

		if (!qd_raw_init(&r, 1, 0)) {
			fz_new_module = !!(r.p.features & QD_FEAT_NOP_IRQ);
			qd_raw_exit(&r);
		}
	}
	for (i = 0; i < 3; i++)
		orig[i] = fz_read_param(fz_params[i]);
	param_next = start + (5 + fz_r(&rng) % 15) * FZ_NS;
	fz_say("# fuzz campaign: seed %#llx, %u s, %u workers, %s module; replay: QD_FUZZ_SEED=%#llx QD_FUZZ_SECS=%u QD_FUZZ_WORKERS=%u (one worker: QD_FUZZ_REPLAY=W.G)",
	       cf->seed, cf->secs, nw, fz_new_module ? "hardened" : "old", cf->seed,
	       cf->secs, nw);
	if (nw > FZ_MAX_WORKERS)
		nw = FZ_MAX_WORKERS;
	fflush(stdout);
	fflush(stderr);
	if (cf->replay_w >= 0)
		fz_spawn(cf, &slots[0], cf->replay_w, cf->replay_g, end, exe);
	else
		for (i = 0; i < nw; i++)
			fz_spawn(cf, &slots[i], i, 0, end, exe);

	for (;;) {
		now = fz_now();
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			struct fz_slot *s = NULL;

			for (i = 0; i < FZ_MAX_WORKERS; i++)
				if (slots[i].pid == pid)
					s = &slots[i];
			if (!s)
				continue;	/* an orphaned grandchild */
			i = s - slots;
			if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && s->killed_at) {
				FZ_ADD(kills, 1);
			} else if (WIFEXITED(st) && WEXITSTATUS(st) <= 1) {
				/* its violations are counted already */
			} else {
				workers_ok = 0;
				fz_violation("worker w%u.g%u (seed %#llx) %s %d",
					     cf->replay_w >= 0 ? (unsigned int)cf->replay_w : i,
					     s->g, s->plan.seed,
					     WIFSIGNALED(st) ? "died of signal" : "exited with",
					     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			}
			s->pid = 0;
			if (cf->replay_w < 0 && now < end - 300 * FZ_MS)
				fz_spawn(cf, s, i, s->g + 1, end, exe);
		}
		alive = 0;
		for (i = 0; i < FZ_MAX_WORKERS; i++) {
			struct fz_slot *s = &slots[i];

			if (!s->pid || s->abandoned)
				continue;
			alive++;
			if (s->kill_at && !s->killed_at && now >= s->kill_at) {
				kill(s->pid, SIGKILL);
				s->killed_at = now;
			} else if (s->watchdog && !s->killed_at && now >= s->watchdog) {
				workers_ok = 0;
				fz_violation("worker w%u.g%u (seed %#llx) still running 120 s after its deadline: killed",
					     i, s->g, s->plan.seed);
				kill(s->pid, SIGKILL);
				s->killed_at = now;
			} else if (s->killed_at && now - s->killed_at > 60 * FZ_NS) {
				workers_ok = 0;
				fz_violation("worker w%u.g%u (seed %#llx) still alive 60 s after SIGKILL (unkillable in the kernel?)",
					     i, s->g, s->plan.seed);
				s->abandoned = 1;
			}
		}
		if ((now >= end || cf->replay_w >= 0) && !alive)
			break;
		/* Limits up and down under the workers' feet. */
		if (cf->replay_w < 0 && now >= param_next && param < 0 && now < end) {
			static const long long vals[] = { 1, 2, 8, 64, 1024 };

			param = fz_r(&rng) % 3;
			if (orig[param] > 0)
				fz_write_param(fz_params[param], vals[fz_r(&rng) % 5]);
			param_until = now + (1 + fz_r(&rng) % 4) * FZ_NS;
		} else if (param >= 0 && (now >= param_until || now >= end)) {
			if (orig[param] > 0)
				fz_write_param(fz_params[param], orig[param]);
			param = -1;
			param_next = now + (5 + fz_r(&rng) % 20) * FZ_NS;
		}
		fz_master_read(&rng);
		if (now >= next_print) {
			fz_say("# fuzz: %llds: %llu SQEs, %llu ioctls, %llu workers, %llu violations",
			       (now - start) / FZ_NS,
			       __atomic_load_n(&fz_cnt->sqes, __ATOMIC_RELAXED),
			       __atomic_load_n(&fz_cnt->ioctls, __ATOMIC_RELAXED),
			       __atomic_load_n(&fz_cnt->workers, __ATOMIC_RELAXED),
			       __atomic_load_n(&fz_cnt->violations, __ATOMIC_RELAXED));
			next_print += 60 * FZ_NS;
		}
		qd_sleep_ms(20);
	}
	for (i = 0; i < 3; i++)
		if (orig[i] > 0)
			fz_write_param(fz_params[i], orig[i]);
	/* Orphaned grandchildren (forked children of killed workers). */
	for (i = 0; i < 500; i++) {
		while (waitpid(-1, &st, WNOHANG) > 0)
			;
		if (waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD)
			break;
		qd_sleep_ms(20);
	}
	/* Everything released: contexts are freed a moment after their last op. */
	res->proc_idle = 0;
	for (i = 0; i < 600 && !res->proc_idle; i++) {
		unsigned int k;

		if (fz_proc_counts(res->left))
			break;
		res->proc_idle = 1;
		for (k = 0; k < 6; k++)
			if (res->left[k])
				res->proc_idle = 0;
		if (!res->proc_idle)
			qd_sleep_ms(100);
	}
	if (!res->proc_idle)
		fz_say("# /proc/qd after 60 s: contexts %lld queues %lld regions %lld pinned_pages %lld inflight %lld queued %lld",
		       res->left[0], res->left[1], res->left[2], res->left[3],
		       res->left[4], res->left[5]);
	res->workers_ok = workers_ok;
	res->secs = (fz_now() - start) / 1e9;
	res->c = *fz_cnt;
	res->violations = fz_cnt->violations;
	fz_summary(res);
}

static void fz_conf_env(struct fz_conf *cf)
{
	const char *s = getenv("QD_FUZZ_SEED"), *w = getenv("QD_FUZZ_WORKERS");
	const char *r = getenv("QD_FUZZ_REPLAY"), *t = getenv("QD_FUZZ_SECS");
	unsigned int rw, rg;

	cf->seed = s && *s ? strtoull(s, NULL, 0) : fz_mix(time(NULL) ^ getpid() ^ fz_now());
	cf->secs = t && *t ? strtoul(t, NULL, 0) : 3;
	cf->workers = w && *w ? strtoul(w, NULL, 0) : 4;
	cf->replay_w = cf->replay_g = -1;
	if (r && sscanf(r, "%u.%u", &rw, &rg) == 2) {
		cf->replay_w = rw;
		cf->replay_g = rg;
	}
	if (!cf->workers)
		cf->workers = 1;
}

FIXTURE(campaign) {
	int unused;
};

FIXTURE_SETUP(campaign)
{
}

FIXTURE_TEARDOWN(campaign)
{
}

/* A few seconds of the campaign, so that make check runs it too. */
TEST_F_TIMEOUT(campaign, briefly_two_workers_no_violation_all_released, 180)
{
	struct fz_conf cf;
	struct fz_result r;

	fz_conf_env(&cf);
	cf.secs = 3;
	cf.workers = 2;
	cf.replay_w = cf.replay_g = -1;
	fz_campaign(&cf, &r);
	EXPECT_EQ(0ULL, r.violations);
	EXPECT_TRUE(r.workers_ok);
	EXPECT_TRUE(r.proc_idle);
	EXPECT_LT(0ULL, r.c.sqes);
}

/* fuzz --secs N [--seed N] [--workers N] [--replay W.G], or QD_FUZZ_SECS. */
static int fz_main(int argc, char **argv)
{
	struct fz_conf cf;
	struct fz_result r;
	int i, n = 0;

	fz_conf_env(&cf);
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--secs"))
			cf.secs = strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--seed"))
			cf.seed = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--workers"))
			cf.workers = strtoul(argv[i + 1], NULL, 0) ?: 1;
		else if (!strcmp(argv[i], "--replay") &&
			 sscanf(argv[i + 1], "%d.%d", &cf.replay_w, &cf.replay_g) != 2)
			cf.replay_w = cf.replay_g = -1;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	fz_say("TAP version 13");
	fz_say("1..3");
	fz_campaign(&cf, &r);
	fz_say("%sok %d fuzz.campaign.no_violations", r.violations ? "not " : "", ++n);
	fz_say("%sok %d fuzz.campaign.workers_ended_as_planned", r.workers_ok ? "" : "not ", ++n);
	fz_say("%sok %d fuzz.campaign.proc_qd_back_to_zero", r.proc_idle ? "" : "not ", ++n);
	fz_say("# seed %#llx: QD_FUZZ_SEED=%#llx QD_FUZZ_SECS=%u QD_FUZZ_WORKERS=%u replays it",
	       cf.seed, cf.seed, cf.secs, cf.workers);
	return r.violations || !r.workers_ok || !r.proc_idle;
}

int main(int argc, char **argv)
{
	const char *secs = getenv("QD_FUZZ_SECS");
	char dir[] = "/tmp/qd-fuzz-XXXXXX";
	int i;

	/*
	 * QD_OP_OPEN of a random path resolves relative paths here: an empty
	 * directory of its own, so that nothing it creates lands elsewhere.
	 */
	if (!mkdtemp(dir) || chdir(dir)) {
		perror("fuzz: a directory of its own");
		return 1;
	}
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--secs"))
			return fz_main(argc, argv);
	if (secs && *secs)
		return fz_main(argc, argv);
	return test_harness_run(argc, argv);
}
