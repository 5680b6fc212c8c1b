// SPDX-License-Identifier: MIT
/*
 * Derived queues in the kernel: qd_filter(), qd_merge(), qd_sort(), one
 * QD_IOC_DERIVE each. The derived queue is an ordinary kernel qd: pushes
 * and pops on it take the kernel path (it is never a mapped queue). The
 * callback forms (qd_filter_fn(), qd_sort_fn()) are in derive_fn.c.
 *
 * <qd.h> comes first here, so the predicate types are libqd's own
 * definitions; pred_layout.h checks them against the same numbers as the
 * kernel's (checked in derive_fn.c, which sees <linux/qd.h>'s), and the
 * caller's struct is copied into the ioctl's as it is.
 */
#include "qd.h"

#include <errno.h>
#include <string.h>

#include "int.h"
#include "pred_layout.h"
#include "syscall.h"

QD_PRED_LAYOUT_CHECK("libqd's <qd.h>");
_Static_assert(sizeof(((struct qd_derive *)0)->args) ==
	       sizeof(struct qd_pred) &&
	       sizeof(((struct qd_derive *)0)->args) >= sizeof(struct qd_key),
	       "struct qd_derive's union");

static int derive(int *qd_out, struct qd_derive *d)
{
	int ret;

	ret = qd_get();
	if (ret)
		return ret;
	if (!(qd__ctx.features & QD_FEAT_DERIVED))
		return -EOPNOTSUPP;
	/* A callback-derived queue is libqd's: the kernel sees no elements. */
	if (qd__dfn_is(d->src) == QD_DFN_DERIVED ||
	    (d->kind == QD_DERIVE_MERGE &&
	     qd__dfn_is(d->src2) == QD_DFN_DERIVED))
		return -EOPNOTSUPP;
	ret = qd__ioctl(qd__ctx.fd, QD_IOC_DERIVE, d);
	if (ret < 0)
		return ret;
	*qd_out = d->qd;
	return 0;
}

int qd_filter(int *qd_out, int qd, const struct qd_pred *pred)
{
	struct qd_derive d = { .kind = QD_DERIVE_FILTER, .src = qd };

	if (!qd_out || !pred)
		return -EINVAL;
	memcpy(&d.pred, pred, sizeof(d.pred));
	return derive(qd_out, &d);
}

int qd_merge(int *qd_out, int qd1, int qd2)
{
	struct qd_derive d = { .kind = QD_DERIVE_MERGE, .src = qd1,
			       .src2 = qd2 };

	if (!qd_out)
		return -EINVAL;
	return derive(qd_out, &d);
}

int qd_sort(int *qd_out, int qd, const struct qd_key *key)
{
	struct qd_derive d = { .kind = QD_DERIVE_SORT, .src = qd };

	if (!qd_out || !key)
		return -EINVAL;
	memcpy(&d.key, key, sizeof(d.key));
	return derive(qd_out, &d);
}
