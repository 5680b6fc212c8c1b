// SPDX-License-Identifier: GPL-2.0
/*
 * qdstat: show what qd.ko is doing.
 *
 * Reads the counters in /proc/qd and, per context, the debugfs files
 * qd/<pid>-<n>/{info,queues,regions}. Every file is parsed by key (info,
 * /proc/qd) or by the column names of its header line (queues, regions), so
 * counters the kernel adds later show up without a change here: unknown keys
 * and columns are printed generically. A queues row may end with key=value
 * words past its header's columns: socket qds (types tcp, tcp6, udp, udp6)
 * give their addresses, state, pending accepts and bytes that way, storage
 * qds (file, blk) their offsets, O_DIRECT, counters and path, and each kind
 * is shown in a table of its own.
 *
 * /proc/qd's `scope` line says whose contexts its counts cover: `all` for a
 * reader with CAP_SYS_ADMIN, `uid N` (the reader's own contexts, and no
 * module-wide counters) for anyone else. debugfs is root's only: an
 * unprivileged qdstat shows its own counts and says so.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#define MAX_KEYS	64
#define MAX_OPS		64
#define MAX_COLS	32
#define MAX_CTX		1024
#define TOKLEN		96	/* a word: [IPv6%scope]:port fits */

static const char *proc_path = "/proc/qd";
static const char *debugfs_path = "/sys/kernel/debug/qd";

/* ---- small string table printer ---------------------------------------- */

struct table {
	int ncols, nrows, cap;
	char **cells;		/* nrows x ncols, row 0 is the header */
	bool *left;		/* per column: left aligned */
};

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p) {
		perror("qdstat: calloc");
		exit(1);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p) {
		perror("qdstat: strdup");
		exit(1);
	}
	return p;
}

static void table_init(struct table *t, int ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->left = xcalloc(ncols, sizeof(bool));
}

static char **table_row(struct table *t)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = realloc(t->cells, sizeof(char *) * t->cap * t->ncols);
		if (!t->cells) {
			perror("qdstat: realloc");
			exit(1);
		}
	}
	memset(&t->cells[t->nrows * t->ncols], 0, sizeof(char *) * t->ncols);
	return &t->cells[t->nrows++ * t->ncols];
}

static void table_set(char **row, int col, const char *s)
{
	free(row[col]);
	row[col] = xstrdup(s ? s : "");
}

static void table_free(struct table *t)
{
	int i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->left);
	memset(t, 0, sizeof(*t));
}

/* Columns empty in every row, header included, take no room. */
static void table_print(struct table *t, const char *indent)
{
	int *w = xcalloc(t->ncols, sizeof(int));
	size_t linelen = 1;
	char *line;
	int r, c;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int l = s ? (int)strlen(s) : 0;

			if (l > w[c])
				w[c] = l;
		}
	for (c = 0; c < t->ncols; c++)
		linelen += w[c] + 2;
	line = xcalloc(linelen, 1);
	for (r = 0; r < t->nrows; r++) {
		size_t len = 0;

		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			if (!w[c])
				continue;
			len += sprintf(line + len, t->left[c] ? "%-*s  " : "%*s  ",
				       w[c], s ? s : "");
		}
		while (len && line[len - 1] == ' ')
			len--;
		line[len] = 0;
		printf("%s%s\n", indent, line);
	}
	free(line);
	free(w);
	table_free(t);
}

/* ---- parsing ------------------------------------------------------------ */

struct kv {
	char key[TOKLEN];
	char val[256];
};

struct kvfile {
	int n;
	struct kv kv[MAX_KEYS];
};

struct opstat {
	char name[TOKLEN];
	unsigned long long submitted, completed, failed;
};

struct procqd {
	struct kvfile keys;
	int nops;
	struct opstat ops[MAX_OPS];
};

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = 0;
}

/* Parse one `key value...` line; the value is the rest of the line. */
static bool parse_kv_line(char *line, struct kv *kv)
{
	char *p = line, *k;
	size_t n;

	chomp(line);
	p += strspn(p, " \t");
	if (!*p)
		return false;
	k = p;
	n = strcspn(p, " \t");
	p += n;
	p += strspn(p, " \t");
	snprintf(kv->key, sizeof(kv->key), "%.*s", (int)n, k);
	snprintf(kv->val, sizeof(kv->val), "%s", p);
	return true;
}

static int read_kvfile(const char *path, struct kvfile *f)
{
	char line[512];
	FILE *fp = fopen(path, "re");

	f->n = 0;
	if (!fp)
		return -errno;
	while (fgets(line, sizeof(line), fp) && f->n < MAX_KEYS)
		if (parse_kv_line(line, &f->kv[f->n]))
			f->n++;
	fclose(fp);
	return 0;
}

static const char *kv_get(const struct kvfile *f, const char *key)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (!strcmp(f->kv[i].key, key))
			return f->kv[i].val;
	return NULL;
}

static int read_proc(const char *path, struct procqd *p)
{
	char line[512];
	FILE *fp = fopen(path, "re");

	memset(p, 0, sizeof(*p));
	if (!fp)
		return -errno;
	while (fgets(line, sizeof(line), fp)) {
		struct opstat op;

		if (sscanf(line, " op %63s submitted %llu completed %llu failed %llu",
			   op.name, &op.submitted, &op.completed, &op.failed) == 4) {
			if (p->nops < MAX_OPS)
				p->ops[p->nops++] = op;
			continue;
		}
		if (p->keys.n < MAX_KEYS &&
		    parse_kv_line(line, &p->keys.kv[p->keys.n]))
			p->keys.n++;
	}
	fclose(fp);
	return 0;
}

/*
 * A table file: a header line naming the columns, then rows. A row is kept
 * as the line it was read from, its words pointing into it, so a word (a
 * storage qd's path) can be as long as the kernel writes it.
 */
struct tabrow {
	char *line;
	char *col[MAX_COLS];
	int n;
};

struct tabfile {
	int ncols, nrows;
	char hdr[MAX_COLS][TOKLEN];
	struct tabrow *rows;
};

static int split(char *line, char *out[], int max)
{
	char *save, *tok;
	int n = 0;

	for (tok = strtok_r(line, " \t\n", &save); tok && n < max;
	     tok = strtok_r(NULL, " \t\n", &save))
		out[n++] = tok;
	return n;
}

static int read_tabfile(const char *path, struct tabfile *t)
{
	char *line = NULL;
	size_t len = 0;
	int cap = 0, i;
	FILE *fp = fopen(path, "re");

	memset(t, 0, sizeof(*t));
	if (!fp)
		return -errno;
	while (getline(&line, &len, fp) > 0) {
		struct tabrow *row;

		if (t->nrows == cap) {
			cap = cap ? cap * 2 : 16;
			t->rows = realloc(t->rows, sizeof(*t->rows) * cap);
			if (!t->rows) {
				perror("qdstat: realloc");
				exit(1);
			}
		}
		row = &t->rows[t->nrows];
		row->line = xstrdup(line);
		row->n = split(row->line, row->col, MAX_COLS);
		if (!row->n) {
			free(row->line);
			continue;
		}
		if (t->ncols) {
			t->nrows++;
			continue;
		}
		for (i = 0; i < row->n; i++)
			snprintf(t->hdr[i], TOKLEN, "%s", row->col[i]);
		t->ncols = row->n;
		free(row->line);
	}
	free(line);
	fclose(fp);
	return 0;
}

static void free_tabfile(struct tabfile *t)
{
	int i;

	for (i = 0; i < t->nrows; i++)
		free(t->rows[i].line);
	free(t->rows);
	t->rows = NULL;
	t->nrows = 0;
}

static int tab_col(const struct tabfile *t, const char *name)
{
	int i;

	for (i = 0; i < t->ncols; i++)
		if (!strcmp(t->hdr[i], name))
			return i;
	return -1;
}

static const char *tab_cell(const struct tabfile *t, int row, int col)
{
	if (col < 0 || col >= t->rows[row].n)
		return "-";
	return t->rows[row].col[col];
}

/* The value of a key=value word past the header's columns, or NULL. */
static const char *tab_kv(const struct tabfile *t, int row, const char *key)
{
	size_t n = strlen(key);
	int i;

	for (i = t->ncols; i < t->rows[row].n; i++)
		if (!strncmp(t->rows[row].col[i], key, n) && t->rows[row].col[i][n] == '=')
			return t->rows[row].col[i] + n + 1;
	return NULL;
}

static bool is_socket_row(const struct tabfile *t, int row)
{
	const char *type = tab_cell(t, row, tab_col(t, "type"));

	return !strcmp(type, "tcp") || !strcmp(type, "tcp6") ||
	       !strcmp(type, "udp") || !strcmp(type, "udp6");
}

/* A storage qd: a regular file (`file`) or a block device (`blk`). */
static bool is_storage_row(const struct tabfile *t, int row)
{
	const char *type = tab_cell(t, row, tab_col(t, "type"));

	return !strcmp(type, "file") || !strcmp(type, "blk");
}

/* Rows with a table of their own stay out of the queues table. */
static bool has_own_table(const struct tabfile *t, int row)
{
	return is_socket_row(t, row) || is_storage_row(t, row);
}

/*
 * The key=value words of a row past its header that are not in keys, as
 * they are, space separated: what this qdstat does not know yet.
 */
static void tab_kv_others(char *buf, size_t len, const struct tabfile *t,
			  int row, const char *const *keys, size_t nkeys)
{
	size_t el = 0, j;
	int i;

	buf[0] = 0;
	for (i = t->ncols; i < t->rows[row].n && el < len - 1; i++) {
		const char *w = t->rows[row].col[i];
		bool known = false;

		for (j = 0; j < nkeys; j++)
			if (!strncmp(w, keys[j], strlen(keys[j])) &&
			    w[strlen(keys[j])] == '=')
				known = true;
		if (!known)
			el += snprintf(buf + el, len - el, "%s%s", el ? " " : "", w);
	}
}

/* ---- contexts ----------------------------------------------------------- */

struct ctxdir {
	char name[256];
	long pid, n;
};

static int ctx_cmp(const void *a, const void *b)
{
	const struct ctxdir *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->n > y->n) - (x->n < y->n);
}

static int list_contexts(const char *dir, struct ctxdir *out, int max)
{
	struct dirent *d;
	DIR *dp = opendir(dir);
	int n = 0;

	if (!dp)
		return -errno;
	while ((d = readdir(dp)) && n < max) {
		char *end;
		long pid, idx;

		if (d->d_name[0] == '.')
			continue;
		pid = strtol(d->d_name, &end, 10);
		if (end == d->d_name || *end != '-')
			continue;
		idx = strtol(end + 1, &end, 10);
		if (*end)
			continue;
		snprintf(out[n].name, sizeof(out[n].name), "%s", d->d_name);
		out[n].pid = pid;
		out[n].n = idx;
		n++;
	}
	closedir(dp);
	qsort(out, n, sizeof(*out), ctx_cmp);
	return n;
}

static const char *const info_known[] = {
	"pid", "comm", "sq_entries", "sq_head", "sq_tail", "cq_entries",
	"cq_head", "cq_tail", "overflow", "inflight", "enters", "regions",
	"queues", "sqpoll_pid", "sqpoll_state", "sqpoll_idle_ms",
	"sqpoll_submitted", "sqpoll_wakeups", NULL,
};

static bool is_known(const char *const *list, const char *key)
{
	for (; *list; list++)
		if (!strcmp(*list, key))
			return true;
	return false;
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static void ring3(char *buf, size_t len, const struct kvfile *f,
		  const char *a, const char *b, const char *c)
{
	snprintf(buf, len, "%s/%s/%s", or_dash(kv_get(f, a)),
		 or_dash(kv_get(f, b)), or_dash(kv_get(f, c)));
}

/*
 * Print a table file with the ctx name in front: the expected columns first
 * (in that order, "-" when the kernel does not have them), then any others.
 */
static void add_tab_rows(struct table *t, const char *ctx, struct tabfile *f,
			 const char *const *want, int nwant, int extra_col,
			 bool (*skip)(const struct tabfile *, int))
{
	int r, i;

	for (r = 0; r < f->nrows; r++) {
		char extra[512] = "";
		size_t el = 0;
		char **row;

		if (skip && skip(f, r))
			continue;
		row = table_row(t);

		table_set(row, 0, ctx);
		for (i = 0; i < nwant; i++)
			table_set(row, 1 + i, tab_cell(f, r, tab_col(f, want[i])));
		for (i = 0; i < f->ncols; i++) {
			bool known = false;
			int j;

			for (j = 0; j < nwant; j++)
				if (!strcmp(f->hdr[i], want[j]))
					known = true;
			if (known || el >= sizeof(extra) - 1)
				continue;
			el += snprintf(extra + el, sizeof(extra) - el, "%s%s=%s",
				       el ? " " : "", f->hdr[i], tab_cell(f, r, i));
		}
		/* words past the header (key=value) as they are */
		for (i = f->ncols; i < f->rows[r].n && el < sizeof(extra) - 1; i++)
			el += snprintf(extra + el, sizeof(extra) - el, "%s%s",
				       el ? " " : "", f->rows[r].col[i]);
		table_set(row, extra_col, extra);
	}
}

/*
 * Socket rows of a queues file: the addresses and state from their
 * key=value words, the pending operations and bytes; words this does not
 * know in the last column.
 */
static const char *const s_hdr[] = {
	"ctx", "qd", "type", "local", "peer", "state", "pend_pops",
	"pend_pushes", "pend_accepts", "bytes_in", "bytes_out", "",
};
static const char *const s_keys[] = {
	"local", "peer", "state", "pending_accepts", "bytes_in", "bytes_out",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void add_sock_rows(struct table *t, const char *ctx, struct tabfile *f)
{
	char extra[512];
	int r;

	for (r = 0; r < f->nrows; r++) {
		char **row;

		if (!is_socket_row(f, r))
			continue;
		row = table_row(t);
		table_set(row, 0, ctx);
		table_set(row, 1, tab_cell(f, r, tab_col(f, "qd")));
		table_set(row, 2, tab_cell(f, r, tab_col(f, "type")));
		table_set(row, 3, or_dash(tab_kv(f, r, "local")));
		table_set(row, 4, or_dash(tab_kv(f, r, "peer")));
		table_set(row, 5, or_dash(tab_kv(f, r, "state")));
		table_set(row, 6, tab_cell(f, r, tab_col(f, "pending_pops")));
		table_set(row, 7, tab_cell(f, r, tab_col(f, "pending_pushes")));
		table_set(row, 8, or_dash(tab_kv(f, r, "pending_accepts")));
		table_set(row, 9, or_dash(tab_kv(f, r, "bytes_in")));
		table_set(row, 10, or_dash(tab_kv(f, r, "bytes_out")));
		tab_kv_others(extra, sizeof(extra), f, r, s_keys, ARRAY_SIZE(s_keys));
		table_set(row, 11, extra);
	}
}

/*
 * Storage rows of a queues file (kmod/file.c): the memq columns say reads
 * and writes in flight (pending_pops, pending_pushes) and bytes written and
 * read (pushed, popped); offsets, O_DIRECT and the counters are key=value
 * words, the path the last of them. Words this does not know go before the
 * path, so the path can end the line with its spaces.
 */
static const char *const f_hdr[] = {
	"ctx", "qd", "type", "rights", "rpos", "wpos", "pend_reads",
	"pend_writes", "bytes_read", "bytes_written", "direct", "errors",
	"bios", "punted", "", "path",
};
static const char *const f_keys[] = {
	"rpos", "wpos", "direct", "align", "errors", "punted", "bios", "path",
};

/*
 * The path as seq_file_path() escaped it (space, tab, newline and backslash
 * as \ooo) with the spaces put back: it is the last column, so a space
 * cannot be taken for a column break. A tab or a newline would break the
 * table and stays escaped, and so does the backslash, so \011 still means
 * a tab.
 */
static void path_text(char *buf, size_t len, const char *path)
{
	size_t o = 0;

	while (*path && o + 1 < len) {
		if (!strncmp(path, "\\040", 4)) {
			buf[o++] = ' ';
			path += 4;
		} else {
			buf[o++] = *path++;
		}
	}
	buf[o] = 0;
}

/*
 * O_DIRECT in one word: "no" for buffered I/O, else the alignment it needs
 * (bytes); "-" when the kernel does not say.
 */
static const char *direct_text(const char *direct, const char *align)
{
	if (!direct)
		return "-";
	if (!strcmp(direct, "0"))
		return "no";
	return align ? align : "yes";
}

static void add_storage_rows(struct table *t, const char *ctx, struct tabfile *f)
{
	int r;

	for (r = 0; r < f->nrows; r++) {
		const char *path = tab_kv(f, r, "path");
		char extra[512], *ptext;
		size_t plen;
		char **row;

		if (!is_storage_row(f, r))
			continue;
		row = table_row(t);
		table_set(row, 0, ctx);
		table_set(row, 1, tab_cell(f, r, tab_col(f, "qd")));
		table_set(row, 2, tab_cell(f, r, tab_col(f, "type")));
		table_set(row, 3, tab_cell(f, r, tab_col(f, "rights")));
		table_set(row, 4, or_dash(tab_kv(f, r, "rpos")));
		table_set(row, 5, or_dash(tab_kv(f, r, "wpos")));
		table_set(row, 6, tab_cell(f, r, tab_col(f, "pending_pops")));
		table_set(row, 7, tab_cell(f, r, tab_col(f, "pending_pushes")));
		table_set(row, 8, tab_cell(f, r, tab_col(f, "popped")));
		table_set(row, 9, tab_cell(f, r, tab_col(f, "pushed")));
		table_set(row, 10, direct_text(tab_kv(f, r, "direct"),
					       tab_kv(f, r, "align")));
		table_set(row, 11, or_dash(tab_kv(f, r, "errors")));
		table_set(row, 12, or_dash(tab_kv(f, r, "bios")));
		table_set(row, 13, or_dash(tab_kv(f, r, "punted")));
		tab_kv_others(extra, sizeof(extra), f, r, f_keys, ARRAY_SIZE(f_keys));
		table_set(row, 14, extra);
		plen = path ? strlen(path) + 1 : 2;
		ptext = xcalloc(plen, 1);
		path_text(ptext, plen, or_dash(path));
		table_set(row, 15, ptext);
		free(ptext);
	}
}

struct snapshot {
	struct procqd proc;
	struct timespec when;
};

static double ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (a->tv_sec - b->tv_sec) + (a->tv_nsec - b->tv_nsec) / 1e9;
}

/* What /proc/qd's scope line says, for the heading. */
static void scope_text(const struct procqd *p, char *buf, size_t len)
{
	const char *scope = kv_get(&p->keys, "scope");

	if (!scope)
		snprintf(buf, len, "all contexts");
	else if (!strcmp(scope, "all"))
		snprintf(buf, len, "all contexts");
	else if (!strncmp(scope, "uid ", 4))
		snprintf(buf, len,
			 "contexts of uid %s only; all contexts and module-wide counters need CAP_SYS_ADMIN",
			 scope + 4);
	else
		snprintf(buf, len, "scope %s", scope);
}

static const char *const sock_keys[] = {
	"sockets", "sock_bytes_in", "sock_bytes_out", "sock_zc_pushes",
	"sock_zc_bytes", "sock_zc_copied", "sock_zc_inflight",
	"sock_copy_pushes", NULL,
};

static const char *const file_keys[] = {
	"files", "file_bytes_read", "file_bytes_written", "file_bios",
	"file_punted", "file_errors", NULL,
};

/* " (N/s)" for key between two snapshots, or "". */
static void rate(char *buf, size_t len, const struct procqd *p,
		 const struct procqd *prev, double dt, const char *key)
{
	const char *a = prev ? kv_get(&prev->keys, key) : NULL;
	const char *b = kv_get(&p->keys, key);
	unsigned long long x, y;

	buf[0] = 0;
	if (!a || !b || dt <= 0)
		return;
	x = strtoull(a, NULL, 10);
	y = strtoull(b, NULL, 10);
	snprintf(buf, len, " (%.0f/s)", y >= x ? (y - x) / dt : 0.0);
}

/* The socket counters on a line of their own: open sockets, bytes copied. */
static void print_sock_counters(const struct procqd *p,
				const struct procqd *prev, double dt)
{
	const char *n = kv_get(&p->keys, "sockets");
	const char *in = kv_get(&p->keys, "sock_bytes_in");
	const char *out = kv_get(&p->keys, "sock_bytes_out");
	char rin[48], rout[48];

	if (!n && !in && !out)
		return;
	rate(rin, sizeof(rin), p, prev, dt, "sock_bytes_in");
	rate(rout, sizeof(rout), p, prev, dt, "sock_bytes_out");
	printf("  sockets %s", or_dash(n));
	if (in || out)
		printf("  bytes in %s%s  out %s%s", or_dash(in), rin,
		       or_dash(out), rout);
	putchar('\n');
	/* how pushes were sent: zero-copy (and what the stack copied anyway) or by copy */
	if (kv_get(&p->keys, "sock_zc_pushes") || kv_get(&p->keys, "sock_copy_pushes"))
		printf("  socket pushes: zero-copy %s (%s bytes, %s in flight, %s copied by the stack)  by copy %s\n",
		       or_dash(kv_get(&p->keys, "sock_zc_pushes")),
		       or_dash(kv_get(&p->keys, "sock_zc_bytes")),
		       or_dash(kv_get(&p->keys, "sock_zc_inflight")),
		       or_dash(kv_get(&p->keys, "sock_zc_copied")),
		       or_dash(kv_get(&p->keys, "sock_copy_pushes")));
}

/*
 * The storage counters on a line of their own: open storage qds, bytes
 * read and written, bios submitted (O_DIRECT block devices), operations
 * punted to the worker, and failed reads and writes.
 */
static void print_file_counters(const struct procqd *p,
				const struct procqd *prev, double dt)
{
	const char *n = kv_get(&p->keys, "files");
	const char *rd = kv_get(&p->keys, "file_bytes_read");
	const char *wr = kv_get(&p->keys, "file_bytes_written");
	char rrd[48], rwr[48];

	if (!n && !rd && !wr)
		return;
	rate(rrd, sizeof(rrd), p, prev, dt, "file_bytes_read");
	rate(rwr, sizeof(rwr), p, prev, dt, "file_bytes_written");
	printf("  files %s", or_dash(n));
	if (rd || wr)
		printf("  bytes read %s%s  written %s%s", or_dash(rd), rrd,
		       or_dash(wr), rwr);
	if (kv_get(&p->keys, "file_bios") || kv_get(&p->keys, "file_punted") ||
	    kv_get(&p->keys, "file_errors"))
		printf("  bios %s  punted %s  errors %s",
		       or_dash(kv_get(&p->keys, "file_bios")),
		       or_dash(kv_get(&p->keys, "file_punted")),
		       or_dash(kv_get(&p->keys, "file_errors")));
	putchar('\n');
}

static void print_module(const struct snapshot *cur, const struct snapshot *prev)
{
	const struct procqd *p = &cur->proc;
	const char *version = kv_get(&p->keys, "version");
	struct table t;
	double dt = prev ? ts_diff(&cur->when, &prev->when) : 0;
	char scope[160];
	int i, col = 0, shown = 0;

	scope_text(p, scope, sizeof(scope));
	printf("qd module (%s, version %s): %s\n", proc_path, or_dash(version), scope);
	/* key value pairs, several per line (version and scope are above) */
	for (i = 0; i < p->keys.n; i++) {
		const char *k = p->keys.kv[i].key;
		int w;

		if (!strcmp(k, "version") || !strcmp(k, "scope") ||
		    is_known(sock_keys, k) || is_known(file_keys, k))
			continue;
		w = printf("  %s %s", k, p->keys.kv[i].val);
		shown++;
		col += w;
		if (col > 60) {
			putchar('\n');
			col = 0;
		}
	}
	if (col)
		putchar('\n');
	if (!shown && !kv_get(&p->keys, "sockets") && !kv_get(&p->keys, "files"))
		printf("  (no counters)\n");
	print_sock_counters(p, prev ? &prev->proc : NULL, dt);
	print_file_counters(p, prev ? &prev->proc : NULL, dt);
	if (!p->nops)
		return;
	putchar('\n');
	table_init(&t, dt > 0 ? 5 : 4);
	t.left[0] = true;
	{
		char **h = table_row(&t);

		table_set(h, 0, "op");
		table_set(h, 1, "submitted");
		table_set(h, 2, "completed");
		table_set(h, 3, "failed");
		if (dt > 0)
			table_set(h, 4, "completed/s");
	}
	for (i = 0; i < p->nops; i++) {
		char **row = table_row(&t);
		char buf[64];

		table_set(row, 0, p->ops[i].name);
		snprintf(buf, sizeof(buf), "%llu", p->ops[i].submitted);
		table_set(row, 1, buf);
		snprintf(buf, sizeof(buf), "%llu", p->ops[i].completed);
		table_set(row, 2, buf);
		snprintf(buf, sizeof(buf), "%llu", p->ops[i].failed);
		table_set(row, 3, buf);
		if (dt > 0) {
			unsigned long long before = p->ops[i].completed;
			int j;

			for (j = 0; j < prev->proc.nops; j++)
				if (!strcmp(prev->proc.ops[j].name, p->ops[i].name))
					before = prev->proc.ops[j].completed;
			snprintf(buf, sizeof(buf), "%.0f",
				 before <= p->ops[i].completed ?
				 (p->ops[i].completed - before) / dt : 0.0);
			table_set(row, 4, buf);
		}
	}
	table_print(&t, "  ");
}

static const char *const q_cols[] = {
	"qd", "type", "depth", "max_depth", "pending_pops", "pending_pushes",
	"pushed", "popped",
};
static const char *const q_hdr[] = {
	"ctx", "qd", "type", "depth", "max_depth", "pend_pops", "pend_pushes",
	"pushed", "popped", "",
};
static const char *const r_cols[] = { "id", "addr", "len", "pages", "users" };
static const char *const r_hdr[] = {
	"ctx", "id", "addr", "len", "pages", "users", "",
};

static int ctx_file(char *buf, size_t len, const char *ctx, const char *file)
{
	int n = snprintf(buf, len, "%s/%s/%s", debugfs_path, ctx, file);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Is the directory that should hold path on a mounted debugfs? */
static bool under_debugfs(const char *path)
{
	char parent[512], *slash;
	struct statfs sf;

	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (!slash)
		return false;
	if (slash == parent)
		slash[1] = 0;
	else
		*slash = 0;
	return !statfs(parent, &sf) && sf.f_type == DEBUGFS_MAGIC;
}

static void print_section(const char *what, struct table *t)
{
	printf("\n%s: %d\n", what, t->nrows - 1);
	if (t->nrows > 1)
		table_print(t, "  ");
	else
		table_free(t);
}

static void print_contexts(void)
{
	static struct ctxdir dirs[MAX_CTX];
	struct table ct, qt, st, ft, rt;
	int n, i, c;

	n = list_contexts(debugfs_path, dirs, MAX_CTX);
	if (n < 0) {
		putchar('\n');
		if (n == -EACCES || n == -EPERM)
			printf("no per-context view: %s is readable by root only\n",
			       debugfs_path);
		else if (n == -ENOENT && !under_debugfs(debugfs_path))
			printf("debugfs is not mounted (%s missing; mount -t debugfs none /sys/kernel/debug): no per-context view\n",
			       debugfs_path);
		else if (n == -ENOENT)
			printf("debugfs is mounted but %s is missing: no per-context view\n",
			       debugfs_path);
		else
			printf("debugfs: cannot read %s: %s\n", debugfs_path,
			       strerror(-n));
		return;
	}

	table_init(&ct, 9);
	ct.left[1] = ct.left[2] = ct.left[8] = true;
	{
		static const char *const h[] = {
			"pid", "ctx", "comm", "sq ent/head/tail",
			"cq ent/head/tail", "overflow", "inflight", "enters", "",
		};
		char **row = table_row(&ct);

		for (c = 0; c < 9; c++)
			table_set(row, c, h[c]);
	}
	table_init(&qt, ARRAY_SIZE(q_hdr));
	qt.left[0] = qt.left[2] = qt.left[ARRAY_SIZE(q_hdr) - 1] = true;
	{
		char **row = table_row(&qt);

		for (c = 0; c < (int)ARRAY_SIZE(q_hdr); c++)
			table_set(row, c, q_hdr[c]);
	}
	table_init(&st, ARRAY_SIZE(s_hdr));
	st.left[0] = st.left[2] = st.left[3] = st.left[4] = st.left[5] = true;
	st.left[ARRAY_SIZE(s_hdr) - 1] = true;
	{
		char **row = table_row(&st);

		for (c = 0; c < (int)ARRAY_SIZE(s_hdr); c++)
			table_set(row, c, s_hdr[c]);
	}
	table_init(&ft, ARRAY_SIZE(f_hdr));
	ft.left[0] = ft.left[2] = ft.left[3] = true;
	ft.left[ARRAY_SIZE(f_hdr) - 2] = ft.left[ARRAY_SIZE(f_hdr) - 1] = true;
	{
		char **row = table_row(&ft);

		for (c = 0; c < (int)ARRAY_SIZE(f_hdr); c++)
			table_set(row, c, f_hdr[c]);
	}
	table_init(&rt, ARRAY_SIZE(r_hdr));
	rt.left[0] = rt.left[ARRAY_SIZE(r_hdr) - 1] = true;
	{
		char **row = table_row(&rt);

		for (c = 0; c < (int)ARRAY_SIZE(r_hdr); c++)
			table_set(row, c, r_hdr[c]);
	}

	for (i = 0; i < n; i++) {
		char path[512], buf[256], extra[512] = "";
		struct kvfile info;
		struct tabfile tf;
		size_t el = 0;
		char **row;
		int k;

		if (ctx_file(path, sizeof(path), dirs[i].name, "info"))
			continue;
		if (read_kvfile(path, &info))
			continue;	/* the context went away meanwhile */
		row = table_row(&ct);
		snprintf(buf, sizeof(buf), "%ld", dirs[i].pid);
		table_set(row, 0, kv_get(&info, "pid") ? kv_get(&info, "pid") : buf);
		table_set(row, 1, dirs[i].name);
		table_set(row, 2, or_dash(kv_get(&info, "comm")));
		ring3(buf, sizeof(buf), &info, "sq_entries", "sq_head", "sq_tail");
		table_set(row, 3, buf);
		ring3(buf, sizeof(buf), &info, "cq_entries", "cq_head", "cq_tail");
		table_set(row, 4, buf);
		table_set(row, 5, or_dash(kv_get(&info, "overflow")));
		table_set(row, 6, or_dash(kv_get(&info, "inflight")));
		table_set(row, 7, or_dash(kv_get(&info, "enters")));
		/* the SQ poller (QD_SETUP_SQPOLL), in one word */
		if (kv_get(&info, "sqpoll_pid"))
			el += snprintf(extra, sizeof(extra),
				       "sqpoll=%s:%s,idle=%sms,sqes=%s,wakeups=%s",
				       kv_get(&info, "sqpoll_pid"),
				       or_dash(kv_get(&info, "sqpoll_state")),
				       or_dash(kv_get(&info, "sqpoll_idle_ms")),
				       or_dash(kv_get(&info, "sqpoll_submitted")),
				       or_dash(kv_get(&info, "sqpoll_wakeups")));
		for (k = 0; k < info.n; k++) {
			unsigned int g, bufs, waiters;
			unsigned long long prov, taken;

			if (is_known(info_known, info.kv[k].key) ||
			    el >= sizeof(extra) - 1)
				continue;
			/* a buffer pool: "pool G buffers N provided P taken T waiters W" */
			if (!strcmp(info.kv[k].key, "pool") &&
			    sscanf(info.kv[k].val, "%u buffers %u provided %llu taken %llu waiters %u",
				   &g, &bufs, &prov, &taken, &waiters) == 5) {
				el += snprintf(extra + el, sizeof(extra) - el,
					       "%spool%u=%u,taken=%llu/%llu,waiters=%u",
					       el ? " " : "", g, bufs, taken, prov, waiters);
				continue;
			}
			el += snprintf(extra + el, sizeof(extra) - el, "%s%s=%s",
				       el ? " " : "", info.kv[k].key, info.kv[k].val);
		}
		table_set(row, 8, extra);

		if (ctx_file(path, sizeof(path), dirs[i].name, "queues"))
			continue;
		if (!read_tabfile(path, &tf)) {
			add_tab_rows(&qt, dirs[i].name, &tf, q_cols,
				     ARRAY_SIZE(q_cols), ARRAY_SIZE(q_hdr) - 1,
				     has_own_table);
			add_sock_rows(&st, dirs[i].name, &tf);
			add_storage_rows(&ft, dirs[i].name, &tf);
			free_tabfile(&tf);
		}
		if (ctx_file(path, sizeof(path), dirs[i].name, "regions"))
			continue;
		if (!read_tabfile(path, &tf)) {
			add_tab_rows(&rt, dirs[i].name, &tf, r_cols,
				     ARRAY_SIZE(r_cols), ARRAY_SIZE(r_hdr) - 1, NULL);
			free_tabfile(&tf);
		}
	}

	print_section("contexts", &ct);
	print_section("queues", &qt);
	print_section("sockets", &st);
	print_section("storage", &ft);
	print_section("regions", &rt);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qdstat [-w [SECS]] [-n COUNT] [--proc FILE] [--debugfs DIR]\n"
		"  Show qd.ko's counters (/proc/qd: every context's for root, your own\n"
		"  contexts' otherwise) and, from debugfs (root), every context with its\n"
		"  rings, queues, sockets, storage (files, block devices) and registered\n"
		"  regions.\n"
		"  -w, --watch [SECS]  refresh every SECS seconds (default 1) until interrupted\n"
		"  -n, --count COUNT   stop after COUNT refreshes (implies -w)\n"
		"  --proc FILE         module counters file (default /proc/qd)\n"
		"  --debugfs DIR       per-context directory (default /sys/kernel/debug/qd)\n");
}

static bool is_number(const char *s)
{
	char *end;

	if (!s || !*s)
		return false;
	strtod(s, &end);
	return !*end;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", optional_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "proc", required_argument, NULL, 'P' },
		{ "debugfs", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct snapshot snap[2];
	double interval = 1.0;
	long count = -1, iter;
	bool watch = false, tty = isatty(STDOUT_FILENO);
	int c;

	while ((c = getopt_long(argc, argv, "w::n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			watch = true;
			if (!optarg && optind < argc && is_number(argv[optind]))
				optarg = argv[optind++];
			if (optarg) {
				if (!is_number(optarg) || (interval = strtod(optarg, NULL)) <= 0) {
					fprintf(stderr, "qdstat: bad interval '%s'\n", optarg);
					return 2;
				}
			}
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			if (count <= 0) {
				fprintf(stderr, "qdstat: bad count '%s'\n", optarg);
				return 2;
			}
			watch = true;
			break;
		case 'P':
			proc_path = optarg;
			break;
		case 'D':
			debugfs_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (!watch)
		count = 1;

	for (iter = 0; count < 0 || iter < count; iter++) {
		struct snapshot *cur = &snap[iter & 1], *prev = iter ? &snap[!(iter & 1)] : NULL;
		int err;

		clock_gettime(CLOCK_MONOTONIC, &cur->when);
		err = read_proc(proc_path, &cur->proc);
		if (err) {
			if (err == -ENOENT)
				fprintf(stderr, "qdstat: %s: qd.ko not loaded\n", proc_path);
			else
				fprintf(stderr, "qdstat: %s: %s\n", proc_path, strerror(-err));
			return 1;
		}
		if (watch) {
			char tbuf[64];
			time_t now = time(NULL);

			if (tty)
				fputs("\033[H\033[2J", stdout);
			else if (iter)
				putchar('\n');
			strftime(tbuf, sizeof(tbuf), "%F %T", localtime(&now));
			printf("qdstat  %s  every %gs\n\n", tbuf, interval);
		}
		print_module(cur, prev);
		print_contexts();
		fflush(stdout);
		if (count < 0 || iter + 1 < count) {
			struct timespec ts = {
				.tv_sec = (time_t)interval,
				.tv_nsec = (long)((interval - (time_t)interval) * 1e9),
			};

			while (nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
	}
	return 0;
}
