/* SPDX-License-Identifier: MIT */
/*
 * sh_threads: threads race connect, close, send, recv, dup and the socket calls the shim
 * answers itself on descriptors they share, tunnel-bound and loopback; then the shim
 * must still work.
 *
 *   sh_threads HOST PORT SECONDS [THREADS]
 *
 * HOST PORT is a TCP and UDP echo server inside the tunnel; the program runs a TCP echo
 * of its own on 127.0.0.1. For SECONDS, THREADS threads (default 6) each pick a random
 * operation on a random slot of one shared table of descriptors: open a connection into
 * the slot (tunnel TCP blocking or not, tunnel UDP connected, UDP unconnected sending
 * into the tunnel, loopback TCP) and close what it held; listen on the wildcard (in the
 * tunnel too); close a slot; send; receive; dup a slot into another; dup2 one slot onto
 * another; connect a slot again; ask or set options and names; shut a slot down. A descriptor closed or renumbered under another
 * thread's feet makes calls fail (EBADF, or another socket's answer): that is counted,
 * not checked. What must not happen is a crash, a hang (nothing here waits on a shared
 * descriptor: receives and sends are MSG_DONTWAIT) or, under ThreadSanitizer, a report.
 * Afterwards a tunnel TCP connection, a connected tunnel UDP socket and a loopback
 * connection of the main thread's own must each echo a line (read and write). Prints
 * "OK" and the counts; exits 1 with the reason otherwise.
 */
#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <time.h>
#include "sh_util.h"

#define NSLOTS 8
#define MAX_THREADS 16
#define MAX_LO_CONNS 128

enum op {
	OP_OPEN, OP_LISTEN, OP_CLOSE, OP_SEND, OP_RECV, OP_DUP, OP_DUP2, OP_RECONNECT,
	OP_SOCKOPT, OP_SHUTDOWN, OP_COUNT
};
static const char *const op_names[OP_COUNT] = {
	"open", "listen", "close", "send", "recv", "dup", "dup2", "reconnect", "sockopt",
	"shutdown",
};
/* Out of 100: opens and I/O most, the rarer calls enough to meet the others. */
static const int op_weight[OP_COUNT] = { 20, 2, 10, 22, 18, 5, 5, 5, 10, 3 };

static int slots[NSLOTS];
static struct sockaddr_storage tun_addr, lo_addr;
static socklen_t tun_len, lo_len;
static double deadline;
static int stop;
static unsigned long done_ops[OP_COUNT], failed_ops[OP_COUNT], op_us[OP_COUNT];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the loopback echo server: one thread, non-blocking, best effort ---- */

static int lo_listen(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		sh_die("loopback listener: %s", strerror(errno));
	memcpy(&lo_addr, &a, sizeof(a));
	lo_len = sizeof(a);
	return fd;
}

/* Echoes what one connection has; false when it is done. */
static bool lo_echo(int fd)
{
	char buf[2048];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0)
		return false;
	return send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0 || errno == EAGAIN;
}

static void *lo_server(void *arg)
{
	struct pollfd p[MAX_LO_CONNS + 1];
	nfds_t n = 1;

	p[0] = (struct pollfd){ .fd = *(int *)arg, .events = POLLIN };
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		if (poll(p, n, 50) <= 0)
			continue;
		for (nfds_t i = n; i-- > 1;) {
			if (p[i].revents && !lo_echo(p[i].fd)) {
				close(p[i].fd);
				p[i] = p[--n];
			}
		}
		if ((p[0].revents & POLLIN) && n <= MAX_LO_CONNS) {
			int c = accept4(p[0].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (c >= 0)
				p[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
	}
	for (nfds_t i = 1; i < n; i++)
		close(p[i].fd);
	return NULL;
}

static void start_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
	int err = pthread_create(th, NULL, fn, arg);

	if (err)
		sh_die("pthread_create: %s", strerror(err));
}

static int lo_start(pthread_t *th)
{
	static int fd;

	fd = lo_listen();
	__atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
	start_thread(th, lo_server, &fd);
	return fd;
}

static void lo_stop(pthread_t th, int fd)
{
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	close(fd);
}

/* ---- the operations; each returns -1 when its call failed ---- */

static int slot_fd(unsigned *seed)
{
	return __atomic_load_n(&slots[rand_r(seed) % NSLOTS], __ATOMIC_RELAXED);
}

/* Puts fd into a random slot and closes what was there. */
static void slot_put(unsigned *seed, int fd)
{
	int old = __atomic_exchange_n(&slots[rand_r(seed) % NSLOTS], fd, __ATOMIC_ACQ_REL);

	if (old >= 0)
		close(old);
}

static int open_one(unsigned *seed)
{
	/* The loopback connect does not wait: the kernel retries a SYN that a full
	 * backlog dropped for minutes, and the race may have closed our server's listener. */
	static const int types[] = { SOCK_STREAM, SOCK_STREAM | SOCK_NONBLOCK, SOCK_DGRAM,
				     SOCK_DGRAM, SOCK_STREAM | SOCK_NONBLOCK };
	int kind = rand_r(seed) % 5;
	bool lo = kind == 4;
	const struct sockaddr_storage *to = lo ? &lo_addr : &tun_addr;
	int fd = socket(to->ss_family, types[kind] | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (kind == 3) { /* unconnected: the datagram goes into the tunnel through the relay */
		sendto(fd, "u\n", 2, MSG_DONTWAIT, (const struct sockaddr *)to, tun_len);
	} else if (connect(fd, (const struct sockaddr *)to, lo ? lo_len : tun_len) < 0 &&
		   errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	/* Nobody may wait on a shared descriptor: a thread that picks it up blocks not. */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	slot_put(seed, fd);
	return 0;
}

/* A listener on the wildcard: the shim listens in the tunnel too, and stops at close. */
static int listen_one(unsigned *seed)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	slot_put(seed, fd);
	return 0;
}

static int close_one(unsigned *seed)
{
	int fd = __atomic_exchange_n(&slots[rand_r(seed) % NSLOTS], -1, __ATOMIC_ACQ_REL);

	return fd < 0 ? 0 : close(fd);
}

static int send_one(unsigned *seed)
{
	static const char msg[] = "racing threads\n";
	int fd = slot_fd(seed);
	struct iovec v = { (void *)msg, sizeof(msg) - 1 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };

	switch (rand_r(seed) % 3) {
	case 0:
		return (int)send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	case 1:
		return (int)sendto(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL,
				   (const struct sockaddr *)&tun_addr, tun_len);
	default:
		return (int)sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
}

static int recv_one(unsigned *seed)
{
	char buf[512];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	struct iovec v = { buf, sizeof(buf) };
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &v,
			    .msg_iovlen = 1 };
	int fd = slot_fd(seed), avail;

	switch (rand_r(seed) % 4) {
	case 0:
		return (int)recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	case 1:
		return (int)recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
	case 2:
		return (int)recvmsg(fd, &m, MSG_DONTWAIT);
	default:
		return ioctl(fd, FIONREAD, &avail);
	}
}

static int dup_one(unsigned *seed)
{
	int fd = dup(slot_fd(seed));

	if (fd >= 0)
		slot_put(seed, fd);
	return fd;
}

/* One shared descriptor onto another's number: both stay in their slots. */
static int dup2_one(unsigned *seed)
{
	int a = slot_fd(seed), b = slot_fd(seed);

	if (a < 0 || b < 0 || a == b)
		return 0;
	return rand_r(seed) % 2 ? dup2(a, b) : dup3(a, b, O_CLOEXEC);
}

static int reconnect_one(unsigned *seed)
{
	return connect(slot_fd(seed), (const struct sockaddr *)&tun_addr, tun_len);
}

static int sockopt_one(unsigned *seed)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	struct linger lg = { 1, 0 };
	int fd = slot_fd(seed), v = 1;

	switch (rand_r(seed) % 6) {
	case 0:
		return getpeername(fd, (struct sockaddr *)&ss, &l);
	case 1:
		return getsockname(fd, (struct sockaddr *)&ss, &l);
	case 2:
		l = sizeof(v);
		return getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l);
	case 3:
		return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
	case 4:
		/* Sometimes a reset at close instead of a FIN. */
		return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	default:
		l = sizeof(ss);
		return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ss, &l);
	}
}

static int shutdown_one(unsigned *seed)
{
	return shutdown(slot_fd(seed), SHUT_WR);
}

static int (*const ops[OP_COUNT])(unsigned *) = {
	open_one, listen_one, close_one, send_one, recv_one, dup_one, dup2_one, reconnect_one,
	sockopt_one, shutdown_one,
};

static enum op pick(unsigned *seed)
{
	int r = rand_r(seed) % 100;
	int op = 0;

	while (op < OP_COUNT - 1 && r >= op_weight[op])
		r -= op_weight[op++];
	return (enum op)op;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;

	double t, t0 = now_s();

	for (t = t0; t < deadline; t0 = t) {
		enum op op = pick(&seed);

		__atomic_add_fetch(&done_ops[op], 1, __ATOMIC_RELAXED);
		if (ops[op](&seed) < 0)
			__atomic_add_fetch(&failed_ops[op], 1, __ATOMIC_RELAXED);
		t = now_s();
		__atomic_add_fetch(&op_us[op], (unsigned long)((t - t0) * 1e6), __ATOMIC_RELAXED);
	}
	return NULL;
}

/* ---- afterwards: connections of the main thread's own still work ---- */

static void echo_after(const struct sockaddr_storage *to, socklen_t len, int type,
		       const char *what)
{
	char line[64], back[64];
	int fd = socket(to->ss_family, type | SOCK_CLOEXEC, 0);
	ssize_t n;

	if (fd < 0 || connect(fd, (const struct sockaddr *)to, len) < 0)
		sh_die("%s after the race: connect: %s", what, strerror(errno));
	snprintf(line, sizeof(line), "after the race, %s\n", what);
	sh_write_all(fd, line, strlen(line));
	if (type == SOCK_STREAM) {
		sh_read_line(fd, back, sizeof(back), 10000);
		strcat(back, "\n");
	} else {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 || (n = read(fd, back, sizeof(back) - 1)) <= 0)
			sh_die("%s after the race: no datagram back", what);
		back[n] = 0;
	}
	if (strcmp(back, line) != 0)
		sh_die("%s after the race: sent '%s', got '%s'", what, line, back);
	close(fd);
}

static void report(double secs)
{
	printf("OK %.1f s:", secs);
	for (int i = 0; i < OP_COUNT; i++)
		printf(" %s %lu (%lu failed, %.1f s)", op_names[i], done_ops[i], failed_ops[i],
		       (double)op_us[i] / 1e6);
	printf("\n");
}

/* The race itself: THREADS workers until the deadline, then the table emptied. */
static void race(int nthreads, double secs)
{
	pthread_t th[MAX_THREADS];

	deadline = now_s() + secs;
	for (int i = 0; i < nthreads; i++)
		start_thread(&th[i], worker, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i] >= 0)
			close(slots[i]);
}

int main(int argc, char **argv)
{
	pthread_t srv;
	int nthreads = argc > 4 ? atoi(argv[4]) : 6, lfd;
	double t0 = now_s();

	sh_prog = "sh_threads";
	if (argc < 4 || nthreads < 1 || nthreads > MAX_THREADS)
		sh_die("usage: sh_threads HOST PORT SECONDS [THREADS (1-%d)]", MAX_THREADS);
	signal(SIGPIPE, SIG_IGN);
	tun_len = sh_addr(argv[1], argv[2], &tun_addr);
	for (int i = 0; i < NSLOTS; i++)
		slots[i] = -1;
	lfd = lo_start(&srv);
	/* The tunnel is up before the race: its start is not what is tested here. */
	close(sh_connect(argv[1], argv[2]));
	race(nthreads, atof(argv[3]));
	echo_after(&tun_addr, tun_len, SOCK_STREAM, "tunnel TCP");
	echo_after(&tun_addr, tun_len, SOCK_DGRAM, "tunnel UDP");
	/* A fresh loopback server: the race may have closed the first one's listener. */
	lo_stop(srv, lfd);
	lfd = lo_start(&srv);
	echo_after(&lo_addr, lo_len, SOCK_STREAM, "loopback TCP");
	lo_stop(srv, lfd);
	report(now_s() - t0);
	return 0;
}
