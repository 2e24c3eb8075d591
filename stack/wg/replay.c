/* SPDX-License-Identifier: MIT */
/* Sliding replay window for transport counters, a ring of 64-bit words as in
 * RFC 6479 (and the Linux driver's counter_validate).
 *
 * The window works on n = counter + 1, so that greatest == 0 can mean
 * "nothing accepted yet" while counter 0 stays valid. Bit n of the ring is
 * set once counter n - 1 was accepted. The word holding greatest reuses the
 * slot of the word a whole ring earlier, so only the REPLAY_WORDS - 1 words
 * before it keep a complete history: the usable window reaches
 * COUNTER_WINDOW_SIZE - REPLAY_BITS_PER_WORD counters behind the greatest.
 */
#include <string.h>

#include "replay.h"

#define REPLAY_USABLE (COUNTER_WINDOW_SIZE - REPLAY_BITS_PER_WORD)

_Static_assert((REPLAY_WORDS & (REPLAY_WORDS - 1)) == 0, "ring size is a power of two");
/* n = counter + 1 and n + REPLAY_USABLE must not wrap for any valid counter. */
_Static_assert(REJECT_AFTER_MESSAGES < UINT64_MAX - REPLAY_USABLE - 1, "no overflow");

void replay_init(struct replay_window *w)
{
	memset(w, 0, sizeof(*w));
}

/* Moves greatest up to n, zeroing the words the window slides onto; a jump
 * of a whole ring or more clears everything. */
static void advance(struct replay_window *w, uint64_t n)
{
	uint64_t cur = w->greatest / REPLAY_BITS_PER_WORD;
	uint64_t steps = n / REPLAY_BITS_PER_WORD - cur;
	uint64_t i;

	if (steps > REPLAY_WORDS)
		steps = REPLAY_WORDS;
	for (i = 1; i <= steps; i++)
		w->bitmap[(cur + i) & (REPLAY_WORDS - 1)] = 0;
	w->greatest = n;
}

bool replay_check(struct replay_window *w, uint64_t counter)
{
	uint64_t n, bit, *word;

	if (counter >= REJECT_AFTER_MESSAGES)
		return false;
	n = counter + 1;
	if (n + REPLAY_USABLE < w->greatest)
		return false;
	if (n > w->greatest)
		advance(w, n);
	word = &w->bitmap[(n / REPLAY_BITS_PER_WORD) & (REPLAY_WORDS - 1)];
	bit = 1ULL << (n % REPLAY_BITS_PER_WORD);
	if (*word & bit)
		return false;
	*word |= bit;
	return true;
}
