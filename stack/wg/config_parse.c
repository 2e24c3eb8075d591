/* SPDX-License-Identifier: MIT */
/* Value parsers for wg-quick configuration files: keys, addresses, prefixes,
 * endpoints, numbers and host names. Nothing here is resolved or looked up. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "config_parse.h"

#define KEY_LEN 32
#define KEY_LEN_BASE64 44

/* Our own classes: the locale must not change what a config file means. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

char *cfg_trim(char *s)
{
	size_t n;

	while (is_space(*s))
		s++;
	n = strlen(s);
	while (n && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

char *cfg_next_item(char **cursor)
{
	char *item = *cursor, *comma;

	if (!item)
		return NULL;
	comma = strchr(item, ',');
	if (comma) {
		*comma = '\0';
		*cursor = comma + 1;
	} else {
		*cursor = NULL;
	}
	return cfg_trim(item);
}

bool cfg_parse_key(const char *s, uint8_t key[32])
{
	size_t len = 0;

	/* The length check rejects unpadded and overlong input before decoding;
	 * libsodium then rejects bad characters and nonzero trailing bits. */
	if (strlen(s) == KEY_LEN_BASE64 &&
	    sodium_base642bin(key, KEY_LEN, s, KEY_LEN_BASE64, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) == 0 && len == KEY_LEN)
		return true;
	sodium_memzero(key, KEY_LEN);
	return false;
}

static bool is_base64(char c)
{
	return is_alnum(c) || c == '+' || c == '/';
}

/* 43 base64 characters carry 32 bytes: a key, with its '=' or without (pasted
 * short), alone or inside a longer value. Looser than "decodes to 32 bytes" on
 * purpose: a near-key is still most of a key. */
bool cfg_looks_like_key(const char *s)
{
	size_t run = 0;

	for (; *s; s++) {
		run = is_base64(*s) ? run + 1 : 0;
		if (run >= KEY_LEN_BASE64 - 1)
			return true;
	}
	return false;
}

bool cfg_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (!is_digit(*s))
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = v;
	return true;
}

bool cfg_valid_hostname(const char *s)
{
	size_t len = strlen(s), label = 0, i;
	bool numeric = true;

	if (len && s[len - 1] == '.')
		len--;
	/* A key pasted as a name would be sent to a resolver: never a name. */
	if (!len || len > 253 || cfg_looks_like_key(s))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (!label || s[i - 1] == '-')
				return false;
			label = 0;
			numeric = true;
			continue;
		}
		if (!is_alnum(s[i]) && !(s[i] == '-' && label))
			return false;
		if (++label > 63)
			return false;
		numeric = numeric && is_digit(s[i]);
	}
	return s[len - 1] != '-' && !numeric;
}

static bool all_digits_and_dots(const char *s)
{
	for (; *s; s++)
		if (!is_digit(*s) && *s != '.')
			return false;
	return true;
}

const char *cfg_parse_ip(const char *s, struct wg_ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (strchr(s, ':')) {
		ip->family = AF_INET6;
		if (inet_pton(AF_INET6, s, ip->addr) == 1)
			return NULL;
		return "not an IPv6 address";
	}
	ip->family = AF_INET;
	if (inet_pton(AF_INET, s, ip->addr) == 1)
		return NULL;
	return *s && all_digits_and_dots(s) ? "not an IPv4 address" : "not an IP address";
}

const char *cfg_parse_dns_entry(const char *s, struct wg_ipaddr *ip, bool *is_name)
{
	const char *why = cfg_parse_ip(s, ip);

	*is_name = false;
	if (!why)
		return NULL;
	if (cfg_valid_hostname(s)) {
		*is_name = true;
		return NULL;
	}
	/* Something numeric was meant as an address: say which kind failed. */
	if (strchr(s, ':') || all_digits_and_dots(s))
		return why;
	return "not an IP address or domain name";
}

const char *cfg_parse_prefix(const char *s, struct wg_prefix *pf)
{
	const char *slash = strchr(s, '/');
	size_t iplen = slash ? (size_t)(slash - s) : strlen(s);
	char ip[INET6_ADDRSTRLEN + 16];
	unsigned long cidr, max;
	const char *why;

	/* wg(8) drops all white space, so "10.0.0.0 / 8" is valid there too. */
	if (iplen >= sizeof(ip))
		return "not an IP address";
	memcpy(ip, s, iplen);
	ip[iplen] = '\0';
	why = cfg_parse_ip(cfg_trim(ip), &pf->ip);
	if (why)
		return why;
	max = pf->ip.family == AF_INET ? 32 : 128;
	pf->cidr = (uint8_t)max;
	if (!slash)
		return NULL;
	for (slash++; is_space(*slash); slash++)
		;
	if (!cfg_parse_uint(slash, 0, max, &cidr))
		return max == 32 ? "prefix length must be 0..32" : "prefix length must be 0..128";
	pf->cidr = (uint8_t)cidr;
	return NULL;
}

bool cfg_mask_prefix(struct wg_prefix *pf)
{
	unsigned int bytes = pf->ip.family == AF_INET ? 4 : 16, i;
	bool had_host_bits = false;
	uint8_t mask, kept;

	for (i = 0; i < bytes; i++) {
		if (pf->cidr >= 8 * (i + 1))
			mask = 0xff;
		else if (pf->cidr <= 8 * i)
			mask = 0;
		else
			mask = (uint8_t)(0xff << (8 - (pf->cidr - 8 * i)));
		kept = pf->ip.addr[i] & mask;
		had_host_bits |= kept != pf->ip.addr[i];
		pf->ip.addr[i] = kept;
	}
	return had_host_bits;
}

/* Splits "[v6]:port" or "host:port" at the port's colon; host loses its brackets. */
static const char *split_endpoint(char *s, char **host, char **port)
{
	char *colon;

	if (*s == '[') {
		char *close = strchr(s, ']');

		if (!close)
			return "missing ']'";
		if (close[1] != ':')
			return "missing port";
		*close = '\0';
		*host = s + 1;
		*port = close + 2;
		return NULL;
	}
	colon = strrchr(s, ':');
	if (!colon)
		return "missing port";
	*colon = '\0';
	if (strchr(s, ':'))
		return "IPv6 address must be in brackets, as in [fd00::1]:51820";
	*host = s;
	*port = colon + 1;
	return NULL;
}

static const char *check_endpoint_host(const char *host, bool bracketed)
{
	struct wg_ipaddr ip;

	if (!*host)
		return "missing host";
	if (bracketed)
		return cfg_parse_ip(host, &ip) || ip.family != AF_INET6 ?
		       "not an IPv6 address in brackets" : NULL;
	if (!cfg_parse_ip(host, &ip) || cfg_valid_hostname(host))
		return NULL;
	return all_digits_and_dots(host) ? "not an IPv4 address" : "invalid host name";
}

const char *cfg_parse_endpoint(char *s, char **host, uint16_t *port)
{
	bool bracketed = *s == '[';
	char *h = NULL, *p = NULL;
	unsigned long v;
	const char *why;

	why = split_endpoint(s, &h, &p);
	if (!why)
		why = check_endpoint_host(h, bracketed);
	if (why)
		return why;
	if (!*p)
		return "missing port";
	if (!cfg_parse_uint(p, 1, 65535, &v))
		return "port must be 1..65535";
	*host = h;
	*port = (uint16_t)v;
	return NULL;
}
