/* SPDX-License-Identifier: MIT */
/* Loss recovery from selective acknowledgements, which lwIP 2.1.3 lacks. lwIP advertises
 * SACK and reports its own holes, but as a sender it reads no SACK blocks: it resends the
 * first lost segment after three duplicate ACKs, and every further loss of the same
 * window costs a retransmission timeout, after which it starts again from one segment.
 * Over a path with a 40 ms round trip, a few datagrams lost to a full receive buffer cut
 * an upload from 25 MB/s to 4.
 *
 * A hook on lwIP's TCP input (LWIP_HOOK_TCP_INPACKET_PCB) reads the SACK blocks of every
 * ACK to one of our connections and marks the segments they cover (the scoreboard, kept
 * in lwIP's own segments); once lwIP has taken the ACK, the holes below the highest
 * selectively acknowledged byte, anywhere in the window, are resent, each once per
 * recovery (RFC 6675, simplified: a hole is lost when three segments' worth was
 * acknowledged above it). Entering recovery halves the window as lwIP's fast retransmit
 * would, but not below a floor the caller gives (tcp_cc.h: 1.25 bandwidth-delay
 * products); while it lasts the window counts what the peer holds, and lwIP's own fast
 * retransmit stays out of the way. */
#ifndef TS_TCP_SACK_H
#define TS_TCP_SACK_H

#include <stdbool.h>
#include <stdint.h>
#include "lwip/tcp.h"

#define TS_SACK_BLOCKS 4
/* In a tcp_seg's flags, which lwIP 2.1.3 uses up to 0x10: the peer has SACKed it. */
#define TS_SEG_SACKED 0x80u

struct ts_tcp_sack {
	u32_t left[TS_SACK_BLOCKS], right[TS_SACK_BLOCKS]; /* of the latest ACK */
	unsigned n;
	u32_t held;             /* bytes above the ACK's ackno the peer holds (scoreboard) */
	u32_t high;             /* the end of the highest of them, or ackno */
	bool fresh;             /* blocks not acted on yet */
	bool recovering;
	u32_t recover;          /* recovery ends when this is acknowledged */
	u32_t resent_to;        /* holes below this were resent in this round */
	uint64_t round_at;      /* when this round of resending began (ns) */
};

struct tcp_hdr;
struct pbuf;

/* Parses the SACK option of an incoming segment (lwIP's hook arguments, before lwIP
 * takes it) and marks the segments of pcb's unacked queue it covers. */
void ts_tcp_sack_parse(struct ts_tcp_sack *s, const struct tcp_pcb *pcb,
		       const struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, const u8_t *opt2);
/* After lwIP has processed the ACK: enters, continues or ends recovery, and moves lost
 * segments back to lwIP's unsent queue. A hole still open a round trip (rtt_ns, at
 * least) after it was resent is resent again: a lost retransmission would otherwise
 * wait for lwIP's timeout. Entering recovery takes the window to half of what is in
 * flight, or to floor (bytes) if that is more. Returns true when pcb has something to
 * send. */
bool ts_tcp_sack_recover(struct ts_tcp_sack *s, struct tcp_pcb *pcb, uint64_t now,
			 uint64_t rtt_ns, u32_t floor);
/* The bytes above the latest ACK the peer holds, by the scoreboard. */
static inline u32_t ts_tcp_sack_held(const struct ts_tcp_sack *s)
{
	return s->held;
}

#endif
