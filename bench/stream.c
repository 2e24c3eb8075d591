/* SPDX-License-Identifier: MIT */
/* bench_stream: bulk TCP over 127.0.0.1 between two threads of one process, for the
 * pass-through rows: under LD_PRELOAD its read() and write() go through the library's
 * interposers, and none of its traffic may enter the tunnel, so the figure shows what the
 * preload costs a program that never uses the tunnel. It does not link the stack.
 *
 *   bench_stream BYTES [CHUNK]
 *
 * A writer thread connects and write()s BYTES in CHUNK-byte calls (default 16384, curl's
 * buffer size: many calls, so a per-call cost shows); the main thread accepts and read()s
 * CHUNK at a time until EOF. It prints one line, the rate from the accept to the end:
 *
 *   stream: bytes=N chunk=N ns=N mbs=N          (MB/s: 10^6 bytes a second) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct job {
	struct sockaddr_in sa;
	long long bytes;
	size_t chunk;
	int failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *writer(void *arg)
{
	struct job *j = arg;
	char *buf = calloc(1, j->chunk);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long long left = j->bytes;

	if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&j->sa, sizeof(j->sa)) < 0) {
		perror("bench_stream: connect");
		j->failed = 1;
		left = 0;
	}
	while (left > 0) {
		size_t n = left < (long long)j->chunk ? (size_t)left : j->chunk;
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("bench_stream: write");
			j->failed = 1;
			break;
		}
		left -= w;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/* Reads to EOF; returns the bytes read, or -1. */
static long long drain(int fd, size_t chunk)
{
	char *buf = malloc(chunk);
	long long got = 0;
	ssize_t n;

	if (!buf)
		return -1;
	while ((n = read(fd, buf, chunk)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			got += n;
	free(buf);
	return n < 0 ? -1 : got;
}

int main(int argc, char **argv)
{
	struct job j = { .sa = { .sin_family = AF_INET }, .chunk = 16384 };
	socklen_t len = sizeof(j.sa);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fd;
	long long got;
	uint64_t t0, t1;
	pthread_t th;

	if (argc < 2 || argc > 3 || (j.bytes = atoll(argv[1])) <= 0 ||
	    (argc == 3 && (j.chunk = (size_t)atol(argv[2])) == 0)) {
		fprintf(stderr, "usage: bench_stream BYTES [CHUNK]\n");
		return 2;
	}
	j.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&j.sa, sizeof(j.sa)) < 0 ||
	    listen(lfd, 1) < 0 || getsockname(lfd, (struct sockaddr *)&j.sa, &len) < 0)
		return perror("bench_stream: listen"), 1;
	if (pthread_create(&th, NULL, writer, &j) != 0)
		return fprintf(stderr, "bench_stream: pthread_create failed\n"), 1;
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return perror("bench_stream: accept"), 1;
	t0 = now_ns();
	got = drain(fd, j.chunk);
	t1 = now_ns();
	pthread_join(th, NULL);
	close(fd);
	close(lfd);
	if (j.failed || got != j.bytes) {
		fprintf(stderr, "bench_stream: %lld of %lld bytes arrived\n", got, j.bytes);
		return 1;
	}
	printf("stream: bytes=%lld chunk=%zu ns=%llu mbs=%.1f\n", got, j.chunk,
	       (unsigned long long)(t1 - t0), (double)got / (double)(t1 - t0) * 1000);
	return 0;
}
