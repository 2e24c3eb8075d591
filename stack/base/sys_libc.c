/* SPDX-License-Identifier: MIT */
/* The default OS boundary (sys.h): libc itself, for programs that link the stack
 * directly (the unit tests, ts_fetch and the other tools). Never linked into
 * libtunshim.so: there these names are the shim's interposers (the Makefile leaves
 * this file out of the library; tests/check-layers.sh would catch it). Descriptors
 * need no bookkeeping here: adopt keeps the number, release is close. */
#include <netdb.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "sys.h"

static int keep_fd(int fd)
{
	return fd;
}

const struct ts_sys ts_sys_libc = {
	.adopt = keep_fd,
	.release = close,
	.read = read,
	.write = write,
	.writev = writev,
	.recv = recv,
	.recvfrom = recvfrom,
	.recvmmsg = recvmmsg,
	.sendmmsg = sendmmsg,
	.send = send,
	.sendto = sendto,
	.sendmsg = sendmsg,
	.recvmsg = recvmsg,
	.socket = socket,
	.socketpair = socketpair,
	.bind = bind,
	.connect = connect,
	.getsockname = getsockname,
	.getsockopt = getsockopt,
	.listen = listen,
	.accept4 = accept4,
	.setsockopt = setsockopt,
	.shutdown = shutdown,
	.fcntl = fcntl,
	.epoll_ctl = epoll_ctl,
	.getaddrinfo = getaddrinfo,
	.freeaddrinfo = freeaddrinfo,
	.fork = fork,
	._exit = _exit,
};
