/* SPDX-License-Identifier: MIT */
/* The per-source token buckets: the burst, the refill, what counts as one source
 * (an IPv4 address, an IPv6 /64), the bounded table and its garbage, and the single
 * bucket for totals. Time is a number the test moves. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ratelimiter.h"

#define MS 1000000ULL
#define T0 (1000 * 1000 * MS)

struct src {
	struct sockaddr_storage ss;
	socklen_t len;
};

static struct src src(const char *ip, uint16_t port)
{
	struct src s;
	struct sockaddr_in *in = (struct sockaddr_in *)&s.ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s.ss;

	memset(&s, 0, sizeof(s));
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		s.len = sizeof(*in);
	} else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		s.len = sizeof(*in6);
	}
	return s;
}

static bool allow(struct ratelimiter *rl, const char *ip, uint64_t now)
{
	struct src s = src(ip, 51820);

	return ratelimiter_allow(rl, (struct sockaddr *)&s.ss, s.len, now);
}

static int allowed_of(struct ratelimiter *rl, const char *ip, int n, uint64_t now)
{
	int ok = 0;

	for (int i = 0; i < n; i++)
		ok += allow(rl, ip, now);
	return ok;
}

static void test_burst_then_rate(void)
{
	struct ratelimiter *rl = ratelimiter_new();
	uint64_t t = T0;
	int ok = 0;

	CHECK(rl != NULL);
	CHECK_INT(allowed_of(rl, "192.0.2.1", 100, t), RATELIMIT_BURST);
	CHECK_INT(allowed_of(rl, "192.0.2.1", 1, t + 49 * MS), 0);
	CHECK_INT(allowed_of(rl, "192.0.2.1", 2, t + 50 * MS), 1);
	/* ten seconds of a packet each millisecond: 20 a second get through */
	t += 50 * MS;
	for (int i = 0; i < 10000; i++)
		ok += allow(rl, "192.0.2.1", t += MS);
	CHECK_INT(ok, 10 * RATELIMIT_PER_SECOND);
	/* idle: the bucket fills up to the burst, no further */
	CHECK_INT(allowed_of(rl, "192.0.2.1", 100, t + 60 * 1000 * MS), RATELIMIT_BURST);
	/* a clock that goes back refills nothing */
	CHECK_INT(allowed_of(rl, "192.0.2.1", 1, t), 0);
	ratelimiter_free(rl);
}

static void test_what_is_one_source(void)
{
	struct ratelimiter *rl = ratelimiter_new();
	struct src mapped = src("::ffff:192.0.2.7", 1), v4 = src("192.0.2.7", 2);
	struct sockaddr_un_like { sa_family_t f; char p[30]; } un = { AF_UNIX, "x" };

	/* the port is not part of the source */
	CHECK_INT(allowed_of(rl, "192.0.2.7", RATELIMIT_BURST, T0), RATELIMIT_BURST);
	CHECK(!ratelimiter_allow(rl, (struct sockaddr *)&v4.ss, v4.len, T0));
	/* a v4-mapped address is that IPv4 address */
	CHECK(!ratelimiter_allow(rl, (struct sockaddr *)&mapped.ss, mapped.len, T0));
	CHECK_INT(allowed_of(rl, "::ffff:192.0.2.8", 1, T0), 1);
	/* an IPv6 /64 is one source; the next /64 another */
	CHECK_INT(allowed_of(rl, "2001:db8:0:1::1", 3, T0), 3);
	CHECK_INT(allowed_of(rl, "2001:db8:0:1:ffff::9", 10, T0), RATELIMIT_BURST - 3);
	CHECK_INT(allowed_of(rl, "2001:db8:0:2::1", 10, T0), RATELIMIT_BURST);
	/* no address, a short one, another family: never */
	CHECK(!ratelimiter_allow(rl, NULL, 0, T0));
	CHECK(!ratelimiter_allow(rl, (struct sockaddr *)&v4.ss, 2, T0 + 1000 * MS));
	CHECK(!ratelimiter_allow(rl, (struct sockaddr *)&un, sizeof(un), T0));
	CHECK(!ratelimiter_allow(NULL, (struct sockaddr *)&v4.ss, v4.len, T0));
	ratelimiter_free(rl);
}

/* Many sources at once fill the table; it refuses new ones instead of growing, and
 * a second later their slots are garbage and serve new sources again. */
static void test_table_bounded(void)
{
	struct ratelimiter *rl = ratelimiter_new();
	const int sources = 4 * RATELIMIT_SETS * RATELIMIT_WAYS;
	int first = 0, later = 0;
	char ip[32];

	for (int i = 0; i < sources; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
		first += allow(rl, ip, T0);
	}
	CHECK(first <= RATELIMIT_SETS * RATELIMIT_WAYS);
	CHECK(first > RATELIMIT_SETS * RATELIMIT_WAYS * 3 / 4);
	CHECK(rl->live <= RATELIMIT_SETS * RATELIMIT_WAYS);
	/* a known source keeps its bucket while the table is full */
	CHECK_INT(allowed_of(rl, "10.0.0.0", 10, T0), RATELIMIT_BURST - 1);
	for (int i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "172.16.%d.%d", i >> 8, i & 255);
		later += allow(rl, ip, T0 + 1000 * MS);
	}
	/* as into an empty table: only a set that more than RATELIMIT_WAYS of them
	 * hash to refuses (a few, with 1000 in 1024 sets) */
	CHECK(later >= 950);
	CHECK(rl->live <= RATELIMIT_SETS * RATELIMIT_WAYS);
	ratelimiter_free(rl);
}

static void test_token_bucket(void)
{
	struct token_bucket tb;
	int ok = 0;

	token_bucket_init(&tb, 1000, 100);
	for (int i = 0; i < 500; i++)
		ok += token_bucket_take(&tb, T0);
	CHECK_INT(ok, 100);
	CHECK(!token_bucket_take(&tb, T0 + MS - 1));
	CHECK(token_bucket_take(&tb, T0 + MS));
	ok = 0;
	for (int i = 0; i < 500; i++)
		ok += token_bucket_take(&tb, T0 + 10 * 1000 * MS);
	CHECK_INT(ok, 100);
}

int main(void)
{
	test_burst_then_rate();
	test_what_is_one_source();
	test_table_bounded();
	test_token_bucket();
	return check_done("ratelimiter");
}
