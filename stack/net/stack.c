/* SPDX-License-Identifier: MIT */
/* Starting and stopping the stack, and the command queue that application threads
 * use to reach the stack thread. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "hs_gap.h"
#include "log.h"
#include "session.h"
#include "stack_internal.h"
#include "sys.h"

void *ts_loop_main(void *arg);
int ts_udp_open(struct ts_stack *st, const struct wg_config *cfg, char *err, size_t errlen);
struct wg_device *ts_device_create(struct ts_stack *st, const struct wg_config *cfg,
				   const struct sockaddr_storage *eps, double scale);

static int resolve_endpoint(const struct wg_peer_config *p, struct sockaddr_storage *out,
			    char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!p->endpoint_host)
		return 0;
	return ts_endpoint_resolve(p->endpoint_host, p->endpoint_port, out, err, errlen);
}

/* Endpoint hostnames are kept to resolve them again when a peer stops answering. */
static int keep_hostnames(struct ts_stack *st, const struct wg_config *cfg)
{
	st->n_peers = cfg->n_peers;
	st->ep_host = calloc(cfg->n_peers + 1, sizeof(*st->ep_host));
	st->ep_port = calloc(cfg->n_peers + 1, sizeof(*st->ep_port));
	st->ep_resolving = calloc(cfg->n_peers + 1, sizeof(*st->ep_resolving));
	if (!st->ep_host || !st->ep_port || !st->ep_resolving)
		return -1;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const char *h = cfg->peers[i].endpoint_host;

		st->ep_port[i] = cfg->peers[i].endpoint_port;
		if (h && !(st->ep_host[i] = strdup(h)))
			return -1;
	}
	return 0;
}

static void stack_free(struct ts_stack *st)
{
	ts_udp_relay_close(st);
	ts_txbatch_free(&st->tx);
	if (st->dev)
		wg_device_free(st->dev);
	if (st->udp_fd >= 0)
		ts_sys()->release(st->udp_fd);
	if (st->evfd >= 0)
		ts_sys()->release(st->evfd);
	if (st->epfd >= 0)
		ts_sys()->release(st->epfd);
	if (st->gap_fd >= 0)
		ts_sys()->release(st->gap_fd);
	for (size_t i = 0; st->ep_host && i < st->n_peers; i++)
		free(st->ep_host[i]);
	free(st->ep_host);
	free(st->ep_port);
	free(st->ep_resolving);
	free(st->rxbufs);
	pthread_mutex_destroy(&st->qmu);
	free(st);
}

static int start_thread(struct ts_stack *st)
{
	sigset_t all, old;
	int rc;

	/* The stack thread must never run the application's signal handlers. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&st->thread, NULL, ts_loop_main, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static int stack_init(struct ts_stack *st, const struct wg_config *cfg,
		      const struct ts_stack_options *opt, char *err, size_t errlen)
{
	struct sockaddr_storage *eps = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof(*eps));
	double scale = opt && opt->timer_scale > 0 ? opt->timer_scale : 1;

	if (!eps)
		return snprintf(err, errlen, "out of memory"), -1;
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (resolve_endpoint(&cfg->peers[i], &eps[i], err, errlen) < 0)
			return free(eps), -1;
	if (keep_hostnames(st, cfg) < 0 ||
	    ts_udp_open(st, cfg, err, errlen) < 0)
		return free(eps), -1;
	ts_udp_relay_setup(st);
	/* TIME_WAIT scales with the other protocol timers (lwipopts.h). */
	ts_lwip_tcp_msl = (unsigned long)(60000 * scale) ? (unsigned long)(60000 * scale) : 1;
	st->dev = ts_device_create(st, cfg, eps, scale);
	free(eps);
	if (!st->dev)
		return snprintf(err, errlen, "cannot create the WireGuard device"), -1;
	if (ts_netif_setup(st, cfg) < 0 || ts_icmp_setup(st) < 0)
		return snprintf(err, errlen, "cannot set up the tunnel interface"), -1;
	return 0;
}

/* lwIP keeps global state: one stack per address space. A forked child inherits the
 * parent's copy, so it can never run one of its own (it attaches instead). */
static int claim_lwip(char *err, size_t errlen)
{
	static pid_t owner;
	pid_t was = __atomic_exchange_n(&owner, getpid(), __ATOMIC_SEQ_CST);

	if (!was)
		return 0;
	__atomic_store_n(&owner, was, __ATOMIC_SEQ_CST);
	if (was == getpid())
		snprintf(err, errlen, "a tunnel stack already runs in this process");
	else
		snprintf(err, errlen, "this process was forked from one that ran the tunnel "
			 "(pid %d) and cannot run its own; no other process serves it", (int)was);
	return -1;
}

/* Runs the stack here; rv, when not NULL, is the rendezvous to serve others at. */
static int start_local(const struct wg_config *cfg, const struct ts_stack_options *opt,
		       struct ts_rendezvous *rv, struct ts_stack **out, char *err, size_t errlen)
{
	struct ts_stack *st;

	if (claim_lwip(err, errlen) < 0)
		return -1;
	st = calloc(1, sizeof(*st));
	if (!st)
		return snprintf(err, errlen, "out of memory"), -1;
	st->udp_fd = st->evfd = st->epfd = st->gap_fd = -1;
	st->relay4.fd = st->relay6.fd = -1;
	st->mtu = cfg->mtu;
	if (opt)
		st->opt = *opt;
	pthread_mutex_init(&st->qmu, NULL);
	if (rv && ts_server_start(st, rv) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	st->evfd = ts_sys()->adopt(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
	st->epfd = ts_sys()->adopt(epoll_create1(EPOLL_CLOEXEC));
	if (st->evfd < 0 || st->epfd < 0) {
		snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
		goto fail;
	}
	if (stack_init(st, cfg, opt, err, errlen) < 0)
		goto fail;
	/* The thread waits out the gap before its first initiation: see hs_gap.h. */
	st->gap_fd = ts_sys()->adopt(ts_gap_open(cfg->public_key));
	if (start_thread(st) != 0) {
		snprintf(err, errlen, "cannot start the stack thread");
		goto fail;
	}
	*out = st;
	return 0;
fail:
	stack_free(st);
	return -1;
}

/* Attached: commands go to the holder at fd. */
static int start_attached(const struct ts_stack_options *opt, int fd, struct ts_stack **out)
{
	struct ts_stack *st = calloc(1, sizeof(*st));

	if (!st || ts_client_attach(st, fd) < 0) {
		ts_sys()->release(fd);
		free(st);
		return -1;
	}
	st->opt = *opt;
	*out = st;
	return 0;
}

/* A holder may end between our finding it and its answer: look again, a few times. */
#define ATTACH_TRIES 20

static int start_shared(const struct wg_config *cfg, const struct ts_stack_options *opt,
			struct ts_stack **out, char *err, size_t errlen)
{
	struct ts_rendezvous rv;

	for (int i = 0; i < ATTACH_TRIES; i++) {
		switch (ts_rendezvous(cfg->public_key, &rv)) {
		case TS_RV_ATTACHED:
			if (start_attached(opt, rv.ctl_fd, out) == 0)
				return 0;
			break;
		case TS_RV_HOLDER:
			if (start_local(cfg, opt, &rv, out, err, errlen) == 0)
				return 0;
			ts_sys()->release(rv.listen_fd);
			ts_sys()->release(rv.lock_fd);
			return -1;
		case TS_RV_ALONE:
			return start_local(cfg, opt, NULL, out, err, errlen);
		case TS_RV_FAILED:
			return snprintf(err, errlen, "the process that holds this key's session "
					"does not answer"), -1;
		}
	}
	return snprintf(err, errlen, "the session of this key keeps ending before it "
			"answers"), -1;
}

int ts_stack_start(const struct wg_config *cfg, const struct ts_stack_options *opt,
		   struct ts_stack **out, char *err, size_t errlen)
{
	static const struct ts_stack_options none;

	if (!opt)
		opt = &none;
	if (opt->sys)
		ts_sys_set(opt->sys);
	if (opt->share)
		return start_shared(cfg, opt, out, err, errlen);
	return start_local(cfg, opt, NULL, out, err, errlen);
}

bool ts_stack_is_local(struct ts_stack *st)
{
	return !st->client;
}

bool ts_stack_alive(struct ts_stack *st)
{
	return !st->client || ts_client_alive(st);
}

/* Runs on the application's threads (and on the stack thread when it queues a
 * command for itself). */
static void wake(struct ts_stack *st)
{
	uint64_t one = 1;

	if (ts_sys()->write(st->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		ts_err("stack wake-up failed: %s", strerror(errno));
}

void ts_stack_stop(struct ts_stack *st)
{
	if (st->client) {
		ts_client_stop(st);
		free(st);
		return;
	}
	__atomic_store_n(&st->stopping, 1, __ATOMIC_SEQ_CST);
	wake(st);
	pthread_join(st->thread, NULL);
	stack_free(st);
}

int ts_stack_submit(struct ts_stack *st, struct ts_cmd *cmd)
{
	if (st->client)
		return ts_client_submit(st, cmd);
	pthread_mutex_lock(&st->qmu);
	if (st->qtail)
		st->qtail->next = cmd;
	else
		st->qhead = cmd;
	st->qtail = cmd;
	pthread_mutex_unlock(&st->qmu);
	wake(st);
	return 0;
}

struct ts_cmd *ts_cmd_take_all(struct ts_stack *st)
{
	struct ts_cmd *list;

	pthread_mutex_lock(&st->qmu);
	list = st->qhead;
	st->qhead = st->qtail = NULL;
	pthread_mutex_unlock(&st->qmu);
	return list;
}

int ts_bridge_open(struct ts_stack *st, const struct ts_bridge_req *req,
		   const struct ts_bridge_ops *ops, void *arg)
{
	struct ts_cmd *cmd = calloc(1, sizeof(*cmd));
	int rc;

	/* The application's thread: release, not close, so that the embedder forgets
	 * the descriptor too (the shim's close() would refuse an internal one here). */
	if (!cmd) {
		ts_sys()->release(req->fd);
		return -ENOMEM;
	}
	cmd->type = TS_CMD_BRIDGE;
	cmd->req = *req;
	if (ops)
		cmd->ops = *ops;
	cmd->arg = arg;
	rc = ts_stack_submit(st, cmd);
	if (rc < 0) {
		ts_sys()->release(req->fd);
		free(cmd);
	}
	return rc;
}

static void waiter_init(struct ts_waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

void ts_waiter_wake(struct ts_waiter *w, int rc)
{
	if (!w)
		return; /* a command nobody waits for (ts_bridge_tcp_options) */
	if (w->reply) {
		w->reply(w, rc);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int waiter_wait(struct ts_waiter *w)
{
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	return w->rc;
}

static void open_wait_done(void *arg, const struct ts_bridge_result *res)
{
	struct ts_waiter *w = arg;

	w->res = *res;
	ts_waiter_wake(w, -res->error);
}

int ts_bridge_open_wait(struct ts_stack *st, const struct ts_bridge_req *req,
			struct ts_bridge_result *res)
{
	static const struct ts_bridge_ops ops = { .done = open_wait_done };
	struct ts_waiter w;
	int rc;

	waiter_init(&w);
	rc = ts_bridge_open(st, req, &ops, &w);
	if (rc < 0)
		return rc;
	rc = waiter_wait(&w);
	if (res)
		*res = w.res;
	return rc;
}

/* Runs cmd on the stack thread and waits for its result. */
static int call(struct ts_stack *st, struct ts_cmd *proto)
{
	struct ts_cmd *cmd = malloc(sizeof(*cmd));
	struct ts_waiter w;
	int rc;

	if (!cmd)
		return -ENOMEM;
	*cmd = *proto;
	waiter_init(&w);
	cmd->waiter = &w;
	rc = ts_stack_submit(st, cmd);
	if (rc < 0) {
		free(cmd);
		return rc;
	}
	return waiter_wait(&w);
}

int ts_stack_peer_stats(struct ts_stack *st, int peer_index, struct wg_peer_stats *out)
{
	struct ts_cmd cmd = { .type = TS_CMD_STATS, .peer = peer_index, .stats = out };

	return call(st, &cmd);
}

int ts_stack_device_stats(struct ts_stack *st, struct wg_device_stats *out)
{
	struct ts_cmd cmd = { .type = TS_CMD_DEVSTATS, .dev_stats = out };

	return call(st, &cmd);
}

int ts_bridge_abort(struct ts_stack *st, uint64_t id)
{
	struct ts_cmd cmd = { .type = TS_CMD_ABORT, .id = id };

	return call(st, &cmd);
}

int ts_bridge_tcp_options(struct ts_stack *st, uint64_t id, const struct ts_bridge_req *opts)
{
	struct ts_cmd *cmd = calloc(1, sizeof(*cmd));
	int rc;

	/* Nobody needs the answer (a connection gone is no error for an option), and
	 * waiting for the stack thread, or for the session's holder, cost a wake-up or a
	 * message each way: programs that set TCP_NODELAY after every connect paid for it
	 * per connection. Commands run in order, and lwIP holds back a small segment only
	 * while an earlier one is unacknowledged, so data written right after goes out as
	 * with the option. No waiter: ts_waiter_wake skips it. */
	if (!cmd)
		return -ENOMEM;
	cmd->type = TS_CMD_TCPOPT;
	cmd->id = id;
	cmd->req = *opts;
	rc = ts_stack_submit(st, cmd);
	if (rc < 0)
		free(cmd);
	return rc;
}

int ts_bridge_tcp_info(struct ts_stack *st, uint64_t id, struct ts_tcp_info *out)
{
	struct ts_cmd cmd = { .type = TS_CMD_INFO, .id = id, .info = out };

	return call(st, &cmd);
}

int ts_bridge_udp_error(struct ts_stack *st, uint64_t id, struct ts_udp_errinfo *out)
{
	struct ts_udp_errinfo none;
	struct ts_cmd cmd = { .type = TS_CMD_UDPERR, .id = id, .udp_err = out ? out : &none };
	int rc = call(st, &cmd);

	return rc > 0 ? rc : 0;
}

bool ts_stack_busy(struct ts_stack *st)
{
	struct ts_cmd cmd = { .type = TS_CMD_BUSY };

	if (st->parked || st->client)
		return false;
	return call(st, &cmd) > 0;
}

static void continue_in_child(struct ts_stack *st, void (*child_setup)(void))
{
	struct ts_cmd *c;
	sigset_t all;
	uint64_t one = 1;

	/* Only this thread exists here; another may have held the queue lock, even in
	 * the middle of appending: rebuild the tail from the head. Queued commands are
	 * run here (a bridge's descriptor may live on in an exec'd image); their
	 * waiters, if any, are copies nobody waits on. */
	pthread_mutex_init(&st->qmu, NULL);
	for (c = st->qhead, st->qtail = NULL; c; c = c->next)
		st->qtail = c;
	if (st->qhead && ts_sys()->write(st->evfd, &one, sizeof(one)) < 0)
		st->qhead = st->qtail = NULL;
	sigfillset(&all);
	sigdelset(&all, SIGTERM);
	sigdelset(&all, SIGINT);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (child_setup)
		child_setup();
	st->continuation = 1;
	st->stopping = 0;
	/* The loop reaches the OS through the boundary here as on the stack thread:
	 * it needs no mark from the embedder on this, the child's only thread. */
	ts_loop_run(st);
	ts_server_stop(st);
	ts_sys()->_exit(0);
}

pid_t ts_stack_detach(struct ts_stack *st, void (*child_setup)(void))
{
	struct ts_cmd cmd = { .type = TS_CMD_PARK };
	pid_t pid;

	if (st->parked || st->client)
		return -1;
	call(st, &cmd);
	st->parked = 1;
	pid = ts_sys()->fork();
	if (pid == 0)
		continue_in_child(st, child_setup);
	return pid;
}

int ts_listen(struct ts_stack *st, int family, uint16_t port,
	      const struct sockaddr_storage *forward, uint64_t *id)
{
	struct ts_cmd cmd = { .type = TS_CMD_LISTEN, .family = family, .port = port,
			      .forward = *forward, .out_id = id };

	return call(st, &cmd);
}

int ts_inbound_claim(struct ts_stack *st, const struct sockaddr_storage *from,
		     const struct sockaddr_storage *to, const struct ts_bridge_ops *ops,
		     void *arg, struct ts_claim *out)
{
	struct ts_cmd cmd = { .type = TS_CMD_CLAIM, .claim_from = *from, .claim_to = *to,
			      .claim = out, .arg = arg };

	if (ops)
		cmd.ops = *ops;
	out->fd = -1;
	return call(st, &cmd);
}

int ts_unlisten(struct ts_stack *st, uint64_t id)
{
	struct ts_cmd cmd = { .type = TS_CMD_UNLISTEN, .id = id };

	return call(st, &cmd);
}


int ts_stack_udp_relay(struct ts_stack *st, int family, struct sockaddr_storage *addr,
		       uint8_t token[8])
{
	struct ts_cmd cmd = { .type = TS_CMD_RELAY, .family = family, .relay_addr = addr,
			      .relay_token = token };

	/* Fixed once the stack runs: read here, without the stack thread. */
	if (!st->client)
		return ts_udp_relay_info(st, family, addr, token);
	return call(st, &cmd);
}
