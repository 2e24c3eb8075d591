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

struct ts_stack_options {
	double timer_scale; /* protocol timer factor for tests; <= 0 means 1 */
};

/* Resolves the peers' endpoints (host resolver), creates the UDP socket, starts the
 * stack thread. Returns 0, or -1 with err set to a message for the user. cfg is
 * copied as needed; the caller may free it afterwards. */
int ts_stack_start(const struct wg_config *cfg, const struct ts_stack_options *opt,
		   struct ts_stack **out, char *err, size_t errlen);
/* Stops the thread, closes every bridged connection (RST) and frees everything. */
void ts_stack_stop(struct ts_stack *st);

/* A connection to a tunnel address, attached to fd: the stack's end of an AF_UNIX
 * socketpair (SOCK_STREAM for TCP; SOCK_DGRAM or SOCK_SEQPACKET for a connected UDP
 * flow). The stack owns fd from the call on, also when it fails. */
struct ts_bridge_req {
	int proto;                       /* IPPROTO_TCP or IPPROTO_UDP */
	struct sockaddr_storage remote;  /* AF_INET or AF_INET6 (not v4-mapped) */
	struct sockaddr_storage local;   /* family 0: any address; port 0: ephemeral */
	int fd;
	size_t discard_bytes;            /* filler the caller wrote into its end, to drop
					  * once the outcome is known (connect readiness) */
	bool nodelay;
	bool keepalive;
	int keepidle, keepintvl, keepcnt; /* seconds / count; 0 = lwIP's default */
};

struct ts_bridge_result {
	int error;                       /* 0, ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ... */
	struct sockaddr_storage local;   /* the tunnel address and port actually used */
	uint64_t id;                     /* unique per stack, for later commands */
};

typedef void (*ts_bridge_done_fn)(void *arg, const struct ts_bridge_result *res);

/* Asynchronous: done runs on the stack thread once the connection is established or
 * has failed (keep it short). Returns 0 once queued, -errno if it could not be. */
int ts_bridge_open(struct ts_stack *st, const struct ts_bridge_req *req,
		   ts_bridge_done_fn done, void *arg);
/* Synchronous: waits for the outcome. Returns 0 or -errno (res->error negated). */
int ts_bridge_open_wait(struct ts_stack *st, const struct ts_bridge_req *req,
			struct ts_bridge_result *res);

/* True when dst is routed into the tunnel (some peer's AllowedIPs covers it). */
bool ts_stack_routes(struct ts_stack *st, const struct sockaddr *dst);

/* Peer statistics, copied under the stack thread. */
struct wg_peer_stats;
int ts_stack_peer_stats(struct ts_stack *st, int peer_index, struct wg_peer_stats *out);

#endif
