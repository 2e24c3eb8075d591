/* SPDX-License-Identifier: MIT */
/* The device: its identity, the peer table, one AllowedIPs table over all peers
 * (longest prefix wins across peers) and the entry points the loop calls. Every
 * entry point reads the clock once, so one call sees one consistent "now". */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "peer.h"

#define DEFAULT_MTU 1420

/* LeakSanitizer scans the heap, stacks and globals, not the pages libsodium maps for
 * the device: everything the device points to (buffers, the AllowedIPs trie) would be
 * reported as leaked. Under ASan the device's block is a root of its own. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define lsan_root(p, n) __lsan_register_root_region(p, n)
#define lsan_unroot(p, n) __lsan_unregister_root_region(p, n)
#else
#define lsan_root(p, n) ((void)(p), (void)(n))
#define lsan_unroot(p, n) ((void)(p), (void)(n))
#endif

/* Keys live in the device and its peers: one guarded allocation, kept out of core
 * dumps and swap by libsodium (MADV_DONTDUMP, mlock where allowed), wiped on free. */
static struct wg_device *device_alloc(size_t n_peers)
{
	struct wg_device *dev;
	size_t size;

	if (n_peers > (SIZE_MAX / 2 - sizeof(*dev)) / sizeof(struct wg_peer))
		return NULL;
	/* sodium_malloc aligns the end of the block, so round the size. */
	size = (sizeof(*dev) + n_peers * sizeof(struct wg_peer) + 63) & ~(size_t)63;
	if (sodium_init() < 0)
		return NULL;
	dev = sodium_malloc(size);
	if (!dev)
		return NULL;
	memset(dev, 0, size);
	dev->alloc_size = size;
	lsan_root(dev, size);
	return dev;
}

static uint64_t device_now(struct wg_device *dev)
{
	dev->now = dev->ops.now(dev->ops.ctx);
	return dev->now;
}

static int add_allowed_ips(struct wg_device *dev, struct wg_peer *peer,
			   const struct wg_peer_config *pc)
{
	size_t i;
	int ret;

	for (i = 0; i < pc->n_allowed_ips; i++) {
		const struct wg_prefix *p = &pc->allowed_ips[i];

		ret = allowedips_insert(&dev->allowedips, p->ip.family, p->ip.addr, p->cidr, peer);
		if (ret)
			return ret;
	}
	return 0;
}

static int add_peers(struct wg_device *dev, const struct wg_config *cfg,
		     const struct sockaddr_storage *endpoints)
{
	size_t i;
	int ret;

	for (i = 0; i < cfg->n_peers; i++) {
		struct wg_peer *peer = &dev->peers[i];

		ret = wg_peer_init(peer, dev, (int)i, &cfg->peers[i],
				   endpoints ? &endpoints[i] : NULL);
		if (ret)
			return ret;
		dev->n_peers = i + 1;
		ret = add_allowed_ips(dev, peer, &cfg->peers[i]);
		if (ret)
			return ret;
	}
	return 0;
}

struct wg_device *wg_device_new(const struct wg_config *cfg,
				const struct sockaddr_storage *endpoints,
				const struct wg_timer_params *timers,
				const struct wg_device_ops *ops)
{
	struct wg_device *dev;

	if (!cfg || !timers || !ops || !ops->send_udp || !ops->now || cfg->n_peers > INT_MAX)
		return NULL;
	dev = device_alloc(cfg->n_peers);
	if (!dev)
		return NULL;
	dev->ops = *ops;
	dev->params = *timers;
	dev->mtu = cfg->mtu > 0 && cfg->mtu <= WG_MAX_INNER ? (size_t)cfg->mtu : DEFAULT_MTU;
	device_now(dev);
	allowedips_init(&dev->allowedips);
	index_table_init(&dev->index_table);
	dev->plain = malloc(WG_MAX_MESSAGE);
	dev->wire = malloc(WG_MAX_MESSAGE);
	dev->rx = malloc(WG_MAX_MESSAGE);
	dev->handshake_limiter = ratelimiter_new();
	dev->cookie_limiter = ratelimiter_new();
	if (!dev->plain || !dev->wire || !dev->rx || !dev->handshake_limiter ||
	    !dev->cookie_limiter)
		goto fail;
	token_bucket_init(&dev->cookie_total, COOKIE_REPLIES_PER_SECOND, COOKIE_REPLIES_BURST);
	if (noise_identity_init(&dev->identity, cfg->private_key))
		goto fail;
	cookie_checker_init(&dev->cookie_checker, dev->identity.public_key);
	if (add_peers(dev, cfg, endpoints))
		goto fail;
	return dev;
fail:
	wg_device_free(dev);
	return NULL;
}

void wg_device_free(struct wg_device *dev)
{
	size_t i;

	if (!dev)
		return;
	for (i = 0; i < dev->n_peers; i++)
		wg_peer_destroy(&dev->peers[i]);
	allowedips_free(&dev->allowedips);
	/* plaintext, not keys, but nobody's business after we are gone */
	if (dev->plain)
		sodium_memzero(dev->plain, WG_MAX_MESSAGE);
	if (dev->rx)
		sodium_memzero(dev->rx, WG_MAX_MESSAGE);
	free(dev->plain);
	free(dev->wire);
	free(dev->rx);
	ratelimiter_free(dev->handshake_limiter);
	ratelimiter_free(dev->cookie_limiter);
	lsan_unroot(dev, dev->alloc_size);
	sodium_free(dev);       /* wipes the identity, cookie secret and peers */
}

static struct wg_peer *peer_at(struct wg_device *dev, int peer_index)
{
	if (!dev || peer_index < 0 || (size_t)peer_index >= dev->n_peers)
		return NULL;
	return &dev->peers[peer_index];
}

/* The destination of an IPv4 or IPv6 packet: family, or 0 when it is neither. */
static int packet_dst(const uint8_t *pkt, size_t len, const uint8_t **dst)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		*dst = pkt + 16;
		return AF_INET;
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		*dst = pkt + 24;
		return AF_INET6;
	}
	return 0;
}

int wg_device_send(struct wg_device *dev, const uint8_t *pkt, size_t len)
{
	const uint8_t *dst;
	struct wg_peer *peer;
	int family, ret;

	if (!dev || !pkt)
		return -EINVAL;
	if (len > WG_MAX_INNER)
		return -EMSGSIZE;
	family = packet_dst(pkt, len, &dst);
	if (!family)
		return -EINVAL;
	device_now(dev);
	peer = allowedips_lookup(&dev->allowedips, family, dst);
	if (!peer)
		return -ENETUNREACH;
	if (!peer->endpoint_len)
		return -EHOSTUNREACH;
	if (peer->handshake_failed) {
		/* Unreachable until a handshake completes; keep trying for the next packet. */
		wg_packet_send_initiation(peer, false);
		return -EHOSTUNREACH;
	}
	if (wg_packet_send_direct(peer, pkt, len))
		return 0;
	ret = wg_peer_stage(peer, pkt, len);
	if (ret)
		return ret;
	wg_packet_send_staged(peer);
	return 0;
}

int wg_device_route(struct wg_device *dev, int family, const uint8_t *dst)
{
	struct wg_peer *peer;

	if (!dev || !dst || (family != AF_INET && family != AF_INET6))
		return -1;
	peer = allowedips_lookup(&dev->allowedips, family, dst);
	return peer ? peer->index : -1;
}

void wg_device_connect_peer(struct wg_device *dev, int peer_index)
{
	struct wg_peer *peer = peer_at(dev, peer_index);

	if (!peer)
		return;
	device_now(dev);
	if (!wg_peer_has_session(peer))
		wg_packet_send_initiation(peer, false);
}

bool wg_device_peer_has_session(struct wg_device *dev, int peer_index)
{
	struct wg_peer *peer = peer_at(dev, peer_index);

	if (!peer)
		return false;
	device_now(dev);
	return wg_peer_has_session(peer);
}

bool wg_device_peer_handshaking(struct wg_device *dev, int peer_index)
{
	struct wg_peer *peer = peer_at(dev, peer_index);

	if (!peer)
		return false;
	device_now(dev);
	return !wg_peer_has_session(peer) && peer->timers.retransmit_handshake != WG_TIMER_OFF;
}

void wg_device_receive(struct wg_device *dev, const uint8_t *buf, size_t len,
		       const struct sockaddr *src, socklen_t srclen)
{
	if (!dev)
		return;
	device_now(dev);
	wg_packet_receive(dev, buf, len, src, srclen);
}

uint64_t wg_device_tick(struct wg_device *dev)
{
	uint64_t next = UINT64_MAX, d;
	size_t i;

	if (!dev)
		return UINT64_MAX;
	device_now(dev);
	for (i = 0; i < dev->n_peers; i++) {
		d = wg_timers_run(&dev->peers[i]);
		if (d < next)
			next = d;
	}
	return next;
}

int wg_device_peer_stats(struct wg_device *dev, int peer_index, struct wg_peer_stats *out)
{
	struct wg_peer *peer = peer_at(dev, peer_index);

	if (!peer || !out)
		return -EINVAL;
	*out = peer->stats;
	return 0;
}

void wg_device_stats(struct wg_device *dev, struct wg_device_stats *out)
{
	*out = dev->stats;
}

uint64_t wg_device_traffic(const struct wg_device *dev)
{
	return dev->traffic;
}

size_t wg_device_staged(struct wg_device *dev)
{
	size_t n = 0;

	for (size_t i = 0; i < dev->n_peers; i++)
		if (!dev->peers[i].handshake_failed)
			n += dev->peers[i].staged_count;
	return n;
}

int wg_device_route_peer_count(struct wg_device *dev)
{
	return (int)dev->n_peers;
}

void wg_device_set_endpoint(struct wg_device *dev, int peer_index, const struct sockaddr *sa,
			    socklen_t len)
{
	struct wg_peer *peer = peer_at(dev, peer_index);

	if (peer)
		wg_peer_set_endpoint(peer, sa, len);
}
