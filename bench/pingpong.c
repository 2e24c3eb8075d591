/* SPDX-License-Identifier: MIT */
/* bench_pingpong: TCP request/response latency, one byte each way, for the benchmarks.
 * It does not link the stack: run it under LD_PRELOAD to measure the preload layer.
 *
 *   bench_pingpong loop N                        both ends in this process, over 127.0.0.1
 *   bench_pingpong server PORT                   echo server on [::]:PORT (IPv4 too)
 *   bench_pingpong client ADDR PORT N            N round trips over one connection
 *   bench_pingpong client ADDR PORT N --connect  N times: connect, one round trip, close
 *
 * A client prints one line: "pingpong: n=N median_ns=.. p99_ns=.. mean_ns=.. min_ns=..",
 * after N/10 unrecorded round trips (at least 10) that warm caches and the path up. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nodelay(int fd)
{
	int on = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static int read_byte(int fd)
{
	char b;
	ssize_t n;

	do
		n = read(fd, &b, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

static int write_byte(int fd)
{
	ssize_t n;

	do
		n = write(fd, "x", 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

static int round_trip(int fd)
{
	return write_byte(fd) < 0 || read_byte(fd) < 0 ? -1 : 0;
}

static int dial(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		close(fd);
		return -1;
	}
	nodelay(fd);
	return fd;
}

/* One connect, round trip and close; its duration in *ns. */
static int connect_round_trip(const struct addrinfo *ai, uint64_t *ns)
{
	uint64_t t0 = now_ns();
	int fd = dial(ai), rc;

	if (fd < 0)
		return -1;
	rc = round_trip(fd);
	close(fd);
	*ns = now_ns() - t0;
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(uint64_t *v, size_t n)
{
	long double sum = 0;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	/* p99 by nearest rank: the smallest sample at or above 99 % of them. */
	printf("pingpong: n=%zu median_ns=%llu p99_ns=%llu mean_ns=%.0Lf min_ns=%llu\n", n,
	       (unsigned long long)v[n / 2], (unsigned long long)v[(n * 99 + 99) / 100 - 1],
	       sum / n, (unsigned long long)v[0]);
}

/* N recorded samples after the warm-up; fd < 0 means a new connection for each. */
static int measure(int fd, const struct addrinfo *ai, size_t n)
{
	size_t warm = n / 10 > 10 ? n / 10 : 10;
	uint64_t *v = calloc(n, sizeof(*v)), t0;

	if (!v)
		return -1;
	for (size_t i = 0; i < warm + n; i++) {
		uint64_t *slot = &v[i < warm ? 0 : i - warm];

		if (fd < 0) {
			if (connect_round_trip(ai, slot) < 0)
				goto fail;
			continue;
		}
		t0 = now_ns();
		if (round_trip(fd) < 0)
			goto fail;
		*slot = now_ns() - t0;
	}
	report(v, n);
	free(v);
	return 0;
fail:
	perror("bench_pingpong: round trip");
	free(v);
	return -1;
}

static void echo(int fd)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && write(fd, buf, (size_t)n) != n)
			break;
}

static void *echo_thread(void *arg)
{
	int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);

	if (fd >= 0) {
		nodelay(fd);
		echo(fd);
		close(fd);
	}
	return NULL;
}

static int run_loop(size_t n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct addrinfo ai = { .ai_family = AF_INET, .ai_addr = (struct sockaddr *)&sa };
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fd, rc;
	pthread_t th;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		return perror("bench_pingpong: listen"), 1;
	ai.ai_addrlen = len;
	pthread_create(&th, NULL, echo_thread, &lfd);
	fd = dial(&ai);
	if (fd < 0)
		return perror("bench_pingpong: connect"), 1;
	rc = measure(fd, NULL, n);
	close(fd);
	pthread_join(th, NULL);
	close(lfd);
	return rc < 0;
}

/* Every ready connection gets its bytes back; one thread, so the server never forks
 * inside a measured connect. */
static void serve_events(int ep, int lfd)
{
	struct epoll_event ev[64];
	char buf[4096];
	int n;

	for (;;) {
		n = epoll_wait(ep, ev, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			ssize_t r;

			if (fd == lfd) {
				fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (fd < 0)
					continue;
				nodelay(fd);
				ev[i].events = EPOLLIN;
				ev[i].data.fd = fd;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev[i]);
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r <= 0 || write(fd, buf, (size_t)r) != r)
				close(fd);	/* also leaves the epoll set */
		}
	}
}

static int run_server(const char *port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct epoll_event ev = { .events = EPOLLIN };
	int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), ep, off = 0, on = 1;

	sa.sin6_port = htons((uint16_t)atoi(port));
	if (lfd < 0)
		return perror("bench_pingpong: socket"), 1;
	setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* bench_idle opens 1,000 connections at once: no SYN may be dropped for the backlog. */
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, SOMAXCONN) < 0)
		return perror("bench_pingpong: listen"), 1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		return perror("bench_pingpong: epoll"), 1;
	serve_events(ep, lfd);
	return 0;
}

static int run_client(const char *addr, const char *port, size_t n, int each)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai;
	int fd = -1, rc, err = getaddrinfo(addr, port, &hints, &ai);

	if (err) {
		fprintf(stderr, "bench_pingpong: %s: %s\n", addr, gai_strerror(err));
		return 2;
	}
	if (!each && (fd = dial(ai)) < 0) {
		perror("bench_pingpong: connect");
		freeaddrinfo(ai);
		return 1;
	}
	rc = measure(fd, ai, n);
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rc < 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_pingpong loop N | server PORT | "
		"client ADDR PORT N [--connect]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long n;

	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "server"))
		return run_server(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "loop") && (n = atol(argv[2])) > 0)
		return run_loop((size_t)n);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "client") && (n = atol(argv[4])) > 0) {
		if (argc == 6 && strcmp(argv[5], "--connect"))
			usage();
		return run_client(argv[2], argv[3], (size_t)n, argc == 6);
	}
	usage();
	return 2;
}
