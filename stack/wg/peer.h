/* SPDX-License-Identifier: MIT */
/* A peer's state: its handshake, its keypairs (current, previous and next, as
 * the kernel rotates them), its endpoint and the packets staged while it has no
 * session. Also the device that holds the peers, and the send and receive paths,
 * which share these structures (device.c, peer.c, timers.c, send.c, receive.c). */
#ifndef TS_PEER_H
#define TS_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "allowedips.h"
#include "config.h"
#include "cookie.h"
#include "device.h"
#include "index_table.h"
#include "noise.h"
#include "ratelimiter.h"
#include "timers.h"

#define WG_MAX_STAGED_PACKETS 128
/* current, previous and next, plus the one being derived before it takes a place */
#define WG_KEYPAIR_SLOTS 4
/* Largest outer datagram we build or accept (an IP packet's limit). */
#define WG_MAX_MESSAGE 65535
#define WG_MAX_INNER (WG_MAX_MESSAGE - MESSAGE_MINIMUM_LEN)
/* Handshakes with a valid mac1 per second above which we answer with cookies. */
#define HANDSHAKES_UNDER_LOAD 64
/* Cookie replies from all sources together (each source also has its own limit):
 * enough for every real peer under load to get one per REKEY_TIMEOUT, too few to
 * make the stack a reflector worth using. */
#define COOKIE_REPLIES_PER_SECOND 1000
#define COOKIE_REPLIES_BURST 100

struct wg_keypair {
	struct noise_keypair kp;
	struct index_entry entry;
	bool in_use;
	/* The kernel's sending.is_valid / receiving.is_valid: a keypair past its
	 * time or message limit is kept (for its index) but no longer used. */
	bool sending_valid;
	bool receiving_valid;
};

struct wg_staged_packet {
	uint8_t *data;  /* NULL for a keepalive */
	size_t len;
};

struct wg_peer {
	struct wg_device *dev;
	int index;                      /* config order */
	struct noise_handshake handshake;
	struct index_entry handshake_entry;
	struct cookie_maker cookie;
	struct wg_keypair slots[WG_KEYPAIR_SLOTS];
	struct wg_keypair *current, *previous, *next;
	struct sockaddr_storage endpoint;
	socklen_t endpoint_len;         /* 0: no endpoint known */
	struct wg_staged_packet staged[WG_MAX_STAGED_PACKETS];
	unsigned int staged_head, staged_count;
	struct wg_peer_timers timers;
	uint64_t persistent_keepalive_interval; /* ns, 0 = off */
	uint64_t last_sent_handshake;
	bool have_sent_handshake;
	bool handshake_failed;          /* gave up; cleared by the next completed handshake */
	struct wg_peer_stats stats;
};

struct wg_device {
	struct wg_device_ops ops;
	struct wg_timer_params params;
	struct noise_static_identity identity;
	struct cookie_checker cookie_checker;
	struct allowedips allowedips;   /* value: struct wg_peer * */
	struct index_table index_table;
	uint64_t now;                   /* ops->now, read once per entry point */
	size_t mtu;
	/* Scratch, one packet each. Receiving may send (a promotion flushes the
	 * staged queue, deliver may answer at once), so the paths share nothing. */
	uint8_t *plain;                 /* send: the padded packet */
	uint8_t *wire;                  /* send: the sealed message */
	uint8_t *rx;                    /* receive: the opened packet */
	uint64_t load_window_start;     /* handshake load, counted per second */
	unsigned int load_count;
	uint64_t last_under_load;
	bool have_been_under_load;
	struct ratelimiter *handshake_limiter;  /* under load: mac2-valid handshakes */
	struct ratelimiter *cookie_limiter;     /* cookie replies, per source */
	struct token_bucket cookie_total;       /* cookie replies, all sources */
	struct wg_device_stats stats;
	uint64_t traffic;               /* wg_device_traffic */
	size_t alloc_size;
	size_t n_peers;
	struct wg_peer peers[];
};

/* peer.c */
int wg_peer_init(struct wg_peer *peer, struct wg_device *dev, int index,
		 const struct wg_peer_config *cfg, const struct sockaddr_storage *endpoint);
void wg_peer_destroy(struct wg_peer *peer);
struct wg_peer *wg_peer_by_public_key(struct wg_device *dev, const uint8_t pub[32]);
void wg_peer_set_endpoint(struct wg_peer *peer, const struct sockaddr *sa, socklen_t len);
/* Registers the handshake under a fresh receiver index (dropping its old one). */
uint32_t wg_peer_handshake_new_index(struct wg_peer *peer);
void wg_peer_handshake_clear(struct wg_peer *peer);
/* The unused slot a new keypair is derived into. */
struct wg_keypair *wg_peer_keypair_slot(struct wg_peer *peer);
/* Takes a freshly derived keypair (its slot) and hands it the handshake's index. */
void wg_peer_keypair_add(struct wg_peer *peer, struct wg_keypair *kp);
/* Data arrived on kp: if it was next, it becomes current. Returns true then. */
bool wg_peer_keypair_received(struct wg_peer *peer, struct wg_keypair *kp);
void wg_peer_keypairs_clear(struct wg_peer *peer);
/* A current keypair we may still send on. */
bool wg_peer_has_session(struct wg_peer *peer);
/* Copies pkt to the tail of the queue (len 0: a keepalive), dropping the oldest
 * when full. 0 or -ENOMEM. */
int wg_peer_stage(struct wg_peer *peer, const uint8_t *pkt, size_t len);
struct wg_staged_packet *wg_peer_staged_head(struct wg_peer *peer);
void wg_peer_staged_pop(struct wg_peer *peer);
void wg_peer_purge_staged(struct wg_peer *peer);

/* send.c */
/* Seals and sends at once when nothing is staged and the session is usable. */
bool wg_packet_send_direct(struct wg_peer *peer, const uint8_t *pkt, size_t len);
void wg_packet_send_staged(struct wg_peer *peer);
void wg_packet_send_keepalive(struct wg_peer *peer);
/* Rate limited to one per REKEY_TIMEOUT; is_retry marks the retransmit timer. */
void wg_packet_send_initiation(struct wg_peer *peer, bool is_retry);
void wg_packet_send_response(struct wg_peer *peer);
void wg_packet_send_cookie(struct wg_device *dev, const uint8_t *msg, size_t len,
			   uint32_t sender_index, const uint8_t *src, size_t src_len,
			   const struct sockaddr *to, socklen_t tolen);

/* receive.c */
void wg_packet_receive(struct wg_device *dev, const uint8_t *buf, size_t len,
		       const struct sockaddr *src, socklen_t srclen);

#endif
