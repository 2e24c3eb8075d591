/* SPDX-License-Identifier: MIT */
/* The WireGuard device: peers, their sessions and timers, and the send and receive
 * paths. It sees inner IP packets and outer UDP datagrams as byte arrays; the event
 * loop owns the sockets and the clock and calls in here from the stack thread only. */
#ifndef TS_DEVICE_H
#define TS_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "config.h"

struct wg_device;

struct wg_device_ops {
	void *ctx;
	/* Sends one outer datagram. Returns 0 or -errno (the device drops on error). */
	int (*send_udp)(void *ctx, const struct sockaddr *dst, socklen_t dstlen,
			const uint8_t *buf, size_t len);
	/* Hands up one decrypted inner IP packet (already trimmed to its IP length and
	 * checked against the sending peer's AllowedIPs). */
	void (*deliver)(void *ctx, const uint8_t *pkt, size_t len);
	/* Monotonic clock in ns; the unit tests substitute a fake one. */
	uint64_t (*now)(void *ctx);
	/* TAI64N for initiations; NULL means noise_tai64n_now (tests pass a fake). */
	void (*tai64n)(void *ctx, uint8_t out[12]);
	/* Optional: called (may be NULL) when a peer completes a handshake, or gives up
	 * after REKEY_ATTEMPT_TIME; the loop uses it to fail waiting connects. */
	void (*peer_event)(void *ctx, int peer_index, int event);
};

enum wg_peer_event {
	WG_PEER_HANDSHAKE_DONE = 1,
	WG_PEER_HANDSHAKE_FAILED = 2, /* gave up: REKEY_ATTEMPT_TIME of attempts unanswered */
};

/* Protocol timers; defaults are the whitepaper's. TUNSHIM_TIMER_SCALE (a factor,
 * e.g. 0.02) scales every time below for tests; counts are not scaled. */
struct wg_timer_params {
	uint64_t rekey_after_time, reject_after_time, rekey_attempt_time;
	uint64_t rekey_timeout, keepalive_timeout, cookie_secret_max_age;
	uint64_t rekey_timeout_jitter_max;  /* all in ns */
	uint64_t rekey_after_messages, reject_after_messages;
};
void wg_timer_params_default(struct wg_timer_params *p, double scale);

/* Peers' endpoints must already be resolved: endpoints[i] for peer i, family 0 when none. */
struct wg_device *wg_device_new(const struct wg_config *cfg,
				const struct sockaddr_storage *endpoints,
				const struct wg_timer_params *timers,
				const struct wg_device_ops *ops);
void wg_device_free(struct wg_device *dev);

/* Outbound inner packet (IPv4 or IPv6). Picks the peer by destination with AllowedIPs,
 * pads, encrypts and sends, or queues it and starts a handshake. Returns 0, or
 * -ENETUNREACH when no peer's AllowedIPs match, -EHOSTUNREACH when the peer has no
 * endpoint or its handshake has failed. */
int wg_device_send(struct wg_device *dev, const uint8_t *pkt, size_t len);
/* Peer index (config order) whose AllowedIPs cover dst (family AF_INET/AF_INET6), or -1. */
int wg_device_route(struct wg_device *dev, int family, const uint8_t *dst);
int wg_device_route_peer_count(struct wg_device *dev);
/* A new endpoint for a peer (its Endpoint hostname resolved again). */
void wg_device_set_endpoint(struct wg_device *dev, int peer_index, const struct sockaddr *sa,
			    socklen_t len);
/* Starts a handshake to peer now if it has no current session (idempotent). */
void wg_device_connect_peer(struct wg_device *dev, int peer_index);
bool wg_device_peer_has_session(struct wg_device *dev, int peer_index);
/* No session yet, and a handshake round under way: it will complete, or end with
 * WG_PEER_HANDSHAKE_FAILED. */
bool wg_device_peer_handshaking(struct wg_device *dev, int peer_index);

/* One outer datagram from src. Garbage and hostile input is dropped, never trusted. */
void wg_device_receive(struct wg_device *dev, const uint8_t *buf, size_t len,
		       const struct sockaddr *src, socklen_t srclen);

/* Runs due timers; returns the next deadline (ns, monotonic) or UINT64_MAX. */
uint64_t wg_device_tick(struct wg_device *dev);

/* Packets waiting for a handshake, over peers that have not given up. */
size_t wg_device_staged(struct wg_device *dev);

/* Counters for logs and tests. */
struct wg_peer_stats {
	uint64_t rx_bytes, tx_bytes;
	uint64_t handshakes_completed;  /* as initiator or responder */
	uint64_t initiations_sent, cookie_replies_received, initiations_sent_with_mac2;
	uint64_t last_handshake_ns;     /* monotonic; 0 = never */
	/* Decrypted packets dropped: an inner source outside this peer's AllowedIPs,
	 * or no IP packet (a length that is not its own). */
	uint64_t rx_bad_source, rx_bad_inner;
};
int wg_device_peer_stats(struct wg_device *dev, int peer_index, struct wg_peer_stats *out);

/* The device's handshake defence, counted (receive.c). */
struct wg_device_stats {
	uint64_t handshakes_bad_mac;      /* mac1 wrong: dropped after one hash */
	uint64_t under_load_entered;      /* times the device came under load */
	uint64_t handshakes_under_load;   /* valid mac1, while under load */
	uint64_t cookie_replies_sent;
	uint64_t cookie_replies_limited;  /* owed, not sent: per source or in total */
	uint64_t handshakes_ratelimited;  /* valid mac2, over its source's rate: no DH */
};
void wg_device_stats(struct wg_device *dev, struct wg_device_stats *out);
/* Bytes of authenticated packets received and of packets sent to peers, all peers
 * together: what moves only with real tunnel traffic. */
uint64_t wg_device_traffic(const struct wg_device *dev);

#endif
