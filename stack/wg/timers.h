/* SPDX-License-Identifier: MIT */
/* WireGuard's protocol timers (whitepaper 6), kept as absolute deadlines in ns
 * on the device's monotonic clock: no threads and no timer objects. The event
 * hooks below are called from the send and receive paths exactly where the
 * kernel calls its wg_timers_* functions; wg_timers_run fires what is due. */
#ifndef TS_TIMERS_H
#define TS_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#define WG_TIMER_OFF UINT64_MAX

struct wg_peer;

struct wg_peer_timers {
	uint64_t retransmit_handshake;  /* no response to our initiation */
	uint64_t send_keepalive;        /* received data, sent nothing back */
	uint64_t new_handshake;         /* sent data, heard nothing back */
	uint64_t zero_key_material;     /* no new session for 3 * REJECT_AFTER_TIME */
	uint64_t persistent_keepalive;
	uint64_t handshake_round_start; /* first initiation of the current round */
	unsigned int handshake_attempts;
	bool need_another_keepalive;
	bool sent_lastminute_handshake;
};

/* True once age has passed since birth (at now, inclusive), as the kernel's
 * wg_birthdate_has_expired; saturates instead of wrapping. */
static inline bool wg_birthdate_has_expired(uint64_t birth, uint64_t age, uint64_t now)
{
	return birth > UINT64_MAX - age || now >= birth + age;
}

void wg_timers_init(struct wg_peer *peer);
/* Every deadline of the peer off (the peer's keys are gone for good). */
void wg_timers_stop(struct wg_peer *peer);

void wg_timers_data_sent(struct wg_peer *peer);
void wg_timers_data_received(struct wg_peer *peer);
void wg_timers_any_authenticated_packet_sent(struct wg_peer *peer);
void wg_timers_any_authenticated_packet_received(struct wg_peer *peer);
void wg_timers_any_authenticated_packet_traversal(struct wg_peer *peer);
void wg_timers_handshake_initiated(struct wg_peer *peer);
void wg_timers_handshake_complete(struct wg_peer *peer);
void wg_timers_session_derived(struct wg_peer *peer);

/* Fires the peer's timers that are due at dev->now; returns its next deadline
 * or WG_TIMER_OFF. */
uint64_t wg_timers_run(struct wg_peer *peer);

/* A random delay in [0, max], so peers that lost the same packet do not retry
 * in lockstep. */
uint64_t wg_timers_jitter(uint64_t max);

#endif
