/* SPDX-License-Identifier: MIT */
/* bench_idle: the resident memory that N idle TCP connections add to the process that
 * holds them. Under LD_PRELOAD, with a config of its own (so that this process runs the
 * stack itself rather than attaching to another's session), that is what the library
 * spends per tunnel connection: the stack's pcbs, bridges and buffers. It does not link
 * the stack.
 *
 *   bench_idle ADDR PORT N
 *
 * Against an echo server (bench_pingpong server): one connection first, with a byte
 * echoed, so the stack is up and has a session; the resident set then is the base. Then N
 * non-blocking connects at once, a byte echoed on each while all are open (every one is
 * established end to end), a pause for the stack to settle, and the resident set again.
 * The first connection stays open throughout. It prints one line:
 *
 *   idle: n=N base_kib=N open_kib=N added_kib=N connect_ms=N threads=N
 *
 * (connect_ms: from the first of the N connects until all of them had echoed; threads:
 * the process's, with everything open: under the preload, more than one shows that the
 * stack ran here rather than in another process's session). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_MS 60000		/* the most the N connections may take */
#define SETTLE_US 300000	/* after the echoes: deferred frees, the stack's timers */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_idle: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
		die("/proc/self/statm");
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Each tunnel connection is two descriptors here (ours and the stack's end). */
static void raise_nofile(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	if ((long)rl.rlim_cur >= need)
		return;
	rl.rlim_cur = (long)rl.rlim_max < need ? rl.rlim_max : (rlim_t)need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || (long)rl.rlim_cur < need) {
		errno = EMFILE;
		die("RLIMIT_NOFILE below what N connections need");
	}
}

static long threads(void)
{
	char line[256];
	long n = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		die("/proc/self/status");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

static int start(const struct addrinfo *ai, int nonblock)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0),
			0);

	if (fd < 0)
		die("socket");
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && !(nonblock && errno == EINPROGRESS))
		die("connect");
	return fd;
}

static void echo_one(int fd)
{
	char b;

	if (write(fd, "x", 1) != 1 || read(fd, &b, 1) != 1)
		die("the first connection's echo");
}

/* One step of connection i: connected -> byte sent -> byte back. Returns 1 when done. */
static int step(struct pollfd *p, char *state)
{
	int err = 0;
	socklen_t len = sizeof(err);
	char b;
	ssize_t n;

	if (*state == 0) {
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			errno = err ? err : errno;
			die("a connection");
		}
		if (write(p->fd, "x", 1) != 1)
			die("write");
		*state = 1;
		p->events = POLLIN;
		return 0;
	}
	n = read(p->fd, &b, 1);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n != 1) {
		errno = n < 0 ? errno : ECONNRESET;
		die("an echo");
	}
	return 1;
}

/* Drives every connection until each has echoed its byte. */
static void echo_all(struct pollfd *p, char *state, long n)
{
	long left = n, deadline = now_ms() + IO_MS;

	while (left > 0) {
		if (now_ms() > deadline) {
			fprintf(stderr, "bench_idle: %ld of %ld connections unfinished after %d ms\n",
				left, n, IO_MS);
			exit(1);
		}
		if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR)
			die("poll");
		for (long i = 0; i < n; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if (step(&p[i], &state[i])) {
				p[i].fd = -p[i].fd - 1;	/* poll skips negative descriptors */
				left--;
			}
		}
	}
	for (long i = 0; i < n; i++)
		p[i].fd = -p[i].fd - 1;
}

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai;
	struct pollfd *p;
	char *state;
	long n, base, open, t0, ms;
	int first, err;

	if (argc != 4 || (n = atol(argv[3])) <= 0) {
		fprintf(stderr, "usage: bench_idle ADDR PORT N\n");
		return 2;
	}
	err = getaddrinfo(argv[1], argv[2], &hints, &ai);
	if (err) {
		fprintf(stderr, "bench_idle: %s: %s\n", argv[1], gai_strerror(err));
		return 2;
	}
	raise_nofile(2 * n + 64);
	p = calloc((size_t)n, sizeof(*p));
	state = calloc((size_t)n, 1);
	if (!p || !state)
		die("calloc");
	first = start(ai, 0);
	echo_one(first);
	usleep(SETTLE_US);
	base = rss_kib();
	t0 = now_ms();
	for (long i = 0; i < n; i++) {
		p[i].fd = start(ai, 1);
		p[i].events = POLLOUT;
	}
	echo_all(p, state, n);
	ms = now_ms() - t0;
	usleep(SETTLE_US);
	open = rss_kib();
	printf("idle: n=%ld base_kib=%ld open_kib=%ld added_kib=%ld connect_ms=%ld threads=%ld\n",
	       n, base, open, open - base, ms, threads());
	for (long i = 0; i < n; i++)
		close(p[i].fd);
	close(first);
	freeaddrinfo(ai);
	free(p);
	free(state);
	return 0;
}
