/* SPDX-License-Identifier: MIT */
/* Inbound TCP (see stack.h): an lwIP listener per port the application listens on;
 * each tunnel connection it accepts waits behind a doorbell (doorbell.c) for the
 * application to claim it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bridge.h"
#include "log.h"
#include "stack_internal.h"
#include "sockaddr.h"
#include "sys.h"

struct ts_listener {
	struct ts_listener *next;
	struct ts_stack *st;
	struct tcp_pcb *pcb;
	struct sockaddr_storage forward;
	uint64_t id;
};

/* ---- accepting ---- */

/* A tunnel connection is bridged to a socketpair whose application end waits for the
 * accepting process's claim, and the doorbell rings the application's listener. */
static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct ts_listener *l = arg;
	const struct ts_sys *sys = ts_sys();
	struct sockaddr_storage remote, local;
	struct ts_bridge *b = NULL;
	int sv[2] = { -1, -1 };

	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	ts_sockaddr_from_ip(&pcb->remote_ip, pcb->remote_port, &remote);
	ts_sockaddr_from_ip(&pcb->local_ip, pcb->local_port, &local);
	if (sys->socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		/* Our end only: the loop reads it until EAGAIN. The application's end gets
		 * the flags accept4 is asked for when it is claimed. */
		sys->fcntl(sv[1], F_SETFL, O_NONBLOCK);
		sv[0] = sys->adopt(sv[0]);
		b = ts_bridge_new(l->st, sys->adopt(sv[1]));
	}
	if (b && ts_doorbell_ring(l->st, l->id, &l->forward, b->id, &remote, &local, sv[0]) == 0) {
		ts_bridge_tcp_adopt(b, pcb);
		return ERR_OK;
	}
	ts_warn("inbound connection refused: cannot reach the application's listener: %s",
		strerror(errno));
	if (sv[0] >= 0)
		sys->release(sv[0]);
	if (b) {
		b->fail_errno = ECONNREFUSED;
		ts_bridge_finish(b);
	} else if (sv[1] >= 0) {
		sys->release(sv[1]);
	}
	tcp_abort(pcb);
	return ERR_ABRT;
}

/* Which tunnel clients the application's socket would take: an AF_INET socket only
 * IPv4 ones, an IPv6-only socket only IPv6 ones, a dual-stack socket both. */
static u8_t ip_type(int family)
{
	return family == AF_INET ? IPADDR_TYPE_V4 : family == AF_INET6 ? IPADDR_TYPE_V6 :
		IPADDR_TYPE_ANY;
}

static const ip_addr_t *ip_any(int family)
{
	return family == AF_INET ? IP4_ADDR_ANY : family == AF_INET6 ? IP6_ADDR_ANY : IP_ANY_TYPE;
}

/* A listener of the same port forwarding to the same loopback address belongs to an
 * application listener that is gone: the kernel let the new one bind there. (A server
 * that was killed never said so; one that was restarted takes its place.) */
static void replace_stale(struct ts_stack *st, uint16_t port,
			  const struct sockaddr_storage *forward)
{
	struct ts_listener *l, *next;

	for (l = st->listeners; l; l = next) {
		next = l->next;
		if (l->pcb->local_port == port &&
		    memcmp(&l->forward, forward, ts_sa_len(forward)) == 0)
			ts_listen_stop(st, l->id);
	}
}

int ts_listen_start(struct ts_stack *st, struct ts_cmd *cmd)
{
	struct ts_listener *l = calloc(1, sizeof(*l));
	struct tcp_pcb *pcb, *lpcb;
	err_t err;

	if (!l)
		return -ENOMEM;
	replace_stale(st, cmd->port, &cmd->forward);
	pcb = tcp_new_ip_type(ip_type(cmd->family));
	/* A server that listens again on its port must not be refused for the
	 * connections of its previous listener still in TIME_WAIT. */
	if (pcb)
		ip_set_option(pcb, SOF_REUSEADDR);
	if (!pcb || tcp_bind(pcb, ip_any(cmd->family), cmd->port) != ERR_OK) {
		if (pcb)
			tcp_abort(pcb);
		free(l);
		return -EADDRINUSE;
	}
	lpcb = tcp_listen_with_backlog_and_err(pcb, 255, &err);
	if (!lpcb) {
		tcp_abort(pcb);
		free(l);
		return err == ERR_USE ? -EADDRINUSE : -ENOMEM;
	}
	l->st = st;
	l->pcb = lpcb;
	l->forward = cmd->forward;
	l->id = ++st->next_id;
	tcp_arg(lpcb, l);
	tcp_accept(lpcb, on_accept);
	l->next = st->listeners;
	st->listeners = l;
	*cmd->out_id = l->id;
	/* Peers can only reach us once they know our endpoint: say hello to those we
	 * know how to reach. */
	for (int i = 0; wg_device_route_peer_count(st->dev) > i; i++)
		wg_device_connect_peer(st->dev, i);
	return 0;
}

int ts_listen_stop(struct ts_stack *st, uint64_t id)
{
	struct ts_listener **pp = &st->listeners;

	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	if (!*pp)
		return -ENOENT;
	struct ts_listener *l = *pp;

	*pp = l->next;
	tcp_close(l->pcb);
	free(l);
	return 0;
}

void ts_listen_close_all(struct ts_stack *st)
{
	while (st->listeners)
		ts_listen_stop(st, st->listeners->id);
}

/* Is something still listening at addr (the application, or a daemon it forked)?
 * For TCP the kernel's socket diagnostics say (a listener of this user); else, or if
 * they cannot, a bind to the same address fails while a socket holds it. Runs on the
 * stack thread (ts_listen_alive, UDP servers) and on the application's (the shim, when
 * a listener closes): both go through the boundary, so the shim never takes the probe
 * for one of the application's sockets. */
bool ts_port_alive(const struct sockaddr_storage *addr, int type)
{
	const struct ts_sys *sys = ts_sys();
	socklen_t len = ts_sa_len(addr);
	int fd, one = 1, err = type == SOCK_STREAM ? ts_tcp_listening(addr) : -1;

	if (err >= 0)
		return err == 1;
	fd = sys->socket(addr->ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true;
	if (type == SOCK_STREAM)
		sys->setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	err = sys->bind(fd, (const struct sockaddr *)addr, len) < 0 ? errno : 0;
	sys->release(fd);
	return err == EADDRINUSE;
}

/* Listeners whose application socket is gone are closed; true if any remain. */
bool ts_listen_alive(struct ts_stack *st)
{
	struct ts_listener *l, *next;

	for (l = st->listeners; l; l = next) {
		next = l->next;
		if (!ts_port_alive(&l->forward, SOCK_STREAM))
			ts_listen_stop(st, l->id);
	}
	return st->listeners != NULL;
}
