/* SPDX-License-Identifier: MIT */
/* The user's private runtime directory, where processes of one user that use the same
 * key find each other: $XDG_RUNTIME_DIR/tunshim, else /tmp/tunshim-UID. */
#ifndef TS_RUNDIR_H
#define TS_RUNDIR_H

#include <stddef.h>
#include <stdint.h>

/* The path of a per-key file of the given kind in the user's private runtime
 * directory ($XDG_RUNTIME_DIR/tunshim or /tmp/tunshim-UID). */
int ts_runtime_file(const char *name, char *path, size_t len);
int ts_key_file(const char *kind, const uint8_t public_key[32], char *path, size_t len);

#endif
