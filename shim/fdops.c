/* SPDX-License-Identifier: MIT */
/* Descriptor life: the shim's own descriptors survive programs that close every fd
 * (close loops, close_range, closefrom) or dup2 onto arbitrary numbers, and the
 * per-descriptor state follows dup and close. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "shim.h"

static bool is_internal(int fd)
{
	return shim_fd_kind(fd) == SFD_INTERNAL;
}

static void forget(int fd)
{
	if (shim_fd_kind(fd) == SFD_NONE)
		return;
	shim_fd_lock();
	shim_fd_clear(fd);
	shim_fd_unlock();
}

/* A listener's tunnel port closes with the last descriptor of it: a server that
 * renumbers its listener (dup2 then close) keeps its tunnel clients. */
static int close_listener(int fd)
{
	struct shim_fd e;
	int rc;

	shim_fd_read(fd, &e);
	forget(fd);
	rc = real.close(fd);
	if (!ts_port_alive(&e.listen_fwd, SOCK_STREAM))
		shim_unlisten(&e);
	return rc;
}

/* A copy of fd's entry, which is forgotten unless fd listens in the tunnel (its
 * close has more to do): one lock, not two, for the common close of an inet socket
 * (each costs two signal-mask calls, shim.h "Signals"). False if it was kept. */
static bool read_forget(int fd, struct shim_fd *e)
{
	struct shim_fd *t;
	bool keep = false;

	memset(e, 0, sizeof(*e));
	shim_fd_lock();
	if ((t = shim_fd_peek(fd))) {
		*e = *t;
		keep = e->listen_id != 0;
		if (!keep)
			shim_fd_clear(fd);
	}
	shim_fd_unlock();
	e->conn = NULL; /* neither is the copy's */
	e->regs = NULL;
	return !keep;
}

/* A UDP socket that talked to the tunnel, or a listener: the stack is told. */
static int close_inet(int fd)
{
	struct shim_fd e;

	if (!read_forget(fd, &e))
		return close_listener(fd);
	if (e.flags & SFDF_UDP_TUNNEL)
		shim_udp_closing(fd, &e);
	return real.close(fd);
}

SHIM_EXPORT int close(int fd)
{
	/* The library's own close: its entry goes (no one else will reuse it as ours). */
	if (!shim_enter_fd()) {
		forget(fd);
		return real.close(fd);
	}
	/* The application never opened it: to the application it is not open. */
	if (is_internal(fd))
		return errno = EBADF, -1;
	if (shim_fd_kind(fd) == SFD_TUNNEL)
		shim_close_tunnel(fd);
	else if (shim_fd_kind(fd) == SFD_INET)
		return close_inet(fd);
	forget(fd);
	return real.close(fd);
}

/* Closes [first, last] except our descriptors, in runs. None is above the table's
 * highest number. */
static int close_runs(unsigned first, unsigned last, int flags)
{
	unsigned lo = first, top = (unsigned)shim_fd_max();
	int rc = 0;

	for (unsigned fd = first; fd <= last && fd <= top; fd++) {
		if (!is_internal((int)fd))
			continue;
		if (fd > lo && real.close_range(lo, fd - 1, flags) < 0)
			rc = -1;
		lo = fd + 1;
	}
	if (lo <= last && real.close_range(lo, last, flags) < 0)
		rc = -1;
	return rc;
}

static void forget_range(unsigned first, unsigned last)
{
	shim_fd_lock();
	for (unsigned fd = first; fd <= last && fd < (1u << 20); fd++) {
		int kind = shim_fd_kind((int)fd);

		if (kind != SFD_NONE && kind != SFD_INTERNAL)
			shim_fd_clear((int)fd);
	}
	shim_fd_unlock();
}

SHIM_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	int rc;

	if (!shim_enter_fd())
		return real.close_range(first, last, flags);
	rc = close_runs(first, last, flags);
	if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		forget_range(first, last);
	return rc;
}

SHIM_EXPORT void closefrom(int lowfd)
{
	if (lowfd < 0)
		lowfd = 0;
	close_range((unsigned)lowfd, ~0u, 0);
}

SHIM_EXPORT int dup(int fd)
{
	int nfd;

	if (!shim_enter_fd())
		return real.dup(fd);
	if (is_internal(fd))
		return errno = EBADF, -1;
	nfd = real.dup(fd);
	if (nfd >= 0 && shim_fd_kind(fd) != SFD_NONE) {
		shim_fd_lock();
		shim_fd_copy(fd, nfd);
		shim_fd_unlock();
	}
	return nfd;
}

static int dup_onto(int oldfd, int newfd, int flags, bool is_dup3)
{
	int rc;

	/* Our descriptors are not the application's to use or to replace. */
	if (is_internal(oldfd) || is_internal(newfd)) {
		ts_warn("dup2/dup3 onto descriptor %d refused: the tunnel uses it", newfd);
		return errno = EBADF, -1;
	}
	if (oldfd != newfd && shim_fd_kind(newfd) == SFD_TUNNEL)
		shim_close_tunnel(newfd);
	rc = is_dup3 ? real.dup3(oldfd, newfd, flags) : real.dup2(oldfd, newfd);
	if (rc >= 0 && oldfd != newfd &&
	    (shim_fd_kind(oldfd) != SFD_NONE || shim_fd_kind(newfd) != SFD_NONE)) {
		shim_fd_lock();
		shim_fd_copy(oldfd, newfd);
		shim_fd_unlock();
	}
	return rc;
}

SHIM_EXPORT int dup2(int oldfd, int newfd)
{
	if (!shim_enter_fd())
		return real.dup2(oldfd, newfd);
	return dup_onto(oldfd, newfd, 0, false);
}

SHIM_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (!shim_enter_fd())
		return real.dup3(oldfd, newfd, flags);
	return dup_onto(oldfd, newfd, flags, true);
}

/* The body of the fcntl entry points below. */
static int fcntl_common(int fd, int cmd, void *arg)
{
	int nfd;

	if (!shim_enter_fd() || (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC))
		return real.fcntl(fd, cmd, arg);
	if (is_internal(fd))
		return errno = EBADF, -1;
	nfd = real.fcntl(fd, cmd, arg);
	if (nfd >= 0 && shim_fd_kind(fd) != SFD_NONE) {
		shim_fd_lock();
		shim_fd_copy(fd, nfd);
		shim_fd_unlock();
	}
	return nfd;
}

/* fcntl's third argument is an int or a pointer; both travel in one register. */
#define FCNTL_ENTRY(name)						\
SHIM_EXPORT int name(int fd, int cmd, ...)				\
{									\
	va_list ap;							\
	void *arg;							\
									\
	va_start(ap, cmd);						\
	arg = va_arg(ap, void *);					\
	va_end(ap);							\
	return fcntl_common(fd, cmd, arg);				\
}

FCNTL_ENTRY(fcntl)
FCNTL_ENTRY(fcntl64)
