/* SPDX-License-Identifier: MIT */
/*
 * sh_fork_child: a forked child uses a TCP connection its parent opened.
 *
 *   sh_fork_child shared HOST PORT   the child echoes a line on the parent's connection and
 *                                    exits; then the parent echoes one too (the connection
 *                                    outlives the child's copy of it)
 *   sh_fork_child orphan HOST PORT   the parent exits as soon as it has forked; the child
 *                                    waits until it is gone, then echoes a line
 *
 * HOST PORT is a line echo server. Prints one "OK ..." line per echo that came back;
 * exits 0 when every echo did.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include "sh_util.h"

static void child_echo(int fd, const char *who)
{
	char line[128];

	snprintf(line, sizeof(line), "hello from the %s, pid %d", who, (int)getpid());
	sh_echo_line(fd, line);
	printf("OK %s\n", who);
	fflush(stdout);
}

static int shared(int fd)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		sh_die("fork: %s", strerror(errno));
	if (pid == 0) {
		child_echo(fd, "child");
		exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		sh_die("the child failed (status 0x%x)", st);
	child_echo(fd, "parent");
	return 0;
}

/* The parent returns from main at once (exit handlers and all); the child waits until
 * it has been reparented. */
static int orphan(int fd)
{
	pid_t parent = getpid(), pid;
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	int i;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		sh_die("fork: %s", strerror(errno));
	if (pid > 0)
		return 0;
	for (i = 0; i < 1000 && getppid() == parent; i++)
		nanosleep(&nap, NULL);
	if (getppid() == parent)
		sh_die("the parent (pid %d) did not exit within 10 s", (int)parent);
	/* Give the parent's exit time to finish what it does on the way out. */
	nap.tv_nsec = 200 * 1000 * 1000;
	nanosleep(&nap, NULL);
	child_echo(fd, "orphaned child");
	return 0;
}

int main(int argc, char **argv)
{
	int fd;

	sh_prog = "sh_fork_child";
	if (argc != 4)
		sh_die("usage: sh_fork_child shared|orphan HOST PORT");
	signal(SIGPIPE, SIG_IGN);
	fd = sh_connect(argv[2], argv[3]);
	if (strcmp(argv[1], "shared") == 0)
		return shared(fd);
	if (strcmp(argv[1], "orphan") == 0)
		return orphan(fd);
	sh_die("unknown mode '%s'", argv[1]);
}
