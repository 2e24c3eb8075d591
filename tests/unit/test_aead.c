/* SPDX-License-Identifier: MIT */
/* The transport AEAD (crypto_aead.h): libcrypto and libsodium give the same bytes,
 * each opens what the other sealed, neither opens a message with a bit flipped,
 * and the choice falls back to libsodium when asked to or when libcrypto is missing
 * or lacks a function. Also: contexts outlive a later choice and OPENSSL_cleanup. */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "crypto.h"
#include "crypto_aead.h"
#include "log.h"

#define MAX_LEN 1500
#define TAG NOISE_AUTHTAG_LEN

static bool have_libcrypto;

static void unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t got = 0;

	if (sodium_hex2bin(out, len, hex, strlen(hex), NULL, &got, NULL) != 0 || got != len)
		memset(out, 0xee, len);
}

/* One key, both ways: a sealing and an opening context, or NULLs (libsodium). */
struct pair {
	uint8_t key[NOISE_SYMMETRIC_KEY_LEN];
	struct wgc_aead *seal, *open;
};

static void pair_new(struct pair *p, const uint8_t *key)
{
	if (key)
		memcpy(p->key, key, sizeof(p->key));
	else
		randombytes_buf(p->key, sizeof(p->key));
	p->seal = wgc_aead_new(p->key, true);
	p->open = wgc_aead_new(p->key, false);
	CHECK_INT(!!p->seal, have_libcrypto);
	CHECK_INT(!!p->open, have_libcrypto);
}

static void pair_free(struct pair *p)
{
	wgc_aead_free(p->seal);
	wgc_aead_free(p->open);
	sodium_memzero(p, sizeof(*p));
}

/* RFC 8439, 2.8.2: the AEAD's test vector, with associated data. */
static void test_rfc8439_vector(void)
{
	static const char pt[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
				 "only one tip for the future, sunscreen would be it.";
	const size_t len = sizeof(pt) - 1;
	uint8_t key[32], nonce[12], ad[12], want[sizeof(pt) - 1 + TAG];
	uint8_t got[2][sizeof(want)], back[sizeof(pt)];
	struct pair p;
	int k;

	CHECK_INT(len, 114);
	unhex(key, sizeof(key), "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
	unhex(nonce, sizeof(nonce), "070000004041424344454647");
	unhex(ad, sizeof(ad), "50515253c0c1c2c3c4c5c6c7");
	unhex(want, sizeof(want),
	      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
	      "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
	      "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
	      "3ff4def08e4b7a9de576d26586cec64b6116"
	      "1ae10b594f09e26a7e902ecbd0600691");
	pair_new(&p, key);
	wgc_aead_seal(NULL, key, nonce, got[0], (const uint8_t *)pt, len, ad, sizeof(ad));
	wgc_aead_seal(p.seal, key, nonce, got[1], (const uint8_t *)pt, len, ad, sizeof(ad));
	CHECK_MEM(got[0], want, sizeof(want));
	CHECK_MEM(got[1], want, sizeof(want));
	for (k = 0; k < 2; k++) {
		struct wgc_aead *a = k ? p.open : NULL;

		memset(back, 0, sizeof(back));
		CHECK_INT(wgc_aead_open(a, key, nonce, back, want, sizeof(want), ad, sizeof(ad)),
			  0);
		CHECK_MEM(back, pt, len);
		/* The associated data is authenticated too. */
		ad[5] ^= 0x01;
		CHECK_INT(wgc_aead_open(a, key, nonce, back, want, sizeof(want), ad, sizeof(ad)),
			  -EBADMSG);
		ad[5] ^= 0x01;
	}
	pair_free(&p);
}

/* dst after a failed open: zeros, not the unverified plaintext libcrypto wrote. */
static bool all_zero(const uint8_t *b, size_t n)
{
	return n == 0 || sodium_is_zero(b, n);
}

/* Every length from 0 to MAX_LEN: the same bytes from both, each opens the other's,
 * and a flipped bit (ciphertext or tag) opens with neither. */
static void test_random_packets(void)
{
	static uint8_t plain[MAX_LEN], sealed[2][MAX_LEN + TAG], back[MAX_LEN + 1];
	uint8_t nonce[WGC_AEAD_NONCE_LEN];
	int same = 0, opened = 0, refused = 0, wiped = 0;
	struct pair p;
	size_t len, bit;
	int k;

	pair_new(&p, NULL);
	for (len = 0; len <= MAX_LEN; len++) {
		randombytes_buf(plain, len);
		wgc_aead_nonce(nonce, randombytes_uniform(1000000) * (uint64_t)len);
		wgc_aead_seal(NULL, p.key, nonce, sealed[0], plain, len, NULL, 0);
		wgc_aead_seal(p.seal, p.key, nonce, sealed[1], plain, len, NULL, 0);
		same += !memcmp(sealed[0], sealed[1], len + TAG);
		for (k = 0; k < 2; k++) {
			/* Sealed by one, opened by the other. */
			struct wgc_aead *a = k ? p.open : NULL;

			memset(back, 0xa5, sizeof(back));
			opened += wgc_aead_open(a, p.key, nonce, back, sealed[!k], len + TAG, NULL,
						0) == 0 && !memcmp(back, plain, len) &&
				  back[len] == 0xa5;
			bit = randombytes_uniform((uint32_t)(len + TAG) * 8);
			sealed[!k][bit / 8] ^= (uint8_t)(1U << (bit % 8));
			memset(back, 0xa5, sizeof(back));
			refused += wgc_aead_open(a, p.key, nonce, back, sealed[!k], len + TAG, NULL,
						 0) == -EBADMSG;
			wiped += all_zero(back, len) && back[len] == 0xa5;
			sealed[!k][bit / 8] ^= (uint8_t)(1U << (bit % 8));
		}
	}
	CHECK_INT(same, MAX_LEN + 1);
	CHECK_INT(opened, 2 * (MAX_LEN + 1));
	CHECK_INT(refused, 2 * (MAX_LEN + 1));
	CHECK_INT(wiped, 2 * (MAX_LEN + 1));

	/* The wrong nonce (the next counter) and a short message open with neither. */
	wgc_aead_nonce(nonce, 7);
	wgc_aead_seal(p.seal, p.key, nonce, sealed[0], plain, 1000, NULL, 0);
	wgc_aead_nonce(nonce, 8);
	CHECK_INT(wgc_aead_open(NULL, p.key, nonce, back, sealed[0], 1000 + TAG, NULL, 0),
		  -EBADMSG);
	CHECK_INT(wgc_aead_open(p.open, p.key, nonce, back, sealed[0], 1000 + TAG, NULL, 0),
		  -EBADMSG);
	CHECK_INT(wgc_aead_open(p.open, p.key, nonce, back, sealed[0], TAG - 1, NULL, 0), -EBADMSG);
	pair_free(&p);
}

/* The handshake's AEAD (crypto.h, always libsodium) and the transport's agree. */
static void test_same_as_handshake_aead(void)
{
	uint8_t plain[100], a[sizeof(plain) + TAG], b[sizeof(a)], nonce[WGC_AEAD_NONCE_LEN];
	struct pair p;

	pair_new(&p, NULL);
	randombytes_buf(plain, sizeof(plain));
	wgc_aead_encrypt(a, plain, sizeof(plain), NULL, 0, 0x0102030405060708ULL, p.key);
	wgc_aead_nonce(nonce, 0x0102030405060708ULL);
	wgc_aead_seal(p.seal, p.key, nonce, b, plain, sizeof(plain), NULL, 0);
	CHECK_MEM(a, b, sizeof(a));
	pair_free(&p);
}

/* The choice: TUNSHIM_AEAD, a missing library, a library without the functions. A
 * context made before the choice changed stays usable until freed. */
static void test_select(void)
{
	uint8_t plain[64], a[sizeof(plain) + TAG], b[sizeof(a)], nonce[WGC_AEAD_NONCE_LEN];
	struct pair p;

	randombytes_buf(plain, sizeof(plain));
	wgc_aead_nonce(nonce, 1);
	pair_new(&p, NULL);

	CHECK_INT(wgc_aead_select("libsodium", WGC_LIBCRYPTO), WGC_AEAD_LIBSODIUM);
	CHECK_INT(wgc_aead_impl(), WGC_AEAD_LIBSODIUM);
	CHECK(!wgc_aead_new(p.key, true));
	CHECK_INT(wgc_aead_select("openssl, please", WGC_LIBCRYPTO), WGC_AEAD_LIBSODIUM);
	CHECK(!wgc_aead_new(p.key, true));
	CHECK_INT(wgc_aead_select(NULL, "libcrypto.so.404"), WGC_AEAD_LIBSODIUM);
	CHECK(!wgc_aead_new(p.key, false));
	/* libc loads but has none of libcrypto's functions. */
	CHECK_INT(wgc_aead_select("", "libc.so.6"), WGC_AEAD_LIBSODIUM);
	CHECK(!wgc_aead_new(p.key, false));

	/* p's contexts were made before: they still seal and open, and agree. */
	wgc_aead_seal(p.seal, p.key, nonce, a, plain, sizeof(plain), NULL, 0);
	wgc_aead_seal(NULL, p.key, nonce, b, plain, sizeof(plain), NULL, 0);
	CHECK_MEM(a, b, sizeof(a));
	CHECK_INT(wgc_aead_open(p.open, p.key, nonce, b, a, sizeof(a), NULL, 0), 0);
	CHECK_MEM(b, plain, sizeof(plain));
	pair_free(&p);

	CHECK_INT(wgc_aead_select("libcrypto", WGC_LIBCRYPTO),
		  have_libcrypto ? WGC_AEAD_LIBCRYPTO : WGC_AEAD_LIBSODIUM);
	CHECK_INT(wgc_aead_select(NULL, WGC_LIBCRYPTO),
		  have_libcrypto ? WGC_AEAD_LIBCRYPTO : WGC_AEAD_LIBSODIUM);
}

/* The real entry point in a fresh child: wgc_init reads TUNSHIM_AEAD (value, or NULL
 * to unset it) once. Returns the child's choice, or -1. */
static int choice_in_child(const char *value)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		char buf[1024], *line;
		int fds[2], lines = 0;
		ssize_t n;

		if (pipe(fds))
			_exit(100);
		ts_log_set(fds[1], TS_LOG_DEBUG);
		if (value)
			setenv("TUNSHIM_AEAD", value, 1);
		else
			unsetenv("TUNSHIM_AEAD");
		if (wgc_init())
			_exit(100);
		/* A second call changes nothing, whatever the environment says, and
		 * logs nothing: the choice is logged once. */
		setenv("TUNSHIM_AEAD", value ? "libcrypto" : "libsodium", 1);
		if (wgc_init())
			_exit(100);
		close(fds[1]);
		n = read(fds[0], buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		for (line = buf; (line = strstr(line, "transport AEAD: ")); line++)
			lines++;
		_exit(lines == 1 ? wgc_aead_impl() : 101);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status) > 1 ? -1 : WEXITSTATUS(status);
}

static void test_environment(void)
{
	CHECK_INT(choice_in_child("libsodium"), WGC_AEAD_LIBSODIUM);
	CHECK_INT(choice_in_child(NULL), have_libcrypto ? WGC_AEAD_LIBCRYPTO : WGC_AEAD_LIBSODIUM);
	CHECK_INT(choice_in_child("libcrypto"),
		  have_libcrypto ? WGC_AEAD_LIBCRYPTO : WGC_AEAD_LIBSODIUM);
}

/* What the debug log says about the choice: one line per wgc_aead_select, so one per
 * process through wgc_init, naming the implementation and why. */
static void test_log(void)
{
	char buf[2048];
	int fds[2];
	ssize_t n;

	if (pipe(fds))
		return;
	ts_log_set(fds[1], TS_LOG_DEBUG);
	wgc_aead_select(NULL, WGC_LIBCRYPTO);
	wgc_aead_select("libsodium", WGC_LIBCRYPTO);
	wgc_aead_select(NULL, "libcrypto.so.404");
	wgc_aead_select(NULL, "libc.so.6");
	ts_log_set(2, TS_LOG_ERROR);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = 0;
	CHECK(!have_libcrypto ||
	      strstr(buf, "transport AEAD: libcrypto (" WGC_LIBCRYPTO ", OpenSSL 3."));
	CHECK(strstr(buf, "transport AEAD: libsodium (TUNSHIM_AEAD=libsodium)"));
	CHECK(strstr(buf, "transport AEAD: libsodium (libcrypto.so.404: cannot open"));
	CHECK(strstr(buf, "transport AEAD: libsodium (libc.so.6 has no "));
	wgc_aead_select(NULL, WGC_LIBCRYPTO);
}

/* libcrypto registers OPENSSL_cleanup with atexit, so in a process that exits with
 * the stack still busy it runs before the library's destructor hands the stack to a
 * continuation (docs/process-model.md). Contexts made before it, and contexts made
 * after it, must still seal and open there. In a child: nothing of libcrypto is
 * usable by anyone after the cleanup. */
static void test_after_openssl_cleanup(void)
{
	uint8_t plain[1420], a[sizeof(plain) + TAG], b[sizeof(a)], nonce[WGC_AEAD_NONCE_LEN];
	int status;
	pid_t pid;

	if (!have_libcrypto)
		return;
	pid = fork();
	if (pid == 0) {
		void *h = dlopen(WGC_LIBCRYPTO, RTLD_NOW | RTLD_NOLOAD);
		void (*cleanup)(void) = h ? (void (*)(void))dlsym(h, "OPENSSL_cleanup") : NULL;
		struct pair before, after;
		int ok = 1;

		if (!cleanup)
			_exit(2);
		pair_new(&before, NULL);
		cleanup();
		pair_new(&after, NULL);
		randombytes_buf(plain, sizeof(plain));
		wgc_aead_nonce(nonce, 42);
		ok &= before.seal && before.open && after.seal && after.open;
		wgc_aead_seal(before.seal, before.key, nonce, a, plain, sizeof(plain), NULL, 0);
		wgc_aead_seal(NULL, before.key, nonce, b, plain, sizeof(plain), NULL, 0);
		ok &= !memcmp(a, b, sizeof(a));
		ok &= wgc_aead_open(before.open, before.key, nonce, b, a, sizeof(a), NULL, 0) == 0;
		wgc_aead_seal(after.seal, after.key, nonce, a, plain, sizeof(plain), NULL, 0);
		ok &= wgc_aead_open(NULL, after.key, nonce, b, a, sizeof(a), NULL, 0) == 0;
		a[100] ^= 4;
		ok &= wgc_aead_open(after.open, after.key, nonce, b, a, sizeof(a), NULL, 0) ==
		      -EBADMSG;
		pair_free(&before);
		pair_free(&after);
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0);
}

int main(void)
{
	void *h;

	if (sodium_init() < 0)
		return 1;
	/* Whether this machine has libcrypto, found without crypto_aead.c, so that a
	 * choice that wrongly falls back fails here. Without it (no libssl3; Debian
	 * installs it with ca-certificates) every check expects the fallback. */
	h = dlopen(WGC_LIBCRYPTO, RTLD_NOW | RTLD_LOCAL);
	have_libcrypto = h && dlsym(h, "EVP_CIPHER_fetch");
	if (!have_libcrypto)
		printf("aead: no %s here: libsodium alone is tested\n", WGC_LIBCRYPTO);
	test_environment();
	CHECK_INT(wgc_aead_select(NULL, WGC_LIBCRYPTO),
		  have_libcrypto ? WGC_AEAD_LIBCRYPTO : WGC_AEAD_LIBSODIUM);
	test_rfc8439_vector();
	test_random_packets();
	test_same_as_handshake_aead();
	test_select();
	test_log();
	test_after_openssl_cleanup();
	return check_done("aead");
}
