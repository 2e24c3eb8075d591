/* SPDX-License-Identifier: MIT */
/* The inbound path (drivers/net/wireguard/receive.c is the model). Everything
 * here is hostile until proven otherwise: lengths are exact or checked before
 * any read, the type word's reserved bytes must be zero, handshakes need a valid
 * mac1 (and mac2 under load), data must open under a keypair we hold, and only
 * then does a packet move timers, the endpoint or the keypairs. */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "peer.h"
#include "ratelimiter.h"

#define NSEC_PER_SEC 1000000000ULL
/* How long the device counts as loaded after the last excess message. */
#define UNDER_LOAD_AFTER NSEC_PER_SEC
#define SRC_BYTES_MAX (16 + 2)

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

/* The cookie is bound to the source: its IP bytes, then the port, network order. */
static size_t src_bytes(const struct sockaddr *sa, socklen_t len, uint8_t out[SRC_BYTES_MAX])
{
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(out, &in->sin_addr, 4);
		memcpy(out + 4, &in->sin_port, 2);
		return 6;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(out, &in6->sin6_addr, 16);
		memcpy(out + 16, &in6->sin6_port, 2);
		return 18;
	}
	return 0;
}

static bool loaded_at(const struct wg_device *dev, uint64_t now)
{
	return dev->have_been_under_load &&
	       !wg_birthdate_has_expired(dev->last_under_load, UNDER_LOAD_AFTER, now);
}

/* Counts one handshake message that passed mac1 (garbage costs one hash and
 * never counts: a flood of it must not make real peers wait for cookies); true
 * while more than HANDSHAKES_UNDER_LOAD came in one second, and for a second after. */
static bool under_load(struct wg_device *dev)
{
	uint64_t now = dev->now;

	if (now < dev->load_window_start ||
	    wg_birthdate_has_expired(dev->load_window_start, NSEC_PER_SEC, now)) {
		dev->load_window_start = now;
		dev->load_count = 0;
	}
	if (++dev->load_count > HANDSHAKES_UNDER_LOAD) {
		if (!loaded_at(dev, now))
			dev->stats.under_load_entered++;
		dev->last_under_load = now;
		dev->have_been_under_load = true;
	}
	return loaded_at(dev, now);
}

/* A cookie reply costs us an AEAD and a datagram to an address nobody proved is
 * the sender's: limited per source, so one host cannot keep us busy, and in total,
 * so spoofed sources cannot turn the stack into a reflector. */
static void reply_cookie(struct wg_device *dev, const uint8_t *buf, size_t len,
			 const uint8_t *sb, size_t sb_len, const struct sockaddr *src,
			 socklen_t srclen)
{
	if (!ratelimiter_allow(dev->cookie_limiter, src, srclen, dev->now) ||
	    !token_bucket_take(&dev->cookie_total, dev->now)) {
		dev->stats.cookie_replies_limited++;
		return;
	}
	dev->stats.cookie_replies_sent++;
	/* sender_index sits at offset 4 in both handshake messages */
	wg_packet_send_cookie(dev, buf, len, get_le32(buf + 4), sb, sb_len, src, srclen);
}

/* Whether a handshake may go on to the Diffie-Hellman. Under load (the kernel's
 * rule) only with a valid mac2, which proves the source address, and then at most
 * RATELIMIT_PER_SECOND per source: a host that takes our cookies still cannot
 * fill the stack thread with DH work. */
static bool handshake_admitted(struct wg_device *dev, const uint8_t *buf, size_t len,
			       const uint8_t *sb, size_t sb_len, const struct sockaddr *src,
			       socklen_t srclen)
{
	enum cookie_mac_state mac;

	mac = cookie_validate(&dev->cookie_checker, buf, len, sb, sb_len, false, dev->now);
	if (mac == COOKIE_INVALID_MAC) {
		dev->stats.handshakes_bad_mac++;
		return false;
	}
	if (!under_load(dev))
		return true;
	dev->stats.handshakes_under_load++;
	mac = cookie_validate(&dev->cookie_checker, buf, len, sb, sb_len, true, dev->now);
	if (mac != COOKIE_VALID_MAC_WITH_COOKIE) {
		reply_cookie(dev, buf, len, sb, sb_len, src, srclen);
		return false;
	}
	if (!ratelimiter_allow(dev->handshake_limiter, src, srclen, dev->now)) {
		dev->stats.handshakes_ratelimited++;
		return false;
	}
	return true;
}

/* ---- handshake messages ---- */

static struct wg_peer *consume_initiation(struct wg_device *dev, const uint8_t *buf,
					  const struct sockaddr *src, socklen_t srclen)
{
	struct noise_initiation_result r;
	struct wg_peer *peer = NULL;
	int ret;

	if (noise_consume_initiation(&dev->identity, (const struct msg_initiation *)buf, &r)) {
		ts_dbg("invalid handshake initiation");
		goto out;
	}
	peer = wg_peer_by_public_key(dev, r.remote_static);
	if (!peer) {
		ts_dbg("handshake initiation from an unknown key");
		goto out;
	}
	ret = noise_accept_initiation(&peer->handshake, &r, dev->now);
	if (ret) {
		ts_dbg("peer %d: initiation dropped (%s)", peer->index,
		       ret == -EALREADY ? "replayed timestamp" : "flood");
		peer = NULL;
		goto out;
	}
	wg_peer_set_endpoint(peer, src, srclen);
	wg_packet_send_response(peer);
out:
	sodium_memzero(&r, sizeof(r));
	return peer;
}

static struct wg_peer *consume_response(struct wg_device *dev, const uint8_t *buf,
					const struct sockaddr *src, socklen_t srclen)
{
	const struct msg_response *msg = (const struct msg_response *)buf;
	struct index_entry *e;
	struct wg_keypair *kp;
	struct wg_peer *peer;

	e = index_table_lookup(&dev->index_table, le32toh(msg->receiver_index), INDEX_HANDSHAKE);
	if (!e)
		return NULL;
	peer = e->peer;
	if (noise_consume_response(&peer->handshake, &dev->identity, msg)) {
		ts_dbg("peer %d: invalid handshake response", peer->index);
		return NULL;
	}
	wg_peer_set_endpoint(peer, src, srclen);
	kp = wg_peer_keypair_slot(peer);
	if (kp && !noise_derive_keypair(&peer->handshake, &kp->kp, dev->now)) {
		wg_peer_keypair_add(peer, kp);
		wg_timers_session_derived(peer);
		wg_timers_handshake_complete(peer);
		/* Staged packets go out now; with none, a keepalive confirms the
		 * session to the responder at once. */
		wg_packet_send_keepalive(peer);
	}
	return peer;
}

static void receive_handshake(struct wg_device *dev, const uint8_t *buf, size_t len,
			      uint32_t type, const struct sockaddr *src, socklen_t srclen)
{
	uint8_t sb[SRC_BYTES_MAX];
	size_t sb_len = src_bytes(src, srclen, sb);
	struct wg_peer *peer;

	if (!sb_len || !handshake_admitted(dev, buf, len, sb, sb_len, src, srclen))
		return;
	if (type == MESSAGE_INITIATION)
		peer = consume_initiation(dev, buf, src, srclen);
	else
		peer = consume_response(dev, buf, src, srclen);
	if (!peer)
		return;
	peer->stats.rx_bytes += len;
	dev->traffic += len;
	wg_timers_any_authenticated_packet_received(peer);
	wg_timers_any_authenticated_packet_traversal(peer);
}

static void receive_cookie_reply(struct wg_device *dev, const uint8_t *buf)
{
	const struct msg_cookie_reply *msg = (const struct msg_cookie_reply *)buf;
	struct index_entry *e;

	e = index_table_lookup(&dev->index_table, le32toh(msg->receiver_index),
			       INDEX_HANDSHAKE | INDEX_KEYPAIR);
	if (e && !cookie_consume_reply(&e->peer->cookie, msg, dev->now))
		e->peer->stats.cookie_replies_received++;
}

/* ---- data ---- */

static bool keypair_accepts(struct wg_device *dev, struct wg_keypair *kp)
{
	if (kp->receiving_valid &&
	    !wg_birthdate_has_expired(kp->kp.birth, dev->params.reject_after_time, dev->now) &&
	    kp->kp.replay.greatest < dev->params.reject_after_messages)
		return true;
	kp->receiving_valid = false;
	return false;
}

/* A session we started is about to expire and data still flows: renew it now,
 * before REJECT_AFTER_TIME, once per session. */
static void keep_key_fresh(struct wg_peer *peer)
{
	const struct wg_timer_params *p = &peer->dev->params;
	struct wg_keypair *kp = peer->current;
	uint64_t margin = p->keepalive_timeout + p->rekey_timeout;
	uint64_t age = p->reject_after_time > margin ? p->reject_after_time - margin : 0;

	if (peer->timers.sent_lastminute_handshake || !kp || !kp->sending_valid ||
	    !kp->kp.is_initiator)
		return;
	if (wg_birthdate_has_expired(kp->kp.birth, age, peer->dev->now)) {
		peer->timers.sent_lastminute_handshake = true;
		wg_packet_send_initiation(peer, false);
	}
}

/* The inner packet's own length, which padding may exceed; 0 when it is no IP
 * packet or claims more than arrived. */
static size_t inner_len(const uint8_t *pkt, size_t len)
{
	size_t n;

	if (len >= 20 && pkt[0] >> 4 == 4) {
		n = (size_t)pkt[2] << 8 | pkt[3];
		return n >= 20 && n <= len ? n : 0;
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		n = ((size_t)pkt[4] << 8 | pkt[5]) + 40;
		return n <= len ? n : 0;
	}
	return 0;
}

/* A peer may only send from addresses in its own AllowedIPs. */
static bool source_allowed(struct wg_peer *peer, const uint8_t *pkt)
{
	if (pkt[0] >> 4 == 4)
		return allowedips_lookup(&peer->dev->allowedips, AF_INET, pkt + 12) == peer;
	return allowedips_lookup(&peer->dev->allowedips, AF_INET6, pkt + 8) == peer;
}

static void deliver(struct wg_peer *peer, const uint8_t *plain, size_t plain_len)
{
	struct wg_device *dev = peer->dev;
	size_t len;

	if (!plain_len)
		return;         /* a keepalive */
	wg_timers_data_received(peer);
	len = inner_len(plain, plain_len);
	if (!len) {
		ts_dbg("peer %d: packet with a bad inner length dropped", peer->index);
		peer->stats.rx_bad_inner++;
		return;
	}
	if (!source_allowed(peer, plain)) {
		ts_dbg("peer %d: packet from a source outside its AllowedIPs dropped", peer->index);
		peer->stats.rx_bad_source++;
		return;
	}
	if (dev->ops.deliver)
		dev->ops.deliver(dev->ops.ctx, plain, len);
}

static void receive_data(struct wg_device *dev, const uint8_t *buf, size_t len,
			 const struct sockaddr *src, socklen_t srclen)
{
	struct index_entry *e;
	struct wg_keypair *kp;
	struct wg_peer *peer;
	ssize_t n;

	e = index_table_lookup(&dev->index_table, get_le32(buf + 4), INDEX_KEYPAIR);
	if (!e)
		return;
	kp = e->obj;
	peer = e->peer;
	if (!keypair_accepts(dev, kp))
		return;
	n = noise_open_data(&kp->kp, dev->rx, buf, len);
	if (n < 0)
		return;
	/* Authentic and fresh: now it may move state. */
	wg_peer_set_endpoint(peer, src, srclen);
	peer->stats.rx_bytes += len;
	dev->traffic += len;
	if (wg_peer_keypair_received(peer, kp)) {
		wg_timers_handshake_complete(peer);
		wg_packet_send_staged(peer);
	}
	keep_key_fresh(peer);
	wg_timers_any_authenticated_packet_received(peer);
	wg_timers_any_authenticated_packet_traversal(peer);
	deliver(peer, dev->rx, (size_t)n);
}

void wg_packet_receive(struct wg_device *dev, const uint8_t *buf, size_t len,
		       const struct sockaddr *src, socklen_t srclen)
{
	uint32_t type;

	if (!buf || len < sizeof(uint32_t))
		return;
	/* One little-endian word: the reserved bytes must be zero. */
	type = get_le32(buf);
	if (type == MESSAGE_INITIATION && len == MESSAGE_INITIATION_LEN)
		receive_handshake(dev, buf, len, type, src, srclen);
	else if (type == MESSAGE_RESPONSE && len == MESSAGE_RESPONSE_LEN)
		receive_handshake(dev, buf, len, type, src, srclen);
	else if (type == MESSAGE_COOKIE_REPLY && len == MESSAGE_COOKIE_REPLY_LEN)
		receive_cookie_reply(dev, buf);
	else if (type == MESSAGE_DATA && len >= MESSAGE_MINIMUM_LEN && len <= WG_MAX_MESSAGE)
		receive_data(dev, buf, len, src, srclen);
}
