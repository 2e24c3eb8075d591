/* SPDX-License-Identifier: MIT */
/*
 * sh_capture: every packet on every interface of the network namespace it runs in (an
 * AF_PACKET socket, as tcpdump -i any), one line each, classified, until killed.
 *
 *   sh_capture WG-PORT MARKER [DENY-ADDR:PORT...]
 *
 * Prints "ready" once capturing, then per packet:
 *   CLASS IFACE PROTO SRC SPORT DST DPORT LEN
 * CLASS is
 *   wg      UDP between loopback addresses to or from WG-PORT (the WireGuard peer's
 *           endpoint) that is a well-formed WireGuard message: type 1, 2, 3 with their
 *           exact lengths (148, 92, 64), or type 4 of at least 32 bytes in 16-byte steps,
 *           reserved bytes zero, and without MARKER in it (plaintext would show)
 *   bad-wg  to or from WG-PORT, but not that
 *   leak    an address that is not loopback (the packet was for the host's network), a
 *           packet to or from a DENY address and port (a decoy resolver), or anything
 *           that is not IP
 *   lo      other traffic between loopback addresses (the stack's relay, the test's own)
 *   link    IPv6 link-scope multicast (ff02::/16): the kernel's MLD and neighbour
 *           discovery on an interface, which no program sends
 * Loopback packets are seen twice by the kernel (out and in): only the "in" copy is shown.
 */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <signal.h>
#include <stdbool.h>
#include "sh_util.h"

struct pkt {
	int family, proto;
	uint8_t src[16], dst[16];
	unsigned sport, dport;
	const uint8_t *payload;
	size_t len, plen;
};

static unsigned wg_port;
static const char *marker;
static char **deny;
static int n_deny;

static bool loopback(int family, const uint8_t *a)
{
	static const uint8_t lo6[16] = { [15] = 1 };

	return family == AF_INET ? a[0] == 127 : memcmp(a, lo6, 16) == 0;
}

static bool parse(const uint8_t *b, size_t n, struct pkt *p)
{
	size_t hl;

	memset(p, 0, sizeof(*p));
	p->len = n;
	if (n >= 20 && b[0] >> 4 == 4) {
		hl = (size_t)(b[0] & 15) * 4;
		p->family = AF_INET;
		p->proto = b[9];
		memcpy(p->src, b + 12, 4);
		memcpy(p->dst, b + 16, 4);
	} else if (n >= 40 && b[0] >> 4 == 6) {
		hl = 40; /* no extension headers in what this test sends */
		p->family = AF_INET6;
		p->proto = b[6];
		memcpy(p->src, b + 8, 16);
		memcpy(p->dst, b + 24, 16);
	} else {
		return false;
	}
	if ((p->proto == IPPROTO_UDP || p->proto == IPPROTO_TCP) && n >= hl + 8) {
		p->sport = (unsigned)b[hl] << 8 | b[hl + 1];
		p->dport = (unsigned)b[hl + 2] << 8 | b[hl + 3];
		hl += p->proto == IPPROTO_UDP ? 8 : (size_t)(b[hl + 12] >> 4) * 4;
	}
	p->payload = b + (hl < n ? hl : n);
	p->plen = hl < n ? n - hl : 0;
	return true;
}

static bool wg_message(const uint8_t *m, size_t n)
{
	if (n < 4 || m[1] || m[2] || m[3] || memmem(m, n, marker, strlen(marker)))
		return false;
	switch (m[0]) {
	case 1: return n == 148;
	case 2: return n == 92;
	case 3: return n == 64;
	case 4: return n >= 32 && n % 16 == 0;
	default: return false;
	}
}

static bool denied(const struct pkt *p)
{
	char ip[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN + 8];

	for (int i = 0; i < n_deny; i++) {
		snprintf(want, sizeof(want), "%s:%u", inet_ntop(p->family, p->dst, ip, sizeof(ip)),
			 p->dport);
		if (!strcmp(want, deny[i]))
			return true;
		snprintf(want, sizeof(want), "%s:%u", inet_ntop(p->family, p->src, ip, sizeof(ip)),
			 p->sport);
		if (!strcmp(want, deny[i]))
			return true;
	}
	return false;
}

static const char *classify(const struct pkt *p)
{
	/* The kernel's own IPv6 housekeeping on an interface (MLD reports to ff02::16 when
	 * an address is added): link-scope multicast, never a program's traffic. */
	if (p->family == AF_INET6 && p->dst[0] == 0xff && (p->dst[1] & 0x0f) == 2)
		return "link";
	if (!loopback(p->family, p->src) || !loopback(p->family, p->dst) || denied(p))
		return "leak";
	if (p->proto == IPPROTO_UDP && (p->sport == wg_port || p->dport == wg_port))
		return wg_message(p->payload, p->plen) ? "wg" : "bad-wg";
	if (p->sport == wg_port || p->dport == wg_port)
		return "bad-wg";
	return "lo";
}

static void show(const struct sockaddr_ll *ll, const uint8_t *b, size_t n)
{
	char ifname[IF_NAMESIZE] = "?", s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	struct pkt p;

	if_indextoname((unsigned)ll->sll_ifindex, ifname);
	if (!parse(b, n, &p)) {
		printf("leak %s proto-0x%04x - - - - %zu\n", ifname, ntohs(ll->sll_protocol), n);
		return;
	}
	printf("%s %s %d %s %u %s %u %zu\n", classify(&p), ifname, p.proto,
	       inet_ntop(p.family, p.src, s, sizeof(s)), p.sport,
	       inet_ntop(p.family, p.dst, d, sizeof(d)), p.dport, n);
}

int main(int argc, char **argv)
{
	uint8_t buf[65536 + 256];
	struct sockaddr_ll ll;
	socklen_t len;
	ssize_t n;
	int fd;

	sh_prog = "sh_capture";
	if (argc < 3)
		sh_die("usage: sh_capture WG-PORT MARKER [DENY-ADDR:PORT...]");
	wg_port = (unsigned)atoi(argv[1]);
	marker = argv[2];
	deny = argv + 3;
	n_deny = argc - 3;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, SIG_DFL);
	/* SOCK_DGRAM: the packet from its network header on, whatever the link layer. */
	fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL));
	if (fd < 0)
		sh_die("socket(AF_PACKET): %s", strerror(errno));
	printf("ready\n");
	for (;;) {
		len = sizeof(ll);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ll, &len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			sh_die("recvfrom: %s", strerror(errno));
		if (ll.sll_pkttype == PACKET_OUTGOING && ll.sll_ifindex == 1)
			continue; /* lo: the same packet comes in again */
		show(&ll, buf, (size_t)n);
	}
}
