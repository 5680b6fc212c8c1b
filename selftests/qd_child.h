/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qd_child.h: helpers for tests that fork a child to run as a different
 * kind of process (no CAP_IPC_LOCK, a small RLIMIT_MEMLOCK, ...).
 */
#ifndef QD_CHILD_H
#define QD_CHILD_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* In a child: report the failing line on stderr and exit non-zero. */
#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# child %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		_exit(1);						\
	}								\
} while (0)

/* Clear CAP_IPC_LOCK from the effective, permitted and inheritable sets. */
static inline int qd_drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	unsigned int bit = 1u << (CAP_IPC_LOCK % 32);

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[CAP_IPC_LOCK / 32].effective &= ~bit;
	d[CAP_IPC_LOCK / 32].permitted &= ~bit;
	d[CAP_IPC_LOCK / 32].inheritable &= ~bit;
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

static inline int qd_set_memlock(rlim_t bytes)
{
	struct rlimit rl = { bytes, bytes };

	return setrlimit(RLIMIT_MEMLOCK, &rl) ? -errno : 0;
}

/* Exit status of a child, 128 + signal if it was killed, -1 on error. */
static inline int qd_wait_child(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The unprivileged user tests run as ("nobody"). */
#define QD_NOBODY	65534

/*
 * Become uid (real, effective, saved) and its gid, with no supplementary
 * groups. From root this drops every capability. 0 or -errno.
 */
static inline int qd_become_uid(uid_t uid)
{
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
		return -errno;
	return 0;
}

/* Write a string to a file (sysfs, cgroupfs): 0 or -errno. */
static inline int qd_write_file(const char *path, const char *val)
{
	size_t len = strlen(val);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return (size_t)n == len ? 0 : -EIO;
}

/* Read a file's first line (without the newline) into buf: 0 or -errno. */
static inline int qd_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* A file holding one decimal number (memory.current, refcnt, ...), or -1. */
static inline long long qd_read_ll(const char *path)
{
	char buf[64];

	if (qd_read_line(path, buf, sizeof(buf)))
		return -1;
	return strtoll(buf, NULL, 10);
}

/* --- cgroup v2 --------------------------------------------------------- */

#define QD_CGROUP_ROOT	"/sys/fs/cgroup"

/*
 * Make the cgroup2 hierarchy available at QD_CGROUP_ROOT with the memory
 * controller enabled for its children. If nothing is mounted there, it is
 * mounted in a private mount namespace of the calling process (so the guest's
 * mounts are left alone). *enabled_memory says whether this call had to
 * enable +memory in the root's cgroup.subtree_control (undo it with
 * qd_cgroup_memory_restore()). 0, or -errno with why[] saying what is missing.
 */
static inline int qd_cgroup_memory_ready(int *enabled_memory, char *why, size_t whylen)
{
	char buf[512];
	struct statfs sf;
	int ret;

	*enabled_memory = 0;
	if (statfs(QD_CGROUP_ROOT, &sf) || sf.f_type != CGROUP2_SUPER_MAGIC) {
		if (unshare(CLONE_NEWNS) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
			ret = -errno;
			snprintf(why, whylen, "no private mount namespace: %s", strerror(-ret));
			return ret;
		}
		if (mount("cgroup2", QD_CGROUP_ROOT, "cgroup2", 0, NULL)) {
			ret = -errno;
			snprintf(why, whylen, "cannot mount cgroup2 on %s: %s",
				 QD_CGROUP_ROOT, strerror(-ret));
			return ret;
		}
	}
	ret = qd_read_line(QD_CGROUP_ROOT "/cgroup.controllers", buf, sizeof(buf));
	if (ret) {
		snprintf(why, whylen, "cannot read cgroup.controllers: %s", strerror(-ret));
		return ret;
	}
	if (!strstr(buf, "memory")) {
		snprintf(why, whylen, "no memory controller in cgroup2 (controllers: '%s')", buf);
		return -EOPNOTSUPP;
	}
	ret = qd_read_line(QD_CGROUP_ROOT "/cgroup.subtree_control", buf, sizeof(buf));
	if (ret == -EIO)	/* empty file */
		buf[0] = 0;
	else if (ret) {
		snprintf(why, whylen, "cannot read cgroup.subtree_control: %s", strerror(-ret));
		return ret;
	}
	if (!strstr(buf, "memory")) {
		ret = qd_write_file(QD_CGROUP_ROOT "/cgroup.subtree_control", "+memory");
		if (ret) {
			snprintf(why, whylen, "cannot enable +memory: %s", strerror(-ret));
			return ret;
		}
		*enabled_memory = 1;
	}
	return 0;
}

/* Undo what qd_cgroup_memory_ready() enabled (best effort). */
static inline void qd_cgroup_memory_restore(int enabled_memory)
{
	if (enabled_memory)
		qd_write_file(QD_CGROUP_ROOT "/cgroup.subtree_control", "-memory");
}

/* Move the calling process into the cgroup at dir: 0 or -errno. */
static inline int qd_cgroup_enter(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	return qd_write_file(path, "0");
}

/* memory.current of the cgroup at dir in bytes, or -1. */
static inline long long qd_cgroup_memory_current(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/memory.current", dir);
	return qd_read_ll(path);
}

#endif /* QD_CHILD_H */
