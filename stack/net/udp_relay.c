/* SPDX-License-Identifier: MIT */
/* Unconnected UDP for application sockets that stay kernel sockets (see stack.h):
 * one loopback relay socket per family; a flow per application socket, keyed by its
 * kernel address, owning an lwIP udp_pcb on the same port. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sodium.h>
#include "bridge.h"
#include "log.h"
#include "sockaddr.h"
#include "stack_internal.h"
#include "sys.h"

#define FRAME_MAX 65536

struct udp_flow {
	struct udp_flow *next;
	struct ts_udp_relay *relay;
	struct sockaddr_storage app;   /* the application socket's kernel address */
	socklen_t app_len;
	struct udp_pcb *pcb;
	bool server;                   /* opened by bind(), not by a first sendto */
};

static bool same_app(const struct sockaddr_storage *a, const struct sockaddr_storage *b,
		     socklen_t len)
{
	return memcmp(a, b, len) == 0;
}

static struct udp_flow *flow_find(struct ts_udp_relay *r, const struct sockaddr_storage *app,
				  socklen_t len)
{
	for (struct udp_flow *f = r->flows; f; f = f->next)
		if (f->app_len == len && same_app(&f->app, app, len))
			return f;
	return NULL;
}

static uint16_t app_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port :
		     ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* A datagram from the tunnel to the application socket, with its tunnel source. */
static void flow_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
		      u16_t port)
{
	struct udp_flow *f = arg;
	static uint8_t buf[sizeof(struct ts_udp_frame) + FRAME_MAX];
	struct ts_udp_frame *h = (struct ts_udp_frame *)buf;
	struct sockaddr_storage src;
	u16_t n;

	(void)pcb;
	ts_sockaddr_from_ip(addr, port, &src);
	memset(h, 0, sizeof(*h));
	memcpy(h->token, f->relay->st->udp_token, 8);
	h->type = TS_UDP_FRAME_DATA;
	h->family = (uint8_t)src.ss_family;
	h->port = htons(port);
	if (src.ss_family == AF_INET)
		memcpy(h->addr, &((struct sockaddr_in *)&src)->sin_addr, 4);
	else
		memcpy(h->addr, &((struct sockaddr_in6 *)&src)->sin6_addr, 16);
	n = pbuf_copy_partial(p, buf + sizeof(*h), p->tot_len, 0);
	pbuf_free(p);
	if (ts_sys()->sendto(f->relay->fd, buf, sizeof(*h) + n, MSG_DONTWAIT | MSG_NOSIGNAL,
		   (struct sockaddr *)&f->app, f->app_len) < 0)
		ts_dbg("udp relay: delivery dropped: %s", strerror(errno));
}

static bool pcb_family(const struct udp_pcb *pcb, int family)
{
	return IP_IS_ANY_TYPE_VAL(pcb->local_ip) ||
	       (family == AF_INET ? IP_IS_V4_VAL(pcb->local_ip) : IP_IS_V6_VAL(pcb->local_ip));
}

void ts_udp_relay_error(struct ts_stack *st, int family, uint16_t sport, uint16_t dport,
			const uint8_t *dst, const struct ts_udp_error *rec, struct pbuf *p,
			uint16_t off)
{
	static uint8_t buf[sizeof(struct ts_udp_frame) + sizeof(struct ts_udp_error) + FRAME_MAX];
	struct ts_udp_relay *rs[2] = { &st->relay4, &st->relay6 };
	struct ts_udp_frame *h = (struct ts_udp_frame *)buf;
	size_t hl = sizeof(*h) + sizeof(*rec);
	struct udp_flow *f = NULL;
	u16_t n = 0;

	for (int i = 0; i < 2 && !f; i++)
		for (f = rs[i]->flows; f; f = f->next)
			if (f->pcb->local_port == sport && pcb_family(f->pcb, family))
				break;
	if (!f)
		return;
	memset(h, 0, sizeof(*h));
	memcpy(h->token, st->udp_token, 8);
	h->type = TS_UDP_FRAME_ERROR;
	h->family = (uint8_t)family;
	h->port = htons(dport);
	memcpy(h->addr, dst, family == AF_INET ? 4 : 16);
	memcpy(buf + sizeof(*h), rec, sizeof(*rec));
	if (p->tot_len > off)
		n = pbuf_copy_partial(p, buf + hl, (u16_t)(p->tot_len - off), off);
	if (ts_sys()->sendto(f->relay->fd, buf, hl + n, MSG_DONTWAIT | MSG_NOSIGNAL,
			     (struct sockaddr *)&f->app, f->app_len) < 0)
		ts_dbg("udp relay: ICMP error dropped: %s", strerror(errno));
}

static struct udp_flow *flow_open(struct ts_udp_relay *r, const struct sockaddr_storage *app,
				  socklen_t len, int family)
{
	struct udp_flow *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	/* A client socket may send to IPv4 and IPv6 tunnel destinations alike; a server
	 * socket takes what its family would (family 0: both). */
	u8_t type = family == AF_INET ? IPADDR_TYPE_V4 : family == AF_INET6 ? IPADDR_TYPE_V6 :
		IPADDR_TYPE_ANY;

	f->pcb = udp_new_ip_type(type);
	if (!f->pcb || udp_bind(f->pcb, type == IPADDR_TYPE_V4 ? IP4_ADDR_ANY :
				type == IPADDR_TYPE_V6 ? IP6_ADDR_ANY : IP_ANY_TYPE,
				app_port(app)) != ERR_OK) {
		if (f->pcb)
			udp_remove(f->pcb);
		free(f);
		return NULL;
	}
	f->relay = r;
	f->app = *app;
	f->app_len = len;
	udp_recv(f->pcb, flow_recv, f);
	f->next = r->flows;
	r->flows = f;
	return f;
}

static void flow_close(struct ts_udp_relay *r, struct udp_flow *f)
{
	struct udp_flow **pp = &r->flows;

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	udp_remove(f->pcb);
	free(f);
}

static void frame_dest(const struct ts_udp_frame *h, ip_addr_t *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (h->family == AF_INET) {
		IP_SET_TYPE(ip, IPADDR_TYPE_V4);
		memcpy(&ip_2_ip4(ip)->addr, h->addr, 4);
	} else {
		IP_SET_TYPE(ip, IPADDR_TYPE_V6);
		memcpy(ip_2_ip6(ip)->addr, h->addr, 16);
	}
}

static void relay_one(struct ts_udp_relay *r, const uint8_t *buf, size_t len,
		      const struct sockaddr_storage *app, socklen_t alen)
{
	const struct ts_udp_frame *h = (const struct ts_udp_frame *)buf;
	struct udp_flow *f;
	struct pbuf *p;
	ip_addr_t dst;

	if (len < sizeof(*h) || sodium_memcmp(h->token, r->st->udp_token, 8) != 0)
		return; /* not from one of our application sockets */
	f = flow_find(r, app, alen);
	if (h->type == TS_UDP_FRAME_CLOSE || h->type == TS_UDP_FRAME_OPEN) {
		if (f)
			flow_close(r, f);
		if (h->type == TS_UDP_FRAME_OPEN && !(f = flow_open(r, app, alen, h->family)))
			ts_warn("UDP port %u: tunnel datagrams cannot reach it (port taken)",
				app_port(app));
		else if (h->type == TS_UDP_FRAME_OPEN)
			f->server = true;
		if (h->type == TS_UDP_FRAME_OPEN) /* a server: let peers learn our endpoint */
			for (int i = 0; i < wg_device_route_peer_count(r->st->dev); i++)
				wg_device_connect_peer(r->st->dev, i);
		return;
	}
	if (h->family != AF_INET && h->family != AF_INET6)
		return;
	if (!f && !(f = flow_open(r, app, alen, 0)))
		return;
	if (len - sizeof(*h) > TS_UDP_PAYLOAD_MAX)
		return;
	p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)(len - sizeof(*h)), PBUF_RAM);
	if (!p)
		return;
	memcpy(p->payload, buf + sizeof(*h), len - sizeof(*h));
	frame_dest(h, &dst);
	/* The socket's IP_TTL at the time of this send (tracepath sets it per probe). */
	f->pcb->ttl = h->ttl ? h->ttl : 64;
	udp_sendto(f->pcb, p, &dst, ntohs(h->port));
	pbuf_free(p);
}

static void relay_readable(struct ts_stack *st, struct ts_pollable *p, uint32_t events)
{
	struct ts_udp_relay *r = (struct ts_udp_relay *)p;
	static uint8_t buf[sizeof(struct ts_udp_frame) + FRAME_MAX];

	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage app;
		socklen_t alen = sizeof(app);
		ssize_t n = ts_sys()->recvfrom(r->fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&app, &alen);

		if (n < 0)
			break;
		relay_one(r, buf, (size_t)n, &app, alen);
		ts_netif_drain(st);
	}
}

static int relay_open(struct ts_stack *st, struct ts_udp_relay *r, int family)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr *a = family == AF_INET ? (void *)&a4 : (void *)&a6;
	socklen_t len = family == AF_INET ? sizeof(a4) : sizeof(a6);
	const struct ts_sys *sys = ts_sys();
	int fd = sys->socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	r->fd = -1;
	if (fd < 0)
		return -1;
	if (sys->bind(fd, a, len) < 0 ||
	    sys->getsockname(fd, (struct sockaddr *)&r->addr, &len) < 0) {
		sys->release(fd);
		return -1;
	}
	r->fd = sys->adopt(fd);
	r->st = st;
	r->poll.handler = relay_readable;
	return 0;
}

void ts_udp_relay_setup(struct ts_stack *st)
{
	randombytes_buf(st->udp_token, sizeof(st->udp_token));
	relay_open(st, &st->relay4, AF_INET);
	relay_open(st, &st->relay6, AF_INET6);
}

void ts_udp_relay_watch(struct ts_stack *st)
{
	if (st->relay4.fd >= 0)
		ts_loop_watch(st, st->relay4.fd, &st->relay4.poll, EPOLLIN);
	if (st->relay6.fd >= 0)
		ts_loop_watch(st, st->relay6.fd, &st->relay6.poll, EPOLLIN);
}

void ts_udp_relay_close(struct ts_stack *st)
{
	struct ts_udp_relay *rs[2] = { &st->relay4, &st->relay6 };

	for (int i = 0; i < 2; i++) {
		while (rs[i]->flows)
			flow_close(rs[i], rs[i]->flows);
		if (rs[i]->fd >= 0)
			ts_sys()->release(rs[i]->fd);
		rs[i]->fd = -1;
	}
}

int ts_udp_relay_info(struct ts_stack *st, int family, struct sockaddr_storage *addr,
		      uint8_t token[8])
{
	struct ts_udp_relay *r = family == AF_INET ? &st->relay4 : &st->relay6;

	if (r->fd < 0)
		return -EAFNOSUPPORT;
	*addr = r->addr;
	memcpy(token, st->udp_token, 8);
	return 0;
}

void ts_udp_relay_drain(struct ts_stack *st)
{
	if (st->relay4.fd >= 0)
		relay_readable(st, &st->relay4.poll, EPOLLIN);
	if (st->relay6.fd >= 0)
		relay_readable(st, &st->relay6.poll, EPOLLIN);
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (!b->dead && b->udp)
			b->poll.handler(st, &b->poll, EPOLLIN);
}

/* Server sockets whose application socket is gone are forgotten; true if any remain
 * (a daemon that inherited one keeps being served). */
bool ts_udp_servers_alive(struct ts_stack *st)
{
	struct ts_udp_relay *rs[2] = { &st->relay4, &st->relay6 };
	bool alive = false;

	for (int i = 0; i < 2; i++) {
		struct udp_flow *f, *next;

		for (f = rs[i]->flows; f; f = next) {
			next = f->next;
			if (!f->server)
				continue;
			if (ts_port_alive(&f->app, SOCK_DGRAM))
				alive = true;
			else
				flow_close(rs[i], f);
		}
	}
	return alive;
}
