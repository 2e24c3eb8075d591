/* SPDX-License-Identifier: MIT */
/* A tunnelled descriptor is one end of an AF_UNIX socketpair. Its identity (protocol,
 * tunnel addresses and ports) is written into that end's abstract name, so any
 * process that holds the descriptor (inherited through fork or exec, or received
 * with SCM_RIGHTS) can answer getsockname and getpeername without shared state. */
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>
#include "shim.h"
#include "sockaddr.h"

#define MAGIC "tunshim1"
#define MAGIC_LEN 8

struct wire_addr {
	uint8_t family;  /* 4 or 6 */
	uint8_t addr[16];
	uint8_t port[2]; /* network order */
} __attribute__((packed));

struct wire_name {
	char nul;
	char magic[MAGIC_LEN];
	uint8_t proto;
	struct wire_addr local, remote;
	uint8_t pid[4], seq[4]; /* uniqueness in the abstract namespace */
} __attribute__((packed));

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
	static uint32_t seq;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct wire_name *w = (struct wire_name *)un.sun_path;
	uint32_t pid = (uint32_t)getpid(), n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);

	_Static_assert(sizeof(struct wire_name) <= sizeof(un.sun_path), "name fits");
	memcpy(w->magic, MAGIC, MAGIC_LEN);
	w->proto = (uint8_t)c->proto;
	put_addr(&w->local, &c->local);
	put_addr(&w->remote, &c->remote);
	memcpy(w->pid, &pid, 4);
	memcpy(w->seq, &n, 4);
	return real.bind(fd, (struct sockaddr *)&un,
			 offsetof(struct sockaddr_un, sun_path) + sizeof(*w));
}

bool shim_name_decode(int fd, int *proto, struct sockaddr_storage *local,
		      struct sockaddr_storage *remote)
{
	struct sockaddr_un un;
	socklen_t len = sizeof(un);
	const struct wire_name *w = (const struct wire_name *)un.sun_path;

	if (real.getsockname(fd, (struct sockaddr *)&un, &len) < 0 || un.sun_family != AF_UNIX ||
	    len != offsetof(struct sockaddr_un, sun_path) + sizeof(*w) || w->nul != 0 ||
	    memcmp(w->magic, MAGIC, MAGIC_LEN) != 0)
		return false;
	if (proto)
		*proto = w->proto;
	if (local)
		get_addr(&w->local, local);
	if (remote)
		get_addr(&w->remote, remote);
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
