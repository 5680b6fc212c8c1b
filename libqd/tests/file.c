// SPDX-License-Identifier: MIT
/*
 * Storage qds (file.c) against the fake kernel's in-memory files:
 * qd_open()'s checks before any system call and its SQE, one enter per
 * open (SQPOLL too), pushes and pops at the queue's offsets and at off,
 * the buffer qd_pop() brings (QD_FILE_POP_SIZE, freed by libqd at end of
 * file or on an error), qd_sync(), what a storage qd refuses, and the
 * 4096 alignment of qd_sgaalloc() buffers of 4096 bytes or more.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "harness.h"

/* The newest SQE the fake consumed. */
static struct qd_sqe last_sqe(void)
{
	struct qd_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	fake_sqe_log(&sqe, 1);
	return sqe;
}

static int file_is(const char *path, const char *want)
{
	uint64_t size;
	const char *data = fake_file(path, &size);

	return data && size == strlen(want) && !memcmp(data, want, size);
}

/* Push s (without its NUL) at the queue's offset, or at off if off >= 0. */
static int64_t push_str(int qd, const char *s, int64_t off)
{
	struct qd_sga a = qd_sgaalloc(strlen(s));
	struct qd_result qr;
	qd_token_t qt;
	int64_t ret;

	memcpy(a.segs[0].buf, s, strlen(s));
	if (off >= 0)
		ret = qd_pushat(&qt, qd, &a, (uint64_t)off);
	else
		ret = qd_push(&qt, qd, &a);
	if (!ret)
		ret = wait_res(qt, &qr);
	/* The buffers stay the pusher's, named by the result. */
	if (ret >= 0 && (qr.value.sga.numsegs != 1 ||
			 qr.value.sga.segs[0].buf != a.segs[0].buf))
		ret = -EPROTO;
	qd_sgafree(&a);
	return ret;
}

static void open_checks_arguments_before_any_system_call(void)
{
	char *long_path = malloc(PATH_MAX + 1);
	struct fake_stats fs;
	int qd = -1;

	REQUIRE(long_path);
	memset(long_path, 'a', PATH_MAX);
	long_path[0] = '/';
	long_path[PATH_MAX] = 0;
	CHECK_EQ(qd_open(NULL, "/f", O_RDONLY, 0), -EINVAL);
	CHECK_EQ(qd_open(&qd, NULL, O_RDONLY, 0), -EINVAL);
	CHECK_EQ(qd_open(&qd, long_path, O_RDONLY, 0), -ENAMETOOLONG);
	CHECK_EQ(qd_open(&qd, "/f", O_ACCMODE, 0), -EINVAL);
	CHECK_EQ(qd_open(&qd, "/f", O_RDONLY | O_DIRECTORY, 0), -EINVAL);
	CHECK_EQ(qd_open(&qd, "/f", O_PATH, 0), -EINVAL);
	CHECK_EQ(qd_open(&qd, "/f", O_RDWR | O_TMPFILE, 0600), -EINVAL);
	CHECK_EQ(qd_open(&qd, "/f", O_RDONLY | O_NONBLOCK, 0), -EINVAL);
	CHECK_EQ(qd_open(&qd, "/f", O_RDWR | O_CREAT, 010000), -EINVAL);
	CHECK_EQ(qd, -1);
	CHECK_EQ(stats().syscalls, 0);
	/* One byte shorter fits, NUL included: the kernel decides. */
	long_path[PATH_MAX - 1] = 0;
	CHECK_EQ(qd_open(&qd, long_path, O_RDONLY, 0), -ENOENT);
	fake_stats(&fs);
	CHECK_EQ(fs.opens, 1);
	free(long_path);
}

static void open_is_one_sqe_and_one_enter(void)
{
	const char *path = "/data";
	struct qd_stats before;
	struct qd_sqe sqe;
	int qd = -1, flags = O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC;

	REQUIRE(qd_init() == 0);
	before = stats();
	REQUIRE(qd_open(&qd, path, flags, 0640) == 0);
	CHECK(qd >= 0);
	CHECK_EQ(stats().enters - before.enters, 1);
	CHECK_EQ(stats().enter_waits - before.enter_waits, 0);
	CHECK_EQ(stats().sqes_submitted - before.sqes_submitted, 1);
	sqe = last_sqe();
	CHECK_EQ(sqe.opcode, QD_OP_OPEN);
	CHECK(sqe.addr == (uintptr_t)path);
	CHECK_EQ(sqe.open_flags, (uint32_t)flags);
	CHECK_EQ(sqe.open_mode, 0640);
	CHECK_EQ(sqe.qd, 0);
	CHECK_EQ(sqe.nsegs, 0);
	CHECK_EQ(sqe.op_flags, 0);
	CHECK(sqe.user_data != 0);
	CHECK(file_is(path, ""));
	CHECK_EQ(qd_close(qd), 0);
}

static void open_errors_come_from_the_kernel(void)
{
	int qd = -1, a;

	CHECK_EQ(qd_open(&qd, "/missing", O_RDONLY, 0), -ENOENT);
	CHECK_EQ(qd_open(&qd, "/dir/", O_RDONLY, 0), -EISDIR);
	REQUIRE(qd_open(&a, "/x", O_WRONLY | O_CREAT | O_EXCL, 0600) == 0);
	CHECK_EQ(qd_open(&qd, "/x", O_WRONLY | O_CREAT | O_EXCL, 0600),
		 -EEXIST);
	CHECK_EQ(qd, -1);
	/* The wait inside took the token: nothing is left to reap. */
	CHECK_EQ(stats().cqes_reaped, 4);
}

static void without_the_feature_every_call_is_eopnotsupp(void)
{
	struct qd_sga a;
	struct fake_stats fs;
	qd_token_t qt;
	int qd = -1;

	fake_cfg.features = QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS | QD_FEAT_REGIONS |
			    QD_FEAT_RINGS | QD_FEAT_SKIP_SUCCESS |
			    QD_FEAT_MULTISHOT;
	a = qd_sgaalloc(4096);
	REQUIRE(a.numsegs == 1);
	CHECK_EQ(qd_open(&qd, "/f", O_RDWR | O_CREAT, 0600), -EOPNOTSUPP);
	CHECK_EQ(qd_pushat(&qt, 3, &a, 0), -EOPNOTSUPP);
	CHECK_EQ(qd_popat(&qt, 3, &a, 0), -EOPNOTSUPP);
	CHECK_EQ(qd_popat(&qt, 3, NULL, 0), -EOPNOTSUPP);
	CHECK_EQ(qd_sync(&qt, 3, 0), -EOPNOTSUPP);
	CHECK_EQ(qd_submit(), 0);
	CHECK_EQ(stats().sqes_submitted, 0);
	fake_stats(&fs);
	CHECK_EQ(fs.opens, 0);
	CHECK_EQ(qd, -1);
}

static void push_and_pop_move_the_queue_offsets(void)
{
	struct qd_result qr;
	struct qd_sga again;
	qd_token_t qt;
	void *popbuf;
	int qd;

	REQUIRE(qd_open(&qd, "/log", O_RDWR | O_CREAT, 0600) == 0);
	CHECK_EQ(push_str(qd, "hello ", -1), 6);
	CHECK_EQ(push_str(qd, "world", -1), 5);
	CHECK(file_is("/log", "hello world"));
	/* qd_pop() brings a QD_FILE_POP_SIZE (64 KiB) buffer: all of it. */
	REQUIRE(qd_pop(&qt, qd) == 0);
	CHECK_EQ(wait_res(qt, &qr), 11);
	CHECK_EQ(qr.opcode, QD_OPC_POP);
	CHECK_EQ(qr.qd, qd);
	REQUIRE(qr.value.sga.numsegs == 1);
	CHECK_EQ(qr.value.sga.segs[0].len, 11);
	CHECK(!memcmp(qr.value.sga.segs[0].buf, "hello world", 11));
	CHECK_EQ((uintptr_t)qr.value.sga.segs[0].buf % 4096, 0);
	CHECK_EQ(last_sqe().nsegs, 1);
	CHECK_EQ(last_sqe().op_flags, 0);
	popbuf = qr.value.sga.segs[0].buf;
	CHECK_EQ(qd_sgafree(&qr.value.sga), 0);
	/*
	 * End of file: 0 bytes, no segments, and libqd freed its buffer:
	 * the same one (its class's free buffers are a stack) comes next.
	 */
	REQUIRE(qd_pop(&qt, qd) == 0);
	CHECK_EQ(wait_res(qt, &qr), 0);
	CHECK_EQ(qr.value.sga.numsegs, 0);
	again = qd_sgaalloc(65536);
	CHECK(again.segs[0].buf == popbuf);
	CHECK_EQ(qd_sgafree(&again), 0);
	CHECK_EQ(qd_close(qd), 0);
}

static void pop_size_comes_from_the_environment(void)
{
	const char *want[] = { "hell", "o wo", "rld", "" };
	struct qd_result qr;
	qd_token_t qt;
	int qd, i;

	setenv("QD_FILE_POP_SIZE", "4", 1);
	REQUIRE(qd_open(&qd, "/small", O_RDWR | O_CREAT | O_TRUNC, 0600) == 0);
	CHECK_EQ(push_str(qd, "hello world", -1), 11);
	for (i = 0; i < 4; i++) {
		REQUIRE(qd_pop(&qt, qd) == 0);
		CHECK_EQ(wait_res(qt, &qr), (int64_t)strlen(want[i]));
		if (qr.ret > 0) {
			CHECK_EQ(qr.value.sga.segs[0].len, strlen(want[i]));
			CHECK(!memcmp(qr.value.sga.segs[0].buf, want[i],
				      strlen(want[i])));
			qd_sgafree(&qr.value.sga);
		}
	}
}

static void bad_pop_size_is_einval(void)
{
	qd_token_t qt;
	int qd;

	setenv("QD_FILE_POP_SIZE", "64k", 1);
	REQUIRE(qd_open(&qd, "/f", O_RDWR | O_CREAT, 0600) == 0);
	CHECK_EQ(qd_pop(&qt, qd), -EINVAL);
	CHECK_EQ(qd_popat(&qt, qd, NULL, 0), -EINVAL);
	CHECK_EQ(stats().sqes_submitted, 1);	/* the OPEN */
}

static void positional_forms_leave_the_offsets_alone(void)
{
	struct qd_sga buf = qd_sgaalloc(8);
	struct qd_result qr;
	struct qd_sqe sqe;
	qd_token_t qt;
	uint64_t size;
	const char *data;
	int qd;

	REQUIRE(qd_open(&qd, "/rand", O_RDWR | O_CREAT, 0600) == 0);
	CHECK_EQ(push_str(qd, "X", 4096), 1);
	sqe = last_sqe();
	CHECK_EQ(sqe.opcode, QD_OP_PUSH);
	CHECK_EQ(sqe.op_flags, QD_PUSH_AT);
	CHECK_EQ(sqe.off, 4096);
	/* The write offset is still 0. */
	CHECK_EQ(push_str(qd, "abc", -1), 3);
	data = fake_file("/rand", &size);
	REQUIRE(data && size == 4097);
	CHECK(!memcmp(data, "abc\0\0", 5) && data[4096] == 'X');
	/* A buffer from libqd at 4096, then the caller's at 1. */
	REQUIRE(qd_popat(&qt, qd, NULL, 4096) == 0);
	CHECK_EQ(wait_res(qt, &qr), 1);
	sqe = last_sqe();
	CHECK_EQ(sqe.op_flags, QD_POP_AT);
	CHECK_EQ(sqe.off, 4096);
	CHECK_EQ(sqe.nsegs, 1);
	CHECK(qr.value.sga.segs[0].buf != buf.segs[0].buf);
	CHECK_EQ(*(char *)qr.value.sga.segs[0].buf, 'X');
	CHECK_EQ(qd_sgafree(&qr.value.sga), 0);
	REQUIRE(qd_popat(&qt, qd, &buf, 1) == 0);
	CHECK_EQ(wait_res(qt, &qr), 8);
	CHECK(qr.value.sga.segs[0].buf == buf.segs[0].buf);
	CHECK(!memcmp(buf.segs[0].buf, "bc\0\0\0\0\0\0", 8));
	/* The read offset is still 0 too. */
	REQUIRE(qd_pop(&qt, qd) == 0);
	CHECK_EQ(wait_res(qt, &qr), 4097);
	CHECK(!memcmp(qr.value.sga.segs[0].buf, "abc", 3));
	qd_sgafree(&qr.value.sga);
	CHECK_EQ(qd_sgafree(&buf), 0);
	CHECK_EQ(qd_pushat(NULL, qd, &buf, 0), -EINVAL);
	CHECK_EQ(qd_popat(NULL, qd, NULL, 0), -EINVAL);
	CHECK_EQ(qd_pushat(&qt, qd, &buf, (uint64_t)INT64_MAX + 1), -EINVAL);
	CHECK_EQ(qd_popat(&qt, qd, NULL, (uint64_t)INT64_MAX + 1), -EINVAL);
	CHECK_EQ(qd_pushat(&qt, qd, NULL, 0), -EINVAL);
}

static void pop_into_fills_the_callers_segments_in_order(void)
{
	struct qd_sga a = qd_sgaalloc(3), b = qd_sgaalloc(3), buf;
	struct qd_result qr;
	qd_token_t qt;
	int qd;

	memset(&buf, 0, sizeof(buf));
	buf.numsegs = 2;
	buf.segs[0] = a.segs[0];
	buf.segs[1] = b.segs[0];
	REQUIRE(qd_open(&qd, "/seg", O_RDWR | O_CREAT, 0600) == 0);
	CHECK_EQ(push_str(qd, "abcde", -1), 5);
	REQUIRE(qd_pop_into(&qt, qd, &buf) == 0);
	CHECK_EQ(wait_res(qt, &qr), 5);
	REQUIRE(qr.value.sga.numsegs == 2);
	CHECK(qr.value.sga.segs[0].buf == a.segs[0].buf);
	CHECK_EQ(qr.value.sga.segs[0].len, 3);
	CHECK(qr.value.sga.segs[1].buf == b.segs[0].buf);
	CHECK_EQ(qr.value.sga.segs[1].len, 2);
	CHECK(!memcmp(a.segs[0].buf, "abc", 3) &&
	      !memcmp(b.segs[0].buf, "de", 2));
	/* At end of file the caller's buffer stays the caller's. */
	REQUIRE(qd_pop_into(&qt, qd, &buf) == 0);
	CHECK_EQ(wait_res(qt, &qr), 0);
	CHECK_EQ(qd_sgafree(&a), 0);
	CHECK_EQ(qd_sgafree(&b), 0);
}

static void failed_pop_frees_the_buffer_libqd_brought(void)
{
	struct qd_sga again;
	struct qd_result qr;
	qd_token_t qt;
	int qd;

	struct qd_sga probe = qd_sgaalloc(65536);
	void *p = probe.segs[0].buf;

	/* p tops its class's stack of free buffers: each pop takes it. */
	REQUIRE(probe.numsegs == 1);
	REQUIRE(qd_sgafree(&probe) == 0);
	REQUIRE(qd_open(&qd, "/wo", O_WRONLY | O_CREAT, 0600) == 0);
	REQUIRE(qd_pop(&qt, qd) == 0);
	CHECK_EQ(wait_res(qt, &qr), -EBADF);
	CHECK_EQ(qr.value.sga.numsegs, 0);
	REQUIRE(qd_popat(&qt, qd, NULL, 0) == 0);
	CHECK_EQ(wait_res(qt, &qr), -EBADF);
	again = qd_sgaalloc(65536);
	CHECK(again.segs[0].buf == p);
	CHECK_EQ(qd_sgafree(&again), 0);
}

static void sync_is_an_operation(void)
{
	struct qd_result qr;
	struct fake_stats fs;
	qd_token_t qt;
	int qd;

	REQUIRE(qd_open(&qd, "/s", O_RDWR | O_CREAT, 0600) == 0);
	REQUIRE(qd_sync(&qt, qd, QD_SYNC_DATASYNC) == 0);
	CHECK_EQ(wait_res(qt, &qr), 0);
	CHECK_EQ(qr.opcode, QD_OPC_SYNC);
	CHECK_EQ(qr.qd, qd);
	CHECK_EQ(qr.value.sga.numsegs, 0);
	CHECK_EQ(last_sqe().opcode, QD_OP_SYNC);
	CHECK_EQ(last_sqe().op_flags, QD_SYNC_DATASYNC);
	REQUIRE(qd_sync(&qt, qd, 0) == 0);
	CHECK_EQ(wait_res(qt, &qr), 0);
	CHECK_EQ(last_sqe().op_flags, 0);
	fake_stats(&fs);
	CHECK_EQ(fs.syncs, 2);
	CHECK_EQ(qd_sync(NULL, qd, 0), -EINVAL);
	CHECK_EQ(qd_sync(&qt, qd, 4), -EINVAL);
	CHECK_EQ(qd_sync(&qt, qd, ~0u), -EINVAL);
	/* On a memory queue the kernel refuses it. */
	REQUIRE(qd_queue(&qd) == 0);
	REQUIRE(qd_sync(&qt, qd, 0) == 0);
	CHECK(wait_res(qt, NULL) < 0);
}

static void forget_and_multishot_are_refused_until_close(void)
{
	struct qd_sga a = sga_str("x");
	qd_token_t qt;
	int qd, q;

	REQUIRE(qd_open(&qd, "/r", O_RDWR | O_CREAT, 0600) == 0);
	CHECK_EQ(qd_push_forget(qd, &a), -EOPNOTSUPP);
	CHECK_EQ(qd_pop_multi(&qt, qd), -EOPNOTSUPP);
	CHECK_EQ(qd_close(qd), 0);
	/* The number comes back as a memory queue: no longer a file. */
	REQUIRE(qd_queue(&q) == 0);
	REQUIRE(q == qd);
	CHECK_EQ(qd_push_forget(q, &a), 0);
	REQUIRE(qd_pop(&qt, q) == 0);
	CHECK_EQ(wait_res(qt, NULL), 2);
	CHECK_EQ(last_sqe().nsegs, 0);	/* no buffer brought */
}

static void open_under_sqpoll_enters_itself(void)
{
	struct qd_sga a = sga_str("m");
	struct qd_stats before;
	struct qd_result qr;
	qd_token_t qt;
	int mq, qd;

	setenv("QD_SQPOLL", "10", 1);
	REQUIRE(qd_queue(&mq) == 0);
	REQUIRE(stats().features & QD_FEAT_SQPOLL);
	/* Queued first, still in the SQ: the open's enter takes both. */
	REQUIRE(qd_push(&qt, mq, &a) == 0);
	before = stats();
	REQUIRE(qd_open(&qd, "/p", O_RDWR | O_CREAT, 0600) == 0);
	CHECK_EQ(stats().enters - before.enters, 1);
	CHECK_EQ(stats().enter_waits - before.enter_waits, 0);
	CHECK_EQ(stats().sqes_submitted - before.sqes_submitted, 2);
	CHECK_EQ(qd_wait(&qr, qt, &zero_ts), 0);
	CHECK_EQ(qr.ret, 2);
	CHECK_EQ(push_str(qd, "ok", -1), 2);
	CHECK(file_is("/p", "ok"));
}

static void *open_push_pop(void *arg)
{
	char path[16], data[48];
	struct qd_result qr;
	qd_token_t qt;
	long ok = 0;
	int qd;
	unsigned int i;

	snprintf(path, sizeof(path), "/t%ld", (long)(uintptr_t)arg);
	if (qd_open(&qd, path, O_RDWR | O_CREAT, 0600))
		return (void *)0;
	for (i = 0; i < 20; i++) {
		snprintf(data, sizeof(data), "%s.%02d", path, i);
		if (push_str(qd, data, -1) != (int64_t)strlen(data))
			return (void *)0;
	}
	for (i = 0; i < 20; i++) {
		snprintf(data, sizeof(data), "%s.%02d", path, i);
		/* A 64 KiB buffer: the rest of the file from there. */
		if (qd_popat(&qt, qd, NULL, i * strlen(data)) ||
		    wait_res(qt, &qr) != (int64_t)((20 - i) * strlen(data)))
			return (void *)0;
		ok += !memcmp(qr.value.sga.segs[0].buf, data, strlen(data));
		qd_sgafree(&qr.value.sga);
	}
	return (void *)(uintptr_t)(ok == 20 && !qd_close(qd));
}

static void threads_open_their_own_files(void)
{
	pthread_t t[4];
	void *ret;
	long i, good = 0;

	for (i = 0; i < 4; i++)
		REQUIRE(pthread_create(&t[i], NULL, open_push_pop,
				       (void *)i) == 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], &ret);
		good += ret != NULL;
	}
	CHECK_EQ(good, 4);
}

static void sgaalloc_aligns_large_buffers_to_4096(void)
{
	static const size_t sizes[] = { 4096, 4097, 6000, 8192, 12288, 65536,
					100000, 1 << 20, 3 << 20 };
	struct qd_sga big[9][3], small[9];
	int bad = 0, i, j;

	for (i = 0; i < 9; i++) {
		small[i] = qd_sgaalloc(64 + (size_t)i * 100);
		REQUIRE(small[i].numsegs == 1);
		for (j = 0; j < 3; j++) {
			big[i][j] = qd_sgaalloc(sizes[i]);
			REQUIRE(big[i][j].numsegs == 1);
			bad += (uintptr_t)big[i][j].segs[0].buf % 4096 != 0;
		}
	}
	CHECK_EQ(bad, 0);
	for (i = 0; i < 9; i++) {
		qd_sgafree(&small[i]);
		for (j = 0; j < 3; j++)
			CHECK_EQ(qd_sgafree(&big[i][j]), 0);
	}
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "file";
	FRUN(open_checks_arguments_before_any_system_call);
	FRUN(open_is_one_sqe_and_one_enter);
	FRUN(open_errors_come_from_the_kernel);
	FRUN(without_the_feature_every_call_is_eopnotsupp);
	FRUN(push_and_pop_move_the_queue_offsets);
	FRUN(pop_size_comes_from_the_environment);
	FRUN(bad_pop_size_is_einval);
	FRUN(positional_forms_leave_the_offsets_alone);
	FRUN(pop_into_fills_the_callers_segments_in_order);
	FRUN(failed_pop_frees_the_buffer_libqd_brought);
	FRUN(sync_is_an_operation);
	FRUN(forget_and_multishot_are_refused_until_close);
	FRUN(open_under_sqpoll_enters_itself);
	FRUN(threads_open_their_own_files);
	FRUN(sgaalloc_aligns_large_buffers_to_4096);
	return tap_done();
}
