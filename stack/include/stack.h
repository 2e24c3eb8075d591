/* SPDX-License-Identifier: MIT */
/* The tunnel as the shim sees it: a stack thread that owns lwIP and the WireGuard
 * device, and bridges connections to socketpair ends the caller hands over. Every
 * function here may be called from any thread; none blocks the stack thread. */
#ifndef TS_STACK_H
#define TS_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "config.h"

struct ts_stack;
struct ts_sys;

struct ts_stack_options {
	double timer_scale; /* protocol timer factor for tests; <= 0 means 1 */
	/* Optional: the OS boundary (sys.h), set for the whole process as ts_sys_set
	 * does; NULL keeps the one in force. Its adopt and release see every
	 * descriptor the stack creates and closes. */
	const struct ts_sys *sys;
	/* Share the session (docs/process-model.md): attach to the process of this
	 * user that runs the stack for this key in this network namespace, or become
	 * that process and serve the others. */
	bool share;
	/* A shared session's continuation stays up this long after its last user
	 * (seconds), so that the next process attaches instead of handshaking. */
	double grace_s;
	/* Log the stack's live counts (connections, lwIP pcbs, pbufs, lwIP heap) this
	 * often, in milliseconds, and when the stack stops; 0: never (stats.c). */
	unsigned stats_ms;
	/* Busy polling: after a wait that ended within this many microseconds, the stack
	 * thread polls for the next event this long before it sleeps (loop.c); 0: never. */
	unsigned busy_poll_us;
};

/* Resolves the peers' endpoints (host resolver), creates the UDP socket, starts the
 * stack thread; or, when sharing and another process holds the session, attaches to
 * it. Returns 0, or -1 with err set to a message for the user. cfg is copied as
 * needed; the caller may free it afterwards. */
int ts_stack_start(const struct wg_config *cfg, const struct ts_stack_options *opt,
		   struct ts_stack **out, char *err, size_t errlen);
/* True when this process runs the stack; false when attached to another's. */
bool ts_stack_is_local(struct ts_stack *st);
/* False once the holder of an attached stack is gone (killed): every command fails
 * with ECONNRESET from then on; start again to attach to (or become) the next. */
bool ts_stack_alive(struct ts_stack *st);
/* Stops the thread, closes every bridged connection (RST) and frees everything. */
void ts_stack_stop(struct ts_stack *st);

/* A connection to a tunnel address, attached to fd: the stack's end of an AF_UNIX
 * socketpair (SOCK_STREAM for TCP; SOCK_SEQPACKET for a connected UDP flow, so the
 * stack sees the application close its end). The stack owns fd from the call on, also
 * when it fails, and ends it with the boundary's release (sys.h). */
struct ts_bridge_req {
	int proto;                       /* IPPROTO_TCP, IPPROTO_UDP, or IPPROTO_ICMP /
					  * IPPROTO_ICMPV6 for an ICMP socket (below) */
	struct sockaddr_storage remote;  /* AF_INET or AF_INET6 (not v4-mapped) */
	struct sockaddr_storage local;   /* family 0: any address; port 0: ephemeral */
	int fd;
	size_t discard_bytes;            /* filler the caller wrote into its end, to drop
					  * once the outcome is known (connect readiness) */
	bool nodelay;
	bool keepalive;
	int keepidle, keepintvl, keepcnt; /* seconds / count; 0 = lwIP's default */
	bool icmp_raw;                   /* ICMP: a raw socket (else a ping socket) */
	bool recverr;                    /* UDP: IP_RECVERR / IPV6_RECVERR (every ICMP
					  * error counts, not only the hard ones) */
};

struct ts_bridge_result {
	int error;                       /* 0, ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ... */
	struct sockaddr_storage local;   /* the tunnel address and port actually used */
	uint64_t id;                     /* unique per stack, for later commands */
};

/* Callbacks run on the stack thread; keep them short. All are optional. */
struct ts_bridge_ops {
	/* As soon as the pcb exists: res->local holds the address and port in use
	 * (res->error != 0 if it could not even be created; done follows). */
	void (*started)(void *arg, const struct ts_bridge_result *res);
	/* Once: established (error 0) or failed. */
	void (*done)(void *arg, const struct ts_bridge_result *res);
	/* Once, last: the bridge is gone. error is 0 for an orderly end, else the
	 * reason (ECONNRESET when the remote reset it, ETIMEDOUT, ...). */
	void (*ended)(void *arg, int error);
};

/* Asynchronous. Returns 0 once queued, -errno if it could not be (then no callback
 * runs and fd is released, on the caller's thread). */
int ts_bridge_open(struct ts_stack *st, const struct ts_bridge_req *req,
		   const struct ts_bridge_ops *ops, void *arg);
/* Synchronous: waits for the outcome. Returns 0 or -errno (res->error negated). */
int ts_bridge_open_wait(struct ts_stack *st, const struct ts_bridge_req *req,
			struct ts_bridge_result *res);

/* Resets the connection (SO_LINGER 0 on close). */
int ts_bridge_abort(struct ts_stack *st, uint64_t id);

/* A connected UDP flow (proto IPPROTO_UDP) that an ICMP error concerns (port
 * unreachable, ...: the errors Linux reports on a connected UDP socket without
 * IP_RECVERR; with it, every error) gets a zero-length message in its pair, which is
 * no datagram then: the error is pending in the stack until taken by this call.
 * Returns it (ECONNREFUSED, ...), or 0 when none is pending (the message was an empty
 * datagram); out (if not NULL) gets the error in full, for the error queue. */
struct ts_udp_errinfo; /* below, with struct ts_udp_error */
int ts_bridge_udp_error(struct ts_stack *st, uint64_t id, struct ts_udp_errinfo *out);

/* TCP_NODELAY and keepalive set after the connect (req's fields; the same meaning).
 * Submitted without waiting: 0, or -ENOMEM/-ECONNRESET when it cannot be sent. */
int ts_bridge_tcp_options(struct ts_stack *st, uint64_t id, const struct ts_bridge_req *opts);

/* TCP_INFO's essentials, in Linux's terms. */
struct ts_tcp_info {
	int state;           /* TCP_ESTABLISHED, ... (netinet/tcp.h) */
	uint32_t rtt_us, rttvar_us, snd_mss, rcv_mss, snd_cwnd, unacked, retransmits;
};
int ts_bridge_tcp_info(struct ts_stack *st, uint64_t id, struct ts_tcp_info *out);

/* True while bridged connections remain, or packets wait for a handshake: the
 * process must not take the stack with it when it exits or execs. */
bool ts_stack_busy(struct ts_stack *st);
/* Hands the stack to a detached continuation: stops the stack thread at a safe point
 * and forks. The child calls child_setup (close the application's descriptors,
 * setsid), then runs the loop until every bridge has ended and nothing is left to
 * send, and leaves with _exit(0): the application's exit handlers never run there.
 * Returns the child's pid in the parent, where the stack stays stopped, or -1. */
pid_t ts_stack_detach(struct ts_stack *st, void (*child_setup)(void));

/* Unconnected UDP: an application socket stays a kernel socket (it may talk to the
 * host network too). Tunnel-bound datagrams are sent from that very socket to the
 * stack's relay socket on loopback, framed by this header; the stack sends them from
 * the tunnel address with the same port, and delivers the answers to the socket's
 * kernel address, framed the same way with the tunnel source. The token keeps other
 * local processes from injecting datagrams. */
#define TS_UDP_FRAME_DATA 1
#define TS_UDP_FRAME_CLOSE 2
#define TS_UDP_FRAME_OPEN 3   /* a server socket: family AF_INET, AF_INET6 or 0 for both */
#define TS_UDP_FRAME_ERROR 4  /* from the stack: an ICMP error (below) */
struct ts_udp_frame {
	uint8_t token[8];
	uint8_t type;
	uint8_t family;   /* AF_INET or AF_INET6 */
	uint16_t port;    /* network order: destination (to the stack) or source (from it) */
	uint8_t addr[16];
	uint8_t ttl;      /* to the stack: the TTL or hop limit to send with (0: 64) */
	uint8_t pad[3];
} __attribute__((packed));

/* TS_UDP_FRAME_ERROR: an ICMP error about a datagram the socket sent. The frame's
 * family, addr and port are that datagram's destination; this record follows, then
 * the part of the datagram's payload that the error quotes. The fields are struct
 * sock_extended_err's (linux/errqueue.h) for the socket's error queue (IP_RECVERR):
 * errno as Linux converts the type and code, origin SO_EE_ORIGIN_ICMP or _ICMP6, info
 * the MTU of a "fragmentation needed" or "packet too big"; the offender (the error's
 * source, of the frame's family) and the TTL or hop limit the error arrived with. */
struct ts_udp_error {
	uint32_t ee_errno, ee_info;
	uint8_t ee_origin, ee_type, ee_code, ttl;
	uint8_t offender[16];
} __attribute__((packed));

/* A connected UDP flow's pending error in full (ts_bridge_udp_error). */
struct ts_udp_errinfo {
	struct ts_udp_error rec;         /* as in a TS_UDP_FRAME_ERROR (above) */
	uint16_t len;                    /* the quoted payload's, at most sizeof(quote) */
	uint8_t quote[512];
};

/* The relay address for sockets of this family (AF_INET or AF_INET6), and the token.
 * -EAFNOSUPPORT when there is none for that family. */
int ts_stack_udp_relay(struct ts_stack *st, int family, struct sockaddr_storage *addr,
		       uint8_t token[8]);

/* ICMP sockets, raw (SOCK_RAW: what ping uses as root) and ping sockets (SOCK_DGRAM),
 * IPv4 and IPv6: a bridge with proto IPPROTO_ICMP or IPPROTO_ICMPV6 whose fd is the
 * stack's end of a SOCK_SEQPACKET pair; remote gives the family (and must route into
 * the tunnel), local's port a ping socket's identifier (0: the stack picks one). Each
 * message either way is this header followed by an ICMP message: to the stack, one to
 * send to addr with the TTL or hop limit ttl; from it, one that arrived from addr with
 * ttl, the whole IPv4 packet on a raw IPv4 socket as the kernel gives it. As the
 * kernel does, a raw socket gets every ICMP message of its family, a ping socket the
 * echo replies that carry its identifier (and the stack writes that identifier and
 * the checksum into its echo requests). TS_ICMP_FRAME_ERROR carries an ICMP error
 * about something the socket sent, for its error queue (IP_RECVERR). */
#define TS_ICMP_FRAME_DATA 1
#define TS_ICMP_FRAME_ERROR 2
struct ts_icmp_frame {
	uint8_t type;
	uint8_t family;      /* AF_INET or AF_INET6 */
	uint8_t ttl;         /* to the stack: 0 means 64 */
	uint8_t pad;
	uint8_t addr[16];
	/* TS_ICMP_FRAME_ERROR: struct sock_extended_err's fields; addr is the offender */
	uint32_t ee_errno, ee_info;
	uint8_t ee_origin, ee_type, ee_code, pad2;
} __attribute__((packed));

/* Inbound TCP. The application's listener stays a kernel socket, so one descriptor
 * serves host and tunnel clients alike. Each tunnel connection to port (on any of the
 * interface's addresses) is bridged to a socketpair whose application end waits in
 * the stack, and the listener at forward (a loopback address) is woken by an empty
 * loopback connection from the stack, the doorbell. The process that accepts it
 * claims the waiting end (ts_inbound_claim) and puts it in the doorbell's place.
 * family: AF_INET or AF_INET6 for tunnel clients of that family only, AF_UNSPEC both. */
int ts_listen(struct ts_stack *st, int family, uint16_t port,
	      const struct sockaddr_storage *forward, uint64_t *id);
int ts_unlisten(struct ts_stack *st, uint64_t id);
/* Whether something still listens (SOCK_STREAM) or is bound (SOCK_DGRAM) at addr: a
 * bind there fails while it does. */
bool ts_port_alive(const struct sockaddr_storage *addr, int type);

/* A claimed tunnel connection: the application's end, now the caller's. */
struct ts_claim {
	int fd;
	struct sockaddr_storage remote;  /* the tunnel peer */
	struct sockaddr_storage local;   /* the tunnel address it connected to */
	uint64_t id;                     /* the bridge, for ts_bridge_abort and its kin */
	bool alive;                      /* false: it has already ended (reads see EOF) */
};
/* The tunnel connection behind the doorbell that arrived at a listener as a loopback
 * connection from `from` to `to` (the accepted socket's peer and local addresses).
 * 0, or -ENOENT when it is no doorbell of ours (an ordinary loopback client, or one
 * posing as the stack: it cannot have the four-tuple of a doorbell). When alive,
 * ops->ended (the only callback) runs with arg once the connection ends. */
int ts_inbound_claim(struct ts_stack *st, const struct sockaddr_storage *from,
		     const struct sockaddr_storage *to, const struct ts_bridge_ops *ops,
		     void *arg, struct ts_claim *out);

/* Peer statistics, copied under the stack thread. */
struct wg_peer_stats;
int ts_stack_peer_stats(struct ts_stack *st, int peer_index, struct wg_peer_stats *out);
/* The device's counters (handshakes dropped, cookie replies, load), likewise. */
struct wg_device_stats;
int ts_stack_device_stats(struct ts_stack *st, struct wg_device_stats *out);

#endif
