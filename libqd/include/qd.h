/* SPDX-License-Identifier: MIT */
/*
 * libqd: queue descriptors on top of qd.ko (/dev/qd).
 *
 * Every function returns 0 on success or a negative errno; errno is left
 * alone (except by qd_sgaalloc(), which returns a struct). Asynchronous
 * operations (qd_push(), qd_pop()) return a token at once; qd_wait() or
 * qd_wait_any() returns the operation's result and consumes the token.
 *
 * libqd keeps one /dev/qd context per process, set up by qd_init() (called
 * implicitly by every function that needs it), and gives each thread its
 * own ring in it on first use. Every function is thread-safe; a token may
 * be waited for in any thread. Operations are queued in the calling
 * thread's ring and reach the kernel with its next wait, qd_submit(),
 * qd_close(), or when its ring is full. Tokens, queue descriptors and
 * buffers belong to the process that made them: a child of fork() starts
 * with no context and must not use its parent's.
 *
 * The design is in Documentation/libqd.md, one man page per function in
 * libqd/man/man3.
 */
#ifndef LIBQD_QD_H
#define LIBQD_QD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

struct timespec;	/* <time.h>; declared here for strict ISO C modes */

/* Most segments in one scatter-gather array (same as the kernel's). */
#define QD_SGA_MAX	8

/* Names one pending operation until qd_wait*() consumes it. Never 0. */
typedef uint64_t qd_token_t;

/* One buffer: len bytes at buf. */
struct qd_sgaseg {
	void		*buf;
	uint32_t	len;
};

/* A scatter-gather array: what one push carries and one pop yields. */
struct qd_sga {
	uint32_t		numsegs;		/* 1 .. QD_SGA_MAX */
	struct qd_sgaseg	segs[QD_SGA_MAX];
	struct sockaddr_storage	addr;			/* source of a popped datagram */
	uint32_t		flags;			/* QD_SGA_* of a popped element */
};

/* qd_sga.flags: the popped datagram was longer than the buffer (cut). */
#define QD_SGA_TRUNC	1u

enum qd_opcode {
	QD_OPC_INVALID,
	QD_OPC_PUSH,
	QD_OPC_POP,
	QD_OPC_ACCEPT,
	QD_OPC_CONNECT,
	QD_OPC_CLOSE,
	QD_OPC_FAILED,
	QD_OPC_SYNC,		/* appended: the values above are ABI */
};

/*
 * What qd_wait*() returns about a completed operation. value holds what
 * the operation defines for a success (ret >= 0): segments past
 * value.sga.numsegs, and the address of anything but a datagram
 * (ss_family AF_UNSPEC), are left unspecified.
 */
struct qd_result {
	enum qd_opcode	opcode;		/* the operation's kind */
	int		qd;		/* the queue it ran on */
	qd_token_t	qt;		/* its token (now consumed) */
	int64_t		ret;		/* bytes pushed/popped, 0, or -errno */
	union {
		struct qd_sga	sga;	/* POP: the element; PUSH: what was pushed */
		struct {
			int			qd;
			struct sockaddr_storage	addr;
		} accept;
	} value;
};

/* libqd's counters and the context's geometry, for qd_stats(). */
struct qd_stats {
	/* every system call libqd made for its context or memory */
	uint64_t	syscalls;
	uint64_t	enters;		/* QD_IOC_ENTER calls */
	uint64_t	enter_waits;	/* enters that asked to sleep for completions */
	uint64_t	sqes_submitted;	/* SQEs the kernel consumed */
	uint64_t	cqes_reaped;	/* CQEs copied out of the completion ring */
	/* enters made only to drain the kernel's overflow list */
	uint64_t	overflow_flushes;
	uint64_t	regions;	/* regions registered now */
	uint64_t	region_bytes;	/* bytes pinned in them */
	uint32_t	sq_entries;	/* ring sizes, 0 before qd_init() */
	uint32_t	cq_entries;
	uint32_t	max_inflight;	/* operations the kernel runs at once */
	uint32_t	features;	/* QD_FEAT_* of <linux/qd.h> */
	uint64_t	rings;		/* rings set up (threads get one each) */
	uint64_t	forget_failed;	/* qd_push_forget() pushes that failed */
	int64_t		forget_last_error; /* the last one's -errno, or 0 */
	uint64_t	resv[5];	/* zero; room to grow */
};

/*
 * qd_init - open /dev/qd and set up this process's context.
 *
 * Idempotent and thread-safe; every other function calls it when needed.
 * Ring sizes default to 256 SQ / 1024 CQ entries; the environment variables
 * QD_SQ_ENTRIES and QD_CQ_ENTRIES override them. In a child of fork() the
 * context is forgotten and the next call sets up a new one.
 * Returns 0, or -errno (-ENOENT: no /dev/qd, qd.ko not loaded).
 */
int qd_init(void);

/*
 * qd_queue - create a memory queue (kernel default depth) and store its
 * descriptor in *qd_out.
 */
int qd_queue(int *qd_out);

/*
 * Sharing a memory queue with another process (extension). qd_queue()'s
 * queues are mapped (the user-space fast path) and stay in this process;
 * qd_queue_shareable() makes one that can be exported. qd_queue_export()
 * gives an fd (O_CLOEXEC) that grants rights (QD_RIGHT_PUSH, QD_RIGHT_POP)
 * on it: pass it over a Unix socket (SCM_RIGHTS) or across fork();
 * qd_queue_import() in the other process gives a qd for it there (close
 * the fd afterwards). An element popped in another process than its
 * pusher's arrives without a copy when both registered the same shared
 * memory (a memfd or MAP_SHARED mapping, with qd_memregister()): its
 * segments then point into the popper's own mapping. Otherwise the pop
 * fails with -EXDEV and the element stays in the queue. Each process's
 * qd is a handle: closing it cancels that process's pending operations;
 * the queue lives until the last handle closes. Errors: -EOPNOTSUPP to
 * export a mapped queue, -EPERM for more rights than the qd has or an
 * operation the imported qd has no right to, -EINVAL for an fd that does
 * not name a queue.
 */
#define QD_RIGHT_PUSH	1u
#define QD_RIGHT_POP	2u
int qd_queue_shareable(int *qd_out);
int qd_queue_export(int qd, unsigned int rights, int *fd_out);
int qd_queue_import(int fd, int *qd_out);

/*
 * qd_pop_into - pop from qd (extension), bringing a buffer for an element
 * that crosses from another process without shared memory: the kernel then
 * copies it once, from the pusher's pages into buf (registered memory), and
 * the result's sga names buf, trimmed to the element (-EMSGSIZE when buf is
 * too small; the element stays queued). An element that needs no copy
 * arrives as from qd_pop() and buf stays untouched. buf stays the
 * caller's either way.
 */
int qd_pop_into(qd_token_t *qt_out, int qd, const struct qd_sga *buf);

/*
 * qd_push - push the element described by sga to queue qd.
 *
 * sga holds 1..QD_SGA_MAX segments of non-zero length, each inside memory
 * from qd_sgaalloc() or qd_memregister() (-EFAULT otherwise, nothing is
 * submitted). The buffers must stay unchanged until the push completes;
 * for a memory queue they then travel with the element, and whoever pops
 * it owns them. The sga itself may be reused at once. On success *qt_out
 * names the operation.
 */
int qd_push(qd_token_t *qt_out, int qd, const struct qd_sga *sga);

/*
 * qd_pop - pop one element from queue qd; *qt_out names the operation. The
 * element arrives in the result's value.sga and belongs to the caller, who
 * frees it with qd_sgafree().
 */
int qd_pop(qd_token_t *qt_out, int qd);

/*
 * qd_wait - wait for the operation qt and consume its token.
 *
 * timeout is relative (CLOCK_MONOTONIC): NULL waits forever, {0, 0} polls.
 * Returns 0 with the result in *qr_out, -ETIMEDOUT if the timeout passed
 * first (the token stays valid), -EINVAL for a token that is unknown or
 * already consumed. A result that is already there costs no system call.
 * Any thread may wait for any token; a wait that has to sleep or poll
 * first submits the calling thread's queued operations. A multishot pop's
 * token (qd_pop_multi()) gives one element per wait.
 */
int qd_wait(struct qd_result *qr_out, qd_token_t qt,
	    const struct timespec *timeout);

/*
 * qd_wait_any - wait for the first of num_qts operations to complete.
 *
 * Returns 0, the result in *qr_out and the index of the completed token in
 * qts in *ready_offset; only that token is consumed. Errors as qd_wait().
 */
int qd_wait_any(struct qd_result *qr_out, int *ready_offset,
		const qd_token_t *qts, int num_qts,
		const struct timespec *timeout);

/*
 * qd_wait_any_many - qd_wait_any() that returns every result ready at
 * once, up to max (extension): waits as qd_wait_any() for the first, then
 * takes the others that are ready now with one more walk of qts, so a
 * server with many connections walks its token array once per wake-up
 * rather than once per completion. On success *n_out results are in
 * qrs_out[0..*n_out) and their indices in qts in ready_offsets[]; every
 * returned token is consumed (a multishot pop's gives one element per
 * call). Errors as qd_wait_any(), for the first result only.
 */
int qd_wait_any_many(struct qd_result *qrs_out, int *ready_offsets, int max,
		     int *n_out, const qd_token_t *qts, int num_qts,
		     const struct timespec *timeout);

/*
 * qd_wait_next - wait for the next results of any operations the calling
 * thread submitted, in the order they completed, up to max at once
 * (extension): no token array is walked, so a result costs the same with
 * ten or ten thousand operations pending (qd_wait_any() is O(tokens) per
 * result). On success *n_out >= 1 results are in qrs_out[0..*n_out), each
 * naming its token in qt (and its qd); each is consumed as qd_wait() would
 * consume it (a multishot pop's token gives one element per result and
 * stays valid until its last). Results taken with qd_wait()/qd_wait_any()
 * are not returned again. Errors as qd_wait() (-ETIMEDOUT, -EINTR...).
 */
int qd_wait_next(struct qd_result *qrs_out, int max, int *n_out,
		 const struct timespec *timeout);

/*
 * qd_close - close queue qd. Operations still pending on it complete with
 * -ECANCELED (their tokens must still be waited for); queued elements are
 * dropped.
 */
int qd_close(int qd);

/*
 * qd_sgaalloc - allocate one buffer of exactly size bytes (1 B .. 1 GiB),
 * aligned to at least 64 bytes, and to 4096 when size is 4096 or more (as
 * O_DIRECT storage I/O needs), from registered memory, ready to push.
 * Returns an sga with numsegs 1, or numsegs 0 with errno set (EINVAL: bad
 * size; ENOMEM: no memory, or RLIMIT_MEMLOCK reached).
 */
struct qd_sga qd_sgaalloc(size_t size);

/*
 * qd_sgafree - free the buffers of sga. Each segment may point anywhere
 * inside a buffer qd_sgaalloc() returned (a popped element carries the
 * pusher's pointers); segments inside the same buffer free it once.
 * Returns -EINVAL, freeing nothing, if a segment is not inside a live
 * qd_sgaalloc() buffer (double free, qd_memregister() memory, malloc()).
 */
int qd_sgafree(struct qd_sga *sga);

/*
 * Sockets: kernel TCP and UDP sockets (AF_INET, AF_INET6) as qds.
 *
 * qd_socket() makes one in the process's network namespace with the
 * caller's credentials, as socket(2) would; qd_bind(), qd_listen(),
 * qd_setsockopt(), qd_getsockopt(), qd_getpeername() and qd_getsockname()
 * act at once, as their system calls do (0 or -errno). qd_accept() and
 * qd_connect() are operations: qd_wait*() gives their result (an accept's
 * new qd in value.accept.qd and its peer in value.accept.addr). qd_push()
 * sends all of sga's bytes (TCP) or one datagram (UDP, connected);
 * qd_pushto() one datagram to an address; the buffers are the caller's
 * again when the push completes. qd_pop() on a socket gives the bytes
 * that arrived (TCP, up to QD_SOCK_RECV_SIZE bytes; 0 once the peer closed)
 * or one datagram with its source in value.sga.addr (QD_SGA_TRUNC in
 * value.sga.flags when it was cut to the buffer), in a buffer libqd
 * allocated, which the caller frees with qd_sgafree(); qd_pop_into()
 * brings the caller's own buffer instead. qd_push_forget() is
 * -EOPNOTSUPP on sockets. qd_close() cancels pending operations
 * (-ECANCELED) and closes the socket. Options: SO_REUSEADDR, SO_REUSEPORT,
 * SO_RCVBUF, SO_SNDBUF, SO_KEEPALIVE, SO_BROADCAST, SO_ERROR and SO_TYPE
 * (get), TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_MAXSEG,
 * IP_TOS, IP_TTL, IPV6_V6ONLY, IPV6_UNICAST_HOPS; others -ENOPROTOOPT.
 */
int qd_socket(int *qd_out, int domain, int type, int protocol);
int qd_bind(int qd, const struct sockaddr *addr, socklen_t len);
int qd_listen(int qd, int backlog);
int qd_accept(qd_token_t *qt_out, int qd);
int qd_connect(qd_token_t *qt_out, int qd, const struct sockaddr *addr,
	       socklen_t len);
int qd_pushto(qd_token_t *qt_out, int qd, const struct qd_sga *sga,
	      const struct sockaddr *to, socklen_t len);
int qd_setsockopt(int qd, int level, int optname, const void *optval,
		  socklen_t optlen);
int qd_getsockopt(int qd, int level, int optname, void *optval,
		  socklen_t *optlen);
int qd_getpeername(int qd, struct sockaddr *addr, socklen_t *len);
int qd_getsockname(int qd, struct sockaddr *addr, socklen_t *len);

/*
 * Storage: regular files and block devices as qds (Documentation/abi.md,
 * "Storage").
 *
 * qd_open() opens path as open(2) would (same flags and mode, same checks,
 * with the caller's credentials, root and working directory now): a
 * directory is -EISDIR, anything but a regular file or a block device
 * -EINVAL. qd_push() writes sga's bytes at the queue's write offset (the
 * end of the file with O_APPEND) and qd_pop() reads the next chunk at its
 * read offset, up to QD_FILE_POP_SIZE bytes (environment variable, default
 * 64 KiB) into a buffer libqd allocates, which the caller frees with
 * qd_sgafree(); qd_pop_into() reads into the caller's buffer. Each offset
 * advances by what the operation asked for when it is submitted. A pop at
 * the end of the file gives 0 bytes; value.sga is trimmed to what was read.
 * qd_pushat() and qd_popat() work at offset off and leave the queue's
 * offsets alone; qd_popat() with a NULL buf allocates as qd_pop() does.
 * With O_DIRECT, offsets, lengths and buffer addresses must be multiples
 * of the device's logical block size (else the operation fails with
 * -EINVAL); buffers qd_sgaalloc() gives for 4096 bytes or more are 4096
 * aligned. Many operations may be in flight on one qd; they complete in
 * any order, each with its own result. qd_sync() is fsync(2)
 * (fdatasync(2) with QD_SYNC_DATASYNC; QD_SYNC_FLUSH flushes a block
 * device's write cache only) as an operation, covering the pushes that
 * completed before it. qd_close() waits for nothing: operations in flight
 * still complete, each with its result.
 *
 * qd_open() validates its arguments before any system call (NULL qd_out or
 * path, flags outside the list above: -EINVAL; a path of PATH_MAX bytes or
 * more: -ENAMETOOLONG) and waits for the kernel's answer whatever the
 * other threads do. Buffers qd_pop() allocated belong to the caller with
 * the result; libqd frees them itself on an error or 0 bytes, where the
 * result has no segments. qd_push_forget() and qd_pop_multi() on a storage
 * qd are -EOPNOTSUPP (nothing would tell when a forgotten push's buffers
 * are free again). Every call here is -EOPNOTSUPP on a kernel without
 * storage queues.
 */
#ifndef QD_SYNC_DATASYNC
/* qd_sync() flags; spelled as in <linux/qd.h>, so either may come first. */
#include <linux/const.h>
#define QD_SYNC_DATASYNC	_BITUL(0)	/* fdatasync(2) */
#define QD_SYNC_FLUSH		_BITUL(1)	/* block devices: cache flush */
#endif
int qd_open(int *qd_out, const char *path, int flags, mode_t mode);
int qd_pushat(qd_token_t *qt_out, int qd, const struct qd_sga *sga,
	      uint64_t off);
int qd_popat(qd_token_t *qt_out, int qd, const struct qd_sga *buf,
	     uint64_t off);
int qd_sync(qd_token_t *qt_out, int qd, unsigned int flags);

/*
 * Derived queues (Documentation/libqd.md, Derived queues). A derived queue
 * is fed by its source(s) when an element arrives there: the queues derived
 * from a source are tried in creation order, and the first that takes the
 * element gets it (a filter: what its predicate holds for; a merge or a
 * sort: everything); what none takes stays on the source. Elements queued
 * before the derived queue was made stay where they are.
 *
 * qd_filter() pops in arrival order, qd_merge() alternates fairly between
 * its two sources, qd_sort() pops the smallest key first (ties in arrival
 * order). A push to a filter goes to its source; qd_push() to a merge or a
 * sort is -EOPNOTSUPP. Closing a source completes the pending pops of the
 * queues derived from it with -ECANCELED (a derived queue left with no
 * source pops what it holds, then -EPIPE); closing a derived queue gives
 * what it holds back to its source(s). Derived queues nest
 * (QD_DERIVE_MAX_LEVEL levels).
 *
 * qd_filter(), qd_merge() and qd_sort() run in the kernel, on memory
 * queues and derived queues (else -EOPNOTSUPP), and wake a waiter only for
 * its own elements. Predicates and keys are declarative: a field is width
 * (1, 2, 4 or 8) bytes at byte off of the element, across its segments,
 * little-endian (QD_FIELD_BE: big), ANDed with mask (0: all of it); a
 * predicate holds when all of its nterms comparisons with constants hold;
 * an element too short for a field does not match and sorts last. A
 * specification the kernel would not run is -EINVAL.
 *
 * qd_filter_fn() and qd_sort_fn() take C callbacks and run them in libqd,
 * on any qd, in the thread that waits, with the same rules: fn returns
 * whether the element belongs to the filter; cmp returns <0, 0 or >0 as
 * memcmp() does. The sga passed to them is the element, read-only.
 */
#ifndef QD_PRED_TYPES_DEFINED	/* the same as <linux/qd.h> */
#define QD_PRED_TYPES_DEFINED
#define QD_DERIVE_MAX_LEVEL	7
#define QD_PRED_MAX_TERMS	4
#define QD_FIELD_MAX_END	4096	/* off + width at most this */

struct qd_field {
	uint32_t	off;		/* byte offset in the element */
	uint8_t		width;		/* 1, 2, 4 or 8 bytes */
	uint8_t		flags;		/* QD_FIELD_BE, else little-endian */
	uint16_t	resv;		/* must be zero */
	uint64_t	mask;		/* ANDed with the value; 0: all of it */
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
	uint32_t	cmp;		/* QD_CMP_* */
	uint32_t	resv;		/* must be zero */
	uint64_t	value;		/* within the field's mask */
};

/* All of nterms (1..QD_PRED_MAX_TERMS) terms hold; the rest zero. */
struct qd_pred {
	uint32_t	nterms;
	uint32_t	resv;		/* must be zero */
	struct qd_pred_term terms[QD_PRED_MAX_TERMS];
};

/* Smallest first; QD_KEY_DESC: largest first. */
struct qd_key {
	struct qd_field	field;
	uint32_t	flags;		/* QD_KEY_* */
	uint32_t	resv;		/* must be zero */
};

#define QD_KEY_DESC		1
#endif /* QD_PRED_TYPES_DEFINED */

int qd_filter(int *qd_out, int qd, const struct qd_pred *pred);
int qd_merge(int *qd_out, int qd1, int qd2);
int qd_sort(int *qd_out, int qd, const struct qd_key *key);
int qd_filter_fn(int *qd_out, int qd,
		 bool (*fn)(const struct qd_sga *sga, void *arg), void *arg);
int qd_sort_fn(int *qd_out, int qd,
	       int (*cmp)(const struct qd_sga *a, const struct qd_sga *b,
			  void *arg),
	       void *arg);

/* Extensions */

/*
 * qd_submit - hand the operations the calling thread queued to the kernel
 * now. libqd otherwise batches them into the thread's next wait that has
 * to sleep or poll, qd_close(), or a full ring.
 */
int qd_submit(void);

/*
 * qd_push_forget - push sga to queue qd without a token: no completion is
 * posted when the push succeeds, and the buffers are handed over at once
 * (for a memory queue they travel with the element). If the push fails,
 * libqd frees those of its buffers that came from qd_sgaalloc() and counts
 * the failure in qd_stats() (forget_failed, forget_last_error). sga is
 * checked and translated as by qd_push().
 */
int qd_push_forget(int qd, const struct qd_sga *sga);

/*
 * qd_pop_multi - a persistent pop on queue qd: every qd_wait*() on *qt_out
 * returns the next element, in arrival order, and the token stays valid
 * until a result with ret < 0 is returned (the last one: -ECANCELED after
 * qd_close(qd) or qd_cancel()). -EOPNOTSUPP if the kernel lacks
 * QD_FEAT_MULTISHOT.
 */
int qd_pop_multi(qd_token_t *qt_out, int qd);

/*
 * qd_cancel - cancel the pending pop (or multishot pop) qt. The pop then
 * completes with -ECANCELED, unless an element reached it first; its
 * token must still be waited for. -EINVAL for a token that is unknown or
 * consumed, -EOPNOTSUPP for a push or a kernel without QD_FEAT_MULTISHOT,
 * -EALREADY when its (final) result is already in.
 */
int qd_cancel(qd_token_t qt);

/*
 * qd_memregister - register (pin) the application's memory
 * [addr, addr + len) so that buffers inside it can be pushed. addr must be
 * page aligned; len is rounded up to whole pages. -EEXIST if the range
 * overlaps memory libqd already knows.
 */
int qd_memregister(void *addr, size_t len);

/*
 * qd_memunregister - unregister the range qd_memregister() registered at
 * addr. -ENOENT if none starts there; -EBUSY while an element or an
 * operation still uses it.
 */
int qd_memunregister(void *addr);

/*
 * qd_stats - copy libqd's counters and the context's geometry into *st.
 * Makes no system call and does not call qd_init().
 */
int qd_stats(struct qd_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* LIBQD_QD_H */
