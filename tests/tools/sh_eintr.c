/* SPDX-License-Identifier: MIT */
/*
 * sh_eintr: signals during blocking calls, and SIGPIPE, as a program sees them. The
 * same run through the kernel's stack and through the library must print the same
 * lines: the kernel's answers are the expected ones.
 *
 *   sh_eintr HOST PORT SILENT
 *
 * HOST PORT is a TCP line echo server that resets the connection when it reads
 * exactly "RESET\n" (tests/shim/servers.py); SILENT is an address (same family) on
 * the path that never answers. SIGALRM comes from a one-shot timer 200 ms into each
 * blocking call; its handler is installed without SA_RESTART (no-restart) or with it
 * (restart). Steps, one line each ("STEP: RESULT"):
 *   recv no-restart        a blocking recv with nothing to read
 *   recv restart           the same; a thread sends a line at 400 ms: the recv gets it
 *   accept no-restart      a blocking accept on a wildcard listener
 *   connect no-restart     a blocking connect to SILENT
 *   connect again nonblock after that, the same connect on the socket made non-blocking
 *   connect again blocking and blocking again
 *   send after reset       the server reset the connection (nothing read since)
 *   send again             once more
 *   send MSG_NOSIGNAL      and with MSG_NOSIGNAL
 *   recv after reset       a second connection, reset, read first
 *   send after read reset  then a send
 * A RESULT is the return value or "-1 ERRNO-NAME", with "SIGPIPE" when one came.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/time.h>
#include "sh_util.h"

static volatile sig_atomic_t alarms, pipes;
static struct sockaddr_storage echo_addr, silent_addr;
static socklen_t echo_len, silent_len;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void on_pipe(int sig)
{
	(void)sig;
	pipes++;
}

static void handle(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa = { .sa_handler = fn, .sa_flags = flags };

	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0)
		sh_die("sigaction: %s", strerror(errno));
}

static void alarm_in_ms(int ms)
{
	struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };

	setitimer(ITIMER_REAL, &it, NULL);
}

static const char *errno_name(int e)
{
	switch (e) {
	case EINTR: return "EINTR";
	case EALREADY: return "EALREADY";
	case EINPROGRESS: return "EINPROGRESS";
	case EISCONN: return "EISCONN";
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EAGAIN: return "EAGAIN";
	case ENOTCONN: return "ENOTCONN";
	default: return strerror(e);
	}
}

/* Prints STEP: RESULT, and whether SIGPIPE came since the last report. */
static void report(const char *step, long rc, int err)
{
	int p = pipes;

	pipes = 0;
	if (rc < 0)
		printf("%s: -1 %s%s\n", step, errno_name(err), p ? " SIGPIPE" : "");
	else
		printf("%s: %ld%s\n", step, rc, p ? " SIGPIPE" : "");
	fflush(stdout);
}

static int tcp_socket(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		sh_die("socket: %s", strerror(errno));
	return fd;
}

static int echo_connect(void)
{
	int fd = tcp_socket(echo_addr.ss_family);

	if (connect(fd, (struct sockaddr *)&echo_addr, echo_len) < 0)
		sh_die("connect to the echo server: %s", strerror(errno));
	return fd;
}

static void *late_send(void *arg)
{
	usleep(400000);
	sh_write_all(*(int *)arg, "late\n", 5);
	return NULL;
}

static void recv_steps(void)
{
	char buf[64];
	pthread_t th;
	ssize_t n;
	int fd = echo_connect();

	handle(SIGALRM, on_alarm, 0);
	alarm_in_ms(200);
	n = recv(fd, buf, sizeof(buf), 0);
	report("recv no-restart", n, errno);
	handle(SIGALRM, on_alarm, SA_RESTART);
	alarm_in_ms(200);
	pthread_create(&th, NULL, late_send, &fd);
	n = recv(fd, buf, sizeof(buf), 0);
	report("recv restart", n, errno);
	pthread_join(th, NULL);
	close(fd);
}

static void accept_step(void)
{
	struct sockaddr_storage any = { .ss_family = echo_addr.ss_family };
	int fd = tcp_socket(echo_addr.ss_family), n;

	if (bind(fd, (struct sockaddr *)&any, echo_len) < 0 || listen(fd, 4) < 0)
		sh_die("listen: %s", strerror(errno));
	handle(SIGALRM, on_alarm, 0);
	alarm_in_ms(200);
	n = accept(fd, NULL, NULL);
	report("accept no-restart", n, errno);
	close(fd);
}

static void connect_steps(void)
{
	int fd = tcp_socket(silent_addr.ss_family), rc;

	handle(SIGALRM, on_alarm, 0);
	alarm_in_ms(200);
	rc = connect(fd, (struct sockaddr *)&silent_addr, silent_len);
	report("connect no-restart", rc, errno);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	rc = connect(fd, (struct sockaddr *)&silent_addr, silent_len);
	report("connect again nonblock", rc, errno);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	alarm_in_ms(200);
	rc = connect(fd, (struct sockaddr *)&silent_addr, silent_len);
	report("connect again blocking", rc, errno);
	close(fd);
}

/* The server resets the connection; true once the reset has arrived (readable). */
static void reset_by_server(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	sh_echo_line(fd, "before the reset");
	sh_write_all(fd, "RESET\n", 6);
	if (poll(&p, 1, 5000) != 1)
		sh_die("no reset within 5 s");
	usleep(100000); /* the whole of it: the RST, not only the first sign */
}

static void pipe_steps(void)
{
	char buf[64];
	ssize_t n;
	int fd = echo_connect();

	handle(SIGPIPE, on_pipe, 0);
	reset_by_server(fd);
	n = send(fd, "x", 1, 0);
	report("send after reset", n, errno);
	n = send(fd, "x", 1, 0);
	report("send again", n, errno);
	n = send(fd, "x", 1, MSG_NOSIGNAL);
	report("send MSG_NOSIGNAL", n, errno);
	close(fd);
	fd = echo_connect();
	reset_by_server(fd);
	n = recv(fd, buf, sizeof(buf), 0);
	report("recv after reset", n, errno);
	n = send(fd, "x", 1, 0);
	report("send after read reset", n, errno);
	close(fd);
}

int main(int argc, char **argv)
{
	sh_prog = "sh_eintr";
	if (argc != 4)
		sh_die("usage: sh_eintr HOST PORT SILENT");
	echo_len = sh_addr(argv[1], argv[2], &echo_addr);
	silent_len = sh_addr(argv[3], argv[2], &silent_addr);
	recv_steps();
	accept_step();
	connect_steps();
	pipe_steps();
	printf("alarms: %d\n", (int)alarms);
	return 0;
}
