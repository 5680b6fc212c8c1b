/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_REGION_H
#define _QD_REGION_H

#include <linux/atomic.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/qd.h>

struct qd_ctx;
struct page;
struct bio_vec;

/* Pinned user memory named by an id; buffers are (id, offset, len). */
struct qd_region {
	u32 id;
	bool charged;			/* to the user's locked_vm */
	u64 addr;
	u64 len;
	unsigned long nr_pages;
	struct page **pages;
	/*
	 * The same pages as one bio_vec each, so that storage I/O (file.c)
	 * iterates a segment in place (ITER_BVEC), as io_uring's registered
	 * buffers do: no per-I/O array to build.
	 */
	struct bio_vec *bvecs;
	/*
	 * Identity of shared memory: when every page is page shm_index + i of
	 * one shmem file's mapping (memfd, tmpfs, shared anonymous), that
	 * mapping (a key, never dereferenced), else NULL. Lets an element move
	 * between contexts that registered the same pages (qd_region_translate).
	 */
	const void *shm_mapping;
	pgoff_t shm_index;
	/* elements and ops referencing it; QD_REGION_DEAD once unregistered */
	atomic_t users;
	struct rcu_head rcu;
};

int qd_region_register(struct qd_ctx *ctx, struct qd_region_reg __user *arg);
int qd_region_unregister(struct qd_ctx *ctx, u32 id);
void qd_region_free_all(struct qd_ctx *ctx);
int qd_region_resolve(struct qd_ctx *ctx, const struct qd_seg *seg,
		      struct qd_region **out);
void qd_region_hold(struct qd_region *region);
void qd_region_put(struct qd_region *region);
int qd_region_find_shm(struct qd_ctx *ctx, struct qd_region *from,
		       u32 *id, u64 *offset);
int qd_region_translate(struct qd_ctx *ctx, const struct qd_region *from,
			const struct qd_seg *seg, struct qd_seg *out,
			struct qd_region **out_region);

#endif /* _QD_REGION_H */
