/* SPDX-License-Identifier: MIT */
/* The transport AEAD: ChaCha20-Poly1305 for data messages only (handshakes and
 * cookies stay with crypto.h, libsodium). Data messages are where the bytes are, and
 * OpenSSL 3's libcrypto seals and opens 1420-byte packets about 1.5 times as fast as
 * libsodium 1.0.18 on these machines (AVX-512; tests/unit/bench_transport.c).
 * libcrypto is never a link-time dependency: it is loaded with dlopen when a tunnel
 * starts (wgc_init), and libsodium does the work when it is missing, lacks a
 * function, or TUNSHIM_AEAD=libsodium says so. Both give the same bytes
 * (tests/unit/test_aead.c).
 *
 * Per keypair and direction, wgc_aead_new prepares a libcrypto context with the key
 * set once; each packet then only sets its nonce. Only the stack thread uses a
 * context (one at a time, like the keypair that holds it). */
#ifndef TS_CRYPTO_AEAD_H
#define TS_CRYPTO_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "messages.h"

#define WGC_AEAD_NONCE_LEN 12
/* OpenSSL 3.x keeps this soname, and with it the prototypes crypto_aead.c declares. */
#define WGC_LIBCRYPTO "libcrypto.so.3"

enum wgc_aead_impl { WGC_AEAD_LIBSODIUM, WGC_AEAD_LIBCRYPTO };

/* A libcrypto context prepared with one key for one direction. NULL stands for
 * libsodium everywhere below. */
struct wgc_aead;

/* Chooses the implementation for the contexts made from now on. setting is
 * TUNSHIM_AEAD's value: NULL, "" or "libcrypto" take libcrypto from soname if it
 * loads and has every function used here, "libsodium" (or anything else, with a
 * warning) takes libsodium. Logs the choice at debug level and returns it. Loads the
 * library at most once and never unloads it (its contexts may outlive the choice).
 * Not for concurrent calls: wgc_init makes the one call a process needs. */
enum wgc_aead_impl wgc_aead_select(const char *setting, const char *soname);
enum wgc_aead_impl wgc_aead_impl(void);

/* A context for key (seal: sealing, else opening), or NULL when libsodium is chosen
 * or libcrypto could not make one: callers keep the key and pass both below. */
struct wgc_aead *wgc_aead_new(const uint8_t key[NOISE_SYMMETRIC_KEY_LEN], bool seal);
/* Frees a context; libcrypto wipes the key in it. NULL is fine. */
void wgc_aead_free(struct wgc_aead *a);

/* The 96-bit nonce of a transport message: 4 zero bytes || LE64 counter. */
void wgc_aead_nonce(uint8_t nonce[WGC_AEAD_NONCE_LEN], uint64_t counter);

/* dst gets len + NOISE_AUTHTAG_LEN bytes (ciphertext, then tag). a is a context made
 * for sealing with key, or NULL; should libcrypto fail, libsodium seals instead. */
void wgc_aead_seal(struct wgc_aead *a, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
		   const uint8_t nonce[WGC_AEAD_NONCE_LEN], uint8_t *dst, const uint8_t *src,
		   size_t len, const uint8_t *ad, size_t ad_len);
/* len counts the tag; dst gets len - NOISE_AUTHTAG_LEN bytes. 0, or -EBADMSG when it
 * does not verify, and then dst holds zeros, never unverified plaintext. */
int wgc_aead_open(struct wgc_aead *a, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
		  const uint8_t nonce[WGC_AEAD_NONCE_LEN], uint8_t *dst, const uint8_t *src,
		  size_t len, const uint8_t *ad, size_t ad_len);

#endif
