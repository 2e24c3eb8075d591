/* SPDX-License-Identifier: MIT */
/*
 * sh_close_range: a program that closes every descriptor above stderr, as daemons and
 * process supervisors do, and then uses the network.
 *
 *   sh_close_range HOW WHEN HOST PORT
 *
 * HOW is how it closes them: close_range (close_range(3, ~0U, 0)), closefrom
 * (closefrom(3)), or loop (close() on 3 .. the soft RLIMIT_NOFILE). WHEN is "first" (before
 * any connection) or "between" (after one HTTP request, so the tunnel is already running
 * when its descriptors are swept). Each request is "GET /index.html HTTP/1.0" to HOST
 * PORT; the body of the last one goes to stdout, "OK N requests" to stderr.
 */
#include <signal.h>
#include <sys/resource.h>
#include "sh_util.h"

static void http_get(const char *host, const char *port, int out)
{
	static const char req[] = "GET /index.html HTTP/1.0\r\nHost: test\r\n\r\n";
	char buf[65536], *body;
	size_t got = 0;
	ssize_t n;
	int fd = sh_connect(host, port);

	sh_write_all(fd, req, sizeof(req) - 1);
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	if (n < 0)
		sh_die("read: %s", strerror(errno));
	close(fd);
	buf[got] = 0;
	if (strncmp(buf, "HTTP/1.0 200", 12) != 0 || !(body = strstr(buf, "\r\n\r\n")))
		sh_die("not a 200 response: '%.40s'", buf);
	body += 4;
	if (out >= 0)
		sh_write_all(out, body, got - (size_t)(body - buf));
}

static void close_all(const char *how)
{
	struct rlimit rl;

	if (strcmp(how, "close_range") == 0) {
		if (close_range(3, ~0U, 0) < 0)
			sh_die("close_range: %s", strerror(errno));
	} else if (strcmp(how, "closefrom") == 0) {
		closefrom(3);
	} else if (strcmp(how, "loop") == 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			sh_die("getrlimit: %s", strerror(errno));
		for (rlim_t fd = 3; fd < rl.rlim_cur && fd < (1 << 20); fd++)
			close((int)fd);
	} else {
		sh_die("unknown HOW '%s'", how);
	}
}

int main(int argc, char **argv)
{
	int requests = 1;

	sh_prog = "sh_close_range";
	if (argc != 5 || (strcmp(argv[2], "first") != 0 && strcmp(argv[2], "between") != 0))
		sh_die("usage: sh_close_range close_range|closefrom|loop first|between HOST PORT");
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[2], "between") == 0) {
		http_get(argv[3], argv[4], -1);
		requests++;
	}
	close_all(argv[1]);
	http_get(argv[3], argv[4], 1);
	fprintf(stderr, "OK %d requests\n", requests);
	return 0;
}
