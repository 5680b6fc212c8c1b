/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/*
 * qd: queue descriptors. The ABI between qd.ko (/dev/qd) and user space.
 *
 * One open of /dev/qd is a context. A context has:
 *  - rings: pairs of a submission queue (SQ) of struct qd_sqe and a
 *    completion queue (CQ) of struct qd_cqe, both mmap'd, both power-of-two
 *    sized. Ring 0 comes from QD_IOC_SETUP, more from QD_IOC_RING (libqd
 *    makes one per thread). An operation completes on the ring whose SQ it
 *    was submitted from; queues and regions are shared by all rings;
 *  - registered regions: pinned user memory, named by a region id; every
 *    buffer qd moves is a (region, offset, len) segment inside one;
 *  - queue descriptors (qds): small integers naming queues (memory queues
 *    today; sockets, files, RDMA and derived queues later).
 *
 * Ring protocol (both rings are single-producer, single-consumer):
 *  SQ: user space owns tail, the kernel owns head.
 *      user:   write sqes[tail & mask]; store_release(sq.tail, tail + 1)
 *      kernel: load_acquire(sq.tail); copy the SQE once; store_release(sq.head)
 *  CQ: the kernel owns tail, user space owns head.
 *      kernel: write cqes[tail & mask] (and elems[tail & mask]);
 *              store_release(cq.tail, tail + 1)
 *      user:   load_acquire(cq.tail); read the CQE (and its element);
 *              store_release(cq.head, head + 1)
 *  Slot i of the CQ's element array belongs to CQ slot i: a CQE with
 *  QD_CQE_F_ELEM carries its element (up to QD_SGA_MAX segments) there.
 *
 *  The CQ never drops a completion. When it is full, completions wait in a
 *  kernel overflow list, QD_CQ_F_OVERFLOW is set in cq.flags and cq.overflow
 *  counts them; every QD_IOC_ENTER moves what fits back into the ring.
 *
 * All structures have explicit padding; every resv field must be zero.
 */
#ifndef _UAPI_LINUX_QD_H
#define _UAPI_LINUX_QD_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/const.h>

#define QD_DEVICE_PATH		"/dev/qd"

/* Most segments in one element (scatter-gather array). */
#define QD_SGA_MAX		8

/* Ring bounds. Sizes are powers of two; anything else is -EINVAL. */
#define QD_MAX_SQ_ENTRIES	4096
#define QD_MAX_CQ_ENTRIES	16384

/* Memory queue depth bounds (elements held in a queue). */
#define QD_MEMQ_DEFAULT_DEPTH	1024
#define QD_MEMQ_MAX_DEPTH	65536

/* Registered regions: at most this many per context, ids 0..QD_MAX_REGIONS-1. */
#define QD_MAX_REGIONS		256
#define QD_MAX_REGION_BYTES	_BITULL(32)

/* Rings per context, ids 0..QD_MAX_RINGS-1. */
#define QD_MAX_RINGS		256

/*
 * Offsets to pass to mmap(2) on the context's fd: ring 0 at the first two,
 * ring n (0 included) at QD_OFF_RING_SQ(n) and QD_OFF_RING_CQ(n).
 */
#define QD_OFF_SQ_RING		0ULL
#define QD_OFF_CQ_RING		0x10000000ULL
#define QD_OFF_RINGS		0x100000000ULL
#define QD_OFF_RING_STRIDE	0x1000000ULL
#define QD_OFF_RING_SQ(n)	(QD_OFF_RINGS + (__u64)(n) * QD_OFF_RING_STRIDE)
#define QD_OFF_RING_CQ(n)	(QD_OFF_RING_SQ(n) + QD_OFF_RING_STRIDE / 2)
/* A mapped queue's ring (QD_QUEUE_MAPPED): qd_queue_create.map_off. */
#define QD_OFF_QUEUES		0x10000000000ULL
#define QD_OFF_QUEUE_STRIDE	0x1000000ULL
#define QD_OFF_QUEUE(qd)	(QD_OFF_QUEUES + (__u64)(qd) * QD_OFF_QUEUE_STRIDE)

/* One buffer inside a registered region. */
struct qd_seg {
	__u64	offset;		/* byte offset inside the region */
	__u32	len;		/* bytes, > 0 */
	__u16	region;		/* region id from QD_IOC_REGISTER */
	__u16	resv;		/* must be zero */
};

/* An element: what one push carries and one pop yields. */
struct qd_elem {
	struct qd_seg	segs[QD_SGA_MAX];
};

/*
 * Submission queue entry opcodes: table in kmod/opdef.c. An opcode the
 * running module does not know completes with -EINVAL; the count is not
 * part of the ABI.
 */
enum {
	QD_OP_NOP	= 0,	/* completes with res 0 (see QD_NOP_*) */
	QD_OP_PUSH	= 1,	/* qd, addr -> nsegs struct qd_seg; res = bytes */
	QD_OP_POP	= 2,	/* qd [, buffer]; res = bytes, element in the CQ slot */
	QD_OP_CANCEL	= 3,	/* qd, addr = user_data of a pending op on qd */
	QD_OP_WAKE	= 4,	/* qd: a mapped queue changed, serve waiters */
	QD_OP_ACCEPT	= 5,	/* qd: a listening socket; res = the new qd */
	QD_OP_CONNECT	= 6,	/* qd: a socket, addr2/addr_len: the peer */
	QD_OP_PUSHTO	= 7,	/* as PUSH, addr2/addr_len: a datagram's destination */
	QD_OP_PROVIDE	= 8,	/* addr -> nsegs buffers into pool buf_group */
	QD_OP_OPEN	= 9,	/* addr: a path; res = the new qd (storage) */
	QD_OP_SYNC	= 10,	/* qd: a storage queue; fsync, fdatasync, flush */
};

/* Submission queue entry: 64 bytes. */
struct qd_sqe {
	__u8	opcode;		/* QD_OP_* */
	__u8	flags;		/* QD_SQE_F_* */
	__u16	nsegs;		/* PUSH: number of struct qd_seg at addr */
	__s32	qd;		/* target queue descriptor */
	__u64	user_data;	/* echoed in the CQE */
	union {
		__u64	addr;	  /* PUSH: user pointer to struct qd_seg[nsegs] */
		__u64	delay_ns; /* NOP with QD_NOP_HARDIRQ/SOFTIRQ */
	};
	union {
		__u32	op_flags;  /* per opcode; zero where none are defined */
		__u32	nop_flags; /* NOP: QD_NOP_* */
	};
	union {
		__u32	resv0;	  /* must be zero ... */
		__u32	addr_len; /* CONNECT, PUSHTO: bytes of the address at addr2 */
		__u32	buf_group; /* PROVIDE, POP with QD_POP_POOL: the pool */
		__u32	open_flags; /* OPEN: O_* flags of open(2) */
	};
	union {
		__u64	resv[4];  /* must be zero ... */
		struct {
			union {
				/* CONNECT, PUSHTO: user pointer to a sockaddr */
				__u64	addr2;
				/* PUSH, POP with QD_PUSH_AT/QD_POP_AT: byte offset */
				__u64	off;
				/* OPEN: the mode of a created file (O_CREAT) */
				__u64	open_mode;
			};
			__u64	resv2[3];	/* must be zero */
		};
	};
};

/*
 * SQE flags.
 * SKIP_SUCCESS: post no CQE when the operation succeeds (res >= 0); a
 * failure still posts one. For operations whose success carries nothing
 * the submitter needs (a push whose buffers travel with the element, a
 * cancel, a wake); a pop with it is -EINVAL.
 */
#define QD_SQE_F_SKIP_SUCCESS	_BITUL(0)

/*
 * POP op_flags.
 * MULTISHOT: the pop stays pending after delivering an element and
 * delivers the next one as it arrives, each in a CQE with QD_CQE_F_MORE
 * set. It ends with a CQE without QD_CQE_F_MORE: -ECANCELED when the queue
 * closes or a QD_OP_CANCEL names it, or the error that stopped it.
 */
#define QD_POP_MULTISHOT	_BITUL(0)

/*
 * Buffer pools (sockets; Documentation/abi.md, "Buffer pools"). A context
 * has QD_POOL_GROUPS pools of buffers user space provides in advance
 * (QD_OP_PROVIDE: addr -> nsegs struct qd_seg, one buffer each, at most
 * QD_SGA_MAX per SQE, into pool buf_group; res = buffers added, all or
 * none; a failure hands them back in the CQE's element, as a failed push
 * does). A socket POP with QD_POP_POOL (addr zero) holds no buffer while
 * it waits: when bytes arrive the kernel takes buffers from pool
 * buf_group (TCP: as many as the bytes need, up to nsegs, 0 meaning
 * QD_SGA_MAX; UDP: one per datagram; with QD_POP_MULTISHOT, TCP only, a
 * CQE with QD_CQE_F_MORE per chunk until the peer's FIN, an error or a
 * cancel ends it) and the CQE (QD_CQE_F_POOL) names them, trimmed to what
 * they hold; they belong to the popper from then on. While the pool is
 * empty the bytes wait in the socket (TCP's window closes) and the pop
 * stays pending until a PROVIDE refills it. A socket takes from one pool,
 * its first pool pop's: a pool pop naming another is -EINVAL.
 * QD_PROVIDE_RECLAIM (addr and
 * nsegs zero) takes every buffer of the pool back: res = how many, so
 * that their region can be unregistered (which is -EBUSY while a pool
 * holds one of its buffers). A pool holds at most QD_POOL_MAX_BUFS.
 */
#define QD_POP_POOL		_BITUL(1)
#define QD_PROVIDE_RECLAIM	_BITUL(0)
#define QD_POOL_GROUPS		8
#define QD_POOL_MAX_BUFS	65536

/*
 * PUSH and PUSHTO op_flags, for socket qds (a memory queue never copies a
 * push and ignores them); at most one.
 * ZC: send zero-copy from the registered pages whatever the size: the push
 * completes once the network stack has released every page (after the
 * peer's ACK for TCP), not when the bytes are queued. COPY: copy into the
 * socket and complete then, whatever the size. Without either, pushes of
 * at least the module parameter zc_min_bytes go zero-copy, except to peers
 * on a loopback route (module parameter zc_local; see
 * Documentation/design.md, "Send"). Bit 0 stays invalid on a push (it is a
 * pop's QD_POP_MULTISHOT).
 */
#define QD_PUSH_ZC		_BITUL(1)
#define QD_PUSH_COPY		_BITUL(2)

/*
 * Storage queues (Documentation/abi.md, "Storage"). QD_OP_OPEN opens a
 * regular file or a block device: addr points to a NUL-terminated path
 * (at most PATH_MAX bytes with the NUL, else -ENAMETOOLONG), open_flags are
 * open(2)'s (O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND,
 * O_DIRECT, O_DSYNC, O_SYNC, O_NOATIME, O_NOFOLLOW, O_NOCTTY, O_LARGEFILE
 * (implied), O_CLOEXEC ignored; anything else -EINVAL), open_mode the mode
 * O_CREAT gives (umask applies), qd zero. The path is resolved and checked as open(2) would, in the
 * submitting task's root, working directory and mount namespace, with its
 * credentials at submission; a directory is -EISDIR, anything but a regular
 * file or block device -EINVAL. res = the new qd. The SQPOLL poller does
 * not consume an OPEN: it stops at one and leaves it to QD_IOC_ENTER.
 *
 * PUSH writes the element's bytes and POP reads into the buffer it brings
 * (addr/nsegs; a storage pop needs one), at the queue's write or read
 * offset, which advance at submission by the length asked; with
 * QD_PUSH_AT/QD_POP_AT at off instead, leaving the queue's offsets alone.
 * res = bytes moved (a pop: 0 at end of file, short at the end); a pop
 * completes with QD_CQE_F_COPIED and its buffer trimmed to res. With
 * O_DIRECT, off, every segment's length and its address in the region must
 * be multiples of the logical block size (else -EINVAL). Positional forms on
 * anything but a storage queue are -ESPIPE.
 *
 * SYNC: fsync(2) of the queue's file (fdatasync(2) with QD_SYNC_DATASYNC);
 * QD_SYNC_FLUSH (block devices) flushes only the device's volatile write
 * cache, what O_DIRECT pushes need to be durable. It covers the pushes
 * completed before it was submitted; operations in flight are not ordered.
 */
#define QD_PUSH_AT		_BITUL(3)
#define QD_POP_AT		_BITUL(3)
#define QD_SYNC_DATASYNC	_BITUL(0)
#define QD_SYNC_FLUSH		_BITUL(1)

/*
 * NOP variants that complete later from interrupt context: from an hrtimer
 * callback in hardirq (QD_NOP_HARDIRQ) or softirq (QD_NOP_SOFTIRQ) context,
 * delay_ns (at most QD_NOP_MAX_DELAY_NS) after submission. They exercise
 * the completion path the device backends use; at most one flag.
 */
#define QD_NOP_HARDIRQ		_BITUL(0)
#define QD_NOP_SOFTIRQ		_BITUL(1)
#define QD_NOP_MAX_DELAY_NS	1000000000ULL

/* Completion queue entry: 32 bytes. */
struct qd_cqe {
	__u64	user_data;	/* from the SQE */
	__s64	res;		/* bytes moved, 0, or -errno */
	__u32	flags;		/* QD_CQE_F_* */
	__s32	qd;		/* the SQE's qd */
	__u8	opcode;		/* the SQE's opcode */
	__u8	nsegs;		/* QD_CQE_F_ELEM: segments in elems[slot] */
	__u16	resv1;
	__u32	resv2;
};

#define QD_CQE_F_ELEM		_BITUL(0)	/* elems[slot] holds the element */
#define QD_CQE_F_MORE		_BITUL(1)	/* the op stays pending (multishot) */
#define QD_CQE_F_COPIED		_BITUL(2)	/* POP: copied into its buffer */
#define QD_CQE_F_ADDR		_BITUL(3)	/* a struct qd_cqe_addr in elems[slot] */
#define QD_CQE_F_TRUNC		_BITUL(4)	/* POP: the datagram was longer */
#define QD_CQE_F_POOL		_BITUL(5)	/* POP: buffers from its pool */

/*
 * Sockets. A socket address that completes with an operation (the peer of
 * an ACCEPT, the source of a datagram POP) is written into the CQE's
 * element slot, after the segments: a struct qd_cqe_addr at
 * elems[slot].segs[QD_CQE_ADDR_SEG], flagged QD_CQE_F_ADDR. So a datagram
 * pop's buffer has at most QD_CQE_ADDR_SEG segments.
 */
#define QD_CQE_ADDR_SEG		6
#define QD_SOCK_ADDR_MAX	28	/* sizeof(struct sockaddr_in6) */

struct qd_cqe_addr {
	__u32	len;			/* bytes of addr: a sockaddr_in or _in6 */
	__u8	addr[QD_SOCK_ADDR_MAX];
};

/* Ring flags. */
#define QD_CQ_F_OVERFLOW	_BITUL(0)	/* completions wait in the kernel */

/* Byte offsets of the fields inside the SQ ring mapping. */
struct qd_sq_offsets {
	__u32	head;
	__u32	tail;
	__u32	ring_mask;
	__u32	ring_entries;
	__u32	flags;
	__u32	sqes;		/* struct qd_sqe[ring_entries] */
	__u32	resv[2];
};

/* Byte offsets of the fields inside the CQ ring mapping. */
struct qd_cq_offsets {
	__u32	head;
	__u32	tail;
	__u32	ring_mask;
	__u32	ring_entries;
	__u32	flags;		/* QD_CQ_F_* */
	__u32	overflow;	/* completions parked in the overflow list, total */
	__u32	cqes;		/* struct qd_cqe[ring_entries] */
	__u32	elems;		/* struct qd_elem[ring_entries] */
	/*
	 * Completions posted to any ring of the context, a wrapping counter
	 * (kept in ring 0's mapping only; QD_ENTER_CTX_SEQ).
	 */
	__u32	ctx_seq;
	__u32	resv[3];
};

/* Feature bits returned by QD_IOC_SETUP. */
#define QD_FEAT_MEMQ		_BITUL(0)	/* memory queues */
#define QD_FEAT_CQ_ELEMS	_BITUL(1)	/* elements delivered in the CQ */
#define QD_FEAT_NOOVERFLOW_LOSS	_BITUL(2)	/* overflow list, never a drop */
#define QD_FEAT_REGIONS		_BITUL(3)	/* registered regions */
#define QD_FEAT_NOP_IRQ		_BITUL(4)	/* QD_NOP_HARDIRQ, QD_NOP_SOFTIRQ */
#define QD_FEAT_ELEM_LIMIT	_BITUL(5)	/* -ENOBUFS past max_queued */
#define QD_FEAT_RINGS		_BITUL(6)	/* QD_IOC_RING, qd_enter.ring */
#define QD_FEAT_SKIP_SUCCESS	_BITUL(7)	/* QD_SQE_F_SKIP_SUCCESS */
#define QD_FEAT_MULTISHOT	_BITUL(8)	/* QD_POP_MULTISHOT, QD_OP_CANCEL */
#define QD_FEAT_MAPPED_QUEUE	_BITUL(9)	/* QD_QUEUE_MAPPED, QD_OP_WAKE */
#define QD_FEAT_SHARED_QUEUE	_BITUL(10)	/* QD_IOC_QUEUE_EXPORT/IMPORT */
#define QD_FEAT_MQ_SLEEP	_BITUL(11)	/* QD_ENTER_MQ_POP */
#define QD_FEAT_SHARED_MAPPED	_BITUL(12)	/* QD_QUEUE_SHARED, QUEUE_BIND */
#define QD_FEAT_SQPOLL		_BITUL(13)	/* QD_SETUP_SQPOLL */
#define QD_FEAT_SOCKETS		_BITUL(14)	/* QD_IOC_SOCKET and friends */
#define QD_FEAT_POOL		_BITUL(15)	/* QD_OP_PROVIDE, QD_POP_POOL */
#define QD_FEAT_SEND_ZC		_BITUL(16)	/* zero-copy send, QD_PUSH_ZC/COPY */
#define QD_FEAT_STORAGE		_BITUL(17)	/* QD_OP_OPEN, QD_OP_SYNC, *_AT */
#define QD_FEAT_DERIVED		_BITUL(18)	/* QD_IOC_DERIVE */

/*
 * QD_IOC_SETUP: create ring 0, once per context. QD_IOC_RING: create one
 * more ring (after QD_IOC_SETUP), with the same rules for the sizes.
 */
struct qd_params {
	__u32	sq_entries;	/* in: power of two, 1..QD_MAX_SQ_ENTRIES */
	/* in: 0 (= 2 * sq_entries) or a power of two in
	 * sq_entries..QD_MAX_CQ_ENTRIES; out: the size used
	 */
	__u32	cq_entries;
	__u32	flags;		/* in: QD_SETUP_* (QD_IOC_SETUP only) */
	__u32	features;	/* out: QD_FEAT_* */
	__u32	sq_ring_bytes;	/* out: length to mmap at QD_OFF_SQ_RING */
	__u32	cq_ring_bytes;	/* out: length to mmap at QD_OFF_CQ_RING */
	__u32	max_inflight;	/* out: operations the context runs at once */
	__u32	max_queued;	/* out: elements the context may hold at once */
	__u32	ring;		/* out: the ring's id */
	/*
	 * in, QD_SETUP_SQPOLL: milliseconds the poller looks for work before
	 * it sleeps, at most QD_SQPOLL_MAX_IDLE_MS; 0 =
	 * QD_SQPOLL_DEFAULT_IDLE_MS. Must be zero without QD_SETUP_SQPOLL.
	 */
	__u32	sq_idle_ms;
	__u32	resv[2];	/* must be zero */
	struct qd_sq_offsets	sq_off;	/* out */
	struct qd_cq_offsets	cq_off;	/* out */
};

/*
 * QD_SETUP_SQPOLL: a kernel thread of the context (the poller) consumes the
 * SQs of all its rings, so that submitting needs no system call: user space
 * writes SQEs and publishes the tail. After sq_idle_ms without new SQEs the
 * poller sets QD_SQ_F_NEED_WAKEUP in every ring's SQ flags and sleeps; then
 * user space must wake it:
 *	user:   store_release(sq.tail); smp_mb();
 *		if (sq.flags & QD_SQ_F_NEED_WAKEUP)
 *			QD_IOC_ENTER(QD_ENTER_SQ_WAKEUP)
 *	poller: sq.flags = QD_SQ_F_NEED_WAKEUP (every ring); smp_mb();
 *		sleep only if no ring's tail moved since it last looked
 * QD_IOC_ENTER still consumes to_submit SQEs itself (the SQ's consumers are
 * serialised, the order is kept), so a waiter passes what it queued, as
 * without the poller: that takes the SQEs the poller could not admit (at
 * max_inflight). The poller runs with
 * the owner's credentials, memory (mm) and memory cgroup, in the owner's
 * cgroups at its nice value; a new ring (QD_IOC_RING) starts with
 * QD_SQ_F_NEED_WAKEUP set until the poller has seen it.
 */
#define QD_SETUP_SQPOLL		_BITUL(0)
#define QD_SQPOLL_DEFAULT_IDLE_MS	1000
#define QD_SQPOLL_MAX_IDLE_MS	10000

/* SQ ring flags (sq_off.flags), written by the kernel. */
#define QD_SQ_F_NEED_WAKEUP	_BITUL(0)	/* QD_SETUP_SQPOLL: poller asleep */

/*
 * QD_IOC_ENTER: submit SQEs from one ring, optionally wait. At most one of
 * the three wait flags:
 *  GETEVENTS  until min_complete CQEs are in the ring's CQ;
 *  CQ_TAIL    until the ring's CQ tail differs from wait_seq (a value user
 *             space read: no completion posted after it is missed, whoever
 *             reaps it);
 *  CTX_SEQ    until the context's ctx_seq (ring 0's CQ mapping) differs
 *             from wait_seq: a completion on any ring.
 *  MQ_POP     as CQ_TAIL, or until the mapped queue qd has something for
 *             a pop in user space (an element while no pop is parked in
 *             the kernel, or pops parked there: look again), is closed, or
 *             is woken (QD_OP_WAKE, a kernel push into its ring, a close
 *             of a handle). The sleep of a pop that stays in user space:
 *             no operation is made for it. While such sleepers exist the
 *             queue's hdr.waiters has QD_MQ_POP_SLEEPERS, so that a
 *             pusher through the ring sends a QD_OP_WAKE. -EBADF: qd is
 *             not open; -EINVAL: not a mapped queue of this context.
 * QD_ENTER_SQ_WAKEUP, alone or with any of them, wakes the context's
 * poller (QD_SETUP_SQPOLL; -EINVAL without one).
 */
struct qd_enter {
	__u32	to_submit;	/* SQEs to consume from the SQ (at most) */
	__u32	min_complete;	/* QD_ENTER_GETEVENTS: CQEs to wait for */
	__u32	flags;		/* QD_ENTER_* */
	__u32	ring;		/* the ring (0: QD_IOC_SETUP's) */
	__s64	timeout_ns;	/* QD_ENTER_TIMEOUT: relative, >= 0 */
	__u32	wait_seq;	/* QD_ENTER_CQ_TAIL, _CTX_SEQ, _MQ_POP */
	union {
		__s32	qd;	/* QD_ENTER_MQ_POP: the queue */
		__u32	resv1;	/* without it: must be zero */
	};
	__u64	resv;		/* must be zero */
};

#define QD_ENTER_GETEVENTS	_BITUL(0)	/* wait for min_complete CQEs */
#define QD_ENTER_TIMEOUT	_BITUL(1)	/* timeout_ns bounds the wait */
#define QD_ENTER_CQ_TAIL	_BITUL(2)	/* wait for the CQ tail to move */
#define QD_ENTER_CTX_SEQ	_BITUL(3)	/* wait for any ring's completion */
#define QD_ENTER_MQ_POP		_BITUL(4)	/* ... or a mapped queue's element */
#define QD_ENTER_SQ_WAKEUP	_BITUL(5)	/* wake the poller (SQPOLL only) */
#define QD_ENTER_ALL		(QD_ENTER_GETEVENTS | QD_ENTER_TIMEOUT | \
				 QD_ENTER_CQ_TAIL | QD_ENTER_CTX_SEQ | \
				 QD_ENTER_MQ_POP | QD_ENTER_SQ_WAKEUP)

/* QD_IOC_REGISTER: pin [addr, addr + len) and name it with a region id. */
struct qd_region_reg {
	__u64	addr;		/* page aligned */
	__u64	len;		/* multiple of the page size, 1..QD_MAX_REGION_BYTES */
	__u32	flags;		/* must be zero */
	__u32	id;		/* out: region id */
	__u64	resv[2];	/* must be zero */
};

/* QD_IOC_QUEUE: create a memory queue. */
struct qd_queue_create {
	__u32	depth;		/* elements held; 0 = QD_MEMQ_DEFAULT_DEPTH */
	__u32	flags;		/* QD_QUEUE_* */
	__s32	qd;		/* out: the new queue descriptor */
	__u32	map_bytes;	/* out, MAPPED: length to mmap */
	__u64	map_off;	/* out, MAPPED: offset to mmap on the context fd */
	__u32	resv[2];	/* must be zero */
};

/*
 * QD_QUEUE_MAPPED: the queue's elements live in a descriptor ring that user
 * space maps (struct qd_mq_hdr, then depth struct qd_mq_slot; depth rounded
 * up to a power of two, 2 at least), so that push and pop are loads, stores and
 * compare-and-swaps, with no system call while nobody sleeps. The protocol
 * (kmod/common/qd_mq.h) is a bounded multi-producer multi-consumer ring with
 * a sequence number per slot. Operations submitted to the kernel (QD_OP_PUSH,
 * QD_OP_POP) use the same ring; the kernel parks a pop when the ring is
 * empty and a push when it is full, and says so in hdr.waiters. Whoever
 * then makes progress through the ring (pushes when QD_MQ_POP_WAITERS is
 * set, pops when QD_MQ_PUSH_WAITERS is set) submits a QD_OP_WAKE for the
 * queue, which serves the parked operations. To keep each thread's order,
 * user space takes the ring only while the flag of its own kind is clear
 * (pushes go to the kernel while QD_MQ_PUSH_WAITERS is set, pops while
 * QD_MQ_POP_WAITERS is). Segments name regions of the context, as in
 * QD_OP_PUSH; the kernel checks those it reads. A pop that brings a
 * buffer (for copies across contexts) is -EOPNOTSUPP on a mapped queue.
 *
 * QD_QUEUE_SHARED (with QD_QUEUE_MAPPED only): a mapped queue that can be
 * exported, whose ring is mapped by every context that imports it with
 * both rights. A segment in its ring names a binding of the queue instead
 * of a region: seg.region is an index into the queue's table of
 * QD_MQ_MAX_BINDINGS bound regions (QD_IOC_QUEUE_BIND), seg.offset an
 * offset inside that region. A binding holds its region (and the pins)
 * until the queue's last handle closes; a pop in another context gets the
 * element without a copy when it registered the same shared memory
 * (QD_BIND_LOOKUP tells user space where), else through the kernel: one
 * copy into a buffer the pop brought, or -EXDEV, as for any shared queue.
 * Every process that maps the ring can name any byte of every bound
 * region in a descriptor: binding a region shares all of it with them.
 */
#define QD_QUEUE_MAPPED		_BITUL(0)
#define QD_QUEUE_SHARED		_BITUL(1)

/* Regions one shared mapped queue can name (bindings, ids 0..max-1). */
#define QD_MQ_MAX_BINDINGS	64

struct qd_mq_hdr {
	__u32	tail;		/* producers' claim counter */
	__u32	pad0[15];
	__u32	head;		/* consumers' claim counter */
	__u32	pad1[15];
	__u32	entries;	/* slots: a power of two */
	__u32	mask;		/* entries - 1 */
	__u32	waiters;	/* QD_MQ_*_WAITERS, written by the kernel */
	__u32	resv[13];
};

#define QD_MQ_POP_WAITERS	_BITUL(0)	/* pops parked: push, then wake */
#define QD_MQ_PUSH_WAITERS	_BITUL(1)	/* pushes parked: pop, then wake */
#define QD_MQ_POP_SLEEPERS	_BITUL(2)	/* QD_ENTER_MQ_POP: push, wake */
#define QD_MQ_PUSH_KERNEL	_BITUL(3)	/* derived queues: push to the kernel */

struct qd_mq_slot {
	__u32		seq;	/* the slot's turn (see kmod/common/qd_mq.h) */
	__u16		nsegs;
	__u16		resv0;
	__u32		resv[2];
	struct qd_seg	segs[QD_SGA_MAX];
};

/*
 * Sharing a memory queue with another process. QD_IOC_QUEUE_EXPORT makes a
 * file descriptor (O_CLOEXEC) that names the queue and grants the rights
 * given (at most those of the exporting qd); pass it over a Unix socket
 * (SCM_RIGHTS). QD_IOC_QUEUE_IMPORT makes a qd for it in the importer's
 * context. Every qd naming the queue is a handle: closing one cancels that
 * context's pending operations on the queue (-ECANCELED); the queue and its
 * elements live until the last handle closes. An element names its
 * pusher's memory: a pop in another context gets it without a copy when
 * the popper registered the same shared memory (memfd, tmpfs, shared
 * anonymous: the same pages), with the segments rewritten into the
 * popper's regions. Otherwise a pop that brought a buffer (addr -> nsegs
 * struct qd_seg in the popper's regions) gets a copy, made once from the
 * pusher's pages into it: the CQE has QD_CQE_F_COPIED and names the buffer,
 * trimmed to the element's length (-EMSGSIZE if it is too small); a pop
 * without one completes with -EXDEV. Either way the element stays first in
 * the queue. Mapped queues can be exported when created with
 * QD_QUEUE_SHARED (see there); others are -EOPNOTSUPP.
 */
struct qd_queue_export {
	__s32	qd;
	__u32	rights;		/* QD_SHARE_*, at least one */
	__s32	fd;		/* out */
	__u32	resv[5];	/* must be zero */
};

struct qd_queue_import {
	__s32	fd;		/* from QD_IOC_QUEUE_EXPORT */
	__s32	qd;		/* out */
	__u32	rights;		/* out: QD_SHARE_* the qd has */
	/*
	 * out: a QD_QUEUE_SHARED queue imported with both rights: length and
	 * offset to mmap its ring on the importer's context fd; else zero.
	 */
	__u32	map_bytes;
	__u64	map_off;
	__u32	resv[2];	/* must be zero */
};

/*
 * QD_IOC_QUEUE_BIND, on a QD_QUEUE_SHARED queue (its own qd, or an import
 * with both rights):
 *  flags 0: bind the context's region `region` to the queue and return
 *    its binding in `index` (the same index for the same region every
 *    time; -ENOSPC when all QD_MQ_MAX_BINDINGS are taken). Validated once
 *    here: descriptors in the ring then name (index, offset, len).
 *  QD_BIND_LOOKUP: where binding `index` lies in this context's memory:
 *    a region of the context over the same shared memory pages (all of
 *    the binding's), returned in `region`, and the binding's byte 0 at
 *    `offset` in it; -EXDEV if there is none (the pop must go through the
 *    kernel), -ENOENT if the binding does not exist.
 */
struct qd_queue_bind {
	__s32	qd;
	__u32	flags;		/* QD_BIND_* */
	__u32	region;		/* in (bind), out (lookup) */
	__u32	index;		/* out (bind), in (lookup) */
	__u64	offset;		/* out (lookup); must be zero */
	__u64	resv[2];	/* must be zero */
};

#define QD_BIND_LOOKUP		_BITUL(0)

#define QD_SHARE_PUSH		_BITUL(0)
#define QD_SHARE_POP		_BITUL(1)
#define QD_SHARE_ALL		(QD_SHARE_PUSH | QD_SHARE_POP)

/*
 * Sockets (Documentation/abi.md, Sockets): QD_IOC_SOCKET makes a kernel
 * socket qd (AF_INET or AF_INET6; SOCK_STREAM or SOCK_DGRAM) in the
 * context's network namespace, with the caller's credentials, as socket(2)
 * would. Binding, listening and options are ioctls too (they do not wait);
 * ACCEPT, CONNECT, PUSH, PUSHTO and POP are operations. A POP on a socket
 * brings its buffer (addr/nsegs, as a pop with a copy) and completes with
 * QD_CQE_F_COPIED and that buffer trimmed to the bytes received.
 */
struct qd_socket_create {
	__s32	domain;		/* AF_INET, AF_INET6 */
	__s32	type;		/* SOCK_STREAM, SOCK_DGRAM (no flags) */
	__s32	protocol;	/* 0, or IPPROTO_TCP / IPPROTO_UDP */
	__s32	qd;		/* out */
	__u32	flags;		/* must be zero */
	__u32	resv[3];	/* must be zero */
};

/* QD_IOC_BIND (in) and QD_IOC_GETNAME (addr out, addr_len in/out). */
struct qd_sock_name {
	__s32	qd;
	__u32	addr_len;	/* in: bytes at addr; GETNAME out: the name's */
	__u64	addr;		/* user pointer to a struct sockaddr */
	__u32	flags;		/* GETNAME: QD_NAME_PEER or 0 (local); else 0 */
	__u32	resv[3];	/* must be zero */
};

#define QD_NAME_PEER		_BITUL(0)

struct qd_sock_listen {
	__s32	qd;
	__s32	backlog;	/* clamped to net.core.somaxconn */
	__u32	resv[2];	/* must be zero */
};

/* QD_IOC_SETSOCKOPT, QD_IOC_GETSOCKOPT (optlen in/out). */
struct qd_sockopt {
	__s32	qd;
	__s32	level;
	__s32	optname;
	__u32	optlen;
	__u64	optval;		/* user pointer */
	__u32	resv[4];	/* must be zero */
};

/*
 * Derived queues (Documentation/abi.md, Derived queues). QD_IOC_DERIVE
 * makes a queue fed by one source queue (FILTER, SORT) or two (MERGE) of
 * this context: a memory queue or another derived queue. When an element
 * arrives at a source, the queues derived from it are tried in creation
 * order and the first that takes it gets it: a filter takes what its
 * predicate holds for, a merge and a sort take everything. What none takes
 * stays on the source. Elements queued before a derived queue was made stay
 * where they are. Popping a filter yields its elements in arrival order, a
 * merge alternates between its two sources, a sort yields the smallest key
 * (ties in arrival order). A push to a filter goes to its source (and is
 * tried against the filters like any arrival); a push to a merge or a sort
 * is -EOPNOTSUPP. Closing a source completes the pending pops of the queues
 * derived from it with -ECANCELED; a derived queue with no source left
 * yields what it holds, then -EPIPE. Closing a derived queue gives what it
 * holds back to its sources, in arrival order. Derived queues nest up to
 * QD_DERIVE_MAX_LEVEL levels.
 *
 * Predicates and keys are declarative and bounded, so that a NIC or a
 * drive could run them: a field is width bytes at byte off of the element
 * (across its segments), read as an unsigned little- or big-endian
 * integer and ANDed with mask. A predicate is a conjunction of up to
 * QD_PRED_MAX_TERMS comparisons of a field with a constant; a key is a
 * field. An element too short for a field fails the predicate and sorts
 * after every element that has the key.
 */
#ifndef QD_PRED_TYPES_DEFINED	/* the same as libqd's <qd.h> */
#define QD_PRED_TYPES_DEFINED
#define QD_DERIVE_MAX_LEVEL	7	/* derived queues on derived queues */
#define QD_PRED_MAX_TERMS	4
#define QD_FIELD_MAX_END	4096	/* off + width at most this */

struct qd_field {
	__u32	off;		/* byte offset in the element */
	__u8	width;		/* 1, 2, 4 or 8 bytes */
	__u8	flags;		/* QD_FIELD_BE, else little-endian */
	__u16	resv;		/* must be zero */
	__u64	mask;		/* ANDed with the value; 0: the whole field */
};

#define QD_FIELD_BE		1

enum {
	QD_CMP_EQ = 1,		/* field == value */
	QD_CMP_NE,		/* field != value */
	QD_CMP_LT,		/* field <  value (unsigned) */
	QD_CMP_LE,
	QD_CMP_GT,
	QD_CMP_GE,
};

struct qd_pred_term {
	struct qd_field	field;
	__u32	cmp;		/* QD_CMP_* */
	__u32	resv;		/* must be zero */
	__u64	value;		/* within the field's mask */
};

/* All of nterms (1..QD_PRED_MAX_TERMS) terms hold; the rest zero. */
struct qd_pred {
	__u32	nterms;
	__u32	resv;		/* must be zero */
	struct qd_pred_term terms[QD_PRED_MAX_TERMS];
};

/* Smallest first; QD_KEY_DESC: largest first. */
struct qd_key {
	struct qd_field	field;
	__u32	flags;		/* QD_KEY_* */
	__u32	resv;		/* must be zero */
};

#define QD_KEY_DESC		1
#endif /* QD_PRED_TYPES_DEFINED */

enum {
	QD_DERIVE_FILTER = 1,
	QD_DERIVE_MERGE,
	QD_DERIVE_SORT,
};

struct qd_derive {
	__u32	kind;		/* QD_DERIVE_* */
	__u32	flags;		/* must be zero */
	__s32	src;		/* the source */
	__s32	src2;		/* MERGE: the second source; else 0 */
	__s32	qd;		/* out: the derived queue */
	__u32	resv;		/* must be zero */
	union {
		struct qd_pred	pred;	/* FILTER */
		struct qd_key	key;	/* SORT (the rest zero) */
		__u64	args[17];	/* MERGE: zero */
	};
};

/* 0xDE: unassigned in Documentation/userspace-api/ioctl/ioctl-number.rst */
#define QD_IOC_MAGIC		0xDE
#define QD_IOC_SETUP		_IOWR(QD_IOC_MAGIC, 0x00, struct qd_params)
#define QD_IOC_ENTER		_IOW(QD_IOC_MAGIC, 0x01, struct qd_enter)
#define QD_IOC_REGISTER		_IOWR(QD_IOC_MAGIC, 0x02, struct qd_region_reg)
#define QD_IOC_UNREGISTER	_IOW(QD_IOC_MAGIC, 0x03, __u32)
#define QD_IOC_QUEUE		_IOWR(QD_IOC_MAGIC, 0x04, struct qd_queue_create)
#define QD_IOC_CLOSE		_IOW(QD_IOC_MAGIC, 0x05, __s32)
#define QD_IOC_RING		_IOWR(QD_IOC_MAGIC, 0x06, struct qd_params)
#define QD_IOC_QUEUE_EXPORT	_IOWR(QD_IOC_MAGIC, 0x07, struct qd_queue_export)
#define QD_IOC_QUEUE_IMPORT	_IOWR(QD_IOC_MAGIC, 0x08, struct qd_queue_import)
#define QD_IOC_QUEUE_BIND	_IOWR(QD_IOC_MAGIC, 0x09, struct qd_queue_bind)
#define QD_IOC_SOCKET		_IOWR(QD_IOC_MAGIC, 0x0a, struct qd_socket_create)
#define QD_IOC_BIND		_IOW(QD_IOC_MAGIC, 0x0b, struct qd_sock_name)
#define QD_IOC_LISTEN		_IOW(QD_IOC_MAGIC, 0x0c, struct qd_sock_listen)
#define QD_IOC_GETNAME		_IOWR(QD_IOC_MAGIC, 0x0d, struct qd_sock_name)
#define QD_IOC_SETSOCKOPT	_IOW(QD_IOC_MAGIC, 0x0e, struct qd_sockopt)
#define QD_IOC_GETSOCKOPT	_IOWR(QD_IOC_MAGIC, 0x0f, struct qd_sockopt)
#define QD_IOC_DERIVE		_IOWR(QD_IOC_MAGIC, 0x10, struct qd_derive)

#endif /* _UAPI_LINUX_QD_H */
