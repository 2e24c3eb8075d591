/* SPDX-License-Identifier: MIT */
/* Per-source token buckets (ratelimiter.h). Credit is kept in nanoseconds, as the
 * kernel does: one packet costs a twentieth of a second, the bucket holds five. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ratelimiter.h"

#define NSEC_PER_SEC 1000000000ULL
/* A bucket idle this long has refilled completely, so forgetting it changes nothing. */
#define GARBAGE_AFTER NSEC_PER_SEC
#define KEY_LEN 9

struct ratelimiter *ratelimiter_new(void)
{
	struct ratelimiter *rl;

	if (sodium_init() < 0)
		return NULL;
	rl = calloc(1, sizeof(*rl));
	if (rl)
		randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
	return rl;
}

void ratelimiter_free(struct ratelimiter *rl)
{
	free(rl);
}

/* family byte, then the IPv4 address or the IPv6 /64. A v4-mapped IPv6 source (a
 * dual-stack socket) is its IPv4 address: otherwise every IPv4 sender would share
 * the one bucket of ::ffff:0:0/64. */
static bool source_key(const struct sockaddr *sa, socklen_t len, uint8_t key[KEY_LEN])
{
	memset(key, 0, KEY_LEN);
	if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = 4;
			memcpy(key + 1, a->s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a->s6_addr, 8);
		}
		return true;
	}
	return false;
}

static bool is_garbage(const struct ratelimit_entry *e, uint64_t now)
{
	return now >= e->last_ns + GARBAGE_AFTER;
}

/* The source's slot in its set, or a free or garbage one taken for it, or NULL
 * when the whole set is live (the table is full there: refuse, never grow). */
static struct ratelimit_entry *slot_for(struct ratelimiter *rl, const uint8_t key[KEY_LEN],
					uint64_t now, bool *fresh)
{
	struct ratelimit_entry *set, *spare = NULL;
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t idx;
	int i;

	crypto_shorthash(h, key, KEY_LEN, rl->hash_key);
	memcpy(&idx, h, sizeof(idx));
	set = rl->slots[idx % RATELIMIT_SETS];
	for (i = 0; i < RATELIMIT_WAYS; i++) {
		if (set[i].key[0] && !memcmp(set[i].key, key, KEY_LEN)) {
			*fresh = false;
			return &set[i];
		}
		if (!spare && (!set[i].key[0] || is_garbage(&set[i], now)))
			spare = &set[i];
	}
	if (spare) {
		if (!spare->key[0])
			rl->live++;
		memcpy(spare->key, key, KEY_LEN);
		*fresh = true;
	}
	return spare;
}

static uint64_t refill(uint64_t tokens, uint64_t last, uint64_t now, uint64_t max)
{
	if (now > last)
		tokens += now - last;
	return tokens < max ? tokens : max;
}

bool ratelimiter_allow(struct ratelimiter *rl, const struct sockaddr *src, socklen_t len,
		       uint64_t now)
{
	const uint64_t cost = NSEC_PER_SEC / RATELIMIT_PER_SECOND;
	const uint64_t max = cost * RATELIMIT_BURST;
	uint8_t key[KEY_LEN];
	struct ratelimit_entry *e;
	bool fresh;

	if (!rl || !source_key(src, len, key))
		return false;
	e = slot_for(rl, key, now, &fresh);
	if (!e)
		return false;
	/* A new source starts with a full bucket, less this packet. */
	e->tokens = fresh ? max : refill(e->tokens, e->last_ns, now, max);
	e->last_ns = now;
	if (e->tokens < cost)
		return false;
	e->tokens -= cost;
	return true;
}

void token_bucket_init(struct token_bucket *tb, unsigned int per_second, unsigned int burst)
{
	memset(tb, 0, sizeof(*tb));
	tb->cost = NSEC_PER_SEC / (per_second ? per_second : 1);
	tb->max = tb->cost * (burst ? burst : 1);
}

bool token_bucket_take(struct token_bucket *tb, uint64_t now)
{
	tb->tokens = tb->started ? refill(tb->tokens, tb->last_ns, now, tb->max) : tb->max;
	tb->started = true;
	tb->last_ns = now;
	if (tb->tokens < tb->cost)
		return false;
	tb->tokens -= tb->cost;
	return true;
}
