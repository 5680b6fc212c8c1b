// SPDX-License-Identifier: MIT
/* The chunk table and buffer translation (see region.h). */
#include <errno.h>
#include <string.h>

#include "region.h"

/* Index of the first chunk whose base is above p. */
static unsigned int upper(const struct qd_chunktab *t, uintptr_t p)
{
	unsigned int lo = 0, hi = t->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->sorted[mid]->base > p)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

struct qd_chunk *qd__chunktab_find(const struct qd_chunktab *t, uintptr_t p)
{
	unsigned int i = upper(t, p);
	struct qd_chunk *c;

	if (!i)
		return NULL;
	c = t->sorted[i - 1];
	return p - c->base < c->len ? c : NULL;
}

int qd__chunktab_fits(const struct qd_chunktab *t, uintptr_t base, size_t len)
{
	unsigned int i;

	if (!len || base + len < base)
		return -EINVAL;
	i = upper(t, base);
	if (i && t->sorted[i - 1]->base + t->sorted[i - 1]->len > base)
		return -EEXIST;
	if (i < t->n && base + len > t->sorted[i]->base)
		return -EEXIST;
	return 0;
}

int qd__chunktab_add(struct qd_chunktab *t, struct qd_chunk *c)
{
	unsigned int i;
	int ret;

	if (c->region >= QD_MAX_REGIONS)
		return -EINVAL;
	ret = qd__chunktab_fits(t, c->base, c->len);
	if (ret)
		return ret;
	if (t->by_region[c->region] || t->n >= QD_MAX_REGIONS)
		return -EEXIST;
	i = upper(t, c->base);
	memmove(&t->sorted[i + 1], &t->sorted[i],
		(t->n - i) * sizeof(t->sorted[0]));
	t->sorted[i] = c;
	t->n++;
	t->by_region[c->region] = c;
	__atomic_add_fetch(&t->gen, 1, __ATOMIC_RELEASE);
	return 0;
}

void qd__chunktab_del(struct qd_chunktab *t, struct qd_chunk *c)
{
	unsigned int i;

	for (i = 0; i < t->n; i++) {
		if (t->sorted[i] != c)
			continue;
		memmove(&t->sorted[i], &t->sorted[i + 1],
			(t->n - i - 1) * sizeof(t->sorted[0]));
		t->n--;
		break;
	}
	if (c->region < QD_MAX_REGIONS && t->by_region[c->region] == c)
		t->by_region[c->region] = NULL;
	__atomic_add_fetch(&t->gen, 1, __ATOMIC_RELEASE);
}

int qd__sga_to_segs(const struct qd_chunktab *t, const struct qd_sga *sga,
		    struct qd_seg *segs)
{
	const struct qd_chunk *c;
	uintptr_t p;
	uint32_t i;

	for (i = 0; i < sga->numsegs; i++) {
		p = (uintptr_t)sga->segs[i].buf;
		c = qd__chunktab_find(t, p);
		if (!c || sga->segs[i].len > c->len - (p - c->base))
			return -EFAULT;
		segs[i] = (struct qd_seg){
			.offset = p - c->base,
			.len = sga->segs[i].len,
			.region = (uint16_t)c->region,
		};
	}
	return 0;
}

int qd__segs_to_sga(const struct qd_chunktab *t, const struct qd_seg *segs,
		    unsigned int n, struct qd_sga *sga)
{
	const struct qd_chunk *c;
	unsigned int i;

	if (n > QD_SGA_MAX)
		return -EFAULT;
	for (i = 0; i < n; i++) {
		c = segs[i].region < QD_MAX_REGIONS ?
			t->by_region[segs[i].region] : NULL;
		if (!c || segs[i].offset >= c->len ||
		    segs[i].len > c->len - segs[i].offset)
			return -EFAULT;
		sga->segs[i].buf = (void *)(c->base + segs[i].offset);
		sga->segs[i].len = segs[i].len;
	}
	sga->numsegs = n;
	return 0;
}
