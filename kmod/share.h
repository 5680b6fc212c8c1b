/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_SHARE_H
#define _QD_SHARE_H

#include <linux/qd.h>

struct qd_ctx;

int qd_queue_export(struct qd_ctx *ctx, struct qd_queue_export __user *arg);
int qd_queue_import(struct qd_ctx *ctx, struct qd_queue_import __user *arg);

struct qd_object;
struct qd_object *qd_share_mapped_queue(struct qd_object *obj);

#endif /* _QD_SHARE_H */
