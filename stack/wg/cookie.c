/* SPDX-License-Identifier: MIT */
/* mac1, mac2 and cookie replies (whitepaper 5.4.4 and 5.4.7). mac1 proves the
 * sender knows our public key; mac2 proves it can receive at its source
 * address, which is what lets a responder under load answer only those. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "cookie.h"
#include "crypto.h"

#define NSEC_PER_SEC 1000000000ULL
#define MACS_LEN (2 * COOKIE_LEN)

static const uint8_t label_mac1[] = "mac1----";
static const uint8_t label_cookie[] = "cookie--";

/* HASH(label || public key) */
static void derive_key(uint8_t key[NOISE_SYMMETRIC_KEY_LEN], const uint8_t label[8],
		       const uint8_t pub[NOISE_PUBLIC_KEY_LEN])
{
	wgc_hash2(key, label, 8, pub, NOISE_PUBLIC_KEY_LEN);
}

static bool has_expired(uint64_t birth, uint64_t seconds, uint64_t now)
{
	return now >= birth + seconds * NSEC_PER_SEC;
}

void cookie_checker_init(struct cookie_checker *c, const uint8_t local_public[32])
{
	sodium_memzero(c, sizeof(*c));
	derive_key(c->cookie_encryption_key, label_cookie, local_public);
	derive_key(c->message_mac1_key, label_mac1, local_public);
}

void cookie_maker_init(struct cookie_maker *m, const uint8_t remote_public[32])
{
	sodium_memzero(m, sizeof(*m));
	derive_key(m->cookie_decryption_key, label_cookie, remote_public);
	derive_key(m->message_mac1_key, label_mac1, remote_public);
}

/* cookie = MAC(Rm, source address), Rm a random secret renewed every two minutes. */
static void make_cookie(struct cookie_checker *c, uint8_t cookie[COOKIE_LEN],
			const uint8_t *src, size_t src_len, uint64_t now)
{
	if (!c->have_secret || has_expired(c->secret_birth, COOKIE_SECRET_MAX_AGE, now)) {
		randombytes_buf(c->secret, sizeof(c->secret));
		c->secret_birth = now;
		c->have_secret = true;
	}
	wgc_mac(cookie, c->secret, sizeof(c->secret), src, src_len);
}

enum cookie_mac_state cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
				      const uint8_t *src, size_t src_len, bool check_cookie,
				      uint64_t now)
{
	enum cookie_mac_state state = COOKIE_INVALID_MAC;
	uint8_t mac[COOKIE_LEN], cookie[COOKIE_LEN];

	if (len < MACS_LEN)
		return COOKIE_INVALID_MAC;
	wgc_mac(mac, c->message_mac1_key, sizeof(c->message_mac1_key), msg, len - MACS_LEN);
	if (crypto_verify_16(mac, msg + len - MACS_LEN))
		goto out;
	state = COOKIE_VALID_MAC_BUT_NO_COOKIE;
	if (!check_cookie)
		goto out;
	make_cookie(c, cookie, src, src_len, now);
	wgc_mac(mac, cookie, sizeof(cookie), msg, len - COOKIE_LEN);
	if (!crypto_verify_16(mac, msg + len - COOKIE_LEN))
		state = COOKIE_VALID_MAC_WITH_COOKIE;
out:
	sodium_memzero(mac, sizeof(mac));
	sodium_memzero(cookie, sizeof(cookie));
	return state;
}

/* mac2 stays zero unless the cookie is young enough that the peer's secret,
 * allowing for latency, has not rotated under it. */
void cookie_add_macs(struct cookie_maker *m, uint8_t *msg, size_t len, uint64_t now)
{
	uint8_t *mac1, *mac2;

	if (len < MACS_LEN)
		return;
	mac1 = msg + len - MACS_LEN;
	mac2 = mac1 + COOKIE_LEN;
	wgc_mac(mac1, m->message_mac1_key, sizeof(m->message_mac1_key), msg, len - MACS_LEN);
	memcpy(m->last_mac1_sent, mac1, COOKIE_LEN);
	m->have_sent_mac1 = true;

	if (m->have_cookie &&
	    !has_expired(m->cookie_birth, COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY, now))
		wgc_mac(mac2, m->cookie, sizeof(m->cookie), msg, len - COOKIE_LEN);
	else
		memset(mac2, 0, COOKIE_LEN);
}

/* The reply is bound to the message it answers by using that message's mac1 as
 * associated data, so it cannot be replayed against another initiation. */
void cookie_create_reply(struct cookie_checker *c, struct msg_cookie_reply *out,
			 const uint8_t *msg, size_t len, uint32_t sender_index,
			 const uint8_t *src, size_t src_len, uint64_t now)
{
	uint8_t cookie[COOKIE_LEN];

	memset(out, 0, sizeof(*out));
	if (len < MACS_LEN)
		return;
	out->type = htole32(MESSAGE_COOKIE_REPLY);
	out->receiver_index = htole32(sender_index);
	randombytes_buf(out->nonce, sizeof(out->nonce));
	make_cookie(c, cookie, src, src_len, now);
	wgc_xaead_encrypt(out->encrypted_cookie, cookie, sizeof(cookie), msg + len - MACS_LEN,
			  COOKIE_LEN, out->nonce, c->cookie_encryption_key);
	sodium_memzero(cookie, sizeof(cookie));
}

/* A reply opens only once: the mac1 it answers is forgotten afterwards. */
int cookie_consume_reply(struct cookie_maker *m, const struct msg_cookie_reply *msg, uint64_t now)
{
	uint8_t cookie[COOKIE_LEN];

	if (!m->have_sent_mac1)
		return -ENOENT;
	if (wgc_xaead_decrypt(cookie, msg->encrypted_cookie, sizeof(msg->encrypted_cookie),
			      m->last_mac1_sent, COOKIE_LEN, msg->nonce, m->cookie_decryption_key))
		return -EBADMSG;
	memcpy(m->cookie, cookie, COOKIE_LEN);
	m->cookie_birth = now;
	m->have_cookie = true;
	m->have_sent_mac1 = false;
	sodium_memzero(cookie, sizeof(cookie));
	return 0;
}
