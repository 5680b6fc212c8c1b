// SPDX-License-Identifier: GPL-2.0
/*
 * poll: a /dev/qd fd in poll(2) and epoll(7) event loops.
 *
 * EPOLLIN means "CQEs to reap": CQEs in the ring, or completions parked in
 * the kernel's overflow list (which the owner's poll moves into the ring).
 * Whoever moves parked completions into the ring wakes the sleepers; an
 * epoll registration made before QD_IOC_SETUP works; EPOLLET fires once per
 * new batch; a process that is not the owner gets EPOLLERR.
 *
 * Tests that need a thread asleep in poll/epoll_wait/ENTER wait until
 * /proc says it is (state S in that system call) rather than sleeping a
 * fixed time. "Promptly" means well under the sleeper's 3 s timeout.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "qd_raw.h"
#include "qd_child.h"
#include "qd_proc.h"
#include "harness.h"

#define SLEEP_MS	3000			/* a sleeper's timeout */
#define PROMPT_NS	(1500 * QD_RAW_MS)	/* woken "at once", with margin */
#define LONG_NS		(2000 * QD_RAW_MS)

/* --- helpers -------------------------------------------------------------- */

/* Queue n NOPs (user_data first..first+n-1) and submit them, batch by batch. */
static int submit_nops(struct qd_raw *r, unsigned int first, unsigned int n)
{
	unsigned int done = 0;

	while (done < n) {
		unsigned int b = 0;
		int ret;

		while (done + b < n) {
			struct qd_sqe s = qd_sqe_nop(first + done + b);

			if (qd_raw_queue_sqe(r, &s))
				break;
			b++;
		}
		ret = qd_raw_submit(r);
		if (ret < 0)
			return ret;
		if (ret != (int)b)
			return -EAGAIN;	/* the kernel left SQEs: not expected here */
		done += b;
	}
	return 0;
}

/* Reap every CQE in the ring without entering; check their user_data runs
 * on from *next. Returns how many, or -EIO on a gap. */
static int drain_ring(struct qd_raw *r, unsigned int *next)
{
	struct qd_cqe cqe;
	int n = 0;

	while (qd_raw_peek_cqe(r, &cqe, NULL)) {
		if (next) {
			if (cqe.user_data != *next || cqe.res)
				return -EIO;
			(*next)++;
		}
		n++;
	}
	return n;
}

/*
 * Fill the CQ ring and park `parked` more completions in the overflow list,
 * then reap the ring without entering: the ring is empty, the completions
 * are parked and the ring has room for them. user_data 0..cq+parked-1.
 */
#define PARK_AND_DRAIN(r, parked) do {					\
	unsigned int __next = 0;					\
	ASSERT_EQ(0, submit_nops((r), 0, (r)->cq_entries + (parked)));	\
	ASSERT_EQ((r)->cq_entries, qd_raw_cq_ready(r));			\
	ASSERT_TRUE(!!(qd_load_acquire((r)->cq_flags) & QD_CQ_F_OVERFLOW));	\
	ASSERT_EQ((int)(r)->cq_entries, drain_ring((r), &__next));	\
	ASSERT_EQ(0u, qd_raw_cq_ready(r));				\
	ASSERT_TRUE(!!(qd_load_acquire((r)->cq_flags) & QD_CQ_F_OVERFLOW));	\
} while (0)

/* The parked completions, now in the ring, in order after the first cq. */
#define EXPECT_PARKED_IN_RING(r, parked) do {				\
	unsigned int __next = (r)->cq_entries;				\
	EXPECT_EQ((int)(parked), drain_ring((r), &__next))		\
		TH_LOG("ring: %u ready, next user_data %u",		\
		       qd_raw_cq_ready(r), __next);			\
	EXPECT_EQ(0, !!(qd_load_acquire((r)->cq_flags) & QD_CQ_F_OVERFLOW)); \
} while (0)

/* A thread asleep in poll / epoll_wait / QD_IOC_ENTER. */
enum sleep_kind { SLEEP_POLL, SLEEP_EPOLL, SLEEP_ENTER };

struct sleeper {
	enum sleep_kind kind;
	int fd;			/* qd fd (poll, ENTER) or epoll fd */
	unsigned int min_complete;	/* ENTER */
	pthread_t thread;
	pid_t tid;		/* set before it sleeps */
	int done;		/* atomic: returned */
	long ret;		/* the system call's result (-errno) */
	unsigned int events;	/* revents / epoll events */
	long long ns;		/* time spent in the system call */
};

static long sleep_syscall_nr(enum sleep_kind k)
{
	return k == SLEEP_POLL ? SYS_poll : k == SLEEP_EPOLL ? SYS_epoll_wait : SYS_ioctl;
}

static void *sleeper_fn(void *arg)
{
	struct sleeper *s = arg;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN | POLLRDNORM };
	struct epoll_event ev = { 0 };
	struct qd_enter e = {
		.min_complete = s->min_complete,
		.flags = QD_RAW_WAIT, .timeout_ns = SLEEP_MS * QD_RAW_MS,
	};
	long long t0;

	__atomic_store_n(&s->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	t0 = qd_now_ns();
	/* the raw system calls, so that /proc/.../syscall names them */
	switch (s->kind) {
	case SLEEP_POLL:
		s->ret = syscall(SYS_poll, &pfd, 1, SLEEP_MS);
		s->events = pfd.revents;
		break;
	case SLEEP_EPOLL:
		s->ret = syscall(SYS_epoll_wait, s->fd, &ev, 1, SLEEP_MS);
		s->events = ev.events;
		break;
	case SLEEP_ENTER:
		s->ret = syscall(SYS_ioctl, s->fd, QD_IOC_ENTER, &e);
		break;
	}
	if (s->ret < 0)
		s->ret = -errno;
	s->ns = qd_now_ns() - t0;
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Start a sleeper and wait until it is asleep in its system call (1), or has
 * already returned (0). -ETIMEDOUT if neither happens within 10 s.
 */
static int sleeper_start(struct sleeper *s)
{
	long long end;

	s->done = 0;
	s->tid = 0;
	if (pthread_create(&s->thread, NULL, sleeper_fn, s))
		return -EAGAIN;
	end = qd_now_ns() + 10000 * QD_RAW_MS;
	while (qd_now_ns() < end) {
		pid_t tid = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);

		if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
			return 0;
		if (tid && qd_task_asleep_in(tid, sleep_syscall_nr(s->kind)))
			return 1;
		sched_yield();
	}
	return -ETIMEDOUT;
}

static void sleeper_join(struct sleeper *s)
{
	pthread_join(s->thread, NULL);
}

/* poll(2) with a zero timeout: the revents, or -errno. */
static int poll_now(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDNORM };
	int ret = poll(&pfd, 1, 0);

	if (ret < 0)
		return -errno;
	return ret ? pfd.revents : 0;
}

static int epoll_add(int ep, int fd, unsigned int events, __u64 data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* epoll_wait for one event: 0 or 1, its events in *ev, or -errno. */
static int epoll_one(int ep, int ms, unsigned int *events)
{
	struct epoll_event ev = { 0 };
	int ret = epoll_wait(ep, &ev, 1, ms);

	if (ret < 0)
		return -errno;
	if (events)
		*events = ret ? ev.events : 0;
	return ret;
}

/* --- fixture: a context with an 8-entry SQ and CQ ------------------------- */

FIXTURE(poll) {
	struct qd_raw r;
	int ep;
};

FIXTURE_SETUP(poll)
{
	ASSERT_EQ(0, qd_raw_init(&self->r, 8, 8));
	self->ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, self->ep);
}

FIXTURE_TEARDOWN(poll)
{
	if (self->ep >= 0)
		close(self->ep);
	qd_raw_exit(&self->r);
}

TEST_F(poll, poll_reports_cqes_in_the_ring_and_parked_completions)
{
	struct qd_raw *r = &self->r;

	/* nothing, then CQEs in the ring until they are reaped */
	EXPECT_EQ(0, poll_now(r->fd));
	ASSERT_EQ(0, submit_nops(r, 0, 3));
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_now(r->fd));
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_now(r->fd));
	EXPECT_EQ(3, drain_ring(r, NULL));
	EXPECT_EQ(0, poll_now(r->fd));

	/* the ring is empty, four completions are parked: EPOLLIN */
	PARK_AND_DRAIN(r, 4);
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_now(r->fd));
	/* and the owner's poll moved them into the ring, in order */
	EXPECT_PARKED_IN_RING(r, 4);
	EXPECT_EQ(0, poll_now(r->fd));
}

TEST_F(poll, epoll_reports_parked_completions)
{
	struct qd_raw *r = &self->r;
	static unsigned int ev;

	ASSERT_EQ(0, epoll_add(self->ep, r->fd, EPOLLIN, 1));
	EXPECT_EQ(0, epoll_one(self->ep, 0, NULL));
	PARK_AND_DRAIN(r, 5);
	EXPECT_EQ(1, epoll_one(self->ep, SLEEP_MS, &ev));
	EXPECT_TRUE(!!(ev & EPOLLIN));
	EXPECT_PARKED_IN_RING(r, 5);
	EXPECT_EQ(0, epoll_one(self->ep, 0, NULL));
}

TEST_F(poll, epoll_registered_before_setup_fires_on_first_completion)
{
	struct qd_raw r = { .fd = -1 };
	struct sleeper s = { .kind = SLEEP_EPOLL };
	static unsigned int ev;
	int ep;

	r.fd = qd_raw_open();
	ASSERT_LE(0, r.fd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	/* an event loop adds the fd as soon as it has it */
	ASSERT_EQ(0, epoll_add(ep, r.fd, EPOLLIN, 7));
	EXPECT_EQ(0, epoll_one(ep, 0, NULL));
	r.p.sq_entries = 4;
	r.p.cq_entries = 8;
	ASSERT_EQ(0, qd_raw_setup(r.fd, &r.p));
	ASSERT_EQ(0, qd_raw_map(&r));
	EXPECT_EQ(0, epoll_one(ep, 0, NULL));

	/* the loop sleeps; the first completion must wake it */
	s.fd = ep;
	ASSERT_EQ(1, sleeper_start(&s));
	ASSERT_EQ(0, submit_nops(&r, 0, 1));
	sleeper_join(&s);
	EXPECT_EQ(1, s.ret) TH_LOG("epoll_wait slept %lld ms", s.ns / QD_RAW_MS);
	EXPECT_TRUE(!!(s.events & EPOLLIN));
	EXPECT_GT(PROMPT_NS, s.ns);

	/* and keeps working: level-triggered until reaped, then quiet */
	EXPECT_EQ(1, epoll_one(ep, 0, &ev));
	EXPECT_EQ(1, drain_ring(&r, NULL));
	EXPECT_EQ(0, epoll_one(ep, 0, NULL));
	ASSERT_EQ(0, submit_nops(&r, 1, 2));
	EXPECT_EQ(1, epoll_one(ep, SLEEP_MS, &ev));
	EXPECT_TRUE(!!(ev & EPOLLIN));
	close(ep);
	qd_raw_exit(&r);
}

TEST_F(poll, enter_moving_parked_cqes_wakes_a_poll_sleeper)
{
	struct qd_raw *r = &self->r;
	struct sleeper s = { .kind = SLEEP_POLL, .fd = r->fd };
	int asleep;

	PARK_AND_DRAIN(r, 8);
	asleep = sleeper_start(&s);
	ASSERT_LE(0, asleep);
	/* another thread's enter (nothing to submit) moves them in */
	EXPECT_EQ(0, qd_raw_enter(r, 0, 0, 0, 0));
	sleeper_join(&s);
	EXPECT_EQ(1, s.ret) TH_LOG("poll %s, slept %lld ms",
				    asleep ? "slept" : "returned at once", s.ns / QD_RAW_MS);
	EXPECT_EQ(POLLIN | POLLRDNORM, (int)s.events);
	EXPECT_GT(PROMPT_NS, s.ns);
	EXPECT_PARKED_IN_RING(r, 8);
}

TEST_F(poll, enter_moving_parked_cqes_wakes_an_epoll_sleeper)
{
	struct qd_raw *r = &self->r;
	struct sleeper s = { .kind = SLEEP_EPOLL, .fd = self->ep };
	int asleep;

	PARK_AND_DRAIN(r, 8);
	ASSERT_EQ(0, epoll_add(self->ep, r->fd, EPOLLIN, 1));
	asleep = sleeper_start(&s);
	ASSERT_LE(0, asleep);
	EXPECT_EQ(0, qd_raw_enter(r, 0, 0, 0, 0));
	sleeper_join(&s);
	EXPECT_EQ(1, s.ret) TH_LOG("epoll_wait %s, slept %lld ms",
				    asleep ? "slept" : "returned at once", s.ns / QD_RAW_MS);
	EXPECT_TRUE(!!(s.events & EPOLLIN));
	EXPECT_GT(PROMPT_NS, s.ns);
	EXPECT_PARKED_IN_RING(r, 8);
}

TEST_F(poll, epollet_gets_one_event_per_new_batch)
{
	struct qd_raw *r = &self->r;
	struct sleeper s = { .kind = SLEEP_EPOLL, .fd = self->ep };
	static unsigned int ev;
	unsigned int next = 0;

	ASSERT_EQ(0, epoll_add(self->ep, r->fd, EPOLLIN | EPOLLET, 1));
	EXPECT_EQ(0, epoll_one(self->ep, 0, NULL));

	/* a batch: one event; the CQEs stay unreaped but no second event */
	ASSERT_EQ(0, submit_nops(r, 0, 3));
	EXPECT_EQ(1, epoll_one(self->ep, SLEEP_MS, &ev));
	EXPECT_TRUE(!!(ev & EPOLLIN));
	EXPECT_EQ(0, epoll_one(self->ep, 0, NULL));
	/* the next batch: one more */
	ASSERT_EQ(0, submit_nops(r, 3, 2));
	EXPECT_EQ(1, epoll_one(self->ep, SLEEP_MS, &ev));
	EXPECT_EQ(0, epoll_one(self->ep, 0, NULL));
	EXPECT_EQ(5, drain_ring(r, &next));
	EXPECT_EQ(0, epoll_one(self->ep, 0, NULL));

	/* a batch that overflows the ring: one event */
	ASSERT_EQ(0, submit_nops(r, 5, r->cq_entries + 4));
	EXPECT_EQ(1, epoll_one(self->ep, SLEEP_MS, &ev));
	EXPECT_EQ(0, epoll_one(self->ep, 0, NULL));
	EXPECT_EQ((int)r->cq_entries, drain_ring(r, &next));
	EXPECT_TRUE(!!(qd_load_acquire(r->cq_flags) & QD_CQ_F_OVERFLOW));

	/*
	 * The parked four reach the ring when another thread enters: a new
	 * batch, so the edge-triggered sleeper must be woken.
	 */
	ASSERT_EQ(1, sleeper_start(&s));
	EXPECT_EQ(0, qd_raw_enter(r, 0, 0, 0, 0));
	sleeper_join(&s);
	EXPECT_EQ(1, s.ret) TH_LOG("epoll_wait slept %lld ms", s.ns / QD_RAW_MS);
	EXPECT_TRUE(!!(s.events & EPOLLIN));
	EXPECT_GT(PROMPT_NS, s.ns);
	EXPECT_EQ(4, drain_ring(r, &next));
	EXPECT_EQ(5 + r->cq_entries + 4, next);
	EXPECT_EQ(0, epoll_one(self->ep, 0, NULL));
}

/*
 * A raw consumer that reaped the ring while completions are parked: its
 * QD_IOC_ENTER(GETEVENTS, min_complete 1) returns at once.
 *
 * Then the harder case: a thread sleeping in QD_IOC_ENTER(GETEVENTS,
 * min_complete 4) is woken by
 * completions that fill the ring and park four more; before it runs again,
 * another thread reaps the ring. The waiter must not go back to sleep with
 * four completions parked and the ring empty. The reaper runs SCHED_FIFO on
 * the waiter's CPU, so the waiter cannot run between the completions and
 * the reap.
 */
TEST_F(poll, getevents_never_sleeps_while_completions_are_parked)
{
	struct qd_raw *r = &self->r;
	struct sleeper s = { .kind = SLEEP_ENTER, .fd = r->fd, .min_complete = 4 };
	struct sched_param fifo = { .sched_priority = 1 }, other = { 0 };
	unsigned int next = 0;
	cpu_set_t one;
	long long t0;
	int cpu;

	PARK_AND_DRAIN(r, 4);
	t0 = qd_now_ns();
	EXPECT_EQ(0, qd_raw_enter(r, 0, 1, QD_RAW_WAIT, SLEEP_MS * QD_RAW_MS));
	EXPECT_GT(PROMPT_NS, qd_now_ns() - t0);
	EXPECT_PARKED_IN_RING(r, 4);
	next = r->cq_entries + 4;

	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo))
		SKIP(return, "no SCHED_FIFO (needs CAP_SYS_NICE)");
	ASSERT_EQ(0, pthread_setschedparam(pthread_self(), SCHED_OTHER, &other));
	cpu = sched_getcpu();
	ASSERT_LE(0, cpu);
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	/* the waiter inherits the mask */
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(one), &one));
	ASSERT_EQ(1, sleeper_start(&s));
	ASSERT_EQ(0, pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo));
	/* 12 completions: 8 in the ring (waking the waiter), 4 parked */
	EXPECT_EQ(0, submit_nops(r, next, r->cq_entries + 4));
	EXPECT_EQ((int)r->cq_entries, drain_ring(r, &next));
	EXPECT_TRUE(!!(qd_load_acquire(r->cq_flags) & QD_CQ_F_OVERFLOW));
	EXPECT_EQ(0, __atomic_load_n(&s.done, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, pthread_setschedparam(pthread_self(), SCHED_OTHER, &other));
	sleeper_join(&s);
	EXPECT_EQ(0, s.ret) TH_LOG("ENTER slept %lld ms", s.ns / QD_RAW_MS);
	EXPECT_GT(PROMPT_NS, s.ns);
	/* the four parked ones are in the ring now, in order */
	EXPECT_EQ(4, drain_ring(r, &next));
	EXPECT_EQ(0, !!(qd_load_acquire(r->cq_flags) & QD_CQ_F_OVERFLOW));
}

/* --- not the owner ---------------------------------------------------------- */

/* In a process that is not the context's owner: poll and epoll say EPOLLERR. */
static void child_polls_epollerr(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep, rev = poll_now(fd);

	CHILD_CHECK(rev >= 0);
	CHILD_CHECK(rev & POLLERR);
	CHILD_CHECK(!(rev & POLLIN));
	ep = epoll_create1(0);
	CHILD_CHECK(ep >= 0);
	CHILD_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	memset(&ev, 0, sizeof(ev));
	CHILD_CHECK(epoll_wait(ep, &ev, 1, SLEEP_MS) == 1);
	CHILD_CHECK(ev.events & EPOLLERR);
	CHILD_CHECK(!(ev.events & EPOLLIN));
	close(ep);
}

TEST_F(poll, forked_child_polling_the_inherited_fd_gets_epollerr)
{
	struct qd_raw *r = &self->r;
	pid_t pid;

	/* CQEs in the ring: the owner would see EPOLLIN */
	ASSERT_EQ(0, submit_nops(r, 0, 2));
	ASSERT_EQ(POLLIN | POLLRDNORM, poll_now(r->fd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		child_polls_epollerr(r->fd);
		_exit(0);
	}
	EXPECT_EQ(0, qd_wait_child(pid));
	/* the owner's view is unchanged */
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_now(r->fd));
	EXPECT_EQ(2, drain_ring(r, NULL));
}

/* Send fd over a unix socket (SCM_RIGHTS): 0 or -errno. */
static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char c = 0;
	struct iovec iov = { &c, 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -errno;
}

TEST_F(poll, fd_passed_to_another_process_polls_epollerr)
{
	struct qd_raw *r = &self->r;
	int sv[2], st;
	pid_t pid;
	char c = 0;

	/* the receiver is forked before the context it gets exists */
	qd_raw_exit(r);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &c, 1 };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *cm;
		int fd;

		close(sv[0]);
		CHILD_CHECK(recvmsg(sv[1], &mh, 0) == 1);
		cm = CMSG_FIRSTHDR(&mh);
		CHILD_CHECK(cm && cm->cmsg_type == SCM_RIGHTS);
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		child_polls_epollerr(fd);
		CHILD_CHECK(qd_raw_enter(&(struct qd_raw){ .fd = fd }, 0, 0, 0, 0) == -EPERM);
		_exit(0);
	}
	close(sv[1]);
	ASSERT_EQ(0, qd_raw_init(r, 8, 8));
	ASSERT_EQ(0, submit_nops(r, 0, 1));
	ASSERT_EQ(0, send_fd(sv[0], r->fd));
	st = qd_wait_child(pid);
	close(sv[0]);
	EXPECT_EQ(0, st);
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_now(r->fd));
}

/* --- an event loop mixing qd and a pipe ----------------------------------- */

#define LOOP_RECORDS	24

struct writer {
	int fd;
	unsigned char rec[LOOP_RECORDS];
};

static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	int i;

	for (i = 0; i < LOOP_RECORDS; i++)
		if (write(w->fd, &w->rec[i], 1) != 1)
			break;
	return NULL;
}

/*
 * One epoll loop, level-triggered, over a pipe and a qd fd registered before
 * QD_IOC_SETUP. Each pipe record asks for n NOPs (up to 12, through a
 * 4-entry SQ and CQ); qd events reap the ring, and nothing else ever enters
 * the kernel for completions. Every NOP must come back, in order, and the
 * loop must never sit in epoll_wait with work done but not reported.
 */
TEST_F(poll, epoll_loop_mixes_qd_and_a_pipe)
{
	struct qd_raw r = { .fd = -1 };
	struct writer w;
	pthread_t wt;
	unsigned int want = 0, queued = 0, reaped = 0, records = 0;
	unsigned int pipe_events = 0, qd_events = 0, parked = 0;
	int ep, pfd[2], i;

	for (i = 0; i < LOOP_RECORDS; i++) {
		w.rec[i] = (unsigned char)(1 + (i * 5) % 12);
		want += w.rec[i];
	}
	w.rec[LOOP_RECORDS - 1] = 12;	/* ends with more than the CQ holds */
	want += 12 - (1 + ((LOOP_RECORDS - 1) * 5) % 12);

	r.fd = qd_raw_open();
	ASSERT_LE(0, r.fd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	ASSERT_EQ(0, epoll_add(ep, r.fd, EPOLLIN, 1));
	ASSERT_EQ(0, epoll_add(ep, pfd[0], EPOLLIN, 2));
	r.p.sq_entries = 4;
	r.p.cq_entries = 4;
	ASSERT_EQ(0, qd_raw_setup(r.fd, &r.p));
	ASSERT_EQ(0, qd_raw_map(&r));
	w.fd = pfd[1];
	ASSERT_EQ(0, pthread_create(&wt, NULL, writer_fn, &w));

	while (reaped < want) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, SLEEP_MS);

		ASSERT_LE(0, n);
		ASSERT_LT(0, n) TH_LOG("loop stalled: %u/%u records, %u queued, %u reaped, "
				       "ring %u, overflow flag %u, SQ %u",
				       records, LOOP_RECORDS, queued, reaped,
				       qd_raw_cq_ready(&r),
				       !!(qd_load_acquire(r.cq_flags) & QD_CQ_F_OVERFLOW),
				       qd_raw_sq_pending(&r));
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 == 2) {
				unsigned char k;

				pipe_events++;
				ASSERT_EQ(1, read(pfd[0], &k, 1));
				records++;
				queued += k;	/* want NOPs queued..queued+k-1 */
			} else {
				struct qd_cqe cqe;

				ASSERT_EQ(1u, evs[i].data.u64);
				qd_events++;
				while (qd_raw_peek_cqe(&r, &cqe, NULL)) {
					ASSERT_EQ(reaped, cqe.user_data);
					ASSERT_EQ(0, cqe.res);
					reaped++;
				}
			}
		}
		/*
		 * Hand the kernel what the pipe asked for, SQ-full after
		 * SQ-full, without reaping: completions beyond the CQ park.
		 * Stop when the kernel takes nothing (its in-flight cap).
		 */
		for (;;) {
			int ret;

			while (*r.sq_tail < queued) {
				struct qd_sqe s = qd_sqe_nop(*r.sq_tail);

				if (qd_raw_queue_sqe(&r, &s))
					break;
			}
			if (!qd_raw_sq_pending(&r))
				break;
			ret = qd_raw_submit(&r);
			ASSERT_LE(0, ret);
			if (qd_load_acquire(r.cq_flags) & QD_CQ_F_OVERFLOW)
				parked++;
			if (!ret)
				break;
		}
	}
	EXPECT_EQ(LOOP_RECORDS, (int)records);
	EXPECT_EQ(want, reaped);
	EXPECT_LT(0u, pipe_events);
	EXPECT_LT(0u, qd_events);
	/* the loop did leave completions parked for poll to find */
	EXPECT_LT(0u, parked);
	EXPECT_EQ(0u, qd_raw_cq_ready(&r));
	pthread_join(wt, NULL);
	close(pfd[0]);
	close(pfd[1]);
	close(ep);
	qd_raw_exit(&r);
}

TEST_HARNESS_MAIN
