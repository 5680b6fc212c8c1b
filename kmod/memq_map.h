/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_MEMQ_MAP_H
#define _QD_MEMQ_MAP_H

#include <linux/refcount.h>
#include <linux/types.h>

struct qd_ctx;
struct qd_kelem;
struct qd_mq_hdr;
struct vm_area_struct;

/*
 * The descriptor ring of a mapped memory queue (QD_QUEUE_MAPPED). Held by
 * its queue and by every mapping of it, so it outlives a close while user
 * space still has it mapped.
 */
struct qd_mq_map {
	refcount_t refs;
	struct qd_ctx *ctx;		/* charged; freed before it (user.c) */
	struct qd_mq_hdr *hdr;		/* vmalloc memory, shared with user */
	size_t bytes;			/* page aligned */
	u32 entries;
	u32 mask;			/* ours: never read back from hdr */
};

struct qd_mq_map *qd_mq_map_alloc(struct qd_ctx *ctx, u32 entries);
void qd_mq_map_put(struct qd_mq_map *map);
int qd_mq_map_mmap(struct qd_mq_map *map, struct vm_area_struct *vma);

bool qd_mq_map_put_elem(struct qd_mq_map *map, const struct qd_kelem *elem);
int qd_mq_map_take_elem(struct qd_mq_map *map, struct qd_ctx *ctx,
			struct qd_kelem *elem);
void qd_mq_map_set_waiters(struct qd_mq_map *map, u32 waiters);
u32 qd_mq_map_depth(struct qd_mq_map *map);
bool qd_mq_map_has_elem(struct qd_mq_map *map);

#endif /* _QD_MEMQ_MAP_H */
