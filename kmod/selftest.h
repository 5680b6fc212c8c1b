/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _QD_SELFTEST_H
#define _QD_SELFTEST_H

#ifdef CONFIG_QD_SELFTEST
int qd_selftest(void);
#else
static inline int qd_selftest(void)
{
	return 0;
}
#endif

#endif /* _QD_SELFTEST_H */
