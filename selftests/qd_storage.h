/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qd_storage.h: block devices and file systems for the storage tests, made
 * and removed from the test itself (in the guest, as root):
 *  - null_blk devices through configfs (memory-backed, a block size, and
 *    delayed completions: irqmode 2 with completion_nsec), /dev/<its name>;
 *  - device-mapper devices (dmsetup: error, linear, flakey), /dev/dm-N;
 *  - ext4 made on a device and tmpfs (size=) mounted under /tmp/qdst.*.
 * Every name starts with QD_ST_PREFIX so that qd_st_sweep() can remove what
 * a test that died (a timeout, a failed setup) left behind before the next
 * one starts. Functions return 0 or -errno unless they say otherwise.
 */
#ifndef QD_STORAGE_H
#define QD_STORAGE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define QD_ST_PREFIX	"qdst"
#define QD_ST_MNT	"/tmp/qdst."
#define QD_NULLB_CFG	"/sys/kernel/config/nullb"

/* Run a shell command (output to stderr): its exit status, or -1. */
static inline int qd_sh(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline int qd_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Write val to dir/attr (configfs): 0 or -errno. */
static inline int qd_st_attr(const char *dir, const char *attr, const char *val)
{
	char path[256];
	size_t len = strlen(val);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	n = n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
	close(fd);
	return (int)n;
}

/* Wait up to ms for path to be a block device: 0 or -ENODEV. */
static inline int qd_st_wait_blk(const char *path, int ms)
{
	struct stat st;
	int i;

	for (i = 0; i <= ms / 10; i++) {
		if (!stat(path, &st) && S_ISBLK(st.st_mode))
			return 0;
		usleep(10000);
	}
	return -ENODEV;
}

/* --- null_blk ----------------------------------------------------------- */

struct qd_nullb {
	char	cfg[128];	/* its configfs directory ("" once removed) */
	char	dev[64];	/* /dev/<name> */
	int	index;
};

struct qd_nullb_conf {
	unsigned int	size_mb;
	unsigned int	bs;		/* logical block size: 512 or 4096 */
	int		irqmode;	/* 0 none, 1 softirq, 2 timer */
	unsigned long	completion_nsec;	/* irqmode 2: each request's delay */
	unsigned int	queue_depth;	/* 0: null_blk's default */
	int		no_memory;	/* 1: not memory backed (reads zeroes) */
};

/* null_blk loaded (nr_devices=0) and configfs mounted. */
static inline int qd_nullb_ready(void)
{
	struct stat st;

	if (stat("/sys/module/null_blk", &st) &&
	    qd_sh("modprobe null_blk nr_devices=0 >&2"))
		return -ENOENT;
	if (stat(QD_NULLB_CFG, &st)) {
		mount("none", "/sys/kernel/config", "configfs", 0, NULL);
		if (stat(QD_NULLB_CFG, &st))
			return -ENOENT;
	}
	return 0;
}

/* Remove a device made by qd_nullb_create() (blocks until its I/O ends). */
static inline int qd_nullb_remove(struct qd_nullb *nb)
{
	int ret = 0;

	if (nb->cfg[0] && rmdir(nb->cfg) && errno != ENOENT)
		ret = -errno;
	if (!ret)
		nb->cfg[0] = 0;
	return ret;
}

/* A null_blk device QD_ST_PREFIX<tag><pid>: 0 with nb filled, or -errno. */
static inline int qd_nullb_create(struct qd_nullb *nb, const char *tag,
				  const struct qd_nullb_conf *c)
{
	char v[32], path[192];
	FILE *f;
	int ret;

	memset(nb, 0, sizeof(*nb));
	ret = qd_nullb_ready();
	if (ret)
		return ret;
	snprintf(nb->cfg, sizeof(nb->cfg), "%s/%s%s%d", QD_NULLB_CFG,
		 QD_ST_PREFIX, tag, (int)getpid());
	if (mkdir(nb->cfg, 0755)) {
		ret = -errno;
		nb->cfg[0] = 0;
		return ret;
	}
#define QD_NB_SET(attr, fmt, val) do {					\
		snprintf(v, sizeof(v), fmt, val);			\
		ret = qd_st_attr(nb->cfg, attr, v);			\
		if (ret)						\
			goto err;					\
	} while (0)
	QD_NB_SET("size", "%u", c->size_mb);
	QD_NB_SET("blocksize", "%u", c->bs ? c->bs : 512);
	QD_NB_SET("memory_backed", "%d", !c->no_memory);
	QD_NB_SET("irqmode", "%d", c->irqmode);
	if (c->completion_nsec)
		QD_NB_SET("completion_nsec", "%lu", c->completion_nsec);
	if (c->queue_depth)
		QD_NB_SET("hw_queue_depth", "%u", c->queue_depth);
	QD_NB_SET("power", "%d", 1);
#undef QD_NB_SET
	snprintf(path, sizeof(path), "%s/index", nb->cfg);
	f = fopen(path, "re");
	ret = -EIO;
	if (!f || fscanf(f, "%d", &nb->index) != 1) {
		if (f)
			fclose(f);
		goto err;
	}
	fclose(f);
	/* 6.1 names the disk after the configfs directory, older kernels nullbN */
	snprintf(nb->dev, sizeof(nb->dev), "/dev/%s", strrchr(nb->cfg, '/') + 1);
	ret = qd_st_wait_blk(nb->dev, 2000);
	if (ret) {
		snprintf(nb->dev, sizeof(nb->dev), "/dev/nullb%d", nb->index);
		ret = qd_st_wait_blk(nb->dev, 2000);
	}
	if (ret)
		goto err;
	return 0;
err:
	qd_nullb_remove(nb);
	return ret;
}

/* --- device mapper ------------------------------------------------------ */

struct qd_dm {
	char	name[64];	/* "" once removed */
	char	dev[64];	/* /dev/dm-N */
};

/* The /dev/dm-N of the device-mapper device called name: 0 or -ENOENT. */
static inline int qd_dm_node(const char *name, char *dev, size_t len)
{
	char path[300], buf[128];
	struct dirent *d;
	int ret = -ENOENT;
	DIR *dir = opendir("/sys/block");
	FILE *f;

	if (!dir)
		return -ENOENT;
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, "dm-", 3))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dm/name", d->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\n")] = 0;
			if (!strcmp(buf, name)) {
				ret = snprintf(dev, len, "/dev/%s", d->d_name) <
				      (int)len ? 0 : -ENAMETOOLONG;
			}
		}
		fclose(f);
		if (!ret)
			break;
	}
	closedir(dir);
	return ret;
}

/* dmsetup create QD_ST_PREFIX<tag><pid> with table: 0 or -errno. */
static inline int qd_dm_create(struct qd_dm *dm, const char *tag, const char *table)
{
	struct stat st;
	int ret;

	memset(dm, 0, sizeof(*dm));
	if (stat("/sys/module/dm_mod", &st) && qd_sh("modprobe dm_mod >&2"))
		return -ENOENT;
	if (strstr(table, " flakey ") && stat("/sys/module/dm_flakey", &st) &&
	    qd_sh("modprobe dm_flakey >&2"))
		return -ENOENT;
	snprintf(dm->name, sizeof(dm->name), "%s%s%d", QD_ST_PREFIX, tag, (int)getpid());
	if (qd_sh("dmsetup --noudevsync create %s --table '%s' >&2", dm->name, table)) {
		dm->name[0] = 0;
		return -EIO;
	}
	ret = qd_dm_node(dm->name, dm->dev, sizeof(dm->dev));
	if (!ret)
		ret = qd_st_wait_blk(dm->dev, 5000);
	if (ret) {
		qd_sh("dmsetup --noudevsync remove --force %s >&2", dm->name);
		dm->name[0] = 0;
	}
	return ret;
}

/* Load table into dm (suspend, load, resume): 0 or -EIO. */
static inline int qd_dm_reload(struct qd_dm *dm, const char *table)
{
	return qd_sh("dmsetup --noudevsync suspend --noflush %s && "
		     "dmsetup --noudevsync load %s --table '%s' && "
		     "dmsetup --noudevsync resume %s >&2",
		     dm->name, dm->name, table, dm->name) ? -EIO : 0;
}

static inline int qd_dm_remove(struct qd_dm *dm)
{
	if (!dm->name[0])
		return 0;
	if (qd_sh("dmsetup --noudevsync remove --force %s >&2", dm->name))
		return -EBUSY;
	dm->name[0] = 0;
	return 0;
}

/* Sectors of a block device, or -errno. */
static inline long long qd_blk_sectors(const char *dev)
{
	char path[128];
	const char *base = strrchr(dev, '/');
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/block/%s/size", base ? base + 1 : dev);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fscanf(f, "%lld", &v) != 1)
		v = -EIO;
	fclose(f);
	return v;
}

/* --- file systems ------------------------------------------------------- */

/* A fresh directory QD_ST_MNT.XXXXXX in dir (PATH_MAX bytes): 0 or -errno. */
static inline int qd_st_mkdtemp(char *dir)
{
	strcpy(dir, QD_ST_MNT "XXXXXX");
	return mkdtemp(dir) ? 0 : -errno;
}

/* mkfs.ext4 on dev, mounted at a fresh directory dir. */
static inline int qd_ext4_mount(const char *dev, char *dir)
{
	struct stat st;
	int ret;

	if (stat("/sys/module/ext4", &st) && stat("/sys/fs/ext4", &st))
		qd_sh("modprobe ext4 >&2");
	if (qd_sh("mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 %s >&2", dev))
		return -EIO;
	ret = qd_st_mkdtemp(dir);
	if (ret)
		return ret;
	if (mount(dev, dir, "ext4", 0, NULL)) {
		ret = -errno;
		rmdir(dir);
		dir[0] = 0;
	}
	return ret;
}

/* tmpfs with opts ("size=1m") at a fresh directory dir. */
static inline int qd_tmpfs_mount(const char *opts, char *dir)
{
	int ret = qd_st_mkdtemp(dir);

	if (ret)
		return ret;
	if (mount("tmpfs", dir, "tmpfs", 0, opts)) {
		ret = -errno;
		rmdir(dir);
		dir[0] = 0;
	}
	return ret;
}

/*
 * Unmount and remove dir (made by the mounts above). A file qd keeps its
 * file system busy until it is released, a moment after the last op: wait
 * for that, then detach it anyway.
 */
static inline int qd_st_umount(char *dir)
{
	int i, ret = 0;

	if (!dir[0])
		return 0;
	for (i = 0; i < 500 && umount(dir); i++) {
		if (errno != EBUSY) {
			ret = errno == EINVAL ? 0 : -errno;
			break;
		}
		usleep(10000);
	}
	if (i == 500) {
		umount2(dir, MNT_DETACH);
		ret = -EBUSY;
	}
	rmdir(dir);
	dir[0] = 0;
	return ret;
}

/*
 * Remove what earlier tests may have left (they run one after the other):
 * mounts under QD_ST_MNT, device-mapper and null_blk devices named
 * QD_ST_PREFIX*, in that order (each may hold the next).
 */
static inline void qd_st_sweep(void)
{
	char line[512], mnt[256], name[128], path[300];
	struct dirent *d;
	DIR *dir;
	FILE *f;

	f = fopen("/proc/mounts", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %255s", mnt) == 1 &&
		    !strncmp(mnt, QD_ST_MNT, strlen(QD_ST_MNT))) {
			umount2(mnt, MNT_DETACH);
			rmdir(mnt);
		}
	}
	if (f)
		fclose(f);
	dir = opendir("/sys/block");
	while (dir && (d = readdir(dir))) {
		if (strncmp(d->d_name, "dm-", 3))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dm/name", d->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = 0;
			if (!strncmp(name, QD_ST_PREFIX, strlen(QD_ST_PREFIX)))
				qd_sh("dmsetup --noudevsync remove --force %s >&2", name);
		}
		fclose(f);
	}
	if (dir)
		closedir(dir);
	dir = opendir(QD_NULLB_CFG);
	while (dir && (d = readdir(dir))) {
		if (strncmp(d->d_name, QD_ST_PREFIX, strlen(QD_ST_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", QD_NULLB_CFG, d->d_name);
		rmdir(path);
	}
	if (dir)
		closedir(dir);
}

#endif /* QD_STORAGE_H */
