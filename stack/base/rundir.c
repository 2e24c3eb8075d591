/* SPDX-License-Identifier: MIT */
/* The runtime directory (rundir.h): created private to the user, refused when it is not. */
#include <blake2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "rundir.h"

/* The directory must be this user's alone: a real directory (lstat: a symlink to one
 * does not count), owned by us, with no access for group or others. Another user who
 * created /tmp/tunshim-UID first could otherwise read or plant what we keep there. */
static int check_private(const char *dir)
{
	struct stat sb;
	static int said;

	if (lstat(dir, &sb) < 0)
		return -1;
	if (S_ISDIR(sb.st_mode) && sb.st_uid == geteuid() && !(sb.st_mode & 077))
		return 0;
	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		ts_err("%s is not a private directory of this user (%s, owner uid %u, mode %04o): "
		       "processes with one key cannot share a tunnel, nor find each other",
		       dir, S_ISDIR(sb.st_mode) ? "a directory" : S_ISLNK(sb.st_mode) ?
		       "a symlink" : "not a directory", (unsigned)sb.st_uid,
		       (unsigned)(sb.st_mode & 07777));
	return -1;
}

/* $XDG_RUNTIME_DIR/tunshim, else /tmp/tunshim-EUID: the user files are created as,
 * and the one SO_PEERCRED and the doorbell check compare with. */
static int record_dir(char *dir, size_t len)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");

	if (rt && rt[0] == '/')
		snprintf(dir, len, "%s/tunshim", rt);
	else
		snprintf(dir, len, "/tmp/tunshim-%u", (unsigned)geteuid());
	mkdir(dir, 0700);
	return check_private(dir);
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
