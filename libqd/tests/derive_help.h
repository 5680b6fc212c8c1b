/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the derived-queue tests, against the fake kernel
 * (derive_fn.c) and the real module (vm_derive.c): elements of 8 bytes
 * (a value, then a tag), popped back as v | tag << 8, and the callbacks
 * both use. The includer provides tap_diag() (tap.h).
 */
#ifndef LIBQD_TESTS_DERIVE_HELP_H
#define LIBQD_TESTS_DERIVE_HELP_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "qd.h"

static const struct timespec derive_now = { 0, 0 };
static const struct timespec derive_wait = { 5, 0 };

/* An element of 8 bytes: v, then tag. */
static void push2(int qd, int v, int tag)
{
	struct qd_sga a = qd_sgaalloc(8);

	if (!a.numsegs) {
		tap_diag("qd_sgaalloc failed");
		return;
	}
	memset(a.segs[0].buf, 0, 8);
	((unsigned char *)a.segs[0].buf)[0] = (unsigned char)v;
	((unsigned char *)a.segs[0].buf)[1] = (unsigned char)tag;
	if (qd_push_forget(qd, &a))
		tap_diag("qd_push_forget(%d) failed", qd);
}

static void push1(int qd, int v)
{
	push2(qd, v, 0);
}

/* v | tag << 8 of a popped element (freed), or the result's -errno. */
static int64_t result_val(const struct qd_result *qr)
{
	struct qd_sga sga = qr->value.sga;
	const unsigned char *b;
	int64_t v;

	if (qr->ret < 0)
		return qr->ret;
	if (qr->opcode != QD_OPC_POP || sga.numsegs != 1 || qr->ret != 8)
		return -EPROTO;
	b = sga.segs[0].buf;
	v = b[0] | b[1] << 8;
	if (qd_sgafree(&sga))
		return -EFAULT;
	return v;
}

/* Pop qd and wait (5 s at most): v | tag << 8, or -errno. */
static int64_t pop_val(int qd)
{
	struct qd_result qr;
	qd_token_t qt;
	int ret;

	ret = qd_pop(&qt, qd);
	if (ret)
		return ret;
	ret = qd_wait(&qr, qt, &derive_wait);
	if (ret)
		return ret;
	if (qr.qd != qd)
		return -EPROTO;
	return result_val(&qr);
}

/* Nothing more for a pop of qd now: the pop is left pending, cancelled. */
static int pop_empty(int qd)
{
	struct qd_result qr;
	qd_token_t qt;
	int ret;

	if (qd_pop(&qt, qd))
		return 0;
	ret = qd_wait(&qr, qt, &derive_now);
	if (ret != -ETIMEDOUT)
		return 0;
	return qd_cancel(qt) == 0 && qd_wait(&qr, qt, &derive_now) == 0 &&
	       qr.ret == -ECANCELED;
}

static bool even(const struct qd_sga *sga, void *arg)
{
	(void)arg;
	return !(((const unsigned char *)sga->segs[0].buf)[0] & 1);
}

static bool below(const struct qd_sga *sga, void *arg)
{
	return ((const unsigned char *)sga->segs[0].buf)[0] <
	       (uintptr_t)arg;
}

static int by_first(const struct qd_sga *a, const struct qd_sga *b,
		    void *arg)
{
	const unsigned char *x = a->segs[0].buf, *y = b->segs[0].buf;

	return arg ? y[0] - x[0] : x[0] - y[0];
}

#endif /* LIBQD_TESTS_DERIVE_HELP_H */
