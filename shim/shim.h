/* SPDX-License-Identifier: MIT */
/* The LD_PRELOAD layer: interposed libc entry points and the state behind them.
 * It knows libc and the application's descriptors; it reaches the tunnel only
 * through stack/stack.h. */
#ifndef TS_SHIM_H
#define TS_SHIM_H

#include <time.h> /* linux/errqueue.h needs struct timespec */
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "config.h"
#include "sockaddr.h"
#include "stack.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

/*
 * ---- Locking: who guards what ----
 *
 * Application threads call in at once, on shared descriptors, while the stack thread
 * runs the callbacks of their connections. What they share is the descriptor table
 * (struct shim_fd, fdtab.c), the tunnelled connections (struct shim_conn) and a few
 * globals. Every field is marked with its rule:
 *
 *   [tab]    the table lock (shim_fd_lock): held to read and to write it.
 *   [tab/a]  written with the table lock held, by __atomic stores; read without the
 *            lock only by __atomic loads (the one cheap test every call makes).
 *   [mu]     the connection's own c->mu (shim_conn_lock): held to read and to write it.
 *   [mu/a]   written with c->mu held, by __atomic stores; read without it by
 *            __atomic loads.
 *   [a]      __atomic operations only.
 *   [const]  set before the object is published (put in the table, handed to the
 *            stack) and never changed: read freely by whoever holds a reference.
 *
 * Table entries are never freed, so a pointer from shim_fd_peek() is always safe to
 * load [tab/a] fields from; anything else in an entry is read with the lock held or
 * from a copy taken under it (shim_fd_read). Work done on a copy is written back only
 * if the entry still describes the same descriptor (shim_fd_same: its gen has not
 * moved, so no close came between).
 *
 * A connection lives while it has references (refs): one per table entry pointing at
 * it, one for the stack from ts_bridge_open until its ended callback, and one per call
 * that is using it. A pointer read from an entry is used only with the table lock held
 * or after taking a reference under it (shim_fd_conn, shim_tunnel_conn); it is dropped
 * with shim_conn_put.
 *
 * The table lock and a connection's mu are never held together. Neither is held across
 * a call into the stack (shim_tunnel, ts_*: they wait for the stack thread, which takes
 * both locks) nor across a call that can block; only short, non-blocking syscalls run
 * under them.
 *
 * Signals: a handler may call socket, close, dup, read and write on plain descriptors
 * and _exit (the README's promise), and those take the table lock or a connection's
 * mu. So both are taken only through shim_fd_lock and shim_conn_lock, which block
 * every signal in the thread until its last shim lock is dropped: a handler never
 * runs in a thread that holds one, and waits for another thread's only as long as
 * that thread's short critical section. Nothing may wait (cond_wait, a call into the
 * stack) with one held: its signals would wait too. Hot paths pay nothing for this:
 * I/O on a plain or established descriptor takes no lock (the [tab/a] test).
 *
 * Globals: shim_mode, shim_cfg and the routes are [const] once the constructor has run
 * (before main, before any thread of the program's); the relays are below; tunnel.c
 * and fdtab.c keep their own statics and say how.
 */

/* ---- real.c: libc's own functions, resolved with dlsym(RTLD_NEXT) ---- */
struct shim_real {
	int (*socket)(int, int, int);
	int (*socketpair)(int, int, int, int[2]);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*close)(int);
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*shutdown)(int, int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	int (*ioctl)(int, unsigned long, ...);
	pid_t (*fork)(void);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	void (*_exit)(int) __attribute__((noreturn));
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execv)(const char *, char *const[]);
	int (*execvp)(const char *, char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
};
extern struct shim_real real;
void shim_real_init(void);

/* ---- stack_sys.c: the stack's OS boundary (sys.h), from the table above ---- */
struct ts_sys;
void shim_stack_sys_init(void);
const struct ts_sys *shim_stack_sys(void);

/* ---- init.c: configuration, logging, routing ---- */
enum shim_mode {
	SHIM_OFF,        /* no TUNSHIM_CONFIG, or secure execution: pass everything through */
	SHIM_ON,         /* a usable config */
	SHIM_FAIL_CLOSED /* TUNSHIM_CONFIG set but unusable: refuse non-loopback traffic */
};
extern enum shim_mode shim_mode;       /* [const] after the constructor */
extern struct wg_config shim_cfg;      /* [const] after the constructor */

enum shim_route { ROUTE_PASS, ROUTE_TUNNEL, ROUTE_BLOCK };
/* Where a connect/sendto to addr goes. out gets the destination with IPv4-mapped
 * IPv6 turned into plain IPv4 (for ROUTE_TUNNEL). */
enum shim_route shim_route(const struct sockaddr *addr, socklen_t len,
			   struct sockaddr_storage *out);
/* hostroutes.c: the prefix length of the host's most specific route to addr, or -1
 * (its routing table is read on first use). */
int shim_hostroute_len(int family, const uint8_t *addr);

/* True for one of the config's own Address entries (bind to it stays in the shim). */
bool shim_is_tunnel_address(const struct sockaddr_storage *a);

/* A thread inside the shim or the stack calls libc directly. Read on every interposed
 * call: initial-exec, so that reading it is one instruction and not a call to
 * __tls_get_addr (0.2 % of a pass-through stream's time). The library is loaded at
 * start-up (LD_PRELOAD), where static TLS is there for it. */
extern __thread int shim_internal __attribute__((tls_model("initial-exec")));

/*
 * ---- The entry idiom ----
 *
 * Every interposed entry point (SHIM_EXPORT) starts with shim_enter(), or with
 * shim_enter_fd() for the calls that end or number descriptors, or forwards at once to
 * an entry point that does (send to sendto, recv to recvfrom, the __*_chk forms, the
 * execl forms, closefrom, _Exit, sendmmsg):
 *
 *	if (!shim_enter())
 *		return real.connect(fd, addr, len);
 *
 * Both resolve libc's functions on first use (libc's and the resolver's tables: an
 * interposed call can come before our constructor, from another library's) and say
 * whether the call is the shim's to look at. shim_enter() says no inside the library's
 * own work (shim_internal: its constructor, the host resolver it asks for the stack's
 * endpoint names; the stack's threads never call an interposer), and when no tunnel is
 * configured (SHIM_OFF: no TUNSHIM_CONFIG, or secure execution): the call then goes
 * straight to libc. SHIM_FAIL_CLOSED (TUNSHIM_CONFIG set but unusable) is the shim's
 * business: that is what refuses non-loopback traffic.
 *
 * shim_enter_fd() (close, close_range, dup, dup2, dup3, fcntl's F_DUPFD) says no only
 * inside the library's own work: the library has descriptors of its own in every mode
 * (the log's is made at load), and the application may not close, replace or copy
 * them (EBADF, as if they were not open). close inside the library's own work still
 * forgets the descriptor's entry.
 */
extern int shim_ready; /* [a] the tables of libc functions are resolved */
void shim_init_tables(void);

static inline void shim_resolve(void)
{
	if (__builtin_expect(!__atomic_load_n(&shim_ready, __ATOMIC_ACQUIRE), 0))
		shim_init_tables();
}

static inline bool shim_enter(void)
{
	shim_resolve();
	return !shim_internal && shim_mode != SHIM_OFF;
}

static inline bool shim_enter_fd(void)
{
	shim_resolve();
	return !shim_internal;
}

/* ---- fdtab.c: what the shim knows about each descriptor ---- */
enum shim_fd_kind {
	SFD_NONE = 0,   /* not ours to care about */
	SFD_INET,       /* an AF_INET/AF_INET6 socket not (yet) in the tunnel */
	SFD_TUNNEL,     /* swapped for a socketpair end bridged into the tunnel */
	SFD_INTERNAL,   /* the shim's or the stack's own: hidden from the application */
};

struct shim_epoll_reg {
	int epfd;
	struct epoll_event ev;
};

/* A tunnelled connection, shared by every descriptor that refers to it (dup, fork)
 * and by the stack's callbacks; freed when the last reference goes. c->mu also
 * orders the stack's callbacks (connect.c) against the application's threads; a
 * blocking connect waits on the futex word known, set after done. */
struct shim_conn {
	int refs;                         /* [a] see "Locking" above */
	int nfds;                         /* [tab] table entries that point here */
	pthread_mutex_t mu;               /* [const] taken with shim_conn_lock */
	int known;                        /* [a] 1 once done is: a futex word (connect.c) */
	int proto;                        /* [const] IPPROTO_TCP / IPPROTO_UDP */
	int domain;                       /* [const] the application socket's family */
	struct sockaddr_storage remote;   /* [const] the tunnel destination */
	int state;                        /* [mu] CONN_* */
	int so_error;                     /* [mu] pending, for SO_ERROR (cleared on read) */
	int end_error;                    /* [mu] why the bridge ended (ECONNRESET ...) */
	bool done, ended;                 /* [mu] the stack's done / ended callbacks ran */
	bool started;                     /* [mu/a] its started callback ran: local, id set */
	bool reset_reported;              /* [mu] the reset was read as ECONNRESET once */
	bool connect_reported;            /* [mu] a connect call returned the outcome */
	bool named;                       /* [mu] the abstract name is bound */
	bool touched;                     /* [mu/a] shim_touch has nothing left to do */
	int restore_sndbuf;               /* [mu] to give back after a non-blocking connect */
	struct sockaddr_storage local;    /* [mu] set by the started callback */
	uint64_t id;                      /* [mu] the stack's name for it, set with local */
	bool nodelay, keepalive;          /* [tab] set after connect, for getsockopt */
	bool recverr;                     /* [mu] UDP: IP_RECVERR / IPV6_RECVERR */
	/* ICMP sockets (icmp.c) */
	int sotype;                       /* [const] SOCK_RAW or SOCK_DGRAM; 0 for TCP, UDP */
	struct shim_icmp_opts {           /* [mu] what the application asked for */
		int ttl;                  /* IP_TTL or IPV6_UNICAST_HOPS */
		int pmtudisc;             /* IP_MTU_DISCOVER or IPV6_MTU_DISCOVER */
		bool recvttl, recverr, recvtos;
		uint32_t filter;          /* ICMP_FILTER: a set bit drops that type */
		uint32_t filter6[8];      /* ICMP6_FILTER, likewise */
	} icmp;
};
enum { CONN_CONNECTING = 1, CONN_CONNECTED, CONN_FAILED, CONN_CLOSED };

/* Flags of an entry that the receive path tests without the lock. */
enum {
	SFDF_UDP_TUNNEL = 1 << 0, /* SFD_INET UDP that talks to the tunnel through the relay */
	SFDF_DNS_SHOWN = 1 << 1,  /* dns_shown holds what a redirected program addressed */
	SFDF_PING_STANDIN = 1 << 3, /* a ping socket the kernel refused (ping_group_range):
				   * a UDP socket standing in until it swaps into the
				   * tunnel; nothing reaches the host through it */
	SFDF_OWNED = 1 << 2,      /* made by socket() in this process (not inherited through
				   * fork or exec, nor received): its close may end its flow */
};

struct shim_fd {
	int kind;                         /* [tab/a] SFD_*: shim_fd_kind(), shim_fd_kind_of() */
	unsigned flags;                   /* [tab/a] SFDF_*: shim_fd_flags() */
	uint32_t gen;                     /* [tab] moves at each clear (and survives it) */
	/* Everything from here on is [tab], and zero after a clear. */
	int domain, type, protocol;       /* type without SOCK_NONBLOCK/CLOEXEC */
	struct sockaddr_storage bound;    /* bind() on a tunnel address or before a tunnel connect */
	bool is_bound;
	bool nodelay, keepalive, linger0;
	int keepidle, keepintvl, keepcnt;
	struct shim_epoll_reg *regs;      /* epoll sets it joined before the swap */
	int nregs;
	struct shim_conn *conn;           /* SFD_TUNNEL: a reference, counted in conn->nfds */
	bool loopback_bound;              /* bound to a tunnel address: kernel binding on lo */
	uint64_t listen_id;               /* listening in the tunnel too */
	struct sockaddr_storage listen_fwd; /* its kernel listener, where tunnel clients go */
	/* dns_redirect.c: the resolv.conf nameserver the program addressed (a
	 * sockaddr_in or sockaddr_in6 as it gave it; family 0 when none) */
	struct sockaddr_in6 dns_shown;
};

/* The entry for fd, or NULL; never allocates (a cheap lookup on every call). Only its
 * [tab/a] fields may be read without the lock. */
struct shim_fd *shim_fd_peek(int fd);
/* The entry for fd, allocated when needed; the table lock must be held. */
struct shim_fd *shim_fd_get(int fd);
void shim_fd_init(void);
/* The table lock and a connection's mu; signals are blocked while held ("Signals"). */
void shim_fd_lock(void);
void shim_fd_unlock(void);
struct shim_conn;
void shim_conn_lock(struct shim_conn *c);
void shim_conn_unlock(struct shim_conn *c);
/* The signal blocking alone, nested like the locks, for other locks of the shim's. */
void shim_sig_block(void);
void shim_sig_unblock(void);
/* Forgets fd (closed); drops its connection reference. Lock held. */
void shim_fd_clear(int fd);
/* newfd now refers to what oldfd refers to (dup). Lock held. */
void shim_fd_copy(int oldfd, int newfd);
/* A copy of fd's entry taken under the lock, without its conn and regs (which the
 * copy does not own); all zero but gen when fd has none. True if fd is in the table
 * (kind other than SFD_NONE). */
bool shim_fd_read(int fd, struct shim_fd *out);
/* Lock held: fd's entry if it still describes the descriptor a copy with this gen was
 * taken of, else NULL (closed since: the copy's work is not the new one's). */
struct shim_fd *shim_fd_same(int fd, uint32_t gen);
/* Sets flag (SFDF_*) on fd's entry if it is still the one of gen. */
void shim_fd_set_flag(int fd, uint32_t gen, unsigned flag);

static inline int shim_fd_kind_of(const struct shim_fd *e)
{
	return __atomic_load_n(&e->kind, __ATOMIC_ACQUIRE);
}

static inline int shim_fd_kind(int fd)
{
	struct shim_fd *e = shim_fd_peek(fd);

	return e ? shim_fd_kind_of(e) : SFD_NONE;
}

static inline unsigned shim_fd_flags(int fd)
{
	struct shim_fd *e = shim_fd_peek(fd);

	return e ? __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) : 0;
}

/* socket.c: what fd is to a tunnel-bound call; e gets a copy of its entry (an inet
 * socket the library did not see created is learnt from the kernel first). */
enum shim_sock {
	SHIM_SOCK_OTHER,     /* not an inet socket, or already in the tunnel: the kernel's */
	SHIM_SOCK_CARRIED,   /* SFD_INET TCP or UDP: the tunnel carries it */
	SHIM_SOCK_UNCARRIED, /* raw, SCTP, ICMP datagrams: tunnel-bound traffic is refused */
};
enum shim_sock shim_fd_inet(int fd, struct shim_fd *e);

struct shim_conn *shim_conn_new(int proto);
/* Takes a reference (the caller already holds one, or the table lock). */
void shim_conn_get(struct shim_conn *c);
void shim_conn_put(struct shim_conn *c);
/* The connection behind fd with a reference for the caller, or NULL if fd is not
 * SFD_TUNNEL. */
struct shim_conn *shim_fd_conn(int fd);

/* Moves fd to a high number, marks it internal and returns the new number. */
int shim_adopt_fd(int fd);
/* Forgets fd and closes it with libc's close: how the stack ends its descriptors. */
int shim_release_fd(int fd);
/* The highest descriptor number the table has seen. */
int shim_fd_max(void);
/* In a forked child: closes the stack's descriptors (not the log's). */
void shim_fd_close_internal(void);
extern int shim_log_fd;
extern bool shim_log_is_file; /* TUNSHIM_LOG_FILE, not a copy of stderr */

/* ---- tunnel.c: the stack, started on first use ---- */
/* The running stack, starting it if needed; NULL with errno set if it cannot run. */
struct ts_stack *shim_tunnel(void);
/* The stack if this very process runs it, else NULL (never starts one). */
struct ts_stack *shim_tunnel_if_running(void);
void shim_tunnel_init(void);

/* ---- process.c ---- */
bool shim_leave(const char *why);
void shim_tunnel_abandon(void);
extern int shim_detaching;

/* ---- names.c: identities carried in the socketpair end's abstract name ---- */
/* Derives the key that seals names from the config's private key (at load). */
void shim_names_init(const uint8_t private_key[32]);
int shim_name_bind(int fd, const struct shim_conn *c);
/* Decodes fd's identity from its name; false if fd is not a tunnel end. */
bool shim_name_decode(int fd, int *proto, struct sockaddr_storage *local,
		      struct sockaddr_storage *remote);
int shim_copy_addr(const struct sockaddr_storage *ss, struct sockaddr *out, socklen_t *len);

/* ---- connect.c ---- */
/* The table entry becomes the tunnelled connection's; the table takes over the
 * caller's first reference to c. Lock held. */
void shim_fd_become_tunnel(struct shim_fd *e, struct shim_conn *c);
/* The stack's callbacks for a tunnelled connection; arg is its shim_conn, and ended
 * drops the stack's reference. */
extern const struct ts_bridge_ops shim_conn_ops;
int shim_tunnel_connect(int fd, const struct sockaddr_storage *dst, int type);
void shim_touch(int fd, struct shim_conn *c);
void shim_wait_outcome(struct shim_conn *c);
/* The tunnelled connection behind fd, with shim_touch's pending work done and a
 * reference for the caller (shim_conn_put); NULL if fd is not one (cheap then: one
 * lock-free test). */
static inline struct shim_conn *shim_tunnel_conn(int fd)
{
	struct shim_conn *c;

	if (shim_fd_kind(fd) != SFD_TUNNEL || !(c = shim_fd_conn(fd)))
		return NULL;
	if (!__atomic_load_n(&c->touched, __ATOMIC_ACQUIRE))
		shim_touch(fd, c);
	return c;
}

/* Puts app on fd's number as c's descriptor (connect.c's swap), keeping FD_CLOEXEC
 * and fd's epoll registrations; was is fd's entry as read before. */
int shim_swap_in(int fd, int app, struct shim_conn *c, bool cloexec, const struct shim_fd *was);

/* ---- icmp.c: raw and ping sockets to tunnel addresses ---- */
/* An ICMP socket the tunnel carries: SOCK_RAW or SOCK_DGRAM, ICMP on AF_INET, ICMPv6
 * on AF_INET6. */
bool shim_icmp_kind(int domain, int type, int protocol);
static inline bool shim_icmp_proto(int protocol)
{
	return protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6;
}
/* io.c: SO_ERROR of a connected UDP flow: an ICMP error pending on it, taken (0: none) */
int shim_udp_so_error(int fd, struct shim_conn *c);
/* socket.c: fd stands in for a ping socket the kernel refused (SFDF_PING_STANDIN). */
bool shim_ping_standin(int fd);
/* The ICMP socket behind fd (swapped in), with a reference; NULL if fd is none. */
struct shim_conn *shim_icmp_conn(int fd);
/* The first tunnel-bound send (or connect, dst kept as the default destination) on
 * an SFD_INET ICMP socket swaps it in; then sends. */
ssize_t shim_icmp_first(int fd, struct shim_fd *e, const struct iovec *iov, size_t iovlen,
			int flags, const struct sockaddr_storage *dst, bool connecting);
ssize_t shim_icmp_send(int fd, struct shim_conn *c, const struct iovec *iov, size_t iovlen,
		       int flags, const struct sockaddr *addr, socklen_t alen);
ssize_t shim_icmp_recvmsg(int fd, struct shim_conn *c, struct msghdr *m, int flags);
int shim_icmp_setsockopt(struct shim_conn *c, int fd, int level, int name, const void *val,
			 socklen_t len);
int shim_icmp_getsockopt(struct shim_conn *c, int fd, int level, int name, void *val,
			 socklen_t *len);

/* ---- errqueue.c: the error queue of sockets whose errors come from the stack ---- */
struct shim_err {
	struct sock_extended_err ee;       /* as the kernel fills it (linux/errqueue.h) */
	struct sockaddr_storage offender;  /* family 0 for a local error */
	struct sockaddr_storage name;      /* the destination of what failed (msg_name) */
	int ttl;                           /* the error's TTL or hop limit; -1: local */
};
/* Queues an error, with the quoted payload, on fd's socket. */
int shim_errq_push(int fd, const struct shim_err *err, const void *data, size_t len);
/* recvmsg(MSG_ERRQUEUE) from fd's queue, as the kernel answers it for a socket of
 * domain; ttl_cmsg gives the control message type of the TTL of an error of family
 * that the socket asked for (IP_TTL, IPV6_HOPLIMIT, IPV6_2292HOPLIMIT), or 0 (NULL:
 * never). It is called with the queue's lock held: no shim lock in it. EAGAIN when
 * the queue is empty. */
ssize_t shim_errq_recv(int fd, int domain, struct msghdr *m, int flags,
		       int (*ttl_cmsg)(int fd, int family));
bool shim_errq_pending(int fd);
void shim_errq_after_fork(void);
/* udp.c: the local error of a send over the tunnel MTU where the socket forbids
 * fragmenting (IP_MTU_DISCOVER): true, with errno EMSGSIZE and the error queued if
 * the socket has IP_RECVERR; ip_len is the datagram's size with its IP header. */
bool shim_too_big(int fd, int pmtudisc, bool recverr, const struct sockaddr_storage *dst,
		  size_t ip_len);

/* udp.c: the socket asked for an error queue for errors of family (IP_RECVERR or
 * IPV6_RECVERR, asked of the kernel socket). */
bool shim_udp_recverr(int fd, int family);

/* ---- udp.c, io.c: unconnected UDP through the stack's relay ---- */
/* The stack's UDP relay for one family, asked for once (udp.c, under its lock). */
struct shim_relay {
	bool ready;                       /* [a] set (release) once addr and token are */
	struct sockaddr_storage addr;     /* [const] once ready */
	uint8_t token[8];                 /* [const] once ready */
};
extern struct shim_relay shim_relay4, shim_relay6;
struct iovec;
/* e is a copy of fd's entry (shim_fd_read); the table follows what they change. */
ssize_t shim_udp_send_tunnel(int fd, struct shim_fd *e, const struct iovec *iov, size_t iovlen,
			     int flags, const struct sockaddr_storage *dst);
void shim_udp_closing(int fd, const struct shim_fd *e);
void shim_udp_after_fork(void);
int shim_udp_serve(int fd, struct shim_fd *e, int family);
bool shim_send_refused(int fd, size_t len);
size_t shim_iov_len(const struct iovec *iov, size_t n);

/* ---- listen.c: e is a copy of fd's entry (shim_fd_read); the table follows ---- */
int shim_bind_loopback(int fd, struct shim_fd *e);
void shim_unlisten(struct shim_fd *e);
void shim_map_to_domain(struct sockaddr_storage *ss, int domain);

/* ---- sockopt.c ---- */
void shim_close_tunnel(int fd);

#endif
