/* SPDX-License-Identifier: MIT */
/* A ceiling on lwIP's congestion window from the measured path. lwIP's Reno grows the
 * window until something drops; through fast paths and deep socket buffers (ours are
 * 4 MiB, the peer's may be too) nothing drops for a long time, and a window of
 * megabytes only sits in queues: it adds delay, and lwIP pays for it on every ACK, as
 * tcp_output walks the whole unacknowledged queue to find its end. Like BBR's cwnd
 * gain, we allow twice the bandwidth-delay product measured on this connection (the
 * fastest delivery of the last rounds times the smallest round-trip time of the last
 * seconds): enough in flight to keep the path full and to find more bandwidth, no
 * more. lwIP still does the rest (slow start, halving on loss, retransmission). */
#ifndef TS_TCP_CC_H
#define TS_TCP_CC_H

#include <stdint.h>
#include "lwip/tcp.h"

struct ts_tcp_cc {
	uint64_t round_at;      /* when the marked byte was first sent (about) */
	u32_t round_seq;        /* the byte whose acknowledgement ends the round */
	uint64_t round_acked;   /* bytes acknowledged in this round */
	unsigned rounds;        /* for the bandwidth filter's window */
	uint64_t min_rtt, min_rtt_at; /* ns */
	uint64_t rate, rate_prev;     /* bytes per second: this window's best, the last one's */
	int started;
};

/* On every acknowledgement of new data (lwIP's sent callback): measures, and clamps
 * pcb->cwnd before lwIP sends again. */
void ts_tcp_cc_on_ack(struct ts_tcp_cc *cc, struct tcp_pcb *pcb, u16_t acked, uint64_t now);
/* The ceiling now, in bytes, or 0 while nothing is measured. */
uint64_t ts_tcp_cc_ceiling(const struct ts_tcp_cc *cc, const struct tcp_pcb *pcb);

#endif
