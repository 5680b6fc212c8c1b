/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qdbench derived: a stream of which 1 in N elements is wanted, consumed
 * through an in-kernel filter (qd_filter), by popping everything and
 * filtering in the application, and through libqd's callback filter
 * (qd_filter_fn), side by side (derived.c; Documentation/tools.md).
 */
#ifndef QDBENCH_DERIVED_H
#define QDBENCH_DERIVED_H

int derived_main(int argc, char **argv);

#endif /* QDBENCH_DERIVED_H */
