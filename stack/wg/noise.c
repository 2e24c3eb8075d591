/* SPDX-License-Identifier: MIT */
/* Noise_IKpsk2 as WireGuard uses it (whitepaper 5.4.2 - 5.4.6), and the
 * transport data messages (5.4.6). Each handshake step carries the Noise token
 * it implements. Errors: -EBADMSG for a message that does not authenticate,
 * -EINVAL for a call in the wrong state (or a message meant for another
 * handshake), -EALREADY / -EBUSY for replayed or flooding initiations,
 * -EKEYEXPIRED for a keypair that may no longer be used. */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "crypto.h"
#include "crypto_aead.h"
#include "noise.h"

#define NSEC_PER_SEC 1000000000ULL
/* TAI64 labels second s of 1970 as 2^62 + 10 + s (TAI was 10 s ahead of UTC). */
#define TAI64_EPOCH 0x400000000000000aULL
/* wireguard-go whitens the nanoseconds so a timestamp does not fingerprint the clock. */
#define TAI64N_WHITENER_MASK ((1U << 24) - 1)

static const uint8_t construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const uint8_t identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
static const uint8_t empty[1];

int noise_identity_init(struct noise_static_identity *id, const uint8_t private_key[32])
{
	int ret = wgc_init();

	if (ret)
		return ret;
	memcpy(id->private_key, private_key, NOISE_PUBLIC_KEY_LEN);
	wgc_clamp(id->private_key);
	ret = wgc_pubkey(id->public_key, id->private_key);
	if (ret)
		sodium_memzero(id, sizeof(*id));
	return ret;
}

/* On a degenerate key the peer keeps its identity; only the precomputed DH
 * stays zero, which makes every initiation to it fail. */
int noise_handshake_init(struct noise_handshake *hs, const struct noise_static_identity *local,
			 const uint8_t remote_static[32], const uint8_t psk[32])
{
	sodium_memzero(hs, sizeof(*hs));
	memcpy(hs->remote_static, remote_static, NOISE_PUBLIC_KEY_LEN);
	if (psk)
		memcpy(hs->preshared_key, psk, NOISE_SYMMETRIC_KEY_LEN);
	return wgc_dh(hs->precomputed_static_static, local->private_key, remote_static);
}

/* The local index stays: the caller's index table may still point at it. */
void noise_handshake_clear(struct noise_handshake *hs)
{
	sodium_memzero(hs->ephemeral_private, sizeof(hs->ephemeral_private));
	sodium_memzero(hs->remote_ephemeral, sizeof(hs->remote_ephemeral));
	sodium_memzero(hs->hash, sizeof(hs->hash));
	sodium_memzero(hs->chaining_key, sizeof(hs->chaining_key));
	hs->remote_index = 0;
	hs->state = HANDSHAKE_ZEROED;
}

void noise_tai64n_now(uint8_t out[NOISE_TIMESTAMP_LEN])
{
	struct timespec ts;
	uint64_t sec;
	uint32_t nsec;

	clock_gettime(CLOCK_REALTIME, &ts);
	sec = htobe64(TAI64_EPOCH + (uint64_t)ts.tv_sec);
	nsec = htobe32((uint32_t)ts.tv_nsec & ~TAI64N_WHITENER_MASK);
	memcpy(out, &sec, sizeof(sec));
	memcpy(out + sizeof(sec), &nsec, sizeof(nsec));
}

/* ck = HASH(CONSTRUCTION); h = HASH(HASH(ck || IDENTIFIER) || responder's static) */
static void handshake_start(uint8_t ck[NOISE_HASH_LEN], uint8_t h[NOISE_HASH_LEN],
			    const uint8_t responder_static[NOISE_PUBLIC_KEY_LEN])
{
	wgc_hash(ck, construction, sizeof(construction) - 1);
	wgc_hash2(h, ck, NOISE_HASH_LEN, identifier, sizeof(identifier) - 1);
	wgc_mix_hash(h, responder_static, NOISE_PUBLIC_KEY_LEN);
}

/* An ephemeral travels in the clear, so it goes into both the hash and the chaining key. */
static void mix_ephemeral(uint8_t ck[NOISE_HASH_LEN], uint8_t h[NOISE_HASH_LEN],
			  const uint8_t e_pub[NOISE_PUBLIC_KEY_LEN])
{
	wgc_mix_hash(h, e_pub, NOISE_PUBLIC_KEY_LEN);
	wgc_kdf(ck, NULL, NULL, ck, e_pub, NOISE_PUBLIC_KEY_LEN);
}

static int mix_dh(uint8_t ck[NOISE_HASH_LEN], uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
		  const uint8_t priv[NOISE_PUBLIC_KEY_LEN], const uint8_t pub[NOISE_PUBLIC_KEY_LEN])
{
	uint8_t dh[NOISE_PUBLIC_KEY_LEN];
	int ret = wgc_dh(dh, priv, pub);

	if (!ret)
		wgc_mix_key(ck, key, dh, sizeof(dh));
	sodium_memzero(dh, sizeof(dh));
	return ret;
}

/* The static-static DH was computed once by noise_handshake_init. */
static int mix_precomputed_dh(uint8_t ck[NOISE_HASH_LEN], uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
			      const uint8_t dh[NOISE_PUBLIC_KEY_LEN])
{
	if (sodium_is_zero(dh, NOISE_PUBLIC_KEY_LEN))
		return -EINVAL;
	wgc_mix_key(ck, key, dh, NOISE_PUBLIC_KEY_LEN);
	return 0;
}

/* ck, tau, key = KDF3(ck, psk); h = HASH(h || tau) */
static void mix_psk(uint8_t ck[NOISE_HASH_LEN], uint8_t h[NOISE_HASH_LEN],
		    uint8_t key[NOISE_SYMMETRIC_KEY_LEN], const uint8_t psk[NOISE_SYMMETRIC_KEY_LEN])
{
	uint8_t tau[NOISE_HASH_LEN];

	wgc_kdf(ck, tau, key, ck, psk, NOISE_SYMMETRIC_KEY_LEN);
	wgc_mix_hash(h, tau, sizeof(tau));
	sodium_memzero(tau, sizeof(tau));
}

/* dst = AEAD(key, 0, src, h); h = HASH(h || dst) */
static void encrypt_and_hash(uint8_t *dst, const uint8_t *src, size_t len,
			     const uint8_t key[NOISE_SYMMETRIC_KEY_LEN], uint8_t h[NOISE_HASH_LEN])
{
	wgc_aead_encrypt(dst, src, len, h, NOISE_HASH_LEN, 0, key);
	wgc_mix_hash(h, dst, len + NOISE_AUTHTAG_LEN);
}

/* len is the ciphertext length, tag included. */
static int decrypt_and_hash(uint8_t *dst, const uint8_t *src, size_t len,
			    const uint8_t key[NOISE_SYMMETRIC_KEY_LEN], uint8_t h[NOISE_HASH_LEN])
{
	if (wgc_aead_decrypt(dst, src, len, h, NOISE_HASH_LEN, 0, key))
		return -EBADMSG;
	wgc_mix_hash(h, src, len);
	return 0;
}

int noise_create_initiation(struct noise_handshake *hs, const struct noise_static_identity *local,
			    uint32_t local_index, const uint8_t timestamp[NOISE_TIMESTAMP_LEN],
			    struct msg_initiation *out)
{
	uint8_t key[NOISE_SYMMETRIC_KEY_LEN];
	int ret;

	memset(out, 0, sizeof(*out));
	out->type = htole32(MESSAGE_INITIATION);
	out->sender_index = htole32(local_index);
	handshake_start(hs->chaining_key, hs->hash, hs->remote_static);

	/* e */
	wgc_keypair_generate(hs->ephemeral_private, out->unencrypted_ephemeral);
	mix_ephemeral(hs->chaining_key, hs->hash, out->unencrypted_ephemeral);
	/* es */
	ret = mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_static);
	if (ret)
		goto out;
	/* s */
	encrypt_and_hash(out->encrypted_static, local->public_key, NOISE_PUBLIC_KEY_LEN, key,
			 hs->hash);
	/* ss */
	ret = mix_precomputed_dh(hs->chaining_key, key, hs->precomputed_static_static);
	if (ret)
		goto out;
	/* {t} */
	encrypt_and_hash(out->encrypted_timestamp, timestamp, NOISE_TIMESTAMP_LEN, key, hs->hash);

	hs->local_index = local_index;
	hs->remote_index = 0;
	hs->state = HANDSHAKE_CREATED_INITIATION;
out:
	sodium_memzero(key, sizeof(key));
	if (ret) {
		noise_handshake_clear(hs);
		memset(out, 0, sizeof(*out));
	}
	return ret;
}

int noise_consume_initiation(const struct noise_static_identity *local,
			     const struct msg_initiation *msg, struct noise_initiation_result *out)
{
	uint8_t ck[NOISE_HASH_LEN], h[NOISE_HASH_LEN], key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t e[NOISE_PUBLIC_KEY_LEN], s[NOISE_PUBLIC_KEY_LEN], t[NOISE_TIMESTAMP_LEN];
	int ret = -EBADMSG;

	if (le32toh(msg->type) != MESSAGE_INITIATION)
		goto out;
	handshake_start(ck, h, local->public_key);

	/* e */
	memcpy(e, msg->unencrypted_ephemeral, sizeof(e));
	mix_ephemeral(ck, h, e);
	/* es */
	if (mix_dh(ck, key, local->private_key, e))
		goto out;
	/* s */
	if (decrypt_and_hash(s, msg->encrypted_static, sizeof(msg->encrypted_static), key, h))
		goto out;
	/* ss */
	if (mix_dh(ck, key, local->private_key, s))
		goto out;
	/* {t} */
	if (decrypt_and_hash(t, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp), key, h))
		goto out;

	memcpy(out->remote_static, s, sizeof(s));
	memcpy(out->remote_ephemeral, e, sizeof(e));
	memcpy(out->hash, h, sizeof(h));
	memcpy(out->chaining_key, ck, sizeof(ck));
	memcpy(out->timestamp, t, sizeof(t));
	out->remote_index = le32toh(msg->sender_index);
	ret = 0;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(h, sizeof(h));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(e, sizeof(e));
	sodium_memzero(s, sizeof(s));
	sodium_memzero(t, sizeof(t));
	if (ret)
		sodium_memzero(out, sizeof(*out));
	return ret;
}

/* An initiation's timestamp must grow (a replayed initiation would otherwise
 * reset the session), and one per 1/INITIATIONS_PER_SECOND is enough. */
int noise_accept_initiation(struct noise_handshake *hs, const struct noise_initiation_result *r,
			    uint64_t now)
{
	const uint64_t interval = NSEC_PER_SEC / INITIATIONS_PER_SECOND;

	if (sodium_memcmp(hs->remote_static, r->remote_static, NOISE_PUBLIC_KEY_LEN))
		return -EINVAL;
	if (memcmp(r->timestamp, hs->latest_timestamp, NOISE_TIMESTAMP_LEN) <= 0)
		return -EALREADY;
	if (hs->last_initiation_consumption && now < hs->last_initiation_consumption + interval)
		return -EBUSY;

	sodium_memzero(hs->ephemeral_private, sizeof(hs->ephemeral_private));
	memcpy(hs->remote_ephemeral, r->remote_ephemeral, NOISE_PUBLIC_KEY_LEN);
	memcpy(hs->hash, r->hash, NOISE_HASH_LEN);
	memcpy(hs->chaining_key, r->chaining_key, NOISE_HASH_LEN);
	memcpy(hs->latest_timestamp, r->timestamp, NOISE_TIMESTAMP_LEN);
	hs->last_initiation_consumption = now;
	hs->remote_index = r->remote_index;
	hs->state = HANDSHAKE_CONSUMED_INITIATION;
	return 0;
}

int noise_create_response(struct noise_handshake *hs, uint32_t local_index,
			  struct msg_response *out)
{
	uint8_t key[NOISE_SYMMETRIC_KEY_LEN];
	int ret;

	memset(out, 0, sizeof(*out));
	if (hs->state != HANDSHAKE_CONSUMED_INITIATION)
		return -EINVAL;
	out->type = htole32(MESSAGE_RESPONSE);
	out->sender_index = htole32(local_index);
	out->receiver_index = htole32(hs->remote_index);

	/* e */
	wgc_keypair_generate(hs->ephemeral_private, out->unencrypted_ephemeral);
	mix_ephemeral(hs->chaining_key, hs->hash, out->unencrypted_ephemeral);
	/* ee */
	ret = mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_ephemeral);
	if (ret)
		goto out;
	/* se */
	ret = mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_static);
	if (ret)
		goto out;
	/* psk */
	mix_psk(hs->chaining_key, hs->hash, key, hs->preshared_key);
	/* {} */
	encrypt_and_hash(out->encrypted_nothing, empty, 0, key, hs->hash);

	hs->local_index = local_index;
	hs->state = HANDSHAKE_CREATED_RESPONSE;
out:
	sodium_memzero(key, sizeof(key));
	if (ret) {
		noise_handshake_clear(hs);
		memset(out, 0, sizeof(*out));
	}
	return ret;
}

/* Works on copies of h and ck: a forged response must not spoil the real one. */
int noise_consume_response(struct noise_handshake *hs, const struct noise_static_identity *local,
			   const struct msg_response *msg)
{
	uint8_t ck[NOISE_HASH_LEN], h[NOISE_HASH_LEN], key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t e[NOISE_PUBLIC_KEY_LEN], nothing[1];
	int ret = -EBADMSG;

	if (hs->state != HANDSHAKE_CREATED_INITIATION || le32toh(msg->type) != MESSAGE_RESPONSE ||
	    le32toh(msg->receiver_index) != hs->local_index)
		return -EINVAL;
	memcpy(ck, hs->chaining_key, sizeof(ck));
	memcpy(h, hs->hash, sizeof(h));

	/* e */
	memcpy(e, msg->unencrypted_ephemeral, sizeof(e));
	mix_ephemeral(ck, h, e);
	/* ee */
	if (mix_dh(ck, key, hs->ephemeral_private, e))
		goto out;
	/* se */
	if (mix_dh(ck, key, local->private_key, e))
		goto out;
	/* psk */
	mix_psk(ck, h, key, hs->preshared_key);
	/* {} */
	if (decrypt_and_hash(nothing, msg->encrypted_nothing, sizeof(msg->encrypted_nothing), key, h))
		goto out;

	sodium_memzero(hs->ephemeral_private, sizeof(hs->ephemeral_private));
	memcpy(hs->remote_ephemeral, e, sizeof(e));
	memcpy(hs->hash, h, sizeof(h));
	memcpy(hs->chaining_key, ck, sizeof(ck));
	hs->remote_index = le32toh(msg->sender_index);
	hs->state = HANDSHAKE_CONSUMED_RESPONSE;
	ret = 0;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(h, sizeof(h));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(e, sizeof(e));
	return ret;
}

/* T_send, T_recv = KDF2(ck, empty) for the initiator; the responder swaps them. */
int noise_derive_keypair(struct noise_handshake *hs, struct noise_keypair *kp, uint64_t now)
{
	bool initiator;

	if (hs->state == HANDSHAKE_CONSUMED_RESPONSE)
		initiator = true;
	else if (hs->state == HANDSHAKE_CREATED_RESPONSE)
		initiator = false;
	else
		return -EINVAL;

	noise_keypair_clear(kp);
	if (initiator)
		wgc_kdf(kp->send_key, kp->recv_key, NULL, hs->chaining_key, empty, 0);
	else
		wgc_kdf(kp->recv_key, kp->send_key, NULL, hs->chaining_key, empty, 0);
	/* The keys are set once per keypair, not per packet; a NULL context (no
	 * libcrypto, or no memory for it) means that direction uses libsodium. */
	kp->send_aead = wgc_aead_new(kp->send_key, true);
	kp->recv_aead = wgc_aead_new(kp->recv_key, false);
	replay_init(&kp->replay);
	kp->local_index = hs->local_index;
	kp->remote_index = hs->remote_index;
	kp->birth = now;
	kp->is_initiator = initiator;
	kp->valid = true;
	noise_handshake_clear(hs);
	return 0;
}

/* libcrypto wipes its copies of the keys as it frees the contexts; ours go with
 * the rest of the keypair. */
void noise_keypair_clear(struct noise_keypair *kp)
{
	wgc_aead_free(kp->send_aead);
	wgc_aead_free(kp->recv_aead);
	sodium_memzero(kp, sizeof(*kp));
	kp->valid = false;
}

ssize_t noise_seal_data(struct noise_keypair *kp, uint8_t *out, const uint8_t *plain, size_t len)
{
	struct msg_data *hdr = (struct msg_data *)out;
	uint8_t nonce[WGC_AEAD_NONCE_LEN];
	uint64_t counter;

	if (!kp->valid || kp->send_counter >= REJECT_AFTER_MESSAGES)
		return -EKEYEXPIRED;
	if (len > SSIZE_MAX - MESSAGE_MINIMUM_LEN)
		return -EMSGSIZE;
	counter = kp->send_counter++;
	hdr->type = htole32(MESSAGE_DATA);
	hdr->receiver_index = htole32(kp->remote_index);
	hdr->counter = htole64(counter);
	wgc_aead_nonce(nonce, counter);
	wgc_aead_seal(kp->send_aead, kp->send_key, nonce, hdr->encrypted_data, len ? plain : empty,
		      len, NULL, 0);
	return (ssize_t)(MESSAGE_MINIMUM_LEN + len);
}

/* The replay window is touched only once the AEAD has proven the counter genuine,
 * or forged counters could slide it. */
ssize_t noise_open_data(struct noise_keypair *kp, uint8_t *plain, const uint8_t *msg, size_t len)
{
	const struct msg_data *hdr = (const struct msg_data *)msg;
	uint8_t nonce[WGC_AEAD_NONCE_LEN];
	size_t plain_len;
	uint64_t counter;

	if (len < MESSAGE_MINIMUM_LEN || len > SSIZE_MAX)
		return -EBADMSG;
	if (!kp->valid)
		return -EKEYEXPIRED;
	if (le32toh(hdr->type) != MESSAGE_DATA || le32toh(hdr->receiver_index) != kp->local_index)
		return -EBADMSG;
	plain_len = len - MESSAGE_MINIMUM_LEN;
	counter = le64toh(hdr->counter);
	wgc_aead_nonce(nonce, counter);
	/* On failure plain holds zeros: nothing unverified reaches the caller. */
	if (wgc_aead_open(kp->recv_aead, kp->recv_key, nonce, plain, hdr->encrypted_data,
			  len - MESSAGE_DATA_HEADER_LEN, NULL, 0))
		return -EBADMSG;
	if (!replay_check(&kp->replay, counter)) {
		if (plain_len)
			sodium_memzero(plain, plain_len);
		return -EALREADY;
	}
	return (ssize_t)plain_len;
}
