/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the wg-quick config parser, which reads whatever file
 * TUNSHIM_CONFIG names: wg_config_parse_file on the input as a file (NUL bytes and
 * all, through a memory file) and wg_config_parse_string on it as text, which must
 * agree when there is no NUL. Beside ASan and UBSan it checks what
 * the parser promises: a failure says why in "NAME:..." form and leaves nothing
 * to free; a success gives a config whose counts, prefixes, port and MTU are in
 * range, whose public key belongs to its private key, and whose every peer has a
 * distinct key that is not our own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
	abort();
}

static void check_prefixes(const struct wg_prefix *p, size_t n)
{
	if (n && !p)
		fail("prefix count without prefixes");
	for (size_t i = 0; i < n; i++) {
		if (p[i].ip.family != AF_INET && p[i].ip.family != AF_INET6)
			fail("a prefix of no known family");
		if (p[i].cidr > (p[i].ip.family == AF_INET ? 32 : 128))
			fail("a prefix length past the address");
	}
}

static void check_peer(const struct wg_config *cfg, size_t i)
{
	const struct wg_peer_config *pc = &cfg->peers[i];

	check_prefixes(pc->allowed_ips, pc->n_allowed_ips);
	if (pc->has_preshared_key != (pc->preshared_key != NULL))
		fail("has_preshared_key disagrees with the key");
	if (pc->endpoint_host && (!*pc->endpoint_host || !pc->endpoint_port))
		fail("an endpoint with an empty host or port 0");
	if (!memcmp(pc->public_key, cfg->public_key, 32))
		fail("a peer with our own public key");
	for (size_t j = 0; j < i; j++)
		if (!memcmp(pc->public_key, cfg->peers[j].public_key, 32))
			fail("two peers with one public key");
}

static void check_config(const struct wg_config *cfg)
{
	uint8_t pub[32];

	if (!cfg->private_key || !cfg->path)
		fail("success without a private key or a name");
	crypto_scalarmult_base(pub, cfg->private_key);
	if (memcmp(pub, cfg->public_key, 32))
		fail("the public key is not the private key's");
	if (cfg->mtu <= 0 || cfg->mtu > 65535)
		fail("an MTU out of range");
	if (!cfg->has_listen_port && cfg->listen_port)
		fail("a listen port without has_listen_port");
	check_prefixes(cfg->addresses, cfg->n_addresses);
	if ((cfg->n_dns && !cfg->dns) || (cfg->n_dns_search && !cfg->dns_search) ||
	    (cfg->n_peers && !cfg->peers) || (cfg->n_warnings && !cfg->warnings))
		fail("a count without its array");
	for (size_t i = 0; i < cfg->n_dns_search; i++)
		if (!cfg->dns_search[i] || !*cfg->dns_search[i])
			fail("an empty search domain");
	for (size_t i = 0; i < cfg->n_peers; i++)
		check_peer(cfg, i);
}

/* The file entry point (what TUNSHIM_CONFIG uses) on the same bytes, NULs and all,
 * through a memory file. Returns its result; err gets its message. */
static int parse_file(const uint8_t *data, size_t size, struct wg_config *cfg, char *err,
		      size_t errlen)
{
	char path[64];
	int fd = memfd_create("fuzz.conf", MFD_CLOEXEC), ret;

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		fail("cannot make a memory file");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = wg_config_parse_file(path, cfg, err, errlen);
	close(fd);
	return ret;
}

/* The message without its "NAME:" prefix. */
static const char *after_name(const char *err, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(err, name, n) || err[n] != ':')
		fail("a failure without a \"NAME:\" message");
	return err + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_config cfg;
	char err[512], ferr[512], *text = malloc(size + 1);
	int ret, fret;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	ret = wg_config_parse_string("fuzz.conf", text, &cfg, err, sizeof(err));
	if (ret == 0) {
		check_config(&cfg);
		wg_config_free(&cfg);
	} else {
		after_name(err, "fuzz.conf");
	}
	fret = parse_file(data, size, &cfg, ferr, sizeof(ferr));
	if (fret == 0) {
		check_config(&cfg);
		wg_config_free(&cfg);
	} else if (!strstr(ferr, ":")) {
		fail("a file failure without a \"NAME:\" message");
	}
	/* Without a NUL byte, file and string are the same text: the same verdict. */
	if (!memchr(data, 0, size) && size <= 1024 * 1024 &&
	    (ret != fret || (ret && strcmp(after_name(err, "fuzz.conf"),
					  strchr(ferr + strlen("/proc/self/fd/"), ':')))))
		fail("the file and the string parser disagree");
	free(text);
	return 0;
}
