/* SPDX-License-Identifier: MIT */
/* Socket address forms (sockaddr.h): lengths, ports, and the IPv4-mapped IPv6 round trip
 * both layers rely on. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "sockaddr.h"

static struct sockaddr_storage v4(const char *a, int port)
{
	struct sockaddr_storage ss;
	uint8_t b[4];

	inet_pton(AF_INET, a, b);
	ts_sa_make(&ss, AF_INET, b, htons(port));
	return ss;
}

static struct sockaddr_storage v6(const char *a, int port)
{
	struct sockaddr_storage ss;
	uint8_t b[16];

	inet_pton(AF_INET6, a, b);
	ts_sa_make(&ss, AF_INET6, b, htons(port));
	return ss;
}

static void test_lengths_and_ports(void)
{
	struct sockaddr_storage a = v4("10.0.0.1", 80), b = v6("fd00::1", 443), none = { 0 };

	CHECK_INT(ts_sa_len(&a), sizeof(struct sockaddr_in));
	CHECK_INT(ts_sa_len(&b), sizeof(struct sockaddr_in6));
	CHECK_INT(ntohs(ts_sa_port(&a)), 80);
	CHECK_INT(ntohs(ts_sa_port(&b)), 443);
	CHECK_INT(ts_sa_port(&none), 0);
	CHECK(ts_sa_addr(&none) == NULL);
	ts_sa_set_port(&a, htons(8080));
	CHECK_INT(ntohs(((struct sockaddr_in *)&a)->sin_port), 8080);
	ts_sa_set_port(&b, htons(53));
	CHECK_INT(ntohs(((struct sockaddr_in6 *)&b)->sin6_port), 53);
}

static void test_mapping(void)
{
	struct sockaddr_storage a = v4("192.0.2.7", 1234), m = a, six = v6("fd00::7", 9);
	struct sockaddr_storage want = v6("::ffff:192.0.2.7", 1234);
	uint8_t raw[16], four[4] = { 10, 1, 2, 3 };
	char txt[64];

	ts_sa_map(&m);
	CHECK_INT(m.ss_family, AF_INET6);
	CHECK_MEM(&m, &want, sizeof(struct sockaddr_in6));
	CHECK(ts_ip6_is_mapped(ts_sa_addr(&m)));
	CHECK(ts_sa_unmap(&m));
	CHECK_MEM(&m, &a, sizeof(struct sockaddr_in));
	/* A plain IPv6 address stays as it is both ways. */
	m = six;
	ts_sa_map(&m);
	CHECK(!ts_sa_unmap(&m));
	CHECK_MEM(&m, &six, sizeof(struct sockaddr_in6));
	CHECK(!ts_ip6_is_mapped(ts_sa_addr(&six)));
	ts_ip6_map(raw, four);
	CHECK_STR(inet_ntop(AF_INET6, raw, txt, sizeof(txt)), "::ffff:10.1.2.3");
	/* In place: the IPv4 bytes may already sit in the output buffer. */
	memcpy(raw, four, 4);
	ts_ip6_map(raw, raw);
	CHECK_STR(inet_ntop(AF_INET6, raw, txt, sizeof(txt)), "::ffff:10.1.2.3");
}

/* Every length the kernel takes: an AF_INET6 address without sin6_scope_id (24 bytes)
 * counts, shorter ones and other families do not. */
static void test_from(void)
{
	struct sockaddr_storage in = v6("::ffff:10.99.0.1", 53), out;
	struct sockaddr_storage four = v4("10.0.0.1", 80);

	((struct sockaddr_in6 *)&in)->sin6_scope_id = 7;
	CHECK(ts_sa_from((struct sockaddr *)&in, sizeof(struct sockaddr_in6), &out));
	CHECK_INT(((struct sockaddr_in6 *)&out)->sin6_scope_id, 7);
	CHECK(ts_sa_from((struct sockaddr *)&in, TS_SIN6_LEN_MIN, &out));
	CHECK_INT(((struct sockaddr_in6 *)&out)->sin6_scope_id, 0);
	CHECK_INT(ntohs(ts_sa_port(&out)), 53);
	CHECK(ts_sa_unmap(&out));
	CHECK_INT(out.ss_family, AF_INET);
	CHECK(!ts_sa_from((struct sockaddr *)&in, TS_SIN6_LEN_MIN - 1, &out));
	CHECK_INT(out.ss_family, 0);
	CHECK(ts_sa_from((struct sockaddr *)&four, sizeof(struct sockaddr_in), &out));
	CHECK(!ts_sa_from((struct sockaddr *)&four, sizeof(struct sockaddr_in) - 1, &out));
	CHECK(!ts_sa_from(NULL, 0, &out));
}

static void test_loopback(void)
{
	const uint8_t lo4[4] = { 127, 9, 8, 7 }, ten[4] = { 10, 0, 0, 1 };
	const uint8_t lo6[16] = { [15] = 1 }, two6[16] = { [15] = 2 };

	CHECK(ts_addr_is_loopback(AF_INET, lo4));
	CHECK(!ts_addr_is_loopback(AF_INET, ten));
	CHECK(ts_addr_is_loopback(AF_INET6, lo6));
	CHECK(!ts_addr_is_loopback(AF_INET6, two6));
}

int main(void)
{
	test_loopback();
	test_lengths_and_ports();
	test_mapping();
	test_from();
	return check_done("sockaddr");
}
