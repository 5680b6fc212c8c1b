/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qd_proc.h: read /proc/qd and the debugfs files of a context.
 *
 * /proc/qd (version 2) is `key value` lines, parsed by key:
 *   version 2
 *   scope all | scope uid <uid>
 *   contexts, queues, regions, pinned_pages, inflight, queued N
 *   overflowed, invalid_opcode N                    (scope all only)
 *   op <name> submitted N completed N failed N      (scope all only)
 * A reader with CAP_SYS_ADMIN when it opened the file sees every context
 * (scope all); any other reader sees sums over its real uid's contexts.
 * debugfs `info` is `key value` lines; `queues` and `regions` are a header
 * line and then one row per object.
 */
#ifndef QD_PROC_H
#define QD_PROC_H

#include <dirent.h>
#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <unistd.h>

#define QD_PROC_PATH	"/proc/qd"
#define QD_DEBUGFS	"/sys/kernel/debug"
#define QD_DEBUGFS_DIR	QD_DEBUGFS "/qd"

struct qd_op_stat {
	char			name[32];
	unsigned long long	submitted, completed, failed;
};

/* The numeric keys qd_proc_read() knows, in struct qd_proc's order. */
#define QD_PROC_KEYS	"version", "contexts", "queues", "regions",	\
			"pinned_pages", "inflight", "queued", "overflowed", \
			"invalid_opcode", "sockets", "sock_bytes_in",	\
			"sock_bytes_out", "sock_zc_pushes", "sock_zc_bytes", \
			"sock_zc_copied", "sock_zc_inflight",		\
			"sock_copy_pushes", "files", "file_bytes_read",	\
			"file_bytes_written", "file_bios", "file_punted", \
			"file_errors", "derived"
#define QD_PROC_NKEYS	24

struct qd_proc {
	/* -1 when the key is missing */
	long long		version;
	long long		contexts, queues, regions, pinned_pages;
	long long		inflight, queued;
	long long		overflowed, invalid_opcode;	/* scope all */
	long long		sockets;			/* socket qds */
	long long		sock_bytes_in, sock_bytes_out;	/* scope all */
	/* zero-copy send (scope all) */
	long long		sock_zc_pushes, sock_zc_bytes, sock_zc_copied;
	long long		sock_zc_inflight, sock_copy_pushes;
	long long		files;				/* storage qds */
	/* storage (scope all) */
	long long		file_bytes_read, file_bytes_written;
	long long		file_bios, file_punted, file_errors;
	long long		derived;	/* derived queues (scope all) */
	int			nkeys;		/* of the QD_PROC_NKEYS, how many were found */
	/* the scope line: "all", or "uid" with scope_uid; "" when missing */
	char			scope[16];
	long long		scope_uid;	/* -1 unless scope uid */
	int			nunknown;	/* other key lines */
	char			unknown[8][64];	/* their keys (the first 8) */
	int			nops;
	struct qd_op_stat	ops[16];
};

static inline long long *qd_proc_val(struct qd_proc *s, unsigned int i)
{
	long long *vals[QD_PROC_NKEYS] = {
		&s->version, &s->contexts, &s->queues, &s->regions,
		&s->pinned_pages, &s->inflight, &s->queued, &s->overflowed,
		&s->invalid_opcode, &s->sockets, &s->sock_bytes_in,
		&s->sock_bytes_out, &s->sock_zc_pushes, &s->sock_zc_bytes,
		&s->sock_zc_copied, &s->sock_zc_inflight, &s->sock_copy_pushes,
		&s->files, &s->file_bytes_read, &s->file_bytes_written,
		&s->file_bios, &s->file_punted, &s->file_errors, &s->derived,
	};

	return vals[i];
}

/* Parse an open /proc/qd: 0, or -EINVAL if a known key appears twice. */
static inline int qd_proc_parse(FILE *f, struct qd_proc *s)
{
	static const char *const keys[QD_PROC_NKEYS] = { QD_PROC_KEYS };
	char line[256], key[64], rest[64];
	unsigned int i;
	int ret = 0;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < QD_PROC_NKEYS; i++)
		*qd_proc_val(s, i) = -1;
	s->scope_uid = -1;
	while (fgets(line, sizeof(line), f)) {
		struct qd_op_stat op;
		long long v;

		if (sscanf(line, "op %31s submitted %llu completed %llu failed %llu",
			   op.name, &op.submitted, &op.completed, &op.failed) == 4) {
			if (s->nops < (int)(sizeof(s->ops) / sizeof(s->ops[0])))
				s->ops[s->nops++] = op;
			continue;
		}
		if (!strncmp(line, "scope ", 6) &&
		    sscanf(line + 6, "%15s %63s", s->scope, rest) >= 1) {
			if (!strcmp(s->scope, "uid"))
				s->scope_uid = strtoll(rest, NULL, 10);
			continue;
		}
		if (sscanf(line, "%63s %lld", key, &v) != 2)
			continue;
		for (i = 0; i < QD_PROC_NKEYS; i++) {
			if (strcmp(key, keys[i]))
				continue;
			if (*qd_proc_val(s, i) != -1)
				ret = -EINVAL;
			*qd_proc_val(s, i) = v;
			s->nkeys++;
			break;
		}
		if (i == QD_PROC_NKEYS) {
			if (s->nunknown < 8)
				snprintf(s->unknown[s->nunknown], sizeof(s->unknown[0]), "%s", key);
			s->nunknown++;
		}
	}
	return ret;
}

/* Parse /proc/qd: 0, or -errno. */
static inline int qd_proc_read(struct qd_proc *s)
{
	FILE *f = fopen(QD_PROC_PATH, "re");
	int ret;

	if (!f) {
		ret = -errno;
		memset(s, 0, sizeof(*s));
		return ret;
	}
	ret = qd_proc_parse(f, s);
	fclose(f);
	return ret;
}

/*
 * A context is freed after its last reference goes (close, exit), possibly a
 * little later from a work item. Wait up to ms for /proc/qd to show no more
 * than `contexts` contexts and `pinned` pinned pages. 0 once it does, else
 * -ETIMEDOUT (out holds the last reading either way, if non-NULL).
 */
static inline int qd_proc_wait_idle(long long contexts, long long pinned, int ms,
				    struct qd_proc *out)
{
	struct qd_proc s;
	int i;

	for (i = 0; i <= ms / 10; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (qd_proc_read(&s))
			return -ENOENT;
		if (out)
			*out = s;
		if (s.contexts <= contexts && s.pinned_pages <= pinned)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

/*
 * Wait up to ms for /proc/qd's object counts to be back to *base (after a
 * context went away): 1 once they are, else 0. now holds the last
 * reading (for the diagnostic of QD_EXPECT_SETTLED()).
 */
static inline int qd_proc_settled(const struct qd_proc *base,
				  struct qd_proc *now, int ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int i;

	for (i = 0; i <= ms / 10; i++) {
		if (qd_proc_read(now))
			return 0;
		if (now->contexts == base->contexts &&
		    now->queues == base->queues &&
		    now->regions == base->regions &&
		    now->pinned_pages == base->pinned_pages &&
		    now->inflight == base->inflight &&
		    now->queued == base->queued &&
		    now->derived == base->derived)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* In a kselftest harness test: the counts come back to *base within ms. */
#define QD_EXPECT_SETTLED(base, ms) do {				\
	struct qd_proc __now;						\
	EXPECT_TRUE(qd_proc_settled((base), &__now, (ms)))		\
		TH_LOG("left behind: contexts %lld queues %lld regions %lld " \
		       "pinned_pages %lld inflight %lld queued %lld derived %lld", \
		       __now.contexts - (base)->contexts,		\
		       __now.queues - (base)->queues,			\
		       __now.regions - (base)->regions,			\
		       __now.pinned_pages - (base)->pinned_pages,	\
		       __now.inflight - (base)->inflight,		\
		       __now.queued - (base)->queued,			\
		       __now.derived - (base)->derived);		\
} while (0)

/*
 * Whether thread tid of this process is asleep (S) inside system call nr:
 * its stat's state (after the comm, which may hold spaces and parentheses)
 * and its syscall file.
 */
static inline int qd_task_asleep_in(pid_t tid, long nr)
{
	char path[64], buf[256];
	long got = -1;
	char st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');

		if (p && p[1] == ' ')
			st = p[2];
	}
	fclose(f);
	if (st != 'S')
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &got) != 1)
		got = -1;
	fclose(f);
	return got == nr;
}

static inline const struct qd_op_stat *qd_proc_op(const struct qd_proc *s,
						  const char *name)
{
	int i;

	for (i = 0; i < s->nops; i++)
		if (!strcasecmp(s->ops[i].name, name))
			return &s->ops[i];
	return NULL;
}

/* A `Key:  N kB` field of /proc/<pid>/status in kB, or -1. */
static inline long long qd_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* Make sure debugfs is mounted: 0 if QD_DEBUGFS is usable. */
static inline int qd_debugfs_ready(void)
{
	struct stat st;

	if (!stat(QD_DEBUGFS_DIR, &st))
		return 0;
	/* Not mounted yet (the module's dir would be there otherwise). */
	mount("debugfs", QD_DEBUGFS, "debugfs", 0, NULL);
	return stat(QD_DEBUGFS_DIR, &st) ? -errno : 0;
}

/*
 * Collect the debugfs directories of pid's contexts (`<pid>-<n>`) into
 * names[] (full paths, sorted by n). Returns how many, or -errno.
 */
static inline int qd_debugfs_ctx_dirs(pid_t pid, char names[][256], int max)
{
	char prefix[32];
	struct dirent *d;
	DIR *dir;
	int n = 0, i, j;
	size_t plen;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%d-", (int)pid);
	dir = opendir(QD_DEBUGFS_DIR);
	if (!dir)
		return -errno;
	while ((d = readdir(dir)) && n < max) {
		if (strncmp(d->d_name, prefix, plen))
			continue;
		snprintf(names[n++], 256, "%s/%.200s", QD_DEBUGFS_DIR, d->d_name);
	}
	closedir(dir);
	/* order by the numeric suffix */
	for (i = 1; i < n; i++) {
		for (j = i; j > 0; j--) {
			long a = strtol(strrchr(names[j - 1], '-') + 1, NULL, 10);
			long b = strtol(strrchr(names[j], '-') + 1, NULL, 10);
			char t[256];

			if (a <= b)
				break;
			memcpy(t, names[j], 256);
			memcpy(names[j], names[j - 1], 256);
			memcpy(names[j - 1], t, 256);
		}
	}
	return n;
}

/* Value of `key value` in a file as a string (first token), 0 or -errno. */
static inline int qd_kv_str(const char *path, const char *key, char *out, size_t outlen)
{
	char line[512], k[128], v[256];
	FILE *f = fopen(path, "re");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %255s", k, v) == 2 && !strcmp(k, key)) {
			size_t l = strlen(v);

			if (l >= outlen)
				l = outlen - 1;
			memcpy(out, v, l);
			out[l] = 0;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* Numeric value of `key value` in a file, or -1 (accepts 0x.. too). */
static inline long long qd_kv(const char *path, const char *key)
{
	char v[256];

	if (qd_kv_str(path, key, v, sizeof(v)))
		return -1;
	return strtoll(v, NULL, 0);
}

/*
 * Read a table file (header + rows). The header names the columns; for the
 * row whose first column equals first (decimal), store the values of cols[]
 * in vals[] (strtoull base 0; strings that do not parse give 0) and raw
 * strings in strs[] if non-NULL. 0 if the row was found, -ENOENT if not,
 * -EINVAL if a column is missing from the header.
 */
static inline int qd_table_row(const char *path, long long first,
			       const char *const *cols, int ncols,
			       unsigned long long *vals, char (*strs)[64])
{
	char line[1024], *tok, *save;
	char hdr[32][64];
	int nhdr = 0, idx[16], i, ret = -ENOENT;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -ENOENT;
	}
	for (tok = strtok_r(line, " \t\n", &save); tok && nhdr < 32;
	     tok = strtok_r(NULL, " \t\n", &save))
		snprintf(hdr[nhdr++], 64, "%s", tok);
	for (i = 0; i < ncols; i++) {
		int j;

		idx[i] = -1;
		for (j = 0; j < nhdr; j++)
			if (!strcmp(hdr[j], cols[i]))
				idx[i] = j;
		if (idx[i] < 0) {
			fclose(f);
			return -EINVAL;
		}
	}
	while (fgets(line, sizeof(line), f)) {
		char row[32][64];
		int n = 0;

		for (tok = strtok_r(line, " \t\n", &save); tok && n < 32;
		     tok = strtok_r(NULL, " \t\n", &save))
			snprintf(row[n++], 64, "%s", tok);
		if (!n || strtoll(row[0], NULL, 0) != first)
			continue;
		for (i = 0; i < ncols; i++) {
			const char *s = idx[i] < n ? row[idx[i]] : "";

			vals[i] = strtoull(s, NULL, 0);
			if (strs)
				snprintf(strs[i], 64, "%s", s);
		}
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* Data rows (lines after the header) in a table file, or -errno. */
static inline int qd_table_rows(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "re");
	int n = -1;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strspn(line, " \t\n") != strlen(line))
			n++;
	fclose(f);
	return n < 0 ? 0 : n;
}

#endif /* QD_PROC_H */
