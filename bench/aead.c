/* SPDX-License-Identifier: MIT */
/* bench_aead: the one-core ceiling of the data path's cipher. It seals 1420-byte packets
 * with ChaCha20-Poly1305 (IETF: 12-byte nonce, 16-byte tag, no associated data, as
 * WireGuard's transport messages) for about SECONDS (default 1) with each implementation
 * the machine has, on the calling thread, and prints one line each:
 *
 *   aead: impl=libsodium mbs=NNN
 *   aead: impl=libcrypto mbs=NNN          or   aead: impl=libcrypto error=WHY
 *
 * MB/s are 10^6 plaintext bytes a second. OpenSSL 3's libcrypto is loaded with dlopen and
 * its EVP interface called through pointers declared here, so building this needs no
 * libssl-dev, and a data path could load it the same way, only when a tunnel starts. One
 * EVP_CIPHER_CTX holds the key, set once; each packet sets only its nonce, as a data path
 * would, so the figure is not the cost of a key schedule per packet. Before timing, both
 * implementations seal the same packet and must agree byte for byte.
 *
 *   bench_aead [SECONDS] */
#include <dlfcn.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PKT 1420		/* the tunnel's default MTU: a full inner packet */
#define TAG 16
#define KEYLEN 32
#define NONCELEN 12
#define CHECK_EVERY 256		/* packets between looks at the clock */

/* OpenSSL 3's values (openssl/evp.h); stable ABI since 1.1. */
#define EVP_CTRL_AEAD_GET_TAG 0x10

typedef struct evp_ctx EVP_CIPHER_CTX;
typedef struct evp_cipher EVP_CIPHER;

struct libcrypto {
	void *dl;
	EVP_CIPHER_CTX *(*ctx_new)(void);
	void (*ctx_free)(EVP_CIPHER_CTX *);
	const EVP_CIPHER *(*chacha20_poly1305)(void);
	int (*init)(EVP_CIPHER_CTX *, const EVP_CIPHER *, void *engine, const unsigned char *key,
		    const unsigned char *iv);
	int (*update)(EVP_CIPHER_CTX *, unsigned char *out, int *outl, const unsigned char *in,
		      int inl);
	int (*final)(EVP_CIPHER_CTX *, unsigned char *out, int *outl);
	int (*ctrl)(EVP_CIPHER_CTX *, int type, int arg, void *ptr);
	EVP_CIPHER_CTX *ctx;
};

typedef int (*seal_fn)(void *state, unsigned char *out, const unsigned char *in,
		       const unsigned char *nonce);

static unsigned char key[KEYLEN];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* WireGuard's nonce: four zero bytes, then the 64-bit little-endian counter. */
static void set_nonce(unsigned char *nonce, uint64_t counter)
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (unsigned char)(counter >> (8 * i));
}

static int seal_sodium(void *state, unsigned char *out, const unsigned char *in,
		       const unsigned char *nonce)
{
	unsigned long long outlen;

	(void)state;
	return crypto_aead_chacha20poly1305_ietf_encrypt(out, &outlen, in, PKT, NULL, 0, NULL,
							 nonce, key);
}

static int seal_libcrypto(void *state, unsigned char *out, const unsigned char *in,
			  const unsigned char *nonce)
{
	struct libcrypto *lc = state;
	int n = 0, fin = 0;

	if (lc->init(lc->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    lc->update(lc->ctx, out, &n, in, PKT) != 1 ||
	    lc->final(lc->ctx, out + n, &fin) != 1 || n + fin != PKT ||
	    lc->ctrl(lc->ctx, EVP_CTRL_AEAD_GET_TAG, TAG, out + PKT) != 1)
		return -1;
	return 0;
}

/* Resolves what the benchmark calls, or says which symbol is missing. */
static const char *libcrypto_load(struct libcrypto *lc)
{
	static char why[160];
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{ "EVP_CIPHER_CTX_new", (void **)&lc->ctx_new },
		{ "EVP_CIPHER_CTX_free", (void **)&lc->ctx_free },
		{ "EVP_chacha20_poly1305", (void **)&lc->chacha20_poly1305 },
		{ "EVP_EncryptInit_ex", (void **)&lc->init },
		{ "EVP_EncryptUpdate", (void **)&lc->update },
		{ "EVP_EncryptFinal_ex", (void **)&lc->final },
		{ "EVP_CIPHER_CTX_ctrl", (void **)&lc->ctrl },
	};

	lc->dl = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	if (!lc->dl)
		return "libcrypto.so.3 not found (package libssl3)";
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(lc->dl, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(why, sizeof(why), "libcrypto.so.3 lacks %s", syms[i].name);
			return why;
		}
	}
	lc->ctx = lc->ctx_new();
	/* The key once; the nonce comes with each packet. */
	if (!lc->ctx || lc->init(lc->ctx, lc->chacha20_poly1305(), NULL, key, NULL) != 1)
		return "EVP_EncryptInit_ex with EVP_chacha20_poly1305 failed";
	return NULL;
}

/* Seals packets for about secs seconds; returns MB/s of plaintext, or -1. */
static double run(seal_fn seal, void *state, double secs)
{
	static unsigned char in[PKT], out[PKT + TAG];
	unsigned char nonce[NONCELEN];
	uint64_t counter = 0;
	double t0, t1;

	/* A short untimed run first: frequency, caches, lazy binding. */
	for (int i = 0; i < 4 * CHECK_EVERY; i++) {
		set_nonce(nonce, counter++);
		if (seal(state, out, in, nonce) != 0)
			return -1;
	}
	counter = 0;
	t0 = now_s();
	do {
		for (int i = 0; i < CHECK_EVERY; i++) {
			set_nonce(nonce, counter++);
			if (seal(state, out, in, nonce) != 0)
				return -1;
		}
		t1 = now_s();
	} while (t1 - t0 < secs);
	return (double)counter * PKT / (t1 - t0) / 1e6;
}

/* The same packet sealed by both must come out the same. */
static int agree(struct libcrypto *lc)
{
	unsigned char in[PKT], a[PKT + TAG], b[PKT + TAG], nonce[NONCELEN];

	randombytes_buf(in, sizeof(in));
	set_nonce(nonce, 0x0102030405060708ull);
	if (seal_sodium(NULL, a, in, nonce) != 0 || seal_libcrypto(lc, b, in, nonce) != 0)
		return 0;
	/* Again, with a new nonce on the kept key. */
	set_nonce(nonce, 42);
	return memcmp(a, b, sizeof(a)) == 0 && seal_sodium(NULL, a, in, nonce) == 0 &&
	       seal_libcrypto(lc, b, in, nonce) == 0 && memcmp(a, b, sizeof(a)) == 0;
}

static void report(const char *impl, double mbs)
{
	if (mbs < 0)
		printf("aead: impl=%s error=sealing failed\n", impl);
	else
		printf("aead: impl=%s mbs=%.1f\n", impl, mbs);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct libcrypto lc = { 0 };
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	const char *why;

	if (argc > 2 || secs <= 0 || secs > 60) {
		fprintf(stderr, "usage: bench_aead [SECONDS]\n");
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "bench_aead: sodium_init failed\n");
		return 1;
	}
	randombytes_buf(key, sizeof(key));
	report("libsodium", run(seal_sodium, NULL, secs));
	why = libcrypto_load(&lc);
	if (!why && !agree(&lc))
		why = "libcrypto and libsodium disagree on a sealed packet";
	if (why)
		printf("aead: impl=libcrypto error=%s\n", why);
	else
		report("libcrypto", run(seal_libcrypto, &lc, secs));
	if (lc.ctx)
		lc.ctx_free(lc.ctx);
	return 0;
}
