/* SPDX-License-Identifier: MIT */
/* The tunnel this process uses, found or started by the first operation that needs it
 * (never in a constructor: allocators and runtimes deadlock when a preload starts
 * threads that early). Processes of one user with one key share one session
 * (docs/process-model.md): the first runs the stack, the others attach to it, and so
 * do forked children, which never touch the stack they inherited a copy of. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "log.h"
#include "shim.h"

/* How long the stack thread polls for the next event before it sleeps, while events
 * come that quickly (stack.h), unless TUNSHIM_BUSY_POLL says: a request's answer
 * through wireguard-go and back takes 100-150 us on a loopback test bed. */
#define DEFAULT_BUSY_POLL_US 200
/* How long a session stays up after its last user, unless TUNSHIM_GRACE says. */
#define DEFAULT_GRACE_S 2.0

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ts_stack *stack;  /* written under start_lock, read without it */
static pid_t stack_pid;         /* the process stack belongs to (not a forked copy) */
static int start_errno;         /* under start_lock: why the tunnel cannot be had */

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

static double env_number(const char *name, double dflt, const char *unit)
{
	const char *v = getenv(name);
	char *end;
	double d;

	if (!v || !*v)
		return dflt;
	d = strtod(v, &end);
	if (*end || d < 0 || d > 86400) {
		ts_warn("%s=\"%s\" is not a number of %s; using %g", name, v, unit, dflt);
		return dflt;
	}
	return d;
}

static double env_seconds(const char *name, double dflt)
{
	return env_number(name, dflt, "seconds");
}

/* The config's warnings (a key file others can read, ...), at every log level as
 * wg-quick shows them: the default level (errors) would otherwise hide them. Once per
 * session, by the process that starts it, not by every process of a wrapped script. */
static void show_warnings(void)
{
	for (size_t i = 0; i < shim_cfg.n_warnings; i++)
		ts_err("%s", shim_cfg.warnings[i]);
}

static struct ts_stack *start(void)
{
	struct ts_stack_options opt = { .sys = shim_stack_sys(), .share = true,
					.grace_s = env_seconds("TUNSHIM_GRACE", DEFAULT_GRACE_S),
					.timer_scale = env_seconds("TUNSHIM_TIMER_SCALE", 0),
					.stats_ms = (unsigned)(env_seconds("TUNSHIM_STATS", 0) * 1000),
					.busy_poll_us = (unsigned)env_number("TUNSHIM_BUSY_POLL",
						DEFAULT_BUSY_POLL_US, "microseconds") };
	char err[512];
	struct ts_stack *st;

	raise_nofile();
	if (ts_stack_start(&shim_cfg, &opt, &st, err, sizeof(err)) < 0) {
		ts_err("%s: the tunnel cannot start: %s", shim_cfg.path ? shim_cfg.path : "config",
		       err);
		start_errno = ENETUNREACH;
		return NULL;
	}
	if (ts_stack_is_local(st)) {
		ts_info("tunnel started (%zu peer%s)", shim_cfg.n_peers,
			shim_cfg.n_peers == 1 ? "" : "s");
		show_warnings();
	} else
		ts_info("attached to the tunnel session of this key");
	return st;
}

struct ts_stack *shim_tunnel(void)
{
	struct ts_stack *st = __atomic_load_n(&stack, __ATOMIC_ACQUIRE);
	int err;

	if (st && stack_pid == getpid() && ts_stack_alive(st))
		return st;
	pthread_mutex_lock(&start_lock);
	/* The holder we were attached to was killed: find (or become) the next one. The
	 * old handle is left as it is, since another thread may still be inside a call
	 * on it (which fails with ECONNRESET); it is small, and this is rare. */
	if (stack && stack_pid == getpid() && !ts_stack_alive(stack))
		__atomic_store_n(&stack, NULL, __ATOMIC_RELEASE);
	if (!stack && !start_errno) {
		stack_pid = getpid();
		__atomic_store_n(&stack, start(), __ATOMIC_RELEASE);
	}
	st = stack;
	err = start_errno ? start_errno : EHOSTUNREACH;
	pthread_mutex_unlock(&start_lock);
	if (!st)
		errno = err;
	return st;
}

/* The stack this very process uses (runs, or is attached to), never starting one. */
struct ts_stack *shim_tunnel_if_running(void)
{
	struct ts_stack *st = __atomic_load_n(&stack, __ATOMIC_ACQUIRE);

	return st && stack_pid == getpid() ? st : NULL;
}

/* A forked child has no stack thread and no reader of its parent's session: it
 * closes the stack-side descriptors it inherited at once (or the application ends of
 * the parent's connections would never see EOF), keeps the connections it inherited
 * (the holder serves them), and attaches to the session when it needs the tunnel.
 * Another thread may have held start_lock (inside the first connect) or the relay's
 * lock at the fork: the child has only this one, so nobody would release them. */
static void after_fork_child(void)
{
	pthread_mutex_init(&start_lock, NULL);
	shim_udp_after_fork();
	shim_errq_after_fork();
	/* The continuation keeps the stack's descriptors: it is the stack now. */
	if (shim_detaching)
		return;
	shim_fd_close_internal();
	if (stack)
		ts_dbg("forked child: the tunnel stays with the parent (pid %d)", (int)getppid());
	stack = NULL;
	start_errno = 0;
}

void shim_tunnel_init(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

/* After a failed exec that had handed the stack to a continuation: this process goes
 * on as an attached one (its next tunnel connection attaches to the continuation). */
void shim_tunnel_abandon(void)
{
	pthread_mutex_lock(&start_lock);
	shim_fd_close_internal();
	__atomic_store_n(&stack, NULL, __ATOMIC_RELEASE);
	start_errno = 0;
	pthread_mutex_unlock(&start_lock);
}
