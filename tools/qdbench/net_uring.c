// SPDX-License-Identifier: GPL-2.0
/*
 * qdbench net's io_uring server (liburing), in the strongest form Linux 6.1
 * offers an echo server:
 *  - one ring, IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN (else the next set
 *    the kernel takes, as the memq benchmark probes), its fd registered
 *    (io_uring_register_ring_fd);
 *  - a multishot accept into the fixed-file table (direct descriptors: no
 *    fd table, no fget per operation);
 *  - a multishot receive per connection that picks buffers from a provided
 *    buffer ring (IORING_REGISTER_PBUF_RING): no buffer is held by an idle
 *    connection;
 *  - the received buffer sent back as it is (IORING_OP_SEND, MSG_WAITALL),
 *    one send in flight per connection (later chunks wait in order), and
 *    returned to the buffer ring when the send completes; with
 *    --uring-send zc, IORING_OP_SEND_ZC from the same buffers registered as
 *    one fixed buffer (IORING_RECVSEND_FIXED_BUF), the buffer returned at
 *    its notification CQE;
 *  - every SQE of a round submitted with the wait for the next completions
 *    (io_uring_submit_and_wait): one io_uring_enter per round.
 * The bytes copied are those of its receive and send CQEs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net.h"

#ifdef QDBENCH_NO_LIBURING

static int nu_probe(char *why, size_t len)
{
	snprintf(why, len, "qdbench was built without liburing (install liburing-dev and rebuild)");
	return -ENOSYS;
}

int net_uring_send_opt(const char *arg)
{
	(void)arg;
	return 0;
}

const struct net_srv net_uring = {
	.name = "uring",
	.label = "io_uring",
	.probe = nu_probe,
};

#else

#include <liburing.h>

#define NU_ENTRIES	1024
#define NU_CQ_ENTRIES	16384
#define NU_FILES	4096
#define NU_NBUFS	512		/* provided buffers, NET_BUF each */
#define NU_BGID		0

enum { NU_ACCEPT = 1, NU_RECV, NU_SEND, NU_CLOSE };

/* user_data: kind in bits 56.., connection (file index) 16..39, bid 0..15 */
#define NU_UD(kind, conn, bid) \
	((uint64_t)(kind) << 56 | (uint64_t)(conn) << 16 | (bid))
#define NU_KIND(ud)	((unsigned int)((ud) >> 56))
#define NU_CONN(ud)	((unsigned int)((ud) >> 16) & 0xffffff)
#define NU_BID(ud)	((unsigned int)(ud) & 0xffff)

struct nu_conn {
	bool		open;
	bool		sending;	/* a send in flight */
	bool		rearm;		/* its multishot receive ended */
	uint32_t	sent;		/* of the send in flight (short sends) */
	uint16_t	head, tail;	/* buffers received, not yet sent */
	uint16_t	bid[NU_NBUFS];
	uint32_t	len[NU_NBUFS];
};

static const struct {
	unsigned int	flags;
	const char	*name;
} nu_sets[] = {
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	  "SINGLE_ISSUER|DEFER_TASKRUN" },
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
	  "SINGLE_ISSUER|COOP_TASKRUN" },
	{ IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN" },
	{ 0, "no setup flags" },
};
#define NU_NSETS	(sizeof(nu_sets) / sizeof(nu_sets[0]))

static unsigned int nu_set;	/* the first set the kernel took */
static bool nu_zc;		/* --uring-send zc */
static char nu_why_note[256];

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *pool;
static struct nu_conn *conns;
static unsigned int nu_adds;	/* buffers added to br, not yet published */
static unsigned int nu_inuse;	/* buffers received, not yet returned */
static unsigned int nu_rearm[NU_FILES], nu_nrearm;

int net_uring_send_opt(const char *arg)
{
	if (!strcmp(arg, "copy"))
		nu_zc = false;
	else if (!strcmp(arg, "zc"))
		nu_zc = true;
	else
		return -EINVAL;
	return 0;
}

static int nu_init(unsigned int flags)
{
	struct io_uring_params p = {
		.flags = flags | IORING_SETUP_CQSIZE,
		.cq_entries = NU_CQ_ENTRIES,
	};

	return io_uring_queue_init_params(NU_ENTRIES, &ring, &p);
}

/* In the driver: the first flag set the kernel takes, and the opcodes. */
static int nu_probe(char *why, size_t len)
{
	static const int ops[] = { IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND };
	struct io_uring_probe *p;
	unsigned int i;
	int ret = -EINVAL;

	for (i = 0; i < NU_NSETS; i++) {
		ret = nu_init(nu_sets[i].flags);
		if (!ret)
			break;
	}
	if (ret) {
		snprintf(why, len, "io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	nu_set = i;
	p = io_uring_get_probe_ring(&ring);
	for (i = 0; p && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!io_uring_opcode_supported(p, ops[i]))
			ret = -EOPNOTSUPP;
	if (!ret && nu_zc && !io_uring_opcode_supported(p, IORING_OP_SEND_ZC))
		ret = -EOPNOTSUPP;
	if (p)
		io_uring_free_probe(p);
	io_uring_queue_exit(&ring);
	if (ret)
		snprintf(why, len, "the kernel lacks an opcode (accept, recv, send%s)",
			 nu_zc ? ", send_zc" : "");
	return ret;
}

static const char *nu_note(void)
{
	snprintf(nu_why_note, sizeof(nu_why_note),
		 "%s, ring fd registered, multishot accept into fixed files, multishot recv from a "
		 "provided buffer ring (%u x %u B), %s, SQEs submitted with the wait",
		 nu_sets[nu_set].name, NU_NBUFS, NET_BUF,
		 nu_zc ? "SEND_ZC from the pool registered as a fixed buffer" :
			 "SEND (copy) of the received buffer");
	return nu_why_note;
}

static int nu_listen(void)
{
	return net_listen_tcp(false);
}

static struct io_uring_sqe *nu_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static int nu_arm_accept(int lfd)
{
	struct io_uring_sqe *sqe = nu_sqe();

	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept_direct(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, NU_UD(NU_ACCEPT, 0, 0));
	return 0;
}

static int nu_arm_recv(unsigned int c)
{
	struct io_uring_sqe *sqe = nu_sqe();

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv_multishot(sqe, c, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = NU_BGID;
	io_uring_sqe_set_data64(sqe, NU_UD(NU_RECV, c, 0));
	conns[c].rearm = false;
	return 0;
}

static void nu_buf_return(unsigned int bid)
{
	nu_inuse--;
	io_uring_buf_ring_add(br, pool + (size_t)bid * NET_BUF, NET_BUF, bid,
			      io_uring_buf_ring_mask(NU_NBUFS), nu_adds++);
}

/* The oldest received buffer of c goes out (from byte c->sent on). */
static int nu_send(unsigned int c)
{
	struct nu_conn *k = &conns[c];
	unsigned int bid = k->bid[k->head % NU_NBUFS];
	uint32_t len = k->len[k->head % NU_NBUFS];
	char *buf = pool + (size_t)bid * NET_BUF + k->sent;
	struct io_uring_sqe *sqe = nu_sqe();

	if (!sqe)
		return -EBUSY;
	if (nu_zc)
		io_uring_prep_send_zc_fixed(sqe, c, buf, len - k->sent,
					    MSG_WAITALL, 0, 0);
	else
		io_uring_prep_send(sqe, c, buf, len - k->sent, MSG_WAITALL);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, NU_UD(NU_SEND, c, bid));
	k->sending = true;
	return 0;
}

static void nu_close(unsigned int c)
{
	struct io_uring_sqe *sqe;

	if (!conns[c].open)
		return;
	conns[c].open = false;
	sqe = nu_sqe();
	if (!sqe)
		return;
	io_uring_prep_close_direct(sqe, c);
	io_uring_sqe_set_data64(sqe, NU_UD(NU_CLOSE, c, 0));
}

static int nu_recv_cqe(unsigned int c, const struct io_uring_cqe *cqe)
{
	struct nu_conn *k = &conns[c];
	unsigned int bid;

	if (cqe->flags & IORING_CQE_F_BUFFER)
		nu_inuse++;
	if (!(cqe->flags & IORING_CQE_F_MORE) && !k->rearm) {
		k->rearm = true;
		nu_rearm[nu_nrearm++] = c;
	}
	if (cqe->res <= 0) {
		if (cqe->flags & IORING_CQE_F_BUFFER)
			nu_buf_return(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		/* out of buffers: armed again once some come back */
		if (cqe->res == -ENOBUFS)
			return 0;
		k->rearm = false;
		nu_close(c);
		return 0;
	}
	bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	net_add(&net_cnt.rx, cqe->res);
	k->bid[k->tail % NU_NBUFS] = bid;
	k->len[k->tail % NU_NBUFS] = cqe->res;
	k->tail++;
	if (!k->sending && k->open)
		return nu_send(c);
	return 0;
}

static int nu_send_cqe(unsigned int c, const struct io_uring_cqe *cqe)
{
	struct nu_conn *k = &conns[c];
	uint32_t len = k->len[k->head % NU_NBUFS];

	if (cqe->flags & IORING_CQE_F_NOTIF) {
		/* zero copy: the stack is done with the buffer now */
		nu_buf_return(NU_BID(cqe->user_data));
		return 0;
	}
	k->sending = false;
	if (cqe->res < 0) {
		if (!(cqe->flags & IORING_CQE_F_MORE))
			nu_buf_return(NU_BID(cqe->user_data));
		k->head++;
		k->sent = 0;
		nu_close(c);
		return 0;
	}
	net_add(&net_cnt.tx, cqe->res);
	k->sent += cqe->res;
	if (k->sent < len && k->open)
		return nu_send(c);	/* short: the rest, same buffer */
	if (!(cqe->flags & IORING_CQE_F_MORE))
		nu_buf_return(NU_BID(cqe->user_data));
	k->head++;
	k->sent = 0;
	if (k->head != k->tail && k->open)
		return nu_send(c);
	return 0;
}

static int nu_setup_buffers(void)
{
	size_t rsz = NU_NBUFS * sizeof(struct io_uring_buf);
	struct io_uring_buf_reg reg = { .ring_entries = NU_NBUFS, .bgid = NU_BGID };
	struct iovec iov;
	unsigned int i;
	int ret;

	br = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pool = mmap(NULL, (size_t)NU_NBUFS * NET_BUF, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (br == MAP_FAILED || pool == MAP_FAILED)
		return -ENOMEM;
	io_uring_buf_ring_init(br);
	reg.ring_addr = (uintptr_t)br;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret)
		return ret;
	nu_inuse = NU_NBUFS;
	for (i = 0; i < NU_NBUFS; i++)
		nu_buf_return(i);
	io_uring_buf_ring_advance(br, nu_adds);
	nu_adds = 0;
	if (nu_zc) {
		iov.iov_base = pool;
		iov.iov_len = (size_t)NU_NBUFS * NET_BUF;
		ret = io_uring_register_buffers(&ring, &iov, 1);
	}
	return ret;
}

static int nu_serve(void)
{
	struct io_uring_cqe *cqe;
	unsigned int head, seen, c, i, nfiles = NU_FILES;
	int ret, lfd = net_lfd;
	struct rlimit rl;

	ret = nu_init(nu_sets[nu_set].flags);
	if (ret)
		return ret;
	io_uring_register_ring_fd(&ring);
	conns = calloc(NU_FILES, sizeof(*conns));
	if (!conns)
		return -ENOMEM;
	/* the fixed-file table counts against RLIMIT_NOFILE */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < NU_FILES + 64)
		nfiles = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64;
	if ((ret = io_uring_register_files_sparse(&ring, nfiles)) ||
	    (ret = nu_setup_buffers()) || (ret = nu_arm_accept(lfd)))
		return ret;
	for (;;) {
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -ETIME)
			return ret;
		seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			uint64_t ud = cqe->user_data;

			seen++;
			c = NU_CONN(ud);
			switch (NU_KIND(ud)) {
			case NU_ACCEPT:
				if (cqe->res >= 0 && cqe->res < NU_FILES) {
					memset(&conns[cqe->res], 0, sizeof(conns[0]));
					conns[cqe->res].open = true;
					ret = nu_arm_recv(cqe->res);
				} else if (cqe->res >= 0) {
					ret = -EMFILE;
				}
				if (!ret && !(cqe->flags & IORING_CQE_F_MORE))
					ret = nu_arm_accept(lfd);
				break;
			case NU_RECV:
				ret = nu_recv_cqe(c, cqe);
				break;
			case NU_SEND:
				ret = nu_send_cqe(c, cqe);
				break;
			default:
				ret = 0;
			}
			if (ret)
				return ret;
		}
		io_uring_cq_advance(&ring, seen);
		if (nu_adds) {
			io_uring_buf_ring_advance(br, nu_adds);
			nu_adds = 0;
		}
		/* receives that ended (out of buffers) go on when some are free */
		if (nu_nrearm && nu_inuse < NU_NBUFS) {
			for (i = 0; i < nu_nrearm; i++)
				if (conns[nu_rearm[i]].rearm &&
				    conns[nu_rearm[i]].open &&
				    (ret = nu_arm_recv(nu_rearm[i])))
					return ret;
			nu_nrearm = 0;
		}
	}
}

const struct net_srv net_uring = {
	.name = "uring",
	.label = "io_uring",
	.probe = nu_probe,
	.note = nu_note,
	.listen = nu_listen,
	.serve = nu_serve,
};

#endif
