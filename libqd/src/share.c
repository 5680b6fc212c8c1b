// SPDX-License-Identifier: MIT
/*
 * Queues shared between processes: qd_queue_shareable(), qd_queue_export(),
 * qd_queue_import() over QD_IOC_QUEUE (QD_QUEUE_MAPPED | QD_QUEUE_SHARED
 * when the kernel can: descriptors that name the queue's bindings rather
 * than one context's regions, mq.h), QD_IOC_QUEUE_EXPORT and
 * QD_IOC_QUEUE_IMPORT. An imported qd is an ordinary qd for every other
 * function; with both rights on a shared mapped queue it maps the ring and
 * takes the user-space fast path too, else its operations go through the
 * kernel.
 */
#include <errno.h>

#include "int.h"
#include "mq.h"
#include "syscall.h"

int qd_queue_shareable(int *qd_out)
{
	int ret;

	if (!qd_out)
		return -EINVAL;
	ret = qd_get();
	if (ret)
		return ret;
	return qd__mq_create_shared(qd__ctx.fd, qd__ctx.features, qd_out);
}

int qd_queue_export(int qd, unsigned int rights, int *fd_out)
{
	struct qd_queue_export e = { .qd = qd };
	int ret;

	if (!fd_out || !rights || rights & ~(QD_RIGHT_PUSH | QD_RIGHT_POP))
		return -EINVAL;
	ret = qd_get();
	if (ret)
		return ret;
	if (rights & QD_RIGHT_PUSH)
		e.rights |= QD_SHARE_PUSH;
	if (rights & QD_RIGHT_POP)
		e.rights |= QD_SHARE_POP;
	ret = qd__ioctl(qd__ctx.fd, QD_IOC_QUEUE_EXPORT, &e);
	if (ret)
		return ret;
	*fd_out = e.fd;
	return 0;
}

int qd_queue_import(int fd, int *qd_out)
{
	struct qd_queue_import im = { .fd = fd };
	int ret;

	if (!qd_out)
		return -EINVAL;
	ret = qd__ctl(QD_IOC_QUEUE_IMPORT, &im);
	if (ret)
		return ret;
	qd__mq_import(qd__ctx.fd, qd__ctx.features, &im);
	*qd_out = im.qd;
	return 0;
}
