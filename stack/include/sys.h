/* SPDX-License-Identifier: MIT */
/* The stack's boundary to the operating system: every call the stack makes that an
 * embedder may interpose (the shim exports these very names from libtunshim.so)
 * goes through this table, so the stack never re-enters the layer above it. The
 * embedder fills it with the functions it considers real (the shim: libc's, resolved
 * with dlsym(RTLD_NEXT)); programs that link the stack directly (unit tests, tools)
 * get libc itself (sys_libc.c). Calls the shim does not interpose (open, eventfd,
 * epoll_wait, ...) stay plain libc calls; tests/check-layers.sh fails the build's
 * tests when a stack object calls any name libtunshim.so exports.
 *
 * Descriptors: every descriptor the stack creates and keeps goes through adopt, and
 * every descriptor the stack owns (its own, and the socketpair ends callers hand to
 * ts_bridge_open) is closed through release, never through a bare close: the
 * embedder keeps its own record of them (the shim hides them from the application). */
#ifndef TS_SYS_H
#define TS_SYS_H

#include <sys/socket.h>
#include <sys/types.h>

struct addrinfo;
struct epoll_event;
struct iovec;
struct mmsghdr;
struct timespec;

struct ts_sys {
	/* Descriptors. adopt takes a descriptor the stack just created and returns
	 * the number to use from then on (fd itself if it cannot be moved; a
	 * negative fd comes back unchanged). release closes one the stack owns. */
	int (*adopt)(int fd);
	int (*release)(int fd);

	/* I/O on the stack's descriptors (and log lines, on the log's). */
	ssize_t (*read)(int fd, void *buf, size_t len);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	ssize_t (*writev)(int fd, const struct iovec *iov, int n);
	ssize_t (*recv)(int fd, void *buf, size_t len, int flags);
	ssize_t (*recvfrom)(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
			    socklen_t *alen);
	int (*recvmmsg)(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
			struct timespec *timeout);
	ssize_t (*send)(int fd, const void *buf, size_t len, int flags);
	ssize_t (*sendto)(int fd, const void *buf, size_t len, int flags,
			  const struct sockaddr *addr, socklen_t alen);
	/* The outer socket's batches (stack/net/outer.c). */
	int (*sendmmsg)(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);
	/* The session channel (stack/net/session_*.c): messages with descriptors beside them. */
	ssize_t (*sendmsg)(int fd, const struct msghdr *m, int flags);
	ssize_t (*recvmsg)(int fd, struct msghdr *m, int flags);

	/* Sockets and descriptor state. fcntl takes an int or a pointer, as libc's. */
	int (*socket)(int domain, int type, int protocol);
	int (*socketpair)(int domain, int type, int protocol, int sv[2]);
	int (*bind)(int fd, const struct sockaddr *addr, socklen_t len);
	int (*connect)(int fd, const struct sockaddr *addr, socklen_t len);
	int (*getsockname)(int fd, struct sockaddr *addr, socklen_t *len);
	int (*getsockopt)(int fd, int level, int name, void *val, socklen_t *len);
	int (*listen)(int fd, int backlog);
	int (*accept4)(int fd, struct sockaddr *addr, socklen_t *len, int flags);
	int (*setsockopt)(int fd, int level, int name, const void *val, socklen_t len);
	int (*shutdown)(int fd, int how);
	int (*fcntl)(int fd, int cmd, ...);
	int (*epoll_ctl)(int epfd, int op, int fd, struct epoll_event *ev);

	/* Endpoint hostnames: the host's resolver, never a tunnel's. The result is
	 * freed with the matching freeaddrinfo. */
	int (*getaddrinfo)(const char *node, const char *service, const struct addrinfo *hints,
			   struct addrinfo **res);
	void (*freeaddrinfo)(struct addrinfo *res);

	/* The detached continuation (ts_stack_detach): fork, and leave without running
	 * the application's exit handlers. */
	pid_t (*fork)(void);
	void (*_exit)(int status) __attribute__((noreturn));
};

/* The table for the whole process: the stack and its log use it from then on, on
 * every thread. Set it before anything of the stack runs or logs (the shim does in
 * its constructor); ts_stack_options.sys sets it too. sys must outlive its use. */
void ts_sys_set(const struct ts_sys *sys);
/* The table in force: the one set, else libc itself (stack/base/sys_libc.c, linked
 * into the unit tests and tools but never into libtunshim.so, where these names are
 * the shim's own interposers). */
const struct ts_sys *ts_sys(void);

#endif
