/* SPDX-License-Identifier: MIT */
/* /etc/resolv.conf as glibc reads it: its nameservers and its search list. Read when
 * the library loads (a later chroot does not change the answer), by every process
 * with a config: DNS = needs the nameservers to redirect programs that speak DNS
 * themselves; without DNS =, a nameserver routed into the tunnel (a full tunnel)
 * makes the lookups the shim's, as wg-quick's routes would send glibc's queries
 * through the tunnel (dns_lookup.c). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lookup.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define SEPARATORS " \t\r\n"

struct dns_resolv_conf dns_resolv;

static void add_nameserver(const char *s)
{
	struct dns_addr *a = &dns_resolv.ns[dns_resolv.n_ns];
	char buf[INET6_ADDRSTRLEN + 1];
	size_t n = strcspn(s, "%");

	if (dns_resolv.n_ns == DNS_RESOLV_MAX || n >= sizeof(buf))
		return;
	memcpy(buf, s, n);
	buf[n] = 0;
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, buf, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, a->addr) == 1)
		a->family = AF_INET6;
	if (a->family)
		dns_resolv.n_ns++;
}

static void clear_search(void)
{
	for (size_t i = 0; i < dns_resolv.n_search; i++)
		free(dns_resolv.search[i]);
	dns_resolv.n_search = 0;
}

/* "search" and "domain" each replace the list; the last one in the file wins. */
static void set_search(char **save)
{
	char *tok;

	clear_search();
	while ((tok = strtok_r(NULL, SEPARATORS, save)) && dns_resolv.n_search < DNS_RESOLV_MAX) {
		if (!(dns_resolv.search[dns_resolv.n_search] = strdup(tok)))
			return;
		dns_resolv.n_search++;
	}
}

void shim_dns_resolv_load(void)
{
	char *line = NULL, *save, *tok;
	size_t cap = 0;
	FILE *f;

	if ((f = fopen(RESOLV_CONF, "re"))) {
		while (getline(&line, &cap, f) > 0) {
			tok = strtok_r(line, SEPARATORS, &save);
			if (!tok)
				continue;
			if (strcmp(tok, "nameserver") == 0 && (tok = strtok_r(NULL, SEPARATORS, &save)))
				add_nameserver(tok);
			else if (strcmp(tok, "search") == 0 || strcmp(tok, "domain") == 0)
				set_search(&save);
		}
		free(line);
		fclose(f);
	}
	/* Without a nameserver line, glibc and dig ask the local host. */
	if (!dns_resolv.n_ns) {
		add_nameserver("127.0.0.1");
		add_nameserver("::1");
	}
}
