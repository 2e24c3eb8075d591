/* SPDX-License-Identifier: MIT */
/* routes.h on top of the AllowedIPs trie: the value stored is the prefix length + 1
 * (never NULL, so a /0 prefix still matches). */
#include <errno.h>
#include <stdlib.h>
#include "allowedips.h"
#include "routes.h"

struct ts_routes {
	struct allowedips trie;
};

struct ts_routes *ts_routes_new(void)
{
	struct ts_routes *t = calloc(1, sizeof(*t));

	if (t)
		allowedips_init(&t->trie);
	return t;
}

int ts_routes_add(struct ts_routes *t, int family, const uint8_t *addr, uint8_t cidr)
{
	return allowedips_insert(&t->trie, family, addr, cidr, (void *)(uintptr_t)(cidr + 1));
}

struct ts_routes *ts_routes_from_config(const struct wg_config *cfg)
{
	struct ts_routes *t = ts_routes_new();

	for (size_t i = 0; t && i < cfg->n_peers; i++) {
		const struct wg_peer_config *p = &cfg->peers[i];

		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct wg_prefix *a = &p->allowed_ips[j];

			if (ts_routes_add(t, a->ip.family, a->ip.addr, a->cidr) < 0) {
				ts_routes_free(t);
				return NULL;
			}
		}
	}
	return t;
}

int ts_routes_match(const struct ts_routes *t, int family, const uint8_t *addr)
{
	void *v = t ? allowedips_lookup(&t->trie, family, addr) : NULL;

	return v ? (int)(uintptr_t)v - 1 : -1;
}

void ts_routes_free(struct ts_routes *t)
{
	if (!t)
		return;
	allowedips_free(&t->trie);
	free(t);
}
