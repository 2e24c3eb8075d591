/* SPDX-License-Identifier: MIT */
/* Process life: the stack serves bridged descriptors wherever they are, so it must
 * outlive a process that exits or execs while connections are still open or still
 * have data to deliver. Then it goes on in a detached continuation (forked at that
 * moment) until the last bridged connection has ended. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "shim.h"

int shim_detaching;

/* In the continuation: keep nothing of the application's open (a pipe's write end
 * kept here would make a shell wait for us), leave its session (process group). */
static void continuation_setup(void)
{
	unsigned lo = 0;

	for (unsigned fd = 0; fd < (1u << 20); fd++) {
		if (shim_fd_kind((int)fd) != SFD_INTERNAL)
			continue;
		if (fd > lo)
			real.close_range(lo, fd - 1, 0);
		lo = fd + 1;
		if (fd >= (unsigned)shim_fd_max())
			break;
	}
	real.close_range(lo, ~0u, 0);
	setsid();
	/* A log descriptor that is a copy of the application's stderr goes: whoever reads
	 * that (a pipe) must not wait for us. A log file (TUNSHIM_LOG_FILE) stays. */
	if (!shim_log_is_file) {
		ts_log_set(-1, TS_LOG_ERROR);
		if (shim_log_fd >= 0)
			real.close(shim_log_fd);
		shim_log_fd = -1;
	}
}

/* Called on the way out (exit, _exit, exec): hands the stack to a continuation if it
 * still has work. Only the process that runs the stack does anything; a vfork child
 * (sharing our memory until exec) and forked children do nothing. */
bool shim_leave(const char *why)
{
	struct ts_stack *st = shim_tunnel_if_running();
	pid_t pid;

	if (!st || !ts_stack_busy(st))
		return false;
	shim_detaching = 1;
	pid = ts_stack_detach(st, continuation_setup);
	shim_detaching = 0;
	if (pid > 0)
		ts_dbg("%s: the tunnel continues in pid %d until its connections end", why, (int)pid);
	else
		ts_err("%s: cannot detach the tunnel: %s", why, strerror(errno));
	return true;
}

__attribute__((destructor)) static void shim_unload(void)
{
	if (shim_mode == SHIM_ON)
		shim_leave("exit");
}

SHIM_EXPORT void _exit(int status)
{
	if (shim_enter() && shim_mode == SHIM_ON)
		shim_leave("_exit");
	real._exit(status);
	__builtin_unreachable();
}

SHIM_EXPORT void _Exit(int status)
{
	_exit(status);
	__builtin_unreachable();
}

static bool before_exec(void)
{
	return shim_mode == SHIM_ON && shim_leave("exec");
}

/* The exec failed after the stack went to a continuation: this process keeps running
 * without it, like a forked child (its connections are served there). */
static int after_exec(bool detached, int rc)
{
	int err = errno;

	if (detached)
		shim_tunnel_abandon();
	errno = err;
	return rc;
}

/* Each exec entry point: hand the stack over if busy, exec, and carry on without it
 * if the exec failed. */
#define EXEC_ENTRY(name, params, args)					\
SHIM_EXPORT int name params						\
{									\
	bool d = shim_enter() && before_exec();				\
									\
	return after_exec(d, real.name args);				\
}

EXEC_ENTRY(execve, (const char *path, char *const argv[], char *const envp[]),
	   (path, argv, envp))
EXEC_ENTRY(execv, (const char *path, char *const argv[]), (path, argv))
EXEC_ENTRY(execvp, (const char *file, char *const argv[]), (file, argv))
EXEC_ENTRY(execvpe, (const char *file, char *const argv[], char *const envp[]),
	   (file, argv, envp))
EXEC_ENTRY(fexecve, (int fd, char *const argv[], char *const envp[]), (fd, argv, envp))

/* execl and friends: collect the arguments, then the v-variants above. */
static char **collect(const char *arg0, va_list ap, char *const **envp)
{
	va_list cp;
	size_t n = 1;
	char **argv;

	va_copy(cp, ap);
	while (va_arg(cp, char *))
		n++;
	va_end(cp);
	argv = malloc((n + 1) * sizeof(*argv));
	if (!argv)
		return NULL;
	argv[0] = (char *)arg0;
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *); /* the last one read is the terminating NULL */
	if (envp)
		*envp = va_arg(ap, char *const *);
	return argv;
}

enum exec_kind { EXEC_V, EXEC_VP, EXEC_VE };

static int exec_list(enum exec_kind kind, const char *path, const char *arg0, va_list ap)
{
	char *const *envp = NULL;
	char **argv = collect(arg0, ap, kind == EXEC_VE ? &envp : NULL);
	int rc;

	if (!argv)
		return errno = ENOMEM, -1;
	if (kind == EXEC_V)
		rc = execv(path, argv);
	else if (kind == EXEC_VP)
		rc = execvp(path, argv);
	else
		rc = execve(path, argv, envp);
	free(argv);
	return rc;
}

SHIM_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = exec_list(EXEC_V, path, arg, ap);
	va_end(ap);
	return rc;
}

SHIM_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = exec_list(EXEC_VP, file, arg, ap);
	va_end(ap);
	return rc;
}

SHIM_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = exec_list(EXEC_VE, path, arg, ap);
	va_end(ap);
	return rc;
}
