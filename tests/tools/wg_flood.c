/* SPDX-License-Identifier: MIT */
/*
 * wg_flood: puts a WireGuard responder "under load" so that it answers with cookie replies.
 *
 *   wg_flood [--mode mac1|garbage|mac2] [--pulse MS] [--pps N|auto] SERVER_PUBKEY_B64 HOST
 *            PORT SECONDS [BIND_ADDR]
 *
 * Sends handshake initiations to HOST:PORT for SECONDS, from BIND_ADDR if given (another
 * loopback source than the program under test, so the responder's per-source rate limiter
 * leaves that one alone). Each initiation is random bytes except the type and a valid mac1,
 * so it passes the responder's cheap check and lands in its handshake queue, where it costs
 * a Diffie-Hellman before failing. wireguard-go counts itself under load while that queue
 * holds QueueHandshakeSize / 8 = 128 entries, and for UnderLoadAfterTime (1 s) after; then
 * it answers every initiation without a valid mac2 with a cookie reply instead.
 *
 * The rate: "auto" (the default) sends as fast as keeps the responder under load without
 * overflowing its handshake queue, which would drop the real client's initiations along
 * with ours (measured on 2 cores: flat out, 3 in 4 initiations are dropped; auto settles
 * near 90k/s with over 90% answered). N is a fixed rate, 0 is flat out.
 *
 * Modes: mac1 (the default) as above. garbage: random initiations with a wrong mac1,
 * which a responder drops after one hash. mac2: as mac1 until a cookie reply arrives,
 * then every initiation also carries a valid mac2 made with that cookie, as a host
 * that can receive at its address would: under load these pass the cookie check and
 * cost the responder a Diffie-Hellman each, unless it rate-limits them per source.
 *
 * Counts the cookie replies (type 3, 64 bytes) it receives. Prints
 * "wg_flood: first cookie reply after N ms" when the first arrives, "wg_flood: steady under
 * load after N ms" once 90% of its initiations have been answered for 300 ms, and at the
 * end (SECONDS passed, or SIGINT/SIGTERM) "wg_flood: sent=N cookie_replies=N elapsed_ms=N
 * mac2_sent=N start_ms=N", elapsed_ms being the flood's duration before its last replies
 * drain and start_ms its start on CLOCK_MONOTONIC. --pulse MS floods MS, pauses MS, and
 * so on, printing "wg_flood: on FROM_MS TO_MS" (CLOCK_MONOTONIC) for each flood phase.
 * Refuses destinations outside loopback.
 */
#include <arpa/inet.h>
#include <blake2.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define INITIATION_LEN 148
#define MAC1_OFFSET 116 /* mac1 covers everything before it */
#define MAC2_OFFSET 132 /* and mac2 everything before itself */
#define RING 65536      /* mac1s sent, by sender index, to open the replies to them */
#define COOKIE_REPLY_LEN 64
#define BATCH 64
#define DRAIN_MS 300 /* replies still in flight when the flood stops */
#define AUTO_MIN_PPS 5000
#define AUTO_MAX_PPS 2000000
#define AUTO_START_PPS 20000
#define AUTO_WINDOW_MS 100
#define STEADY_WINDOWS 3 /* windows with 90% answered before we call it "under load" */

enum mode { MODE_MAC1, MODE_GARBAGE, MODE_MAC2 };

struct flood {
	int fd;
	enum mode mode;
	uint8_t mac1_key[32];
	uint8_t cookie_key[32];
	uint8_t cookie[16];
	int have_cookie;
	uint32_t next_index;
	uint8_t (*mac1s)[16];
	uint64_t mac2_sent;
	uint8_t seed[randombytes_SEEDBYTES];
	uint8_t pkts[BATCH][INITIATION_LEN];
	uint64_t sent, cookies;
	int64_t start_ms, elapsed_ms;
	int64_t pulse_ms, pulse_from;
	int pulse_on;
	int reported_first;
	long pps; /* 0: unlimited */
	int auto_rate;
	double credit;
	int64_t credit_us;
	uint64_t win_sent, win_cookies;
	int steady_windows;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
	return now_us() / 1000;
}

/* HASH(label || responder's static public key), as the responder computes its mac1
 * key ("mac1----") and its cookie encryption key ("cookie--"). */
static int label_key_init(uint8_t key[32], const char *label, const char *pub_b64)
{
	uint8_t buf[8 + 32];
	size_t len;

	memcpy(buf, label, 8);
	if (sodium_base642bin(buf + 8, 32, pub_b64, strlen(pub_b64), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) || len != 32)
		return -1;
	return blake2s(key, buf, NULL, 32, sizeof(buf), 0);
}

static int addr_parse(struct sockaddr_storage *ss, socklen_t *sl, const char *host, int port)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*sl = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*sl = sizeof(*in6);
		return 0;
	}
	return -1;
}

/* A flood tool must not leave the machine: loopback destinations only. */
static int is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

static int sock_open(const char *host, int port, const char *bind_addr)
{
	struct sockaddr_storage dst, src;
	socklen_t dl, sl;
	int fd;

	if (addr_parse(&dst, &dl, host, port) || !is_loopback(&dst)) {
		fprintf(stderr, "wg_flood: %s: not a loopback address literal\n", host);
		return -1;
	}
	fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (bind_addr && (addr_parse(&src, &sl, bind_addr, 0) || src.ss_family != dst.ss_family)) {
		fprintf(stderr, "wg_flood: %s: not an address of %s's family\n", bind_addr, host);
		close(fd);
		return -1;
	}
	if (bind_addr && bind(fd, (struct sockaddr *)&src, sl)) {
		fprintf(stderr, "wg_flood: cannot bind %s: %s\n", bind_addr, strerror(errno));
		close(fd);
		return -1;
	}
	/* Connected: only the responder's datagrams reach us. */
	if (connect(fd, (struct sockaddr *)&dst, dl)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Fresh random initiations: one keystream call per batch, no syscall per packet. */
static void batch_fill(struct flood *f)
{
	int i;

	randombytes_buf_deterministic(f->pkts, sizeof(f->pkts), f->seed);
	sodium_increment(f->seed, sizeof(f->seed));
	for (i = 0; i < BATCH; i++) {
		uint8_t *p = f->pkts[i];
		uint32_t idx = htole32(f->next_index);

		p[0] = 1; /* LE u32 type 1, reserved bytes zero */
		p[1] = p[2] = p[3] = 0;
		if (f->mode == MODE_GARBAGE)
			continue;
		/* The sender index names the mac1 a cookie reply is bound to. */
		memcpy(p + 4, &idx, 4);
		blake2s(p + MAC1_OFFSET, p, f->mac1_key, 16, MAC1_OFFSET, 32);
		memcpy(f->mac1s[f->next_index++ % RING], p + MAC1_OFFSET, 16);
		if (f->have_cookie)
			blake2s(p + MAC2_OFFSET, p, f->cookie, 16, MAC2_OFFSET, 16);
	}
}

/* A reply's cookie, sealed with the mac1 it answers as associated data (whitepaper
 * 5.4.7): with it, later initiations carry a valid mac2. */
static void take_cookie(struct flood *f, const uint8_t *buf)
{
	uint32_t idx;

	memcpy(&idx, buf + 4, 4);
	idx = le32toh(idx);
	if (f->next_index - idx > RING)
		return;
	if (!crypto_aead_xchacha20poly1305_ietf_decrypt(f->cookie, NULL, NULL, buf + 32, 32,
							 f->mac1s[idx % RING], 16, buf + 8,
							 f->cookie_key))
		f->have_cookie = 1;
}

static void note_reply(struct flood *f, const uint8_t *buf, ssize_t n)
{
	if (n != COOKIE_REPLY_LEN || buf[0] != 3 || buf[1] || buf[2] || buf[3])
		return;
	f->cookies++;
	if (f->mode == MODE_MAC2)
		take_cookie(f, buf);
	if (!f->reported_first) {
		f->reported_first = 1;
		printf("wg_flood: first cookie reply after %lld ms\n",
		       (long long)(now_ms() - f->start_ms));
		fflush(stdout);
	}
}

static void drain(struct flood *f)
{
	uint8_t bufs[BATCH][128];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	int i, n;

	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	/* ICMP errors (nobody listening yet) surface here as ECONNREFUSED: keep going. */
	while ((n = recvmmsg(f->fd, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0 || errno == ECONNREFUSED)
		for (i = 0; i < n; i++)
			note_reply(f, bufs[i], msgs[i].msg_len);
}

static void batch_send(struct flood *f, int count)
{
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct pollfd pfd = { .fd = f->fd, .events = POLLOUT };
	int i, n;

	for (i = 0; i < count; i++) {
		iov[i].iov_base = f->pkts[i];
		iov[i].iov_len = INITIATION_LEN;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	n = sendmmsg(f->fd, msgs, count, 0);
	if (n > 0)
		f->sent += n;
	if (n > 0 && f->have_cookie)
		f->mac2_sent += n;
	else if (errno == EAGAIN || errno == ENOBUFS)
		poll(&pfd, 1, 1);
}

/* Token bucket: takes as many initiations as the rate allows now (0: waits a little). */
static int batch_budget(struct flood *f)
{
	int64_t now = now_us();
	int count;

	if (f->pps <= 0)
		return BATCH;
	f->credit += (double)(now - f->credit_us) * f->pps / 1e6;
	f->credit_us = now;
	if (f->credit > 2 * BATCH)
		f->credit = 2 * BATCH;
	/* About a millisecond's worth per wakeup: at a fixed rate of thousands a second the
	 * flood must not cost more CPU in syscalls than the responder spends on it, on a
	 * machine whose cores the tests share. */
	if (f->credit < (f->pps / 1000 < 1 ? 1 : f->pps / 1000 < BATCH ? f->pps / 1000 : BATCH)) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		return 0;
	}
	count = f->credit < BATCH ? (int)f->credit : BATCH;
	f->credit -= count;
	return count;
}

/* Says once when the responder has answered 90% for a few windows in a row. */
static void steady_check(struct flood *f, uint64_t sent, uint64_t got)
{
	if (f->steady_windows >= STEADY_WINDOWS)
		return;
	f->steady_windows = sent && got * 10 >= sent * 9 ? f->steady_windows + 1 : 0;
	if (f->steady_windows == STEADY_WINDOWS) {
		printf("wg_flood: steady under load after %lld ms\n",
		       (long long)(now_ms() - f->start_ms));
		fflush(stdout);
	}
}

/*
 * Automatic rate: faster while no cookie replies come back (the responder keeps up with
 * its Diffie-Hellman work, so it is not under load), slower while many initiations go
 * unanswered (its handshake queue overflows and would drop the real client's too).
 */
static void rate_adjust(struct flood *f, uint64_t sent, uint64_t got)
{
	if (!got)
		f->pps = f->pps * 3 / 2;
	else if (got * 10 < sent * 9)
		f->pps = f->pps * 9 / 10;
	else if (got * 100 > sent * 97)
		f->pps = f->pps * 21 / 20;
	if (f->pps < AUTO_MIN_PPS)
		f->pps = AUTO_MIN_PPS;
	if (f->pps > AUTO_MAX_PPS)
		f->pps = AUTO_MAX_PPS;
}

static void window_end(struct flood *f)
{
	uint64_t sent = f->sent - f->win_sent, got = f->cookies - f->win_cookies;

	steady_check(f, sent, got);
	if (f->auto_rate)
		rate_adjust(f, sent, got);
	f->win_sent = f->sent;
	f->win_cookies = f->cookies;
}

/* --pulse MS: MS on, MS off, from the start; says when each on phase began and ended
 * (CLOCK_MONOTONIC ms), so a test can compare what happens with and without. */
static int pulse_off(struct flood *f)
{
	int64_t now = now_ms();
	int on;

	if (!f->pulse_ms)
		return 0;
	on = (now - f->start_ms) / f->pulse_ms % 2 == 0;
	if (on && !f->pulse_on)
		f->pulse_from = now;
	else if (!on && f->pulse_on)
		printf("wg_flood: on %lld %lld\n", (long long)f->pulse_from, (long long)now);
	f->pulse_on = on;
	if (!on) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		f->credit_us = now_us();
	}
	return !on;
}

static void flood_run(struct flood *f, int seconds)
{
	int64_t end, next_adjust;
	int count;

	f->start_ms = now_ms();
	f->credit_us = now_us();
	next_adjust = f->start_ms + AUTO_WINDOW_MS;
	end = f->start_ms + (int64_t)seconds * 1000;
	while (!stop && now_ms() < end) {
		if (pulse_off(f)) {
			drain(f);
			continue;
		}
		count = batch_budget(f);
		if (count) {
			batch_fill(f);
			batch_send(f, count);
		}
		drain(f);
		if (now_ms() >= next_adjust) {
			window_end(f);
			next_adjust += AUTO_WINDOW_MS;
		}
	}
	f->elapsed_ms = now_ms() - f->start_ms;
	if (f->pulse_on)
		printf("wg_flood: on %lld %lld\n", (long long)f->pulse_from, (long long)now_ms());
	end = now_ms() + DRAIN_MS;
	while (now_ms() < end) {
		struct pollfd pfd = { .fd = f->fd, .events = POLLIN };

		poll(&pfd, 1, DRAIN_MS);
		drain(f);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: wg_flood [--mode mac1|garbage|mac2] [--pulse MS] [--pps N|auto] "
			"SERVER_PUBKEY_B64 HOST PORT SECONDS [BIND_ADDR]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct flood f;
	int port, seconds;

	f.auto_rate = 1;
	f.pps = AUTO_START_PPS;
	if (argc > 2 && !strcmp(argv[1], "--mode")) {
		if (!strcmp(argv[2], "garbage"))
			f.mode = MODE_GARBAGE;
		else if (!strcmp(argv[2], "mac2"))
			f.mode = MODE_MAC2;
		else if (strcmp(argv[2], "mac1"))
			return usage();
		argv += 2;
		argc -= 2;
	}
	if (argc > 2 && !strcmp(argv[1], "--pulse")) {
		f.pulse_ms = atol(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc > 2 && !strcmp(argv[1], "--pps")) {
		f.auto_rate = !strcmp(argv[2], "auto");
		f.pps = f.auto_rate ? AUTO_START_PPS : atol(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc < 5 || argc > 6)
		return usage();
	port = atoi(argv[3]);
	seconds = atoi(argv[4]);
	if (port <= 0 || port > 65535 || seconds <= 0 || f.pps < 0)
		return usage();
	f.mac1s = calloc(RING, sizeof(*f.mac1s));
	if (!f.mac1s)
		return 1;
	if (sodium_init() < 0 || label_key_init(f.mac1_key, "mac1----", argv[1]) ||
	    label_key_init(f.cookie_key, "cookie--", argv[1])) {
		fprintf(stderr, "wg_flood: %s: not a base64 public key\n", argv[1]);
		return 2;
	}
	f.fd = sock_open(argv[2], port, argc == 6 ? argv[5] : NULL);
	if (f.fd < 0)
		return 1;
	randombytes_buf(f.seed, sizeof(f.seed));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	flood_run(&f, seconds);
	printf("wg_flood: sent=%llu cookie_replies=%llu elapsed_ms=%lld mac2_sent=%llu "
	       "start_ms=%lld\n", (unsigned long long)f.sent, (unsigned long long)f.cookies,
	       (long long)f.elapsed_ms, (unsigned long long)f.mac2_sent, (long long)f.start_ms);
	if (f.auto_rate)
		fprintf(stderr, "wg_flood: final rate %ld/s\n", f.pps);
	close(f.fd);
	return 0;
}
