/* SPDX-License-Identifier: MIT */
/* bench_httpd: a small static-file HTTP/1.1 server for the benchmarks, so that the server
 * is never what a benchmark measures (python's http.server tops out near the tunnel's
 * own speed). It does not link the stack.
 *
 *   bench_httpd PORT DIR
 *
 * Listens on [::]:PORT, IPv4 included. GET and HEAD serve a regular file directly inside
 * DIR ("/" is index.html) with sendfile; PUT and POST with a Content-Length (100-continue
 * honoured) read the body, drop it, and answer with its length. Keep-alive for HTTP/1.1;
 * HTTP/1.0 closes after the response.
 *
 * One thread serves every connection from an epoll loop, each connection a small state
 * machine on a non-blocking socket. (It used to fork a child per connection: with the
 * scale row's 1,000 connections that was 1,000 processes taking turns on two CPUs, a
 * load the server added to what the row meant to measure.) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define OUT_MAX 512

struct request {
	char method[16];
	char path[256];
	int minor;		/* HTTP/1.minor */
	long long clen;		/* -1: no Content-Length */
	int close;		/* the connection ends after the response */
	int expect_continue;
};

enum state {
	HEAD,			/* reading a request's header */
	BODY,			/* reading and dropping an upload's body */
	SENT,			/* the response is queued: once it is out, the next request */
};

struct conn {
	int fd;
	enum state state;
	uint32_t events;	/* what epoll waits for now */
	struct request rq;
	long long body_left;
	int file;		/* -1, or the file being sent after out[] */
	off_t off, size;
	size_t len;		/* header bytes buffered in buf */
	size_t out_len, out_off;
	char out[OUT_MAX];	/* a status line and header, or a short body */
	char buf[HEAD_MAX];
};

static int dirfd_;
static int ep;

/* What step() found: go on, wait for epoll, or drop the connection. */
enum step { MORE, WAIT_IN, WAIT_OUT, DROP };

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

/* Queues text after what is queued already. */
static void queue(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void queue(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->out + c->out_len, sizeof(c->out) - c->out_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->out_len += (size_t)n < sizeof(c->out) - c->out_len ? (size_t)n
								       : sizeof(c->out) - c->out_len - 1;
}

static void reply(struct conn *c, int code, const char *text, long long length)
{
	queue(c, "HTTP/1.1 %d %s\r\nContent-Length: %lld\r\nConnection: %s\r\n\r\n", code, text,
	      length, c->rq.close ? "close" : "keep-alive");
	c->state = SENT;
}

static void reply_text(struct conn *c, int code, const char *text, const char *body)
{
	reply(c, code, text, (long long)strlen(body));
	if (strcmp(c->rq.method, "HEAD"))
		queue(c, "%s", body);
}

static void start_file(struct conn *c)
{
	const char *name = file_name(c->rq.path);
	struct stat st;
	int fd = name ? openat(dirfd_, name, O_RDONLY | O_CLOEXEC) : -1;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		reply_text(c, 404, "Not Found", "not found\n");
		return;
	}
	reply(c, 200, "OK", (long long)st.st_size);
	if (!strcmp(c->rq.method, "HEAD")) {
		close(fd);
		return;
	}
	c->file = fd;
	c->off = 0;
	c->size = st.st_size;
}

/* The body bytes that came with the header count; the rest is read in BODY. */
static void start_upload(struct conn *c)
{
	size_t have;

	if (c->rq.clen < 0) {
		c->rq.close = 1;
		reply_text(c, 411, "Length Required", "length required\n");
		return;
	}
	if (c->rq.expect_continue)
		queue(c, "HTTP/1.1 100 Continue\r\n\r\n");
	have = (size_t)c->rq.clen < c->len ? (size_t)c->rq.clen : c->len;
	consume(c, have);
	c->body_left = c->rq.clen - (long long)have;
	c->state = BODY;
}

/* A whole header is buffered (hlen bytes with the blank line): answer it. */
static void handle(struct conn *c, size_t hlen)
{
	c->buf[hlen - 1] = 0;
	parse_head(c->buf, &c->rq);
	consume(c, hlen);
	if (!strcmp(c->rq.method, "GET") || !strcmp(c->rq.method, "HEAD")) {
		start_file(c);
	} else if (!strcmp(c->rq.method, "PUT") || !strcmp(c->rq.method, "POST")) {
		start_upload(c);
	} else {
		c->rq.close = 1;
		reply_text(c, 400, "Bad Request", "bad request\n");
	}
}

/* Sends what is queued, then the file. */
static enum step flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return WAIT_OUT;
		if (n <= 0)
			return DROP;
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	/* Until the socket's buffer is full: that bounds a turn, so one download does not keep
	 * the loop from the others. */
	while (c->file >= 0 && c->off < c->size) {
		ssize_t n = sendfile(c->fd, c->file, &c->off, (size_t)(c->size - c->off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return WAIT_OUT;
		if (n <= 0)
			return DROP;
	}
	if (c->file >= 0) {
		close(c->file);
		c->file = -1;
	}
	return MORE;
}

static enum step read_body(struct conn *c)
{
	static char sink[262144];
	size_t want = c->body_left < (long long)sizeof(sink) ? (size_t)c->body_left : sizeof(sink);
	ssize_t n;

	if (c->body_left == 0) {
		char len[32];

		snprintf(len, sizeof(len), "%lld\n", c->rq.clen);
		reply_text(c, 200, "OK", len);
		return MORE;
	}
	n = read(c->fd, sink, want);
	if (n < 0 && errno == EINTR)
		return MORE;
	if (n < 0 && errno == EAGAIN)
		return WAIT_IN;
	if (n <= 0)
		return DROP;
	c->body_left -= n;
	return MORE;
}

static enum step read_head(struct conn *c)
{
	char *end;
	ssize_t n;

	c->buf[c->len] = 0;
	end = strstr(c->buf, "\r\n\r\n");
	if (end) {
		handle(c, (size_t)(end + 4 - c->buf));
		return MORE;
	}
	if (c->len >= sizeof(c->buf) - 1)
		return DROP;
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (n < 0 && errno == EINTR)
		return MORE;
	if (n < 0 && errno == EAGAIN)
		return WAIT_IN;
	if (n <= 0)
		return DROP;
	c->len += (size_t)n;
	return MORE;
}

/* One step of a connection's state machine. */
static enum step step(struct conn *c)
{
	enum step s;

	s = flush(c);
	if (s != MORE)
		return s;
	switch (c->state) {
	case HEAD:
		return read_head(c);
	case BODY:
		return read_body(c);
	case SENT:
		if (c->rq.close)
			return DROP;
		c->state = HEAD;
		return MORE;
	}
	return DROP;
}

static void drop(struct conn *c)
{
	if (c->file >= 0)
		close(c->file);
	close(c->fd);		/* also leaves the epoll set */
	free(c);
}

/* Runs a connection until it has to wait; a bounded number of steps, so that one
 * connection with a fast peer cannot keep the loop to itself. */
static void run(struct conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	for (int i = 0; i < 64; i++) {
		switch (step(c)) {
		case MORE:
			continue;
		case DROP:
			drop(c);
			return;
		case WAIT_IN:
			ev.events = EPOLLIN;
			break;
		case WAIT_OUT:
			ev.events = EPOLLOUT;
			break;
		}
		break;
	}
	if (!ev.events)
		ev.events = EPOLLOUT;	/* more to do: writable comes back at once */
	if (ev.events != c->events && epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = ev.events;
}

static void accept_all(int lfd)
{
	int on = 1;

	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			/* Out of descriptors, the listener stays readable: no busy loop. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				usleep(10000);
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		c->fd = fd;
		c->file = -1;
		c->events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
		}
	}
}

static int listen_any(const char *port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), off = 0, on = 1;

	sa.sin6_port = htons((uint16_t)atoi(port));
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* The scale row opens 1,000 connections at once (wrk -c 1000): a short backlog would
	 * drop SYNs, and their retransmissions a second later would be what the row saw. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct epoll_event ev[64] = { { .events = EPOLLIN } };
	int lfd, n;

	if (argc != 3) {
		fprintf(stderr, "usage: bench_httpd PORT DIR\n");
		return 2;
	}
	dirfd_ = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	lfd = listen_any(argv[1]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev[0].data.ptr = NULL;	/* the listener */
	if (dirfd_ < 0 || lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev[0]) < 0) {
		perror("bench_httpd");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		n = epoll_wait(ep, ev, 64, -1);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr)
				run(ev[i].data.ptr);
			else
				accept_all(lfd);
		}
	}
}
