/* SPDX-License-Identifier: MIT */
/* Endpoints given by hostname: resolved with the host resolver when the tunnel starts,
 * and again when a peer's handshakes keep failing (its address may have moved). The
 * second resolution runs on a short-lived thread of its own, so the loop never waits
 * for a resolver; the answer comes back as a command. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "stack_internal.h"
#include "sockaddr.h"
#include "sys.h"

/* The host's resolver, through the boundary: on the starting application thread
 * (ts_stack_start) and on a resolver thread of ours (reresolve below). */
int ts_endpoint_resolve(const char *host, uint16_t port, struct sockaddr_storage *out,
			char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	char sport[8];
	int rc;

	snprintf(sport, sizeof(sport), "%u", port);
	rc = ts_sys()->getaddrinfo(host, sport, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve Endpoint \"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	ts_sys()->freeaddrinfo(res);
	return 0;
}

static bool is_literal(const char *host)
{
	uint8_t buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

struct job {
	struct ts_stack *st;
	int peer;
};

static void *resolve_thread(void *arg)
{
	struct job *j = arg;
	struct ts_cmd *cmd = calloc(1, sizeof(*cmd));
	char err[256];

	if (cmd && ts_endpoint_resolve(j->st->ep_host[j->peer], j->st->ep_port[j->peer],
				       &cmd->forward, err, sizeof(err)) == 0) {
		cmd->type = TS_CMD_ENDPOINT;
		cmd->peer = j->peer;
		ts_stack_submit(j->st, cmd);
	} else {
		if (cmd)
			ts_warn("peer %d: %s", j->peer, err);
		free(cmd);
		__atomic_store_n(&j->st->ep_resolving[j->peer], 0, __ATOMIC_RELEASE);
	}
	free(j);
	return NULL;
}

void ts_endpoint_reresolve(struct ts_stack *st, int peer)
{
	struct job *j;
	pthread_t t;
	pthread_attr_t a;
	sigset_t all, old;

	if (peer < 0 || (size_t)peer >= st->n_peers || !st->ep_host[peer] ||
	    is_literal(st->ep_host[peer]) || st->ep_resolving[peer] || !(j = malloc(sizeof(*j))))
		return;
	j->st = st;
	j->peer = peer;
	st->ep_resolving[peer] = 1;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, &a, resolve_thread, j) != 0) {
		st->ep_resolving[peer] = 0;
		free(j);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
}

void ts_endpoint_update(struct ts_stack *st, struct ts_cmd *cmd)
{
	socklen_t len = ts_sa_len(&cmd->forward);

	ts_info("peer %d: Endpoint %s resolved again", cmd->peer, st->ep_host[cmd->peer]);
	wg_device_set_endpoint(st->dev, cmd->peer, (struct sockaddr *)&cmd->forward, len);
	st->ep_resolving[cmd->peer] = 0;
	wg_device_connect_peer(st->dev, cmd->peer);
}
