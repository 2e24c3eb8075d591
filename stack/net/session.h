/* SPDX-License-Identifier: MIT */
/* Sessions shared between processes (docs/process-model.md): one process of a
 * user holds the stack for a key in a network namespace; others attach to it and get
 * what stack.h offers through the protocol of wire.h.
 *
 *   session_rendezvous.c  finding the holder, or becoming it
 *   session_server.c      the holder's side: attached processes, on the stack thread
 *   session_client.c      the attached side: a stack whose commands go to the holder
 *   session_wire.c/.h     the messages between them */
#ifndef TS_SESSION_H
#define TS_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include "stack_internal.h"
#include "session_wire.h"

/* ---- session_rendezvous.c ---- */
struct ts_rendezvous {
	char sock_path[108];
	char lock_path[120];
	int lock_fd;    /* the holder's flock, for as long as it serves */
	int listen_fd;  /* the holder's listening socket */
	int ctl_fd;     /* an attached process's connection to the holder */
};

enum ts_rv_role {
	TS_RV_HOLDER,   /* run the stack and serve at listen_fd */
	TS_RV_ATTACHED, /* ctl_fd reaches the holder (not yet greeted) */
	TS_RV_ALONE,    /* no private runtime directory: run the stack, unshared */
	TS_RV_FAILED,   /* a holder exists but does not answer */
};

enum ts_rv_role ts_rendezvous(const uint8_t public_key[32], struct ts_rendezvous *rv);
/* The holder stops being findable (before it ends). */
void ts_rendezvous_close(struct ts_rendezvous *rv);
/* True if the process at the other end of a unix socket runs as this user. */
bool ts_peer_is_us(int fd);

/* ---- session_server.c (stack thread) ---- */
/* Serves attached processes at rv's socket (the stack owns rv's descriptors from now
 * on); ts_server_watch adds it to the loop, on the stack thread. */
int ts_server_start(struct ts_stack *st, const struct ts_rendezvous *rv);
void ts_server_watch(struct ts_stack *st);
/* Processes attached now; a continuation lives while there are any. */
int ts_server_clients(struct ts_stack *st);
/* Stops accepting newcomers (a continuation about to end). */
void ts_server_stop(struct ts_stack *st);

/* ---- session_client.c ---- */
/* Greets the holder at ctl_fd and starts the thread that reads its answers. Returns 0,
 * or -1 when the holder went away meanwhile (try the rendezvous again). */
int ts_client_attach(struct ts_stack *st, int ctl_fd);
/* Sends a command to the holder; its answer completes it as the stack thread would.
 * -ECONNRESET (and cmd still the caller's) once the holder is gone. */
int ts_client_submit(struct ts_stack *st, struct ts_cmd *cmd);
/* False once the holder is gone: every command fails with ECONNRESET. */
bool ts_client_alive(struct ts_stack *st);
void ts_client_stop(struct ts_stack *st);

#endif
