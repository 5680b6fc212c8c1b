/* SPDX-License-Identifier: MIT */
/*
 * Deadlines for qd_wait*(): a relative timeout turned into an absolute
 * CLOCK_MONOTONIC time in nanoseconds, saturating instead of overflowing.
 */
#ifndef LIBQD_DEADLINE_H
#define LIBQD_DEADLINE_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define QD_NSEC		1000000000LL
#define QD_FOREVER	INT64_MAX

static inline int64_t qd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * QD_NSEC + ts.tv_nsec;
}

/*
 * The deadline for timeout (NULL: QD_FOREVER) from now_ns, in *at.
 * -EINVAL for a negative or unnormalised timeout.
 */
static inline int qd_deadline(int64_t *at, const struct timespec *timeout,
			      int64_t now_ns)
{
	int64_t rel;

	if (!timeout) {
		*at = QD_FOREVER;
		return 0;
	}
	if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
	    timeout->tv_nsec >= QD_NSEC)
		return -EINVAL;
	if (timeout->tv_sec >= (QD_FOREVER - now_ns) / QD_NSEC) {
		*at = QD_FOREVER;
		return 0;
	}
	rel = (int64_t)timeout->tv_sec * QD_NSEC + timeout->tv_nsec;
	*at = now_ns + rel;
	if (*at < now_ns || *at == QD_FOREVER)
		*at = QD_FOREVER;
	return 0;
}

/* Nanoseconds left until at (0 once passed; QD_FOREVER stays so). */
static inline int64_t qd_remaining(int64_t at, int64_t now_ns)
{
	if (at == QD_FOREVER)
		return QD_FOREVER;
	return at > now_ns ? at - now_ns : 0;
}

/* at as a struct timespec. */
static inline struct timespec qd_ns_to_ts(int64_t at)
{
	return (struct timespec){ .tv_sec = at / QD_NSEC,
				  .tv_nsec = at % QD_NSEC };
}

#endif
