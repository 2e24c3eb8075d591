/* SPDX-License-Identifier: MIT */
/* ts_fetch: fetches one HTTP/1.0 resource through the in-process tunnel using the
 * stack's bridge API directly (no LD_PRELOAD), for the interop tests.
 *   ts_fetch [--rate BYTES_PER_SEC] [--timeout SECONDS] CONFIG ADDRESS PORT PATH
 * Body to stdout; exit 0 on HTTP 200 with a complete body. A failed connect says
 * 'ts_fetch: connect: ERROR after SECONDS s'. One statistics line on stderr at exit.
 * TUNSHIM_TIMER_SCALE scales the protocol timers. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "config.h"
#include "device.h"
#include "log.h"
#include "stack.h"

struct opts { double rate; int timeout; const char *conf, *addr, *port, *path; };

static void usage(void)
{
	fprintf(stderr, "usage: ts_fetch [--rate BYTES_PER_SEC] [--timeout SECONDS] "
		"CONFIG ADDRESS PORT PATH\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	int i = 1;

	o->rate = 0;
	o->timeout = 60;
	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i += 2) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--rate"))
			o->rate = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--timeout"))
			o->timeout = atoi(argv[i + 1]);
		else
			usage();
	}
	if (argc - i != 4)
		usage();
	o->conf = argv[i];
	o->addr = argv[i + 1];
	o->port = argv[i + 2];
	o->path = argv[i + 3];
}

static void *watchdog(void *arg)
{
	int secs = *(int *)arg;

	sleep(secs);
	fprintf(stderr, "ts_fetch: timed out after %d s\n", secs);
	_exit(3);
}

static int make_remote(const char *addr, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(atoi(port));
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(atoi(port));
		return 0;
	}
	return -1;
}

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

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads the response; headers are parsed once complete, the body streamed out. */
static int read_response(int fd, double rate)
{
	static char buf[65536];
	char head[16384];
	size_t hlen = 0;
	long long clen = -1, body = 0;
	int status = 0, in_body = 0;
	double t0 = now_s();
	ssize_t n;

	while ((n = read(fd, buf, rate > 0 && rate < sizeof(buf) ? (size_t)rate : sizeof(buf))) > 0) {
		char *p = buf;

		if (!in_body) {
			size_t take = (size_t)n < sizeof(head) - 1 - hlen ? (size_t)n : sizeof(head) - 1 - hlen;
			char *end;

			memcpy(head + hlen, buf, take);
			hlen += take;
			head[hlen] = 0;
			end = strstr(head, "\r\n\r\n");
			if (!end)
				continue;
			in_body = 1;
			sscanf(head, "HTTP/%*d.%*d %d", &status);
			char *cl = strcasestr(head, "\r\nContent-Length:");
			if (cl)
				clen = atoll(cl + 17);
			size_t hdr = (size_t)(end + 4 - head);
			p = buf + (hdr - (hlen - take));
			n = buf + n - p;
		}
		if (n > 0 && write_all(1, p, (size_t)n) < 0)
			return -1;
		body += n;
		if (rate > 0) {
			double due = t0 + body / rate, t = now_s();

			if (due > t)
				usleep((useconds_t)((due - t) * 1e6));
		}
	}
	if (n < 0)
		fprintf(stderr, "ts_fetch: read: %s\n", strerror(errno));
	if (status != 200 || n < 0 || (clen >= 0 && body != clen)) {
		fprintf(stderr, "ts_fetch: status %d, body %lld of %lld bytes\n", status, body, clen);
		return -1;
	}
	return 0;
}

static void print_stats(struct ts_stack *st)
{
	struct wg_peer_stats s;

	if (ts_stack_peer_stats(st, 0, &s) < 0)
		return;
	fprintf(stderr, "ts_fetch: handshakes=%llu initiations=%llu cookie_replies=%llu "
		"mac2_initiations=%llu rx=%llu tx=%llu\n",
		(unsigned long long)s.handshakes_completed, (unsigned long long)s.initiations_sent,
		(unsigned long long)s.cookie_replies_received,
		(unsigned long long)s.initiations_sent_with_mac2,
		(unsigned long long)s.rx_bytes, (unsigned long long)s.tx_bytes);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct wg_config cfg;
	struct ts_stack_options so = { 0 };
	struct ts_bridge_req req = { .proto = IPPROTO_TCP };
	struct ts_stack *st;
	char err[512], reqtext[1024];
	const char *env = getenv("TUNSHIM_TIMER_SCALE");
	const char *lvl = getenv("TUNSHIM_LOG");
	pthread_t wd;
	double t0;
	int sv[2], rc;

	parse_args(argc, argv, &o);
	if (lvl && ts_log_parse_level(lvl) >= 0)
		ts_log_set(2, ts_log_parse_level(lvl));
	pthread_create(&wd, NULL, watchdog, &o.timeout);
	if (wg_config_parse_file(o.conf, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	for (size_t i = 0; i < cfg.n_warnings; i++)
		fprintf(stderr, "%s\n", cfg.warnings[i]);
	so.timer_scale = env ? atof(env) : 0;
	if (make_remote(o.addr, o.port, &req.remote) < 0) {
		fprintf(stderr, "ts_fetch: not an IP address: %s\n", o.addr);
		return 2;
	}
	if (ts_stack_start(&cfg, &so, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "ts_fetch: %s\n", err);
		return 1;
	}
	wg_config_free(&cfg);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return perror("socketpair"), 1;
	req.fd = sv[1];
	t0 = now_s();
	rc = ts_bridge_open_wait(st, &req, NULL);
	if (rc < 0) {
		fprintf(stderr, "ts_fetch: connect: %s after %.3f s\n", strerror(-rc), now_s() - t0);
		print_stats(st);
		return 1;
	}
	snprintf(reqtext, sizeof(reqtext), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", o.path, o.addr);
	rc = write_all(sv[0], reqtext, strlen(reqtext)) < 0 ? -1 : read_response(sv[0], o.rate);
	print_stats(st);
	close(sv[0]);
	ts_stack_stop(st);
	return rc < 0 ? 1 : 0;
}
