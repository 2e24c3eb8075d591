/* SPDX-License-Identifier: MIT */
/* Peer state: keypair rotation as the kernel's noise.c does it, the endpoint,
 * and the bounded queue of packets waiting for a session. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "peer.h"

static socklen_t endpoint_len(const struct sockaddr *sa, socklen_t len)
{
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return sizeof(struct sockaddr_in);
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return sizeof(struct sockaddr_in6);
	return 0;
}

static void init_entries(struct wg_peer *peer)
{
	int i;

	peer->handshake_entry = (struct index_entry){
		.peer = peer, .obj = &peer->handshake, .type = INDEX_HANDSHAKE };
	for (i = 0; i < WG_KEYPAIR_SLOTS; i++)
		peer->slots[i].entry = (struct index_entry){
			.peer = peer, .obj = &peer->slots[i], .type = INDEX_KEYPAIR };
}

int wg_peer_init(struct wg_peer *peer, struct wg_device *dev, int index,
		 const struct wg_peer_config *cfg, const struct sockaddr_storage *endpoint)
{
	const uint8_t *psk = cfg->has_preshared_key ? cfg->preshared_key : NULL;

	memset(peer, 0, sizeof(*peer));
	peer->dev = dev;
	peer->index = index;
	/* A key whose DH with ours is degenerate cannot complete a handshake; the
	 * peer stays, its initiations fail, and the give-up path reports it. */
	noise_handshake_init(&peer->handshake, &dev->identity, cfg->public_key, psk);
	cookie_maker_init(&peer->cookie, cfg->public_key);
	init_entries(peer);
	if (endpoint)
		wg_peer_set_endpoint(peer, (const struct sockaddr *)endpoint, sizeof(*endpoint));
	/* Scaled like every other protocol time: KEEPALIVE_TIMEOUT is the yardstick. */
	peer->persistent_keepalive_interval = (uint64_t)cfg->persistent_keepalive *
		(dev->params.keepalive_timeout / KEEPALIVE_TIMEOUT);
	wg_timers_init(peer);
	/* As wg does when the interface comes up: the first keepalive goes out at
	 * once and brings the session up. */
	if (peer->persistent_keepalive_interval && peer->endpoint_len)
		peer->timers.persistent_keepalive = dev->now;
	return 0;
}

void wg_peer_destroy(struct wg_peer *peer)
{
	wg_peer_purge_staged(peer);
	wg_peer_keypairs_clear(peer);
	wg_peer_handshake_clear(peer);
	sodium_memzero(&peer->handshake, sizeof(peer->handshake));
	sodium_memzero(&peer->cookie, sizeof(peer->cookie));
}

struct wg_peer *wg_peer_by_public_key(struct wg_device *dev, const uint8_t pub[32])
{
	size_t i;

	for (i = 0; i < dev->n_peers; i++)
		if (!sodium_memcmp(dev->peers[i].handshake.remote_static, pub,
				   NOISE_PUBLIC_KEY_LEN))
			return &dev->peers[i];
	return NULL;
}

void wg_peer_set_endpoint(struct wg_peer *peer, const struct sockaddr *sa, socklen_t len)
{
	socklen_t n = endpoint_len(sa, len);

	if (!n)
		return;
	memset(&peer->endpoint, 0, sizeof(peer->endpoint));
	memcpy(&peer->endpoint, sa, n);
	peer->endpoint_len = n;
}

/* ---- handshake ---- */

uint32_t wg_peer_handshake_new_index(struct wg_peer *peer)
{
	return index_table_insert(&peer->dev->index_table, &peer->handshake_entry);
}

void wg_peer_handshake_clear(struct wg_peer *peer)
{
	index_table_remove(&peer->dev->index_table, &peer->handshake_entry);
	noise_handshake_clear(&peer->handshake);
}

/* ---- keypairs ---- */

static void keypair_put(struct wg_peer *peer, struct wg_keypair *kp)
{
	if (!kp)
		return;
	index_table_remove(&peer->dev->index_table, &kp->entry);
	noise_keypair_clear(&kp->kp);
	kp->in_use = false;
	kp->sending_valid = false;
	kp->receiving_valid = false;
}

struct wg_keypair *wg_peer_keypair_slot(struct wg_peer *peer)
{
	int i;

	/* Three places and four slots: one is always free. */
	for (i = 0; i < WG_KEYPAIR_SLOTS; i++)
		if (!peer->slots[i].in_use)
			return &peer->slots[i];
	return NULL;
}

/* The initiator has its confirmation (the response), so the new keypair is used
 * at once; the one it displaces stays as previous for packets in flight. */
static void add_as_initiator(struct wg_peer *peer, struct wg_keypair *kp)
{
	struct wg_keypair *old_previous = peer->previous;

	if (peer->next) {
		/* A responder keypair never confirmed: it becomes previous, the
		 * current one goes, as in the kernel. */
		peer->previous = peer->next;
		peer->next = NULL;
		keypair_put(peer, peer->current);
	} else {
		peer->previous = peer->current;
	}
	keypair_put(peer, old_previous);
	peer->current = kp;
}

/* The responder may not send on the new keypair until the initiator has used it
 * (the first data packet is the confirmation): it waits as next. */
static void add_as_responder(struct wg_peer *peer, struct wg_keypair *kp)
{
	keypair_put(peer, peer->next);
	peer->next = kp;
	keypair_put(peer, peer->previous);
	peer->previous = NULL;
}

void wg_peer_keypair_add(struct wg_peer *peer, struct wg_keypair *kp)
{
	kp->in_use = true;
	kp->sending_valid = true;
	kp->receiving_valid = true;
	index_table_replace(&peer->dev->index_table, &peer->handshake_entry, &kp->entry);
	if (kp->kp.is_initiator)
		add_as_initiator(peer, kp);
	else
		add_as_responder(peer, kp);
}

bool wg_peer_keypair_received(struct wg_peer *peer, struct wg_keypair *kp)
{
	struct wg_keypair *old_previous = peer->previous;

	if (!kp || kp != peer->next)
		return false;
	peer->previous = peer->current;
	peer->current = kp;
	peer->next = NULL;
	keypair_put(peer, old_previous);
	return true;
}

void wg_peer_keypairs_clear(struct wg_peer *peer)
{
	keypair_put(peer, peer->current);
	keypair_put(peer, peer->previous);
	keypair_put(peer, peer->next);
	peer->current = peer->previous = peer->next = NULL;
}

bool wg_peer_has_session(struct wg_peer *peer)
{
	const struct wg_timer_params *p = &peer->dev->params;
	struct wg_keypair *kp = peer->current;

	return kp && kp->sending_valid &&
	       !wg_birthdate_has_expired(kp->kp.birth, p->reject_after_time, peer->dev->now) &&
	       kp->kp.send_counter < p->reject_after_messages;
}

/* ---- staged packets ---- */

struct wg_staged_packet *wg_peer_staged_head(struct wg_peer *peer)
{
	return peer->staged_count ? &peer->staged[peer->staged_head] : NULL;
}

void wg_peer_staged_pop(struct wg_peer *peer)
{
	struct wg_staged_packet *p = wg_peer_staged_head(peer);

	if (!p)
		return;
	free(p->data);
	p->data = NULL;
	p->len = 0;
	peer->staged_head = (peer->staged_head + 1) % WG_MAX_STAGED_PACKETS;
	peer->staged_count--;
}

/* Like the kernel, a full queue loses its oldest packet: the newest is likelier
 * to still matter (a retransmission supersedes what it repeats). */
int wg_peer_stage(struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	struct wg_staged_packet *p;
	uint8_t *copy = NULL;

	if (len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, pkt, len);
	}
	if (peer->staged_count == WG_MAX_STAGED_PACKETS)
		wg_peer_staged_pop(peer);
	p = &peer->staged[(peer->staged_head + peer->staged_count) % WG_MAX_STAGED_PACKETS];
	p->data = copy;
	p->len = len;
	peer->staged_count++;
	return 0;
}

void wg_peer_purge_staged(struct wg_peer *peer)
{
	while (peer->staged_count)
		wg_peer_staged_pop(peer);
}
