/* SPDX-License-Identifier: MIT */
/* The parser state shared by config.c (files, lines, sections) and
 * config_keys.c (one handler per key). Internal to the config parser. */
#ifndef TS_CONFIG_KEYS_H
#define TS_CONFIG_KEYS_H

#include <stdbool.h>

#include "config.h"

#define CFG_QUOTE_MAX 80
#define CFG_N_KEYS 17

enum cfg_section { CFG_NONE, CFG_INTERFACE, CFG_PEER };
extern const char *const cfg_section_names[];

struct cfg_parser {
	struct wg_config *cfg;
	const char *name;     /* the file name in messages */
	char *err;
	size_t errlen;
	int line;
	enum cfg_section section;
	int interface_line;   /* 0 until [Interface] is seen */
	bool have_private_key;
	int seen[CFG_N_KEYS]; /* line of each once-only key in the current section */
	int *key_lines;       /* line of each peer's PublicKey, 0 when none yet */
	size_t peers_cap;     /* room in cfg->peers and key_lines */
	char quoted[CFG_QUOTE_MAX + 6]; /* "VALUE..." and the NUL */
};

/* Both always return false, for `return cfg_fail(p, ...)`; LINE 0 means the
 * problem is not tied to a line. */
bool cfg_fail_at(struct cfg_parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool cfg_oom(struct cfg_parser *p);
#define cfg_fail(p, ...) cfg_fail_at((p), (p)->line, __VA_ARGS__)

/* Appends "FILE:LINE: warning: ..." to cfg->warnings; false only on ENOMEM. */
bool cfg_warn_at(struct cfg_parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* s made safe for a message (control characters replaced, cut at
 * CFG_QUOTE_MAX); the result lives in p->quoted until the next call. */
const char *cfg_quote(struct cfg_parser *p, const char *s);

static inline struct wg_peer_config *cfg_cur_peer(struct cfg_parser *p)
{
	return &p->cfg->peers[p->cfg->n_peers - 1];
}

/* Handles one `Key = Value` line of the current section (config_keys.c). */
bool cfg_parse_key_value(struct cfg_parser *p, const char *name, char *value);

#endif
