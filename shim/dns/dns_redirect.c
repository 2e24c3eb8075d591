/* SPDX-License-Identifier: MIT */
/* Programs that speak DNS themselves (dig, c-ares, language runtimes) send their
 * queries to the nameservers of /etc/resolv.conf: with `DNS =` set, a connect or a
 * send to port 53 of one of those goes to the first `DNS =` server instead, as
 * wg-quick's rewrite of resolv.conf would have it. The answers must seem to come from
 * the address the program used (resolvers check the source), so the receive calls
 * and getpeername show it again. resolv.conf is read when the library loads
 * (resolv_conf.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lookup.h"
#include "log.h"
#include "shim.h"
#include "sockaddr.h"

/* The address and port of an inet sockaddr (of any length the kernel takes),
 * IPv4-mapped IPv6 as IPv4. */
static bool inet_of(const struct sockaddr *sa, socklen_t len, struct dns_addr *a, uint16_t *port)
{
	struct sockaddr_storage ss;

	memset(a, 0, sizeof(*a));
	if (!ts_sa_from(sa, len, &ss))
		return false;
	ts_sa_unmap(&ss);
	a->family = ss.ss_family;
	memcpy(a->addr, ts_sa_addr(&ss), a->family == AF_INET ? 4 : 16);
	*port = ntohs(ts_sa_port(&ss));
	return true;
}

static bool same_addr(const struct dns_addr *a, const struct dns_addr *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

static bool is_nameserver(const struct dns_addr *a)
{
	for (size_t i = 0; i < dns_resolv.n_ns; i++)
		if (same_addr(a, &dns_resolv.ns[i]))
			return true;
	return false;
}

/* The first `DNS =` server, port 53, as a socket of family can address it (an IPv6
 * socket reaches an IPv4 server through its mapped address). */
/* An IPv4 socket asking an IPv4 nameserver when the tunnel's DNS is IPv6 only (the
 * provider shape): the tunnel carries the query all the same, and the answer is
 * shown as coming from the address the program asked. */
static bool ipv6_in_tunnel(struct sockaddr_storage *out)
{
	struct sockaddr_storage norm;

	for (size_t i = 0; i < shim_cfg.n_dns; i++) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

		if (shim_cfg.dns[i].family != AF_INET6)
			continue;
		memset(out, 0, sizeof(*out));
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(53);
		memcpy(&s6->sin6_addr, shim_cfg.dns[i].addr, 16);
		if (shim_route((struct sockaddr *)out, sizeof(*s6), &norm) == ROUTE_TUNNEL)
			return true;
	}
	memset(out, 0, sizeof(*out));
	return false;
}

static bool target_for(int family, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < shim_cfg.n_dns; i++) {
		const struct wg_ipaddr *ip = &shim_cfg.dns[i];

		if (family == AF_INET && ip->family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)out;

			s4->sin_family = AF_INET;
			s4->sin_port = htons(53);
			memcpy(&s4->sin_addr, ip->addr, 4);
			return true;
		}
		if (family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(53);
			if (ip->family == AF_INET6)
				memcpy(&s6->sin6_addr, ip->addr, 16);
			else
				ts_ip6_map(s6->sin6_addr.s6_addr, ip->addr);
			return true;
		}
	}
	return family == AF_INET && ipv6_in_tunnel(out);
}

/* After shim_enter(); not for the DNS layer's own queries. */
static bool redirecting(void)
{
	if (dns_busy)
		return false;
	return shim_mode == SHIM_FAIL_CLOSED || (shim_mode == SHIM_ON && shim_cfg.n_dns);
}

/* Remembers what the program addressed, for the answers' source. */
static void note_shown(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct shim_fd *e;

	shim_fd_lock();
	e = shim_fd_get(fd);
	if (e && (shim_fd_kind_of(e) == SFD_INET || shim_fd_kind_of(e) == SFD_TUNNEL)) {
		memset(&e->dns_shown, 0, sizeof(e->dns_shown));
		memcpy(&e->dns_shown, sa, len < sizeof(e->dns_shown) ? len : sizeof(e->dns_shown));
		__atomic_or_fetch(&e->flags, SFDF_DNS_SHOWN, __ATOMIC_RELEASE);
	}
	shim_fd_unlock();
}

int shim_dns_redirect(int fd, const struct sockaddr **addr, socklen_t *len,
		      struct sockaddr_storage *buf)
{
	struct dns_addr a;
	uint16_t port;

	if (!*addr || !redirecting() || !inet_of(*addr, *len, &a, &port) || port != 53 ||
	    !is_nameserver(&a))
		return 0;
	if (shim_mode != SHIM_ON) {
		ts_info("dns: fd %d: query to the host's nameserver refused: the tunnel config "
			"is unusable, failing closed", fd);
		return errno = ENETUNREACH, -1;
	}
	if (!target_for((*addr)->sa_family, buf)) {
		ts_info("dns: fd %d: no DNS = server of this family; query to the host's "
			"nameserver refused", fd);
		return errno = ENETUNREACH, -1;
	}
	ts_dbg("dns: fd %d: a query to the host's nameserver goes to the tunnel's DNS", fd);
	note_shown(fd, *addr, *len);
	*addr = (const struct sockaddr *)buf;
	*len = ts_sa_len(buf);
	return 1;
}

/* After shim_enter(). Lock-free unless fd was redirected (a flag in the table). */
void shim_dns_unredirect(int fd, struct sockaddr *addr, socklen_t cap, socklen_t *len)
{
	struct shim_fd e;
	struct sockaddr_storage t;
	struct dns_addr got, want;
	uint16_t gport, tport;
	socklen_t full;

	if (!addr || !len || !(shim_fd_flags(fd) & SFDF_DNS_SHOWN))
		return;
	shim_fd_read(fd, &e);
	if (!e.dns_shown.sin6_family || !target_for(e.dns_shown.sin6_family, &t))
		return;
	if (!inet_of(addr, *len < cap ? *len : cap, &got, &gport) ||
	    !inet_of((struct sockaddr *)&t, sizeof(t), &want, &tport) || gport != tport ||
	    !same_addr(&got, &want))
		return;
	full = ts_sa_len((const struct sockaddr_storage *)&e.dns_shown);
	memcpy(addr, &e.dns_shown, cap < full ? cap : full);
	*len = full;
}
