/* SPDX-License-Identifier: MIT */
/*
 * A ring's lock: one 32-bit word, taken and released inline with one
 * atomic operation each when nobody else holds it (the owning thread's fast
 * path, several times per push, pop and wait), a short spin and then a
 * futex sleep when someone does (U. Drepper, "Futexes Are Tricky", mutex
 * 3). Values: 0 free, 1 held, 2 held and someone may sleep on it.
 * Not recursive, no owner check: the callers hold it for a few loads and
 * stores and never across a system call that sleeps.
 */
#ifndef LIBQD_LOCK_H
#define LIBQD_LOCK_H

#include <stdint.h>

struct qd_lock {
	uint32_t	v;
};

#define QD_LOCK_INIT	((struct qd_lock){ 0 })

/* Contended: spin, then sleep until it is ours. */
void qd__lock_slow(struct qd_lock *l);
/* Released with sleepers: wake one. */
void qd__lock_wake(struct qd_lock *l);

static inline void qd_lock(struct qd_lock *l)
{
	uint32_t c = 0;

	if (__builtin_expect(__atomic_compare_exchange_n(&l->v, &c, 1, 0,
							 __ATOMIC_ACQUIRE,
							 __ATOMIC_RELAXED), 1))
		return;
	qd__lock_slow(l);
}

static inline void qd_unlock(struct qd_lock *l)
{
	if (__builtin_expect(__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) ==
			     2, 0))
		qd__lock_wake(l);
}

#endif
