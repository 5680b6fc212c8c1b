// SPDX-License-Identifier: GPL-2.0
/*
 * qdbench derived: a stream of S-byte elements of which 1 in N is wanted,
 * consumed three ways side by side in one run (issue 10):
 *
 *   kernel    qd_filter() on the source with a declarative predicate on a
 *             4-byte tag; the consumer pops only the filter.
 *   user      the consumer pops everything from the source and drops the
 *             unwanted elements itself.
 *   callback  qd_filter_fn() with a C predicate on the same tag (run by
 *             libqd); the consumer pops the derived qd.
 *
 * Three threads per measurement. The producer owns a pool of `window`
 * buffers (qd_sgaalloc()); each element carries its sequence number in
 * its first 8 bytes, the tag at byte 8 (TAG_WANTED or TAG_OTHER) and the
 * sequence number's complement in its last 8 bytes. It pushes them to the
 * source with qd_push_forget() in bursts of `burst`, calling qd_submit()
 * after each burst (the burst has arrived: a sleeper is woken now), and
 * keeps one pop posted on a return queue per buffer out, waiting on the
 * oldest when its pool is empty. The consumer keeps up to `pops` pops
 * posted on its qd, blocks in qd_wait() on the oldest, reads the element's
 * ends and tag and pushes the buffer back on the return queue. Where the
 * unwanted elements stay on the source (kernel, callback) a drain thread
 * pops them from the source the same way and returns their buffers: the
 * source must not fill, and whoever takes the rest is not the consumer
 * measured. Every element is pushed, popped and returned exactly as in
 * the other modes; only who pops what differs.
 *
 * Counters per thread (getrusage(RUSAGE_THREAD), a perf counter on
 * raw_syscalls:sys_enter), per process (libqd's qd_stats()), and the
 * payload bytes of the elements that reached the consumer (and, for the
 * callback, that libqd handed to the predicate), divided by the wanted
 * elements of the measured phase. See Documentation/tools.md.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "qdbench.h"
#include "derived.h"

#ifdef QDBENCH_NO_LIBQD

int derived_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "qdbench derived: built without libqd (NO_LIBQD=1)\n");
	return 1;
}

#else

#include <linux/qd.h>
#include <qd.h>

#define TAG_OFF		8	/* the tag: 4 bytes, little-endian */
#define TAG_WANTED	1u
#define TAG_OTHER	2u
#define MIN_SIZE	24	/* seq, tag, ~seq */
#define MAX_LIST	16

enum dmode { DM_KERNEL, DM_USER, DM_CALLBACK, NDMODES };

static const char *const dmode_name[NDMODES] = { "kernel", "user", "callback" };
static const char *const dmode_label[NDMODES] = {
	"kernel filter", "user filter", "libqd callback",
};

static struct {
	unsigned int	every[MAX_LIST];	/* 1 in N wanted */
	int		nevery;
	size_t		sizes[MAX_LIST];
	int		nsizes;
	bool		use[NDMODES];
	uint64_t	wanted;		/* measured wanted elements per mode */
	uint64_t	warm;		/* warm-up wanted elements (~0: wanted / 10) */
	unsigned int	burst;
	unsigned int	window;
	unsigned int	pops;
	int		cpu_p, cpu_c;	/* producer; consumer and drain */
	int		cpus;		/* 0: none, 1: same, 2: split, 3: given */
	bool		kernel_src;	/* QD_MEMQ_KERNEL: no mapped queues */
	bool		yield;		/* sched_yield() after each burst */
	unsigned int	timeout;
} opt = {
	.every = { 1, 4, 16, 64 },
	.nevery = 4,
	.sizes = { 64, 1024 },
	.nsizes = 2,
	.use = { true, true, true },
	.wanted = 2000,
	.warm = ~0ull,
	.burst = 1,
	.yield = true,
	.window = 64,
	.pops = 1,
	.cpu_p = -1,
	.cpu_c = -1,
	.cpus = 1,
	.timeout = 120,
};

/* What a thread's counters said at one phase boundary. */
struct snap {
	uint64_t	ns;
	uint64_t	nvcsw, nivcsw;
	uint64_t	sys;		/* perf: every system call of the thread */
	uint64_t	libsys;		/* qd_stats().syscalls, process-wide */
	uint64_t	elems, bytes;	/* what the thread popped so far */
	uint64_t	fn_calls, fn_bytes; /* the predicate's, all threads */
};

/* One (N, size, mode) measurement. */
struct drun {
	enum dmode	mode;
	unsigned int	every;
	size_t		size;
	uint64_t	warm, wanted;
	uint64_t	total;		/* elements pushed: (warm + wanted) * every */
	int		src, ret, dq;	/* dq: what the consumer pops */
	bool		src_open, ret_open, dq_open;
	_Atomic bool	closed;
	struct qd_sga	*bufs;		/* the producer's pool */
	unsigned int	nbufs;
	pthread_barrier_t start;
	_Atomic int	err;
	char		why[256];

	/* the predicate's counts (callback), in every thread */
	_Atomic uint64_t fn_calls, fn_bytes;

	/* phase boundaries of each thread: [0] start, [1] end */
	struct snap	p[2], c[2], d[2];
	bool		sys_ok;
};

/* One row of a table. */
struct dres {
	enum dmode	mode;
	unsigned int	every;
	size_t		size;
	bool		ok;
	char		why[256];
	double		secs, rate;	/* wanted elements/s */
	double		wake, invol, sys, libsys, pops, bytes, fn, fn_bytes;
	double		p_sys, d_wake, d_sys;
	bool		sys_ok, drain;
};

static struct dres results[MAX_LIST * MAX_LIST * NDMODES];
static int nresults;
static char current[128];

static void watchdog(int sig)
{
	static const char msg[] = "qdbench derived: timed out in ";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0 ||
	    write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

/*
 * The queues, closed once: by teardown(), or by the first thread that
 * fails, so that the others' pending operations end (-ECANCELED) instead
 * of waiting for elements that will not come.
 */
static void close_all(struct drun *r)
{
	if (atomic_exchange(&r->closed, true))
		return;
	if (r->dq_open)
		qd_close(r->dq);
	if (r->src_open)
		qd_close(r->src);
	if (r->ret_open)
		qd_close(r->ret);
}

__attribute__((format(printf, 3, 4)))
static void failf(struct drun *r, int err, const char *fmt, ...)
{
	int zero = 0;
	va_list ap;

	if (!atomic_compare_exchange_strong(&r->err, &zero, err ? err : -EIO))
		return;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	close_all(r);
}

static void fail(struct drun *r, const char *who, const char *what, int err)
{
	failf(r, err, "%s: %s: %s", who, what, err ? strerror(-err) : "failed");
}

static size_t sga_len(const struct qd_sga *sga)
{
	size_t len = 0;
	uint32_t i;

	for (i = 0; i < sga->numsegs && i < QD_SGA_MAX; i++)
		len += sga->segs[i].len;
	return len;
}

/* n bytes at off of the element into (or out of) buf; false if too short. */
static bool sga_rw(const struct qd_sga *sga, size_t off, void *buf, size_t n,
		   bool write)
{
	char *b = buf;
	uint32_t i;

	for (i = 0; i < sga->numsegs && i < QD_SGA_MAX && n; i++) {
		size_t l = sga->segs[i].len, k;
		char *s = sga->segs[i].buf;

		if (off >= l) {
			off -= l;
			continue;
		}
		k = l - off < n ? l - off : n;
		if (write)
			memcpy(s + off, b, k);
		else
			memcpy(b, s + off, k);
		b += k;
		n -= k;
		off = 0;
	}
	return !n;
}

static uint32_t sga_tag(const struct qd_sga *sga)
{
	uint32_t tag = 0;

	if (!sga_rw(sga, TAG_OFF, &tag, sizeof(tag), false))
		return 0;
	return le32toh(tag);
}

static bool wanted_seq(const struct drun *r, uint64_t seq)
{
	return seq % r->every == r->every - 1;
}

static void mark(const struct qd_sga *sga, uint64_t seq, bool wanted)
{
	uint32_t tag = htole32(wanted ? TAG_WANTED : TAG_OTHER);
	uint64_t nseq = ~seq;

	sga_rw(sga, 0, &seq, sizeof(seq), true);
	sga_rw(sga, TAG_OFF, &tag, sizeof(tag), true);
	sga_rw(sga, sga_len(sga) - sizeof(nseq), &nseq, sizeof(nseq), true);
}

/* The element's sequence number, or -1 when its ends disagree. */
static int64_t check(const struct qd_sga *sga)
{
	uint64_t seq = 0, nseq = 0;
	size_t len = sga_len(sga);

	if (len < MIN_SIZE || !sga_rw(sga, 0, &seq, sizeof(seq), false) ||
	    !sga_rw(sga, len - sizeof(nseq), &nseq, sizeof(nseq), false) ||
	    seq != ~nseq || seq > INT64_MAX)
		return -1;
	return (int64_t)seq;
}

/* The libqd callback: the same test as the kernel's predicate. */
static bool pred_fn(const struct qd_sga *sga, void *arg)
{
	struct drun *r = arg;
	size_t len = sga_len(sga);

	atomic_fetch_add_explicit(&r->fn_calls, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->fn_bytes, len, memory_order_relaxed);
	return sga_tag(sga) == TAG_WANTED;
}

static void take(struct drun *r, struct snap *s, bool consumer)
{
	struct rusage ru;
	struct qd_stats st;

	getrusage(RUSAGE_THREAD, &ru);
	s->nvcsw = ru.ru_nvcsw;
	s->nivcsw = ru.ru_nivcsw;
	s->sys = sysc_read();
	if (consumer) {
		s->libsys = qd_stats(&st) ? 0 : st.syscalls;
		s->fn_calls = atomic_load(&r->fn_calls);
		s->fn_bytes = atomic_load(&r->fn_bytes);
	}
	s->ns = now_ns();
}

static void *producer(void *arg)
{
	struct drun *r = arg;
	struct qd_sga **pool;
	struct qd_result qr;
	struct tokq rets;
	unsigned int nfree = 0, i;
	uint64_t seq, start = r->warm * r->every;
	int err;

	pin_thread(opt.cpu_p);
	pool = calloc(r->nbufs, sizeof(*pool));
	if (!pool || tokq_init(&rets, r->nbufs)) {
		fail(r, "producer", "calloc", -ENOMEM);
		pthread_barrier_wait(&r->start);
		free(pool);
		return NULL;
	}
	for (i = 0; i < r->nbufs; i++)
		pool[nfree++] = &r->bufs[i];
	sysc_open();
	pthread_barrier_wait(&r->start);
	for (seq = 0; seq < r->total && !atomic_load(&r->err); seq++) {
		struct qd_sga *b;
		qd_token_t t = 0;

		if (seq == start)
			take(r, &r->p[0], false);
		if (!nfree) {
			err = qd_wait(&qr, tokq_get(&rets), NULL);
			if (!err && qr.ret < 0)
				err = (int)qr.ret;
			if (err) {
				fail(r, "producer", "wait for a returned buffer", err);
				break;
			}
			/* the buffer is one of the pool's: put it back in its slot */
			for (i = 0; i < r->nbufs; i++)
				if (r->bufs[i].segs[0].buf == qr.value.sga.segs[0].buf)
					break;
			if (i == r->nbufs || qr.value.sga.numsegs != 1) {
				fail(r, "producer", "a returned buffer is not from the pool", -EBADMSG);
				break;
			}
			pool[nfree++] = &r->bufs[i];
		}
		b = pool[--nfree];
		mark(b, seq, wanted_seq(r, seq));
		err = qd_push_forget(r->src, b);
		if (!err)
			err = qd_pop(&t, r->ret);
		if (err) {
			fail(r, "producer", "push", err);
			break;
		}
		tokq_put(&rets, t);
		if ((seq + 1) % opt.burst == 0 || seq + 1 == r->total) {
			err = qd_submit();
			if (err) {
				fail(r, "producer", "qd_submit", err);
				break;
			}
			if (opt.yield)
				sched_yield();
		}
	}
	take(r, &r->p[1], false);
	/* every buffer home before teardown (unless the run failed) */
	while (rets.n && !atomic_load(&r->err)) {
		err = qd_wait(&qr, tokq_get(&rets), NULL);
		if (err || qr.ret < 0) {
			fail(r, "producer", "wait for the last buffers", err ? err : (int)qr.ret);
			break;
		}
	}
	sysc_close();
	free(rets.t);
	free(pool);
	return NULL;
}

/*
 * Pop `need` elements from q, up to `pops` posted at once, and return each
 * buffer. The consumer wants the wanted ones (and in user mode drops the
 * others); the drain wants only the others.
 */
static void consume(struct drun *r, bool drain)
{
	const char *who = drain ? "drain" : "consumer";
	uint64_t need, posted = 0, got = 0, hits = 0, elems = 0, bytes = 0;
	uint64_t phase0, phase1, next_wanted = r->every - 1, next_other = 0;
	struct snap *s = drain ? r->d : r->c;
	int q = drain ? r->src : r->dq;
	struct qd_result qr;
	struct tokq pops;
	int err;

	if (drain) {
		need = (r->warm + r->wanted) * (r->every - 1);
		phase0 = r->warm * (r->every - 1);
	} else {
		need = r->mode == DM_USER ? r->total : r->warm + r->wanted;
		phase0 = r->warm;
	}
	phase1 = drain ? need : r->warm + r->wanted;
	if (tokq_init(&pops, opt.pops)) {
		fail(r, who, "calloc", -ENOMEM);
		pthread_barrier_wait(&r->start);
		return;
	}
	if (sysc_open() && !drain)
		r->sys_ok = true;
	pthread_barrier_wait(&r->start);
	if (!phase0)
		take(r, &s[0], !drain);
	while (got < need && !atomic_load(&r->err)) {
		bool hit = true;
		uint32_t tag;
		int64_t seq;
		qd_token_t t;

		while (pops.n < opt.pops && posted < need) {
			err = qd_pop(&t, q);
			if (err) {
				fail(r, who, "qd_pop", err);
				goto out;
			}
			tokq_put(&pops, t);
			posted++;
		}
		err = qd_wait(&qr, tokq_get(&pops), NULL);
		if (!err && qr.ret < 0)
			err = (int)qr.ret;
		if (err) {
			fail(r, who, "qd_wait for a pop", err);
			goto out;
		}
		got++;
		elems++;
		bytes += sga_len(&qr.value.sga);
		seq = check(&qr.value.sga);
		tag = sga_tag(&qr.value.sga);
		if (seq < 0) {
			fail(r, who, "an element's ends disagree", -EBADMSG);
			goto out;
		}
		if (tag == TAG_WANTED && !drain) {
			if ((uint64_t)seq != next_wanted) {
				failf(r, -EBADMSG, "%s: wanted element %lld arrived, %llu expected",
				      who, (long long)seq, (unsigned long long)next_wanted);
				goto out;
			}
			next_wanted += r->every;
			hits++;
		} else if (drain) {
			/* the drain gets the others, in order */
			if (tag == TAG_WANTED || (uint64_t)seq < next_other ||
			    wanted_seq(r, seq)) {
				failf(r, -EBADMSG, "%s: element %lld (tag %u) where only the others belong",
				      who, (long long)seq, tag);
				goto out;
			}
			next_other = seq + 1;
			hits++;
		} else if (r->mode == DM_USER) {
			hit = false;	/* dropped, after paying for its delivery */
		} else {
			failf(r, -EBADMSG, "%s: unwanted element %lld got through the filter",
			      who, (long long)seq);
			goto out;
		}
		/* the buffer goes home, wanted or not */
		err = qd_push_forget(r->ret, &qr.value.sga);
		if (err) {
			fail(r, who, "return push", err);
			goto out;
		}
		if (hit && hits == phase0) {
			elems = bytes = 0;
			take(r, &s[0], !drain);
		}
		if (hit && hits == phase1)
			break;
	}
	take(r, &s[1], !drain);
	s[1].elems = elems;
	s[1].bytes = bytes;
	/* the returns must reach the producer if it sleeps */
	err = qd_submit();
	if (err)
		fail(r, who, "qd_submit", err);
out:
	sysc_close();
	free(pops.t);
}

static void *consumer(void *arg)
{
	struct drun *r = arg;

	pin_thread(opt.cpu_c);
	consume(r, false);
	return NULL;
}

static void *drainer(void *arg)
{
	struct drun *r = arg;

	pin_thread(opt.cpu_c);
	consume(r, true);
	return NULL;
}

static void teardown(struct drun *r)
{
	unsigned int i;

	close_all(r);
	/* every buffer is home again after a successful run */
	for (i = 0; r->bufs && !atomic_load(&r->err) && i < r->nbufs; i++)
		qd_sgafree(&r->bufs[i]);
	free(r->bufs);
}

static int setup_err(struct drun *r, const char *what, int err)
{
	snprintf(r->why, sizeof(r->why), "%s: %s", what, strerror(-err));
	return err;
}

static int setup(struct drun *r)
{
	struct qd_pred pred;
	unsigned int i;
	int err;

	err = qd_queue(&r->src);
	if (err)
		return setup_err(r, "qd_queue", err);
	r->src_open = true;
	err = qd_queue(&r->ret);
	if (err)
		return setup_err(r, "qd_queue", err);
	r->ret_open = true;
	switch (r->mode) {
	case DM_KERNEL:
		memset(&pred, 0, sizeof(pred));
		pred.nterms = 1;
		pred.terms[0].field.off = TAG_OFF;
		pred.terms[0].field.width = 4;
		pred.terms[0].cmp = QD_CMP_EQ;
		pred.terms[0].value = TAG_WANTED;
		err = qd_filter(&r->dq, r->src, &pred);
		if (err)
			return setup_err(r, "qd_filter", err);
		r->dq_open = true;
		break;
	case DM_CALLBACK:
		err = qd_filter_fn(&r->dq, r->src, pred_fn, r);
		if (err)
			return setup_err(r, "qd_filter_fn", err);
		r->dq_open = true;
		break;
	default:
		r->dq = r->src;
		break;
	}
	r->bufs = calloc(r->nbufs, sizeof(*r->bufs));
	if (!r->bufs)
		return -ENOMEM;
	for (i = 0; i < r->nbufs; i++) {
		r->bufs[i] = qd_sgaalloc(r->size);
		if (!r->bufs[i].numsegs) {
			err = setup_err(r, "qd_sgaalloc", -errno);
			while (i--)
				qd_sgafree(&r->bufs[i]);
			free(r->bufs);
			r->bufs = NULL;
			return err;
		}
	}
	return 0;
}

static void measure(struct dres *res, enum dmode mode, unsigned int every,
		    size_t size)
{
	pthread_t tp, tc, td;
	struct drun *r;
	bool drain;
	double per;
	int err;

	memset(res, 0, sizeof(*res));
	res->mode = mode;
	res->every = every;
	res->size = size;
	r = calloc(1, sizeof(*r));
	if (!r)
		die("calloc");
	r->mode = mode;
	r->every = every;
	r->size = size;
	r->wanted = opt.wanted;
	r->warm = opt.warm != ~0ull ? opt.warm : opt.wanted / 10;
	r->total = (r->warm + r->wanted) * every;
	r->nbufs = opt.window;
	drain = mode != DM_USER && every > 1;
	snprintf(current, sizeof(current), "%s, 1 in %u, %zu B", dmode_name[mode],
		 every, size);
	err = setup(r);
	if (err) {
		snprintf(res->why, sizeof(res->why), "%s", r->why[0] ? r->why : strerror(-err));
		teardown(r);
		free(r);
		return;
	}
	pthread_barrier_init(&r->start, NULL, drain ? 3 : 2);
	alarm(opt.timeout);
	if (pthread_create(&tc, NULL, consumer, r) ||
	    (drain && pthread_create(&td, NULL, drainer, r)) ||
	    pthread_create(&tp, NULL, producer, r))
		die("pthread_create");
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	if (drain)
		pthread_join(td, NULL);
	alarm(0);
	pthread_barrier_destroy(&r->start);
	if (atomic_load(&r->err)) {
		snprintf(res->why, sizeof(res->why), "%s", r->why);
	} else {
		per = 1.0 / r->wanted;
		res->ok = true;
		res->secs = (r->c[1].ns - r->c[0].ns) / 1e9;
		res->rate = res->secs > 0 ? r->wanted / res->secs : 0;
		res->wake = (r->c[1].nvcsw - r->c[0].nvcsw) * per;
		res->invol = (r->c[1].nivcsw - r->c[0].nivcsw) * per;
		res->sys_ok = r->sys_ok;
		res->sys = (r->c[1].sys - r->c[0].sys) * per;
		res->libsys = (r->c[1].libsys - r->c[0].libsys) * per;
		res->pops = r->c[1].elems * per;
		res->bytes = r->c[1].bytes * per;
		res->fn = (r->c[1].fn_calls - r->c[0].fn_calls) * per;
		res->fn_bytes = (r->c[1].fn_bytes - r->c[0].fn_bytes) * per;
		res->p_sys = (r->p[1].sys - r->p[0].sys) * per;
		res->drain = drain;
		if (drain) {
			res->d_wake = (r->d[1].nvcsw - r->d[0].nvcsw) * per;
			res->d_sys = (r->d[1].sys - r->d[0].sys) * per;
		}
	}
	teardown(r);
	free(r);
}

static const struct dres *find(enum dmode mode, unsigned int every, size_t size)
{
	int i;

	for (i = 0; i < nresults; i++)
		if (results[i].mode == mode && results[i].every == every &&
		    results[i].size == size)
			return &results[i];
	return NULL;
}

static void fmt_ratio(char *buf, size_t len, const struct dres *r,
		      const struct dres *base)
{
	if (!base || !base->ok || !r->ok || base->rate <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2fx", r->rate / base->rate);
}

static void fmt_val(char *buf, size_t len, bool ok, double v)
{
	if (!ok)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2f", v);
}

static void print_row(FILE *out, const struct dres *r)
{
	char sz[16], vu[16], vk[16], sys[16], psys[16], dw[16], ds[16], fn[16];

	size_str(r->size, sz, sizeof(sz));
	if (!r->ok) {
		fprintf(out, "%5u %6s  %-15s unavailable: %s\n", r->every, sz,
		       dmode_label[r->mode], r->why);
		return;
	}
	fmt_ratio(vu, sizeof(vu), r, find(DM_USER, r->every, r->size));
	fmt_ratio(vk, sizeof(vk), r, find(DM_KERNEL, r->every, r->size));
	fmt_val(sys, sizeof(sys), r->sys_ok, r->sys);
	fmt_val(psys, sizeof(psys), r->sys_ok, r->p_sys);
	fmt_val(dw, sizeof(dw), r->drain, r->d_wake);
	fmt_val(ds, sizeof(ds), r->drain && r->sys_ok, r->d_sys);
	fmt_val(fn, sizeof(fn), r->mode == DM_CALLBACK, r->fn);
	fprintf(out, "%5u %6s  %-15s %9.0f %7s %7s %6.2f %6.2f %6s %7.2f %6.2f %8.0f %6s %8.0f %7s %7s %7s\n",
		r->every, sz, dmode_label[r->mode], r->rate, vu, vk, r->wake,
		r->invol, sys, r->libsys, r->pops, r->bytes, fn,
		r->mode == DM_CALLBACK ? r->fn_bytes : r->bytes, psys, dw, ds);
	fflush(out);
}

static void print_head(FILE *out)
{
	fprintf(out, "\n%5s %6s  %-15s %9s %7s %7s %6s %6s %6s %7s %6s %8s %6s %8s %7s %7s %7s\n",
		"1 in", "size", "consumer", "wanted/s", "vs user", "vs kern",
		"wake", "invol", "sys", "libsys", "pops", "bytes", "fn", "user B",
		"p-sys", "d-wake", "d-sys");
}

static void print_header(FILE *out)
{
	struct utsname u;
	char cs[64] = "?";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");

	if (f) {
		if (fgets(cs, sizeof(cs), f))
			cs[strcspn(cs, "\n")] = 0;
		fclose(f);
	}
	uname(&u);
	fprintf(out, "qdbench derived: %s %s %s, %ld CPUs, clocksource %s\n",
		u.sysname, u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN), cs);
	if (opt.cpu_p >= 0 && opt.cpu_p == opt.cpu_c)
		fprintf(out, "threads: producer, consumer and drain pinned to CPU %d\n", opt.cpu_p);
	else if (opt.cpu_p >= 0)
		fprintf(out, "threads: producer pinned to CPU %d, consumer and drain to CPU %d\n",
			opt.cpu_p, opt.cpu_c);
	else
		fprintf(out, "threads: placed by the scheduler (not pinned)\n");
	fprintf(out, "per row: %llu wanted elements measured after %llu of warm-up; bursts of %u element%s\n"
		     "  (qd_submit%s after each), %u buffers in flight at most, %u pops posted at most;\n"
		     "  source queues %s\n",
		(unsigned long long)opt.wanted,
		(unsigned long long)(opt.warm != ~0ull ? opt.warm : opt.wanted / 10),
		opt.burst, opt.burst == 1 ? "" : "s", opt.yield ? " and sched_yield" : "",
		opt.window, opt.pops,
		opt.kernel_src ? "on the kernel path (QD_MEMQ_KERNEL=1)" :
		"mapped (libqd's default; with a derived queue on it, pushes go to the kernel)");
	fprintf(out, "per wanted element: wake = voluntary context switches of the consumer thread,\n"
		     "  invol = involuntary ones, sys = its system calls (perf, kernel-counted), libsys =\n"
		     "  libqd's system calls in the whole process (qd_stats), pops = elements the consumer\n"
		     "  received, bytes = their payload bytes, fn = calls of the callback's predicate (any\n"
		     "  thread), user B = payload bytes handed to user space to find the wanted ones\n"
		     "  (popped by the consumer, or given to the predicate), p-sys = the producer's system\n"
		     "  calls, d-wake/d-sys = the drain thread's (it pops what the filter leaves on the\n"
		     "  source); vs user/vs kern: wanted/s ratios, same N and size\n");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qdbench derived [options]\n"
		"  A stream of S-byte elements, 1 in N wanted (a 4-byte tag), consumed three ways:\n"
		"  kernel (qd_filter), user (pop all, filter in the application), callback\n"
		"  (qd_filter_fn); per wanted element: wakeups, system calls, bytes, and rate.\n"
		"  --one-in LIST     N values: 1 in N elements wanted (default 1,4,16,64)\n"
		"  --sizes LIST      element sizes, at least %d B (default 64,1K)\n"
		"  --mode LIST       of kernel,user,callback (default all three)\n"
		"  --wanted W        measured wanted elements per row (default 2000)\n"
		"  --warmup W        wanted elements before measuring (default W/10)\n"
		"  --burst B         elements per arrival: qd_submit after B pushes (default 1)\n"
		"  --pace P          yield: the producer calls sched_yield() after each burst, so a\n"
		"                    consumer woken on its CPU runs before the next (default);\n"
		"                    none: it runs until its buffers are all out\n"
		"  --window N        buffers in flight at most (default 64)\n"
		"  --pops K          pops the consumer and the drain keep posted (default 1)\n"
		"  --src mapped|kernel  source queues mapped (default) or kernel-only (QD_MEMQ_KERNEL=1)\n"
		"  --cpus P          same: every thread on one CPU (default); split: the producer on\n"
		"                    one CPU, consumer and drain on another; A,B; none\n"
		"  --timeout S       give up if one row takes longer (default 120)\n",
		MIN_SIZE);
}

static int parse_list(const char *arg, bool sizes, void *dst)
{
	char *s = strdup(arg), *save, *tok;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == MAX_LIST)
			die("at most %d values in '%s'", MAX_LIST, arg);
		if (sizes) {
			size_t v = parse_size(tok);

			if (v < MIN_SIZE || v > (1u << 24))
				die("bad size '%s' (%d B .. 16 MiB)", tok, MIN_SIZE);
			((size_t *)dst)[n++] = v;
		} else {
			char *end;
			unsigned long v = strtoul(tok, &end, 10);

			if (*end || !v || v > 1000000)
				die("bad N '%s' (1 .. 1000000)", tok);
			((unsigned int *)dst)[n++] = v;
		}
	}
	free(s);
	if (!n)
		die("empty list '%s'", arg);
	return n;
}

static void parse_modes(const char *arg)
{
	char *s = strdup(arg), *save, *tok;
	int i;

	memset(opt.use, 0, sizeof(opt.use));
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NDMODES; i++)
			if (!strcmp(tok, dmode_name[i]))
				break;
		if (i == NDMODES)
			die("unknown mode '%s' (kernel, user, callback)", tok);
		opt.use[i] = true;
	}
	free(s);
}

static void parse_cpus(const char *arg)
{
	opt.cpu_p = opt.cpu_c = -1;
	if (!strcmp(arg, "none")) {
		opt.cpus = 0;
		return;
	}
	if (!strcmp(arg, "same") || !strcmp(arg, "split")) {
		opt.cpus = arg[1] == 'a' ? 1 : 2;
		return;
	}
	if (sscanf(arg, "%d,%d", &opt.cpu_p, &opt.cpu_c) != 2 ||
	    opt.cpu_p < 0 || opt.cpu_c < 0)
		die("bad --cpus '%s' (same, split, none or A,B)", arg);
	opt.cpus = 3;
}

/* same: the first CPU we may run on; split: the first two. */
static void pick_cpus(void)
{
	cpu_set_t set;
	int i;

	if (opt.cpus == 0 || opt.cpus == 3)
		return;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (opt.cpu_p < 0) {
			opt.cpu_p = i;
			if (opt.cpus == 1)
				break;
		} else {
			opt.cpu_c = i;
			break;
		}
	}
	if (opt.cpu_c < 0)
		opt.cpu_c = opt.cpu_p;
}

int derived_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "one-in", required_argument, NULL, 'n' },
		{ "sizes", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "wanted", required_argument, NULL, 'w' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "burst", required_argument, NULL, 'b' },
		{ "window", required_argument, NULL, 'B' },
		{ "pops", required_argument, NULL, 'k' },
		{ "src", required_argument, NULL, 'S' },
		{ "pace", required_argument, NULL, 'p' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool failed = false;
	int c, i, j, k, err;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			opt.nevery = parse_list(optarg, false, opt.every);
			break;
		case 's':
			opt.nsizes = parse_list(optarg, true, opt.sizes);
			break;
		case 'm':
			parse_modes(optarg);
			break;
		case 'w':
			opt.wanted = strtoull(optarg, NULL, 10);
			if (!opt.wanted)
				die("--wanted must be at least 1");
			break;
		case 'W':
			opt.warm = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			opt.burst = atoi(optarg);
			if (opt.burst < 1)
				die("--burst must be at least 1");
			break;
		case 'B':
			opt.window = atoi(optarg);
			if (opt.window < 1 || opt.window > 65536)
				die("--window: 1 .. 65536");
			break;
		case 'k':
			opt.pops = atoi(optarg);
			if (opt.pops < 1 || opt.pops > 4096)
				die("--pops: 1 .. 4096");
			break;
		case 'S':
			if (strcmp(optarg, "mapped") && strcmp(optarg, "kernel"))
				die("--src mapped|kernel");
			opt.kernel_src = !strcmp(optarg, "kernel");
			break;
		case 'p':
			if (strcmp(optarg, "yield") && strcmp(optarg, "none"))
				die("--pace yield|none");
			opt.yield = !strcmp(optarg, "yield");
			break;
		case 'c':
			parse_cpus(optarg);
			break;
		case 't':
			opt.timeout = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (opt.kernel_src)
		setenv("QD_MEMQ_KERNEL", "1", 1);
	pick_cpus();
	signal(SIGALRM, watchdog);
	err = qd_init();
	if (err) {
		fprintf(stderr, "qdbench derived: qd_init: %s%s\n", strerror(-err),
			err == -ENOENT ? " (qd.ko not loaded)" : "");
		return 1;
	}
	print_header(stdout);
	for (i = 0; i < opt.nsizes; i++) {
		print_head(stdout);
		for (j = 0; j < opt.nevery; j++) {
			/* the base (user) first, so every row has its ratios */
			static const enum dmode order[NDMODES] = {
				DM_USER, DM_KERNEL, DM_CALLBACK,
			};
			int first = nresults;

			for (k = 0; k < NDMODES; k++) {
				if (!opt.use[order[k]])
					continue;
				measure(&results[nresults], order[k], opt.every[j],
					opt.sizes[i]);
				failed |= !results[nresults].ok;
				nresults++;
			}
			/* printed in table order: kernel, user, callback */
			for (k = 0; k < NDMODES; k++) {
				const struct dres *r = find(k, opt.every[j], opt.sizes[i]);

				if (r && r - results >= first)
					print_row(stdout, r);
			}
		}
	}
	return failed ? 1 : 0;
}

#endif /* QDBENCH_NO_LIBQD */
