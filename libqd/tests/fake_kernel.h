/* SPDX-License-Identifier: MIT */
/*
 * An in-process stand-in for qd.ko, linked into the host tests instead of
 * src/sys.c. It follows Documentation/abi.md: SETUP/mmap/ENTER/REGISTER/
 * UNREGISTER/QUEUE/CLOSE, memory queues with pending pops and pushes,
 * the in-flight cap, the CQ overflow list and -EPERM for another process.
 */
#ifndef FAKE_KERNEL_H
#define FAKE_KERNEL_H

#include <stdint.h>

struct fake_config {
	uint32_t	max_inflight;	/* 0: 2 * cq_entries */
	uint64_t	memlock;	/* bytes pinnable; 0: unlimited */
	uint32_t	max_regions;	/* 0: QD_MAX_REGIONS */
	uint32_t	start_index;	/* initial ring indices */
	uint32_t	features;	/* 0: all */
	int		eintr;		/* fail this many waits with -EINTR */
	int		open_err;	/* -errno for open, 0: succeed */
};

struct fake_stats {
	uint64_t	enters;
	uint64_t	waits;		/* enters that slept */
	uint64_t	consumed;
	uint64_t	overflowed;
	uint32_t	inflight;
	uint32_t	regions;
	uint32_t	elems;		/* elements queued in all queues */
};

/* Change before the process's first qd_init(). */
extern struct fake_config fake_cfg;

void fake_stats(struct fake_stats *st);

#endif
