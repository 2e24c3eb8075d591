/* SPDX-License-Identifier: MIT */
/* socket, bind, connect and epoll_ctl: noting inet sockets, and routing connects. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "dns/lookup.h"
#include "log.h"
#include "shim.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* fd's entry becomes an inet socket of ours to route. Lock held. */
static void note_inet(int fd, int domain, int type, int protocol, unsigned flags)
{
	struct shim_fd *e;

	shim_fd_clear(fd);
	e = shim_fd_get(fd);
	if (!e)
		return;
	e->domain = domain;
	e->type = type;
	e->protocol = protocol && protocol != IPPROTO_MPTCP ? protocol :
		      type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
	__atomic_store_n(&e->flags, flags, __ATOMIC_RELEASE);
	__atomic_store_n(&e->kind, SFD_INET, __ATOMIC_RELEASE);
}

static bool is_inet(int domain)
{
	return domain == AF_INET || domain == AF_INET6;
}


/* What the tunnel carries: TCP (MPTCP falls back to it), UDP, and ICMP sockets (raw
 * and ping sockets, icmp.c). Other raw sockets and SCTP are inet sockets too, left out
 * of the table. */
static bool carried(int domain, int type, int protocol)
{
	if (shim_icmp_kind(domain, type, protocol))
		return true;
	if (type == SOCK_STREAM)
		return !protocol || protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP;
	return type == SOCK_DGRAM && (!protocol || protocol == IPPROTO_UDP);
}

/* A ping socket (SOCK_DGRAM, ICMP) that the kernel refused this user: where
 * net.ipv4.ping_group_range leaves the user out (a new network namespace's "1 0"),
 * ping sockets to tunnel addresses are still served, since the stack sends them and
 * the host network is never involved. A UDP socket of the same family stands in for it
 * until its first tunnel-bound send swaps it into the tunnel (icmp.c); it holds the
 * options set before that, and anything not bound for the tunnel is refused with the
 * kernel's EACCES (route_dgram, connect). */
static int ping_standin(int domain, int type, int protocol)
{
	int fd = real.socket(domain, (type & (SOCK_NONBLOCK | SOCK_CLOEXEC)) | SOCK_DGRAM,
			     IPPROTO_UDP);

	if (fd < 0)
		return errno = EACCES, -1;
	shim_fd_lock();
	note_inet(fd, domain, SOCK_DGRAM, protocol, SFDF_OWNED | SFDF_PING_STANDIN);
	shim_fd_unlock();
	ts_dbg("fd %d: a ping socket the kernel refused, served for tunnel addresses", fd);
	return fd;
}

/* A stand-in ping socket must not reach anything but the tunnel. */
bool shim_ping_standin(int fd)
{
	return shim_fd_kind(fd) == SFD_INET && (shim_fd_flags(fd) & SFDF_PING_STANDIN);
}

SHIM_EXPORT int socket(int domain, int type, int protocol)
{
	int fd, base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	bool mine = shim_enter();

	fd = real.socket(domain, type, protocol);
	if (fd < 0 && errno == EACCES && mine && shim_mode == SHIM_ON && base == SOCK_DGRAM &&
	    shim_icmp_kind(domain, base, protocol))
		return ping_standin(domain, type, protocol);
	if (fd < 0 || !mine || !is_inet(domain) || !carried(domain, base, protocol))
		return fd;
	shim_fd_lock();
	note_inet(fd, domain, base, protocol, SFDF_OWNED);
	shim_fd_unlock();
	return fd;
}

/* A socket the library did not see created (inherited across exec, received over
 * SCM_RIGHTS, made before the library was loaded) is asked of the kernel on its first
 * tunnel-bound call, and from then on handled as if socket() had made it here. True
 * if fd is an inet socket of any type. */
static bool learn(int fd)
{
	int domain, type, protocol;
	socklen_t l = sizeof(int);

	if (real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0 || !is_inet(domain))
		return false;
	if (real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 ||
	    real.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &l) < 0 ||
	    !carried(domain, type, protocol))
		return true;
	shim_fd_lock();
	if (shim_fd_kind(fd) == SFD_NONE) /* another thread may have been first */
		note_inet(fd, domain, type, protocol, 0);
	shim_fd_unlock();
	return true;
}

enum shim_sock shim_fd_inet(int fd, struct shim_fd *e)
{
	bool inet = shim_fd_kind(fd) != SFD_NONE || learn(fd);

	/* An inet socket left out of the table is one the tunnel does not carry:
	 * tunnel-bound traffic on it is refused, never sent to the host. */
	if (!shim_fd_read(fd, e))
		return inet ? SHIM_SOCK_UNCARRIED : SHIM_SOCK_OTHER;
	return e->kind == SFD_INET ? SHIM_SOCK_CARRIED : SHIM_SOCK_OTHER;
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_storage dst, dns;
	struct shim_fd e;

	if (!shim_enter())
		return real.connect(fd, addr, len);
	/* dns_redirect.c: a query of the program's own to the host's nameserver goes to
	 * the tunnel's DNS instead. */
	if (shim_dns_redirect(fd, &addr, &len, &dns) < 0)
		return -1;
	switch (shim_route(addr, len, &dst)) {
	case ROUTE_PASS:
		if (shim_fd_kind(fd) == SFD_TUNNEL)
			return errno = EISCONN, -1;
		if (shim_ping_standin(fd))
			return errno = EACCES, -1;
		return real.connect(fd, addr, len);
	case ROUTE_BLOCK:
		ts_info("connect refused: the tunnel config is unusable, failing closed");
		return errno = ENETUNREACH, -1;
	case ROUTE_TUNNEL:
		break;
	}
	/* Already in the tunnel: connect_again answers (EALREADY, EISCONN, ...). */
	if (shim_fd_kind(fd) == SFD_TUNNEL && shim_fd_read(fd, &e) && e.kind == SFD_TUNNEL)
		return shim_tunnel_connect(fd, &dst, e.type);
	switch (shim_fd_inet(fd, &e)) {
	case SHIM_SOCK_OTHER:
		return real.connect(fd, addr, len); /* not an inet socket: the kernel says no */
	case SHIM_SOCK_UNCARRIED:
		ts_info("fd %d: connect refused: the tunnel carries only TCP, UDP and ICMP", fd);
		return errno = ENETUNREACH, -1;
	case SHIM_SOCK_CARRIED:
		break;
	}
	if (shim_icmp_proto(e.protocol))
		return shim_icmp_first(fd, &e, NULL, 0, 0, &dst, true) < 0 ? -1 : 0;
	return shim_tunnel_connect(fd, &dst, e.type);
}

static bool wildcard_with_port(const struct sockaddr_storage *a)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == 0 &&
		       ((const struct sockaddr_in *)a)->sin_port != 0;
	return a->ss_family == AF_INET6 &&
	       memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &any6, 16) == 0 &&
	       ((const struct sockaddr_in6 *)a)->sin6_port != 0;
}

/* The tunnel families a UDP server socket takes (0: both). */
static int udp_family(int fd, const struct shim_fd *e, const struct sockaddr_storage *a)
{
	int v6only = 0;
	socklen_t l = sizeof(v6only);

	if (e->domain == AF_INET || a->ss_family == AF_INET)
		return AF_INET;
	if (shim_is_tunnel_address(a))
		return AF_INET6;
	real.getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
	return v6only ? AF_INET6 : 0;
}

/* bind() to one of the config's tunnel addresses cannot reach the kernel (the address
 * is not on this host): it is remembered, and the kernel socket is bound to loopback
 * when it must receive (a UDP server, a TCP listener). A UDP socket bound to a tunnel
 * address or to the wildcard with a port of its own serves tunnel clients too. */
SHIM_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_storage a;
	struct shim_fd e, *t;
	bool tunnel;
	int rc;

	if (!shim_enter() || shim_mode != SHIM_ON || !shim_fd_read(fd, &e) || e.kind != SFD_INET)
		return real.bind(fd, addr, len);
	memset(&a, 0, sizeof(a));
	shim_route(addr, len, &a); /* only to normalise the address */
	tunnel = shim_is_tunnel_address(&a);
	/* An ICMP socket bound to a tunnel address sends from it anyway; its port (a
	 * ping socket's identifier) is the kernel's to check and keep. */
	if (shim_icmp_proto(e.protocol))
		return tunnel ? 0 : real.bind(fd, addr, len);
	if (!tunnel && !(e.type == SOCK_DGRAM && wildcard_with_port(&a)))
		return real.bind(fd, addr, len);
	if (!tunnel && (rc = real.bind(fd, addr, len)) < 0)
		return rc;
	if (tunnel) {
		e.bound = a;
		e.is_bound = true;
		shim_fd_lock();
		if ((t = shim_fd_same(fd, e.gen))) {
			t->bound = a;
			t->is_bound = true;
		}
		shim_fd_unlock();
	}
	if (e.type != SOCK_DGRAM)
		return 0;
	if (tunnel && shim_bind_loopback(fd, &e) < 0)
		return -1;
	if (shim_udp_serve(fd, &e, udp_family(fd, &e, &a)) < 0)
		ts_warn("UDP port: tunnel datagrams will not reach this socket (%s)", strerror(errno));
	return 0;
}

/* An event loop may add a socket to epoll before it connects; the swap at connect
 * replaces the file, so the registrations are remembered and made again. */
static void remember_reg(int epfd, int op, int fd, const struct epoll_event *ev)
{
	struct shim_fd *e = shim_fd_get(fd);
	struct shim_epoll_reg *r;
	int i;

	if (!e || shim_fd_kind_of(e) != SFD_INET)
		return;
	for (i = 0; i < e->nregs && e->regs[i].epfd != epfd; i++)
		;
	if (op == EPOLL_CTL_DEL) {
		if (i < e->nregs)
			e->regs[i] = e->regs[--e->nregs];
		return;
	}
	if (i == e->nregs) {
		r = realloc(e->regs, (e->nregs + 1) * sizeof(*r));
		if (!r)
			return;
		e->regs = r;
		e->nregs++;
	}
	e->regs[i].epfd = epfd;
	e->regs[i].ev = *ev;
}

SHIM_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	bool mine = shim_enter();
	int rc;

	rc = real.epoll_ctl(epfd, op, fd, ev);
	if (rc == 0 && mine && shim_fd_kind(fd) == SFD_INET) {
		shim_fd_lock();
		remember_reg(epfd, op, fd, ev);
		shim_fd_unlock();
	}
	return rc;
}

/* shutdown on a UDP socket only marks it (the kernel keeps receiving); on the
 * SEQPACKET pair underneath it would end the flow, so it stays here. */
SHIM_EXPORT int shutdown(int fd, int how)
{
	struct shim_conn *c;
	bool udp;

	if (!shim_enter() || !(c = shim_fd_conn(fd)))
		return real.shutdown(fd, how);
	udp = c->proto == IPPROTO_UDP;
	shim_conn_put(c);
	if (!udp)
		return real.shutdown(fd, how);
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return errno = EINVAL, -1;
	return 0;
}
