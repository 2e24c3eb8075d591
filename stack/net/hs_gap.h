/* SPDX-License-Identifier: MIT */
/* Keeps processes that use the same key from initiating handshakes too close to each
 * other. A responder ignores an initiation whose TAI64N is not greater than the last
 * one it accepted from that key (16.7 ms granularity) or that arrives within 20 ms of
 * it, and the initiator then stalls for REKEY_TIMEOUT. Short-lived programs run one
 * after another (a shell harness) hit this every time, so each stack records when it
 * last initiated, in a small per-key file, and a new stack waits out the gap. */
#ifndef TS_HS_GAP_H
#define TS_HS_GAP_H

#include <stddef.h>
#include <stdint.h>

/* Opens (creating) the record for this public key; -1 when there is nowhere to keep
 * it (then nothing is coordinated). */
int ts_gap_open(const uint8_t public_key[32]);
/* Sleeps until TS_GAP_MS after the last recorded initiation, if that is still ahead. */
void ts_gap_wait(int fd);
/* Records that we are initiating now. */
void ts_gap_record(int fd);

#define TS_GAP_MS 40

#endif
