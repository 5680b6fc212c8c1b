/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The descriptor ring of a mapped memory queue (QD_QUEUE_MAPPED), shared by
 * qd.ko, libqd and the host unit tests: one implementation of the protocol.
 *
 * A bounded multi-producer multi-consumer ring with a sequence number per
 * slot (D. Vyukov's). Slot i starts with seq = i. A producer at position
 * pos = tail may fill slot pos & mask when seq == pos: it claims pos by a
 * compare-and-swap of tail, writes the element, then releases seq = pos + 1.
 * A consumer at pos = head may take the slot when seq == pos + 1: it claims
 * pos by a compare-and-swap of head, copies the element out, then releases
 * seq = pos + entries, the slot's next turn for a producer. seq behind the
 * position means full (producer) or empty (consumer): possibly an element
 * claimed and not yet published, which is why a producer checks the
 * waiters flag only after publishing (see uapi/linux/qd.h).
 *
 * The memory is shared with user space, which may scribble on it: the
 * kernel passes its own mask, copies an element out once before checking
 * it, and gives up after a bounded number of retries (QD_MQ_BUSY).
 *
 * The includer defines the primitives before including this file:
 *   QD_MQ_LOAD(p)            plain (once) 32-bit load
 *   QD_MQ_LOAD_ACQUIRE(p)    32-bit load-acquire
 *   QD_MQ_STORE_RELEASE(p,v) 32-bit store-release
 *   QD_MQ_CAS(p, old, new)   32-bit compare-and-swap, full barrier; true if
 *                            it swapped
 */
#ifndef _QD_MQ_H
#define _QD_MQ_H

#include <linux/types.h>
#include <linux/qd.h>

enum {
	QD_MQ_OK = 0,
	QD_MQ_FULL = 1,		/* produce: no free slot */
	QD_MQ_EMPTY = 2,	/* consume: no published element */
	QD_MQ_BUSY = 3,		/* gave up after max_tries lost races */
};

static inline struct qd_mq_slot *qd_mq_slots(struct qd_mq_hdr *h)
{
	return (struct qd_mq_slot *)(h + 1);
}

/* Bytes of a ring of entries slots (header included). */
static inline __u64 qd_mq_bytes(__u32 entries)
{
	return sizeof(struct qd_mq_hdr) +
	       (__u64)entries * sizeof(struct qd_mq_slot);
}

/* Set up a fresh ring: every slot's turn is its index. */
static inline void qd_mq_init(struct qd_mq_hdr *h, __u32 entries)
{
	struct qd_mq_slot *s = qd_mq_slots(h);
	__u32 i;

	h->entries = entries;
	h->mask = entries - 1;
	for (i = 0; i < entries; i++)
		s[i].seq = i;
}

/* Append one element of nsegs (1..QD_SGA_MAX) segments. */
static inline int qd_mq_produce(struct qd_mq_hdr *h, __u32 mask,
				const struct qd_seg *segs, __u16 nsegs,
				unsigned int max_tries)
{
	struct qd_mq_slot *s;
	__u32 pos, seq, i;
	unsigned int tries;

	for (tries = 0; tries < max_tries; tries++) {
		pos = QD_MQ_LOAD(&h->tail);
		s = &qd_mq_slots(h)[pos & mask];
		seq = QD_MQ_LOAD_ACQUIRE(&s->seq);
		if ((__s32)(seq - pos) < 0)
			return QD_MQ_FULL;
		if (seq != pos || !QD_MQ_CAS(&h->tail, pos, pos + 1))
			continue;	/* another producer took pos */
		s->nsegs = nsegs;
		for (i = 0; i < nsegs; i++)
			s->segs[i] = segs[i];
		QD_MQ_STORE_RELEASE(&s->seq, pos + 1);
		return QD_MQ_OK;
	}
	return QD_MQ_BUSY;
}

/*
 * Take the oldest element: *nsegs and segs[QD_SGA_MAX] get a copy (nsegs
 * as found: the caller checks it).
 */
static inline int qd_mq_consume(struct qd_mq_hdr *h, __u32 mask,
				struct qd_seg *segs, __u16 *nsegs,
				unsigned int max_tries)
{
	struct qd_mq_slot *s;
	__u32 pos, seq, i, n;
	unsigned int tries;

	for (tries = 0; tries < max_tries; tries++) {
		pos = QD_MQ_LOAD(&h->head);
		s = &qd_mq_slots(h)[pos & mask];
		seq = QD_MQ_LOAD_ACQUIRE(&s->seq);
		if ((__s32)(seq - (pos + 1)) < 0)
			return QD_MQ_EMPTY;
		if (seq != pos + 1 || !QD_MQ_CAS(&h->head, pos, pos + 1))
			continue;	/* another consumer took pos */
		n = s->nsegs;
		*nsegs = (__u16)n;
		if (n > QD_SGA_MAX)
			n = QD_SGA_MAX;
		for (i = 0; i < n; i++)
			segs[i] = s->segs[i];
		QD_MQ_STORE_RELEASE(&s->seq, pos + mask + 1);
		return QD_MQ_OK;
	}
	return QD_MQ_BUSY;
}

/*
 * Look at the oldest element without taking it: a copy in segs and
 * *nsegs (as found), its position in *pos. QD_MQ_EMPTY if there is none,
 * QD_MQ_BUSY if head moved meanwhile (look again). The copy is good only
 * if qd_mq_claim(pos) succeeds afterwards: a consumer that took the slot
 * first makes the claim fail, and until then no producer can write it.
 */
static inline int qd_mq_peek(struct qd_mq_hdr *h, __u32 mask,
			     struct qd_seg *segs, __u16 *nsegs, __u32 *pos)
{
	struct qd_mq_slot *s;
	__u32 p, seq, i, n;

	p = QD_MQ_LOAD(&h->head);
	s = &qd_mq_slots(h)[p & mask];
	seq = QD_MQ_LOAD_ACQUIRE(&s->seq);
	if ((__s32)(seq - (p + 1)) < 0)
		return QD_MQ_EMPTY;
	if (seq != p + 1)
		return QD_MQ_BUSY;
	n = s->nsegs;
	*nsegs = (__u16)n;
	if (n > QD_SGA_MAX)
		n = QD_SGA_MAX;
	for (i = 0; i < n; i++)
		segs[i] = s->segs[i];
	*pos = p;
	return QD_MQ_OK;
}

/* Take the element qd_mq_peek() saw at pos: false if another was faster. */
static inline int qd_mq_claim(struct qd_mq_hdr *h, __u32 mask, __u32 pos)
{
	if (!QD_MQ_CAS(&h->head, pos, pos + 1))
		return 0;
	QD_MQ_STORE_RELEASE(&qd_mq_slots(h)[pos & mask].seq, pos + mask + 1);
	return 1;
}

#endif /* _QD_MQ_H */
