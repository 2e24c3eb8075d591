/* SPDX-License-Identifier: MIT */
/* The Internet checksum for lwIP (LWIP_CHKSUM, lwipopts.h), eight bytes at a time.
 * lwIP's own sums two bytes at a time; it was 7 % of a sending stack's time, as every
 * segment is summed while tcp_write copies it in (LWIP_CHECKSUM_ON_COPY).
 *
 * The one's-complement sum can be taken over wider words and folded afterwards (RFC
 * 1071, section 2). The result is lwIP's: the sum of the 16-bit words read in host
 * order from the start of the buffer, whatever its alignment, a last odd byte padded
 * with a zero after it, folded and not inverted. */
#include <stdint.h>
#include <string.h>
#include "lwipopts.h"

static uint64_t add64(uint64_t sum, uint64_t w)
{
	sum += w;
	return sum + (sum < w); /* end-around carry */
}

unsigned short ts_chksum(const void *data, int len)
{
	const uint8_t *p = data;
	uint64_t sum = 0, w;
	uint32_t w4 = 0;
	uint16_t w2 = 0;

	for (; len >= 32; len -= 32, p += 32) {
		uint64_t a[4];

		memcpy(a, p, sizeof(a));
		sum = add64(add64(add64(add64(sum, a[0]), a[1]), a[2]), a[3]);
	}
	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&w, p, 8);
		sum = add64(sum, w);
	}
	if (len >= 4) {
		memcpy(&w4, p, 4);
		sum = add64(sum, w4);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&w2, p, 2);
		sum = add64(sum, w2);
		p += 2;
		len -= 2;
	}
	if (len == 1) {
		uint8_t last[2] = { p[0], 0 };

		memcpy(&w2, last, 2);
		sum = add64(sum, w2);
	}
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return (unsigned short)sum;
}
