/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The mapped-queue ring protocol (kmod/common/qd_mq.h, the module's and
 * libqd's own code) with user-space primitives, for the tests that push and
 * pop through a mapped queue's ring by hand.
 */
#ifndef QD_MQ_USER_H
#define QD_MQ_USER_H

#include <linux/types.h>

#define QD_MQ_LOAD(p)			__atomic_load_n((p), __ATOMIC_RELAXED)
#define QD_MQ_LOAD_ACQUIRE(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define QD_MQ_STORE_RELEASE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define QD_MQ_CAS(p, o, n)		qd_mq_user_cas((p), (o), (n))

static inline int qd_mq_user_cas(__u32 *p, __u32 old, __u32 new)
{
	return __atomic_compare_exchange_n(p, &old, new, 0, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST);
}

#include "qd_mq.h"

#endif
