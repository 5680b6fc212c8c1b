/* SPDX-License-Identifier: MIT */
/*
 * An in-process stand-in for qd.ko, linked into the host tests instead of
 * src/sys.c. It follows Documentation/abi.md and uapi/linux/qd.h:
 * SETUP/RING/mmap/ENTER (GETEVENTS, CQ_TAIL, CTX_SEQ)/REGISTER/UNREGISTER/
 * QUEUE/CLOSE, rings with their own SQ, CQ, overflow list and wait queue,
 * memory queues with pending pops and pushes, multishot pops, CANCEL,
 * skip-success, a failed push's element in its CQE, the in-flight cap,
 * -EPERM for another process, and storage queues over a few files in
 * memory (OPEN, SYNC, pushes and pops at the queue's offsets or at off,
 * pops copied into their buffer and trimmed to what was read).
 */
#ifndef FAKE_KERNEL_H
#define FAKE_KERNEL_H

#include <stdint.h>

struct fake_config {
	uint32_t	max_inflight;	/* 0: 2 * cq_entries */
	uint64_t	memlock;	/* bytes pinnable; 0: unlimited */
	uint32_t	max_regions;	/* 0: QD_MAX_REGIONS */
	uint32_t	max_rings;	/* 0: QD_MAX_RINGS */
	uint32_t	start_index;	/* initial ring indices */
	uint32_t	features;	/* 0: all */
	int		eintr;		/* fail this many waits with -EINTR */
	int		open_err;	/* -errno for open, 0: succeed */
};

struct fake_stats {
	uint64_t	enters;
	uint64_t	waits;		/* enters that slept */
	uint64_t	wakeups;	/* sleeps that ended (woken or timed out) */
	uint64_t	consumed;
	uint64_t	posted;		/* CQEs written into a CQ */
	uint64_t	overflowed;
	uint32_t	inflight;
	uint32_t	regions;
	uint32_t	elems;		/* elements queued in all queues */
	uint32_t	rings;
	uint64_t	sq_wakeups;	/* QD_ENTER_SQ_WAKEUP */
	uint64_t	opens;		/* QD_OP_OPEN consumed */
	uint64_t	syncs;		/* QD_OP_SYNC on a storage queue */
};

/* Change before the process's first qd_init(). */
extern struct fake_config fake_cfg;

/* The last QD_IOC_DERIVE request (QD_FEAT_DERIVED in fake_cfg.features). */
struct qd_derive;
extern struct qd_derive fake_derive_last;

void fake_stats(struct fake_stats *st);
/*
 * QD_SETUP_SQPOLL's poller in this process's context: fake_sqpoll(1) puts
 * it to sleep (QD_SQ_F_NEED_WAKEUP in every SQ) until an enter wakes it;
 * fake_sqpoll_pass() is one pass of an awake poller over every SQ (the
 * SQEs it consumed). It never runs by itself.
 */
void fake_sqpoll(int asleep);
int fake_sqpoll_pass(void);

/*
 * The last n SQEs the fake consumed (any ring, oldest first) into out;
 * returns how many there were, up to n (at most FAKE_SQE_LOG).
 */
#define FAKE_SQE_LOG	16
struct qd_sqe;
int fake_sqe_log(struct qd_sqe *out, int n);

/*
 * The fake file system: the bytes of the file at path (NULL if none), and
 * its size. The poller (fake_sqpoll_pass()) stops at an OPEN, as qd.ko's.
 */
const void *fake_file(const char *path, uint64_t *size);

#endif
