/* SPDX-License-Identifier: MIT */
/* The LD_PRELOAD layer: interposed libc entry points and the state behind them.
 * It knows libc and the application's descriptors; it reaches the tunnel only
 * through stack/stack.h. */
#ifndef TS_SHIM_H
#define TS_SHIM_H

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
extern enum shim_mode shim_mode;
extern struct wg_config shim_cfg;

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

/* A thread inside the shim or the stack calls libc directly. */
extern __thread int shim_internal;
static inline bool shim_bypass(void)
{
	return shim_mode == SHIM_OFF || shim_internal;
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
 * and by the stack's callbacks; freed when the last reference goes. */
struct shim_conn {
	int refs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int proto;                        /* IPPROTO_TCP / IPPROTO_UDP */
	int domain;                       /* the application socket's family */
	int state;                        /* CONN_* */
	int so_error;                     /* pending, for SO_ERROR (cleared on read) */
	int end_error;                    /* why the bridge ended (ECONNRESET ...) */
	bool started, done, ended, reset_reported, connect_reported;
	bool named, touched;              /* shim_touch's work done */
	int restore_sndbuf;               /* to give back after a non-blocking connect */
	struct sockaddr_storage local, remote;
	uint64_t id;
	bool nodelay, keepalive, linger0;
};
enum { CONN_CONNECTING = 1, CONN_CONNECTED, CONN_FAILED, CONN_CLOSED };

struct shim_fd {
	int kind;
	int domain, type, protocol;       /* type without SOCK_NONBLOCK/CLOEXEC */
	struct sockaddr_storage bound;    /* bind() on a tunnel address or before a tunnel connect */
	bool is_bound;
	bool nodelay, keepalive, linger0;
	int keepidle, keepintvl, keepcnt;
	struct shim_epoll_reg *regs;      /* epoll sets it joined before the swap */
	int nregs;
	struct shim_conn *conn;           /* SFD_TUNNEL */
	bool udp_tunnel;                  /* SFD_INET UDP that sent into the tunnel */
	bool loopback_bound;              /* bound to a tunnel address: kernel binding on lo */
	uint64_t listen_id;               /* listening in the tunnel too */
	struct sockaddr_storage listen_fwd; /* its kernel listener, where tunnel clients go */
	/* dns_redirect.c: the resolv.conf nameserver the program addressed (a
	 * sockaddr_in or sockaddr_in6 as it gave it; family 0 when none) */
	struct sockaddr_in6 dns_shown;
};

/* The entry for fd, or NULL; never allocates (a cheap lookup on every call). */
struct shim_fd *shim_fd_peek(int fd);
/* The entry for fd, allocated when needed; the table lock must be held. */
struct shim_fd *shim_fd_get(int fd);
void shim_fd_init(void);
void shim_fd_lock(void);
void shim_fd_unlock(void);
/* Forgets fd (closed); drops its connection reference. Lock held. */
void shim_fd_clear(int fd);
/* newfd now refers to what oldfd refers to (dup). Lock held. */
void shim_fd_copy(int oldfd, int newfd);
static inline int shim_fd_kind(int fd)
{
	struct shim_fd *e = shim_fd_peek(fd);

	return e ? __atomic_load_n(&e->kind, __ATOMIC_ACQUIRE) : SFD_NONE;
}

struct shim_conn *shim_conn_new(int proto);
void shim_conn_put(struct shim_conn *c);

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
/* The stack's callbacks for a tunnelled connection; arg is its shim_conn, and ended
 * drops the stack's reference. */
extern const struct ts_bridge_ops shim_conn_ops;
int shim_tunnel_connect(int fd, const struct sockaddr_storage *dst, int type);
void shim_touch(int fd, struct shim_conn *c);
/* The tunnelled connection behind fd, with shim_touch's pending work done; NULL if fd
 * is not one (cheap: one table lookup). */
static inline struct shim_conn *shim_tunnel_conn(int fd)
{
	struct shim_fd *e = shim_fd_peek(fd);
	struct shim_conn *c;

	if (!e || __atomic_load_n(&e->kind, __ATOMIC_ACQUIRE) != SFD_TUNNEL || !(c = e->conn))
		return NULL;
	if (!c->touched)
		shim_touch(fd, c);
	return c;
}

/* ---- udp.c, io.c: unconnected UDP through the stack's relay ---- */
struct shim_relay {
	bool ready;
	struct sockaddr_storage addr;
	uint8_t token[8];
};
extern struct shim_relay shim_relay4, shim_relay6;
struct iovec;
ssize_t shim_udp_send_tunnel(int fd, struct shim_fd *e, const struct iovec *iov, size_t iovlen,
			     int flags, const struct sockaddr_storage *dst);
void shim_udp_closing(int fd, struct shim_fd *e);
int shim_udp_serve(int fd, struct shim_fd *e, int family);
bool shim_send_refused(int fd, size_t len);
size_t shim_iov_len(const struct iovec *iov, size_t n);

/* ---- listen.c ---- */
int shim_bind_loopback(int fd, struct shim_fd *e);
void shim_unlisten(struct shim_fd *e);
void shim_map_to_domain(struct sockaddr_storage *ss, int domain);

/* ---- sockopt.c ---- */
void shim_close_tunnel(int fd);

#endif
