// SPDX-License-Identifier: MIT
/*
 * qd_push_forget(): a push without a token. Its success posts no
 * completion; its failure is counted and libqd frees its qd_sgaalloc()
 * buffers, which the kernel hands back in the failed push's CQE.
 */
#include <sys/mman.h>

#include "harness.h"

static void success_posts_no_completion(void)
{
	struct qd_sga a[10];
	struct fake_stats fs;
	struct qd_result qr;
	qd_token_t po;
	int qd, i;

	REQUIRE(qd_queue(&qd) == 0);
	for (i = 0; i < 10; i++) {
		a[i] = qd_sgaalloc(100 + i);
		REQUIRE(a[i].numsegs == 1);
		REQUIRE(qd_push_forget(qd, &a[i]) == 0);
	}
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().sqes_submitted, 10);
	fake_stats(&fs);
	CHECK_EQ(fs.posted, 0);
	CHECK_EQ(fs.elems, 10);
	/* The popper owns the buffers now, in order. */
	for (i = 0; i < 10; i++) {
		REQUIRE(qd_pop(&po, qd) == 0);
		CHECK_EQ(wait_res(po, &qr), 100 + i);
		CHECK(qr.value.sga.segs[0].buf == a[i].segs[0].buf);
		CHECK_EQ(qd_sgafree(&qr.value.sga), 0);
	}
	CHECK_EQ(stats().cqes_reaped, 10);	/* the pops' */
	CHECK_EQ(stats().forget_failed, 0);
	CHECK_EQ(stats().forget_last_error, 0);
}

static void validation_as_push(void)
{
	struct qd_sga a = qd_sgaalloc(64), bad = a;
	char stackbuf[64];

	CHECK_EQ(qd_push_forget(0, NULL), -EINVAL);
	bad.numsegs = 0;
	CHECK_EQ(qd_push_forget(0, &bad), -EINVAL);
	bad = a;
	bad.segs[0].buf = stackbuf;
	CHECK_EQ(qd_push_forget(0, &bad), -EFAULT);
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().sqes_submitted, 0);
}

/* Reap whatever this thread's ring holds: a poll on a fresh pop. */
static void reap_own_ring(int qd)
{
	struct qd_result qr;
	qd_token_t po;

	REQUIRE(qd_pop(&po, qd) == 0);
	qd_wait(&qr, po, &zero_ts);
}

static void failure_is_counted_and_buffers_freed(void)
{
	struct qd_sga a = sga_str("lost"), b = sga_str("also"), again;
	int qd, q2;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_queue(&q2) == 0);
	CHECK_EQ(qd_close(qd), 0);
	/* A closed queue: the element was built, so it comes back. */
	REQUIRE(qd_push_forget(qd, &a) == 0);
	REQUIRE(qd_push_forget(qd, &b) == 0);
	reap_own_ring(q2);
	CHECK_EQ(stats().forget_failed, 2);
	CHECK_EQ(stats().forget_last_error, -EBADF);
	CHECK_EQ(qd_sgafree(&a), -EINVAL);	/* libqd freed them */
	CHECK_EQ(qd_sgafree(&b), -EINVAL);
	again = qd_sgaalloc(5);
	CHECK(again.segs[0].buf == b.segs[0].buf ||
	      again.segs[0].buf == a.segs[0].buf);
}

static void multi_segment_failure_frees_each_buffer_once(void)
{
	struct qd_sga a = qd_sgaalloc(100), b = qd_sgaalloc(100), sga;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *mem;
	int qd, q2;

	mem = mmap(NULL, page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	REQUIRE(qd_memregister(mem, page) == 0);
	memset(&sga, 0, sizeof(sga));
	sga.numsegs = 4;
	sga.segs[0] = (struct qd_sgaseg){ a.segs[0].buf, 10 };
	sga.segs[1] = (struct qd_sgaseg){ (char *)a.segs[0].buf + 50, 10 };
	sga.segs[2] = (struct qd_sgaseg){ mem, 10 };
	sga.segs[3] = b.segs[0];
	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_queue(&q2) == 0);
	CHECK_EQ(qd_close(qd), 0);
	REQUIRE(qd_push_forget(qd, &sga) == 0);
	reap_own_ring(q2);
	CHECK_EQ(stats().forget_failed, 1);
	CHECK_EQ(qd_sgafree(&a), -EINVAL);
	CHECK_EQ(qd_sgafree(&b), -EINVAL);
	/* The application's memory stays its own, and unreferenced. */
	CHECK_EQ(qd_memunregister(mem), 0);
	munmap(mem, page);
}

static void pending_push_cancelled_by_close(void)
{
	struct qd_sga a = sga_str("pend");
	struct qd_result qr;
	qd_token_t po;
	int qd, q2, i;

	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_queue(&q2) == 0);
	/* Fill the queue (default depth 1024), then one more waits. */
	for (i = 0; i < 1024; i++) {
		struct qd_sga e = sga_str("f");

		REQUIRE(qd_push_forget(qd, &e) == 0);
	}
	REQUIRE(qd_push_forget(qd, &a) == 0);
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().forget_failed, 0);
	CHECK_EQ(qd_close(qd), 0);
	reap_own_ring(q2);
	CHECK_EQ(stats().forget_failed, 1);
	CHECK_EQ(stats().forget_last_error, -ECANCELED);
	CHECK_EQ(qd_sgafree(&a), -EINVAL);
	REQUIRE(qd_pop(&po, q2) == 0);
	CHECK_EQ(qd_wait(&qr, po, &zero_ts), -ETIMEDOUT);
}

static void without_skip_success_the_success_is_dropped(void)
{
	struct fake_stats fs;
	struct qd_result qr;
	struct qd_sga a, b;
	qd_token_t po;
	int qd;

	/* Before anything sets the context up. */
	fake_cfg.features = QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS |
			    QD_FEAT_NOOVERFLOW_LOSS | QD_FEAT_REGIONS |
			    QD_FEAT_RINGS | QD_FEAT_MULTISHOT;
	a = sga_str("s");
	b = sga_str("t");
	REQUIRE(qd_queue(&qd) == 0);
	CHECK_EQ(stats().features & QD_FEAT_SKIP_SUCCESS, 0);
	REQUIRE(qd_push_forget(qd, &a) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(wait_res(po, &qr), 2);
	fake_stats(&fs);
	CHECK_EQ(fs.posted, 2);			/* the push's success too */
	CHECK_EQ(stats().forget_failed, 0);
	CHECK(qr.value.sga.segs[0].buf == a.segs[0].buf);
	CHECK_EQ(qd_close(qd), 0);
	REQUIRE(qd_push_forget(qd, &b) == 0);
	REQUIRE(qd_pop(&po, qd) == 0);
	CHECK_EQ(wait_res(po, NULL), -EBADF);
	CHECK_EQ(stats().forget_failed, 1);
	CHECK_EQ(qd_sgafree(&b), -EINVAL);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "forget";
	FRUN(success_posts_no_completion);
	FRUN(validation_as_push);
	FRUN(failure_is_counted_and_buffers_freed);
	FRUN(multi_segment_failure_frees_each_buffer_once);
	FRUN(pending_push_cancelled_by_close);
	FRUN(without_skip_success_the_success_is_dropped);
	return tap_done();
}
