/* SPDX-License-Identifier: MIT */
/* WireGuard wire formats and protocol constants (whitepaper section 5 and 6). */
#ifndef TS_MESSAGES_H
#define TS_MESSAGES_H

#include <stdint.h>

#define NOISE_PUBLIC_KEY_LEN 32
#define NOISE_SYMMETRIC_KEY_LEN 32
#define NOISE_TIMESTAMP_LEN 12
#define NOISE_AUTHTAG_LEN 16
#define NOISE_HASH_LEN 32
#define COOKIE_LEN 16
#define COOKIE_NONCE_LEN 24

#define MESSAGE_INITIATION 1
#define MESSAGE_RESPONSE 2
#define MESSAGE_COOKIE_REPLY 3
#define MESSAGE_DATA 4

/* Protocol timers in seconds / counts, before any test scaling. */
#define REKEY_AFTER_MESSAGES (1ULL << 60)
#define REJECT_AFTER_MESSAGES (UINT64_MAX - (1ULL << 13))
#define REKEY_TIMEOUT 5
#define REKEY_TIMEOUT_JITTER_MAX_MS 333
#define REKEY_AFTER_TIME 120
#define REKEY_ATTEMPT_TIME 90
#define REJECT_AFTER_TIME 180
#define KEEPALIVE_TIMEOUT 10
#define COOKIE_SECRET_MAX_AGE 120
#define COOKIE_SECRET_LATENCY 5
#define INITIATIONS_PER_SECOND 50 /* the responder drops initiations closer than 20 ms */
#define MAX_TIMER_HANDSHAKES (REKEY_ATTEMPT_TIME / REKEY_TIMEOUT)

#define MESSAGE_PADDING_MULTIPLE 16
#define COUNTER_WINDOW_SIZE 8192 /* replay window, in packets (the kernel's figure) */

/* All multi-byte integers are little-endian on the wire. */
struct msg_initiation {
	uint32_t type;
	uint32_t sender_index;
	uint8_t unencrypted_ephemeral[NOISE_PUBLIC_KEY_LEN];
	uint8_t encrypted_static[NOISE_PUBLIC_KEY_LEN + NOISE_AUTHTAG_LEN];
	uint8_t encrypted_timestamp[NOISE_TIMESTAMP_LEN + NOISE_AUTHTAG_LEN];
	uint8_t mac1[COOKIE_LEN];
	uint8_t mac2[COOKIE_LEN];
} __attribute__((packed));

struct msg_response {
	uint32_t type;
	uint32_t sender_index;
	uint32_t receiver_index;
	uint8_t unencrypted_ephemeral[NOISE_PUBLIC_KEY_LEN];
	uint8_t encrypted_nothing[NOISE_AUTHTAG_LEN];
	uint8_t mac1[COOKIE_LEN];
	uint8_t mac2[COOKIE_LEN];
} __attribute__((packed));

struct msg_cookie_reply {
	uint32_t type;
	uint32_t receiver_index;
	uint8_t nonce[COOKIE_NONCE_LEN];
	uint8_t encrypted_cookie[COOKIE_LEN + NOISE_AUTHTAG_LEN];
} __attribute__((packed));

struct msg_data {
	uint32_t type;
	uint32_t receiver_index;
	uint64_t counter;
	uint8_t encrypted_data[];
} __attribute__((packed));

#define MESSAGE_INITIATION_LEN 148
#define MESSAGE_RESPONSE_LEN 92
#define MESSAGE_COOKIE_REPLY_LEN 64
#define MESSAGE_DATA_HEADER_LEN 16
#define MESSAGE_MINIMUM_LEN (MESSAGE_DATA_HEADER_LEN + NOISE_AUTHTAG_LEN)

_Static_assert(sizeof(struct msg_initiation) == MESSAGE_INITIATION_LEN, "initiation size");
_Static_assert(sizeof(struct msg_response) == MESSAGE_RESPONSE_LEN, "response size");
_Static_assert(sizeof(struct msg_cookie_reply) == MESSAGE_COOKIE_REPLY_LEN, "cookie size");
_Static_assert(sizeof(struct msg_data) == MESSAGE_DATA_HEADER_LEN, "data header size");

#endif
