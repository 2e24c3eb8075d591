/* SPDX-License-Identifier: MIT */
/* mac1/mac2 and cookie replies (whitepaper 5.4.4 and 5.4.7). Byte arrays, time passed in (ns). */
#ifndef TS_COOKIE_H
#define TS_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "messages.h"

/* Our side as responder: validates macs of messages sent to us, makes cookie replies. */
struct cookie_checker {
	uint8_t secret[NOISE_HASH_LEN];
	uint64_t secret_birth;                 /* ns; rotated every COOKIE_SECRET_MAX_AGE */
	bool have_secret;
	uint8_t cookie_encryption_key[NOISE_SYMMETRIC_KEY_LEN]; /* HASH("cookie--" || our pub) */
	uint8_t message_mac1_key[NOISE_SYMMETRIC_KEY_LEN];      /* HASH("mac1----" || our pub) */
};

/* Our side as sender towards one peer: adds macs, consumes that peer's cookie replies. */
struct cookie_maker {
	uint8_t cookie[COOKIE_LEN];
	uint64_t cookie_birth;                 /* ns */
	bool have_cookie;                      /* valid for COOKIE_SECRET_MAX_AGE - LATENCY */
	uint8_t last_mac1_sent[COOKIE_LEN];
	bool have_sent_mac1;
	uint8_t cookie_decryption_key[NOISE_SYMMETRIC_KEY_LEN]; /* HASH("cookie--" || peer pub) */
	uint8_t message_mac1_key[NOISE_SYMMETRIC_KEY_LEN];      /* HASH("mac1----" || peer pub) */
};

enum cookie_mac_state {
	COOKIE_INVALID_MAC,
	COOKIE_VALID_MAC_BUT_NO_COOKIE,
	COOKIE_VALID_MAC_WITH_COOKIE,
};

void cookie_checker_init(struct cookie_checker *c, const uint8_t local_public[32]);
void cookie_maker_init(struct cookie_maker *m, const uint8_t remote_public[32]);

/* msg is a whole initiation or response (len 148 or 92), macs in its last 32 bytes.
 * src is the sender's outer address as bytes (IP then port, any fixed encoding the
 * checker uses consistently). mac2 is only checked when check_cookie is true. */
enum cookie_mac_state cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
				      const uint8_t *src, size_t src_len, bool check_cookie,
				      uint64_t now);
/* Writes mac1 (and mac2 when a fresh cookie is held) into the last 32 bytes of msg and
 * remembers mac1 for a cookie reply. */
void cookie_add_macs(struct cookie_maker *m, uint8_t *msg, size_t len, uint64_t now);
/* The reply to msg (whose mac1 is its associated data), addressed to sender_index. */
void cookie_create_reply(struct cookie_checker *c, struct msg_cookie_reply *out,
			 const uint8_t *msg, size_t len, uint32_t sender_index,
			 const uint8_t *src, size_t src_len, uint64_t now);
/* Decrypts a reply with the mac1 we last sent; -EBADMSG if it does not open,
 * -ENOENT if we never sent a mac1. */
int cookie_consume_reply(struct cookie_maker *m, const struct msg_cookie_reply *msg, uint64_t now);

#endif
