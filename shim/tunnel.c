/* SPDX-License-Identifier: MIT */
/* The stack, started by the first operation that needs the tunnel (never in a
 * constructor: allocators and runtimes deadlock when a preload starts threads that
 * early). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "log.h"
#include "shim.h"

/* stack is read without the lock (atomic loads) and written under start_lock (atomic
 * stores), stack_pid before it; start_errno is start_lock's. A forked child changes
 * them alone (atfork). */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ts_stack *stack;
static pid_t stack_pid;
static int start_errno;

/* Each tunnelled connection costs this process a descriptor of its own, and Debian's
 * soft limit is 1024. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > (1 << 20) ? (1 << 20) : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct ts_stack *start(void)
{
	struct ts_stack_options opt = { .sys = shim_stack_sys(),
					.acquire = shim_keylock_acquire };
	const char *scale = getenv("TUNSHIM_TIMER_SCALE");
	char err[512];
	struct ts_stack *st;

	if (scale)
		opt.timer_scale = strtod(scale, NULL);
	raise_nofile();
	if (ts_stack_start(&shim_cfg, &opt, &st, err, sizeof(err)) < 0) {
		ts_err("%s: the tunnel cannot start: %s", shim_cfg.path ? shim_cfg.path : "config",
		       err);
		start_errno = ENETUNREACH;
		return NULL;
	}
	ts_info("tunnel started (%zu peer%s)", shim_cfg.n_peers, shim_cfg.n_peers == 1 ? "" : "s");
	return st;
}

struct ts_stack *shim_tunnel(void)
{
	struct ts_stack *st = __atomic_load_n(&stack, __ATOMIC_ACQUIRE);
	int err;

	if (st && stack_pid == getpid())
		return st;
	pthread_mutex_lock(&start_lock);
	if (!stack && !start_errno) {
		st = start();
		stack_pid = getpid();
		__atomic_store_n(&stack, st, __ATOMIC_RELEASE);
	}
	st = stack_pid == getpid() ? stack : NULL;
	err = start_errno ? start_errno : EHOSTUNREACH;
	pthread_mutex_unlock(&start_lock);
	if (!st)
		errno = err;
	return st;
}

/* A forked child has no stack thread: it must not touch the parent's stack, and must
 * close the stack-side descriptors it inherited at once, or the application ends of
 * the parent's connections would never see EOF. Its inherited tunnel connections
 * keep working: the parent's stack serves them. */
struct ts_stack *shim_tunnel_if_running(void)
{
	struct ts_stack *st = __atomic_load_n(&stack, __ATOMIC_ACQUIRE);

	return st && stack_pid == getpid() ? st : NULL;
}

static void after_fork_child(void)
{
	/* The continuation keeps the stack's descriptors: it is the stack now. */
	if (!stack || shim_detaching)
		return;
	shim_fd_close_internal();
	stack = NULL;
	start_errno = EHOSTUNREACH;
	ts_dbg("forked child: the tunnel stays with the parent (pid %d)", (int)getppid());
}

void shim_tunnel_init(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

/* After a failed exec that had handed the stack to a continuation. */
void shim_tunnel_abandon(void)
{
	pthread_mutex_lock(&start_lock);
	__atomic_store_n(&stack, NULL, __ATOMIC_RELEASE);
	start_errno = EHOSTUNREACH;
	pthread_mutex_unlock(&start_lock);
	ts_warn("exec failed after the tunnel moved to a continuation: new tunnel "
		"connections from this process fail");
}
