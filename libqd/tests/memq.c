// SPDX-License-Identifier: MIT
/*
 * libqd end to end against the fake kernel: context setup, memory queues,
 * tokens, batching, the allocator and registered memory, fork.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "harness.h"

static void init_idempotent_and_geometry(void)
{
	struct qd_stats st;

	st = stats();
	CHECK_EQ(st.sq_entries, 0);
	CHECK_EQ(qd_init(), 0);
	st = stats();
	CHECK_EQ(st.sq_entries, 256);
	CHECK_EQ(st.cq_entries, 1024);
	CHECK_EQ(st.max_inflight, 2048);
	CHECK(st.features & QD_FEAT_REGIONS);
	/* open, setup, two mmaps with their madvise */
	CHECK_EQ(st.syscalls, 6);
	CHECK_EQ(qd_init(), 0);
	CHECK_EQ(stats().syscalls, 6);
	CHECK_EQ(qd_stats(NULL), -EINVAL);
}

static void env_overrides_ring_sizes(void)
{
	struct qd_stats st;

	setenv("QD_SQ_ENTRIES", "8x", 1);
	CHECK_EQ(qd_init(), -EINVAL);
	setenv("QD_SQ_ENTRIES", "6", 1);	/* the kernel says no */
	CHECK_EQ(qd_init(), -EINVAL);
	setenv("QD_SQ_ENTRIES", "8", 1);
	setenv("QD_CQ_ENTRIES", "16", 1);
	CHECK_EQ(qd_init(), 0);
	st = stats();
	CHECK_EQ(st.sq_entries, 8);
	CHECK_EQ(st.cq_entries, 16);
}

static void large_sq_gets_a_larger_cq(void)
{
	setenv("QD_SQ_ENTRIES", "4096", 1);
	CHECK_EQ(qd_init(), 0);
	CHECK_EQ(stats().cq_entries, 8192);
}

static void small_cq_gets_a_smaller_sq(void)
{
	setenv("QD_CQ_ENTRIES", "64", 1);
	CHECK_EQ(qd_init(), 0);
	CHECK_EQ(stats().sq_entries, 64);
	CHECK_EQ(stats().cq_entries, 64);
}

static void init_fails_without_device(void)
{
	struct qd_sga sga;
	int qd;

	fake_cfg.open_err = -ENOENT;
	CHECK_EQ(qd_init(), -ENOENT);
	CHECK_EQ(qd_queue(&qd), -ENOENT);
	errno = 0;
	sga = qd_sgaalloc(100);
	CHECK_EQ(sga.numsegs, 0);
	CHECK_EQ(errno, ENOENT);
	fake_cfg.open_err = 0;
	CHECK_EQ(qd_queue(&qd), 0);
}

static void init_requires_features(void)
{
	fake_cfg.features = QD_FEAT_MEMQ;
	CHECK_EQ(qd_init(), -EOPNOTSUPP);
	fake_cfg.features = 0;
	CHECK_EQ(qd_init(), 0);
}

static void fifo_order(void)
{
	static const char *msg[] = { "one", "two", "three", "four", "five" };
	struct qd_sga sga[5];
	qd_token_t pu[5], po[5];
	struct qd_result qr;
	int qd, i;

	REQUIRE(qd_queue(&qd) == 0);
	CHECK_EQ(qd, 0);			/* qd 0 is a valid queue */
	for (i = 0; i < 5; i++) {
		sga[i] = sga_str(msg[i]);
		REQUIRE(sga[i].numsegs == 1);
		REQUIRE(qd_push(&pu[i], qd, &sga[i]) == 0);
	}
	for (i = 0; i < 5; i++)
		REQUIRE(qd_pop(&po[i], qd) == 0);
	for (i = 0; i < 5; i++) {
		REQUIRE(qd_wait(&qr, pu[i], NULL) == 0);
		CHECK_EQ(qr.opcode, QD_OPC_PUSH);
		CHECK_EQ(qr.qd, qd);
		CHECK(qr.qt == pu[i]);
		CHECK_EQ(qr.ret, strlen(msg[i]) + 1);
		CHECK_EQ(qr.value.sga.numsegs, 1);
		CHECK(qr.value.sga.segs[0].buf == sga[i].segs[0].buf);
		CHECK_EQ(qr.value.sga.segs[0].len, strlen(msg[i]) + 1);
	}
	for (i = 0; i < 5; i++) {
		REQUIRE(qd_wait(&qr, po[i], NULL) == 0);
		CHECK_EQ(qr.opcode, QD_OPC_POP);
		CHECK_EQ(qr.qd, qd);
		CHECK(qr.qt == po[i]);
		CHECK_EQ(qr.ret, strlen(msg[i]) + 1);
		REQUIRE(qr.value.sga.numsegs == 1);
		CHECK(qr.value.sga.segs[0].buf == sga[i].segs[0].buf);
		CHECK_EQ(qr.value.sga.segs[0].len, strlen(msg[i]) + 1);
		CHECK(!strcmp(qr.value.sga.segs[0].buf, msg[i]));
		CHECK_EQ(qr.value.sga.addr.ss_family, AF_UNSPEC);
		CHECK_EQ(qd_sgafree(&qr.value.sga), 0);
	}
	CHECK_EQ(qd_close(qd), 0);
}

static void multi_segment_element(void)
{
	struct qd_sga a = qd_sgaalloc(10), b = qd_sgaalloc(5000), sga;
	struct qd_result qr;
	qd_token_t pu, po;
	char *mem;
	int qd, i;

	mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	REQUIRE(qd_memregister(mem, 8192) == 0);
	REQUIRE(a.numsegs && b.numsegs);
	memset(&sga, 0, sizeof(sga));
	sga.numsegs = 3;
	sga.segs[0] = a.segs[0];
	sga.segs[1] = (struct qd_sgaseg){ mem + 8000, 192 };
	sga.segs[2] = b.segs[0];
	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_push(&pu, qd, &sga) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(wait_res(pu, &qr), 10 + 192 + 5000);
	CHECK_EQ(qr.value.sga.numsegs, 3);
	CHECK_EQ(wait_res(po, &qr), 10 + 192 + 5000);
	REQUIRE(qr.value.sga.numsegs == 3);
	for (i = 0; i < 3; i++) {
		CHECK(qr.value.sga.segs[i].buf == sga.segs[i].buf);
		CHECK_EQ(qr.value.sga.segs[i].len, sga.segs[i].len);
	}
	/* The registered segment is the application's, not libqd's. */
	CHECK_EQ(qd_sgafree(&qr.value.sga), -EINVAL);
	CHECK_EQ(qd_sgafree(&a), 0);
	CHECK_EQ(qd_sgafree(&b), 0);
	CHECK_EQ(qd_memunregister(mem), 0);
	munmap(mem, 8192);
}

static void pop_pends_until_push(void)
{
	struct qd_sga sga = sga_str("late");
	struct qd_result qr;
	qd_token_t po, pu;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(qd_wait(&qr, po, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_wait(&qr, po, &zero_ts), -ETIMEDOUT);	/* still valid */
	REQUIRE(qd_push(&pu, qd, &sga) == 0);
	CHECK_EQ(wait_res(po, &qr), 5);
	CHECK(!strcmp(qr.value.sga.segs[0].buf, "late"));
	CHECK_EQ(wait_res(pu, NULL), 5);
	qd_sgafree(&qr.value.sga);
}

static void close_cancels_pending(void)
{
	struct qd_sga sga = sga_str("x");
	struct qd_result qr;
	qd_token_t p1, p2, pu;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop(&p1, qd) == 0);
	REQUIRE(qd_pop(&p2, qd) == 0);
	CHECK_EQ(qd_wait(&qr, p1, &zero_ts), -ETIMEDOUT);	/* submitted */
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(wait_res(p1, &qr), -ECANCELED);
	CHECK_EQ(qr.opcode, QD_OPC_POP);
	CHECK_EQ(qr.qd, qd);
	CHECK_EQ(qr.value.sga.numsegs, 0);
	CHECK_EQ(wait_res(p2, &qr), -ECANCELED);
	CHECK_EQ(qd_close(qd), -EBADF);
	REQUIRE(qd_push(&pu, qd, &sga) == 0);
	CHECK_EQ(wait_res(pu, &qr), -EBADF);
	CHECK_EQ(qr.opcode, QD_OPC_PUSH);
	CHECK_EQ(qr.value.sga.numsegs, 0);
	qd_sgafree(&sga);
}

static void close_submits_queued_first(void)
{
	qd_token_t po;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);		/* queued, not submitted */
	CHECK_EQ(stats().sqes_submitted, 0);
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(wait_res(po, NULL), -ECANCELED);
}

static void token_waited_twice_is_einval(void)
{
	struct qd_sga sga = sga_str("t");
	struct qd_result qr;
	qd_token_t pu, po;
	int qd, off;

	CHECK_EQ(qd_wait(&qr, 12345, &zero_ts), -EINVAL);	/* no context */
	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_push(&pu, qd, &sga) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(qd_wait(&qr, pu, NULL), 0);
	CHECK_EQ(qd_wait(&qr, pu, NULL), -EINVAL);
	CHECK_EQ(qd_wait(&qr, pu, &zero_ts), -EINVAL);
	CHECK_EQ(qd_wait(&qr, 0, NULL), -EINVAL);
	CHECK_EQ(qd_wait(&qr, ~0ULL, NULL), -EINVAL);
	CHECK_EQ(qd_wait(&qr, pu + (1ULL << 32), NULL), -EINVAL);
	CHECK_EQ(qd_wait_any(&qr, &off, (qd_token_t[]){ po, pu }, 2, NULL),
		 -EINVAL);
	CHECK_EQ(qd_wait(NULL, po, NULL), -EINVAL);
	CHECK_EQ(qd_wait(&qr, po, NULL), 0);
	qd_sgafree(&qr.value.sga);
}

static void wait_timeout(void)
{
	struct timespec t0, ts = { 0, 50 * 1000 * 1000 };
	struct qd_result qr;
	qd_token_t po;
	int64_t ms;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(qd_wait(&qr, po, &ts), -ETIMEDOUT);
	ms = elapsed_ms(&t0);
	CHECK(ms >= 50 && ms < 2000);
	ts.tv_nsec = -1;
	CHECK_EQ(qd_wait(&qr, po, &ts), -EINVAL);
	ts = (struct timespec){ 0, 1000000000 };
	CHECK_EQ(qd_wait(&qr, po, &ts), -EINVAL);
	CHECK_EQ(qd_close(qd), 0);
	CHECK_EQ(wait_res(po, NULL), -ECANCELED);
}

static void batching_one_enter_per_wait(void)
{
	struct qd_sga a = sga_str("a"), b = sga_str("b");
	struct qd_result qr;
	qd_token_t pu, po, pu2;
	uint64_t n;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	n = stats().syscalls;
	REQUIRE(qd_push(&pu, qd, &a) == 0);
	CHECK_EQ(stats().syscalls - n, 0);	/* batched */
	CHECK_EQ(wait_res(pu, NULL), 2);
	CHECK_EQ(stats().syscalls - n, 1);	/* one enter did it all */
	CHECK_EQ(stats().sqes_submitted, 1);

	n = stats().syscalls;
	REQUIRE(qd_push(&pu2, qd, &b) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);		/* the second pop gets "b" */
	CHECK_EQ(stats().syscalls - n, 0);
	CHECK_EQ(wait_res(po, &qr), 2);
	CHECK_EQ(stats().syscalls - n, 1);
	CHECK_EQ(stats().sqes_submitted, 4);
	CHECK_EQ(stats().cqes_reaped, 4);
	/* Already reaped: no system call at all. */
	n = stats().syscalls;
	CHECK_EQ(wait_res(pu2, NULL), 2);
	CHECK_EQ(stats().syscalls - n, 0);
	CHECK(!strcmp(qr.value.sga.segs[0].buf, "b"));
	qd_sgafree(&qr.value.sga);
}

static void result_in_cq_costs_no_syscall(void)
{
	struct qd_sga a = sga_str("a");
	qd_token_t pu;
	uint64_t n;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_push(&pu, qd, &a) == 0);
	REQUIRE(qd_submit() == 0);		/* the CQE is now in the ring */
	CHECK_EQ(stats().cqes_reaped, 0);
	n = stats().syscalls;
	CHECK_EQ(wait_res(pu, NULL), 2);
	CHECK_EQ(stats().syscalls - n, 0);
	CHECK_EQ(stats().cqes_reaped, 1);
	n = stats().syscalls;
	CHECK_EQ(qd_submit(), 0);		/* nothing queued */
	CHECK_EQ(stats().syscalls - n, 0);
}

static void poll_submits_queued_once(void)
{
	struct qd_sga a = sga_str("a");
	struct qd_result qr;
	qd_token_t pu, po;
	struct qd_stats st;
	uint64_t n;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_push(&pu, qd, &a) == 0);
	n = stats().enters;
	CHECK_EQ(qd_wait(&qr, pu, &zero_ts), 0);
	st = stats();
	CHECK_EQ(st.enters - n, 1);
	CHECK_EQ(st.enter_waits, 0);
	/* Nothing queued, nothing ready: a poll is free. */
	REQUIRE(qd_pop(&po, qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(qd_wait(&qr, po, &zero_ts), -ETIMEDOUT);
	n = stats().syscalls;
	CHECK_EQ(qd_wait(&qr, po, &zero_ts), -ETIMEDOUT);
	CHECK_EQ(stats().syscalls - n, 0);
}

static void wait_any_picks_ready(void)
{
	struct qd_sga a = sga_str("any");
	qd_token_t qts[3], pu;
	struct qd_result qr;
	int q[3], i, off = -1;

	for (i = 0; i < 3; i++) {
		REQUIRE(qd_queue(&q[i]) == 0);
		REQUIRE(qd_pop(&qts[i], q[i]) == 0);
	}
	CHECK_EQ(qd_wait_any(&qr, &off, qts, 3, &zero_ts), -ETIMEDOUT);
	REQUIRE(qd_push(&pu, q[1], &a) == 0);
	CHECK_EQ(qd_wait_any(&qr, &off, qts, 3, NULL), 0);
	CHECK_EQ(off, 1);
	CHECK(qr.qt == qts[1]);
	CHECK_EQ(qr.qd, q[1]);
	CHECK(!strcmp(qr.value.sga.segs[0].buf, "any"));
	qd_sgafree(&qr.value.sga);
	CHECK_EQ(qd_wait(&qr, qts[0], &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_wait(&qr, qts[2], &zero_ts), -ETIMEDOUT);
	CHECK_EQ(qd_wait_any(&qr, &off, qts, 0, NULL), -EINVAL);
	CHECK_EQ(qd_wait_any(&qr, &off, NULL, 1, NULL), -EINVAL);
	CHECK_EQ(qd_wait_any(&qr, NULL, qts, 1, NULL), -EINVAL);
	/* The first ready one in array order wins. */
	CHECK_EQ(qd_wait(&qr, pu, NULL), 0);
	qts[1] = pu;
	CHECK_EQ(qd_close(q[2]), 0);
	CHECK_EQ(qd_close(q[0]), 0);
	CHECK_EQ(qd_wait_any(&qr, &off, (qd_token_t[]){ qts[2], qts[0] }, 2,
			     NULL), 0);
	CHECK_EQ(off, 0);
	CHECK_EQ(qr.ret, -ECANCELED);
	CHECK_EQ(qd_wait_any(&qr, &off, &qts[0], 1, NULL), 0);
	CHECK_EQ(off, 0);
}

static void push_validation(void)
{
	struct qd_sga a = qd_sgaalloc(64), bad;
	char stackbuf[64];
	qd_token_t qt;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	CHECK_EQ(qd_push(NULL, qd, &a), -EINVAL);
	CHECK_EQ(qd_push(&qt, qd, NULL), -EINVAL);
	bad = a;
	bad.numsegs = 0;
	CHECK_EQ(qd_push(&qt, qd, &bad), -EINVAL);
	bad.numsegs = QD_SGA_MAX + 1;
	CHECK_EQ(qd_push(&qt, qd, &bad), -EINVAL);
	bad = a;
	bad.segs[0].len = 0;
	CHECK_EQ(qd_push(&qt, qd, &bad), -EINVAL);
	bad = a;
	bad.segs[0].buf = NULL;
	CHECK_EQ(qd_push(&qt, qd, &bad), -EINVAL);
	bad = a;
	bad.segs[0].buf = stackbuf;
	CHECK_EQ(qd_push(&qt, qd, &bad), -EFAULT);
	bad = a;
	bad.segs[0].len = 64 << 20;		/* runs off the chunk */
	CHECK_EQ(qd_push(&qt, qd, &bad), -EFAULT);
	bad = a;
	bad.numsegs = 2;
	bad.segs[1] = (struct qd_sgaseg){ stackbuf, 1 };
	CHECK_EQ(qd_push(&qt, qd, &bad), -EFAULT);
	CHECK_EQ(qd_pop(NULL, qd), -EINVAL);
	CHECK_EQ(qd_queue(NULL), -EINVAL);
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().sqes_submitted, 0);	/* nothing reached the kernel */
}

static void bad_qd_fails_in_result(void)
{
	struct qd_sga a = sga_str("a");
	qd_token_t pu, po;

	REQUIRE(qd_push(&pu, 42, &a) == 0);
	REQUIRE(qd_pop(&po, -1) == 0);
	CHECK_EQ(wait_res(pu, NULL), -EBADF);
	CHECK_EQ(wait_res(po, NULL), -EBADF);
	CHECK_EQ(qd_close(42), -EBADF);
}

static void full_sq_is_submitted(void)
{
	struct qd_sga a;
	qd_token_t pu[20];
	int qd, i;

	setenv("QD_SQ_ENTRIES", "4", 1);
	setenv("QD_CQ_ENTRIES", "64", 1);
	a = sga_str("f");
	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 20; i++)
		REQUIRE(qd_push(&pu[i], qd, &a) == 0);
	CHECK_EQ(stats().sqes_submitted, 16);
	CHECK_EQ(stats().enters, 4);
	for (i = 0; i < 20; i++)
		CHECK_EQ(wait_res(pu[i], NULL), 2);
}

static void inflight_cap_leaves_sqes_queued(void)
{
	qd_token_t po[3];
	int qd, i;

	fake_cfg.max_inflight = 2;
	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 3; i++)
		REQUIRE(qd_pop(&po[i], qd) == 0);
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().sqes_submitted, 2);	/* the kernel took two */
	CHECK_EQ(qd_close(qd), 0);		/* the third stays behind */
	CHECK_EQ(stats().sqes_submitted, 2);
	CHECK_EQ(wait_res(po[0], NULL), -ECANCELED);
	CHECK_EQ(wait_res(po[1], NULL), -ECANCELED);
	/* Retried by the next enter: too late, the queue is gone. */
	CHECK_EQ(wait_res(po[2], NULL), -EBADF);
	CHECK_EQ(stats().sqes_submitted, 3);
}

static void full_sq_at_cap_is_ebusy(void)
{
	struct qd_sga a;
	qd_token_t po[5], pu;
	int qd, i;

	setenv("QD_SQ_ENTRIES", "2", 1);
	setenv("QD_CQ_ENTRIES", "4", 1);
	fake_cfg.max_inflight = 2;
	a = sga_str("b");
	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 4; i++)
		REQUIRE(qd_pop(&po[i], qd) == 0);
	/* Two pops run, two wait in a full SQ the kernel will not take. */
	CHECK_EQ(qd_pop(&po[4], qd), -EBUSY);
	CHECK_EQ(qd_push(&pu, qd, &a), -EBUSY);
	CHECK_EQ(qd_close(qd), 0);
	for (i = 0; i < 4; i++)
		CHECK(wait_res(po[i], NULL) < 0);
}

static void pushes_past_the_cap_reap_to_make_room(void)
{
	struct qd_sga a;
	qd_token_t qt[64];
	struct fake_stats fs;
	int qd, i;

	/* max_inflight 8: parked completions soon fill the cap. */
	setenv("QD_SQ_ENTRIES", "4", 1);
	setenv("QD_CQ_ENTRIES", "4", 1);
	a = sga_str("c");
	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 64; i++)
		REQUIRE(qd_push(&qt[i], qd, &a) == 0);
	fake_stats(&fs);
	CHECK(fs.overflowed > 0);
	CHECK(stats().cqes_reaped > 0);
	for (i = 0; i < 64; i++)
		CHECK_EQ(wait_res(qt[i], NULL), 2);
}

static void cq_overflow_is_drained(void)
{
	struct qd_sga a;
	struct fake_stats fs;
	struct qd_result qr;
	qd_token_t qt[16];
	int qd, i;

	setenv("QD_SQ_ENTRIES", "4", 1);
	setenv("QD_CQ_ENTRIES", "4", 1);
	a = sga_str("o");
	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 8; i++)
		REQUIRE(qd_push(&qt[i], qd, &a) == 0);
	for (i = 8; i < 16; i++)
		REQUIRE(qd_pop(&qt[i], qd) == 0);
	CHECK_EQ(qd_submit(), 0);
	fake_stats(&fs);
	CHECK(fs.overflowed > 0);
	/* Poll the newest first: it sits in the kernel's overflow list. */
	CHECK_EQ(qd_wait(&qr, qt[15], &zero_ts), 0);
	CHECK_EQ(qr.ret, 2);
	CHECK(stats().overflow_flushes > 0);
	for (i = 0; i < 15; i++)
		CHECK_EQ(wait_res(qt[i], NULL), 2);
	fake_stats(&fs);
	CHECK_EQ(fs.inflight, 0);
}

static void eintr_is_retried(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	struct qd_result qr;
	qd_token_t po;
	int qd;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	fake_cfg.eintr = 3;
	CHECK_EQ(qd_wait(&qr, po, &ts), -ETIMEDOUT);
	CHECK_EQ(fake_cfg.eintr, 0);
	CHECK_EQ(qd_close(qd), 0);
	fake_cfg.eintr = 1;
	CHECK_EQ(wait_res(po, NULL), -ECANCELED);
}

static void rings_wrap_in_use(void)
{
	struct qd_sga a;
	struct qd_result qr;
	qd_token_t pu, po;
	int qd, i, bad = 0;

	setenv("QD_SQ_ENTRIES", "4", 1);
	setenv("QD_CQ_ENTRIES", "8", 1);
	fake_cfg.start_index = UINT32_MAX - 9;
	a = sga_str("w");
	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 50; i++) {
		REQUIRE(qd_push(&pu, qd, &a) == 0);
		REQUIRE(qd_pop(&po, qd) == 0);
		bad += wait_res(po, &qr) != 2;
		bad += qr.value.sga.segs[0].buf != a.segs[0].buf;
		bad += wait_res(pu, NULL) != 2;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(stats().cqes_reaped, 100);
}

static void memregister_rules(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct qd_sga a = qd_sgaalloc(100), sga;
	struct qd_result qr;
	qd_token_t pu, po;
	uint64_t bytes;
	char *mem;
	int qd;

	bytes = stats().region_bytes;

	mem = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	CHECK_EQ(qd_memregister(NULL, page), -EINVAL);
	CHECK_EQ(qd_memregister(mem, 0), -EINVAL);
	CHECK_EQ(qd_memregister(mem + 1, page), -EINVAL);
	CHECK_EQ(qd_memregister(mem, page + 1), 0);	/* rounded up */
	CHECK_EQ(stats().region_bytes - bytes, 2 * page);
	CHECK_EQ(qd_memregister(mem + page, page), -EEXIST);
	CHECK_EQ(qd_memregister(mem + 2 * page, 2 * page), 0);	/* adjacent */
	CHECK_EQ(qd_memregister(a.segs[0].buf, page), -EEXIST);
	CHECK_EQ(qd_memunregister(mem + page), -ENOENT);
	CHECK_EQ(qd_memunregister(a.segs[0].buf), -ENOENT);
	CHECK_EQ(qd_memunregister(NULL), -ENOENT);

	REQUIRE(qd_queue(&qd) == 0);
	memset(&sga, 0, sizeof(sga));
	sga.numsegs = 1;
	sga.segs[0] = (struct qd_sgaseg){ mem + 100, 50 };
	strcpy(mem + 100, "mine");
	REQUIRE(qd_push(&pu, qd, &sga) == 0);
	CHECK_EQ(wait_res(pu, NULL), 50);
	CHECK_EQ(qd_memunregister(mem), -EBUSY);	/* the element holds it */
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(wait_res(po, &qr), 50);
	CHECK(qr.value.sga.segs[0].buf == mem + 100);
	CHECK_EQ(qd_sgafree(&qr.value.sga), -EINVAL);
	CHECK_EQ(qd_memunregister(mem), 0);
	CHECK_EQ(qd_memunregister(mem), -ENOENT);
	CHECK_EQ(qd_push(&pu, qd, &sga), -EFAULT);
	/* A segment across two registrations is not one region. */
	sga.segs[0] = (struct qd_sgaseg){ mem + 2 * page - 10, 20 };
	CHECK_EQ(qd_memregister(mem, 2 * page), 0);
	CHECK_EQ(qd_push(&pu, qd, &sga), -EFAULT);
	CHECK_EQ(qd_memunregister(mem), 0);
	CHECK_EQ(qd_memunregister(mem + 2 * page), 0);
	qd_sgafree(&a);
	munmap(mem, 4 * page);
}

static void sgaalloc_sizes_and_alignment(void)
{
	static const size_t sizes[] = { 1, 63, 64, 65, 4096, 100000,
					(size_t)3 << 20 };
	struct qd_sga s[7], z;
	size_t i, j;
	int bad = 0;

	for (i = 0; i < 7; i++) {
		s[i] = qd_sgaalloc(sizes[i]);
		REQUIRE(s[i].numsegs == 1);
		bad += s[i].segs[0].len != sizes[i];
		bad += (uintptr_t)s[i].segs[0].buf % 64 != 0;
		memset(s[i].segs[0].buf, (int)i, sizes[i]);
	}
	CHECK_EQ(bad, 0);
	for (i = 0; i < 7; i++)
		for (j = 0; j < sizes[i]; j += 997)
			bad += ((unsigned char *)s[i].segs[0].buf)[j] != i;
	CHECK_EQ(bad, 0);
	errno = 0;
	z = qd_sgaalloc(0);
	CHECK(z.numsegs == 0 && errno == EINVAL);
	errno = 0;
	z = qd_sgaalloc(((size_t)1 << 30) + 1);
	CHECK(z.numsegs == 0 && errno == EINVAL);
	for (i = 0; i < 7; i++)
		CHECK_EQ(qd_sgafree(&s[i]), 0);
}

static void sgafree_errors(void)
{
	struct qd_sga a = qd_sgaalloc(100), b = qd_sgaalloc(100), two;
	char *heap = malloc(64);

	REQUIRE(a.numsegs && b.numsegs && heap);
	CHECK_EQ(qd_sgafree(NULL), -EINVAL);
	two = a;
	two.numsegs = 0;
	CHECK_EQ(qd_sgafree(&two), -EINVAL);
	two.numsegs = QD_SGA_MAX + 1;
	CHECK_EQ(qd_sgafree(&two), -EINVAL);
	two = a;
	two.segs[0].buf = heap;
	CHECK_EQ(qd_sgafree(&two), -EINVAL);
	/* One bad segment: nothing is freed. */
	two = a;
	two.numsegs = 2;
	two.segs[1] = (struct qd_sgaseg){ heap, 1 };
	CHECK_EQ(qd_sgafree(&two), -EINVAL);
	/* Two segments inside one buffer free it once. */
	two = a;
	two.numsegs = 2;
	two.segs[0] = (struct qd_sgaseg){ (char *)a.segs[0].buf + 10, 5 };
	two.segs[1] = (struct qd_sgaseg){ (char *)a.segs[0].buf + 50, 5 };
	CHECK_EQ(qd_sgafree(&two), 0);
	CHECK_EQ(qd_sgafree(&a), -EINVAL);	/* double free */
	/* An interior pointer frees the whole buffer. */
	two = b;
	two.segs[0].buf = (char *)b.segs[0].buf + 99;
	CHECK_EQ(qd_sgafree(&two), 0);
	CHECK_EQ(qd_sgafree(&b), -EINVAL);
	free(heap);
}

static void sgaalloc_reuses_and_grows(void)
{
	enum { N = 3000 };
	static struct qd_sga s[N];
	uint64_t regions;
	int i, bad = 0;

	for (i = 0; i < N; i++) {
		s[i] = qd_sgaalloc(64);
		REQUIRE(s[i].numsegs == 1);
		*(int *)s[i].segs[0].buf = i;
	}
	for (i = 0; i < N; i++)
		bad += *(int *)s[i].segs[0].buf != i;
	CHECK_EQ(bad, 0);
	regions = stats().regions;
	CHECK(regions >= 2 && regions <= 3);	/* 64 KiB, then 128 KiB */
	for (i = 0; i < N; i++)
		bad += qd_sgafree(&s[i]) != 0;
	CHECK_EQ(bad, 0);
	for (i = 0; i < N; i++) {
		s[i] = qd_sgaalloc(40);
		bad += s[i].numsegs != 1;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(stats().regions, regions);
}

static void huge_buffer_returned_on_free(void)
{
	struct qd_sga s;
	uint64_t r;

	r = stats().regions;
	s = qd_sgaalloc((size_t)5 << 20);
	REQUIRE(s.numsegs == 1);
	CHECK_EQ(stats().regions, r + 1);
	CHECK_EQ(stats().region_bytes, (size_t)8 << 20);
	CHECK_EQ(qd_sgafree(&s), 0);
	CHECK_EQ(stats().regions, r);
	CHECK_EQ(qd_sgafree(&s), -EINVAL);
}

static void memlock_exhaustion_is_enomem(void)
{
	enum { N = 2048 };
	static struct qd_sga s[N];
	struct qd_sga x;
	int i, bad = 0;

	/* 64 KiB, then a 128 KiB chunk that does not fit: 64 KiB again. */
	fake_cfg.memlock = 128 << 10;
	for (i = 0; i < N; i++) {
		s[i] = qd_sgaalloc(64);
		bad += s[i].numsegs != 1;
	}
	CHECK_EQ(bad, 0);
	errno = 0;
	x = qd_sgaalloc(64);
	CHECK(x.numsegs == 0 && errno == ENOMEM);
	errno = 0;
	x = qd_sgaalloc(1 << 20);
	CHECK(x.numsegs == 0 && errno == ENOMEM);
	CHECK_EQ(qd_sgafree(&s[7]), 0);
	x = qd_sgaalloc(64);
	CHECK(x.numsegs == 1 && x.segs[0].buf == s[7].segs[0].buf);
}

static void regions_exhausted_is_enomem(void)
{
	struct qd_sga a, b, c;

	fake_cfg.max_regions = 2;
	a = qd_sgaalloc(3 << 20);
	b = qd_sgaalloc(3 << 20);
	errno = 0;
	c = qd_sgaalloc(3 << 20);
	CHECK(a.numsegs == 1 && b.numsegs == 1);
	CHECK(c.numsegs == 0 && errno == ENOMEM);
	CHECK_EQ(qd_sgafree(&a), 0);
	c = qd_sgaalloc(3 << 20);
	CHECK_EQ(c.numsegs, 1);
}

static void fork_child_starts_afresh(void)
{
	struct qd_sga a = sga_str("parent");
	struct qd_result qr;
	qd_token_t pu, po;
	int qd, status;
	pid_t pid;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_push(&pu, qd, &a) == 0);	/* still queued at fork */
	fflush(stdout);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct qd_sga b;
		qd_token_t cpu, cpo;
		int cqd, fails = 0;

		fails += stats().syscalls != 0 || stats().sq_entries != 0;
		fails += qd_wait(&qr, pu, &zero_ts) != -EINVAL;
		fails += qd_sgafree(&a) != -EINVAL;
		fails += qd_push(&cpu, qd, &a) != -EFAULT;
		fails += qd_queue(&cqd) != 0 || cqd != 0;
		b = sga_str("child");
		fails += qd_push(&cpu, cqd, &b) != 0;
		fails += qd_pop(&cpo, cqd) != 0;
		fails += wait_res(cpo, &qr) != 6;
		fails += strcmp(qr.value.sga.segs[0].buf, "child") != 0;
		fails += wait_res(cpu, NULL) != 6;
		fails += qd_sgafree(&b) != 0;
		_exit(fails);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The parent's context did not notice. */
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(wait_res(po, &qr), 7);
	CHECK(!strcmp(qr.value.sga.segs[0].buf, "parent"));
	CHECK_EQ(wait_res(pu, NULL), 7);
	CHECK_EQ(qd_sgafree(&a), 0);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "memq";
	FRUN(init_idempotent_and_geometry);
	FRUN(env_overrides_ring_sizes);
	FRUN(large_sq_gets_a_larger_cq);
	FRUN(small_cq_gets_a_smaller_sq);
	FRUN(init_fails_without_device);
	FRUN(init_requires_features);
	FRUN(fifo_order);
	FRUN(multi_segment_element);
	FRUN(pop_pends_until_push);
	FRUN(close_cancels_pending);
	FRUN(close_submits_queued_first);
	FRUN(token_waited_twice_is_einval);
	FRUN(wait_timeout);
	FRUN(batching_one_enter_per_wait);
	FRUN(result_in_cq_costs_no_syscall);
	FRUN(poll_submits_queued_once);
	FRUN(wait_any_picks_ready);
	FRUN(push_validation);
	FRUN(bad_qd_fails_in_result);
	FRUN(full_sq_is_submitted);
	FRUN(inflight_cap_leaves_sqes_queued);
	FRUN(full_sq_at_cap_is_ebusy);
	FRUN(pushes_past_the_cap_reap_to_make_room);
	FRUN(cq_overflow_is_drained);
	FRUN(eintr_is_retried);
	FRUN(rings_wrap_in_use);
	FRUN(memregister_rules);
	FRUN(sgaalloc_sizes_and_alignment);
	FRUN(sgafree_errors);
	FRUN(sgaalloc_reuses_and_grows);
	FRUN(huge_buffer_returned_on_free);
	FRUN(memlock_exhaustion_is_enomem);
	FRUN(regions_exhausted_is_enomem);
	FRUN(fork_child_starts_afresh);
	return tap_done();
}
