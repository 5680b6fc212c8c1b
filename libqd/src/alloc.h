/* SPDX-License-Identifier: MIT */
/*
 * The buffer allocator's arithmetic: size classes are powers of two from
 * 64 B to 1 GiB; each chunk holds buffers of one class. A class's chunks
 * grow from QD_CHUNK_MIN-ish to QD_CHUNK_MAX; a class of QD_CHUNK_MAX or
 * more gets a chunk per buffer, returned to the system when freed.
 * Buffer i of a chunk starts at i * class size from the chunk's mmap()ed,
 * page-aligned base, so it is aligned to its class's size up to the page
 * size: 4096 for every buffer of 4096 bytes or more (qd.h promises it).
 */
#ifndef LIBQD_ALLOC_H
#define LIBQD_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"

#define QD_CLASS_MIN_SHIFT	6		/* 64 B: the alignment promised */
#define QD_CLASS_MAX_SHIFT	30		/* 1 GiB: the largest buffer */
#define QD_NCLASSES		(QD_CLASS_MAX_SHIFT - QD_CLASS_MIN_SHIFT + 1)
#define QD_ALLOC_MAX		((size_t)1 << QD_CLASS_MAX_SHIFT)
#define QD_CHUNK_MIN		((size_t)64 << 10)
#define QD_CHUNK_MAX		((size_t)2 << 20)
#define QD_CHUNK_BUFS		16		/* first chunk: this many buffers */

/* The class of a size (0 = 64 B), or -EINVAL for 0 or > 1 GiB. */
int qd__size_class(size_t size);

static inline size_t qd__class_size(int cls)
{
	return (size_t)1 << (cls + QD_CLASS_MIN_SHIFT);
}

/* Bytes of the class's next chunk when it has nchunks already. */
size_t qd__chunk_bytes(int cls, unsigned int nchunks);

/* The smallest chunk worth trying when memory is short. */
size_t qd__chunk_min_bytes(int cls);

/* Set up c's buffers (c->base, c->len set): 0 or -ENOMEM. */
int qd__chunk_bufs_init(struct qd_chunk *c, int cls);
void qd__chunk_bufs_fini(struct qd_chunk *c);

/* A free buffer of c (c->nfree > 0). */
void *qd__chunk_take(struct qd_chunk *c);

/* The handed-out buffer of c containing p, or -EINVAL. */
int qd__chunk_index(const struct qd_chunk *c, uintptr_t p);

/* Return buffer idx of c. */
void qd__chunk_give(struct qd_chunk *c, uint32_t idx);

#endif
