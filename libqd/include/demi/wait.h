/* SPDX-License-Identifier: MIT */
/*
 * <demi/wait.h>: Demikernel's waits, implemented by libqd on qd_wait() and
 * qd_wait_any(). timeout is an interval (NULL: forever, {0, 0}: poll);
 * ETIMEDOUT when it passes first, the token staying valid.
 */
#ifndef LIBQD_DEMI_WAIT_H
#define LIBQD_DEMI_WAIT_H

#include <time.h>
#include <demi/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct timespec;	/* <time.h>; declared here for strict ISO C modes */

int demi_wait(demi_qresult_t *qr_out, demi_qtoken_t qt,
	      const struct timespec *timeout);
int demi_wait_any(demi_qresult_t *qr_out, int *ready_offset,
		  const demi_qtoken_t qts[], int num_qts,
		  const struct timespec *timeout);

#ifdef __cplusplus
}
#endif

#endif /* LIBQD_DEMI_WAIT_H */
