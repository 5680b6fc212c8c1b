/* SPDX-License-Identifier: MIT */
/*
 * Registered memory as libqd sees it: chunks. A chunk is one kernel region,
 * either allocator memory dedicated to one size class or a range the
 * application registered with qd_memregister(). The chunk table finds the
 * chunk holding a pointer (sorted by address, binary search) and the chunk
 * of a region id, to translate buffers to (region, offset) segments and
 * back. Not locked here: the caller holds the allocator lock.
 */
#ifndef LIBQD_REGION_H
#define LIBQD_REGION_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/qd.h>

#include "qd.h"

#define QD_CLASS_USER	(-1)

struct qd_chunk {
	uintptr_t	base;
	size_t		len;		/* bytes registered */
	uint32_t	region;		/* kernel region id */
	int		cls;		/* size class, or QD_CLASS_USER */
	/* allocator state, cls >= 0 */
	uint32_t	nbufs;
	uint32_t	nfree;
	uint32_t	*freestk;	/* indices of free buffers */
	uint64_t	*used;		/* bitmap of handed-out buffers */
	struct qd_chunk	*next_avail;	/* class list of chunks with room */
	int		on_avail;
};

struct qd_chunktab {
	struct qd_chunk	*sorted[QD_MAX_REGIONS];
	struct qd_chunk	*by_region[QD_MAX_REGIONS];
	unsigned int	n;
	/*
	 * Bumped by every change (add, del, a fork child forgetting them
	 * all): a translation cached under generation g is good while gen
	 * is still g. Read without the lock; 0 is never current.
	 */
	uint64_t	gen;
};

/* Whether [base, base + len) is free: 0, -EEXIST (overlap) or -EINVAL. */
int qd__chunktab_fits(const struct qd_chunktab *t, uintptr_t base, size_t len);

/* Add c: -EINVAL bad region id or empty, -EEXIST overlap or id in use. */
int qd__chunktab_add(struct qd_chunktab *t, struct qd_chunk *c);

void qd__chunktab_del(struct qd_chunktab *t, struct qd_chunk *c);

/* The chunk holding address p, or NULL. */
struct qd_chunk *qd__chunktab_find(const struct qd_chunktab *t, uintptr_t p);

/* The shape of an sga: 1..QD_SGA_MAX segments, non-NULL, len > 0. */
static inline int qd__sga_check(const struct qd_sga *sga)
{
	uint32_t i;

	if (!sga || sga->numsegs == 0 || sga->numsegs > QD_SGA_MAX)
		return -EINVAL;
	for (i = 0; i < sga->numsegs; i++)
		if (!sga->segs[i].buf || !sga->segs[i].len)
			return -EINVAL;
	return 0;
}

/*
 * Translate the segments of a checked sga to (region, offset, len):
 * -EFAULT if a buffer is not entirely inside one chunk.
 */
int qd__sga_to_segs(const struct qd_chunktab *t, const struct qd_sga *sga,
		    struct qd_seg *segs);

/*
 * Translate n kernel segments back to pointers in sga (numsegs = n):
 * -EFAULT if a region is unknown or a segment lies outside it.
 */
int qd__segs_to_sga(const struct qd_chunktab *t, const struct qd_seg *segs,
		    unsigned int n, struct qd_sga *sga);

#endif
