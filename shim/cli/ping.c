/* SPDX-License-Identifier: MIT */
/* `tunshim ping [--config FILE] [-c COUNT] [-6] ADDRESS`: ICMP echo through the tunnel
 * for a user whose system ping ignores LD_PRELOAD (Debian gives it cap_net_raw).
 *
 * The wrapper runs itself again with the library preloaded, so this is an ordinary
 * process of the config: it starts the tunnel or attaches to the identity's session
 * like any other. It opens a ping socket (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6); where the
 * kernel refuses one (net.ipv4.ping_group_range), the library serves it for tunnel
 * addresses anyway (shim/socket.c), and nothing is ever sent to the host network: an
 * address outside the tunnel gets EACCES or ENETUNREACH. The output is ping's. */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "ping.h"

#define DATA_LEN 56
#define MAXWAIT_MS 10000 /* ping's linger without any reply */

struct ping {
	const char *host;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	char shown[INET6_ADDRSTRLEN];
	int family, fd;
	long count, sent, received;  /* count 0: until interrupted */
	long wait_ms;                /* -W: after the last request; <0: ping's rule */
	int64_t start_us;
	int64_t sent_us[65536];      /* when each request went, by sequence number */
	bool seen[65536];            /* its reply came */
	double tmin, tmax, tsum, tsum2;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int fail(const char *fmt, const char *arg, int err)
{
	fprintf(stderr, "tunshim: ping: ");
	fprintf(stderr, fmt, arg);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	return 2;
}

static int resolve(struct ping *p, int family)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_DGRAM }, *ai;
	int rc = getaddrinfo(p->host, NULL, &hints, &ai);

	if (rc != 0) {
		fprintf(stderr, "tunshim: ping: %s: %s\n", p->host, gai_strerror(rc));
		return 2;
	}
	memcpy(&p->dst, ai->ai_addr, ai->ai_addrlen);
	p->dst_len = ai->ai_addrlen;
	p->family = ai->ai_family;
	freeaddrinfo(ai);
	getnameinfo((struct sockaddr *)&p->dst, p->dst_len, p->shown, sizeof(p->shown), NULL, 0,
		    NI_NUMERICHOST);
	return 0;
}

static int open_socket(struct ping *p)
{
	int on = 1;

	p->fd = socket(p->family, SOCK_DGRAM,
		       p->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	if (p->fd < 0)
		return fail("%s", "socket", errno);
	if (p->family == AF_INET)
		setsockopt(p->fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof(on));
	else
		setsockopt(p->fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof(on));
	return 0;
}

/* An echo request with ping's 56 bytes of data; the stack writes the identifier and
 * the checksum (a ping socket's). */
static int send_echo(struct ping *p)
{
	uint8_t msg[8 + DATA_LEN] = { p->family == AF_INET ? 8 : 128 };
	uint16_t seq = (uint16_t)(p->sent + 1);


	msg[6] = (uint8_t)(seq >> 8);
	msg[7] = (uint8_t)seq;
	for (int i = 8; i < (int)sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	p->sent_us[seq] = now_us();
	p->seen[seq] = false;
	if (sendto(p->fd, msg, sizeof(msg), 0, (struct sockaddr *)&p->dst, p->dst_len) < 0) {
		fprintf(stderr, "tunshim: ping: sendmsg: %s\n", strerror(errno));
		return -1;
	}
	p->sent++;
	return 0;
}

static void print_time(double ms)
{
	long us = (long)(ms * 1000);

	if (us >= 100000 - 50)
		printf(" time=%ld ms\n", (us + 500) / 1000);
	else if (us >= 10000 - 5)
		printf(" time=%ld.%01ld ms\n", (us + 50) / 1000, ((us + 50) % 1000) / 100);
	else if (us >= 1000)
		printf(" time=%ld.%02ld ms\n", (us + 5) / 1000, ((us + 5) % 1000) / 10);
	else
		printf(" time=%ld.%03ld ms\n", us / 1000, us % 1000);
}

static int ttl_of(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		int v;

		if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
		    (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			return v;
		}
	}
	return -1;
}

static void account(struct ping *p, double ms)
{
	if (!p->received || ms < p->tmin)
		p->tmin = ms;
	if (ms > p->tmax)
		p->tmax = ms;
	p->tsum += ms;
	p->tsum2 += ms * ms;
	p->received++;
}

/* One message from the socket: an echo reply to one of ours is printed. */
static void receive_one(struct ping *p)
{
	uint8_t buf[2048], ctl[256];
	struct iovec v = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(p->fd, &m, MSG_DONTWAIT);
	uint16_t seq;
	double ms;

	if (n < 8 || buf[0] != (p->family == AF_INET ? 0 : 129))
		return;
	seq = (uint16_t)((buf[6] << 8) | buf[7]);
	if (!p->sent_us[seq] || p->seen[seq])
		return;
	p->seen[seq] = true;
	ms = (double)(now_us() - p->sent_us[seq]) / 1000.0;
	account(p, ms);
	printf("%zd bytes from %s: icmp_seq=%u ttl=%d", n, p->shown, seq, ttl_of(&m));
	print_time(ms);
	fflush(stdout);
}

/* Receives until the deadline (microseconds, monotonic), or until every request has
 * its reply when stop_when_all. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void receive_until(struct ping *p, int64_t deadline, bool stop_when_all)
{
	struct pollfd pf = { .fd = p->fd, .events = POLLIN };

	for (;;) {
		int64_t left = deadline - now_us();

		if (left <= 0 || interrupted || (stop_when_all && p->received == p->sent))
			return;
		if (poll(&pf, 1, (int)((left + 999) / 1000)) > 0)
			receive_one(p);
	}
}

static long linger_ms(const struct ping *p)
{
	if (p->wait_ms >= 0)
		return p->wait_ms;
	return p->received ? 2 * (long)p->tmax + 1 : MAXWAIT_MS;
}

/* Newton's square root: the wrapper links nothing but libc (not libm). */
static double root(double v)
{
	double r = v > 1 ? v : 1;

	if (v <= 0)
		return 0;
	for (int i = 0; i < 64; i++)
		r = (r + v / r) / 2;
	return r;
}

static void summary(const struct ping *p, int64_t end_us)
{
	double avg = p->received ? p->tsum / (double)p->received : 0, var;

	printf("\n--- %s ping statistics ---\n", p->host);
	printf("%ld packets transmitted, %ld received, %ld%% packet loss, time %ldms\n", p->sent,
	       p->received, p->sent ? (p->sent - p->received) * 100 / p->sent : 0,
	       (long)((end_us - p->start_us) / 1000));
	if (!p->received)
		return;
	var = p->tsum2 / (double)p->received - avg * avg;
	printf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", p->tmin, avg, p->tmax,
	       root(var));
}

static int run(struct ping *p)
{
	if (p->family == AF_INET)
		printf("PING %s (%s) %d(%d) bytes of data.\n", p->host, p->shown, DATA_LEN,
		       DATA_LEN + 28);
	else
		printf("PING %s(%s) %d data bytes\n", p->host, p->shown, DATA_LEN);
	fflush(stdout);
	p->start_us = now_us();
	/* As ping: SIGINT ends it with the statistics. */
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_interrupt }, NULL);
	while (!interrupted && (!p->count || p->sent < p->count)) {
		if (send_echo(p) < 0)
			return 2;
		if (!p->count || p->sent < p->count)
			receive_until(p, p->start_us + (int64_t)p->sent * 1000000, false);
	}
	receive_until(p, now_us() + (int64_t)linger_ms(p) * 1000, true);
	summary(p, now_us());
	return p->received ? 0 : 1;
}

static const char usage[] =
	"usage: tunshim ping [--config FILE] [-c COUNT] [-W TIMEOUT] [-4|-6] ADDRESS\n";

static int parse(int argc, char **argv, struct ping *p, int *family)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:W:46h", longopts, NULL)) != -1) {
		switch (c) {
		case 'C': break; /* the wrapper's: the config is in TUNSHIM_CONFIG now */
		case 'c':
			p->count = strtol(optarg, &end, 10);
			if (*end || p->count < 1)
				return fail("invalid count '%s'", optarg, 0);
			break;
		case 'W':
			p->wait_ms = (long)(strtod(optarg, &end) * 1000);
			if (*end || p->wait_ms < 0)
				return fail("invalid timeout '%s'", optarg, 0);
			break;
		case '4': *family = AF_INET; break;
		case '6': *family = AF_INET6; break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	p->host = argv[optind];
	return 0;
}

/* The socket() this process calls must be the library's, or the request would be
 * the kernel's to route: fail rather than leak. */
static bool library_active(const char *lib)
{
	Dl_info info;
	char a[PATH_MAX], b[PATH_MAX];
	void *f = dlsym(RTLD_DEFAULT, "socket");

	return f && dladdr(f, &info) && info.dli_fname && realpath(info.dli_fname, a) &&
	       realpath(lib, b) && strcmp(a, b) == 0;
}

int tunshim_ping_preloaded(int argc, char **argv, const char *lib)
{
	static struct ping p;
	int family = AF_UNSPEC, rc;

	if (!library_active(lib))
		return fail("%s is not preloaded; refusing to ping without the tunnel", lib, 0);
	p.wait_ms = -1;
	p.fd = -1;
	if ((rc = parse(argc, argv, &p, &family)) || (rc = resolve(&p, family)) ||
	    (rc = open_socket(&p)))
		return rc;
	rc = run(&p);
	close(p.fd);
	return rc;
}
