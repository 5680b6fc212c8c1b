/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_SOCK_ZC_H
#define _QD_SOCK_ZC_H

#include <linux/types.h>

struct msghdr;
struct qd_op;
struct sock;

/* Zero-copy send of socket pushes (sock_zc.c). */
bool qd_zc_wanted(const struct qd_op *op, struct sock *sk);
void qd_zc_start(struct qd_op *op);
void qd_zc_cancel(struct qd_op *op);
void qd_zc_msg(struct qd_op *op, struct msghdr *msg);
void qd_zc_end(struct qd_op *op, s64 res);
void qd_zc_exit(void);

#endif /* _QD_SOCK_ZC_H */
