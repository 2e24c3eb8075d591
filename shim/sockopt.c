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

/* The connection behind fd: from our table, or (for a descriptor that arrived through
 * exec or SCM_RIGHTS) from its abstract name. */
static bool tunnel_identity(int fd, int *proto, struct sockaddr_storage *local,
			    struct sockaddr_storage *remote)
{
	struct shim_fd *e = shim_fd_peek(fd);

	if (e && e->kind == SFD_TUNNEL && e->conn) {
		*proto = e->conn->proto;
		*local = e->conn->local;
		*remote = e->conn->remote;
		return true;
	}
	if (e && e->kind != SFD_NONE)
		return false;
	return shim_name_decode(fd, proto, local, remote);
}

/* What our table says of fd's names; 1 answered, 0 ask elsewhere. */
static int table_names(int fd, struct sockaddr *addr, socklen_t *len, bool peer, int *rc)
{
	struct shim_fd *e = shim_fd_peek(fd);

	if (!e)
		return 0;
	/* Bound to a tunnel address (kept here, or on loopback underneath). */
	if (e->kind == SFD_INET && e->is_bound && !peer) {
		*rc = shim_copy_addr(&e->bound, addr, len);
		return 1;
	}
	return 0;
}

static int names(int fd, struct sockaddr *addr, socklen_t *len, bool peer)
{
	struct sockaddr_storage local, remote;
	int proto, rc;
	int (*fn)(int, struct sockaddr *, socklen_t *) = peer ? real.getpeername : real.getsockname;
	struct sockaddr_storage probe;
	socklen_t plen = sizeof(probe);
	int kind;

	if (!real.close)
		shim_real_init();
	if (shim_internal || shim_mode == SHIM_OFF)
		return fn(fd, addr, len);
	if (table_names(fd, addr, len, peer, &rc))
		return rc;
	shim_tunnel_conn(fd);
	kind = shim_fd_kind(fd);
	if (kind == SFD_INET)
		return fn(fd, addr, len);
	if (kind != SFD_TUNNEL &&
	    real.getsockname(fd, (struct sockaddr *)&probe, &plen) < 0)
		return fn(fd, addr, len);
	/* Only a unix socket can be a tunnelled descriptor from elsewhere (exec,
	 * SCM_RIGHTS, an inetd-style handler's stdin): its name tells. */
	if (kind != SFD_TUNNEL && probe.ss_family != AF_UNIX)
		return fn(fd, addr, len);
	if (!tunnel_identity(fd, &proto, &local, &remote))
		return fn(fd, addr, len);
	if (peer && !remote.ss_family)
		return errno = ENOTCONN, -1;
	return shim_copy_addr(peer ? &remote : &local, addr, len);
}

SHIM_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	return names(fd, addr, len, false);
}

SHIM_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t cap = len ? *len : 0;
	int rc = names(fd, addr, len, true);

	if (rc == 0) /* dns_redirect.c: the nameserver the program addressed */
		shim_dns_unredirect(fd, addr, cap, len);
	return rc;
}

static int put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len || *len < sizeof(int))
		return errno = EINVAL, -1;
	memcpy(val, &v, sizeof(int));
	*len = sizeof(int);
	return 0;
}

static int tcp_info(int fd, struct shim_conn *c, void *val, socklen_t *len)
{
	struct ts_tcp_info ti = { .state = TCP_CLOSE };
	struct tcp_info out;
	struct ts_stack *st = c && c->id ? shim_tunnel() : NULL;
	socklen_t n;

	(void)fd;
	if (!val || !len)
		return errno = EFAULT, -1;
	if (st)
		ts_bridge_tcp_info(st, c->id, &ti);
	else if (c && c->state == CONN_CONNECTED)
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

static int tunnel_getsockopt(int fd, struct shim_fd *e, int level, int name, void *val,
			     socklen_t *len)
{
	struct shim_conn *c = e ? e->conn : NULL;
	int proto = c ? c->proto : IPPROTO_TCP;
	int family = c ? (c->domain ? c->domain : c->remote.ss_family) : AF_INET;

	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_DOMAIN:
			return put_int(val, len, family);
		case SO_TYPE:
			return put_int(val, len, proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM);
		case SO_PROTOCOL:
			return put_int(val, len, proto);
		case SO_ERROR: {
			int err = c ? __atomic_exchange_n(&c->so_error, 0, __ATOMIC_ACQ_REL) : 0;

			return put_int(val, len, err);
		}
		case SO_ACCEPTCONN:
			return put_int(val, len, 0);
		case SO_KEEPALIVE:
			return put_int(val, len, c && c->keepalive);
		}
		return real.getsockopt(fd, level, name, val, len);
	}
	if (level == IPPROTO_TCP && proto == IPPROTO_TCP) {
		if (name == TCP_INFO)
			return tcp_info(fd, c, val, len);
		if (name == TCP_NODELAY)
			return put_int(val, len, c && c->nodelay);
		if (name == TCP_MAXSEG)
			return put_int(val, len, 1380);
		return put_int(val, len, 0);
	}
	return put_int(val, len, 0);
}

SHIM_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct sockaddr_storage l, r;
	int proto;
	struct shim_fd *e;

	if (!real.close)
		shim_real_init();
	if (shim_internal)
		return real.getsockopt(fd, level, name, val, len);
	e = shim_fd_peek(fd);
	if (e && e->kind == SFD_TUNNEL) {
		shim_tunnel_conn(fd);
		return tunnel_getsockopt(fd, e, level, name, val, len);
	}
	if (e && e->kind != SFD_NONE)
		return real.getsockopt(fd, level, name, val, len);
	/* A descriptor from elsewhere: ask the kernel, and look closer only at unix
	 * sockets that carry our name. */
	if (level == SOL_SOCKET && (name == SO_DOMAIN || name == SO_TYPE || name == SO_PROTOCOL ||
				    name == SO_ERROR) &&
	    shim_mode != SHIM_OFF && shim_name_decode(fd, &proto, &l, &r)) {
		struct shim_fd tmp = { .kind = SFD_TUNNEL };
		struct shim_conn c = { .proto = proto, .remote = r };

		tmp.conn = &c;
		return tunnel_getsockopt(fd, &tmp, level, name, val, len);
	}
	return real.getsockopt(fd, level, name, val, len);
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

static void push_tcp_options(const struct shim_fd *e)
{
	struct ts_bridge_req o = { .nodelay = e->nodelay, .keepalive = e->keepalive,
				   .keepidle = e->keepidle, .keepintvl = e->keepintvl,
				   .keepcnt = e->keepcnt };
	struct ts_stack *st = shim_tunnel_if_running();

	if (st)
		ts_bridge_tcp_options(st, e->conn->id, &o);
}

SHIM_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct shim_fd *e;

	if (!real.close)
		shim_real_init();
	if (shim_bypass())
		return real.setsockopt(fd, level, name, val, len);
	e = shim_fd_peek(fd);
	/* An accepted tunnel client is a kernel socket: its options are the kernel's. */
	if (!e || e->kind == SFD_NONE || e->kind == SFD_INTERNAL)
		return real.setsockopt(fd, level, name, val, len);
	if (e->kind == SFD_INET) {
		int rc = real.setsockopt(fd, level, name, val, len);

		if (rc == 0) {
			shim_fd_lock();
			remember_option(e, level, name, val, len);
			shim_fd_unlock();
		}
		return rc;
	}
	/* A tunnelled socket: socket-level buffer and timeout options work on the unix
	 * socket underneath; what lwIP understands is passed on. */
	shim_fd_lock();
	remember_option(e, level, name, val, len);
	if (e->conn) {
		e->conn->linger0 = e->linger0;
		e->conn->nodelay = e->nodelay;
		e->conn->keepalive = e->keepalive;
	}
	shim_fd_unlock();
	if (e->conn && e->conn->proto == IPPROTO_TCP && e->conn->id &&
	    ((level == IPPROTO_TCP && (name == TCP_NODELAY || name == TCP_KEEPIDLE ||
				       name == TCP_KEEPINTVL || name == TCP_KEEPCNT)) ||
	     (level == SOL_SOCKET && name == SO_KEEPALIVE)))
		push_tcp_options(e);
	if (level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF || name == SO_RCVTIMEO ||
				    name == SO_SNDTIMEO || name == SO_RCVLOWAT || name == SO_PASSCRED))
		return real.setsockopt(fd, level, name, val, len);
	return 0;
}

/* close() of a tunnelled descriptor with SO_LINGER 0 resets the connection, as the
 * kernel does, when it is the last descriptor this process holds for it. */
void shim_close_tunnel(int fd)
{
	struct shim_fd *e = shim_fd_peek(fd);
	struct shim_conn *c = e ? e->conn : NULL;
	struct ts_stack *st;

	if (!c || !e->linger0 || c->proto != IPPROTO_TCP || !c->id ||
	    __atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) > 2)
		return;
	st = shim_tunnel();
	if (st)
		ts_bridge_abort(st, c->id);
}
