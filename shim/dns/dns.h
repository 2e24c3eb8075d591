/* SPDX-License-Identifier: MIT */
/* Names through the tunnel's DNS (`DNS =` in the config).
 *
 *   dns.c           the messages: queries built and answers parsed with glibc's
 *                   libresolv (res_mkquery, ns_initparse, ns_parserr, dn_expand)
 *   dns_send.c      the exchange: UDP first, TCP when truncated, timeouts and retries
 *                   across the servers; ordinary socket calls, so the shim's own
 *                   connect() routes them into the tunnel
 *   hosts.c         /etc/hosts
 *   dns_lookup.c    what the host resolver would do: /etc/hosts first, then the
 *                   search list with ndots, asked of the `DNS =` servers
 *   dns_redirect.c  programs that speak DNS themselves (dig, c-ares) to the nameservers
 *                   of /etc/resolv.conf are sent to the tunnel's DNS instead
 *   resolve.c       the interposed getaddrinfo and getnameinfo
 *   resolve_host.c  the interposed gethostbyname* and gethostbyaddr* (struct hostent)
 *   resolve_query.c the interposed res_query, res_search, res_send and their kin
 *
 * dns.c, dns_send.c and hosts.c know nothing of the shim (dns_send.c takes the
 * servers as arguments), so tests/unit/test_dns.c links them alone. */
#ifndef TS_SHIM_DNS_H
#define TS_SHIM_DNS_H

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_MAX_ADDRS 64   /* addresses kept from one answer; the rest are dropped */
#define DNS_MAX_CHAIN 16   /* CNAME hops followed inside one answer */
#define DNS_QUERY_MAX 512  /* a question fits in a classic UDP message */
#define DNS_SEND_MAX 4096  /* a message a program prepared itself (res_send) */
#define DNS_MSG_MAX 65535  /* the largest answer (over TCP) */

struct dns_addr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

/* What one answer says about one question. */
enum dns_status {
	DNS_OK,        /* records found: addrs (A/AAAA) or name (PTR) */
	DNS_NXDOMAIN,  /* the name does not exist */
	DNS_NODATA,    /* the name exists, without records of that type */
	DNS_SERVFAIL,  /* the server could not answer (SERVFAIL, REFUSED, ...): ask another */
	DNS_TRUNCATED, /* TC set: ask again over TCP */
	DNS_MISMATCH,  /* not the answer to this question (id, question): ignore it */
	DNS_MALFORMED, /* broken: ask another server */
	DNS_TIMEOUT,   /* no answer in time, or the server is unreachable */
	DNS_NOMEM,
};

struct dns_answer {
	char name[NS_MAXDNAME];     /* canonical name after CNAMEs; the PTR target */
	struct dns_addr addrs[DNS_MAX_ADDRS];
	size_t n;
};

/* ---- dns.c: messages ---- */
/* A query for name (presentation form), class and type into buf, with a fresh random
 * id and recursion desired. Returns its length, or -1 when the name cannot be put in
 * a question (too long, empty label). */
int dns_build_query(const char *name, int cls, int type, uint8_t *buf, size_t len,
		    uint16_t *id);
/* Reads an answer to the question (id, name, type): checks that it is one, follows
 * the CNAME chain from name, and keeps the records of type at its end. Never reads
 * outside msg[0..len). */
enum dns_status dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id,
				 const char *name, int type, struct dns_answer *out);
/* The same check for a query the program made itself (any class, type or opcode):
 * the answer must carry its id, opcode and question; its records are not read
 * (OK when it has answers, NODATA when it has none). */
enum dns_status dns_check_answer(const uint8_t *msg, size_t len, const uint8_t *query,
				 size_t qlen);
/* The reverse-lookup name of an address (x.x.x.x.in-addr.arpa, nibbles.ip6.arpa). */
void dns_reverse_name(const struct dns_addr *a, char *out, size_t len);

/* ---- dns_send.c: the exchange ---- */
struct dns_server {
	struct sockaddr_storage addr; /* port 53 filled in */
};

/* One question of a batch: asked together (A and AAAA go out at once, as glibc does).
 * Either name, type and answer (class IN, records parsed), or a query as the program
 * made it, whose answer is kept as it came (res_query, res_send). */
struct dns_question {
	const char *name;
	int type;
	enum dns_status status;   /* set by dns_ask */
	struct dns_answer *answer;
	const uint8_t *query;     /* raw: the query, up to DNS_SEND_MAX bytes */
	size_t query_len;
	uint8_t *raw;             /* raw: the answer, cut to raw_cap (TC then set) */
	size_t raw_cap, raw_len;  /* raw_len: its full length; 0 when none came */
};

struct dns_options {
	int timeout_ms;   /* per server and attempt, for UDP; TCP gets twice that */
	int attempts;     /* rounds over the server list */
};

/* Asks the servers until every question has a definite answer (OK, NXDOMAIN,
 * NODATA) or the rounds run out (then the last failure stays: TIMEOUT, SERVFAIL,
 * MALFORMED). *first is the server to start with, updated to the one that answered
 * (so a dead first server costs one timeout per process, not per lookup). */
void dns_ask(const struct dns_server *servers, size_t n, int *first,
	     const struct dns_options *opt, struct dns_question *q, size_t nq);

/* Set while this thread's resolver talks to the servers: its own sockets are not
 * redirected (dns_redirect.c). */
extern __thread int dns_busy;

/* ---- hosts.c: /etc/hosts, read on every lookup as glibc's files module does ---- */
#define DNS_HOSTS_PATH "/etc/hosts"

struct dns_result {
	char canon[NS_MAXDNAME];  /* the canonical name (after CNAMEs) */
	char qname[NS_MAXDNAME];  /* the name that was found (search domain added) */
	struct dns_addr addrs[2 * DNS_MAX_ADDRS];
	size_t n;
};

/* Adds the addresses of family (AF_UNSPEC: both) that path gives name, from every
 * line where it is the name or an alias; canon becomes the first such line's name.
 * Returns how many were added. */
size_t dns_hosts_lookup(const char *path, const char *name, int family, struct dns_result *out);
/* The name of the first line of path with address a. */
bool dns_hosts_reverse(const char *path, const struct dns_addr *a, char *name, size_t len);

#endif
