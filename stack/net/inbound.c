/* SPDX-License-Identifier: MIT */
/* Inbound TCP (see stack.h): an lwIP listener per port; each tunnel connection is
 * bridged to a kernel socket that connects to the application's loopback listener,
 * and recorded in a registry under that socket's loopback port. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bridge.h"
#include "rundir.h"
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

/* ---- the registry: one small file per inbound connection ---- */

static int registry_path(int family, uint16_t port, char *path, size_t len)
{
	char name[32];

	snprintf(name, sizeof(name), "in-%d-%u", family == AF_INET6 ? 6 : 4, port);
	return ts_runtime_file(name, path, len);
}

static void registry_add(struct ts_bridge *b, const struct sockaddr_storage *lo,
			 const struct sockaddr_storage *remote, const struct sockaddr_storage *local)
{
	char path[600], tmp[640];
	struct sockaddr_storage rec[2] = { *remote, *local };
	uint16_t port = ntohs(((const struct sockaddr_in *)lo)->sin_port);
	int fd;

	if (registry_path(lo->ss_family, port, path, sizeof(path)) < 0)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (ts_sys()->write(fd, rec, sizeof(rec)) == (ssize_t)sizeof(rec) &&
	    rename(tmp, path) == 0) {
		b->inbound_family = lo->ss_family;
		b->inbound_port = port;
	}
	ts_sys()->release(fd);
}

void ts_inbound_forget(struct ts_bridge *b)
{
	char path[600];

	if (b->inbound_port && registry_path(b->inbound_family, b->inbound_port, path,
					     sizeof(path)) == 0)
		unlink(path);
	b->inbound_port = 0;
}

/* Runs on the application's threads (the shim's accept and getpeername). */
bool ts_inbound_lookup(const struct sockaddr_storage *lo_peer, struct sockaddr_storage *remote,
		       struct sockaddr_storage *local)
{
	struct sockaddr_storage rec[2];
	char path[600];
	uint16_t port = ntohs(((const struct sockaddr_in *)lo_peer)->sin_port);
	int fd;
	ssize_t n;

	if (registry_path(lo_peer->ss_family, port, path, sizeof(path)) < 0)
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	n = ts_sys()->read(fd, rec, sizeof(rec));
	ts_sys()->release(fd);
	if (n != (ssize_t)sizeof(rec))
		return false;
	*remote = rec[0];
	*local = rec[1];
	return true;
}

/* ---- accepting ---- */

/* The registry entry must exist before the application can accept the connection,
 * so the socket is bound (its port known and recorded) before it connects. */
static int forward_socket(const struct sockaddr_storage *to, struct sockaddr_storage *lo)
{
	const struct ts_sys *sys = ts_sys();
	socklen_t len = ts_sa_len(to);
	socklen_t llen = sizeof(*lo);
	int fd = sys->socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	*lo = *to;
	if (lo->ss_family == AF_INET)
		((struct sockaddr_in *)lo)->sin_port = 0;
	else
		((struct sockaddr_in6 *)lo)->sin6_port = 0;
	if (sys->bind(fd, (struct sockaddr *)lo, len) < 0 ||
	    sys->getsockname(fd, (struct sockaddr *)lo, &llen) < 0) {
		sys->release(fd);
		return -1;
	}
	return sys->adopt(fd);
}

static int forward_connect(int fd, const struct sockaddr_storage *to)
{
	socklen_t len = ts_sa_len(to);

	if (ts_sys()->connect(fd, (const struct sockaddr *)to, len) < 0 && errno != EINPROGRESS)
		return -1;
	return 0;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct ts_listener *l = arg;
	struct sockaddr_storage lo, remote, local;
	struct ts_bridge *b = NULL;
	int fd;

	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	fd = forward_socket(&l->forward, &lo);
	if (fd >= 0 && (b = ts_bridge_new(l->st, fd))) {
		b->kernel_socket = true;
		ts_sockaddr_from_ip(&pcb->remote_ip, pcb->remote_port, &remote);
		ts_sockaddr_from_ip(&pcb->local_ip, pcb->local_port, &local);
		registry_add(b, &lo, &remote, &local);
	}
	if (!b || forward_connect(fd, &l->forward) < 0) {
		ts_warn("inbound connection refused: cannot reach the application's listener: %s",
			strerror(errno));
		if (b) {
			b->fail_errno = ECONNREFUSED;
			ts_bridge_finish(b);
		} else if (fd >= 0) {
			ts_sys()->release(fd);
		}
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	ts_bridge_tcp_adopt(b, pcb);
	return ERR_OK;
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

int ts_listen_start(struct ts_stack *st, struct ts_cmd *cmd)
{
	struct ts_listener *l = calloc(1, sizeof(*l));
	struct tcp_pcb *pcb, *lpcb;
	err_t err;

	if (!l)
		return -ENOMEM;
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
		return -ENOMEM;
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
 * A bind to the same address fails while a listener holds it. Runs on the stack
 * thread (ts_listen_alive, UDP servers) and on the application's (the shim, when a
 * listener closes): the probe goes through the boundary on both, so the shim never
 * takes its socket for one of the application's. */
bool ts_port_alive(const struct sockaddr_storage *addr, int type)
{
	const struct ts_sys *sys = ts_sys();
	socklen_t len = ts_sa_len(addr);
	int fd = sys->socket(addr->ss_family, type | SOCK_CLOEXEC, 0), one = 1, err;

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
