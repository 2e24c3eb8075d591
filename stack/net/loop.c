/* SPDX-License-Identifier: MIT */
/* The stack thread: one epoll loop over the command eventfd, the outer UDP socket and
 * every bridged descriptor, plus lwIP's and the device's timers. lwIP and the device
 * are touched from here only, so nothing below takes a lock. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "lwip/init.h"
#include "lwip/timeouts.h"
#include "lwip/priv/tcp_priv.h"
#include "hs_gap.h"
#include "log.h"
#include "messages.h"
#include "sockaddr.h"
#include "bridge.h"
#include "session.h"
#include "stack_internal.h"
#include "sys.h"

#define RX_BATCH 32

struct ts_cmd *ts_cmd_take_all(struct ts_stack *st);
void ts_waiter_wake(struct ts_waiter *w, int rc);

void ts_loop_watch(struct ts_stack *st, int fd, struct ts_pollable *p, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = p };

	if (ts_sys()->epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		ts_err("epoll add fd %d: %s", fd, strerror(errno));
}

void ts_loop_modify(struct ts_stack *st, int fd, struct ts_pollable *p, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = p };

	if (ts_sys()->epoll_ctl(st->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		ts_err("epoll mod fd %d: %s", fd, strerror(errno));
}

void ts_loop_unwatch(struct ts_stack *st, int fd)
{
	ts_sys()->epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static uint64_t now_ns(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t ts_now_ns(void)
{
	return now_ns(NULL);
}

/* ---- outer UDP ---- */

static int send_now(void *ctx, const struct sockaddr *dst, socklen_t dstlen,
		    const uint8_t *buf, size_t len)
{
	struct ts_stack *st = ctx;
	struct sockaddr_storage mapped;

	/* A dual-stack socket reaches IPv4 endpoints through mapped addresses. */
	if (st->udp_family == AF_INET6 && dst->sa_family == AF_INET) {
		memcpy(&mapped, dst, sizeof(struct sockaddr_in));
		ts_sa_map(&mapped);
		dst = (const struct sockaddr *)&mapped;
		dstlen = sizeof(struct sockaddr_in6);
	}
	if (len == MESSAGE_INITIATION_LEN && buf[0] == MESSAGE_INITIATION)
		ts_gap_record(st->gap_fd);
	ts_txbatch_add(&st->tx, st->udp_fd, dst, dstlen, buf, len);
	return 0;
}

/* Mapped sources are reported as plain IPv4, so endpoints compare consistently. */
static socklen_t normalize_source(struct sockaddr_storage *ss, socklen_t len)
{
	return ts_sa_unmap(ss) ? sizeof(struct sockaddr_in) : len;
}

/* One received buffer: a datagram, or with GRO several of one sender, each seg bytes
 * but the last. */
static void receive_buffer(struct ts_stack *st, uint8_t *buf, size_t len, size_t seg,
			   struct sockaddr_storage *src, socklen_t sl)
{
	if (!seg || seg > len)
		seg = len;
	for (size_t off = 0; off < len; off += seg) {
		size_t n = len - off < seg ? len - off : seg;

		wg_device_receive(st->dev, buf + off, n, (struct sockaddr *)src, sl);
		/* Hand decrypted packets to lwIP outside the device's receive path. */
		ts_netif_drain(st);
	}
}

static void udp_readable(struct ts_stack *st, struct ts_pollable *p, uint32_t events)
{
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_storage src[RX_BATCH];
	union ts_gro_ctl ctl[RX_BATCH];
	int n;

	(void)p;
	(void)events;
	for (int i = 0; i < RX_BATCH; i++) {
		iov[i] = (struct iovec){ st->rxbufs + i * st->rxslot, st->rxslot };
		msgs[i].msg_hdr = (struct msghdr){ .msg_name = &src[i], .msg_namelen = sizeof(src[i]),
						   .msg_iov = &iov[i], .msg_iovlen = 1,
						   .msg_control = st->gro ? ctl[i].buf : NULL,
						   .msg_controllen = st->gro ? sizeof(ctl[i].buf) : 0 };
	}
	n = ts_sys()->recvmmsg(st->udp_fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		socklen_t sl = normalize_source(&src[i], msgs[i].msg_hdr.msg_namelen);

		if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
			continue;
		receive_buffer(st, iov[i].iov_base, msgs[i].msg_len,
			       st->gro ? ts_gro_segment(&msgs[i].msg_hdr) : 0, &src[i], sl);
	}
}

static void grow_buffers(int fd)
{
	const struct ts_sys *sys = ts_sys();
	int sz = 4 << 20;

	/* Bulk transfers burst faster than one loop iteration drains; privileged
	 * processes may exceed rmem_max, others get what the kernel allows. */
	if (sys->setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		sys->setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (sys->setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		sys->setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

static int outer_bind(int fd, int family, uint16_t port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (family == AF_INET6)
		return ts_sys()->bind(fd, (struct sockaddr *)&a6, sizeof(a6));
	return ts_sys()->bind(fd, (struct sockaddr *)&a4, sizeof(a4));
}

int ts_udp_open(struct ts_stack *st, const struct wg_config *cfg, char *err, size_t errlen)
{
	const struct ts_sys *sys = ts_sys();
	int off = 0, fd;

	/* One dual-stack socket serves v4 and v6 endpoints; fall back to v4 only
	 * where IPv6 is disabled. */
	st->udp_family = AF_INET6;
	fd = sys->socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && sys->setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0) {
		sys->release(fd);
		fd = -1;
	}
	if (fd < 0) {
		st->udp_family = AF_INET;
		fd = sys->socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	}
	if (fd < 0 || outer_bind(fd, st->udp_family, cfg->listen_port) < 0) {
		snprintf(err, errlen, "cannot open the WireGuard UDP socket%s%u: %s",
			 cfg->has_listen_port ? " on port " : "", cfg->has_listen_port ?
			 cfg->listen_port : 0u, strerror(errno));
		if (fd >= 0)
			sys->release(fd);
		return -1;
	}
	grow_buffers(fd);
	st->udp_fd = sys->adopt(fd);
	st->gro = ts_gro_enable(st->udp_fd);
	/* A coalesced buffer may hold up to 64 KiB. Only the pages a receive touches
	 * become resident: one datagram touches one page of its slot. */
	st->rxslot = st->gro ? 65536 : (size_t)cfg->mtu + 128;
	st->rxbufs = malloc(st->rxslot * RX_BATCH);
	if (!st->rxbufs || ts_txbatch_init(&st->tx, (size_t)cfg->mtu + 128, st->udp_fd) < 0)
		return snprintf(err, errlen, "out of memory"), -1;
	return 0;
}

/* ---- device ---- */

static void peer_event(void *ctx, int peer, int event)
{
	if (event != WG_PEER_HANDSHAKE_FAILED)
		return;
	ts_bridge_peer_failed(ctx, peer);
	ts_endpoint_reresolve(ctx, peer);
}

struct wg_device *ts_device_create(struct ts_stack *st, const struct wg_config *cfg,
				   const struct sockaddr_storage *eps, double scale)
{
	static struct wg_device_ops ops;
	struct wg_timer_params tp;

	ops = (struct wg_device_ops){ .ctx = st, .send_udp = send_now, .deliver = ts_netif_deliver,
				      .now = now_ns, .peer_event = peer_event };
	wg_timer_params_default(&tp, scale);
	return wg_device_new(cfg, eps, &tp, &ops);
}

/* ---- commands ---- */

/* A holder with a grace time stays findable after its last user: see continuation_done. */
static uint64_t grace_ns(const struct ts_stack *st)
{
	return st->server && st->opt.grace_s > 0 ? (uint64_t)(st->opt.grace_s * 1e9) : 0;
}

/* Work that must outlive the process: connections, servers, attached processes, and
 * a session others may still want to attach to. */
static bool must_continue(struct ts_stack *st)
{
	return !ts_loop_idle(st) || ts_server_clients(st) > 0 || grace_ns(st) > 0;
}

void ts_command_run(struct ts_stack *st, struct ts_cmd *cmd)
{
	switch (cmd->type) {
	case TS_CMD_BRIDGE:
		ts_bridge_start(st, cmd);
		break;
	case TS_CMD_STATS:
		ts_waiter_wake(cmd->waiter, wg_device_peer_stats(st->dev, cmd->peer, cmd->stats));
		break;
	case TS_CMD_DEVSTATS:
		wg_device_stats(st->dev, cmd->dev_stats);
		ts_waiter_wake(cmd->waiter, 0);
		break;
	case TS_CMD_ABORT:
		ts_bridge_abort_id(st, cmd->id);
		ts_waiter_wake(cmd->waiter, 0);
		break;
	case TS_CMD_INFO:
		ts_waiter_wake(cmd->waiter, ts_bridge_info_id(st, cmd->id, cmd->info));
		break;
	case TS_CMD_UDPERR:
		ts_waiter_wake(cmd->waiter, ts_bridge_udp_take_error(st, cmd->id, cmd->udp_err));
		break;
	case TS_CMD_BUSY:
		/* Datagrams the application sent just before asking are still queued
		 * in our sockets: send them first, so they count. */
		ts_udp_relay_drain(st);
		ts_waiter_wake(cmd->waiter, must_continue(st));
		break;
	case TS_CMD_CLAIM:
		ts_waiter_wake(cmd->waiter, ts_doorbell_claim(st, cmd));
		break;
	case TS_CMD_RELAY:
		ts_waiter_wake(cmd->waiter, ts_udp_relay_info(st, cmd->family, cmd->relay_addr,
							      cmd->relay_token));
		break;
	case TS_CMD_TCPOPT:
		ts_waiter_wake(cmd->waiter, ts_bridge_options_id(st, cmd->id, &cmd->req));
		break;
	case TS_CMD_ENDPOINT:
		ts_endpoint_update(st, cmd);
		break;
	case TS_CMD_LISTEN:
		ts_waiter_wake(cmd->waiter, ts_listen_start(st, cmd));
		break;
	case TS_CMD_UNLISTEN:
		ts_waiter_wake(cmd->waiter, ts_listen_stop(st, cmd->id));
		break;
	case TS_CMD_PARK:
		/* The detaching thread forks once we are here, between two iterations,
		 * touching nothing; this process never runs the stack again. */
		ts_loop_flush(st);
		ts_waiter_wake(cmd->waiter, 0);
		for (;;)
			pause();
		break;
	}
	free(cmd);
}

static void requeue_front(struct ts_stack *st, struct ts_cmd *chain)
{
	struct ts_cmd *last = chain;

	while (last->next)
		last = last->next;
	pthread_mutex_lock(&st->qmu);
	last->next = st->qhead;
	if (!st->qhead)
		st->qtail = last;
	st->qhead = chain;
	pthread_mutex_unlock(&st->qmu);
}

static void commands_ready(struct ts_stack *st, struct ts_pollable *p, uint32_t events)
{
	uint64_t v;
	struct ts_cmd *cmd, *next;

	(void)p;
	(void)events;
	if (ts_sys()->read(st->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		ts_err("stack eventfd: %s", strerror(errno));
	for (cmd = ts_cmd_take_all(st); cmd; cmd = next) {
		next = cmd->next;
		/* Parking never returns here: what came after it goes back to the queue,
		 * for the continuation to run. */
		if (cmd->type == TS_CMD_PARK && next)
			requeue_front(st, next);
		ts_command_run(st, cmd);
	}
}

/* ---- the loop ---- */

/* The end of a pass: the held ACKs, then every datagram of the pass. */
void ts_loop_flush(struct ts_stack *st)
{
	ts_ackhold_flush(&st->acks, st->dev);
	ts_txbatch_flush(&st->tx, st->udp_fd);
}

/* How long the loop may sleep: lwIP's and the device's timers, and the
 * doorbells nobody answered (expired here). */
static uint64_t next_timeout_ns(struct ts_stack *st)
{
	uint64_t now = now_ns(NULL), dl = wg_device_tick(st->dev);
	u32_t lw = sys_timeouts_sleeptime();
	uint64_t ns = lw == SYS_TIMEOUTS_SLEEPTIME_INFINITE ? 60000000000ull : lw * 1000000ull;
	uint64_t bell = st->doorbells ? ts_doorbell_expire(st, now) : 0;
	uint64_t stats = ts_stats_tick(st, now);

	if (st->continuation && ns > 1000000000ull)
		ns = 1000000000ull; /* re-check the end condition */
	if (bell && bell - now < ns)
		ns = bell - now;
	if (stats < ns)
		ns = stats;
	if (dl != UINT64_MAX && (dl > now ? dl - now : 0) < ns)
		ns = dl > now ? dl - now : 0;
	return ns;
}

/* Nothing bridged, nothing in flight in lwIP, nothing waiting for a handshake. */
bool ts_loop_idle(struct ts_stack *st)
{
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (!b->dead)
			return false;
	return tcp_active_pcbs == NULL && wg_device_staged(st->dev) == 0 &&
	       !ts_listen_alive(st) && !ts_udp_servers_alive(st);
}

/* A continuation whose connections have all ended on our side gives lwIP this long
 * to finish closing them (a peer that never acknowledges our FIN must not keep the
 * session, and the next process waiting for it, for minutes). */
#define CONTINUATION_LINGER_NS (10ull * 1000000000ull)

/* A bridge whose application end no process holds any more, and whose data lwIP has
 * delivered, only waits for the remote's FIN: like the kernel's orphaned sockets it
 * must not keep the continuation (and the key's session) alive for ever. */
#define ORPHAN_STALL_NS (30ull * 1000000000ull)

static bool bridge_serving(struct ts_bridge *b)
{
	struct pollfd p = { .fd = b->fd };
	uint64_t now = now_ns(NULL);

	if (b->dead)
		return false;
	if (!b->tcp || !(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP)))
		return true; /* an application still holds its end */
	if (!b->to_app && tcp_sndqueuelen(b->tcp) == 0)
		return false; /* delivered: only the remote's FIN is awaited */
	if (b->tcp->state == TIME_WAIT) {
		ts_bridge_tcp_abort(b, EPIPE); /* over: nobody is left to read the rest */
		return false;
	}
	/* Orphaned with data (or our FIN) in flight: served while the remote makes
	 * progress; a remote that acknowledges nothing for 30 s is given up. */
	if (!b->orphan_since || b->orphan_lastack != b->tcp->lastack) {
		b->orphan_since = now;
		b->orphan_lastack = b->tcp->lastack;
	}
	if (now - b->orphan_since < ORPHAN_STALL_NS)
		return true;
	ts_bridge_tcp_abort(b, ETIMEDOUT);
	return false;
}

static bool continuation_serving(struct ts_stack *st)
{
	bool bridges = false;

	/* A daemon that inherited a listener is still served, and so is every process
	 * attached to the session. */
	for (struct ts_bridge *b = st->bridges; b && !bridges; b = b->next)
		bridges = bridge_serving(b);
	return bridges || ts_listen_alive(st) || ts_udp_servers_alive(st) ||
	       ts_server_clients(st) > 0;
}

/* What keeps a continuation up, every few seconds, for whoever wonders why it is. */
static void continuation_report(struct ts_stack *st, uint64_t now)
{
	int bridges = 0, held = 0;
	struct pollfd p;

	if (!ts_log_enabled(TS_LOG_DEBUG) || now - st->reported_at < 5000000000ull)
		return;
	st->reported_at = now;
	for (struct ts_bridge *b = st->bridges; b; b = b->next) {
		if (b->dead)
			continue;
		bridges++;
		p = (struct pollfd){ .fd = b->fd };
		held += !(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP));
	}
	ts_dbg("continuation: %d bridge(s), %d held by an application; listeners %s; UDP servers "
	       "%s; %d attached process(es); lwIP %s", bridges, held,
	       st->listeners ? "yes" : "no", ts_udp_servers_alive(st) ? "yes" : "no",
	       ts_server_clients(st), tcp_active_pcbs ? "still has connections" : "idle");
}

static bool continuation_done(struct ts_stack *st)
{
	uint64_t now = now_ns(NULL);

	continuation_report(st, now);
	if (continuation_serving(st)) {
		st->linger_until = st->idle_since = 0;
		return false;
	}
	if (!ts_loop_idle(st)) {
		if (!st->linger_until)
			st->linger_until = now + CONTINUATION_LINGER_NS;
		if (now <= st->linger_until)
			return false;
	}
	/* Nothing left to serve: the session stays up for its grace time, so that the
	 * next short process attaches to it instead of handshaking again. */
	if (!st->idle_since)
		st->idle_since = now;
	return now - st->idle_since >= grace_ns(st);
}

void ts_loop_bury(struct ts_stack *st, struct ts_pollable *p)
{
	p->dead = true;
	p->grave = st->graves;
	st->graves = p;
}

static void free_graves(struct ts_stack *st)
{
	while (st->graves) {
		struct ts_pollable *p = st->graves;

		st->graves = p->grave;
		free(p);
	}
}

/* Busy polling. A thread that sleeps in epoll_wait is woken by the kernel when a
 * datagram or an application's write arrives, which on these machines costs tens of
 * microseconds each time, twice per request and answer (the request leaving, the answer
 * coming back). While events come quickly (the last wait ended within
 * opt.busy_poll_us), the thread first polls for that long, yielding the CPU between
 * polls; a wait that took longer ends the polling until one is quick again, so an idle
 * or slow connection costs nothing. TCP_RR through wireguard-go on a 2-core machine:
 * median 160-170 us without, 90-110 us with 200 us of polling.
 *
 * Only after a pass that moved tunnel traffic, and not under bulk traffic (more than
 * BULK_BYTES_PER_S of it over the last window): there the answer to a wake-up is
 * throughput, not latency, and a polling thread takes the CPU from the processes at the
 * other end of the transfer (an upload to wireguard-go on two cores lost 10-20 %). */
#define TRAFFIC_WINDOW_NS 10000000ull /* 10 ms */
#define BULK_BYTES_PER_S 8000000ull

/* Whether the pass before this wait moved tunnel traffic, and whether the traffic of the
 * last window was bulk. Only authenticated packets count (wg_device_traffic): a flood of
 * garbage must not set the thread polling. */
static bool measure_traffic(struct ts_stack *st, uint64_t now)
{
	uint64_t bytes = wg_device_traffic(st->dev);
	bool moved = bytes != st->traffic_seen;

	st->traffic_seen = bytes;
	if (now - st->traffic_at < TRAFFIC_WINDOW_NS)
		return moved;
	st->bulk = (bytes - st->traffic_base) * 1000000000ull >
		   BULK_BYTES_PER_S * (now - st->traffic_at);
	st->traffic_at = now;
	st->traffic_base = bytes;
	return moved;
}

/* Waits for events until t ns from now, polling first when busy_poll says so. */
static int wait_events(struct ts_stack *st, struct epoll_event *evs, int max, uint64_t t)
{
	uint64_t budget = (uint64_t)st->opt.busy_poll_us * 1000ull, t0 = now_ns(NULL);
	struct timespec ts = { (time_t)(t / 1000000000ull), (long)(t % 1000000000ull) };
	static const struct timespec zero;
	int n = 0;

	if (measure_traffic(st, t0) && st->busy && budget && !st->bulk) {
		uint64_t until = t0 + (budget < t ? budget : t);

		while ((n = epoll_pwait2(st->epfd, evs, max, &zero, NULL)) == 0 && now_ns(NULL) < until)
			sched_yield();
	}
	if (n == 0)
		n = epoll_pwait2(st->epfd, evs, max, &ts, NULL);
	st->busy = n > 0 && now_ns(NULL) - t0 < budget;
	return n;
}

void ts_loop_run(struct ts_stack *st)
{
	struct epoll_event evs[64];

	while (!__atomic_load_n(&st->stopping, __ATOMIC_SEQ_CST)) {
		if (st->continuation && continuation_done(st))
			break;
		uint64_t t = next_timeout_ns(st);
		int n;

		/* What this pass produced leaves together (outer.h). */
		ts_loop_flush(st);
		n = wait_events(st, evs, 64, t);
		st->passes++;

		for (int i = 0; i < n; i++) {
			struct ts_pollable *p = evs[i].data.ptr;

			if (!p->dead)
				p->handler(st, p, evs[i].events);
		}
		free_graves(st);
		sys_check_timeouts();
		ts_bridge_tcp_hold_syns(st, now_ns(NULL));
		ts_netif_drain(st);
		ts_bridge_reap(st); /* writes out what was received first */
	}
	free_graves(st);
}

void *ts_loop_main(void *arg)
{
	struct ts_stack *st = arg;

	ts_gap_wait(st->gap_fd);
	st->ev_poll.handler = commands_ready;
	st->udp_poll.handler = udp_readable;
	ts_loop_watch(st, st->evfd, &st->ev_poll, EPOLLIN);
	ts_loop_watch(st, st->udp_fd, &st->udp_poll, EPOLLIN);
	ts_udp_relay_watch(st);
	ts_server_watch(st);
	ts_loop_run(st);
	ts_server_stop(st);
	ts_doorbell_close_all(st);
	ts_listen_close_all(st);
	ts_bridge_close_all(st);
	ts_loop_flush(st);
	free_graves(st);
	if (st->opt.stats_ms)
		ts_stats_log(st);
	return NULL;
}
