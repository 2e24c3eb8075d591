/* SPDX-License-Identifier: MIT */
/* bench_get: one HTTP/1.0 GET over the ordinary socket API, the same exchange ts_fetch
 * makes through its tunnel, so that the two one-shot fetches differ only in the tunnel
 * (curl's own start-up costs more than a whole cold fetch by ts_fetch). It does not link
 * the stack.
 *
 *   bench_get ADDR PORT PATH
 *
 * Reads the response to its end and discards it; exits 0 on status 200 with a body as
 * long as its Content-Length, 1 otherwise. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int dial(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai;
	int fd, err = getaddrinfo(addr, port, &hints, &ai);

	if (err) {
		fprintf(stderr, "bench_get: %s: %s\n", addr, gai_strerror(err));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("bench_get: connect");
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Status and body length of the response on fd; -1 on a read error. */
static int read_response(int fd, int *status, long long *clen, long long *body)
{
	static char buf[65536];
	long long total = 0, head = -1;
	ssize_t n;

	*status = 0;
	*clen = -1;
	while ((n = read(fd, buf, sizeof(buf) - 1)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (head < 0) {
			char *end, *cl;

			buf[n] = 0;	/* the headers of a GET for a small file fit one read */
			end = strstr(buf, "\r\n\r\n");
			if (!end)
				return -1;
			head = end + 4 - buf;
			sscanf(buf, "HTTP/%*d.%*d %d", status);
			cl = strcasestr(buf, "\r\nContent-Length:");
			if (cl && cl < end)
				*clen = atoll(cl + 17);
		}
		total += n;
	}
	*body = total - head;
	return 0;
}

int main(int argc, char **argv)
{
	char req[512];
	long long clen, body;
	int fd, status, n;

	if (argc != 4) {
		fprintf(stderr, "usage: bench_get ADDR PORT PATH\n");
		return 2;
	}
	fd = dial(argv[1], argv[2]);
	if (fd < 0)
		return 1;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", argv[3], argv[1]);
	if (n >= (int)sizeof(req) || write(fd, req, (size_t)n) != n ||
	    read_response(fd, &status, &clen, &body) < 0) {
		fprintf(stderr, "bench_get: request failed\n");
		return 1;
	}
	close(fd);
	if (status != 200 || (clen >= 0 && body != clen)) {
		fprintf(stderr, "bench_get: status %d, body %lld of %lld bytes\n", status, body, clen);
		return 1;
	}
	return 0;
}
