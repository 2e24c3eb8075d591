/* SPDX-License-Identifier: MIT */
/*
 * connect_check: asserts connect()'s semantics through the ordinary socket API only, so one
 * program checks the shim (run under LD_PRELOAD, against a peer through the tunnel) and
 * the kernel (run without, against loopback), which is the reference.
 *
 *   connect_check einprogress ADDR PORT MAXMS
 *   connect_check refused ADDR PORT
 *   connect_check timeout ADDR PORT SECONDS [expect=ETIMEDOUT|expect=EHOSTUNREACH]
 *   connect_check epoll-before ADDR PORT
 *   connect_check getnames ADDR PORT
 *   connect_check echo ADDR PORT [BYTES]
 *
 * See usage() for what each asserts. ADDR is numeric IPv4 (AF_INET socket) or IPv6,
 * v4-mapped ::ffff:a.b.c.d included (AF_INET6 socket). Exit 0 and a result line on stdout
 * when every assertion holds; exit 1 and "connect_check CMD: expected X, got Y" on stderr
 * at the first that does not; 2 on bad arguments. Progress notes go to stderr. No wait
 * lasts more than WAIT_MS (an outcome that never comes is a failure, not a hang).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 30000
#define ECHO_WAIT_MS 60000
#define ECHO_DEFAULT (1024 * 1024)
#define ECHO_MAX (1024L * 1024 * 1024)
#define COOKIE 0x7473636b636f6f6bULL /* "tscookie"-ish: no fd number looks like it */
#define COOKIE2 0x0123456789abcdefULL

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
	bool mapped; /* ::ffff:a.b.c.d */
	char text[INET6_ADDRSTRLEN + 8];
};

static const char *cmd = "";

static void usage(void)
{
	fputs("usage: connect_check CMD ADDR PORT [ARGS]\n"
	      "  einprogress ADDR PORT MAXMS\n"
	      "      non-blocking connect (SOCK_NONBLOCK) gives -1/EINPROGRESS within MAXMS ms;\n"
	      "      a second connect gives EALREADY (or 0 if the connection is already up:\n"
	      "      the kernel on loopback); EPOLLOUT|EPOLLET epoll reports it; SO_ERROR 0;\n"
	      "      then connect gives 0 once (unless the second did: the kernel marks the\n"
	      "      socket connected in that call) and EISCONN after. Prints 'connected'.\n"
	      "  refused ADDR PORT\n"
	      "      to a closed port: non-blocking (O_NONBLOCK via fcntl) gives EINPROGRESS,\n"
	      "      the EPOLLET event has EPOLLOUT, SO_ERROR is ECONNREFUSED and then 0;\n"
	      "      blocking gives -1/ECONNREFUSED. Prints 'refused'.\n"
	      "  timeout ADDR PORT SECONDS [expect=ETIMEDOUT|expect=EHOSTUNREACH]\n"
	      "      blocking connect (no SO_SNDTIMEO) to an address that never answers fails\n"
	      "      with the errno given (default: either) within SECONDS (fractions\n"
	      "      allowed). Prints 'ERRNO after N.N s'.\n"
	      "  epoll-before ADDR PORT\n"
	      "      an O_NONBLOCK socket added to epoll (EPOLLOUT|EPOLLET, a cookie in\n"
	      "      data.u64) before connect: the event carries the cookie, SO_ERROR 0, the\n"
	      "      registration is still there (ADD gives EEXIST, MOD works, DEL works).\n"
	      "      Prints 'connected'.\n"
	      "  getnames ADDR PORT\n"
	      "      blocking connect; getpeername is ADDR:PORT, getsockname of the same\n"
	      "      family (v4-mapped for a v4-mapped ADDR) with a port; SO_DOMAIN, SO_TYPE,\n"
	      "      SO_PROTOCOL, TCP_INFO state ESTABLISHED. Prints 'local ADDR PORT'.\n"
	      "  echo ADDR PORT [BYTES]\n"
	      "      to an echo server: writes BYTES (default 1048576) of a pattern,\n"
	      "      shutdown(SHUT_WR), reads it all back until EOF and compares.\n"
	      "      Prints 'echo N bytes ok'.\n"
	      "ADDR: numeric IPv4, or IPv6 (::ffff:a.b.c.d too) on an AF_INET6 socket.\n"
	      "Exit 0: all held; 1: 'connect_check CMD: expected X, got Y' on stderr; 2: usage.\n",
	      stderr);
	exit(2);
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "connect_check %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "connect_check %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *ename(int err)
{
	const char *name = err ? strerrorname_np(err) : "0";

	return name ? name : "an unknown errno";
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- arguments and addresses ---- */

static void parse_target(struct target *t, const char *addr, const char *port)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&t->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->ss;
	char *end;
	long p = strtol(port, &end, 10);

	memset(t, 0, sizeof(*t));
	if (!*port || *end || p < 1 || p > 65535)
		usage();
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		t->family = in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		t->len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		t->family = in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		t->len = sizeof(*in6);
		t->mapped = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
	} else {
		fprintf(stderr, "connect_check: not a numeric IPv4 or IPv6 address: '%s'\n", addr);
		usage();
	}
	snprintf(t->text, sizeof(t->text), t->family == AF_INET6 ? "[%s]:%ld" : "%s:%ld",
		 addr, p);
}

static double parse_positive(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (!*s || *end || !(v > 0))
		usage();
	return v;
}

/* "a.b.c.d" or "v6" and the port of a sockaddr. */
static unsigned addr_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &in4->sin_addr, buf, (socklen_t)size);
		return ntohs(in4->sin_port);
	}
	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)size);
		return ntohs(in6->sin6_port);
	}
	snprintf(buf, size, "(family %d)", ss->ss_family);
	return 0;
}

/* ---- small assertions ---- */

static void expect_fail(const char *what, int rc, int err, int want)
{
	if (rc == -1 && err == want)
		return;
	if (rc == -1)
		fail("%s: expected -1/%s, got -1/%s", what, ename(want), ename(err));
	fail("%s: expected -1/%s, got %d", what, ename(want), rc);
}

static int new_socket(const struct target *t, int flags)
{
	int fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);

	if (fd < 0)
		fail("socket: expected a descriptor, got -1/%s", ename(errno));
	return fd;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		fail("fcntl O_NONBLOCK: expected 0, got -1/%s", ename(errno));
}

static int so_error(int fd)
{
	int err = -1;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		fail("getsockopt SO_ERROR: expected 0, got -1/%s", ename(errno));
	return err;
}

static void expect_so_error(int fd, int want, const char *when)
{
	int err = so_error(fd);

	if (err != want)
		fail("SO_ERROR %s: expected %s, got %s", when, ename(want), ename(err));
}

static void blocking_connect(int fd, const struct target *t)
{
	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0)
		fail("blocking connect to %s: expected 0, got -1/%s", t->text, ename(errno));
}

/* A non-blocking connect that has not finished must not look writable: POLLOUT now means
 * the outcome is known, so a connected socket has a peer name. */
static void expect_not_writable_early(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (poll(&p, 1, 0) < 1 || !(p.revents & POLLOUT))
		return;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		fail("POLLOUT right after EINPROGRESS: expected the connection to be up then, "
		     "got getpeername -1/%s", ename(errno));
	note("already writable right after EINPROGRESS, and connected (fast loopback)");
}

/* ---- epoll ---- */

static int epoll_add(int fd, uint32_t events, uint64_t cookie)
{
	struct epoll_event ev = { .events = events, .data.u64 = cookie };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		fail("epoll_create1: expected a descriptor, got -1/%s", ename(errno));
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		fail("epoll_ctl ADD: expected 0, got -1/%s", ename(errno));
	return ep;
}

/* Waits up to WAIT_MS for one event; returns its mask, checking the cookie. */
static uint32_t epoll_one(int ep, uint64_t cookie, const char *what)
{
	struct epoll_event ev[4];
	double t0 = now_ms();
	int n;

	do
		n = epoll_wait(ep, ev, 4, WAIT_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		fail("epoll_wait for %s: expected an event, got -1/%s", what, ename(errno));
	if (n == 0)
		fail("epoll_wait for %s: expected an event, got none in %d ms", what, WAIT_MS);
	if (n != 1)
		fail("epoll_wait for %s: expected 1 event, got %d", what, n);
	if (ev[0].data.u64 != cookie)
		fail("epoll event for %s: expected data.u64 %#llx, got %#llx", what,
		     (unsigned long long)cookie, (unsigned long long)ev[0].data.u64);
	note("epoll: %s after %.1f ms, events %#x%s%s%s", what, now_ms() - t0, ev[0].events,
	     ev[0].events & EPOLLOUT ? " OUT" : "", ev[0].events & EPOLLERR ? " ERR" : "",
	     ev[0].events & EPOLLHUP ? " HUP" : "");
	return ev[0].events;
}

static void expect_epollout(int ep, uint64_t cookie, const char *what)
{
	uint32_t events = epoll_one(ep, cookie, what);

	if (!(events & EPOLLOUT))
		fail("epoll event for %s: expected EPOLLOUT, got events %#x", what, events);
}

/* ---- the subcommands ---- */

/* Right after EINPROGRESS: EALREADY while the handshake runs. The kernel also answers 0
 * when it has completed meanwhile (loopback is that fast); then it must really be up.
 * Returns whether connect has reported the success. */
static bool second_connect(int fd, const struct target *t)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc = connect(fd, (const struct sockaddr *)&t->ss, t->len), err = errno;

	if (rc == -1 && err == EALREADY) {
		note("second connect: -1/EALREADY");
		return false;
	}
	if (rc != 0)
		expect_fail("second connect while in progress", rc, err, EALREADY);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		fail("second connect: expected -1/EALREADY (or 0 once connected), got 0 while "
		     "getpeername says -1/%s", ename(errno));
	note("second connect: 0 (the connection was already up)");
	return true;
}

/* Once connected: the kernel answers the first connect after an asynchronous completion
 * with 0 (that call is what marks the socket connected), every later one with EISCONN. */
static void connect_when_connected(int fd, const struct target *t, bool reported)
{
	int rc;

	if (!reported) {
		rc = connect(fd, (const struct sockaddr *)&t->ss, t->len);
		if (rc != 0)
			fail("first connect after the completion: expected 0 (as the kernel), "
			     "got -1/%s", ename(errno));
	}
	rc = connect(fd, (const struct sockaddr *)&t->ss, t->len);
	expect_fail("connect once connected", rc, errno, EISCONN);
}

static int cmd_einprogress(const struct target *t, double maxms)
{
	int fd = new_socket(t, SOCK_NONBLOCK), ep, rc, err;
	double t0 = now_ms(), took;
	bool reported;

	rc = connect(fd, (const struct sockaddr *)&t->ss, t->len);
	err = errno;
	took = now_ms() - t0;
	expect_fail("non-blocking connect", rc, err, EINPROGRESS);
	if (took > maxms)
		fail("non-blocking connect: expected to return within %g ms, took %.1f ms",
		     maxms, took);
	note("connect: -1/EINPROGRESS after %.2f ms", took);
	expect_not_writable_early(fd);
	reported = second_connect(fd, t);
	ep = epoll_add(fd, EPOLLOUT | EPOLLET, COOKIE);
	expect_epollout(ep, COOKIE, "the connection");
	expect_so_error(fd, 0, "after the event");
	connect_when_connected(fd, t, reported);
	puts("connected");
	close(ep);
	close(fd);
	return 0;
}

static int cmd_refused(const struct target *t)
{
	int fd = new_socket(t, 0), ep, rc;

	set_nonblock(fd);
	rc = connect(fd, (const struct sockaddr *)&t->ss, t->len);
	expect_fail("non-blocking connect to a closed port", rc, errno, EINPROGRESS);
	ep = epoll_add(fd, EPOLLOUT | EPOLLET, COOKIE);
	expect_epollout(ep, COOKIE, "the refusal");
	expect_so_error(fd, ECONNREFUSED, "after the event");
	/* Reading SO_ERROR clears it. */
	expect_so_error(fd, 0, "read a second time");
	close(ep);
	close(fd);

	fd = new_socket(t, 0);
	rc = connect(fd, (const struct sockaddr *)&t->ss, t->len);
	expect_fail("blocking connect to a closed port", rc, errno, ECONNREFUSED);
	close(fd);
	puts("refused");
	return 0;
}

static int parse_expect(const char *arg)
{
	if (!arg)
		return 0;
	if (!strcmp(arg, "expect=ETIMEDOUT"))
		return ETIMEDOUT;
	if (!strcmp(arg, "expect=EHOSTUNREACH"))
		return EHOSTUNREACH;
	usage();
	return 0;
}

static int cmd_timeout(const struct target *t, double seconds, int want)
{
	struct timeval tv = { 1, 0 };
	socklen_t len = sizeof(tv);
	int fd = new_socket(t, 0), rc, err;
	double t0, took;

	if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) < 0 || tv.tv_sec || tv.tv_usec)
		fail("SO_SNDTIMEO of a new socket: expected 0, got %ld.%06ld s",
		     (long)tv.tv_sec, (long)tv.tv_usec);
	t0 = now_ms();
	rc = connect(fd, (const struct sockaddr *)&t->ss, t->len);
	err = errno;
	took = (now_ms() - t0) / 1e3;
	if (want)
		expect_fail("blocking connect to a silent address", rc, err, want);
	else if (rc == 0)
		fail("blocking connect to a silent address: expected -1/ETIMEDOUT or "
		     "-1/EHOSTUNREACH, got 0");
	else if (err != ETIMEDOUT && err != EHOSTUNREACH)
		fail("blocking connect to a silent address: expected -1/ETIMEDOUT or "
		     "-1/EHOSTUNREACH, got -1/%s", ename(err));
	if (took > seconds)
		fail("blocking connect: expected to fail within %g s, took %.1f s", seconds, took);
	close(fd);
	printf("%s after %.1f s\n", ename(err), took);
	return 0;
}

/* The registration made before connect survives it: same cookie, and epoll_ctl still
 * finds the descriptor in the set. */
static int cmd_epoll_before(const struct target *t)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.u64 = COOKIE };
	int fd = new_socket(t, 0), ep, rc;

	set_nonblock(fd);
	ep = epoll_add(fd, EPOLLOUT | EPOLLET, COOKIE);
	rc = connect(fd, (const struct sockaddr *)&t->ss, t->len);
	expect_fail("non-blocking connect", rc, errno, EINPROGRESS);
	expect_epollout(ep, COOKIE, "the connection");
	expect_so_error(fd, 0, "after the event");
	rc = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	expect_fail("epoll_ctl ADD again (still registered)", rc, errno, EEXIST);
	ev = (struct epoll_event){ .events = EPOLLOUT, .data.u64 = COOKIE2 };
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
		fail("epoll_ctl MOD: expected 0, got -1/%s", ename(errno));
	expect_epollout(ep, COOKIE2, "writability after MOD");
	if (epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) < 0)
		fail("epoll_ctl DEL: expected 0, got -1/%s", ename(errno));
	puts("connected");
	close(ep);
	close(fd);
	return 0;
}

static bool same_peer(const struct target *t, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&t->ss;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&t->ss;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family != t->family)
		return false;
	if (t->family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	       !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
}

static void check_peer(int fd, const struct target *t)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char got[INET6_ADDRSTRLEN + 16];
	unsigned port;

	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		fail("getpeername: expected %s, got -1/%s", t->text, ename(errno));
	port = addr_text(&ss, got, sizeof(got));
	if (!same_peer(t, &ss))
		fail("getpeername: expected %s, got %s port %u", t->text, got, port);
	if (len != t->len)
		fail("getpeername length: expected %u, got %u", (unsigned)t->len, (unsigned)len);
}

static void check_local(int fd, const struct target *t, char *text, size_t size,
			unsigned *port)
{
	const struct sockaddr_in6 *in6;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		fail("getsockname: expected an address, got -1/%s", ename(errno));
	*port = addr_text(&ss, text, size);
	if (ss.ss_family != t->family || len != t->len)
		fail("getsockname: expected family %d, length %u; got %d, %u (%s)", t->family,
		     (unsigned)t->len, ss.ss_family, (unsigned)len, text);
	if (*port == 0)
		fail("getsockname: expected a non-zero port, got %s port 0", text);
	in6 = (const struct sockaddr_in6 *)&ss;
	if (t->mapped && !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		fail("getsockname: expected a v4-mapped address (::ffff:a.b.c.d), got %s", text);
}

static void expect_sockopt(int fd, int level, int name, const char *what, int want)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len) < 0)
		fail("getsockopt %s: expected %d, got -1/%s", what, want, ename(errno));
	if (v != want)
		fail("getsockopt %s: expected %d, got %d", what, want, v);
}

static void check_tcp_info(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		fail("getsockopt TCP_INFO: expected a tcp_info, got -1/%s", ename(errno));
	if (len < 1 || ti.tcpi_state != TCP_ESTABLISHED)
		fail("TCP_INFO tcpi_state: expected %d (ESTABLISHED), got %u (length %u)",
		     TCP_ESTABLISHED, ti.tcpi_state, (unsigned)len);
}

static int cmd_getnames(const struct target *t)
{
	char local[INET6_ADDRSTRLEN];
	unsigned port;
	int fd = new_socket(t, 0);

	blocking_connect(fd, t);
	check_peer(fd, t);
	check_local(fd, t, local, sizeof(local), &port);
	expect_sockopt(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN", t->family);
	expect_sockopt(fd, SOL_SOCKET, SO_TYPE, "SO_TYPE", SOCK_STREAM);
	expect_sockopt(fd, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL", IPPROTO_TCP);
	expect_sockopt(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR", 0);
	check_tcp_info(fd);
	printf("local %s %u\n", local, port);
	close(fd);
	return 0;
}

/* ---- echo ---- */

struct echo {
	unsigned char *pattern;
	size_t size, sent, got;
	bool shut;
	unsigned char buf[65536];
};

/* A stream that never repeats within the transfer, so a misplaced chunk shows. */
static void fill_pattern(unsigned char *p, size_t n)
{
	uint32_t x = 0x2545f491;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (unsigned char)(x >> 23);
	}
}

static void echo_write(int fd, struct echo *e)
{
	ssize_t n = write(fd, e->pattern + e->sent, e->size - e->sent);

	if (n < 0 && errno != EAGAIN && errno != EINTR)
		fail("write at byte %zu: expected progress, got -1/%s", e->sent, ename(errno));
	if (n > 0)
		e->sent += (size_t)n;
	if (e->sent == e->size && !e->shut) {
		if (shutdown(fd, SHUT_WR) < 0)
			fail("shutdown(SHUT_WR): expected 0, got -1/%s", ename(errno));
		e->shut = true;
	}
}

/* Returns false at EOF. */
static bool echo_read(int fd, struct echo *e)
{
	ssize_t n = read(fd, e->buf, sizeof(e->buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n < 0)
		fail("read at byte %zu: expected data or EOF, got -1/%s", e->got, ename(errno));
	if (n == 0)
		return false;
	if (e->got + (size_t)n > e->size)
		fail("echo: expected %zu bytes, got at least %zu", e->size, e->got + (size_t)n);
	for (ssize_t i = 0; i < n; i++)
		if (e->buf[i] != e->pattern[e->got + (size_t)i])
			fail("echo byte %zu: expected %#x, got %#x", e->got + (size_t)i,
			     e->pattern[e->got + (size_t)i], e->buf[i]);
	e->got += (size_t)n;
	return true;
}

static void echo_loop(int fd, struct echo *e)
{
	double deadline = now_ms() + ECHO_WAIT_MS;
	struct pollfd p = { .fd = fd };

	for (;;) {
		int left = (int)(deadline - now_ms()), n;

		if (left <= 0)
			fail("echo: expected %zu bytes back within %d ms, got %zu (sent %zu)",
			     e->size, ECHO_WAIT_MS, e->got, e->sent);
		p.events = POLLIN | (e->shut ? 0 : POLLOUT);
		n = poll(&p, 1, left);
		if (n < 0 && errno != EINTR)
			fail("poll: expected readiness, got -1/%s", ename(errno));
		if (n <= 0)
			continue;
		if (p.revents & POLLOUT)
			echo_write(fd, e);
		if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && !echo_read(fd, e))
			return;
	}
}

static int cmd_echo(const struct target *t, size_t size)
{
	static struct echo e;
	int fd = new_socket(t, 0);

	e.size = size;
	e.pattern = malloc(size);
	if (!e.pattern)
		fail("malloc(%zu): expected memory, got none", size);
	fill_pattern(e.pattern, size);
	blocking_connect(fd, t);
	/* Write and read at once: an echo server stops reading once its replies back up. */
	set_nonblock(fd);
	echo_loop(fd, &e);
	if (e.got != e.size)
		fail("echo: expected %zu bytes before EOF, got %zu", e.size, e.got);
	printf("echo %zu bytes ok\n", e.got);
	free(e.pattern);
	close(fd);
	return 0;
}

static size_t parse_size(const char *s)
{
	char *end;
	long v;

	if (!s)
		return ECHO_DEFAULT;
	v = strtol(s, &end, 10);
	if (!*s || *end || v < 1 || v > ECHO_MAX)
		usage();
	return (size_t)v;
}

int main(int argc, char **argv)
{
	struct target t;

	if (argc < 4)
		usage();
	cmd = argv[1];
	parse_target(&t, argv[2], argv[3]);
	if (!strcmp(cmd, "einprogress") && argc == 5)
		return cmd_einprogress(&t, parse_positive(argv[4]));
	if (!strcmp(cmd, "refused") && argc == 4)
		return cmd_refused(&t);
	if (!strcmp(cmd, "timeout") && (argc == 5 || argc == 6))
		return cmd_timeout(&t, parse_positive(argv[4]), parse_expect(argv[5]));
	if (!strcmp(cmd, "epoll-before") && argc == 4)
		return cmd_epoll_before(&t);
	if (!strcmp(cmd, "getnames") && argc == 4)
		return cmd_getnames(&t);
	if (!strcmp(cmd, "echo") && (argc == 4 || argc == 5))
		return cmd_echo(&t, parse_size(argv[4]));
	usage();
	return 2;
}
