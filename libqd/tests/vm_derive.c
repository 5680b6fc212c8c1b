// SPDX-License-Identifier: MIT
/*
 * Derived queues through libqd against the real module (run in the guest:
 * scripts/vm -- libqd/build/vm/derive): the kernel forms (qd_filter(),
 * qd_merge(), qd_sort()) on mapped memory queues, whose pushes then go to
 * the kernel (QD_MQ_PUSH_KERNEL), and the callback forms (qd_filter_fn(),
 * qd_sort_fn()) on memory queues and on kernel-derived queues, closes
 * included, with threads. TAP; exit 0 pass, 1 fail, 4 skip (no
 * QD_FEAT_DERIVED).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <linux/qd.h>

#include "qd.h"
#include "tap.h"
#include "derive_help.h"

static const struct timespec zero_ts = { 0, 0 };
static const struct timespec five_s = { 5, 0 };

static struct qd_pred pred_even(void)
{
	struct qd_pred p = { .nterms = 1 };

	p.terms[0] = (struct qd_pred_term){
		.field = { .off = 0, .width = 1, .mask = 1 },
		.cmp = QD_CMP_EQ, .value = 0 };
	return p;
}

static void kernel_filter_on_mapped_queue(void)
{
	struct qd_pred p = pred_even();
	int q, f, i;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter(&f, q, &p) == 0);
	for (i = 1; i <= 6; i++)
		push1(q, i);
	CHECK_EQ(pop_val(f), 2);
	CHECK_EQ(pop_val(f), 4);
	CHECK_EQ(pop_val(f), 6);
	CHECK_EQ(pop_val(q), 1);
	CHECK_EQ(pop_val(q), 3);
	CHECK_EQ(pop_val(q), 5);
	CHECK(pop_empty(f) && pop_empty(q));
	/* A push to the filter goes to its source, then to the filter. */
	push1(f, 8);
	push1(f, 9);
	CHECK_EQ(pop_val(f), 8);
	CHECK_EQ(pop_val(q), 9);
	CHECK_EQ(qd_close(f), 0);
	CHECK_EQ(qd_close(q), 0);
}

static void kernel_sort_and_merge(void)
{
	struct qd_key k = { .field = { .off = 0, .width = 1 } };
	int q, s, a, b, m;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_sort(&s, q, &k) == 0);
	push2(q, 3, 0);
	push2(q, 1, 1);
	push2(q, 3, 2);
	push2(q, 2, 3);
	CHECK_EQ(pop_val(s), 1 | 1 << 8);
	CHECK_EQ(pop_val(s), 2 | 3 << 8);
	CHECK_EQ(pop_val(s), 3 | 0 << 8);
	CHECK_EQ(pop_val(s), 3 | 2 << 8);
	{
		struct qd_sga x = qd_sgaalloc(8);
		struct qd_result qr;
		qd_token_t qt;

		/* The kernel refuses it, in the push's result. */
		REQUIRE(qd_push(&qt, s, &x) == 0);
		CHECK_EQ(qd_wait(&qr, qt, &five_s), 0);
		CHECK_EQ(qr.ret, -EOPNOTSUPP);
		qd_sgafree(&x);
	}
	REQUIRE(qd_queue(&a) == 0);
	REQUIRE(qd_queue(&b) == 0);
	REQUIRE(qd_merge(&m, a, b) == 0);
	push1(a, 10);
	push1(a, 11);
	push1(b, 20);
	CHECK_EQ(pop_val(m), 10);
	CHECK_EQ(pop_val(m), 20);
	CHECK_EQ(pop_val(m), 11);
}

static void kernel_forms_refuse(void)
{
	struct qd_pred p = pred_even();
	int q, d, f;

	REQUIRE(qd_queue(&q) == 0);
	p.terms[0].field.width = 3;
	CHECK_EQ(qd_filter(&d, q, &p), -EINVAL);
	p = pred_even();
	CHECK_EQ(qd_filter(NULL, q, &p), -EINVAL);
	CHECK_EQ(qd_filter(&d, 12345, &p), -EBADF);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	CHECK_EQ(qd_filter(&d, f, &p), -EOPNOTSUPP);
	CHECK_EQ(qd_merge(&d, q, f), -EOPNOTSUPP);
}

static void kernel_close_source(void)
{
	struct qd_pred p = pred_even();
	struct qd_result qr;
	qd_token_t qt;
	int q, f;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter(&f, q, &p) == 0);
	push1(q, 4);
	REQUIRE(qd_submit() == 0);
	CHECK_EQ(pop_val(f), 4);
	REQUIRE(qd_pop(&qt, f) == 0);
	CHECK_EQ(qd_wait(&qr, qt, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_close(q), 0);
	CHECK_EQ(qd_wait(&qr, qt, &five_s), 0);
	CHECK_EQ(qr.ret, -ECANCELED);
	CHECK_EQ(pop_val(f), -EPIPE);
}

static void fn_filter_and_sort(void)
{
	int q, f, s, q2, i;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	for (i = 1; i <= 6; i++)
		push1(q, i);
	for (i = 2; i <= 6; i += 2)
		CHECK_EQ(pop_val(f), i);
	for (i = 1; i <= 5; i += 2)
		CHECK_EQ(pop_val(q), i);
	CHECK(pop_empty(f) && pop_empty(q));
	REQUIRE(qd_queue(&q2) == 0);
	REQUIRE(qd_sort_fn(&s, q2, by_first, NULL) == 0);
	push2(q2, 5, 0);
	push2(q2, 2, 1);
	push2(q2, 5, 2);
	push2(q2, 1, 3);
	CHECK_EQ(pop_val(s), 1 | 3 << 8);
	CHECK_EQ(pop_val(s), 2 | 1 << 8);
	CHECK_EQ(pop_val(s), 5 | 0 << 8);
	CHECK_EQ(pop_val(s), 5 | 2 << 8);
	CHECK_EQ(qd_close(s), 0);
	CHECK_EQ(qd_close(f), 0);
	/* Plain queues again. */
	push1(q, 7);
	CHECK_EQ(pop_val(q), 7);
}

static void fn_on_kernel_filter(void)
{
	struct qd_pred p = pred_even();
	int q, kf, cf, i;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter(&kf, q, &p) == 0);
	REQUIRE(qd_filter_fn(&cf, kf, below, (void *)5) == 0);
	for (i = 1; i <= 8; i++)
		push1(q, i);
	CHECK_EQ(pop_val(cf), 2);
	CHECK_EQ(pop_val(cf), 4);
	CHECK_EQ(pop_val(kf), 6);
	CHECK_EQ(pop_val(kf), 8);
	for (i = 1; i <= 7; i += 2)
		CHECK_EQ(pop_val(q), i);
	/* Closing the kernel filter ends the callback one. */
	CHECK_EQ(qd_close(kf), 0);
	CHECK_EQ(pop_val(cf), -EPIPE);
}

static void fn_close_source_and_derived(void)
{
	struct qd_result qr;
	qd_token_t qt;
	int q, f, g;

	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(qd_filter_fn(&f, q, even, NULL) == 0);
	push1(q, 2);
	push1(q, 1);
	push1(q, 4);
	CHECK_EQ(pop_val(f), 2);
	CHECK_EQ(qd_close(f), 0);		/* 4 back to q, after 1 */
	CHECK_EQ(pop_val(q), 1);
	CHECK_EQ(pop_val(q), 4);
	REQUIRE(qd_filter_fn(&g, q, even, NULL) == 0);
	REQUIRE(qd_pop(&qt, g) == 0);
	CHECK_EQ(qd_wait(&qr, qt, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_close(q), 0);
	CHECK_EQ(qd_wait(&qr, qt, &five_s), 0);
	CHECK_EQ(qr.ret, -ECANCELED);
	CHECK_EQ(pop_val(g), -EPIPE);
}

/* A datagram of 8 bytes from s to the address a: v first. */
static int send_dgram(int s, const struct sockaddr_in *a, int v)
{
	struct qd_sga b = qd_sgaalloc(8);
	struct qd_result qr;
	qd_token_t qt;
	int ret;

	if (!b.numsegs)
		return -ENOMEM;
	memset(b.segs[0].buf, 0, 8);
	((unsigned char *)b.segs[0].buf)[0] = (unsigned char)v;
	ret = qd_pushto(&qt, s, &b, (const struct sockaddr *)a, sizeof(*a));
	if (!ret)
		ret = qd_wait(&qr, qt, &five_s);
	if (!ret && qr.ret != 8)
		ret = -EIO;
	qd_sgafree(&b);
	return ret;
}

/* Any qd a pop works on: a UDP socket's datagrams, pool buffers and all. */
static void fn_filter_on_udp_socket(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int rx, tx, f, i;

	REQUIRE(qd_socket(&rx, AF_INET, SOCK_DGRAM, 0) == 0);
	REQUIRE(qd_socket(&tx, AF_INET, SOCK_DGRAM, 0) == 0);
	REQUIRE(qd_bind(rx, (struct sockaddr *)&a, sizeof(a)) == 0);
	REQUIRE(qd_getsockname(rx, (struct sockaddr *)&a, &len) == 0);
	REQUIRE(qd_filter_fn(&f, rx, even, NULL) == 0);
	for (i = 1; i <= 4; i++)
		CHECK_EQ(send_dgram(tx, &a, i), 0);
	CHECK_EQ(pop_val(f), 2);
	CHECK_EQ(pop_val(f), 4);
	CHECK_EQ(pop_val(rx), 1);
	CHECK_EQ(pop_val(rx), 3);
	CHECK_EQ(qd_close(rx), 0);
	CHECK_EQ(pop_val(f), -EPIPE);
	CHECK_EQ(qd_close(f), 0);
	CHECK_EQ(qd_close(tx), 0);
}

static void fn_threads(void)
{
	derive_threads(200, 5);
}

static void fn_sort_drains_source_first(void)
{
	derive_sort_drains_source_first();
}

/* qdbench derived --mode callback --pops 16's pattern. */
static void fn_filter_pops_in_order(void)
{
	derive_filter_pops_in_order(20000);
}

int main(int argc, char **argv)
{
	struct qd_stats st;

	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "libqd derive";
	if (qd_init() || qd_stats(&st) || !(st.features & QD_FEAT_DERIVED)) {
		printf("1..0 # SKIP no qd.ko with QD_FEAT_DERIVED\n");
		return 4;
	}
	RUN(kernel_filter_on_mapped_queue);
	RUN(kernel_sort_and_merge);
	RUN(kernel_forms_refuse);
	RUN(kernel_close_source);
	RUN(fn_filter_and_sort);
	RUN(fn_on_kernel_filter);
	RUN(fn_close_source_and_derived);
	RUN(fn_threads);
	RUN(fn_filter_on_udp_socket);
	RUN(fn_sort_drains_source_first);
	RUN(fn_filter_pops_in_order);
	return tap_done();
}
