/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_STATS_H
#define _QD_STATS_H

#include <linux/atomic.h>
#include <linux/qd.h>

/* Module-wide counters shown in /proc/qd. */
struct qd_stats {
	atomic_long_t contexts;
	atomic_long_t queues;
	atomic_long_t regions;
	atomic_long_t pinned_pages;
	atomic_long_t inflight;
	atomic_long_t overflowed;
	atomic_long_t payload_bytes_copied;
	atomic_long_t invalid_opcode;
	struct {
		atomic_long_t submitted;
		atomic_long_t completed;
		atomic_long_t failed;
	} op[QD_OP_LAST];
};

extern struct qd_stats qd_stats;

int qd_stats_init(void);
void qd_stats_exit(void);

#endif /* _QD_STATS_H */
