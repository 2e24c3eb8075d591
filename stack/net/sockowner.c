/* SPDX-License-Identifier: MIT */
/* Who owns the other end of a loopback TCP connection: the kernel's socket diagnostics
 * (NETLINK_SOCK_DIAG, what ss uses, open to every user) report the user of a socket
 * found by its exact four-tuple. A doorbell (doorbell.c) uses it to make sure the
 * listener that took it is this user's: another user who bound the port after the
 * wrapped server went away must not be rung for the tunnel's clients. It also tells
 * whether a listener of this user still listens at an address: a bind probe cannot,
 * since the connections a server closed first linger in TIME_WAIT on its port. */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sockaddr.h"
#include "stack_internal.h"
#include "sys.h"

#define TCP_LISTEN_STATE 10 /* the kernel's TCP_LISTEN */

struct diag_req {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 r;
};

static void diag_id(struct inet_diag_sockid *id, const struct sockaddr_storage *src,
		    const struct sockaddr_storage *dst)
{
	memset(id, 0, sizeof(*id));
	id->idiag_sport = ts_sa_port(src);
	id->idiag_dport = ts_sa_port(dst);
	memcpy(id->idiag_src, ts_sa_addr(src), src->ss_family == AF_INET ? 4 : 16);
	memcpy(id->idiag_dst, ts_sa_addr(dst), dst->ss_family == AF_INET ? 4 : 16);
	id->idiag_cookie[0] = id->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
}

/* The answer: one inet_diag_msg, or an error (ENOENT: no such socket). */
static int diag_answer(const uint8_t *buf, ssize_t n, uid_t *uid, int *state)
{
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;

	if (n < (ssize_t)sizeof(*h) || !NLMSG_OK(h, (size_t)n))
		return -EPROTO;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);

		return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? e->error : -EPROTO;
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return -EPROTO;
	*uid = ((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_uid;
	*state = ((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_state;
	return 0;
}

/* The kernel looks up a connected socket by the four-tuple, and then (as for an
 * arriving SYN) a listener by src alone. */
static int tcp_lookup(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		      uid_t *uid, int *state)
{
	const struct ts_sys *sys = ts_sys();
	struct diag_req req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.r = { .sdiag_family = (uint8_t)src->ss_family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = ~0u },
	};
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	uint8_t buf[1024];
	ssize_t n;
	int fd, rc;

	if (src->ss_family != dst->ss_family || !ts_sa_addr(src) || !ts_sa_addr(dst))
		return -EINVAL;
	diag_id(&req.r.id, src, dst);
	fd = sys->socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (sys->sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
		rc = -errno;
	else if ((n = sys->recv(fd, buf, sizeof(buf), 0)) < 0)
		rc = -errno;
	else
		rc = diag_answer(buf, n, uid, state);
	sys->release(fd);
	return rc;
}

int ts_tcp_owner(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		 uid_t *uid)
{
	int state;

	return tcp_lookup(src, dst, uid, &state);
}

int ts_tcp_listening(const struct sockaddr_storage *addr)
{
	struct sockaddr_storage none;
	uid_t uid;
	int state, rc;

	memset(&none, 0, sizeof(none));
	none.ss_family = addr->ss_family;
	rc = tcp_lookup(addr, &none, &uid, &state);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	return state == TCP_LISTEN_STATE && uid == geteuid();
}
