// SPDX-License-Identifier: MIT
/* The contended half of the ring lock (see lock.h). */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lock.h"
#include "syscall.h"

/* Tries before sleeping: a holder's critical section is a few stores. */
#define QD_LOCK_SPINS	100

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

void qd__lock_slow(struct qd_lock *l)
{
	uint32_t c;
	int i;

	for (i = 0; i < QD_LOCK_SPINS; i++) {
		c = 0;
		if (__atomic_load_n(&l->v, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&l->v, &c, 1, 0,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return;
		relax();
	}
	/* From here on it is held as "2": our unlock wakes the next. */
	c = __atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE);
	while (c) {
		qd__futex(&l->v, FUTEX_WAIT_PRIVATE, 2);
		c = __atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE);
	}
}

void qd__lock_wake(struct qd_lock *l)
{
	qd__futex(&l->v, FUTEX_WAKE_PRIVATE, 1);
}
