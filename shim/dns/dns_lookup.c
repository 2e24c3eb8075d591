/* SPDX-License-Identifier: MIT */
/* Names looked up as the host resolver would, but asked of the tunnel's DNS servers:
 * /etc/hosts first, then the search list of `DNS =` with glibc's ndots rule. Without
 * `DNS =`, resolv.conf's servers and search list when the tunnel carries one of them. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lookup.h"
#include "log.h"
#include "shim.h"
#include "sockaddr.h"

#define NDOTS 1          /* glibc's default */
#define TIMEOUT_MS 1000  /* per server and attempt; glibc's is 5 s, too long to wait */
#define ATTEMPTS 2

static struct dns_server *servers;
static size_t n_servers;
static int first_server; /* the one that answered last: start there */
static pthread_once_t servers_once = PTHREAD_ONCE_INIT;
static bool resolv_tunnelled; /* [const] after resolv_once */
static pthread_once_t resolv_once = PTHREAD_ONCE_INIT;

static void server_at(struct dns_server *s, const struct dns_addr *a)
{
	memset(s, 0, sizeof(*s));
	ts_sa_make(&s->addr, a->family, a->addr, htons(53));
}

/* Without DNS =, wg-quick's routes would carry glibc's own queries to a nameserver
 * inside AllowedIPs through the tunnel; glibc's resolver uses calls no preload sees,
 * so the shim asks resolv.conf's nameservers itself, routed as any traffic is (the
 * tunnel for that one, the host for the others, in resolv.conf's order). Decided on
 * the first lookup: the host's routes are read only then. */
static void resolv_check(void)
{
	struct sockaddr_storage ss, norm;

	for (size_t i = 0; i < dns_resolv.n_ns && !resolv_tunnelled; i++) {
		ts_sa_make(&ss, dns_resolv.ns[i].family, dns_resolv.ns[i].addr, htons(53));
		resolv_tunnelled = shim_route((struct sockaddr *)&ss, ts_sa_len(&ss), &norm) ==
				   ROUTE_TUNNEL;
	}
	if (resolv_tunnelled)
		ts_info("dns: a nameserver of /etc/resolv.conf is inside the tunnel: lookups go "
			"through it");
}

static bool resolv_in_tunnel(void)
{
	if (shim_mode != SHIM_ON || shim_cfg.n_dns)
		return false;
	pthread_once(&resolv_once, resolv_check);
	return resolv_tunnelled;
}

static void servers_init(void)
{
	bool resolv = resolv_in_tunnel();
	size_t n = resolv ? dns_resolv.n_ns : shim_cfg.n_dns;

	servers = calloc(n ? n : 1, sizeof(*servers));
	if (!servers)
		return;
	for (size_t i = 0; i < n; i++) {
		struct dns_addr a;

		if (resolv) {
			a = dns_resolv.ns[i];
		} else {
			a.family = shim_cfg.dns[i].family;
			memcpy(a.addr, shim_cfg.dns[i].addr, 16);
		}
		server_at(&servers[i], &a);
	}
	n_servers = n;
}

/* After shim_enter(), which has already sent the library's own lookups to libc. */
bool dns_lookup_ours(void)
{
	return shim_mode == SHIM_FAIL_CLOSED ||
	       (shim_mode == SHIM_ON && (shim_cfg.n_dns || resolv_in_tunnel()));
}

char *const *dns_lookup_search(size_t *n)
{
	if (resolv_in_tunnel()) {
		*n = dns_resolv.n_search;
		return dns_resolv.search;
	}
	*n = shim_cfg.n_dns_search;
	return shim_cfg.dns_search;
}

bool dns_is_numeric(const char *name)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in_addr a4;
	uint8_t a6[16];
	size_t n = strcspn(name, "%");

	/* inet_aton: glibc also takes "10.1" and "0x0a.1" as numbers. */
	if (inet_aton(name, &a4))
		return true;
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, name, n);
	buf[n] = 0;
	return inet_pton(AF_INET6, buf, a6) == 1;
}

void dns_lookup_ask(struct dns_question *q, size_t nq)
{
	struct dns_options opt = { .timeout_ms = TIMEOUT_MS, .attempts = ATTEMPTS };
	int first = __atomic_load_n(&first_server, __ATOMIC_RELAXED);

	pthread_once(&servers_once, servers_init);
	if (!servers) {
		for (size_t i = 0; i < nq; i++)
			q[i].status = DNS_NOMEM;
		return;
	}
	dns_ask(servers, n_servers, &first, &opt, q, nq);
	__atomic_store_n(&first_server, first, __ATOMIC_RELAXED);
}

static void take(struct dns_result *out, const char *qname, const struct dns_answer *a)
{
	if (!out->n) {
		snprintf(out->canon, sizeof(out->canon), "%s", a->name);
		snprintf(out->qname, sizeof(out->qname), "%s", qname);
	}
	for (size_t i = 0; i < a->n && out->n < sizeof(out->addrs) / sizeof(out->addrs[0]); i++)
		out->addrs[out->n++] = a->addrs[i];
}

/* What the answers to one name say together: addresses from either question win;
 * NXDOMAIN is about the name, so it settles both. */
static enum dns_status combine(const struct dns_question *q, size_t nq)
{
	bool nodata = false, nxdomain = false, timeout = false, nomem = false;

	for (size_t i = 0; i < nq; i++) {
		if (q[i].status == DNS_OK)
			return DNS_OK;
		nodata |= q[i].status == DNS_NODATA;
		nxdomain |= q[i].status == DNS_NXDOMAIN;
		timeout |= q[i].status == DNS_TIMEOUT;
		nomem |= q[i].status == DNS_NOMEM;
	}
	if (nomem)
		return DNS_NOMEM;
	if (nxdomain)
		return DNS_NXDOMAIN;
	if (nodata)
		return DNS_NODATA;
	return timeout ? DNS_TIMEOUT : DNS_SERVFAIL;
}

/* One fully qualified name, A and/or AAAA at once. */
static enum dns_status query(const char *name, int family, struct dns_result *out)
{
	struct dns_answer *ans = malloc(2 * sizeof(*ans));
	struct dns_question q[2];
	size_t nq = 0;
	enum dns_status st;

	if (!ans)
		return DNS_NOMEM;
	if (family != AF_INET6)
		q[nq++] = (struct dns_question){ .name = name, .type = ns_t_a, .answer = &ans[0] };
	if (family != AF_INET)
		q[nq++] = (struct dns_question){ .name = name, .type = ns_t_aaaa, .answer = &ans[1] };
	dns_lookup_ask(q, nq);
	st = combine(q, nq);
	for (size_t i = 0; st == DNS_OK && i < nq; i++)
		if (q[i].status == DNS_OK)
			take(out, name, q[i].answer);
	free(ans);
	return st;
}

struct search {
	dns_try_fn fn;
	void *arg;
	bool nodata, servfail;
};

/* One candidate of the search list: true when the search ends with *st. */
static bool try_name(const char *name, struct search *s, enum dns_status *st)
{
	*st = s->fn(name, s->arg);
	ts_dbg("dns: %s: %s", name, *st == DNS_OK ? "found" : *st == DNS_NXDOMAIN ? "no such name" :
	       *st == DNS_NODATA ? "no record" : *st == DNS_TIMEOUT ? "no answer" : "failed");
	s->nodata |= *st == DNS_NODATA;
	s->servfail |= *st == DNS_SERVFAIL || *st == DNS_MALFORMED;
	return *st == DNS_OK || *st == DNS_TIMEOUT || *st == DNS_NOMEM;
}

static enum dns_rc rc_of(enum dns_status st, const struct search *s)
{
	switch (st) {
	case DNS_OK:
		return DNS_RC_OK;
	case DNS_TIMEOUT:
		return DNS_RC_AGAIN;
	case DNS_NOMEM:
		return DNS_RC_NOMEM;
	default:
		break;
	}
	if (s->nodata)
		return DNS_RC_NODATA;
	return s->servfail ? DNS_RC_AGAIN : DNS_RC_NONAME;
}

/* glibc's res_search: a name with at least ndots dots is tried as it is first; the
 * search domains come next; a shorter name is tried as it is last. A name ending in
 * a dot is tried only as it is. */
enum dns_rc dns_search(const char *name, dns_try_fn fn, void *arg)
{
	size_t len = strlen(name), dots = 0;
	bool absolute = len && name[len - 1] == '.';
	char cand[NS_MAXDNAME];
	struct search s = { fn, arg, false, false };
	enum dns_status st = DNS_NXDOMAIN;
	size_t n_search;
	char *const *search = dns_lookup_search(&n_search);

	for (size_t i = 0; i < len; i++)
		dots += name[i] == '.';
	if ((absolute || dots >= NDOTS) && try_name(name, &s, &st))
		return rc_of(st, &s);
	for (size_t i = 0; !absolute && i < n_search; i++) {
		if (snprintf(cand, sizeof(cand), "%s.%s", name, search[i]) >=
		    (int)sizeof(cand))
			continue;
		if (try_name(cand, &s, &st))
			return rc_of(st, &s);
	}
	if (!absolute && dots < NDOTS && try_name(name, &s, &st))
		return rc_of(st, &s);
	return rc_of(DNS_NXDOMAIN, &s);
}

struct addr_search {
	int family;
	struct dns_result *out;
};

static enum dns_status try_addrs(const char *name, void *arg)
{
	struct addr_search *a = arg;

	return query(name, a->family, a->out);
}

enum dns_rc dns_lookup_name(const char *name, int family, struct dns_result *out)
{
	out->n = 0;
	out->canon[0] = 0;
	snprintf(out->qname, sizeof(out->qname), "%s", name);
	if (!*name)
		return DNS_RC_NONAME;
	if (dns_hosts_lookup(DNS_HOSTS_PATH, name, family, out))
		return DNS_RC_OK;
	if (shim_mode != SHIM_ON) {
		ts_info("dns: \"%s\" not looked up: the tunnel config is unusable", name);
		return DNS_RC_FAIL;
	}
	return dns_search(name, try_addrs, &(struct addr_search){ family, out });
}

enum dns_rc dns_lookup_addr(const struct dns_addr *a, char *name, size_t len)
{
	char rev[NS_MAXDNAME];
	struct dns_answer *ans;
	struct dns_question q;
	enum dns_rc rc;

	if (dns_hosts_reverse(DNS_HOSTS_PATH, a, name, len))
		return DNS_RC_OK;
	if (shim_mode != SHIM_ON)
		return DNS_RC_FAIL;
	if (!(ans = malloc(sizeof(*ans))))
		return DNS_RC_NOMEM;
	dns_reverse_name(a, rev, sizeof(rev));
	q = (struct dns_question){ .name = rev, .type = ns_t_ptr, .answer = ans };
	dns_lookup_ask(&q, 1);
	switch (q.status) {
	case DNS_OK:
		snprintf(name, len, "%s", ans->name);
		rc = strlen(ans->name) < len ? DNS_RC_OK : DNS_RC_FAIL;
		break;
	case DNS_NXDOMAIN:
		rc = DNS_RC_NONAME;
		break;
	case DNS_NODATA:
		rc = DNS_RC_NODATA;
		break;
	case DNS_NOMEM:
		rc = DNS_RC_NOMEM;
		break;
	case DNS_MALFORMED:
		rc = DNS_RC_FAIL;
		break;
	default:
		rc = DNS_RC_AGAIN;
	}
	free(ans);
	return rc;
}
