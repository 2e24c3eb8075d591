/* SPDX-License-Identifier: MIT */
/* Sliding replay window for transport counters (RFC 6479 bitmap). */
#ifndef TS_REPLAY_H
#define TS_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include "messages.h"

#define REPLAY_BITS_PER_WORD 64
#define REPLAY_WORDS (COUNTER_WINDOW_SIZE / REPLAY_BITS_PER_WORD)

struct replay_window {
	uint64_t greatest;      /* highest counter accepted + 1; 0 = nothing yet */
	uint64_t bitmap[REPLAY_WORDS];
};

void replay_init(struct replay_window *w);
/* Called only after the AEAD verified the packet. Returns true and records the
 * counter when it is new and inside the window; false for replays, counters
 * too old for the window, and counters >= REJECT_AFTER_MESSAGES. Usable
 * window: COUNTER_WINDOW_SIZE - REPLAY_BITS_PER_WORD packets behind the
 * greatest (8128, as in wireguard-go). */
bool replay_check(struct replay_window *w, uint64_t counter);

#endif
