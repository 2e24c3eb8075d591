/* SPDX-License-Identifier: MIT */
/* Connected UDP flows: each datagram the application writes into its end goes out
 * as one UDP datagram to the remote; each datagram from the remote is written into
 * the socketpair, or dropped when it is full, as a full socket buffer drops UDP. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "bridge.h"
#include "log.h"
#include "sockaddr.h"
#include "sys.h"

static void udp_fd_event(struct ts_stack *st, struct ts_pollable *p, uint32_t events)
{
	struct ts_bridge *b = (struct ts_bridge *)p;
	static uint8_t buf[65536];

	(void)st;
	(void)events;
	if (b->dead)
		return;
	for (int i = 0; i < 64; i++) {
		ssize_t n = ts_sys()->recv(b->fd, buf, sizeof(buf), MSG_DONTWAIT);
		struct pbuf *q;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* A SEQPACKET pair reads 0 once the application closed its end. */
		if (n <= 0) {
			udp_remove(b->udp);
			b->udp = NULL;
			ts_bridge_finish(b);
			return;
		}
		/* No UDP datagram is longer (the kernel would have said EMSGSIZE). */
		if (n > TS_UDP_PAYLOAD_MAX)
			continue;
		q = pbuf_alloc(PBUF_TRANSPORT, (u16_t)n, PBUF_RAM);
		if (!q)
			continue;
		memcpy(q->payload, buf, (size_t)n);
		udp_send(b->udp, q);
		pbuf_free(q);
	}
}

static void on_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p,
			const ip_addr_t *addr, u16_t port)
{
	struct ts_bridge *b = arg;
	static uint8_t buf[65536];

	(void)pcb;
	(void)addr;
	(void)port;
	if (b && !b->dead) {
		u16_t n = pbuf_copy_partial(p, buf, p->tot_len, 0);

		if (ts_sys()->send(b->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN && errno != ENOBUFS)
			ts_dbg("udp bridge: %s", strerror(errno));
	}
	pbuf_free(p);
}

/* A connected UDP socket's pending error (the kernel's sk_err): the pair cannot carry
 * it, so a zero-length message wakes the reader, and the shim takes the error
 * (ts_bridge_udp_take_error) when it reads a zero-length message while the pair is
 * still open. One wake-up at a time: a later error replaces a pending one, as it
 * replaces sk_err. */
void ts_bridge_udp_icmp_error(struct ts_bridge *b, int err, const struct ts_udp_errinfo *info)
{
	bool pending = b->udp_err != 0;

	b->udp_err = err;
	b->udp_errinfo = *info;
	if (!pending && ts_sys()->send(b->fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		ts_dbg("udp bridge: error wake-up: %s", strerror(errno));
}

int ts_bridge_udp_take_error(struct ts_stack *st, uint64_t id, struct ts_udp_errinfo *out)
{
	struct ts_bridge *b = ts_bridge_find(st, id);
	int err;

	if (!b || !b->udp)
		return 0;
	err = b->udp_err;
	if (err && out)
		*out = b->udp_errinfo;
	b->udp_err = 0;
	return err;
}

int ts_bridge_udp_open(struct ts_stack *st, struct ts_bridge *b)
{
	ip_addr_t rip, lip;
	u16_t rport, lport = 0;

	(void)st;
	if (ts_ip_from_sockaddr(&b->req.remote, &rip, &rport) < 0)
		return -EAFNOSUPPORT;
	b->udp = udp_new_ip_type(IP_GET_TYPE(&rip));
	if (!b->udp)
		return -ENOMEM;
	if (b->req.local.ss_family && ts_ip_from_sockaddr(&b->req.local, &lip, &lport) == 0) {
		if (udp_bind(b->udp, &lip, lport) != ERR_OK)
			goto fail_inuse;
	} else if (udp_bind(b->udp, IP_IS_V4(&rip) ? IP4_ADDR_ANY : IP6_ADDR_ANY, 0) != ERR_OK) {
		goto fail_inuse;
	}
	udp_connect(b->udp, &rip, rport);
	udp_recv(b->udp, on_udp_recv, b);
	b->udp_recverr = b->req.recverr;
	b->poll.handler = udp_fd_event;
	ts_bridge_started(b);
	ts_bridge_report(b, 0);
	ts_bridge_discard(b);
	ts_bridge_set_events(b, EPOLLIN);
	return 0;
fail_inuse:
	udp_remove(b->udp);
	b->udp = NULL;
	return -EADDRINUSE;
}
