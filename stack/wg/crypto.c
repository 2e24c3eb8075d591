/* SPDX-License-Identifier: MIT */
/* WireGuard's primitives (whitepaper 5.4) over libb2 and libsodium. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <blake2.h>
#include <sodium.h>

#include "crypto.h"
#include "crypto_aead.h"

int wgc_init(void)
{
	static bool aead_chosen;

	if (sodium_init() < 0)
		return -EIO;
	/* Once per process, by whoever starts a device first. secure_getenv: a setuid
	 * or setcap program ignores TUNSHIM_* (the shim never starts a tunnel there
	 * anyway). */
	if (!__atomic_exchange_n(&aead_chosen, true, __ATOMIC_ACQ_REL))
		wgc_aead_select(secure_getenv("TUNSHIM_AEAD"), WGC_LIBCRYPTO);
	return 0;
}

void wgc_hash(uint8_t out[NOISE_HASH_LEN], const uint8_t *in, size_t len)
{
	blake2s(out, in, NULL, NOISE_HASH_LEN, len, 0);
}

void wgc_hash2(uint8_t out[NOISE_HASH_LEN], const uint8_t *a, size_t a_len,
	       const uint8_t *b, size_t b_len)
{
	blake2s_state st;

	blake2s_init(&st, NOISE_HASH_LEN);
	blake2s_update(&st, a, a_len);
	blake2s_update(&st, b, b_len);
	blake2s_final(&st, out, NOISE_HASH_LEN);
	sodium_memzero(&st, sizeof(st));
}

void wgc_mac(uint8_t out[COOKIE_LEN], const uint8_t *key, size_t key_len,
	     const uint8_t *in, size_t len)
{
	blake2s(out, in, key, COOKIE_LEN, len, key_len);
}

static void xor_block(uint8_t block[WGC_BLAKE2S_BLOCK_LEN], uint8_t pad)
{
	size_t i;

	for (i = 0; i < WGC_BLAKE2S_BLOCK_LEN; i++)
		block[i] ^= pad;
}

/* libb2 has no HMAC: H((K ^ opad) || H((K ^ ipad) || in)), two BLAKE2s passes. */
void wgc_hmac(uint8_t out[NOISE_HASH_LEN], const uint8_t *key, size_t key_len,
	      const uint8_t *in, size_t len)
{
	uint8_t block[WGC_BLAKE2S_BLOCK_LEN] = { 0 };
	uint8_t inner[NOISE_HASH_LEN];

	if (key_len > WGC_BLAKE2S_BLOCK_LEN)
		wgc_hash(block, key, key_len);
	else
		memcpy(block, key, key_len);
	xor_block(block, 0x36);
	wgc_hash2(inner, block, sizeof(block), in, len);
	xor_block(block, 0x36 ^ 0x5c);
	wgc_hash2(out, block, sizeof(block), inner, sizeof(inner));
	sodium_memzero(block, sizeof(block));
	sodium_memzero(inner, sizeof(inner));
}

/* HKDF as WireGuard uses it: secret = HMAC(ck, in), t_i = HMAC(secret, t_{i-1} || i).
 * The outputs are written only after ck has been read, so they may alias it. */
void wgc_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[NOISE_HASH_LEN],
	     const uint8_t *in, size_t len)
{
	uint8_t *outs[3] = { t1, t2, t3 };
	uint8_t secret[NOISE_HASH_LEN], prev[NOISE_HASH_LEN + 1], next[NOISE_HASH_LEN];
	size_t prev_len = 0;
	int i;

	wgc_hmac(secret, ck, NOISE_HASH_LEN, in, len);
	for (i = 0; i < 3 && outs[i]; i++) {
		prev[prev_len] = (uint8_t)(i + 1);
		wgc_hmac(next, secret, sizeof(secret), prev, prev_len + 1);
		memcpy(outs[i], next, NOISE_HASH_LEN);
		memcpy(prev, next, NOISE_HASH_LEN);
		prev_len = NOISE_HASH_LEN;
	}
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(prev, sizeof(prev));
	sodium_memzero(next, sizeof(next));
}

void wgc_aead_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		      size_t ad_len, uint64_t counter, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN])
{
	uint8_t nonce[WGC_AEAD_NONCE_LEN];

	wgc_aead_nonce(nonce, counter);
	crypto_aead_chacha20poly1305_ietf_encrypt(dst, NULL, src, len, ad, ad_len, NULL,
						  nonce, key);
}

int wgc_aead_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		     size_t ad_len, uint64_t counter, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN])
{
	uint8_t nonce[WGC_AEAD_NONCE_LEN];

	if (len < NOISE_AUTHTAG_LEN)
		return -EBADMSG;
	wgc_aead_nonce(nonce, counter);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(dst, NULL, NULL, src, len, ad, ad_len,
						      nonce, key) != 0)
		return -EBADMSG;
	return 0;
}

void wgc_xaead_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		       size_t ad_len, const uint8_t nonce[COOKIE_NONCE_LEN],
		       const uint8_t key[NOISE_SYMMETRIC_KEY_LEN])
{
	crypto_aead_xchacha20poly1305_ietf_encrypt(dst, NULL, src, len, ad, ad_len, NULL,
						   nonce, key);
}

int wgc_xaead_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		      size_t ad_len, const uint8_t nonce[COOKIE_NONCE_LEN],
		      const uint8_t key[NOISE_SYMMETRIC_KEY_LEN])
{
	if (len < NOISE_AUTHTAG_LEN)
		return -EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dst, NULL, NULL, src, len, ad, ad_len,
						       nonce, key) != 0)
		return -EBADMSG;
	return 0;
}

/* An all-zero result means the peer sent a low-order point: contributory
 * behaviour is lost, so the handshake must not go on with it. */
int wgc_dh(uint8_t out[NOISE_PUBLIC_KEY_LEN], const uint8_t priv[NOISE_PUBLIC_KEY_LEN],
	   const uint8_t pub[NOISE_PUBLIC_KEY_LEN])
{
	if (crypto_scalarmult(out, priv, pub) != 0 || sodium_is_zero(out, NOISE_PUBLIC_KEY_LEN)) {
		sodium_memzero(out, NOISE_PUBLIC_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

void wgc_clamp(uint8_t key[NOISE_PUBLIC_KEY_LEN])
{
	key[0] &= 248;
	key[31] = (key[31] & 127) | 64;
}

int wgc_pubkey(uint8_t pub[NOISE_PUBLIC_KEY_LEN], const uint8_t priv[NOISE_PUBLIC_KEY_LEN])
{
	if (crypto_scalarmult_base(pub, priv) != 0)
		return -EINVAL;
	return 0;
}

void wgc_keypair_generate(uint8_t priv[NOISE_PUBLIC_KEY_LEN], uint8_t pub[NOISE_PUBLIC_KEY_LEN])
{
	randombytes_buf(priv, NOISE_PUBLIC_KEY_LEN);
	wgc_clamp(priv);
	/* A clamped scalar is never zero, so the base-point multiple is never the identity. */
	crypto_scalarmult_base(pub, priv);
}

void wgc_mix_hash(uint8_t h[NOISE_HASH_LEN], const uint8_t *in, size_t len)
{
	wgc_hash2(h, h, NOISE_HASH_LEN, in, len);
}

void wgc_mix_key(uint8_t ck[NOISE_HASH_LEN], uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
		 const uint8_t *in, size_t len)
{
	wgc_kdf(ck, key, NULL, ck, in, len);
}
