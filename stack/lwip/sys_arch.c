/* SPDX-License-Identifier: MIT */
/* The two platform functions lwIP needs with NO_SYS, a millisecond clock and randomness,
 * and the one lwIP setting chosen at run time (TCP_MSL). */
#include <time.h>
#include <sodium.h>
#include "lwip/sys.h"

/* TCP_MSL (lwipopts.h): lwIP's default until the stack scales it. */
unsigned long ts_lwip_tcp_msl = 60000;

u32_t sys_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u32_t)(ts.tv_sec * 1000u + ts.tv_nsec / 1000000);
}

unsigned int ts_lwip_rand(void)
{
	return randombytes_random();
}
