/* SPDX-License-Identifier: MIT */
/* ts_chksum against the definition (RFC 1071: 16-bit words from the start of the
 * buffer, an odd last byte padded with zero) at every alignment and many lengths,
 * and against RFC 1071's worked example. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

unsigned short ts_chksum(const void *data, int len);

static unsigned short reference(const uint8_t *p, int len)
{
	uint32_t sum = 0;
	uint16_t w;

	for (int i = 0; i + 1 < len; i += 2) {
		memcpy(&w, p + i, 2);
		sum += w;
	}
	if (len & 1) {
		uint8_t last[2] = { p[len - 1], 0 };

		memcpy(&w, last, 2);
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (unsigned short)sum;
}

int main(void)
{
	/* RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (network order). */
	static const uint8_t rfc[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint8_t *buf = malloc(4096 + 16);
	unsigned short got;
	uint8_t be[2];
	int bad = 0;

	got = ts_chksum(rfc, sizeof(rfc));
	memcpy(be, &got, 2);
	/* RFC 1071's example sums to dd f2 */
	CHECK(be[0] == 0xdd && be[1] == 0xf2);
	srand(1);
	for (int i = 0; i < 4096 + 16; i++)
		buf[i] = (uint8_t)rand();
	for (int off = 0; off < 16; off++)
		for (int len = 0; len <= 4096; len += len < 80 ? 1 : 37)
			bad += ts_chksum(buf + off, len) != reference(buf + off, len);
	/* every alignment 0..15 and length 0..4096 matches the definition */
	CHECK_INT(bad, 0);
	/* Many words of ff ff: the carries must wrap around, not get lost. */
	memset(buf, 0xff, 4096);
	buf[4095] = 0xfe;
	CHECK_INT(ts_chksum(buf, 4096), reference(buf, 4096));
	free(buf);
	return check_done("chksum");
}
