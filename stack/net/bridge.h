/* SPDX-License-Identifier: MIT */
/* One bridged connection: a socketpair end (fd) on one side, an lwIP pcb on the other. */
#ifndef TS_BRIDGE_H
#define TS_BRIDGE_H

#include <stdbool.h>
#include "lwip/tcp.h"
#include "lwip/udp.h"
#include "stack_internal.h"
#include "tcp_cc.h"
#include "tcp_sack.h"

struct ts_bridge {
	struct ts_pollable poll;   /* first: the loop hands us back this pointer */
	struct ts_bridge *next;    /* st->bridges */
	struct ts_stack *st;
	struct ts_bridge_req req;
	struct ts_bridge_ops ops;
	void *arg;
	uint64_t id;
	int fd;
	int peer;                  /* routing peer, for handshake failures */
	uint32_t events;           /* current epoll interest on fd */
	size_t discard_left;
	int fail_errno;            /* set before an abort we caused */
	bool reported, dead;
	/* TCP */
	struct tcp_pcb *tcp;
	struct pbuf *to_app;       /* received, not yet written to fd (tot_len not kept) */
	struct pbuf *to_app_tail;  /* its last pbuf */
	size_t to_app_off;         /* bytes of to_app's first pbuf already written */
	bool app_eof, remote_fin, fin_to_app;
	uint64_t orphan_since;     /* continuation: when the last ack progress was seen */
	u32_t orphan_lastack;
	uint64_t syn_at;           /* when the connect began, for the first RTT (ns) */
	struct ts_tcp_cc cc;       /* the ceiling on lwIP's window (tcp_cc.h) */
	struct ts_tcp_sack sack;   /* loss recovery from SACK blocks (tcp_sack.h) */
	struct ts_bridge *sack_next; /* st->sack: an ACK with blocks to act on */
	bool sack_pending;
	struct ts_bridge *deliver_next; /* st->deliver: received data to write out */
	bool deliver_pending;
	/* UDP */
	struct udp_pcb *udp;
	int udp_err;               /* an ICMP error not yet taken by the application */
	struct ts_udp_errinfo udp_errinfo; /* ... in full */
	bool udp_recverr;          /* the socket has IP_RECVERR: every error counts */
	/* ICMP sockets (bridge_icmp.c) */
	bool icmp;
	int icmp_family;           /* AF_INET or AF_INET6 */
	u16_t icmp_id;             /* a ping socket's identifier (host order) */
};

/* bridge_tcp.c */
void ts_bridge_tcp_adopt(struct ts_bridge *b, struct tcp_pcb *pcb);
/* Resets b's connection and ends the bridge (error: why, for its callbacks). */
void ts_bridge_tcp_abort(struct ts_bridge *b, int error);
/* Connects whose SYN waits for a WireGuard handshake keep their SYN retries. */
void ts_bridge_tcp_hold_syns(struct ts_stack *st, uint64_t now);
/* Writes out what this pass of the loop received, once per connection. */
void ts_bridge_tcp_deliver(struct ts_stack *st);
/* After lwIP took a packet: SACK recovery for the connections it acknowledged. */
void ts_bridge_tcp_after_input(struct ts_stack *st);

/* bridge_udp.c: an ICMP error about a connected UDP flow, for its next receive */
void ts_bridge_udp_icmp_error(struct ts_bridge *b, int err, const struct ts_udp_errinfo *info);

/* bridge_icmp.c: ICMP sockets, fed by one raw pcb per family; ICMP errors fail the
 * TCP connects they concern */
int ts_bridge_icmp_open(struct ts_stack *st, struct ts_bridge *b);

/* bridge.c */
void ts_bridge_report(struct ts_bridge *b, int error);
void ts_bridge_started(struct ts_bridge *b);
void ts_bridge_set_events(struct ts_bridge *b, uint32_t events);
void ts_bridge_finish(struct ts_bridge *b);
bool ts_bridge_discard(struct ts_bridge *b);
void ts_bridge_reap(struct ts_stack *st);
/* The live bridge with this id, or NULL. */
struct ts_bridge *ts_bridge_find(struct ts_stack *st, uint64_t id);
struct ts_bridge *ts_bridge_new(struct ts_stack *st, int fd);
int ts_ip_from_sockaddr(const struct sockaddr_storage *ss, ip_addr_t *ip, u16_t *port);
void ts_sockaddr_from_ip(const ip_addr_t *ip, u16_t port, struct sockaddr_storage *ss);

#endif
