/* SPDX-License-Identifier: MIT */
/* The session protocol: how a process attached to a session asks the process that
 * runs its stack (the holder) for what stack.h offers. One SOCK_SEQPACKET connection
 * per attached process; each message is one struct ts_wire, and a bridge request
 * carries the stack's end of the socketpair as SCM_RIGHTS. The data path never
 * crosses this channel: the application's end talks to the holder's stack thread
 * directly, so attaching costs nothing per byte.
 *
 * Requests carry a sequence number chosen by the requester; every answer names it.
 * A bridge request gets STARTED, DONE and ENDED (as the ts_bridge_ops callbacks);
 * every other request gets one REPLY. Both ends run the same build: the version is in
 * the rendezvous name (session_rendezvous.c), so builds that differ never meet. */
#ifndef TS_SESSION_WIRE_H
#define TS_SESSION_WIRE_H

#include <stdint.h>
#include <sys/socket.h>
#include "device.h"
#include "stack.h"

#define TS_WIRE_VERSION 1

enum ts_wire_type {
	/* attached process -> holder */
	TS_WIRE_HELLO = 1,    /* the first message: answered by a REPLY once served */
	TS_WIRE_BRIDGE,       /* u.req, with the stack's end as SCM_RIGHTS */
	TS_WIRE_CALL,         /* cmd: a TS_CMD_* that waits for its result (stack_internal.h) */
	/* holder -> attached process */
	TS_WIRE_STARTED,      /* u.res */
	TS_WIRE_DONE,         /* u.res */
	TS_WIRE_ENDED,        /* rc: the end's error, 0 for orderly */
	TS_WIRE_REPLY,        /* rc, and the call's result in u */
};

struct ts_wire_listen {
	int32_t family;
	uint16_t port;
	struct sockaddr_storage forward;
};

struct ts_wire_relay {
	int32_t family;
	struct sockaddr_storage addr;
	uint8_t token[8];
};

/* CLAIM: the doorbell's four-tuple asked; the connection behind it answered, with the
 * application's end as SCM_RIGHTS, and ENDED (same seq) later when alive. */
struct ts_wire_claim {
	struct sockaddr_storage from, to;
	struct sockaddr_storage remote, local;
	uint8_t alive;
};

struct ts_wire {
	uint32_t type;                 /* enum ts_wire_type */
	uint32_t cmd;                  /* TS_WIRE_CALL: the command */
	uint64_t seq;
	int32_t rc;
	int32_t peer;                  /* TS_CMD_STATS */
	uint64_t id;                   /* the bridge or listener a command names */
	union {
		struct ts_bridge_req req;          /* BRIDGE, TCPOPT */
		struct ts_bridge_result res;       /* STARTED, DONE */
		struct ts_wire_listen listen;      /* LISTEN */
		struct ts_wire_relay relay;        /* RELAY */
		struct ts_wire_claim claim;        /* CLAIM */
		struct ts_tcp_info info;           /* INFO's reply */
		struct wg_peer_stats stats;        /* STATS' reply */
		struct wg_device_stats dev_stats;  /* DEVSTATS' reply */
		struct ts_udp_errinfo udp_err;     /* UDPERR's reply */
	} u;
};

/* session_wire.c: one message, with at most one descriptor. send: 0 or -errno (EAGAIN when
 * the socket is full and flags has MSG_DONTWAIT). recv: 1 for a message (*fd_out is
 * the descriptor that came with it, or -1), 0 at the end, -errno; a message of the
 * wrong size is -EPROTO. */
int ts_wire_send(int sock, const struct ts_wire *w, int fd, int flags);
int ts_wire_recv(int sock, struct ts_wire *w, int *fd_out, int flags);

#endif
