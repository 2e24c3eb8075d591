/* SPDX-License-Identifier: MIT */
/* The WireGuard device end to end: two in-process devices, A (initiator, knows
 * B's endpoint) and B (responder, learns A's), whose datagrams go through a
 * queue the test pumps, so it can drop, hold, duplicate or reorder them. The
 * monotonic clock and TAI64N are fake and move only when the test says; no test
 * sleeps. White-box checks look at the peers through peer.h. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "device.h"
#include "index_table.h"
#include "peer.h"
#include "ratelimiter.h"

#define NS 1000000000ULL
#define MS 1000000ULL
#define T0 (1000 * NS)
#define QMAX 4096
#define LOGMAX 8192
#define JITTER (REKEY_TIMEOUT_JITTER_MAX_MS * MS)

enum { A, B };
enum verdict { DELIVER, DROP, HOLD };

struct world;

struct node {
	struct world *w;
	int id;
	struct sockaddr_storage addr;   /* its outer address; the test may move it */
	struct wg_device *dev;
	uint8_t priv[32], pub[32];
	struct wg_config cfg;
	struct wg_peer_config pc;
	struct wg_prefix ips[4];
	struct sockaddr_storage ep;
	uint8_t last[2048];             /* last delivered inner packet */
	size_t last_len;
	int delivered, done_events, failed_events;
	uint64_t failed_at;
};

struct dgram {
	int to;
	struct sockaddr_storage src;
	uint8_t *data;
	size_t len;
};

struct sent {
	int from;
	uint32_t type;
	size_t len;
	uint64_t t;
};

struct world {
	uint64_t now;
	struct node n[2];
	struct dgram q[QMAX], held[QMAX];
	size_t qn, heldn;
	struct sent log[LOGMAX];
	size_t logn;
	enum verdict (*filter)(struct world *w, const struct dgram *d);
};

/* ---- fake environment ---- */

static uint64_t fake_now(void *ctx)
{
	struct node *n = ctx;

	return n->w->now;
}

/* Unix time 1.7e9 plus the fake clock, nanoseconds rounded as wireguard-go does. */
static void fake_tai64n(void *ctx, uint8_t out[12])
{
	struct node *n = ctx;
	uint64_t sec = htobe64(0x400000000000000aULL + 1700000000ULL + n->w->now / NS);
	uint32_t nsec = htobe32((uint32_t)(n->w->now % NS) & ~((1U << 24) - 1));

	memcpy(out, &sec, 8);
	memcpy(out + 8, &nsec, 4);
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *x = (const struct sockaddr_in *)a;
	const struct sockaddr_in *y = (const struct sockaddr_in *)b;

	return a->sa_family == AF_INET && b->ss_family == AF_INET &&
	       x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
}

static uint32_t msg_type(const uint8_t *buf, size_t len)
{
	uint32_t t = 0;

	if (len >= 4)
		memcpy(&t, buf, 4);
	return le32toh(t);
}

static int fake_send(void *ctx, const struct sockaddr *dst, socklen_t dstlen,
		     const uint8_t *buf, size_t len)
{
	struct node *n = ctx;
	struct world *w = n->w;
	struct dgram *d;
	int to = -1;

	CHECK(dstlen == sizeof(struct sockaddr_in));
	if (w->logn < LOGMAX)
		w->log[w->logn++] = (struct sent){ n->id, msg_type(buf, len), len, w->now };
	for (int i = 0; i < 2; i++)
		if (same_addr(dst, &w->n[i].addr))
			to = i;
	if (to < 0 || w->qn == QMAX)
		return 0;       /* nobody there: lost, as on a real network */
	d = &w->q[w->qn++];
	d->to = to;
	d->src = n->addr;
	d->data = malloc(len);
	memcpy(d->data, buf, len);
	d->len = len;
	return 0;
}

static void fake_deliver(void *ctx, const uint8_t *pkt, size_t len)
{
	struct node *n = ctx;

	CHECK(len <= sizeof(n->last));
	n->last_len = len < sizeof(n->last) ? len : sizeof(n->last);
	memcpy(n->last, pkt, n->last_len);
	n->delivered++;
}

static void fake_event(void *ctx, int peer, int event)
{
	struct node *n = ctx;

	CHECK_INT(peer, 0);
	if (event == WG_PEER_HANDSHAKE_DONE)
		n->done_events++;
	else if (event == WG_PEER_HANDSHAKE_FAILED)
		n->failed_events++, n->failed_at = n->w->now;
}

/* ---- the network ---- */

static void receive_dgram(struct world *w, struct dgram *d)
{
	wg_device_receive(w->n[d->to].dev, d->data, d->len, (struct sockaddr *)&d->src,
			  sizeof(struct sockaddr_in));
	free(d->data);
}

/* Delivers the oldest queued datagram (through the filter); false when none. */
static bool pump_one(struct world *w)
{
	struct dgram d;
	enum verdict v;

	if (!w->qn)
		return false;
	d = w->q[0];
	memmove(w->q, w->q + 1, --w->qn * sizeof(w->q[0]));
	v = w->filter ? w->filter(w, &d) : DELIVER;
	if (v == DELIVER)
		receive_dgram(w, &d);
	else if (v == HOLD && w->heldn < QMAX)
		w->held[w->heldn++] = d;
	else
		free(d.data);
	return true;
}

static void pump(struct world *w)
{
	int guard = 0;

	while (pump_one(w) && ++guard < 100000)
		;
}

static void release_held(struct world *w, bool reverse)
{
	for (size_t i = 0; i < w->heldn; i++)
		receive_dgram(w, &w->held[reverse ? w->heldn - 1 - i : i]);
	w->heldn = 0;
}

static void drop_held(struct world *w)
{
	for (size_t i = 0; i < w->heldn; i++)
		free(w->held[i].data);
	w->heldn = 0;
}

/* Ticks both devices and pumps until nothing is in flight; the next deadline. */
static uint64_t settle(struct world *w)
{
	for (int guard = 0; guard < 1000; guard++) {
		uint64_t a = wg_device_tick(w->n[A].dev), b = wg_device_tick(w->n[B].dev);

		if (!w->qn)
			return a < b ? a : b;
		pump(w);
	}
	CHECK(!"settle did not settle");
	return UINT64_MAX;
}

/* Moves the clock to target, stopping at every deadline on the way. */
static void run_until(struct world *w, uint64_t target)
{
	for (int guard = 0; guard < 100000; guard++) {
		uint64_t d = settle(w);

		if (d > target)
			break;
		w->now = d > w->now ? d : w->now + 1;
	}
	w->now = target;
	settle(w);
}

static size_t count_sent(const struct world *w, size_t since, int from, uint32_t type)
{
	size_t n = 0;

	for (size_t i = since; i < w->logn; i++)
		if (w->log[i].from == from && w->log[i].type == type)
			n++;
	return n;
}

/* ---- setup ---- */

static struct wg_prefix prefix(const char *s, uint8_t cidr)
{
	struct wg_prefix p = { .cidr = cidr };

	p.ip.family = strchr(s, ':') ? AF_INET6 : AF_INET;
	inet_pton(p.ip.family, s, p.ip.addr);
	return p;
}

static void set_addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	inet_pton(AF_INET, ip, &in->sin_addr);
}

struct setup {
	bool b_knows_a;
	uint16_t a_keepalive;           /* A's PersistentKeepalive */
	uint64_t rekey_after_messages;  /* 0: default */
	double scale;                   /* 0: 1 */
};

static void node_config(struct world *w, int id, const struct setup *s)
{
	struct node *n = &w->n[id], *other = &w->n[!id];

	n->cfg.private_key = n->priv;
	memcpy(n->cfg.public_key, n->pub, 32);
	n->cfg.mtu = 1420;
	n->cfg.peers = &n->pc;
	n->cfg.n_peers = 1;
	memcpy(n->pc.public_key, other->pub, 32);
	n->pc.allowed_ips = n->ips;
	if (id == A) {
		n->ips[0] = prefix("10.0.0.2", 32);
		n->ips[1] = prefix("10.9.0.0", 16);
		n->ips[2] = prefix("fd00::2", 128);
		n->pc.n_allowed_ips = 3;
		n->pc.persistent_keepalive = s->a_keepalive;
		n->ep = other->addr;
	} else {
		n->ips[0] = prefix("10.0.0.1", 32);
		n->ips[1] = prefix("fd00::1", 128);
		n->pc.n_allowed_ips = 2;
		if (s->b_knows_a)
			n->ep = other->addr;
	}
}

static void world_init(struct world *w, const struct setup *s)
{
	static const struct setup defaults;
	struct wg_timer_params tp;

	if (!s)
		s = &defaults;
	memset(w, 0, sizeof(*w));
	w->now = T0;
	wg_timer_params_default(&tp, s->scale);
	if (s->rekey_after_messages)
		tp.rekey_after_messages = s->rekey_after_messages;
	set_addr(&w->n[A].addr, "192.0.2.1", 1001);
	set_addr(&w->n[B].addr, "192.0.2.2", 1002);
	for (int i = 0; i < 2; i++) {
		w->n[i].w = w;
		w->n[i].id = i;
		crypto_box_keypair(w->n[i].pub, w->n[i].priv);
	}
	for (int i = 0; i < 2; i++) {
		struct node *n = &w->n[i];
		struct wg_device_ops ops = { .ctx = n, .send_udp = fake_send,
					     .deliver = fake_deliver, .now = fake_now,
					     .tai64n = fake_tai64n, .peer_event = fake_event };

		node_config(w, i, s);
		n->dev = wg_device_new(&n->cfg, &n->ep, &tp, &ops);
		CHECK(n->dev != NULL);
	}
}

static void world_free(struct world *w)
{
	pump(w);
	drop_held(w);
	for (size_t i = 0; i < w->qn; i++)
		free(w->q[i].data);
	wg_device_free(w->n[A].dev);
	wg_device_free(w->n[B].dev);
}

static struct wg_peer *peer_of(struct world *w, int id)
{
	return &w->n[id].dev->peers[0];
}

static struct wg_peer_stats stats_of(struct world *w, int id)
{
	struct wg_peer_stats st;

	CHECK_INT(wg_device_peer_stats(w->n[id].dev, 0, &st), 0);
	return st;
}

/* ---- inner packets ---- */

static size_t ipv4(uint8_t *buf, const char *src, const char *dst, size_t payload)
{
	size_t len = 20 + payload;

	memset(buf, 0, len);
	buf[0] = 0x45;
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	buf[8] = 64;
	buf[9] = 17;
	inet_pton(AF_INET, src, buf + 12);
	inet_pton(AF_INET, dst, buf + 16);
	for (size_t i = 0; i < payload; i++)
		buf[20 + i] = (uint8_t)(i * 7 + 1);
	return len;
}

static size_t ipv6(uint8_t *buf, const char *src, const char *dst, size_t payload)
{
	size_t len = 40 + payload;

	memset(buf, 0, len);
	buf[0] = 0x60;
	buf[4] = (uint8_t)(payload >> 8);
	buf[5] = (uint8_t)payload;
	buf[6] = 17;
	buf[7] = 64;
	inet_pton(AF_INET6, src, buf + 8);
	inet_pton(AF_INET6, dst, buf + 24);
	for (size_t i = 0; i < payload; i++)
		buf[40 + i] = (uint8_t)(i * 3 + 5);
	return len;
}

/* A sends one IPv4 packet to B and the network carries everything. */
static int a_to_b(struct world *w, size_t payload)
{
	uint8_t pkt[1500];
	size_t len = ipv4(pkt, "10.0.0.1", "10.0.0.2", payload);
	int ret = wg_device_send(w->n[A].dev, pkt, len);

	settle(w);
	return ret;
}

static int b_to_a(struct world *w, size_t payload)
{
	uint8_t pkt[1500];
	size_t len = ipv4(pkt, "10.0.0.2", "10.0.0.1", payload);
	int ret = wg_device_send(w->n[B].dev, pkt, len);

	settle(w);
	return ret;
}

/* A session A -> B, confirmed, at T0. */
static void establish(struct world *w, const struct setup *s)
{
	world_init(w, s);
	CHECK_INT(a_to_b(w, 10), 0);
	CHECK_INT(w->n[B].delivered, 1);
	CHECK(wg_device_peer_has_session(w->n[A].dev, 0));
	CHECK(wg_device_peer_has_session(w->n[B].dev, 0));
}


/* ---- cases ---- */

static enum verdict drop_a_to_b(struct world *w, const struct dgram *d)
{
	(void)w;
	return d->to == B ? DROP : DELIVER;
}

static enum verdict drop_b_to_a(struct world *w, const struct dgram *d)
{
	(void)w;
	return d->to == A ? DROP : DELIVER;
}

static enum verdict hold_all(struct world *w, const struct dgram *d)
{
	(void)w;
	(void)d;
	return HOLD;
}

/* The handshake one datagram at a time: staging, next -> current, confirmation. */
static void test_handshake_steps(void)
{
	struct world w;
	uint8_t pkt[1500], pkt6[100];
	struct wg_peer *pa, *pb;
	struct wg_peer_stats sa, sb;
	size_t len = 0, len6;

	world_init(&w, NULL);
	pa = peer_of(&w, A);
	pb = peer_of(&w, B);
	for (int i = 0; i < 3; i++) {
		len = ipv4(pkt, "10.0.0.1", "10.0.0.2", 10 + i);
		CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	}
	CHECK_INT(pa->staged_count, 3);
	CHECK_INT(count_sent(&w, 0, A, MESSAGE_INITIATION), 1);
	CHECK_INT(w.qn, 1);

	pump_one(&w);   /* B: initiation -> response; its keypair waits as next */
	CHECK(pb->next != NULL && pb->current == NULL && pb->previous == NULL);
	CHECK(!wg_device_peer_has_session(w.n[B].dev, 0));
	CHECK_INT(count_sent(&w, 0, B, MESSAGE_RESPONSE), 1);
	CHECK(same_addr((struct sockaddr *)&pb->endpoint, &w.n[A].addr));
	/* B may not send on next: its packet waits (no initiation: it just responded) */
	len6 = ipv6(pkt6, "fd00::2", "fd00::1", 7);
	CHECK_INT(wg_device_send(w.n[B].dev, pkt6, len6), 0);
	CHECK_INT(pb->staged_count, 1);
	CHECK_INT(w.qn, 1);

	pump_one(&w);   /* A: response -> current at once, staged packets go */
	CHECK(pa->current != NULL && pa->current->kp.is_initiator);
	CHECK(pa->previous == NULL && pa->next == NULL);
	CHECK_INT(pa->staged_count, 0);
	CHECK_INT(count_sent(&w, 0, A, MESSAGE_DATA), 3);      /* no extra keepalive */
	CHECK_INT(w.n[A].done_events, 1);
	CHECK_INT(w.n[B].done_events, 0);

	pump_one(&w);   /* B: first data on next promotes it */
	CHECK(pb->current != NULL && pb->next == NULL && !pb->current->kp.is_initiator);
	CHECK_INT(w.n[B].done_events, 1);
	CHECK_INT(w.n[B].delivered, 1);
	CHECK_INT(pb->staged_count, 0);  /* flushed on the promotion */
	settle(&w);
	CHECK_INT(w.n[A].delivered, 1);
	CHECK_INT(w.n[A].last_len, len6);
	CHECK_MEM(w.n[A].last, pkt6, len6);
	CHECK_INT(w.n[B].delivered, 3);
	CHECK_INT(w.n[B].last_len, len);
	CHECK_MEM(w.n[B].last, pkt, len);

	sa = stats_of(&w, A);
	sb = stats_of(&w, B);
	CHECK_INT(sa.initiations_sent, 1);
	CHECK_INT(sa.handshakes_completed, 1);
	CHECK_INT(sb.handshakes_completed, 1);
	CHECK_INT(sa.last_handshake_ns, T0);
	CHECK_INT(sa.tx_bytes, 148 + 3 * 64);
	CHECK_INT(sb.rx_bytes, 148 + 3 * 64);
	CHECK_INT(sa.rx_bytes, 92 + 32 + 48);
	CHECK_INT(sb.tx_bytes, 92 + 32 + 48);
	CHECK_INT(sb.initiations_sent, 0);
	world_free(&w);
}

static size_t last_len_from(const struct world *w, int from, uint32_t type)
{
	for (size_t i = w->logn; i-- > 0;)
		if (w->log[i].from == from && w->log[i].type == type)
			return w->log[i].len;
	return 0;
}

/* Padding to 16 but never past the MTU, and trimming by the inner length. */
static void test_data_and_padding(void)
{
	static const struct { size_t inner, wire; } v4[] = {
		{ 20, 32 + 32 }, { 21, 32 + 32 }, { 32, 32 + 32 }, { 33, 32 + 48 },
		{ 100, 32 + 112 }, { 1409, 32 + 1420 }, { 1419, 32 + 1420 }, { 1420, 32 + 1420 },
	};
	static const struct { size_t inner, wire; } v6[] = {
		{ 40, 32 + 48 }, { 41, 32 + 48 }, { 48, 32 + 48 }, { 1000, 32 + 1008 },
		{ 1420, 32 + 1420 },
	};
	struct world w;
	uint8_t pkt[1500];
	size_t len;

	establish(&w, NULL);
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		int before = w.n[B].delivered;

		len = ipv4(pkt, "10.0.0.1", "10.0.0.2", v4[i].inner - 20);
		CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
		settle(&w);
		CHECK_INT(last_len_from(&w, A, MESSAGE_DATA), v4[i].wire);
		CHECK_INT(w.n[B].delivered, before + 1);
		CHECK_INT(w.n[B].last_len, len);
		CHECK_MEM(w.n[B].last, pkt, len);
	}
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		int before = w.n[A].delivered;

		len = ipv6(pkt, "fd00::2", "fd00::1", v6[i].inner - 40);
		CHECK_INT(wg_device_send(w.n[B].dev, pkt, len), 0);
		settle(&w);
		CHECK_INT(last_len_from(&w, B, MESSAGE_DATA), v6[i].wire);
		CHECK_INT(w.n[A].delivered, before + 1);
		CHECK_INT(w.n[A].last_len, len);
		CHECK_MEM(w.n[A].last, pkt, len);
	}
	/* a network behind B, reached by its /16 */
	len = ipv4(pkt, "10.0.0.1", "10.9.3.4", 5);
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	settle(&w);
	CHECK_MEM(w.n[B].last, pkt, len);
	world_free(&w);
}

static void test_rekey_after_time(void)
{
	struct world w;
	struct wg_peer *pa, *pb;
	uint32_t old;
	size_t since;
	int before;

	establish(&w, NULL);
	pa = peer_of(&w, A);
	pb = peer_of(&w, B);
	old = pa->current->kp.local_index;
	run_until(&w, T0 + (REKEY_AFTER_TIME - 1) * NS);
	since = w.logn;
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 0);

	run_until(&w, T0 + REKEY_AFTER_TIME * NS);
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 1);
	CHECK(pa->current->kp.local_index != old);
	CHECK(pa->previous && pa->previous->kp.local_index == old);
	CHECK_INT(stats_of(&w, A).handshakes_completed, 2);
	CHECK_INT(stats_of(&w, B).handshakes_completed, 2);
	CHECK(pb->current && pb->next == NULL && pb->previous);

	/* The responder never rekeys on time, however old its keypair. */
	since = w.logn;
	before = w.n[A].delivered;
	run_until(&w, T0 + (2 * REKEY_AFTER_TIME + 10) * NS);
	CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(w.n[A].delivered, before + 1);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_INITIATION), 0);
	world_free(&w);
}

static void test_rekey_after_messages(void)
{
	struct setup s = { .rekey_after_messages = 5 };
	struct world w;
	size_t since;

	establish(&w, &s);      /* A's counter: 1 */
	run_until(&w, T0 + (REKEY_TIMEOUT + 1) * NS);
	since = w.logn;
	for (int i = 0; i < 4; i++)
		CHECK_INT(a_to_b(&w, 10), 0);  /* counter 5: not past the limit yet */
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 0);
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 1);
	CHECK_INT(stats_of(&w, A).handshakes_completed, 2);
	CHECK(peer_of(&w, A)->current->kp.send_counter <= 1);

	/* Volume rekeys on either side: B, the responder, initiates too. */
	run_until(&w, T0 + (2 * REKEY_TIMEOUT + 2) * NS);
	since = w.logn;
	for (int i = 0; i < 6; i++)
		CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_INITIATION), 1);
	CHECK_INT(stats_of(&w, B).handshakes_completed, 3);
	CHECK_INT(w.n[A].delivered, 6);
	world_free(&w);
}

/* At most one initiation per REKEY_TIMEOUT, however often a rekey is wanted. */
static void test_initiation_rate_limit(void)
{
	struct setup s = { .rekey_after_messages = 2 };
	struct world w;
	size_t since;

	establish(&w, &s);      /* A's initiation at T0 */
	since = w.logn;
	for (int i = 0; i < 3; i++)
		CHECK_INT(a_to_b(&w, 10), 0);  /* past the limit, but too soon */
	run_until(&w, T0 + REKEY_TIMEOUT * NS - 1);
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 0);
	run_until(&w, T0 + REKEY_TIMEOUT * NS);
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 1);
	CHECK_INT(w.n[B].delivered, 6);
	world_free(&w);
}

/* Past REJECT_AFTER_TIME a keypair is used neither way; sending starts a handshake. */
static void test_reject_after_time(void)
{
	struct world w;
	size_t since;
	int before;

	establish(&w, NULL);
	w.filter = hold_all;
	CHECK_INT(a_to_b(&w, 10), 0);
	w.filter = NULL;
	CHECK_INT(w.heldn, 1);
	run_until(&w, T0 + REJECT_AFTER_TIME * NS - 1);
	CHECK(wg_device_peer_has_session(w.n[A].dev, 0));
	run_until(&w, T0 + REJECT_AFTER_TIME * NS);
	CHECK(!wg_device_peer_has_session(w.n[A].dev, 0));
	CHECK(!wg_device_peer_has_session(w.n[B].dev, 0));

	before = w.n[B].delivered;
	release_held(&w, false);        /* sealed in time, arrives too late */
	CHECK_INT(w.n[B].delivered, before);

	since = w.logn;
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK(since < w.logn && w.log[since].from == A && w.log[since].type == MESSAGE_INITIATION);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_DATA), 1);
	CHECK_INT(w.n[B].delivered, before + 1);
	CHECK(wg_device_peer_has_session(w.n[A].dev, 0));
	world_free(&w);
}

/* Retransmissions every REKEY_TIMEOUT + jitter, a give-up within REKEY_ATTEMPT_TIME
 * of the first initiation, once another full REKEY_TIMEOUT no longer fits (16 to 18
 * initiations, as the jitter falls), steady traffic notwithstanding; then the next
 * packet starts over at once. */
static void test_retransmit_and_give_up(void)
{
	struct world w;
	uint8_t pkt[100];
	size_t len = ipv4(pkt, "10.0.0.1", "10.0.0.2", 8), n = 0;
	uint64_t times[64], t, deadline;
	bool varied = false;
	struct wg_peer *pa;

	world_init(&w, NULL);
	pa = peer_of(&w, A);
	w.filter = drop_a_to_b;
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	deadline = wg_device_tick(w.n[A].dev);
	CHECK(deadline >= T0 + REKEY_TIMEOUT * NS && deadline <= T0 + REKEY_TIMEOUT * NS + JITTER);
	for (t = T0; t < T0 + 200 * NS && !w.n[A].failed_events; t += 3 * NS) {
		run_until(&w, t);
		if (!w.n[A].failed_events)
			CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	}
	for (size_t i = 0; i < w.logn && n < 64; i++)
		if (w.log[i].from == A && w.log[i].type == MESSAGE_INITIATION)
			times[n++] = w.log[i].t;
	CHECK(n >= MAX_TIMER_HANDSHAKES - 2 && n <= MAX_TIMER_HANDSHAKES);
	CHECK(times[0] == T0);
	for (size_t i = 1; i < n; i++) {
		CHECK(times[i] - times[i - 1] >= REKEY_TIMEOUT * NS);
		CHECK(times[i] - times[i - 1] <= REKEY_TIMEOUT * NS + JITTER);
		varied |= times[i] - times[i - 1] != times[1] - times[0];
	}
	CHECK(varied);
	CHECK_INT(w.n[A].failed_events, 1);
	CHECK(w.n[A].failed_at <= T0 + REKEY_ATTEMPT_TIME * NS);
	CHECK(w.n[A].failed_at + REKEY_TIMEOUT * NS > T0 + REKEY_ATTEMPT_TIME * NS);
	CHECK(w.n[A].failed_at >= times[n - 1] + REKEY_TIMEOUT * NS);
	CHECK(w.n[A].failed_at <= times[n - 1] + REKEY_TIMEOUT * NS + JITTER);
	CHECK_INT(pa->staged_count, 0);
	CHECK(pa->timers.retransmit_handshake == WG_TIMER_OFF);
	CHECK(pa->timers.zero_key_material != WG_TIMER_OFF);
	CHECK_INT(stats_of(&w, A).initiations_sent, n);

	/* Unreachable now, but the packet starts a new round; the peer comes back. */
	run_until(&w, w.now + NS);
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), -EHOSTUNREACH);
	CHECK_INT(stats_of(&w, A).initiations_sent, n + 1);
	w.filter = NULL;
	run_until(&w, w.now + REKEY_TIMEOUT * NS + JITTER);
	CHECK_INT(w.n[A].done_events, 1);
	CHECK(!pa->handshake_failed);
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	settle(&w);
	CHECK_INT(w.n[B].delivered, 1);
	CHECK_INT(w.n[A].failed_events, 1);
	world_free(&w);
}

static void test_staged_queue_bound(void)
{
	struct world w;
	uint8_t pkt[300];
	size_t len = 0;

	world_init(&w, NULL);
	w.filter = drop_a_to_b;
	for (int i = 0; i < 200; i++) {
		len = ipv4(pkt, "10.0.0.1", "10.0.0.2", (size_t)i);
		CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	}
	CHECK_INT(peer_of(&w, A)->staged_count, WG_MAX_STAGED_PACKETS);
	w.filter = NULL;
	run_until(&w, T0 + REKEY_TIMEOUT * NS + JITTER);
	CHECK_INT(w.n[B].delivered, WG_MAX_STAGED_PACKETS);
	CHECK_INT(w.n[B].last_len, len);
	CHECK_MEM(w.n[B].last, pkt, len);
	world_free(&w);
}

static size_t count_keepalives(const struct world *w, size_t since, int from)
{
	size_t n = 0;

	for (size_t i = since; i < w->logn; i++)
		if (w->log[i].from == from && w->log[i].type == MESSAGE_DATA &&
		    w->log[i].len == MESSAGE_MINIMUM_LEN)
			n++;
	return n;
}

static void test_passive_keepalive(void)
{
	struct world w;
	size_t since;

	establish(&w, NULL);    /* B received data at T0 */
	since = w.logn;
	run_until(&w, T0 + KEEPALIVE_TIMEOUT * NS - 1);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_DATA), 0);
	run_until(&w, T0 + KEEPALIVE_TIMEOUT * NS);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_DATA), 1);
	CHECK_INT(count_keepalives(&w, since, B), 1);
	run_until(&w, T0 + 60 * NS);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_DATA), 1);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_DATA), 0);  /* keepalives are not data */

	/* A reply in time makes the keepalive unnecessary. */
	since = w.logn;
	CHECK_INT(a_to_b(&w, 10), 0);
	run_until(&w, w.now + 5 * NS);
	CHECK_INT(b_to_a(&w, 10), 0);
	run_until(&w, w.now + 30 * NS);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_DATA), 1);
	CHECK_INT(count_keepalives(&w, since, B), 0);
	CHECK_INT(count_keepalives(&w, since, A), 1);   /* A acknowledges B's data */
	world_free(&w);
}

static void test_persistent_keepalive(void)
{
	static const struct { double scale; uint64_t interval; } cases[] = {
		{ 1, 25 * NS }, { 0.5, 12500 * MS },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct setup s = { .a_keepalive = 25, .scale = cases[c].scale };
		uint64_t iv = cases[c].interval;
		struct world w;
		size_t since;

		world_init(&w, &s);
		CHECK(peer_of(&w, A)->persistent_keepalive_interval == iv);
		settle(&w);     /* the first keepalive brings the session up */
		CHECK_INT(count_sent(&w, 0, A, MESSAGE_INITIATION), 1);
		CHECK_INT(count_keepalives(&w, 0, A), 1);
		CHECK(wg_device_peer_has_session(w.n[B].dev, 0));
		since = w.logn;
		run_until(&w, T0 + iv - 1);
		CHECK_INT(count_keepalives(&w, since, A), 0);
		run_until(&w, T0 + iv);
		CHECK_INT(count_keepalives(&w, since, A), 1);
		run_until(&w, T0 + 4 * iv);
		CHECK_INT(count_keepalives(&w, since, A), 4);
		CHECK_INT(count_sent(&w, 0, B, MESSAGE_DATA), 0);
		CHECK_INT(count_sent(&w, 0, B, MESSAGE_INITIATION), 0);
		world_free(&w);
	}
}

/* Data sent, nothing heard back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT: new handshake. */
static void test_new_handshake_after_silence(void)
{
	struct world w;
	uint64_t t1 = T0 + 12 * NS, silence = (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * NS;
	size_t since;

	establish(&w, NULL);
	run_until(&w, t1);      /* B's keepalive at T0 + 10 s answered A's first data */
	w.filter = drop_b_to_a;
	since = w.logn;
	CHECK_INT(a_to_b(&w, 10), 0);
	run_until(&w, t1 + silence - 1);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 0);
	run_until(&w, t1 + silence + JITTER);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 1);
	world_free(&w);
}

static bool table_empty(const struct index_table *t)
{
	for (int i = 0; i < INDEX_TABLE_BUCKETS; i++)
		if (t->buckets[i])
			return false;
	return true;
}

static void check_wiped(struct world *w, int id)
{
	struct wg_peer *p = peer_of(w, id);

	CHECK(!p->current && !p->previous && !p->next);
	for (int i = 0; i < WG_KEYPAIR_SLOTS; i++) {
		CHECK(!p->slots[i].in_use);
		CHECK(sodium_is_zero((const unsigned char *)&p->slots[i].kp, sizeof(p->slots[i].kp)));
	}
	CHECK(p->handshake.state == HANDSHAKE_ZEROED);
	CHECK(sodium_is_zero(p->handshake.chaining_key, sizeof(p->handshake.chaining_key)));
	CHECK(sodium_is_zero(p->handshake.ephemeral_private,
			     sizeof(p->handshake.ephemeral_private)));
	CHECK(table_empty(&w->n[id].dev->index_table));
}

static void test_zero_key_material(void)
{
	struct world w;
	uint64_t t = T0 + 3 * REJECT_AFTER_TIME * NS;

	establish(&w, NULL);
	run_until(&w, t - 1);
	CHECK(peer_of(&w, A)->current && peer_of(&w, A)->current->in_use);
	CHECK(peer_of(&w, B)->current != NULL);
	run_until(&w, t);
	check_wiped(&w, A);
	check_wiped(&w, B);
	/* and the device still works: the next packet starts over */
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(w.n[B].delivered, 2);
	world_free(&w);
}

/* 148 bytes of noise that claim to be initiations: they count towards the load. */
/* n random initiations from src; with_mac1: a valid mac1 (the sender knows id's
 * public key), and a mac2 too when maker holds a cookie. */
static void flood_from(struct world *w, int id, int n, const char *src_ip, bool with_mac1,
		       struct cookie_maker *maker)
{
	struct sockaddr_storage src;
	uint8_t msg[MESSAGE_INITIATION_LEN];
	struct cookie_maker m;

	cookie_maker_init(&m, w->n[id].pub);
	set_addr(&src, src_ip, 4444);
	for (int i = 0; i < n; i++) {
		randombytes_buf(msg, sizeof(msg));
		msg[0] = MESSAGE_INITIATION;
		msg[1] = msg[2] = msg[3] = 0;
		if (with_mac1)
			cookie_add_macs(maker ? maker : &m, msg, sizeof(msg), w->now);
		wg_device_receive(w->n[id].dev, msg, sizeof(msg), (struct sockaddr *)&src,
				  sizeof(struct sockaddr_in));
	}
}

static void flood(struct world *w, int id, int n)
{
	flood_from(w, id, n, "198.51.100.7", true, NULL);
}

static struct wg_device_stats dev_stats_of(struct world *w, int id)
{
	struct wg_device_stats st;

	wg_device_stats(w->n[id].dev, &st);
	return st;
}

static void test_cookie_under_load(void)
{
	struct world w;
	struct wg_peer_stats sa;
	size_t since;

	world_init(&w, NULL);
	flood(&w, B, 64);
	CHECK_INT(w.logn, 0);   /* 64 a second is not load yet: no DH succeeds, no answer */
	CHECK_INT(dev_stats_of(&w, B).under_load_entered, 0);
	flood(&w, B, 1);
	CHECK_INT(dev_stats_of(&w, B).under_load_entered, 1);
	since = w.logn;
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_COOKIE_REPLY), 1);
	CHECK_INT(count_sent(&w, 0, B, MESSAGE_RESPONSE), 0);
	CHECK_INT(last_len_from(&w, B, MESSAGE_COOKIE_REPLY), MESSAGE_COOKIE_REPLY_LEN);
	CHECK_INT(stats_of(&w, A).cookie_replies_received, 1);
	CHECK_INT(w.n[B].delivered, 0);

	run_until(&w, T0 + 4900 * MS);
	flood(&w, B, 65);       /* still loaded when the retransmission comes */
	since = w.logn;
	run_until(&w, T0 + REKEY_TIMEOUT * NS + JITTER);
	sa = stats_of(&w, A);
	CHECK_INT(sa.initiations_sent, 2);
	CHECK_INT(sa.initiations_sent_with_mac2, 1);
	CHECK_INT(sa.handshakes_completed, 1);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_COOKIE_REPLY), 0);
	CHECK_INT(w.n[B].delivered, 1);
	world_free(&w);
}

/* Garbage costs one hash: any amount of it never puts the device under load, so a
 * real peer's handshake goes straight through, without a cookie round. */
static void test_garbage_flood_is_no_load(void)
{
	struct world w;
	struct wg_device_stats st;

	world_init(&w, NULL);
	flood_from(&w, B, 10000, "198.51.100.7", false, NULL);
	CHECK_INT(w.logn, 0);
	CHECK_INT(a_to_b(&w, 10), 0);
	st = dev_stats_of(&w, B);
	CHECK_INT(st.handshakes_bad_mac, 10000);
	CHECK_INT(st.under_load_entered, 0);
	CHECK_INT(st.handshakes_under_load, 0);
	CHECK_INT(st.cookie_replies_sent, 0);
	CHECK_INT(count_sent(&w, 0, B, MESSAGE_COOKIE_REPLY), 0);
	CHECK_INT(stats_of(&w, A).handshakes_completed, 1);
	CHECK_INT(w.n[B].delivered, 1);
	world_free(&w);
}

/* Under load, cookie replies go out at RATELIMIT_BURST then RATELIMIT_PER_SECOND
 * per source, and COOKIE_REPLIES_BURST then COOKIE_REPLIES_PER_SECOND in all. */
static void test_cookie_replies_limited(void)
{
	struct world w;
	struct wg_device_stats st;
	char ip[32];
	size_t since;

	world_init(&w, NULL);
	flood(&w, B, 1000);
	CHECK_INT(count_sent(&w, 0, B, MESSAGE_COOKIE_REPLY), RATELIMIT_BURST);
	st = dev_stats_of(&w, B);
	CHECK_INT(st.cookie_replies_sent, RATELIMIT_BURST);
	CHECK_INT(st.cookie_replies_limited, 1000 - HANDSHAKES_UNDER_LOAD - RATELIMIT_BURST);
	/* a second of 1000 evenly spread: one reply per 50 ms */
	since = w.logn;
	for (int i = 0; i < 100; i++) {
		w.now += 10 * MS;
		flood(&w, B, 10);
	}
	CHECK_INT(count_sent(&w, since, B, MESSAGE_COOKIE_REPLY), RATELIMIT_PER_SECOND);
	/* spoofed sources, each new: the total bucket caps them (refilled by now) */
	w.now += 100 * MS;
	since = w.logn;
	for (int i = 0; i < 4 * COOKIE_REPLIES_BURST; i++) {
		snprintf(ip, sizeof(ip), "203.0.%d.%d", 1 + i / 250, 1 + i % 250);
		flood_from(&w, B, 1, ip, true, NULL);
	}
	CHECK_INT(count_sent(&w, since, B, MESSAGE_COOKIE_REPLY), COOKIE_REPLIES_BURST);
	/* another source is not starved by the first one's flood */
	run_until(&w, w.now + NS);
	flood(&w, B, 100);
	since = w.logn;
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_COOKIE_REPLY), 1);
	CHECK_INT(stats_of(&w, A).cookie_replies_received, 1);
	world_free(&w);
}

/* A host that took our cookie sends initiations with a valid mac2: each would
 * cost a DH, so only RATELIMIT_BURST get there at once. */
static void test_mac2_flood_ratelimited(void)
{
	struct world w;
	struct cookie_maker m;
	struct msg_cookie_reply reply;
	struct wg_device_stats st;
	uint8_t msg[MESSAGE_INITIATION_LEN] = { MESSAGE_INITIATION };
	const uint8_t src[6] = { 198, 51, 100, 7, 4444 >> 8, 4444 & 0xff };

	world_init(&w, NULL);
	flood(&w, B, 65);
	cookie_maker_init(&m, w.n[B].pub);
	cookie_add_macs(&m, msg, sizeof(msg), w.now);
	cookie_create_reply(&w.n[B].dev->cookie_checker, &reply, msg, sizeof(msg), 1, src,
			    sizeof(src), w.now);
	CHECK_INT(cookie_consume_reply(&m, &reply, w.now), 0);
	flood_from(&w, B, 100, "198.51.100.7", true, &m);
	st = dev_stats_of(&w, B);
	CHECK_INT(st.handshakes_ratelimited, 100 - RATELIMIT_BURST);
	CHECK_INT(st.handshakes_under_load, 100 + 1);
	/* the peer at another address still completes (one cookie round) */
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(stats_of(&w, A).cookie_replies_received, 1);
	run_until(&w, T0 + 4900 * MS);
	flood(&w, B, 65);
	run_until(&w, T0 + REKEY_TIMEOUT * NS + JITTER);
	CHECK_INT(stats_of(&w, A).handshakes_completed, 1);
	CHECK_INT(w.n[B].delivered, 1);
	world_free(&w);
}

static void test_source_not_allowed(void)
{
	struct world w;
	uint8_t pkt[200];
	size_t len;

	establish(&w, NULL);
	len = ipv4(pkt, "10.0.0.99", "10.0.0.2", 10);
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	len = ipv6(pkt, "fd00::99", "fd00::2", 10);
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	/* claims more bytes than arrived, or less than a header */
	len = ipv4(pkt, "10.0.0.1", "10.0.0.2", 10);
	pkt[3] = (uint8_t)(len + 20);
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	pkt[3] = 19;
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	len = ipv6(pkt, "fd00::1", "fd00::2", 10);
	pkt[5] = 200;
	CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	settle(&w);
	CHECK_INT(w.n[B].delivered, 1);
	CHECK_INT(count_sent(&w, 0, A, MESSAGE_DATA), 6);
	CHECK_INT(stats_of(&w, B).rx_bad_source, 2);
	CHECK_INT(stats_of(&w, B).rx_bad_inner, 3);
	/* the control: an allowed source gets through */
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(w.n[B].delivered, 2);
	world_free(&w);
}

static void feed(struct world *w, int id, const void *buf, size_t len, const struct sockaddr *src,
		 socklen_t srclen)
{
	wg_device_receive(w->n[id].dev, buf, len, src, srclen);
}

static void test_garbage(void)
{
	static const struct { uint32_t type; size_t len; } cases[] = {
		{ 0, 0 }, { 1, 1 }, { 1, 3 }, { 1, 4 }, { 1, 147 }, { 1, 149 }, { 0x101, 148 },
		{ 0x01000001, 148 }, { 5, 148 }, { 0, 148 }, { 2, 91 }, { 2, 93 }, { 2, 92 },
		{ 0x102, 92 }, { 3, 63 }, { 3, 65 }, { 3, 64 }, { 4, 31 }, { 4, 32 }, { 4, 100 },
		{ 0x104, 100 }, { 1, 148 }, { 7, 2000 }, { 4, 70000 },
	};
	static uint8_t buf[70000];
	struct world w;
	struct sockaddr_storage evil;
	struct { sa_family_t f; char p[20]; } unix_src = { AF_UNIX, "x" };
	struct wg_peer_stats before, after;
	uint32_t idx;
	size_t since;

	establish(&w, NULL);
	set_addr(&evil, "203.0.113.9", 666);
	before = stats_of(&w, B);
	idx = htole32(peer_of(&w, B)->current->kp.local_index);
	since = w.logn;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int round = 0; round < 4; round++) {
			uint32_t t = htole32(cases[i].type);

			randombytes_buf(buf, cases[i].len);
			memcpy(buf, &t, cases[i].len < 4 ? cases[i].len : 4);
			/* aim half of them at a real receiver index */
			if (round & 1 && cases[i].len >= 8)
				memcpy(buf + 4, &idx, 4);
			feed(&w, B, buf, cases[i].len, (struct sockaddr *)&evil,
			     sizeof(struct sockaddr_in));
			feed(&w, A, buf, cases[i].len, (struct sockaddr *)&evil,
			     sizeof(struct sockaddr_in));
		}
		feed(&w, B, buf, cases[i].len, NULL, 0);
		feed(&w, B, buf, cases[i].len, (struct sockaddr *)&unix_src, sizeof(unix_src));
		feed(&w, B, buf, cases[i].len, (struct sockaddr *)&evil, 2);
	}
	feed(&w, B, NULL, 100, (struct sockaddr *)&evil, sizeof(struct sockaddr_in));
	settle(&w);
	after = stats_of(&w, B);
	CHECK_INT(after.rx_bytes, before.rx_bytes);
	CHECK_INT(after.cookie_replies_received, 0);
	CHECK_INT(stats_of(&w, A).cookie_replies_received, 0);
	CHECK_INT(w.logn, since);
	CHECK_INT(w.n[B].delivered, 1);
	CHECK(same_addr((struct sockaddr *)&peer_of(&w, B)->endpoint, &w.n[A].addr));
	CHECK(wg_device_peer_has_session(w.n[B].dev, 0));
	CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(w.n[A].delivered, 1);
	world_free(&w);
}

static void test_roaming(void)
{
	struct world w;
	struct sockaddr_storage evil, old;
	struct dgram held;
	struct wg_peer *pb;

	establish(&w, NULL);
	pb = peer_of(&w, B);
	set_addr(&evil, "203.0.113.9", 666);

	/* Verified data from a new address moves the endpoint; replies follow. */
	old = w.n[A].addr;
	set_addr(&w.n[A].addr, "192.0.2.3", 1003);
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK(same_addr((struct sockaddr *)&pb->endpoint, &w.n[A].addr));
	CHECK(!same_addr((struct sockaddr *)&pb->endpoint, &old));
	CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(w.n[A].delivered, 1);

	/* A forged or replayed packet from elsewhere does not. */
	w.filter = hold_all;
	CHECK_INT(a_to_b(&w, 10), 0);
	w.filter = NULL;
	CHECK_INT(w.heldn, 1);
	held = w.held[0];
	held.data[held.len - 1] ^= 1;
	feed(&w, B, held.data, held.len, (struct sockaddr *)&evil, sizeof(struct sockaddr_in));
	CHECK(same_addr((struct sockaddr *)&pb->endpoint, &w.n[A].addr));
	held.data[held.len - 1] ^= 1;
	feed(&w, B, held.data, held.len, (struct sockaddr *)&w.n[A].addr,
	     sizeof(struct sockaddr_in));
	CHECK_INT(w.n[B].delivered, 3);
	feed(&w, B, held.data, held.len, (struct sockaddr *)&evil, sizeof(struct sockaddr_in));
	CHECK_INT(w.n[B].delivered, 3);
	CHECK(same_addr((struct sockaddr *)&pb->endpoint, &w.n[A].addr));
	drop_held(&w);
	world_free(&w);
}

static void test_duplicate_and_reorder(void)
{
	struct world w;
	uint8_t pkt[100], first[100], *dup;
	size_t len, first_len = 0, dup_len;

	establish(&w, NULL);
	w.filter = hold_all;
	for (int i = 0; i < 3; i++) {
		len = ipv4(pkt, "10.0.0.1", "10.0.0.2", 20 + (size_t)i);
		if (!i)
			memcpy(first, pkt, first_len = len);
		CHECK_INT(wg_device_send(w.n[A].dev, pkt, len), 0);
	}
	pump(&w);
	w.filter = NULL;
	CHECK_INT(w.heldn, 3);
	dup_len = w.held[2].len;
	dup = malloc(dup_len);
	memcpy(dup, w.held[2].data, dup_len);
	release_held(&w, true);
	CHECK_INT(w.n[B].delivered, 4);
	CHECK_INT(w.n[B].last_len, first_len);
	CHECK_MEM(w.n[B].last, first, first_len);
	feed(&w, B, dup, dup_len, (struct sockaddr *)&w.n[A].addr, sizeof(struct sockaddr_in));
	CHECK_INT(w.n[B].delivered, 4);
	free(dup);
	world_free(&w);
}

/* Packets sealed on the old keypair still open after a rekey (previous). Here
 * B's data gets no answer, so B starts the new handshake itself. */
static void test_receive_on_previous(void)
{
	struct world w;
	uint32_t old;
	size_t since;

	establish(&w, NULL);
	old = peer_of(&w, A)->current->kp.local_index;
	w.filter = hold_all;
	CHECK_INT(b_to_a(&w, 10), 0);
	w.filter = NULL;
	since = w.logn;
	run_until(&w, T0 + (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) * NS + JITTER);
	CHECK_INT(count_sent(&w, since, B, MESSAGE_INITIATION), 1);
	CHECK(peer_of(&w, A)->previous && peer_of(&w, A)->previous->kp.local_index == old);
	CHECK(peer_of(&w, A)->current && !peer_of(&w, A)->current->kp.is_initiator);
	release_held(&w, false);
	CHECK_INT(w.n[A].delivered, 1);
	world_free(&w);
}

/* The initiator renews a session it still receives on before it expires. */
static void test_lastminute_handshake(void)
{
	struct world w;
	uint64_t age = (REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) * NS;
	size_t since;

	establish(&w, NULL);
	run_until(&w, T0 + age - NS);
	since = w.logn;
	CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 0);
	run_until(&w, T0 + age);
	CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 1);
	CHECK_INT(stats_of(&w, A).handshakes_completed, 2);
	run_until(&w, T0 + age + 6 * NS);
	CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(count_sent(&w, since, A, MESSAGE_INITIATION), 1);
	CHECK_INT(w.n[A].delivered, 3);
	world_free(&w);
}

static void test_connect_peer(void)
{
	struct world w;
	uint8_t pkt[100];
	size_t len = ipv4(pkt, "10.0.0.2", "10.0.0.1", 4);

	world_init(&w, NULL);
	/* B has no endpoint for A: it can neither connect nor send */
	wg_device_connect_peer(w.n[B].dev, 0);
	CHECK_INT(w.logn, 0);
	CHECK_INT(wg_device_send(w.n[B].dev, pkt, len), -EHOSTUNREACH);
	wg_device_connect_peer(w.n[A].dev, 0);
	wg_device_connect_peer(w.n[A].dev, 0);
	wg_device_connect_peer(w.n[A].dev, -1);
	wg_device_connect_peer(w.n[A].dev, 1);
	CHECK_INT(count_sent(&w, 0, A, MESSAGE_INITIATION), 1);
	settle(&w);
	CHECK(wg_device_peer_has_session(w.n[A].dev, 0));
	CHECK(wg_device_peer_has_session(w.n[B].dev, 0));   /* confirmed by the keepalive */
	CHECK(!wg_device_peer_has_session(w.n[A].dev, 1));
	run_until(&w, T0 + 30 * NS);
	wg_device_connect_peer(w.n[A].dev, 0);
	CHECK_INT(count_sent(&w, 0, A, MESSAGE_INITIATION), 1);
	CHECK_INT(wg_device_send(w.n[B].dev, pkt, len), 0);
	settle(&w);
	CHECK_INT(w.n[A].delivered, 1);
	world_free(&w);
}

/* Both sides initiate at once: each answers the other and drops the response to
 * its own (its index is gone), as the kernel does; the retransmission settles it. */
static void test_simultaneous_initiation(void)
{
	struct setup s = { .b_knows_a = true };
	struct world w;

	world_init(&w, &s);
	wg_device_connect_peer(w.n[A].dev, 0);
	wg_device_connect_peer(w.n[B].dev, 0);
	settle(&w);
	run_until(&w, T0 + REKEY_TIMEOUT * NS + JITTER);
	CHECK(wg_device_peer_has_session(w.n[A].dev, 0));
	CHECK(wg_device_peer_has_session(w.n[B].dev, 0));
	CHECK_INT(a_to_b(&w, 10), 0);
	CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(w.n[A].delivered, 1);
	CHECK_INT(w.n[B].delivered, 1);
	world_free(&w);
}

static enum verdict hold_data_to_a(struct world *w, const struct dgram *d)
{
	(void)w;
	return d->to == A && msg_type(d->data, d->len) == MESSAGE_DATA ? HOLD : DELIVER;
}

/* The initiator completes a handshake while an unconfirmed responder keypair
 * waits in next: next becomes previous, current goes (the kernel's rotation). */
static void test_rotation_with_pending_next(void)
{
	struct setup s = { .rekey_after_messages = 3 };
	struct wg_keypair *k2;
	struct wg_peer *pa, *pb;
	struct world w;
	int before;

	establish(&w, &s);
	pa = peer_of(&w, A);
	pb = peer_of(&w, B);
	run_until(&w, T0 + (REKEY_TIMEOUT + 1) * NS);
	w.filter = hold_data_to_a;
	for (int i = 0; i < 4; i++)
		CHECK_INT(b_to_a(&w, 10), 0);  /* B passes its limit and initiates */
	CHECK(pa->current && pa->next && !pa->previous);
	CHECK(pb->current && pb->current->kp.is_initiator && pb->previous);
	k2 = pa->next;
	run_until(&w, w.now + (REKEY_TIMEOUT + 1) * NS);
	for (int i = 0; i < 3; i++)
		CHECK_INT(a_to_b(&w, 10), 0);  /* now A does */
	CHECK(pa->previous == k2 && pa->next == NULL);
	CHECK(pa->current && pa->current->kp.is_initiator && pa->current != k2);
	CHECK(pb->current && !pb->current->kp.is_initiator && pb->next == NULL);
	w.filter = NULL;
	before = w.n[A].delivered;
	release_held(&w, false);        /* B's packets on the first keypair are lost */
	CHECK_INT(w.n[A].delivered, before);
	CHECK_INT(b_to_a(&w, 10), 0);
	CHECK_INT(w.n[A].delivered, before + 1);
	world_free(&w);
}

static int c_sends;

static int count_send(void *ctx, const struct sockaddr *dst, socklen_t dstlen,
		      const uint8_t *buf, size_t len)
{
	(void)ctx, (void)dst, (void)dstlen, (void)buf, (void)len;
	c_sends++;
	return 0;
}

static uint64_t zero_now(void *ctx)
{
	(void)ctx;
	return T0;
}

/* One AllowedIPs table over all peers: the longest prefix wins across them. */
static void test_route_two_peers(void)
{
	static const struct { int family; const char *addr; int peer; } routes[] = {
		{ AF_INET, "10.1.2.3", 1 }, { AF_INET, "10.2.3.4", 0 }, { AF_INET, "10.1.255.255", 1 },
		{ AF_INET, "11.0.0.1", -1 }, { AF_INET6, "fd00:1::5", 1 }, { AF_INET6, "fd00:2::5", 0 },
		{ AF_INET6, "fe80::1", -1 }, { AF_INET, "0.0.0.0", -1 },
	};
	struct wg_prefix p0[] = { prefix("10.0.0.0", 8), prefix("fd00::", 16) };
	struct wg_prefix p1[] = { prefix("10.1.0.0", 16), prefix("fd00:1::", 32) };
	struct wg_peer_config peers[2] = {
		{ .allowed_ips = p0, .n_allowed_ips = 2 }, { .allowed_ips = p1, .n_allowed_ips = 2 },
	};
	struct wg_config cfg = { .peers = peers, .n_peers = 2, .mtu = 1420 };
	struct sockaddr_storage eps[2] = { 0 };
	struct wg_device_ops ops = { .send_udp = count_send, .now = zero_now };
	struct wg_timer_params tp;
	struct wg_device *dev;
	uint8_t pub[32], priv[32], mine[32], addr[16], pkt[100], big[1];

	wg_timer_params_default(&tp, 1);
	cfg.private_key = mine;
	crypto_box_keypair(pub, cfg.private_key);
	crypto_box_keypair(peers[0].public_key, priv);
	crypto_box_keypair(peers[1].public_key, priv);
	set_addr(&eps[0], "192.0.2.50", 51820);
	dev = wg_device_new(&cfg, eps, &tp, &ops);
	CHECK(dev != NULL);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		inet_pton(routes[i].family, routes[i].addr, addr);
		CHECK_INT(wg_device_route(dev, routes[i].family, addr), routes[i].peer);
	}
	CHECK_INT(wg_device_route(dev, AF_UNIX, addr), -1);
	CHECK_INT(wg_device_send(dev, pkt, ipv4(pkt, "10.0.0.1", "11.0.0.1", 4)), -ENETUNREACH);
	CHECK_INT(wg_device_send(dev, pkt, ipv4(pkt, "10.0.0.1", "10.1.2.3", 4)), -EHOSTUNREACH);
	CHECK_INT(wg_device_send(dev, pkt, ipv6(pkt, "fd00::1", "fd00:1::3", 4)), -EHOSTUNREACH);
	CHECK_INT(c_sends, 0);
	CHECK_INT(wg_device_send(dev, pkt, ipv4(pkt, "10.0.0.1", "10.2.3.4", 4)), 0);
	CHECK_INT(c_sends, 1);  /* the initiation to peer 0 */
	pkt[0] = 0x50;
	CHECK_INT(wg_device_send(dev, pkt, 40), -EINVAL);
	pkt[0] = 0x45;
	CHECK_INT(wg_device_send(dev, pkt, 19), -EINVAL);
	pkt[0] = 0x60;
	CHECK_INT(wg_device_send(dev, pkt, 39), -EINVAL);
	CHECK_INT(wg_device_send(dev, NULL, 40), -EINVAL);
	CHECK_INT(wg_device_send(dev, big, WG_MAX_INNER + 1), -EMSGSIZE);
	CHECK_INT(wg_device_peer_stats(dev, 2, &(struct wg_peer_stats){ 0 }), -EINVAL);
	CHECK_INT(wg_device_peer_stats(dev, 1, NULL), -EINVAL);
	wg_device_free(dev);
	wg_device_free(NULL);
}

static void test_timer_params(void)
{
	static const struct { double scale; uint64_t rekey_after, reject_after, attempt, timeout,
		keepalive, cookie, jitter; } cases[] = {
		{ 1, 120 * NS, 180 * NS, 90 * NS, 5 * NS, 10 * NS, 120 * NS, 333 * MS },
		{ 0, 120 * NS, 180 * NS, 90 * NS, 5 * NS, 10 * NS, 120 * NS, 333 * MS },
		{ -3, 120 * NS, 180 * NS, 90 * NS, 5 * NS, 10 * NS, 120 * NS, 333 * MS },
		{ 0.02, 2400 * MS, 3600 * MS, 1800 * MS, 100 * MS, 200 * MS, 2400 * MS, 6660000 },
		{ 2, 240 * NS, 360 * NS, 180 * NS, 10 * NS, 20 * NS, 240 * NS, 666 * MS },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wg_timer_params p;

		wg_timer_params_default(&p, cases[i].scale);
		CHECK_INT(p.rekey_after_time, cases[i].rekey_after);
		CHECK_INT(p.reject_after_time, cases[i].reject_after);
		CHECK_INT(p.rekey_attempt_time, cases[i].attempt);
		CHECK_INT(p.rekey_timeout, cases[i].timeout);
		CHECK_INT(p.keepalive_timeout, cases[i].keepalive);
		CHECK_INT(p.cookie_secret_max_age, cases[i].cookie);
		CHECK_INT(p.rekey_timeout_jitter_max, cases[i].jitter);
		CHECK(p.rekey_after_messages == REKEY_AFTER_MESSAGES);
		CHECK(p.reject_after_messages == REJECT_AFTER_MESSAGES);
		CHECK_INT(p.rekey_attempt_time / p.rekey_timeout, MAX_TIMER_HANDSHAKES);
	}
}

static void test_index_table(void)
{
	static struct index_entry e[300];
	struct index_table t;
	size_t n = sizeof(e) / sizeof(e[0]);
	uint32_t old;

	index_table_init(&t);
	for (size_t i = 0; i < n; i++) {
		e[i] = (struct index_entry){ .type = i % 2 ? INDEX_KEYPAIR : INDEX_HANDSHAKE };
		index_table_insert(&t, &e[i]);
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			CHECK(e[i].index != e[j].index);
		CHECK(index_table_lookup(&t, e[i].index, e[i].type) == &e[i]);
		CHECK(!index_table_lookup(&t, e[i].index, ~e[i].type & 3u));
	}
	for (size_t i = 0; i < n; i += 2)
		index_table_remove(&t, &e[i]);
	index_table_remove(&t, &e[0]);  /* twice is harmless */
	for (size_t i = 0; i < n; i++)
		CHECK((index_table_lookup(&t, e[i].index, 3) == &e[i]) == (i % 2 == 1));
	/* a handshake index handed over to a keypair */
	old = e[1].index;
	index_table_replace(&t, &e[1], &e[0]);
	CHECK(index_table_lookup(&t, old, 3) == &e[0]);
	CHECK(!e[1].linked && e[0].linked && e[0].index == old);
	/* re-inserting moves an entry to a fresh index */
	index_table_insert(&t, &e[0]);
	CHECK(!index_table_lookup(&t, old, 3) || e[0].index == old);
	CHECK(index_table_lookup(&t, e[0].index, 3) == &e[0]);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_index_table();
	test_timer_params();
	test_handshake_steps();
	test_data_and_padding();
	test_rekey_after_time();
	test_rekey_after_messages();
	test_initiation_rate_limit();
	test_reject_after_time();
	test_retransmit_and_give_up();
	test_staged_queue_bound();
	test_passive_keepalive();
	test_persistent_keepalive();
	test_new_handshake_after_silence();
	test_zero_key_material();
	test_cookie_under_load();
	test_garbage_flood_is_no_load();
	test_cookie_replies_limited();
	test_mac2_flood_ratelimited();
	test_source_not_allowed();
	test_garbage();
	test_roaming();
	test_duplicate_and_reorder();
	test_receive_on_previous();
	test_lastminute_handshake();
	test_connect_peer();
	test_simultaneous_initiation();
	test_rotation_with_pending_next();
	test_route_two_peers();
	return check_done("device");
}
