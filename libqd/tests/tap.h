/* SPDX-License-Identifier: MIT */
/*
 * A few lines of TAP for the host tests: every RUN() prints
 * "ok N - group: name" or "not ok N - group: name" plus diagnostics, and
 * tap_done() prints the plan and returns the exit status.
 */
#ifndef TAP_H
#define TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

static int tap_n, tap_failed, tap_cur;
static const char *tap_group = "libqd";
static const char *tap_only;	/* run just this test (argv[1]) */

static inline int tap_skip(const char *name)
{
	return tap_only && strcmp(tap_only, name);
}

static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("#   ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

#define CHECK(c)							\
	do {								\
		if (!(c)) {						\
			tap_cur++;					\
			tap_diag("%s:%d: CHECK(%s) failed", __FILE__,	\
				 __LINE__, #c);				\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long _a = (long long)(a), _b = (long long)(b);	\
		if (_a != _b) {						\
			tap_cur++;					\
			tap_diag("%s:%d: %s == %lld, expected %s == %lld", \
				 __FILE__, __LINE__, #a, _a, #b, _b);	\
		}							\
	} while (0)

/* Stop the current test: CHECK and return on failure. */
#define REQUIRE(c)							\
	do {								\
		if (!(c)) {						\
			tap_cur++;					\
			tap_diag("%s:%d: REQUIRE(%s) failed", __FILE__, \
				 __LINE__, #c);				\
			return;						\
		}							\
	} while (0)

static inline void tap_result(const char *name, int failed)
{
	printf("%sok %d - %s: %s\n", failed ? "not " : "", ++tap_n, tap_group,
	       name);
	fflush(stdout);
	if (failed)
		tap_failed++;
}

#define RUN(fn)								\
	do {								\
		if (tap_skip(#fn))					\
			break;						\
		tap_cur = 0;						\
		fn();							\
		tap_result(#fn, tap_cur);				\
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
