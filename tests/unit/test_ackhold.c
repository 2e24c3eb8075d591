/* SPDX-License-Identifier: MIT */
/* stack/net/ackhold.c: pure ACKs held to the end of a pass, the last of each connection
 * sent; data, flags, other protocols and fragments never held, a connection's data
 * segment dropping its held ACK, a full table sent first, IPv4 and IPv6. wg_device_send
 * is this test's: it records what the flush sends. */
#include <stdint.h>
#include <string.h>

#include "ackhold.h"
#include "check.h"

static uint8_t sent[64][ACKHOLD_MAX];
static size_t sent_len[64];
static int n_sent;

int wg_device_send(struct wg_device *dev, const uint8_t *pkt, size_t len);
int wg_device_send(struct wg_device *dev, const uint8_t *pkt, size_t len)
{
	(void)dev;
	if (n_sent < 64 && len <= ACKHOLD_MAX) {
		memcpy(sent[n_sent], pkt, len);
		sent_len[n_sent] = len;
	}
	n_sent++;
	return 0;
}

/* An IPv4 TCP packet from 10.0.0.2:sport to 10.0.0.1:80 with flags, ack number and
 * payload bytes (zeros); returns its length. */
static size_t tcp4(uint8_t *p, uint16_t sport, uint8_t flags, uint32_t ack, size_t payload)
{
	size_t len = 20 + 20 + payload;

	memset(p, 0, len);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = 6;
	memcpy(p + 12, (uint8_t[]){ 10, 0, 0, 2, 10, 0, 0, 1 }, 8);
	p[20] = (uint8_t)(sport >> 8);
	p[21] = (uint8_t)sport;
	p[23] = 80;
	p[28] = (uint8_t)(ack >> 24);
	p[29] = (uint8_t)(ack >> 16);
	p[30] = (uint8_t)(ack >> 8);
	p[31] = (uint8_t)ack;
	p[32] = 5 << 4;
	p[33] = flags;
	return len;
}

static size_t tcp6(uint8_t *p, uint16_t sport, uint8_t flags, uint32_t ack)
{
	memset(p, 0, 60);
	p[0] = 0x60;
	p[5] = 20;
	p[6] = 6;
	p[7] = 64;
	p[23] = 2;
	p[39] = 1;
	p[40] = (uint8_t)(sport >> 8);
	p[41] = (uint8_t)sport;
	p[43] = 80;
	p[51] = (uint8_t)ack;
	p[52] = 5 << 4;
	p[53] = flags;
	return 60;
}

#define ACK 0x10
#define PSH 0x08
#define FIN 0x01

int main(void)
{
	static struct ts_ackhold h;
	uint8_t p[2048];
	size_t len;

	/* Three ACKs of one connection in a pass: only the last leaves, at the flush. */
	for (uint32_t a = 1; a <= 3; a++)
		CHECK(ts_ackhold_take(&h, NULL, p, tcp4(p, 1000, ACK, a, 0)));
	CHECK_INT(n_sent, 0);
	ts_ackhold_flush(&h, NULL);
	CHECK_INT(n_sent, 1);
	CHECK_INT(sent[0][31], 3);
	CHECK_INT(h.n, 0);
	ts_ackhold_flush(&h, NULL);
	CHECK_INT(n_sent, 1);

	/* Two connections, v4 and v6: one ACK each. */
	n_sent = 0;
	CHECK(ts_ackhold_take(&h, NULL, p, tcp4(p, 1000, ACK, 7, 0)));
	CHECK(ts_ackhold_take(&h, NULL, p, tcp4(p, 1001, ACK | PSH, 8, 0)));
	CHECK(ts_ackhold_take(&h, NULL, p, tcp6(p, 1000, ACK, 9)));
	CHECK(ts_ackhold_take(&h, NULL, p, tcp6(p, 1000, ACK, 10)));
	ts_ackhold_flush(&h, NULL);
	CHECK_INT(n_sent, 3);
	CHECK_INT(sent[2][51], 10);

	/* Data, FIN, SYN are not held, and drop the connection's held ACK only. */
	n_sent = 0;
	CHECK(ts_ackhold_take(&h, NULL, p, tcp4(p, 1000, ACK, 11, 0)));
	CHECK(ts_ackhold_take(&h, NULL, p, tcp4(p, 2000, ACK, 12, 0)));
	CHECK(!ts_ackhold_take(&h, NULL, p, tcp4(p, 1000, ACK | PSH, 13, 100)));
	CHECK(!ts_ackhold_take(&h, NULL, p, tcp4(p, 3000, ACK | FIN, 14, 0)));
	CHECK(!ts_ackhold_take(&h, NULL, p, tcp4(p, 3000, 0x02, 0, 0)));
	CHECK_INT(h.n, 1);
	ts_ackhold_flush(&h, NULL);
	CHECK_INT(n_sent, 1);
	CHECK_INT(sent[0][31], 12);

	/* Not TCP, a fragment, a truncated header, too short: passed on as they are. */
	len = tcp4(p, 1000, ACK, 1, 0);
	p[9] = 17;
	CHECK(!ts_ackhold_take(&h, NULL, p, len));
	len = tcp4(p, 1000, ACK, 1, 0);
	p[6] = 0x20; /* more fragments */
	CHECK(!ts_ackhold_take(&h, NULL, p, len));
	len = tcp4(p, 1000, ACK, 1, 0);
	CHECK(!ts_ackhold_take(&h, NULL, p, 30));
	p[32] = 15 << 4; /* a TCP header longer than the packet */
	CHECK(!ts_ackhold_take(&h, NULL, p, len));
	CHECK(!ts_ackhold_take(&h, NULL, p, 3));
	p[0] = 0x55;
	CHECK(!ts_ackhold_take(&h, NULL, p, len));
	CHECK_INT(h.n, 0);

	/* A full table is sent before the next connection's ACK is held. */
	n_sent = 0;
	for (uint16_t port = 0; port < ACKHOLD_SLOTS + 1; port++)
		CHECK(ts_ackhold_take(&h, NULL, p, tcp4(p, (uint16_t)(5000 + port), ACK, 1, 0)));
	CHECK_INT(n_sent, ACKHOLD_SLOTS);
	CHECK_INT(h.n, 1);
	ts_ackhold_flush(&h, NULL);
	CHECK_INT(n_sent, ACKHOLD_SLOTS + 1);
	return check_done("test_ackhold");
}
