// SPDX-License-Identifier: GPL-2.0
/*
 * The opcode table. Adding an opcode touches this table and its family
 * file (nop.c, queue.c, sockop.c, ...), nothing else.
 */
#include "opdef.h"

const struct qd_opdef qd_opdefs[QD_OP_COUNT] = {
	[QD_OP_NOP] = {
		.name = "nop",
		.op_flags = QD_NOP_HARDIRQ | QD_NOP_SOFTIRQ,
		.prep = qd_nop_prep,
		.issue = qd_nop_issue,
	},
	[QD_OP_PUSH] = {
		.name = "push",
		.op_flags = QD_PUSH_ZC | QD_PUSH_COPY | QD_PUSH_AT,
		.addr2 = true,
		.prep = qd_push_prep,
		.issue = qd_push_issue,
	},
	[QD_OP_POP] = {
		.name = "pop",
		.op_flags = QD_POP_MULTISHOT | QD_POP_POOL | QD_POP_AT,
		.no_skip = true,
		.addr2 = true,
		.resv0 = true,
		.prep = qd_pop_prep,
		.issue = qd_pop_issue,
	},
	[QD_OP_CANCEL] = {
		.name = "cancel",
		.prep = qd_cancel_prep,
		.issue = qd_cancel_issue,
	},
	[QD_OP_WAKE] = {
		.name = "wake",
		.prep = qd_wake_prep,
		.issue = qd_wake_issue,
	},
	[QD_OP_ACCEPT] = {
		.name = "accept",
		.no_skip = true,
		.prep = qd_accept_prep,
		.issue = qd_accept_issue,
	},
	[QD_OP_CONNECT] = {
		.name = "connect",
		.addr2 = true,
		.resv0 = true,
		.prep = qd_connect_prep,
		.issue = qd_connect_issue,
	},
	[QD_OP_PUSHTO] = {
		.name = "pushto",
		.op_flags = QD_PUSH_ZC | QD_PUSH_COPY,
		.addr2 = true,
		.resv0 = true,
		.prep = qd_pushto_prep,
		.issue = qd_pushto_issue,
	},
	[QD_OP_OPEN] = {
		.name = "open",
		.no_skip = true,
		.addr2 = true,
		.resv0 = true,
		.prep = qd_open_prep,
		.issue = qd_open_issue,
	},
	[QD_OP_SYNC] = {
		.name = "sync",
		.op_flags = QD_SYNC_DATASYNC | QD_SYNC_FLUSH,
		.prep = qd_sync_prep,
		.issue = qd_sync_issue,
	},
	[QD_OP_PROVIDE] = {
		.name = "provide",
		.op_flags = QD_PROVIDE_RECLAIM,
		.resv0 = true,
		.prep = qd_provide_prep,
		.issue = qd_provide_issue,
	},
};
