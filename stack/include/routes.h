/* SPDX-License-Identifier: MIT */
/* Longest-prefix tables for routing decisions made outside the stack: which destinations
 * a config sends into the tunnel (every peer's AllowedIPs), and the host's own routes.
 * A table maps a prefix to its length, so a caller can compare two tables' matches. */
#ifndef TS_ROUTES_H
#define TS_ROUTES_H

#include <stdint.h>
#include "config.h"

struct ts_routes;

/* An empty table, or NULL when out of memory. */
struct ts_routes *ts_routes_new(void);
/* A table of every peer's AllowedIPs, or NULL when out of memory. */
struct ts_routes *ts_routes_from_config(const struct wg_config *cfg);
/* family is AF_INET (addr: 4 bytes) or AF_INET6 (16 bytes). Returns 0 or -errno. */
int ts_routes_add(struct ts_routes *t, int family, const uint8_t *addr, uint8_t cidr);
/* The length of the longest prefix in t that covers addr, or -1 when none does. */
int ts_routes_match(const struct ts_routes *t, int family, const uint8_t *addr);
void ts_routes_free(struct ts_routes *t);

#endif
