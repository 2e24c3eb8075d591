/* SPDX-License-Identifier: MIT */
/* AllowedIPs: tables of prefixes and lookups with exact answers, then a
 * randomized cross-check against a linear longest-prefix search. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "allowedips.h"
#include "check.h"

static char peers[16];
#define P(i) ((void *)&peers[i])
#define NONE (-1)

struct route {
	const char *addr;
	uint8_t cidr;
	int peer;
};

struct probe {
	const char *addr;
	int peer;               /* index into peers, or NONE */
};

static int family_of(const char *addr)
{
	return strchr(addr, ':') ? AF_INET6 : AF_INET;
}

static void parse(const char *addr, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(family_of(addr), addr, out) != 1) {
		fprintf(stderr, "test bug: bad address %s\n", addr);
		abort();
	}
}

static int insert(struct allowedips *t, const char *addr, uint8_t cidr, void *peer)
{
	uint8_t a[16];

	parse(addr, a);
	return allowedips_insert(t, family_of(addr), a, cidr, peer);
}

static void *lookup(const struct allowedips *t, const char *addr)
{
	uint8_t a[16];

	parse(addr, a);
	return allowedips_lookup(t, family_of(addr), a);
}

static int peer_index(void *peer)
{
	return peer ? (int)((char *)peer - peers) : NONE;
}

static void insert_all(struct allowedips *t, const struct route *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		CHECK_INT(insert(t, r[i].addr, r[i].cidr, P(r[i].peer)), 0);
}

static void probe_all(const struct allowedips *t, const struct probe *p, size_t n,
		      const char *what)
{
	size_t i;
	int got;

	for (i = 0; i < n; i++) {
		got = peer_index(lookup(t, p[i].addr));
		if (got != p[i].peer)
			fprintf(stderr, "%s: lookup %s: expected peer %d, got %d\n", what,
				p[i].addr, p[i].peer, got);
		CHECK_INT(got, p[i].peer);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum { A, B, C, D, E, F, G, H };

static const struct route overlap_routes[] = {
	{ "10.0.0.0", 8, A },
	{ "10.1.0.0", 16, B },
	{ "10.1.2.3", 32, C },
	{ "192.168.0.0", 24, D },
	{ "192.168.0.128", 25, E },
	{ "192.168.0.77", 32, F },
	{ "172.16.0.0", 12, G },
	{ "2001:db8::", 32, A },
	{ "2001:db8:1::", 48, B },
	{ "2001:db8:1::1", 128, C },
	{ "fd00::", 8, D },
	{ "fd12:3456::", 32, E },
	{ "fe80::", 10, F },
	{ "::1", 128, G },
};

static const struct probe overlap_probes[] = {
	{ "10.0.0.0", A },
	{ "10.0.0.1", A },
	{ "10.1.0.0", B },
	{ "10.1.0.1", B },
	{ "10.1.2.2", B },
	{ "10.1.2.3", C },
	{ "10.1.2.4", B },
	{ "10.1.255.255", B },
	{ "10.2.0.0", A },
	{ "10.2.2.3", A },
	{ "10.0.1.0", A },
	{ "10.255.255.255", A },
	{ "11.0.0.0", NONE },
	{ "9.255.255.255", NONE },
	{ "0.0.0.0", NONE },
	{ "255.255.255.255", NONE },
	{ "192.168.0.0", D },
	{ "192.168.0.1", D },
	{ "192.168.0.77", F },
	{ "192.168.0.78", D },
	{ "192.168.0.127", D },
	{ "192.168.0.128", E },
	{ "192.168.0.255", E },
	{ "192.168.1.0", NONE },
	{ "192.167.255.255", NONE },
	{ "172.16.0.1", G },
	{ "172.31.255.255", G },
	{ "172.32.0.0", NONE },
	{ "172.15.255.255", NONE },
	{ "2001:db8::", A },
	{ "2001:db8::1", A },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", A },
	{ "2001:db8:1::", B },
	{ "2001:db8:1::1", C },
	{ "2001:db8:1::2", B },
	{ "2001:db8:1:ffff::1", B },
	{ "2001:db8:2::1", A },
	{ "2001:db9::", NONE },
	{ "2001:db7:ffff::", NONE },
	{ "fd00::1", D },
	{ "fdff:ffff::1", D },
	{ "fd12:3456::1", E },
	{ "fd12:3457::1", D },
	{ "fe80::1", F },
	{ "febf:ffff::1", F },
	{ "fec0::1", NONE },
	{ "::1", G },
	{ "::2", NONE },
	{ "::", NONE },
	{ "::a01:203", NONE },   /* 10.1.2.3's bytes at the end of a v6 address */
	{ "::ffff:10.1.2.3", NONE }, /* mapped addresses are the caller's business */
};

static void test_overlap(void)
{
	struct allowedips t;

	allowedips_init(&t);
	insert_all(&t, overlap_routes, N(overlap_routes));
	probe_all(&t, overlap_probes, N(overlap_probes), "overlap");
	allowedips_free(&t);
	CHECK(t.root4 == NULL && t.root6 == NULL);
}

/* The same routes in reverse order must build an equivalent trie. */
static void test_overlap_reversed(void)
{
	struct allowedips t;
	size_t i;

	allowedips_init(&t);
	for (i = N(overlap_routes); i-- > 0;)
		CHECK_INT(insert(&t, overlap_routes[i].addr, overlap_routes[i].cidr,
				 P(overlap_routes[i].peer)), 0);
	probe_all(&t, overlap_probes, N(overlap_probes), "overlap reversed");
	allowedips_free(&t);
}

static const struct route default_routes[] = {
	{ "0.0.0.0", 0, H },
	{ "::", 0, G },
	{ "10.0.0.0", 8, A },
	{ "10.0.0.1", 32, B },
	{ "128.0.0.0", 1, C },
	{ "2001:db8::1", 128, B },
	{ "8000::", 1, C },
};

static const struct probe default_probes[] = {
	{ "0.0.0.0", H },
	{ "1.2.3.4", H },
	{ "9.9.9.9", H },
	{ "10.0.0.0", A },
	{ "10.0.0.1", B },
	{ "10.0.0.2", A },
	{ "127.255.255.255", H },
	{ "128.0.0.0", C },
	{ "255.255.255.255", C },
	{ "::", G },
	{ "2001:db8::1", B },
	{ "2001:db8::2", G },
	{ "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", G },
	{ "8000::", C },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C },
};

static void test_defaults(void)
{
	struct allowedips t;

	allowedips_init(&t);
	insert_all(&t, default_routes, N(default_routes));
	probe_all(&t, default_probes, N(default_probes), "defaults");
	allowedips_free(&t);
}

/* A /0 of one family answers nothing of the other. */
static void test_family_separation(void)
{
	struct allowedips t;

	allowedips_init(&t);
	CHECK_INT(insert(&t, "0.0.0.0", 0, P(A)), 0);
	CHECK(lookup(&t, "1.2.3.4") == P(A));
	CHECK(lookup(&t, "::") == NULL);
	CHECK(lookup(&t, "2001:db8::1") == NULL);
	CHECK(lookup(&t, "::ffff:1.2.3.4") == NULL);
	allowedips_free(&t);

	allowedips_init(&t);
	CHECK_INT(insert(&t, "::", 0, P(B)), 0);
	CHECK(lookup(&t, "2001:db8::1") == P(B));
	CHECK(lookup(&t, "0.0.0.0") == NULL);
	CHECK(lookup(&t, "1.2.3.4") == NULL);
	allowedips_free(&t);
}

/* Bits beyond cidr are dropped, so a sloppy prefix is the same prefix. */
static void test_host_bits(void)
{
	struct allowedips t;

	allowedips_init(&t);
	CHECK_INT(insert(&t, "10.1.2.3", 8, P(A)), 0);
	CHECK(lookup(&t, "10.200.0.1") == P(A));
	CHECK(lookup(&t, "10.0.0.0") == P(A));
	CHECK(lookup(&t, "11.1.2.3") == NULL);
	CHECK_INT(insert(&t, "10.0.0.0", 8, P(B)), 0);  /* the same prefix: moves */
	CHECK(lookup(&t, "10.1.2.3") == P(B));
	CHECK_INT(insert(&t, "192.168.1.255", 23, P(C)), 0);
	CHECK(lookup(&t, "192.168.0.0") == P(C));
	CHECK(lookup(&t, "192.168.1.1") == P(C));
	CHECK(lookup(&t, "192.168.2.0") == NULL);
	CHECK_INT(insert(&t, "255.255.255.255", 0, P(D)), 0);
	CHECK(lookup(&t, "11.0.0.0") == P(D));
	CHECK_INT(insert(&t, "2001:db8:ffff:ffff::1", 33, P(E)), 0);
	CHECK(lookup(&t, "2001:db8:8000::") == P(E));
	CHECK(lookup(&t, "2001:db8:7fff::") == NULL);
	CHECK_INT(insert(&t, "2001:db8:8000::", 33, P(F)), 0);
	CHECK(lookup(&t, "2001:db8:ffff:ffff::1") == P(F));
	allowedips_remove_peer(&t, P(E));   /* moved away: nothing of E is left */
	CHECK(lookup(&t, "2001:db8:ffff:ffff::1") == P(F));
	allowedips_free(&t);
}

static void test_reinsert(void)
{
	struct allowedips t;

	allowedips_init(&t);
	CHECK_INT(insert(&t, "10.0.0.0", 8, P(A)), 0);
	CHECK_INT(insert(&t, "10.1.0.0", 16, P(B)), 0);
	CHECK_INT(insert(&t, "10.1.0.0", 16, P(C)), 0);
	CHECK(lookup(&t, "10.1.0.1") == P(C));
	CHECK(lookup(&t, "10.2.0.1") == P(A));
	allowedips_remove_peer(&t, P(B));   /* B no longer owns anything */
	CHECK(lookup(&t, "10.1.0.1") == P(C));
	CHECK_INT(insert(&t, "2001:db8::", 32, P(A)), 0);
	CHECK_INT(insert(&t, "2001:db8::", 32, P(D)), 0);
	CHECK(lookup(&t, "2001:db8::5") == P(D));
	CHECK_INT(insert(&t, "10.1.0.0", 16, P(C)), 0);  /* same peer again */
	CHECK(lookup(&t, "10.1.0.1") == P(C));
	allowedips_free(&t);
}

static void test_invalid(void)
{
	struct allowedips t;
	uint8_t a[16] = { 10 };

	allowedips_init(&t);
	CHECK_INT(allowedips_insert(&t, AF_INET, a, 33, P(A)), -EINVAL);
	CHECK_INT(allowedips_insert(&t, AF_INET, a, 255, P(A)), -EINVAL);
	CHECK_INT(allowedips_insert(&t, AF_INET6, a, 129, P(A)), -EINVAL);
	CHECK_INT(allowedips_insert(&t, AF_UNIX, a, 8, P(A)), -EINVAL);
	CHECK_INT(allowedips_insert(&t, 0, a, 8, P(A)), -EINVAL);
	CHECK_INT(allowedips_insert(&t, AF_INET, NULL, 8, P(A)), -EINVAL);
	CHECK_INT(allowedips_insert(&t, AF_INET, a, 8, NULL), -EINVAL);
	CHECK(t.root4 == NULL && t.root6 == NULL);
	CHECK_INT(allowedips_insert(&t, AF_INET, a, 32, P(A)), 0);
	CHECK_INT(allowedips_insert(&t, AF_INET6, a, 128, P(B)), 0);
	CHECK(allowedips_lookup(&t, AF_INET, a) == P(A));
	CHECK(allowedips_lookup(&t, AF_INET6, a) == P(B));
	CHECK(allowedips_lookup(&t, AF_UNIX, a) == NULL);
	CHECK(allowedips_lookup(&t, 12345, a) == NULL);
	allowedips_free(&t);
}

static const struct route remove_routes[] = {
	{ "10.0.0.0", 8, A },
	{ "10.1.0.0", 16, B },
	{ "10.2.0.0", 16, C },
	{ "10.1.2.0", 24, A },
	{ "10.1.2.3", 32, B },
	{ "10.128.0.0", 9, D },
	{ "0.0.0.0", 0, D },
	{ "2001:db8::", 32, A },
	{ "2001:db8:1::", 48, B },
	{ "2001:db8:2::", 48, C },
	{ "2001:db8:1:1::", 64, A },
	{ "::", 0, D },
};

/* After A is gone, everything that fell to A falls back to a shorter prefix. */
static const struct probe remove_probes[] = {
	{ "10.0.0.1", D },
	{ "10.1.0.1", B },
	{ "10.1.2.1", B },
	{ "10.1.2.3", B },
	{ "10.2.0.1", C },
	{ "10.3.0.1", D },
	{ "10.200.0.1", D },
	{ "1.1.1.1", D },
	{ "2001:db8::1", D },
	{ "2001:db8:1::1", B },
	{ "2001:db8:1:1::1", B },
	{ "2001:db8:2::1", C },
	{ "2001:db8:3::1", D },
};

static void test_remove_peer(void)
{
	struct allowedips t;

	allowedips_init(&t);
	insert_all(&t, remove_routes, N(remove_routes));
	CHECK(lookup(&t, "10.1.2.1") == P(A));
	allowedips_remove_peer(&t, P(A));
	probe_all(&t, remove_probes, N(remove_probes), "remove A");
	allowedips_remove_peer(&t, P(H));   /* owns nothing: no change */
	probe_all(&t, remove_probes, N(remove_probes), "remove H");
	allowedips_remove_peer(&t, NULL);
	probe_all(&t, remove_probes, N(remove_probes), "remove NULL");
	allowedips_remove_peer(&t, P(D));
	CHECK(lookup(&t, "10.3.0.1") == NULL);
	CHECK(lookup(&t, "10.1.2.3") == P(B));
	CHECK(lookup(&t, "2001:db8:2::1") == P(C));
	allowedips_remove_peer(&t, P(B));
	allowedips_remove_peer(&t, P(C));
	/* Every node is pruned, not just emptied. */
	CHECK(t.root4 == NULL && t.root6 == NULL);
	CHECK(lookup(&t, "10.2.0.1") == NULL);
	/* The table still works after being emptied. */
	CHECK_INT(insert(&t, "10.2.0.0", 16, P(E)), 0);
	CHECK(lookup(&t, "10.2.0.1") == P(E));
	allowedips_free(&t);
}

/* The randomized cross-check: the trie against a list searched linearly. */
#define RANDOM_ROUTES 3000
#define RANDOM_PROBES 6000
#define RANDOM_PEERS 16

struct flat {
	int family;
	uint8_t key[16];
	uint8_t cidr;
	int peer;               /* NONE once removed */
};

static struct flat flat[RANDOM_ROUTES];
static size_t flat_len;
static uint64_t rng_state = 0x5eed;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned int cidr)
{
	unsigned int i;

	for (i = 0; i < cidr; i++)
		if (((a[i / 8] ^ b[i / 8]) >> (7 - i % 8)) & 1)
			return false;
	return true;
}

static void flat_insert(int family, const uint8_t *key, uint8_t cidr, int peer)
{
	size_t i;

	for (i = 0; i < flat_len; i++) {
		if (flat[i].family == family && flat[i].cidr == cidr &&
		    prefix_equal(flat[i].key, key, cidr)) {
			flat[i].peer = peer;
			return;
		}
	}
	flat[flat_len].family = family;
	memcpy(flat[flat_len].key, key, 16);
	flat[flat_len].cidr = cidr;
	flat[flat_len].peer = peer;
	flat_len++;
}

static int flat_lookup(int family, const uint8_t *addr)
{
	int best = NONE, best_cidr = -1;
	size_t i;

	for (i = 0; i < flat_len; i++) {
		if (flat[i].family != family || flat[i].peer == NONE ||
		    flat[i].cidr <= best_cidr || !prefix_equal(flat[i].key, addr, flat[i].cidr))
			continue;
		best = flat[i].peer;
		best_cidr = flat[i].cidr;
	}
	return best;
}

/* Bytes from a small alphabet, so that random prefixes nest and collide. */
static uint8_t random_byte(void)
{
	static const uint8_t common[] = { 0x00, 0x0a, 0x80, 0xc0, 0xfe, 0xff };
	uint64_t r = rng() % 8;

	return r < 6 ? common[r] : (uint8_t)rng();
}

/* An address near the routes: an existing key with a random tail. */
static void random_probe(int *family, uint8_t *addr)
{
	const struct flat *f = &flat[rng() % flat_len];
	unsigned int keep = (unsigned int)(rng() % (f->family == AF_INET ? 33 : 129));
	unsigned int i, bits = f->family == AF_INET ? 32 : 128;

	*family = f->family;
	memset(addr, 0, 16);
	memcpy(addr, f->key, bits / 8);
	for (i = keep; i < bits; i++) {
		if (rng() & 1)
			addr[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
	}
	if (rng() % 16 == 0)            /* and now and then a wild one */
		for (i = 0; i < bits / 8; i++)
			addr[i] = (uint8_t)rng();
}

static unsigned int cross_check(const struct allowedips *t, unsigned int probes)
{
	unsigned int i, mismatches = 0;
	uint8_t addr[16];
	int family, want, got;

	for (i = 0; i < probes; i++) {
		random_probe(&family, addr);
		want = flat_lookup(family, addr);
		got = peer_index(allowedips_lookup(t, family, addr));
		if (want != got && mismatches++ < 5)
			fprintf(stderr, "random: family %d probe %u: want %d, got %d\n",
				family, i, want, got);
	}
	return mismatches;
}

static void test_random(void)
{
	struct allowedips t;
	uint8_t key[16];
	unsigned int i, j, hits = 0;
	int family, peer;
	uint8_t cidr;

	allowedips_init(&t);
	for (i = 0; i < RANDOM_ROUTES; i++) {
		family = rng() % 2 ? AF_INET : AF_INET6;
		cidr = (uint8_t)(rng() % (family == AF_INET ? 33 : 129));
		if (rng() % 4 == 0)     /* favour short prefixes: more nesting */
			cidr /= 4;
		memset(key, 0, sizeof(key));
		for (j = 0; j < (family == AF_INET ? 4u : 16u); j++)
			key[j] = random_byte();
		peer = (int)(rng() % RANDOM_PEERS);
		CHECK_INT(allowedips_insert(&t, family, key, cidr, P(peer)), 0);
		flat_insert(family, key, cidr, peer);
	}
	CHECK_INT(cross_check(&t, RANDOM_PROBES), 0);
	for (i = 0; i < 1000; i++) {    /* the probes do find routes */
		random_probe(&family, key);
		hits += flat_lookup(family, key) != NONE;
	}
	CHECK(hits > 500);
	for (peer = 0; peer < RANDOM_PEERS; peer++) {
		allowedips_remove_peer(&t, P(peer));
		for (i = 0; i < flat_len; i++)
			if (flat[i].peer == peer)
				flat[i].peer = NONE;
		CHECK_INT(cross_check(&t, RANDOM_PROBES / 8), 0);
	}
	CHECK(t.root4 == NULL && t.root6 == NULL);
	allowedips_free(&t);
}

/* Freeing a full table releases everything (the sanitizer checks leaks). */
static void test_free_full(void)
{
	struct allowedips t;
	uint8_t key[16] = { 0 };
	unsigned int i;

	allowedips_init(&t);
	for (i = 0; i < 2000; i++) {
		key[0] = (uint8_t)i;
		key[1] = (uint8_t)(i >> 8);
		key[15] = (uint8_t)(i * 7);
		CHECK_INT(allowedips_insert(&t, i % 2 ? AF_INET : AF_INET6, key,
					    (uint8_t)(i % 2 ? i % 33 : i % 129), P(i % 8)), 0);
	}
	allowedips_free(&t);
	CHECK(t.root4 == NULL && t.root6 == NULL);
	allowedips_free(&t);            /* twice is harmless */
}

int main(void)
{
	test_overlap();
	test_overlap_reversed();
	test_defaults();
	test_family_separation();
	test_host_bits();
	test_reinsert();
	test_invalid();
	test_remove_peer();
	test_random();
	test_free_full();
	return check_done("allowedips");
}
