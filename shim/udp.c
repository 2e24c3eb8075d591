/* SPDX-License-Identifier: MIT */
/* Unconnected UDP: the socket stays a kernel socket, so it can talk to the host
 * network and the tunnel at once. Tunnel-bound datagrams leave it framed towards the
 * stack's relay (stack.h); the answers come back into it framed, and the receive
 * calls (io.c) strip the frame and report the tunnel source. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/uio.h>
#include "dns/lookup.h"
#include "log.h"
#include "shim.h"
#include "sockaddr.h"

struct shim_relay shim_relay4, shim_relay6;
/* Held while the stack is asked for a relay, so that two first senders ask once. */
static pthread_mutex_t relay_lock = PTHREAD_MUTEX_INITIALIZER;

/* A fork while another thread was asking leaves the child the lock, held. */
void shim_udp_after_fork(void)
{
	pthread_mutex_init(&relay_lock, NULL);
}

static int relay_ask(struct ts_stack *st, int family, struct shim_relay *r)
{
	int rc = 0;

	pthread_mutex_lock(&relay_lock);
	if (!r->ready) {
		rc = ts_stack_udp_relay(st, family, &r->addr, r->token);
		if (rc == 0)
			__atomic_store_n(&r->ready, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&relay_lock);
	return rc;
}

static int relay_for(int family, struct shim_relay *out)
{
	struct ts_stack *st = shim_tunnel();
	struct shim_relay *r = family == AF_INET ? &shim_relay4 : &shim_relay6;

	if (!st)
		return -1;
	if (!__atomic_load_n(&r->ready, __ATOMIC_ACQUIRE) && relay_ask(st, family, r) < 0)
		return errno = EAFNOSUPPORT, -1;
	*out = *r;
	return 0;
}

/* A socket that never bound gets the kernel's automatic binding first, as a first
 * sendto would give it, so that answers have somewhere to arrive. */
static int ensure_bound(int fd, int family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };

	if (real.getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if ((ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_port) ||
	    (ss.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&ss)->sin6_port))
		return 0;
	if (family == AF_INET)
		return real.bind(fd, (struct sockaddr *)&a4, sizeof(a4));
	return real.bind(fd, (struct sockaddr *)&a6, sizeof(a6));
}

static void frame_for(struct ts_udp_frame *h, const struct shim_relay *r,
		      const struct sockaddr_storage *dst, int type)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->token, r->token, 8);
	h->type = (uint8_t)type;
	h->family = (uint8_t)dst->ss_family;
	if (dst->ss_family == AF_INET) {
		h->port = ((const struct sockaddr_in *)dst)->sin_port;
		memcpy(h->addr, &((const struct sockaddr_in *)dst)->sin_addr, 4);
	} else {
		h->port = ((const struct sockaddr_in6 *)dst)->sin6_port;
		memcpy(h->addr, &((const struct sockaddr_in6 *)dst)->sin6_addr, 16);
	}
}

static int get_int(int fd, int level, int name)
{
	int v = 0;
	socklen_t l = sizeof(v);

	return real.getsockopt(fd, level, name, &v, &l) < 0 ? 0 : v;
}

bool shim_too_big(int fd, int pmtudisc, bool recverr, const struct sockaddr_storage *dst,
		  size_t ip_len)
{
	struct shim_err err = { .ttl = -1 };
	int mtu = shim_cfg.mtu > 0 ? shim_cfg.mtu : 1420;

	/* IP_PMTUDISC_DO, _PROBE and _INTERFACE forbid fragmenting (ip_sk_ignore_df);
	 * the IPv6 values are the same. */
	if (ip_len <= (size_t)mtu || pmtudisc < IP_PMTUDISC_DO || pmtudisc == IP_PMTUDISC_OMIT)
		return false;
	if (recverr) {
		/* ip_local_error, ipv6_local_error: no offender, no payload; the name is
		 * the destination, with the port an unconnected IPv4 socket has (none). */
		err.ee.ee_errno = EMSGSIZE;
		err.ee.ee_origin = SO_EE_ORIGIN_LOCAL;
		err.ee.ee_info = (uint32_t)mtu;
		err.name = *dst;
		if (dst->ss_family == AF_INET)
			ts_sa_set_port(&err.name, 0);
		shim_errq_push(fd, &err, NULL, 0);
	}
	errno = EMSGSIZE;
	return true;
}

/* The options the kernel would apply to this datagram: its TTL (in the frame, for
 * the stack) and path MTU discovery (a datagram too big for the tunnel where
 * fragmenting is forbidden fails here, as the kernel fails it). */
static bool udp_options(int fd, int domain, const struct sockaddr_storage *dst, size_t len,
			uint8_t *ttl)
{
	bool v4 = domain == AF_INET;
	int t = get_int(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TTL : IPV6_UNICAST_HOPS);
	size_t ip_len = len + (dst->ss_family == AF_INET ? 28 : 48);

	*ttl = (uint8_t)(t > 0 && t < 256 ? t : 64);
	if (ip_len <= (size_t)(shim_cfg.mtu > 0 ? shim_cfg.mtu : 1420))
		return true;
	return !shim_too_big(fd, get_int(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6,
					 v4 ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER),
			     shim_udp_recverr(fd, dst->ss_family), dst, ip_len);
}

bool shim_udp_recverr(int fd, int family)
{
	return family == AF_INET ? get_int(fd, IPPROTO_IP, IP_RECVERR) != 0 :
				   get_int(fd, IPPROTO_IPV6, IPV6_RECVERR) != 0;
}

ssize_t shim_udp_send_tunnel(int fd, struct shim_fd *e, const struct iovec *iov, size_t iovlen,
			     int flags, const struct sockaddr_storage *dst)
{
	struct iovec v[UIO_MAXIOV];
	struct ts_udp_frame h;
	struct shim_relay r;
	struct msghdr m = { 0 };
	uint8_t ttl;
	ssize_t n;

	if (iovlen >= UIO_MAXIOV)
		return errno = EMSGSIZE, -1;
	/* An IPv4 socket reaches an IPv6 address only as a redirected DNS query. */
	if (dst->ss_family == AF_INET6 && e->domain == AF_INET && !e->dns_shown.sin6_family)
		return errno = EAFNOSUPPORT, -1;
	/* Set first: the receive calls look at the socket's error queue from now on. */
	if (!(e->flags & SFDF_UDP_TUNNEL)) {
		e->flags |= SFDF_UDP_TUNNEL;
		shim_fd_set_flag(fd, e->gen, SFDF_UDP_TUNNEL);
	}
	if (!udp_options(fd, e->domain, dst, shim_iov_len(iov, iovlen), &ttl))
		return -1;
	if (relay_for(e->domain, &r) < 0 || ensure_bound(fd, e->domain) < 0)
		return -1;
	frame_for(&h, &r, dst, TS_UDP_FRAME_DATA);
	h.ttl = ttl;
	v[0] = (struct iovec){ &h, sizeof(h) };
	memcpy(&v[1], iov, iovlen * sizeof(*iov));
	m.msg_name = &r.addr;
	m.msg_namelen = ts_sa_len(&r.addr);
	m.msg_iov = v;
	m.msg_iovlen = iovlen + 1;
	n = real.sendmsg(fd, &m, flags & ~(MSG_CONFIRM | MSG_FASTOPEN));
	return n < 0 ? -1 : n - (ssize_t)sizeof(h);
}

/* Tells the stack the socket is gone, so its lwIP port is freed. */
void shim_udp_closing(int fd, const struct shim_fd *e)
{
	struct ts_udp_frame h;
	struct shim_relay *r = e->domain == AF_INET ? &shim_relay4 : &shim_relay6;
	struct sockaddr_storage any = { .ss_family = (sa_family_t)e->domain };

	/* Only in the process that made the socket: a forked child, or a program exec'd
	 * with it, closing its copy must not end the flow the maker still uses. */
	if ((e->flags & (SFDF_UDP_TUNNEL | SFDF_OWNED)) != (SFDF_UDP_TUNNEL | SFDF_OWNED) ||
	    !__atomic_load_n(&r->ready, __ATOMIC_ACQUIRE) || !shim_tunnel_if_running())
		return;
	frame_for(&h, r, &any, TS_UDP_FRAME_CLOSE);
	real.sendto(fd, &h, sizeof(h), MSG_DONTWAIT, (struct sockaddr *)&r->addr,
		    ts_sa_len(&r->addr));
}

/* A datagram from an inet socket, or a sendto(MSG_FASTOPEN), to a tunnel destination.
 * Returns -2 for "the kernel's" (a TCP socket without MSG_FASTOPEN ignores the address
 * or refuses it). */
static ssize_t send_tunnel(int fd, const struct iovec *iov, size_t iovlen, int flags,
			   const struct sockaddr *addr, socklen_t alen,
			   const struct sockaddr_storage *dst)
{
	struct shim_fd e;

	switch (shim_fd_inet(fd, &e)) {
	case SHIM_SOCK_OTHER:
		return -2; /* closed or connected meanwhile, or not inet: as the kernel finds it */
	case SHIM_SOCK_UNCARRIED:
		ts_info("fd %d: send refused: the tunnel carries only TCP, UDP and ICMP", fd);
		return errno = ENETUNREACH, -1;
	case SHIM_SOCK_CARRIED:
		break;
	}
	if (shim_icmp_proto(e.protocol))
		return shim_icmp_first(fd, &e, iov, iovlen, flags, dst, false);
	if (e.type == SOCK_STREAM) {
		/* sendto with MSG_FASTOPEN connects without connect(). */
		if (!(flags & MSG_FASTOPEN))
			return -2;
		if (connect(fd, addr, alen) < 0)
			return -1;
		return real.sendmsg(fd, &(struct msghdr){ .msg_iov = (struct iovec *)iov,
						   .msg_iovlen = iovlen },
				    flags & ~MSG_FASTOPEN);
	}
	return shim_udp_send_tunnel(fd, &e, iov, iovlen, flags, dst);
}

/* One datagram, routed: tunnel, host, or refused; on any socket, also one the library
 * did not see created. Returns -2 for "not ours". */
static ssize_t route_dgram(int fd, const struct iovec *iov, size_t iovlen, int flags,
			   const struct sockaddr *addr, socklen_t alen)
{
	struct sockaddr_storage dst;
	int kind = shim_fd_kind(fd);
	struct shim_conn *c;
	ssize_t n;

	/* An ICMP socket in the tunnel frames every message, addressed or not. */
	if (kind == SFD_TUNNEL && (c = shim_icmp_conn(fd))) {
		n = shim_icmp_send(fd, c, iov, iovlen, flags, addr, alen);
		shim_conn_put(c);
		return n;
	}
	/* A tunnelled descriptor is a socketpair end: an address is the kernel's to refuse. */
	if (!addr || kind == SFD_TUNNEL || kind == SFD_INTERNAL)
		return -2;
	switch (shim_route(addr, alen, &dst)) {
	case ROUTE_PASS:
		return shim_ping_standin(fd) ? (errno = EACCES, -1) : -2;
	case ROUTE_BLOCK:
		return errno = ENETUNREACH, -1;
	case ROUTE_TUNNEL:
		break;
	}
	return send_tunnel(fd, iov, iovlen, flags, addr, alen, &dst);
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
			   const struct sockaddr *addr, socklen_t alen)
{
	struct iovec v = { (void *)buf, len };
	struct sockaddr_storage dns;
	ssize_t n;

	if (!shim_enter())
		return real.sendto(fd, buf, len, flags, addr, alen);
	if (shim_send_refused(fd, len))
		return -1;
	/* dns_redirect.c: a query to the host's nameserver goes to the tunnel's DNS. */
	if (shim_dns_redirect(fd, &addr, &alen, &dns) < 0)
		return -1;
	if ((n = route_dgram(fd, &v, 1, flags, addr, alen)) == -2)
		return real.sendto(fd, buf, len, flags, addr, alen);
	return n;
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	const struct sockaddr *to = m ? m->msg_name : NULL;
	socklen_t tolen = m ? m->msg_namelen : 0;
	struct sockaddr_storage dns;
	struct msghdr redirected;
	ssize_t n;
	int r;

	if (!shim_enter())
		return real.sendmsg(fd, m, flags);
	if (m && shim_send_refused(fd, shim_iov_len(m->msg_iov, m->msg_iovlen)))
		return -1;
	/* dns_redirect.c: a query to the host's nameserver goes to the tunnel's DNS. */
	if ((r = shim_dns_redirect(fd, &to, &tolen, &dns))) {
		if (r < 0)
			return -1;
		redirected = *m;
		redirected.msg_name = (void *)to;
		redirected.msg_namelen = tolen;
		m = &redirected;
	}
	if (!m || (n = route_dgram(fd, m->msg_iov, m->msg_iovlen, flags,
				   m->msg_namelen ? m->msg_name : NULL, m->msg_namelen)) == -2)
		return real.sendmsg(fd, m, flags);
	return n;
}

SHIM_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	unsigned int i;

	if (!shim_enter())
		return real.sendmmsg(fd, vec, vlen, flags);
	for (i = 0; i < vlen; i++) {
		ssize_t n = sendmsg(fd, &vec[i].msg_hdr, flags);

		if (n < 0)
			return i ? (int)i : -1;
		vec[i].msg_len = (unsigned int)n;
	}
	return (int)i;
}

/* A UDP socket bound (on a tunnel address, or on the wildcard with a port of its
 * own) is a server: tunnel datagrams to that port come to it from now on. */
int shim_udp_serve(int fd, struct shim_fd *e, int family)
{
	struct ts_udp_frame h;
	struct shim_relay r;
	struct sockaddr_storage any = { .ss_family = (sa_family_t)family };

	if (relay_for(e->domain, &r) < 0)
		return -1;
	e->flags |= SFDF_UDP_TUNNEL;
	shim_fd_set_flag(fd, e->gen, SFDF_UDP_TUNNEL);
	frame_for(&h, &r, &any, TS_UDP_FRAME_OPEN);
	h.family = (uint8_t)family;
	if (real.sendto(fd, &h, sizeof(h), MSG_DONTWAIT, (struct sockaddr *)&r.addr,
			ts_sa_len(&r.addr)) < 0)
		return -1;
	return 0;
}

/* send() is its own symbol in libc (it does not call sendto): the same checks. */
SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	return sendto(fd, buf, len, flags, NULL, 0);
}
