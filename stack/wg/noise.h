/* SPDX-License-Identifier: MIT */
/* Noise_IKpsk2 handshake and transport keys. Byte arrays only: no sockets, no
 * lwIP, no clock of its own (times are passed in, monotonic nanoseconds), so it
 * can be tested alone. Functions return 0 or a negative errno. */
#ifndef TS_NOISE_H
#define TS_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "messages.h"
#include "replay.h"

struct noise_static_identity {
	uint8_t private_key[NOISE_PUBLIC_KEY_LEN];
	uint8_t public_key[NOISE_PUBLIC_KEY_LEN];
};

enum noise_handshake_state {
	HANDSHAKE_ZEROED,
	HANDSHAKE_CREATED_INITIATION,
	HANDSHAKE_CONSUMED_INITIATION,
	HANDSHAKE_CREATED_RESPONSE,
	HANDSHAKE_CONSUMED_RESPONSE,
};

/* One per peer. The static parts (remote_static, precomputed_static_static,
 * preshared_key) are set once by noise_handshake_init; the rest is per attempt. */
struct noise_handshake {
	enum noise_handshake_state state;
	uint8_t remote_static[NOISE_PUBLIC_KEY_LEN];
	uint8_t precomputed_static_static[NOISE_PUBLIC_KEY_LEN];
	uint8_t preshared_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t ephemeral_private[NOISE_PUBLIC_KEY_LEN];
	uint8_t remote_ephemeral[NOISE_PUBLIC_KEY_LEN];
	uint8_t hash[NOISE_HASH_LEN];
	uint8_t chaining_key[NOISE_HASH_LEN];
	uint8_t latest_timestamp[NOISE_TIMESTAMP_LEN]; /* greatest accepted from this peer */
	uint64_t last_initiation_consumption;           /* ns; 0 = never */
	uint32_t local_index;
	uint32_t remote_index;
};

struct wgc_aead;

struct noise_keypair {
	uint8_t send_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t recv_key[NOISE_SYMMETRIC_KEY_LEN];
	/* libcrypto's contexts with these keys set, or NULL: libsodium (crypto_aead.h).
	 * Made by noise_derive_keypair, freed by noise_keypair_clear; a copy of the
	 * struct may seal and open with them but must not be cleared. */
	struct wgc_aead *send_aead, *recv_aead;
	uint64_t send_counter;  /* next counter to send */
	struct replay_window replay;
	uint32_t local_index;   /* receiver index the peer puts on packets to us */
	uint32_t remote_index;  /* receiver index we put on packets to the peer */
	uint64_t birth;         /* ns */
	bool is_initiator;
	bool valid;
};

/* What the responder learns from an initiation before it knows which peer sent it. */
struct noise_initiation_result {
	uint8_t remote_static[NOISE_PUBLIC_KEY_LEN];
	uint8_t remote_ephemeral[NOISE_PUBLIC_KEY_LEN];
	uint8_t hash[NOISE_HASH_LEN];
	uint8_t chaining_key[NOISE_HASH_LEN];
	uint8_t timestamp[NOISE_TIMESTAMP_LEN];
	uint32_t remote_index;
};

/* Derives public_key from private_key (clamped X25519). */
int noise_identity_init(struct noise_static_identity *id, const uint8_t private_key[32]);
/* psk may be NULL (all zero). -EINVAL when the static-static DH is all zero. */
int noise_handshake_init(struct noise_handshake *hs, const struct noise_static_identity *local,
			 const uint8_t remote_static[32], const uint8_t psk[32]);
/* Wipes the per-attempt state (ephemeral, hash, chaining key) and sets ZEROED. */
void noise_handshake_clear(struct noise_handshake *hs);

/* TAI64N of the real-time clock, nanoseconds rounded down to 2^24 as wireguard-go does. */
void noise_tai64n_now(uint8_t out[NOISE_TIMESTAMP_LEN]);

/* Initiator. Fills everything but mac1/mac2 (cookie.h adds those). */
int noise_create_initiation(struct noise_handshake *hs, const struct noise_static_identity *local,
			    uint32_t local_index, const uint8_t timestamp[NOISE_TIMESTAMP_LEN],
			    struct msg_initiation *out);
/* Responder, step 1: decrypt and authenticate s and t. -EBADMSG on any failure. */
int noise_consume_initiation(const struct noise_static_identity *local,
			     const struct msg_initiation *msg, struct noise_initiation_result *out);
/* Responder, step 2, on the handshake of the peer whose key is r->remote_static:
 * -EALREADY when the timestamp is not greater than the last accepted one,
 * -EBUSY when the previous initiation was consumed less than 1/INITIATIONS_PER_SECOND
 * ago. On success the state is CONSUMED_INITIATION and latest_timestamp updated. */
int noise_accept_initiation(struct noise_handshake *hs, const struct noise_initiation_result *r,
			    uint64_t now);
/* Responder: needs CONSUMED_INITIATION; fills everything but the macs. */
int noise_create_response(struct noise_handshake *hs, uint32_t local_index, struct msg_response *out);
/* Initiator: needs CREATED_INITIATION and msg->receiver_index == hs->local_index. */
int noise_consume_response(struct noise_handshake *hs, const struct noise_static_identity *local,
			   const struct msg_response *msg);
/* After CREATED_RESPONSE or CONSUMED_RESPONSE: fills kp (birth = now) and clears hs.
 * kp is zeroed, cleared, or a keypair derived before (which is cleared first). */
int noise_derive_keypair(struct noise_handshake *hs, struct noise_keypair *kp, uint64_t now);
/* Frees the keypair's AEAD contexts and wipes it. */
void noise_keypair_clear(struct noise_keypair *kp);

/* Transport. seal writes a whole data message (header, counter, ciphertext, tag) for
 * plain (already padded by the caller) into out, which needs
 * MESSAGE_DATA_HEADER_LEN + len + NOISE_AUTHTAG_LEN bytes; returns the message length,
 * or -EKEYEXPIRED when the counter reached REJECT_AFTER_MESSAGES. out may not overlap plain. */
ssize_t noise_seal_data(struct noise_keypair *kp, uint8_t *out, const uint8_t *plain, size_t len);
/* open verifies the AEAD first, then the replay window; returns the plaintext length
 * written to plain (which needs len - MESSAGE_MINIMUM_LEN bytes), -EBADMSG on
 * authentication failure or a short message, -EALREADY for a replayed or too-old counter. */
ssize_t noise_open_data(struct noise_keypair *kp, uint8_t *plain, const uint8_t *msg, size_t len);

#endif
