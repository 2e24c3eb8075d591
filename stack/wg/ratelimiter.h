/* SPDX-License-Identifier: MIT */
/* A token bucket per source, as the kernel's ratelimiter.c keeps one: keyed by the
 * IPv4 address or the IPv6 /64 (one host may hold a whole /64), refilled at
 * RATELIMIT_PER_SECOND up to a burst of RATELIMIT_BURST. The table is bounded: a
 * source idle for a second is garbage and its slot is reused; when every slot of
 * its set is live, a new source is refused, so the table never grows. Time is the
 * caller's clock in ns; the stack thread is the only user (no locking). */
#ifndef TS_RATELIMITER_H
#define TS_RATELIMITER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define RATELIMIT_PER_SECOND 20
#define RATELIMIT_BURST 5
/* Sets of RATELIMIT_WAYS slots; a source hashes (keyed, so senders cannot aim at one
 * set) to one set. 4096 sources live at once is far beyond a real deployment's peers. */
#define RATELIMIT_SETS 1024
#define RATELIMIT_WAYS 4

struct ratelimit_entry {
	uint8_t key[9];         /* family, then the address or the /64; 0: free */
	uint64_t last_ns;       /* when tokens were last taken */
	uint64_t tokens;        /* ns of credit, PACKET_COST per packet */
};

struct ratelimiter {
	uint8_t hash_key[16];
	unsigned int live;      /* slots in use (garbage included until reused) */
	struct ratelimit_entry slots[RATELIMIT_SETS][RATELIMIT_WAYS];
};

/* A single bucket, not per source: for totals across every source. */
struct token_bucket {
	uint64_t last_ns, tokens, cost, max;
	bool started;
};

struct ratelimiter *ratelimiter_new(void);
void ratelimiter_free(struct ratelimiter *rl);
/* True if src (AF_INET or AF_INET6; other families never pass) may send one more
 * packet now, and takes its token. */
bool ratelimiter_allow(struct ratelimiter *rl, const struct sockaddr *src, socklen_t len,
		       uint64_t now);

void token_bucket_init(struct token_bucket *tb, unsigned int per_second, unsigned int burst);
bool token_bucket_take(struct token_bucket *tb, uint64_t now);

#endif
