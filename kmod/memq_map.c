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
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "common/qd_sga.h"
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
struct qd_mq_map *qd_mq_map_alloc(struct qd_ctx *ctx, u32 entries)
{
	struct qd_mq_map *map;
	int ret;

	map = kzalloc(sizeof(*map), GFP_KERNEL_ACCOUNT);
	if (!map)
		return ERR_PTR(-ENOMEM);
	map->bytes = PAGE_ALIGN(qd_mq_bytes(entries));
	ret = qd_ring_bytes_charge(ctx, map->bytes);
	if (ret) {
		kfree(map);
		return ERR_PTR(ret);
	}
	map->ctx = ctx;
	map->hdr = __vmalloc(map->bytes, GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!map->hdr) {
		qd_ring_bytes_uncharge(ctx, map->bytes);
		kfree(map);
		return ERR_PTR(-ENOMEM);
	}
	qd_mq_init(map->hdr, entries);
	map->entries = entries;
	map->mask = entries - 1;
	refcount_set(&map->refs, 1);
	return map;
}

/* Any context but NMI (vfree() defers from interrupts). */
void qd_mq_map_put(struct qd_mq_map *map)
{
	if (!refcount_dec_and_test(&map->refs))
		return;
	qd_ring_bytes_uncharge(map->ctx, map->bytes);
	vfree(map->hdr);
	kfree(map);
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

/* Append elem's descriptor. False when the ring is full (or contended). */
bool qd_mq_map_put_elem(struct qd_mq_map *map, const struct qd_kelem *elem)
{
	return qd_mq_produce(map->hdr, map->mask, elem->segs, elem->nsegs,
			     QD_MQ_KERNEL_TRIES) == QD_MQ_OK;
}

/*
 * Take the oldest descriptor into elem (empty, charged, from
 * qd_elem_alloc()) for a pop of ctx. Returns -EAGAIN when there is none,
 * otherwise consumes it and returns 0 with elem resolved against ctx's
 * regions (one reference each), or -EBADMSG for a descriptor that is
 * malformed or names memory ctx has not registered (it is dropped).
 */
int qd_mq_map_take_elem(struct qd_mq_map *map, struct qd_ctx *ctx,
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
