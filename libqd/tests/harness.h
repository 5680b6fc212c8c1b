/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the tests that run libqd end to end against the fake kernel.
 * Each test runs in its own child process (FRUN), so it starts with no
 * context and may set fake_cfg and QD_* environment variables first.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/qd.h>

#include "qd.h"
#include "fake_kernel.h"
#include "tap.h"

static const struct timespec zero_ts = { 0, 0 };

static inline int run_forked(void (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		tap_cur = 0;
		fn();
		fflush(stdout);
		exit(tap_cur ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		tap_diag("killed by signal %d", WTERMSIG(status));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define FRUN(fn)							\
	do {								\
		if (!tap_skip(#fn))					\
			tap_result(#fn, run_forked(fn) != 0);		\
	} while (0)

static inline struct qd_stats stats(void)
{
	struct qd_stats st;

	qd_stats(&st);
	return st;
}

/* A buffer holding s (with its NUL), from qd_sgaalloc(). */
static inline struct qd_sga sga_str(const char *s)
{
	struct qd_sga sga = qd_sgaalloc(strlen(s) + 1);

	if (sga.numsegs)
		memcpy(sga.segs[0].buf, s, strlen(s) + 1);
	return sga;
}

/* Wait for qt forever; the operation's result, or the wait's error. */
static inline int64_t wait_res(qd_token_t qt, struct qd_result *qr)
{
	struct qd_result tmp;
	int ret;

	ret = qd_wait(qr ? qr : &tmp, qt, NULL);
	return ret ? ret : (qr ? qr : &tmp)->ret;
}

static inline int64_t elapsed_ms(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

#endif
