/* SPDX-License-Identifier: MIT */
/* One handler per key of [Interface] and [Peer]. Values arrive trimmed;
 * handlers check them with config_parse.c and store them in the wg_config.
 * PrivateKey and PresharedKey values are never quoted in a message. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <sodium.h>

#include "config_keys.h"
#include "config_parse.h"

/* A key name longer than this is quoted in no message: a base64 key pasted on
 * a line of its own is 43 characters before its '='. */
#define CFG_KEYNAME_MAX 32

struct cfg_key;
typedef bool (*key_handler)(struct cfg_parser *p, const struct cfg_key *k, char *value);

#define KEY_ONCE 1        /* a second occurrence in the same section is an error */
#define KEY_MAY_BE_EMPTY 2

struct cfg_key {
	const char *name;
	enum cfg_section section;
	key_handler parse;  /* NULL: accepted and ignored */
	int flags;
};

static bool fail_value(struct cfg_parser *p, const struct cfg_key *k, const char *quoted,
		       const char *why)
{
	return cfg_fail(p, "invalid %s %s: %s", k->name, quoted, why);
}

static bool push_prefix(struct wg_prefix **arr, size_t *n, const struct wg_prefix *pf)
{
	struct wg_prefix *grown = reallocarray(*arr, *n + 1, sizeof(**arr));

	if (!grown)
		return false;
	*arr = grown;
	grown[(*n)++] = *pf;
	return true;
}

static bool push_ip(struct wg_ipaddr **arr, size_t *n, const struct wg_ipaddr *ip)
{
	struct wg_ipaddr *grown = reallocarray(*arr, *n + 1, sizeof(**arr));

	if (!grown)
		return false;
	*arr = grown;
	grown[(*n)++] = *ip;
	return true;
}

static bool push_string(char ***arr, size_t *n, const char *s)
{
	char **grown = reallocarray(*arr, *n + 1, sizeof(**arr));

	if (!grown)
		return false;
	*arr = grown;
	grown[*n] = strdup(s);
	if (!grown[*n])
		return false;
	(*n)++;
	return true;
}

/* --- [Interface] --- */

static bool parse_private_key(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	struct wg_config *cfg = p->cfg;

	if (!cfg->private_key && !(cfg->private_key = wg_config_key_alloc()))
		return cfg_oom(p);
	if (!cfg_parse_key(value, cfg->private_key))
		return cfg_fail(p, "invalid %s (not 32 bytes of base64)", k->name);
	if (crypto_scalarmult_base(cfg->public_key, cfg->private_key) != 0)
		return cfg_fail(p, "invalid %s (no public key can be derived)", k->name);
	p->have_private_key = true;
	return true;
}

static bool parse_listen_port(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	unsigned long port;

	if (!cfg_parse_uint(value, 0, 65535, &port))
		return fail_value(p, k, cfg_quote(p, value), "must be 0..65535");
	p->cfg->listen_port = (uint16_t)port;
	p->cfg->has_listen_port = true;
	return true;
}

static bool parse_mtu(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	unsigned long mtu;

	/* 1280 is the IPv6 minimum; the tunnel always carries both families. */
	if (!cfg_parse_uint(value, 1280, 65535, &mtu))
		return fail_value(p, k, cfg_quote(p, value), "must be 1280..65535");
	p->cfg->mtu = (int)mtu;
	return true;
}

/* Calls add for each entry of a comma list; an empty list is no entries. */
static bool parse_list(struct cfg_parser *p, const struct cfg_key *k, char *value,
		       bool (*add)(struct cfg_parser *p, const struct cfg_key *k, char *item))
{
	char *cursor = *value ? value : NULL, *item;

	while ((item = cfg_next_item(&cursor))) {
		if (!*item)
			return cfg_fail(p, "empty entry in %s list", k->name);
		if (!add(p, k, item))
			return false;
	}
	return true;
}

static bool add_address(struct cfg_parser *p, const struct cfg_key *k, char *item)
{
	struct wg_config *cfg = p->cfg;
	struct wg_prefix pf;
	const char *why;

	why = cfg_parse_prefix(item, &pf);
	if (why)
		return fail_value(p, k, cfg_quote(p, item), why);
	if (!push_prefix(&cfg->addresses, &cfg->n_addresses, &pf))
		return cfg_oom(p);
	return true;
}

static bool parse_address(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	return parse_list(p, k, value, add_address);
}

static bool add_dns(struct cfg_parser *p, const struct cfg_key *k, char *item)
{
	struct wg_config *cfg = p->cfg;
	struct wg_ipaddr ip;
	const char *why;
	bool is_name, ok;

	why = cfg_parse_dns_entry(item, &ip, &is_name);
	if (why)
		return fail_value(p, k, cfg_quote(p, item), why);
	if (is_name)
		ok = push_string(&cfg->dns_search, &cfg->n_dns_search, item);
	else
		ok = push_ip(&cfg->dns, &cfg->n_dns, &ip);
	return ok ? true : cfg_oom(p);
}

static bool parse_dns(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	return parse_list(p, k, value, add_dns);
}

/* --- [Peer] --- */

static bool parse_public_key(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	struct wg_config *cfg = p->cfg;
	struct wg_peer_config *peer = cfg_cur_peer(p);
	size_t i;

	if (!cfg_parse_key(value, peer->public_key))
		return fail_value(p, k, cfg_quote(p, value), "not 32 bytes of base64");
	/* Public keys: plain memcmp, as timing reveals nothing secret here. */
	for (i = 0; i + 1 < cfg->n_peers; i++) {
		if (!memcmp(cfg->peers[i].public_key, peer->public_key, 32))
			return cfg_fail(p, "%s is already used by the [Peer] on line %d",
					k->name, cfg->peers[i].line);
	}
	p->key_lines[cfg->n_peers - 1] = p->line;
	return true;
}

static bool parse_preshared_key(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	struct wg_peer_config *peer = cfg_cur_peer(p);

	if (!peer->preshared_key && !(peer->preshared_key = wg_config_key_alloc()))
		return cfg_oom(p);
	if (!cfg_parse_key(value, peer->preshared_key))
		return cfg_fail(p, "invalid %s (not 32 bytes of base64)", k->name);
	peer->has_preshared_key = true;
	return true;
}

static bool add_allowed_ip(struct cfg_parser *p, const struct cfg_key *k, char *item)
{
	struct wg_peer_config *peer = cfg_cur_peer(p);
	char masked[INET6_ADDRSTRLEN];
	struct wg_prefix pf;
	const char *why;

	why = cfg_parse_prefix(item, &pf);
	if (why)
		return fail_value(p, k, cfg_quote(p, item), why);
	/* Like wg(8): accept host bits, route the network, and say so. */
	if (cfg_mask_prefix(&pf)) {
		inet_ntop(pf.ip.family, pf.ip.addr, masked, sizeof(masked));
		if (!cfg_warn_at(p, p->line, "%s %s has host bits set; using %s/%u",
				 k->name, cfg_quote(p, item), masked, pf.cidr))
			return false;
	}
	if (!push_prefix(&peer->allowed_ips, &peer->n_allowed_ips, &pf))
		return cfg_oom(p);
	return true;
}

static bool parse_allowed_ips(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	return parse_list(p, k, value, add_allowed_ip);
}

static bool parse_endpoint(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	struct wg_peer_config *peer = cfg_cur_peer(p);
	const char *quoted = cfg_quote(p, value), *why;
	uint16_t port;
	char *host;

	why = cfg_parse_endpoint(value, &host, &port);
	if (why)
		return fail_value(p, k, quoted, why);
	peer->endpoint_host = strdup(host);
	if (!peer->endpoint_host)
		return cfg_oom(p);
	peer->endpoint_port = port;
	return true;
}

static bool parse_keepalive(struct cfg_parser *p, const struct cfg_key *k, char *value)
{
	unsigned long secs;

	if (!strcasecmp(value, "off"))
		secs = 0;
	else if (!cfg_parse_uint(value, 0, 65535, &secs))
		return fail_value(p, k, cfg_quote(p, value), "must be 0..65535 or off");
	cfg_cur_peer(p)->persistent_keepalive = (uint16_t)secs;
	return true;
}

static const struct cfg_key keys[] = {
	{ "PrivateKey", CFG_INTERFACE, parse_private_key, KEY_ONCE },
	{ "ListenPort", CFG_INTERFACE, parse_listen_port, KEY_ONCE },
	{ "MTU", CFG_INTERFACE, parse_mtu, KEY_ONCE },
	{ "Address", CFG_INTERFACE, parse_address, KEY_MAY_BE_EMPTY },
	{ "DNS", CFG_INTERFACE, parse_dns, KEY_MAY_BE_EMPTY },
	/* wg-quick's own keys, and the kernel's routing mark: nothing for us to do. */
	{ "FwMark", CFG_INTERFACE, NULL, KEY_MAY_BE_EMPTY },
	{ "Table", CFG_INTERFACE, NULL, KEY_MAY_BE_EMPTY },
	{ "PreUp", CFG_INTERFACE, NULL, KEY_MAY_BE_EMPTY },
	{ "PostUp", CFG_INTERFACE, NULL, KEY_MAY_BE_EMPTY },
	{ "PreDown", CFG_INTERFACE, NULL, KEY_MAY_BE_EMPTY },
	{ "PostDown", CFG_INTERFACE, NULL, KEY_MAY_BE_EMPTY },
	{ "SaveConfig", CFG_INTERFACE, NULL, KEY_MAY_BE_EMPTY },
	{ "PublicKey", CFG_PEER, parse_public_key, KEY_ONCE },
	{ "PresharedKey", CFG_PEER, parse_preshared_key, KEY_ONCE },
	{ "AllowedIPs", CFG_PEER, parse_allowed_ips, KEY_MAY_BE_EMPTY },
	{ "Endpoint", CFG_PEER, parse_endpoint, KEY_ONCE },
	{ "PersistentKeepalive", CFG_PEER, parse_keepalive, KEY_ONCE },
};
_Static_assert(sizeof(keys) / sizeof(keys[0]) == CFG_N_KEYS, "CFG_N_KEYS must count keys[]");

static const struct cfg_key *find_key(const char *name)
{
	size_t i;

	for (i = 0; i < CFG_N_KEYS; i++)
		if (!strcasecmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static bool unknown_key(struct cfg_parser *p, const char *name)
{
	if (strlen(name) > CFG_KEYNAME_MAX)
		return cfg_fail(p, "line does not start with a known key");
	if (p->section == CFG_NONE)
		return cfg_fail(p, "unknown key %s", cfg_quote(p, name));
	return cfg_fail(p, "unknown key %s in [%s]", cfg_quote(p, name),
			cfg_section_names[p->section]);
}

bool cfg_parse_key_value(struct cfg_parser *p, const char *name, char *value)
{
	const struct cfg_key *k = find_key(name);
	int *seen;

	if (!k)
		return unknown_key(p, name);
	if (p->section == CFG_NONE)
		return cfg_fail(p, "%s is outside of any section", k->name);
	if (k->section != p->section)
		return cfg_fail(p, "%s belongs in [%s], not in [%s]", k->name,
				cfg_section_names[k->section], cfg_section_names[p->section]);
	if (!*value && !(k->flags & KEY_MAY_BE_EMPTY))
		return cfg_fail(p, "missing value for %s", k->name);
	if (k->flags & KEY_ONCE) {
		seen = &p->seen[k - keys];
		if (*seen)
			return cfg_fail(p, "duplicate %s in [%s] (first on line %d)", k->name,
					cfg_section_names[p->section], *seen);
		*seen = p->line;
	}
	return k->parse ? k->parse(p, k, value) : true;
}

