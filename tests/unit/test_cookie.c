/* SPDX-License-Identifier: MIT */
/* mac1/mac2 and cookie replies: known answers, then the under-load round trip
 * between a responder's checker and an initiator's maker, with fake times. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "cookie.h"
#include "crypto.h"

#define SEC 1000000000ULL
#define T0 (5000 * SEC)

static const uint8_t src_a[] = { 192, 0, 2, 1, 0xca, 0x6c };
static const uint8_t src_b[] = { 192, 0, 2, 2, 0xca, 0x6c };

static void unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t got = 0;

	if (sodium_hex2bin(out, len, hex, strlen(hex), NULL, &got, NULL) != 0 || got != len)
		memset(out, 0xee, len);
}

static void pattern(uint8_t *msg, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		msg[i] = (uint8_t)(i * 7 + 3);
}

/* Expected values computed with Python's hashlib.blake2s for the public key
 * 00 01 .. 1f and the message bytes (7 i + 3) mod 256. */
static void test_vectors(void)
{
	static const struct {
		size_t len;
		const char *mac1;
	} tab[] = {
		{ MESSAGE_INITIATION_LEN, "08b7a2e4e25e9e4d152f56fc353be850" },
		{ MESSAGE_RESPONSE_LEN, "a186a57d04a1288e5707350891bb0ce6" },
	};
	uint8_t pub[32], msg[MESSAGE_INITIATION_LEN], want[32];
	struct cookie_checker c;
	struct cookie_maker m;
	size_t i;

	for (i = 0; i < sizeof(pub); i++)
		pub[i] = (uint8_t)i;
	cookie_maker_init(&m, pub);
	cookie_checker_init(&c, pub);
	unhex(want, 32, "4fb2527ac956001553dc1ad9b55171b7d9daa3de1cdbcd71451830170c7e6cac");
	CHECK_MEM(m.message_mac1_key, want, 32);
	CHECK_MEM(c.message_mac1_key, want, 32);
	unhex(want, 32, "3dd5869c5202e45146936d1644f76ff697061661c181f3fd450eae43932eacec");
	CHECK_MEM(m.cookie_decryption_key, want, 32);
	CHECK_MEM(c.cookie_encryption_key, want, 32);

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		pattern(msg, tab[i].len);
		cookie_add_macs(&m, msg, tab[i].len, T0);
		unhex(want, 16, tab[i].mac1);
		CHECK_MEM(msg + tab[i].len - 32, want, 16);
		CHECK(sodium_is_zero(msg + tab[i].len - 16, 16));
		CHECK_MEM(m.last_mac1_sent, want, 16);
	}

	/* mac2 covers the message up to and including mac1. */
	for (i = 0; i < COOKIE_LEN; i++)
		m.cookie[i] = (uint8_t)(100 + i);
	m.have_cookie = true;
	m.cookie_birth = T0;
	pattern(msg, sizeof(msg));
	cookie_add_macs(&m, msg, sizeof(msg), T0);
	unhex(want, 16, "422f49493c034f86af7f9f6132ff2bfa");
	CHECK_MEM(msg + sizeof(msg) - 16, want, 16);
}

struct sides {
	uint8_t responder_pub[32];
	struct cookie_checker checker; /* at the responder */
	struct cookie_maker maker;     /* at the initiator, towards the responder */
	uint8_t msg[MESSAGE_INITIATION_LEN];
};

static void sides_init(struct sides *s)
{
	uint8_t priv[32];

	randombytes_buf(priv, sizeof(priv));
	wgc_clamp(priv);
	CHECK_INT(wgc_pubkey(s->responder_pub, priv), 0);
	cookie_checker_init(&s->checker, s->responder_pub);
	cookie_maker_init(&s->maker, s->responder_pub);
	randombytes_buf(s->msg, sizeof(s->msg));
	s->msg[0] = MESSAGE_INITIATION;
	s->msg[1] = s->msg[2] = s->msg[3] = 0;
}

static enum cookie_mac_state validate(struct sides *s, const uint8_t *src, bool load, uint64_t now)
{
	return cookie_validate(&s->checker, s->msg, sizeof(s->msg), src, sizeof(src_a), load, now);
}

static void test_mac1(void)
{
	struct sides s, other;
	size_t off;

	sides_init(&s);
	sides_init(&other);
	cookie_add_macs(&s.maker, s.msg, sizeof(s.msg), T0);
	CHECK_INT(validate(&s, src_a, false, T0), COOKIE_VALID_MAC_BUT_NO_COOKIE);
	CHECK_INT(validate(&s, src_a, true, T0), COOKIE_VALID_MAC_BUT_NO_COOKIE);
	CHECK(sodium_is_zero(s.msg + sizeof(s.msg) - 16, 16));
	/* A message meant for another key. */
	CHECK_INT(cookie_validate(&other.checker, s.msg, sizeof(s.msg), src_a, sizeof(src_a),
				  false, T0), COOKIE_INVALID_MAC);

	/* Every byte before mac2 is covered by mac1. */
	for (off = 0; off < sizeof(s.msg) - 16; off++) {
		s.msg[off] ^= 0x01;
		if (validate(&s, src_a, false, T0) != COOKIE_INVALID_MAC)
			break;
		s.msg[off] ^= 0x01;
	}
	CHECK_INT(off, sizeof(s.msg) - 16);
	/* Too short to hold macs at all. */
	CHECK_INT(cookie_validate(&s.checker, s.msg, 31, src_a, sizeof(src_a), false, T0),
		  COOKIE_INVALID_MAC);
	CHECK_INT(cookie_validate(&s.checker, s.msg, 0, src_a, sizeof(src_a), true, T0),
		  COOKIE_INVALID_MAC);
}

/* The responder is under load, answers with a cookie; the initiator resends with mac2. */
static void cookie_round_trip(struct sides *s, uint64_t now)
{
	struct msg_cookie_reply reply;
	const uint8_t *b = (const uint8_t *)&reply;

	cookie_add_macs(&s->maker, s->msg, sizeof(s->msg), now);
	CHECK_INT(validate(s, src_a, true, now), COOKIE_VALID_MAC_BUT_NO_COOKIE);
	cookie_create_reply(&s->checker, &reply, s->msg, sizeof(s->msg), 0x01020304, src_a,
			    sizeof(src_a), now);
	CHECK_INT(sizeof(reply), MESSAGE_COOKIE_REPLY_LEN);
	CHECK(b[0] == 3 && b[1] == 0 && b[2] == 0 && b[3] == 0);
	CHECK(b[4] == 4 && b[5] == 3 && b[6] == 2 && b[7] == 1);
	CHECK_INT(cookie_consume_reply(&s->maker, &reply, now), 0);
	CHECK(s->maker.have_cookie);
	/* The same reply again: the mac1 it answered is spent. */
	CHECK_INT(cookie_consume_reply(&s->maker, &reply, now), -ENOENT);
}

static void test_under_load(void)
{
	struct sides s;

	sides_init(&s);
	cookie_round_trip(&s, T0);
	cookie_add_macs(&s.maker, s.msg, sizeof(s.msg), T0 + SEC);
	CHECK(!sodium_is_zero(s.msg + sizeof(s.msg) - 16, 16));
	CHECK_INT(validate(&s, src_a, true, T0 + SEC), COOKIE_VALID_MAC_WITH_COOKIE);
	CHECK_INT(validate(&s, src_a, false, T0 + SEC), COOKIE_VALID_MAC_BUT_NO_COOKIE);
	/* The cookie is bound to the source address it was made for. */
	CHECK_INT(validate(&s, src_b, true, T0 + SEC), COOKIE_VALID_MAC_BUT_NO_COOKIE);
	/* A forged mac2. */
	s.msg[sizeof(s.msg) - 1] ^= 1;
	CHECK_INT(validate(&s, src_a, true, T0 + SEC), COOKIE_VALID_MAC_BUT_NO_COOKIE);
}

/* The maker stops using a cookie COOKIE_SECRET_LATENCY before the secret behind it rotates. */
static void test_cookie_expiry(void)
{
	const uint64_t usable = (COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY) * SEC;
	struct sides s;

	sides_init(&s);
	cookie_round_trip(&s, T0);
	cookie_add_macs(&s.maker, s.msg, sizeof(s.msg), T0 + usable - 1);
	CHECK(!sodium_is_zero(s.msg + sizeof(s.msg) - 16, 16));
	CHECK_INT(validate(&s, src_a, true, T0 + usable - 1), COOKIE_VALID_MAC_WITH_COOKIE);
	cookie_add_macs(&s.maker, s.msg, sizeof(s.msg), T0 + usable);
	CHECK(sodium_is_zero(s.msg + sizeof(s.msg) - 16, 16));
	CHECK_INT(validate(&s, src_a, true, T0 + usable), COOKIE_VALID_MAC_BUT_NO_COOKIE);
}

/* The checker's secret lives COOKIE_SECRET_MAX_AGE; cookies made with it die with it. */
static void test_secret_rotation(void)
{
	const uint64_t max_age = COOKIE_SECRET_MAX_AGE * SEC;
	uint8_t old_secret[NOISE_HASH_LEN];
	struct sides s;

	sides_init(&s);
	CHECK(!s.checker.have_secret);
	cookie_round_trip(&s, T0);
	CHECK(s.checker.have_secret);
	CHECK(s.checker.secret_birth == T0);
	memcpy(old_secret, s.checker.secret, sizeof(old_secret));

	cookie_add_macs(&s.maker, s.msg, sizeof(s.msg), T0 + 100 * SEC);
	CHECK_INT(validate(&s, src_a, true, T0 + max_age - 1), COOKIE_VALID_MAC_WITH_COOKIE);
	CHECK(s.checker.secret_birth == T0);
	CHECK_INT(validate(&s, src_a, true, T0 + max_age), COOKIE_VALID_MAC_BUT_NO_COOKIE);
	CHECK(s.checker.secret_birth == T0 + max_age);
	CHECK(memcmp(old_secret, s.checker.secret, sizeof(old_secret)) != 0);

	/* A new round trip works with the new secret. */
	cookie_round_trip(&s, T0 + max_age + SEC);
	cookie_add_macs(&s.maker, s.msg, sizeof(s.msg), T0 + max_age + 2 * SEC);
	CHECK_INT(validate(&s, src_a, true, T0 + max_age + 2 * SEC), COOKIE_VALID_MAC_WITH_COOKIE);
}

static void test_bad_replies(void)
{
	struct msg_cookie_reply reply, bad;
	uint8_t other_msg[MESSAGE_INITIATION_LEN], cookie[COOKIE_LEN];
	struct sides s;

	sides_init(&s);
	cookie_create_reply(&s.checker, &reply, s.msg, sizeof(s.msg), 1, src_a, sizeof(src_a), T0);
	/* Nothing sent yet. */
	CHECK_INT(cookie_consume_reply(&s.maker, &reply, T0), -ENOENT);

	cookie_add_macs(&s.maker, s.msg, sizeof(s.msg), T0);
	cookie_create_reply(&s.checker, &reply, s.msg, sizeof(s.msg), 1, src_a, sizeof(src_a), T0);
	/* Anyone holding the responder's public key can open it, with mac1 as AD. */
	CHECK_INT(crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL,
		reply.encrypted_cookie, sizeof(reply.encrypted_cookie), s.maker.last_mac1_sent, 16,
		reply.nonce, s.checker.cookie_encryption_key), 0);

	memcpy(&bad, &reply, sizeof(bad));
	bad.encrypted_cookie[5] ^= 1;
	CHECK_INT(cookie_consume_reply(&s.maker, &bad, T0), -EBADMSG);
	memcpy(&bad, &reply, sizeof(bad));
	bad.nonce[23] ^= 1;
	CHECK_INT(cookie_consume_reply(&s.maker, &bad, T0), -EBADMSG);
	CHECK(!s.maker.have_cookie);

	/* A reply to a message this maker did not send last. */
	memcpy(other_msg, s.msg, sizeof(other_msg));
	other_msg[9] ^= 1;
	cookie_add_macs(&s.maker, other_msg, sizeof(other_msg), T0);
	CHECK_INT(cookie_consume_reply(&s.maker, &reply, T0), -EBADMSG);
	cookie_create_reply(&s.checker, &reply, other_msg, sizeof(other_msg), 1, src_a,
			    sizeof(src_a), T0);
	CHECK_INT(cookie_consume_reply(&s.maker, &reply, T0), 0);
	sodium_memzero(cookie, sizeof(cookie));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_vectors();
	test_mac1();
	test_under_load();
	test_cookie_expiry();
	test_secret_rotation();
	test_bad_replies();
	return check_done("cookie");
}
