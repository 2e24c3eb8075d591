/* SPDX-License-Identifier: MIT */
/*
 * sh_fork_start: a fork while another thread is inside the first tunnel connect (the
 * stack starting: its Endpoint hostname being resolved, slowly).
 *
 *   sh_fork_start HOST PORT DELAY_MS
 *
 * A thread connects to HOST PORT (a line echo server in the tunnel), which starts the
 * tunnel; DELAY_MS later the main thread forks. The child connects to HOST PORT
 * itself and echoes a line, or says which error it got; it must end either way (the
 * parent waits 20 s for it, then kills it and fails). The parent's connect must
 * complete and echo a line. The fork must have come while the first connect was still
 * inside the library, or the run proves nothing (exit 3). Prints "child: OK" or
 * "child: ERROR <errno text>", then "parent: OK" and the seconds the first connect
 * took; exits 1 if the child hung or the parent's connect failed.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include "sh_util.h"

static const char *host, *port;
static int connect_done, connect_err;
static double connect_s;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *first_connect(void *arg)
{
	struct sockaddr_storage ss;
	socklen_t len = sh_addr(host, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	double t0 = now_s();

	(void)arg;
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
		__atomic_store_n(&connect_err, errno, __ATOMIC_RELAXED);
	connect_s = now_s() - t0;
	__atomic_store_n(&connect_done, 1, __ATOMIC_RELEASE);
	return (void *)(long)fd;
}

/* The child: the tunnel, or a clear error; never a hang. */
static void child(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sh_addr(host, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		printf("child: ERROR %s\n", strerror(errno));
		fflush(stdout);
		_exit(2);
	}
	sh_echo_line(fd, "from the child forked during the start");
	printf("child: OK\n");
	fflush(stdout);
	_exit(0);
}

/* The child's status, waiting at most limit_s; -1 if it is still running. */
static int wait_child(pid_t pid, double limit_s)
{
	double until = now_s() + limit_s;
	int st;

	while (now_s() < until) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(20000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	pthread_t th;
	void *ret;
	pid_t pid;
	int st, err;

	sh_prog = "sh_fork_start";
	if (argc != 4)
		sh_die("usage: sh_fork_start HOST PORT DELAY_MS");
	host = argv[1];
	port = argv[2];
	if ((err = pthread_create(&th, NULL, first_connect, NULL)))
		sh_die("pthread_create: %s", strerror(err));
	usleep((useconds_t)atoi(argv[3]) * 1000);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		sh_die("fork: %s", strerror(errno));
	if (pid == 0)
		child();
	if (__atomic_load_n(&connect_done, __ATOMIC_ACQUIRE)) {
		fprintf(stderr, "sh_fork_start: the first connect was over before the fork\n");
		return 3;
	}
	st = wait_child(pid, 20);
	if (st < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		sh_die("the child hung (killed after 20 s)");
	}
	pthread_join(th, &ret);
	if (connect_err)
		sh_die("the parent's connect: %s", strerror(connect_err));
	sh_echo_line((int)(long)ret, "from the parent");
	printf("parent: OK first connect %.2f s, child exit %d\n", connect_s, st);
	return st == 0 || st == 2 ? 0 : 1;
}
