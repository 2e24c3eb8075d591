#include <blake2.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "hs_gap.h"

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* $XDG_RUNTIME_DIR/tunshim, else /tmp/tunshim-UID; private to the user. */
static int record_dir(char *dir, size_t len)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	struct stat sb;

	if (rt && rt[0] == '/')
		snprintf(dir, len, "%s/tunshim", rt);
	else
		snprintf(dir, len, "/tmp/tunshim-%u", (unsigned)getuid());
	if (mkdir(dir, 0700) < 0 && (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode) ||
				      sb.st_uid != getuid()))
		return -1;
	return 0;
}

int ts_runtime_file(const char *name, char *path, size_t len)
{
	char dir[512];

	if (record_dir(dir, sizeof(dir)) < 0)
		return -1;
	snprintf(path, len, "%s/%s", dir, name);
	return 0;
}

int ts_key_file(const char *kind, const uint8_t public_key[32], char *path, size_t len)
{
	char dir[512];
	uint8_t h[8];

	if (record_dir(dir, sizeof(dir)) < 0)
		return -1;
	/* Named by a hash of the public key: no key material in file names. */
	blake2s(h, public_key, NULL, sizeof(h), 32, 0);
	snprintf(path, len, "%s/%s-%02x%02x%02x%02x%02x%02x%02x%02x", dir, kind,
		 h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
	return 0;
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
