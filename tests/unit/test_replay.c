/* SPDX-License-Identifier: MIT */
/* Replay window: numbered cases with exact answers, then a randomized
 * cross-check against a plain model (a set of seen counters and the highest). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "replay.h"

/* Counters the window still accepts behind the highest one (wireguard-go). */
#define W (COUNTER_WINDOW_SIZE - REPLAY_BITS_PER_WORD)
#define R REJECT_AFTER_MESSAGES
#define RESET UINT64_MAX /* in a table: start again from a fresh window */

struct replay_case {
	uint64_t counter;
	bool ok;
};

static const struct replay_case cases[] = {
	/*  1 */ { 0, true },               /* counter 0 is valid, and first */
	/*  2 */ { 1, true },               /* in order */
	/*  3 */ { 1, false },              /* duplicate */
	/*  4 */ { 9, true },               /* skips ahead */
	/*  5 */ { 8, true },               /* out of order, inside the window */
	/*  6 */ { 7, true },
	/*  7 */ { 7, false },
	/*  8 */ { W + 1, true },
	/*  9 */ { W, true },
	/* 10 */ { W, false },
	/* 11 */ { W - 1, true },
	/* 12 */ { 1, false },              /* exactly W behind, seen in case 2 */
	/* 13 */ { 2, true },               /* W - 1 behind, never seen */
	/* 14 */ { 2, false },
	/* 15 */ { W + 17, true },
	/* 16 */ { 3, false },              /* W + 14 behind: too old */
	/* 17 */ { W + 17, false },
	/* 18 */ { 4 * (W + 1), true },     /* a jump of several windows */
	/* 19 */ { 3 * (W + 1) + 1, true }, /* exactly W behind: the edge */
	/* 20 */ { 3 * (W + 1) + 1, false },
	/* 21 */ { 3 * (W + 1), false },    /* W + 1 behind: one past the edge */
	/* 22 */ { 3 * (W + 1) - 1, false },
	/* 23 */ { 3 * (W + 1) + 2, true },
	/* 24 */ { 10, false },
	/* 25 */ { 0, false },
	/* 26 */ { R, false },              /* the limit itself is never valid */
	/* 27 */ { R - 1, true },           /* the last valid counter */
	/* 28 */ { R, false },
	/* 29 */ { R - 1, false },
	/* 30 */ { R - 2, true },
	/* 31 */ { R + 1, false },
	/* 32 */ { UINT64_MAX - 1, false },
	/* 33 */ { R - 2, false },
	/* 34 */ { R - 3, true },
	/* 35 */ { R - 1 - W, true },       /* exactly W behind R - 1 */
	/* 36 */ { R - 2 - W, false },
	/* 37 */ { 0, false },
	{ RESET, false },
	/* 38 */ { 0, true },               /* 0 first again, after a reset */
	/* 39 */ { 0, false },              /* duplicate 0 */
	/* 40 */ { W, true },               /* 0 now sits exactly at the edge */
	/* 41 */ { 0, false },
	/* 42 */ { W + 1, true },
	/* 43 */ { 1, true },               /* exactly W behind, never seen */
	/* 44 */ { 0, false },
	{ RESET, false },
	/* 45 */ { 100, true },
	/* 46 */ { 100 + COUNTER_WINDOW_SIZE, true }, /* same ring slot and bit */
	/* 47 */ { 100, false },            /* too old now */
	/* 48 */ { 100 + COUNTER_WINDOW_SIZE - W, true },
	/* 49 */ { 99 + COUNTER_WINDOW_SIZE - W, false },
	/* 50 */ { 100 + 2 * COUNTER_WINDOW_SIZE, true }, /* again exactly a ring */
	/* 51 */ { 100 + COUNTER_WINDOW_SIZE, false },
	/* 52 */ { 101 + COUNTER_WINDOW_SIZE, false }, /* 8191 behind */
	/* 53 */ { 100 + 2 * COUNTER_WINDOW_SIZE - W, true },
	{ RESET, false },
	/* 54 */ { 5, true },
	/* 55 */ { 5 + W, true },           /* a jump of exactly the usable window */
	/* 56 */ { 5, false },
	/* 57 */ { 6, true },
	/* 58 */ { 4, false },
	/* 59 */ { 5 + 2 * W, true },
	/* 60 */ { 5 + W, false },
	/* 61 */ { 6 + W, true },
	{ RESET, false },
	/* 62 */ { 1ULL << 40, true },      /* a huge first counter */
	/* 63 */ { (1ULL << 40) - W, true },
	/* 64 */ { (1ULL << 40) - W - 1, false },
	/* 65 */ { 0, false },
	/* 66 */ { (1ULL << 41) + 63, true }, /* a huge jump clears the bitmap: */
	/* 67 */ { 1ULL << 41, true },      /* same slot and bit as case 62 */
	/* 68 */ { (1ULL << 41) + 63 - W, true },
	/* 69 */ { (1ULL << 41) + 64, true }, /* same slot and bit as case 63 */
	/* 70 */ { (1ULL << 41) + 63 - W, false }, /* now one past the edge */
	/* 71 */ { (1ULL << 41) + 63, false },
	/* 72 */ { 1ULL << 40, false },
};

static void run_cases(void)
{
	struct replay_window w;
	unsigned int i, num = 0;

	replay_init(&w);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].counter == RESET) {
			replay_init(&w);
			continue;
		}
		num++;
		if (replay_check(&w, cases[i].counter) != cases[i].ok) {
			fprintf(stderr, "replay case %u (counter %llu): expected %s\n", num,
				(unsigned long long)cases[i].counter,
				cases[i].ok ? "accept" : "reject");
			CHECK(0);
		} else {
			CHECK(1);
		}
	}
}

/* Sequences too long for a table, each from a fresh window. */
static void expect(struct replay_window *w, uint64_t counter, bool ok, const char *what)
{
	if (replay_check(w, counter) == ok) {
		CHECK(1);
		return;
	}
	fprintf(stderr, "%s: counter %llu: expected %s\n", what,
		(unsigned long long)counter, ok ? "accept" : "reject");
	CHECK(0);
}

static void run_sequences(void)
{
	struct replay_window w;
	uint64_t i;

	replay_init(&w);                    /* ascending, then 0 at the edge */
	for (i = 1; i <= W; i++)
		expect(&w, i, true, "1..W");
	expect(&w, 0, true, "1..W then 0");
	expect(&w, 0, false, "1..W then 0 twice");

	replay_init(&w);                    /* ascending, then 0 one past the edge */
	for (i = 2; i <= W + 1; i++)
		expect(&w, i, true, "2..W+1");
	expect(&w, 1, true, "2..W+1 then 1");
	expect(&w, 0, false, "2..W+1 then 0");

	replay_init(&w);                    /* a whole window in reverse */
	for (i = W + 1; i-- > 0;)
		expect(&w, i, true, "W..0");

	replay_init(&w);
	for (i = W + 2; i-- > 1;)
		expect(&w, i, true, "W+1..1");
	expect(&w, 0, false, "W+1..1 then 0");

	replay_init(&w);
	for (i = W + 1; i-- > 1;)
		expect(&w, i, true, "W..1");
	expect(&w, W + 1, true, "W..1 then W+1");
	expect(&w, 0, false, "W..1, W+1 then 0");

	replay_init(&w);
	for (i = W + 1; i-- > 1;)
		expect(&w, i, true, "W..1");
	expect(&w, 0, true, "W..1 then 0");
	expect(&w, W + 1, true, "W..1, 0 then W+1");

	replay_init(&w);                    /* several laps of the ring, in order */
	for (i = 0; i < 3 * COUNTER_WINDOW_SIZE; i++) {
		expect(&w, i, true, "laps");
		expect(&w, i, false, "laps, duplicate");
		if (i >= W)
			expect(&w, i - W, false, "laps, edge duplicate");
	}
}

/* The model: every accepted counter in a hash set, plus the highest. */
#define SET_SLOTS (1u << 18)
#define STEPS 100000

struct model {
	uint64_t *slots;                /* counter + 1; 0 = empty */
	uint64_t highest;
	bool any;
};

static bool set_add(struct model *m, uint64_t counter)
{
	uint64_t key = counter + 1, i = (key * 0x9e3779b97f4a7c15ULL) >> 46;

	for (;; i = (i + 1) & (SET_SLOTS - 1)) {
		if (m->slots[i] == key)
			return false;
		if (!m->slots[i]) {
			m->slots[i] = key;
			return true;
		}
	}
}

static bool model_check(struct model *m, uint64_t counter)
{
	if (counter >= R)
		return false;
	if (m->any && counter < m->highest && m->highest - counter > W)
		return false;
	if (!set_add(m, counter))
		return false;
	if (!m->any || counter > m->highest)
		m->highest = counter;
	m->any = true;
	return true;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t ahead(uint64_t base, uint64_t by)
{
	return base > UINT64_MAX - by ? UINT64_MAX : base + by;
}

static uint64_t behind(uint64_t base, uint64_t by)
{
	return base < by ? 0 : base - by;
}

/* Mostly near the highest counter and around the window's edge, with jumps
 * of every size, exact ring and word multiples, and repeats. */
static uint64_t next_counter(const struct model *m, const uint64_t *recent)
{
	uint64_t h = m->highest, r = rng() % 100;

	if (r < 40)
		return ahead(h, rng() % 4);
	if (r < 70)
		return behind(h, rng() % (W + 200));
	if (r < 78)
		return behind(h, W - 1 + rng() % 3);
	if (r < 85)
		return recent[rng() % 64];
	if (r < 90)
		return ahead(h, rng() % (2 * COUNTER_WINDOW_SIZE));
	if (r < 95)
		return ahead(h, (rng() % 130) * REPLAY_BITS_PER_WORD + rng() % 2);
	if (r < 97)
		return ahead(h, rng() % (1ULL << 32));
	return rng() % 64;
}

static void run_model(uint64_t seed, uint64_t start, unsigned int min_accepted)
{
	struct replay_window w;
	struct model m = { .slots = calloc(SET_SLOTS, sizeof(uint64_t)) };
	uint64_t recent[64] = { 0 }, counter;
	unsigned int i, accepted = 0, mismatches = 0;
	bool got, want;

	CHECK(m.slots != NULL);
	if (!m.slots)
		return;
	rng_state = seed;
	replay_init(&w);
	m.highest = start;
	for (i = 0; i < STEPS; i++) {
		counter = i ? next_counter(&m, recent) : start;
		got = replay_check(&w, counter);
		want = model_check(&m, counter);
		if (got != want && mismatches++ < 5)
			fprintf(stderr, "model seed %llu step %u: counter %llu (highest %llu): "
				"got %d, want %d\n", (unsigned long long)seed, i,
				(unsigned long long)counter, (unsigned long long)m.highest, got, want);
		if (want)
			recent[accepted++ % 64] = counter;
	}
	CHECK_INT(mismatches, 0);
	/* The mix really exercised acceptance (not only rejection). */
	CHECK(accepted > min_accepted);
	free(m.slots);
}

int main(void)
{
	run_cases();
	run_sequences();
	run_model(1, 0, STEPS / 4);
	run_model(2, 5000, STEPS / 4);
	run_model(3, R - 400000, 100);      /* runs into REJECT_AFTER_MESSAGES */
	return check_done("replay");
}
