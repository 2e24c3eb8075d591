/* SPDX-License-Identifier: MIT */
/*
 * sh_load: many tunnel connections from one process, and what they leave behind.
 *
 *   sh_load HOST PORT CONCURRENT SEQUENTIAL [--no-drain]
 *
 * Against a line echo server (tests/shim/load_server.py), with plain socket calls:
 *   first       one connection: connect, echo a line, close. The stack starts here.
 *   concurrent  CONCURRENT non-blocking connects at once, a line echoed on each while all
 *               are open, then all closed
 *   sequential  SEQUENTIAL times: a blocking connect, a line echoed, close
 * After each, once the stack's counts show every connection gone (no bridge, no active
 * pcb) and again once TIME_WAIT has drained, it prints a line of figures:
 *
 *   PHASE fds=N rss_kib=N heap=N ms=N bridges=N tcp_active=N tcp_time_wait=N ...
 *
 * fds counts /proc/self/fd, rss_kib is the resident set, heap mallinfo2's bytes in use;
 * the rest is the stack's own line (TUNSHIM_STATS, stack/net/stats.c), read from the
 * library's log ($TUNSHIM_LOG_FILE): only lines this process wrote after the moment of
 * asking count, so a figure never predates what it is compared with. ms is the time the
 * phase took (for a "-drained" line, the time TIME_WAIT took to empty). The phases:
 *   first-drained, concurrent-open (all CONCURRENT open), concurrent-closed,
 *   concurrent-drained, sequential-closed, sequential-drained.
 * With --no-drain nothing waits for TIME_WAIT (lwIP's real one lasts minutes): the
 * baseline is "first-closed", and there are no "-drained" lines.
 * The caller compares them (tests/shim/120-load.bats). Exits 1, saying why, when a
 * connection fails or the counts do not settle within the time given.
 */
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include "sh_util.h"

#define SETTLE_MS 60000 /* how long the stack may take to show what is asked */
#define IO_MS 30000

struct counts {
	long bridges, active, tw, listen, bound, udp, pbufs, segs, lwip_heap;
};

static const char *log_path;
static int no_drain;
static char pidtag[32];

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		sh_die("/proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
		sh_die("/proc/self/statm unreadable");
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long log_size(void)
{
	struct stat sb;

	if (stat(log_path, &sb) < 0)
		sh_die("%s: %s", log_path, strerror(errno));
	return (long)sb.st_size;
}

static int parse_counts(const char *line, struct counts *c)
{
	return sscanf(line, "bridges=%ld tcp_active=%ld tcp_time_wait=%ld tcp_listen=%ld "
		      "tcp_bound=%ld udp=%ld pbufs=%ld tcp_segs=%ld lwip_heap=%ld", &c->bridges,
		      &c->active, &c->tw, &c->listen, &c->bound, &c->udp, &c->pbufs, &c->segs,
		      &c->lwip_heap) == 9;
}

/* The last counts line of ours written at or after offset *from; advances *from. */
static int latest_counts(long *from, struct counts *c)
{
	static char buf[1 << 16];
	int fd = open(log_path, O_RDONLY | O_CLOEXEC), found = 0;
	ssize_t n;

	if (fd < 0)
		sh_die("%s: %s", log_path, strerror(errno));
	while ((n = pread(fd, buf, sizeof(buf) - 1, *from)) > 0) {
		char *line = buf, *nl;

		buf[n] = 0;
		while ((nl = strchr(line, '\n'))) {
			const char *s = strstr(line, pidtag);

			*nl = 0;
			if (s == line && (s = strstr(line, "stack stats: ")))
				found |= parse_counts(s + 13, c);
			line = nl + 1;
		}
		if (line == buf)
			break; /* a line longer than the buffer: not ours */
		*from += line - buf;
	}
	close(fd);
	return found;
}

typedef int (*settled_fn)(const struct counts *c, const struct counts *base);

/* Waits for a counts line, written after the call, that satisfies done. */
static void wait_counts(const char *what, settled_fn done, const struct counts *base,
			struct counts *out)
{
	long from = log_size(), deadline = now_ms() + SETTLE_MS;
	int seen = 0;

	for (;;) {
		seen |= latest_counts(&from, out);
		if (seen && done(out, base))
			return;
		if (now_ms() > deadline)
			break;
		usleep(20000);
	}
	if (!seen)
		sh_die("%s: no 'stack stats' line in %s (TUNSHIM_STATS unset?)", what, log_path);
	sh_die("%s: the stack did not settle in %d ms: bridges=%ld tcp_active=%ld "
	       "tcp_time_wait=%ld", what, SETTLE_MS, out->bridges, out->active, out->tw);
}

static int all_open(const struct counts *c, const struct counts *want)
{
	return c->bridges >= want->bridges && c->active >= want->active;
}

static int all_closed(const struct counts *c, const struct counts *base)
{
	return c->bridges == base->bridges && c->active == base->active;
}

static int drained(const struct counts *c, const struct counts *base)
{
	return all_closed(c, base) && c->tw == 0;
}

static void report(const char *phase, long ms, const struct counts *c)
{
	struct mallinfo2 mi = mallinfo2();

	printf("%s fds=%ld rss_kib=%ld heap=%zu ms=%ld bridges=%ld tcp_active=%ld "
	       "tcp_time_wait=%ld tcp_listen=%ld tcp_bound=%ld udp=%ld pbufs=%ld tcp_segs=%ld "
	       "lwip_heap=%ld\n", phase, count_fds(), rss_kib(), mi.uordblks, ms, c->bridges,
	       c->active, c->tw, c->listen, c->bound, c->udp, c->pbufs, c->segs, c->lwip_heap);
	fflush(stdout);
}

/* Every connection is closed: once the stack agrees, and again once TIME_WAIT is
 * empty. */
static void settle(const char *phase, long t0, const struct counts *base)
{
	struct counts c;
	char name[64];
	long t1;

	wait_counts(phase, all_closed, base, &c);
	t1 = now_ms();
	snprintf(name, sizeof(name), "%s-closed", phase);
	report(name, t1 - t0, &c);
	if (no_drain)
		return;
	wait_counts(phase, drained, base, &c);
	snprintf(name, sizeof(name), "%s-drained", phase);
	report(name, now_ms() - t1, &c);
}

static void one_connection(const char *host, const char *port, long i)
{
	char line[64];
	int fd = sh_connect(host, port);

	snprintf(line, sizeof(line), "sh_load %ld", i);
	sh_echo_line(fd, line);
	close(fd);
}

static int start_connect(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		sh_die("socket: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)ss, len) < 0 && errno != EINPROGRESS)
		sh_die("connect: %s", strerror(errno));
	return fd;
}

/* Polls every descriptor still marked in todo for events; done() says whether one is
 * finished with. */
static void poll_all(struct pollfd *p, long n, short events, int (*done)(int fd, long i),
		     const char *what)
{
	long left = n, deadline = now_ms() + IO_MS;

	for (long i = 0; i < n; i++)
		p[i].events = events;
	while (left > 0) {
		if (now_ms() > deadline)
			sh_die("%s: %ld of %ld connections unfinished after %d ms", what, left, n,
			       IO_MS);
		if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR)
			sh_die("poll: %s", strerror(errno));
		for (long i = 0; i < n; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if (done(p[i].fd, i)) {
				p[i].fd = -p[i].fd - 1; /* poll skips negative descriptors */
				left--;
			}
		}
	}
	for (long i = 0; i < n; i++)
		p[i].fd = -p[i].fd - 1;
}

static int connected(int fd, long i)
{
	int err = 0;
	socklen_t len = sizeof(err);
	char line[64];

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
		sh_die("connection %ld: %s", i, strerror(err ? err : errno));
	snprintf(line, sizeof(line), "sh_load %ld\n", i);
	sh_write_all(fd, line, strlen(line));
	return 1;
}

static int echoed(int fd, long i)
{
	char want[64], got[64];
	ssize_t n;

	snprintf(want, sizeof(want), "sh_load %ld\n", i);
	n = recv(fd, got, sizeof(got), MSG_PEEK);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0)
		sh_die("connection %ld: %s", i, n < 0 ? strerror(errno) : "EOF before the echo");
	if ((size_t)n < strlen(want))
		return 0;
	n = recv(fd, got, strlen(want), 0);
	if (n != (ssize_t)strlen(want) || memcmp(got, want, (size_t)n) != 0)
		sh_die("connection %ld: the echo differs", i);
	return 1;
}

static void concurrent(const char *host, const char *port, long n, const struct counts *base)
{
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	struct sockaddr_storage ss;
	socklen_t len = sh_addr(host, port, &ss);
	struct counts want = *base, c;
	long t0 = now_ms();

	if (!p)
		sh_die("out of memory");
	for (long i = 0; i < n; i++)
		p[i].fd = start_connect(&ss, len);
	poll_all(p, n, POLLOUT, connected, "connect");
	printf("concurrent-connected ms=%ld\n", now_ms() - t0);
	poll_all(p, n, POLLIN, echoed, "echo");
	want.bridges += n;
	want.active += n;
	wait_counts("concurrent", all_open, &want, &c);
	report("concurrent-open", now_ms() - t0, &c);
	t0 = now_ms();
	for (long i = 0; i < n; i++)
		close(p[i].fd);
	free(p);
	settle("concurrent", t0, base);
}

static void raise_nofile(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		sh_die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || (long)rl.rlim_cur < need)
		sh_die("RLIMIT_NOFILE: need %ld descriptors, the hard limit is %ld", need,
		       (long)rl.rlim_max);
}

int main(int argc, char **argv)
{
	struct counts base, zero = { 0 };
	long nconc, nseq, t0;

	sh_prog = "sh_load";
	no_drain = argc == 6 && strcmp(argv[5], "--no-drain") == 0;
	if (argc != 5 + no_drain)
		sh_die("usage: sh_load HOST PORT CONCURRENT SEQUENTIAL [--no-drain]");
	nconc = strtol(argv[3], NULL, 10);
	nseq = strtol(argv[4], NULL, 10);
	log_path = getenv("TUNSHIM_LOG_FILE");
	if (!log_path || !*log_path)
		sh_die("TUNSHIM_LOG_FILE must name the library's log (the counts are read there)");
	snprintf(pidtag, sizeof(pidtag), "tunshim[%d]: ", (int)getpid());
	/* The application's descriptors, and as many of the stack's own. */
	raise_nofile(2 * nconc + 64);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("sh_load: %ld concurrent, %ld sequential\n", nconc, nseq);

	t0 = now_ms();
	one_connection(argv[1], argv[2], 0);
	wait_counts("first", no_drain ? all_closed : drained, &zero, &base);
	report(no_drain ? "first-closed" : "first-drained", now_ms() - t0, &base);

	if (nconc > 0)
		concurrent(argv[1], argv[2], nconc, &base);
	if (nseq > 0) {
		t0 = now_ms();
		for (long i = 0; i < nseq; i++)
			one_connection(argv[1], argv[2], i);
		printf("sequential-rate %.0f/s\n", nseq * 1000.0 / (double)(now_ms() - t0 + 1));
		settle("sequential", t0, &base);
	}
	return 0;
}
