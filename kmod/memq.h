/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_MEMQ_H
#define _QD_MEMQ_H

#include <linux/qd.h>

struct qd_ctx;
struct vm_area_struct;

int qd_memq_create(struct qd_ctx *ctx, struct qd_queue_create __user *arg);
int qd_memq_mmap(struct qd_ctx *ctx, u64 off, struct vm_area_struct *vma);

struct qd_object;
int qd_memq_shareable(struct qd_object *obj);
int qd_memq_attach(struct qd_object *obj);
void qd_memq_detach_ctx(struct qd_object *obj, struct qd_ctx *ctx);
void qd_memq_unattach(struct qd_object *obj);
struct seq_file;
void qd_memq_show_cols(struct qd_object *obj, struct seq_file *m);

#endif /* _QD_MEMQ_H */
