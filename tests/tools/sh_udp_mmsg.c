/* SPDX-License-Identifier: MIT */
/*
 * sh_udp_mmsg: sendmmsg and recvmmsg on one unconnected UDP socket, to several UDP echo
 * servers at once (through the tunnel and on loopback, in one batch).
 *
 *   sh_udp_mmsg ADDR PORT [ADDR PORT ...]
 *
 * The socket's family is the first ADDR's (give v4-mapped addresses to mix IPv4 into an
 * IPv6 socket). One sendmmsg call sends three datagrams (8, 300 and 1200 bytes, each
 * different) to every destination; recvmmsg then collects the echoes. Each echo must be
 * one of the datagrams sent, byte for byte, come from the address it was sent to, and
 * arrive once. Prints "OK sent N received N"; exits 1 at the first mismatch or after 10 s
 * without all of them.
 */
#include <stdbool.h>
#include <time.h>
#include "sh_util.h"

#define MAX_DEST 4
#define PER_DEST 3
#define MAX_MSG (MAX_DEST * PER_DEST)
#define MAX_LEN 1200

static const size_t sizes[PER_DEST] = { 8, 300, 1200 };

struct dgram {
	struct sockaddr_storage to;
	socklen_t tolen;
	char data[MAX_LEN];
	size_t len;
	int seen;
};

static struct dgram sent[MAX_MSG];
static int nsent;

static void make(struct dgram *d, int i, size_t len)
{
	snprintf(d->data, sizeof(d->data), "m%02d:", i);
	for (size_t j = 4; j < len; j++)
		d->data[j] = (char)('a' + (i * 7 + j) % 26);
	d->len = len;
}

static void send_all(int fd)
{
	struct mmsghdr mm[MAX_MSG];
	struct iovec iov[MAX_MSG];
	int n;

	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < nsent; i++) {
		iov[i].iov_base = sent[i].data;
		iov[i].iov_len = sent[i].len;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &sent[i].to;
		mm[i].msg_hdr.msg_namelen = sent[i].tolen;
	}
	n = sendmmsg(fd, mm, (unsigned)nsent, 0);
	if (n < 0)
		sh_die("sendmmsg: %s", strerror(errno));
	if (n != nsent)
		sh_die("sendmmsg: sent %d of %d datagrams", n, nsent);
	for (int i = 0; i < nsent; i++)
		if (mm[i].msg_len != sent[i].len)
			sh_die("sendmmsg: datagram %d: msg_len %u, expected %zu", i, mm[i].msg_len,
			       sent[i].len);
}

static bool same_addr(const struct sockaddr_storage *a, socklen_t alen,
		      const struct sockaddr_storage *b, socklen_t blen)
{
	if (a->ss_family != b->ss_family || alen != blen)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
}

static void match(const char *data, size_t len, const struct sockaddr_storage *from,
		  socklen_t fromlen)
{
	char a[96], b[96];
	int i;

	for (i = 0; i < nsent; i++)
		if (sent[i].len == len && memcmp(sent[i].data, data, len) == 0)
			break;
	if (i == nsent)
		sh_die("an echo of %zu bytes ('%.4s') that was never sent", len, data);
	if (sent[i].seen++)
		sh_die("datagram %d came back twice", i);
	if (!same_addr(from, fromlen, &sent[i].to, sent[i].tolen))
		sh_die("datagram %d: sent to %s, its echo came from %s (namelen %u, expected %u)",
		       i, sh_addr_str((struct sockaddr *)&sent[i].to, a, sizeof(a)),
		       sh_addr_str((const struct sockaddr *)from, b, sizeof(b)), fromlen,
		       sent[i].tolen);
}

static int receive_all(int fd)
{
	static char bufs[MAX_MSG][MAX_LEN + 1];
	struct sockaddr_storage from[MAX_MSG];
	struct mmsghdr mm[MAX_MSG];
	struct iovec iov[MAX_MSG];
	struct timespec deadline = { 10, 0 };
	int got = 0, n;

	while (got < nsent) {
		memset(mm, 0, sizeof(mm));
		for (int i = 0; i < MAX_MSG; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = sizeof(bufs[i]);
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		/* The timeout is checked only after a datagram arrives: SO_RCVTIMEO bounds
		 * the wait for the first one. */
		n = recvmmsg(fd, mm, MAX_MSG, MSG_WAITFORONE, &deadline);
		if (n < 0)
			sh_die("recvmmsg: %s after %d of %d echoes", strerror(errno), got, nsent);
		for (int i = 0; i < n; i++) {
			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
				sh_die("recvmmsg: echo %d truncated", got + i);
			match(bufs[i], mm[i].msg_len, &from[i], mm[i].msg_hdr.msg_namelen);
		}
		got += n;
	}
	return got;
}

int main(int argc, char **argv)
{
	struct timeval tv = { 10, 0 };
	int fd, ndest = (argc - 1) / 2, got;

	sh_prog = "sh_udp_mmsg";
	if (argc < 3 || argc % 2 != 1 || ndest > MAX_DEST)
		sh_die("usage: sh_udp_mmsg ADDR PORT [ADDR PORT ...] (at most %d)", MAX_DEST);
	for (int d = 0; d < ndest; d++)
		for (int k = 0; k < PER_DEST; k++) {
			struct dgram *g = &sent[nsent];

			g->tolen = sh_addr(argv[1 + 2 * d], argv[2 + 2 * d], &g->to);
			make(g, nsent++, sizes[k]);
		}
	fd = socket(sent[0].to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		sh_die("socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		sh_die("SO_RCVTIMEO: %s", strerror(errno));
	send_all(fd);
	got = receive_all(fd);
	printf("OK sent %d received %d\n", nsent, got);
	return 0;
}
