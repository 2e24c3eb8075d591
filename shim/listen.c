/* SPDX-License-Identifier: MIT */
/* Servers: a listening socket stays a kernel socket, so host clients reach it as
 * before; the stack listens on the same port inside the tunnel and hands each tunnel
 * connection to it as a loopback connection. accept and getpeername report the
 * tunnel peer (from the stack's registry). A socket bound to one of the config's own
 * addresses listens on loopback underneath and shows its tunnel address. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include "log.h"
#include "shim.h"
#include "sockaddr.h"

static bool is_wildcard(const struct sockaddr_storage *ss)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return ss->ss_family == AF_INET6 &&
	       memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, &any6, sizeof(any6)) == 0;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port :
		     ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static void loopback(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
	set_port(ss, port);
}

/* A socket bound (in the shim) to a tunnel address gets a kernel binding on loopback
 * with the same port, if that port is free, else any. */
int shim_bind_loopback(int fd, struct shim_fd *e)
{
	struct sockaddr_storage lo;
	socklen_t len = sizeof(lo);
	struct shim_fd *t;

	loopback(e->domain, port_of(&e->bound), &lo);
	if (real.bind(fd, (struct sockaddr *)&lo, ts_sa_len(&lo)) < 0) {
		set_port(&lo, 0);
		if (real.bind(fd, (struct sockaddr *)&lo, ts_sa_len(&lo)) < 0)
			return -1;
	}
	if (real.getsockname(fd, (struct sockaddr *)&lo, &len) < 0)
		return -1;
	set_port(&e->bound, port_of(&lo));
	e->loopback_bound = true;
	shim_fd_lock();
	if ((t = shim_fd_same(fd, e->gen))) {
		t->bound = e->bound;
		t->loopback_bound = true;
	}
	shim_fd_unlock();
	return 0;
}

/* Where the stack forwards tunnel connections for this listener, or false when the
 * listener is not reachable from the tunnel (bound to some host address). */
static bool forward_address(int fd, const struct shim_fd *e, struct sockaddr_storage *fwd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (e->is_bound) {
		loopback(e->domain, port_of(&e->bound), fwd);
		return true;
	}
	if (real.getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || !is_wildcard(&ss))
		return false;
	/* A dual-stack [::] listener takes IPv4 loopback connections too. */
	loopback(ss.ss_family == AF_INET6 ? AF_INET6 : AF_INET, port_of(&ss), fwd);
	return true;
}

static int tunnel_family(int fd, const struct shim_fd *e)
{
	int v6only = 0;
	socklen_t l = sizeof(v6only);

	if (e->domain == AF_INET)
		return AF_INET;
	if (e->is_bound)
		return e->bound.ss_family;
	real.getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
	return v6only ? AF_INET6 : AF_UNSPEC;
}

/* The table entry learns its tunnel port, unless fd was closed meanwhile: then the
 * port closes again. */
static void note_listening(int fd, struct shim_fd *e, uint64_t id,
			   const struct sockaddr_storage *fwd)
{
	struct shim_fd *t;

	e->listen_id = id;
	e->listen_fwd = *fwd;
	shim_fd_lock();
	if ((t = shim_fd_same(fd, e->gen))) {
		t->listen_id = id;
		t->listen_fwd = *fwd;
	}
	shim_fd_unlock();
	if (!t)
		shim_unlisten(e);
}

SHIM_EXPORT int listen(int fd, int backlog)
{
	struct shim_fd e;
	struct sockaddr_storage fwd;
	struct ts_stack *st;
	uint64_t id;
	int rc;

	if (!shim_enter() || shim_mode != SHIM_ON || !shim_fd_read(fd, &e) ||
	    e.kind != SFD_INET || e.type != SOCK_STREAM)
		return real.listen(fd, backlog);
	if (e.is_bound && !e.loopback_bound && shim_bind_loopback(fd, &e) < 0)
		return -1;
	if ((rc = real.listen(fd, backlog)) < 0 || !forward_address(fd, &e, &fwd))
		return rc;
	if (!(st = shim_tunnel()))
		return 0; /* host clients still work; the reason was logged */
	rc = ts_listen(st, tunnel_family(fd, &e), port_of(&fwd), &fwd, &id);
	if (rc < 0) {
		ts_warn("port %u: tunnel clients cannot connect: %s", port_of(&fwd), strerror(-rc));
		return 0;
	}
	note_listening(fd, &e, id, &fwd);
	ts_dbg("fd %d: listening in the tunnel on port %u", fd, port_of(&fwd));
	return 0;
}

/* The tunnel identity of a kernel TCP socket the stack connected to our listener. */
bool shim_inbound_identity(int fd, struct sockaddr_storage *remote, struct sockaddr_storage *local)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	static const struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;

	if (real.getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
		return false;
	if (!(peer.ss_family == AF_INET &&
	      (ntohl(((struct sockaddr_in *)&peer)->sin_addr.s_addr) >> 24) == 127) &&
	    !(peer.ss_family == AF_INET6 &&
	      memcmp(&((struct sockaddr_in6 *)&peer)->sin6_addr, &lo6, sizeof(lo6)) == 0))
		return false;
	return ts_inbound_lookup(&peer, remote, local);
}

static void note_accepted(int nfd, int domain, const struct sockaddr_storage *remote,
			  const struct sockaddr_storage *local)
{
	struct shim_fd *n;

	shim_fd_lock();
	shim_fd_clear(nfd);
	n = shim_fd_get(nfd);
	if (n) {
		n->domain = domain;
		n->type = SOCK_STREAM;
		n->protocol = IPPROTO_TCP;
		n->acc_remote = *remote;
		n->acc_local = *local;
		__atomic_store_n(&n->kind, SFD_ACCEPTED, __ATOMIC_RELEASE);
	}
	shim_fd_unlock();
}

static int accepted(int lfd, int nfd, struct sockaddr *addr, socklen_t *alen)
{
	struct shim_fd e;
	struct sockaddr_storage remote, local;

	if (nfd < 0 || shim_fd_kind(lfd) != SFD_INET || !shim_fd_read(lfd, &e) || !e.listen_id ||
	    !shim_inbound_identity(nfd, &remote, &local))
		return nfd;
	shim_map_to_domain(&remote, e.domain);
	shim_map_to_domain(&local, e.domain);
	note_accepted(nfd, e.domain, &remote, &local);
	if (addr && alen)
		shim_copy_addr(&remote, addr, alen);
	return nfd;
}

SHIM_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	if (!shim_enter())
		return real.accept(fd, addr, alen);
	return accepted(fd, real.accept(fd, addr, alen), addr, alen);
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	if (!shim_enter())
		return real.accept4(fd, addr, alen, flags);
	return accepted(fd, real.accept4(fd, addr, alen, flags), addr, alen);
}

/* The application closed its listener: the tunnel port closes too. e is a copy. */
void shim_unlisten(struct shim_fd *e)
{
	struct ts_stack *st = shim_tunnel_if_running();

	if (st && e->listen_id)
		ts_unlisten(st, e->listen_id);
	e->listen_id = 0;
}
