/* SPDX-License-Identifier: MIT */
/* wg-quick configuration files: a line parser in the shape of wireguard-tools'
 * config.c (one small handler per key), with "FILE:LINE:" on every message.
 *
 * The text holds private keys, so every copy of it is wiped before it is
 * freed, the keys are decoded straight into guarded memory (config.h), and no
 * message ever quotes anything that looks like a key. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "config_keys.h"
#include "config_parse.h"
#include "sys.h"

#define CFG_FILE_MAX (1024 * 1024)
#define CFG_LINE_MAX 4096
#define CFG_MTU_DEFAULT 1420

const char *const cfg_section_names[] = { "", "Interface", "Peer" };

bool cfg_fail_at(struct cfg_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!p->err || !p->errlen)
		return false;
	if (line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->name);
	if (n < 0 || (size_t)n >= p->errlen)
		return false;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

bool cfg_oom(struct cfg_parser *p)
{
	return cfg_fail_at(p, 0, "out of memory");
}

bool cfg_warn_at(struct cfg_parser *p, int line, const char *fmt, ...)
{
	struct wg_config *cfg = p->cfg;
	char msg[256], *w, **grown;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		n = asprintf(&w, "%s:%d: warning: %s", p->name, line, msg);
	else
		n = asprintf(&w, "%s: warning: %s", p->name, msg);
	if (n < 0)
		return cfg_oom(p);
	grown = reallocarray(cfg->warnings, cfg->n_warnings + 1, sizeof(*grown));
	if (!grown) {
		free(w);
		return cfg_oom(p);
	}
	cfg->warnings = grown;
	cfg->warnings[cfg->n_warnings++] = w;
	return true;
}

/* Control characters are replaced so a broken file cannot write escape
 * sequences to the user's terminal. A key pasted into the wrong line (or a
 * section header) is the one value never quoted: messages end up in logs. */
const char *cfg_quote(struct cfg_parser *p, const char *s)
{
	size_t i;

	if (cfg_looks_like_key(s))
		return "(not shown: it looks like a key)";
	p->quoted[0] = '"';
	for (i = 0; s[i] && i < CFG_QUOTE_MAX; i++)
		p->quoted[i + 1] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	strcpy(p->quoted + i + 1, s[i] ? "...\"" : "\"");
	return p->quoted;
}

/* --- sections --- */

/* Checks a [Peer] once all its lines are read. */
static bool end_section(struct cfg_parser *p)
{
	struct wg_peer_config *peer;

	memset(p->seen, 0, sizeof(p->seen));
	if (p->section != CFG_PEER)
		return true;
	peer = cfg_cur_peer(p);
	if (!p->key_lines[p->cfg->n_peers - 1])
		return cfg_fail_at(p, peer->line, "[Peer] has no PublicKey");
	if (!peer->n_allowed_ips)
		return cfg_warn_at(p, peer->line,
				   "[Peer] has no AllowedIPs; no traffic will use it");
	return true;
}

/* Peers are moved by hand, not realloc'd, so no stale copy of a preshared key
 * is left behind in freed memory; capacity doubles to keep that linear. */
static bool grow_peers(struct cfg_parser *p)
{
	struct wg_config *cfg = p->cfg;
	size_t cap = p->peers_cap ? 2 * p->peers_cap : 4;
	struct wg_peer_config *peers;
	int *lines;

	lines = reallocarray(p->key_lines, cap, sizeof(*lines));
	if (!lines)
		return cfg_oom(p);
	p->key_lines = lines;
	peers = calloc(cap, sizeof(*peers));
	if (!peers)
		return cfg_oom(p);
	if (cfg->n_peers) {
		memcpy(peers, cfg->peers, cfg->n_peers * sizeof(*peers));
		sodium_memzero(cfg->peers, cfg->n_peers * sizeof(*peers));
	}
	free(cfg->peers);
	cfg->peers = peers;
	p->peers_cap = cap;
	return true;
}

static bool add_peer(struct cfg_parser *p)
{
	struct wg_config *cfg = p->cfg;

	if (cfg->n_peers == p->peers_cap && !grow_peers(p))
		return false;
	p->key_lines[cfg->n_peers] = 0;
	cfg->peers[cfg->n_peers++].line = p->line;
	return true;
}

static bool parse_section(struct cfg_parser *p, char *line)
{
	size_t len = strlen(line);
	const char *quoted;
	char *name;

	if (line[len - 1] != ']')
		return cfg_fail(p, "malformed section header %s", cfg_quote(p, line));
	if (!end_section(p))
		return false;
	quoted = cfg_quote(p, line);
	line[len - 1] = '\0';
	name = cfg_trim(line + 1);
	if (!strcasecmp(name, "Interface")) {
		if (p->interface_line)
			return cfg_fail(p, "second [Interface] section (first on line %d)",
					p->interface_line);
		p->interface_line = p->line;
		p->section = CFG_INTERFACE;
		return true;
	}
	if (!strcasecmp(name, "Peer")) {
		p->section = CFG_PEER;
		return add_peer(p);
	}
	return cfg_fail(p, "unknown section %s", quoted);
}

static bool parse_line(struct cfg_parser *p, char *line)
{
	char *hash = strchr(line, '#'), *eq;

	if (hash)
		*hash = '\0';
	line = cfg_trim(line);
	if (!*line)
		return true;
	if (*line == '[')
		return parse_section(p, line);
	eq = strchr(line, '=');
	if (!eq)
		return cfg_fail(p, "expected \"Key = Value\" or \"[Section]\"");
	*eq = '\0';
	return cfg_parse_key_value(p, cfg_trim(line), cfg_trim(eq + 1));
}

/* --- the whole file --- */

/* The value is not quoted: PublicKey values look like keys, and a private key
 * pasted there by mistake must not reach a log. The line says which one. */
static bool check_peer_key(struct cfg_parser *p, size_t i)
{
	const struct wg_peer_config *peer = &p->cfg->peers[i];
	uint8_t shared[32];
	int ret;

	if (!sodium_memcmp(peer->public_key, p->cfg->public_key, 32))
		return cfg_fail_at(p, p->key_lines[i],
				   "PublicKey is our own public key (from PrivateKey)");
	/* A low-order point makes every DH with it zero: no handshake can succeed. */
	ret = crypto_scalarmult(shared, p->cfg->private_key, peer->public_key);
	sodium_memzero(shared, sizeof(shared));
	if (ret != 0)
		return cfg_fail_at(p, p->key_lines[i], "invalid PublicKey: %s",
				   "a low-order point, unusable for a handshake");
	return true;
}

static bool finish(struct cfg_parser *p)
{
	size_t i;

	if (!end_section(p))
		return false;
	if (!p->interface_line)
		return cfg_fail_at(p, 0, "missing [Interface] section");
	if (!p->have_private_key)
		return cfg_fail_at(p, 0, "missing PrivateKey in [Interface]");
	for (i = 0; i < p->cfg->n_peers; i++)
		if (!check_peer_key(p, i))
			return false;
	if (!p->cfg->n_peers)
		return cfg_warn_at(p, 0, "no [Peer] section; nothing will use the tunnel");
	return true;
}

/* text has len bytes plus a terminating NUL, and is modified in place. */
static bool parse_text(struct cfg_parser *p, char *text, size_t len)
{
	char *line = text, *end = text + len, *nl;

	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		line += 3;
	for (p->line = 1; line < end; p->line++, line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end;
		if (nl - line > CFG_LINE_MAX)
			return cfg_fail(p, "line is too long (over %d bytes)", CFG_LINE_MAX);
		if (memchr(line, '\0', (size_t)(nl - line)))
			return cfg_fail(p, "NUL byte in line");
		*nl = '\0';
		if (!parse_line(p, line))
			return false;
	}
	p->line = 0;
	return finish(p);
}

static bool begin(struct cfg_parser *p, const char *name, struct wg_config *out,
		  char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	memset(out, 0, sizeof(*out));
	p->cfg = out;
	p->name = name ? name : "(config)";
	p->err = err;
	p->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	out->mtu = CFG_MTU_DEFAULT;
	if (sodium_init() < 0)
		return cfg_fail_at(p, 0, "libsodium cannot be initialised");
	out->path = strdup(p->name);
	return out->path ? true : cfg_oom(p);
}

static int end(struct cfg_parser *p, bool ok)
{
	free(p->key_lines);
	if (!ok)
		wg_config_free(p->cfg);
	sodium_memzero(p->quoted, sizeof(p->quoted));
	return ok ? 0 : -1;
}

int wg_config_parse_string(const char *name, const char *text, struct wg_config *out,
			   char *err, size_t errlen)
{
	struct cfg_parser p;
	size_t len;
	char *copy;
	bool ok;

	if (!begin(&p, name, out, err, errlen))
		return end(&p, false);
	len = strlen(text);
	copy = malloc(len + 1);
	if (!copy)
		return end(&p, cfg_oom(&p));
	memcpy(copy, text, len + 1);
	ok = parse_text(&p, copy, len);
	sodium_memzero(copy, len + 1);
	free(copy);
	return end(&p, ok);
}

static bool read_fd(struct cfg_parser *p, int fd, char *buf, size_t *len)
{
	ssize_t n;

	*len = 0;
	do {
		n = ts_sys()->read(fd, buf + *len, CFG_FILE_MAX + 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cfg_fail_at(p, 0, "%s", strerror(errno));
		*len += (size_t)n;
		if (*len > CFG_FILE_MAX)
			return cfg_fail_at(p, 0, "file is too large (over %d bytes)", CFG_FILE_MAX);
	} while (n != 0);
	buf[*len] = '\0';
	return true;
}

/* Like wg-quick, warn when others may read the keys. Pipes and the like have
 * modes that mean nothing here. */
static bool check_mode(struct cfg_parser *p, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return cfg_fail_at(p, 0, "%s", strerror(errno));
	if (S_ISREG(st.st_mode) && (st.st_mode & 0077))
		return cfg_warn_at(p, 0, "configuration file is world accessible");
	return true;
}

int wg_config_parse_file(const char *path, struct wg_config *out, char *err, size_t errlen)
{
	struct cfg_parser p;
	char *buf = NULL;
	size_t len = 0;
	bool ok = false;
	int fd;

	if (!begin(&p, path, out, err, errlen))
		return end(&p, false);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return end(&p, cfg_fail_at(&p, 0, "%s", strerror(errno)));
	if (!check_mode(&p, fd))
		goto out;
	/* +2: one byte to notice a file over the limit, one for the NUL. */
	buf = malloc(CFG_FILE_MAX + 2);
	if (!buf) {
		cfg_oom(&p);
		goto out;
	}
	if (read_fd(&p, fd, buf, &len))
		ok = parse_text(&p, buf, len);
out:
	ts_sys()->release(fd);
	if (buf) {
		sodium_memzero(buf, len + 1);
		free(buf);
	}
	return end(&p, ok);
}

uint8_t *wg_config_key_alloc(void)
{
	uint8_t *k;

	if (sodium_init() < 0 || !(k = sodium_malloc(32)))
		return NULL;
	sodium_memzero(k, 32);
	return k;
}

void wg_config_free(struct wg_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_peers; i++) {
		free(cfg->peers[i].allowed_ips);
		free(cfg->peers[i].endpoint_host);
		sodium_free(cfg->peers[i].preshared_key);
	}
	sodium_free(cfg->private_key);
	if (cfg->peers)
		sodium_memzero(cfg->peers, cfg->n_peers * sizeof(*cfg->peers));
	free(cfg->peers);
	for (i = 0; i < cfg->n_dns_search; i++)
		free(cfg->dns_search[i]);
	for (i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->dns_search);
	free(cfg->warnings);
	free(cfg->addresses);
	free(cfg->dns);
	free(cfg->path);
	sodium_memzero(cfg, sizeof(*cfg));
}
