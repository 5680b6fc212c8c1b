// SPDX-License-Identifier: GPL-2.0
/* /proc/qd: module-wide counters, one "key value" per line. */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "opdef.h"
#include "stats.h"

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
		for (i = 0; i < QD_OP_LAST; i++) {
			sum->op[i].submitted += READ_ONCE(c->op[i].submitted);
			sum->op[i].completed += READ_ONCE(c->op[i].completed);
			sum->op[i].failed += READ_ONCE(c->op[i].failed);
		}
	}
}

static int qd_stats_show(struct seq_file *m, void *v)
{
	struct qd_pcpu_stats sum;
	int i;

	qd_pcpu_sum(&sum);
	seq_puts(m, "version 1\n");
	seq_printf(m, "contexts %ld\n", atomic_long_read(&qd_stats.contexts));
	seq_printf(m, "queues %ld\n", atomic_long_read(&qd_stats.queues));
	seq_printf(m, "regions %ld\n", atomic_long_read(&qd_stats.regions));
	seq_printf(m, "pinned_pages %ld\n",
		   atomic_long_read(&qd_stats.pinned_pages));
	seq_printf(m, "inflight %ld\n", sum.inflight);
	seq_printf(m, "overflowed %ld\n",
		   atomic_long_read(&qd_stats.overflowed));
	seq_printf(m, "payload_bytes_copied %ld\n",
		   atomic_long_read(&qd_stats.payload_bytes_copied));
	seq_printf(m, "invalid_opcode %lu\n", sum.invalid_opcode);
	for (i = 0; i < QD_OP_LAST; i++)
		seq_printf(m, "op %s submitted %lu completed %lu failed %lu\n",
			   qd_opdefs[i].name, sum.op[i].submitted,
			   sum.op[i].completed, sum.op[i].failed);
	return 0;
}

int qd_stats_init(void)
{
	if (!proc_create_single("qd", 0444, NULL, qd_stats_show))
		return -ENOMEM;
	return 0;
}

void qd_stats_exit(void)
{
	remove_proc_entry("qd", NULL);
}
