// SPDX-License-Identifier: GPL-2.0
/* /proc/qd: module-wide counters, one "key value" per line. */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "opdef.h"
#include "stats.h"

struct qd_stats qd_stats;

static int qd_stats_show(struct seq_file *m, void *v)
{
	int i;

	seq_puts(m, "version 1\n");
	seq_printf(m, "contexts %ld\n", atomic_long_read(&qd_stats.contexts));
	seq_printf(m, "queues %ld\n", atomic_long_read(&qd_stats.queues));
	seq_printf(m, "regions %ld\n", atomic_long_read(&qd_stats.regions));
	seq_printf(m, "pinned_pages %ld\n",
		   atomic_long_read(&qd_stats.pinned_pages));
	seq_printf(m, "inflight %ld\n", atomic_long_read(&qd_stats.inflight));
	seq_printf(m, "overflowed %ld\n",
		   atomic_long_read(&qd_stats.overflowed));
	seq_printf(m, "payload_bytes_copied %ld\n",
		   atomic_long_read(&qd_stats.payload_bytes_copied));
	seq_printf(m, "invalid_opcode %ld\n",
		   atomic_long_read(&qd_stats.invalid_opcode));
	for (i = 0; i < QD_OP_LAST; i++)
		seq_printf(m, "op %s submitted %ld completed %ld failed %ld\n",
			   qd_opdefs[i].name,
			   atomic_long_read(&qd_stats.op[i].submitted),
			   atomic_long_read(&qd_stats.op[i].completed),
			   atomic_long_read(&qd_stats.op[i].failed));
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
