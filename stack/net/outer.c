/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include "log.h"
#include "outer.h"
#include "sys.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* The kernel's limits for one GSO send: the UDP length field, and the segment count
 * older kernels accept (UDP_MAX_SEGMENTS was 64 before 6.1). */
#define GSO_MAX_BYTES 65000
#define GSO_MAX_SEGS 64

int ts_txbatch_init(struct ts_txbatch *t, size_t slot, int fd)
{
	int size = 0;
	socklen_t sl = sizeof(size);

	memset(t, 0, sizeof(*t));
	t->slot = slot;
	t->buf = malloc(slot * TX_BATCH);
	if (!t->buf)
		return -1;
	/* The option exists where the kernel can segment for us (Linux 4.18). */
	t->gso = ts_sys()->getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &sl) == 0;
	return 0;
}

void ts_txbatch_free(struct ts_txbatch *t)
{
	free(t->buf);
	t->buf = NULL;
	t->n = 0;
}

union gso_ctl {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/* One message per packet, or with GSO one per run of packets of one size (the last of
 * a run may be shorter: the kernel's rule for the final segment). */
static unsigned build_msgs(struct ts_txbatch *t, unsigned from, struct mmsghdr *m,
			   struct iovec *iov, union gso_ctl *ctl)
{
	unsigned nm = 0;

	for (unsigned i = from, j; i < t->n; i = j) {
		size_t total = t->len[i];

		iov[i] = (struct iovec){ t->buf + (size_t)i * t->slot, t->len[i] };
		for (j = i + 1; t->gso && j < t->n && j - i < GSO_MAX_SEGS; j++) {
			if (t->len[j] > t->len[i] || total + t->len[j] > GSO_MAX_BYTES)
				break;
			iov[j] = (struct iovec){ t->buf + (size_t)j * t->slot, t->len[j] };
			total += t->len[j];
			if (t->len[j] < t->len[i]) {
				j++;
				break;
			}
		}
		m[nm] = (struct mmsghdr){ .msg_hdr = { .msg_name = &t->dst, .msg_namelen = t->dstlen,
						      .msg_iov = &iov[i], .msg_iovlen = j - i } };
		if (j - i > 1) {
			struct cmsghdr *c = (struct cmsghdr *)ctl[nm].buf;
			uint16_t seg = t->len[i];

			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
			m[nm].msg_hdr.msg_control = ctl[nm].buf;
			m[nm].msg_hdr.msg_controllen = sizeof(ctl[nm].buf);
		}
		nm++;
	}
	return nm;
}

static bool gso_refused(int err)
{
	return err == EINVAL || err == EIO || err == ENOPROTOOPT || err == EOPNOTSUPP;
}

/* Returns the packet to go on from when GSO was refused (the batch is rebuilt without
 * it from there), else t->n. */
static unsigned send_msgs(struct ts_txbatch *t, int fd, struct mmsghdr *m, unsigned nm,
			  const struct iovec *iov)
{
	for (unsigned i = 0; i < nm;) {
		int r = ts_sys()->sendmmsg(fd, m + i, nm - i, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r > 0) {
			i += (unsigned)r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == ENOBUFS)
			break; /* the socket is full: the rest is lost, as on a link */
		if (m[i].msg_hdr.msg_controllen && gso_refused(errno)) {
			/* Not here (an old kernel, a device or path that cannot take it):
			 * one datagram per packet from now on. */
			ts_dbg("outer socket: UDP GSO refused (%s); sending datagrams singly",
			       strerror(errno));
			t->gso = false;
			return (unsigned)(m[i].msg_hdr.msg_iov - iov);
		}
		i++; /* this datagram failed (an unreachable endpoint): the others go */
	}
	return t->n;
}

void ts_txbatch_flush(struct ts_txbatch *t, int fd)
{
	struct mmsghdr m[TX_BATCH];
	struct iovec iov[TX_BATCH];
	union gso_ctl ctl[TX_BATCH];
	unsigned nm, from;

	if (!t->n)
		return;
	nm = build_msgs(t, 0, m, iov, ctl);
	from = send_msgs(t, fd, m, nm, iov);
	if (from < t->n) {
		/* GSO refused: the rest goes singly. */
		nm = build_msgs(t, from, m, iov, ctl);
		send_msgs(t, fd, m, nm, iov);
	}
	t->n = 0;
}

void ts_txbatch_add(struct ts_txbatch *t, int fd, const struct sockaddr *dst, socklen_t dstlen,
		    const uint8_t *buf, size_t len)
{
	if (t->n && (dstlen != t->dstlen || memcmp(dst, &t->dst, dstlen) != 0))
		ts_txbatch_flush(t, fd);
	if (len > t->slot || len > UINT16_MAX || dstlen > sizeof(t->dst)) {
		ts_txbatch_flush(t, fd);
		ts_sys()->sendto(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, dst, dstlen);
		return;
	}
	if (t->n == TX_BATCH)
		ts_txbatch_flush(t, fd);
	memcpy(&t->dst, dst, dstlen);
	t->dstlen = dstlen;
	memcpy(t->buf + (size_t)t->n * t->slot, buf, len);
	t->len[t->n++] = (uint16_t)len;
}

bool ts_gro_enable(int fd)
{
	int on = 1;

	return ts_sys()->setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
}

size_t ts_gro_segment(const struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		int seg;

		if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO ||
		    c->cmsg_len < CMSG_LEN(sizeof(seg)))
			continue;
		memcpy(&seg, CMSG_DATA(c), sizeof(seg));
		return seg > 0 ? (size_t)seg : 0;
	}
	return 0;
}
