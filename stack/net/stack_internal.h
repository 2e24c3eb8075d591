/* SPDX-License-Identifier: MIT */
/* State shared by the stack thread's files (loop, netif, bridges). Touched by the
 * stack thread only, except the command queue (under qmu). */
#ifndef TS_STACK_INTERNAL_H
#define TS_STACK_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include "lwip/netif.h"
#include "device.h"
#include "ackhold.h"
#include "outer.h"
#include "stack.h"

struct ts_stack;

/* Anything registered with the loop's epoll: data.ptr points at one of these, the
 * first member of a malloc'd object. Such objects are freed with ts_loop_bury, never
 * directly: events already fetched for them in this round must find them, dead. */
struct ts_pollable {
	void (*handler)(struct ts_stack *st, struct ts_pollable *p, uint32_t events);
	struct ts_pollable *grave; /* buried: freed after this round of events */
	bool dead;
};

/* What application threads ask of the stack thread. Numbers travel between processes
 * (session_wire.h): append only. */
enum ts_cmd_type {
	TS_CMD_BRIDGE, TS_CMD_STATS, TS_CMD_ABORT, TS_CMD_INFO, TS_CMD_PARK, TS_CMD_BUSY,
	TS_CMD_LISTEN, TS_CMD_UNLISTEN, TS_CMD_TCPOPT, TS_CMD_ENDPOINT, TS_CMD_RELAY,
	TS_CMD_CLAIM, TS_CMD_DEVSTATS, TS_CMD_UDPERR,
};

struct ts_cmd {
	struct ts_cmd *next;
	enum ts_cmd_type type;
	struct ts_bridge_req req;
	struct ts_bridge_ops ops;
	void *arg;
	int peer;
	uint64_t id;
	struct wg_peer_stats *stats;
	struct wg_device_stats *dev_stats;
	struct ts_tcp_info *info;
	struct ts_udp_errinfo *udp_err; /* TS_CMD_UDPERR's answer */
	uint16_t port;
	int family;
	struct sockaddr_storage forward;
	uint64_t *out_id;
	struct sockaddr_storage *relay_addr; /* TS_CMD_RELAY's answer */
	uint8_t *relay_token;
	struct sockaddr_storage claim_from, claim_to; /* TS_CMD_CLAIM: the doorbell */
	struct ts_claim *claim;       /* ... and its answer */
	struct ts_waiter *waiter;
	uint64_t seq;                 /* session client: the request's number */
	uint8_t seen;                 /* session client: STARTED (1), DONE (2) came */
};

/* How an application thread waits for the stack thread without spinning. A waiter
 * with a reply hook is an attached process's (session_server.c): waking it answers. */
struct ts_waiter {
	void (*reply)(struct ts_waiter *w, int rc);
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int rc;
	struct ts_bridge_result res;
};

struct ts_rxq { struct pbuf *head, *tail; };

struct ts_bridge;
struct udp_flow;
struct ts_listener;
struct ts_server;
struct ts_client;
struct ts_doorbell;
struct raw_pcb;

struct ts_udp_relay {
	struct ts_pollable poll;   /* first */
	struct ts_stack *st;
	int fd;
	struct sockaddr_storage addr;
	struct udp_flow *flows;
};

struct ts_stack {
	pthread_t thread;
	int epfd, evfd, udp_fd, udp_family;
	struct ts_pollable ev_poll, udp_poll;
	pthread_mutex_t qmu;
	struct ts_cmd *qhead, *qtail;
	int stopping;
	struct wg_device *dev;
	struct netif netif;
	struct ts_rxq rxq;          /* decrypted packets waiting for lwIP */
	uint8_t *rxbufs;            /* recvmmsg slots */
	size_t rxslot;
	bool gro;                   /* the outer socket coalesces (outer.h) */
	uint64_t next_id;
	struct ts_bridge *bridges;  /* every live bridge, for stop and peer failures */
	struct ts_bridge *deliver;  /* bridges with received data to write out (bridge_tcp.c) */
	/* Busy polling (loop.c): the last wait ended within opt.busy_poll_us; the tunnel
	 * traffic seen at the last wait, and measured over the current window. */
	struct ts_ackhold acks;     /* pure ACKs held to the pass's end (ackhold.h) */
	bool busy, bulk;
	uint64_t passes;            /* of the loop, counted (tcp_cc.c's ACK batches) */
	uint64_t traffic_seen, traffic_at, traffic_base;
	struct ts_bridge *sack;     /* bridges whose ACK brought SACK blocks (bridge_tcp.c) */
	int mtu;
	int gap_fd;                 /* hs_gap.h record, or -1 */
	struct ts_txbatch tx;       /* outer datagrams of this pass of the loop */
	struct ts_stack_options opt;
	char **ep_host;             /* per peer: the Endpoint hostname to resolve again */
	uint16_t *ep_port;
	int *ep_resolving;          /* a resolver thread is out for this peer */
	size_t n_peers;
	struct ts_udp_relay relay4, relay6;
	struct raw_pcb *icmp4, *icmp6; /* every ICMP packet, for the ICMP sockets (bridge_icmp.c) */
	struct ts_listener *listeners;
	struct ts_doorbell *doorbells; /* inbound connections waiting for a claim */
	struct ts_pollable *graves;    /* buried: freed after this round of events */
	uint8_t udp_token[8];
	int continuation;           /* in a detached child: end when idle */
	uint64_t linger_until;      /* continuation: give up closing at this time */
	int parked;                 /* stopped for a detach (parent side) */
	uint64_t idle_since;        /* continuation: nothing served since (grace) */
	uint64_t reported_at;       /* continuation: when it last said what it serves */
	uint64_t stats_next;        /* when stats.c logs the counts next (opt.stats_ms) */
	uint64_t syn_hold_at;       /* when bridge_tcp.c last held back SYN retries */
	struct ts_server *server;   /* serving attached processes (session_server.c) */
	struct ts_client *client;   /* attached: commands go to the holder; nothing else
				     * of this struct is used (session_client.c) */
};

/* loop.c */
bool ts_loop_idle(struct ts_stack *st);
/* Frees p's object after the current round of events; its handler never runs again. */
void ts_loop_bury(struct ts_stack *st, struct ts_pollable *p);
/* Runs one command on the stack thread and frees it. */
void ts_command_run(struct ts_stack *st, struct ts_cmd *cmd);
uint64_t ts_now_ns(void); /* monotonic */
void ts_loop_run(struct ts_stack *st);

/* stats.c: the live counts as one log line (opt.stats_ms). */
void ts_stats_log(struct ts_stack *st);
uint64_t ts_stats_tick(struct ts_stack *st, uint64_t now);

/* inbound.c */
int ts_listen_start(struct ts_stack *st, struct ts_cmd *cmd);
int ts_listen_stop(struct ts_stack *st, uint64_t id);
void ts_listen_close_all(struct ts_stack *st);
bool ts_listen_alive(struct ts_stack *st);
bool ts_udp_servers_alive(struct ts_stack *st);

/* sockowner.c: the user of the TCP socket with this four-tuple (0, or -errno). */
int ts_tcp_owner(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		 uid_t *uid);
/* 1 if a listener of this user listens at addr, 0 if none does, -errno if the kernel
 * cannot say. */
int ts_tcp_listening(const struct sockaddr_storage *addr);

/* doorbell.c */
int ts_doorbell_ring(struct ts_stack *st, uint64_t listener_id, const struct sockaddr_storage *to,
		     uint64_t bridge_id, const struct sockaddr_storage *remote,
		     const struct sockaddr_storage *local, int app_fd);
int ts_doorbell_claim(struct ts_stack *st, struct ts_cmd *cmd);
uint64_t ts_doorbell_expire(struct ts_stack *st, uint64_t now);
void ts_doorbell_close_all(struct ts_stack *st);

/* udp_relay.c */
void ts_udp_relay_setup(struct ts_stack *st);
void ts_udp_relay_watch(struct ts_stack *st);
void ts_udp_relay_close(struct ts_stack *st);
void ts_udp_relay_drain(struct ts_stack *st);
/* An ICMP error quoting a UDP datagram from local port sport to dst:dport (host
 * order): framed (TS_UDP_FRAME_ERROR) to the application socket of the relay flow on
 * that port, if there is one, with the quoted payload from offset off of p. */
void ts_udp_relay_error(struct ts_stack *st, int family, uint16_t sport, uint16_t dport,
			const uint8_t *dst, const struct ts_udp_error *rec, struct pbuf *p,
			uint16_t off);
int ts_udp_relay_info(struct ts_stack *st, int family, struct sockaddr_storage *addr,
		      uint8_t token[8]);

/* stack.c */
/* Queues cmd for the stack thread (or sends it to the holder): 0, or -errno when it
 * could not be (then it is still the caller's). */
int ts_stack_submit(struct ts_stack *st, struct ts_cmd *cmd);
void ts_waiter_wake(struct ts_waiter *w, int rc);
/* endpoint.c */
void ts_endpoint_reresolve(struct ts_stack *st, int peer);
void ts_endpoint_update(struct ts_stack *st, struct ts_cmd *cmd);
int ts_endpoint_resolve(const char *host, uint16_t port, struct sockaddr_storage *out,
			char *err, size_t errlen);

/* loop.c */
void ts_loop_watch(struct ts_stack *st, int fd, struct ts_pollable *p, uint32_t events);
void ts_loop_modify(struct ts_stack *st, int fd, struct ts_pollable *p, uint32_t events);
void ts_loop_unwatch(struct ts_stack *st, int fd);
/* Sends what the pass produced: held ACKs (ackhold.h), then the datagram batch. */
void ts_loop_flush(struct ts_stack *st);

/* netif.c */
int ts_netif_setup(struct ts_stack *st, const struct wg_config *cfg);
void ts_netif_deliver(void *ctx, const uint8_t *pkt, size_t len);
void ts_netif_drain(struct ts_stack *st);

/* bridge_tcp.c, bridge_udp.c, bridge.c */
void ts_bridge_start(struct ts_stack *st, struct ts_cmd *cmd);
int ts_bridge_tcp_open(struct ts_stack *st, struct ts_bridge *b);
int ts_bridge_udp_open(struct ts_stack *st, struct ts_bridge *b);
/* bridge_icmp.c: the raw pcbs that see every ICMP packet, made once the netif is up */
int ts_icmp_setup(struct ts_stack *st);
void ts_bridge_peer_failed(struct ts_stack *st, int peer);
void ts_bridge_close_all(struct ts_stack *st);
void ts_bridge_abort_id(struct ts_stack *st, uint64_t id);
int ts_bridge_info_id(struct ts_stack *st, uint64_t id, struct ts_tcp_info *out);
int ts_bridge_options_id(struct ts_stack *st, uint64_t id, const struct ts_bridge_req *opts);
/* bridge_udp.c: the ICMP error pending on a connected UDP flow, taken (0: none) */
int ts_bridge_udp_take_error(struct ts_stack *st, uint64_t id, struct ts_udp_errinfo *out);
/* An inbound bridge gets its claimer's callbacks; false when it has already ended. */
bool ts_bridge_adopt_ops(struct ts_stack *st, uint64_t id, const struct ts_bridge_ops *ops,
			 void *arg);

#endif
