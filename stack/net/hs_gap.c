/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "hs_gap.h"
#include "rundir.h"

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int ts_gap_open(const uint8_t public_key[32])
{
	char path[600];

	if (ts_key_file("hs", public_key, path, sizeof(path)) < 0)
		return -1;
	return open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

void ts_gap_wait(int fd)
{
	uint64_t last = 0, now = realtime_ns(), until;

	if (fd < 0 || pread(fd, &last, sizeof(last), 0) != sizeof(last))
		return;
	until = last + TS_GAP_MS * 1000000ull;
	/* A record from the future (clock stepped back) is not waited for. */
	if (until > now && until - now <= TS_GAP_MS * 1000000ull) {
		struct timespec ts = { 0, (long)(until - now) };

		while (nanosleep(&ts, &ts) < 0)
			;
	}
}

void ts_gap_record(int fd)
{
	uint64_t now = realtime_ns();

	if (fd >= 0 && pwrite(fd, &now, sizeof(now), 0) != sizeof(now))
		return;
}
