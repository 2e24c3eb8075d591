/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include "pacer.h"

struct pacer_pkt {
	struct pacer_pkt *next;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	size_t len;
	uint8_t data[];
};

static void refill(struct pacer *p, uint64_t now)
{
	uint64_t add;

	if (now <= p->last_ns)
		return;
	add = (now - p->last_ns) * PACER_RATE / 1000000000ull;
	p->tokens = p->tokens + add > PACER_DEPTH ? PACER_DEPTH : p->tokens + add;
	p->last_ns = now;
}

static int enqueue(struct pacer *p, const struct sockaddr *dst, socklen_t dstlen,
		   const uint8_t *buf, size_t len)
{
	struct pacer_pkt *k;

	if (p->queued >= PACER_QUEUE_MAX || dstlen > sizeof(k->dst))
		return 0; /* dropped, as by a full link */
	k = malloc(sizeof(*k) + len);
	if (!k)
		return 0;
	memcpy(&k->dst, dst, dstlen);
	k->dstlen = dstlen;
	k->len = len;
	memcpy(k->data, buf, len);
	k->next = NULL;
	if (p->tail)
		p->tail->next = k;
	else
		p->head = k;
	p->tail = k;
	p->queued++;
	return 0;
}

int pacer_send(struct pacer *p, uint64_t now, pacer_send_fn fn, void *ctx,
	       const struct sockaddr *dst, socklen_t dstlen, const uint8_t *buf, size_t len)
{
	refill(p, now);
	if (!p->head && p->tokens >= len) {
		p->tokens -= len;
		return fn(ctx, dst, dstlen, buf, len);
	}
	return enqueue(p, dst, dstlen, buf, len);
}

uint64_t pacer_flush(struct pacer *p, uint64_t now, pacer_send_fn fn, void *ctx)
{
	refill(p, now);
	while (p->head && p->tokens >= p->head->len) {
		struct pacer_pkt *k = p->head;

		p->head = k->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		p->tokens -= k->len;
		fn(ctx, (struct sockaddr *)&k->dst, k->dstlen, k->data, k->len);
		free(k);
	}
	if (!p->head)
		return UINT64_MAX;
	return (p->head->len - p->tokens) * 1000000000ull / PACER_RATE + 1;
}

void pacer_free(struct pacer *p)
{
	while (p->head) {
		struct pacer_pkt *k = p->head;

		p->head = k->next;
		free(k);
	}
	p->tail = NULL;
	p->queued = 0;
}
