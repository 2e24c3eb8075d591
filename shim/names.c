/* SPDX-License-Identifier: MIT */
/* A tunnelled descriptor is one end of an AF_UNIX socketpair. Its identity (protocol,
 * tunnel addresses and ports) is written into that end's abstract name, so any
 * process that holds the descriptor (inherited through fork or exec, or received
 * with SCM_RIGHTS) can answer getsockname and getpeername without shared state.
 * Abstract names are listed in /proc/net/unix for every user, and anyone can bind
 * one: so the identity is sealed (XChaCha20-Poly1305) with a key derived from the
 * config's private key. Other users read random bytes, and a name the library did
 * not issue (a forged one on a socket passed into a wrapped program) does not open. */
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>
#include "log.h"
#include "shim.h"
#include "sockaddr.h"

#define MAGIC "tunshim2"
#define MAGIC_LEN 8
#define KEY_CONTEXT "tunshim: connection names"

struct wire_addr {
	uint8_t family;  /* 4 or 6 */
	uint8_t addr[16];
	uint8_t port[2]; /* network order */
} __attribute__((packed));

struct identity {
	uint8_t proto;
	struct wire_addr local, remote;
} __attribute__((packed));

struct wire_name {
	char nul;
	char magic[MAGIC_LEN];
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES]; /* random: also unique */
	uint8_t sealed[sizeof(struct identity) + crypto_aead_xchacha20poly1305_ietf_ABYTES];
} __attribute__((packed));

/* Guarded memory, out of core dumps; NULL without a usable config. */
static uint8_t *name_key;

void shim_names_init(const uint8_t private_key[32])
{
	uint8_t *k = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

	if (!k)
		return;
	/* A keyed hash of a context string: same key for every process with the config. */
	crypto_generichash(k, crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
			   (const uint8_t *)KEY_CONTEXT, sizeof(KEY_CONTEXT) - 1, private_key, 32);
	sodium_mprotect_readonly(k);
	name_key = k;
}

static void put_addr(struct wire_addr *w, const struct sockaddr_storage *ss)
{
	memset(w, 0, sizeof(*w));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		w->family = 4;
		memcpy(w->addr, &s4->sin_addr, 4);
		memcpy(w->port, &s4->sin_port, 2);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		w->family = 6;
		memcpy(w->addr, &s6->sin6_addr, 16);
		memcpy(w->port, &s6->sin6_port, 2);
	}
}

static void get_addr(const struct wire_addr *w, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (w->family == 4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, w->addr, 4);
		memcpy(&s4->sin_port, w->port, 2);
	} else if (w->family == 6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, w->addr, 16);
		memcpy(&s6->sin6_port, w->port, 2);
	}
}

int shim_name_bind(int fd, const struct shim_conn *c)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct wire_name *w = (struct wire_name *)un.sun_path;
	struct identity id = { .proto = (uint8_t)c->proto };
	int rc;

	_Static_assert(sizeof(struct wire_name) <= sizeof(un.sun_path), "name fits");
	if (!name_key)
		return -1;
	put_addr(&id.local, &c->local);
	put_addr(&id.remote, &c->remote);
	memcpy(w->magic, MAGIC, MAGIC_LEN);
	randombytes_buf(w->nonce, sizeof(w->nonce));
	crypto_aead_xchacha20poly1305_ietf_encrypt(w->sealed, NULL, (const uint8_t *)&id,
						   sizeof(id), (const uint8_t *)MAGIC,
						   MAGIC_LEN, NULL, w->nonce, name_key);
	sodium_memzero(&id, sizeof(id));
	rc = real.bind(fd, (struct sockaddr *)&un,
		       offsetof(struct sockaddr_un, sun_path) + sizeof(*w));
	if (rc < 0)
		ts_dbg("fd %d: cannot name the connection: %s", fd, strerror(errno));
	return rc;
}

bool shim_name_decode(int fd, int *proto, struct sockaddr_storage *local,
		      struct sockaddr_storage *remote)
{
	struct sockaddr_un un;
	socklen_t len = sizeof(un);
	const struct wire_name *w = (const struct wire_name *)un.sun_path;

	struct identity id;

	if (!name_key ||
	    real.getsockname(fd, (struct sockaddr *)&un, &len) < 0 || un.sun_family != AF_UNIX ||
	    len != offsetof(struct sockaddr_un, sun_path) + sizeof(*w) || w->nul != 0 ||
	    memcmp(w->magic, MAGIC, MAGIC_LEN) != 0 ||
	    crypto_aead_xchacha20poly1305_ietf_decrypt((uint8_t *)&id, NULL, NULL, w->sealed,
						       sizeof(w->sealed), (const uint8_t *)MAGIC,
						       MAGIC_LEN, w->nonce, name_key) != 0)
		return false;
	if (proto)
		*proto = id.proto;
	if (local)
		get_addr(&id.local, local);
	if (remote)
		get_addr(&id.remote, remote);
	return true;
}

/* Copies with the kernel's truncation rule: *len says how long the address really is. */
int shim_copy_addr(const struct sockaddr_storage *ss, struct sockaddr *out, socklen_t *len)
{
	socklen_t full = ts_sa_len(ss);

	if (!out || !len)
		return -1;
	memcpy(out, ss, *len < full ? *len : full);
	*len = full;
	return 0;
}
