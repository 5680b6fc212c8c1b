// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/qd: counters, one "key value" per line.
 *
 * A reader with CAP_SYS_ADMIN (checked when it opens the file) sees the
 * whole module ("scope all") and the per-opcode counters; any other reader
 * sees only sums over the contexts of its own real uid ("scope uid N"), as
 * /proc hides other users' processes: qd's global counters would otherwise
 * let any user watch another's activity.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "ctx.h"
#include "opdef.h"
#include "stats.h"
#include "user.h"

struct qd_stats qd_stats;
DEFINE_PER_CPU(struct qd_pcpu_stats, qd_pcpu_stats);

static void qd_pcpu_sum(struct qd_pcpu_stats *sum)
{
	const struct qd_pcpu_stats *c;
	int cpu, i;

	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		c = per_cpu_ptr(&qd_pcpu_stats, cpu);
		sum->inflight += READ_ONCE(c->inflight);
		sum->invalid_opcode += READ_ONCE(c->invalid_opcode);
		sum->sock_bytes_in += READ_ONCE(c->sock_bytes_in);
		sum->sock_bytes_out += READ_ONCE(c->sock_bytes_out);
		sum->sock_zc_pushes += READ_ONCE(c->sock_zc_pushes);
		sum->sock_zc_bytes += READ_ONCE(c->sock_zc_bytes);
		sum->sock_zc_copied += READ_ONCE(c->sock_zc_copied);
		sum->sock_copy_pushes += READ_ONCE(c->sock_copy_pushes);
		sum->file_bytes_read += READ_ONCE(c->file_bytes_read);
		sum->file_bytes_written += READ_ONCE(c->file_bytes_written);
		sum->file_bios += READ_ONCE(c->file_bios);
		sum->file_punted += READ_ONCE(c->file_punted);
		sum->file_errors += READ_ONCE(c->file_errors);
		for (i = 0; i < QD_OP_COUNT; i++) {
			sum->op[i].submitted += READ_ONCE(c->op[i].submitted);
			sum->op[i].completed += READ_ONCE(c->op[i].completed);
			sum->op[i].failed += READ_ONCE(c->op[i].failed);
		}
	}
}

static void qd_stats_show_all(struct seq_file *m)
{
	struct qd_pcpu_stats sum;
	int i;

	qd_pcpu_sum(&sum);
	seq_puts(m, "scope all\n");
	seq_printf(m, "contexts %ld\n", atomic_long_read(&qd_stats.contexts));
	seq_printf(m, "queues %ld\n", atomic_long_read(&qd_stats.queues));
	seq_printf(m, "regions %ld\n", atomic_long_read(&qd_stats.regions));
	seq_printf(m, "pinned_pages %ld\n",
		   atomic_long_read(&qd_stats.pinned_pages));
	seq_printf(m, "inflight %ld\n", sum.inflight);
	seq_printf(m, "queued %ld\n", qd_user_queued_total());
	seq_printf(m, "overflowed %ld\n",
		   atomic_long_read(&qd_stats.overflowed));
	seq_printf(m, "invalid_opcode %lu\n", sum.invalid_opcode);
	seq_printf(m, "sockets %ld\n", atomic_long_read(&qd_stats.sockets));
	seq_printf(m, "sock_bytes_in %lu\n", sum.sock_bytes_in);
	seq_printf(m, "sock_bytes_out %lu\n", sum.sock_bytes_out);
	seq_printf(m, "sock_zc_pushes %lu\n", sum.sock_zc_pushes);
	seq_printf(m, "sock_zc_bytes %lu\n", sum.sock_zc_bytes);
	seq_printf(m, "sock_zc_copied %lu\n", sum.sock_zc_copied);
	seq_printf(m, "sock_zc_inflight %ld\n",
		   atomic_long_read(&qd_stats.sock_zc_inflight));
	seq_printf(m, "sock_copy_pushes %lu\n", sum.sock_copy_pushes);
	seq_printf(m, "files %ld\n", atomic_long_read(&qd_stats.files));
	seq_printf(m, "file_bytes_read %lu\n", sum.file_bytes_read);
	seq_printf(m, "file_bytes_written %lu\n", sum.file_bytes_written);
	seq_printf(m, "file_bios %lu\n", sum.file_bios);
	seq_printf(m, "file_punted %lu\n", sum.file_punted);
	seq_printf(m, "file_errors %lu\n", sum.file_errors);
	seq_printf(m, "derived %ld\n", atomic_long_read(&qd_stats.derived));
	for (i = 0; i < QD_OP_COUNT; i++)
		seq_printf(m, "op %s submitted %lu completed %lu failed %lu\n",
			   qd_opdefs[i].name, sum.op[i].submitted,
			   sum.op[i].completed, sum.op[i].failed);
}

static void qd_stats_show_user(struct seq_file *m, kuid_t uid)
{
	struct qd_ctx_sums s;

	qd_ctx_sum_uid(uid, &s);
	seq_printf(m, "scope uid %u\n",
		   from_kuid_munged(seq_user_ns(m), uid));
	seq_printf(m, "contexts %ld\n", s.contexts);
	seq_printf(m, "queues %ld\n", s.queues);
	seq_printf(m, "regions %ld\n", s.regions);
	seq_printf(m, "pinned_pages %ld\n", s.pinned_pages);
	seq_printf(m, "inflight %ld\n", s.inflight);
	seq_printf(m, "queued %ld\n", s.queued);
	seq_printf(m, "sockets %ld\n", s.sockets);
	seq_printf(m, "files %ld\n", s.files);
}

static int qd_stats_show(struct seq_file *m, void *v)
{
	const struct cred *cred = m->file->f_cred;

	seq_puts(m, "version 2\n");
	if (m->private)
		qd_stats_show_all(m);
	else
		qd_stats_show_user(m, cred->uid);
	return 0;
}

static int qd_stats_open(struct inode *inode, struct file *file)
{
	/* Decided at open, like other /proc files: not by a later reader. */
	void *all = capable(CAP_SYS_ADMIN) ? (void *)1 : NULL;

	return single_open(file, qd_stats_show, all);
}

static const struct proc_ops qd_stats_ops = {
	.proc_open = qd_stats_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};

int qd_stats_init(void)
{
	if (!proc_create("qd", 0444, NULL, &qd_stats_ops))
		return -ENOMEM;
	return 0;
}

void qd_stats_exit(void)
{
	remove_proc_entry("qd", NULL);
}
