/* SPDX-License-Identifier: MIT */
/* The transport AEAD (crypto_aead.h): ChaCha20-Poly1305 for data messages through
 * OpenSSL's libcrypto, loaded with dlopen, with libsodium as the fallback. */
#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "crypto_aead.h"
#include "log.h"

/* OpenSSL 3's own values (evp.h, crypto.h), declared by hand like the prototypes
 * below, so that building needs no libssl-dev: libssl3 is on every Debian system. */
#define EVP_CTRL_AEAD_GET_TAG 0x10
#define EVP_CTRL_AEAD_SET_TAG 0x11
#define OPENSSL_VERSION 0

/* The functions of libcrypto used here, resolved with dlsym. They live in stack/wg,
 * beside the crypto they serve, and not in the OS boundary (struct ts_sys): that
 * table holds the calls an embedder may interpose, the names libtunshim.so exports;
 * libcrypto is a crypto library like libsodium, which the stack calls directly, and
 * dlopen and dlsym are no names the shim interposes. libcrypto's types stay opaque
 * (void *): only pointers to them cross this boundary. */
struct libcrypto {
	void *handle;
	const char *(*OpenSSL_version)(int type);
	int (*ERR_set_mark)(void);
	int (*ERR_pop_to_mark)(void);
	void *(*OSSL_LIB_CTX_new)(void);
	void (*OSSL_LIB_CTX_free)(void *libctx);
	void *(*EVP_CIPHER_fetch)(void *libctx, const char *algorithm, const char *properties);
	void (*EVP_CIPHER_free)(void *cipher);
	void *(*EVP_CIPHER_CTX_new)(void);
	void (*EVP_CIPHER_CTX_free)(void *ctx);
	int (*EVP_CIPHER_CTX_copy)(void *out, const void *in);
	int (*EVP_CIPHER_CTX_ctrl)(void *ctx, int type, int arg, void *ptr);
	int (*EVP_CipherInit_ex)(void *ctx, const void *cipher, void *engine,
				 const unsigned char *key, const unsigned char *iv, int enc);
	int (*EVP_EncryptInit_ex)(void *ctx, const void *cipher, void *engine,
				  const unsigned char *key, const unsigned char *iv);
	int (*EVP_EncryptUpdate)(void *ctx, unsigned char *out, int *outl,
				 const unsigned char *in, int inl);
	int (*EVP_EncryptFinal_ex)(void *ctx, unsigned char *out, int *outl);
	int (*EVP_DecryptInit_ex)(void *ctx, const void *cipher, void *engine,
				  const unsigned char *key, const unsigned char *iv);
	int (*EVP_DecryptUpdate)(void *ctx, unsigned char *out, int *outl,
				 const unsigned char *in, int inl);
	int (*EVP_DecryptFinal_ex)(void *ctx, unsigned char *out, int *outl);
	/* ChaCha20-Poly1305 set up without a key, copied into every new context. */
	void *template;
};

#define RESOLVE(t, name) \
	(((t)->name = (__typeof__((t)->name))dlsym((t)->handle, #name)) ? NULL : #name)

/* The library, once loaded and prepared; never unloaded, since contexts made from
 * it may outlive any later choice, and libcrypto registers an atexit handler. */
static struct libcrypto loaded;
static const struct libcrypto *lc;
/* Whether new contexts come from lc. Written by wgc_aead_select before the stack
 * thread exists (or by a test's only thread), read by the stack thread. */
static bool use_lc;

/* The name of the first function the library lacks, or NULL. */
static const char *resolve_all(struct libcrypto *t)
{
	const char *missing = NULL;

#define TRY(name) do { if (!missing) missing = RESOLVE(t, name); } while (0)
	TRY(OpenSSL_version);
	TRY(ERR_set_mark);
	TRY(ERR_pop_to_mark);
	TRY(OSSL_LIB_CTX_new);
	TRY(OSSL_LIB_CTX_free);
	TRY(EVP_CIPHER_fetch);
	TRY(EVP_CIPHER_free);
	TRY(EVP_CIPHER_CTX_new);
	TRY(EVP_CIPHER_CTX_free);
	TRY(EVP_CIPHER_CTX_copy);
	TRY(EVP_CIPHER_CTX_ctrl);
	TRY(EVP_CipherInit_ex);
	TRY(EVP_EncryptInit_ex);
	TRY(EVP_EncryptUpdate);
	TRY(EVP_EncryptFinal_ex);
	TRY(EVP_DecryptInit_ex);
	TRY(EVP_DecryptUpdate);
	TRY(EVP_DecryptFinal_ex);
#undef TRY
	return missing;
}

/* A library context of our own: the host program's configuration of the default
 * one (its properties, a FIPS-only setup) is its business, and OPENSSL_cleanup,
 * which libcrypto runs from atexit, frees only the default one. Setting the cipher
 * on the template is the one step that reaches libcrypto's global state (its ENGINE
 * check, which also loads openssl.cnf into the default context, as the program's
 * own first use would); every context after it is a copy that only gets a key, so
 * contexts can still be made after OPENSSL_cleanup has run, in the continuation
 * that a process's exit hands the stack to (docs/process-model.md). */
static int prepare(struct libcrypto *t)
{
	void *libctx, *cipher = NULL, *tmpl = NULL;

	t->ERR_set_mark();
	libctx = t->OSSL_LIB_CTX_new();
	if (libctx)
		cipher = t->EVP_CIPHER_fetch(libctx, "ChaCha20-Poly1305", NULL);
	if (cipher)
		tmpl = t->EVP_CIPHER_CTX_new();
	if (tmpl && t->EVP_CipherInit_ex(tmpl, cipher, NULL, NULL, NULL, 1) != 1) {
		t->EVP_CIPHER_CTX_free(tmpl);
		tmpl = NULL;
	}
	/* The template holds its own reference to the cipher, and through it to the
	 * library context's provider. */
	if (cipher)
		t->EVP_CIPHER_free(cipher);
	if (!tmpl && libctx)
		t->OSSL_LIB_CTX_free(libctx);
	/* Whatever failed leaves nothing in this thread's error queue, which may be the
	 * application's own, which its TLS code reads. */
	t->ERR_pop_to_mark();
	t->template = tmpl;
	return tmpl ? 0 : -1;
}

/* The loaded library for soname, or NULL with the reason in why. */
static const struct libcrypto *load(const char *soname, char *why, size_t why_len)
{
	struct libcrypto t = { 0 };
	const char *missing;

	t.handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!t.handle) {
		const char *err = dlerror();

		snprintf(why, why_len, "%s", err ? err : soname);
		return NULL;
	}
	/* Loaded already: dlopen only counted one more reference. */
	if (lc && t.handle == lc->handle)
		return lc;
	missing = resolve_all(&t);
	if (missing || lc) {
		if (missing)
			snprintf(why, why_len, "%s has no %s", soname, missing);
		else
			snprintf(why, why_len, "%s is not the libcrypto in use", soname);
		/* Nothing of it has run, so it may go again. */
		dlclose(t.handle);
		return NULL;
	}
	if (prepare(&t)) {
		/* It has run now (and may have registered its atexit handler): it stays. */
		snprintf(why, why_len, "%s has no usable ChaCha20-Poly1305", soname);
		return NULL;
	}
	loaded = t;
	__atomic_store_n(&lc, &loaded, __ATOMIC_RELEASE);
	return lc;
}

enum wgc_aead_impl wgc_aead_select(const char *setting, const char *soname)
{
	const struct libcrypto *l;
	char why[256];

	if (setting && *setting && strcmp(setting, "libcrypto") != 0) {
		if (strcmp(setting, "libsodium") != 0)
			ts_warn("TUNSHIM_AEAD=\"%s\" is neither libcrypto nor libsodium; "
				"using libsodium", setting);
		__atomic_store_n(&use_lc, false, __ATOMIC_RELEASE);
		ts_dbg("transport AEAD: libsodium (TUNSHIM_AEAD=%s)", setting);
		return WGC_AEAD_LIBSODIUM;
	}
	l = load(soname, why, sizeof(why));
	__atomic_store_n(&use_lc, l != NULL, __ATOMIC_RELEASE);
	if (!l) {
		ts_dbg("transport AEAD: libsodium (%s)", why);
		return WGC_AEAD_LIBSODIUM;
	}
	ts_dbg("transport AEAD: libcrypto (%s, %s)", soname, l->OpenSSL_version(OPENSSL_VERSION));
	return WGC_AEAD_LIBCRYPTO;
}

enum wgc_aead_impl wgc_aead_impl(void)
{
	return __atomic_load_n(&use_lc, __ATOMIC_ACQUIRE) ? WGC_AEAD_LIBCRYPTO : WGC_AEAD_LIBSODIUM;
}

struct wgc_aead *wgc_aead_new(const uint8_t key[NOISE_SYMMETRIC_KEY_LEN], bool seal)
{
	const struct libcrypto *l = __atomic_load_n(&lc, __ATOMIC_ACQUIRE);
	void *ctx;

	if (!l || !__atomic_load_n(&use_lc, __ATOMIC_ACQUIRE))
		return NULL;
	ctx = l->EVP_CIPHER_CTX_new();
	if (!ctx)
		return NULL;
	/* No cipher argument here, so no ENGINE lookup: see prepare(). */
	if (l->EVP_CIPHER_CTX_copy(ctx, l->template) != 1 ||
	    l->EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, seal ? 1 : 0) != 1) {
		l->EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return (struct wgc_aead *)ctx;
}

void wgc_aead_free(struct wgc_aead *a)
{
	/* A context exists only if lc does, whatever was chosen since. */
	if (a)
		lc->EVP_CIPHER_CTX_free(a);
}

void wgc_aead_nonce(uint8_t nonce[WGC_AEAD_NONCE_LEN], uint64_t counter)
{
	uint64_t le = htole64(counter);

	memset(nonce, 0, 4);
	memcpy(nonce + 4, &le, sizeof(le));
}

/* A failure here is libcrypto's (memory, a length it cannot take), never the data's:
 * the caller seals with libsodium instead. Per packet only the nonce is set; the
 * key was set once, by wgc_aead_new. */
static bool lc_seal(void *ctx, const uint8_t *nonce, uint8_t *dst, const uint8_t *src,
		    size_t len, const uint8_t *ad, size_t ad_len)
{
	int n;

	if (len > INT_MAX || ad_len > INT_MAX ||
	    lc->EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1)
		return false;
	if (ad_len && lc->EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1)
		return false;
	if (len && (lc->EVP_EncryptUpdate(ctx, dst, &n, src, (int)len) != 1 || n != (int)len))
		return false;
	return lc->EVP_EncryptFinal_ex(ctx, dst + len, &n) == 1 && n == 0 &&
	       lc->EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, NOISE_AUTHTAG_LEN,
				       dst + len) == 1;
}

void wgc_aead_seal(struct wgc_aead *a, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
		   const uint8_t nonce[WGC_AEAD_NONCE_LEN], uint8_t *dst, const uint8_t *src,
		   size_t len, const uint8_t *ad, size_t ad_len)
{
	if (a && lc_seal(a, nonce, dst, src, len, ad, ad_len))
		return;
	crypto_aead_chacha20poly1305_ietf_encrypt(dst, NULL, src, len, ad, ad_len, NULL, nonce,
						  key);
}

/* 1: verified; 0: the tag does not match; -1: libcrypto failed before it could tell.
 * libcrypto decrypts before the tag is checked (at the final step), so until this
 * returns 1, dst holds plaintext nobody may trust: the caller wipes it. */
static int lc_open(void *ctx, const uint8_t *nonce, uint8_t *dst, const uint8_t *src,
		   size_t clen, const uint8_t *ad, size_t ad_len)
{
	int n;

	if (clen > INT_MAX || ad_len > INT_MAX ||
	    lc->EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    lc->EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, NOISE_AUTHTAG_LEN,
				    (void *)(src + clen)) != 1)
		return -1;
	if (ad_len && lc->EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1)
		return -1;
	if (clen && (lc->EVP_DecryptUpdate(ctx, dst, &n, src, (int)clen) != 1 || n != (int)clen))
		return -1;
	return lc->EVP_DecryptFinal_ex(ctx, dst + clen, &n) == 1 ? 1 : 0;
}

int wgc_aead_open(struct wgc_aead *a, const uint8_t key[NOISE_SYMMETRIC_KEY_LEN],
		  const uint8_t nonce[WGC_AEAD_NONCE_LEN], uint8_t *dst, const uint8_t *src,
		  size_t len, const uint8_t *ad, size_t ad_len)
{
	size_t clen;
	int ok;

	if (len < NOISE_AUTHTAG_LEN)
		return -EBADMSG;
	clen = len - NOISE_AUTHTAG_LEN;
	ok = a ? lc_open(a, nonce, dst, src, clen, ad, ad_len) : -1;
	if (ok < 0)
		/* libsodium checks the tag before it writes anything. */
		ok = crypto_aead_chacha20poly1305_ietf_decrypt(dst, NULL, NULL, src, len, ad,
							       ad_len, nonce, key) == 0;
	if (ok == 1)
		return 0;
	if (clen)
		sodium_memzero(dst, clen);
	return -EBADMSG;
}
