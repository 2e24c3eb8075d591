/* SPDX-License-Identifier: MIT */
/* lwIP's compiler and platform glue for Linux with glibc. */
#ifndef TS_LWIP_ARCH_CC_H
#define TS_LWIP_ARCH_CC_H

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <sys/time.h>

#define LWIP_TIMEVAL_PRIVATE 0
/* glibc provides htons and friends; lwIP must not redefine them. */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1
#define lwip_htons(x) ((u16_t)__builtin_bswap16(x))
#define lwip_htonl(x) ((u32_t)__builtin_bswap32(x))
#define LWIP_ERRNO_STDINCLUDE 1
/* Never random(): that would advance the host program's own PRNG sequence. */
unsigned int ts_lwip_rand(void);
#define LWIP_RAND() ((u32_t)ts_lwip_rand())
/* An lwIP assertion is a bug in us or lwIP; abort loudly rather than corrupt state. */
#define LWIP_PLATFORM_ASSERT(x) do { fprintf(stderr, "tunshim: lwIP assertion \"%s\" failed at %s:%d\n", \
	x, __FILE__, __LINE__); abort(); } while (0)
#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)

#endif
