/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_MEMQ_H
#define _QD_MEMQ_H

#include <linux/list.h>
#include <linux/qd.h>

struct qd_ctx;
struct vm_area_struct;

int qd_memq_create(struct qd_ctx *ctx, struct qd_queue_create __user *arg);
int qd_memq_mmap(struct qd_ctx *ctx, u64 off, struct vm_area_struct *vma);

struct qd_object;
int qd_memq_shareable(struct qd_object *obj);
u32 qd_memq_map_bytes(struct qd_object *obj);
int qd_memq_bind(struct qd_ctx *ctx, struct qd_queue_bind __user *arg);
int qd_memq_attach(struct qd_object *obj);
void qd_memq_detach_ctx(struct qd_object *obj, struct qd_ctx *ctx);
void qd_memq_unattach(struct qd_object *obj);
/*
 * A thread asleep in QD_ENTER_MQ_POP on a mapped queue (submit.c): on the
 * sleeping task's stack, on the queue's list while it sleeps. kicked: set
 * under the queue's lock, read by the sleeper's wake-up condition.
 */
struct qd_ring;
struct qd_mq_sleeper {
	struct list_head node;
	struct qd_ring *ring;
	struct qd_ctx *ctx;
	bool kicked;
};

int qd_memq_sleep_begin(struct qd_object *obj, struct qd_mq_sleeper *sl);
bool qd_memq_sleep_ready(struct qd_object *obj, struct qd_mq_sleeper *sl);
void qd_memq_sleep_end(struct qd_object *obj, struct qd_mq_sleeper *sl);

struct seq_file;
void qd_memq_show_cols(struct qd_object *obj, struct seq_file *m);

#endif /* _QD_MEMQ_H */
