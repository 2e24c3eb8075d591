/* SPDX-License-Identifier: MIT */
/* ts_serve: our stack as the responder, for the flood tests. Runs the stack with the
 * config's ListenPort through the stack API (no LD_PRELOAD) and serves TCP PORT
 * inside the tunnel: every connection gets an endless stream of bytes (a download
 * as fast as the tunnel goes) until the client closes it.
 *   ts_serve [--timeout SECONDS] CONFIG PORT
 * Prints "ts_serve: ready port=PORT stack_tid=TID" once it serves (TID: the stack
 * thread, for /proc/PID/task/TID/stat), and a counters line
 *   ts_serve: handshakes=N bad_mac=N under_load_entered=N handshakes_under_load=N
 *     cookie_replies_sent=N cookie_replies_limited=N handshakes_ratelimited=N
 *     rx_bad_source=N rx=N tx=N
 * on SIGUSR1 and at the end (SIGTERM, or SECONDS passed). TUNSHIM_TIMER_SCALE scales
 * the protocol timers. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "config.h"
#include "device.h"
#include "stack.h"

#define MAX_TASKS 64

static struct ts_stack *stack;

static int usage(void)
{
	fprintf(stderr, "usage: ts_serve [--timeout SECONDS] CONFIG PORT\n");
	return 2;
}

/* The threads of this process, to tell which one ts_stack_start added. */
static int tasks(long out[MAX_TASKS])
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < MAX_TASKS)
		if (e->d_name[0] != '.')
			out[n++] = atol(e->d_name);
	closedir(d);
	return n;
}

static long new_task(const long *before, int nb)
{
	long now[MAX_TASKS];
	int n = tasks(now);

	for (int i = 0; i < n; i++) {
		int seen = 0;

		for (int j = 0; j < nb; j++)
			seen |= now[i] == before[j];
		if (!seen)
			return now[i];
	}
	return -1;
}

static void print_stats(void)
{
	struct wg_device_stats d = { 0 };
	struct wg_peer_stats p = { 0 };

	ts_stack_device_stats(stack, &d);
	ts_stack_peer_stats(stack, 0, &p);
	printf("ts_serve: handshakes=%llu bad_mac=%llu under_load_entered=%llu "
	       "handshakes_under_load=%llu cookie_replies_sent=%llu cookie_replies_limited=%llu "
	       "handshakes_ratelimited=%llu rx_bad_source=%llu rx=%llu tx=%llu\n",
	       (unsigned long long)p.handshakes_completed, (unsigned long long)d.handshakes_bad_mac,
	       (unsigned long long)d.under_load_entered,
	       (unsigned long long)d.handshakes_under_load,
	       (unsigned long long)d.cookie_replies_sent,
	       (unsigned long long)d.cookie_replies_limited,
	       (unsigned long long)d.handshakes_ratelimited,
	       (unsigned long long)p.rx_bad_source, (unsigned long long)p.rx_bytes,
	       (unsigned long long)p.tx_bytes);
	fflush(stdout);
}

/* One client: bytes until it goes away. */
static void *stream(void *arg)
{
	static const char zeros[65536];
	int fd = (int)(long)arg;

	while (send(fd, zeros, sizeof(zeros), MSG_NOSIGNAL) > 0)
		;
	close(fd);
	return NULL;
}

/* The listener on loopback is rung by the stack's doorbell; the tunnel connection
 * behind it is claimed by the doorbell's four-tuple (stack.h, ts_inbound_claim). */
static void take_one(int lfd)
{
	struct sockaddr_storage from, to;
	socklen_t fl = sizeof(from), tl = sizeof(to);
	struct ts_claim c;
	pthread_t t;
	int fd = accept(lfd, (struct sockaddr *)&from, &fl);

	if (fd < 0)
		return;
	if (getsockname(fd, (struct sockaddr *)&to, &tl) == 0 &&
	    ts_inbound_claim(stack, &from, &to, NULL, NULL, &c) == 0) {
		if (pthread_create(&t, NULL, stream, (void *)(long)c.fd) == 0)
			pthread_detach(t);
		else
			close(c.fd);
	}
	close(fd);
}

static int loopback_listener(struct sockaddr_storage *fwd)
{
	struct sockaddr_in *in = (struct sockaddr_in *)fwd;
	socklen_t len = sizeof(*in);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(fwd, 0, sizeof(*fwd));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)in, len) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)in, &len))
		return -1;
	return fd;
}

static int serve(int lfd, int sfd, int timeout)
{
	struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
	struct signalfd_siginfo si;
	time_t end = time(NULL) + timeout;

	while (time(NULL) < end) {
		if (poll(p, 2, 200) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents & POLLIN)
			take_one(lfd);
		if (!(p[1].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo != SIGUSR1)
			break;
		print_stats();
	}
	print_stats();
	return 0;
}

int main(int argc, char **argv)
{
	struct ts_stack_options so = { 0 };
	struct sockaddr_storage fwd;
	struct wg_config cfg;
	const char *env = getenv("TUNSHIM_TIMER_SCALE");
	long before[MAX_TASKS], tid;
	int nb, port, lfd, sfd, timeout = 600;
	uint64_t id;
	char err[512];
	sigset_t sigs;

	if (argc == 5 && !strcmp(argv[1], "--timeout")) {
		timeout = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 3 || (port = atoi(argv[2])) <= 0 || port > 65535 || timeout <= 0)
		return usage();
	/* Blocked before any thread starts, so only the signalfd sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (wg_config_parse_file(argv[1], &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	so.timer_scale = env ? atof(env) : 0;
	nb = tasks(before);
	if (ts_stack_start(&cfg, &so, &stack, err, sizeof(err)) < 0) {
		fprintf(stderr, "ts_serve: %s\n", err);
		return 1;
	}
	wg_config_free(&cfg);
	tid = new_task(before, nb);
	lfd = loopback_listener(&fwd);
	if (sfd < 0 || lfd < 0 || ts_listen(stack, AF_INET, (uint16_t)port, &fwd, &id) < 0) {
		fprintf(stderr, "ts_serve: cannot listen on port %d\n", port);
		return 1;
	}
	printf("ts_serve: ready port=%d stack_tid=%ld\n", port, tid);
	fflush(stdout);
	return serve(lfd, sfd, timeout);
}
