/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_MEMQ_MAP_H
#define _QD_MEMQ_MAP_H

#include <linux/refcount.h>
#include <linux/types.h>
#include <linux/workqueue.h>

struct qd_ctx;
struct qd_kelem;
struct qd_user;
struct qd_mq_hdr;
struct vm_area_struct;

/*
 * The descriptor ring of a mapped memory queue (QD_QUEUE_MAPPED). Held by
 * its queue and by every mapping of it, so it outlives a close while user
 * space still has it mapped.
 */
/*
 * A binding of a shared mapped queue (QD_QUEUE_SHARED): the region that
 * descriptors naming its index point into. Holds a user reference on the
 * region (its pins) and one on its context (which owns the region's
 * memory), so it outlives the binder; dropped when the queue closes.
 */
struct qd_mq_binding {
	struct qd_region *region;
	struct qd_ctx *ctx;
};

struct qd_mq_map {
	refcount_t refs;
	/*
	 * The creator, charged and referenced: until the map is freed, or for
	 * a shared ring until its queue's last handle closes (unlink), so
	 * that another process's mapping or export fd holds only the ring,
	 * not the creator's context (its regions, its rings). quser: charged
	 * and referenced until the map is freed.
	 */
	struct qd_ctx *ctx;
	struct qd_user *quser;
	struct work_struct free_work;
	struct qd_mq_hdr *hdr;		/* vmalloc memory, shared with user */
	size_t bytes;			/* page aligned */
	u32 entries;
	u32 mask;			/* ours: never read back from hdr */
	/*
	 * QD_QUEUE_SHARED: the bindings (QD_MQ_MAX_BINDINGS), else NULL.
	 * Changed under the queue's lock only; entries below nr_binds never
	 * change until the queue's last handle closes (unbind_all).
	 */
	struct qd_mq_binding *binds;
	u32 nr_binds;
	/*
	 * Pops taken for a copy and not yet copied (the copy runs without the
	 * lock, from the binder's pages): a close that comes meanwhile leaves
	 * the bindings to the last of them (unbind_deferred).
	 */
	u32 copiers;
	bool unbind_deferred;
};

/* qd_mq_map_take_elem(): taken, but the payload must be copied into dst. */
#define QD_MQ_TAKE_COPY	1

struct qd_mq_map *qd_mq_map_alloc(struct qd_ctx *ctx, u32 entries,
				  bool shared);
void qd_mq_map_put(struct qd_mq_map *map);
void qd_mq_map_unlink(struct qd_mq_map *map);
int qd_mq_map_mmap(struct qd_mq_map *map, struct vm_area_struct *vma);

int qd_mq_map_put_elem(struct qd_mq_map *map, const struct qd_kelem *elem);
int qd_mq_map_take_elem(struct qd_mq_map *map, struct qd_ctx *ctx,
			struct qd_kelem *elem, const struct qd_kelem *dst);
int qd_mq_map_bind(struct qd_mq_map *map, struct qd_region *region,
		   struct qd_ctx *ctx);
int qd_mq_map_binding_get(struct qd_mq_map *map, u32 index,
			  struct qd_mq_binding *out);
void qd_mq_map_unbind_all(struct qd_mq_map *map);
void qd_mq_map_copy_done(struct qd_mq_map *map);
void qd_mq_map_set_waiters(struct qd_mq_map *map, u32 waiters);
u32 qd_mq_map_depth(struct qd_mq_map *map);
bool qd_mq_map_has_elem(struct qd_mq_map *map);

#endif /* _QD_MEMQ_MAP_H */
