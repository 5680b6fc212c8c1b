// SPDX-License-Identifier: MIT
/* Deadline math for qd_wait*() timeouts. */
#include "../src/deadline.h"
#include "tap.h"

static void null_is_forever(void)
{
	int64_t at = 0;

	CHECK_EQ(qd_deadline(&at, NULL, 123), 0);
	CHECK(at == QD_FOREVER);
	CHECK(qd_remaining(at, INT64_MAX - 1) == QD_FOREVER);
}

static void zero_is_now(void)
{
	struct timespec ts = { 0, 0 };
	int64_t at;

	CHECK_EQ(qd_deadline(&at, &ts, 5000), 0);
	CHECK_EQ(at, 5000);
	CHECK_EQ(qd_remaining(at, 5000), 0);
	CHECK_EQ(qd_remaining(at, 6000), 0);
}

static void relative_deadline(void)
{
	struct timespec ts = { 2, 500 };
	int64_t at;

	CHECK_EQ(qd_deadline(&at, &ts, 1000), 0);
	CHECK_EQ(at, 2 * QD_NSEC + 1500);
	CHECK_EQ(qd_remaining(at, 1000), 2 * QD_NSEC + 500);
	CHECK_EQ(qd_remaining(at, at - 1), 1);
	CHECK_EQ(qd_remaining(at, at + 1), 0);
}

static void huge_saturates(void)
{
	struct timespec ts = { INT64_MAX, 999999999 };
	int64_t at;

	CHECK_EQ(qd_deadline(&at, &ts, 1000), 0);
	CHECK(at == QD_FOREVER);
	ts.tv_sec = INT64_MAX / QD_NSEC - 1;
	CHECK_EQ(qd_deadline(&at, &ts, INT64_MAX / 2), 0);
	CHECK(at == QD_FOREVER);
	ts.tv_sec = (INT64_MAX - 10 * QD_NSEC) / QD_NSEC - 1;
	CHECK_EQ(qd_deadline(&at, &ts, 0), 0);
	CHECK(at > 0 && at < QD_FOREVER);
}

static void invalid_timespecs(void)
{
	struct timespec ts = { -1, 0 };
	int64_t at;

	CHECK_EQ(qd_deadline(&at, &ts, 0), -EINVAL);
	ts = (struct timespec){ 0, -1 };
	CHECK_EQ(qd_deadline(&at, &ts, 0), -EINVAL);
	ts = (struct timespec){ 0, QD_NSEC };
	CHECK_EQ(qd_deadline(&at, &ts, 0), -EINVAL);
	ts = (struct timespec){ 0, QD_NSEC - 1 };
	CHECK_EQ(qd_deadline(&at, &ts, 0), 0);
}

static void timespec_roundtrip(void)
{
	struct timespec ts = qd_ns_to_ts(3 * QD_NSEC + 7);

	CHECK(ts.tv_sec == 3 && ts.tv_nsec == 7);
	CHECK(qd_now_ns() > 0);
}

int main(int argc, char **argv)
{
	tap_only = argc > 1 ? argv[1] : NULL;
	tap_group = "time";
	RUN(null_is_forever);
	RUN(zero_is_now);
	RUN(relative_deadline);
	RUN(huge_saturates);
	RUN(invalid_timespecs);
	RUN(timespec_roundtrip);
	return tap_done();
}
