/* SPDX-License-Identifier: MIT */
/* The holder's side of a session, on the stack thread: processes of the same user
 * attach at the rendezvous socket, and each of their requests (wire.h) becomes the
 * command a local caller would have queued, with callbacks and a waiter that answer
 * over the connection instead. Bridges outlive the connection that asked for them:
 * their application ends may live on in other processes (fork, exec, SCM_RIGHTS),
 * so a client that goes away only stops hearing about them. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "log.h"
#include "session.h"
#include "sys.h"

#define OUTQ_MAX 4096   /* answers kept for a client that does not read them */

struct outq {
	struct outq *next;
	struct ts_wire w;
	int fd;                    /* sent beside it, then released (-1: none) */
};

struct ts_peer {
	struct ts_pollable poll;   /* first: the loop hands us back this pointer */
	struct ts_peer *next;
	struct ts_stack *st;
	int fd;
	int refs;                  /* the list's, plus one per request in flight */
	bool dead;
	struct outq *head, *tail;  /* answers the socket had no room for */
	size_t queued;
};

struct ts_server {
	struct ts_pollable poll;   /* first */
	struct ts_rendezvous rv;
	struct ts_peer *peers;
	int n_peers;
};

/* A request in flight: a bridge's callbacks or a call's waiter, and whom to answer. */
struct pending {
	struct ts_waiter w;        /* calls: its reply hook answers */
	struct ts_peer *peer;
	struct ts_wire reply;
	struct ts_claim claim;     /* TS_CMD_CLAIM's answer */
};

void ts_waiter_wake(struct ts_waiter *w, int rc);

static void peer_put(struct ts_peer *p)
{
	if (--p->refs > 0)
		return;
	while (p->head) {
		struct outq *q = p->head;

		p->head = q->next;
		if (q->fd >= 0)
			ts_sys()->release(q->fd);
		free(q);
	}
	ts_loop_bury(p->st, &p->poll);
}

static void peer_gone(struct ts_peer *p)
{
	struct ts_server *srv = p->st->server;
	struct ts_peer **pp;

	if (p->dead)
		return;
	p->dead = true;
	ts_loop_unwatch(p->st, p->fd);
	ts_sys()->release(p->fd);
	p->fd = -1;
	for (pp = &srv->peers; *pp && *pp != p; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = p->next;
	srv->n_peers--;
	peer_put(p);
}

/* ---- answering ---- */

static void flush(struct ts_peer *p)
{
	while (p->head) {
		int rc = ts_wire_send(p->fd, &p->head->w, p->head->fd, MSG_DONTWAIT);
		struct outq *q = p->head;

		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			peer_gone(p);
			return;
		}
		p->head = q->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		if (q->fd >= 0)
			ts_sys()->release(q->fd);
		free(q);
	}
	ts_loop_modify(p->st, p->fd, &p->poll, EPOLLIN);
}

/* In order, never blocking the stack thread: what does not fit waits for EPOLLOUT.
 * fd (or -1) goes beside the message and is released once sent (or dropped). */
static void answer_fd(struct ts_peer *p, const struct ts_wire *w, int fd)
{
	struct outq *q;
	int rc = -EAGAIN;

	if (!p->dead && !p->head)
		rc = ts_wire_send(p->fd, w, fd, MSG_DONTWAIT);
	if (!p->dead && rc != 0 && rc != -EAGAIN)
		peer_gone(p);
	if (p->dead || rc == 0) {
		if (fd >= 0)
			ts_sys()->release(fd);
		return;
	}
	if (p->queued >= OUTQ_MAX || !(q = malloc(sizeof(*q)))) {
		ts_warn("session: an attached process does not read its answers; dropping it");
		if (fd >= 0)
			ts_sys()->release(fd);
		peer_gone(p);
		return;
	}
	q->next = NULL;
	q->w = *w;
	q->fd = fd;
	if (p->tail)
		p->tail->next = q;
	else
		p->head = q;
	p->tail = q;
	if (p->queued++ == 0)
		ts_loop_modify(p->st, p->fd, &p->poll, EPOLLIN | EPOLLOUT);
}

static void answer(struct ts_peer *p, const struct ts_wire *w)
{
	answer_fd(p, w, -1);
}

static void on_started(void *arg, const struct ts_bridge_result *res)
{
	struct pending *pd = arg;
	struct ts_wire w = { .type = TS_WIRE_STARTED, .seq = pd->reply.seq, .u.res = *res };

	answer(pd->peer, &w);
}

static void on_done(void *arg, const struct ts_bridge_result *res)
{
	struct pending *pd = arg;
	struct ts_wire w = { .type = TS_WIRE_DONE, .seq = pd->reply.seq, .u.res = *res };

	answer(pd->peer, &w);
}

static void on_ended(void *arg, int error)
{
	struct pending *pd = arg;
	struct ts_wire w = { .type = TS_WIRE_ENDED, .seq = pd->reply.seq, .rc = error };

	answer(pd->peer, &w);
	peer_put(pd->peer);
	free(pd);
}

static const struct ts_bridge_ops remote_ops = {
	.started = on_started, .done = on_done, .ended = on_ended,
};

/* The waiter's hook: a call's result goes back as a REPLY. */
static void on_reply(struct ts_waiter *w, int rc)
{
	struct pending *pd = (struct pending *)((char *)w - offsetof(struct pending, w));

	pd->reply.type = TS_WIRE_REPLY;
	pd->reply.rc = rc;
	answer(pd->peer, &pd->reply);
	peer_put(pd->peer);
	free(pd);
}

/* A claim's hook: the application's end goes with the answer; a live connection
 * keeps pd as its callbacks' argument (on_ended answers, and frees it). */
static void on_claim_reply(struct ts_waiter *w, int rc)
{
	struct pending *pd = (struct pending *)((char *)w - offsetof(struct pending, w));
	bool alive = rc == 0 && pd->claim.alive;

	pd->reply.type = TS_WIRE_REPLY;
	pd->reply.rc = rc;
	if (rc == 0) {
		pd->reply.id = pd->claim.id;
		pd->reply.u.claim = (struct ts_wire_claim){ .remote = pd->claim.remote,
							    .local = pd->claim.local,
							    .alive = pd->claim.alive };
	}
	answer_fd(pd->peer, &pd->reply, rc == 0 ? pd->claim.fd : -1);
	if (alive)
		return;
	peer_put(pd->peer);
	free(pd);
}

/* ---- requests ---- */

static struct pending *pending_new(struct ts_peer *p, const struct ts_wire *w)
{
	struct pending *pd = calloc(1, sizeof(*pd));

	if (!pd)
		return NULL;
	pd->peer = p;
	pd->reply.seq = w->seq;
	pd->w.reply = on_reply;
	p->refs++;
	return pd;
}

/* The calls an attached process may make: what stack.h offers, nothing that belongs
 * to the process that runs the stack (busy, detach). */
static bool call_allowed(uint32_t cmd)
{
	return cmd == TS_CMD_ABORT || cmd == TS_CMD_INFO || cmd == TS_CMD_TCPOPT ||
	       cmd == TS_CMD_LISTEN || cmd == TS_CMD_UNLISTEN || cmd == TS_CMD_STATS ||
	       cmd == TS_CMD_RELAY || cmd == TS_CMD_CLAIM || cmd == TS_CMD_DEVSTATS ||
	       cmd == TS_CMD_UDPERR;
}

static void decode_call(struct ts_cmd *cmd, const struct ts_wire *w, struct pending *pd)
{
	cmd->type = (enum ts_cmd_type)w->cmd;
	cmd->id = w->id;
	cmd->peer = w->peer;
	cmd->waiter = &pd->w;
	if (cmd->type == TS_CMD_TCPOPT)
		cmd->req = w->u.req;
	cmd->family = w->u.listen.family;
	if (cmd->type == TS_CMD_RELAY)
		cmd->family = w->u.relay.family;
	cmd->port = w->u.listen.port;
	cmd->forward = w->u.listen.forward;
	cmd->info = &pd->reply.u.info;
	cmd->udp_err = &pd->reply.u.udp_err;
	cmd->stats = &pd->reply.u.stats;
	cmd->dev_stats = &pd->reply.u.dev_stats;
	cmd->out_id = &pd->reply.id;
	cmd->relay_addr = &pd->reply.u.relay.addr;
	cmd->relay_token = pd->reply.u.relay.token;
	if (cmd->type == TS_CMD_CLAIM) {
		cmd->claim_from = w->u.claim.from;
		cmd->claim_to = w->u.claim.to;
		cmd->claim = &pd->claim;
		pd->claim.fd = -1;
		cmd->ops = remote_ops;
		cmd->arg = pd;
		pd->w.reply = on_claim_reply;
	}
}

static int request(struct ts_peer *p, const struct ts_wire *w, int fd)
{
	struct ts_cmd *cmd;
	struct pending *pd;

	if (w->type == TS_WIRE_HELLO) {
		struct ts_wire r = { .type = TS_WIRE_REPLY, .seq = w->seq };

		answer(p, &r);
		return fd < 0 ? 0 : -EPROTO;
	}
	if ((w->type == TS_WIRE_BRIDGE) != (fd >= 0) ||
	    (w->type == TS_WIRE_CALL && !call_allowed(w->cmd)) ||
	    (w->type != TS_WIRE_BRIDGE && w->type != TS_WIRE_CALL))
		return -EPROTO;
	if (!(cmd = calloc(1, sizeof(*cmd))) || !(pd = pending_new(p, w))) {
		free(cmd);
		return -ENOMEM;
	}
	if (w->type == TS_WIRE_BRIDGE) {
		cmd->type = TS_CMD_BRIDGE;
		cmd->req = w->u.req;
		cmd->req.fd = ts_sys()->adopt(fd);
		cmd->ops = remote_ops;
		cmd->arg = pd;
	} else {
		decode_call(cmd, w, pd);
	}
	ts_command_run(p->st, cmd);
	return 0;
}

static void peer_ready(struct ts_stack *st, struct ts_pollable *pl, uint32_t events)
{
	struct ts_peer *p = (struct ts_peer *)pl;
	struct ts_wire w;
	int fd, rc = 0;

	(void)st;
	p->refs++; /* an answer may drop the peer while we are here */
	if (events & EPOLLOUT)
		flush(p);
	while (!p->dead && (rc = ts_wire_recv(p->fd, &w, &fd, MSG_DONTWAIT)) > 0) {
		if (request(p, &w, fd) < 0) {
			ts_warn("session: a malformed request from an attached process; dropping it");
			if (fd >= 0)
				ts_sys()->release(fd);
			peer_gone(p);
		}
	}
	if (!p->dead && rc != -EAGAIN)
		peer_gone(p); /* the end: that process exited, or closed its side */
	peer_put(p);
}

/* ---- accepting ---- */

static void newcomer(struct ts_stack *st, int fd)
{
	struct ts_peer *p;

	/* The directory is private, but a descriptor to this socket could have been
	 * handed to anyone: the user is checked on every connection. */
	if (!ts_peer_is_us(fd)) {
		ts_warn("session: a process of another user tried to attach; refused");
		ts_sys()->release(fd);
		return;
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		ts_sys()->release(fd);
		return;
	}
	p->poll.handler = peer_ready;
	p->st = st;
	p->fd = ts_sys()->adopt(fd);
	p->refs = 1;
	p->next = st->server->peers;
	st->server->peers = p;
	st->server->n_peers++;
	ts_loop_watch(st, p->fd, &p->poll, EPOLLIN);
}

static void listener_ready(struct ts_stack *st, struct ts_pollable *pl, uint32_t events)
{
	struct ts_server *srv = (struct ts_server *)pl;
	int fd;

	(void)events;
	while (srv->rv.listen_fd >= 0 &&
	       (fd = ts_sys()->accept4(srv->rv.listen_fd, NULL, NULL,
				     SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
		newcomer(st, fd);
}

int ts_server_start(struct ts_stack *st, const struct ts_rendezvous *rv)
{
	struct ts_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return -1;
	srv->poll.handler = listener_ready;
	srv->rv = *rv;
	srv->rv.listen_fd = ts_sys()->adopt(rv->listen_fd);
	srv->rv.lock_fd = ts_sys()->adopt(rv->lock_fd);
	st->server = srv;
	return 0;
}

void ts_server_watch(struct ts_stack *st)
{
	if (st->server)
		ts_loop_watch(st, st->server->rv.listen_fd, &st->server->poll, EPOLLIN);
}

int ts_server_clients(struct ts_stack *st)
{
	return st->server ? st->server->n_peers : 0;
}

void ts_server_stop(struct ts_stack *st)
{
	struct ts_server *srv = st->server;

	if (!srv || srv->rv.listen_fd < 0)
		return;
	ts_loop_unwatch(st, srv->rv.listen_fd);
	/* Unlinks first: a newcomer that finds no socket waits for the lock, which this
	 * process holds until it exits. */
	ts_rendezvous_close(&srv->rv);
}
