/* SPDX-License-Identifier: MIT */
/* The error queue (IP_RECVERR, IPV6_RECVERR; read with MSG_ERRQUEUE) of sockets whose
 * errors the kernel never sees: ICMP errors that came through the tunnel, and the local
 * EMSGSIZE of a send larger than the tunnel MTU where fragmenting is forbidden. The
 * queue belongs to the socket, not to a descriptor number: entries are keyed by the
 * socket's inode, so dup'ed descriptors share it, as they share the kernel's. It is
 * bounded like the kernel's (which its receive buffer bounds): beyond QUEUE_MAX
 * entries, across all sockets, the oldest are dropped. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include "shim.h"
#include "sockaddr.h"

#define QUEUE_MAX 64

struct entry {
	struct entry *next;
	dev_t dev;
	ino_t ino;
	struct shim_err err;
	size_t len;
	uint8_t data[]; /* the quoted payload */
};

/* A FIFO of every socket's entries; the lock is taken with signals blocked, as the
 * shim's other locks are ("Signals" in shim.h). */
static struct entry *head, **tail = &head;
static int count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void q_lock(void)
{
	shim_sig_block();
	pthread_mutex_lock(&lock);
}

static void q_unlock(void)
{
	pthread_mutex_unlock(&lock);
	shim_sig_unblock();
}

void shim_errq_after_fork(void)
{
	pthread_mutex_init(&lock, NULL);
}

static int key_of(int fd, dev_t *dev, ino_t *ino)
{
	struct stat s;

	if (fstat(fd, &s) < 0)
		return -1;
	*dev = s.st_dev;
	*ino = s.st_ino;
	return 0;
}

int shim_errq_push(int fd, const struct shim_err *err, const void *data, size_t len)
{
	struct entry *e, *old;
	dev_t dev;
	ino_t ino;

	if (len > 65536 || key_of(fd, &dev, &ino) < 0 || !(e = malloc(sizeof(*e) + len)))
		return -1;
	e->next = NULL;
	e->dev = dev;
	e->ino = ino;
	e->err = *err;
	e->len = len;
	if (len)
		memcpy(e->data, data, len);
	q_lock();
	*tail = e;
	tail = &e->next;
	old = ++count > QUEUE_MAX ? head : NULL;
	if (old) {
		head = old->next;
		if (!head)
			tail = &head;
		count--;
	}
	q_unlock();
	free(old);
	return 0;
}

/* The socket's oldest entry, unlinked unless peek; NULL when its queue is empty. */
static struct entry *take(dev_t dev, ino_t ino, bool peek)
{
	struct entry **pp, *e;

	for (pp = &head; (e = *pp); pp = &e->next)
		if (e->dev == dev && e->ino == ino)
			break;
	if (!e || peek)
		return e;
	*pp = e->next;
	if (tail == &e->next)
		tail = pp;
	count--;
	return e;
}

bool shim_errq_pending(int fd)
{
	dev_t dev;
	ino_t ino;
	bool any;

	if (key_of(fd, &dev, &ino) < 0)
		return false;
	q_lock();
	any = take(dev, ino, true) != NULL;
	q_unlock();
	return any;
}

/* Appends a control message; MSG_CTRUNC when it does not fit, as the kernel's put_cmsg. */
static void put_cmsg(struct msghdr *m, size_t cap, int level, int type, const void *data,
		     size_t len)
{
	struct cmsghdr *cm;
	size_t used = m->msg_controllen;

	if (!m->msg_control || used + CMSG_LEN(len) > cap) {
		m->msg_flags |= MSG_CTRUNC;
		return;
	}
	cm = (struct cmsghdr *)((uint8_t *)m->msg_control + used);
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	cm->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(cm), data, len);
	used += CMSG_SPACE(len);
	m->msg_controllen = used < cap ? used : cap;
}

/* What ip_recv_error and ipv6_recv_error return: the quoted payload, the destination
 * of what failed as the name, the TTL the error arrived with (if the socket asked for
 * it, and the error came from the network), then the extended error with its offender
 * in the socket's family. */
static ssize_t deliver(const struct entry *e, int domain, struct msghdr *m, int flags,
		       int (*ttl_cmsg)(int fd, int family), int fd)
{
	const struct shim_err *err = &e->err;
	size_t cap = m->msg_control ? m->msg_controllen : 0, got = 0;
	uint8_t buf[sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6)];
	struct sockaddr_storage name = err->name, off = err->offender;
	size_t olen = domain == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int type;

	for (size_t i = 0; i < m->msg_iovlen && got < e->len; i++) {
		size_t k = e->len - got < m->msg_iov[i].iov_len ? e->len - got :
								   m->msg_iov[i].iov_len;

		memcpy(m->msg_iov[i].iov_base, e->data + got, k);
		got += k;
	}
	m->msg_flags = MSG_ERRQUEUE | (got < e->len ? MSG_TRUNC : 0);
	m->msg_controllen = 0;
	if (m->msg_name) {
		shim_map_to_domain(&name, domain);
		memcpy(m->msg_name, &name, m->msg_namelen < ts_sa_len(&name) ? m->msg_namelen :
									 ts_sa_len(&name));
		m->msg_namelen = ts_sa_len(&name);
	}
	if (err->ttl >= 0 && ttl_cmsg && (type = ttl_cmsg(fd, err->name.ss_family))) {
		int ttl = err->ttl;

		put_cmsg(m, cap, err->name.ss_family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6, type,
			 &ttl, sizeof(ttl));
	}
	if (off.ss_family)
		shim_map_to_domain(&off, domain);
	memcpy(buf, &err->ee, sizeof(err->ee));
	memset(buf + sizeof(err->ee), 0, olen);
	if (off.ss_family)
		memcpy(buf + sizeof(err->ee), &off, olen);
	if (domain == AF_INET6)
		put_cmsg(m, cap, IPPROTO_IPV6, IPV6_RECVERR, buf, sizeof(err->ee) + olen);
	else
		put_cmsg(m, cap, IPPROTO_IP, IP_RECVERR, buf, sizeof(err->ee) + olen);
	return (flags & MSG_TRUNC) ? (ssize_t)e->len : (ssize_t)got;
}

ssize_t shim_errq_recv(int fd, int domain, struct msghdr *m, int flags,
		       int (*ttl_cmsg)(int fd, int family))
{
	struct entry *e;
	dev_t dev;
	ino_t ino;
	ssize_t n;

	if (key_of(fd, &dev, &ino) < 0)
		return -1;
	q_lock();
	e = take(dev, ino, flags & MSG_PEEK);
	n = e ? deliver(e, domain, m, flags, ttl_cmsg, fd) : (errno = EAGAIN, -1);
	q_unlock();
	if (!(flags & MSG_PEEK))
		free(e);
	return n;
}
