/* SPDX-License-Identifier: MIT */
/*
 * <demi/sga.h>: Demikernel's buffer calls, implemented by libqd: a
 * demi_sgaalloc() buffer is a qd_sgaalloc() one (registered memory).
 */
#ifndef LIBQD_DEMI_SGA_H
#define LIBQD_DEMI_SGA_H

#include <stddef.h>
#include <demi/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One segment of size bytes; all fields zero on failure (errno set). */
demi_sgarray_t demi_sgaalloc(size_t size);
int demi_sgafree(demi_sgarray_t *sga);

#ifdef __cplusplus
}
#endif

#endif /* LIBQD_DEMI_SGA_H */
