/* SPDX-License-Identifier: MIT */
/* ICMP sockets (stack.h): an application's raw or ping socket, IPv4 or IPv6, bridged
 * to a SOCK_SEQPACKET pair of framed messages. One lwIP raw pcb per family sees every
 * ICMP packet that arrives and hands each socket what the kernel would: a raw socket
 * everything of its family, a ping socket the echo replies with its identifier. The
 * pcb never eats a packet, so lwIP still answers echo requests to our own addresses
 * itself; echo replies, which lwIP drops, have been delivered by then. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "bridge.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/prot/icmp.h"
#include "lwip/prot/icmp6.h"
#include "lwip/raw.h"
#include "log.h"
#include "sockaddr.h"
#include "sys.h"

#define ICMP_HDR 8
#define FRAME_MAX (sizeof(struct ts_icmp_frame) + 65536)

static uint8_t echo_request(int family)
{
	return family == AF_INET ? ICMP_ECHO : ICMP6_TYPE_EREQ;
}

static uint8_t echo_reply(int family)
{
	return family == AF_INET ? ICMP_ER : ICMP6_TYPE_EREP;
}

/* One message into the application's end, from offset off of p; dropped when the
 * pair is full, as a full socket buffer drops it. */
static void to_app(struct ts_bridge *b, const struct ts_icmp_frame *h, struct pbuf *p, u16_t off)
{
	static uint8_t buf[FRAME_MAX];
	u16_t n = (u16_t)(p->tot_len - off);

	memcpy(buf, h, sizeof(*h));
	pbuf_copy_partial(p, buf + sizeof(*h), n, off);
	if (ts_sys()->send(b->fd, buf, sizeof(*h) + n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    errno != EAGAIN && errno != ENOBUFS)
		ts_dbg("icmp bridge: %s", strerror(errno));
}

static bool wants(const struct ts_bridge *b, int family, const uint8_t *icmp)
{
	if (!b->icmp || b->dead || b->icmp_family != family)
		return false;
	if (b->req.icmp_raw)
		return true;
	return icmp[0] == echo_reply(family) && icmp[1] == 0 &&
	       ((icmp[4] << 8) | icmp[5]) == b->icmp_id;
}

/* The errno an ICMP error means to a connection, as Linux converts it
 * (icmp_err_convert, icmpv6_err_convert); 0 for messages that are no error. */
static int error_errno(int family, uint8_t type, uint8_t code)
{
	static const int unreach4[16] = {
		ENETUNREACH, EHOSTUNREACH, ENOPROTOOPT, ECONNREFUSED, EMSGSIZE, EOPNOTSUPP,
		ENETUNREACH, EHOSTDOWN, ENONET, ENETUNREACH, EHOSTUNREACH, ENETUNREACH,
		EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH,
	};
	static const int unreach6[7] = {
		ENETUNREACH, EACCES, EHOSTUNREACH, EHOSTUNREACH, ECONNREFUSED, EACCES, EACCES,
	};

	if (family == AF_INET && type == ICMP_DUR)
		return code < 16 ? unreach4[code] : 0;
	if (family == AF_INET && type == ICMP_TE)
		return EHOSTUNREACH;
	if (family == AF_INET && type == ICMP_PP)
		return EPROTO;
	if (family == AF_INET6 && type == ICMP6_TYPE_DUR)
		return code < 7 ? unreach6[code] : 0;
	if (family == AF_INET6 && type == ICMP6_TYPE_PTB)
		return EMSGSIZE;
	if (family == AF_INET6 && type == ICMP6_TYPE_TE)
		return EHOSTUNREACH;
	if (family == AF_INET6 && type == ICMP6_TYPE_PP)
		return EPROTO;
	return 0;
}

static bool same_ip(const ip_addr_t *ip, int family, const uint8_t *addr)
{
	if (family == AF_INET)
		return IP_IS_V4(ip) && memcmp(&ip_2_ip4(ip)->addr, addr, 4) == 0;
	return IP_IS_V6(ip) && memcmp(ip_2_ip6(ip)->addr, addr, 16) == 0;
}

/* Linux's "hard" errors (the fatal column of icmp_err_convert and icmpv6_err_convert,
 * and parameter problems): the ones a connected UDP socket without IP_RECVERR reports. */
static bool hard_error(int family, uint8_t type, uint8_t code)
{
	if (family == AF_INET)
		return type == ICMP_PP || (type == ICMP_DUR && code < 16 && (0xe7ccu >> code) & 1);
	return type == ICMP6_TYPE_PP ||
	       (type == ICMP6_TYPE_DUR && code < 7 && (0x72u >> code) & 1);
}

/* The transport ports and destination of the packet an ICMP error quotes (from offset
 * off of p), if it is of protocol proto. */
struct quoted {
	u16_t sport, dport;
	uint8_t dst[16];
	u16_t payload; /* where the quoted transport payload starts, from off */
};

static bool quote_of(int family, int proto, struct pbuf *p, u16_t off, struct quoted *out)
{
	uint8_t q[40 + 4];
	u16_t n = pbuf_copy_partial(p, q, sizeof(q), off), hl;

	if (family == AF_INET) {
		hl = (u16_t)((q[0] & 0x0f) * 4);
		if (n < 20 || hl < 20 || n < hl + 4 || q[9] != proto)
			return false;
		memcpy(out->dst, q + 16, 4);
	} else {
		hl = 40;
		if (n < hl + 4 || q[6] != proto)
			return false;
		memcpy(out->dst, q + 24, 16);
	}
	out->sport = (u16_t)((q[hl] << 8) | q[hl + 1]);
	out->dport = (u16_t)((q[hl + 2] << 8) | q[hl + 3]);
	out->payload = (u16_t)(hl + 8);
	return true;
}

/* An ICMP error about a TCP connection we are opening (the packet it quotes is our
 * SYN): the connect fails with the error at once, as the kernel fails it in SYN_SENT,
 * instead of waiting out the retries. */
static void tcp_error(struct ts_stack *st, int family, int err, struct pbuf *p, u16_t off)
{
	struct quoted q;

	if (!quote_of(family, IP_PROTO_TCP, p, off, &q))
		return;
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (!b->dead && b->tcp && b->tcp->state == SYN_SENT &&
		    b->tcp->local_port == q.sport && b->tcp->remote_port == q.dport &&
		    same_ip(&b->tcp->remote_ip, family, q.dst))
			ts_bridge_tcp_abort(b, err);
}

/* The error queue's record of an ICMP error (h: its source and TTL). */
static void error_record(int err, const uint8_t *icmp, const struct ts_icmp_frame *h,
			 struct ts_udp_error *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->ee_errno = (uint32_t)err;
	rec->ee_type = icmp[0];
	rec->ee_code = icmp[1];
	rec->ttl = h->ttl;
	/* Bytes 4-7 of the header: the MTU of a "fragmentation needed" or "packet too
	 * big", unused (zero) in the others; Linux reports them as they are. */
	rec->ee_info = ((uint32_t)icmp[4] << 24) | ((uint32_t)icmp[5] << 16) |
		       ((uint32_t)icmp[6] << 8) | icmp[7];
	rec->ee_origin = h->family == AF_INET ? 2 : 3; /* SO_EE_ORIGIN_ICMP, _ICMP6 */
	memcpy(rec->offender, h->addr, sizeof(rec->offender));
}

/* An ICMP error about a datagram of a connected UDP flow: pending on it, as on the
 * kernel's connected socket, for hard errors (port unreachable, ...) and, on a socket
 * with IP_RECVERR, for every error. */
static void udp_error(struct ts_stack *st, int err, bool hard, const uint8_t *icmp,
		      const struct ts_icmp_frame *h, struct pbuf *p, u16_t off)
{
	struct ts_udp_errinfo info;
	struct quoted q;
	u16_t at;

	if (!quote_of(h->family, IP_PROTO_UDP, p, off, &q))
		return;
	error_record(err, icmp, h, &info.rec);
	at = (u16_t)(off + q.payload);
	info.len = p->tot_len > at ? pbuf_copy_partial(p, info.quote, (u16_t)(p->tot_len - at) <
						       sizeof(info.quote) ? (u16_t)(p->tot_len - at) :
						       (u16_t)sizeof(info.quote), at) : 0;
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (!b->dead && b->udp && (hard || b->udp_recverr) &&
		    b->udp->local_port == q.sport && b->udp->remote_port == q.dport &&
		    same_ip(&b->udp->remote_ip, h->family, q.dst))
			ts_bridge_udp_icmp_error(b, err, &info);
}

/* Any ICMP error about a datagram of an unconnected UDP socket (the relay's flows):
 * the socket's error queue gets it, if the socket asked for one (the shim decides). */
static void relay_error(struct ts_stack *st, int err, const uint8_t *icmp,
			const struct ts_icmp_frame *h, struct pbuf *p, u16_t off)
{
	struct ts_udp_error rec;
	struct quoted q;

	if (!quote_of(h->family, IP_PROTO_UDP, p, off, &q))
		return;
	error_record(err, icmp, h, &rec);
	ts_udp_relay_error(st, h->family, q.sport, q.dport, q.dst, &rec, p,
			   (u16_t)(off + q.payload));
}

/* p starts at the IP header (lwIP's raw input); addr is the source. */
static u8_t on_icmp(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr)
{
	struct ts_stack *st = arg;
	int family = IP_IS_V6(addr) ? AF_INET6 : AF_INET;
	u16_t hlen = (u16_t)ip_current_header_tot_len();
	struct ts_icmp_frame h = { .type = TS_ICMP_FRAME_DATA, .family = (uint8_t)family };
	uint8_t icmp[ICMP_HDR];
	int err;

	(void)pcb;
	if (p->tot_len < hlen + ICMP_HDR || pbuf_copy_partial(p, icmp, ICMP_HDR, hlen) != ICMP_HDR)
		return 0;
	if (family == AF_INET) {
		h.ttl = IPH_TTL(ip4_current_header());
		memcpy(h.addr, &ip_2_ip4(addr)->addr, 4);
	} else {
		h.ttl = IP6H_HOPLIM(ip6_current_header());
		memcpy(h.addr, ip_2_ip6(addr)->addr, 16);
	}
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (wants(b, family, icmp))
			to_app(b, &h, p, b->req.icmp_raw && family == AF_INET ? 0 : hlen);
	if ((err = error_errno(family, icmp[0], icmp[1]))) {
		/* A smaller path MTU is no reason to give up a connect (Linux lowers the
		 * MSS instead; lwIP's MSS fits the tunnel already). */
		if (err != EMSGSIZE)
			tcp_error(st, family, err, p, (u16_t)(hlen + ICMP_HDR));
		udp_error(st, err, hard_error(family, icmp[0], icmp[1]), icmp, &h, p,
			  (u16_t)(hlen + ICMP_HDR));
		relay_error(st, err, icmp, &h, p, (u16_t)(hlen + ICMP_HDR));
	}
	return 0; /* not eaten: lwIP answers echo requests itself */
}

static struct raw_pcb *family_pcb(struct ts_stack *st, int family)
{
	struct raw_pcb **pp = family == AF_INET ? &st->icmp4 : &st->icmp6;

	if (*pp)
		return *pp;
	if (family == AF_INET)
		*pp = raw_new_ip_type(IPADDR_TYPE_V4, IP_PROTO_ICMP);
	else
		*pp = raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_ICMP6);
	if (!*pp)
		return NULL;
	raw_recv(*pp, on_icmp, st);
	/* The kernel always computes the ICMPv6 checksum (it covers the addresses,
	 * which the application does not choose); lwIP does it on send. */
	if (family == AF_INET6) {
		(*pp)->chksum_reqd = 1;
		(*pp)->chksum_offset = 2;
	}
	return *pp;
}

/* Both pcbs exist from the start: ICMP errors about TCP connections arrive through
 * them whether or not a program has an ICMP socket. */
int ts_icmp_setup(struct ts_stack *st)
{
	return family_pcb(st, AF_INET) && family_pcb(st, AF_INET6) ? 0 : -1;
}

static bool id_taken(struct ts_stack *st, int family, u16_t id)
{
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (b->icmp && !b->dead && !b->req.icmp_raw && b->icmp_family == family &&
		    b->icmp_id == id)
			return true;
	return false;
}

/* A ping socket's identifier, its "port": the one it bound, else a free one. */
static int pick_id(struct ts_stack *st, int family, u16_t want)
{
	u16_t id;

	if (want)
		return id_taken(st, family, want) ? -EADDRINUSE : want;
	for (int i = 0; i < 65536; i++) {
		id = (u16_t)LWIP_RAND();
		if (id && !id_taken(st, family, id))
			return id;
	}
	return -EAGAIN;
}

static bool family_matches(const struct ts_icmp_frame *h, int family)
{
	return h->type == TS_ICMP_FRAME_DATA && h->family == family;
}

/* One message from the application: to a tunnel destination only (the shim routed
 * it; this keeps another process of the session from using the pcb elsewhere). */
static void send_one(struct ts_stack *st, struct ts_bridge *b, const struct ts_icmp_frame *h,
		     uint8_t *msg, size_t len)
{
	int family = b->icmp_family;
	struct raw_pcb *pcb = family_pcb(st, family);
	ip_addr_t dst;
	struct pbuf *p;
	u16_t sum;

	if (!pcb || !family_matches(h, family) || len > 0xffff - 60 ||
	    wg_device_route(st->dev, family, h->addr) < 0)
		return;
	if (!b->req.icmp_raw) {
		/* A ping socket: echo requests only, with its identifier and our checksum. */
		if (len < ICMP_HDR || msg[0] != echo_request(family) || msg[1] != 0)
			return;
		msg[4] = (uint8_t)(b->icmp_id >> 8);
		msg[5] = (uint8_t)b->icmp_id;
	}
	if (family == AF_INET6 && len >= 4) {
		msg[2] = msg[3] = 0; /* lwIP sums over the field */
	} else if (!b->req.icmp_raw) {
		msg[2] = msg[3] = 0;
		sum = inet_chksum(msg, (u16_t)len);
		memcpy(msg + 2, &sum, 2);
	}
	memset(&dst, 0, sizeof(dst));
	if (family == AF_INET) {
		IP_SET_TYPE(&dst, IPADDR_TYPE_V4);
		memcpy(&ip_2_ip4(&dst)->addr, h->addr, 4);
	} else {
		IP_SET_TYPE(&dst, IPADDR_TYPE_V6);
		memcpy(ip_2_ip6(&dst)->addr, h->addr, 16);
	}
	p = pbuf_alloc(PBUF_IP, (u16_t)len, PBUF_RAM);
	if (!p)
		return;
	memcpy(p->payload, msg, len);
	pcb->ttl = h->ttl ? h->ttl : 64;
	raw_sendto(pcb, p, &dst);
	pbuf_free(p);
}

static void icmp_fd_event(struct ts_stack *st, struct ts_pollable *pl, uint32_t events)
{
	struct ts_bridge *b = (struct ts_bridge *)pl;
	static uint8_t buf[FRAME_MAX];
	struct ts_icmp_frame h;

	(void)events;
	if (b->dead)
		return;
	for (int i = 0; i < 64; i++) {
		ssize_t n = ts_sys()->recv(b->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* A SEQPACKET pair reads 0 once the application closed its end. */
		if (n <= 0) {
			ts_bridge_finish(b);
			return;
		}
		if ((size_t)n < sizeof(h))
			continue;
		memcpy(&h, buf, sizeof(h));
		send_one(st, b, &h, buf + sizeof(h), (size_t)n - sizeof(h));
	}
}

int ts_bridge_icmp_open(struct ts_stack *st, struct ts_bridge *b)
{
	int family = b->req.remote.ss_family, id = 0;
	uint16_t want = ntohs(ts_sa_port(&b->req.local));

	if (family != (b->req.proto == IPPROTO_ICMP ? AF_INET : AF_INET6))
		return -EPROTONOSUPPORT;
	if (!family_pcb(st, family))
		return -ENOMEM;
	if (!b->req.icmp_raw && (id = pick_id(st, family, want)) < 0)
		return id;
	b->icmp = true;
	b->icmp_family = family;
	b->icmp_id = (u16_t)id;
	b->poll.handler = icmp_fd_event;
	ts_bridge_started(b);
	ts_bridge_report(b, 0);
	ts_bridge_discard(b);
	ts_bridge_set_events(b, EPOLLIN);
	return 0;
}
