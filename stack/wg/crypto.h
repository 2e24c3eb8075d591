/* SPDX-License-Identifier: MIT */
/* The primitives of WireGuard (whitepaper 5.4): HASH, MAC, HMAC, KDF, AEAD,
 * XAEAD and DH, each a thin wrapper over libb2 (BLAKE2s) or libsodium. Nothing
 * here is written by hand except HMAC, which libb2 lacks. */
#ifndef TS_CRYPTO_H
#define TS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "messages.h"

#define WGC_BLAKE2S_BLOCK_LEN 64

/* Lets libsodium pick its fastest implementations and, the first time, chooses the
 * transport AEAD (crypto_aead.h: loads libcrypto unless TUNSHIM_AEAD=libsodium).
 * Called when a device is made, so a process that never starts a tunnel never loads
 * libcrypto. Idempotent. 0 or -EIO. */
int wgc_init(void);

/* HASH(in): BLAKE2s-256. */
void wgc_hash(uint8_t out[NOISE_HASH_LEN], const uint8_t *in, size_t len);
/* HASH(a || b), the shape every handshake hash has. */
void wgc_hash2(uint8_t out[NOISE_HASH_LEN], const uint8_t *a, size_t a_len,
	       const uint8_t *b, size_t b_len);
/* MAC(key, in): keyed BLAKE2s with a 16-byte output; key is 1..32 bytes. */
void wgc_mac(uint8_t out[COOKIE_LEN], const uint8_t *key, size_t key_len,
	     const uint8_t *in, size_t len);
/* HMAC(key, in) with BLAKE2s-256 as the hash (RFC 2104, 64-byte blocks). */
void wgc_hmac(uint8_t out[NOISE_HASH_LEN], const uint8_t *key, size_t key_len,
	      const uint8_t *in, size_t len);
/* KDF_n(ck, in) for n = 1..3: pass NULL for t3, or for t2 and t3, when fewer
 * outputs are wanted. Each output is NOISE_HASH_LEN bytes; outputs may alias ck. */
void wgc_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[NOISE_HASH_LEN],
	     const uint8_t *in, size_t len);

/* AEAD: ChaCha20-Poly1305 (IETF), nonce = 4 zero bytes || LE64 counter, always
 * libsodium: the handshake's. Transport data goes through crypto_aead.h instead.
 * dst gets len + NOISE_AUTHTAG_LEN bytes. */
void wgc_aead_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		      size_t ad_len, uint64_t counter, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN]);
/* dst gets len - NOISE_AUTHTAG_LEN bytes; 0, or -EBADMSG when it does not verify. */
int wgc_aead_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		     size_t ad_len, uint64_t counter, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN]);
/* XAEAD: XChaCha20-Poly1305 with a 24-byte nonce; same shapes as above. */
void wgc_xaead_encrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		       size_t ad_len, const uint8_t nonce[COOKIE_NONCE_LEN],
		       const uint8_t key[NOISE_SYMMETRIC_KEY_LEN]);
int wgc_xaead_decrypt(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
		      size_t ad_len, const uint8_t nonce[COOKIE_NONCE_LEN],
		      const uint8_t key[NOISE_SYMMETRIC_KEY_LEN]);

/* DH(priv, pub): X25519; -EINVAL when the result is all zero (a low-order point). */
int wgc_dh(uint8_t out[NOISE_PUBLIC_KEY_LEN], const uint8_t priv[NOISE_PUBLIC_KEY_LEN],
	   const uint8_t pub[NOISE_PUBLIC_KEY_LEN]);
void wgc_clamp(uint8_t key[NOISE_PUBLIC_KEY_LEN]);
/* Public key of a (clamped or not) private key; -EINVAL for a degenerate key. */
int wgc_pubkey(uint8_t pub[NOISE_PUBLIC_KEY_LEN], const uint8_t priv[NOISE_PUBLIC_KEY_LEN]);
/* A fresh clamped private key and its public key (the handshake's ephemerals). */
void wgc_keypair_generate(uint8_t priv[NOISE_PUBLIC_KEY_LEN], uint8_t pub[NOISE_PUBLIC_KEY_LEN]);

/* h = HASH(h || in) */
void wgc_mix_hash(uint8_t h[NOISE_HASH_LEN], const uint8_t *in, size_t len);
/* ck, key = KDF2(ck, in) */
void wgc_mix_key(uint8_t ck[NOISE_HASH_LEN], uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
		 const uint8_t *in, size_t len);

#endif
