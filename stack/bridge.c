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
#include "log.h"

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

static void local_address(struct ts_bridge *b, struct sockaddr_storage *out)
{
	if (b->tcp)
		ts_sockaddr_from_ip(&b->tcp->local_ip, b->tcp->local_port, out);
	else if (b->udp)
		ts_sockaddr_from_ip(&b->udp->local_ip, b->udp->local_port, out);
	else
		memset(out, 0, sizeof(*out));
}

void ts_bridge_report(struct ts_bridge *b, int error)
{
	struct ts_bridge_result res = { .error = error, .id = b->id };

	if (b->reported)
		return;
	b->reported = true;
	local_address(b, &res.local);
	if (b->done)
		b->done(b->arg, &res);
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
		ssize_t n = recv(b->fd, sink, want, MSG_DONTWAIT);

		if (n <= 0)
			return false;
		b->discard_left -= (size_t)n;
	}
	return true;
}

/* Ends the bridge: the fd is closed now, the memory freed at the next reap. */
void ts_bridge_finish(struct ts_bridge *b)
{
	if (b->dead)
		return;
	ts_bridge_report(b, b->fail_errno ? b->fail_errno : ECONNABORTED);
	ts_bridge_set_events(b, 0);
	b->dead = true;
	if (b->to_app)
		pbuf_free(b->to_app);
	b->to_app = NULL;
	close(b->fd);
	b->fd = -1;
}

void ts_bridge_reap(struct ts_stack *st)
{
	struct ts_bridge **pp = &st->bridges;

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

void ts_bridge_start(struct ts_stack *st, struct ts_cmd *cmd)
{
	struct ts_bridge *b = calloc(1, sizeof(*b));
	int rc;

	if (!b) {
		struct ts_bridge_result res = { .error = ENOMEM };

		close(cmd->req.fd);
		if (cmd->done)
			cmd->done(cmd->arg, &res);
		return;
	}
	/* Our end only: the application's end keeps its own flags. */
	fcntl(cmd->req.fd, F_SETFL, fcntl(cmd->req.fd, F_GETFL) | O_NONBLOCK);
	b->st = st;
	b->req = cmd->req;
	b->fd = cmd->req.fd;
	b->done = cmd->done;
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
	else
		rc = -EPROTONOSUPPORT;
	if (rc < 0) {
		b->fail_errno = -rc;
		ts_bridge_finish(b);
	}
}

static void abort_bridge(struct ts_bridge *b, int error)
{
	b->fail_errno = error;
	if (b->tcp) {
		struct tcp_pcb *pcb = b->tcp;

		/* tcp_abort calls our error callback, which finishes the bridge. */
		tcp_abort(pcb);
	} else {
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
