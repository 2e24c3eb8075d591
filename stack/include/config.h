/* SPDX-License-Identifier: MIT */
/* wg-quick configuration files, as providers hand them out. */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wg_ipaddr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network order; first 4 bytes for AF_INET */
};

struct wg_prefix {
	struct wg_ipaddr ip;
	uint8_t cidr;
};

/* Secret keys live only in guarded memory (libsodium's sodium_malloc: out of core
 * dumps, mlocked where allowed, wiped when freed): the parsed config lasts as long as
 * the process, and the parser wipes every other copy it made on the way. */
struct wg_peer_config {
	uint8_t public_key[32];
	uint8_t *preshared_key;        /* 32 guarded bytes; NULL when absent */
	bool has_preshared_key;
	struct wg_prefix *allowed_ips;
	size_t n_allowed_ips;
	char *endpoint_host;           /* NULL when no Endpoint; host without brackets */
	uint16_t endpoint_port;
	uint16_t persistent_keepalive; /* seconds, 0 = off */
	int line;                      /* line of the [Peer] header, for messages */
};

struct wg_config {
	char *path;                    /* as given, for messages */
	uint8_t *private_key;          /* 32 guarded bytes (NULL only before parsing) */
	uint8_t public_key[32];        /* derived from private_key */
	struct wg_prefix *addresses;
	size_t n_addresses;
	struct wg_ipaddr *dns;
	size_t n_dns;
	char **dns_search;             /* non-address entries of DNS = */
	size_t n_dns_search;
	int mtu;                       /* 1420 when absent */
	uint16_t listen_port;          /* 0 when absent */
	bool has_listen_port;
	struct wg_peer_config *peers;
	size_t n_peers;
	char **warnings;               /* non-fatal findings (key file readable by others) */
	size_t n_warnings;
};

/* Both return 0, or -1 with err set to "FILE:LINE: message" (LINE omitted when the
 * problem is not tied to one line, e.g. a missing PrivateKey). The parsed config
 * is only valid on success; on failure nothing needs freeing. */
int wg_config_parse_file(const char *path, struct wg_config *out, char *err, size_t errlen);
int wg_config_parse_string(const char *name, const char *text, struct wg_config *out,
			   char *err, size_t errlen);
/* 32 bytes of guarded memory for a key (zeroed), or NULL; wg_config_free frees the
 * config's own. For code that builds a config by hand. */
uint8_t *wg_config_key_alloc(void);
/* Wipes the keys and frees everything. */
void wg_config_free(struct wg_config *cfg);

#endif
