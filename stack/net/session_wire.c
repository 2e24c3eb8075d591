/* SPDX-License-Identifier: MIT */
/* Sending and receiving one protocol message (wire.h), with a descriptor beside it. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include "sys.h"
#include "session_wire.h"

int ts_wire_send(int sock, const struct ts_wire *w, int fd, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec v = { (void *)w, sizeof(*w) };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = ts_sys()->sendmsg(sock, &m, flags | MSG_NOSIGNAL);

		if (n == (ssize_t)sizeof(*w))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EPROTO;
	}
}

/* Every descriptor that came with the message: the first is kept, the rest closed (a
 * well-behaved peer sends at most one). */
static int take_fds(struct msghdr *m)
{
	int keep = -1;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (keep < 0)
				keep = fd;
			else
				ts_sys()->release(fd);
		}
	}
	return keep;
}

int ts_wire_recv(int sock, struct ts_wire *w, int *fd_out, int flags)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec v = { w, sizeof(*w) };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;

	*fd_out = -1;
	do
		n = ts_sys()->recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*fd_out = take_fds(&m);
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*w) || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (*fd_out >= 0)
			ts_sys()->release(*fd_out);
		*fd_out = -1;
		return -EPROTO;
	}
	return 1;
}
