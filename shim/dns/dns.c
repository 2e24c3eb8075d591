/* SPDX-License-Identifier: MIT */
/* DNS messages: questions built with res_mkquery, answers read with ns_initparse,
 * ns_parserr and dn_expand (glibc's libresolv), never by hand. An answer comes from
 * a server that may be broken or hostile: every name is expanded by libresolv, which
 * bounds it to the message and rejects compression loops, and every record's data is
 * checked against the length its type needs before it is used. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include "dns.h"

int dns_build_query(const char *name, int cls, int type, uint8_t *buf, size_t len,
		    uint16_t *id)
{
	uint16_t rid;
	int n;

	if (!name || !*name || len > INT32_MAX)
		return -1;
	n = res_mkquery(ns_o_query, name, cls, type, NULL, 0, NULL, buf, (int)len);
	if (n < NS_HFIXEDSZ)
		return -1;
	/* res_mkquery's id comes from the clock; a server off the tunnel deserves one
	 * that cannot be guessed. */
	if (getrandom(&rid, sizeof(rid), GRND_NONBLOCK) == sizeof(rid))
		memcpy(buf, &rid, 2);
	buf[2] |= 0x01; /* RD: a stub resolver wants recursion, whatever resolv.conf says */
	*id = (uint16_t)(buf[0] << 8 | buf[1]);
	return n;
}

/* The name with one trailing dot removed: the canonical name is reported without
 * it, and names compare in that form. */
static void copy_name(char *dst, const char *src)
{
	size_t n = strnlen(src, NS_MAXDNAME - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
	if (n > 1 && dst[n - 1] == '.' && dst[n - 2] != '\\')
		dst[n - 1] = 0;
}

/* Names as libresolv presents them (dn_expand escapes the same bytes the same way
 * on both sides), compared without case and without the root's dot. */
static bool same_name(const char *a, const char *b)
{
	char x[NS_MAXDNAME], y[NS_MAXDNAME];

	copy_name(x, a);
	copy_name(y, b);
	return strcasecmp(x, y) == 0;
}

/* Is this message the answer to (id, name, type)? */
static enum dns_status check_question(ns_msg *h, const char *name, int type)
{
	ns_rr rr;

	if (ns_msg_count(*h, ns_s_qd) != 1) {
		/* Some servers drop the question from an error: the id has matched. */
		if (ns_msg_count(*h, ns_s_qd) == 0 && ns_msg_getflag(*h, ns_f_rcode) != ns_r_noerror)
			return DNS_SERVFAIL;
		return DNS_MISMATCH;
	}
	if (ns_parserr(h, ns_s_qd, 0, &rr) < 0)
		return DNS_MALFORMED;
	if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in || !same_name(ns_rr_name(rr), name))
		return DNS_MISMATCH;
	return DNS_OK;
}

/* Expands a name inside rdata; it must fill the record's data exactly, and be a
 * name: the root (expanded to "") is no host, and a PTR to it would hand
 * gethostbyaddr and getnameinfo an empty host name as a success. */
static bool rdata_name(ns_msg *h, const ns_rr *rr, char *out, size_t len)
{
	int n = dn_expand(ns_msg_base(*h), ns_msg_end(*h), ns_rr_rdata(*rr), out, (int)len);

	return n >= 0 && n == ns_rr_rdlen(*rr) && out[0];
}

/* The target of a record of type owned by owner, in the answer section: 1 found,
 * 0 none, -1 broken. */
static int find_name_record(ns_msg *h, const char *owner, int type, char *target, size_t len)
{
	ns_rr rr;

	for (int i = 0; i < ns_msg_count(*h, ns_s_an); i++) {
		if (ns_parserr(h, ns_s_an, i, &rr) < 0)
			return -1;
		if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in ||
		    !same_name(ns_rr_name(rr), owner))
			continue;
		return rdata_name(h, &rr, target, len) ? 1 : -1;
	}
	return 0;
}

/* Follows the CNAME chain from name; cur gets its end. */
static enum dns_status follow_chain(ns_msg *h, const char *name, char *cur)
{
	char next[NS_MAXDNAME];
	int r;

	copy_name(cur, name);
	for (int hop = 0;; hop++) {
		r = find_name_record(h, cur, ns_t_cname, next, sizeof(next));
		if (r < 0)
			return DNS_MALFORMED;
		if (r == 0)
			return DNS_OK;
		if (hop == DNS_MAX_CHAIN)
			return DNS_MALFORMED; /* a loop, or a chain no server should send */
		copy_name(cur, next);
	}
}

/* The A or AAAA records owned by owner. */
static enum dns_status collect_addrs(ns_msg *h, const char *owner, int type,
				     struct dns_answer *out)
{
	size_t alen = type == ns_t_a ? 4 : 16;
	ns_rr rr;

	for (int i = 0; i < ns_msg_count(*h, ns_s_an); i++) {
		if (ns_parserr(h, ns_s_an, i, &rr) < 0)
			return DNS_MALFORMED;
		if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in ||
		    !same_name(ns_rr_name(rr), owner))
			continue;
		if (ns_rr_rdlen(rr) != alen)
			return DNS_MALFORMED;
		if (out->n == DNS_MAX_ADDRS)
			continue;
		out->addrs[out->n].family = type == ns_t_a ? AF_INET : AF_INET6;
		memset(out->addrs[out->n].addr, 0, 16);
		memcpy(out->addrs[out->n].addr, ns_rr_rdata(rr), alen);
		out->n++;
	}
	return out->n ? DNS_OK : DNS_NODATA;
}

static enum dns_status read_records(ns_msg *h, const char *name, int type,
				    struct dns_answer *out)
{
	char cur[NS_MAXDNAME], target[NS_MAXDNAME];
	enum dns_status st = follow_chain(h, name, cur);
	int r;

	if (st != DNS_OK)
		return st;
	if (type == ns_t_a || type == ns_t_aaaa) {
		copy_name(out->name, cur);
		return collect_addrs(h, cur, type, out);
	}
	r = find_name_record(h, cur, type, target, sizeof(target));
	if (r < 0)
		return DNS_MALFORMED;
	if (r == 0)
		return DNS_NODATA;
	copy_name(out->name, target);
	return DNS_OK;
}

enum dns_status dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id,
				 const char *name, int type, struct dns_answer *out)
{
	enum dns_status st;
	ns_msg h;

	out->n = 0;
	out->name[0] = 0;
	/* Too short to carry our id, not a response, another id or opcode: not ours. */
	if (len < NS_HFIXEDSZ || (uint16_t)(msg[0] << 8 | msg[1]) != id || !(msg[2] & 0x80) ||
	    (msg[2] & 0x78))
		return DNS_MISMATCH;
	if (len > DNS_MSG_MAX)
		return DNS_MALFORMED;
	/* Checked before the parse: a truncated message may end inside a record. */
	if (msg[2] & 0x02)
		return DNS_TRUNCATED;
	if (ns_initparse(msg, (int)len, &h) < 0)
		return DNS_MALFORMED;
	st = check_question(&h, name, type);
	if (st != DNS_OK)
		return st;
	switch (ns_msg_getflag(h, ns_f_rcode)) {
	case ns_r_noerror:
		st = read_records(&h, name, type, out);
		if (st != DNS_OK && st != DNS_NODATA) {
			out->n = 0;
			out->name[0] = 0;
		}
		return st;
	case ns_r_nxdomain:
		return DNS_NXDOMAIN;
	default:
		return DNS_SERVFAIL;
	}
}

/* The questions of two messages are the same (names without case). */
static bool same_questions(ns_msg *a, ns_msg *b)
{
	ns_rr x, y;

	if (ns_msg_count(*a, ns_s_qd) != ns_msg_count(*b, ns_s_qd))
		return false;
	for (int i = 0; i < ns_msg_count(*a, ns_s_qd); i++) {
		if (ns_parserr(a, ns_s_qd, i, &x) < 0 || ns_parserr(b, ns_s_qd, i, &y) < 0 ||
		    ns_rr_type(x) != ns_rr_type(y) || ns_rr_class(x) != ns_rr_class(y) ||
		    !same_name(ns_rr_name(x), ns_rr_name(y)))
			return false;
	}
	return true;
}

enum dns_status dns_check_answer(const uint8_t *msg, size_t len, const uint8_t *query,
				 size_t qlen)
{
	ns_msg h, q;

	if (len < NS_HFIXEDSZ || qlen < NS_HFIXEDSZ || memcmp(msg, query, 2) != 0 ||
	    !(msg[2] & 0x80) || (msg[2] & 0x78) != (query[2] & 0x78))
		return DNS_MISMATCH;
	if (len > DNS_MSG_MAX)
		return DNS_MALFORMED;
	if (msg[2] & 0x02)
		return DNS_TRUNCATED;
	if (ns_initparse(msg, (int)len, &h) < 0)
		return DNS_MALFORMED;
	/* A query we cannot read ourselves is matched by its id alone. */
	if (qlen <= DNS_MSG_MAX && ns_initparse(query, (int)qlen, &q) == 0 &&
	    !same_questions(&h, &q))
		return ns_msg_count(h, ns_s_qd) == 0 && ns_msg_getflag(h, ns_f_rcode) ?
			DNS_SERVFAIL : DNS_MISMATCH;
	switch (ns_msg_getflag(h, ns_f_rcode)) {
	case ns_r_noerror:
		return ns_msg_count(h, ns_s_an) ? DNS_OK : DNS_NODATA;
	case ns_r_nxdomain:
		return DNS_NXDOMAIN;
	default:
		return DNS_SERVFAIL;
	}
}

void dns_reverse_name(const struct dns_addr *a, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (a->family == AF_INET) {
		snprintf(out, len, "%u.%u.%u.%u.in-addr.arpa", a->addr[3], a->addr[2], a->addr[1],
			 a->addr[0]);
		return;
	}
	for (int i = 15; i >= 0 && o + 4 < len; i--) {
		out[o++] = hex[a->addr[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a->addr[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, len - o, "ip6.arpa");
}
