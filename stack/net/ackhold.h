/* SPDX-License-Identifier: MIT */
/* Pure ACKs held to the end of the loop's pass, the last of each connection sent. lwIP
 * acknowledges every second segment it takes, and with UDP GRO one pass takes dozens of a
 * connection's segments at once: each ACK was sealed, sent, and at the other end opened
 * and walked through by lwIP's tcp_output, which finds the end of its unacknowledged
 * queue by walking it on every ACK (22 % of a sending stack's time shim to shim). The
 * last ACK of a pass carries the newest cumulative acknowledgement, window and SACK
 * blocks, which is what a sender reads (Linux acknowledges a GRO batch once, too).
 * Duplicate ACKs of one pass become one, so a sender that counts them to detect loss
 * sees fewer: ours and Linux's read SACK blocks instead. A segment with data or a flag
 * carries a newer acknowledgement than the ACK it follows, which it replaces. */
#ifndef TS_ACKHOLD_H
#define TS_ACKHOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACKHOLD_SLOTS 16
#define ACKHOLD_MAX 128 /* an IPv6 header and a TCP header with 40 bytes of options */
#define ACKHOLD_KEY 37  /* family, addresses, ports */

struct wg_device;

struct ts_ackhold {
	unsigned n;
	struct {
		uint8_t key[ACKHOLD_KEY];
		uint8_t keylen;
		uint16_t len;
		uint8_t pkt[ACKHOLD_MAX];
	} slot[ACKHOLD_SLOTS];
};

/* Before lwIP's packet goes to the device: true when it was a pure ACK and is held
 * (a full table is sent first). Any other TCP packet drops its connection's held ACK. */
bool ts_ackhold_take(struct ts_ackhold *h, struct wg_device *dev, const uint8_t *pkt,
		     size_t len);
/* At the end of a pass: sends what is held. */
void ts_ackhold_flush(struct ts_ackhold *h, struct wg_device *dev);

#endif
