/* SPDX-License-Identifier: MIT */
/* connect() to a tunnel destination: the application's socket is replaced, on the
 * same descriptor number, by one end of a socketpair whose other end the stack
 * bridges to an lwIP connection. The kernel's semantics are kept exactly: a blocking
 * connect returns the real outcome; a non-blocking one returns EINPROGRESS and the
 * descriptor becomes writable exactly when the outcome is known (SO_ERROR tells it). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "shim.h"

/* An AF_INET6 socket that reached an IPv4 destination through a mapped address sees
 * its addresses mapped, as the kernel shows them. */
void shim_map_to_domain(struct sockaddr_storage *ss, int domain)
{
	if (domain == AF_INET6)
		ts_sa_map(ss);
}

/* ---- the stack's callbacks (stack thread, with the stack's reference) ---- */

static void on_started(void *arg, const struct ts_bridge_result *res)
{
	struct shim_conn *c = arg;

	shim_conn_lock(c);
	c->local = res->local;
	shim_map_to_domain(&c->local, c->domain);
	c->id = res->id;
	if (res->error)
		c->so_error = res->error;
	/* Read without mu by shim_touch's quick test: local and id are set before. */
	__atomic_store_n(&c->started, true, __ATOMIC_RELEASE);
	shim_conn_unlock(c);
}

static void on_done(void *arg, const struct ts_bridge_result *res)
{
	struct shim_conn *c = arg;

	shim_conn_lock(c);
	c->state = res->error ? CONN_FAILED : CONN_CONNECTED;
	if (res->error)
		c->so_error = res->error;
	c->done = true;
	shim_conn_unlock(c);
	__atomic_store_n(&c->known, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &c->known, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void on_ended(void *arg, int error)
{
	struct shim_conn *c = arg;

	shim_conn_lock(c);
	c->ended = true;
	c->end_error = error;
	if (c->state == CONN_CONNECTED)
		c->state = CONN_CLOSED;
	shim_conn_unlock(c);
	shim_conn_put(c);
}

const struct ts_bridge_ops shim_conn_ops = {
	.started = on_started, .done = on_done, .ended = on_ended,
};

/* Waits until the outcome is known (c->known), as a blocking connect waits in the
 * kernel: a signal handler installed with SA_RESTART restarts the wait unseen (a futex
 * wait without a timeout is restarted like connect), one installed without it ends
 * the wait with EINTR. With a timeout (rel), the wait ends then, with ETIMEDOUT. No
 * lock is held meanwhile, so signals are not blocked. */
static int wait_known(struct shim_conn *c, const struct timespec *rel)
{
	while (!__atomic_load_n(&c->known, __ATOMIC_ACQUIRE)) {
		if (syscall(SYS_futex, &c->known, FUTEX_WAIT_PRIVATE, 0, rel, NULL, 0) == 0 ||
		    errno == EAGAIN)
			continue;
		if (errno == EINTR || errno == ETIMEDOUT)
			return errno;
	}
	return 0;
}

/* ---- preparing the application's end ---- */

/* Holds back POLLOUT on a unix socket until the stack has an outcome: shrink the
 * send buffer and fill it; the stack drops the filler once it knows, and the next
 * call the application makes on the descriptor gives the buffer back (shim_touch).
 * No duplicate of the descriptor is kept: it would hide the application's close.
 * c is not published yet: its fields need no lock here. */
static void hold_pollout(int app, struct ts_bridge_req *req, struct shim_conn *c)
{
	static const char filler[4096];
	int sndbuf = 0, small = 1;
	socklen_t l = sizeof(sndbuf);
	ssize_t n;

	real.getsockopt(app, SOL_SOCKET, SO_SNDBUF, &sndbuf, &l);
	real.setsockopt(app, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	real.fcntl(app, F_SETFL, O_NONBLOCK);
	while ((n = real.sendto(app, filler, sizeof(filler), MSG_DONTWAIT | MSG_NOSIGNAL,
				NULL, 0)) > 0)
		req->discard_bytes += (size_t)n;
	c->restore_sndbuf = sndbuf / 2; /* the kernel reports twice what was set */
}

/* Work left for the application's side once the stack has answered: the abstract
 * name (which needs the local port) and the send buffer. Runs from the interposed
 * calls on the descriptor, so a non-blocking connect never waits for the stack. */
/* In a process attached to a session, the holder's answers (started, done) travel on
 * the session channel while its stack drops the filler that held writability back:
 * the descriptor can turn writable a moment before the outcome arrives here. So
 * writable means the answer is on its way: wait for it, and SO_ERROR, getsockname and
 * a second connect tell the truth. (Where the stack runs in this process, the outcome
 * is always recorded first: this never waits there.) */
#define SETTLE_MAX_S 5

static void settle(int fd, struct shim_conn *c)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	struct timespec until, now, rel;
	bool held;

	/* Only a connect that held POLLOUT back has a drain to be early with; a blocking
	 * one a signal interrupted is writable all along. */
	shim_conn_lock(c);
	held = c->restore_sndbuf > 0;
	shim_conn_unlock(c);
	if (!held || poll(&p, 1, 0) != 1 || !(p.revents & (POLLOUT | POLLERR | POLLHUP)))
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += SETTLE_MAX_S;
	do {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > until.tv_sec)
			return;
		rel.tv_sec = until.tv_sec - now.tv_sec;
		rel.tv_nsec = until.tv_nsec - now.tv_nsec;
		if (rel.tv_nsec < 0) {
			rel.tv_sec--;
			rel.tv_nsec += 1000000000L;
		}
		if (rel.tv_sec < 0)
			return;
	} while (wait_known(c, &rel) == EINTR);
}

/* Waits (at most SETTLE_MAX_S) for the stack's outcome of a bridge it answers at
 * once (an ICMP socket's): getsockname right after the first send must see the
 * identifier the stack chose, also where the answer travels on a session channel. */
void shim_wait_outcome(struct shim_conn *c)
{
	struct timespec rel = { .tv_sec = SETTLE_MAX_S };

	while (wait_known(c, &rel) == EINTR)
		;
}

void shim_touch(int fd, struct shim_conn *c)
{
	int v;

	if (__atomic_load_n(&c->touched, __ATOMIC_ACQUIRE))
		return;
	settle(fd, c);
	if (!__atomic_load_n(&c->started, __ATOMIC_ACQUIRE))
		return;
	shim_conn_lock(c);
	if (!c->named && c->local.ss_family) {
		c->named = true;
		shim_name_bind(fd, c);
	}
	if (c->done && c->restore_sndbuf > 0) {
		v = c->restore_sndbuf;
		c->restore_sndbuf = 0;
		real.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	__atomic_store_n(&c->touched, c->named && c->done && !c->restore_sndbuf, __ATOMIC_RELEASE);
	shim_conn_unlock(c);
}

/* A port the application bound on the wildcard before connecting is kept. */
static void kernel_bound_port(int fd, const struct sockaddr_storage *dst,
			      struct sockaddr_storage *local)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	in_port_t port;

	if (real.getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		port = ((struct sockaddr_in *)&ss)->sin_port;
	else if (ss.ss_family == AF_INET6)
		port = ((struct sockaddr_in6 *)&ss)->sin6_port;
	else
		return;
	if (!port)
		return;
	memset(local, 0, sizeof(*local));
	local->ss_family = dst->ss_family;
	if (dst->ss_family == AF_INET)
		((struct sockaddr_in *)local)->sin_port = port;
	else
		((struct sockaddr_in6 *)local)->sin6_port = port;
}

static void fill_request(struct ts_bridge_req *req, int fd, const struct shim_fd *e,
			 const struct sockaddr_storage *dst, int proto, int stack_end)
{
	memset(req, 0, sizeof(*req));
	req->proto = proto;
	req->remote = *dst;
	req->fd = stack_end;
	if (!e || !e->is_bound)
		kernel_bound_port(fd, dst, &req->local);
	/* Asked of the kernel socket, which is replaced: an error queue it wants. */
	if (proto == IPPROTO_UDP)
		req->recverr = shim_udp_recverr(fd, dst->ss_family);
	if (!e)
		return;
	if (e->is_bound)
		req->local = e->bound;
	req->nodelay = e->nodelay;
	req->keepalive = e->keepalive;
	req->keepidle = e->keepidle;
	req->keepintvl = e->keepintvl;
	req->keepcnt = e->keepcnt;
}

/* Another thread closed fd while we connected it (its entry moved on), or connected
 * it into the tunnel itself: the socketpair must not land on that number. */
static int swap_refused(const struct shim_fd *e, const struct shim_fd *was)
{
	if (e->gen != was->gen)
		return EBADF;
	if (shim_fd_kind_of(e) == SFD_TUNNEL && was->kind != SFD_TUNNEL)
		return EALREADY;
	return 0;
}

void shim_fd_become_tunnel(struct shim_fd *e, struct shim_conn *c)
{
	if (e->conn) {
		e->conn->nfds--;
		shim_conn_put(e->conn);
	}
	e->conn = c;
	c->nfds = 1;
	e->type = c->sotype ? c->sotype : c->proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
	e->domain = c->domain;
	e->protocol = c->proto;
	__atomic_store_n(&e->kind, SFD_TUNNEL, __ATOMIC_RELEASE);
}

/* Puts app on fd's number, keeping FD_CLOEXEC, and re-joins the epoll sets fd had
 * joined (dup3 drops the replaced file's registrations). was is the entry as it was
 * when the connect began. The dup3 happens under the table lock, so a close of fd
 * comes wholly before it (refused) or after it (closes the socketpair end). */
int shim_swap_in(int fd, int app, struct shim_conn *c, bool cloexec, const struct shim_fd *was)
{
	struct shim_fd *e;
	struct shim_epoll_reg *regs = NULL;
	int nregs = 0, err;

	shim_fd_lock();
	e = shim_fd_get(fd);
	if (!e)
		err = ENOMEM;
	else if (!(err = swap_refused(e, was)) && real.dup3(app, fd, cloexec ? O_CLOEXEC : 0) < 0)
		err = errno;
	if (!err) {
		regs = e->regs;
		nregs = e->nregs;
		e->regs = NULL;
		e->nregs = 0;
		shim_fd_become_tunnel(e, c);
	}
	shim_fd_unlock();
	if (err)
		return errno = err, -1;
	real.close(app);
	for (int i = 0; i < nregs; i++)
		real.epoll_ctl(regs[i].epfd, EPOLL_CTL_ADD, fd, &regs[i].ev);
	free(regs);
	return 0;
}

/* ---- connect ---- */

/* A connect on a descriptor already in the tunnel answers as the kernel does: EALREADY
 * while in progress; after a non-blocking connect succeeded, 0 the first time (that
 * call is what the kernel reports the connection with), EISCONN afterwards; after it
 * failed, the pending error once. Returns -1 for "answer 0", 0 for "start anew". */
static int connect_again(struct shim_conn *c)
{
	int err;

	if (c->proto == IPPROTO_UDP)
		return EISCONN;
	switch (c->state) {
	case CONN_CONNECTING:
		return EALREADY;
	case CONN_CONNECTED:
	case CONN_CLOSED:
		if (c->connect_reported)
			return EISCONN;
		c->connect_reported = true;
		return -1;
	default:
		err = c->so_error;
		c->so_error = 0;
		return err;
	}
}

static int blocking_outcome(struct shim_conn *c);

/* A blocking connect again while the first is in progress (one a signal interrupted)
 * waits for the outcome, as the kernel's does; a non-blocking one says EALREADY. */
static int existing_state(int fd, bool nonblock)
{
	struct shim_conn *c = shim_fd_conn(fd);
	int err;

	if (!c)
		return 0;
	shim_conn_lock(c);
	err = connect_again(c);
	shim_conn_unlock(c);
	if (err == EALREADY && !nonblock && !(err = blocking_outcome(c)))
		err = -1;
	shim_conn_put(c);
	return err;
}

static int open_bridge(struct ts_stack *st, struct shim_conn *c, struct ts_bridge_req *req)
{
	int rc;

	shim_conn_get(c); /* the stack's, dropped in on_ended */
	rc = ts_bridge_open(st, req, &shim_conn_ops, c);
	if (rc < 0) {
		shim_conn_put(c);
		return -rc;
	}
	return 0;
}

/* A blocking connect: the outcome, once; EINTR if a signal handler ended the wait
 * (the connection goes on, as the kernel's does). */
static int blocking_outcome(struct shim_conn *c)
{
	int err;

	if (wait_known(c, NULL))
		return EINTR;
	shim_conn_lock(c);
	c->connect_reported = true;
	err = c->state == CONN_FAILED ? c->so_error : 0;
	if (err)
		c->so_error = 0;
	shim_conn_unlock(c);
	return err;
}

int shim_tunnel_connect(int fd, const struct sockaddr_storage *dst, int type)
{
	int proto = type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
	int flags = real.fcntl(fd, F_GETFL), fdflags = real.fcntl(fd, F_GETFD);
	bool nonblock = flags >= 0 && (flags & O_NONBLOCK);
	struct shim_fd e;
	struct ts_bridge_req req;
	struct ts_stack *st;
	struct shim_conn *c;
	int sv[2], err;

	shim_fd_read(fd, &e);
	if ((err = existing_state(fd, nonblock)))
		return err < 0 ? 0 : (errno = err, -1);
	if (!(st = shim_tunnel()))
		return -1;
	/* SEQPACKET, not DGRAM, for UDP: it keeps datagram boundaries and, unlike a
	 * DGRAM pair, tells the stack when the application closed its end. Non-blocking
	 * for the stack's end; the application's gets its flags below. */
	if (real.socketpair(AF_UNIX, (type == SOCK_STREAM ? SOCK_STREAM : SOCK_SEQPACKET) |
			    SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	sv[1] = shim_adopt_fd(sv[1]);
	c = shim_conn_new(proto);
	if (!c) {
		real.close(sv[0]);
		real.close(sv[1]);
		return errno = ENOMEM, -1;
	}
	c->domain = e.domain ? e.domain : dst->ss_family;
	c->remote = *dst;
	shim_map_to_domain(&c->remote, c->domain);
	c->state = CONN_CONNECTING;
	fill_request(&req, fd, e.kind ? &e : NULL, dst, proto, sv[1]);
	c->recverr = req.recverr;
	if (proto == IPPROTO_TCP && nonblock)
		hold_pollout(sv[0], &req, c);
	err = open_bridge(st, c, &req);
	real.fcntl(sv[0], F_SETFL, nonblock ? O_NONBLOCK : 0);
	/* Ours while we use it here: another thread may close fd meanwhile. */
	shim_conn_get(c);
	if (err || shim_swap_in(fd, sv[0], c, fdflags >= 0 && (fdflags & FD_CLOEXEC), &e) < 0) {
		err = err ? err : errno;
		real.close(sv[0]);
		shim_conn_put(c);
		shim_conn_put(c);
		return errno = err, -1;
	}
	ts_dbg("fd %d: %s connect into the tunnel (%s)", fd, proto == IPPROTO_TCP ? "TCP" : "UDP",
	       nonblock ? "non-blocking" : "blocking");
	if (proto == IPPROTO_TCP && nonblock) {
		shim_touch(fd, c);
		shim_conn_put(c);
		return errno = EINPROGRESS, -1;
	}
	err = blocking_outcome(c);
	shim_touch(fd, c);
	shim_conn_put(c);
	return err ? (errno = err, -1) : 0;
}
