/* SPDX-License-Identifier: MIT */
/*
 * sh_nb_connect: the outcome of a non-blocking connect, as an event loop sees it: through
 * edge-triggered epoll and SO_ERROR.
 *
 *   sh_nb_connect ADDR PORT SECONDS EXPECT
 *
 * connect() on an O_NONBLOCK socket must give -1/EINPROGRESS; the socket is then added to
 * epoll with EPOLLOUT|EPOLLET. The first event must come within SECONDS and carry EPOLLOUT;
 * SO_ERROR must then be EXPECT (0, ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH), and
 * 0 when read again. An event that comes early with SO_ERROR 0 while an error was expected
 * is a failure. Prints "EXPECT after N.N s, events 0x.."; exits 1 with "expected X, got Y"
 * otherwise.
 */
#include <sys/epoll.h>
#include <time.h>
#include "sh_util.h"

static const struct {
	const char *name;
	int err;
} errnos[] = {
	{ "0", 0 }, { "ECONNREFUSED", ECONNREFUSED }, { "ETIMEDOUT", ETIMEDOUT },
	{ "EHOSTUNREACH", EHOSTUNREACH }, { "ENETUNREACH", ENETUNREACH },
	{ "ECONNRESET", ECONNRESET }, { "EADDRINUSE", EADDRINUSE },
};

static const char *ename(int err)
{
	static char buf[32];

	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].err == err)
			return errnos[i].name;
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

static int parse_errno(const char *name)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (strcmp(errnos[i].name, name) == 0)
			return errnos[i].err;
	sh_die("unknown errno name '%s'", name);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int so_error(int fd)
{
	int err = -1;
	socklen_t l = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		sh_die("getsockopt SO_ERROR: %s", strerror(errno));
	return err;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET };
	socklen_t len;
	double t0, took;
	int fd, ep, want, err, n;

	sh_prog = "sh_nb_connect";
	if (argc != 5)
		sh_die("usage: sh_nb_connect ADDR PORT SECONDS EXPECT");
	len = sh_addr(argv[1], argv[2], &ss);
	want = parse_errno(argv[4]);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ep = epoll_create1(0);
	if (fd < 0 || ep < 0)
		sh_die("socket/epoll_create1: %s", strerror(errno));
	t0 = now_s();
	if (connect(fd, (struct sockaddr *)&ss, len) == 0 || errno != EINPROGRESS)
		sh_die("connect: expected -1/EINPROGRESS, got %s", errno ? ename(errno) : "0");
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		sh_die("epoll_ctl: %s", strerror(errno));
	n = epoll_wait(ep, &ev, 1, (int)(atof(argv[3]) * 1000));
	took = now_s() - t0;
	if (n != 1)
		sh_die("expected an event within %s s, got %s after %.1f s", argv[3],
		       n == 0 ? "none" : strerror(errno), took);
	if (!(ev.events & EPOLLOUT))
		sh_die("expected EPOLLOUT in the event, got events 0x%x", ev.events);
	err = so_error(fd);
	if (err != want)
		sh_die("SO_ERROR: expected %s, got %s after %.1f s (events 0x%x)", ename(want),
		       ename(err), took, ev.events);
	if ((err = so_error(fd)) != 0)
		sh_die("SO_ERROR read again: expected 0, got %s", ename(err));
	printf("%s after %.1f s, events 0x%x\n", ename(want), took, ev.events);
	return 0;
}
