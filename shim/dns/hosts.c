/* SPDX-License-Identifier: MIT */
/* /etc/hosts, read on every lookup as glibc's files module does: an address, then
 * the canonical name and its aliases; `#` starts a comment. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dns.h"

static bool parse_addr(const char *s, struct dns_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, s, a->addr) == 1)
		a->family = AF_INET6;
	return a->family != 0;
}

/* Names compare without case and without a trailing dot. */
static bool same(const char *entry, const char *name, size_t nlen)
{
	return strncasecmp(entry, name, nlen) == 0 && entry[nlen] == 0;
}

/* Calls fn for each line: its address and its names (NULL-terminated); a true
 * return stops the walk. */
typedef bool (*hosts_fn)(const struct dns_addr *a, char **names, void *arg);

static void hosts_walk(const char *path, hosts_fn fn, void *arg)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, *names[36], *save, *tok;
	size_t cap = 0;
	struct dns_addr a;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		size_t n = 0;

		line[strcspn(line, "#")] = 0;
		tok = strtok_r(line, " \t\r\n", &save);
		if (!tok || !parse_addr(tok, &a))
			continue;
		while (n < 35 && (tok = strtok_r(NULL, " \t\r\n", &save)))
			names[n++] = tok;
		names[n] = NULL;
		if (n && fn(&a, names, arg))
			break;
	}
	free(line);
	fclose(f);
}

struct by_name {
	const char *name;
	size_t nlen;
	int family;
	struct dns_result *out;
	size_t added;
};

static bool add_if_named(const struct dns_addr *a, char **names, void *arg)
{
	struct by_name *q = arg;

	if (q->family != AF_UNSPEC && a->family != q->family)
		return false;
	for (size_t i = 0; names[i]; i++) {
		if (!same(names[i], q->name, q->nlen))
			continue;
		if (!q->added && !q->out->n)
			snprintf(q->out->canon, sizeof(q->out->canon), "%s", names[0]);
		if (q->out->n < sizeof(q->out->addrs) / sizeof(q->out->addrs[0])) {
			q->out->addrs[q->out->n++] = *a;
			q->added++;
		}
		break;
	}
	return false;
}

size_t dns_hosts_lookup(const char *path, const char *name, int family, struct dns_result *out)
{
	struct by_name q = { name, strlen(name), family, out, 0 };

	if (q.nlen > 1 && name[q.nlen - 1] == '.')
		q.nlen--;
	hosts_walk(path, add_if_named, &q);
	return q.added;
}

struct by_addr {
	const struct dns_addr *a;
	char *name;
	size_t len;
	bool found;
};

static bool take_if_addr(const struct dns_addr *a, char **names, void *arg)
{
	struct by_addr *q = arg;

	if (a->family != q->a->family ||
	    memcmp(a->addr, q->a->addr, a->family == AF_INET ? 4 : 16) != 0)
		return false;
	snprintf(q->name, q->len, "%s", names[0]);
	q->found = true;
	return true;
}

bool dns_hosts_reverse(const char *path, const struct dns_addr *a, char *name, size_t len)
{
	struct by_addr q = { a, name, len, false };

	hosts_walk(path, take_if_addr, &q);
	return q.found;
}
