/* SPDX-License-Identifier: MIT */
/* A micro-benchmark of the data path's AEAD, not a test (make test only builds it):
 * noise_seal_data and noise_open_data on one keypair, 1420-byte packets (a full
 * packet at the default MTU), on one core, libcrypto and libsodium in turns: the
 * stack's own transport code, where bench/aead.c measures the bare cipher's ceiling.
 * Prints the median and the best of the rounds for seal alone, open alone and
 * seal + open, in MB/s of plaintext.
 *   make build/tests/bench_transport && build/tests/bench_transport [SECONDS] [ROUNDS]
 *   TUNSHIM_AEAD=libsodium build/tests/bench_transport      (libsodium alone) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "noise.h"
#if __has_include("crypto_aead.h")
#include "crypto_aead.h"
#define HAVE_AEAD_CHOICE 1
#endif

#define PACKET 1420
#define BATCH 64
#define MAX_ROUNDS 31

struct side {
	struct noise_static_identity id;
	struct noise_handshake hs;
	struct noise_keypair kp;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_transport: %s failed\n", what);
	exit(1);
}

static void side_init(struct side *s)
{
	uint8_t priv[32];

	memset(s, 0, sizeof(*s));
	randombytes_buf(priv, sizeof(priv));
	if (noise_identity_init(&s->id, priv))
		die("noise_identity_init");
}

/* A whole handshake, as test_noise.c runs it, so the keypairs are the real thing. */
static void session(struct side *i, struct side *r)
{
	struct msg_initiation init;
	struct msg_response resp;
	struct noise_initiation_result res;
	uint8_t ts[NOISE_TIMESTAMP_LEN];
	uint64_t t = 1000000000ULL;

	side_init(i);
	side_init(r);
	noise_tai64n_now(ts);
	if (noise_handshake_init(&i->hs, &i->id, r->id.public_key, NULL) ||
	    noise_handshake_init(&r->hs, &r->id, i->id.public_key, NULL) ||
	    noise_create_initiation(&i->hs, &i->id, 1, ts, &init) ||
	    noise_consume_initiation(&r->id, &init, &res) ||
	    noise_accept_initiation(&r->hs, &res, t) ||
	    noise_create_response(&r->hs, 2, &resp) ||
	    noise_consume_response(&i->hs, &i->id, &resp) ||
	    noise_derive_keypair(&i->hs, &i->kp, t) || noise_derive_keypair(&r->hs, &r->kp, t))
		die("the handshake");
}

enum mode { SEAL, OPEN, BOTH };

/* Packets of one round: sealed into a ring of BATCH messages, opened in order (the
 * replay window accepts each once), for at least `budget` ns. Returns MB/s. */
static double round_rate(struct side *i, struct side *r, enum mode m, uint64_t budget)
{
	static uint8_t plain[PACKET], back[PACKET], msg[BATCH][PACKET + MESSAGE_MINIMUM_LEN];
	uint64_t start, elapsed, packets = 0;
	int k;

	randombytes_buf(plain, sizeof(plain));
	start = now_ns();
	do {
		if (m == OPEN) {
			/* Sealing is not timed here: the batch is sealed before the clock. */
			uint64_t pause = now_ns();

			for (k = 0; k < BATCH; k++)
				if (noise_seal_data(&i->kp, msg[k], plain, PACKET) < 0)
					die("noise_seal_data");
			start += now_ns() - pause;
		}
		for (k = 0; k < BATCH; k++) {
			if (m != OPEN && noise_seal_data(&i->kp, msg[k], plain, PACKET) < 0)
				die("noise_seal_data");
			if (m != SEAL &&
			    noise_open_data(&r->kp, back, msg[k], sizeof(msg[k])) != PACKET)
				die("noise_open_data");
		}
		packets += BATCH;
		elapsed = now_ns() - start;
	} while (elapsed < budget);
	return (double)packets * PACKET / ((double)elapsed / 1e9) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct impl {
	const char *name;
	struct side i, r;
	double rates[3][MAX_ROUNDS];    /* per mode, per round */
};

static void report(struct impl *im, int rounds)
{
	static const char *const names[] = { "seal", "open", "seal + open" };
	int m;

	printf("%s:\n", im->name);
	for (m = SEAL; m <= BOTH; m++) {
		double *r = im->rates[m];

		qsort(r, (size_t)rounds, sizeof(r[0]), cmp_double);
		printf("  %-12s median %5.0f MB/s (%5.0f ns/packet), best %5.0f MB/s\n", names[m],
		       r[rounds / 2], PACKET * 1e3 / r[rounds / 2], r[rounds - 1]);
	}
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 0.2;
	int rounds = argc > 2 ? atoi(argv[2]) : 15;
	uint64_t budget = (uint64_t)(seconds * 1e9);
	static struct impl impls[2];
	int n = 0, k, m, x;

	if (sodium_init() < 0 || seconds <= 0 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: bench_transport [SECONDS_PER_ROUND] [ROUNDS <= %d]\n",
			MAX_ROUNDS);
		return 2;
	}
#ifdef HAVE_AEAD_CHOICE
	/* Both implementations in one process, round after round, so that a neighbour's
	 * load on a shared machine falls on both alike. */
	session(&impls[n].i, &impls[n].r);  /* wgc_init's choice: TUNSHIM_AEAD */
	impls[n++].name = wgc_aead_impl() == WGC_AEAD_LIBCRYPTO ? "libcrypto" : "libsodium";
	if (wgc_aead_impl() == WGC_AEAD_LIBCRYPTO) {
		wgc_aead_select("libsodium", WGC_LIBCRYPTO);
		session(&impls[n].i, &impls[n].r);
		impls[n++].name = "libsodium";
	}
#else
	session(&impls[n].i, &impls[n].r);
	impls[n++].name = "libsodium (this tree has no other)";
#endif
	printf("transport AEAD, noise_seal_data / noise_open_data, %d-byte packets, "
	       "%d rounds of %.2f s each:\n", PACKET, rounds, seconds);
	for (k = 0; k < rounds; k++)
		for (m = SEAL; m <= BOTH; m++)
			for (x = 0; x < n; x++)
				impls[x].rates[m][k] =
					round_rate(&impls[x].i, &impls[x].r, m, budget);
	for (x = 0; x < n; x++) {
		report(&impls[x], rounds);
		noise_keypair_clear(&impls[x].i.kp);
		noise_keypair_clear(&impls[x].r.kp);
	}
	return 0;
}
