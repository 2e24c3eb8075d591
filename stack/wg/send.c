/* SPDX-License-Identifier: MIT */
/* The outbound path: handshake messages, cookie replies, and data sealed on the
 * current keypair (drivers/net/wireguard/send.c is the model). Packets wait in
 * the peer's staged queue until a usable keypair exists. */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "peer.h"

static int send_to_peer(struct wg_peer *peer, const void *buf, size_t len)
{
	struct wg_device *dev = peer->dev;
	int ret;

	if (!peer->endpoint_len)
		return -EDESTADDRREQ;
	ret = dev->ops.send_udp(dev->ops.ctx, (const struct sockaddr *)&peer->endpoint,
				peer->endpoint_len, buf, len);
	if (!ret) {
		peer->stats.tx_bytes += len;
		dev->traffic += len;
	}
	return ret;
}

static void timestamp_now(struct wg_device *dev, uint8_t ts[NOISE_TIMESTAMP_LEN])
{
	if (dev->ops.tai64n)
		dev->ops.tai64n(dev->ops.ctx, ts);
	else
		noise_tai64n_now(ts);
}

static bool handshake_rate_limited(struct wg_peer *peer)
{
	return peer->have_sent_handshake &&
	       !wg_birthdate_has_expired(peer->last_sent_handshake,
					 peer->dev->params.rekey_timeout, peer->dev->now);
}

static void handshake_sent(struct wg_peer *peer)
{
	peer->last_sent_handshake = peer->dev->now;
	peer->have_sent_handshake = true;
}

/* A round of retransmissions runs on its own timer: a new request while one is
 * running neither sends nor restarts the count. (The kernel's resets the count,
 * so steady traffic to a dead peer never gave up; a waiting connect needs that
 * answer.) */
void wg_packet_send_initiation(struct wg_peer *peer, bool is_retry)
{
	struct wg_device *dev = peer->dev;
	struct msg_initiation msg;
	uint8_t ts[NOISE_TIMESTAMP_LEN];
	uint32_t index;

	if (!is_retry) {
		if (peer->timers.retransmit_handshake != WG_TIMER_OFF)
			return;
		peer->timers.handshake_attempts = 0;
	}
	/* One initiation per REKEY_TIMEOUT; a retransmission is already that late
	 * after the last initiation, and must not be held back by a response. */
	if (!peer->endpoint_len || (!is_retry && handshake_rate_limited(peer)))
		return;
	ts_dbg("peer %d: sending handshake initiation%s", peer->index, is_retry ? " (retry)" : "");
	handshake_sent(peer);
	index = wg_peer_handshake_new_index(peer);
	timestamp_now(dev, ts);
	if (noise_create_initiation(&peer->handshake, &dev->identity, index, ts, &msg)) {
		/* Unusable peer key: keep the retry clock running so it gives up. */
		wg_peer_handshake_clear(peer);
		wg_timers_handshake_initiated(peer);
		return;
	}
	cookie_add_macs(&peer->cookie, (uint8_t *)&msg, sizeof(msg), dev->now);
	peer->stats.initiations_sent++;
	if (!sodium_is_zero(msg.mac2, sizeof(msg.mac2)))
		peer->stats.initiations_sent_with_mac2++;
	wg_timers_any_authenticated_packet_traversal(peer);
	wg_timers_any_authenticated_packet_sent(peer);
	send_to_peer(peer, &msg, sizeof(msg));
	wg_timers_handshake_initiated(peer);
}

/* The responder derives its keypair right away; it waits in next until the
 * initiator's first data packet confirms it. */
void wg_packet_send_response(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;
	struct msg_response msg;
	struct wg_keypair *kp;
	uint32_t index;

	handshake_sent(peer);
	index = wg_peer_handshake_new_index(peer);
	kp = wg_peer_keypair_slot(peer);
	if (!kp || noise_create_response(&peer->handshake, index, &msg) ||
	    noise_derive_keypair(&peer->handshake, &kp->kp, dev->now)) {
		wg_peer_handshake_clear(peer);
		return;
	}
	wg_peer_keypair_add(peer, kp);
	cookie_add_macs(&peer->cookie, (uint8_t *)&msg, sizeof(msg), dev->now);
	wg_timers_session_derived(peer);
	wg_timers_any_authenticated_packet_traversal(peer);
	wg_timers_any_authenticated_packet_sent(peer);
	send_to_peer(peer, &msg, sizeof(msg));
}

void wg_packet_send_cookie(struct wg_device *dev, const uint8_t *msg, size_t len,
			   uint32_t sender_index, const uint8_t *src, size_t src_len,
			   const struct sockaddr *to, socklen_t tolen)
{
	struct msg_cookie_reply reply;

	cookie_create_reply(&dev->cookie_checker, &reply, msg, len, sender_index, src, src_len,
			    dev->now);
	dev->ops.send_udp(dev->ops.ctx, to, tolen, (const uint8_t *)&reply, sizeof(reply));
}

/* ---- data ---- */

/* To a multiple of 16, but a full-size packet is not pushed past the MTU. */
static size_t padded_len(size_t len, size_t mtu)
{
	size_t padded = (len + MESSAGE_PADDING_MULTIPLE - 1) & ~(size_t)(MESSAGE_PADDING_MULTIPLE - 1);

	if (padded > mtu)
		padded = len > mtu ? len : mtu;
	return padded;
}

static bool keypair_usable(struct wg_peer *peer, struct wg_keypair *kp)
{
	if (!kp || !kp->sending_valid)
		return false;
	if (wg_birthdate_has_expired(kp->kp.birth, peer->dev->params.reject_after_time,
				     peer->dev->now)) {
		kp->sending_valid = false;
		return false;
	}
	return true;
}

static int seal_and_send(struct wg_peer *peer, struct wg_keypair *kp,
			 const struct wg_staged_packet *pkt)
{
	struct wg_device *dev = peer->dev;
	size_t padded = padded_len(pkt->len, dev->mtu);
	ssize_t n;

	if (kp->kp.send_counter >= dev->params.reject_after_messages)
		return -EKEYEXPIRED;
	if (pkt->len)
		memcpy(dev->plain, pkt->data, pkt->len);
	memset(dev->plain + pkt->len, 0, padded - pkt->len);
	n = noise_seal_data(&kp->kp, dev->wire, dev->plain, padded);
	if (n < 0)
		return (int)n;
	wg_timers_any_authenticated_packet_traversal(peer);
	wg_timers_any_authenticated_packet_sent(peer);
	if (pkt->len)
		wg_timers_data_sent(peer);
	send_to_peer(peer, dev->wire, (size_t)n);
	return 0;
}

/* Only the initiator of a session rekeys it on time; either side on volume. */
static void keep_key_fresh(struct wg_peer *peer)
{
	const struct wg_timer_params *p = &peer->dev->params;
	struct wg_keypair *kp = peer->current;

	if (!kp || !kp->sending_valid)
		return;
	if (kp->kp.send_counter > p->rekey_after_messages ||
	    (kp->kp.is_initiator &&
	     wg_birthdate_has_expired(kp->kp.birth, p->rekey_after_time, peer->dev->now)))
		wg_packet_send_initiation(peer, false);
}

/* The common case, without the staged queue's copy: nothing waits before this packet
 * and the session can take it. Returns false when it must be staged instead. */
bool wg_packet_send_direct(struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	struct wg_keypair *kp = peer->current;
	struct wg_staged_packet p = { .data = (uint8_t *)pkt, .len = len };

	if (peer->staged_count || !keypair_usable(peer, kp))
		return false;
	if (seal_and_send(peer, kp, &p) == -EKEYEXPIRED) {
		kp->sending_valid = false;
		return false;
	}
	keep_key_fresh(peer);
	return true;
}

void wg_packet_send_staged(struct wg_peer *peer)
{
	struct wg_keypair *kp = peer->current;
	struct wg_staged_packet *pkt;

	if (!peer->staged_count)
		return;
	if (!keypair_usable(peer, kp))
		goto no_key;
	while ((pkt = wg_peer_staged_head(peer))) {
		if (seal_and_send(peer, kp, pkt) == -EKEYEXPIRED) {
			kp->sending_valid = false;
			goto no_key;
		}
		wg_peer_staged_pop(peer);
	}
	keep_key_fresh(peer);
	return;

no_key:
	/* What is left stays staged until the new session exists. */
	wg_packet_send_initiation(peer, false);
}

void wg_packet_send_keepalive(struct wg_peer *peer)
{
	/* Anything staged goes out instead and serves as the keepalive. */
	if (!peer->staged_count && wg_peer_stage(peer, NULL, 0))
		return;
	wg_packet_send_staged(peer);
}
