/* SPDX-License-Identifier: MIT */
/* The tunnel as an lwIP interface: L3 only (no ARP, no neighbour discovery). lwIP's
 * output goes to the WireGuard device; decrypted packets come back through a queue
 * that the loop drains outside the device's receive path, so the device is never
 * re-entered from lwIP. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "log.h"
#include "bridge.h"
#include "stack_internal.h"

static err_t netif_output_any(struct netif *nif, struct pbuf *p)
{
	struct ts_stack *st = nif->state;
	static uint8_t buf[65536];
	const uint8_t *pkt = p->payload;
	int rc;

	if (p->tot_len != p->len) {
		pbuf_copy_partial(p, buf, p->tot_len, 0);
		pkt = buf;
	}
	if (ts_ackhold_take(&st->acks, st->dev, pkt, p->tot_len))
		return ERR_OK; /* leaves at the end of the pass (ackhold.h) */
	rc = wg_device_send(st->dev, pkt, p->tot_len);
	return rc == 0 ? ERR_OK : ERR_RTE;
}

static err_t output4(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst)
{
	(void)dst;
	return netif_output_any(nif, p);
}

static err_t output6(struct netif *nif, struct pbuf *p, const ip6_addr_t *dst)
{
	(void)dst;
	return netif_output_any(nif, p);
}

static err_t tunnel_netif_init(struct netif *nif)
{
	struct ts_stack *st = nif->state;

	nif->name[0] = 'w';
	nif->name[1] = 'g';
	nif->mtu = st->mtu;
	nif->mtu6 = st->mtu;
	nif->output = output4;
	nif->output_ip6 = output6;
	nif->flags = 0;
	return ERR_OK;
}

static void add_address(struct netif *nif, const struct wg_prefix *a, int *have4)
{
	if (a->ip.family == AF_INET && !*have4) {
		ip4_addr_t ip, mask, gw;

		memcpy(&ip.addr, a->ip.addr, 4);
		mask.addr = a->cidr ? htonl(0xffffffffu << (32 - a->cidr)) : 0;
		gw.addr = 0;
		netif_set_addr(nif, &ip, &mask, &gw);
		*have4 = 1;
	} else if (a->ip.family == AF_INET6) {
		ip6_addr_t ip6;
		s8_t idx;

		memcpy(ip6.addr, a->ip.addr, 16);
		ip6_addr_clear_zone(&ip6);
		if (netif_add_ip6_address(nif, &ip6, &idx) == ERR_OK)
			netif_ip6_addr_set_state(nif, idx, IP6_ADDR_PREFERRED);
		else
			ts_warn("too many IPv6 addresses; ignoring one (lwIP keeps %d)",
				LWIP_IPV6_NUM_ADDRESSES);
	} else {
		ts_warn("only the first IPv4 Address is used inside the tunnel");
	}
}

int ts_netif_setup(struct ts_stack *st, const struct wg_config *cfg)
{
	int have4 = 0;

	lwip_init();
	if (!netif_add(&st->netif, NULL, NULL, NULL, st, tunnel_netif_init, ip_input))
		return -1;
	for (size_t i = 0; i < cfg->n_addresses; i++)
		add_address(&st->netif, &cfg->addresses[i], &have4);
	netif_set_default(&st->netif);
	netif_set_link_up(&st->netif);
	netif_set_up(&st->netif);
	return 0;
}

void ts_netif_deliver(void *ctx, const uint8_t *pkt, size_t len)
{
	struct ts_stack *st = ctx;
	struct pbuf *p;

	if (len > 0xffff)
		return;
	p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
	if (!p)
		return;
	memcpy(p->payload, pkt, len);
	/* pbufs of one packet are single here, so ->next is free to chain the queue. */
	if (st->rxq.tail)
		st->rxq.tail->next = p;
	else
		st->rxq.head = p;
	st->rxq.tail = p;
}

void ts_netif_drain(struct ts_stack *st)
{
	struct pbuf *p;

	while ((p = st->rxq.head)) {
		st->rxq.head = p->next;
		if (!st->rxq.head)
			st->rxq.tail = NULL;
		p->next = NULL;
		if (st->netif.input(p, &st->netif) != ERR_OK)
			pbuf_free(p);
		ts_bridge_tcp_after_input(st);
	}
}
