/* SPDX-License-Identifier: MIT */
/* Servers: a listening socket stays a kernel socket, so host clients reach it as
 * before; the stack listens on the same port inside the tunnel and rings the
 * listener for each tunnel connection with a loopback doorbell. accept claims the
 * connection behind the doorbell and returns it on the doorbell's descriptor number:
 * from then on it is a tunnelled descriptor like a connected one (getpeername, resets,
 * options, exec). A socket bound to one of the config's own addresses listens on
 * loopback underneath and shows its tunnel address. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

/* The claimed connection's state, under its lock: the stack may already be ending it. */
static void claimed(struct shim_conn *c, const struct ts_claim *cl)
{
	shim_conn_lock(c);
	c->local = cl->local;
	shim_map_to_domain(&c->local, c->domain);
	c->id = cl->id;
	if (!cl->alive)
		c->state = CONN_CLOSED;
	c->done = c->connect_reported = true;
	__atomic_store_n(&c->started, true, __ATOMIC_RELEASE);
	shim_conn_unlock(c);
}

/* The accepted descriptor becomes the claimed tunnel connection: same number, the
 * flags accept4 was asked for, the connection in the table (which takes over our
 * first reference). The dup3 happens under the table lock, as connect's swap does. */
static int take_in(int nfd, const struct ts_claim *cl, struct shim_conn *c, int flags)
{
	struct shim_fd *e;
	int err = 0;

	real.fcntl(cl->fd, F_SETFL, (flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0);
	shim_fd_lock();
	shim_fd_clear(nfd);
	e = shim_fd_get(nfd);
	if (!e)
		err = ENOMEM;
	else if (real.dup3(cl->fd, nfd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0) < 0)
		err = errno;
	else
		shim_fd_become_tunnel(e, c);
	shim_fd_unlock();
	shim_release_fd(cl->fd);
	return err ? (errno = err, -1) : 0;
}

/* A loopback connection on a listener with a tunnel port may be the stack's doorbell
 * (stack.h, ts_inbound_claim): the tunnel connection behind it takes its place.
 * Anything else (a host client, another user posing as the stack) stays as it is.
 * l is a copy of the listener's entry. */
static bool claim(int nfd, const struct shim_fd *l, int flags)
{
	struct sockaddr_storage from, to;
	socklen_t fl = sizeof(from), tl = sizeof(to);
	struct ts_claim cl;
	struct shim_conn *c;
	struct ts_stack *st;

	if (real.getpeername(nfd, (struct sockaddr *)&from, &fl) < 0 ||
	    real.getsockname(nfd, (struct sockaddr *)&to, &tl) < 0)
		return false;
	ts_sa_unmap(&from);
	ts_sa_unmap(&to);
	if (!ts_sa_addr(&from) || !ts_addr_is_loopback(from.ss_family, ts_sa_addr(&from)) || !(st = shim_tunnel()) || !(c = shim_conn_new(IPPROTO_TCP)))
		return false;
	c->domain = l->domain;
	c->state = CONN_CONNECTED;
	/* The stack's reference, taken before it can end the connection; dropped in
	 * the ended callback, or here when none will come. */
	shim_conn_get(c);
	if (ts_inbound_claim(st, &from, &to, &shim_conn_ops, c, &cl) < 0) {
		shim_conn_put(c);
		shim_conn_put(c);
		return false;
	}
	c->remote = cl.remote;
	shim_map_to_domain(&c->remote, c->domain);
	claimed(c, &cl);
	if (!cl.alive)
		shim_conn_put(c);
	if (take_in(nfd, &cl, c, flags) < 0) {
		ts_warn("fd %d: cannot take the tunnel connection in: %s", nfd, strerror(errno));
		shim_conn_put(c);
		return false;
	}
	ts_dbg("fd %d: a tunnel client on port %u", nfd, ntohs(ts_sa_port(&l->listen_fwd)));
	return true;
}

static int accepted(int lfd, int nfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	struct shim_fd l;
	struct shim_conn *c;

	if (nfd < 0 || shim_fd_kind(lfd) != SFD_INET || !shim_fd_read(lfd, &l) || !l.listen_id ||
	    !claim(nfd, &l, flags))
		return nfd;
	if (addr && alen && (c = shim_fd_conn(nfd))) {
		shim_copy_addr(&c->remote, addr, alen);
		shim_conn_put(c);
	}
	return nfd;
}

SHIM_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	if (!shim_enter())
		return real.accept(fd, addr, alen);
	return accepted(fd, real.accept(fd, addr, alen), addr, alen, 0);
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	if (!shim_enter())
		return real.accept4(fd, addr, alen, flags);
	return accepted(fd, real.accept4(fd, addr, alen, flags), addr, alen, flags);
}

/* The application closed its listener: the tunnel port closes too. e is a copy. */
void shim_unlisten(struct shim_fd *e)
{
	struct ts_stack *st = shim_tunnel_if_running();

	if (st && e->listen_id)
		ts_unlisten(st, e->listen_id);
	e->listen_id = 0;
}
