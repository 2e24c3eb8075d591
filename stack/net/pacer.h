/* SPDX-License-Identifier: MIT */
/* Smooths the outer UDP stream. lwIP sends a whole congestion window at once; on a
 * fast path that burst overflows the peer's UDP receive buffer (about 90 packets by
 * default) and lwIP, with no SACK recovery, stalls on retransmission timeouts. The
 * kernel's TCP avoids this with small queues and pacing; we pace with a token
 * bucket: bursts up to PACER_DEPTH bytes, then PACER_RATE bytes per second. */
#ifndef TS_PACER_H
#define TS_PACER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PACER_RATE (120ull * 1000 * 1000) /* bytes/s (about 1 Gbit/s); measured best here */
#define PACER_DEPTH (32 * 1024)
#define PACER_QUEUE_MAX 8192              /* packets; beyond, drop as a full link does */

struct pacer_pkt;

struct pacer {
	uint64_t tokens, last_ns;
	struct pacer_pkt *head, *tail;
	size_t queued;
};

typedef int (*pacer_send_fn)(void *ctx, const struct sockaddr *dst, socklen_t dstlen,
			     const uint8_t *buf, size_t len);

/* Sends now if the bucket allows and nothing waits, else queues a copy. */
int pacer_send(struct pacer *p, uint64_t now, pacer_send_fn fn, void *ctx,
	       const struct sockaddr *dst, socklen_t dstlen, const uint8_t *buf, size_t len);
/* Sends what the bucket allows now; returns ns until the next packet may go, or
 * UINT64_MAX when nothing waits. */
uint64_t pacer_flush(struct pacer *p, uint64_t now, pacer_send_fn fn, void *ctx);
void pacer_free(struct pacer *p);

#endif
