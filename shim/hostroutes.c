/* SPDX-License-Identifier: MIT */
/* The host's own routes, read once, on the first tunnel-bound decision. A destination that the
 * host reaches through a route more specific than the tunnel's matching AllowedIPs
 * prefix stays on the host, as with wg-quick: with AllowedIPs = 0.0.0.0/0 everything
 * goes into the tunnel except the host's own subnets (wg-quick's policy routing keeps
 * every route more specific than the default in the main table), and with narrower
 * AllowedIPs the kernel's longest-prefix match decides the same way. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "routes.h"
#include "shim.h"

static struct ts_routes *host_routes;

static void add(int family, const uint8_t *addr, unsigned cidr)
{
	if (cidr == 0) /* the default route is what a tunnel replaces */
		return;
	if (host_routes)
		ts_routes_add(host_routes, family, addr, (uint8_t)cidr);
}

static void read_v4(void)
{
	FILE *f = fopen("/proc/net/route", "re");
	char line[256], ifname[64];
	unsigned dst, gw, flags, mask;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %x %x %x %*d %*d %*d %x", ifname, &dst, &gw, &flags, &mask) != 5)
			continue;
		/* The file holds the words in host order of the network-order address. */
		add(AF_INET, (const uint8_t *)&dst, (unsigned)__builtin_popcount(mask));
	}
	fclose(f);
}

static int hex_bytes(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (uint8_t)b;
	}
	return 0;
}

static void read_v6(void)
{
	FILE *f = fopen("/proc/net/ipv6_route", "re");
	char line[256], dst[33];
	unsigned plen;
	uint8_t a[16];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%32s %x", dst, &plen) != 2 || plen > 128 || hex_bytes(dst, a, 16) < 0)
			continue;
		if (a[0] == 0xff) /* multicast: not a destination the tunnel could serve */
			continue;
		add(AF_INET6, a, plen);
	}
	fclose(f);
}

static pthread_once_t loaded = PTHREAD_ONCE_INIT;

static void load(void)
{
	host_routes = ts_routes_new();
	read_v4();
	read_v6();
}

/* The prefix length of the host's most specific route to addr, or -1. */
int shim_hostroute_len(int family, const uint8_t *addr)
{
	pthread_once(&loaded, load);
	return ts_routes_match(host_routes, family, addr);
}
