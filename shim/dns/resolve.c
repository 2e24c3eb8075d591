/* SPDX-License-Identifier: MIT */
/* getaddrinfo and getnameinfo. With `DNS =` in the config, names are looked up by
 * dns_lookup.c (through the tunnel); everything that needs no lookup (numeric hosts,
 * a NULL node, NI_NUMERICHOST) still goes to libc, which then cannot ask anyone. The
 * results keep glibc's contract: which socktypes and protocols a service gives, and
 * the errors for bad flags, services and socktypes, come from libc itself (asked
 * about a numeric placeholder); each node is allocated as glibc does (one block for
 * the addrinfo and its sockaddr, the canonical name apart), so the real
 * freeaddrinfo frees it. */
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lookup.h"
#include "shim.h"
#include "sockaddr.h"

struct dns_libc dns_libc;

#define RESOLVE(name) dns_libc.name = (__typeof__(dns_libc.name))dlsym(RTLD_NEXT, #name)

void dns_libc_init(void)
{
	if (__atomic_load_n(&dns_libc.getaddrinfo, __ATOMIC_ACQUIRE))
		return;
	RESOLVE(getnameinfo);
	RESOLVE(gethostbyname);
	RESOLVE(gethostbyname2);
	RESOLVE(gethostbyname_r);
	RESOLVE(gethostbyname2_r);
	RESOLVE(gethostbyaddr);
	RESOLVE(gethostbyaddr_r);
	RESOLVE(res_query);
	RESOLVE(res_search);
	RESOLVE(res_querydomain);
	RESOLVE(res_send);
	RESOLVE(res_nquery);
	RESOLVE(res_nsearch);
	RESOLVE(res_nquerydomain);
	RESOLVE(res_nsend);
	/* Last: its presence says the table is complete. */
	__atomic_store_n(&dns_libc.getaddrinfo,
			 (__typeof__(dns_libc.getaddrinfo))dlsym(RTLD_NEXT, "getaddrinfo"),
			 __ATOMIC_RELEASE);
}

/* ---- AI_ADDRCONFIG: the tunnel's addresses count as configured ---- */

/* As glibc's __check_pf: any IPv4 address but 127.0.0.1, any IPv6 address but ::1. */
static void host_families(bool *v4, bool *v6)
{
	struct ifaddrs *ifa, *i;

	if (getifaddrs(&ifa) < 0)
		return;
	for (i = ifa; i; i = i->ifa_next) {
		const struct sockaddr *sa = i->ifa_addr;

		if (sa && sa->sa_family == AF_INET)
			*v4 |= ((const struct sockaddr_in *)sa)->sin_addr.s_addr != htonl(INADDR_LOOPBACK);
		else if (sa && sa->sa_family == AF_INET6)
			*v6 |= !IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	}
	freeifaddrs(ifa);
}

static void tunnel_families(bool *v4, bool *v6)
{
	if (shim_mode != SHIM_ON)
		return;
	for (size_t i = 0; i < shim_cfg.n_addresses; i++) {
		*v4 |= shim_cfg.addresses[i].ip.family == AF_INET;
		*v6 |= shim_cfg.addresses[i].ip.family == AF_INET6;
	}
}

/* glibc's rule: a family nobody has configured gives EAI_NONAME; AF_UNSPEC narrows
 * to the one family that is configured, if only one is. Returns the family to ask,
 * or -1. */
static int addrconfig_family(int family)
{
	bool v4 = false, v6 = false;

	tunnel_families(&v4, &v6);
	if (!v4 || !v6)
		host_families(&v4, &v6);
	if (family == AF_UNSPEC)
		return v4 == v6 ? AF_UNSPEC : v4 ? AF_INET : AF_INET6;
	if ((family == AF_INET && !v4) || (family == AF_INET6 && !v6))
		return -1;
	return family;
}

/* ---- what needs no lookup ---- */

/* libc answers, with AI_ADDRCONFIG decided here (counting the tunnel's addresses);
 * for a numeric node, unable to look anything up (AI_NUMERICHOST). */
static int to_libc(const char *node, const char *service, const struct addrinfo *h,
		   struct addrinfo **res, bool numeric)
{
	struct addrinfo hh = *h;

	if (node && numeric)
		hh.ai_flags |= AI_NUMERICHOST;
	if ((hh.ai_flags & AI_ADDRCONFIG) && shim_mode == SHIM_ON) {
		int family = addrconfig_family(hh.ai_family);

		if (family < 0)
			return EAI_NONAME;
		hh.ai_family = family;
		hh.ai_flags &= ~AI_ADDRCONFIG;
	}
	return dns_libc.getaddrinfo(node, service, &hh, res);
}

/* ---- names ---- */

struct kind {
	int socktype, protocol;
	in_port_t port; /* network order */
};
#define MAX_KINDS 8

/* The socktype, protocol and port of each result, as libc gives them for a numeric
 * placeholder: its table of protocols and its service lookup (files only). */
static int service_kinds(const char *service, const struct addrinfo *h, struct kind *k,
			 size_t *nk)
{
	struct addrinfo ph = { .ai_socktype = h->ai_socktype, .ai_protocol = h->ai_protocol };
	struct addrinfo *r, *i;
	int rc;

	ph.ai_flags = (h->ai_flags & ~(AI_CANONNAME | AI_ADDRCONFIG | AI_V4MAPPED | AI_ALL)) |
		      AI_NUMERICHOST;
	ph.ai_family = h->ai_family == AF_INET6 ? AF_INET6 : AF_INET;
	rc = dns_libc.getaddrinfo(ph.ai_family == AF_INET6 ? "::1" : "127.0.0.1", service, &ph, &r);
	if (rc)
		return rc;
	for (*nk = 0, i = r; i && *nk < MAX_KINDS; i = i->ai_next, (*nk)++) {
		k[*nk].socktype = i->ai_socktype;
		k[*nk].protocol = i->ai_protocol;
		k[*nk].port = i->ai_family == AF_INET6 ?
			((struct sockaddr_in6 *)i->ai_addr)->sin6_port :
			((struct sockaddr_in *)i->ai_addr)->sin_port;
	}
	freeaddrinfo(r);
	return 0;
}

static int eai_of(enum dns_rc rc)
{
	switch (rc) {
	case DNS_RC_OK:
		return 0;
	case DNS_RC_NONAME:
		return EAI_NONAME;
	case DNS_RC_NODATA:
		return EAI_NODATA;
	case DNS_RC_AGAIN:
		return EAI_AGAIN;
	case DNS_RC_NOMEM:
		return EAI_MEMORY;
	default:
		return EAI_FAIL;
	}
}

struct pick {
	struct dns_addr a;
	bool mapped; /* an IPv4 address shown as ::ffff:a.b.c.d (AI_V4MAPPED) */
	int rank;
};

/* RFC 6724 in short, as glibc's default table orders: destinations this process can
 * reach first (loopback; inside AllowedIPs with a tunnel address of that family;
 * outside with a host address of it), then IPv6 before IPv4. */
static int rank(const struct dns_addr *a, const bool *tun, const bool *host)
{
	static const uint8_t lo6[16] = { [15] = 1 };
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)a->family }, out;
	bool v6 = a->family == AF_INET6, reach;

	if (v6)
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, a->addr, 16);
	else
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, a->addr, 4);
	if (v6 ? memcmp(a->addr, lo6, 16) == 0 : a->addr[0] == 127)
		reach = true;
	else if (shim_route((struct sockaddr *)&ss, sizeof(ss), &out) == ROUTE_TUNNEL)
		reach = tun[v6];
	else
		reach = host[v6];
	return (reach ? 0 : 2) + (v6 ? 0 : 1);
}

/* The addresses to return, in order: AF_INET6 with AI_V4MAPPED takes IPv4 ones
 * mapped when there is no IPv6 one (or always, with AI_ALL). */
static size_t pick(const struct dns_result *r, int family, int flags, struct pick *p)
{
	bool has6 = false, tun[2] = { false, false }, host[2] = { false, false };
	size_t n = 0;

	tunnel_families(&tun[0], &tun[1]);
	host_families(&host[0], &host[1]);
	for (size_t i = 0; i < r->n; i++)
		has6 |= r->addrs[i].family == AF_INET6;
	for (size_t i = 0; i < r->n; i++) {
		const struct dns_addr *a = &r->addrs[i];
		bool mapped = family == AF_INET6 && a->family == AF_INET;

		if ((family == AF_INET && a->family != AF_INET) ||
		    (mapped && (!(flags & AI_V4MAPPED) || (has6 && !(flags & AI_ALL)))))
			continue;
		p[n] = (struct pick){ *a, mapped, rank(a, tun, host) };
		/* A stable insertion by rank. */
		for (size_t j = n; j > 0 && p[j - 1].rank > p[j].rank; j--) {
			struct pick t = p[j];

			p[j] = p[j - 1];
			p[j - 1] = t;
		}
		n++;
	}
	return n;
}

static struct addrinfo *node_new(const struct pick *p, const struct kind *k)
{
	struct sockaddr_storage ss;
	struct addrinfo *ai;
	socklen_t len;

	ts_sa_make(&ss, p->a.family, p->a.addr, k->port);
	if (p->mapped)
		ts_sa_map(&ss);
	len = ts_sa_len(&ss);
	ai = calloc(1, sizeof(*ai) + len);
	if (!ai)
		return NULL;
	ai->ai_family = ss.ss_family;
	ai->ai_socktype = k->socktype;
	ai->ai_protocol = k->protocol;
	ai->ai_addrlen = len;
	ai->ai_addr = (struct sockaddr *)(ai + 1);
	memcpy(ai->ai_addr, &ss, len);
	return ai;
}

/* One node per address and kind; the canonical name on the first. */
static int build(const struct pick *p, size_t np, const struct kind *k, size_t nk,
		 const char *canon, struct addrinfo **res)
{
	struct addrinfo *head = NULL, **tail = &head;

	for (size_t i = 0; i < np; i++) {
		for (size_t j = 0; j < nk; j++) {
			if (!(*tail = node_new(&p[i], &k[j])))
				goto nomem;
			tail = &(*tail)->ai_next;
		}
	}
	if (head && canon && !(head->ai_canonname = strdup(canon)))
		goto nomem;
	*res = head;
	return head ? 0 : EAI_NODATA;
nomem:
	freeaddrinfo(head);
	return EAI_MEMORY;
}

static int by_name(const char *node, const char *service, const struct addrinfo *h,
		   struct addrinfo **res)
{
	int family = h->ai_family, ask, rc;
	struct kind k[MAX_KINDS];
	struct dns_result *r;
	struct pick *p;
	size_t nk = 0, np;

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return EAI_FAMILY;
	if ((rc = service_kinds(service, h, k, &nk)))
		return rc;
	if ((h->ai_flags & AI_ADDRCONFIG) && (family = addrconfig_family(family)) < 0)
		return EAI_NONAME;
	ask = family == AF_INET6 && (h->ai_flags & AI_V4MAPPED) ? AF_UNSPEC : family;
	r = malloc(sizeof(*r));
	p = malloc(sizeof(r->addrs) / sizeof(r->addrs[0]) * sizeof(*p));
	rc = r && p ? eai_of(dns_lookup_name(node, ask, r)) : EAI_MEMORY;
	if (!rc) {
		np = pick(r, family, h->ai_flags, p);
		rc = build(p, np, k, nk, (h->ai_flags & AI_CANONNAME) ?
			   (r->canon[0] ? r->canon : node) : NULL, res);
	}
	free(p);
	free(r);
	return rc;
}

SHIM_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
			    struct addrinfo **res)
{
	/* glibc's defaults when there are no hints */
	static const struct addrinfo defaults = { .ai_flags = AI_V4MAPPED | AI_ADDRCONFIG };
	const struct addrinfo *h = hints ? hints : &defaults;

	if (!shim_enter() || !res)
		return dns_libc.getaddrinfo(node, service, hints, res);
	if (!node || (h->ai_flags & AI_NUMERICHOST) || dns_is_numeric(node))
		return to_libc(node, service, h, res, true);
	if (!dns_lookup_ours())
		return to_libc(node, service, h, res, false);
	return by_name(node, service, h, res);
}

/* ---- getnameinfo ---- */

static bool addr_of(const struct sockaddr *sa, socklen_t len, struct dns_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		a->family = AF_INET;
		memcpy(a->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		/* A mapped address is named by its IPv4 reverse zone, as glibc does. */
		a->family = IN6_IS_ADDR_V4MAPPED(in6) ? AF_INET : AF_INET6;
		memcpy(a->addr, in6->s6_addr + (a->family == AF_INET ? 12 : 0),
		       a->family == AF_INET ? 4 : 16);
		return true;
	}
	return false;
}

/* NI_NOFQDN: the host part alone when the name is in the first search domain. */
static void strip_domain(char *name)
{
	char *dot = strchr(name, '.');
	size_t n;
	char *const *search = dns_lookup_search(&n);

	if (dot && n && strcasecmp(dot + 1, search[0]) == 0)
		*dot = 0;
}

SHIM_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
			    socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	char name[NS_MAXDNAME];
	struct dns_addr a;
	enum dns_rc rc;
	int r;

	if (!shim_enter() || !dns_lookup_ours() || !host || !hostlen || (flags & NI_NUMERICHOST) ||
	    !sa)
		return dns_libc.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
	/* libc does the checks, the service and the numeric form (the fallback). */
	r = dns_libc.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags | NI_NUMERICHOST);
	if (r || !addr_of(sa, salen, &a))
		return r;
	rc = dns_lookup_addr(&a, name, sizeof(name));
	if (rc != DNS_RC_OK)
		return !(flags & NI_NAMEREQD) ? 0 : rc == DNS_RC_AGAIN ? EAI_AGAIN : EAI_NONAME;
	if (flags & NI_NOFQDN)
		strip_domain(name);
	if (strlen(name) >= hostlen)
		return EAI_OVERFLOW;
	strcpy(host, name);
	return 0;
}
