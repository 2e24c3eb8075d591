/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the shim suites' test programs (tests/tools/sh_*.c): numeric
 * addresses, connects, full writes, a line read with a deadline. Everything fails loudly:
 * a test program that cannot do its job says why on stderr and exits 1. */
#ifndef SH_UTIL_H
#define SH_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *sh_prog = "sh_tool";

static inline void __attribute__((noreturn, format(printf, 1, 2))) sh_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", sh_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* HOST is a numeric IPv4 or IPv6 address (v4-mapped ones included). */
static inline socklen_t sh_addr(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	long p = strtol(port, NULL, 10);

	memset(ss, 0, sizeof(*ss));
	if (p <= 0 || p > 65535)
		sh_die("bad port '%s'", port);
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		return sizeof(*s6);
	}
	sh_die("bad address '%s'", host);
}

/* "a.b.c.d:port" or "[v6]:port". */
static inline const char *sh_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "family-%d", sa->sa_family);
	}
	return buf;
}

/* A blocking TCP connect. */
static inline int sh_connect(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sh_addr(host, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		sh_die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		sh_die("connect %s port %s: %s", host, port, strerror(errno));
	return fd;
}

static inline void sh_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			sh_die("write: %s", n < 0 ? strerror(errno) : "wrote nothing");
		p += n;
		len -= (size_t)n;
	}
}

/* Reads up to and including a newline (NUL-terminated, newline stripped); dies on EOF,
 * error or after timeout_ms without one. */
static inline size_t sh_read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t got = 0;

	while (got + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) == 0)
			sh_die("no line within %d ms (got %zu bytes)", timeout_ms, got);
		n = read(fd, buf + got, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			sh_die("read: %s after %zu bytes", n < 0 ? strerror(errno) : "EOF", got);
		if (buf[got] == '\n')
			break;
		got++;
	}
	buf[got] = 0;
	return got;
}

/* Sends LINE and a newline to an echo server and checks that it comes back. */
static inline void sh_echo_line(int fd, const char *line)
{
	char back[512];

	sh_write_all(fd, line, strlen(line));
	sh_write_all(fd, "\n", 1);
	sh_read_line(fd, back, sizeof(back), 10000);
	if (strcmp(back, line) != 0)
		sh_die("echo: sent '%s', got back '%s'", line, back);
}

#endif
