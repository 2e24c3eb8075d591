/* SPDX-License-Identifier: MIT */
/* DNS messages (shim/dns/dns.c) and the exchange (shim/dns/dns_send.c). Answers come from
 * servers that may be broken or hostile: a table of answers, good and bad, each with
 * the exact status it must get; every prefix of a good answer and thousands of
 * mutated ones must give a clean status (run under ASan/UBSan). Then the exchange
 * against servers in this process on loopback: a dead first server, a stray
 * datagram with another id, a truncated answer that needs TCP. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dns.h"

#define ID 0x1234
#define QR 0x8000
#define AA 0x0400
#define TC 0x0200
#define RD 0x0100
#define RA 0x0080

struct msg {
	uint8_t b[8192];
	size_t n;
	int counts[4];
};

static void put8(struct msg *m, unsigned v)
{
	if (m->n < sizeof(m->b))
		m->b[m->n++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* A name as labels, uncompressed; "" is the root. */
static void put_name(struct msg *m, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);

		put8(m, (unsigned)len);
		for (size_t i = 0; i < len; i++)
			put8(m, (uint8_t)name[i]);
		name += len + (dot ? 1 : 0);
	}
	put8(m, 0);
}

static void put_ptr(struct msg *m, unsigned off)
{
	put16(m, 0xc000 | off);
}

static void hdr(struct msg *m, unsigned id, unsigned flags)
{
	memset(m, 0, sizeof(*m));
	put16(m, id);
	put16(m, flags);
	m->n = 12;
}

/* Patches the section counts in. */
static const uint8_t *done(struct msg *m)
{
	for (int i = 0; i < 4; i++) {
		m->b[4 + 2 * i] = (uint8_t)(m->counts[i] >> 8);
		m->b[5 + 2 * i] = (uint8_t)m->counts[i];
	}
	return m->b;
}

static void question(struct msg *m, const char *name, unsigned type)
{
	put_name(m, name);
	put16(m, type);
	put16(m, ns_c_in);
	m->counts[0]++;
}

/* The fixed part of a record; the caller writes rdlength and rdata. */
static void rr_head(struct msg *m, const char *owner, unsigned type, unsigned cls)
{
	put_name(m, owner);
	put16(m, type);
	put16(m, cls);
	put32(m, 300);
	m->counts[1]++;
}

static void rr_a(struct msg *m, const char *owner, unsigned a, unsigned b, unsigned c,
		 unsigned d)
{
	rr_head(m, owner, ns_t_a, ns_c_in);
	put16(m, 4);
	put8(m, a), put8(m, b), put8(m, c), put8(m, d);
}

static void rr_aaaa(struct msg *m, const char *owner, unsigned last)
{
	rr_head(m, owner, ns_t_aaaa, ns_c_in);
	put16(m, 16);
	put16(m, 0xfd00), put16(m, 0x200);
	for (int i = 0; i < 5; i++)
		put16(m, 0);
	put16(m, last);
}

static void rr_name(struct msg *m, const char *owner, unsigned type, const char *target)
{
	struct msg t = { .n = 0 };

	put_name(&t, target);
	rr_head(m, owner, type, ns_c_in);
	put16(m, (unsigned)t.n);
	for (size_t i = 0; i < t.n; i++)
		put8(m, t.b[i]);
}

/* ---- the table ---- */

#define WEB "web.tunnel.test"

struct parse_case {
	const char *what;
	void (*build)(struct msg *m);
	const char *qname;
	int qtype;
	enum dns_status want;
	size_t want_n;
	const char *want_name; /* canonical name, or PTR target */
};

static void b_simple_a(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_a(m, WEB, 10, 200, 0, 1);
}

static void b_simple_aaaa(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_aaaa);
	rr_aaaa(m, WEB, 1);
}

/* Owner names compressed to the question, as servers send them. */
static void b_compressed(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	for (int i = 1; i <= 3; i++) {
		put_ptr(m, 12);
		put16(m, ns_t_a), put16(m, ns_c_in), put32(m, 60), put16(m, 4);
		put8(m, 10), put8(m, 200), put8(m, 0), put8(m, i);
		m->counts[1]++;
	}
}

static void b_chain(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "alias.tunnel.test", ns_t_a);
	rr_name(m, "alias.tunnel.test", ns_t_cname, "alias2.tunnel.test");
	rr_name(m, "alias2.tunnel.test", ns_t_cname, WEB);
	rr_a(m, WEB, 10, 200, 0, 1);
}

/* The same chain, records in reverse order. */
static void b_chain_reversed(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "alias.tunnel.test", ns_t_a);
	rr_a(m, WEB, 10, 200, 0, 1);
	rr_name(m, "alias2.tunnel.test", ns_t_cname, WEB);
	rr_name(m, "alias.tunnel.test", ns_t_cname, "alias2.tunnel.test");
}

static void b_chain_loop(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "a.test", ns_t_a);
	rr_name(m, "a.test", ns_t_cname, "b.test");
	rr_name(m, "b.test", ns_t_cname, "a.test");
	rr_a(m, "a.test", 10, 0, 0, 1);
}

static void b_chain_too_long(struct msg *m)
{
	char a[32], b[32];

	hdr(m, ID, QR | RD | RA);
	question(m, "c0.test", ns_t_a);
	for (int i = 0; i <= DNS_MAX_CHAIN; i++) {
		snprintf(a, sizeof(a), "c%d.test", i);
		snprintf(b, sizeof(b), "c%d.test", i + 1);
		rr_name(m, a, ns_t_cname, b);
	}
	rr_a(m, b, 10, 0, 0, 1);
}

/* A chain that ends at a name without records of the type: the name exists. */
static void b_chain_dangling(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "alias.tunnel.test", ns_t_aaaa);
	rr_name(m, "alias.tunnel.test", ns_t_cname, WEB);
}

static void b_wrong_id(struct msg *m)
{
	hdr(m, ID + 1, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_a(m, WEB, 10, 200, 0, 1);
}

static void b_query_not_answer(struct msg *m)
{
	hdr(m, ID, RD);
	question(m, WEB, ns_t_a);
}

static void b_wrong_qname(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "evil.test", ns_t_a);
	rr_a(m, "evil.test", 6, 6, 6, 6);
}

static void b_wrong_qtype(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_aaaa);
	rr_a(m, WEB, 6, 6, 6, 6);
}

static void b_two_questions(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	question(m, WEB, ns_t_a);
	rr_a(m, WEB, 6, 6, 6, 6);
}

static void b_no_question_refused(struct msg *m)
{
	hdr(m, ID, QR | ns_r_refused);
}

static void b_no_question_noerror(struct msg *m)
{
	hdr(m, ID, QR);
	rr_a(m, WEB, 6, 6, 6, 6);
}

static void b_nxdomain(struct msg *m)
{
	hdr(m, ID, QR | RD | RA | ns_r_nxdomain);
	question(m, WEB, ns_t_a);
}

static void b_servfail(struct msg *m)
{
	hdr(m, ID, QR | RD | RA | ns_r_servfail);
	question(m, WEB, ns_t_a);
}

static void b_nodata(struct msg *m)
{
	hdr(m, ID, QR | AA | RD | RA);
	question(m, WEB, ns_t_aaaa);
}

static void b_truncated_flag(struct msg *m)
{
	hdr(m, ID, QR | TC | RD | RA);
	question(m, WEB, ns_t_a);
	m->counts[1] = 40; /* claims more than it carries, as a cut message does */
}

static void b_cut_record(struct msg *m)
{
	b_simple_a(m);
	m->n -= 2;
}

static void b_trailing_garbage(struct msg *m)
{
	b_simple_a(m);
	put8(m, 0xde), put8(m, 0xad);
}

static void b_owner_ptr_loop(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	put_ptr(m, (unsigned)m->n); /* points at itself */
	put16(m, ns_t_a), put16(m, ns_c_in), put32(m, 60), put16(m, 4);
	put32(m, 0x0ac80001);
	m->counts[1]++;
}

/* Two pointers pointing at each other, inside a CNAME's data. */
static void b_rdata_ptr_loop(struct msg *m)
{
	size_t at;

	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_head(m, WEB, ns_t_cname, ns_c_in);
	put16(m, 4);
	at = m->n;
	put_ptr(m, (unsigned)at + 2);
	put_ptr(m, (unsigned)at);
}

static void b_ptr_out_of_bounds(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	put_ptr(m, 0x3fff);
	put16(m, ns_t_a), put16(m, ns_c_in), put32(m, 60), put16(m, 4);
	put32(m, 0x0ac80001);
	m->counts[1]++;
}

/* A pointer forward, to a name that is itself only a pointer back: legal, no loop. */
static void b_ptr_forward_ok(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_head(m, WEB, ns_t_cname, ns_c_in);
	put16(m, 2);
	put_ptr(m, 12);
}

static void b_a_wrong_length(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_head(m, WEB, ns_t_a, ns_c_in);
	put16(m, 5);
	put32(m, 0x0ac80001), put8(m, 9);
}

static void b_aaaa_wrong_length(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_aaaa);
	rr_head(m, WEB, ns_t_aaaa, ns_c_in);
	put16(m, 4);
	put32(m, 0x0ac80001);
}

static void b_rdlength_past_end(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_head(m, WEB, ns_t_a, ns_c_in);
	put16(m, 400);
	put32(m, 0x0ac80001);
}

static void b_cname_padded(struct msg *m)
{
	struct msg t = { .n = 0 };

	put_name(&t, WEB);
	hdr(m, ID, QR | RD | RA);
	question(m, "alias.tunnel.test", ns_t_a);
	rr_head(m, "alias.tunnel.test", ns_t_cname, ns_c_in);
	put16(m, (unsigned)t.n + 3);
	for (size_t i = 0; i < t.n; i++)
		put8(m, t.b[i]);
	put8(m, 1), put8(m, 2), put8(m, 3);
	rr_a(m, WEB, 10, 200, 0, 1);
}

/* Records for names nobody asked about are not taken. */
static void b_injected(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_a(m, "evil.test", 6, 6, 6, 6);
	rr_name(m, "other.test", ns_t_cname, WEB);
}

static void b_other_class(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_head(m, WEB, ns_t_a, ns_c_chaos);
	put16(m, 4);
	put32(m, 0x06060606);
	rr_a(m, WEB, 10, 200, 0, 1);
}

static void b_many(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "many.tunnel.test", ns_t_a);
	for (int i = 0; i < 100; i++) {
		put_ptr(m, 12);
		put16(m, ns_t_a), put16(m, ns_c_in), put32(m, 60), put16(m, 4);
		put8(m, 10), put8(m, 200), put8(m, 1), put8(m, i);
		m->counts[1]++;
	}
}

static void b_case(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "WEB.Tunnel.TEST", ns_t_a);
	rr_a(m, "web.TUNNEL.test", 10, 200, 0, 1);
}

static void b_ptr(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "1.0.200.10.in-addr.arpa", ns_t_ptr);
	rr_name(m, "1.0.200.10.in-addr.arpa", ns_t_ptr, WEB);
}

/* Classless delegation (RFC 2317): the PTR sits behind a CNAME. */
static void b_ptr_cname(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "1.0.200.10.in-addr.arpa", ns_t_ptr);
	rr_name(m, "1.0.200.10.in-addr.arpa", ns_t_cname, "1.0-63.0.200.10.in-addr.arpa");
	rr_name(m, "1.0-63.0.200.10.in-addr.arpa", ns_t_ptr, WEB);
}

/* A hostile server points a PTR, or a CNAME, at the root: no name to report. */
static void b_ptr_to_root(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, "1.0.200.10.in-addr.arpa", ns_t_ptr);
	rr_name(m, "1.0.200.10.in-addr.arpa", ns_t_ptr, "");
}

static void b_cname_to_root(struct msg *m)
{
	hdr(m, ID, QR | RD | RA);
	question(m, WEB, ns_t_a);
	rr_name(m, WEB, ns_t_cname, "");
	rr_a(m, "", 10, 200, 0, 1);
}

static void b_opcode(struct msg *m)
{
	hdr(m, ID, QR | (ns_o_notify << 11));
	question(m, WEB, ns_t_a);
	rr_a(m, WEB, 10, 200, 0, 1);
}

static void b_short(struct msg *m)
{
	hdr(m, ID, QR);
	m->n = 7;
}

static const struct parse_case cases[] = {
	{ "A record", b_simple_a, WEB, ns_t_a, DNS_OK, 1, WEB },
	{ "AAAA record", b_simple_aaaa, WEB, ns_t_aaaa, DNS_OK, 1, WEB },
	{ "absolute question name", b_simple_a, WEB ".", ns_t_a, DNS_OK, 1, WEB },
	{ "owners compressed", b_compressed, WEB, ns_t_a, DNS_OK, 3, WEB },
	{ "CNAME chain", b_chain, "alias.tunnel.test", ns_t_a, DNS_OK, 1, WEB },
	{ "CNAME chain, reversed", b_chain_reversed, "alias.tunnel.test", ns_t_a, DNS_OK, 1, WEB },
	{ "CNAME loop", b_chain_loop, "a.test", ns_t_a, DNS_MALFORMED, 0, "" },
	{ "CNAME chain too long", b_chain_too_long, "c0.test", ns_t_a, DNS_MALFORMED, 0, "" },
	{ "CNAME to nothing", b_chain_dangling, "alias.tunnel.test", ns_t_aaaa, DNS_NODATA, 0,
	  WEB },
	{ "wrong id", b_wrong_id, WEB, ns_t_a, DNS_MISMATCH, 0, "" },
	{ "a query, not an answer", b_query_not_answer, WEB, ns_t_a, DNS_MISMATCH, 0, "" },
	{ "wrong question name", b_wrong_qname, WEB, ns_t_a, DNS_MISMATCH, 0, "" },
	{ "wrong question type", b_wrong_qtype, WEB, ns_t_a, DNS_MISMATCH, 0, "" },
	{ "two questions", b_two_questions, WEB, ns_t_a, DNS_MISMATCH, 0, "" },
	{ "REFUSED without a question", b_no_question_refused, WEB, ns_t_a, DNS_SERVFAIL, 0, "" },
	{ "NOERROR without a question", b_no_question_noerror, WEB, ns_t_a, DNS_MISMATCH, 0, "" },
	{ "NXDOMAIN", b_nxdomain, WEB, ns_t_a, DNS_NXDOMAIN, 0, "" },
	{ "SERVFAIL", b_servfail, WEB, ns_t_a, DNS_SERVFAIL, 0, "" },
	{ "no records of the type", b_nodata, WEB, ns_t_aaaa, DNS_NODATA, 0, WEB },
	{ "TC set", b_truncated_flag, WEB, ns_t_a, DNS_TRUNCATED, 0, "" },
	{ "cut inside a record", b_cut_record, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "trailing garbage", b_trailing_garbage, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "owner: pointer to itself", b_owner_ptr_loop, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "CNAME data: pointer loop", b_rdata_ptr_loop, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "pointer past the end", b_ptr_out_of_bounds, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "CNAME to itself by pointer", b_ptr_forward_ok, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "A of 5 bytes", b_a_wrong_length, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "AAAA of 4 bytes", b_aaaa_wrong_length, WEB, ns_t_aaaa, DNS_MALFORMED, 0, "" },
	{ "rdlength past the end", b_rdlength_past_end, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "CNAME data longer than its name", b_cname_padded, "alias.tunnel.test", ns_t_a,
	  DNS_MALFORMED, 0, "" },
	{ "records of other names", b_injected, WEB, ns_t_a, DNS_NODATA, 0, WEB },
	{ "records of another class", b_other_class, WEB, ns_t_a, DNS_OK, 1, WEB },
	{ "100 addresses", b_many, "many.tunnel.test", ns_t_a, DNS_OK, DNS_MAX_ADDRS,
	  "many.tunnel.test" },
	{ "names compare without case", b_case, "web.tunnel.test", ns_t_a, DNS_OK, 1,
	  "web.tunnel.test" },
	{ "PTR", b_ptr, "1.0.200.10.in-addr.arpa", ns_t_ptr, DNS_OK, 0, WEB },
	{ "PTR behind a CNAME", b_ptr_cname, "1.0.200.10.in-addr.arpa", ns_t_ptr, DNS_OK, 0, WEB },
	{ "PTR to the root", b_ptr_to_root, "1.0.200.10.in-addr.arpa", ns_t_ptr, DNS_MALFORMED,
	  0, "" },
	{ "CNAME to the root", b_cname_to_root, WEB, ns_t_a, DNS_MALFORMED, 0, "" },
	{ "another opcode", b_opcode, WEB, ns_t_a, DNS_MISMATCH, 0, "" },
	{ "shorter than a header", b_short, WEB, ns_t_a, DNS_MISMATCH, 0, "" },
};

/* A copy of exactly n bytes on the heap, so ASan sees any read past it. */
static enum dns_status parse_exact(const uint8_t *b, size_t n, const char *qname, int qtype,
				   struct dns_answer *ans)
{
	uint8_t *copy = malloc(n ? n : 1);
	enum dns_status st;

	memcpy(copy, b, n);
	st = dns_parse_answer(copy, n, ID, qname, qtype, ans);
	free(copy);
	return st;
}

static void test_table(void)
{
	struct dns_answer *ans = malloc(sizeof(*ans));

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct parse_case *c = &cases[i];
		struct msg m;
		enum dns_status st;

		c->build(&m);
		st = parse_exact(done(&m), m.n, c->qname, c->qtype, ans);
		if (st != c->want)
			fprintf(stderr, "case \"%s\":\n", c->what);
		CHECK_INT(st, c->want);
		CHECK_INT(ans->n, c->want_n);
		CHECK_STR(ans->name, c->want_name);
	}
	free(ans);
}

static void test_addresses(void)
{
	static const uint8_t v6[16] = { 0xfd, 0, 2, 0, [15] = 1 };
	struct dns_answer *ans = malloc(sizeof(*ans));
	struct msg m;

	b_compressed(&m);
	CHECK_INT(parse_exact(done(&m), m.n, WEB, ns_t_a, ans), DNS_OK);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(ans->addrs[i].family, AF_INET);
		CHECK_INT(ans->addrs[i].addr[3], i + 1);
	}
	b_simple_aaaa(&m);
	CHECK_INT(parse_exact(done(&m), m.n, WEB, ns_t_aaaa, ans), DNS_OK);
	CHECK_INT(ans->addrs[0].family, AF_INET6);
	CHECK_MEM(ans->addrs[0].addr, v6, 16);
	free(ans);
}

/* Every prefix of good answers: a clean status, and never an answer. */
static void test_prefixes(void)
{
	void (*good[])(struct msg *) = { b_chain, b_compressed, b_many, b_ptr_cname };
	const char *names[] = { "alias.tunnel.test", WEB, "many.tunnel.test",
				"1.0.200.10.in-addr.arpa" };
	int types[] = { ns_t_a, ns_t_a, ns_t_a, ns_t_ptr };
	struct dns_answer *ans = malloc(sizeof(*ans));
	int bad = 0;

	for (int g = 0; g < 4; g++) {
		struct msg m;

		good[g](&m);
		done(&m);
		for (size_t n = 0; n < m.n; n++) {
			enum dns_status st = parse_exact(m.b, n, names[g], types[g], ans);

			bad += st != (n < 12 ? DNS_MISMATCH : DNS_MALFORMED) && st != DNS_NODATA;
			bad += ans->n > DNS_MAX_ADDRS;
		}
	}
	CHECK_INT(bad, 0);
	free(ans);
}

/* Random corruption of good answers: no crash, no read outside (ASan), and any
 * addresses found are within bounds. */
static void test_mutations(void)
{
	void (*good[])(struct msg *) = { b_chain, b_compressed, b_many, b_ptr_cname, b_simple_aaaa };
	const char *names[] = { "alias.tunnel.test", WEB, "many.tunnel.test",
				"1.0.200.10.in-addr.arpa", WEB };
	int types[] = { ns_t_a, ns_t_a, ns_t_a, ns_t_ptr, ns_t_aaaa };
	struct dns_answer *ans = malloc(sizeof(*ans));
	unsigned seed = 12345;
	int bad = 0;

	for (int it = 0; it < 30000; it++) {
		int g = it % 5, flips;
		struct msg m;

		good[g](&m);
		done(&m);
		flips = 1 + rand_r(&seed) % 4;
		for (int f = 0; f < flips; f++) {
			/* keep the id and QR so the parser goes past the first check */
			size_t at = 3 + (size_t)rand_r(&seed) % (m.n - 3);

			m.b[at] ^= (uint8_t)(1 + rand_r(&seed) % 255);
		}
		if (rand_r(&seed) % 4 == 0)
			m.n -= (size_t)rand_r(&seed) % m.n;
		parse_exact(m.b, m.n, names[g], types[g], ans);
		bad += ans->n > DNS_MAX_ADDRS || strlen(ans->name) >= NS_MAXDNAME;
	}
	CHECK_INT(bad, 0);
	free(ans);
}

static void test_oversized(void)
{
	size_t n = DNS_MSG_MAX + 100;
	uint8_t *big = calloc(1, n);
	struct dns_answer *ans = malloc(sizeof(*ans));
	struct msg m;

	b_simple_a(&m);
	memcpy(big, done(&m), m.n);
	CHECK_INT(dns_parse_answer(big, n, ID, WEB, ns_t_a, ans), DNS_MALFORMED);
	free(big);
	free(ans);
}

static void test_build_query(void)
{
	uint8_t q[DNS_QUERY_MAX];
	char longname[300];
	uint16_t id;
	ns_msg h;
	ns_rr rr;
	int n;

	n = dns_build_query(WEB, ns_c_in, ns_t_aaaa, q, sizeof(q), &id);
	CHECK(n > 12);
	CHECK(ns_initparse(q, n, &h) == 0);
	CHECK_INT(ns_msg_id(h), id);
	CHECK_INT(ns_msg_getflag(h, ns_f_rd), 1);
	CHECK_INT(ns_msg_getflag(h, ns_f_qr), 0);
	CHECK_INT(ns_msg_count(h, ns_s_qd), 1);
	CHECK(ns_parserr(&h, ns_s_qd, 0, &rr) == 0);
	CHECK_STR(ns_rr_name(rr), WEB);
	CHECK_INT(ns_rr_type(rr), ns_t_aaaa);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	for (int i = 50; i < 290; i += 50)
		longname[i] = '.';
	CHECK_INT(dns_build_query(longname, ns_c_in, ns_t_a, q, sizeof(q), &id), -1);
	CHECK_INT(dns_build_query("a..b", ns_c_in, ns_t_a, q, sizeof(q), &id), -1);
	CHECK_INT(dns_build_query("", ns_c_in, ns_t_a, q, sizeof(q), &id), -1);
	CHECK_INT(dns_build_query(WEB, ns_c_in, ns_t_a, q, 20, &id), -1);
}

/* The check for a program's own query (res_send): id, opcode and question. */
static void test_check_answer(void)
{
	struct msg q, a;
	const uint8_t *qb;

	hdr(&q, ID, RD);
	question(&q, "MX.Test", ns_t_mx);
	qb = done(&q);
	hdr(&a, ID, QR | RD | RA);
	question(&a, "mx.test", ns_t_mx);
	rr_name(&a, "mx.test", ns_t_ptr, "x.test"); /* records are not read */
	CHECK_INT(dns_check_answer(done(&a), a.n, qb, q.n), DNS_OK);
	hdr(&a, ID, QR | RD | RA);
	question(&a, "mx.test", ns_t_mx);
	CHECK_INT(dns_check_answer(done(&a), a.n, qb, q.n), DNS_NODATA);
	hdr(&a, ID, QR | ns_r_nxdomain);
	question(&a, "mx.test", ns_t_mx);
	CHECK_INT(dns_check_answer(done(&a), a.n, qb, q.n), DNS_NXDOMAIN);
	hdr(&a, ID, QR | ns_r_refused);
	CHECK_INT(dns_check_answer(done(&a), a.n, qb, q.n), DNS_SERVFAIL);
	hdr(&a, ID, QR);
	question(&a, "mx.test", ns_t_a);
	CHECK_INT(dns_check_answer(done(&a), a.n, qb, q.n), DNS_MISMATCH);
	hdr(&a, ID + 1, QR);
	question(&a, "mx.test", ns_t_mx);
	CHECK_INT(dns_check_answer(done(&a), a.n, qb, q.n), DNS_MISMATCH);
	hdr(&a, ID, QR | TC);
	CHECK_INT(dns_check_answer(done(&a), a.n, qb, q.n), DNS_TRUNCATED);
	hdr(&a, ID, QR | (ns_o_notify << 11));
	question(&a, "mx.test", ns_t_mx);
	CHECK_INT(dns_check_answer(done(&a), a.n, qb, q.n), DNS_MISMATCH);
	hdr(&a, ID, QR);
	question(&a, "mx.test", ns_t_mx);
	done(&a);
	a.b[a.n - 1] ^= 0xff; /* a cut question */
	a.n -= 3;
	CHECK_INT(dns_check_answer(a.b, a.n, qb, q.n), DNS_MALFORMED);
}

/* /etc/hosts as glibc's files module reads it. */
static void test_hosts(void)
{
	static const char text[] =
		"# comment line\n"
		"127.0.0.1\tlocalhost\n"
		"::1 localhost ip6-localhost # trailing comment\n"
		"10.0.0.1 Host.Example host\n"
		"fd00::1 host.example\n"
		"10.0.0.2 other host\n"
		"not-an-address bogus\n"
		"10.0.0.3\n"
		"10.0.0.4 lonely#nocomment\n";
	char path[] = "/tmp/test_dns_hosts.XXXXXX", name[NS_MAXDNAME];
	struct dns_result *r = malloc(sizeof(*r));
	struct dns_addr a = { AF_INET, { 10, 0, 0, 2 } };
	int fd = mkstemp(path);

	CHECK(fd >= 0 && write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1);
	close(fd);
	r->n = 0;
	CHECK_INT(dns_hosts_lookup(path, "host.example", AF_UNSPEC, r), 2);
	CHECK_STR(r->canon, "Host.Example");
	CHECK_INT(r->addrs[0].family, AF_INET);
	CHECK_INT(r->addrs[1].family, AF_INET6);
	r->n = 0;
	CHECK_INT(dns_hosts_lookup(path, "HOST.", AF_INET, r), 2); /* two lines name it */
	CHECK_INT(r->addrs[1].addr[3], 2);
	r->n = 0;
	CHECK_INT(dns_hosts_lookup(path, "localhost", AF_INET6, r), 1);
	r->n = 0;
	CHECK_INT(dns_hosts_lookup(path, "bogus", AF_UNSPEC, r), 0);
	CHECK_INT(dns_hosts_lookup(path, "comment", AF_UNSPEC, r), 0);
	CHECK_INT(dns_hosts_lookup(path, "lonely", AF_UNSPEC, r), 1);
	CHECK(dns_hosts_reverse(path, &a, name, sizeof(name)));
	CHECK_STR(name, "other");
	a.addr[3] = 9;
	CHECK(!dns_hosts_reverse(path, &a, name, sizeof(name)));
	CHECK_INT(dns_hosts_lookup("/nonexistent/hosts", "host", AF_UNSPEC, r), 0);
	unlink(path);
	free(r);
}

static void test_reverse_name(void)
{
	struct dns_addr v4 = { AF_INET, { 10, 200, 0, 1 } };
	struct dns_addr v6 = { AF_INET6, { 0xfd, 0, 2, 0, [15] = 0x1 } };
	char out[NS_MAXDNAME];

	dns_reverse_name(&v4, out, sizeof(out));
	CHECK_STR(out, "1.0.200.10.in-addr.arpa");
	dns_reverse_name(&v6, out, sizeof(out));
	CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.d.f.ip6.arpa");
}

/* ---- the exchange, against servers in this process ---- */

enum behaviour {
	SRV_ANSWER,      /* a plain answer over UDP */
	SRV_STRAY_FIRST, /* first a datagram with another id, then the answer */
	SRV_TRUNCATE,    /* TC over UDP; the full answer over TCP */
	SRV_SERVFAIL,
	SRV_GARBAGE,     /* a broken answer with the right id */
};

struct server {
	int udp, tcp;
	struct dns_server addr;
	enum behaviour how;
	int udp_queries, tcp_queries;
	pthread_t thread;
	int stop[2];
};

/* The answer to the query in q: 10.200.1.1 .. n for A, NODATA for AAAA. */
static size_t answer(const uint8_t *q, size_t qlen, uint8_t *out, enum behaviour how, bool tcp)
{
	struct msg m;
	size_t qend = 12;
	unsigned type;

	if (qlen < 17)
		return 0;
	while (qend < qlen && q[qend])
		qend += q[qend] + 1u;
	qend += 5;
	if (qend > qlen)
		return 0;
	type = (unsigned)q[qend - 4] << 8 | q[qend - 3];
	hdr(&m, (unsigned)q[0] << 8 | q[1], QR | RD | RA |
	    (how == SRV_SERVFAIL ? ns_r_servfail : 0) | (how == SRV_TRUNCATE && !tcp ? TC : 0));
	memcpy(m.b + 12, q + 12, qend - 12);
	m.n = qend;
	m.counts[0] = 1;
	if (how == SRV_GARBAGE) {
		m.counts[1] = 3;
		put8(&m, 0xc0);
	} else if (type == ns_t_a && how != SRV_SERVFAIL && !(how == SRV_TRUNCATE && !tcp)) {
		int count = how == SRV_TRUNCATE ? 40 : 1;

		for (int i = 1; i <= count; i++) {
			put_ptr(&m, 12);
			put16(&m, ns_t_a), put16(&m, ns_c_in), put32(&m, 60), put16(&m, 4);
			put8(&m, 10), put8(&m, 200), put8(&m, 1), put8(&m, i);
			m.counts[1]++;
		}
	}
	done(&m);
	memcpy(out, m.b, m.n);
	return m.n;
}

static void serve_udp(struct server *s)
{
	uint8_t q[512], a[8192];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(s->udp, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
	size_t alen;

	if (n <= 0)
		return;
	s->udp_queries++;
	if (s->how == SRV_STRAY_FIRST) {
		uint8_t stray[sizeof(a)];
		size_t sl = answer(q, (size_t)n, stray, SRV_ANSWER, false);

		stray[1] ^= 0x55;
		sendto(s->udp, stray, sl, 0, (struct sockaddr *)&from, fl);
	}
	alen = answer(q, (size_t)n, a, s->how, false);
	sendto(s->udp, a, alen, 0, (struct sockaddr *)&from, fl);
}

static void serve_tcp(struct server *s)
{
	uint8_t q[514], a[8192 + 2];
	int c = accept(s->tcp, NULL, NULL);
	size_t qlen, alen;

	if (c < 0)
		return;
	if (recv(c, q, 2, MSG_WAITALL) == 2) {
		qlen = (size_t)q[0] << 8 | q[1];
		if (qlen <= 512 && recv(c, q + 2, qlen, MSG_WAITALL) == (ssize_t)qlen) {
			s->tcp_queries++;
			alen = answer(q + 2, qlen, a + 2, s->how, true);
			a[0] = (uint8_t)(alen >> 8);
			a[1] = (uint8_t)alen;
			send(c, a, alen + 2, MSG_NOSIGNAL);
		}
	}
	close(c);
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd p[3] = { { s->udp, POLLIN, 0 }, { s->tcp, POLLIN, 0 },
			       { s->stop[0], POLLIN, 0 } };

	while (poll(p, 3, -1) > 0 && !p[2].revents) {
		if (p[0].revents)
			serve_udp(s);
		if (p[1].revents)
			serve_tcp(s);
	}
	return NULL;
}

static int bind_lo(int type, struct sockaddr_in *a)
{
	int fd = socket(AF_INET, type, 0);
	socklen_t l = sizeof(*a);

	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) < 0)
		return -1;
	getsockname(fd, (struct sockaddr *)a, &l);
	if (type == SOCK_STREAM)
		listen(fd, 8);
	return fd;
}

/* A server on one port for UDP and TCP (retrying until a port is free for both). */
static void server_start(struct server *s, enum behaviour how, bool dead)
{
	struct sockaddr_in a;

	memset(s, 0, sizeof(*s));
	s->how = how;
	do {
		a = (struct sockaddr_in){ .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		if (s->udp > 0)
			close(s->udp);
		s->udp = bind_lo(SOCK_DGRAM, &a);
		s->tcp = bind_lo(SOCK_STREAM, &a);
	} while (s->tcp < 0);
	memcpy(&s->addr.addr, &a, sizeof(a));
	pipe(s->stop);
	if (!dead)
		pthread_create(&s->thread, NULL, server_main, s);
}

static void server_stop(struct server *s, bool dead)
{
	write(s->stop[1], "x", 1);
	if (!dead)
		pthread_join(s->thread, NULL);
	close(s->udp), close(s->tcp), close(s->stop[0]), close(s->stop[1]);
}

/* Asks A and AAAA of web.tunnel.test from the servers (the first one dead or not). */
static void ask(struct server *srv, size_t n, int *first, struct dns_answer *a4,
		struct dns_answer *a6, struct dns_question *q)
{
	struct dns_server list[4];
	struct dns_options opt = { .timeout_ms = 200, .attempts = 2 };

	for (size_t i = 0; i < n; i++)
		list[i] = srv[i].addr;
	q[0] = (struct dns_question){ .name = WEB, .type = ns_t_a, .answer = a4 };
	q[1] = (struct dns_question){ .name = WEB, .type = ns_t_aaaa, .answer = a6 };
	dns_ask(list, n, first, &opt, q, 2);
}

static void test_exchange(void)
{
	struct dns_answer *a4 = malloc(sizeof(*a4)), *a6 = malloc(sizeof(*a6));
	struct dns_question q[2];
	struct server s[2];
	int first = 0;

	server_start(&s[0], SRV_ANSWER, false);
	ask(s, 1, &first, a4, a6, q);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_INT(a4->n, 1);
	CHECK_INT(q[1].status, DNS_NODATA);
	CHECK_INT(s[0].udp_queries, 2);
	server_stop(&s[0], false);

	/* A dead first server: the second answers, and is asked first from then on. */
	server_start(&s[0], SRV_ANSWER, true);
	server_start(&s[1], SRV_ANSWER, false);
	ask(s, 2, &first, a4, a6, q);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_INT(first, 1);
	ask(s, 2, &first, a4, a6, q);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_INT(s[1].udp_queries, 4);
	server_stop(&s[0], true);
	server_stop(&s[1], false);

	/* A stray datagram with another id is ignored, not taken as the answer. */
	first = 0;
	server_start(&s[0], SRV_STRAY_FIRST, false);
	ask(s, 1, &first, a4, a6, q);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_INT(q[1].status, DNS_NODATA);
	server_stop(&s[0], false);

	/* Truncated over UDP: asked again over TCP, 40 addresses. */
	server_start(&s[0], SRV_TRUNCATE, false);
	ask(s, 1, &first, a4, a6, q);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_INT(a4->n, 40);
	CHECK_INT(s[0].tcp_queries, 2);
	server_stop(&s[0], false);

	/* SERVFAIL and garbage: the next server is asked; alone, the failure stays. */
	server_start(&s[0], SRV_SERVFAIL, false);
	server_start(&s[1], SRV_GARBAGE, false);
	ask(s, 2, &first, a4, a6, q);
	CHECK_INT(q[0].status, DNS_MALFORMED);
	CHECK_INT(s[0].udp_queries, 4); /* two rounds, two questions */
	server_stop(&s[0], false);
	server_stop(&s[1], false);

	/* A query the program made itself: its id kept, the answer as it came, cut to the
	 * caller's buffer with TC set. */
	{
		struct dns_server list[1];
		struct dns_options opt = { .timeout_ms = 200, .attempts = 2 };
		uint8_t query[DNS_QUERY_MAX], raw[600], small[100];
		uint16_t id;
		int qlen = dns_build_query("many.test", ns_c_in, ns_t_a, query, sizeof(query), &id);
		struct dns_question rq = { .query = query, .query_len = (size_t)qlen, .raw = raw,
					   .raw_cap = sizeof(raw) };

		server_start(&s[0], SRV_TRUNCATE, false);
		list[0] = s[0].addr;
		first = 0;
		dns_ask(list, 1, &first, &opt, &rq, 1);
		CHECK_INT(rq.status, DNS_OK);
		CHECK_INT(rq.raw_len, qlen + 40 * 16);
		CHECK_MEM(raw, query, 2);
		CHECK_INT(raw[7], 40);
		rq.raw = small;
		rq.raw_cap = sizeof(small);
		dns_ask(list, 1, &first, &opt, &rq, 1);
		CHECK_INT(rq.raw_len, qlen + 40 * 16);
		CHECK(small[2] & 0x02);
		server_stop(&s[0], false);
	}

	/* Nobody at all: a timeout, after two rounds of 200 ms. */
	server_start(&s[0], SRV_ANSWER, true);
	ask(s, 1, &first, a4, a6, q);
	CHECK_INT(q[0].status, DNS_TIMEOUT);
	CHECK_INT(q[1].status, DNS_TIMEOUT);
	server_stop(&s[0], true);
	free(a4);
	free(a6);
}

int main(void)
{
	test_table();
	test_addresses();
	test_prefixes();
	test_mutations();
	test_oversized();
	test_build_query();
	test_check_answer();
	test_hosts();
	test_reverse_name();
	test_exchange();
	return check_done("dns");
}
