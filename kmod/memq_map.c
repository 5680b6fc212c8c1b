// SPDX-License-Identifier: GPL-2.0
/*
 * The descriptor ring of a mapped memory queue: its memory, its mapping
 * into user space, and the kernel's side of the protocol in
 * common/qd_mq.h (the kernel is one more producer and consumer).
 *
 * The ring is vmalloc memory charged to the creator's memory cgroup, mapped
 * page by page like the SQ and CQ rings. User space may write anything into
 * it: the kernel uses its own mask, copies an element out once and checks
 * the copy (segment shape, and every region against the popping context),
 * and gives up after QD_MQ_KERNEL_TRIES lost races, so a process that
 * scribbles on a queue harms only that queue's elements. Any context, no
 * sleeping, except allocation and mmap (process context).
 */
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/preempt.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "common/qd_sga.h"
#include "ctx.h"
#include "memq_map.h"
#include "op.h"
#include "region.h"
#include "user.h"

/* The protocol's primitives (common/qd_mq.h). */
static inline u32 qd_mq_acquire(u32 *p)
{
	/* Pairs with the release that published the slot's turn. */
	return smp_load_acquire(p);
}

static inline void qd_mq_release(u32 *p, u32 v)
{
	/* The element (or its copy out) is done before the turn moves on. */
	smp_store_release(p, v);
}

static inline bool qd_mq_cas(u32 *p, u32 old, u32 new)
{
	return cmpxchg(p, old, new) == old;
}

#define QD_MQ_LOAD(p)			READ_ONCE(*(p))
#define QD_MQ_LOAD_ACQUIRE(p)		qd_mq_acquire(p)
#define QD_MQ_STORE_RELEASE(p, v)	qd_mq_release(p, v)
#define QD_MQ_CAS(p, old, new)		qd_mq_cas(p, old, new)
#include "common/qd_mq.h"

/* Lost races the kernel tolerates per attempt before it gives up. */
#define QD_MQ_KERNEL_TRIES	64

static_assert(sizeof(struct qd_mq_hdr) % 64 == 0);
static_assert(sizeof(struct qd_mq_slot) % 16 == 0);
static_assert(QD_MEMQ_MAX_DEPTH * sizeof(struct qd_mq_slot) +
	      sizeof(struct qd_mq_hdr) <= QD_OFF_QUEUE_STRIDE);

/*
 * Process context. entries: a power of two up to QD_MEMQ_MAX_DEPTH. The
 * ring's memory is charged to ctx's ring bytes (-ENOBUFS past the bound).
 */
struct qd_mq_map *qd_mq_map_alloc(struct qd_ctx *ctx, u32 entries,
				  bool shared)
{
	struct qd_mq_map *map;
	int ret = -ENOMEM;

	map = kzalloc(sizeof(*map), GFP_KERNEL_ACCOUNT);
	if (!map)
		return ERR_PTR(-ENOMEM);
	if (shared) {
		map->binds = kcalloc(QD_MQ_MAX_BINDINGS, sizeof(*map->binds),
				     GFP_KERNEL_ACCOUNT);
		if (!map->binds)
			goto err_free;
	}
	map->bytes = PAGE_ALIGN(qd_mq_bytes(entries));
	ret = qd_ring_bytes_charge(ctx, map->bytes);
	if (ret)
		goto err_free;
	map->hdr = __vmalloc(map->bytes, GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!map->hdr) {
		ret = -ENOMEM;
		goto err_uncharge;
	}
	qd_ctx_get(ctx);
	map->ctx = ctx;
	qd_user_hold(ctx->quser);
	map->quser = ctx->quser;
	qd_mq_init(map->hdr, entries);
	map->entries = entries;
	map->mask = entries - 1;
	refcount_set(&map->refs, 1);
	return map;

err_uncharge:
	qd_ring_bytes_uncharge(ctx, map->bytes);
err_free:
	kfree(map->binds);
	kfree(map);
	return ERR_PTR(ret);
}

/* The creator's context charge and reference go. Any context. */
static void qd_mq_map_release_ctx(struct qd_mq_map *map)
{
	if (!map->ctx)
		return;
	qd_ring_bytes_uncharge_ctx(map->ctx, map->bytes);
	qd_ctx_put(map->ctx);
	map->ctx = NULL;
}

/* Process context: qd_user_put() takes a process-context lock. */
static void qd_mq_map_free(struct qd_mq_map *map)
{
	/* A pop copying holds its queue, and the queue holds the map. */
	WARN_ON_ONCE(map->copiers);
	qd_mq_map_unbind_all(map);
	qd_mq_map_release_ctx(map);
	qd_ring_bytes_uncharge_user(map->quser, map->bytes);
	qd_user_put(map->quser);
	vfree(map->hdr);
	kfree(map->binds);
	kfree(map);
}

static void qd_mq_map_free_work(struct work_struct *work)
{
	qd_mq_map_free(container_of(work, struct qd_mq_map, free_work));
}

/* Any context but NMI: from an interrupt the free is deferred. */
void qd_mq_map_put(struct qd_mq_map *map)
{
	if (!refcount_dec_and_test(&map->refs))
		return;
	if (in_task()) {
		qd_mq_map_free(map);
		return;
	}
	INIT_WORK(&map->free_work, qd_mq_map_free_work);
	qd_ctx_defer(&map->free_work);
}

/*
 * The queue lets go of its ring (its last handle closes, or it is
 * released; any context): a shared ring returns the creator's context
 * charge and reference now, since other processes may keep it mapped, or
 * an export fd open, as long as they like; an unshared one keeps them
 * (only its context maps it, and those mappings hold the context's file).
 */
void qd_mq_map_unlink(struct qd_mq_map *map)
{
	if (map->binds)
		qd_mq_map_release_ctx(map);
}

static void qd_mq_vm_open(struct vm_area_struct *vma)
{
	struct qd_mq_map *map = vma->vm_private_data;

	refcount_inc(&map->refs);
}

static void qd_mq_vm_close(struct vm_area_struct *vma)
{
	qd_mq_map_put(vma->vm_private_data);
}

static const struct vm_operations_struct qd_mq_vm_ops = {
	.open = qd_mq_vm_open,
	.close = qd_mq_vm_close,
};

int qd_mq_map_mmap(struct qd_mq_map *map, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long i;
	int ret;

	if (len > map->bytes)
		return -EINVAL;
	vma->vm_flags |= VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP;
	for (i = 0; i < len >> PAGE_SHIFT; i++) {
		ret = vm_insert_page(vma, vma->vm_start + (i << PAGE_SHIFT),
				     vmalloc_to_page((void *)map->hdr +
						     (i << PAGE_SHIFT)));
		if (ret)
			return ret;
	}
	/* From here on the vma holds the ring; its close drops it. */
	refcount_inc(&map->refs);
	vma->vm_private_data = map;
	vma->vm_ops = &qd_mq_vm_ops;
	return 0;
}

/*
 * The binding of region (of ctx, held by the caller) in a shared ring: its
 * index, a new one if need be, or -ENOSPC when the table is full. Called
 * with the queue's lock held (any context: no allocation).
 */
int qd_mq_map_bind(struct qd_mq_map *map, struct qd_region *region,
		   struct qd_ctx *ctx)
{
	u32 i;

	for (i = 0; i < map->nr_binds; i++)
		if (map->binds[i].region == region)
			return i;
	if (map->nr_binds == QD_MQ_MAX_BINDINGS)
		return -ENOSPC;
	qd_region_hold(region);
	qd_ctx_get(ctx);
	map->binds[i].region = region;
	map->binds[i].ctx = ctx;
	map->nr_binds = i + 1;
	return i;
}

/*
 * A copy of binding index with its own references (drop them with
 * qd_region_put() and qd_ctx_put()), or -ENOENT. Called with the queue's
 * lock held.
 */
int qd_mq_map_binding_get(struct qd_mq_map *map, u32 index,
			  struct qd_mq_binding *out)
{
	if (!map->binds || index >= map->nr_binds)
		return -ENOENT;
	*out = map->binds[array_index_nospec(index, map->nr_binds)];
	qd_region_hold(out->region);
	qd_ctx_get(out->ctx);
	return 0;
}

/*
 * The queue's last handle closed (or the ring is freed): the bindings let
 * go of their regions and contexts. Called with the queue's lock held, or
 * when nothing else can reach the map; any context (qd_ctx_put() defers).
 */
void qd_mq_map_unbind_all(struct qd_mq_map *map)
{
	if (map->copiers) {
		map->unbind_deferred = true;
		return;
	}
	while (map->nr_binds) {
		struct qd_mq_binding *b = &map->binds[--map->nr_binds];

		qd_region_put(b->region);
		qd_ctx_put(b->ctx);
	}
}

/* A pop counted in copiers made its copy. Called with the queue's lock. */
void qd_mq_map_copy_done(struct qd_mq_map *map)
{
	if (!--map->copiers && map->unbind_deferred)
		qd_mq_map_unbind_all(map);
}

/*
 * Append elem's descriptor: 0, -EAGAIN when the ring is full (or
 * contended), or -ENOSPC when a shared ring has no binding left for one of
 * its regions. In a shared ring the segments name bindings: elem's regions
 * (of its pusher's context, elem->ctx) are bound first. Called with the
 * queue's lock held.
 */
int qd_mq_map_put_elem(struct qd_mq_map *map, const struct qd_kelem *elem)
{
	const struct qd_seg *src = elem->segs;
	struct qd_seg segs[QD_SGA_MAX];
	int i, idx;

	if (map->binds) {
		for (i = 0; i < elem->nsegs; i++) {
			idx = qd_mq_map_bind(map, elem->regions[i], elem->ctx);
			if (idx < 0)
				return idx;
			segs[i] = elem->segs[i];
			segs[i].region = idx;
		}
		src = segs;
	}
	if (qd_mq_produce(map->hdr, map->mask, src, elem->nsegs,
			  QD_MQ_KERNEL_TRIES) != QD_MQ_OK)
		return -EAGAIN;
	return 0;
}

/* Take the oldest descriptor of an unshared ring (its context's regions). */
static int qd_mq_map_take_own(struct qd_mq_map *map, struct qd_ctx *ctx,
			      struct qd_kelem *elem)
{
	struct qd_seg segs[QD_SGA_MAX];
	u16 nsegs;
	u32 i;

	if (qd_mq_consume(map->hdr, map->mask, segs, &nsegs,
			  QD_MQ_KERNEL_TRIES) != QD_MQ_OK)
		return -EAGAIN;
	if (!nsegs || nsegs > QD_SGA_MAX ||
	    qd_sga_check(segs, nsegs, &elem->bytes))
		return -EBADMSG;
	memcpy(elem->segs, segs, nsegs * sizeof(segs[0]));
	for (i = 0; i < nsegs; i++) {
		if (qd_region_resolve(ctx, &elem->segs[i], &elem->regions[i]))
			return -EBADMSG;
		elem->nsegs = i + 1;	/* references held so far */
	}
	return 0;
}

/* Drop what resolving a descriptor into elem took. */
static void qd_mq_map_unresolve(struct qd_kelem *elem)
{
	while (elem->nsegs)
		qd_region_put(elem->regions[--elem->nsegs]);
	elem->bytes = 0;
}

/*
 * Resolve a shared ring's descriptor (a copy) for a pop of ctx into elem:
 * each segment into ctx's regions when ctx bound it or registered the
 * same shared memory, else into the binder's region (*foreign: only a
 * copy can take it). -EBADMSG for a malformed one.
 */
static int qd_mq_map_resolve(struct qd_mq_map *map, struct qd_ctx *ctx,
			     const struct qd_seg *segs, u16 nsegs,
			     struct qd_kelem *elem, bool *foreign)
{
	struct qd_mq_binding *b;
	struct qd_seg s;
	u32 i;

	*foreign = false;
	if (!nsegs || nsegs > QD_SGA_MAX ||
	    qd_sga_check(segs, nsegs, &elem->bytes))
		return -EBADMSG;
	for (i = 0; i < nsegs; i++) {
		if (segs[i].region >= map->nr_binds)
			return -EBADMSG;
		/* An index user space wrote: no speculation past the check. */
		b = &map->binds[array_index_nospec(segs[i].region,
						   map->nr_binds)];
		if (!qd_seg_in_region(segs[i].offset, segs[i].len,
				      b->region->len))
			return -EBADMSG;
		s = segs[i];
		s.region = b->region->id;
		if (b->ctx == ctx ||
		    qd_region_translate(ctx, b->region, &s, &elem->segs[i],
					&elem->regions[i])) {
			*foreign |= b->ctx != ctx;
			qd_region_hold(b->region);
			elem->segs[i] = s;
			elem->regions[i] = b->region;
		}
		elem->nsegs = i + 1;	/* references held so far */
	}
	return 0;
}

/*
 * Take the oldest descriptor into elem (empty, charged, from
 * qd_elem_alloc()) for a pop of ctx that brought the buffer dst (or NULL).
 * Returns -EAGAIN when there is none; otherwise consumes it and returns 0
 * with elem resolved against ctx's regions (one reference each), or
 * -EBADMSG for a descriptor that is malformed or names memory ctx (in a
 * shared ring: the queue) does not know (it is dropped). In a shared
 * ring, an element in memory ctx cannot see is taken only for a copy into
 * dst (QD_MQ_TAKE_COPY: elem then names the binder's pages); otherwise it
 * stays first in the ring and the pop gets -EXDEV (no dst) or -EMSGSIZE
 * (dst too small), as on the kernel's own queues. Called with the queue's
 * lock held.
 */
int qd_mq_map_take_elem(struct qd_mq_map *map, struct qd_ctx *ctx,
			struct qd_kelem *elem, const struct qd_kelem *dst)
{
	struct qd_seg segs[QD_SGA_MAX];
	unsigned int tries;
	bool foreign;
	u16 nsegs;
	u32 pos;
	int ret;

	if (!map->binds)
		return qd_mq_map_take_own(map, ctx, elem);
	for (tries = 0; tries < QD_MQ_KERNEL_TRIES; tries++) {
		ret = qd_mq_peek(map->hdr, map->mask, segs, &nsegs, &pos);
		if (ret == QD_MQ_EMPTY)
			return -EAGAIN;
		if (ret != QD_MQ_OK)
			continue;
		ret = qd_mq_map_resolve(map, ctx, segs, nsegs, elem, &foreign);
		if (!ret && foreign)
			ret = !dst ? -EXDEV : dst->bytes < elem->bytes ?
			      -EMSGSIZE : QD_MQ_TAKE_COPY;
		if (ret == -EXDEV || ret == -EMSGSIZE) {
			qd_mq_map_unresolve(elem);
			return ret;
		}
		if (qd_mq_claim(map->hdr, map->mask, pos))
			return ret;
		qd_mq_map_unresolve(elem);	/* another consumer took it */
	}
	return -EAGAIN;
}

/*
 * Publish which kinds of op the kernel holds, then order that store before
 * the ring re-check that follows: pairs with the full barrier user space
 * makes between publishing an element (or a free slot) and reading the
 * flag, so either the kernel sees the element or user space sees the flag.
 */
void qd_mq_map_set_waiters(struct qd_mq_map *map, u32 waiters)
{
	WRITE_ONCE(map->hdr->waiters, waiters);
	/* Store the flag, then re-read the ring (see above). */
	smp_mb();
}

/* Elements in the ring, as far as its counters tell (debugfs). */
u32 qd_mq_map_depth(struct qd_mq_map *map)
{
	u32 used = READ_ONCE(map->hdr->tail) - READ_ONCE(map->hdr->head);

	return min(used, map->entries);
}

/*
 * Whether the oldest slot holds a published element (a peek: nothing is
 * claimed). Any context, no lock: user space may change the ring at any
 * time, so the answer is a hint for a sleeper's wake-up condition.
 */
bool qd_mq_map_has_elem(struct qd_mq_map *map)
{
	u32 head = READ_ONCE(map->hdr->head);
	struct qd_mq_slot *s = &qd_mq_slots(map->hdr)[head & map->mask];

	return qd_mq_acquire(&s->seq) == head + 1;
}
