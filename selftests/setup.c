// SPDX-License-Identifier: GPL-2.0
/*
 * setup: QD_IOC_SETUP, the ring mappings and the QD_IOC_ENTER argument
 * checks, through the raw ABI.
 */
#include "qd_raw.h"
#include "harness.h"

FIXTURE(setup) {
	int fd;
};

FIXTURE_SETUP(setup)
{
	self->fd = qd_raw_open();
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", QD_DEVICE_PATH, strerror(-self->fd));
}

FIXTURE_TEARDOWN(setup)
{
	if (self->fd >= 0)
		close(self->fd);
}

static int setup_sizes(int fd, unsigned int sq, unsigned int cq)
{
	struct qd_params p = { .sq_entries = sq, .cq_entries = cq };

	return qd_raw_setup(fd, &p);
}

TEST_F(setup, valid_setup_returns_features_sizes_and_offsets)
{
	struct qd_params p = { .sq_entries = 8 };
	const __u32 feats = QD_FEAT_MEMQ | QD_FEAT_CQ_ELEMS |
			    QD_FEAT_NOOVERFLOW_LOSS | QD_FEAT_REGIONS |
			    QD_FEAT_NOP_IRQ | QD_FEAT_ELEM_LIMIT;

	ASSERT_EQ(0, qd_raw_setup(self->fd, &p));
	EXPECT_EQ(8u, p.sq_entries);
	EXPECT_EQ(16u, p.cq_entries);	/* 0 means 2 * sq_entries */
	EXPECT_EQ(feats, p.features & feats);
	EXPECT_LT(0u, p.max_inflight);
	EXPECT_LT(0u, p.max_queued);

	/* every SQ field and the SQE array inside the SQ mapping */
	EXPECT_GE(p.sq_ring_bytes, p.sq_off.head + 4);
	EXPECT_GE(p.sq_ring_bytes, p.sq_off.tail + 4);
	EXPECT_GE(p.sq_ring_bytes, p.sq_off.ring_mask + 4);
	EXPECT_GE(p.sq_ring_bytes, p.sq_off.ring_entries + 4);
	EXPECT_GE(p.sq_ring_bytes, p.sq_off.flags + 4);
	EXPECT_GE(p.sq_ring_bytes, p.sq_off.sqes + 8 * sizeof(struct qd_sqe));
	EXPECT_EQ(0u, p.sq_off.sqes % 8);
	EXPECT_NE(p.sq_off.head, p.sq_off.tail);

	/* every CQ field, the CQE array and the element array inside the CQ mapping */
	EXPECT_GE(p.cq_ring_bytes, p.cq_off.head + 4);
	EXPECT_GE(p.cq_ring_bytes, p.cq_off.tail + 4);
	EXPECT_GE(p.cq_ring_bytes, p.cq_off.ring_mask + 4);
	EXPECT_GE(p.cq_ring_bytes, p.cq_off.ring_entries + 4);
	EXPECT_GE(p.cq_ring_bytes, p.cq_off.flags + 4);
	EXPECT_GE(p.cq_ring_bytes, p.cq_off.overflow + 4);
	EXPECT_GE(p.cq_ring_bytes, p.cq_off.cqes + 16 * sizeof(struct qd_cqe));
	EXPECT_GE(p.cq_ring_bytes, p.cq_off.elems + 16 * sizeof(struct qd_elem));
	EXPECT_EQ(0u, p.cq_off.cqes % 8);
	EXPECT_EQ(0u, p.cq_off.elems % 8);
	/* the two arrays must not overlap */
	EXPECT_TRUE(p.cq_off.cqes + 16 * sizeof(struct qd_cqe) <= p.cq_off.elems ||
		    p.cq_off.elems + 16 * sizeof(struct qd_elem) <= p.cq_off.cqes);
}

TEST_F(setup, mapped_rings_show_geometry_and_empty_indices)
{
	struct qd_raw r = { .fd = self->fd };

	r.p.sq_entries = 4;
	r.p.cq_entries = 32;
	ASSERT_EQ(0, qd_raw_setup(self->fd, &r.p));
	EXPECT_EQ(32u, r.p.cq_entries);
	ASSERT_EQ(0, qd_raw_map(&r));
	EXPECT_EQ(4u, r.sq_entries);
	EXPECT_EQ(3u, r.sq_mask);
	EXPECT_EQ(32u, r.cq_entries);
	EXPECT_EQ(31u, r.cq_mask);
	EXPECT_EQ(0u, *r.sq_head);
	EXPECT_EQ(0u, *r.sq_tail);
	EXPECT_EQ(0u, *r.cq_head);
	EXPECT_EQ(0u, *r.cq_tail);
	EXPECT_EQ(0u, *r.cq_flags);
	EXPECT_EQ(0u, *r.cq_overflow);
	qd_raw_unmap(&r);
}

TEST_F(setup, smallest_and_largest_sizes_are_accepted)
{
	int fd2;

	EXPECT_EQ(0, setup_sizes(self->fd, 1, 0));
	fd2 = qd_raw_open();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, setup_sizes(fd2, QD_MAX_SQ_ENTRIES, QD_MAX_CQ_ENTRIES));
	close(fd2);
	fd2 = qd_raw_open();
	ASSERT_LE(0, fd2);
	/* cq == sq is allowed */
	EXPECT_EQ(0, setup_sizes(fd2, 64, 64));
	close(fd2);
}

TEST_F(setup, sq_size_zero_is_einval)
{
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 0, 0));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 0, 16));
}

TEST_F(setup, sq_size_not_power_of_two_is_einval)
{
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 3, 0));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 6, 16));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 1000, 0));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, QD_MAX_SQ_ENTRIES - 1, 0));
}

TEST_F(setup, sq_size_above_max_is_einval)
{
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, QD_MAX_SQ_ENTRIES * 2, 0));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, QD_MAX_SQ_ENTRIES * 2, QD_MAX_CQ_ENTRIES));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 1u << 31, 0));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 0xffffffffu, 0));
}

TEST_F(setup, cq_size_not_power_of_two_is_einval)
{
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 4, 12));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 4, 5));
}

TEST_F(setup, cq_size_above_max_is_einval)
{
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 4, QD_MAX_CQ_ENTRIES * 2));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 4, 1u << 31));
}

TEST_F(setup, cq_smaller_than_sq_is_einval)
{
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 8, 4));
	EXPECT_EQ(-EINVAL, setup_sizes(self->fd, 2, 1));
}

TEST_F(setup, nonzero_flags_is_einval)
{
	/* the first bit past QD_SETUP_SQPOLL, and the top one */
	struct qd_params p = { .sq_entries = 8, .flags = 1u << 1 };

	EXPECT_EQ(-EINVAL, qd_raw_setup(self->fd, &p));
	p.flags = 0x80000000u;
	EXPECT_EQ(-EINVAL, qd_raw_setup(self->fd, &p));
}

TEST_F(setup, nonzero_resv_is_einval)
{
	unsigned int i;

	for (i = 0; i < sizeof(((struct qd_params *)0)->resv) / sizeof(__u32); i++) {
		struct qd_params p = { .sq_entries = 8 };

		p.resv[i] = 1;
		EXPECT_EQ(-EINVAL, qd_raw_setup(self->fd, &p)) TH_LOG("resv[%u]", i);
	}
}

/*
 * sq_off and cq_off are outputs, resv included: whatever the caller left
 * in them, QD_IOC_SETUP returns the reserved words zeroed.
 */
TEST_F(setup, ring_offset_resv_words_come_back_zero)
{
	struct qd_params p = { .sq_entries = 8 };
	unsigned int i;

	memset(&p.sq_off, 0xa5, sizeof(p.sq_off));
	memset(&p.cq_off, 0x5a, sizeof(p.cq_off));
	ASSERT_EQ(0, qd_raw_setup(self->fd, &p));
	for (i = 0; i < sizeof(p.sq_off.resv) / sizeof(p.sq_off.resv[0]); i++)
		EXPECT_EQ(0u, p.sq_off.resv[i]) TH_LOG("sq_off.resv[%u]", i);
	for (i = 0; i < sizeof(p.cq_off.resv) / sizeof(p.cq_off.resv[0]); i++)
		EXPECT_EQ(0u, p.cq_off.resv[i]) TH_LOG("cq_off.resv[%u]", i);
	/* and the offsets themselves were filled in */
	EXPECT_NE(p.sq_off.head, p.sq_off.tail);
	EXPECT_NE(0xa5a5a5a5u, p.sq_off.sqes);
	EXPECT_NE(0x5a5a5a5au, p.cq_off.cqes);
}

/*
 * The ioctl magic is 0xDE (0xCD belongs to another subsystem in
 * Documentation/userspace-api/ioctl/ioctl-number.rst): the old numbers are
 * unknown commands.
 */
TEST_F(setup, ioctl_magic_is_0xde_and_the_old_0xcd_numbers_are_enotty)
{
	struct qd_params p = { .sq_entries = 8 };
	struct qd_enter e = { 0 };
	struct qd_queue_create q = { 0 };
	__s32 qd = 0;

	EXPECT_EQ(0xDE, QD_IOC_MAGIC);
	EXPECT_EQ(0xDE, (int)_IOC_TYPE(QD_IOC_SETUP));
	EXPECT_EQ(0xDE, (int)_IOC_TYPE(QD_IOC_ENTER));
	EXPECT_EQ(0xDE, (int)_IOC_TYPE(QD_IOC_CLOSE));
	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->fd, _IOWR(0xCD, 0x00, struct qd_params), &p));
	ASSERT_EQ(0, qd_raw_setup(self->fd, &p));
	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->fd, _IOW(0xCD, 0x01, struct qd_enter), &e));
	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->fd, _IOWR(0xCD, 0x04, struct qd_queue_create), &q));
	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->fd, _IOW(0xCD, 0x05, __s32), &qd));
	/* the new numbers work */
	EXPECT_EQ(0, qd_raw_ioctl(self->fd, QD_IOC_ENTER, &e));
	EXPECT_EQ(0, qd_raw_ioctl(self->fd, QD_IOC_QUEUE, &q));
}

TEST_F(setup, failed_setup_leaves_context_unset)
{
	struct qd_params p = { .sq_entries = 3 };
	void *m = NULL;

	ASSERT_EQ(-EINVAL, qd_raw_setup(self->fd, &p));
	EXPECT_EQ(-ENXIO, qd_raw_mmap(self->fd, 4096, QD_OFF_SQ_RING, &m));
	EXPECT_EQ(0, setup_sizes(self->fd, 8, 0));
}

TEST_F(setup, second_setup_is_ebusy)
{
	ASSERT_EQ(0, setup_sizes(self->fd, 8, 0));
	EXPECT_EQ(-EBUSY, setup_sizes(self->fd, 8, 0));
	EXPECT_EQ(-EBUSY, setup_sizes(self->fd, 16, 64));
}

TEST_F(setup, mmap_before_setup_is_enxio)
{
	void *m = NULL;

	EXPECT_EQ(-ENXIO, qd_raw_mmap(self->fd, 4096, QD_OFF_SQ_RING, &m));
	EXPECT_EQ(-ENXIO, qd_raw_mmap(self->fd, 4096, QD_OFF_CQ_RING, &m));
}

TEST_F(setup, mmap_other_offset_is_einval)
{
	size_t pg = qd_page_size();
	void *m = NULL;

	ASSERT_EQ(0, setup_sizes(self->fd, 8, 0));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->fd, pg, pg, &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->fd, pg, QD_OFF_CQ_RING + pg, &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->fd, pg, QD_OFF_CQ_RING * 2, &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->fd, pg, 0x7ff0000000ULL, &m));
}

TEST_F(setup, mmap_past_ring_end_is_einval)
{
	struct qd_params p = { .sq_entries = 8 };
	size_t pg = qd_page_size();
	size_t sq_len, cq_len;
	void *m = NULL;

	ASSERT_EQ(0, qd_raw_setup(self->fd, &p));
	sq_len = (p.sq_ring_bytes + pg - 1) / pg * pg;
	cq_len = (p.cq_ring_bytes + pg - 1) / pg * pg;
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->fd, sq_len + pg, QD_OFF_SQ_RING, &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->fd, cq_len + pg, QD_OFF_CQ_RING, &m));
	EXPECT_EQ(-EINVAL, qd_raw_mmap(self->fd, 64 << 20, QD_OFF_SQ_RING, &m));
	/* the exact sizes work */
	ASSERT_EQ(0, qd_raw_mmap(self->fd, p.sq_ring_bytes, QD_OFF_SQ_RING, &m));
	munmap(m, p.sq_ring_bytes);
	ASSERT_EQ(0, qd_raw_mmap(self->fd, p.cq_ring_bytes, QD_OFF_CQ_RING, &m));
	munmap(m, p.cq_ring_bytes);
}

TEST_F(setup, enter_before_setup_is_enxio)
{
	struct qd_enter e = { 0 };

	EXPECT_EQ(-ENXIO, qd_raw_ioctl(self->fd, QD_IOC_ENTER, &e));
	e.to_submit = 1;
	EXPECT_EQ(-ENXIO, qd_raw_ioctl(self->fd, QD_IOC_ENTER, &e));
}

FIXTURE(enter) {
	struct qd_raw r;
};

FIXTURE_SETUP(enter)
{
	ASSERT_EQ(0, qd_raw_init(&self->r, 4, 8));
}

FIXTURE_TEARDOWN(enter)
{
	qd_raw_exit(&self->r);
}

static int enter_raw(struct qd_raw *r, struct qd_enter *e)
{
	return qd_raw_ioctl(r->fd, QD_IOC_ENTER, e);
}

TEST_F(enter, unknown_flags_are_einval)
{
	/* the first bit past QD_ENTER_SQ_WAKEUP, and the top one */
	struct qd_enter e = { .flags = 1u << 6 };

	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
	e.flags = QD_RAW_WAIT | (1u << 31);
	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
}

TEST_F(enter, nonzero_resv_is_einval)
{
	struct qd_enter e = { .resv1 = 1 };

	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
	e.resv1 = 0x80000000u;
	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
	e.resv1 = 0;
	e.resv = 1;
	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
	e.resv = 1ULL << 63;
	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
	e.resv = 0;
	EXPECT_EQ(0, enter_raw(&self->r, &e));
}

TEST_F(enter, negative_timeout_is_einval)
{
	struct qd_enter e = {
		.min_complete = 1, .flags = QD_RAW_WAIT, .timeout_ns = -1,
	};

	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
	e.timeout_ns = INT64_MIN;
	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
}

TEST_F(enter, min_complete_above_cq_entries_is_einval)
{
	struct qd_enter e = {
		.min_complete = 9, .flags = QD_RAW_WAIT, .timeout_ns = 10 * QD_RAW_MS,
	};

	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
	e.flags = QD_ENTER_GETEVENTS;
	e.min_complete = 0xffffffffu;
	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
}

TEST_F(enter, invalid_enter_consumes_nothing)
{
	struct qd_sqe nop = qd_sqe_nop(1);
	struct qd_enter e = { .to_submit = 1, .resv1 = 1 };

	ASSERT_EQ(0, qd_raw_queue_sqe(&self->r, &nop));
	EXPECT_EQ(-EINVAL, enter_raw(&self->r, &e));
	EXPECT_EQ(0u, *self->r.sq_head);
	EXPECT_EQ(0u, qd_raw_cq_ready(&self->r));
}

TEST_F(enter, corrupt_sq_tail_is_einval)
{
	struct qd_raw *r = &self->r;

	/* tail - head > entries: the kernel must not trust it */
	qd_store_release(r->sq_tail, *r->sq_head + r->sq_entries + 1);
	EXPECT_EQ(-EINVAL, qd_raw_enter(r, 1, 0, 0, 0));
	EXPECT_EQ(-EINVAL, qd_raw_enter(r, r->sq_entries, 0, 0, 0));
	qd_store_release(r->sq_tail, *r->sq_head - 1);
	EXPECT_EQ(-EINVAL, qd_raw_enter(r, 1, 0, 0, 0));
	EXPECT_EQ(0u, qd_raw_cq_ready(r));
	/* a full SQ (tail - head == entries) is fine */
	qd_store_release(r->sq_tail, *r->sq_head);
	for (unsigned int i = 0; i < r->sq_entries; i++) {
		struct qd_sqe nop = qd_sqe_nop(i);

		ASSERT_EQ(0, qd_raw_queue_sqe(r, &nop));
	}
	EXPECT_EQ((int)r->sq_entries, qd_raw_enter(r, r->sq_entries, 0, 0, 0));
}

TEST_F(enter, returns_number_of_sqes_consumed)
{
	struct qd_raw *r = &self->r;
	struct qd_cqe cqe;
	int i;

	for (i = 0; i < 3; i++) {
		struct qd_sqe nop = qd_sqe_nop(100 + i);

		ASSERT_EQ(0, qd_raw_queue_sqe(r, &nop));
	}
	/* at most to_submit */
	EXPECT_EQ(2, qd_raw_enter(r, 2, 0, 0, 0));
	EXPECT_EQ(2u, *r->sq_head);
	/* no more than there are */
	EXPECT_EQ(1, qd_raw_enter(r, 4, 0, 0, 0));
	EXPECT_EQ(3u, *r->sq_head);
	EXPECT_EQ(0, qd_raw_enter(r, 4, 0, 0, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, qd_raw_wait_cqe(r, &cqe, NULL, 1000 * QD_RAW_MS));
		EXPECT_EQ(100u + i, cqe.user_data);
	}
}

TEST_F(enter, getevents_waits_for_min_complete)
{
	struct qd_raw *r = &self->r;
	int i;

	for (i = 0; i < 3; i++) {
		struct qd_sqe nop = qd_sqe_nop(i);

		ASSERT_EQ(0, qd_raw_queue_sqe(r, &nop));
	}
	EXPECT_EQ(3, qd_raw_enter(r, 3, 3, QD_ENTER_GETEVENTS, 0));
	EXPECT_EQ(3u, qd_raw_cq_ready(r));
	/* already satisfied: returns at once */
	EXPECT_EQ(0, qd_raw_enter(r, 0, 2, QD_RAW_WAIT, 1000 * QD_RAW_MS));
}

TEST_F(enter, unknown_ioctl_is_enotty)
{
	int v = 0;

	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->r.fd, _IO(QD_IOC_MAGIC, 0x7f), &v));
	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->r.fd, _IOW(QD_IOC_MAGIC, 0x06, int), &v));
	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->r.fd, _IO('T', 0x01), &v));
	/* a known number with the wrong size is another command */
	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->r.fd, _IOW(QD_IOC_MAGIC, 0x01, int), &v));
}

TEST_F(setup, unknown_ioctl_before_setup_is_enotty)
{
	int v = 0;

	EXPECT_EQ(-ENOTTY, qd_raw_ioctl(self->fd, _IO(QD_IOC_MAGIC, 0x7f), &v));
}

TEST_HARNESS_MAIN
