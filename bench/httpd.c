/* SPDX-License-Identifier: MIT */
/* bench_httpd: a small static-file HTTP/1.1 server for the benchmarks, so that the server
 * is never what a benchmark measures (python's http.server tops out near the tunnel's
 * own speed). It does not link the stack.
 *
 *   bench_httpd PORT DIR
 *
 * Listens on [::]:PORT, IPv4 included, and forks a child per connection. GET and HEAD
 * serve a regular file directly inside DIR ("/" is index.html) with sendfile; PUT and
 * POST with a Content-Length (100-continue honoured) read the body, drop it, and answer
 * with its length. Keep-alive for HTTP/1.1; HTTP/1.0 closes after the response. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAD_MAX 16384

struct conn {
	int fd;
	int dirfd;
	size_t len;		/* bytes buffered in buf */
	char buf[HEAD_MAX];
};

struct request {
	char method[16];
	char path[256];
	int minor;		/* HTTP/1.minor */
	long long clen;		/* -1: no Content-Length */
	int close;		/* the connection ends after the response */
	int expect_continue;
};

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int reply(struct conn *c, const struct request *rq, int code, const char *text,
		 long long length)
{
	char h[256];
	int n = snprintf(h, sizeof(h),
			 "HTTP/1.1 %d %s\r\nContent-Length: %lld\r\nConnection: %s\r\n\r\n",
			 code, text, length, rq->close ? "close" : "keep-alive");

	return write_all(c->fd, h, (size_t)n);
}

static int reply_text(struct conn *c, const struct request *rq, int code, const char *text,
		      const char *body)
{
	if (reply(c, rq, code, text, (long long)strlen(body)) < 0)
		return -1;
	return strcmp(rq->method, "HEAD") ? write_all(c->fd, body, strlen(body)) : 0;
}

/* Reads until the buffer holds a whole header block; returns its length with the blank
 * line, 0 at a clean end of the connection, -1 on error or an oversized header. */
static ssize_t read_head(struct conn *c)
{
	for (;;) {
		char *end;
		ssize_t n;

		c->buf[c->len] = 0;
		end = strstr(c->buf, "\r\n\r\n");
		if (end)
			return end + 4 - c->buf;
		if (c->len >= sizeof(c->buf) - 1)
			return -1;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && c->len == 0 ? 0 : -1;
		c->len += (size_t)n;
	}
}

static void parse_head(char *head, struct request *rq)
{
	char *line, *save = NULL;

	memset(rq, 0, sizeof(*rq));
	rq->clen = -1;
	if (sscanf(head, "%15s %255s HTTP/1.%d", rq->method, rq->path, &rq->minor) != 3)
		rq->method[0] = 0;
	rq->close = rq->minor == 0;
	strtok_r(head, "\r\n", &save);
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		if (!strncasecmp(line, "Content-Length:", 15))
			rq->clen = atoll(line + 15);
		else if (!strncasecmp(line, "Connection:", 11))
			rq->close = strcasestr(line, "close") != NULL;
		else if (!strncasecmp(line, "Expect:", 7))
			rq->expect_continue = strcasestr(line, "100-continue") != NULL;
	}
}

/* Drops the first n buffered bytes (a handled header, or body bytes read with it). */
static void consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* A name directly inside the served directory: no subdirectories, no dot files. */
static const char *file_name(const char *path)
{
	if (path[0] != '/')
		return NULL;
	if (!path[1])
		return "index.html";
	if (path[1] == '.' || strchr(path + 1, '/'))
		return NULL;
	return path + 1;
}

static int send_file(struct conn *c, const struct request *rq)
{
	const char *name = file_name(rq->path);
	struct stat st;
	off_t off = 0;
	int fd = name ? openat(c->dirfd, name, O_RDONLY | O_CLOEXEC) : -1;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return reply_text(c, rq, 404, "Not Found", "not found\n");
	}
	if (reply(c, rq, 200, "OK", (long long)st.st_size) < 0 || !strcmp(rq->method, "HEAD")) {
		close(fd);
		return 0;
	}
	while (off < st.st_size) {
		ssize_t n = sendfile(c->fd, fd, &off, (size_t)(st.st_size - off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
	close(fd);
	return off == st.st_size ? 0 : -1;
}

/* Reads and drops an upload's body: first what came with the header, then the rest. */
static int drop_body(struct conn *c, long long clen)
{
	static char sink[262144];
	long long left = clen;
	size_t have = (size_t)left < c->len ? (size_t)left : c->len;

	consume(c, have);
	left -= (long long)have;
	while (left > 0) {
		ssize_t n = read(c->fd, sink, left < (long long)sizeof(sink) ? (size_t)left : sizeof(sink));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		left -= n;
	}
	return 0;
}

static int receive_upload(struct conn *c, struct request *rq)
{
	char body[32];

	if (rq->clen < 0) {
		rq->close = 1;
		return reply_text(c, rq, 411, "Length Required", "length required\n");
	}
	if (rq->expect_continue && write_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		return -1;
	if (drop_body(c, rq->clen) < 0)
		return -1;
	snprintf(body, sizeof(body), "%lld\n", rq->clen);
	return reply_text(c, rq, 200, "OK", body);
}

static int handle(struct conn *c, struct request *rq)
{
	if (!strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD"))
		return send_file(c, rq);
	if (!strcmp(rq->method, "PUT") || !strcmp(rq->method, "POST"))
		return receive_upload(c, rq);
	rq->close = 1;
	return reply_text(c, rq, 400, "Bad Request", "bad request\n");
}

static void serve(struct conn *c)
{
	struct request rq;
	ssize_t hlen;

	while ((hlen = read_head(c)) > 0) {
		parse_head(c->buf, &rq);
		consume(c, (size_t)hlen);
		if (handle(c, &rq) < 0 || rq.close)
			break;
	}
}

static int listen_any(const char *port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), off = 0, on = 1;

	sa.sin6_port = htons((uint16_t)atoi(port));
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static struct conn c;
	int lfd, on = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: bench_httpd PORT DIR\n");
		return 2;
	}
	c.dirfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	lfd = listen_any(argv[1]);
	if (c.dirfd < 0 || lfd < 0) {
		perror("bench_httpd");
		return 1;
	}
	signal(SIGCHLD, SIG_IGN);	/* children are reaped by the kernel */
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		c.fd = accept(lfd, NULL, NULL);
		if (c.fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				usleep(10000);	/* no busy loop while out of descriptors */
			continue;
		}
		setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if (fork() == 0) {
			close(lfd);
			serve(&c);
			_exit(0);
		}
		close(c.fd);
	}
}
