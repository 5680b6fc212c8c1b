/* SPDX-License-Identifier: MIT */
/*
 * The raw operating-system calls on /dev/qd, and nothing else. The host unit
 * tests link a fake kernel (tests/fake_kernel.c) in place of sys.c.
 * Each returns >= 0 or -errno (qd__sys_mmap: MAP_FAILED and *err).
 */
#ifndef LIBQD_SYS_H
#define LIBQD_SYS_H

#include <stddef.h>
#include <stdint.h>

int qd__sys_open(void);
int qd__sys_close(int fd);
int qd__sys_ioctl(int fd, unsigned long req, void *arg);
void *qd__sys_mmap(int fd, size_t len, uint64_t off, int *err);
int qd__sys_munmap(void *addr, size_t len);

#endif
