/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_STATS_H
#define _QD_STATS_H

#include <linux/atomic.h>
#include <linux/percpu.h>
#include <linux/qd.h>

#include "opdef.h"

/* Rare events: module-wide atomics. */
struct qd_stats {
	atomic_long_t contexts;
	atomic_long_t queues;
	atomic_long_t regions;
	atomic_long_t pinned_pages;
	atomic_long_t overflowed;
	atomic_long_t sockets;		/* socket qds not yet freed */
	atomic_long_t sock_zc_inflight;	/* zero-copy pushes the stack holds */
	atomic_long_t files;		/* storage qds not yet freed */
	atomic_long_t derived;		/* derived queues not yet freed */
};

/*
 * Per-operation events: per-CPU counters, so the hot path touches no shared
 * cache line; /proc/qd sums them. Any context.
 */
struct qd_pcpu_stats {
	long inflight;
	unsigned long invalid_opcode;
	unsigned long sock_bytes_in;	/* received into pops' buffers */
	unsigned long sock_bytes_out;	/* sent from pushes' buffers */
	unsigned long sock_zc_pushes;	/* socket pushes sent zero-copy */
	unsigned long sock_zc_bytes;	/* bytes the stack took zero-copy */
	unsigned long sock_zc_copied;	/* zc pushes the stack copied anyway */
	unsigned long sock_copy_pushes;	/* socket pushes sent by copy */
	unsigned long file_bytes_read;	/* storage pops, bytes */
	unsigned long file_bytes_written; /* storage pushes, bytes */
	unsigned long file_bios;	/* storage ops sent as bios */
	unsigned long file_punted;	/* storage ops run by the worker */
	unsigned long file_errors;	/* storage ops that failed */
	struct {
		unsigned long submitted;
		unsigned long completed;
		unsigned long failed;
	} op[QD_OP_COUNT];
};

extern struct qd_stats qd_stats;
DECLARE_PER_CPU(struct qd_pcpu_stats, qd_pcpu_stats);

#define qd_stat_inc(field)	this_cpu_inc(qd_pcpu_stats.field)
#define qd_stat_dec(field)	this_cpu_dec(qd_pcpu_stats.field)
#define qd_stat_add(field, n)	this_cpu_add(qd_pcpu_stats.field, n)

int qd_stats_init(void);
void qd_stats_exit(void);

#endif /* _QD_STATS_H */
