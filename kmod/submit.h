/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_SUBMIT_H
#define _QD_SUBMIT_H

#include <linux/types.h>

struct qd_ring;

/* Consume up to to_submit SQEs of ring; ring->sq_lock held. */
int qd_submit_sqes(struct qd_ring *ring, u32 to_submit);

#endif /* _QD_SUBMIT_H */
