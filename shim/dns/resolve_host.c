/* SPDX-License-Identifier: MIT */
/* The struct hostent family: gethostbyname, gethostbyname2, their _r variants, and
 * gethostbyaddr(_r). With `DNS =` in the config, names and addresses are looked up by
 * dns_lookup.c; numeric names still go to libc, which answers them without a lookup.
 * The _r variants use only the caller's buffer; the others keep theirs per thread. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lookup.h"
#include "shim.h"
#include "sockaddr.h"

/* What goes into a hostent. */
struct host_data {
	const char *name, *alias; /* alias: NULL for none */
	int af;
	const struct dns_addr *addrs;
	size_t n;
	bool mapped; /* IPv4 addresses shown as IPv6 (::ffff:a.b.c.d) */
};

static void put_addr(uint8_t *dst, const struct dns_addr *a, bool mapped)
{
	if (!mapped) {
		memcpy(dst, a->addr, a->family == AF_INET ? 4 : 16);
		return;
	}
	ts_ip6_map(dst, a->addr);
}

/* Lays the hostent out in buf as glibc does: the pointer arrays (aligned), then the
 * addresses, then the strings. ERANGE when it does not fit. */
static int pack(struct hostent *h, char *buf, size_t len, const struct host_data *d)
{
	size_t alen = d->af == AF_INET ? 4 : 16, pad = (uintptr_t)buf % sizeof(char *);
	size_t nlen = strlen(d->name) + 1, aslen = d->alias ? strlen(d->alias) + 1 : 0;
	size_t ptrs = (d->n + 1 + (d->alias ? 2 : 1)) * sizeof(char *);
	char **list, *p;

	pad = pad ? sizeof(char *) - pad : 0;
	if (len < pad || len - pad < ptrs + d->n * alen + nlen + aslen)
		return ERANGE;
	list = (char **)(void *)(buf + pad);
	p = buf + pad + ptrs;
	h->h_addrtype = d->af;
	h->h_length = (int)alen;
	h->h_addr_list = list;
	for (size_t i = 0; i < d->n; i++, p += alen) {
		put_addr((uint8_t *)p, &d->addrs[i], d->mapped);
		list[i] = p;
	}
	list[d->n] = NULL;
	h->h_aliases = &list[d->n + 1];
	h->h_aliases[0] = NULL;
	if (d->alias) {
		h->h_aliases[0] = memcpy(p, d->alias, aslen);
		h->h_aliases[1] = NULL;
		p += aslen;
	}
	h->h_name = memcpy(p, d->name, nlen);
	return 0;
}

static int herrno_of(enum dns_rc rc)
{
	switch (rc) {
	case DNS_RC_NONAME:
		return HOST_NOT_FOUND;
	case DNS_RC_NODATA:
		return NO_DATA;
	case DNS_RC_AGAIN:
		return TRY_AGAIN;
	case DNS_RC_NOMEM:
		return NETDB_INTERNAL;
	default:
		return NO_RECOVERY;
	}
}

/* The _r contract: 0 with *result set, or *result NULL with *herr telling why and
 * the return value saying whether to retry (EAGAIN) or grow the buffer (ERANGE). */
static int fail(enum dns_rc rc, struct hostent **result, int *herr)
{
	*result = NULL;
	*herr = herrno_of(rc);
	if (rc == DNS_RC_AGAIN)
		return EAGAIN;
	return rc == DNS_RC_NOMEM ? (errno = ENOMEM) : 0;
}

static int finish(struct hostent *ret, char *buf, size_t len, const struct host_data *d,
		  struct hostent **result, int *herr)
{
	if (pack(ret, buf, len, d)) {
		*result = NULL;
		*herr = NETDB_INTERNAL;
		return errno = ERANGE;
	}
	*result = ret;
	*herr = NETDB_SUCCESS;
	return 0;
}

static bool same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	la -= la > 1 && a[la - 1] == '.';
	lb -= lb > 1 && b[lb - 1] == '.';
	return la == lb && strncasecmp(a, b, la) == 0;
}

static int by_name_r(const char *name, int af, struct hostent *ret, char *buf, size_t len,
		     struct hostent **result, int *herr)
{
	struct dns_result *r;
	struct host_data d = { .af = af };
	enum dns_rc rc;
	int e;

	if (af != AF_INET && af != AF_INET6) {
		*result = NULL;
		*herr = NETDB_INTERNAL;
		return errno = EAFNOSUPPORT;
	}
	if (!(r = malloc(sizeof(*r))))
		return fail(DNS_RC_NOMEM, result, herr);
	rc = dns_lookup_name(name, af, r);
	if (rc == DNS_RC_OK && !r->n)
		rc = DNS_RC_NODATA;
	if (rc != DNS_RC_OK) {
		free(r);
		return fail(rc, result, herr);
	}
	/* As glibc: the canonical name, and the name that led to it as an alias. */
	d.name = r->canon[0] ? r->canon : name;
	d.alias = same_name(d.name, r->qname) ? NULL : r->qname;
	d.addrs = r->addrs;
	d.n = r->n;
	e = finish(ret, buf, len, &d, result, herr);
	free(r);
	return e;
}

/* The entry test of the by-name calls: libc answers. */
static bool numeric_or_not_ours(const char *name)
{
	return !shim_enter() || !name || !dns_lookup_ours() || dns_is_numeric(name);
}

SHIM_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
				 size_t len, struct hostent **result, int *herr)
{
	if (numeric_or_not_ours(name))
		return dns_libc.gethostbyname2_r(name, af, ret, buf, len, result, herr);
	return by_name_r(name, af, ret, buf, len, result, herr);
}

SHIM_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t len,
				struct hostent **result, int *herr)
{
	if (numeric_or_not_ours(name))
		return dns_libc.gethostbyname_r(name, ret, buf, len, result, herr);
	return by_name_r(name, AF_INET, ret, buf, len, result, herr);
}

static int by_addr_r(const void *addr, socklen_t alen, int af, struct hostent *ret, char *buf,
		     size_t len, struct hostent **result, int *herr)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	char name[NS_MAXDNAME];
	struct dns_addr a = { .family = af };
	struct host_data d = { .name = name, .af = af, .addrs = &a, .n = 1 };
	enum dns_rc rc;

	if (!addr || (af == AF_INET && alen != 4) || (af == AF_INET6 && alen != 16) ||
	    (af != AF_INET && af != AF_INET6)) {
		*result = NULL;
		*herr = NETDB_INTERNAL;
		return errno = af == AF_INET || af == AF_INET6 ? EINVAL : EAFNOSUPPORT;
	}
	memcpy(a.addr, addr, alen);
	/* A mapped address is named by its IPv4 reverse zone, and shown as it came. */
	if (af == AF_INET6 && memcmp(a.addr, mapped, 12) == 0) {
		a.family = AF_INET;
		memmove(a.addr, a.addr + 12, 4);
		d.mapped = true;
	}
	rc = dns_lookup_addr(&a, name, sizeof(name));
	if (rc != DNS_RC_OK)
		return fail(rc, result, herr);
	return finish(ret, buf, len, &d, result, herr);
}

SHIM_EXPORT int gethostbyaddr_r(const void *addr, socklen_t alen, int af, struct hostent *ret,
				char *buf, size_t len, struct hostent **result, int *herr)
{
	if (!shim_enter() || !dns_lookup_ours())
		return dns_libc.gethostbyaddr_r(addr, alen, af, ret, buf, len, result, herr);
	return by_addr_r(addr, alen, af, ret, buf, len, result, herr);
}

/* ---- the non-reentrant ones: a buffer per thread, grown on ERANGE ---- */

static __thread struct {
	struct hostent h;
	char *buf;
	size_t len;
} tls;

struct host_query {
	const char *name;   /* by name, or */
	const void *addr;   /* by address */
	socklen_t alen;
	int af;
};

static struct hostent *with_tls(const struct host_query *q)
{
	struct hostent *res = NULL;
	int herr = NETDB_INTERNAL, rc;
	char *nb;

	for (;;) {
		if (!tls.buf && (tls.buf = malloc(1024)))
			tls.len = 1024;
		if (!tls.buf)
			break;
		rc = q->name ? by_name_r(q->name, q->af, &tls.h, tls.buf, tls.len, &res, &herr)
			     : by_addr_r(q->addr, q->alen, q->af, &tls.h, tls.buf, tls.len, &res,
					 &herr);
		if (rc != ERANGE || herr != NETDB_INTERNAL || tls.len >= (1 << 20))
			break;
		if (!(nb = realloc(tls.buf, 2 * tls.len)))
			break;
		tls.buf = nb;
		tls.len *= 2;
	}
	h_errno = herr;
	return res;
}

SHIM_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	if (numeric_or_not_ours(name))
		return dns_libc.gethostbyname2(name, af);
	return with_tls(&(struct host_query){ .name = name, .af = af });
}

SHIM_EXPORT struct hostent *gethostbyname(const char *name)
{
	if (numeric_or_not_ours(name))
		return dns_libc.gethostbyname(name);
	return with_tls(&(struct host_query){ .name = name, .af = AF_INET });
}

SHIM_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t alen, int af)
{
	if (!shim_enter() || !dns_lookup_ours())
		return dns_libc.gethostbyaddr(addr, alen, af);
	return with_tls(&(struct host_query){ .addr = addr, .alen = alen, .af = af });
}
