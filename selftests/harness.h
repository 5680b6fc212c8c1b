/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's kselftest_harness.h, kept quiet about its own unused
 * parameters under -Wextra -Werror.
 */
#ifndef QD_HARNESS_H
#define QD_HARNESS_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#endif /* QD_HARNESS_H */
