/* SPDX-License-Identifier: MIT */
/*
 * sh_dup2: a program that dup2()s onto arbitrary descriptor numbers: over a tunnelled
 * descriptor, from a tunnelled one onto a plain one, and onto every number up to
 * MAX, the library's own descriptors included. The tunnel must survive it.
 *
 *   sh_dup2 HOST PORT MAX
 *
 * HOST PORT is a TCP line echo server in the tunnel. Checks, dying with the reason:
 * a dup2 copy of a tunnelled descriptor echoes and names the peer; a tunnelled number
 * replaced by a pipe's end reads the pipe; a plain socket replaced by a tunnelled
 * descriptor echoes; dup2 of a pipe onto every number 3..MAX that is not the program's
 * own (nor open at its start) succeeds, except on descriptors the program never opened
 * (the tunnel's, found in /proc/self/fd), where it fails with EBADF and leaves them
 * as they were; afterwards
 * the tunnelled connection and a new one still echo. Prints "OK" and the counts.
 */
#include <dirent.h>
#include <stdbool.h>
#include "sh_util.h"

#define MAX_FDS 8192

static bool mine[MAX_FDS];

static int own(int fd)
{
	if (fd < 0)
		sh_die("descriptor: %s", strerror(errno));
	if (fd < MAX_FDS)
		mine[fd] = true;
	return fd;
}

static void disown(int fd)
{
	close(fd);
	if (fd >= 0 && fd < MAX_FDS)
		mine[fd] = false;
}

/* The open descriptors that are not the program's (the library's), as a table. */
static int others(bool *theirs, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0, dfd = d ? dirfd(d) : -1;

	if (!d)
		sh_die("/proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] == '.' || fd <= 2 || fd == dfd || fd > max || mine[fd])
			continue;
		theirs[fd] = true;
		n++;
	}
	closedir(d);
	return n;
}

static void expect_peer(int fd, const char *host)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[80], want[80];

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		sh_die("getpeername(%d): %s", fd, strerror(errno));
	sh_addr_str((struct sockaddr *)&ss, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s:", host);
	if (strncmp(buf, want, strlen(want)) != 0)
		sh_die("getpeername(%d): %s, not %s", fd, buf, host);
}

/* dup2 of a pipe's end onto every number up to max that is not the program's. */
static void sweep(int src, int max, const bool *theirs, int *ok, int *refused)
{
	for (int n = 3; n <= max; n++) {
		if (mine[n])
			continue;
		if (dup2(src, n) == n) {
			if (theirs[n])
				sh_die("dup2 onto %d, the library's, succeeded", n);
			close(n);
			(*ok)++;
		} else if (errno == EBADF && theirs[n]) {
			(*refused)++;
		} else {
			sh_die("dup2 onto %d: %s", n, strerror(errno));
		}
	}
}

int main(int argc, char **argv)
{
	static bool theirs[MAX_FDS];
	int t, t2, s, p[2], max, ok = 0, refused = 0, lib;
	char b[8];

	sh_prog = "sh_dup2";
	if (argc != 4 || (max = atoi(argv[3])) < 3 || max >= MAX_FDS)
		sh_die("usage: sh_dup2 HOST PORT MAX (MAX below %d)", MAX_FDS);
	/* What was open at the start (inherited, and the library's log) is left alone:
	 * the descriptors under test are the ones the tunnel opens. */
	others(mine, max);
	t = own(sh_connect(argv[1], argv[2]));
	sh_echo_line(t, "first");
	if (pipe(p) < 0)
		sh_die("pipe: %s", strerror(errno));
	own(p[0]);
	own(p[1]);

	/* A copy of the tunnelled descriptor on a number of the program's choosing. */
	if (dup2(t, 100) != 100)
		sh_die("dup2(tunnel, 100): %s", strerror(errno));
	own(100);
	sh_echo_line(100, "on the copy");
	expect_peer(100, argv[1]);
	disown(100);
	sh_echo_line(t, "on the original after the copy closed");

	/* A plain socket replaced by the tunnelled descriptor. */
	s = own(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (dup2(t, s) != s)
		sh_die("dup2(tunnel, socket): %s", strerror(errno));
	sh_echo_line(s, "on the socket that became the tunnel");
	expect_peer(s, argv[1]);
	disown(s);

	/* The tunnelled number replaced by a pipe: it is the pipe now. */
	if (dup2(p[0], t) != t)
		sh_die("dup2(pipe, tunnel): %s", strerror(errno));
	if (write(p[1], "x", 1) != 1 || read(t, b, 1) != 1 || b[0] != 'x')
		sh_die("the replaced tunnel number does not read the pipe");
	disown(t);

	/* Every number, the library's own included. */
	t2 = own(sh_connect(argv[1], argv[2]));
	sh_echo_line(t2, "second connection");
	lib = others(theirs, max);
	if (lib == 0)
		sh_die("no descriptor of the library's at or below %d to test", max);
	sweep(p[0], max, theirs, &ok, &refused);
	if (refused != lib)
		sh_die("%d of the library's %d descriptors refused", refused, lib);
	sh_echo_line(t2, "after the sweep");
	disown(t2);
	t2 = own(sh_connect(argv[1], argv[2]));
	sh_echo_line(t2, "a new connection after the sweep");
	printf("OK dup2 onto %d numbers, %d of them the library's (refused, EBADF)\n",
	       ok + refused, refused);
	return 0;
}
