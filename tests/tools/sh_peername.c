/* SPDX-License-Identifier: MIT */
/*
 * sh_peername: an inetd-style handler asks the connection it was started on who the
 * client is, as inetd services (and socat's EXEC/SYSTEM with nofork) do.
 *
 *   sh_peername [FD]
 *       calls getpeername and getsockname on FD (default 0, the handler's stdin) and on
 *       fd 1, and writes "peer=A local=A\n" to fd 1 (the connection itself, so the
 *       client reads it). If stdin and stdout disagree, or a call fails, it writes an
 *       "error: ..." line to stdout and to stderr and exits 1.
 *
 * A is "a.b.c.d:port" or "[v6]:port", as sh_util.h prints them.
 */
#include <signal.h>
#include <stdbool.h>
#include "sh_util.h"

/* "peer=A local=A" for fd, or an "error: ..." line; false on error. */
static bool describe(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char peer[96], local[96];

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, len, "error: getpeername(%d): %s", fd, strerror(errno));
		return false;
	}
	sh_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, len, "error: getsockname(%d): %s", fd, strerror(errno));
		return false;
	}
	sh_addr_str((struct sockaddr *)&ss, local, sizeof(local));
	snprintf(out, len, "peer=%s local=%s", peer, local);
	return true;
}

static int report(const char *line, int rc)
{
	char buf[320];

	snprintf(buf, sizeof(buf), "%s\n", line);
	sh_write_all(1, buf, strlen(buf));
	if (rc != 0)
		fprintf(stderr, "%s: %s", sh_prog, buf);
	return rc;
}

int main(int argc, char **argv)
{
	char in[256], out[256];
	int fd = argc > 1 ? atoi(argv[1]) : 0;

	sh_prog = "sh_peername";
	signal(SIGPIPE, SIG_IGN);
	if (argc > 2)
		sh_die("usage: sh_peername [FD]");
	if (!describe(fd, in, sizeof(in)))
		return report(in, 1);
	if (fd != 1) {
		if (!describe(1, out, sizeof(out)))
			return report(out, 1);
		if (strcmp(in, out) != 0)
			return report("error: stdin and stdout are different connections", 1);
	}
	return report(in, 0);
}
