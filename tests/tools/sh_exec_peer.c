/* SPDX-License-Identifier: MIT */
/*
 * sh_exec_peer: a program exec'd with a TCP connection it inherited asks the descriptor
 * who it is connected to, as a server's worker or an inetd child would.
 *
 *   sh_exec_peer HOST PORT
 *       connects to the line echo server HOST PORT, prints "parent peer=A local=A", keeps
 *       the descriptor across exec and execs itself as:
 *   sh_exec_peer --child FD
 *       prints "child peer=A local=A type=T domain=D protocol=P" for FD (getpeername,
 *       getsockname, SO_TYPE, SO_DOMAIN, SO_PROTOCOL), echoes a line on it, prints "OK".
 *
 * A is "a.b.c.d:port" or "[v6]:port"; T, D and P are numbers.
 */
#include <fcntl.h>
#include <signal.h>
#include "sh_util.h"

static void names(int fd, char *peer, char *local, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		sh_die("getpeername: %s", strerror(errno));
	sh_addr_str((struct sockaddr *)&ss, peer, len);
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		sh_die("getsockname: %s", strerror(errno));
	sh_addr_str((struct sockaddr *)&ss, local, len);
}

static int opt(int fd, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, name, &v, &l) < 0)
		sh_die("getsockopt %d: %s", name, strerror(errno));
	return v;
}

static int child(int fd)
{
	char peer[96], local[96];

	names(fd, peer, local, sizeof(peer));
	printf("child peer=%s local=%s type=%d domain=%d protocol=%d\n", peer, local,
	       opt(fd, SO_TYPE), opt(fd, SO_DOMAIN), opt(fd, SO_PROTOCOL));
	fflush(stdout);
	sh_echo_line(fd, "hello from the exec'd child");
	printf("OK\n");
	return 0;
}

int main(int argc, char **argv)
{
	char peer[96], local[96], fdarg[16];
	int fd;

	sh_prog = "sh_exec_peer";
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return child(atoi(argv[2]));
	if (argc != 3)
		sh_die("usage: sh_exec_peer HOST PORT");
	fd = sh_connect(argv[1], argv[2]);
	names(fd, peer, local, sizeof(peer));
	printf("parent peer=%s local=%s\n", peer, local);
	fflush(stdout);
	if (fcntl(fd, F_SETFD, 0) < 0)
		sh_die("F_SETFD: %s", strerror(errno));
	snprintf(fdarg, sizeof(fdarg), "%d", fd);
	execl("/proc/self/exe", "sh_exec_peer", "--child", fdarg, (char *)NULL);
	sh_die("exec: %s", strerror(errno));
}
