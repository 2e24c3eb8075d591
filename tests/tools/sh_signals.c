/* SPDX-License-Identifier: MIT */
/*
 * sh_signals: a signal handler that uses sockets while the program's own loops do the
 * same: the calls a handler may make (socket, close, dup, read and write on plain
 * descriptors) must not deadlock on a lock the interrupted thread holds.
 *
 *   sh_signals ITERATIONS [HOST PORT]
 *
 * Two threads (the main one and one more) each run ITERATIONS rounds of: socket(), dup()
 * of it, close() of both, one byte written to and read back from a socketpair; with HOST
 * PORT, the main thread holds a tunnelled TCP connection to that echo server, echoes a
 * line on it every 1024 rounds and dup()s and close()s its copy every round. An interval
 * timer sends SIGALRM every 100 us; its handler (installed with SA_RESTART) does one
 * round of the same on descriptors of its own (socket, dup, close, a byte through a
 * socketpair, and a dup and close of the tunnelled descriptor). A deadlock shows as no
 * end: the caller bounds the run with a timeout. Prints "OK", the rounds, the handler's
 * runs and the seconds taken; exits 1 with the reason if a call failed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/time.h>
#include <time.h>
#include "sh_util.h"

static int tunnel_fd = -1;
static int handler_pair[2];
static volatile sig_atomic_t handler_runs, handler_failed;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One round on plain descriptors; false if a call failed (errno tells). */
static bool round_plain(const int pair[2])
{
	char b = 'x';
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), d;

	if (s < 0)
		return false;
	d = dup(s);
	if (d < 0 || close(d) < 0 || close(s) < 0)
		return false;
	return write(pair[0], &b, 1) == 1 && read(pair[1], &b, 1) == 1;
}

/* A copy of the tunnelled descriptor, closed at once: the table entry and the
 * connection's references move under the shim's locks. */
static bool round_tunnel(void)
{
	int d;

	if (tunnel_fd < 0)
		return true;
	d = dup(tunnel_fd);
	return d >= 0 && close(d) == 0;
}

static void on_alarm(int sig)
{
	int err = errno;

	(void)sig;
	if (!round_plain(handler_pair) || !round_tunnel())
		handler_failed = errno ? errno : -1;
	handler_runs++;
	errno = err;
}

static void make_pair(int pair[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		sh_die("socketpair: %s", strerror(errno));
}

static void loop(long rounds, bool main_thread)
{
	int pair[2];

	make_pair(pair);
	for (long i = 0; i < rounds; i++) {
		if (!round_plain(pair))
			sh_die("round %ld: %s", i, strerror(errno));
		if (!main_thread)
			continue;
		if (!round_tunnel())
			sh_die("round %ld: dup/close of the tunnelled descriptor: %s", i,
			       strerror(errno));
		if (tunnel_fd >= 0 && (i & 1023) == 0)
			sh_echo_line(tunnel_fd, "through the tunnel between signals");
	}
	close(pair[0]);
	close(pair[1]);
}

static void *worker(void *arg)
{
	loop(*(long *)arg, false);
	return NULL;
}

static void start_timer(void)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct itimerval it = { { 0, 100 }, { 0, 100 } };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0 || setitimer(ITIMER_REAL, &it, NULL) < 0)
		sh_die("timer: %s", strerror(errno));
}

static void stop_timer(void)
{
	struct itimerval off = { { 0, 0 }, { 0, 0 } };

	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_IGN);
}

int main(int argc, char **argv)
{
	long rounds;
	pthread_t th;
	double t0;
	int err;

	sh_prog = "sh_signals";
	if (argc != 2 && argc != 4)
		sh_die("usage: sh_signals ITERATIONS [HOST PORT]");
	rounds = strtol(argv[1], NULL, 10);
	if (argc == 4) {
		tunnel_fd = sh_connect(argv[2], argv[3]);
		sh_echo_line(tunnel_fd, "before the signals");
	}
	make_pair(handler_pair);
	t0 = now_s();
	start_timer();
	if ((err = pthread_create(&th, NULL, worker, &rounds)))
		sh_die("pthread_create: %s", strerror(err));
	loop(rounds, true);
	pthread_join(th, NULL);
	stop_timer();
	if (handler_failed)
		sh_die("in the handler: %s", handler_failed > 0 ? strerror(handler_failed) : "?");
	if (tunnel_fd >= 0)
		sh_echo_line(tunnel_fd, "after the signals");
	printf("OK rounds=%ld handler_runs=%d seconds=%.2f\n", rounds, (int)handler_runs,
	       now_s() - t0);
	return 0;
}
