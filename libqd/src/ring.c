// SPDX-License-Identifier: MIT
/* Ring geometry and reaping (see ring.h). */
#include <errno.h>

#include "ring.h"

static int field_ok(uint32_t off, size_t bytes)
{
	return off % sizeof(uint32_t) == 0 && (size_t)off + 4 <= bytes;
}

static int array_ok(uint32_t off, uint32_t n, size_t size, size_t bytes)
{
	return off % 8 == 0 && off <= bytes && (size_t)n * size <= bytes - off;
}

int qd__rings_init(struct qd_sqring *sq, struct qd_cqring *cq,
		   void *sqmem, size_t sqbytes, void *cqmem, size_t cqbytes,
		   const struct qd_params *p)
{
	const struct qd_sq_offsets *so = &p->sq_off;
	const struct qd_cq_offsets *co = &p->cq_off;
	char *s = sqmem, *c = cqmem;
	uint32_t n;

	if (!field_ok(so->head, sqbytes) || !field_ok(so->tail, sqbytes) ||
	    !field_ok(so->ring_mask, sqbytes) ||
	    !field_ok(so->ring_entries, sqbytes) ||
	    !field_ok(so->flags, sqbytes))
		return -EINVAL;
	if (!field_ok(co->head, cqbytes) || !field_ok(co->tail, cqbytes) ||
	    !field_ok(co->ring_mask, cqbytes) ||
	    !field_ok(co->ring_entries, cqbytes) ||
	    !field_ok(co->flags, cqbytes) || !field_ok(co->overflow, cqbytes))
		return -EINVAL;

	n = *(uint32_t *)(s + so->ring_entries);
	if (!qd_is_pow2(n) || *(uint32_t *)(s + so->ring_mask) != n - 1 ||
	    n != p->sq_entries ||
	    !array_ok(so->sqes, n, sizeof(struct qd_sqe), sqbytes))
		return -EINVAL;
	sq->khead = (uint32_t *)(s + so->head);
	sq->ktail = (uint32_t *)(s + so->tail);
	sq->kflags = (uint32_t *)(s + so->flags);
	sq->sqes = (struct qd_sqe *)(s + so->sqes);
	sq->entries = n;
	sq->mask = n - 1;
	sq->tail = qd_load_acquire(sq->ktail);

	n = *(uint32_t *)(c + co->ring_entries);
	if (!qd_is_pow2(n) || *(uint32_t *)(c + co->ring_mask) != n - 1 ||
	    n != p->cq_entries ||
	    !array_ok(co->cqes, n, sizeof(struct qd_cqe), cqbytes) ||
	    !array_ok(co->elems, n, sizeof(struct qd_elem), cqbytes))
		return -EINVAL;
	cq->khead = (uint32_t *)(c + co->head);
	cq->ktail = (uint32_t *)(c + co->tail);
	cq->kflags = (uint32_t *)(c + co->flags);
	cq->koverflow = (uint32_t *)(c + co->overflow);
	cq->cqes = (struct qd_cqe *)(c + co->cqes);
	cq->elems = (struct qd_elem *)(c + co->elems);
	cq->entries = n;
	cq->mask = n - 1;
	cq->head = *cq->khead;
	return 0;
}

int qd__cq_ctx_seq(void *cqmem, size_t cqbytes, const struct qd_params *p,
		   uint32_t **out)
{
	*out = NULL;
	if (!(p->features & QD_FEAT_RINGS))
		return 0;
	if (!field_ok(p->cq_off.ctx_seq, cqbytes))
		return -EINVAL;
	*out = (uint32_t *)((char *)cqmem + p->cq_off.ctx_seq);
	return 0;
}

int qd__cq_reap(struct qd_cqring *cq, qd_cqe_fn fn, void *arg)
{
	uint32_t head = cq->head, tail = qd_load_acquire(cq->ktail);
	uint32_t slot;
	int n = 0, ret = 0;

	if (!qd_ring_valid(head, tail, cq->entries))
		return -EIO;
	for (; head != tail; head++, n++) {
		slot = qd_ring_slot(head, cq->mask);
		ret = fn(arg, &cq->cqes[slot], &cq->elems[slot]);
		if (ret < 0)
			break;
	}
	if (n) {
		cq->head = head;
		qd_store_release(cq->khead, head);
	}
	return n ? n : ret;
}
