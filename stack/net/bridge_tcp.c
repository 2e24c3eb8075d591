/* SPDX-License-Identifier: MIT */
/* TCP bridging: bytes flow between the socketpair end and the lwIP pcb with
 * backpressure both ways. A full socketpair means no tcp_recved, so the remote's
 * window closes; an empty tcp_sndbuf means we stop reading the socketpair. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "bridge.h"
#include "lwip/priv/tcp_priv.h"
#include "log.h"
#include "sys.h"

#define IOV_MAX_BATCH 64
#define UNSENT_SLACK (64u * 1024u)

/* Each pcb in TIME_WAIT keeps its local port for 2 * TCP_MSL (two minutes), and lwIP
 * draws ephemeral ports from a range of 16384: a program that opened and closed more
 * than 16383 connections within two minutes (about 140 a second) had every connect
 * fail. Like Linux's tcp_max_tw_buckets, only so many stay in TIME_WAIT, half the
 * range: the oldest makes room for a new connection, as lwIP itself drops one when
 * memory runs out (tcp_kill_timewait). */
#define TIME_WAIT_MAX 8192

static void tcp_try_close(struct ts_bridge *b);

static void detach_pcb(struct ts_bridge *b)
{
	struct tcp_pcb *pcb = b->tcp;

	if (!pcb)
		return;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	b->tcp = NULL;
}

/* Writes what lwIP handed us to the application; acknowledges only what it took. */
void ts_bridge_tcp_abort(struct ts_bridge *b, int error)
{
	struct tcp_pcb *pcb = b->tcp;

	b->fail_errno = error;
	if (pcb && pcb->state != TIME_WAIT) {
		tcp_abort(pcb); /* calls on_err, which finishes the bridge */
		return;
	}
	/* lwIP frees a pcb in TIME_WAIT without a word: the bridge ends here. */
	if (pcb) {
		detach_pcb(b);
		tcp_abort(pcb);
	}
	ts_bridge_finish(b);
}

static int flush_to_app(struct ts_bridge *b)
{
	while (b->to_app) {
		struct iovec iov[IOV_MAX_BATCH];
		struct pbuf *q = b->to_app;
		size_t off = b->to_app_off;
		int n = 0;
		ssize_t w;

		for (; q && n < IOV_MAX_BATCH; q = q->next, off = 0)
			iov[n++] = (struct iovec){ (char *)q->payload + off, q->len - off };
		w = ts_sys()->writev(b->fd, iov, n);
		if (w < 0)
			return errno == EAGAIN ? 0 : -errno;
		/* Consumes what was written, and empty pbufs, which writev cannot. */
		for (size_t left = (size_t)w; b->to_app;) {
			struct pbuf *p = b->to_app;
			size_t avail = p->len - b->to_app_off;

			if (left < avail) {
				b->to_app_off += left;
				break;
			}
			left -= avail;
			b->to_app = p->next;
			b->to_app_off = 0;
			p->next = NULL;
			/* The chain link held the reference to the next pbuf; it is ours now. */
			pbuf_free(p);
		}
		for (size_t done = (size_t)w; done > 0 && b->tcp;) {
			u16_t chunk = done > 0xffff ? 0xffff : (u16_t)done;

			tcp_recved(b->tcp, chunk);
			done -= chunk;
		}
	}
	return 0;
}

/* Whether lwIP should take more of the application's data now. Besides lwIP's own
 * limits, what it holds unsent stays within what it may send soon (the window, plus
 * one read's worth): beyond that the data waits in the socketpair just as well, and
 * lwIP's tcp_write walks the whole unsent queue on every call. */
static bool wants_data(const struct tcp_pcb *pcb)
{
	u32_t unsent = pcb->snd_lbb - pcb->snd_nxt;
	u32_t wnd = pcb->cwnd < pcb->snd_wnd ? pcb->cwnd : pcb->snd_wnd;

	/* Unsent segments while every byte buffered has been sent once: they are
	 * retransmissions (tcp_rexmit, tcp_sack.c), and tcp_write would append new data
	 * to the last of them, below bytes already sent. New data waits until they
	 * leave. */
	if (pcb->unsent && pcb->snd_lbb == pcb->snd_nxt)
		return false;
	return tcp_sndbuf(pcb) > 0 && tcp_sndqueuelen(pcb) < TCP_SND_QUEUELEN - 8 &&
	       unsent < wnd + UNSENT_SLACK;
}

static void update_events(struct ts_bridge *b)
{
	uint32_t ev = 0;

	if (!b->app_eof && b->tcp && wants_data(b->tcp))
		ev |= EPOLLIN;
	if (b->to_app)
		ev |= EPOLLOUT;
	ts_bridge_set_events(b, ev);
}

static void app_to_remote(struct ts_bridge *b)
{
	static char buf[65536];

	while (b->tcp && !b->app_eof) {
		size_t room = tcp_sndbuf(b->tcp);
		ssize_t n;

		if (!wants_data(b->tcp))
			break;
		n = ts_sys()->read(b->fd, buf, room < sizeof(buf) ? room : sizeof(buf));
		if (n > 0) {
			if (tcp_write(b->tcp, buf, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK) {
				ts_err("tcp_write failed; connection aborted");
				ts_bridge_tcp_abort(b, ENOMEM);
				return;
			}
		} else if (n == 0) {
			b->app_eof = true;
			tcp_shutdown(b->tcp, 0, 1); /* FIN after the queued data */
		} else {
			if (errno != EAGAIN && errno != EINTR) {
				ts_bridge_tcp_abort(b, ECONNRESET);
				return;
			}
			break;
		}
	}
	if (b->tcp)
		tcp_output(b->tcp);
}

static void remote_fin_to_app(struct ts_bridge *b)
{
	if (b->remote_fin && !b->to_app && !b->fin_to_app) {
		ts_sys()->shutdown(b->fd, SHUT_WR);
		b->fin_to_app = true;
	}
}

static void tcp_fd_event(struct ts_stack *st, struct ts_pollable *p, uint32_t events)
{
	struct ts_bridge *b = (struct ts_bridge *)p;

	(void)st;
	if (b->dead)
		return;
	/* Still connecting, and the application gave up (closed its end): abort. */
	if (!b->reported) {
		if ((events & (EPOLLRDHUP | EPOLLHUP)) && b->tcp)
			ts_bridge_tcp_abort(b, ECONNABORTED);
		return;
	}
	if ((events & EPOLLOUT) && flush_to_app(b) < 0) {
		/* The application is gone: reset, as the kernel does. */
		ts_bridge_tcp_abort(b, EPIPE);
		return;
	}
	remote_fin_to_app(b);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		app_to_remote(b);
	if (b->dead)
		return;
	tcp_try_close(b);
	if (!b->dead)
		update_events(b);
}

static void tcp_try_close(struct ts_bridge *b)
{
	if (b->dead || !b->app_eof || !b->fin_to_app)
		return;
	if (b->tcp) {
		struct tcp_pcb *pcb = b->tcp;

		detach_pcb(b);
		if (tcp_close(pcb) != ERR_OK)
			tcp_abort(pcb);
	}
	ts_bridge_finish(b);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct ts_bridge *b = arg;

	(void)pcb;
	(void)err;
	if (!b || b->dead) {
		if (p)
			pbuf_free(p);
		return ERR_OK;
	}
	if (!p) {
		b->remote_fin = true;
	} else {
		/* Linked by hand at the tail: pbuf_cat walks the whole chain to keep
		 * tot_len, which nothing here reads. Each link holds its pbuf's one
		 * reference, as pbuf_cat's do. */
		if (b->to_app)
			b->to_app_tail->next = p;
		else
			b->to_app = p, b->to_app_off = 0;
		for (b->to_app_tail = p; b->to_app_tail->next; b->to_app_tail = b->to_app_tail->next)
			;
	}
	/* Written out at the end of this pass, with whatever else arrives in it: one
	 * write and one wake-up of the application per batch of packets, not per
	 * segment. */
	if (!b->deliver_pending) {
		b->deliver_pending = true;
		b->deliver_next = b->st->deliver;
		b->st->deliver = b;
	}
	return ERR_OK;
}

static void deliver(struct ts_bridge *b)
{
	if (flush_to_app(b) < 0) {
		ts_bridge_tcp_abort(b, EPIPE);
		return;
	}
	remote_fin_to_app(b);
	tcp_try_close(b);
	if (!b->dead)
		update_events(b);
}

/* lwIP's hook (lwipopts.h), before it takes a segment: only reads. A pcb is ours when
 * its receive callback is the bridge's (a listener's pcbs carry a listener). */
err_t ts_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
		      u8_t *opt2, struct pbuf *p)
{
	struct ts_bridge *b;

	(void)p;
	if (pcb->state == LISTEN || pcb->recv != on_recv || !(b = pcb->callback_arg) || b->dead ||
	    !(TCPH_FLAGS(hdr) & TCP_ACK))
		return ERR_OK;
	ts_tcp_sack_parse(&b->sack, pcb, hdr, optlen, opt1len, opt2);
	if (!b->sack_pending && (b->sack.n || b->sack.recovering)) {
		b->sack_pending = true;
		b->sack_next = b->st->sack;
		b->st->sack = b;
	}
	return ERR_OK;
}

void ts_bridge_tcp_after_input(struct ts_stack *st)
{
	struct ts_bridge *b;

	while ((b = st->sack)) {
		st->sack = b->sack_next;
		b->sack_pending = false;
		/* At least 10 ms: lwIP's clock has that resolution. */
		if (!b->dead && b->tcp &&
		    ts_tcp_sack_recover(&b->sack, b->tcp, ts_now_ns(),
					b->cc.min_rtt > 10000000u ? b->cc.min_rtt : 10000000u,
					ts_tcp_cc_loss_floor(&b->cc)))
			tcp_output(b->tcp);
	}
}

void ts_bridge_tcp_deliver(struct ts_stack *st)
{
	struct ts_bridge *b;

	/* Bridges are freed only by ts_bridge_reap, after this: a dead one is skipped. */
	while ((b = st->deliver)) {
		st->deliver = b->deliver_next;
		b->deliver_pending = false;
		if (!b->dead)
			deliver(b);
	}
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct ts_bridge *b = arg;

	if (!b || b->dead)
		return ERR_OK;
	(void)len;
	/* In SACK recovery the window follows tcp_sack.c; the path is measured always. */
	ts_tcp_cc_on_ack(&b->cc, pcb, ts_tcp_sack_held(&b->sack), b->sack.recovering,
			 ts_now_ns(), b->st->passes);
	ts_tcp_rto_floor(pcb);
	update_events(b); /* room again: resume reading the application */
	return ERR_OK;
}

static int connect_errno(err_t err)
{
	switch (err) {
	case ERR_RST:
		return ECONNREFUSED;
	case ERR_ABRT:
		return ETIMEDOUT;
	default:
		return ECONNRESET;
	}
}

static void on_err(void *arg, err_t err)
{
	struct ts_bridge *b = arg;

	if (!b)
		return;
	b->tcp = NULL; /* lwIP has freed the pcb */
	if (!b->fail_errno)
		b->fail_errno = b->reported ? ECONNRESET : connect_errno(err);
	ts_bridge_finish(b);
}

/* The connect's round trip, or 0 where it says nothing: a SYN resent or held while the
 * WireGuard handshake ran (over the first SYN's 1 s timeout) was not one round trip. */
static uint64_t handshake_rtt(const struct ts_bridge *b)
{
	uint64_t t = ts_now_ns() - b->syn_at;

	return t < 1000000000ull ? t : 0;
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct ts_bridge *b = arg;

	(void)err;
	if (!b || b->dead)
		return ERR_OK;
	ts_tcp_rto_init(pcb, handshake_rtt(b));
	ts_bridge_report(b, 0);
	ts_bridge_discard(b);
	app_to_remote(b);
	if (!b->dead)
		update_events(b);
	return ERR_OK;
}

static void apply_options(struct tcp_pcb *pcb, const struct ts_bridge_req *r)
{
	if (r->nodelay)
		tcp_nagle_disable(pcb);
	else
		tcp_nagle_enable(pcb);
	if (!r->keepalive)
		ip_reset_option(pcb, SOF_KEEPALIVE);
	if (r->keepalive) {
		ip_set_option(pcb, SOF_KEEPALIVE);
		if (r->keepidle > 0)
			pcb->keep_idle = (u32_t)r->keepidle * 1000;
		if (r->keepintvl > 0)
			pcb->keep_intvl = (u32_t)r->keepintvl * 1000;
		if (r->keepcnt > 0)
			pcb->keep_cnt = (u32_t)r->keepcnt;
	}
}

/* The bridge and its pcb, each the other's from now on. */
static void attach_pcb(struct ts_bridge *b, struct tcp_pcb *pcb)
{
	b->tcp = pcb;
	b->poll.handler = tcp_fd_event;
	tcp_arg(pcb, b);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
}

/* Keeps the newest TIME_WAIT_MAX - 1 (tcp_tw_pcbs is newest first), leaving room for
 * this connection's. A pcb a bridge still holds (the remote closed first and our data
 * is still being flushed) is ended by its bridge, never here. The walk is no longer
 * than the one tcp_new_port makes for every connect. */
static void time_wait_trim(void)
{
	struct tcp_pcb *pcb = tcp_tw_pcbs, *next;

	for (unsigned n = 0; pcb && n < TIME_WAIT_MAX - 1; n++)
		pcb = pcb->next;
	for (; pcb; pcb = next) {
		next = pcb->next;
		if (!pcb->callback_arg)
			tcp_abort(pcb); /* in TIME_WAIT: freed without a segment or a callback */
	}
}

/* Why tcp_connect refused, as the kernel's connect says it. */
static int tcp_connect_errno(err_t err)
{
	switch (err) {
	case ERR_BUF:
		return EADDRNOTAVAIL; /* no ephemeral port left */
	case ERR_USE:
		return EADDRINUSE;
	case ERR_MEM:
		return ENOBUFS;
	default:
		return EHOSTUNREACH;
	}
}

/*
 * lwIP resends a SYN every 3 s (it does not back off in SYN_SENT) and gives the
 * connect up after TCP_SYNMAXRTX (6) of them: about 18 s. A SYN sent before the peer
 * has a session waits for the handshake, which may take up to REKEY_ATTEMPT_TIME
 * (90 s): on a lossy path (20% each way) about one connect in 60 failed with
 * ETIMEDOUT while the handshake still went on and would have succeeded. So retries
 * made while the handshake runs do not count: the connect ends with the round
 * (EHOSTUNREACH, ts_bridge_peer_failed) or, once a session exists, after lwIP's
 * usual retries, as a kernel connect waits out its own. Checked often enough that no
 * count reaches the limit between two checks.
 */
#define SYN_HOLD_EVERY_NS 250000000ull

void ts_bridge_tcp_hold_syns(struct ts_stack *st, uint64_t now)
{
	if (now - st->syn_hold_at < SYN_HOLD_EVERY_NS)
		return;
	st->syn_hold_at = now;
	for (struct ts_bridge *b = st->bridges; b; b = b->next)
		if (!b->dead && b->tcp && b->tcp->state == SYN_SENT && b->peer >= 0 &&
		    wg_device_peer_handshaking(st->dev, b->peer))
			b->tcp->nrtx = 0;
}

int ts_bridge_tcp_open(struct ts_stack *st, struct ts_bridge *b)
{
	err_t err;
	ip_addr_t rip, lip;
	u16_t rport, lport = 0;
	struct tcp_pcb *pcb;

	(void)st;
	if (ts_ip_from_sockaddr(&b->req.remote, &rip, &rport) < 0)
		return -EAFNOSUPPORT;
	pcb = tcp_new_ip_type(IP_GET_TYPE(&rip));
	if (!pcb)
		return -ENOMEM;
	/* The first SYN's timeout: RFC 6298's 1 s, as Linux, not lwIP's 3 s (wrk with
	 * 1000 connections counted SYNs lost in the burst as 2 s timeouts). */
	pcb->rto = (s16_t)(1000 / TCP_SLOW_INTERVAL);
	b->syn_at = ts_now_ns();
	attach_pcb(b, pcb);
	apply_options(pcb, &b->req);
	if (b->req.local.ss_family && ts_ip_from_sockaddr(&b->req.local, &lip, &lport) == 0 &&
	    tcp_bind(pcb, &lip, lport) != ERR_OK) {
		detach_pcb(b);
		tcp_abort(pcb);
		return -EADDRINUSE;
	}
	time_wait_trim();
	err = tcp_connect(pcb, &rip, rport, on_connected);
	if (err != ERR_OK) {
		detach_pcb(b);
		tcp_abort(pcb);
		return -tcp_connect_errno(err);
	}
	ts_bridge_started(b);
	/* Notice an application that closes its end before the outcome. */
	ts_bridge_set_events(b, EPOLLRDHUP);
	return 0;
}

/* An lwIP connection that arrived on a listener, bridged to b->fd (the stack's end of
 * the socketpair whose other end waits for the application's claim: doorbell.c). */
void ts_bridge_tcp_adopt(struct ts_bridge *b, struct tcp_pcb *pcb)
{
	/* The handshake was not timed here; lwIP's sample of it follows. */
	ts_tcp_rto_init(pcb, 0);
	attach_pcb(b, pcb);
	update_events(b);
}

int ts_bridge_options_id(struct ts_stack *st, uint64_t id, const struct ts_bridge_req *opts)
{
	for (struct ts_bridge *b = st->bridges; b; b = b->next) {
		if (b->id != id || b->dead)
			continue;
		if (b->tcp)
			apply_options(b->tcp, opts);
		if (b->udp)
			b->udp_recverr = opts->recverr;
		return 0;
	}
	return -ENOENT;
}
