/* SPDX-License-Identifier: MIT */
/* Our congestion response, around lwIP's Reno, from a model of the path in the manner of
 * BBR: the fastest delivery of the last rounds times the smallest round-trip time of the
 * last seconds is the bandwidth-delay product (BDP).
 *
 * - The window stays below twice the BDP (at least 64 KiB): enough in flight to keep the
 *   path full and to find more bandwidth, no more. Without it lwIP's Reno grows the window
 *   until something drops; through fast paths and deep socket buffers (ours are 4 MiB)
 *   nothing drops for a long time, and a window of megabytes only sits in queues, where
 *   lwIP pays for it on every ACK (tcp_output walks the unacknowledged queue).
 *   On a path without a loss in the last 10 s the ceiling also allows the largest burst
 *   of ACKs beyond the measured rate (BBR's extra_acked) and the BDP over at least
 *   250 us: between two of our stacks on one machine ACKs come in batches and the idle
 *   round trip is tens of microseconds, and twice that BDP left the pipeline idle half
 *   the time (190-200 MB/s with 1.1 of 2 cores busy; 369-421 with both). A loss
 *   withdraws it: bursts overflowed wireguard-go's 208 KB receive buffer.
 * - Below that ceiling lwIP stays in slow start: the window doubles per round trip until
 *   the ceiling holds it. The ceiling itself rises with the measured rate, so growth goes
 *   on while the path takes more.
 * - A loss takes the window down to half of what was in flight, as Reno does, but never
 *   below 1.25 BDP (tcp_sack.c asks for the floor). Reno's halving reads every loss as
 *   congestion: over a 40 ms path with 1 % random loss it holds an upload near
 *   MSS / RTT * 1.2 / sqrt(p), half a megabyte per second. A path that is not full loses
 *   no delivery rate with one BDP in flight, and the quarter more lets the rate grow by
 *   up to a quarter a round while losses keep the connection in recovery (with the floor
 *   at one BDP it stayed at the rate of its first loss); on a full path it is a standing
 *   queue of a quarter BDP. Real congestion shows as a lower delivery rate, and the BDP
 *   follows it down within the rate filter's rounds.
 * - Every 10 s without a new minimum, the window drops to half a BDP for 200 ms and at
 *   least two rounds, so a queue we built ourselves drains and the round-trip time is
 *   measured afresh (BBR's PROBE_RTT); else a standing queue would pass for path delay
 *   and ratchet the BDP up.
 * lwIP does the rest (segments, retransmission); its timeout's estimator is set below. */
#ifndef TS_TCP_CC_H
#define TS_TCP_CC_H

#include <stdbool.h>
#include <stdint.h>
#include "lwip/tcp.h"

struct ts_tcp_cc {
	uint64_t round_at;      /* when the marked byte was first sent (about) */
	u32_t round_seq;        /* the byte whose acknowledgement ends the round */
	u32_t round_delivered;  /* the delivered count (see on_ack) when the round began */
	u32_t delivered;        /* the latest delivered count */
	uint64_t round_pass;    /* the loop pass the round began in */
	uint64_t last_round;    /* the last round's length (ns) */
	unsigned rounds;        /* for the bandwidth filter's window */
	uint64_t min_rtt, min_rtt_at; /* ns */
	uint64_t rate, rate_prev;     /* bytes per second: this window's best, the last one's */
	uint64_t agg_at;              /* when the current burst of ACKs began (ns) */
	u32_t agg_delivered;          /* the delivered count then */
	u32_t extra, extra_prev;      /* most delivered beyond the rate in one burst */
	uint64_t loss_at;             /* the last loss seen (ns), 0: none */
	bool lossy;                   /* one within CC_LOSS_MEMORY_NS: no allowance */
	tcpwnd_size_t ssthresh_set;   /* what set_window left in pcb->ssthresh */
	uint64_t probe_at, probe_min; /* a round-trip probe's start, its smallest round (ns) */
	unsigned probe_rounds;
	bool probing;
	bool started;
};

/* On every acknowledgement of new data (lwIP's sent callback). held: the bytes above
 * pcb->lastack the peer's SACK blocks say it holds (they count as delivered); pass: which
 * pass of the stack's loop this is (its ACKs came in one batch). Measures,
 * and unless tcp_sack.c is recovering a loss, sets the window before lwIP sends again. */
void ts_tcp_cc_on_ack(struct ts_tcp_cc *cc, struct tcp_pcb *pcb, u32_t held, bool recovering,
		      uint64_t now, uint64_t pass);
/* The least a loss takes the window to, in bytes (0 while nothing is measured). */
u32_t ts_tcp_cc_loss_floor(const struct ts_tcp_cc *cc);

/* The retransmission timeout, RFC 6298's way. lwIP 2.1.3 starts its variance at 3 s and
 * only decays it by a quarter per sample, so after a handshake its timeout is still
 * 2.3 s, and a request lost on a fresh connection waited that long (wrk's 2 s timeouts);
 * and with enough samples on a fast path it falls to one 20 ms tick, below any delayed
 * ACK. ts_tcp_rto_init sets the estimator from a first measurement (the handshake's:
 * SRTT = R, RTTVAR = R / 2) and ts_tcp_rto_floor keeps the timeout at 200 ms or more, as
 * Linux's, through lwIP's own updates and back-off, which recompute it from the same
 * two fields. rtt_ns 0: not measured. */
void ts_tcp_rto_init(struct tcp_pcb *pcb, uint64_t rtt_ns);
void ts_tcp_rto_floor(struct tcp_pcb *pcb);

#endif
