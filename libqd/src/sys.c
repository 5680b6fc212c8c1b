// SPDX-License-Identifier: MIT
/* The raw system calls on /dev/qd (see sys.h). */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/qd.h>

#include "sys.h"

int qd__sys_open(void)
{
	int fd = open(QD_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int qd__sys_close(int fd)
{
	return close(fd) ? -errno : 0;
}

int qd__sys_ioctl(int fd, unsigned long req, void *arg)
{
	int ret = ioctl(fd, req, arg);

	return ret < 0 ? -errno : ret;
}

void *qd__sys_mmap(int fd, size_t len, uint64_t off, int *err)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, fd, (off_t)off);

	if (p == MAP_FAILED)
		*err = -errno;
	return p;
}

int qd__sys_munmap(void *addr, size_t len)
{
	return munmap(addr, len) ? -errno : 0;
}
