/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_SQPOLL_H
#define _QD_SQPOLL_H

#include <linux/types.h>

struct qd_ctx;
struct qd_sqpoll;
struct seq_file;

struct qd_sqpoll *qd_sqpoll_create(struct qd_ctx *ctx, u32 idle_ms);
void qd_sqpoll_start(struct qd_sqpoll *sqp);
void qd_sqpoll_stop(struct qd_sqpoll *sqp);
void qd_sqpoll_wake(struct qd_sqpoll *sqp);
void qd_sqpoll_show(struct seq_file *m, struct qd_sqpoll *sqp);

#endif /* _QD_SQPOLL_H */
