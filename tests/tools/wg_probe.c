/* SPDX-License-Identifier: MIT */
/* wg_probe: proves the crypto core interoperates with a real WireGuard peer.
 *
 *   wg_probe PRIVKEY_B64 PEER_PUBKEY_B64 HOST PORT SRC_IPV4 DST_IPV4 [PSK_B64]
 *
 * Handshakes as initiator over a plain UDP socket (answering a cookie reply if
 * the peer is under load), sends the key-confirming keepalive, then one ICMP
 * echo request from SRC_IPV4 to DST_IPV4 through the tunnel and waits for the
 * reply. Prints "handshake ok" and "ping ok" and exits 0; exits 1 with a
 * message on any failure or after 5 s without an answer in either phase. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cookie.h"
#include "noise.h"

#define PHASE_TIMEOUT_NS (5 * 1000000000ULL)
#define RETRY_NS 1000000000ULL
#define ECHO_ID 0x7770
#define ECHO_SEQ 1
#define ECHO_PAYLOAD "tunshim wg_probe echo"
#define MAX_PACKET 2048

struct probe {
	int fd;
	struct noise_static_identity id;
	struct noise_handshake hs;
	struct noise_keypair kp;
	struct cookie_maker maker;
	struct cookie_checker checker;
	struct in_addr src, dst;
	uint32_t local_index;
	uint64_t last_initiation;
};

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("wg_probe: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void parse_key(uint8_t out[32], const char *b64, const char *what)
{
	size_t len = 0;

	if (sodium_base642bin(out, 32, b64, strlen(b64), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || len != 32)
		die("%s is not a base64 32-byte key: '%s'", what, b64);
}

static void parse_ipv4(struct in_addr *out, const char *s)
{
	if (inet_pton(AF_INET, s, out) != 1)
		die("not an IPv4 address: '%s'", s);
}

static int open_socket(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res, *ai;
	int fd = -1, err;

	err = getaddrinfo(host, port, &hints, &res);
	if (err)
		die("cannot resolve %s port %s: %s", host, port, gai_strerror(err));
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		die("cannot open a UDP socket to %s port %s: %s", host, port, strerror(errno));
	return fd;
}

static void send_packet(struct probe *p, const void *buf, size_t len)
{
	if (send(p->fd, buf, len, 0) != (ssize_t)len)
		die("send: %s", strerror(errno));
}

/* One datagram, or 0 once the deadline has passed. */
static ssize_t recv_before(struct probe *p, uint8_t *buf, size_t cap, uint64_t deadline)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	uint64_t now = now_ns();
	ssize_t n;

	if (now >= deadline)
		return 0;
	if (poll(&pfd, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
		return 0;
	n = recv(p->fd, buf, cap, 0);
	if (n < 0)
		die("recv: %s (is the peer listening?)", strerror(errno));
	return n;
}

static void send_initiation(struct probe *p)
{
	struct msg_initiation msg;
	uint8_t ts[NOISE_TIMESTAMP_LEN];
	int ret;

	noise_tai64n_now(ts);
	ret = noise_create_initiation(&p->hs, &p->id, p->local_index, ts, &msg);
	if (ret)
		die("cannot create the initiation: %s", strerror(-ret));
	p->last_initiation = now_ns();
	cookie_add_macs(&p->maker, (uint8_t *)&msg, sizeof(msg), p->last_initiation);
	send_packet(p, &msg, sizeof(msg));
}

static uint32_t message_type(const uint8_t *buf)
{
	uint32_t type;

	memcpy(&type, buf, sizeof(type));
	return le32toh(type);
}

/* A cookie reply makes us resend at once, now with mac2. */
static void handle_cookie_reply(struct probe *p, const uint8_t *buf, size_t len)
{
	if (len != MESSAGE_COOKIE_REPLY_LEN)
		return;
	if (cookie_consume_reply(&p->maker, (const struct msg_cookie_reply *)buf, now_ns()))
		return;
	fprintf(stderr, "wg_probe: peer is under load, resending with a cookie\n");
	send_initiation(p);
}

/* 1 when the response completed the handshake. */
static int handle_response(struct probe *p, const uint8_t *buf, size_t len)
{
	const struct msg_response *msg = (const struct msg_response *)buf;
	int ret;

	if (len != MESSAGE_RESPONSE_LEN)
		return 0;
	if (cookie_validate(&p->checker, buf, len, NULL, 0, false, now_ns()) == COOKIE_INVALID_MAC)
		die("the response's mac1 is wrong");
	ret = noise_consume_response(&p->hs, &p->id, msg);
	if (ret)
		die("the response does not authenticate: %s (wrong keys or preshared key?)",
		    strerror(-ret));
	ret = noise_derive_keypair(&p->hs, &p->kp, now_ns());
	if (ret)
		die("cannot derive keys: %s", strerror(-ret));
	return 1;
}

/* Resends a fresh initiation every second until a response or the deadline. */
static void do_handshake(struct probe *p)
{
	uint64_t deadline = now_ns() + PHASE_TIMEOUT_NS, retry;
	uint8_t buf[MAX_PACKET];
	ssize_t n;

	send_initiation(p);
	for (;;) {
		retry = p->last_initiation + RETRY_NS;
		n = recv_before(p, buf, sizeof(buf), retry < deadline ? retry : deadline);
		if (n == 0 && now_ns() >= deadline)
			die("no handshake response within 5 s");
		if (n == 0)
			send_initiation(p);
		if (n < 4)
			continue;
		if (message_type(buf) == MESSAGE_COOKIE_REPLY)
			handle_cookie_reply(p, buf, (size_t)n);
		else if (message_type(buf) == MESSAGE_RESPONSE && handle_response(p, buf, (size_t)n))
			return;
	}
}

static void seal_and_send(struct probe *p, const uint8_t *plain, size_t len)
{
	uint8_t out[MAX_PACKET];
	ssize_t n = noise_seal_data(&p->kp, out, plain, len);

	if (n < 0)
		die("cannot seal: %s", strerror((int)-n));
	send_packet(p, out, (size_t)n);
}

static uint16_t inet_checksum(const uint8_t *data, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(data[i] << 8 | data[i + 1]);
	if (len & 1)
		sum += (uint32_t)(data[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* IPv4 header (20) + ICMP echo (8) + payload, zero-padded to a multiple of 16. */
static size_t build_echo(const struct probe *p, uint8_t *pkt)
{
	size_t icmp_len = 8 + sizeof(ECHO_PAYLOAD), total = 20 + icmp_len;
	uint16_t v;

	memset(pkt, 0, (total + 15) & ~(size_t)15);
	pkt[0] = 0x45;
	v = htons((uint16_t)total);
	memcpy(pkt + 2, &v, 2);
	pkt[8] = 64;	/* TTL */
	pkt[9] = 1;	/* ICMP */
	memcpy(pkt + 12, &p->src, 4);
	memcpy(pkt + 16, &p->dst, 4);
	v = inet_checksum(pkt, 20);
	memcpy(pkt + 10, &v, 2);

	pkt[20] = 8;	/* echo request */
	v = htons(ECHO_ID);
	memcpy(pkt + 24, &v, 2);
	v = htons(ECHO_SEQ);
	memcpy(pkt + 26, &v, 2);
	memcpy(pkt + 28, ECHO_PAYLOAD, sizeof(ECHO_PAYLOAD));
	v = inet_checksum(pkt + 20, icmp_len);
	memcpy(pkt + 22, &v, 2);
	return (total + 15) & ~(size_t)15;
}

static int is_echo_reply(const struct probe *p, const uint8_t *pkt, size_t len)
{
	size_t ihl, total;

	if (len < 20 || pkt[0] >> 4 != 4 || pkt[9] != 1)
		return 0;
	ihl = (size_t)(pkt[0] & 0xf) * 4;
	total = (size_t)(pkt[2] << 8 | pkt[3]);
	if (total > len || ihl + 8 > total)
		return 0;
	if (memcmp(pkt + 12, &p->dst, 4) || memcmp(pkt + 16, &p->src, 4))
		return 0;
	pkt += ihl;
	return pkt[0] == 0 && (pkt[4] << 8 | pkt[5]) == ECHO_ID && (pkt[6] << 8 | pkt[7]) == ECHO_SEQ;
}

static void do_ping(struct probe *p)
{
	uint64_t deadline = now_ns() + PHASE_TIMEOUT_NS;
	uint8_t buf[MAX_PACKET], plain[MAX_PACKET];
	ssize_t n, len;

	seal_and_send(p, plain, build_echo(p, plain));
	for (;;) {
		n = recv_before(p, buf, sizeof(buf), deadline);
		if (n == 0)
			die("no echo reply from %s within 5 s", inet_ntoa(p->dst));
		if (n < 4 || message_type(buf) != MESSAGE_DATA)
			continue;
		len = noise_open_data(&p->kp, plain, buf, (size_t)n);
		if (len < 0)
			fprintf(stderr, "wg_probe: dropped a data packet: %s\n", strerror((int)-len));
		else if (len > 0 && is_echo_reply(p, plain, (size_t)len))
			return;
	}
}

static void probe_init(struct probe *p, char **argv)
{
	uint8_t priv[32], peer[32], psk[32];
	int ret;

	memset(p, 0, sizeof(*p));
	parse_key(priv, argv[1], "PRIVKEY");
	parse_key(peer, argv[2], "PEER_PUBKEY");
	if (argv[7])
		parse_key(psk, argv[7], "PSK");
	parse_ipv4(&p->src, argv[5]);
	parse_ipv4(&p->dst, argv[6]);
	if (noise_identity_init(&p->id, priv))
		die("bad private key");
	ret = noise_handshake_init(&p->hs, &p->id, peer, argv[7] ? psk : NULL);
	if (ret)
		die("bad peer public key: %s", strerror(-ret));
	cookie_maker_init(&p->maker, peer);
	cookie_checker_init(&p->checker, p->id.public_key);
	randombytes_buf(&p->local_index, sizeof(p->local_index));
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(psk, sizeof(psk));
	p->fd = open_socket(argv[3], argv[4]);
}

int main(int argc, char **argv)
{
	struct probe p;

	if (argc != 7 && argc != 8) {
		fprintf(stderr, "usage: wg_probe PRIVKEY_B64 PEER_PUBKEY_B64 HOST PORT "
			"SRC_IPV4 DST_IPV4 [PSK_B64]\n");
		return 2;
	}
	if (sodium_init() < 0)
		die("libsodium does not initialize");
	probe_init(&p, argv);

	do_handshake(&p);
	printf("handshake ok\n");
	fflush(stdout);
	seal_and_send(&p, NULL, 0);	/* the keepalive that confirms the new keys */
	do_ping(&p);
	printf("ping ok\n");

	noise_keypair_clear(&p.kp);
	sodium_memzero(&p, sizeof(p));
	return 0;
}
