// SPDX-License-Identifier: MIT
/* A fake qd.ko for the host tests (see fake_kernel.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#define ALL_FEATURES	(QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS | \
			 QD_FEAT_NOOVERFLOW_LOSS | QD_FEAT_REGIONS | \
			 QD_FEAT_RINGS | QD_FEAT_SKIP_SUCCESS | \
			 QD_FEAT_MULTISHOT | QD_FEAT_SQPOLL | QD_FEAT_STORAGE)
#define FAKE_MAX_FILES	8
#define OPEN_FLAGS	(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | \
			 O_DIRECT | O_DSYNC | O_SYNC | O_NOATIME | \
			 O_NOFOLLOW | O_CLOEXEC | O_LARGEFILE | O_NOCTTY)

struct fake_config fake_cfg;
struct qd_derive fake_derive_last;

struct elem {
	struct qd_seg	segs[QD_SGA_MAX];
	uint32_t	nsegs;
	int64_t		bytes;
	struct elem	*next;
};

struct ring;

struct op {
	uint64_t	user_data;
	uint8_t		opcode;
	uint8_t		flags;		/* QD_SQE_F_* */
	uint32_t	op_flags;
	int32_t		qd;
	int64_t		res;
	struct ring	*ring;		/* its CQE goes here */
	struct elem	*elem;		/* push: to queue; pop: popped */
	struct op	*next;
};

struct opq {
	struct op	*head;
	struct op	**tail;
};

/* A completion parked in a ring's overflow list. */
struct cqrec {
	struct qd_cqe	cqe;
	struct qd_elem	elem;
	struct cqrec	*next;
};

struct memq {
	uint32_t	depth;
	uint32_t	max;
	struct elem	*head;
	struct elem	**tail;
	struct opq	pops;
	struct opq	pushes;
};

/* A file of the fake file system (one per process, never removed). */
struct ffile {
	char		*path;
	char		*data;
	uint64_t	size;
};

/* A storage queue: its file, open(2) flags and offsets. */
struct fqd {
	struct ffile	*f;
	int		flags;
	uint64_t	rpos, wpos;
};

struct region {
	int		used;
	uintptr_t	addr;
	uint64_t	len;
	uint32_t	refs;
};

struct ring {
	uint32_t	id;
	char		*sqmem, *cqmem;
	size_t		sqbytes, cqbytes;
	uint32_t	*sq_head, *sq_tail, sq_entries, sq_khead;
	uint32_t	*sq_flags;	/* QD_SQ_F_NEED_WAKEUP */
	struct qd_sqe	*sqes;
	uint32_t	*cq_head, *cq_tail, *cq_flags, *cq_overflow, cq_entries;
	uint32_t	cq_ktail;
	struct qd_cqe	*cqes;
	struct qd_elem	*elems;
	struct cqrec	*ovf_head, **ovf_tail;
	/* this ring's waiters: only its own completions wake them */
	pthread_cond_t	cond;
};

struct ctx {
	int		used;
	pid_t		pid;
	pthread_mutex_t	lock;
	/* QD_ENTER_CTX_SEQ waiters: woken by a completion on any ring */
	pthread_cond_t	seq_cond;
	int		setup;
	/*
	 * QD_SETUP_SQPOLL: a poller that runs only when a test calls
	 * fake_sqpoll_pass(), asleep (NEED_WAKEUP set) after fake_sqpoll(1)
	 * until a QD_ENTER_SQ_WAKEUP
	 */
	int		sqpoll, sqpoll_asleep;
	uint32_t	features;
	uint32_t	max_inflight;
	uint32_t	inflight;
	struct ring	*rings[QD_MAX_RINGS];
	uint32_t	nrings;
	uint32_t	*ctx_seq;	/* in ring 0's CQ mapping */
	struct region	regions[QD_MAX_REGIONS];
	uint64_t	pinned;
	struct memq	*qds[FAKE_MAX_QDS];
	struct fqd	*files[FAKE_MAX_QDS];
	struct qd_sqe	sqe_log[FAKE_SQE_LOG];
	uint64_t	nsqes;
	struct fake_stats st;
};

static struct ffile fake_fs[FAKE_MAX_FILES];

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
#define CQ_CTX_SEQ	200
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

/* Unlink the op with this user_data, or NULL. */
static struct op *opq_take(struct opq *q, uint64_t user_data)
{
	struct op **pp, *op;

	for (pp = &q->head; (op = *pp); pp = &op->next) {
		if (op->user_data != user_data)
			continue;
		*pp = op->next;
		if (q->tail == &op->next)
			q->tail = pp;
		return op;
	}
	return NULL;
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

/*
 * A completion was posted or parked on r: publish a new ctx_seq after it
 * and wake r's waiters and the context's.
 */
static void wake(struct ctx *c, struct ring *r)
{
	__atomic_store_n(c->ctx_seq, *c->ctx_seq + 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&r->cond);
	pthread_cond_broadcast(&c->seq_cond);
}

/* Write one completion into the ring's free slot; then wake its waiters. */
static void fill(struct ctx *c, struct ring *r, const struct cqrec *rec)
{
	uint32_t slot = r->cq_ktail & (r->cq_entries - 1);

	memset(&r->cqes[slot], 0x5a, sizeof(r->cqes[slot])); /* catch unset */
	memset(&r->elems[slot], 0xa5, sizeof(r->elems[slot]));
	r->cqes[slot] = rec->cqe;
	if (rec->cqe.flags & QD_CQE_F_ELEM)
		memcpy(r->elems[slot].segs, rec->elem.segs,
		       rec->cqe.nsegs * sizeof(struct qd_seg));
	r->cq_ktail++;
	__atomic_store_n(r->cq_tail, r->cq_ktail, __ATOMIC_RELEASE);
	c->st.posted++;
	wake(c, r);
}

/* Post one completion, or park it. Called with c->lock held. */
static void post(struct ctx *c, struct ring *r, const struct cqrec *rec)
{
	uint32_t head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
	struct cqrec *p;

	if (r->ovf_head || r->cq_ktail - head >= r->cq_entries) {
		p = malloc(sizeof(*p));
		*p = *rec;
		p->next = NULL;
		*r->ovf_tail = p;
		r->ovf_tail = &p->next;
		c->inflight++;
		c->st.overflowed++;
		(*r->cq_overflow)++;
		__atomic_store_n(r->cq_flags, *r->cq_flags | QD_CQ_F_OVERFLOW,
				 __ATOMIC_RELEASE);
		wake(c, r);
		return;
	}
	fill(c, r, rec);
}

static void flush_overflow(struct ctx *c, struct ring *r)
{
	uint32_t head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
	struct cqrec *p;

	while (r->ovf_head && r->cq_ktail - head < r->cq_entries) {
		p = r->ovf_head;
		r->ovf_head = p->next;
		if (!r->ovf_head)
			r->ovf_tail = &r->ovf_head;
		c->inflight--;
		fill(c, r, p);
		free(p);
	}
	if (!r->ovf_head)
		__atomic_store_n(r->cq_flags, *r->cq_flags & ~QD_CQ_F_OVERFLOW,
				 __ATOMIC_RELEASE);
}

/*
 * Post op's CQE with res (and flags, QD_CQE_F_MORE for a multishot pop
 * that goes on), carrying e: a pop's element, or a failed push's.
 */
static void post_op(struct ctx *c, struct op *op, int64_t res, uint32_t flags,
		    const struct elem *e)
{
	struct cqrec rec;

	if ((op->flags & QD_SQE_F_SKIP_SUCCESS) && res >= 0)
		return;
	memset(&rec, 0, sizeof(rec));
	rec.cqe = (struct qd_cqe){
		.user_data = op->user_data,
		.res = res,
		.flags = flags,
		.qd = op->qd,
		.opcode = op->opcode,
	};
	if (e && ((op->opcode == QD_OP_POP && res >= 0) ||
		  (op->opcode == QD_OP_PUSH && res < 0))) {
		memcpy(rec.elem.segs, e->segs, e->nsegs * sizeof(struct qd_seg));
		rec.cqe.flags |= QD_CQE_F_ELEM;
		rec.cqe.nsegs = (uint8_t)e->nsegs;
	}
	post(c, op->ring, &rec);
}

/* op is done: its CQE, then its element's region references go. */
static void complete(struct ctx *c, struct op *op, int64_t res)
{
	post_op(c, op, res, 0, op->elem);
	elem_put(c, op->elem);
	free(op);
}

static struct memq *memq_get(struct ctx *c, int32_t qd)
{
	return qd >= 0 && qd < FAKE_MAX_QDS ? c->qds[qd] : NULL;
}

static int multishot(const struct op *op)
{
	return op->opcode == QD_OP_POP && (op->op_flags & QD_POP_MULTISHOT);
}

/*
 * Hand element e to the oldest pending pop. A multishot pop stays pending,
 * gets a CQE with QD_CQE_F_MORE and goes to the back of the line, as in
 * the kernel, so that it starves no one-shot pop.
 */
static void give(struct ctx *c, struct memq *q, struct elem *e)
{
	struct op *pop = opq_pop(&q->pops);

	if (multishot(pop)) {
		post_op(c, pop, e->bytes, QD_CQE_F_MORE, e);
		elem_put(c, e);
		opq_add(&q->pops, pop);
		return;
	}
	c->inflight--;
	pop->elem = e;
	complete(c, pop, e->bytes);
}

static void enqueue(struct ctx *c, struct memq *q, struct elem *e)
{
	e->next = NULL;
	*q->tail = e;
	q->tail = &e->next;
	q->depth++;
	c->st.elems++;
}

static struct elem *dequeue(struct ctx *c, struct memq *q)
{
	struct elem *e = q->head;

	q->head = e->next;
	if (!q->head)
		q->tail = &q->head;
	q->depth--;
	c->st.elems--;
	return e;
}

/* Room now: the oldest waiting push's element goes into the queue. */
static void admit_push(struct ctx *c, struct memq *q)
{
	struct op *push = opq_pop(&q->pushes);

	if (!push)
		return;
	c->inflight--;
	enqueue(c, q, push->elem);
	push->elem = NULL;
	complete(c, push, push->res);
}

/* Build the element (region references held), as the kernel's prep does. */
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

static void issue_push(struct ctx *c, struct op *op, const struct qd_sqe *sqe)
{
	struct memq *q;
	struct elem *e;
	int64_t ret;

	ret = push_prep(c, sqe, &e);
	if (ret)
		return complete(c, op, ret);
	/* From here a failure hands the element back in the CQE. */
	op->elem = e;
	q = memq_get(c, sqe->qd);
	if (!q)
		return complete(c, op, -EBADF);
	op->res = e->bytes;
	if (q->pops.head) {
		op->elem = NULL;
		give(c, q, e);
		return complete(c, op, op->res);
	}
	if (q->depth < q->max) {
		op->elem = NULL;
		enqueue(c, q, e);
		return complete(c, op, op->res);
	}
	opq_add(&q->pushes, op);
	c->inflight++;
}

static void issue_pop(struct ctx *c, struct op *op, const struct qd_sqe *sqe)
{
	struct memq *q;

	if (sqe->nsegs || sqe->addr || (sqe->op_flags & ~QD_POP_MULTISHOT) ||
	    (multishot(op) && !(c->features & QD_FEAT_MULTISHOT)))
		return complete(c, op, -EINVAL);
	q = memq_get(c, sqe->qd);
	if (!q)
		return complete(c, op, -EBADF);
	if (!multishot(op)) {
		if (!q->head) {
			opq_add(&q->pops, op);
			c->inflight++;
			return;
		}
		op->elem = dequeue(c, q);
		complete(c, op, op->elem->bytes);
		admit_push(c, q);
		return;
	}
	/* Everything queued now, then whatever arrives later. */
	while (q->head) {
		post_op(c, op, q->head->bytes, QD_CQE_F_MORE, q->head);
		elem_put(c, dequeue(c, q));
		admit_push(c, q);
	}
	opq_add(&q->pops, op);
	c->inflight++;
}

static void issue_cancel(struct ctx *c, struct op *op, const struct qd_sqe *sqe)
{
	struct memq *q;
	struct op *t;

	if (sqe->nsegs || sqe->op_flags ||
	    !(c->features & QD_FEAT_MULTISHOT))
		return complete(c, op, -EINVAL);
	q = memq_get(c, sqe->qd);
	if (!q)
		return complete(c, op, -EBADF);
	t = opq_take(&q->pops, sqe->addr);
	if (!t)
		t = opq_take(&q->pushes, sqe->addr);
	if (!t)
		return complete(c, op, -ENOENT);
	c->inflight--;
	complete(c, t, -ECANCELED);
	complete(c, op, 0);
}

static struct fqd *file_get(struct ctx *c, int32_t qd)
{
	return qd >= 0 && qd < FAKE_MAX_QDS ? c->files[qd] : NULL;
}

/* A free qd number, or -EMFILE. */
static int qd_free_num(struct ctx *c)
{
	int i;

	for (i = 0; i < FAKE_MAX_QDS; i++)
		if (!c->qds[i] && !c->files[i])
			return i;
	return -EMFILE;
}

static struct ffile *ffile_find(const char *path)
{
	int i;

	for (i = 0; i < FAKE_MAX_FILES; i++)
		if (fake_fs[i].path && !strcmp(fake_fs[i].path, path))
			return &fake_fs[i];
	return NULL;
}

const void *fake_file(const char *path, uint64_t *size)
{
	struct ffile *f = ffile_find(path);

	*size = f ? f->size : 0;
	return f ? (f->data ? f->data : "") : NULL;
}

/*
 * QD_OP_OPEN: a path of the fake file system ("...\/" is a directory), the
 * checks of uapi/linux/qd.h; res = the new qd.
 */
static void issue_open(struct ctx *c, struct op *op, const struct qd_sqe *sqe)
{
	const char *path = (const char *)(uintptr_t)sqe->addr;
	int flags = (int)sqe->open_flags, i, qd;
	struct ffile *f;
	struct fqd *fq;
	size_t len;

	c->st.opens++;
	if (!(c->features & QD_FEAT_STORAGE) || sqe->qd || sqe->nsegs ||
	    sqe->op_flags || sqe->open_mode > 07777 || sqe->resv2[0] ||
	    sqe->resv2[1] || sqe->resv2[2] || (flags & ~OPEN_FLAGS) ||
	    (flags & O_ACCMODE) == O_ACCMODE)
		return complete(c, op, -EINVAL);
	if (!path)
		return complete(c, op, -EFAULT);
	len = strnlen(path, PATH_MAX);
	if (len == PATH_MAX)
		return complete(c, op, -ENAMETOOLONG);
	if (!len)
		return complete(c, op, -ENOENT);
	if (path[len - 1] == '/')
		return complete(c, op, -EISDIR);
	f = ffile_find(path);
	if (f && (flags & O_CREAT) && (flags & O_EXCL))
		return complete(c, op, -EEXIST);
	if (!f && !(flags & O_CREAT))
		return complete(c, op, -ENOENT);
	qd = qd_free_num(c);
	if (qd < 0)
		return complete(c, op, qd);
	if (!f) {
		for (i = 0; i < FAKE_MAX_FILES && fake_fs[i].path; i++)
			;
		if (i == FAKE_MAX_FILES)
			return complete(c, op, -ENOSPC);
		f = &fake_fs[i];
		f->path = strdup(path);
	}
	if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY)
		f->size = 0;
	fq = calloc(1, sizeof(*fq));
	fq->f = f;
	fq->flags = flags;
	c->files[qd] = fq;
	complete(c, op, qd);
}

/* The bytes of segment s, in a region the element holds. */
static char *seg_mem(struct ctx *c, const struct qd_seg *s)
{
	return (char *)(uintptr_t)c->regions[s->region].addr + s->offset;
}

static void file_write(struct ctx *c, struct ffile *f, const struct elem *e,
		       uint64_t off)
{
	uint32_t i;

	if (off + e->bytes > f->size) {
		f->data = realloc(f->data, off + e->bytes);
		if (off > f->size)
			memset(f->data + f->size, 0, off - f->size);
		f->size = off + e->bytes;
	}
	for (i = 0; i < e->nsegs; i++) {
		memcpy(f->data + off, seg_mem(c, &e->segs[i]), e->segs[i].len);
		off += e->segs[i].len;
	}
}

/* Read into e's buffer from off; out: the buffer trimmed to the bytes. */
static int64_t file_read(struct ctx *c, const struct ffile *f,
			 const struct elem *e, uint64_t off, struct elem *out)
{
	uint64_t left = off < f->size ? f->size - off : 0;
	int64_t res = 0;
	uint32_t i, n;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < e->nsegs && left; i++) {
		n = left < e->segs[i].len ? (uint32_t)left : e->segs[i].len;
		memcpy(seg_mem(c, &e->segs[i]), f->data + off, n);
		out->segs[out->nsegs] = e->segs[i];
		out->segs[out->nsegs++].len = n;
		off += n;
		left -= n;
		res += n;
	}
	out->bytes = res;
	return res;
}

/*
 * PUSH, POP (with the buffer it brings) and SYNC on a storage queue, done
 * at once. A pop completes with QD_CQE_F_COPIED and its buffer trimmed.
 */
static void issue_file(struct ctx *c, struct op *op, const struct qd_sqe *sqe,
		       struct fqd *fq)
{
	int acc = fq->flags & O_ACCMODE, at = !!(sqe->op_flags & QD_PUSH_AT);
	struct elem *e, out;
	int64_t res;
	uint64_t off;

	if (sqe->opcode == QD_OP_SYNC) {
		if (sqe->nsegs || sqe->addr ||
		    (sqe->op_flags & ~(QD_SYNC_DATASYNC | QD_SYNC_FLUSH)))
			return complete(c, op, -EINVAL);
		c->st.syncs++;
		return complete(c, op, 0);
	}
	if (sqe->op_flags & ~QD_PUSH_AT)
		return complete(c, op, -EINVAL);
	res = push_prep(c, sqe, &e);
	if (res)
		return complete(c, op, res);
	if (sqe->opcode == QD_OP_PUSH) {
		res = -EBADF;
		if (acc != O_RDONLY) {
			off = at ? sqe->off :
			      (fq->flags & O_APPEND) ? fq->f->size : fq->wpos;
			if (!at)
				fq->wpos = off + e->bytes;
			file_write(c, fq->f, e, off);
			res = e->bytes;
		}
		elem_put(c, e);
		return complete(c, op, res);
	}
	res = -EBADF;
	if (acc != O_WRONLY) {
		off = at ? sqe->off : fq->rpos;
		if (!at)
			fq->rpos += e->bytes;	/* what it asked for */
		res = file_read(c, fq->f, e, off, &out);
	}
	post_op(c, op, res, res >= 0 ? QD_CQE_F_COPIED : 0,
		res >= 0 ? &out : NULL);
	elem_put(c, e);
	free(op);
}

/* PUSH with QD_PUSH_AT or POP with QD_POP_AT (the same bit). */
static int positional(const struct qd_sqe *sqe)
{
	return (sqe->opcode == QD_OP_PUSH || sqe->opcode == QD_OP_POP) &&
	       (sqe->op_flags & QD_PUSH_AT);
}

static void issue(struct ctx *c, struct ring *r, const struct qd_sqe *sqe)
{
	struct op *op = calloc(1, sizeof(*op));
	uint8_t ok_flags = 0;
	int i;

	op->user_data = sqe->user_data;
	op->opcode = sqe->opcode;
	op->qd = sqe->qd;
	op->ring = r;
	op->op_flags = sqe->op_flags;
	if (c->features & QD_FEAT_SKIP_SUCCESS)
		ok_flags |= QD_SQE_F_SKIP_SUCCESS;
	if (sqe->flags & ~ok_flags)
		return complete(c, op, -EINVAL);
	op->flags = sqe->flags;
	if (sqe->opcode == QD_OP_OPEN)
		return issue_open(c, op, sqe);
	if (sqe->resv0)
		return complete(c, op, -EINVAL);
	/* resv[0] is off for the positional forms */
	for (i = positional(sqe); i < 4; i++)
		if (sqe->resv[i])
			return complete(c, op, -EINVAL);
	if (file_get(c, sqe->qd) && (sqe->opcode == QD_OP_PUSH ||
				     sqe->opcode == QD_OP_POP ||
				     sqe->opcode == QD_OP_SYNC))
		return issue_file(c, op, sqe, file_get(c, sqe->qd));
	if (positional(sqe))
		return complete(c, op, -ESPIPE);
	/* no NOP flags here (the fake has no deferred NOPs) */
	if (sqe->opcode != QD_OP_POP && sqe->op_flags)
		return complete(c, op, -EINVAL);

	switch (sqe->opcode) {
	case QD_OP_NOP:
		return complete(c, op, 0);
	case QD_OP_PUSH:
		return issue_push(c, op, sqe);
	case QD_OP_POP:
		return issue_pop(c, op, sqe);
	case QD_OP_CANCEL:
		return issue_cancel(c, op, sqe);
	default:
		return complete(c, op, -EINVAL);
	}
}

static uint32_t cq_ready(struct ring *r)
{
	return r->cq_ktail - __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
}

/* The enter's wait condition holds. */
static int wait_done(struct ctx *c, struct ring *r, const struct qd_enter *e)
{
	if (e->flags & QD_ENTER_GETEVENTS)
		return cq_ready(r) >= e->min_complete;
	if (e->flags & QD_ENTER_CQ_TAIL)
		return r->cq_ktail != e->wait_seq;
	return *c->ctx_seq != e->wait_seq;
}

static int wait_for(struct ctx *c, struct ring *r, const struct qd_enter *e)
{
	pthread_cond_t *cond = (e->flags & QD_ENTER_CTX_SEQ) ? &c->seq_cond :
							       &r->cond;
	struct timespec ts;
	int ret = 0, slept = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (e->flags & QD_ENTER_TIMEOUT) {
		ts.tv_sec += e->timeout_ns / 1000000000;
		ts.tv_nsec += e->timeout_ns % 1000000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	for (;;) {
		/* Parked completions move in before every sleep. */
		flush_overflow(c, r);
		if (wait_done(c, r, e))
			break;
		if (fake_cfg.eintr > 0) {
			fake_cfg.eintr--;
			ret = -EINTR;
			break;
		}
		if (!slept++)
			c->st.waits++;
		if (e->flags & QD_ENTER_TIMEOUT)
			ret = pthread_cond_timedwait(cond, &c->lock, &ts);
		else
			ret = pthread_cond_wait(cond, &c->lock);
		c->st.wakeups++;
		if (ret == ETIMEDOUT) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	return ret;
}

/*
 * Consume up to max SQEs of r, as QD_IOC_ENTER or the poller (which stops
 * at an OPEN, as qd.ko's). c->lock held.
 */
static int consume(struct ctx *c, struct ring *r, uint32_t max, int poller)
{
	uint32_t tail, avail, n;
	struct qd_sqe sqe;

	tail = __atomic_load_n(r->sq_tail, __ATOMIC_ACQUIRE);
	if (tail - r->sq_khead > r->sq_entries)
		return -EINVAL;
	avail = tail - r->sq_khead;
	if (avail > max)
		avail = max;
	for (n = 0; n < avail; n++) {
		if (c->inflight >= c->max_inflight)
			break;
		memcpy(&sqe, &r->sqes[r->sq_khead & (r->sq_entries - 1)],
		       sizeof(sqe));
		if (poller && sqe.opcode == QD_OP_OPEN)
			break;
		c->st.consumed++;
		c->sqe_log[c->nsqes++ % FAKE_SQE_LOG] = sqe;
		/* As the kernel: the push's segments are read before head moves. */
		issue(c, r, &sqe);
		r->sq_khead++;
	}
	__atomic_store_n(r->sq_head, r->sq_khead, __ATOMIC_RELEASE);
	return (int)n;
}

/* The poller asleep (NEED_WAKEUP in every SQ) or awake. c->lock held. */
static void sqpoll_set(struct ctx *c, int asleep)
{
	uint32_t i;

	c->sqpoll_asleep = asleep;
	for (i = 0; i < c->nrings; i++)
		__atomic_store_n(c->rings[i]->sq_flags,
				 asleep ? QD_SQ_F_NEED_WAKEUP : 0, __ATOMIC_SEQ_CST);
}

static int do_enter(struct ctx *c, const struct qd_enter *e)
{
	uint32_t n, how;
	struct ring *r;
	int ret;

	how = e->flags & (QD_ENTER_GETEVENTS | QD_ENTER_CQ_TAIL |
			  QD_ENTER_CTX_SEQ);
	if (e->flags & ~QD_ENTER_ALL || e->resv1 || e->resv ||
	    (how & (how - 1)) ||
	    (!(how & (QD_ENTER_CQ_TAIL | QD_ENTER_CTX_SEQ)) && e->wait_seq))
		return -EINVAL;
	if ((e->flags & QD_ENTER_TIMEOUT) && e->timeout_ns < 0)
		return -EINVAL;
	if (!c->setup)
		return -ENXIO;
	r = e->ring < QD_MAX_RINGS ? c->rings[e->ring] : NULL;
	if (!r)
		return -EINVAL;
	if ((e->flags & QD_ENTER_GETEVENTS) && e->min_complete > r->cq_entries)
		return -EINVAL;
	if (e->flags & QD_ENTER_SQ_WAKEUP) {
		if (!c->sqpoll)
			return -EINVAL;
		c->st.sq_wakeups++;
		sqpoll_set(c, 0);
	}
	c->st.enters++;
	flush_overflow(c, r);

	ret = consume(c, r, e->to_submit, 0);
	if (ret < 0)
		return ret;
	n = (uint32_t)ret;

	if (how && !((how & QD_ENTER_GETEVENTS) && !e->min_complete)) {
		ret = wait_for(c, r, e);
		if (ret && !n)
			return ret;
	}
	return (int)n;
}

static int params_check(struct qd_params *p, int setup)
{
	uint32_t i;

	if (p->flags & ~(setup ? QD_SETUP_SQPOLL : 0))
		return -EINVAL;
	if ((p->flags & QD_SETUP_SQPOLL) ? p->sq_idle_ms > QD_SQPOLL_MAX_IDLE_MS :
	    p->sq_idle_ms)
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
	return 0;
}

static void *shared_mem(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		abort();
	return p;
}

/* Make a ring as SETUP (id 0) or RING describes it in *p. */
static int ring_new(struct ctx *c, struct qd_params *p)
{
	uint32_t max = fake_cfg.max_rings ? fake_cfg.max_rings : QD_MAX_RINGS;
	pthread_condattr_t attr;
	struct ring *r;
	int ret;

	ret = params_check(p, !c->setup);
	if (ret)
		return ret;
	if (c->nrings >= max)
		return -ENOSPC;
	r = calloc(1, sizeof(*r));
	r->id = c->nrings;
	r->sq_entries = p->sq_entries;
	r->cq_entries = p->cq_entries;
	r->sqbytes = (SQ_SQES + r->sq_entries * sizeof(struct qd_sqe) +
		      PAGE - 1) & ~(PAGE - 1);
	r->cqbytes = (CQ_CQES + r->cq_entries * (sizeof(struct qd_cqe) +
						 sizeof(struct qd_elem)) +
		      PAGE - 1) & ~(PAGE - 1);
	r->sqmem = shared_mem(r->sqbytes);
	r->cqmem = shared_mem(r->cqbytes);
	r->sq_head = (uint32_t *)(r->sqmem + SQ_HEAD);
	r->sq_tail = (uint32_t *)(r->sqmem + SQ_TAIL);
	r->sq_flags = (uint32_t *)(r->sqmem + SQ_FLAGS);
	if (c->sqpoll_asleep)
		*r->sq_flags = QD_SQ_F_NEED_WAKEUP;
	*(uint32_t *)(r->sqmem + SQ_MASK) = r->sq_entries - 1;
	*(uint32_t *)(r->sqmem + SQ_ENTRIES) = r->sq_entries;
	r->sqes = (struct qd_sqe *)(r->sqmem + SQ_SQES);
	r->cq_head = (uint32_t *)(r->cqmem + CQ_HEAD);
	r->cq_tail = (uint32_t *)(r->cqmem + CQ_TAIL);
	r->cq_flags = (uint32_t *)(r->cqmem + CQ_FLAGS);
	r->cq_overflow = (uint32_t *)(r->cqmem + CQ_OVERFLOW);
	*(uint32_t *)(r->cqmem + CQ_MASK) = r->cq_entries - 1;
	*(uint32_t *)(r->cqmem + CQ_ENTRIES) = r->cq_entries;
	r->cqes = (struct qd_cqe *)(r->cqmem + CQ_CQES);
	r->elems = (struct qd_elem *)(r->cqmem + CQ_CQES +
				      r->cq_entries * sizeof(struct qd_cqe));
	*r->sq_head = *r->sq_tail = r->sq_khead = fake_cfg.start_index;
	*r->cq_head = *r->cq_tail = r->cq_ktail = fake_cfg.start_index;
	r->ovf_tail = &r->ovf_head;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &attr);
	if (!r->id) {
		c->ctx_seq = (uint32_t *)(r->cqmem + CQ_CTX_SEQ);
		*c->ctx_seq = fake_cfg.start_index;
	}
	c->rings[r->id] = r;
	c->nrings++;
	c->st.rings = c->nrings;

	p->ring = r->id;
	p->features = c->features;
	p->sq_ring_bytes = (uint32_t)r->sqbytes;
	p->cq_ring_bytes = (uint32_t)r->cqbytes;
	p->max_inflight = c->max_inflight;
	p->sq_off = (struct qd_sq_offsets){
		.head = SQ_HEAD, .tail = SQ_TAIL, .ring_mask = SQ_MASK,
		.ring_entries = SQ_ENTRIES, .flags = SQ_FLAGS, .sqes = SQ_SQES,
	};
	p->cq_off = (struct qd_cq_offsets){
		.head = CQ_HEAD, .tail = CQ_TAIL, .ring_mask = CQ_MASK,
		.ring_entries = CQ_ENTRIES, .flags = CQ_FLAGS,
		.overflow = CQ_OVERFLOW, .cqes = CQ_CQES,
		.elems = CQ_CQES + r->cq_entries * sizeof(struct qd_cqe),
		.ctx_seq = (c->features & QD_FEAT_RINGS) ? CQ_CTX_SEQ : 0,
	};
	return 0;
}

static int do_setup(struct ctx *c, struct qd_params *p)
{
	int ret;

	if (c->setup)
		return -EBUSY;
	ret = params_check(p, 1);
	if (ret)
		return ret;
	c->sqpoll = !!(p->flags & QD_SETUP_SQPOLL);
	c->features = fake_cfg.features ? fake_cfg.features : ALL_FEATURES;
	c->max_inflight = fake_cfg.max_inflight ? fake_cfg.max_inflight :
						  2 * p->cq_entries;
	ret = ring_new(c, p);
	if (ret)
		return ret;
	c->setup = 1;
	return 0;
}

static int do_ring(struct ctx *c, struct qd_params *p)
{
	/* A module without rings does not know the ioctl. */
	if (!(c->features & QD_FEAT_RINGS) && c->setup)
		return -ENOTTY;
	if (!c->setup)
		return -ENXIO;
	return ring_new(c, p);
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

	/* no QD_QUEUE_MAPPED here: the fake does not offer it */
	if (qc->flags || qc->depth > QD_MEMQ_MAX_DEPTH || qc->resv[0] ||
	    qc->resv[1])
		return -EINVAL;
	i = qd_free_num(c);
	if (i < 0)
		return i;
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
	struct memq *q = memq_get(c, qd);
	struct op *op;

	if (file_get(c, qd)) {
		/* Its operations were done when consumed: nothing pending. */
		free(c->files[qd]);
		c->files[qd] = NULL;
		return 0;
	}
	if (!q)
		return -EBADF;
	c->qds[qd] = NULL;
	/* A multishot pop ends here too: its last CQE has no F_MORE. */
	while ((op = opq_pop(&q->pops))) {
		c->inflight--;
		complete(c, op, -ECANCELED);
	}
	while ((op = opq_pop(&q->pushes))) {
		c->inflight--;
		complete(c, op, -ECANCELED);
	}
	while (q->head)
		elem_put(c, dequeue(c, q));
	free(q);
	return 0;
}

/*
 * QD_IOC_DERIVE, with QD_FEAT_DERIVED only (else unknown, as to an older
 * module): the request is kept for the test to read and the derived
 * queue is a plain memory queue (the fake routes nothing).
 */
static int do_derive(struct ctx *c, struct qd_derive *d)
{
	struct qd_queue_create qc = { 0 };
	int ret;

	if (!(c->features & QD_FEAT_DERIVED))
		return -ENOTTY;
	fake_derive_last = *d;
	if (!memq_get(c, d->src) ||
	    (d->kind == QD_DERIVE_MERGE && !memq_get(c, d->src2)))
		return -EBADF;
	ret = do_queue(c, &qc);
	if (!ret)
		d->qd = qc.qd;
	return ret;
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
	pthread_cond_init(&c->seq_cond, &attr);
	pthread_mutex_unlock(&ctxs_lock);
	return FAKE_FD_BASE + i;
}

static void ring_free(struct ring *r)
{
	struct cqrec *p;

	while ((p = r->ovf_head)) {
		r->ovf_head = p->next;
		free(p);
	}
	munmap(r->sqmem, r->sqbytes);
	munmap(r->cqmem, r->cqbytes);
	pthread_cond_destroy(&r->cond);
	free(r);
}

int qd__sys_close(int fd)
{
	struct ctx *c = ctx_get(fd);
	uint32_t i;

	if (!c)
		return -EBADF;
	/* Only the owner's close ends the context; a child drops its copy. */
	pthread_mutex_lock(&c->lock);
	if (c->pid == getpid()) {
		for (i = 0; i < FAKE_MAX_QDS; i++)
			if (c->qds[i] || c->files[i])
				do_close(c, i);
	}
	for (i = 0; i < c->nrings; i++) {
		ring_free(c->rings[i]);
		c->rings[i] = NULL;
	}
	c->nrings = 0;
	c->used = 0;
	pthread_mutex_unlock(&c->lock);
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
	case QD_IOC_RING:
		ret = do_ring(c, arg);
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
	case QD_IOC_DERIVE:
		ret = do_derive(c, arg);
		break;
	default:
		ret = -ENOTTY;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* The ring and which half of it an mmap offset names: 0 SQ, 1 CQ. */
static struct ring *ring_at(struct ctx *c, uint64_t off, int *cq)
{
	uint64_t n;

	if (off == QD_OFF_SQ_RING || off == QD_OFF_CQ_RING) {
		*cq = off == QD_OFF_CQ_RING;
		return c->rings[0];
	}
	if (off < QD_OFF_RINGS || !(c->features & QD_FEAT_RINGS))
		return NULL;
	n = (off - QD_OFF_RINGS) / QD_OFF_RING_STRIDE;
	off = (off - QD_OFF_RINGS) % QD_OFF_RING_STRIDE;
	if (n >= QD_MAX_RINGS || (off && off != QD_OFF_RING_STRIDE / 2))
		return NULL;
	*cq = !!off;
	return c->rings[n];
}

void *qd__sys_mmap(int fd, size_t len, uint64_t off, int *err)
{
	struct ctx *c = ctx_get(fd);
	void *p = MAP_FAILED;
	struct ring *r;
	int cq = 0;

	*err = 0;
	if (!c) {
		*err = -EBADF;
		return p;
	}
	if (c->pid != getpid()) {
		*err = -EPERM;
		return p;
	}
	pthread_mutex_lock(&c->lock);
	r = c->setup ? ring_at(c, off, &cq) : NULL;
	if (!c->setup)
		*err = -ENXIO;
	else if (r && !cq && len <= r->sqbytes)
		p = r->sqmem;
	else if (r && cq && len <= r->cqbytes)
		p = r->cqmem;
	else
		*err = -EINVAL;
	pthread_mutex_unlock(&c->lock);
	return p;
}

int qd__sys_munmap(void *addr, size_t len)
{
	(void)addr;
	(void)len;
	return 0;
}

/* This process's context, locked, or NULL. */
static struct ctx *ctx_mine_lock(void)
{
	int i;

	for (i = 0; i < FAKE_MAX_CTX; i++) {
		if (ctxs[i].used && ctxs[i].pid == getpid()) {
			pthread_mutex_lock(&ctxs[i].lock);
			return &ctxs[i];
		}
	}
	return NULL;
}

void fake_sqpoll(int asleep)
{
	struct ctx *c = ctx_mine_lock();

	if (!c)
		return;
	sqpoll_set(c, asleep);
	pthread_mutex_unlock(&c->lock);
}

int fake_sqpoll_pass(void)
{
	struct ctx *c = ctx_mine_lock();
	uint32_t i;
	int n = 0, ret;

	if (!c)
		return -ENXIO;
	for (i = 0; c->sqpoll && !c->sqpoll_asleep && i < c->nrings; i++) {
		ret = consume(c, c->rings[i], UINT32_MAX, 1);
		if (ret > 0)
			n += ret;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
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

int fake_sqe_log(struct qd_sqe *out, int n)
{
	struct ctx *c = ctx_mine_lock();
	uint64_t first;
	int i;

	if (!c)
		return 0;
	if (n > FAKE_SQE_LOG)
		n = FAKE_SQE_LOG;
	if ((uint64_t)n > c->nsqes)
		n = (int)c->nsqes;
	first = c->nsqes - (uint64_t)n;
	for (i = 0; i < n; i++)
		out[i] = c->sqe_log[(first + i) % FAKE_SQE_LOG];
	pthread_mutex_unlock(&c->lock);
	return n;
}
