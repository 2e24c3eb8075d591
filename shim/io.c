/* SPDX-License-Identifier: MIT */
/* The receive calls. Two things differ from the kernel socket underneath: a tunnelled
 * TCP connection that the remote reset reads as ECONNRESET (the socketpair can only
 * say EOF), and an unconnected UDP socket that talks to the tunnel gets framed
 * datagrams from the stack's relay, whose frame is stripped here and whose tunnel
 * source is reported. _FORTIFY_SOURCE builds call the __*_chk variants. */
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <sodium.h>
#include "dns/lookup.h"
#include "shim.h"
#include "sockaddr.h"

#define DGRAM_MAX (65536 + sizeof(struct ts_udp_frame))

static __thread uint8_t *dgram_buf;

/* After EOF on a tunnelled TCP connection: was it a reset? Reported once. */
static ssize_t eof_or_reset(struct shim_conn *c)
{
	bool reset;

	if (c->proto != IPPROTO_TCP)
		return 0;
	shim_conn_lock(c);
	reset = c->end_error == ECONNRESET && !c->reset_reported;
	if (reset)
		c->reset_reported = true;
	shim_conn_unlock(c);
	return reset ? (errno = ECONNRESET, -1) : 0;
}

/* Before a write: a reset the application has not been told of yet, or (UDP) a
 * datagram no UDP socket could send; the SEQPACKET pair underneath would take it. */
bool shim_send_refused(int fd, size_t len)
{
	struct shim_conn *c = shim_tunnel_conn(fd);
	bool refused;

	if (!c)
		return false;
	if (c->proto == IPPROTO_UDP && len > TS_UDP_PAYLOAD_MAX) {
		errno = EMSGSIZE;
		refused = true;
	} else {
		refused = eof_or_reset(c) < 0;
	}
	shim_conn_put(c);
	return refused;
}

/* A connected socket's error, onto its error queue (IP_RECVERR): the name is the
 * address it is connected to, the payload what the error quotes of its datagram. */
static void udp_queue_error(int fd, const struct shim_conn *c, const struct ts_udp_errinfo *i)
{
	int family = i->rec.ee_origin == SO_EE_ORIGIN_ICMP6 ? AF_INET6 : AF_INET;
	struct shim_err err = { .ttl = i->rec.ttl, .name = c->remote };

	err.ee.ee_errno = i->rec.ee_errno;
	err.ee.ee_origin = i->rec.ee_origin;
	err.ee.ee_type = i->rec.ee_type;
	err.ee.ee_code = i->rec.ee_code;
	err.ee.ee_info = i->rec.ee_info;
	ts_sa_make(&err.offender, family, i->rec.offender, 0);
	shim_errq_push(fd, &err, i->quote, i->len < sizeof(i->quote) ? i->len : sizeof(i->quote));
}

/* A zero-length message on a connected UDP flow's pair while the stack's end is still
 * open: an empty datagram, or the stack's wake-up for an ICMP error (port unreachable
 * ...) that the kernel would report on this receive; the stack says which
 * (ts_bridge_udp_error). With IP_RECVERR the error also goes onto the socket's error
 * queue, as the kernel queues it. The pair's EOF (the stack is gone) stays 0. */
static ssize_t udp_empty(int fd, struct shim_conn *c, int flags)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	struct ts_udp_errinfo info;
	struct ts_stack *st;
	uint64_t id;
	bool recverr;
	int err;

	if (poll(&p, 1, 0) < 0 || (p.revents & (POLLRDHUP | POLLHUP)))
		return 0;
	shim_conn_lock(c);
	id = c->id;
	recverr = c->recverr;
	shim_conn_unlock(c);
	if (!id || !(st = shim_tunnel()) || (err = ts_bridge_udp_error(st, id, &info)) <= 0)
		return 0;
	/* A peek left the wake-up queued: it is no datagram, so it goes too. */
	if (flags & MSG_PEEK)
		real.recv(fd, NULL, 0, MSG_DONTWAIT);
	if (recverr)
		udp_queue_error(fd, c, &info);
	return errno = err, -1;
}

/* MSG_ERRQUEUE on a connected UDP socket: an error the stack still holds (its wake-up
 * is next in the pair) is taken first. */
static ssize_t udp_errqueue(int fd, struct shim_conn *c, struct msghdr *m, int flags)
{
	if (real.recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT) == 0)
		udp_empty(fd, c, MSG_PEEK);
	return shim_errq_recv(fd, c->domain, m, flags, NULL);
}

int shim_udp_so_error(int fd, struct shim_conn *c)
{
	char b;

	if (c->proto != IPPROTO_UDP || real.recv(fd, &b, 0, MSG_PEEK | MSG_DONTWAIT) != 0)
		return 0;
	return udp_empty(fd, c, MSG_PEEK) < 0 ? errno : 0;
}

/* What a receive on a tunnelled descriptor gave, as the application sees it: EOF may
 * be a reset, an empty message an ICMP error; the source is the tunnel peer (the
 * kernel said nothing: the stack's end has no name), so the caller's size counts.
 * Drops the caller's reference to c. */
static ssize_t tunnel_received(int fd, struct shim_conn *c, ssize_t n, size_t len, int flags,
			       struct sockaddr *addr, socklen_t *alen, socklen_t cap)
{
	if (n == 0 && c->proto == IPPROTO_UDP) {
		n = udp_empty(fd, c, flags);
	} else if (n == 0 && len > 0) {
		n = eof_or_reset(c);
	}
	if (n >= 0 && addr && alen) {
		*alen = cap;
		getpeername(fd, addr, alen);
	}
	shim_conn_put(c);
	return n;
}

static size_t iov_len(const struct iovec *iov, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; iov && i < n; i++)
		len += iov[i].iov_len;
	return len;
}

size_t shim_iov_len(const struct iovec *iov, size_t n)
{
	return iov_len(iov, n);
}

/* Lock-free: asked on every receive of every inet socket. */
static bool wants_strip(int fd)
{
	return shim_fd_kind(fd) == SFD_INET && (shim_fd_flags(fd) & SFDF_UDP_TUNNEL);
}

static bool from_relay(const struct sockaddr_storage *src, const uint8_t *buf, size_t len)
{
	const struct shim_relay *r = src->ss_family == AF_INET ? &shim_relay4 : &shim_relay6;
	socklen_t alen = ts_sa_len(src);

	return __atomic_load_n(&r->ready, __ATOMIC_ACQUIRE) && len >= sizeof(struct ts_udp_frame) &&
	       memcmp(src, &r->addr, alen) == 0 && sodium_memcmp(buf, r->token, 8) == 0;
}

/* The tunnel source, in the form the socket's family reports (mapped on AF_INET6). */
static void frame_source(const struct ts_udp_frame *h, int domain, struct sockaddr_storage *ss)
{
	ts_sa_make(ss, h->family == AF_INET6 ? AF_INET6 : AF_INET, h->addr, h->port);
	shim_map_to_domain(ss, domain);
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

/* An ICMP error the stack framed (TS_UDP_FRAME_ERROR), n bytes in dgram_buf: onto the
 * socket's error queue if it asked for one (IP_RECVERR), and then, as the kernel sets
 * sk_err for it, the receive that found it fails with its errno (true). Without
 * IP_RECVERR an unconnected socket never hears of it (false). */
static bool relay_error(int fd, size_t n)
{
	const struct ts_udp_frame *h = (const struct ts_udp_frame *)dgram_buf;
	struct ts_udp_error rec;
	struct shim_err err = { 0 };
	size_t hl = sizeof(*h) + sizeof(rec);

	if (n < hl || !shim_udp_recverr(fd, h->family))
		return false;
	memcpy(&rec, dgram_buf + sizeof(*h), sizeof(rec));
	err.ee.ee_errno = rec.ee_errno;
	err.ee.ee_origin = rec.ee_origin;
	err.ee.ee_type = rec.ee_type;
	err.ee.ee_code = rec.ee_code;
	err.ee.ee_info = rec.ee_info;
	err.ttl = rec.ttl;
	ts_sa_make(&err.name, h->family, h->addr, h->port);
	ts_sa_make(&err.offender, h->family, rec.offender, 0);
	if (shim_errq_push(fd, &err, dgram_buf + hl, n - hl) < 0)
		return false;
	errno = (int)rec.ee_errno;
	return true;
}

static bool is_error_frame(const struct sockaddr_storage *src, size_t n)
{
	return from_relay(src, dgram_buf, n) &&
	       ((const struct ts_udp_frame *)dgram_buf)->type == TS_UDP_FRAME_ERROR;
}

static int get_int(int fd, int level, int name)
{
	int v = 0;
	socklen_t l = sizeof(v);

	return real.getsockopt(fd, level, name, &v, &l) < 0 ? 0 : v;
}

/* The TTL control message the kernel socket was asked for, for errors of family. */
static int ttl_cmsg(int fd, int family)
{
	if (family == AF_INET)
		return get_int(fd, IPPROTO_IP, IP_RECVTTL) ? IP_TTL : 0;
	if (get_int(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT))
		return IPV6_HOPLIMIT;
	return get_int(fd, IPPROTO_IPV6, IPV6_2292HOPLIMIT) ? IPV6_2292HOPLIMIT : 0;
}

/* MSG_ERRQUEUE on a socket that talks to the tunnel through the relay: the errors of
 * its tunnel traffic are in the shim's queue, or still in the kernel socket's
 * receive queue as the stack's frames (taken when one is next); those of its host
 * traffic are in the kernel's error queue, where the errors about the frames it sent
 * the relay on loopback are no concern of the program's and are dropped. */
static ssize_t errqueue_recvmsg(int fd, int domain, struct msghdr *m, int flags)
{
	const struct shim_relay *r = domain == AF_INET ? &shim_relay4 : &shim_relay6;
	struct sockaddr_storage src;
	struct iovec v = { dgram_buf, DGRAM_MAX };
	struct msghdr in;
	socklen_t cap = m->msg_namelen;
	ssize_t n;

	for (;;) {
		n = real.recvmsg(fd, &(struct msghdr){ .msg_name = &src, .msg_namelen = sizeof(src),
						       .msg_iov = &v, .msg_iovlen = 1 },
				 MSG_PEEK | MSG_DONTWAIT);
		if (n >= 0 && is_error_frame(&src, (size_t)n)) {
			real.recv(fd, NULL, 0, MSG_DONTWAIT);
			if (!relay_error(fd, (size_t)n))
				continue;
		}
		if (shim_errq_pending(fd))
			return shim_errq_recv(fd, domain, m, flags, ttl_cmsg);
		break;
	}
	for (;;) {
		in = *m;
		in.msg_name = &src;
		in.msg_namelen = sizeof(src);
		n = real.recvmsg(fd, &in, flags);
		if (n < 0)
			return -1;
		if (!(__atomic_load_n(&r->ready, __ATOMIC_ACQUIRE) &&
		      memcmp(&src, &r->addr, ts_sa_len(&r->addr)) == 0))
			break;
	}
	if (m->msg_name)
		memcpy(m->msg_name, &src, cap < in.msg_namelen ? cap : in.msg_namelen);
	m->msg_namelen = in.msg_namelen;
	m->msg_controllen = in.msg_controllen;
	m->msg_flags = in.msg_flags;
	return n;
}

/* recvmsg for a socket that may receive relay frames. */
static ssize_t strip_recvmsg(int fd, struct msghdr *m, int flags)
{
	struct sockaddr_storage src, tsrc;
	struct iovec v;
	struct msghdr in;
	const uint8_t *payload;
	ssize_t n;
	size_t plen, got;
	struct shim_fd e;
	socklen_t cap = m->msg_namelen;

	if (!dgram_buf && !(dgram_buf = malloc(DGRAM_MAX)))
		return errno = ENOMEM, -1;
	shim_fd_read(fd, &e);
	if (flags & MSG_ERRQUEUE)
		return errqueue_recvmsg(fd, e.domain ? e.domain : AF_INET, m, flags);
	v = (struct iovec){ dgram_buf, DGRAM_MAX };
	for (;;) {
		in = (struct msghdr){ .msg_name = &src, .msg_namelen = sizeof(src), .msg_iov = &v,
				      .msg_iovlen = 1, .msg_control = m->msg_control,
				      .msg_controllen = m->msg_controllen };
		n = real.recvmsg(fd, &in, flags & ~MSG_TRUNC);
		if (n < 0)
			return -1;
		if (!is_error_frame(&src, (size_t)n))
			break;
		/* An error is no datagram: a peek leaves it, so it goes now. */
		if (flags & MSG_PEEK)
			real.recv(fd, NULL, 0, MSG_DONTWAIT);
		if (relay_error(fd, (size_t)n))
			return -1;
	}
	payload = dgram_buf;
	plen = (size_t)n;
	if (from_relay(&src, dgram_buf, plen)) {
		frame_source((const struct ts_udp_frame *)dgram_buf, e.domain ? e.domain : AF_INET,
			     &tsrc);
		src = tsrc;
		in.msg_namelen = ts_sa_len(&src);
		payload += sizeof(struct ts_udp_frame);
		plen -= sizeof(struct ts_udp_frame);
	}
	got = scatter(m->msg_iov, m->msg_iovlen, payload, plen);
	if (m->msg_name) {
		memcpy(m->msg_name, &src, m->msg_namelen < in.msg_namelen ? m->msg_namelen : in.msg_namelen);
		m->msg_namelen = in.msg_namelen;
		shim_dns_unredirect(fd, m->msg_name, cap, &m->msg_namelen); /* dns_redirect.c */
	}
	m->msg_controllen = in.msg_controllen;
	m->msg_flags = in.msg_flags | (got < plen ? MSG_TRUNC : 0);
	return (flags & MSG_TRUNC) ? (ssize_t)plen : (ssize_t)got;
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	socklen_t cap = m ? m->msg_namelen : 0;
	struct shim_conn *c;
	ssize_t n;

	if (!shim_enter())
		return real.recvmsg(fd, m, flags);
	if (wants_strip(fd))
		return strip_recvmsg(fd, m, flags);
	c = shim_tunnel_conn(fd);
	if (c && shim_icmp_proto(c->proto)) {
		n = shim_icmp_recvmsg(fd, c, m, flags);
		shim_conn_put(c);
		return n;
	}
	if (c && c->proto == IPPROTO_UDP && (flags & MSG_ERRQUEUE)) {
		n = udp_errqueue(fd, c, m, flags);
		shim_conn_put(c);
		return n;
	}
	n = real.recvmsg(fd, m, flags);
	/* Here 0 is always the end (the buffers' size is not looked at), and a name is
	 * written only where there is room for one. */
	if (c)
		return tunnel_received(fd, c, n, 1, flags, cap ? m->msg_name : NULL,
				       &m->msg_namelen, cap);
	if (n >= 0 && m->msg_name) /* dns_redirect.c */
		shim_dns_unredirect(fd, m->msg_name, cap, &m->msg_namelen);
	return n;
}

static ssize_t strip_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
			      socklen_t *alen)
{
	struct iovec v = { buf, len };
	struct msghdr m = { .msg_name = addr, .msg_namelen = alen ? *alen : 0,
			    .msg_iov = &v, .msg_iovlen = 1 };
	ssize_t n = strip_recvmsg(fd, &m, flags);

	if (n >= 0 && alen)
		*alen = m.msg_namelen;
	return n;
}

static ssize_t icmp_recvfrom(int fd, struct shim_conn *c, void *buf, size_t len, int flags,
			     struct sockaddr *addr, socklen_t *alen)
{
	struct iovec v = { buf, len };
	struct msghdr m = { .msg_name = addr, .msg_namelen = addr && alen ? *alen : 0,
			    .msg_iov = &v, .msg_iovlen = 1 };
	ssize_t n = shim_icmp_recvmsg(fd, c, &m, flags);

	if (n >= 0 && addr && alen)
		*alen = m.msg_namelen;
	return n;
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
			     socklen_t *alen)
{
	socklen_t cap = alen ? *alen : 0;
	struct shim_conn *c;
	ssize_t n;

	if (!shim_enter())
		return real.recvfrom(fd, buf, len, flags, addr, alen);
	if (wants_strip(fd))
		return strip_recvfrom(fd, buf, len, flags, addr, alen);
	c = shim_tunnel_conn(fd);
	if (c && shim_icmp_proto(c->proto)) {
		n = icmp_recvfrom(fd, c, buf, len, flags, addr, alen);
		shim_conn_put(c);
		return n;
	}
	n = real.recvfrom(fd, buf, len, flags, addr, alen);
	if (c)
		return tunnel_received(fd, c, n, len, flags, addr, alen, cap);
	if (n >= 0 && addr && alen)
		shim_dns_unredirect(fd, addr, cap, alen); /* dns_redirect.c */
	return n;
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
	struct shim_conn *c;
	ssize_t n;

	if (!shim_enter())
		return real.read(fd, buf, len);
	if (wants_strip(fd))
		return recvfrom(fd, buf, len, 0, NULL, NULL);
	c = shim_tunnel_conn(fd);
	if (c && shim_icmp_proto(c->proto)) {
		n = icmp_recvfrom(fd, c, buf, len, 0, NULL, NULL);
		shim_conn_put(c);
		return n;
	}
	n = real.read(fd, buf, len);
	return c ? tunnel_received(fd, c, n, len, 0, NULL, NULL, 0) : n;
}

static bool icmp_tunnel(int fd)
{
	struct shim_conn *c = shim_icmp_conn(fd);

	if (c)
		shim_conn_put(c);
	return c != NULL;
}

SHIM_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
			 struct timespec *timeout)
{
	unsigned int i;

	if (!shim_enter() || (!wants_strip(fd) && !icmp_tunnel(fd)))
		return real.recvmmsg(fd, vec, vlen, flags, timeout);
	/* Rare enough to do one at a time; only the first waits. */
	for (i = 0; i < vlen; i++) {
		ssize_t n = recvmsg(fd, &vec[i].msg_hdr, i ? flags | MSG_DONTWAIT : flags);

		if (n < 0)
			return i ? (int)i : -1;
		vec[i].msg_len = (unsigned int)n;
		if (flags & MSG_WAITFORONE)
			flags |= MSG_DONTWAIT;
	}
	return (int)i;
}

SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		__builtin_trap();
	return read(fd, buf, len);
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		__builtin_trap();
	return recv(fd, buf, len, flags);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
				   struct sockaddr *addr, socklen_t *alen)
{
	if (len > buflen)
		__builtin_trap();
	return recvfrom(fd, buf, len, flags, addr, alen);
}

/* FIONREAD on a socket that receives relay frames: the next datagram's payload size. */
SHIM_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!shim_enter())
		return real.ioctl(fd, req, arg);
	if (req == FIONREAD && arg && wants_strip(fd)) {
		struct iovec v = { NULL, 0 };
		struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
		ssize_t n = strip_recvmsg(fd, &m, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);

		*(int *)arg = n < 0 ? 0 : (int)n;
		return 0;
	}
	return real.ioctl(fd, req, arg);
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	if (!shim_enter())
		return real.write(fd, buf, len);
	if (shim_send_refused(fd, len))
		return -1;
	if (icmp_tunnel(fd))
		return send(fd, buf, len, 0);
	return real.write(fd, buf, len);
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	if (!shim_enter())
		return real.writev(fd, iov, n);
	if (shim_send_refused(fd, n > 0 ? iov_len(iov, (size_t)n) : 0))
		return -1;
	if (icmp_tunnel(fd))
		return sendmsg(fd, &(struct msghdr){ .msg_iov = (struct iovec *)iov,
						     .msg_iovlen = n > 0 ? (size_t)n : 0 }, 0);
	return real.writev(fd, iov, n);
}
