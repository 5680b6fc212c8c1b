// SPDX-License-Identifier: MIT
/*
 * qd_sgaalloc()/qd_sgafree() and registered memory (qd_memregister()).
 *
 * Buffers come from chunks of anonymous memory, each registered as one
 * kernel region and dedicated to one size class. Freed buffers go back to
 * their chunk's stack of free indices; a bitmap catches double frees.
 * Small chunks are kept for reuse; a chunk of a single large buffer is
 * unregistered and unmapped when the buffer is freed. One lock, taken
 * once per call; the chunk table lookup is a binary search over at most
 * QD_MAX_REGIONS chunks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "int.h"
#include "syscall.h"

struct qd_class {
	struct qd_chunk	*avail;		/* chunks with a free buffer */
	unsigned int	nchunks;
};

static struct {
	pthread_mutex_t		lock;
	struct qd_chunktab	tab;
	struct qd_class		cls[QD_NCLASSES];
} A = {
	.lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
};

int qd__size_class(size_t size)
{
	if (!size || size > QD_ALLOC_MAX)
		return -EINVAL;
	if (size <= qd__class_size(0))
		return 0;
	return (int)(64 - __builtin_clzll((unsigned long long)size - 1)) -
	       QD_CLASS_MIN_SHIFT;
}

size_t qd__chunk_bytes(int cls, unsigned int nchunks)
{
	size_t s = qd__class_size(cls), b;

	if (s >= QD_CHUNK_MAX)
		return s;
	b = s * QD_CHUNK_BUFS;
	if (b < QD_CHUNK_MIN)
		b = QD_CHUNK_MIN;
	while (nchunks-- && b < QD_CHUNK_MAX)
		b <<= 1;
	return b < QD_CHUNK_MAX ? b : QD_CHUNK_MAX;
}

size_t qd__chunk_min_bytes(int cls)
{
	size_t s = qd__class_size(cls);

	return s > QD_CHUNK_MIN ? s : QD_CHUNK_MIN;
}

int qd__chunk_bufs_init(struct qd_chunk *c, int cls)
{
	uint32_t i, n = (uint32_t)(c->len / qd__class_size(cls));

	c->cls = cls;
	c->nbufs = c->nfree = n;
	c->freestk = malloc(n * sizeof(*c->freestk));
	c->used = calloc((n + 63) / 64, sizeof(*c->used));
	if (!c->freestk || !c->used) {
		qd__chunk_bufs_fini(c);
		return -ENOMEM;
	}
	/* Hand out low addresses first. */
	for (i = 0; i < n; i++)
		c->freestk[i] = n - 1 - i;
	return 0;
}

void qd__chunk_bufs_fini(struct qd_chunk *c)
{
	free(c->freestk);
	free(c->used);
	c->freestk = NULL;
	c->used = NULL;
	c->nbufs = c->nfree = 0;
}

void *qd__chunk_take(struct qd_chunk *c)
{
	uint32_t idx = c->freestk[--c->nfree];

	c->used[idx / 64] |= 1ULL << (idx % 64);
	return (void *)(c->base + ((uintptr_t)idx << (c->cls + QD_CLASS_MIN_SHIFT)));
}

int qd__chunk_index(const struct qd_chunk *c, uintptr_t p)
{
	uintptr_t idx;

	if (c->cls < 0 || p < c->base)
		return -EINVAL;
	idx = (p - c->base) >> (c->cls + QD_CLASS_MIN_SHIFT);
	if (idx >= c->nbufs || !(c->used[idx / 64] & (1ULL << (idx % 64))))
		return -EINVAL;
	return (int)idx;
}

void qd__chunk_give(struct qd_chunk *c, uint32_t idx)
{
	c->used[idx / 64] &= ~(1ULL << (idx % 64));
	c->freestk[c->nfree++] = idx;
}

void qd__alloc_lock(void)
{
	pthread_mutex_lock(&A.lock);
}

void qd__alloc_unlock(void)
{
	pthread_mutex_unlock(&A.lock);
}

static int huge(const struct qd_chunk *c)
{
	return c->cls >= 0 && qd__class_size(c->cls) >= QD_CHUNK_MAX;
}

static void avail_push(struct qd_chunk *c)
{
	struct qd_class *k = &A.cls[c->cls];

	if (c->on_avail)
		return;
	c->next_avail = k->avail;
	k->avail = c;
	c->on_avail = 1;
}

static void avail_del(struct qd_chunk *c)
{
	struct qd_chunk **pp = &A.cls[c->cls].avail;

	for (; *pp; pp = &(*pp)->next_avail) {
		if (*pp == c) {
			*pp = c->next_avail;
			break;
		}
	}
	c->next_avail = NULL;
	c->on_avail = 0;
}

/* Map, register and index one chunk of len bytes for class cls. */
static int chunk_map(int cls, size_t len, struct qd_chunk **out)
{
	struct qd_chunk *c;
	int ret, err = -ENOMEM;
	void *p;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	p = qd__mmap_anon(len, &err);
	if (p == MAP_FAILED) {
		ret = err;
		goto err_free;
	}
	c->base = (uintptr_t)p;
	c->len = len;
	ret = qd__register(qd__ctx.fd, p, len, &c->region);
	if (ret)
		goto err_unmap;
	ret = qd__chunk_bufs_init(c, cls);
	if (ret)
		goto err_unregister;
	ret = qd__chunktab_add(&A.tab, c);
	if (ret)
		goto err_fini;
	*out = c;
	return 0;

err_fini:
	qd__chunk_bufs_fini(c);
err_unregister:
	qd__unregister(qd__ctx.fd, c->region, len);
err_unmap:
	qd__munmap_anon(p, len);
err_free:
	free(c);
	return ret;
}

/*
 * A new chunk for class cls, smaller ones when memory or memlock runs out.
 * Every failure is -ENOMEM to the caller but a bad context's.
 */
static int chunk_new(int cls, struct qd_chunk **out)
{
	size_t len = qd__chunk_bytes(cls, A.cls[cls].nchunks);
	size_t min = qd__chunk_min_bytes(cls);
	int ret;

	for (;;) {
		ret = chunk_map(cls, len, out);
		if (!ret)
			break;
		if (ret != -ENOMEM || len <= min)
			return ret == -ENOSPC || ret == -EEXIST ? -ENOMEM : ret;
		len /= 2;
	}
	A.cls[cls].nchunks++;
	avail_push(*out);
	return 0;
}

/* Unregister and unmap an idle chunk; it stays if the kernel still uses it. */
static int chunk_release(struct qd_chunk *c)
{
	int ret = qd__unregister(qd__ctx.fd, c->region, c->len);

	if (ret)
		return ret;
	qd__chunktab_del(&A.tab, c);
	qd__munmap_anon((void *)c->base, c->len);
	if (c->cls >= 0) {
		A.cls[c->cls].nchunks--;
		qd__chunk_bufs_fini(c);
	}
	free(c);
	return 0;
}

/* Return buffer idx of c; a huge buffer's chunk goes back to the system. */
static void buf_give(struct qd_chunk *c, uint32_t idx)
{
	qd__chunk_give(c, idx);
	if (huge(c)) {
		avail_del(c);
		if (!chunk_release(c))
			return;
	}
	avail_push(c);
}

/*
 * Add the buffer of c holding p to the n distinct ones in cs/idx, if it
 * is a live qd_sgaalloc() buffer: 0, or -EINVAL.
 */
static int buf_collect(struct qd_chunk *c, uintptr_t p, struct qd_chunk **cs,
		       int *idx, int *n)
{
	int i = c ? qd__chunk_index(c, p) : -EINVAL, j;

	if (i < 0)
		return -EINVAL;
	for (j = 0; j < *n; j++)
		if (cs[j] == c && idx[j] == i)
			return 0;
	cs[*n] = c;
	idx[(*n)++] = i;
	return 0;
}

struct qd_sga qd_sgaalloc(size_t size)
{
	struct qd_sga sga;
	struct qd_chunk *c;
	int cls, ret;
	void *p;

	memset(&sga, 0, sizeof(sga));
	cls = qd__size_class(size);
	if (cls < 0) {
		errno = EINVAL;
		return sga;
	}
	ret = qd_get();
	if (ret) {
		errno = -ret;
		return sga;
	}
	pthread_mutex_lock(&A.lock);
	c = A.cls[cls].avail;
	if (!c) {
		ret = chunk_new(cls, &c);
		if (ret) {
			pthread_mutex_unlock(&A.lock);
			errno = -ret;
			return sga;
		}
	}
	p = qd__chunk_take(c);
	if (!c->nfree)
		avail_del(c);
	pthread_mutex_unlock(&A.lock);

	sga.numsegs = 1;
	sga.segs[0].buf = p;
	sga.segs[0].len = (uint32_t)size;
	return sga;
}

int qd_sgafree(struct qd_sga *sga)
{
	struct qd_chunk *cs[QD_SGA_MAX], *c;
	int idx[QD_SGA_MAX], j, n = 0, ret = 0;
	uint32_t k;

	if (!sga || !sga->numsegs || sga->numsegs > QD_SGA_MAX)
		return -EINVAL;
	pthread_mutex_lock(&A.lock);
	/* Check everything first: an error frees nothing. */
	for (k = 0; k < sga->numsegs; k++) {
		c = qd__chunktab_find(&A.tab, (uintptr_t)sga->segs[k].buf);
		ret = buf_collect(c, (uintptr_t)sga->segs[k].buf, cs, idx, &n);
		if (ret)
			goto out;
	}
	for (j = 0; j < n; j++)
		buf_give(cs[j], (uint32_t)idx[j]);
out:
	pthread_mutex_unlock(&A.lock);
	return ret;
}

int qd_memregister(void *addr, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct qd_chunk *c;
	int ret;

	if (!addr || !len || (uintptr_t)addr % page || len > SIZE_MAX - page)
		return -EINVAL;
	len = (len + page - 1) / page * page;
	ret = qd_get();
	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->base = (uintptr_t)addr;
	c->len = len;
	c->cls = QD_CLASS_USER;

	pthread_mutex_lock(&A.lock);
	ret = qd__chunktab_fits(&A.tab, c->base, len);
	if (ret)
		goto err_unlock;
	ret = qd__register(qd__ctx.fd, addr, len, &c->region);
	if (ret)
		goto err_unlock;
	ret = qd__chunktab_add(&A.tab, c);
	if (ret) {
		qd__unregister(qd__ctx.fd, c->region, len);
		goto err_unlock;
	}
	pthread_mutex_unlock(&A.lock);
	return 0;

err_unlock:
	pthread_mutex_unlock(&A.lock);
	free(c);
	return ret;
}

int qd_memunregister(void *addr)
{
	struct qd_chunk *c;
	int ret;

	if (!qd_ready())
		return -ENOENT;
	pthread_mutex_lock(&A.lock);
	c = qd__chunktab_find(&A.tab, (uintptr_t)addr);
	if (!c || c->base != (uintptr_t)addr || c->cls != QD_CLASS_USER) {
		ret = -ENOENT;
	} else {
		ret = qd__unregister(qd__ctx.fd, c->region, c->len);
		if (!ret) {
			qd__chunktab_del(&A.tab, c);
			free(c);
		}
	}
	pthread_mutex_unlock(&A.lock);
	return ret;
}

/*
 * The calling thread's last chunk (a copy, not a pointer: nothing to free
 * under it), good while the chunk table's generation is unchanged. Pushes
 * and pops mostly name one chunk again and again; with the cache they do
 * not take the allocator lock.
 */
static __thread struct {
	uint64_t	gen;
	uintptr_t	base;
	size_t		len;
	uint32_t	region;
} tc __attribute__((tls_model("initial-exec")));

static int tc_valid(void)
{
	return tc.gen && tc.gen == __atomic_load_n(&A.tab.gen, __ATOMIC_ACQUIRE);
}

/* Remember c, found under A.lock. */
static void tc_fill(const struct qd_chunk *c)
{
	tc.gen = A.tab.gen;
	tc.base = c->base;
	tc.len = c->len;
	tc.region = c->region;
}

int qd__alloc_translate(const struct qd_sga *sga, struct qd_seg *segs)
{
	const struct qd_chunk *c;
	uint32_t i, hits = 0;
	uintptr_t p;
	int ret;

	if (tc_valid()) {
		for (i = 0; i < sga->numsegs; i++, hits++) {
			p = (uintptr_t)sga->segs[i].buf;
			if (p - tc.base >= tc.len ||
			    sga->segs[i].len > tc.len - (p - tc.base))
				break;
			segs[i] = (struct qd_seg){
				.offset = p - tc.base,
				.len = sga->segs[i].len,
				.region = (uint16_t)tc.region,
			};
		}
		if (hits == sga->numsegs)
			return 0;
	}
	pthread_mutex_lock(&A.lock);
	ret = qd__sga_to_segs(&A.tab, sga, segs);
	if (!ret) {
		c = qd__chunktab_find(&A.tab, (uintptr_t)sga->segs[0].buf);
		if (c)
			tc_fill(c);
	}
	pthread_mutex_unlock(&A.lock);
	return ret;
}

int qd__alloc_resolve(const struct qd_seg *segs, unsigned int n,
		      struct qd_sga *sga)
{
	const struct qd_chunk *c;
	unsigned int i;
	int ret;

	if (n <= QD_SGA_MAX && tc_valid()) {
		for (i = 0; i < n; i++) {
			if (segs[i].region != tc.region ||
			    segs[i].offset >= tc.len ||
			    segs[i].len > tc.len - segs[i].offset)
				break;
			sga->segs[i].buf = (void *)(tc.base + segs[i].offset);
			sga->segs[i].len = segs[i].len;
		}
		if (i == n) {
			sga->numsegs = n;
			return 0;
		}
	}
	pthread_mutex_lock(&A.lock);
	ret = qd__segs_to_sga(&A.tab, segs, n, sga);
	if (!ret && n) {
		c = A.tab.by_region[segs[0].region];
		if (c)
			tc_fill(c);
	}
	pthread_mutex_unlock(&A.lock);
	return ret;
}

void qd__alloc_free_segs(const struct qd_seg *segs, unsigned int n)
{
	struct qd_chunk *cs[QD_SGA_MAX], *c;
	int idx[QD_SGA_MAX], j, k = 0;
	unsigned int i;

	pthread_mutex_lock(&A.lock);
	for (i = 0; i < n && i < QD_SGA_MAX; i++) {
		c = segs[i].region < QD_MAX_REGIONS ?
			A.tab.by_region[segs[i].region] : NULL;
		if (c && segs[i].offset < c->len)
			buf_collect(c, c->base + segs[i].offset, cs, idx, &k);
	}
	for (j = 0; j < k; j++)
		buf_give(cs[j], (uint32_t)idx[j]);
	pthread_mutex_unlock(&A.lock);
}

/* In a fork child, with A.lock held: forget chunks, keep their memory. */
void qd__alloc_forget(void)
{
	struct qd_chunk *c;
	uint64_t gen;
	unsigned int i;

	for (i = 0; i < A.tab.n; i++) {
		c = A.tab.sorted[i];
		qd__chunk_bufs_fini(c);
		free(c);
	}
	gen = A.tab.gen;
	memset(&A.tab, 0, sizeof(A.tab));
	/* The forking thread's cache must not match the new table. */
	A.tab.gen = gen + 1;
	memset(A.cls, 0, sizeof(A.cls));
}
