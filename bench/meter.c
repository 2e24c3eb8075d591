/* SPDX-License-Identifier: MIT */
/* bench_meter: how fast a stream arrives. Reads stdin to its end, discarding it, and prints
 * "meter: bytes=N first_ns=F last_ns=L" where F is the time from start to the first byte
 * and L from start to the end of the stream. The rate from first byte to end leaves out
 * what comes before any data (process start, tunnel handshake, TCP connect, request).
 * It does not link the stack. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(void)
{
	static char buf[1 << 20];
	uint64_t t0 = now_ns(), first = 0, total = 0;
	ssize_t n;

	while ((n = read(0, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("bench_meter: read");
			return 1;
		}
		if (!total)
			first = now_ns() - t0;
		total += (uint64_t)n;
	}
	printf("meter: bytes=%llu first_ns=%llu last_ns=%llu\n", (unsigned long long)total,
	       (unsigned long long)first, (unsigned long long)(now_ns() - t0));
	return 0;
}
