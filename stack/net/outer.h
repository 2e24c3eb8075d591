/* SPDX-License-Identifier: MIT */
/* The outer UDP socket's data path in batches. Sends made during one pass of the loop
 * collect here and leave together at its end: one sendmmsg, and where the kernel has UDP
 * GSO, one buffer per run of equal-sized packets, which the kernel cuts into datagrams
 * (a single send costs about as much as 40 separate ones). Receives take what is queued
 * with one recvmmsg; with UDP GRO a buffer holds several datagrams of one sender, in
 * segments of one size, which the receive path walks one by one. */
#ifndef TS_OUTER_H
#define TS_OUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TX_BATCH 64

struct ts_txbatch {
	uint8_t *buf;               /* TX_BATCH slots of slot bytes */
	size_t slot;
	unsigned n;
	uint16_t len[TX_BATCH];
	struct sockaddr_storage dst; /* one destination per batch */
	socklen_t dstlen;
	bool gso;                   /* the kernel takes UDP_SEGMENT */
};

int ts_txbatch_init(struct ts_txbatch *t, size_t slot, int fd);
void ts_txbatch_free(struct ts_txbatch *t);
/* Copies the datagram into the batch; sends the batch first when it is full or goes
 * elsewhere. A datagram too large for a slot goes at once. */
void ts_txbatch_add(struct ts_txbatch *t, int fd, const struct sockaddr *dst, socklen_t dstlen,
		    const uint8_t *buf, size_t len);
/* Sends what is collected; what the socket cannot take now is dropped, as a full
 * link drops. */
void ts_txbatch_flush(struct ts_txbatch *t, int fd);

/* Receiving: asks the kernel to coalesce; true when it will. */
bool ts_gro_enable(int fd);

union ts_gro_ctl {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

/* The segment size of a coalesced buffer, from its control message; 0 when the
 * buffer is one datagram. */
size_t ts_gro_segment(const struct msghdr *m);

#endif
