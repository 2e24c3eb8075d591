/* SPDX-License-Identifier: MIT */
/* sockaddr.h: one place for the address forms, so that the two layers agree on them. */
#include <netinet/in.h>
#include <string.h>
#include "sockaddr.h"

static const uint8_t mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

socklen_t ts_sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

void ts_sa_make(struct sockaddr_storage *ss, int family, const void *addr, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = port;
		memcpy(&s4->sin_addr, addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = port;
		memcpy(&s6->sin6_addr, addr, 16);
	}
}

bool ts_sa_from(const struct sockaddr *sa, socklen_t len, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memcpy(out, sa, sizeof(struct sockaddr_in));
		return true;
	}
	if (sa->sa_family != AF_INET6 || len < TS_SIN6_LEN_MIN)
		return false;
	memcpy(out, sa, len < sizeof(struct sockaddr_in6) ? len : sizeof(struct sockaddr_in6));
	return true;
}

const uint8_t *ts_sa_addr(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (ss->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
	return NULL;
}

uint16_t ts_sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_port;
	if (ss->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)ss)->sin6_port;
	return 0;
}

void ts_sa_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = port;
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = port;
}

bool ts_addr_is_loopback(int family, const uint8_t *addr)
{
	static const uint8_t lo6[16] = { [15] = 1 };

	return family == AF_INET ? addr[0] == 127 : memcmp(addr, lo6, 16) == 0;
}

void ts_ip6_map(uint8_t out[16], const uint8_t v4[4])
{
	uint8_t a[4];

	memcpy(a, v4, 4); /* out and v4 may overlap */
	memcpy(out, mapped_prefix, 12);
	memcpy(out + 12, a, 4);
}

bool ts_ip6_is_mapped(const uint8_t a[16])
{
	return memcmp(a, mapped_prefix, 12) == 0;
}

void ts_sa_map(struct sockaddr_storage *ss)
{
	uint8_t a6[16];

	if (ss->ss_family != AF_INET)
		return;
	ts_ip6_map(a6, ts_sa_addr(ss));
	ts_sa_make(ss, AF_INET6, a6, ts_sa_port(ss));
}

bool ts_sa_unmap(struct sockaddr_storage *ss)
{
	uint8_t a4[4];

	if (ss->ss_family != AF_INET6 || !ts_ip6_is_mapped(ts_sa_addr(ss)))
		return false;
	memcpy(a4, ts_sa_addr(ss) + 12, 4);
	ts_sa_make(ss, AF_INET, a4, ts_sa_port(ss));
	return true;
}
