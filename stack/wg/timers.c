/* SPDX-License-Identifier: MIT */
/* Protocol timers with the kernel's semantics (drivers/net/wireguard/timers.c),
 * as deadlines instead of timer objects:
 *
 * - retransmit_handshake: no response REKEY_TIMEOUT + jitter after an
 *   initiation; retry while a whole REKEY_TIMEOUT still fits into REKEY_ATTEMPT_TIME
 *   from the round's first initiation, then give up, drop what was staged and tell
 *   the loop. (The
 *   whitepaper's bound, as boringtun keeps it; the kernel counts retries instead,
 *   MAX_TIMER_HANDSHAKES + 1 of them, and gives up about 100 s into the round,
 *   so a connect to a dead peer failed 10 s past REKEY_ATTEMPT_TIME.)
 * - send_keepalive: data came in and we sent nothing back for KEEPALIVE_TIMEOUT,
 *   so an empty packet tells the peer its data arrived.
 * - new_handshake: we sent data and heard nothing back (not even a keepalive) for
 *   KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter, so the session may be dead.
 * - zero_key_material: no new session for 3 * REJECT_AFTER_TIME; wipe the keys.
 * - persistent_keepalive: the configured interval passed without any traffic.
 */
#include <math.h>
#include <sodium.h>

#include "log.h"
#include "peer.h"
#include "timers.h"

#define NSEC_PER_SEC 1e9

static uint64_t scaled(double seconds, double scale)
{
	double ns = seconds * scale * NSEC_PER_SEC;

	/* A factor large enough to overflow means "never", not a wrapped deadline. */
	return ns >= 0x1p63 ? (1ULL << 63) : (uint64_t)(ns + 0.5);
}

void wg_timer_params_default(struct wg_timer_params *p, double scale)
{
	if (!(scale > 0) || isinf(scale))
		scale = 1;
	p->rekey_after_time = scaled(REKEY_AFTER_TIME, scale);
	p->reject_after_time = scaled(REJECT_AFTER_TIME, scale);
	p->rekey_attempt_time = scaled(REKEY_ATTEMPT_TIME, scale);
	p->rekey_timeout = scaled(REKEY_TIMEOUT, scale);
	p->keepalive_timeout = scaled(KEEPALIVE_TIMEOUT, scale);
	p->cookie_secret_max_age = scaled(COOKIE_SECRET_MAX_AGE, scale);
	p->rekey_timeout_jitter_max = scaled(REKEY_TIMEOUT_JITTER_MAX_MS / 1000.0, scale);
	p->rekey_after_messages = REKEY_AFTER_MESSAGES;
	p->reject_after_messages = REJECT_AFTER_MESSAGES;
}

uint64_t wg_timers_jitter(uint64_t max)
{
	uint64_t r;

	if (!max)
		return 0;
	randombytes_buf(&r, sizeof(r));
	return max == UINT64_MAX ? r : r % (max + 1);
}

static uint64_t after(const struct wg_peer *peer, uint64_t delay)
{
	uint64_t now = peer->dev->now;

	return delay >= WG_TIMER_OFF - now ? WG_TIMER_OFF - 1 : now + delay;
}

/* When the current round of handshake attempts is over. */
static uint64_t round_end(const struct wg_peer *peer)
{
	uint64_t start = peer->timers.handshake_round_start;
	uint64_t span = peer->dev->params.rekey_attempt_time;

	return span >= WG_TIMER_OFF - start ? WG_TIMER_OFF - 1 : start + span;
}

void wg_timers_init(struct wg_peer *peer)
{
	wg_timers_stop(peer);
	peer->timers.handshake_attempts = 0;
	peer->timers.need_another_keepalive = false;
	peer->timers.sent_lastminute_handshake = false;
}

void wg_timers_stop(struct wg_peer *peer)
{
	peer->timers.retransmit_handshake = WG_TIMER_OFF;
	peer->timers.send_keepalive = WG_TIMER_OFF;
	peer->timers.new_handshake = WG_TIMER_OFF;
	peer->timers.zero_key_material = WG_TIMER_OFF;
	peer->timers.persistent_keepalive = WG_TIMER_OFF;
}

/* ---- events from the send and receive paths ---- */

/* Data (not a keepalive) went out: expect something back before long. */
void wg_timers_data_sent(struct wg_peer *peer)
{
	const struct wg_timer_params *p = &peer->dev->params;

	if (peer->timers.new_handshake == WG_TIMER_OFF)
		peer->timers.new_handshake = after(peer, p->keepalive_timeout + p->rekey_timeout +
						   wg_timers_jitter(p->rekey_timeout_jitter_max));
}

/* Data came in: acknowledge it within KEEPALIVE_TIMEOUT unless we send anyway. */
void wg_timers_data_received(struct wg_peer *peer)
{
	if (peer->timers.send_keepalive == WG_TIMER_OFF)
		peer->timers.send_keepalive = after(peer, peer->dev->params.keepalive_timeout);
	else
		peer->timers.need_another_keepalive = true;
}

/* Anything authenticated we send acknowledges what we received. */
void wg_timers_any_authenticated_packet_sent(struct wg_peer *peer)
{
	peer->timers.send_keepalive = WG_TIMER_OFF;
}

/* Anything authenticated we receive shows the session is alive. */
void wg_timers_any_authenticated_packet_received(struct wg_peer *peer)
{
	peer->timers.new_handshake = WG_TIMER_OFF;
}

/* Any authenticated packet either way keeps NAT state fresh. */
void wg_timers_any_authenticated_packet_traversal(struct wg_peer *peer)
{
	if (peer->persistent_keepalive_interval)
		peer->timers.persistent_keepalive = after(peer, peer->persistent_keepalive_interval);
}

/* The first initiation of a round starts its REKEY_ATTEMPT_TIME; the last retry's
 * timer ends with the round (it still waited REKEY_TIMEOUT: see below). */
void wg_timers_handshake_initiated(struct wg_peer *peer)
{
	const struct wg_timer_params *p = &peer->dev->params;
	uint64_t next, end;

	if (!peer->timers.handshake_attempts)
		peer->timers.handshake_round_start = peer->dev->now;
	next = after(peer, p->rekey_timeout + wg_timers_jitter(p->rekey_timeout_jitter_max));
	end = round_end(peer);
	peer->timers.retransmit_handshake = next < end ? next : end;
}

void wg_timers_handshake_complete(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;

	peer->timers.retransmit_handshake = WG_TIMER_OFF;
	peer->timers.handshake_attempts = 0;
	peer->timers.sent_lastminute_handshake = false;
	peer->handshake_failed = false;
	peer->stats.handshakes_completed++;
	peer->stats.last_handshake_ns = dev->now;
	ts_dbg("peer %d: handshake complete", peer->index);
	if (dev->ops.peer_event)
		dev->ops.peer_event(dev->ops.ctx, peer->index, WG_PEER_HANDSHAKE_DONE);
}

/* A new session exists: its keys must not outlive it by more than 3 * REJECT_AFTER_TIME. */
void wg_timers_session_derived(struct wg_peer *peer)
{
	peer->timers.zero_key_material = after(peer, 3 * peer->dev->params.reject_after_time);
}

/* ---- expiry ---- */

static void give_up(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;

	peer->timers.send_keepalive = WG_TIMER_OFF;
	wg_peer_purge_staged(peer);
	if (peer->timers.zero_key_material == WG_TIMER_OFF)
		wg_timers_session_derived(peer);
	/* A rekey that failed while the old session still works is not an outage. */
	ts_info("peer %d: handshake did not complete after %u attempts, giving up",
		peer->index, peer->timers.handshake_attempts + 1);
	if (wg_peer_has_session(peer))
		return;
	peer->handshake_failed = true;
	if (dev->ops.peer_event)
		dev->ops.peer_event(dev->ops.ctx, peer->index, WG_PEER_HANDSHAKE_FAILED);
}

static void expired_retransmit_handshake(struct wg_peer *peer)
{
	peer->timers.retransmit_handshake = WG_TIMER_OFF;
	/* A retry whose full wait would outlast the round is not sent: the round ends
	 * within REKEY_ATTEMPT_TIME, and at least REKEY_TIMEOUT after the last
	 * initiation, so a new round may begin at once. */
	if (after(peer, peer->dev->params.rekey_timeout) > round_end(peer)) {
		give_up(peer);
		return;
	}
	peer->timers.handshake_attempts++;
	wg_packet_send_initiation(peer, true);
}

static void expired_send_keepalive(struct wg_peer *peer)
{
	peer->timers.send_keepalive = WG_TIMER_OFF;
	wg_packet_send_keepalive(peer);
	if (peer->timers.need_another_keepalive) {
		peer->timers.need_another_keepalive = false;
		peer->timers.send_keepalive = after(peer, peer->dev->params.keepalive_timeout);
	}
}

static void expired_new_handshake(struct wg_peer *peer)
{
	peer->timers.new_handshake = WG_TIMER_OFF;
	ts_dbg("peer %d: no reply to our data, new handshake", peer->index);
	wg_packet_send_initiation(peer, false);
}

static void expired_zero_key_material(struct wg_peer *peer)
{
	peer->timers.zero_key_material = WG_TIMER_OFF;
	ts_dbg("peer %d: no new session in %llu s, wiping keys", peer->index,
	       (unsigned long long)(3 * peer->dev->params.reject_after_time / 1000000000));
	wg_peer_handshake_clear(peer);
	wg_peer_keypairs_clear(peer);
}

static void expired_persistent_keepalive(struct wg_peer *peer)
{
	peer->timers.persistent_keepalive = WG_TIMER_OFF;
	if (peer->persistent_keepalive_interval)
		wg_packet_send_keepalive(peer);
}

static uint64_t min_deadline(const struct wg_peer_timers *t)
{
	uint64_t d = t->retransmit_handshake;

	if (t->send_keepalive < d)
		d = t->send_keepalive;
	if (t->new_handshake < d)
		d = t->new_handshake;
	if (t->zero_key_material < d)
		d = t->zero_key_material;
	if (t->persistent_keepalive < d)
		d = t->persistent_keepalive;
	return d;
}

/* Each handler only sets deadlines in the future, so one pass fires all that is due. */
uint64_t wg_timers_run(struct wg_peer *peer)
{
	struct wg_peer_timers *t = &peer->timers;
	uint64_t now = peer->dev->now;

	if (t->retransmit_handshake <= now)
		expired_retransmit_handshake(peer);
	if (t->send_keepalive <= now)
		expired_send_keepalive(peer);
	if (t->new_handshake <= now)
		expired_new_handshake(peer);
	if (t->zero_key_material <= now)
		expired_zero_key_material(peer);
	if (t->persistent_keepalive <= now)
		expired_persistent_keepalive(peer);
	return min_deadline(t);
}
