/* SPDX-License-Identifier: MIT */
/* What TCP and UDP bridges share: creation from a command, reporting the outcome,
 * epoll interest, teardown (deferred, so events already fetched for a bridge never
 * touch freed memory), and address conversions. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bridge.h"
#include "lwip/priv/tcp_priv.h"
#include "log.h"
#include "sys.h"

int ts_ip_from_sockaddr(const struct sockaddr_storage *ss, ip_addr_t *ip, u16_t *port)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	memset(ip, 0, sizeof(*ip));
	if (ss->ss_family == AF_INET) {
		IP_SET_TYPE(ip, IPADDR_TYPE_V4);
		memcpy(&ip_2_ip4(ip)->addr, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		IP_SET_TYPE(ip, IPADDR_TYPE_V6);
		memcpy(ip_2_ip6(ip)->addr, s6->sin6_addr.s6_addr, 16);
		*port = ntohs(s6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

void ts_sockaddr_from_ip(const ip_addr_t *ip, u16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (IP_IS_V4(ip)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, &ip_2_ip4(ip)->addr, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(s6->sin6_addr.s6_addr, ip_2_ip6(ip)->addr, 16);
	}
}

/* lwIP leaves a connected UDP pcb's address unspecified: the interface's address of
 * the remote's family is the one its datagrams carry. */
static void local_address(struct ts_bridge *b, struct sockaddr_storage *out)
{
	ip_addr_t ip;

	memset(out, 0, sizeof(*out));
	if (b->tcp) {
		ts_sockaddr_from_ip(&b->tcp->local_ip, b->tcp->local_port, out);
	} else if (b->udp) {
		ip = b->udp->local_ip;
		if (ip_addr_isany(&ip) && IP_IS_V4(&b->udp->remote_ip))
			ip_addr_copy_from_ip4(ip, *netif_ip4_addr(&b->st->netif));
		else if (ip_addr_isany(&ip))
			ip = *netif_ip_addr6(&b->st->netif, 0);
		ts_sockaddr_from_ip(&ip, b->udp->local_port, out);
	} else if (b->icmp && b->icmp_family == AF_INET) {
		ip_addr_copy_from_ip4(ip, *netif_ip4_addr(&b->st->netif));
		ts_sockaddr_from_ip(&ip, b->icmp_id, out);
	} else if (b->icmp) {
		ts_sockaddr_from_ip(netif_ip_addr6(&b->st->netif, 0), b->icmp_id, out);
	}
}

void ts_bridge_started(struct ts_bridge *b)
{
	struct ts_bridge_result res = { .id = b->id };

	local_address(b, &res.local);
	if (b->ops.started)
		b->ops.started(b->arg, &res);
}

void ts_bridge_report(struct ts_bridge *b, int error)
{
	struct ts_bridge_result res = { .error = error, .id = b->id };

	if (b->reported)
		return;
	b->reported = true;
	local_address(b, &res.local);
	/* The outcome is recorded before the caller's end can turn writable. */
	if (b->ops.done)
		b->ops.done(b->arg, &res);
}

void ts_bridge_set_events(struct ts_bridge *b, uint32_t events)
{
	if (b->dead || events == b->events)
		return;
	if (!b->events)
		ts_loop_watch(b->st, b->fd, &b->poll, events);
	else if (!events)
		ts_loop_unwatch(b->st, b->fd);
	else
		ts_loop_modify(b->st, b->fd, &b->poll, events);
	b->events = events;
}

/* Drops the filler the caller parked in its end to hold back writability until the
 * outcome was known. Returns false while some of it is still to come. */
bool ts_bridge_discard(struct ts_bridge *b)
{
	char sink[4096];

	while (b->discard_left > 0) {
		size_t want = b->discard_left < sizeof(sink) ? b->discard_left : sizeof(sink);
		ssize_t n = ts_sys()->recv(b->fd, sink, want, MSG_DONTWAIT);

		if (n <= 0)
			return false;
		b->discard_left -= (size_t)n;
	}
	return true;
}

/* Ends the bridge: the fd is closed now, the memory freed at the next reap. */
void ts_bridge_finish(struct ts_bridge *b)
{
	bool failed_connect = !b->reported;

	if (b->dead)
		return;
	ts_bridge_report(b, b->fail_errno ? b->fail_errno : ECONNABORTED);
	/* A failed connect turns the caller's end writable before it sees the hang-up,
	 * as a kernel socket reports OUT with ERR and HUP; without this the first
	 * edge-triggered event could lack EPOLLOUT. */
	if (failed_connect)
		ts_bridge_discard(b);
	ts_bridge_set_events(b, 0);
	b->dead = true;
	if (b->to_app)
		pbuf_free(b->to_app);
	b->to_app = NULL;
	/* The reason is recorded before the application can see the end (EOF), so a
	 * read that wakes on it can already report a reset. */
	if (b->ops.ended)
		b->ops.ended(b->arg, b->fail_errno);
	ts_sys()->release(b->fd);
	b->fd = -1;
}

void ts_bridge_reap(struct ts_stack *st)
{
	struct ts_bridge **pp = &st->bridges;

	/* Nothing may point at a bridge freed here: received data goes out first. */
	ts_bridge_tcp_after_input(st);
	ts_bridge_tcp_deliver(st);
	while (*pp) {
		struct ts_bridge *b = *pp;

		if (b->dead) {
			*pp = b->next;
			free(b);
		} else {
			pp = &b->next;
		}
	}
}

static int route_peer(struct ts_stack *st, const struct sockaddr_storage *dst)
{
	if (dst->ss_family == AF_INET)
		return wg_device_route(st->dev, AF_INET,
			(const uint8_t *)&((const struct sockaddr_in *)dst)->sin_addr);
	if (dst->ss_family == AF_INET6)
		return wg_device_route(st->dev, AF_INET6,
			((const struct sockaddr_in6 *)dst)->sin6_addr.s6_addr);
	return -1;
}

/* A bridge for an inbound connection: no command, no callbacks. */
struct ts_bridge *ts_bridge_new(struct ts_stack *st, int fd)
{
	struct ts_bridge *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->st = st;
	b->fd = fd;
	b->id = ++st->next_id;
	b->peer = -1;
	b->reported = true;
	b->next = st->bridges;
	st->bridges = b;
	return b;
}

void ts_bridge_start(struct ts_stack *st, struct ts_cmd *cmd)
{
	const struct ts_sys *sys = ts_sys();
	struct ts_bridge *b = calloc(1, sizeof(*b));
	int rc, flags;

	if (!b) {
		struct ts_bridge_result res = { .error = ENOMEM };

		sys->release(cmd->req.fd);
		if (cmd->ops.started)
			cmd->ops.started(cmd->arg, &res);
		if (cmd->ops.done)
			cmd->ops.done(cmd->arg, &res);
		if (cmd->ops.ended)
			cmd->ops.ended(cmd->arg, ENOMEM);
		return;
	}
	/* Our end only: the application's end keeps its own flags. The shim creates the
	 * pair non-blocking; an end from elsewhere (a session client) may not be. */
	flags = sys->fcntl(cmd->req.fd, F_GETFL);
	if (flags >= 0 && !(flags & O_NONBLOCK))
		sys->fcntl(cmd->req.fd, F_SETFL, flags | O_NONBLOCK);
	b->st = st;
	b->req = cmd->req;
	b->fd = cmd->req.fd;
	b->ops = cmd->ops;
	b->arg = cmd->arg;
	b->id = ++st->next_id;
	b->discard_left = cmd->req.discard_bytes;
	b->peer = route_peer(st, &cmd->req.remote);
	b->next = st->bridges;
	st->bridges = b;
	if (b->peer < 0)
		rc = -ENETUNREACH;
	else if (cmd->req.proto == IPPROTO_TCP)
		rc = ts_bridge_tcp_open(st, b);
	else if (cmd->req.proto == IPPROTO_UDP)
		rc = ts_bridge_udp_open(st, b);
	else if (cmd->req.proto == IPPROTO_ICMP || cmd->req.proto == IPPROTO_ICMPV6)
		rc = ts_bridge_icmp_open(st, b);
	else
		rc = -EPROTONOSUPPORT;
	if (rc < 0) {
		b->fail_errno = -rc;
		if (b->ops.started) {
			struct ts_bridge_result res = { .error = -rc, .id = b->id };

			b->ops.started(b->arg, &res);
		}
		ts_bridge_finish(b);
	}
}

static void abort_bridge(struct ts_bridge *b, int error)
{
	if (b->tcp) {
		ts_bridge_tcp_abort(b, error);
	} else {
		b->fail_errno = error;
		if (b->udp)
			udp_remove(b->udp);
		b->udp = NULL;
		ts_bridge_finish(b);
	}
}

/* A peer gave up its handshake: connections still waiting for it fail as the kernel
 * fails connects with no route to the host. */
void ts_bridge_peer_failed(struct ts_stack *st, int peer)
{
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (!b->dead && !b->reported && b->peer == peer)
			abort_bridge(b, EHOSTUNREACH);
}

void ts_bridge_close_all(struct ts_stack *st)
{
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (!b->dead)
			abort_bridge(b, ECONNABORTED);
	ts_bridge_reap(st);
}

struct ts_bridge *ts_bridge_find(struct ts_stack *st, uint64_t id)
{
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (b->id == id && !b->dead)
			return b;
	return NULL;
}

bool ts_bridge_adopt_ops(struct ts_stack *st, uint64_t id, const struct ts_bridge_ops *ops,
			 void *arg)
{
	struct ts_bridge *b = ts_bridge_find(st, id);

	if (!b)
		return false;
	b->ops = *ops;
	b->arg = arg;
	return true;
}

void ts_bridge_abort_id(struct ts_stack *st, uint64_t id)
{
	struct ts_bridge *b = ts_bridge_find(st, id);

	if (b)
		abort_bridge(b, ECONNRESET);
}

/* lwIP's states in Linux's numbering (netinet/tcp.h). */
static int linux_state(enum tcp_state s)
{
	static const int map[] = {
		[CLOSED] = 7, [LISTEN] = 10, [SYN_SENT] = 2, [SYN_RCVD] = 3,
		[ESTABLISHED] = 1, [FIN_WAIT_1] = 4, [FIN_WAIT_2] = 5, [CLOSE_WAIT] = 8,
		[CLOSING] = 11, [LAST_ACK] = 9, [TIME_WAIT] = 6,
	};

	return (unsigned)s < sizeof(map) / sizeof(map[0]) ? map[s] : 7;
}

int ts_bridge_info_id(struct ts_stack *st, uint64_t id, struct ts_tcp_info *out)
{
	struct ts_bridge *b = ts_bridge_find(st, id);
	struct tcp_pcb *pcb;

	memset(out, 0, sizeof(*out));
	if (!b || !b->tcp) {
		out->state = 7; /* TCP_CLOSE */
		return b ? 0 : -ENOENT;
	}
	pcb = b->tcp;
	out->state = linux_state(pcb->state);
	/* lwIP keeps the smoothed RTT in 500 ms ticks scaled by 8 (sa) and the
	 * deviation scaled by 4 (sv). */
	out->rtt_us = (uint32_t)((pcb->sa >> 3) * TCP_SLOW_INTERVAL * 1000u);
	out->rttvar_us = (uint32_t)((pcb->sv >> 2) * TCP_SLOW_INTERVAL * 1000u);
	out->snd_mss = pcb->mss;
	out->rcv_mss = pcb->mss;
	out->snd_cwnd = pcb->mss ? (uint32_t)(pcb->cwnd / pcb->mss) : 0;
	out->unacked = pcb->snd_queuelen;
	out->retransmits = pcb->nrtx;
	return 0;
}
