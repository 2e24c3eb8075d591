/* SPDX-License-Identifier: MIT */
/*
 * ts_relay: a UDP impairment relay for the interop tests (the kernels here have no netem).
 *
 *   ts_relay [OPTIONS] LISTEN_ADDR:PORT UPSTREAM_ADDR:PORT
 *
 * Datagrams that a client sends to LISTEN leave for UPSTREAM from the relay's own socket
 * ("up"); upstream's datagrams go back to the client ("down"). The client is whoever sent
 * to LISTEN last. See usage() for the options; each impairment is set per direction.
 *
 * Every datagram that is impaired in any way is copied into a queue with the time it is due
 * to leave; one ppoll loop sleeps until the next one is due. Departures of one direction
 * never go backwards (jitter varies the delay but keeps the order, as a real path does;
 * --reorder is the one source of reordering), so each direction's queue is a FIFO sorted
 * by due time: the min-heap of a general scheduler reduces to its head. A direction with no
 * impairment and nothing queued forwards each received batch at once with sendmmsg.
 *
 * Two signals move the relay's sockets mid-transfer, so the tests can watch both ends roam:
 * SIGUSR2 is a NAT rebinding on the client's side (upstream sees the client come from a new
 * source port), SIGHUP the server moving (the client sees upstream's datagrams come from a
 * new address and must follow them, as the old one goes dead).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
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

#define BATCH 64
#define MAX_DGRAM 65536
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_SEC 1000000000ULL
#define REORDER_HOLD_NS (10 * NSEC_PER_MSEC)
#define DEFAULT_LIMIT 20000
#define MAX_LIMIT 10000000
#define MAX_DELAY_MS 60000.0
#define SOCKBUF (8 << 20)

struct pkt {
	struct pkt *next;
	uint64_t due; /* CLOCK_MONOTONIC ns */
	size_t len;
	unsigned char data[];
};

struct impair {
	uint64_t delay_ns, jitter_ns;
	double loss, reorder, dup; /* probabilities, 0..1 */
	double rate_bps; /* 0: unlimited */
	unsigned long limit;
};

struct counters {
	unsigned long long rx, tx, dropped, dup, reordered, discarded;
};

struct dir {
	const char *name;
	struct impair im;
	struct counters n;
	uint64_t rng;
	int in_fd, out_fd;
	struct pkt *head, *tail;
	struct pkt *held; /* a --reorder victim, waiting for the next datagram */
	uint64_t held_until;
	unsigned long queued; /* the held one included */
	uint64_t last_due, link_free;
	bool blocked; /* out_fd said EAGAIN: wait for POLLOUT */
	/* Where out_fd sends: NULL for the connected upstream socket. */
	const struct sockaddr_storage *dest;
	const socklen_t *dest_len; /* 0: no client yet */
};

struct relay {
	int listen_fd, up_fd;
	struct sockaddr_storage listen, upstream, client;
	socklen_t listen_len, upstream_len, client_len;
	uint64_t seed;
	struct dir up, down;
};

struct rxbatch {
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage from[BATCH];
	unsigned char buf[BATCH][MAX_DGRAM];
};

static struct rxbatch rxb;
static volatile sig_atomic_t stop, dump, rebind, move;

static void usage(void)
{
	fputs("usage: ts_relay [OPTIONS] LISTEN_ADDR:PORT UPSTREAM_ADDR:PORT\n"
	      "Relays UDP between a client of LISTEN (the latest sender) and UPSTREAM, impairing\n"
	      "both directions: up (client to upstream) and down (upstream to client).\n"
	      "ADDR is a numeric a.b.c.d or [v6] on loopback (127.0.0.0/8, ::1); LISTEN port 0\n"
	      "picks a free port. Options (--NAME VALUE or --NAME=VALUE); --NAME sets both\n"
	      "directions, --up-NAME and --down-NAME one (--delay 50 adds 100 ms to the RTT):\n"
	      "  --delay MS       delay every datagram by MS milliseconds (fractions allowed)\n"
	      "  --jitter MS      vary the delay uniformly by -MS..+MS; keeps the order (so\n"
	      "                   a busy direction sees delays near the top of the range)\n"
	      "  --loss PCT       drop PCT percent of the datagrams\n"
	      "  --reorder PCT    hold PCT percent back behind the next datagram (at most\n"
	      "                   10 ms past their due time if none follows: not counted)\n"
	      "  --duplicate PCT  send PCT percent twice\n"
	      "  --rate MBIT      a link of MBIT Mbit/s: datagrams queue for it\n"
	      "  --limit N        queue at most N datagrams (default 20000), discard beyond\n"
	      "  --seed N         seed of the random choices (default: from the clock)\n"
	      "Prints 'ts_relay: listening on ADDR:PORT upstream ADDR:PORT seed N' when ready.\n"
	      "SIGINT/SIGTERM: print the counters and exit 0; SIGUSR1: print them and go on:\n"
	      "  ts_relay: up: rx=N tx=N dropped=N dup=N reordered=N discarded=N; down: ...\n"
	      "SIGUSR2: the client's NAT rebinds: datagrams to UPSTREAM leave from a new source\n"
	      "  port (the old socket is closed: upstream's replies to it are lost until it\n"
	      "  follows). Prints 'ts_relay: upstream from ADDR:PORT'.\n"
	      "SIGHUP: the server moves: datagrams to the client leave from a new port, which\n"
	      "  takes the client's datagrams from then on; the old LISTEN port is closed, so the\n"
	      "  client's datagrams to it are lost until it follows. Prints 'ts_relay: moved:\n"
	      "  listening on ADDR:PORT'.\n"
	      "dropped: lost on purpose; discarded: undeliverable (queue full, no client yet,\n"
	      "a send error).\n", stderr);
	exit(2);
}

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "ts_relay: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else if (sig == SIGUSR2)
		rebind = 1;
	else if (sig == SIGHUP)
		move = 1;
	else
		stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* splitmix64 spreads one seed over the directions' generators. */
static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* xorshift64*: plenty for choosing which datagrams to hurt. */
static double rnd_unit(struct dir *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (double)((d->rng * 0x2545f4914f6cdd1dULL) >> 11) * 0x1p-53;
}

static bool chance(struct dir *d, double p)
{
	return p > 0 && rnd_unit(d) < p;
}

/* ---- arguments ---- */

static bool parse_num(const char *s, double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return *s && !*end && !errno && isfinite(*out) && *out >= 0 && *out <= max;
}

static bool set_impair(struct impair *im, const char *name, const char *val)
{
	double v;

	if (!strcmp(name, "delay") && parse_num(val, MAX_DELAY_MS, &v))
		im->delay_ns = (uint64_t)(v * NSEC_PER_MSEC);
	else if (!strcmp(name, "jitter") && parse_num(val, MAX_DELAY_MS, &v))
		im->jitter_ns = (uint64_t)(v * NSEC_PER_MSEC);
	else if (!strcmp(name, "loss") && parse_num(val, 100, &v))
		im->loss = v / 100;
	else if (!strcmp(name, "reorder") && parse_num(val, 100, &v))
		im->reorder = v / 100;
	else if (!strcmp(name, "duplicate") && parse_num(val, 100, &v))
		im->dup = v / 100;
	else if (!strcmp(name, "rate") && parse_num(val, 1e6, &v) && v > 0)
		im->rate_bps = v * 1e6;
	else if (!strcmp(name, "limit") && parse_num(val, MAX_LIMIT, &v) && v >= 1 &&
		 v == (double)(unsigned long)v)
		im->limit = (unsigned long)v;
	else
		return false;
	return true;
}

static bool parse_seed(const char *val, uint64_t *seed)
{
	char *end;

	errno = 0;
	*seed = strtoull(val, &end, 0);
	return *val && *val != '-' && !*end && !errno;
}

/* --NAME VALUE: NAME may carry an up- or down- prefix. */
static bool parse_opt(struct relay *r, const char *name, const char *val)
{
	bool up = true, down = true;

	if (!strcmp(name, "seed"))
		return parse_seed(val, &r->seed);
	if (!strncmp(name, "up-", 3)) {
		name += 3;
		down = false;
	} else if (!strncmp(name, "down-", 5)) {
		name += 5;
		up = false;
	}
	return (!up || set_impair(&r->up.im, name, val)) &&
	       (!down || set_impair(&r->down.im, name, val));
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	const uint8_t *b = in6->sin6_addr.s6_addr;

	if (ss->ss_family == AF_INET)
		return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
	       (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 127);
}

/* a.b.c.d:PORT or [v6]:PORT, numeric, on loopback. */
static void parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN + 2], *end;
	size_t hlen = colon ? (size_t)(colon - s) : 0;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	errno = 0;
	port = colon ? strtoul(colon + 1, &end, 10) : 0;
	if (!colon || !colon[1] || *end || errno || port > 65535 || hlen >= sizeof(host))
		die("not ADDR:PORT", s);
	memcpy(host, s, hlen);
	host[hlen] = 0;
	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
			die("not an IPv6 address", s);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
	} else if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
	} else {
		die("not a.b.c.d:PORT or [v6]:PORT", s);
	}
	/* Test traffic stays on this machine. */
	if (!is_loopback(ss))
		die("refusing an address outside loopback", s);
}

static const char *fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(in4->sin_port));
	} else {
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	}
	return buf;
}

/* --NAME VALUE or --NAME=VALUE options, then the two addresses. */
static void parse_args(struct relay *r, int argc, char **argv)
{
	int i = 1;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		const char *opt = argv[i] + 2, *eq = strchr(opt, '='), *val;
		size_t nlen = eq ? (size_t)(eq - opt) : strlen(opt);
		char name[32];

		if (!strcmp(opt, "help") || nlen >= sizeof(name))
			usage();
		if (!eq && i + 1 >= argc)
			usage();
		val = eq ? eq + 1 : argv[++i];
		memcpy(name, opt, nlen);
		name[nlen] = 0;
		if (!parse_opt(r, name, val)) {
			fprintf(stderr, "ts_relay: bad option --%s '%s'\n", name, val);
			usage();
		}
	}
	if (argc - i != 2)
		usage();
	parse_addr(argv[i], &r->listen, &r->listen_len);
	parse_addr(argv[i + 1], &r->upstream, &r->upstream_len);
}

/* ---- the queue of one direction ---- */

static bool impaired(const struct impair *im)
{
	return im->delay_ns || im->jitter_ns || im->loss > 0 || im->reorder > 0 ||
	       im->dup > 0 || im->rate_bps > 0;
}

static void enqueue(struct dir *d, struct pkt *p, uint64_t due)
{
	p->due = due;
	p->next = NULL;
	if (d->tail)
		d->tail->next = p;
	else
		d->head = p;
	d->tail = p;
}

static void dequeue_free(struct dir *d, int n)
{
	while (n-- > 0 && d->head) {
		struct pkt *p = d->head;

		d->head = p->next;
		if (!d->head)
			d->tail = NULL;
		d->queued--;
		free(p);
	}
}

/* When a datagram arriving now leaves: behind the link (--rate), plus the delay with its
 * jitter, never before the one in front of it. */
static uint64_t next_due(struct dir *d, uint64_t now, size_t len)
{
	uint64_t base = now, due;

	if (d->im.rate_bps > 0) {
		if (d->link_free > base)
			base = d->link_free;
		base += (uint64_t)((double)len * 8 * NSEC_PER_SEC / d->im.rate_bps);
		d->link_free = base;
	}
	due = base + d->im.delay_ns;
	if (d->im.jitter_ns) {
		double j = (rnd_unit(d) * 2 - 1) * (double)d->im.jitter_ns;

		due = j < 0 && (uint64_t)-j > due - now ? now : (uint64_t)((double)due + j);
	}
	if (due < d->last_due)
		due = d->last_due;
	d->last_due = due;
	return due;
}

static void release_held(struct dir *d, uint64_t due)
{
	if (due < d->last_due)
		due = d->last_due;
	d->last_due = due;
	enqueue(d, d->held, due);
	d->held = NULL;
}

/* One copy of a datagram into the queue: held back for --reorder, or due at its time with
 * a held one following it. */
static void schedule(struct dir *d, const void *data, size_t len, uint64_t now)
{
	struct pkt *p;

	if (d->queued >= d->im.limit || !(p = malloc(sizeof(*p) + len))) {
		d->n.discarded++;
		return;
	}
	memcpy(p->data, data, len);
	p->len = len;
	d->queued++;
	if (!d->held && chance(d, d->im.reorder)) {
		d->held = p;
		d->held_until = now + d->im.delay_ns + d->im.jitter_ns + REORDER_HOLD_NS;
		return;
	}
	enqueue(d, p, next_due(d, now, len));
	if (d->held) {
		d->n.reordered++;
		release_held(d, p->due);
	}
}

static void admit(struct dir *d, const void *data, size_t len, uint64_t now)
{
	bool twice;

	if (chance(d, d->im.loss)) {
		d->n.dropped++;
		return;
	}
	twice = chance(d, d->im.dup);
	schedule(d, data, len, now);
	if (twice) {
		d->n.dup++;
		schedule(d, data, len, now);
	}
}

/* ---- sending and receiving ---- */

/* Sends up to n datagrams; returns how many left the queue (sent, or discarded after a
 * hard error), 0 when the socket is full (d->blocked) or a signal came. */
static int xmit(struct dir *d, struct iovec *iov, int n)
{
	struct mmsghdr msgs[BATCH];
	int i, sent;

	if (d->dest_len && !*d->dest_len) {
		d->n.discarded += n;
		return n;
	}
	memset(msgs, 0, sizeof(msgs[0]) * n);
	for (i = 0; i < n; i++) {
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = (void *)d->dest;
		msgs[i].msg_hdr.msg_namelen = d->dest ? *d->dest_len : 0;
	}
	sent = sendmmsg(d->out_fd, msgs, n, MSG_DONTWAIT);
	if (sent > 0) {
		d->n.tx += sent;
		return sent;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
		d->blocked = true;
		return 0;
	}
	if (errno == EINTR)
		return 0;
	/* ECONNREFUSED from an earlier ICMP error, or this datagram cannot be sent. */
	d->n.discarded++;
	return 1;
}

static void flush(struct dir *d, uint64_t now)
{
	struct iovec iov[BATCH];
	struct pkt *p;
	int n, k;

	if (d->held && now >= d->held_until)
		release_held(d, now);
	while (!d->blocked && d->head && d->head->due <= now) {
		n = 0;
		for (p = d->head; p && p->due <= now && n < BATCH; p = p->next) {
			iov[n].iov_base = p->data;
			iov[n++].iov_len = p->len;
		}
		k = xmit(d, iov, n);
		if (k == 0)
			break;
		dequeue_free(d, k);
	}
}

/* The unimpaired path: the received batch leaves as it came, what the socket refused is
 * queued to leave as soon as it can. */
static void forward_now(struct dir *d, int n, uint64_t now)
{
	int sent = 0, k;

	while (sent < n && !d->blocked) {
		k = xmit(d, &rxb.iov[sent], n - sent);
		if (k == 0)
			break;
		sent += k;
	}
	for (; sent < n; sent++)
		schedule(d, rxb.buf[sent], rxb.msgs[sent].msg_len, now);
}

static int receive(struct dir *d)
{
	int i, n;

	for (i = 0; i < BATCH; i++) {
		rxb.iov[i].iov_base = rxb.buf[i];
		rxb.iov[i].iov_len = MAX_DGRAM;
		memset(&rxb.msgs[i].msg_hdr, 0, sizeof(rxb.msgs[i].msg_hdr));
		rxb.msgs[i].msg_hdr.msg_iov = &rxb.iov[i];
		rxb.msgs[i].msg_hdr.msg_iovlen = 1;
		rxb.msgs[i].msg_hdr.msg_name = &rxb.from[i];
		rxb.msgs[i].msg_hdr.msg_namelen = sizeof(rxb.from[i]);
	}
	/* Errors (ECONNREFUSED queued by ICMP on the connected socket) are consumed here. */
	n = recvmmsg(d->in_fd, rxb.msgs, BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++)
		rxb.iov[i].iov_len = rxb.msgs[i].msg_len;
	d->n.rx += (unsigned long long)n;
	return n;
}

static void relay_receive(struct relay *r, struct dir *d)
{
	uint64_t now;
	int i, n = receive(d);

	if (n == 0)
		return;
	now = now_ns();
	if (d == &r->up) {
		/* The latest sender is the client. */
		memcpy(&r->client, &rxb.from[n - 1], sizeof(r->client));
		r->client_len = rxb.msgs[n - 1].msg_hdr.msg_namelen;
	}
	if (!impaired(&d->im) && !d->head && !d->held && !d->blocked) {
		forward_now(d, n, now);
		return;
	}
	for (i = 0; i < n; i++)
		admit(d, rxb.buf[i], rxb.msgs[i].msg_len, now);
}

/* ---- sockets ---- */

static int open_socket(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), size = SOCKBUF;

	if (fd < 0)
		die("socket", strerror(errno));
	/* Root may exceed the sysctl limits; otherwise take what there is. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return fd;
}

/* A socket bound to *ss (port 0: a free one), which then says the port chosen. */
static int bound_socket(struct sockaddr_storage *ss, socklen_t *len)
{
	char buf[INET6_ADDRSTRLEN + 8];
	int fd = open_socket(ss->ss_family);

	if (bind(fd, (struct sockaddr *)ss, *len) < 0)
		die("bind", fmt_addr(ss, buf, sizeof(buf)));
	*len = sizeof(*ss);
	getsockname(fd, (struct sockaddr *)ss, len);
	return fd;
}

/* Connected: only upstream's datagrams reach it, and it picks a loopback source. */
static int upstream_socket(const struct relay *r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	int fd = open_socket(r->upstream.ss_family);

	if (connect(fd, (const struct sockaddr *)&r->upstream, r->upstream_len) < 0)
		die("connect", fmt_addr(&r->upstream, buf, sizeof(buf)));
	return fd;
}

static void open_sockets(struct relay *r)
{
	r->listen_fd = bound_socket(&r->listen, &r->listen_len);
	r->up_fd = upstream_socket(r);
}

static void print_upstream_source(const struct relay *r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[INET6_ADDRSTRLEN + 8];

	memset(&ss, 0, sizeof(ss));
	getsockname(r->up_fd, (struct sockaddr *)&ss, &len);
	fprintf(stderr, "ts_relay: upstream from %s\n", fmt_addr(&ss, buf, sizeof(buf)));
}

/* SIGUSR2: a new source port towards upstream. What upstream sends to the old one is
 * lost, as behind a NAT that forgot the mapping. */
static void rebind_upstream(struct relay *r)
{
	int fd = upstream_socket(r);

	close(r->up_fd);
	r->up_fd = r->up.out_fd = r->down.in_fd = fd;
	r->up.blocked = false;
	print_upstream_source(r);
}

/* SIGHUP: the client's side of the relay moves to a new port on the same address. */
static void move_listen(struct relay *r)
{
	struct sockaddr_storage ss = r->listen;
	socklen_t len = r->listen_len;
	char buf[INET6_ADDRSTRLEN + 8];
	int fd;

	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	fd = bound_socket(&ss, &len);
	close(r->listen_fd);
	r->listen = ss;
	r->listen_len = len;
	r->listen_fd = r->up.in_fd = r->down.out_fd = fd;
	r->down.blocked = false;
	fprintf(stderr, "ts_relay: moved: listening on %s\n", fmt_addr(&ss, buf, sizeof(buf)));
}

/* ---- the loop ---- */

static void print_counters(const struct relay *r)
{
	const struct dir *ds[2] = { &r->up, &r->down };
	char line[512];
	size_t off = 0;

	off += (size_t)snprintf(line, sizeof(line), "ts_relay:");
	for (int i = 0; i < 2; i++) {
		const struct counters *c = &ds[i]->n;

		off += (size_t)snprintf(line + off, sizeof(line) - off,
			"%s %s: rx=%llu tx=%llu dropped=%llu dup=%llu reordered=%llu discarded=%llu",
			i ? ";" : "", ds[i]->name, c->rx, c->tx, c->dropped, c->dup, c->reordered,
			c->discarded);
	}
	fprintf(stderr, "%s\n", line);
}

static void print_impair(const struct dir *d)
{
	const struct impair *im = &d->im;

	fprintf(stderr, "ts_relay: %s: delay=%.3fms jitter=%.3fms loss=%g%% reorder=%g%% "
		"duplicate=%g%% rate=%gMbit limit=%lu\n", d->name,
		(double)im->delay_ns / NSEC_PER_MSEC, (double)im->jitter_ns / NSEC_PER_MSEC,
		im->loss * 100, im->reorder * 100, im->dup * 100, im->rate_bps / 1e6, im->limit);
}

static uint64_t dir_wakeup(const struct dir *d)
{
	uint64_t t = UINT64_MAX;

	if (d->head && !d->blocked)
		t = d->head->due;
	if (d->held && d->held_until < t)
		t = d->held_until;
	return t;
}

/* The ppoll timeout until the next due datagram, NULL for none. */
static struct timespec *wakeup(const struct relay *r, uint64_t now, struct timespec *ts)
{
	uint64_t t = dir_wakeup(&r->up), t2 = dir_wakeup(&r->down);

	if (t2 < t)
		t = t2;
	if (t == UINT64_MAX)
		return NULL;
	t = t > now ? t - now : 0;
	ts->tv_sec = (time_t)(t / NSEC_PER_SEC);
	ts->tv_nsec = (long)(t % NSEC_PER_SEC);
	return ts;
}

static void relay_run(struct relay *r, const sigset_t *unblocked)
{
	struct pollfd pfd[2];
	struct timespec ts;
	uint64_t now;

	while (!stop) {
		if (dump) {
			dump = 0;
			print_counters(r);
		}
		if (rebind) {
			rebind = 0;
			rebind_upstream(r);
		}
		if (move) {
			move = 0;
			move_listen(r);
		}
		now = now_ns();
		flush(&r->up, now);
		flush(&r->down, now);
		pfd[0] = (struct pollfd){ r->listen_fd, POLLIN | (r->down.blocked ? POLLOUT : 0), 0 };
		pfd[1] = (struct pollfd){ r->up_fd, POLLIN | (r->up.blocked ? POLLOUT : 0), 0 };
		if (ppoll(pfd, 2, wakeup(r, now, &ts), unblocked) < 0) {
			if (errno == EINTR)
				continue;
			die("ppoll", strerror(errno));
		}
		if (pfd[0].revents & POLLOUT)
			r->down.blocked = false;
		if (pfd[1].revents & POLLOUT)
			r->up.blocked = false;
		if (pfd[0].revents & (POLLIN | POLLERR))
			relay_receive(r, &r->up);
		if (pfd[1].revents & (POLLIN | POLLERR))
			relay_receive(r, &r->down);
	}
}

/* ---- setup ---- */

static void dir_init(struct dir *d, const char *name, uint64_t seed)
{
	d->name = name;
	d->rng = splitmix64(seed) | 1; /* xorshift must not start at 0 */
	if (!d->im.limit)
		d->im.limit = DEFAULT_LIMIT;
}

static void relay_init(struct relay *r, int argc, char **argv)
{
	memset(r, 0, sizeof(*r));
	r->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ now_ns();
	parse_args(r, argc, argv);
	dir_init(&r->up, "up", r->seed);
	dir_init(&r->down, "down", splitmix64(r->seed));
	open_sockets(r);
	r->up.in_fd = r->listen_fd;
	r->up.out_fd = r->up_fd;
	r->down.in_fd = r->up_fd;
	r->down.out_fd = r->listen_fd;
	r->down.dest = &r->client;
	r->down.dest_len = &r->client_len;
}

static void free_queue(struct dir *d)
{
	if (d->held)
		release_held(d, 0);
	dequeue_free(d, INT32_MAX);
}

static void signals_init(sigset_t *unblocked)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGHUP);
	/* Delivered only inside ppoll, so a signal never races the loop's check. */
	sigprocmask(SIG_BLOCK, &block, unblocked);
	sigdelset(unblocked, SIGINT);
	sigdelset(unblocked, SIGTERM);
	sigdelset(unblocked, SIGUSR1);
	sigdelset(unblocked, SIGUSR2);
	sigdelset(unblocked, SIGHUP);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int main(int argc, char **argv)
{
	static struct relay r;
	char a[INET6_ADDRSTRLEN + 8], b[INET6_ADDRSTRLEN + 8];
	sigset_t unblocked;

	signals_init(&unblocked);
	relay_init(&r, argc, argv);
	print_impair(&r.up);
	print_impair(&r.down);
	fprintf(stderr, "ts_relay: listening on %s upstream %s seed %" PRIu64 "\n",
		fmt_addr(&r.listen, a, sizeof(a)), fmt_addr(&r.upstream, b, sizeof(b)), r.seed);
	print_upstream_source(&r);
	relay_run(&r, &unblocked);
	print_counters(&r);
	free_queue(&r.up);
	free_queue(&r.down);
	close(r.listen_fd);
	close(r.up_fd);
	return 0;
}
