/* SPDX-License-Identifier: MIT */
/* libc's own functions, resolved once with dlsym(RTLD_NEXT). */
#include <dlfcn.h>
#include "shim.h"

struct shim_real real;

#define RESOLVE(name) real.name = (__typeof__(real.name))dlsym(RTLD_NEXT, #name)

void shim_real_init(void)
{
	if (real.close)
		return;
	RESOLVE(socket);
	RESOLVE(socketpair);
	RESOLVE(connect);
	RESOLVE(bind);
	RESOLVE(close_range);
	RESOLVE(closefrom);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(fcntl);
	RESOLVE(getsockname);
	RESOLVE(getpeername);
	RESOLVE(getsockopt);
	RESOLVE(setsockopt);
	RESOLVE(epoll_ctl);
	RESOLVE(shutdown);
	RESOLVE(read);
	RESOLVE(recv);
	RESOLVE(send);
	RESOLVE(sendto);
	RESOLVE(sendmsg);
	RESOLVE(recvfrom);
	RESOLVE(recvmsg);
	RESOLVE(recvmmsg);
	RESOLVE(sendmmsg);
	RESOLVE(readv);
	RESOLVE(write);
	RESOLVE(writev);
	RESOLVE(ioctl);
	RESOLVE(fork);
	RESOLVE(listen);
	RESOLVE(accept);
	RESOLVE(accept4);
	RESOLVE(_exit);
	RESOLVE(execve);
	RESOLVE(execv);
	RESOLVE(execvp);
	RESOLVE(execvpe);
	RESOLVE(fexecve);
	/* Last: its presence tells the other entry points the table is complete. */
	__atomic_store_n(&real.close, (__typeof__(real.close))dlsym(RTLD_NEXT, "close"),
			 __ATOMIC_RELEASE);
}
