/* SPDX-License-Identifier: MIT */
/* The stack's OS boundary (sys.h), filled with libc's real functions, so that the
 * stack, on its own thread, in a detached continuation or on an application thread
 * that calls into it, never enters one of our interposers. Its descriptors go
 * through the fd table: adopted ones move up and out of the application's sight,
 * released ones leave the table as they are closed. Set once, in the constructor,
 * before anything logs. */
#include <netdb.h>
#include "dns/lookup.h"
#include "shim.h"
#include "sys.h"

/* libc's resolver may load NSS modules that call socket() or connect() themselves;
 * those calls are the host resolver's, not the application's, so they pass through
 * (under a full tunnel they would otherwise be routed into the tunnel, or wait for
 * the stack that is being started). */
static int host_getaddrinfo(const char *node, const char *service,
			    const struct addrinfo *hints, struct addrinfo **res)
{
	int rc;

	shim_internal++;
	rc = dns_libc.getaddrinfo(node, service, hints, res);
	shim_internal--;
	return rc;
}

static struct ts_sys sys;

void shim_stack_sys_init(void)
{
	shim_real_init();
	dns_libc_init();
	sys = (struct ts_sys){
		.adopt = shim_adopt_fd,
		.release = shim_release_fd,
		.read = real.read,
		.write = real.write,
		.writev = real.writev,
		.recv = real.recv,
		.recvfrom = real.recvfrom,
		.recvmmsg = real.recvmmsg,
		.sendmmsg = real.sendmmsg,
		.send = real.send,
		.sendto = real.sendto,
		.sendmsg = real.sendmsg,
		.recvmsg = real.recvmsg,
		.socket = real.socket,
		.socketpair = real.socketpair,
		.bind = real.bind,
		.connect = real.connect,
		.getsockname = real.getsockname,
		.getsockopt = real.getsockopt,
		.listen = real.listen,
		.accept4 = real.accept4,
		.setsockopt = real.setsockopt,
		.shutdown = real.shutdown,
		.fcntl = real.fcntl,
		.epoll_ctl = real.epoll_ctl,
		.getaddrinfo = host_getaddrinfo,
		.freeaddrinfo = freeaddrinfo,
		.fork = real.fork,
		._exit = real._exit,
	};
	ts_sys_set(&sys);
}

const struct ts_sys *shim_stack_sys(void)
{
	return &sys;
}
