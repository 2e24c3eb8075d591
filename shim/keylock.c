/* SPDX-License-Identifier: MIT */
/* One WireGuard session per key at a time. A second process that started its own
 * handshake with the same key would take the session from the first (the peer keeps
 * one endpoint per key) and reset its connections, so the process that runs the
 * stack holds a lock on a per-key file, and says who it is there. A newcomer waits
 * while the holder is only finishing its deliveries (a detached continuation), and
 * otherwise gets a clear message and a connect error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include "rundir.h"
#include "log.h"
#include "shim.h"

#define WAIT_FOR_FINISHING_S 30

static int lock_fd = -1;

static void write_state(const char *state)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%d %-9s\n", (int)getpid(), state);

	/* Same length every time, written in place: a reader never sees it empty. */
	if (lock_fd < 0)
		return;
	if (pwrite(lock_fd, line, (size_t)n, 0) != n || ftruncate(lock_fd, n) < 0)
		ts_dbg("session file: %s", strerror(errno));
}

static void read_state(int fd, int *pid, char *state, size_t len)
{
	char line[64] = "";
	ssize_t n = pread(fd, line, sizeof(line) - 1, 0);

	*pid = 0;
	state[0] = 0;
	if (n > 0) {
		line[n] = 0;
		if (sscanf(line, "%d %15s", pid, state) != 2)
			*pid = 0;
	}
	(void)len;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int shim_keylock_acquire(void)
{
	char path[600], state[16];
	int fd, pid, waited = 0;

	if (ts_key_file("session", shim_cfg.public_key, path, sizeof(path)) < 0)
		return 0; /* nowhere to coordinate: go ahead */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return 0;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		read_state(fd, &pid, state, sizeof(state));
		/* The holder may not have written who it is yet: look again shortly. */
		if (!state[0] && waited < 10) {
			waited++;
			nap_ms(5);
			continue;
		}
		if (strcmp(state, "finishing") != 0 || waited >= WAIT_FOR_FINISHING_S * 100) {
			ts_err("another process (pid %d) holds the WireGuard session for this key "
			       "(%s): two processes cannot use one key at the same time yet; "
			       "tunnel connections from this process fail", pid,
			       shim_cfg.path ? shim_cfg.path : "config");
			real.close(fd); /* the stack thread: never through our close() */
			return -EADDRINUSE;
		}
		if (waited++ == 0)
			ts_info("waiting for pid %d to finish its deliveries with this key", pid);
		nap_ms(10);
	}
	lock_fd = shim_adopt_fd(fd);
	write_state("active");
	return 0;
}

/* In the detached continuation, which inherited the lock with its descriptor. */
void shim_keylock_finishing(void)
{
	write_state("finishing");
}
