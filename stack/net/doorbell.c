/* SPDX-License-Identifier: MIT */
/* How a tunnel connection reaches the application's listener (stack.h, ts_listen):
 * the connection is bridged to a socketpair whose application end waits here, and
 * the listener is woken by an empty loopback connection from the stack, the
 * doorbell, so that poll, epoll and accept work as for any client. The accepting
 * process claims the waiting end by the doorbell's exact four-tuple and puts it in
 * the doorbell's place (ts_inbound_claim).
 *
 * Why this is safe on a machine shared with other users: the four-tuple is held by
 * the stack's own socket for as long as the claim is possible, so no other
 * connection can have it; a claim comes from this process or over the session's
 * channel, which only processes of this user reach; and data never travels through
 * the loopback port, so whoever binds it once the server is gone gets only empty
 * connections, and their tunnel clients are reset (at once, since the stack checks
 * who owns the socket that took the doorbell: sockowner.c). Nothing is written to
 * disk: a crash leaves nothing to impersonate. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bridge.h"
#include "log.h"
#include "sockaddr.h"
#include "stack_internal.h"
#include "sys.h"

/* A doorbell nobody answers (the connection sits in the listener's backlog of a
 * program that stopped accepting) gives up after this long: its client is reset. */
#define DOORBELL_TIMEOUT_NS (60ull * 1000000000ull)

struct ts_doorbell {
	struct ts_pollable poll;        /* first: the loop hands us back this pointer */
	struct ts_doorbell *next;
	struct ts_stack *st;
	int fd;                         /* our end of the loopback connection */
	int app_fd;                     /* the application's end, until claimed */
	uint64_t listener_id;
	uint64_t bridge_id;
	struct sockaddr_storage from;   /* the four-tuple: our end ... */
	struct sockaddr_storage to;     /* ... and the listener's */
	struct sockaddr_storage remote; /* the tunnel peer */
	struct sockaddr_storage local;  /* the tunnel address it reached */
	uint64_t deadline;
	bool rung;                      /* the loopback connection is established */
};

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const uint8_t *x = ts_sa_addr(a), *y = ts_sa_addr(b);

	return x && y && a->ss_family == b->ss_family && ts_sa_port(a) == ts_sa_port(b) &&
	       memcmp(x, y, a->ss_family == AF_INET ? 4 : 16) == 0;
}

static void unlink_bell(struct ts_doorbell *d)
{
	struct ts_doorbell **pp = &d->st->doorbells;

	while (*pp && *pp != d)
		pp = &(*pp)->next;
	if (*pp)
		*pp = d->next;
}

/* Gone unclaimed: the tunnel client is reset, as a kernel resets a connection whose
 * listener went away. */
static void bell_drop(struct ts_doorbell *d, const char *why)
{
	ts_info("inbound connection on port %u reset: %s", ntohs(ts_sa_port(&d->local)), why);
	ts_loop_unwatch(d->st, d->fd);
	ts_sys()->release(d->fd);
	if (d->app_fd >= 0)
		ts_sys()->release(d->app_fd);
	ts_bridge_abort_id(d->st, d->bridge_id);
	unlink_bell(d);
	ts_loop_bury(d->st, &d->poll);
}

/* The socket that took the doorbell (its four-tuple reversed) belongs to this user. */
static bool listener_is_ours(const struct ts_doorbell *d)
{
	uid_t uid;
	int rc = ts_tcp_owner(&d->to, &d->from, &uid);

	if (rc < 0)
		ts_info("inbound: cannot tell who owns the listener (%s)", strerror(-rc));
	return rc == 0 && uid == geteuid();
}

static void bell_event(struct ts_stack *st, struct ts_pollable *p, uint32_t events)
{
	struct ts_doorbell *d = (struct ts_doorbell *)p;
	int err = 0;
	socklen_t len = sizeof(err);
	char sink[256];
	ssize_t n;

	if (!d->rung) {
		ts_sys()->getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err || (events & (EPOLLERR | EPOLLHUP))) {
			/* Nobody listens there any more: the port closes in the tunnel too. */
			ts_listen_stop(st, d->listener_id);
			bell_drop(d, "the application's listener is gone");
			return;
		}
		if (!listener_is_ours(d)) {
			/* The server is gone and someone else took its port. */
			ts_listen_stop(st, d->listener_id);
			bell_drop(d, "the listener on its loopback port is another user's");
			return;
		}
		d->rung = true;
		ts_loop_modify(st, d->fd, &d->poll, EPOLLIN | EPOLLRDHUP);
		return;
	}
	/* Whoever accepted it sends nothing a server would want; an end before the
	 * claim means it was not our application (or it closed it unclaimed). */
	while ((n = ts_sys()->recv(d->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN) || (events & (EPOLLHUP | EPOLLRDHUP)))
		bell_drop(d, "the doorbell was accepted and closed without a claim");
}

/* Our end of the doorbell, bound first so its four-tuple is known before the
 * listener can see it. */
static int bell_socket(const struct sockaddr_storage *to, struct sockaddr_storage *from)
{
	const struct ts_sys *sys = ts_sys();
	socklen_t len = sizeof(*from);
	int fd = sys->socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	*from = *to;
	ts_sa_set_port(from, 0);
	if (sys->bind(fd, (struct sockaddr *)from, ts_sa_len(from)) < 0 ||
	    sys->getsockname(fd, (struct sockaddr *)from, &len) < 0 ||
	    (sys->connect(fd, (const struct sockaddr *)to, ts_sa_len(to)) < 0 &&
	     errno != EINPROGRESS)) {
		sys->release(fd);
		return -1;
	}
	return sys->adopt(fd);
}

int ts_doorbell_ring(struct ts_stack *st, uint64_t listener_id, const struct sockaddr_storage *to,
		     uint64_t bridge_id, const struct sockaddr_storage *remote,
		     const struct sockaddr_storage *local, int app_fd)
{
	struct ts_doorbell *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->fd = bell_socket(to, &d->from);
	if (d->fd < 0) {
		free(d);
		return -errno;
	}
	d->poll.handler = bell_event;
	d->st = st;
	d->app_fd = app_fd;
	d->listener_id = listener_id;
	d->bridge_id = bridge_id;
	d->to = *to;
	d->remote = *remote;
	d->local = *local;
	d->deadline = ts_now_ns() + DOORBELL_TIMEOUT_NS;
	d->next = st->doorbells;
	st->doorbells = d;
	ts_dbg("inbound: doorbell from loopback port %u to port %u", ntohs(ts_sa_port(&d->from)),
	       ntohs(ts_sa_port(to)));
	ts_loop_watch(st, d->fd, &d->poll, EPOLLOUT | EPOLLIN | EPOLLRDHUP);
	return 0;
}

/* The stack thread's side of ts_inbound_claim: hands over the waiting end. */
int ts_doorbell_claim(struct ts_stack *st, struct ts_cmd *cmd)
{
	struct ts_claim *out = cmd->claim;
	struct ts_doorbell *d;

	/* Not only rung ones: the application may accept before this thread has seen
	 * its side of the connection complete. */
	for (d = st->doorbells; d; d = d->next)
		if (same_addr(&d->from, &cmd->claim_from) && same_addr(&d->to, &cmd->claim_to))
			break;
	if (!d)
		return -ENOENT;
	out->fd = d->app_fd;
	out->remote = d->remote;
	out->local = d->local;
	out->id = d->bridge_id;
	out->alive = ts_bridge_adopt_ops(st, d->bridge_id, &cmd->ops, cmd->arg);
	d->app_fd = -1;
	ts_loop_unwatch(st, d->fd);
	ts_sys()->release(d->fd);
	unlink_bell(d);
	ts_loop_bury(st, &d->poll);
	return 0;
}

/* Doorbells nobody answered in time; returns when the next one is due (or 0). */
uint64_t ts_doorbell_expire(struct ts_stack *st, uint64_t now)
{
	struct ts_doorbell *d, *next;
	uint64_t due = 0;

	for (d = st->doorbells; d; d = next) {
		next = d->next;
		if (now >= d->deadline)
			bell_drop(d, "no process accepted it in time");
		else if (!due || d->deadline < due)
			due = d->deadline;
	}
	return due;
}

void ts_doorbell_close_all(struct ts_stack *st)
{
	while (st->doorbells)
		bell_drop(st->doorbells, "the tunnel is shutting down");
}
