// SPDX-License-Identifier: MIT
/* A fake qd.ko for the host tests (see fake_kernel.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/qd.h>

#include "../src/sys.h"
#include "fake_kernel.h"

#define FAKE_FD_BASE	1000
#define FAKE_MAX_CTX	8
#define FAKE_MAX_QDS	64
#define PAGE		4096UL

struct fake_config fake_cfg;

struct elem {
	struct qd_seg	segs[QD_SGA_MAX];
	uint32_t	nsegs;
	int64_t		bytes;
	struct elem	*next;
};

struct op {
	uint64_t	user_data;
	uint8_t		opcode;
	int32_t		qd;
	int64_t		res;
	struct elem	*elem;		/* push: to queue; pop: popped */
	struct op	*next;
};

struct opq {
	struct op	*head;
	struct op	**tail;
};

struct memq {
	uint32_t	depth;
	uint32_t	max;
	struct elem	*head;
	struct elem	**tail;
	struct opq	pops;
	struct opq	pushes;
};

struct region {
	int		used;
	uintptr_t	addr;
	uint64_t	len;
	uint32_t	refs;
};

struct ctx {
	int		used;
	pid_t		pid;
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	int		setup;
	uint32_t	max_inflight;
	uint32_t	inflight;
	/* rings */
	char		*sqmem, *cqmem;
	size_t		sqbytes, cqbytes;
	uint32_t	*sq_head, *sq_tail, sq_entries, sq_khead;
	struct qd_sqe	*sqes;
	uint32_t	*cq_head, *cq_tail, *cq_flags, *cq_overflow, cq_entries;
	uint32_t	cq_ktail;
	struct qd_cqe	*cqes;
	struct qd_elem	*elems;
	struct opq	overflow;
	struct region	regions[QD_MAX_REGIONS];
	uint64_t	pinned;
	struct memq	*qds[FAKE_MAX_QDS];
	struct fake_stats st;
};

static struct ctx ctxs[FAKE_MAX_CTX];
static pthread_mutex_t ctxs_lock = PTHREAD_MUTEX_INITIALIZER;

/* Field offsets of the fake layout: spread out, unlike the real one. */
#define SQ_HEAD		0
#define SQ_TAIL		64
#define SQ_MASK		128
#define SQ_ENTRIES	132
#define SQ_FLAGS	136
#define SQ_SQES		192
#define CQ_HEAD		8
#define CQ_TAIL		72
#define CQ_MASK		136
#define CQ_ENTRIES	140
#define CQ_FLAGS	144
#define CQ_OVERFLOW	148
#define CQ_CQES		256

static void opq_init(struct opq *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

static void opq_add(struct opq *q, struct op *op)
{
	op->next = NULL;
	*q->tail = op;
	q->tail = &op->next;
}

static struct op *opq_pop(struct opq *q)
{
	struct op *op = q->head;

	if (op) {
		q->head = op->next;
		if (!q->head)
			q->tail = &q->head;
	}
	return op;
}

static struct ctx *ctx_get(int fd)
{
	struct ctx *c;

	if (fd < FAKE_FD_BASE || fd >= FAKE_FD_BASE + FAKE_MAX_CTX)
		return NULL;
	c = &ctxs[fd - FAKE_FD_BASE];
	return c->used ? c : NULL;
}

static void elem_put(struct ctx *c, struct elem *e)
{
	uint32_t i;

	if (!e)
		return;
	for (i = 0; i < e->nsegs; i++)
		c->regions[e->segs[i].region].refs--;
	free(e);
}

/* Write one completion into a slot known to be free. */
static void fill(struct ctx *c, struct op *op)
{
	uint32_t slot = c->cq_ktail & (c->cq_entries - 1);
	struct qd_cqe *cqe;

	cqe = &c->cqes[slot];
	memset(cqe, 0x5a, sizeof(*cqe));	/* catch fields left unset */
	*cqe = (struct qd_cqe){
		.user_data = op->user_data,
		.res = op->res,
		.qd = op->qd,
		.opcode = op->opcode,
	};
	memset(&c->elems[slot], 0xa5, sizeof(c->elems[slot]));
	if (op->opcode == QD_OP_POP && op->res >= 0 && op->elem) {
		memcpy(c->elems[slot].segs, op->elem->segs,
		       op->elem->nsegs * sizeof(struct qd_seg));
		cqe->flags = QD_CQE_F_ELEM;
		cqe->nsegs = (uint8_t)op->elem->nsegs;
	}
	/* The pop completed: the element's region references go. */
	elem_put(c, op->elem);
	free(op);
	c->cq_ktail++;
	__atomic_store_n(c->cq_tail, c->cq_ktail, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&c->cond);
}

/* Write one completion, or park it. Called with c->lock held. */
static void post(struct ctx *c, struct op *op)
{
	uint32_t head = __atomic_load_n(c->cq_head, __ATOMIC_ACQUIRE);

	if (c->overflow.head || c->cq_ktail - head >= c->cq_entries) {
		opq_add(&c->overflow, op);
		c->inflight++;
		c->st.overflowed++;
		(*c->cq_overflow)++;
		__atomic_store_n(c->cq_flags, *c->cq_flags | QD_CQ_F_OVERFLOW,
				 __ATOMIC_RELEASE);
		return;
	}
	fill(c, op);
}

static void complete(struct ctx *c, struct op *op, int64_t res)
{
	op->res = res;
	post(c, op);
}

static void flush_overflow(struct ctx *c)
{
	uint32_t head = __atomic_load_n(c->cq_head, __ATOMIC_ACQUIRE);
	struct op *op;

	while (c->overflow.head && c->cq_ktail - head < c->cq_entries) {
		op = opq_pop(&c->overflow);
		c->inflight--;
		fill(c, op);
	}
	if (!c->overflow.head)
		__atomic_store_n(c->cq_flags, *c->cq_flags & ~QD_CQ_F_OVERFLOW,
				 __ATOMIC_RELEASE);
}

static struct memq *qd_get(struct ctx *c, int32_t qd)
{
	return qd >= 0 && qd < FAKE_MAX_QDS ? c->qds[qd] : NULL;
}

/* Hand the oldest waiting push's element to the queue. */
static void admit_push(struct ctx *c, struct memq *q)
{
	struct op *push = opq_pop(&q->pushes);

	if (!push)
		return;
	c->inflight--;
	push->elem->next = NULL;
	*q->tail = push->elem;
	q->tail = &push->elem->next;
	q->depth++;
	c->st.elems++;
	push->elem = NULL;
	complete(c, push, push->res);
}

static int64_t push_prep(struct ctx *c, const struct qd_sqe *sqe,
			 struct elem **out)
{
	struct elem *e;
	struct region *r;
	uint32_t i;

	if (sqe->nsegs == 0 || sqe->nsegs > QD_SGA_MAX)
		return -EINVAL;
	if (!sqe->addr)
		return -EFAULT;
	e = calloc(1, sizeof(*e));
	memcpy(e->segs, (void *)(uintptr_t)sqe->addr,
	       sqe->nsegs * sizeof(struct qd_seg));
	e->nsegs = sqe->nsegs;
	for (i = 0; i < e->nsegs; i++) {
		if (!e->segs[i].len || e->segs[i].resv) {
			free(e);
			return -EINVAL;
		}
		r = e->segs[i].region < QD_MAX_REGIONS ?
			&c->regions[e->segs[i].region] : NULL;
		if (!r || !r->used ||
		    e->segs[i].offset >= r->len ||
		    e->segs[i].len > r->len - e->segs[i].offset) {
			free(e);
			return -EFAULT;
		}
		e->bytes += e->segs[i].len;
	}
	for (i = 0; i < e->nsegs; i++)
		c->regions[e->segs[i].region].refs++;
	*out = e;
	return 0;
}

static void issue(struct ctx *c, const struct qd_sqe *sqe)
{
	struct op *op = calloc(1, sizeof(*op)), *pop;
	struct memq *q;
	struct elem *e;
	int64_t ret;
	int i;

	op->user_data = sqe->user_data;
	op->opcode = sqe->opcode;
	op->qd = sqe->qd;
	/* no op_flags are defined here (the fake has no deferred NOPs) */
	if (sqe->flags || sqe->op_flags || sqe->resv0)
		return complete(c, op, -EINVAL);
	for (i = 0; i < (int)(sizeof(sqe->resv) / sizeof(sqe->resv[0])); i++)
		if (sqe->resv[i])
			return complete(c, op, -EINVAL);

	switch (sqe->opcode) {
	case QD_OP_NOP:
		return complete(c, op, 0);
	case QD_OP_PUSH:
		q = qd_get(c, sqe->qd);
		if (!q)
			return complete(c, op, -EBADF);
		ret = push_prep(c, sqe, &e);
		if (ret)
			return complete(c, op, ret);
		op->res = e->bytes;
		pop = opq_pop(&q->pops);
		if (pop) {
			c->inflight--;
			pop->elem = e;
			ret = e->bytes;
			complete(c, pop, ret);	/* frees e */
			return complete(c, op, ret);
		}
		if (q->depth < q->max) {
			e->next = NULL;
			*q->tail = e;
			q->tail = &e->next;
			q->depth++;
			c->st.elems++;
			return complete(c, op, e->bytes);
		}
		op->elem = e;
		opq_add(&q->pushes, op);
		c->inflight++;
		return;
	case QD_OP_POP:
		q = qd_get(c, sqe->qd);
		if (!q)
			return complete(c, op, -EBADF);
		if (sqe->nsegs || sqe->addr)
			return complete(c, op, -EINVAL);
		if (!q->head) {
			opq_add(&q->pops, op);
			c->inflight++;
			return;
		}
		e = q->head;
		q->head = e->next;
		if (!q->head)
			q->tail = &q->head;
		q->depth--;
		c->st.elems--;
		op->elem = e;
		complete(c, op, e->bytes);
		admit_push(c, q);
		return;
	default:
		return complete(c, op, -EINVAL);
	}
}

static int cq_ready(struct ctx *c)
{
	return c->cq_ktail - __atomic_load_n(c->cq_head, __ATOMIC_ACQUIRE);
}

static int do_enter(struct ctx *c, const struct qd_enter *e)
{
	uint32_t tail, avail, n = 0;
	struct qd_sqe sqe;
	struct timespec ts;
	int ret = 0;

	if (e->flags & ~QD_ENTER_ALL || e->resv1 || e->resv[0] || e->resv[1])
		return -EINVAL;
	if ((e->flags & QD_ENTER_TIMEOUT) && e->timeout_ns < 0)
		return -EINVAL;
	if (!c->setup)
		return -ENXIO;
	if ((e->flags & QD_ENTER_GETEVENTS) && e->min_complete > c->cq_entries)
		return -EINVAL;
	c->st.enters++;
	flush_overflow(c);

	tail = __atomic_load_n(c->sq_tail, __ATOMIC_ACQUIRE);
	if (tail - c->sq_khead > c->sq_entries)
		return -EINVAL;
	avail = tail - c->sq_khead;
	if (avail > e->to_submit)
		avail = e->to_submit;
	for (n = 0; n < avail; n++) {
		if (c->inflight >= c->max_inflight)
			break;
		memcpy(&sqe, &c->sqes[c->sq_khead & (c->sq_entries - 1)],
		       sizeof(sqe));
		c->sq_khead++;
		c->st.consumed++;
		issue(c, &sqe);
	}
	__atomic_store_n(c->sq_head, c->sq_khead, __ATOMIC_RELEASE);

	if ((e->flags & QD_ENTER_GETEVENTS) && e->min_complete) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (e->flags & QD_ENTER_TIMEOUT) {
			ts.tv_sec += e->timeout_ns / 1000000000;
			ts.tv_nsec += e->timeout_ns % 1000000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
		}
		if (cq_ready(c) < (int)e->min_complete)
			c->st.waits++;
		while (!ret && cq_ready(c) < (int)e->min_complete) {
			if (fake_cfg.eintr > 0) {
				fake_cfg.eintr--;
				ret = -EINTR;
				break;
			}
			if (e->flags & QD_ENTER_TIMEOUT)
				ret = pthread_cond_timedwait(&c->cond, &c->lock,
							     &ts);
			else
				ret = pthread_cond_wait(&c->cond, &c->lock);
			if (ret == ETIMEDOUT)
				ret = -ETIMEDOUT;
		}
		if (ret && !n)
			return ret;
	}
	return (int)n;
}

static int do_setup(struct ctx *c, struct qd_params *p)
{
	uint32_t i;

	if (c->setup)
		return -EBUSY;
	if (p->flags)
		return -EINVAL;
	for (i = 0; i < sizeof(p->resv) / sizeof(p->resv[0]); i++)
		if (p->resv[i])
			return -EINVAL;
	if (!p->sq_entries || p->sq_entries & (p->sq_entries - 1) ||
	    p->sq_entries > QD_MAX_SQ_ENTRIES)
		return -EINVAL;
	if (!p->cq_entries)
		p->cq_entries = 2 * p->sq_entries;
	if (p->cq_entries & (p->cq_entries - 1) ||
	    p->cq_entries > QD_MAX_CQ_ENTRIES || p->cq_entries < p->sq_entries)
		return -EINVAL;

	c->sq_entries = p->sq_entries;
	c->cq_entries = p->cq_entries;
	c->sqbytes = (SQ_SQES + c->sq_entries * sizeof(struct qd_sqe) + PAGE - 1) &
		     ~(PAGE - 1);
	c->cqbytes = (CQ_CQES + c->cq_entries * (sizeof(struct qd_cqe) +
						 sizeof(struct qd_elem)) +
		      PAGE - 1) & ~(PAGE - 1);
	c->sqmem = mmap(NULL, c->sqbytes, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	c->cqmem = mmap(NULL, c->cqbytes, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->sqmem == MAP_FAILED || c->cqmem == MAP_FAILED)
		abort();
	c->sq_head = (uint32_t *)(c->sqmem + SQ_HEAD);
	c->sq_tail = (uint32_t *)(c->sqmem + SQ_TAIL);
	*(uint32_t *)(c->sqmem + SQ_MASK) = c->sq_entries - 1;
	*(uint32_t *)(c->sqmem + SQ_ENTRIES) = c->sq_entries;
	c->sqes = (struct qd_sqe *)(c->sqmem + SQ_SQES);
	c->cq_head = (uint32_t *)(c->cqmem + CQ_HEAD);
	c->cq_tail = (uint32_t *)(c->cqmem + CQ_TAIL);
	c->cq_flags = (uint32_t *)(c->cqmem + CQ_FLAGS);
	c->cq_overflow = (uint32_t *)(c->cqmem + CQ_OVERFLOW);
	*(uint32_t *)(c->cqmem + CQ_MASK) = c->cq_entries - 1;
	*(uint32_t *)(c->cqmem + CQ_ENTRIES) = c->cq_entries;
	c->cqes = (struct qd_cqe *)(c->cqmem + CQ_CQES);
	c->elems = (struct qd_elem *)(c->cqmem + CQ_CQES +
				      c->cq_entries * sizeof(struct qd_cqe));
	*c->sq_head = *c->sq_tail = c->sq_khead = fake_cfg.start_index;
	*c->cq_head = *c->cq_tail = c->cq_ktail = fake_cfg.start_index;

	c->max_inflight = fake_cfg.max_inflight ? fake_cfg.max_inflight :
						  2 * c->cq_entries;
	p->features = fake_cfg.features ? fake_cfg.features :
		      QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS |
		      QD_FEAT_NOOVERFLOW_LOSS | QD_FEAT_REGIONS;
	p->sq_ring_bytes = (uint32_t)c->sqbytes;
	p->cq_ring_bytes = (uint32_t)c->cqbytes;
	p->max_inflight = c->max_inflight;
	p->sq_off = (struct qd_sq_offsets){
		.head = SQ_HEAD, .tail = SQ_TAIL, .ring_mask = SQ_MASK,
		.ring_entries = SQ_ENTRIES, .flags = SQ_FLAGS, .sqes = SQ_SQES,
	};
	p->cq_off = (struct qd_cq_offsets){
		.head = CQ_HEAD, .tail = CQ_TAIL, .ring_mask = CQ_MASK,
		.ring_entries = CQ_ENTRIES, .flags = CQ_FLAGS,
		.overflow = CQ_OVERFLOW, .cqes = CQ_CQES,
		.elems = CQ_CQES + c->cq_entries * sizeof(struct qd_cqe),
	};
	c->setup = 1;
	return 0;
}

static int do_register(struct ctx *c, struct qd_region_reg *r)
{
	uint32_t i, max = fake_cfg.max_regions ? fake_cfg.max_regions :
						 QD_MAX_REGIONS;

	if (r->flags || r->resv[0] || r->resv[1])
		return -EINVAL;
	if (!r->len || r->len > QD_MAX_REGION_BYTES || r->addr % PAGE ||
	    r->len % PAGE)
		return -EINVAL;
	if (fake_cfg.memlock && c->pinned + r->len > fake_cfg.memlock)
		return -ENOMEM;
	for (i = 0; i < max; i++)
		if (!c->regions[i].used)
			break;
	if (i == max)
		return -ENOSPC;
	c->regions[i] = (struct region){ .used = 1, .addr = r->addr,
					 .len = r->len };
	c->pinned += r->len;
	c->st.regions++;
	r->id = i;
	return 0;
}

static int do_unregister(struct ctx *c, uint32_t id)
{
	if (id >= QD_MAX_REGIONS || !c->regions[id].used)
		return -ENOENT;
	if (c->regions[id].refs)
		return -EBUSY;
	c->regions[id].used = 0;
	c->pinned -= c->regions[id].len;
	c->st.regions--;
	return 0;
}

static int do_queue(struct ctx *c, struct qd_queue_create *qc)
{
	struct memq *q;
	int i;

	if (qc->flags || qc->depth > QD_MEMQ_MAX_DEPTH)
		return -EINVAL;
	for (i = 0; i < 5; i++)
		if (qc->resv[i])
			return -EINVAL;
	for (i = 0; i < FAKE_MAX_QDS; i++)
		if (!c->qds[i])
			break;
	if (i == FAKE_MAX_QDS)
		return -EMFILE;
	q = calloc(1, sizeof(*q));
	q->max = qc->depth ? qc->depth : QD_MEMQ_DEFAULT_DEPTH;
	q->tail = &q->head;
	opq_init(&q->pops);
	opq_init(&q->pushes);
	c->qds[i] = q;
	qc->qd = i;
	return 0;
}

static int do_close(struct ctx *c, int32_t qd)
{
	struct memq *q = qd_get(c, qd);
	struct elem *e;
	struct op *op;

	if (!q)
		return -EBADF;
	c->qds[qd] = NULL;
	while ((op = opq_pop(&q->pops))) {
		c->inflight--;
		complete(c, op, -ECANCELED);
	}
	while ((op = opq_pop(&q->pushes))) {
		c->inflight--;
		elem_put(c, op->elem);
		op->elem = NULL;
		complete(c, op, -ECANCELED);
	}
	while ((e = q->head)) {
		q->head = e->next;
		c->st.elems--;
		elem_put(c, e);
	}
	free(q);
	return 0;
}

int qd__sys_open(void)
{
	pthread_condattr_t attr;
	struct ctx *c;
	int i;

	if (fake_cfg.open_err)
		return fake_cfg.open_err;
	pthread_mutex_lock(&ctxs_lock);
	for (i = 0; i < FAKE_MAX_CTX; i++)
		if (!ctxs[i].used)
			break;
	if (i == FAKE_MAX_CTX) {
		pthread_mutex_unlock(&ctxs_lock);
		return -EMFILE;
	}
	c = &ctxs[i];
	memset(c, 0, sizeof(*c));
	c->used = 1;
	c->pid = getpid();
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &attr);
	opq_init(&c->overflow);
	pthread_mutex_unlock(&ctxs_lock);
	return FAKE_FD_BASE + i;
}

int qd__sys_close(int fd)
{
	struct ctx *c = ctx_get(fd);
	int i;

	if (!c)
		return -EBADF;
	/* Only the owner's close ends the context; a child drops its copy. */
	if (c->pid == getpid()) {
		for (i = 0; i < FAKE_MAX_QDS; i++)
			if (c->qds[i])
				do_close(c, i);
	}
	c->used = 0;
	return 0;
}

int qd__sys_ioctl(int fd, unsigned long req, void *arg)
{
	struct ctx *c = ctx_get(fd);
	int ret;

	if (!c)
		return -EBADF;
	if (c->pid != getpid())
		return -EPERM;
	pthread_mutex_lock(&c->lock);
	switch (req) {
	case QD_IOC_SETUP:
		ret = do_setup(c, arg);
		break;
	case QD_IOC_ENTER:
		ret = do_enter(c, arg);
		break;
	case QD_IOC_REGISTER:
		ret = c->setup ? do_register(c, arg) : -ENXIO;
		break;
	case QD_IOC_UNREGISTER:
		ret = do_unregister(c, *(uint32_t *)arg);
		break;
	case QD_IOC_QUEUE:
		ret = do_queue(c, arg);
		break;
	case QD_IOC_CLOSE:
		ret = do_close(c, *(int32_t *)arg);
		break;
	default:
		ret = -ENOTTY;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void *qd__sys_mmap(int fd, size_t len, uint64_t off, int *err)
{
	struct ctx *c = ctx_get(fd);

	*err = 0;
	if (!c)
		*err = -EBADF;
	else if (c->pid != getpid())
		*err = -EPERM;
	else if (!c->setup)
		*err = -ENXIO;
	else if (off == QD_OFF_SQ_RING && len <= c->sqbytes)
		return c->sqmem;
	else if (off == QD_OFF_CQ_RING && len <= c->cqbytes)
		return c->cqmem;
	else
		*err = -EINVAL;
	return MAP_FAILED;
}

int qd__sys_munmap(void *addr, size_t len)
{
	(void)addr;
	(void)len;
	return 0;
}

void fake_stats(struct fake_stats *st)
{
	int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < FAKE_MAX_CTX; i++) {
		if (ctxs[i].used && ctxs[i].pid == getpid()) {
			pthread_mutex_lock(&ctxs[i].lock);
			*st = ctxs[i].st;
			st->inflight = ctxs[i].inflight;
			pthread_mutex_unlock(&ctxs[i].lock);
		}
	}
}
