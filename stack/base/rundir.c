/* SPDX-License-Identifier: MIT */
/* The runtime directory (rundir.h): created private to the user, refused when it is not. */
#include <blake2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rundir.h"

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
