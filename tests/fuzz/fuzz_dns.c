/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the DNS answer parser (shim/dns/dns.c). Answers come from
 * servers that may be broken or hostile; the input is one whole answer, read as
 * the answer to an A, an AAAA and a PTR question for one name (its id is taken
 * from the input, so the parser goes past the id check; the name is also asked
 * in another case with a final dot), and checked against a query a program made
 * itself (res_send). Beside ASan and UBSan: every status is
 * one the header lists, nothing is kept from an answer that is not OK or NODATA,
 * and what is kept is in bounds and of the family asked for. tests/fuzz/dns.dict
 * holds the pieces (the name in wire form, types, pointers) coverage needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

#define NAME "host.tunnel.test"

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_dns: invariant broken: %s\n", what);
	abort();
}

static void check_answer(enum dns_status st, int type, const struct dns_answer *a)
{
	if (st < DNS_OK || st > DNS_MALFORMED)
		fail("a status the parser cannot give");
	if (strnlen(a->name, sizeof(a->name)) == sizeof(a->name))
		fail("an unterminated name");
	if (a->n > DNS_MAX_ADDRS)
		fail("more addresses than DNS_MAX_ADDRS");
	if (st != DNS_OK && a->n)
		fail("addresses kept from an answer that is not OK");
	if (st == DNS_OK && type != ns_t_ptr && !a->n)
		fail("OK without an address");
	if (st == DNS_OK && !a->name[0])
		fail("OK without a name (canonical name, or PTR target)");
	for (size_t i = 0; i < a->n; i++)
		if (a->addrs[i].family != (type == ns_t_a ? AF_INET : AF_INET6))
			fail("an address of the other family");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = { ns_t_a, ns_t_aaaa, ns_t_ptr };
	/* The question as programs write it: plain, and absolute in another case. */
	static const char *const names[] = { NAME, "HOST.tunnel.TEST." };
	static struct dns_answer ans;
	uint8_t query[DNS_QUERY_MAX];
	uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
	enum dns_status st;
	int qlen;

	for (size_t i = 0; i < 2 * sizeof(types) / sizeof(types[0]); i++) {
		memset(&ans, 0xa5, sizeof(ans));
		st = dns_parse_answer(data, size, id, names[i / 3], types[i % 3], &ans);
		check_answer(st, types[i % 3], &ans);
	}
	qlen = dns_build_query(NAME, ns_c_in, ns_t_a, query, sizeof(query), &id);
	if (qlen < 0)
		fail("no query for a valid name");
	if (size >= 2)
		memcpy(query, data, 2);
	st = dns_check_answer(data, size, query, (size_t)qlen);
	if (st < DNS_OK || st > DNS_MALFORMED)
		fail("a status dns_check_answer cannot give");
	return 0;
}
