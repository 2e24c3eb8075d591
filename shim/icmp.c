/* SPDX-License-Identifier: MIT */
/* ICMP sockets to tunnel addresses: raw sockets (SOCK_RAW, what ping uses as root) and
 * ping sockets (SOCK_DGRAM, what ping uses where net.ipv4.ping_group_range allows),
 * IPv4 and IPv6. The kernel made the socket, so it checked the program may have it.
 * The first tunnel-bound send swaps it, on the same descriptor number, for one end of
 * a SOCK_SEQPACKET pair whose other end the stack serves (stack.h, bridge_icmp.c):
 * each message carries a struct ts_icmp_frame. The receive calls strip the frame and
 * answer as the kernel's socket would: the source address, the IPv4 header on a raw
 * IPv4 socket, the ICMP filters, IP_TTL and IPV6_HOPLIMIT as ancillary data; the
 * socket-level options (SO_TIMESTAMP, timeouts) are the unix socket's own. From then
 * on the socket talks to the tunnel only: a send to a host address is refused. */
#include <errno.h>
#include <fcntl.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "log.h"
#include "shim.h"
#include "sockaddr.h"

#ifndef SOL_RAW
#define SOL_RAW 255
#endif
#define FRAME_MAX (sizeof(struct ts_icmp_frame) + 65536)
#define ICMP_MSG_MAX (65535 - 60)

static __thread uint8_t *frame_buf;

bool shim_icmp_kind(int domain, int type, int protocol)
{
	if (type != SOCK_RAW && type != SOCK_DGRAM)
		return false;
	return (domain == AF_INET && protocol == IPPROTO_ICMP) ||
	       (domain == AF_INET6 && protocol == IPPROTO_ICMPV6);
}

struct shim_conn *shim_icmp_conn(int fd)
{
	struct shim_conn *c;

	if (shim_fd_kind(fd) != SFD_TUNNEL || !(c = shim_fd_conn(fd)))
		return NULL;
	if (shim_icmp_proto(c->proto))
		return c;
	shim_conn_put(c);
	return NULL;
}

static int get_opt(int fd, int level, int name)
{
	int v = 0;
	socklen_t l = sizeof(v);

	return real.getsockopt(fd, level, name, &v, &l) < 0 ? 0 : v;
}

static void copy_sol(int from, int to, int name, size_t size)
{
	uint8_t v[32];
	socklen_t l = (socklen_t)size;

	if (real.getsockopt(from, SOL_SOCKET, name, v, &l) == 0)
		real.setsockopt(to, SOL_SOCKET, name, v, l);
}

/* What the program set on its kernel socket before the swap. c is not published. */
static void take_options(int fd, int app, struct shim_conn *c)
{
	socklen_t l;

	if (c->domain == AF_INET) {
		c->icmp.ttl = get_opt(fd, IPPROTO_IP, IP_TTL);
		c->icmp.pmtudisc = get_opt(fd, IPPROTO_IP, IP_MTU_DISCOVER);
		c->icmp.recvttl = get_opt(fd, IPPROTO_IP, IP_RECVTTL);
		c->icmp.recverr = get_opt(fd, IPPROTO_IP, IP_RECVERR);
		c->icmp.recvtos = get_opt(fd, IPPROTO_IP, IP_RECVTOS);
		if (c->sotype == SOCK_RAW)
			c->icmp.filter = (uint32_t)get_opt(fd, SOL_RAW, ICMP_FILTER);
	} else {
		c->icmp.ttl = get_opt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS);
		c->icmp.pmtudisc = get_opt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER);
		c->icmp.recvttl = get_opt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT);
		c->icmp.recverr = get_opt(fd, IPPROTO_IPV6, IPV6_RECVERR);
		l = sizeof(c->icmp.filter6);
		if (c->sotype == SOCK_RAW)
			real.getsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, c->icmp.filter6, &l);
	}
	/* The unix socket timestamps what it queues, as the kernel's would. */
	copy_sol(fd, app, SO_TIMESTAMP, sizeof(int));
	copy_sol(fd, app, SO_TIMESTAMPNS, sizeof(int));
	copy_sol(fd, app, SO_RCVTIMEO, sizeof(struct timeval));
	copy_sol(fd, app, SO_SNDTIMEO, sizeof(struct timeval));
}

/* The identifier a ping socket bound (its port), kept by the stack. */
static void bound_id(int fd, int family, struct sockaddr_storage *local)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(local, 0, sizeof(*local));
	local->ss_family = (sa_family_t)family;
	if (real.getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == family)
		ts_sa_set_port(local, ts_sa_port(&ss));
}

/* Swaps fd (an SFD_INET ICMP socket, entry e) for a socketpair end the stack serves. */
static struct shim_conn *icmp_open(int fd, const struct shim_fd *e,
				   const struct sockaddr_storage *dst, bool connecting)
{
	int flags = real.fcntl(fd, F_GETFL), fdflags = real.fcntl(fd, F_GETFD), sv[2], err;
	struct ts_bridge_req req = { .proto = e->protocol };
	struct ts_stack *st;
	struct shim_conn *c;

	/* IP_HDRINCL: the program writes the IP header itself; the tunnel does not
	 * carry that, and it must not reach the host either. */
	if (e->type == SOCK_RAW && e->domain == AF_INET && get_opt(fd, IPPROTO_IP, IP_HDRINCL))
		return errno = ENETUNREACH, NULL;
	if (!(st = shim_tunnel()))
		return NULL;
	/* Non-blocking for the stack's end; the application's gets its flags below. */
	if (real.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return NULL;
	sv[1] = shim_adopt_fd(sv[1]);
	if (!(c = shim_conn_new(e->protocol))) {
		real.close(sv[0]);
		real.close(sv[1]);
		return errno = ENOMEM, NULL;
	}
	c->domain = e->domain;
	c->sotype = e->type;
	c->state = CONN_CONNECTING;
	c->named = true; /* no abstract name: a foreign process cannot read the frames */
	if (connecting)
		c->remote = *dst;
	take_options(fd, sv[0], c);
	req.remote = *dst;
	req.fd = sv[1];
	req.icmp_raw = e->type == SOCK_RAW;
	bound_id(fd, e->domain, &req.local);
	shim_conn_get(c); /* the stack's, dropped by its ended callback */
	if ((err = -ts_bridge_open(st, &req, &shim_conn_ops, c)) > 0)
		shim_conn_put(c);
	real.fcntl(sv[0], F_SETFL, flags >= 0 ? (flags & O_NONBLOCK) : 0);
	shim_conn_get(c); /* ours while we use it */
	if (err || shim_swap_in(fd, sv[0], c, fdflags >= 0 && (fdflags & FD_CLOEXEC), e) < 0) {
		err = err ? err : errno;
		real.close(sv[0]);
		shim_conn_put(c);
		shim_conn_put(c);
		return errno = err, NULL;
	}
	shim_wait_outcome(c);
	ts_dbg("fd %d: %s ICMP%s socket into the tunnel", fd, e->type == SOCK_RAW ? "raw" : "ping",
	       e->domain == AF_INET6 ? "v6" : "");
	return c;
}

static size_t gather(const struct iovec *iov, size_t n, uint8_t *out, size_t cap)
{
	size_t done = 0;

	for (size_t i = 0; i < n && done < cap; i++) {
		size_t k = iov[i].iov_len < cap - done ? iov[i].iov_len : cap - done;

		memcpy(out + done, iov[i].iov_base, k);
		done += k;
	}
	return done;
}

/* One message to dst (a tunnel address of c's family), framed into the pair. */
static ssize_t frame_send(int fd, struct shim_conn *c, const struct iovec *iov, size_t iovlen,
			  int flags, const struct sockaddr_storage *dst)
{
	struct ts_icmp_frame h = { .type = TS_ICMP_FRAME_DATA };
	struct iovec v[UIO_MAXIOV];
	size_t len = shim_iov_len(iov, iovlen);
	struct shim_icmp_opts o;
	uint8_t head[2];
	ssize_t n;

	if (iovlen >= UIO_MAXIOV)
		return errno = EMSGSIZE, -1;
	if (dst->ss_family != c->domain)
		return errno = c->domain == AF_INET ? EAFNOSUPPORT : ENETUNREACH, -1;
	if (len > ICMP_MSG_MAX)
		return errno = EMSGSIZE, -1;
	/* A ping socket sends echo requests only (ping_common_sendmsg). */
	if (c->sotype == SOCK_DGRAM &&
	    (len < 8 || gather(iov, iovlen, head, 2) < 2 || head[1] != 0 ||
	     head[0] != (c->domain == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST)))
		return errno = EINVAL, -1;
	shim_conn_lock(c);
	o = c->icmp;
	shim_conn_unlock(c);
	/* Larger than the tunnel MTU where the socket forbids fragmenting (ping -M do):
	 * EMSGSIZE and the local error, as the kernel gives them. */
	if (shim_too_big(fd, o.pmtudisc, o.recverr, dst, len + (c->domain == AF_INET ? 20 : 40)))
		return -1;
	h.family = (uint8_t)c->domain;
	h.ttl = (uint8_t)(o.ttl > 0 && o.ttl < 256 ? o.ttl : 64);
	memcpy(h.addr, dst->ss_family == AF_INET ?
		       (const void *)&((const struct sockaddr_in *)dst)->sin_addr :
		       (const void *)&((const struct sockaddr_in6 *)dst)->sin6_addr,
	       dst->ss_family == AF_INET ? 4 : 16);
	v[0] = (struct iovec){ &h, sizeof(h) };
	memcpy(&v[1], iov, iovlen * sizeof(*iov));
	n = real.sendmsg(fd, &(struct msghdr){ .msg_iov = v, .msg_iovlen = iovlen + 1 },
			 (flags & MSG_DONTWAIT) | MSG_NOSIGNAL);
	if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
		errno = ENETUNREACH; /* the stack is gone (its holder was killed) */
	return n < 0 ? -1 : n - (ssize_t)sizeof(h);
}

ssize_t shim_icmp_first(int fd, struct shim_fd *e, const struct iovec *iov, size_t iovlen,
			int flags, const struct sockaddr_storage *dst, bool connecting)
{
	struct shim_conn *c;
	ssize_t n = 0;

	if (dst->ss_family != e->domain)
		return errno = e->domain == AF_INET ? EAFNOSUPPORT : ENETUNREACH, -1;
	if (!(c = icmp_open(fd, e, dst, connecting)))
		return -1;
	if (!connecting)
		n = frame_send(fd, c, iov, iovlen, flags, dst);
	shim_conn_put(c);
	return n;
}

/* A send on a swapped ICMP socket: to a tunnel address, or without one to the
 * address it was connected to. */
ssize_t shim_icmp_send(int fd, struct shim_conn *c, const struct iovec *iov, size_t iovlen,
		       int flags, const struct sockaddr *addr, socklen_t alen)
{
	struct sockaddr_storage dst;

	if (!addr) {
		if (!c->remote.ss_family)
			return errno = EDESTADDRREQ, -1;
		return frame_send(fd, c, iov, iovlen, flags, &c->remote);
	}
	switch (shim_route(addr, alen, &dst)) {
	case ROUTE_TUNNEL:
		return frame_send(fd, c, iov, iovlen, flags, &dst);
	case ROUTE_BLOCK:
		return errno = ENETUNREACH, -1;
	case ROUTE_PASS:
		break;
	}
	ts_info("fd %d: ICMP socket in the tunnel: a send to a host address refused", fd);
	return errno = ENETUNREACH, -1;
}

/* ---- receiving ---- */

/* The filters of raw sockets: ICMP_FILTER (types below 32) and ICMP6_FILTER. */
static bool filtered(const struct shim_conn *c, const struct ts_icmp_frame *h,
		     const uint8_t *msg, size_t len)
{
	size_t off = 0;
	uint8_t type;

	if (c->sotype != SOCK_RAW || h->type != TS_ICMP_FRAME_DATA)
		return false;
	if (c->domain == AF_INET)
		off = len ? (size_t)(msg[0] & 0x0f) * 4 : 0;
	if (off >= len)
		return false;
	type = msg[off];
	if (c->domain == AF_INET)
		return type < 32 && (c->icmp.filter & (1u << type));
	return (c->icmp.filter6[type >> 5] & (1u << (type & 31))) != 0;
}

static void put_cmsg(struct msghdr *m, size_t cap, int level, int type, int value)
{
	struct cmsghdr *cm;
	size_t used = m->msg_controllen;

	if (!m->msg_control || used + CMSG_LEN(sizeof(int)) > cap) {
		m->msg_flags |= MSG_CTRUNC;
		return;
	}
	cm = (struct cmsghdr *)((uint8_t *)m->msg_control + used);
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &value, sizeof(int));
	used += CMSG_SPACE(sizeof(int));
	m->msg_controllen = used < cap ? used : cap;
}

static void source_of(const struct ts_icmp_frame *h, struct sockaddr_storage *ss)
{
	ts_sa_make(ss, h->family == AF_INET6 ? AF_INET6 : AF_INET, h->addr, 0);
}

static size_t scatter(const struct iovec *iov, size_t n, const uint8_t *p, size_t len)
{
	size_t done = 0;

	for (size_t i = 0; i < n && done < len; i++) {
		size_t k = len - done < iov[i].iov_len ? len - done : iov[i].iov_len;

		memcpy(iov[i].iov_base, p + done, k);
		done += k;
	}
	return done;
}

/* The next message that passes the socket's filters, with its frame in h; those
 * that do not are consumed and skipped. */
static ssize_t next_message(int fd, struct shim_conn *c, struct msghdr *in, int flags,
			    struct ts_icmp_frame *h)
{
	size_t ctl = in->msg_controllen;
	ssize_t n;

	for (;;) {
		in->msg_controllen = ctl;
		n = real.recvmsg(fd, in, flags & ~(MSG_TRUNC | MSG_ERRQUEUE));
		if (n <= 0) {
			/* The stack ended the pair: its holder is gone. */
			return n == 0 ? (errno = ENETDOWN, -1) : -1;
		}
		if ((size_t)n >= sizeof(*h)) {
			memcpy(h, frame_buf, sizeof(*h));
			if (!filtered(c, h, frame_buf + sizeof(*h), (size_t)n - sizeof(*h)))
				return n - (ssize_t)sizeof(*h);
		}
		if (flags & MSG_PEEK)
			real.recv(fd, frame_buf, 1, MSG_DONTWAIT);
	}
}

ssize_t shim_icmp_recvmsg(int fd, struct shim_conn *c, struct msghdr *m, int flags)
{
	struct ts_icmp_frame h;
	struct sockaddr_storage src;
	struct iovec v;
	struct msghdr in;
	size_t cap = m->msg_control ? m->msg_controllen : 0, got;
	struct shim_icmp_opts o;
	ssize_t n;

	/* Only local errors: ICMP errors reach a raw socket as messages. */
	if (flags & MSG_ERRQUEUE)
		return shim_errq_recv(fd, c->domain, m, flags, NULL);
	if (!frame_buf && !(frame_buf = malloc(FRAME_MAX)))
		return errno = ENOMEM, -1;
	v = (struct iovec){ frame_buf, FRAME_MAX };
	in = (struct msghdr){ .msg_iov = &v, .msg_iovlen = 1, .msg_control = m->msg_control,
			      .msg_controllen = cap };
	if ((n = next_message(fd, c, &in, flags, &h)) < 0)
		return -1;
	got = scatter(m->msg_iov, m->msg_iovlen, frame_buf + sizeof(h), (size_t)n);
	if (m->msg_name) {
		source_of(&h, &src);
		memcpy(m->msg_name, &src, m->msg_namelen < ts_sa_len(&src) ? m->msg_namelen :
									    ts_sa_len(&src));
		m->msg_namelen = ts_sa_len(&src);
	}
	m->msg_flags = (in.msg_flags & MSG_CTRUNC) | (got < (size_t)n ? MSG_TRUNC : 0);
	m->msg_controllen = in.msg_controllen;
	shim_conn_lock(c);
	o = c->icmp;
	shim_conn_unlock(c);
	if (o.recvttl)
		put_cmsg(m, cap, c->domain == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
			 c->domain == AF_INET ? IP_TTL : IPV6_HOPLIMIT, h.ttl);
	return (flags & MSG_TRUNC) ? n : (ssize_t)got;
}

/* ---- options ---- */

static int int_of(const void *val, socklen_t len)
{
	int v = 0;

	if (val && len >= sizeof(int))
		memcpy(&v, val, sizeof(int));
	else if (val && len >= 1)
		v = *(const uint8_t *)val;
	return v;
}

/* Options of the IP layer and the filters are kept here; socket-level ones apply to
 * the unix socket. Returns the setsockopt result. */
int shim_icmp_setsockopt(struct shim_conn *c, int fd, int level, int name, const void *val,
			 socklen_t len)
{
	int v = int_of(val, len), rc = 0;

	if (level == SOL_SOCKET)
		return name == SO_SNDBUF ? 0 : real.setsockopt(fd, level, name, val, len);
	shim_conn_lock(c);
	if ((level == IPPROTO_IP && name == IP_TTL) ||
	    (level == IPPROTO_IPV6 && name == IPV6_UNICAST_HOPS)) {
		if (v < -1 || v > 255 || (v == 0 && level == IPPROTO_IP))
			rc = EINVAL;
		else
			c->icmp.ttl = v < 0 ? 64 : v;
	} else if ((level == IPPROTO_IP && name == IP_RECVTTL) ||
		   (level == IPPROTO_IPV6 && name == IPV6_RECVHOPLIMIT)) {
		c->icmp.recvttl = v != 0;
	} else if ((level == IPPROTO_IP && name == IP_RECVERR) ||
		   (level == IPPROTO_IPV6 && name == IPV6_RECVERR)) {
		c->icmp.recverr = v != 0;
	} else if (level == IPPROTO_IP && name == IP_RECVTOS) {
		c->icmp.recvtos = v != 0;
	} else if ((level == IPPROTO_IP && name == IP_MTU_DISCOVER) ||
		   (level == IPPROTO_IPV6 && name == IPV6_MTU_DISCOVER)) {
		if (v < IP_PMTUDISC_DONT || v > IP_PMTUDISC_OMIT)
			rc = EINVAL;
		else
			c->icmp.pmtudisc = v;
	} else if (level == SOL_RAW && name == ICMP_FILTER && c->sotype == SOCK_RAW &&
		   c->domain == AF_INET) {
		c->icmp.filter = (uint32_t)v;
	} else if (level == IPPROTO_ICMPV6 && name == ICMP6_FILTER && c->sotype == SOCK_RAW) {
		memset(c->icmp.filter6, 0, sizeof(c->icmp.filter6));
		if (val)
			memcpy(c->icmp.filter6, val, len < sizeof(c->icmp.filter6) ? len :
						     sizeof(c->icmp.filter6));
	}
	shim_conn_unlock(c);
	return rc ? (errno = rc, -1) : 0;
}

static int put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len || *len < sizeof(int))
		return errno = EINVAL, -1;
	memcpy(val, &v, sizeof(int));
	*len = sizeof(int);
	return 0;
}

int shim_icmp_getsockopt(struct shim_conn *c, int fd, int level, int name, void *val,
			 socklen_t *len)
{
	struct shim_icmp_opts o;

	shim_conn_lock(c);
	o = c->icmp;
	shim_conn_unlock(c);
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_DOMAIN:
			return put_int(val, len, c->domain);
		case SO_TYPE:
			return put_int(val, len, c->sotype);
		case SO_PROTOCOL:
			return put_int(val, len, c->proto);
		case SO_ERROR:
			return put_int(val, len, 0);
		}
		return real.getsockopt(fd, level, name, val, len);
	}
	if ((level == IPPROTO_IP && name == IP_TTL) ||
	    (level == IPPROTO_IPV6 && name == IPV6_UNICAST_HOPS))
		return put_int(val, len, o.ttl ? o.ttl : 64);
	if ((level == IPPROTO_IP && name == IP_RECVTTL) ||
	    (level == IPPROTO_IPV6 && name == IPV6_RECVHOPLIMIT))
		return put_int(val, len, o.recvttl);
	if ((level == IPPROTO_IP && name == IP_RECVERR) ||
	    (level == IPPROTO_IPV6 && name == IPV6_RECVERR))
		return put_int(val, len, o.recverr);
	if ((level == IPPROTO_IP && name == IP_MTU_DISCOVER) ||
	    (level == IPPROTO_IPV6 && name == IPV6_MTU_DISCOVER))
		return put_int(val, len, o.pmtudisc);
	if (level == SOL_RAW && name == ICMP_FILTER)
		return put_int(val, len, (int)o.filter);
	if (level == IPPROTO_ICMPV6 && name == ICMP6_FILTER && val && len) {
		*len = *len < sizeof(o.filter6) ? *len : sizeof(o.filter6);
		memcpy(val, o.filter6, *len);
		return 0;
	}
	return put_int(val, len, 0);
}
