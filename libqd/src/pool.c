// SPDX-License-Identifier: MIT
/*
 * Buffer pools for socket pops (QD_FEAT_POOL; the kernel side is
 * kmod/pool.c). A plain qd_pop() on a socket used to bring a 64 KiB buffer
 * that stayed pinned for as long as the pop waited: a server with 10,000
 * idle connections held 10,000 of them. Now the pop brings none
 * (QD_POP_POOL): libqd keeps a pool of the context's stocked with buffers
 * from its allocator (QD_OP_PROVIDE, without a token, SKIP_SUCCESS), and
 * the kernel takes them only when bytes arrive. The popper owns what it
 * gets, as before (qd_sgafree()).
 *
 * Two pools: stream sockets take up to QD_SGA_MAX buffers of 16 KiB per
 * pop (group 0); datagram sockets one 64 KiB buffer per datagram, so that
 * any datagram fits (group 1). Each is kept at QD_SOCK_POOL buffers
 * (environment; default 64; 0 turns pools off and pops bring their own
 * buffer again) and refilled when it falls below half that: when a pop is
 * queued, and before a wait sleeps, so a pool drained by completions the
 * application has not consumed yet is refilled before anyone could wait
 * on a pop that starves for it. in_kernel counts the buffers provided and
 * not yet back in a CQE (QD_CQE_F_POOL), or handed back by a failed
 * PROVIDE (whose CQE carries them, as a failed forget push does).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "int.h"
#include "region.h"
#include "syscall.h"

#define POOL_DEFAULT	64
#define POOL_MAX	4096

struct pool {
	uint32_t	size;		/* bytes per buffer */
	int32_t		in_kernel;	/* atomic */
	uint8_t		used;		/* a pop took from it: keep it stocked */
	uint8_t		busy;		/* a thread refills it (atomic flag) */
};

static struct pool pools[QD_POOLS] = {
	[QD_POOL_STREAM] = { .size = 16384 },
	[QD_POOL_DGRAM] = { .size = 65536 },
};

/* Buffers each pool keeps: QD_SOCK_POOL, read once; 0 = no pools. */
static uint32_t pool_target(void)
{
	static int32_t target = -1;
	int32_t t = __atomic_load_n(&target, __ATOMIC_RELAXED);
	const char *e;
	long v;

	if (t >= 0)
		return (uint32_t)t;
	e = getenv("QD_SOCK_POOL");
	v = e && *e ? strtol(e, NULL, 10) : POOL_DEFAULT;
	t = (int32_t)(v < 0 ? POOL_DEFAULT : v > POOL_MAX ? POOL_MAX : v);
	__atomic_store_n(&target, t, __ATOMIC_RELAXED);
	return (uint32_t)t;
}

int qd__pool_for(int kind)
{
	if (!(qd__ctx.features & QD_FEAT_POOL) || !pool_target())
		return -1;
	return kind == SOCK_DGRAM ? QD_POOL_DGRAM : QD_POOL_STREAM;
}

/* Provide up to n buffers of p (group g), QD_SGA_MAX per SQE: how many. */
static int provide(struct pool *p, uint32_t g, int32_t n)
{
	struct qd_seg segs[QD_SGA_MAX];
	struct qd_sga bufs[QD_SGA_MAX];
	int k, i, done = 0;

	while (n > 0) {
		for (k = 0; k < QD_SGA_MAX && k < n; k++) {
			bufs[k] = qd_sgaalloc(p->size);
			if (!bufs[k].numsegs ||
			    qd__alloc_translate(&bufs[k], &segs[k])) {
				if (bufs[k].numsegs)
					qd_sgafree(&bufs[k]);
				break;
			}
		}
		if (!k)
			return done;
		__atomic_add_fetch(&p->in_kernel, k, __ATOMIC_RELAXED);
		if (qd__submit_provide(segs, (uint32_t)k, g)) {
			__atomic_sub_fetch(&p->in_kernel, k, __ATOMIC_RELAXED);
			for (i = 0; i < k; i++)
				qd_sgafree(&bufs[i]);
			return done;
		}
		n -= k;
		done += k;
	}
	return done;
}

/*
 * Bring pool g back to its target if it fell below half of it: buffers
 * provided (their SQEs are queued on the calling thread's ring).
 */
int qd__pool_stock(int g)
{
	struct pool *p = &pools[g];
	int32_t target = (int32_t)pool_target();
	int32_t have = __atomic_load_n(&p->in_kernel, __ATOMIC_RELAXED);
	int n;

	if (!__atomic_load_n(&p->used, __ATOMIC_RELAXED))
		__atomic_store_n(&p->used, 1, __ATOMIC_RELAXED);

	if (have > 0 && 2 * have >= target)
		return 0;
	if (__atomic_exchange_n(&p->busy, 1, __ATOMIC_ACQUIRE))
		return 0;
	have = __atomic_load_n(&p->in_kernel, __ATOMIC_RELAXED);
	n = provide(p, (uint32_t)g, target - have);
	__atomic_store_n(&p->busy, 0, __ATOMIC_RELEASE);
	return n;
}

/* Before a wait sleeps: every pool in use stocked. */
int qd__pool_stock_all(void)
{
	int g, n = 0;

	for (g = 0; g < QD_POOLS; g++)
		if (__atomic_load_n(&pools[g].used, __ATOMIC_RELAXED))
			n += qd__pool_stock(g);
	return n;
}

/* n buffers of pool g came back in a CQE (reap, any thread). */
void qd__pool_back(int g, unsigned int n)
{
	if (g >= 0 && g < QD_POOLS)
		__atomic_sub_fetch(&pools[g].in_kernel, (int32_t)n,
				   __ATOMIC_RELAXED);
}

/* A fork child has no context, hence no pools. */
void qd__pool_forget(void)
{
	int g;

	for (g = 0; g < QD_POOLS; g++) {
		pools[g].in_kernel = 0;
		pools[g].used = 0;
		pools[g].busy = 0;
	}
}
