/* SPDX-License-Identifier: MIT */
#include <string.h>
#include "ackhold.h"
#include "device.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10
#define TH_URG 0x20
#define PROTO_TCP 6

struct flow {
	uint8_t key[ACKHOLD_KEY];
	uint8_t keylen;
	bool pure;
};

/* The TCP connection of an IP packet, and whether it is a pure ACK; false when it is
 * not TCP (or a fragment, or malformed: those go as they are). */
static bool tcp_flow(const uint8_t *p, size_t len, struct flow *f)
{
	size_t off, doff;
	uint8_t flags;

	if (len >= 20 && p[0] >> 4 == 4) {
		off = (size_t)(p[0] & 15) * 4;
		if (p[9] != PROTO_TCP || off < 20 || (p[6] & 0x3f) || p[7])
			return false;
		f->key[0] = 4;
		memcpy(f->key + 1, p + 12, 8);
		f->keylen = 9;
	} else if (len >= 40 && p[0] >> 4 == 6) {
		off = 40;
		if (p[6] != PROTO_TCP)
			return false;
		f->key[0] = 6;
		memcpy(f->key + 1, p + 8, 32);
		f->keylen = 33;
	} else {
		return false;
	}
	if (len < off + 20)
		return false;
	memcpy(f->key + f->keylen, p + off, 4); /* the ports */
	f->keylen += 4;
	doff = (size_t)(p[off + 12] >> 4) * 4;
	flags = p[off + 13];
	if (doff < 20 || len < off + doff)
		return false;
	f->pure = len == off + doff && (flags & TH_ACK) &&
		  !(flags & (TH_SYN | TH_FIN | TH_RST | TH_URG)) && len <= ACKHOLD_MAX;
	return true;
}

static int find(const struct ts_ackhold *h, const struct flow *f)
{
	for (unsigned i = 0; i < h->n; i++)
		if (h->slot[i].keylen == f->keylen && !memcmp(h->slot[i].key, f->key, f->keylen))
			return (int)i;
	return -1;
}

bool ts_ackhold_take(struct ts_ackhold *h, struct wg_device *dev, const uint8_t *pkt,
		     size_t len)
{
	struct flow f;
	int i;

	if (!tcp_flow(pkt, len, &f))
		return false;
	i = find(h, &f);
	if (!f.pure) {
		if (i >= 0) /* superseded: the last slot takes its place */
			h->slot[i] = h->slot[--h->n];
		return false;
	}
	if (i < 0) {
		if (h->n == ACKHOLD_SLOTS)
			ts_ackhold_flush(h, dev);
		i = (int)h->n++;
		memcpy(h->slot[i].key, f.key, f.keylen);
		h->slot[i].keylen = f.keylen;
	}
	memcpy(h->slot[i].pkt, pkt, len);
	h->slot[i].len = (uint16_t)len;
	return true;
}

void ts_ackhold_flush(struct ts_ackhold *h, struct wg_device *dev)
{
	unsigned n = h->n;

	h->n = 0;
	for (unsigned i = 0; i < n; i++)
		wg_device_send(dev, h->slot[i].pkt, h->slot[i].len);
}
