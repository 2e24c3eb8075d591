/* SPDX-License-Identifier: MIT */
/* res_query, res_search, res_querydomain and res_send (and their res_n* and old __res_*
 * names): programs that ask the resolver for records themselves (MX, SRV, TXT, ...).
 * glibc sends those queries with its own internal socket calls, which no preload can
 * see, so with `DNS =` set they are asked of the tunnel's servers here, with the same
 * exchange as every other lookup. A resolver state the program passes (res_n*) keeps
 * its options; its nameservers are the host's, so they are not used. */
#include <errno.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include "lookup.h"
#include "shim.h"

static void set_herrno(res_state st, int herr)
{
	h_errno = herr;
	if (st)
		st->res_h_errno = herr;
}

/* One question, the answer kept in the caller's buffer. */
static enum dns_status ask_raw(const char *name, int cls, int type, unsigned char *answer,
			       int anslen, int *len)
{
	uint8_t q[DNS_QUERY_MAX];
	uint16_t id;
	int qlen = dns_build_query(name, cls, type, q, sizeof(q), &id);
	struct dns_question qq = { .query = q, .raw = answer };

	*len = -1;
	if (qlen < 0 || anslen < NS_HFIXEDSZ)
		return qlen < 0 ? DNS_NXDOMAIN : DNS_MALFORMED;
	qq.query_len = (size_t)qlen;
	qq.raw_cap = (size_t)anslen;
	dns_lookup_ask(&qq, 1);
	if (qq.raw_len)
		*len = qq.raw_len < (size_t)anslen ? (int)qq.raw_len : anslen;
	return qq.status;
}

/* glibc's rule for res_query: an answer without records, or with an error code, is a
 * failure with h_errno telling which. */
static int query_result(res_state st, enum dns_status s, int len)
{
	switch (s) {
	case DNS_OK:
		return len;
	case DNS_NXDOMAIN:
		set_herrno(st, HOST_NOT_FOUND);
		break;
	case DNS_NODATA:
		set_herrno(st, NO_DATA);
		break;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
		set_herrno(st, TRY_AGAIN);
		break;
	default:
		set_herrno(st, NO_RECOVERY);
	}
	return -1;
}

/* The tunnel's servers answer (false: libc may, as without `DNS =`); *rc is set when
 * the config is unusable and the call must fail. */
static bool ours(res_state st, int *rc)
{
	if (!dns_lookup_ours())
		return false;
	if (shim_mode != SHIM_ON) {
		set_herrno(st, NO_RECOVERY);
		*rc = -1;
	}
	return true;
}

static int do_query(res_state st, const char *name, int cls, int type, unsigned char *answer,
		    int anslen)
{
	enum dns_status s;
	int len, rc = 0;

	if (!ours(st, &rc))
		return dns_libc.res_nquery(st, name, cls, type, answer, anslen);
	if (rc)
		return rc;
	s = ask_raw(name, cls, type, answer, anslen, &len);
	return query_result(st, s, len);
}

struct raw_search {
	int cls, type, anslen, len;
	unsigned char *answer;
};

static enum dns_status try_raw(const char *name, void *arg)
{
	struct raw_search *r = arg;

	return ask_raw(name, r->cls, r->type, r->answer, r->anslen, &r->len);
}

static int do_search(res_state st, const char *name, int cls, int type, unsigned char *answer,
		     int anslen)
{
	struct raw_search r = { cls, type, anslen, -1, answer };
	int rc = 0;

	if (!ours(st, &rc))
		return dns_libc.res_nsearch(st, name, cls, type, answer, anslen);
	if (rc)
		return rc;
	switch (dns_search(name, try_raw, &r)) {
	case DNS_RC_OK:
		return r.len;
	case DNS_RC_NONAME:
		return query_result(st, DNS_NXDOMAIN, -1);
	case DNS_RC_NODATA:
		return query_result(st, DNS_NODATA, -1);
	case DNS_RC_AGAIN:
		return query_result(st, DNS_TIMEOUT, -1);
	default:
		return query_result(st, DNS_MALFORMED, -1);
	}
}

static int do_querydomain(res_state st, const char *name, const char *domain, int cls,
			  int type, unsigned char *answer, int anslen)
{
	char full[NS_MAXDNAME];
	int rc = 0;

	if (!ours(st, &rc))
		return dns_libc.res_nquerydomain(st, name, domain, cls, type, answer, anslen);
	if (rc)
		return rc;
	if (!name || snprintf(full, sizeof(full), "%s%s%s", name, domain ? "." : "",
			      domain ? domain : "") >= (int)sizeof(full)) {
		set_herrno(st, NO_RECOVERY);
		return -1;
	}
	return do_query(st, full, cls, type, answer, anslen);
}

/* res_send: the program's own message; the answer whatever its code, as glibc. */
static int do_send(res_state st, const unsigned char *msg, int msglen, unsigned char *answer,
		   int anslen)
{
	struct dns_question q = { .query = msg, .raw = answer };
	int rc = 0;

	if (!ours(st, &rc))
		return dns_libc.res_nsend(st, msg, msglen, answer, anslen);
	if (rc || !msg || msglen < NS_HFIXEDSZ || !answer || anslen < NS_HFIXEDSZ) {
		errno = rc ? ENETUNREACH : EINVAL;
		return -1;
	}
	q.query_len = (size_t)msglen;
	q.raw_cap = (size_t)anslen;
	dns_lookup_ask(&q, 1);
	if (!q.raw_len) {
		errno = ETIMEDOUT;
		return -1;
	}
	return q.raw_len < (size_t)anslen ? (int)q.raw_len : anslen;
}

/* The entry points: res_* use the thread's own state (_res), res_n* the caller's; the
 * __res_* names are what programs built before glibc 2.34 call. */
#define EXPORT_ALIAS(name, target) \
	extern __typeof__(target) name SHIM_EXPORT __attribute__((alias(#target), copy(target)))

SHIM_EXPORT int res_nquery(res_state st, const char *name, int cls, int type,
			   unsigned char *answer, int anslen)
{
	if (!shim_enter())
		return dns_libc.res_nquery(st, name, cls, type, answer, anslen);
	return do_query(st, name, cls, type, answer, anslen);
}

SHIM_EXPORT int res_query(const char *name, int cls, int type, unsigned char *answer,
			  int anslen)
{
	if (!shim_enter() || !dns_lookup_ours())
		return dns_libc.res_query(name, cls, type, answer, anslen);
	return do_query(NULL, name, cls, type, answer, anslen);
}

SHIM_EXPORT int res_nsearch(res_state st, const char *name, int cls, int type,
			    unsigned char *answer, int anslen)
{
	if (!shim_enter())
		return dns_libc.res_nsearch(st, name, cls, type, answer, anslen);
	return do_search(st, name, cls, type, answer, anslen);
}

SHIM_EXPORT int res_search(const char *name, int cls, int type, unsigned char *answer,
			   int anslen)
{
	if (!shim_enter() || !dns_lookup_ours())
		return dns_libc.res_search(name, cls, type, answer, anslen);
	return do_search(NULL, name, cls, type, answer, anslen);
}

SHIM_EXPORT int res_nquerydomain(res_state st, const char *name, const char *domain, int cls,
				 int type, unsigned char *answer, int anslen)
{
	if (!shim_enter())
		return dns_libc.res_nquerydomain(st, name, domain, cls, type, answer, anslen);
	return do_querydomain(st, name, domain, cls, type, answer, anslen);
}

SHIM_EXPORT int res_querydomain(const char *name, const char *domain, int cls, int type,
				unsigned char *answer, int anslen)
{
	if (!shim_enter() || !dns_lookup_ours())
		return dns_libc.res_querydomain(name, domain, cls, type, answer, anslen);
	return do_querydomain(NULL, name, domain, cls, type, answer, anslen);
}

SHIM_EXPORT int res_nsend(res_state st, const unsigned char *msg, int msglen,
			  unsigned char *answer, int anslen)
{
	if (!shim_enter())
		return dns_libc.res_nsend(st, msg, msglen, answer, anslen);
	return do_send(st, msg, msglen, answer, anslen);
}

SHIM_EXPORT int res_send(const unsigned char *msg, int msglen, unsigned char *answer,
			 int anslen)
{
	if (!shim_enter() || !dns_lookup_ours())
		return dns_libc.res_send(msg, msglen, answer, anslen);
	return do_send(NULL, msg, msglen, answer, anslen);
}

EXPORT_ALIAS(__res_nquery, res_nquery);
EXPORT_ALIAS(__res_query, res_query);
EXPORT_ALIAS(__res_nsearch, res_nsearch);
EXPORT_ALIAS(__res_search, res_search);
EXPORT_ALIAS(__res_nquerydomain, res_nquerydomain);
EXPORT_ALIAS(__res_querydomain, res_querydomain);
EXPORT_ALIAS(__res_nsend, res_nsend);
EXPORT_ALIAS(__res_send, res_send);
