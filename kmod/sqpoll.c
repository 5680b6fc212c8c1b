// SPDX-License-Identifier: GPL-2.0
/*
 * SQ polling (QD_SETUP_SQPOLL): one kernel thread per context, the poller,
 * consumes the SQs of all the context's rings, so that a busy application
 * submits by publishing its SQ tail, without a system call. It is io_uring's
 * SQPOLL thread built from what a module may use: create_io_thread() is not
 * exported, so it is a kthread that
 *  - borrows the owner's mm while it is awake (kthread_use_mm(), as vhost),
 *  - submits with the owner's credentials (override_creds()),
 *  - charges what it allocates to the owner's memory cgroup
 *    (set_active_memcg(): a kthread is otherwise never charged),
 *  - lives in the owner's cgroups (cgroup_attach_task_all()) at the owner's
 *    nice value, so that its CPU time is the owner's to pay.
 *
 * Wake protocol (uapi/linux/qd.h): after idle without new SQEs the poller
 * sets QD_SQ_F_NEED_WAKEUP in every ring's SQ flags, makes a full barrier
 * and looks at every SQ tail once more; user space publishes its tail, makes
 * a full barrier and reads the flag. One of the two sees the other.
 *
 * The mm: the ring mappings (their vmas) hold the context's file, so a
 * poller that kept the mm (mm_users) would keep the context alive for ever
 * after its owner died. It holds the mm only while awake and lets go as soon
 * as it is the mm's last user (its owner's threads are gone): mmput_async()
 * then tears the mm down elsewhere, the mappings drop the file, and the
 * release stops the poller.
 *
 * Lifetime: the poller holds a context reference and a module reference,
 * and the poller and the context's release each hold a reference on the
 * struct qd_sqpoll. The release asks it to stop and waits (killably) until
 * it no longer touches the context, so that the context is freed when
 * close() returns as without a poller; the poller exits on its own
 * (module_put_and_kthread_exit()), never through kthread_stop(), so that a
 * poller stuck in a fault (userfaultfd) cannot make a close unkillable.
 *
 * Contexts and locks: the poller runs in process context and may sleep. It
 * takes a ring's sq_lock (the SQ's consumer, as QD_IOC_ENTER does; it waits
 * for an enter that holds it, as another enter would, so that no SQE is
 * left behind by a lost race) and never ctx->lock. Submission is
 * QD_IOC_ENTER's own (submit.c: admission by max_inflight, a CQE for every
 * SQE consumed, each SQE copied once).
 * qd_sqpoll_create() and qd_sqpoll_stop() run in process context without
 * ctx->lock (QD_IOC_SETUP, release); qd_sqpoll_wake() in QD_IOC_ENTER;
 * qd_sqpoll_show() in a debugfs read.
 */
#include <linux/cgroup.h>
#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/module.h>
#include <linux/refcount.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "ctx.h"
#include "sqpoll.h"
#include "submit.h"

/* SQEs taken from one ring before the poller moves to the next. */
#define QD_SQPOLL_BATCH		32

enum qd_sqpoll_state {
	QD_SQP_RUNNING,
	QD_SQP_SLEEPING,
	QD_SQP_ORPHANED,	/* the owner's mm is gone: nothing to do */
};

static const char *const qd_sqpoll_states[] = {
	[QD_SQP_RUNNING] = "running",
	[QD_SQP_SLEEPING] = "sleeping",
	[QD_SQP_ORPHANED] = "orphaned",
};

struct qd_sqpoll {
	refcount_t refs;		/* the poller's and the release's */
	struct qd_ctx *ctx;		/* referenced until the poller exits */
	struct task_struct *task;	/* referenced */
	pid_t pid;
	struct mem_cgroup *memcg;	/* the owner's: charged for our allocations */
	struct completion exited;	/* the poller is done with ctx */
	unsigned long idle;		/* jiffies without new SQEs, then sleep */
	u32 idle_ms;
	bool stop;			/* set once by qd_sqpoll_stop() */
	bool woken;			/* QD_ENTER_SQ_WAKEUP since it slept */
	/* The poller's own (no lock). */
	bool mm_held;			/* mmget() and kthread_use_mm() */
	u32 nr_seen;			/* rings whose flags it manages */
	/* Written by the poller, read by debugfs. */
	u8 state;
	uid_t euid;
	u64 submitted;
	u64 sleeps;
	u64 wakeups;
};

static void qd_sqpoll_put(struct qd_sqpoll *sqp)
{
	if (!refcount_dec_and_test(&sqp->refs))
		return;
	mem_cgroup_put(sqp->memcg);
	put_task_struct(sqp->task);
	kfree(sqp);
}

/* Set every known ring's SQ flags to flags. The poller. */
static void qd_sqpoll_set_flags(struct qd_sqpoll *sqp, u32 flags)
{
	struct qd_ctx *ctx = sqp->ctx;
	u32 i;

	sqp->nr_seen = qd_ctx_nr_rings(ctx);
	for (i = 0; i < sqp->nr_seen; i++)
		WRITE_ONCE(ctx->rings[i]->sq.hdr->flags, flags);
}

/*
 * One look at every ring: up to QD_SQPOLL_BATCH SQEs from each that has
 * some and whose SQ nobody else is consuming. Returns SQEs consumed.
 * The poller, with the owner's mm.
 */
static u32 qd_sqpoll_pass(struct qd_sqpoll *sqp)
{
	struct qd_ctx *ctx = sqp->ctx;
	u32 i, n = qd_ctx_nr_rings(ctx), done = 0;
	struct qd_ring *ring;
	int ret;

	/* Rings made since the last look start asleep (rings.c): not so. */
	for (i = sqp->nr_seen; i < n; i++)
		WRITE_ONCE(ctx->rings[i]->sq.hdr->flags, 0);
	sqp->nr_seen = n;

	for (i = 0; i < n && !READ_ONCE(sqp->stop); i++) {
		ring = ctx->rings[i];
		ring->sq.poll_tail = READ_ONCE(ring->sq.hdr->tail);
		/* A racy look at the consumer's head; sq_lock decides. */
		if (ring->sq.poll_tail == data_race(ring->sq.head))
			continue;
		/*
		 * The holder is an enter of the owner's, which finishes or
		 * dies. A kthread gets no signals: "interruptible" only keeps
		 * a long wait (that enter stuck in a fault) out of the hung
		 * task detector and the load average.
		 */
		if (mutex_lock_interruptible(&ring->sq_lock))
			continue;
		ret = qd_submit_sqes(ring, QD_SQPOLL_BATCH);
		mutex_unlock(&ring->sq_lock);
		if (ret > 0)
			done += ret;
		cond_resched();
	}
	WRITE_ONCE(sqp->submitted, sqp->submitted + done);
	return done;
}

/* SQEs published (or rings made) since the poller last looked. */
static bool qd_sqpoll_news(struct qd_sqpoll *sqp)
{
	struct qd_ctx *ctx = sqp->ctx;
	u32 i, n = qd_ctx_nr_rings(ctx);
	struct qd_ring *ring;

	if (n != sqp->nr_seen)
		return true;
	for (i = 0; i < n; i++) {
		ring = ctx->rings[i];
		if (READ_ONCE(ring->sq.hdr->tail) != ring->sq.poll_tail)
			return true;
	}
	return false;
}

/* Borrow the owner's mm; false once it is gone. The poller. */
static bool qd_sqpoll_mm_get(struct qd_sqpoll *sqp)
{
	struct mm_struct *mm = sqp->ctx->mm;

	if (!mmget_not_zero(mm))
		return false;
	kthread_use_mm(mm);
	sqp->mm_held = true;
	return true;
}

static void qd_sqpoll_mm_put(struct qd_sqpoll *sqp)
{
	struct mm_struct *mm = sqp->ctx->mm;

	if (!sqp->mm_held)
		return;
	kthread_unuse_mm(mm);
	sqp->mm_held = false;
	/* Perhaps the last user: the teardown releases the context. */
	mmput_async(mm);
}

/*
 * The poller is the mm's only user: every thread of the owner has exited
 * (each holds mm_users while it lives, and no new user can appear once
 * they are gone: get_task_mm() refuses kthreads).
 */
static bool qd_sqpoll_orphaned(struct qd_sqpoll *sqp)
{
	return atomic_read(&sqp->ctx->mm->mm_users) == 1;
}

static bool qd_sqpoll_should_wake(struct qd_sqpoll *sqp, bool orphaned)
{
	return READ_ONCE(sqp->stop) || (!orphaned && READ_ONCE(sqp->woken));
}

/*
 * Sleep until QD_ENTER_SQ_WAKEUP or a stop (only a stop when orphaned),
 * unless SQEs arrived after NEED_WAKEUP was set. The poller, without the
 * mm. TASK_IDLE: a sleeping poller adds nothing to the load average.
 */
static void qd_sqpoll_sleep(struct qd_sqpoll *sqp, bool orphaned)
{
	WRITE_ONCE(sqp->woken, false);
	/* A wake-up after the flag below must not be cleared by the above. */
	smp_mb();
	qd_sqpoll_set_flags(sqp, QD_SQ_F_NEED_WAKEUP);
	/* Pairs with user space's barrier between its tail and the flag. */
	smp_mb();
	if (!orphaned && qd_sqpoll_news(sqp)) {
		qd_sqpoll_set_flags(sqp, 0);
		return;
	}
	WRITE_ONCE(sqp->state, orphaned ? QD_SQP_ORPHANED : QD_SQP_SLEEPING);
	WRITE_ONCE(sqp->sleeps, sqp->sleeps + 1);
	for (;;) {
		set_current_state(TASK_IDLE);
		/* wake_up_process() orders the waker's store before this. */
		if (qd_sqpoll_should_wake(sqp, orphaned))
			break;
		schedule();
	}
	__set_current_state(TASK_RUNNING);
	if (orphaned)
		return;
	WRITE_ONCE(sqp->state, QD_SQP_RUNNING);
	if (READ_ONCE(sqp->woken))
		WRITE_ONCE(sqp->wakeups, sqp->wakeups + 1);
	qd_sqpoll_set_flags(sqp, 0);
}

static int qd_sqpoll_thread(void *data)
{
	struct qd_sqpoll *sqp = data;
	struct qd_ctx *ctx = sqp->ctx;
	const struct cred *old_cred;
	struct mem_cgroup *old_memcg;
	unsigned long idle_end;
	bool orphaned = false;

	old_cred = override_creds(ctx->cred);
	old_memcg = set_active_memcg(sqp->memcg);
	WRITE_ONCE(sqp->euid, from_kuid_munged(&init_user_ns, current_euid()));

	idle_end = jiffies + sqp->idle;
	while (!READ_ONCE(sqp->stop)) {
		if (orphaned) {
			qd_sqpoll_sleep(sqp, true);
			continue;
		}
		if (!sqp->mm_held && !qd_sqpoll_mm_get(sqp)) {
			orphaned = true;
			continue;
		}
		if (qd_sqpoll_pass(sqp)) {
			idle_end = jiffies + sqp->idle;
			cond_resched();
			continue;
		}
		if (qd_sqpoll_orphaned(sqp)) {
			qd_sqpoll_mm_put(sqp);
			orphaned = true;
			continue;
		}
		if (time_before(jiffies, idle_end)) {
			cond_resched();
			cpu_relax();
			continue;
		}
		qd_sqpoll_mm_put(sqp);
		qd_sqpoll_sleep(sqp, false);
		idle_end = jiffies + sqp->idle;
	}

	qd_sqpoll_mm_put(sqp);
	set_active_memcg(old_memcg);
	revert_creds(old_cred);
	qd_ctx_put(ctx);
	/* After this the release may free the context and go. */
	complete(&sqp->exited);
	qd_sqpoll_put(sqp);
	module_put_and_kthread_exit(0);
}

/*
 * A poller for ctx, not running yet: qd_sqpoll_start() or qd_sqpoll_stop().
 * QD_IOC_SETUP, process context, no lock held; current is the owner.
 */
struct qd_sqpoll *qd_sqpoll_create(struct qd_ctx *ctx, u32 idle_ms)
{
	struct task_struct *task;
	struct qd_sqpoll *sqp;
	int ret;

	sqp = kzalloc(sizeof(*sqp), GFP_KERNEL_ACCOUNT);
	if (!sqp)
		return ERR_PTR(-ENOMEM);
	refcount_set(&sqp->refs, 2);
	sqp->ctx = ctx;
	sqp->idle_ms = idle_ms ?: QD_SQPOLL_DEFAULT_IDLE_MS;
	sqp->idle = msecs_to_jiffies(sqp->idle_ms);
	init_completion(&sqp->exited);
	sqp->memcg = get_mem_cgroup_from_mm(current->mm);

	task = kthread_create(qd_sqpoll_thread, sqp, "qd-sqp-%d",
			      task_tgid_nr(current));
	if (IS_ERR(task)) {
		mem_cgroup_put(sqp->memcg);
		kfree(sqp);
		return ERR_CAST(task);
	}
	/* From here on the thread runs and exits, and puts these. */
	get_task_struct(task);
	sqp->task = task;
	sqp->pid = task_pid_nr(task);
	qd_ctx_get(ctx);
	__module_get(THIS_MODULE);

	/* Its CPU time is the owner's: its cgroups, its nice value. */
	ret = cgroup_attach_task_all(current, task);
	if (ret) {
		qd_sqpoll_stop(sqp);
		return ERR_PTR(ret);
	}
	set_user_nice(task, task_nice(current));
	return sqp;
}

/* Let the poller run: it is the context's (ctx->sqp). */
void qd_sqpoll_start(struct qd_sqpoll *sqp)
{
	wake_up_process(sqp->task);
}

/*
 * Stop the poller and drop the caller's reference. Waits until the poller
 * is done with the context, unless a fatal signal comes first (then the
 * poller's own context reference keeps the context until it is). Process
 * context, no lock held: the release, or a QD_IOC_SETUP that failed.
 */
void qd_sqpoll_stop(struct qd_sqpoll *sqp)
{
	WRITE_ONCE(sqp->stop, true);
	wake_up_process(sqp->task);
	wait_for_completion_killable(&sqp->exited);
	qd_sqpoll_put(sqp);
}

/* QD_ENTER_SQ_WAKEUP. Process context (the owner), the context live. */
void qd_sqpoll_wake(struct qd_sqpoll *sqp)
{
	WRITE_ONCE(sqp->woken, true);
	wake_up_process(sqp->task);
}

/* The info file's sqpoll lines. Process context (debugfs). */
void qd_sqpoll_show(struct seq_file *m, struct qd_sqpoll *sqp)
{
	seq_printf(m, "sqpoll_pid %d\n", sqp->pid);
	seq_printf(m, "sqpoll_state %s\n",
		   qd_sqpoll_states[READ_ONCE(sqp->state)]);
	seq_printf(m, "sqpoll_idle_ms %u\n", sqp->idle_ms);
	seq_printf(m, "sqpoll_euid %u\n", READ_ONCE(sqp->euid));
	seq_printf(m, "sqpoll_submitted %llu\n", READ_ONCE(sqp->submitted));
	seq_printf(m, "sqpoll_sleeps %llu\n", READ_ONCE(sqp->sleeps));
	seq_printf(m, "sqpoll_wakeups %llu\n", READ_ONCE(sqp->wakeups));
}
