/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the WireGuard receive path (wg_device_receive) in every
 * handshake state, with the fuzzer's bytes as hostile datagrams and as a script.
 *
 * Two in-process devices, A (initiator, knows B's endpoint) and B (responder,
 * with a second peer C whose private key only this harness holds), talk through
 * a queue the input drives, on a fake clock. The first byte picks the state the
 * world is built in: no handshake, A's initiation sent, B's response received by
 * A (B's keypair still waits in next), or a confirmed session. Then each record
 * of the input is one step: a raw or forged datagram (with valid macs and a real
 * receiver index when asked, so it gets past the cheap checks), a message made
 * with real keys from the fuzzer's fields (an initiation with its timestamp and
 * index, a response to a pending initiation, a cookie reply over the mac1 last
 * sent, transport data sealed with a live sending key around the fuzzer's
 * plaintext so it reaches the inner-packet checks), or genuine traffic, queue
 * delivery and clock jumps.
 *
 * Oracles, beside ASan and UBSan: a forged datagram never delivers a packet; a
 * delivered packet is exactly its inner IP length and its source belongs to the
 * sender by the receiver's AllowedIPs (computed here independently); for data the
 * harness sealed, exactly the expected fate (delivered, or counted as a bad inner
 * length or a bad source); no data counter is accepted twice under one receiver
 * index (replay, checked from outside); keypair slots and receiver indices stay
 * consistent; and after the input, the two devices still carry a packet each way
 * within a bounded (simulated) time.
 * Randomness is a seeded PRNG installed into libsodium, so every input replays
 * the same way. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "peer.h"

#define NS 1000000000ULL
#define MS 1000000ULL
#define T0 (1000 * NS)
#define QMAX 256
#define MAX_RECORDS 48
#define PROBE_SECONDS 400       /* past REKEY_ATTEMPT_TIME plus a silence to notice */
#define SEEN_MAX 4096           /* data counters remembered as accepted, per input */
#define BIG_MAX (WG_MAX_MESSAGE + 64) /* datagrams up to and past the largest accepted */
#define P_BIG 0x80              /* a data record's pick byte: the body, repeated, sets the size */

/* C: B's second peer, no device, the harness holds its key; D: a key nobody knows. */
enum { A, B, C, D, N_IDS };
enum { NOBODY = -1 };

enum kind {
	K_RAW, K_INIT_FORGED, K_INIT_REAL, K_RESP_FORGED, K_RESP_REAL, K_COOKIE_FORGED,
	K_COOKIE_REAL, K_DATA_FORGED, K_DATA_REAL, K_SEND, K_PUMP, K_CLOCK, K_CONNECT, K_FLOOD,
	N_KINDS
};

#define F_OTHER_SRC 0x20        /* forged: a stranger's address; real: the sender's second one */
#define F_MACS 0x40             /* forged handshakes get valid macs; real data: absolute counter */
#define F_INDEX 0x80            /* forged: a receiver index the target really holds */

/* The first byte: the state (low two bits) and options of the world. */
#define S_KEEPALIVE 0x04        /* A has PersistentKeepalive = 25 */
#define S_B_KNOWS_A 0x08        /* B has an Endpoint for A */
#define S_PSK 0x10              /* A and B share a PresharedKey */
#define S_SCALED 0x20           /* protocol times scaled by 0.02 (TUNSHIM_TIMER_SCALE) */

struct dgram {
	int to, sender;         /* sender: whose keys made it, NOBODY when forged */
	struct sockaddr_storage src;
	uint8_t *data;
	size_t len;
};

struct world {
	uint64_t now;
	uint8_t priv[N_IDS][32], pub[N_IDS][32];
	struct noise_static_identity id[N_IDS];
	struct sockaddr_storage addr[N_IDS], alt[N_IDS], stranger4, stranger6;
	struct wg_device *dev[2];
	struct wg_config cfg[2];
	struct wg_peer_config pc[2][2];
	struct wg_prefix ips[2][2][3];
	struct sockaddr_storage ep[2][2];
	uint8_t psk[32];
	const uint8_t *hs_psk;  /* what the harness's own handshakes use: psk or NULL */
	int events[2];
	struct dgram q[QMAX];
	size_t qn;
	int receiving_from;     /* who sealed the datagram being received */
	int target;             /* the device being fed */
	uint8_t last_init[2][MESSAGE_INITIATION_LEN]; /* each device's latest initiation */
	bool have_init[2];
	int delivered[2];
	struct seen { uint64_t counter; uint32_t index; uint8_t dev, used; } seen[SEEN_MAX];
	size_t n_seen;
	uint8_t probe[2][64];
	size_t probe_len[2];
	bool probe_seen[2];
};

static struct world W;
static bool trace;              /* FUZZ_TRACE=1: say what each input does, on stderr */

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_receive: invariant broken: %s\n", what);
	abort();
}

/* ---- deterministic randomness: the same input always runs the same way ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const char *rng_name(void)
{
	return "fuzz-splitmix";
}

static uint32_t rng_random(void)
{
	return (uint32_t)rng_next();
}

static void rng_buf(void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng_next();
}

static struct randombytes_implementation rng_impl = {
	.implementation_name = rng_name, .random = rng_random, .buf = rng_buf,
};

/* ---- the fake environment ---- */

static uint64_t fake_now(void *ctx)
{
	(void)ctx;
	return W.now;
}

/* TAI64N of Unix time 1.7e9 plus t, nanoseconds rounded as wireguard-go does. */
static void tai_at(uint64_t t, uint8_t out[12])
{
	uint64_t sec = htobe64(0x400000000000000aULL + 1700000000ULL + t / NS);
	uint32_t nsec = htobe32((uint32_t)(t % NS) & ~((1U << 24) - 1));

	memcpy(out, &sec, 8);
	memcpy(out + 8, &nsec, 4);
}

static void fake_tai64n(void *ctx, uint8_t out[12])
{
	(void)ctx;
	tai_at(W.now, out);
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET)
		return !memcmp(a, b, sizeof(struct sockaddr_in));
	return !memcmp(a, b, sizeof(struct sockaddr_in6));
}

static int node_at(const struct sockaddr *dst)
{
	for (int i = A; i <= B; i++)
		if (same_addr(dst, &W.addr[i]) || same_addr(dst, &W.alt[i]))
			return i;
	return NOBODY;
}

static uint32_t msg_type(const uint8_t *buf, size_t len)
{
	uint32_t t = 0;

	if (len >= 4)
		memcpy(&t, buf, 4);
	return le32toh(t);
}

static void enqueue(int to, int sender, const struct sockaddr_storage *src, const uint8_t *buf,
		    size_t len)
{
	struct dgram *d;

	if (W.qn == QMAX)
		return;         /* lost, as on a real network */
	d = &W.q[W.qn++];
	d->to = to;
	d->sender = sender;
	d->src = *src;
	d->data = malloc(len ? len : 1);
	if (len)
		memcpy(d->data, buf, len);
	d->len = len;
}

static int fake_send(void *ctx, const struct sockaddr *dst, socklen_t dstlen,
		     const uint8_t *buf, size_t len)
{
	int from = (int)(intptr_t)ctx, to = node_at(dst);

	if (dstlen < sizeof(struct sockaddr_in))
		fail("send_udp with a short address");
	if (msg_type(buf, len) == MESSAGE_INITIATION && len == MESSAGE_INITIATION_LEN) {
		memcpy(W.last_init[from], buf, len);
		W.have_init[from] = true;
	}
	if (to != NOBODY)
		enqueue(to, from, &W.addr[from], buf, len);
	return 0;
}

static void fake_event(void *ctx, int peer, int event)
{
	int dev = (int)(intptr_t)ctx;

	if (peer < 0 || (size_t)peer >= W.cfg[dev].n_peers ||
	    (event != WG_PEER_HANDSHAKE_DONE && event != WG_PEER_HANDSHAKE_FAILED))
		fail("a peer event for no peer, or of no known kind");
	W.events[dev]++;
}

/* ---- the AllowedIPs oracle: longest prefix over the receiver's peers ---- */

static bool prefix_has(const struct wg_prefix *p, int family, const uint8_t *a)
{
	unsigned bits = p->cidr;

	if (p->ip.family != family)
		return false;
	for (unsigned i = 0; bits; i++, bits = bits > 8 ? bits - 8 : 0) {
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

		if ((p->ip.addr[i] ^ a[i]) & mask)
			return false;
	}
	return true;
}

/* Which of dev's peers (by the identity it names) owns source a; NOBODY when none. */
static int owner_of(int dev, int family, const uint8_t *a)
{
	int best = NOBODY, best_cidr = -1;

	for (size_t i = 0; i < W.cfg[dev].n_peers; i++)
		for (size_t j = 0; j < W.pc[dev][i].n_allowed_ips; j++) {
			const struct wg_prefix *p = &W.pc[dev][i].allowed_ips[j];

			if (prefix_has(p, family, a) && p->cidr > best_cidr) {
				best_cidr = p->cidr;
				best = dev == A ? B : (i == 0 ? A : C);
			}
		}
	return best;
}

static size_t ip_len(const uint8_t *pkt, size_t len)
{
	if (len >= 20 && pkt[0] >> 4 == 4)
		return (size_t)pkt[2] << 8 | pkt[3];
	if (len >= 40 && pkt[0] >> 4 == 6)
		return ((size_t)pkt[4] << 8 | pkt[5]) + 40;
	return 0;
}

static void fake_deliver(void *ctx, const uint8_t *pkt, size_t len)
{
	int dev = (int)(intptr_t)ctx, family;

	if (W.receiving_from == NOBODY)
		fail("a forged datagram delivered a packet");
	if (len < 20 || ip_len(pkt, len) != len)
		fail("a delivered packet is not exactly its IP length");
	family = pkt[0] >> 4 == 4 ? AF_INET : AF_INET6;
	if (owner_of(dev, family, family == AF_INET ? pkt + 12 : pkt + 8) != W.receiving_from)
		fail("a delivered packet's source is outside its sender's AllowedIPs");
	W.delivered[dev]++;
	if (len == W.probe_len[dev] && !memcmp(pkt, W.probe[dev], len))
		W.probe_seen[dev] = true;
	else if (trace)
		fprintf(stderr, "  %c delivered %zu bytes\n", "AB"[dev], len);
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
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		inet_pton(AF_INET, ip, &in->sin_addr);
	}
}

static void peer_config(struct wg_peer_config *pc, int who, struct wg_prefix *ips,
			const char *const *nets, const uint8_t *cidrs, size_t n)
{
	memcpy(pc->public_key, W.pub[who], 32);
	for (size_t i = 0; i < n; i++)
		ips[i] = prefix(nets[i], cidrs[i]);
	pc->allowed_ips = ips;
	pc->n_allowed_ips = n;
}

static void configs(uint8_t opts)
{
	static const char *const a_b[] = { "10.0.0.2", "10.9.0.0", "fd00::2" };
	static const uint8_t a_b_c[] = { 32, 16, 128 };
	static const char *const b_a[] = { "10.0.0.1", "fd00::1" };
	static const uint8_t b_a_c[] = { 32, 128 };
	static const char *const b_c[] = { "10.0.0.0", "fd00::" };
	static const uint8_t b_c_c[] = { 24, 64 };

	peer_config(&W.pc[A][0], B, W.ips[A][0], a_b, a_b_c, 3);
	peer_config(&W.pc[B][0], A, W.ips[B][0], b_a, b_a_c, 2);
	peer_config(&W.pc[B][1], C, W.ips[B][1], b_c, b_c_c, 2);
	W.ep[A][0] = W.addr[B];
	if (opts & S_B_KNOWS_A)
		W.ep[B][0] = W.addr[A];
	if (opts & S_KEEPALIVE)
		W.pc[A][0].persistent_keepalive = 25;
	if (opts & S_PSK) {
		memset(W.psk, 0x5c, sizeof(W.psk));
		W.hs_psk = W.psk;
		for (int d = A; d <= B; d++) {
			W.pc[d][0].preshared_key = W.psk;
			W.pc[d][0].has_preshared_key = true;
		}
	}
	for (int d = A; d <= B; d++) {
		W.cfg[d].private_key = W.priv[d];
		memcpy(W.cfg[d].public_key, W.pub[d], 32);
		W.cfg[d].mtu = 1420;
		W.cfg[d].peers = W.pc[d];
		W.cfg[d].n_peers = d == A ? 1 : 2;
	}
}

static void world_init(uint8_t opts)
{
	struct wg_timer_params tp;

	memset(&W, 0, sizeof(W));
	W.now = T0;
	W.receiving_from = NOBODY;
	for (int i = 0; i < N_IDS; i++) {
		memset(W.priv[i], 0x11 * (i + 1), 32);
		crypto_scalarmult_base(W.pub[i], W.priv[i]);
		noise_identity_init(&W.id[i], W.priv[i]);
	}
	set_addr(&W.addr[A], "192.0.2.1", 1001);
	set_addr(&W.addr[B], "192.0.2.2", 1002);
	set_addr(&W.addr[C], "192.0.2.3", 1003);
	set_addr(&W.alt[A], "198.51.100.1", 2001);
	set_addr(&W.alt[B], "2001:db8::2", 2002);
	set_addr(&W.alt[C], "198.51.100.3", 2003);
	set_addr(&W.stranger4, "203.0.113.9", 9);
	set_addr(&W.stranger6, "2001:db8::9", 9);
	configs(opts);
	wg_timer_params_default(&tp, opts & S_SCALED ? 0.02 : 1);
	for (int d = A; d <= B; d++) {
		struct wg_device_ops ops = { .ctx = (void *)(intptr_t)d, .send_udp = fake_send,
					     .deliver = fake_deliver, .now = fake_now,
					     .tai64n = fake_tai64n, .peer_event = fake_event };

		W.dev[d] = wg_device_new(&W.cfg[d], W.ep[d], &tp, &ops);
		if (!W.dev[d])
			fail("wg_device_new");
	}
}

static void world_free(void)
{
	for (size_t i = 0; i < W.qn; i++)
		free(W.q[i].data);
	W.qn = 0;
	wg_device_free(W.dev[A]);
	wg_device_free(W.dev[B]);
}

/* ---- the replay oracle: what was accepted, seen from outside ---- */

static uint64_t rx_bytes(int dev)
{
	uint64_t n = 0;

	for (size_t i = 0; i < W.dev[dev]->n_peers; i++)
		n += W.dev[dev]->peers[i].stats.rx_bytes;
	return n;
}

static struct seen *seen_slot(int dev, uint32_t index, uint64_t counter)
{
	size_t h = (size_t)((counter * 0x9e3779b97f4a7c15ULL) ^ index ^ (uint64_t)dev << 40);

	for (size_t i = 0; i < SEEN_MAX; i++) {
		struct seen *e = &W.seen[(h + i) % SEEN_MAX];

		if (!e->used || (e->dev == dev && e->index == index && e->counter == counter))
			return e;
	}
	return NULL;
}

/* A data message that dev accepted (its peers' rx_bytes moved). */
static void data_accepted(int dev, const uint8_t *buf)
{
	uint32_t index;
	uint64_t counter;
	struct seen *e;

	memcpy(&index, buf + 4, 4);
	memcpy(&counter, buf + 8, 8);
	e = seen_slot(dev, index, counter);
	if (!e || W.n_seen >= SEEN_MAX / 2)
		return;         /* enough remembered for one input */
	if (e->used)
		fail("a data counter accepted twice under one receiver index");
	*e = (struct seen){ counter, index, (uint8_t)dev, 1 };
	W.n_seen++;
}

/* ---- the network ---- */

static void receive(int to, int sender, const struct sockaddr_storage *src, const uint8_t *buf,
		    size_t len)
{
	socklen_t slen = src->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
						     sizeof(struct sockaddr_in6);

	bool data = len >= MESSAGE_MINIMUM_LEN && msg_type(buf, len) == MESSAGE_DATA;
	uint64_t before = data ? rx_bytes(to) : 0;

	W.receiving_from = sender;
	W.target = to;
	wg_device_receive(W.dev[to], buf, len, (const struct sockaddr *)src, slen);
	W.receiving_from = NOBODY;
	if (data && rx_bytes(to) != before)
		data_accepted(to, buf);
}

/* Delivers (or drops, by the mask's bits) the oldest queued datagram. */
static bool pump_one(bool deliver)
{
	struct dgram d;

	if (!W.qn)
		return false;
	d = W.q[0];
	memmove(W.q, W.q + 1, --W.qn * sizeof(W.q[0]));
	if (deliver)
		receive(d.to, d.sender, &d.src, d.data, d.len);
	free(d.data);
	return true;
}

static void pump_all(void)
{
	for (int guard = 0; guard < 4096 && pump_one(true); guard++)
		;
}

/* Runs every timer due up to target, carrying what they send. */
static void run_until(uint64_t target)
{
	for (int guard = 0; guard < 10000; guard++) {
		uint64_t a, b, next;

		pump_all();
		a = wg_device_tick(W.dev[A]);
		b = wg_device_tick(W.dev[B]);
		pump_all();
		next = a < b ? a : b;
		if (next > target)
			break;
		W.now = next > W.now ? next : W.now + 1;
	}
	W.now = target > W.now ? target : W.now;
}

/* ---- the states an input starts from ---- */

static bool take_queued(int to, uint32_t type, bool deliver)
{
	for (size_t i = 0; i < W.qn; i++) {
		struct dgram d = W.q[i];

		if (d.to != to || msg_type(d.data, d.len) != type)
			continue;
		memmove(W.q + i, W.q + i + 1, (--W.qn - i) * sizeof(W.q[0]));
		if (deliver)
			receive(d.to, d.sender, &d.src, d.data, d.len);
		free(d.data);
		return true;
	}
	return false;
}

/* 0: nothing yet; 1: A's initiation in flight; 2: A has the session, B's keypair
 * waits in next (A's confirming keepalive lost); 3: a confirmed session. */
static void build_state(uint8_t opts)
{
	int state = opts & 3;

	world_init(opts);
	if (state == 0)
		return;
	wg_device_connect_peer(W.dev[A], 0);
	if (state == 1)
		return;
	if (!take_queued(B, MESSAGE_INITIATION, true) || !take_queued(A, MESSAGE_RESPONSE, true))
		fail("the handshake did not run");
	take_queued(B, MESSAGE_DATA, state == 3);
	if (state == 3 && !wg_device_peer_has_session(W.dev[B], 0))
		fail("no session after the handshake");
}

/* ---- the input, read as records ---- */

struct reader {
	const uint8_t *p;
	size_t n;
};

static uint8_t rd8(struct reader *r)
{
	uint8_t v = 0;

	if (r->n) {
		v = *r->p++;
		r->n--;
	}
	return v;
}

static uint64_t rdn(struct reader *r, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)rd8(r) << (8 * i);
	return v;
}

/* Copies up to cap bytes of the rest into out (zero-filled); returns how many. */
static size_t rdbuf(struct reader *r, uint8_t *out, size_t cap)
{
	size_t n = r->n < cap ? r->n : cap;

	memset(out, 0, cap);
	memcpy(out, r->p, n);
	r->p += n;
	r->n -= n;
	return n;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

/* XORs the body over msg (from offset 4: the type word stays), so the fuzzer
 * corrupts a real message where it likes; an empty body leaves it intact. */
static void overlay(uint8_t *msg, size_t len, const struct reader *body)
{
	for (size_t i = 0; i < body->n && 4 + i < len; i++)
		msg[4 + i] ^= body->p[i];
}

static struct wg_peer *peer_of(int dev, int who)
{
	if (dev == A)
		return who == B ? &W.dev[A]->peers[0] : NULL;
	return who == A ? &W.dev[B]->peers[0] : who == C ? &W.dev[B]->peers[1] : NULL;
}

/* The other party a target device talks to: A's only peer is B; B hears A or C. */
static int sender_for(int target, uint8_t pick)
{
	return target == A ? B : (pick & 1 ? C : A);
}

/* A receiver index the target really holds: a handshake or one of its keypairs. */
static uint32_t real_index(int target, uint8_t pick)
{
	struct wg_peer *p = &W.dev[target]->peers[pick % W.dev[target]->n_peers];
	struct wg_keypair *kps[] = { p->current, p->previous, p->next };
	struct wg_keypair *kp = kps[(pick >> 1) % 3];

	if ((pick & 0x10) || !kp)
		return p->handshake_entry.index;
	return kp->entry.index;
}

static void add_macs(int target, uint8_t *msg, size_t len)
{
	struct cookie_maker m;

	cookie_maker_init(&m, W.pub[target]);
	cookie_add_macs(&m, msg, len, W.now);
}

static const struct sockaddr_storage *src_for(int sender, bool other, bool forged, uint8_t pick)
{
	if (sender == D)
		return &W.stranger4;
	if (forged)
		return other ? (pick & 1 ? &W.stranger6 : &W.stranger4) : &W.addr[sender];
	return other ? &W.alt[sender] : &W.addr[sender];
}

/* The body as it is; with F_INDEX from no source address at all. */
static void raw(int target, uint8_t flags, const struct reader *body)
{
	uint8_t pick = body->n ? body->p[0] : 0;

	if (flags & F_INDEX) {
		wg_device_receive(W.dev[target], body->p, body->n, NULL, 0);
		return;
	}
	receive(target, NOBODY, src_for(sender_for(target, pick), flags & F_OTHER_SRC, true, pick),
		body->p, body->n);
}

static void forged_cookie(int target, uint8_t flags, struct reader *body)
{
	uint8_t msg[MESSAGE_COOKIE_REPLY_LEN], pick = body->n ? body->p[0] : 0;

	rdbuf(body, msg, sizeof(msg));
	put_le32(msg, MESSAGE_COOKIE_REPLY);
	if (flags & F_INDEX)
		put_le32(msg + 4, real_index(target, pick));
	receive(target, NOBODY, src_for(sender_for(target, pick), flags & F_OTHER_SRC, true, pick),
		msg, sizeof(msg));
}

static void forged_handshake(int target, uint8_t flags, uint32_t type, size_t len,
			     struct reader *body)
{
	uint8_t msg[MESSAGE_INITIATION_LEN], pick = body->n ? body->p[0] : 0;

	rdbuf(body, msg, len);
	put_le32(msg, type);
	if ((flags & F_INDEX) && type == MESSAGE_RESPONSE)
		put_le32(msg + 8, real_index(target, pick | 0x10));
	if (flags & F_MACS)
		add_macs(target, msg, len);
	receive(target, NOBODY, src_for(sender_for(target, pick), flags & F_OTHER_SRC, true, pick),
		msg, len);
}

/* An initiation made with the sender's real static key, with the fuzzer's sender
 * index and a timestamp no later than now (so the real sender's next one is still
 * newer: the harness may not take the peer's clock away from it). */
static void real_initiation(int target, uint8_t flags, struct reader *body)
{
	uint8_t pick = rd8(body), ts[NOISE_TIMESTAMP_LEN];
	int sender = pick & 2 ? D : sender_for(target, pick);
	uint32_t index = (uint32_t)rdn(body, 4);
	uint64_t back = rdn(body, 2) * 20 * MS;
	struct noise_handshake hs;
	struct msg_initiation msg;

	if (noise_handshake_init(&hs, &W.id[sender], W.pub[target], W.hs_psk))
		return;
	tai_at(back < W.now ? W.now - back : 0, ts);
	if (noise_create_initiation(&hs, &W.id[sender], index, ts, &msg) == 0) {
		overlay((uint8_t *)&msg, sizeof(msg), body);
		add_macs(target, (uint8_t *)&msg, sizeof(msg));
		receive(target, NOBODY, src_for(sender, flags & F_OTHER_SRC, false, pick),
			(uint8_t *)&msg, sizeof(msg));
	}
	sodium_memzero(&hs, sizeof(hs));
}

/* A response to the target's latest initiation, made with its peer's real key:
 * the harness plays the responder. */
static void real_response(int target, uint8_t flags, struct reader *body)
{
	int sender = target == A ? B : A;
	uint32_t index = (uint32_t)rdn(body, 4);
	struct noise_initiation_result r;
	struct noise_handshake hs;
	struct msg_response msg;

	if (!W.have_init[target] ||
	    noise_consume_initiation(&W.id[sender], (const void *)W.last_init[target], &r))
		return;
	if (!noise_handshake_init(&hs, &W.id[sender], W.pub[target], W.hs_psk) &&
	    !noise_accept_initiation(&hs, &r, W.now) && !noise_create_response(&hs, index, &msg)) {
		overlay((uint8_t *)&msg, sizeof(msg), body);
		add_macs(target, (uint8_t *)&msg, sizeof(msg));
		receive(target, NOBODY, src_for(sender, flags & F_OTHER_SRC, false, 0),
			(uint8_t *)&msg, sizeof(msg));
	}
	sodium_memzero(&hs, sizeof(hs));
	sodium_memzero(&r, sizeof(r));
}

/* A cookie reply as the target's peer would make it for the mac1 the target last
 * sent, for a source address the fuzzer picks. */
static void real_cookie(int target, uint8_t flags, struct reader *body)
{
	uint8_t pick = rd8(body), src[18], msg[MESSAGE_INITIATION_LEN] = { 0 };
	int sender = sender_for(target, pick);
	struct wg_peer *p = peer_of(target, sender);
	struct msg_cookie_reply reply;
	struct cookie_checker checker;

	if (!p || !p->cookie.have_sent_mac1)
		return;
	rdbuf(body, src, (size_t)(pick & 2 ? 18 : 6));
	memcpy(msg + sizeof(msg) - 2 * COOKIE_LEN, p->cookie.last_mac1_sent, COOKIE_LEN);
	cookie_checker_init(&checker, W.pub[sender]);
	cookie_create_reply(&checker, &reply, msg, sizeof(msg), real_index(target, pick >> 2),
			    src, pick & 2 ? 18 : 6, W.now);
	receive(target, NOBODY, src_for(sender, flags & F_OTHER_SRC, false, pick),
		(uint8_t *)&reply, sizeof(reply));
	sodium_memzero(&checker, sizeof(checker));
}

/* A data message under an index the fuzzer or the target picks, its counter and
 * "ciphertext" from the body. */
/* With P_BIG, the next two bytes give the size and the rest of the body is
 * repeated to fill it: sizes around WG_MAX_MESSAGE, which no input is long
 * enough to spell out. Returns the length of out. */
static size_t fill(uint8_t pick, struct reader *body, uint8_t *out, size_t small_cap)
{
	size_t len;

	if (!(pick & P_BIG))
		return rdbuf(body, out, small_cap);
	len = (size_t)rdn(body, 2) + (pick & 0x40 ? 0x10000 - 256 : 0);
	if (len > BIG_MAX - 64)
		len = BIG_MAX - 64;
	for (size_t i = 0; i < len; i++)
		out[i] = body->n ? body->p[i % body->n] : 0;
	body->n = 0;
	return len;
}

static void forged_data(int target, uint8_t flags, struct reader *body)
{
	static uint8_t msg[BIG_MAX];
	uint8_t pick = body->n ? body->p[0] : 0;
	size_t len = 8 + fill(pick, body, msg + 8, 1 << 12);

	put_le32(msg, MESSAGE_DATA);
	put_le32(msg + 4, flags & F_INDEX ? real_index(target, pick) : (uint32_t)rng_next());
	receive(target, NOBODY, src_for(sender_for(target, pick), flags & F_OTHER_SRC, true, pick),
		msg, len < MESSAGE_MINIMUM_LEN ? MESSAGE_MINIMUM_LEN : len);
}

/* What the receiver must make of an opened plaintext, by the kernel's rules: a
 * keepalive, no IP packet (its own length under its header or past what came),
 * a source outside the sender's AllowedIPs, or a delivery. */
enum inner_verdict { V_KEEPALIVE, V_BAD_INNER, V_BAD_SOURCE, V_DELIVER };

static enum inner_verdict expected(int dev, int sender, const uint8_t *p, size_t len)
{
	size_t n;

	if (!len)
		return V_KEEPALIVE;
	if (len >= 20 && p[0] >> 4 == 4) {
		n = (size_t)p[2] << 8 | p[3];
		if (n < 20 || n > len)
			return V_BAD_INNER;
		return owner_of(dev, AF_INET, p + 12) == sender ? V_DELIVER : V_BAD_SOURCE;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		n = ((size_t)p[4] << 8 | p[5]) + 40;
		if (n > len)
			return V_BAD_INNER;
		return owner_of(dev, AF_INET6, p + 8) == sender ? V_DELIVER : V_BAD_SOURCE;
	}
	return V_BAD_INNER;
}

/* After an accepted message: exactly the expected one of the outcomes happened. */
static void check_verdict(enum inner_verdict v, const struct wg_peer_stats *before,
			  const struct wg_peer_stats *after, int delivered)
{
	uint64_t bad_inner = after->rx_bad_inner - before->rx_bad_inner;
	uint64_t bad_source = after->rx_bad_source - before->rx_bad_source;

	if (bad_inner != (v == V_BAD_INNER) || bad_source != (v == V_BAD_SOURCE) ||
	    delivered != (v == V_DELIVER))
		fail("an opened packet's fate (delivered, or counted as a bad inner length "
		     "or a bad source) is not the expected one");
}

/* Transport data sealed with one of the sender's live keypairs around the
 * fuzzer's plaintext, at a counter it picks (near the sender's own, or anywhere
 * with F_MACS). The real sender then moves past every counter used here, so a
 * legitimate packet is never taken for a replay of the harness's. */
static void real_data(int target, uint8_t flags, struct reader *body)
{
	static uint8_t plain[BIG_MAX], msg[sizeof(plain) + 32];
	uint8_t pick = rd8(body);
	int sender = target == A ? B : A;
	struct wg_peer *p = peer_of(sender, target), *rx;
	struct wg_keypair *kps[] = { p->current, p->previous, p->next };
	struct wg_keypair *kp = kps[pick % 3];
	struct wg_peer_stats before;
	struct noise_keypair copy;
	int delivered;
	uint64_t counter;
	size_t len;
	ssize_t n;

	if (!kp)
		return;
	counter = flags & F_MACS ? rdn(body, 8) :
		kp->kp.send_counter + (uint64_t)(int64_t)(int16_t)rdn(body, 2);
	len = fill(pick, body, plain, body->n < (1 << 12) ? body->n : 1 << 12);
	copy = kp->kp;
	copy.send_counter = counter;
	n = noise_seal_data(&copy, msg, plain, len);
	sodium_memzero(&copy, sizeof(copy));
	if (n < 0)
		return;
	if (counter >= kp->kp.send_counter)
		kp->kp.send_counter = counter + 1;
	rx = peer_of(target, sender);
	before = rx->stats;
	delivered = W.delivered[target];
	receive(target, sender, src_for(sender, flags & F_OTHER_SRC, false, pick), msg, (size_t)n);
	if (rx->stats.rx_bytes != before.rx_bytes)
		check_verdict(expected(target, sender, plain, len), &before, &rx->stats,
			      W.delivered[target] - delivered);
	else if (W.delivered[target] != delivered ||
		 rx->stats.rx_bad_inner != before.rx_bad_inner ||
		 rx->stats.rx_bad_source != before.rx_bad_source)
		fail("a message that was not accepted still counted or delivered");
}

static void send_inner(int dev, struct reader *body)
{
	static uint8_t pkt[1 << 12];
	size_t len = rdbuf(body, pkt, sizeof(pkt));

	wg_device_send(W.dev[dev], pkt, len);
}

/* Carries queued datagrams in order; the mask's clear bits drop them. */
static void pump_masked(struct reader *body)
{
	uint32_t mask = (uint32_t)rdn(body, 4);

	for (int i = 0; i < 32 && pump_one(mask >> i & 1); i++)
		;
}

/* Moves the clock (ms, s or minutes), running every timer due on the way; what
 * they send waits in the queue (or is lost when it is full). */
static void advance(struct reader *body)
{
	static const uint64_t unit[] = { MS, NS, 60 * NS, 10 * MS };
	uint8_t u = rd8(body);
	uint64_t target = W.now + rdn(body, 1) * unit[u & 3];

	for (int guard = 0; guard < 1000; guard++) {
		uint64_t a = wg_device_tick(W.dev[A]), b = wg_device_tick(W.dev[B]);
		uint64_t next = a < b ? a : b;

		if (next > target)
			break;
		W.now = next > W.now ? next : W.now + 1;
	}
	W.now = target;
	wg_device_tick(W.dev[A]);
	wg_device_tick(W.dev[B]);
}

/* Many forged initiations with valid mac1, from one source or from up to 256
 * (IPv4 hosts and IPv6 /64s, as the rate limiters key them): the handshake load
 * the under-load rule counts, and sources for the limiters' tables. */
static void flood(int target, struct reader *body)
{
	uint8_t msg[MESSAGE_INITIATION_LEN] = { 0 }, n = rd8(body), spread = rd8(body);
	struct sockaddr_storage src;

	rdbuf(body, msg, sizeof(msg));
	put_le32(msg, MESSAGE_INITIATION);
	add_macs(target, msg, sizeof(msg));
	for (unsigned i = 0; i <= n; i++) {
		uint8_t host = (uint8_t)(spread & 0x80 ? i + spread : spread);

		src = spread & 1 ? W.stranger6 : W.stranger4;
		if (src.ss_family == AF_INET)
			((uint8_t *)&((struct sockaddr_in *)&src)->sin_addr)[3] = host;
		else
			((struct sockaddr_in6 *)&src)->sin6_addr.s6_addr[7] = host;
		receive(target, NOBODY, &src, msg, sizeof(msg));
	}
}

static void record(uint8_t h, struct reader *body)
{
	int target = h & 0x10 ? B : A;
	uint8_t flags = h & 0xe0;

	if (trace)
		fprintf(stderr, "record kind %d to %c flags %#x, %zu bytes\n", (h & 0x0f) % N_KINDS,
			"AB"[target], flags, body->n);
	switch ((h & 0x0f) % N_KINDS) {
	case K_RAW: raw(target, flags, body); break;
	case K_INIT_FORGED:
		forged_handshake(target, flags, MESSAGE_INITIATION, MESSAGE_INITIATION_LEN, body);
		break;
	case K_INIT_REAL: real_initiation(target, flags, body); break;
	case K_RESP_FORGED:
		forged_handshake(target, flags, MESSAGE_RESPONSE, MESSAGE_RESPONSE_LEN, body);
		break;
	case K_RESP_REAL: real_response(target, flags, body); break;
	case K_COOKIE_FORGED: forged_cookie(target, flags, body); break;
	case K_COOKIE_REAL: real_cookie(target, flags, body); break;
	case K_DATA_FORGED: forged_data(target, flags, body); break;
	case K_DATA_REAL: real_data(target, flags, body); break;
	case K_SEND: send_inner(target, body); break;
	case K_PUMP: pump_masked(body); break;
	case K_CLOCK: advance(body); break;
	case K_CONNECT: wg_device_connect_peer(W.dev[target], (int)rd8(body) % 3 - 1); break;
	case K_FLOOD: flood(target, body); break;
	}
}

/* ---- invariants ---- */

static void check_keypair(struct wg_device *dev, struct wg_peer *p, struct wg_keypair *kp)
{
	if (!kp)
		return;
	if (kp < p->slots || kp >= p->slots + WG_KEYPAIR_SLOTS || !kp->in_use)
		fail("a keypair pointer outside the peer's slots, or on a free slot");
	if (!kp->entry.linked ||
	    index_table_lookup(&dev->index_table, kp->entry.index, INDEX_KEYPAIR) != &kp->entry)
		fail("a keypair's receiver index does not lead back to it");
}

static void check_consistent(void)
{
	for (int d = A; d <= B; d++) {
		struct wg_device *dev = W.dev[d];

		for (size_t i = 0; i < dev->n_peers; i++) {
			struct wg_peer *p = &dev->peers[i];

			if ((p->current && (p->current == p->previous || p->current == p->next)) ||
			    (p->previous && p->previous == p->next))
				fail("one keypair in two places");
			check_keypair(dev, p, p->current);
			check_keypair(dev, p, p->previous);
			check_keypair(dev, p, p->next);
			if (p->staged_count > WG_MAX_STAGED_PACKETS)
				fail("staged queue past its bound");
			if (p->handshake_entry.linked &&
			    index_table_lookup(&dev->index_table, p->handshake_entry.index,
					       INDEX_HANDSHAKE) != &p->handshake_entry)
				fail("a handshake's receiver index does not lead back to it");
		}
	}
}

static size_t probe_packet(uint8_t *buf, int from, uint32_t seq)
{
	static const char *const src[] = { "10.0.0.1", "10.0.0.2" };

	memset(buf, 0, 48);
	buf[0] = 0x45;
	buf[3] = 48;
	buf[8] = 64;
	buf[9] = 17;
	inet_pton(AF_INET, src[from], buf + 12);
	inet_pton(AF_INET, src[!from], buf + 16);
	memcpy(buf + 28, &seq, 4);
	return 48;
}

/* Whatever the input did, real traffic gets through both ways in bounded time:
 * a probe a simulated second from each side until each side has one. */
static void check_still_works(void)
{
	uint64_t start = W.now;

	for (uint32_t s = 0; s < PROBE_SECONDS && !(W.probe_seen[A] && W.probe_seen[B]); s++) {
		for (int from = A; from <= B; from++) {
			int to = !from;

			if (W.probe_seen[to])
				continue;
			W.probe_len[to] = probe_packet(W.probe[to], from, s);
			wg_device_send(W.dev[from], W.probe[to], W.probe_len[to]);
		}
		run_until(W.now + NS);
	}
	if (trace)
		fprintf(stderr, "probes through after %.1f s\n", (double)(W.now - start) / NS);
	if (!W.probe_seen[B])
		fail("A's packets no longer reach B");
	if (!W.probe_seen[A])
		fail("B's packets no longer reach A");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	randombytes_set_implementation(&rng_impl);
	trace = getenv("FUZZ_TRACE") != NULL;
	return sodium_init() < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader in = { data, size };

	rng_state = 0x5eed;
	build_state(rd8(&in));
	for (int i = 0; i < MAX_RECORDS && in.n; i++) {
		uint8_t h = rd8(&in);
		struct reader body;

		body.n = rdn(&in, 2);
		body.p = in.p;
		if (body.n > in.n)
			body.n = in.n;
		in.p += body.n;
		in.n -= body.n;
		record(h, &body);
		check_consistent();
	}
	pump_all();
	check_consistent();
	check_still_works();
	world_free();
	return 0;
}
