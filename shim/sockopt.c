/* SPDX-License-Identifier: MIT */
/* What a tunnelled descriptor answers: it is a unix socketpair end underneath, but
 * getsockname, getpeername and getsockopt answer as for the TCP or UDP socket the
 * application made; setsockopt applies what means something to lwIP. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include "dns/lookup.h"
#include "log.h"
#include "shim.h"

/* The connection behind fd: c from our table, or (for a descriptor that arrived
 * through exec or SCM_RIGHTS) its abstract name. */
static bool tunnel_identity(int fd, struct shim_conn *c, int *proto,
			    struct sockaddr_storage *local, struct sockaddr_storage *remote)
{
	if (c) {
		*proto = c->proto;
		*remote = c->remote;
		shim_conn_lock(c);
		*local = c->local;
		shim_conn_unlock(c);
		return true;
	}
	if (shim_fd_kind(fd) != SFD_NONE)
		return false;
	return shim_name_decode(fd, proto, local, remote);
}

/* What our table says of fd's names; 1 answered, 0 ask elsewhere. */
static int table_names(int fd, struct sockaddr *addr, socklen_t *len, bool peer, int *rc)
{
	struct shim_fd e;

	if (shim_fd_kind(fd) != SFD_INET)
		return 0;
	shim_fd_read(fd, &e);
	/* Bound to a tunnel address (kept here, or on loopback underneath). */
	if (e.kind == SFD_INET && e.is_bound && !peer) {
		*rc = shim_copy_addr(&e.bound, addr, len);
		return 1;
	}
	return 0;
}

/* A descriptor the table knows nothing of, or a tunnelled one (c, a reference). */
static int other_names(int fd, struct shim_conn *c, struct sockaddr *addr, socklen_t *len,
		       bool peer)
{
	int (*fn)(int, struct sockaddr *, socklen_t *) = peer ? real.getpeername : real.getsockname;
	struct sockaddr_storage local, remote, probe;
	socklen_t plen = sizeof(probe);
	int proto;

	if (!c && real.getsockname(fd, (struct sockaddr *)&probe, &plen) < 0)
		return fn(fd, addr, len);
	/* Only a unix socket can be a tunnelled descriptor from elsewhere (exec,
	 * SCM_RIGHTS, an inetd-style handler's stdin): its name tells. */
	if (!c && probe.ss_family != AF_UNIX)
		return fn(fd, addr, len);
	if (!tunnel_identity(fd, c, &proto, &local, &remote))
		return fn(fd, addr, len);
	if (peer && !remote.ss_family)
		return errno = ENOTCONN, -1;
	return shim_copy_addr(peer ? &remote : &local, addr, len);
}

/* Called after shim_enter(). */
static int names(int fd, struct sockaddr *addr, socklen_t *len, bool peer)
{
	int (*fn)(int, struct sockaddr *, socklen_t *) = peer ? real.getpeername : real.getsockname;
	struct shim_conn *c;
	int rc;

	if (table_names(fd, addr, len, peer, &rc))
		return rc;
	c = shim_tunnel_conn(fd);
	if (!c && shim_fd_kind(fd) == SFD_INET)
		return fn(fd, addr, len);
	rc = other_names(fd, c, addr, len, peer);
	if (c)
		shim_conn_put(c);
	return rc;
}
SHIM_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (!shim_enter())
		return real.getsockname(fd, addr, len);
	return names(fd, addr, len, false);
}

SHIM_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t cap = len ? *len : 0;
	int rc;

	if (!shim_enter())
		return real.getpeername(fd, addr, len);
	rc = names(fd, addr, len, true);
	if (rc == 0) /* dns_redirect.c: the nameserver the program addressed */
		shim_dns_unredirect(fd, addr, cap, len);
	return rc;
}

static bool recverr_option(int level, int name)
{
	return (level == IPPROTO_IP && name == IP_RECVERR) ||
	       (level == IPPROTO_IPV6 && name == IPV6_RECVERR);
}

static int put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len || *len < sizeof(int))
		return errno = EINVAL, -1;
	memcpy(val, &v, sizeof(int));
	*len = sizeof(int);
	return 0;
}

/* What getsockopt answers from: the connection (a reference; NULL for a descriptor
 * that only carries our name) and what it is. */
struct conn_view {
	struct shim_conn *c;
	int proto, family;
};

static struct conn_view view_of(struct shim_conn *c)
{
	if (!c)
		return (struct conn_view){ NULL, IPPROTO_TCP, AF_INET };
	return (struct conn_view){ c, c->proto, c->domain ? c->domain : c->remote.ss_family };
}

static int take_so_error(int fd, struct shim_conn *c)
{
	int err;

	if (!c)
		return 0;
	shim_conn_lock(c);
	err = c->so_error;
	c->so_error = 0;
	shim_conn_unlock(c);
	/* A connected UDP flow's ICMP error waits in the stack (io.c). */
	return err ? err : shim_udp_so_error(fd, c);
}

/* TCP_NODELAY or SO_KEEPALIVE as set after the connect ([tab]). */
static bool conn_option(struct shim_conn *c, bool keepalive)
{
	bool on;

	if (!c)
		return false;
	shim_fd_lock();
	on = keepalive ? c->keepalive : c->nodelay;
	shim_fd_unlock();
	return on;
}

static int tcp_info(struct shim_conn *c, void *val, socklen_t *len)
{
	struct ts_tcp_info ti = { .state = TCP_CLOSE };
	struct tcp_info out;
	struct ts_stack *st;
	uint64_t id = 0;
	int state = 0;
	socklen_t n;

	if (!val || !len)
		return errno = EFAULT, -1;
	if (c) {
		shim_conn_lock(c);
		id = c->id;
		state = c->state;
		shim_conn_unlock(c);
	}
	st = id ? shim_tunnel() : NULL;
	if (st)
		ts_bridge_tcp_info(st, id, &ti);
	else if (state == CONN_CONNECTED)
		ti.state = TCP_ESTABLISHED;
	memset(&out, 0, sizeof(out));
	out.tcpi_state = (uint8_t)ti.state;
	out.tcpi_rtt = ti.rtt_us;
	out.tcpi_rttvar = ti.rttvar_us;
	out.tcpi_snd_mss = ti.snd_mss;
	out.tcpi_rcv_mss = ti.rcv_mss;
	out.tcpi_snd_cwnd = ti.snd_cwnd;
	out.tcpi_unacked = ti.unacked;
	out.tcpi_retransmits = (uint8_t)ti.retransmits;
	n = *len < sizeof(out) ? *len : sizeof(out);
	memcpy(val, &out, n);
	*len = n;
	return 0;
}

static int tunnel_getsockopt(int fd, const struct conn_view *v, int level, int name, void *val,
			     socklen_t *len)
{
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_DOMAIN:
			return put_int(val, len, v->family);
		case SO_TYPE:
			return put_int(val, len, v->proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM);
		case SO_PROTOCOL:
			return put_int(val, len, v->proto);
		case SO_ERROR:
			return put_int(val, len, take_so_error(fd, v->c));
		case SO_ACCEPTCONN:
			return put_int(val, len, 0);
		case SO_KEEPALIVE:
			return put_int(val, len, conn_option(v->c, true));
		}
		return real.getsockopt(fd, level, name, val, len);
	}
	if (v->proto == IPPROTO_UDP && v->c && recverr_option(level, name)) {
		bool on;

		shim_conn_lock(v->c);
		on = v->c->recverr;
		shim_conn_unlock(v->c);
		return put_int(val, len, on);
	}
	if (level == IPPROTO_TCP && v->proto == IPPROTO_TCP) {
		if (name == TCP_INFO)
			return tcp_info(v->c, val, len);
		if (name == TCP_NODELAY)
			return put_int(val, len, conn_option(v->c, false));
		if (name == TCP_MAXSEG)
			return put_int(val, len, 1380);
		return put_int(val, len, 0);
	}
	return put_int(val, len, 0);
}

/* A descriptor from elsewhere: ask the kernel, and look closer only at unix sockets
 * that carry our name. */
static int foreign_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct sockaddr_storage l, r;
	struct conn_view v = { NULL, 0, 0 };

	if (level == SOL_SOCKET && (name == SO_DOMAIN || name == SO_TYPE || name == SO_PROTOCOL ||
				    name == SO_ERROR) &&
	    shim_name_decode(fd, &v.proto, &l, &r)) {
		v.family = r.ss_family;
		return tunnel_getsockopt(fd, &v, level, name, val, len);
	}
	return real.getsockopt(fd, level, name, val, len);
}

SHIM_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct shim_conn *c;
	struct conn_view v;
	int kind, rc;

	if (!shim_enter())
		return real.getsockopt(fd, level, name, val, len);
	kind = shim_fd_kind(fd);
	if (kind == SFD_NONE)
		return foreign_getsockopt(fd, level, name, val, len);
	if (kind != SFD_TUNNEL)
		return real.getsockopt(fd, level, name, val, len);
	c = shim_tunnel_conn(fd);
	if (c && shim_icmp_proto(c->proto)) {
		rc = shim_icmp_getsockopt(c, fd, level, name, val, len);
		shim_conn_put(c);
		return rc;
	}
	v = view_of(c);
	rc = tunnel_getsockopt(fd, &v, level, name, val, len);
	if (c)
		shim_conn_put(c);
	return rc;
}

static int get_int(const void *val, socklen_t len)
{
	int v = 0;

	if (val && len >= sizeof(int))
		memcpy(&v, val, sizeof(int));
	return v;
}

/* Options set before connect are kept for the bridge; the kernel socket gets them
 * too, as it would without us. */
static void remember_option(struct shim_fd *e, int level, int name, const void *val,
			    socklen_t len)
{
	if (level == IPPROTO_TCP && name == TCP_NODELAY)
		e->nodelay = get_int(val, len) != 0;
	else if (level == SOL_SOCKET && name == SO_KEEPALIVE)
		e->keepalive = get_int(val, len) != 0;
	else if (level == IPPROTO_TCP && name == TCP_KEEPIDLE)
		e->keepidle = get_int(val, len);
	else if (level == IPPROTO_TCP && name == TCP_KEEPINTVL)
		e->keepintvl = get_int(val, len);
	else if (level == IPPROTO_TCP && name == TCP_KEEPCNT)
		e->keepcnt = get_int(val, len);
	else if (level == SOL_SOCKET && name == SO_LINGER && val && len >= sizeof(struct linger))
		e->linger0 = ((const struct linger *)val)->l_onoff &&
			     ((const struct linger *)val)->l_linger == 0;
}

static bool lwip_option(int level, int name)
{
	return (level == IPPROTO_TCP && (name == TCP_NODELAY || name == TCP_KEEPIDLE ||
					 name == TCP_KEEPINTVL || name == TCP_KEEPCNT)) ||
	       (level == SOL_SOCKET && name == SO_KEEPALIVE);
}

static int inet_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int rc = real.setsockopt(fd, level, name, val, len);
	struct shim_fd *e;

	if (rc < 0)
		return rc;
	shim_fd_lock();
	e = shim_fd_peek(fd);
	if (e && shim_fd_kind_of(e) == SFD_INET)
		remember_option(e, level, name, val, len);
	shim_fd_unlock();
	return rc;
}

/* A tunnelled socket: what lwIP understands is passed on to the connection. */
static void tunnel_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct ts_bridge_req o;
	struct shim_conn *c = NULL;
	struct ts_stack *st;
	struct shim_fd *e;
	uint64_t id = 0;

	shim_fd_lock();
	e = shim_fd_peek(fd);
	if (e && shim_fd_kind_of(e) == SFD_TUNNEL && (c = e->conn)) {
		remember_option(e, level, name, val, len);
		c->nodelay = e->nodelay;
		c->keepalive = e->keepalive;
		o = (struct ts_bridge_req){ .nodelay = e->nodelay, .keepalive = e->keepalive,
					    .keepidle = e->keepidle, .keepintvl = e->keepintvl,
					    .keepcnt = e->keepcnt };
		shim_conn_get(c);
	}
	shim_fd_unlock();
	if (!c)
		return;
	if (c->proto == IPPROTO_TCP && lwip_option(level, name)) {
		shim_conn_lock(c);
		id = c->id;
		shim_conn_unlock(c);
	}
	/* The stack wakes a connected UDP socket for every ICMP error once it has an
	 * error queue, not only for the hard ones. */
	if (c->proto == IPPROTO_UDP && recverr_option(level, name)) {
		shim_conn_lock(c);
		c->recverr = o.recverr = get_int(val, len) != 0;
		id = c->id;
		shim_conn_unlock(c);
	}
	if (id && (st = shim_tunnel_if_running()))
		ts_bridge_tcp_options(st, id, &o);
	shim_conn_put(c);
}

SHIM_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct shim_conn *c;
	int kind, rc;

	if (!shim_enter())
		return real.setsockopt(fd, level, name, val, len);
	kind = shim_fd_kind(fd);
	if (kind == SFD_INET)
		return inet_setsockopt(fd, level, name, val, len);
	if (kind != SFD_TUNNEL)
		return real.setsockopt(fd, level, name, val, len);
	if ((c = shim_icmp_conn(fd))) {
		rc = shim_icmp_setsockopt(c, fd, level, name, val, len);
		shim_conn_put(c);
		return rc;
	}
	tunnel_setsockopt(fd, level, name, val, len);
	/* Socket-level buffer and timeout options work on the unix socket underneath. */
	if (level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF || name == SO_RCVTIMEO ||
				    name == SO_SNDTIMEO || name == SO_RCVLOWAT || name == SO_PASSCRED))
		return real.setsockopt(fd, level, name, val, len);
	return 0;
}

/* close() of a tunnelled descriptor with SO_LINGER 0 resets the connection, as the
 * kernel does, when it is the last descriptor this process holds for it. */
void shim_close_tunnel(int fd)
{
	struct shim_conn *c = NULL;
	struct ts_stack *st;
	struct shim_fd *e;
	uint64_t id;

	shim_fd_lock();
	e = shim_fd_peek(fd);
	if (e && shim_fd_kind_of(e) == SFD_TUNNEL && e->conn && e->linger0 &&
	    e->conn->proto == IPPROTO_TCP && e->conn->nfds == 1)
		shim_conn_get(c = e->conn);
	shim_fd_unlock();
	if (!c)
		return;
	shim_conn_lock(c);
	id = c->id;
	shim_conn_unlock(c);
	shim_conn_put(c);
	if (id && (st = shim_tunnel()))
		ts_bridge_abort(st, id);
}
