/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_DEBUGFS_H
#define _QD_DEBUGFS_H

struct qd_ctx;

void qd_debugfs_init(void);
void qd_debugfs_exit(void);
void qd_debugfs_ctx_add(struct qd_ctx *ctx);
void qd_debugfs_ctx_remove(struct qd_ctx *ctx);

#endif /* _QD_DEBUGFS_H */
