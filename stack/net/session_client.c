/* SPDX-License-Identifier: MIT */
/* The attached side of a session: a ts_stack whose commands travel to the holder
 * (wire.h), and a thread that reads the holder's answers and completes them exactly
 * as the stack thread completes local ones: bridge callbacks for a bridge, a waiter
 * woken for a call. When the holder goes away (it was killed), every command still
 * waiting ends with ECONNRESET, and so does every later one: the shim then looks for
 * the session again. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "log.h"
#include "session.h"
#include "sys.h"

#define HELLO_TIMEOUT_MS 10000

struct ts_client {
	int fd;
	pthread_t thread;
	pthread_mutex_t mu;         /* guards pending, next_seq and dead */
	struct ts_cmd *pending;     /* sent, waiting for their answer */
	uint64_t next_seq;
	bool dead;
};

void ts_waiter_wake(struct ts_waiter *w, int rc);

/* ---- completing commands (reader thread) ---- */

static struct ts_cmd *find(struct ts_client *cl, uint64_t seq, bool unlink)
{
	struct ts_cmd **pp;

	pthread_mutex_lock(&cl->mu);
	for (pp = &cl->pending; *pp && (*pp)->seq != seq; pp = &(*pp)->next)
		;
	struct ts_cmd *cmd = *pp;

	if (cmd && unlink)
		*pp = cmd->next;
	pthread_mutex_unlock(&cl->mu);
	return cmd;
}

/* A claim's answer: the application's end came with it. */
static void take_claim(struct ts_cmd *cmd, const struct ts_wire *w, int fd)
{
	struct ts_claim *c = cmd->claim;

	c->fd = ts_sys()->adopt(fd);
	c->remote = w->u.claim.remote;
	c->local = w->u.claim.local;
	c->id = w->id;
	c->alive = w->u.claim.alive;
}

/* A call's result goes where the caller asked for it. */
static void take_result(struct ts_cmd *cmd, const struct ts_wire *w, int fd)
{
	if (w->rc < 0)
		return;
	if (cmd->type == TS_CMD_CLAIM && fd >= 0)
		take_claim(cmd, w, fd);
	if (cmd->type == TS_CMD_INFO && cmd->info)
		*cmd->info = w->u.info;
	else if (cmd->type == TS_CMD_UDPERR && cmd->udp_err)
		*cmd->udp_err = w->u.udp_err;
	else if (cmd->type == TS_CMD_STATS && cmd->stats)
		*cmd->stats = w->u.stats;
	else if (cmd->type == TS_CMD_DEVSTATS && cmd->dev_stats)
		*cmd->dev_stats = w->u.dev_stats;
	else if (cmd->type == TS_CMD_LISTEN && cmd->out_id)
		*cmd->out_id = w->id;
	else if (cmd->type == TS_CMD_RELAY && cmd->relay_addr) {
		*cmd->relay_addr = w->u.relay.addr;
		memcpy(cmd->relay_token, w->u.relay.token, 8);
	}
}

static void bridge_event(struct ts_cmd *cmd, const struct ts_wire *w)
{
	switch (w->type) {
	case TS_WIRE_STARTED:
		cmd->seen |= 1;
		if (cmd->ops.started)
			cmd->ops.started(cmd->arg, &w->u.res);
		break;
	case TS_WIRE_DONE:
		cmd->seen |= 2;
		if (cmd->ops.done)
			cmd->ops.done(cmd->arg, &w->u.res);
		break;
	case TS_WIRE_ENDED:
		if (cmd->ops.ended)
			cmd->ops.ended(cmd->arg, w->rc);
		free(cmd);
		break;
	}
}

/* A claim that succeeded goes on as a bridge: its ENDED comes later, same seq. */
static bool claim_lives(const struct ts_wire *w)
{
	return w->type == TS_WIRE_REPLY && w->rc == 0 && w->u.claim.alive;
}

static void dispatch(struct ts_client *cl, const struct ts_wire *w, int fd)
{
	bool last = w->type == TS_WIRE_ENDED || w->type == TS_WIRE_REPLY;
	struct ts_cmd *cmd = find(cl, w->seq, last);
	bool keep;

	if (!cmd) {
		ts_dbg("session: an answer to no request (%u, seq %llu)", w->type,
		       (unsigned long long)w->seq);
		if (fd >= 0)
			ts_sys()->release(fd);
		return;
	}
	if (w->type != TS_WIRE_REPLY) {
		bridge_event(cmd, w);
		return;
	}
	take_result(cmd, w, fd);
	if (fd >= 0 && !(cmd->type == TS_CMD_CLAIM && w->rc == 0))
		ts_sys()->release(fd); /* not a claim's: nothing else carries one */
	keep = cmd->type == TS_CMD_CLAIM && claim_lives(w);
	if (keep) {
		cmd->seen = 3;
		cmd->type = TS_CMD_BRIDGE;
		pthread_mutex_lock(&cl->mu);
		cmd->next = cl->pending;
		cl->pending = cmd;
		pthread_mutex_unlock(&cl->mu);
	}
	ts_waiter_wake(cmd->waiter, w->rc);
	if (!keep)
		free(cmd);
}

/* The holder is gone: what it will never answer ends as a reset would. */
static void fail(struct ts_cmd *cmd)
{
	struct ts_bridge_result res = { .error = ECONNRESET };

	if (cmd->type != TS_CMD_BRIDGE) {
		ts_waiter_wake(cmd->waiter, -ECONNRESET);
		free(cmd);
		return;
	}
	if (!(cmd->seen & 1) && cmd->ops.started)
		cmd->ops.started(cmd->arg, &res);
	if (!(cmd->seen & 2) && cmd->ops.done)
		cmd->ops.done(cmd->arg, &res);
	if (cmd->ops.ended)
		cmd->ops.ended(cmd->arg, ECONNRESET);
	free(cmd);
}

static void fail_all(struct ts_client *cl)
{
	struct ts_cmd *list, *next;

	pthread_mutex_lock(&cl->mu);
	cl->dead = true;
	list = cl->pending;
	cl->pending = NULL;
	pthread_mutex_unlock(&cl->mu);
	for (; list; list = next) {
		next = list->next;
		fail(list);
	}
}

static void *reader(void *arg)
{
	struct ts_client *cl = arg;
	struct ts_wire w;
	int fd, rc;

	while ((rc = ts_wire_recv(cl->fd, &w, &fd, 0)) > 0)
		dispatch(cl, &w, fd);
	ts_warn("session: the process that held the tunnel is gone (%s); its connections "
		"are reset, new ones start a session again", rc == 0 ? "end of file" :
		strerror(-rc));
	fail_all(cl);
	return NULL;
}

/* ---- attaching ---- */

/* The holder answers HELLO once its stack thread serves us; a holder that is ending
 * closes the connection instead, and the caller looks again. */
static int greet(int fd)
{
	struct ts_wire w = { .type = TS_WIRE_HELLO };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int got, rc;

	if (ts_wire_send(fd, &w, -1, 0) < 0)
		return -1;
	do
		rc = poll(&p, 1, HELLO_TIMEOUT_MS);
	while (rc < 0 && errno == EINTR);
	if (rc <= 0 || ts_wire_recv(fd, &w, &got, MSG_DONTWAIT) <= 0)
		return -1;
	if (got >= 0)
		ts_sys()->release(got);
	return w.type == TS_WIRE_REPLY && w.rc == 0 ? 0 : -1;
}

int ts_client_attach(struct ts_stack *st, int ctl_fd)
{
	struct ts_client *cl;
	sigset_t all, old;
	int rc;

	if (greet(ctl_fd) < 0 || !(cl = calloc(1, sizeof(*cl))))
		return -1;
	cl->fd = ts_sys()->adopt(ctl_fd);
	pthread_mutex_init(&cl->mu, NULL);
	/* Like the stack thread, the reader never runs the application's handlers. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&cl->thread, NULL, reader, cl);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_mutex_destroy(&cl->mu);
		free(cl);
		return -1;
	}
	st->client = cl;
	return 0;
}

/* ---- sending ---- */

static void encode(const struct ts_cmd *cmd, struct ts_wire *w)
{
	memset(w, 0, sizeof(*w));
	w->seq = cmd->seq;
	w->id = cmd->id;
	w->peer = cmd->peer;
	if (cmd->type == TS_CMD_BRIDGE) {
		w->type = TS_WIRE_BRIDGE;
		w->u.req = cmd->req;
		w->u.req.fd = -1; /* travels beside the message */
		return;
	}
	w->type = TS_WIRE_CALL;
	w->cmd = cmd->type;
	if (cmd->type == TS_CMD_TCPOPT)
		w->u.req = cmd->req;
	else if (cmd->type == TS_CMD_LISTEN)
		w->u.listen = (struct ts_wire_listen){ .family = cmd->family, .port = cmd->port,
						       .forward = cmd->forward };
	else if (cmd->type == TS_CMD_RELAY)
		w->u.relay.family = cmd->family;
	else if (cmd->type == TS_CMD_CLAIM)
		w->u.claim = (struct ts_wire_claim){ .from = cmd->claim_from, .to = cmd->claim_to };
}

int ts_client_submit(struct ts_stack *st, struct ts_cmd *cmd)
{
	struct ts_client *cl = st->client;
	struct ts_wire w;
	int fd = cmd->type == TS_CMD_BRIDGE ? cmd->req.fd : -1, rc;

	pthread_mutex_lock(&cl->mu);
	if (cl->dead) {
		pthread_mutex_unlock(&cl->mu);
		return -ECONNRESET;
	}
	cmd->seq = ++cl->next_seq;
	cmd->next = cl->pending;
	cl->pending = cmd;
	encode(cmd, &w);
	pthread_mutex_unlock(&cl->mu);
	rc = ts_wire_send(cl->fd, &w, fd, 0);
	/* The holder has its own copy of the stack's end now (or never will). */
	if (fd >= 0)
		ts_sys()->release(fd);
	/* A failed send ends the session: the reader sees the end and fails every
	 * command, this one too, from its own thread, as if the holder had gone. */
	if (rc < 0)
		ts_sys()->shutdown(cl->fd, SHUT_RDWR);
	return 0;
}

bool ts_client_alive(struct ts_stack *st)
{
	bool dead;

	pthread_mutex_lock(&st->client->mu);
	dead = st->client->dead;
	pthread_mutex_unlock(&st->client->mu);
	return !dead;
}

void ts_client_stop(struct ts_stack *st)
{
	struct ts_client *cl = st->client;

	ts_sys()->shutdown(cl->fd, SHUT_RDWR);
	pthread_join(cl->thread, NULL);
	ts_sys()->release(cl->fd);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
	st->client = NULL;
}
