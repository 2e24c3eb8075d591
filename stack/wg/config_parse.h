/* SPDX-License-Identifier: MIT */
/* Value parsers for wg-quick configuration files (internal to the config parser).
 *
 * They know nothing of files or lines: each takes one trimmed value and either
 * fills its result or says why the value is wrong, so the key handlers report
 * `FILE:LINE: invalid KEY "VALUE": WHY` in one form (the value is left out when it
 * looks like a key). */
#ifndef TS_CONFIG_PARSE_H
#define TS_CONFIG_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Strips ASCII white space (not the locale's) from both ends, in place. */
char *cfg_trim(char *s);
/* Splits a comma list in place: returns the next trimmed entry and advances
 * *cursor, or NULL when the list is used up. */
char *cfg_next_item(char **cursor);

/* A base64 key of exactly 32 bytes with '=' padding; key is wiped on failure. */
bool cfg_parse_key(const char *s, uint8_t key[32]);
/* True when s holds 43 base64 characters in a row: the shape of a 32-byte key, which
 * no message may quote and no host name may be. */
bool cfg_looks_like_key(const char *s);
/* Decimal digits only, no sign, within [min, max]. */
bool cfg_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);
/* A host name or domain: LDH labels of 1..63, at most 253 characters, an
 * optional final dot, and a last label that is not all digits (RFC 3696), so a
 * mistyped IPv4 address is not taken for a name; nothing that looks like a key. */
bool cfg_valid_hostname(const char *s);

/* The functions below return NULL on success, else the reason. */
const char *cfg_parse_ip(const char *s, struct wg_ipaddr *ip);
/* One entry of DNS =: an address (*is_name false, ip filled) or a search
 * domain (*is_name true). */
const char *cfg_parse_dns_entry(const char *s, struct wg_ipaddr *ip, bool *is_name);
/* `ip/cidr`, or a bare ip meaning /32 or /128; host bits are kept. */
const char *cfg_parse_prefix(const char *s, struct wg_prefix *pf);
/* `host:port`, `[v6]:port`; *host points into s (brackets removed). */
const char *cfg_parse_endpoint(char *s, char **host, uint16_t *port);

/* Clears the host bits of pf; returns whether there were any. */
bool cfg_mask_prefix(struct wg_prefix *pf);

#endif
