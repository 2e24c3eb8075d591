/* SPDX-License-Identifier: MIT */
/* Asking the servers, as glibc's stub resolver does: the questions of a lookup go
 * out together over UDP, a truncated answer is asked again over TCP, and a server
 * that times out, fails or answers garbage passes the question to the next one, for
 * a few rounds. The sockets are ordinary ones made with the interposed socket() and
 * connect() from the caller's thread, so the shim routes them: into the tunnel for a
 * server inside AllowedIPs, over the host network otherwise (as wg-quick would).
 * They are non-blocking, waited on with poll, and always closed. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "dns.h"
#include "sockaddr.h"

__thread int dns_busy;

struct pending {
	struct dns_question *q;
	uint8_t msg[2 + DNS_SEND_MAX]; /* a TCP length prefix, then the query */
	int len;
	uint16_t id;
	bool asked;   /* open when this server was asked */
	bool waiting; /* no UDP answer yet */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int wait_for(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return (p.revents & (events | POLLHUP | POLLERR)) ? 1 : -1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* A socket connected to the server (a TCP connect may still be under way). */
static int open_to(const struct dns_server *s, int type)
{
	int fd = socket(s->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&s->addr, ts_sa_len(&s->addr)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads an answer to p's question; a raw question keeps its bytes. */
static enum dns_status take_answer(struct pending *p, const uint8_t *ans, size_t n)
{
	struct dns_question *q = p->q;
	enum dns_status st;

	if (!q->query)
		return dns_parse_answer(ans, n, p->id, q->name, q->type, q->answer);
	st = dns_check_answer(ans, n, p->msg + 2, (size_t)p->len);
	if (st == DNS_MISMATCH || !q->raw)
		return st;
	memcpy(q->raw, ans, n < q->raw_cap ? n : q->raw_cap);
	q->raw_len = n;
	if (n > q->raw_cap && q->raw_cap > 2)
		q->raw[2] |= 0x02; /* TC: the caller's buffer holds only part of it */
	return st;
}

/* The pending question this datagram answers, with its status; false if none. */
static bool match(struct pending *p, size_t np, const uint8_t *ans, size_t n)
{
	for (size_t i = 0; i < np; i++) {
		enum dns_status st;

		if (!p[i].waiting)
			continue;
		st = take_answer(&p[i], ans, n);
		if (st == DNS_MISMATCH)
			continue;
		p[i].q->status = st;
		p[i].waiting = false;
		return true;
	}
	return false;
}

static void udp_round(const struct dns_server *s, struct pending *p, size_t np,
		      int timeout_ms, uint8_t *ans)
{
	int64_t deadline = now_ms() + timeout_ms;
	size_t waiting = 0;
	ssize_t n;
	int fd = open_to(s, SOCK_DGRAM);

	if (fd < 0)
		return;
	for (size_t i = 0; i < np; i++) {
		if (p[i].waiting && send(fd, p[i].msg + 2, (size_t)p[i].len, MSG_NOSIGNAL) >= 0)
			waiting++;
		else
			p[i].waiting = false;
	}
	while (waiting && wait_for(fd, POLLIN, deadline) > 0) {
		n = recv(fd, ans, DNS_MSG_MAX, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			break; /* ICMP unreachable (ECONNREFUSED): this server is no use */
		if (match(p, np, ans, (size_t)n))
			waiting--;
	}
	close(fd);
}

static bool io_all(int fd, uint8_t *buf, size_t len, bool out, int64_t deadline)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		if (wait_for(fd, out ? POLLOUT : POLLIN, deadline) <= 0)
			return false;
		n = out ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
			: recv(fd, buf + done, len - done, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

/* One question over TCP (RFC 7766: a two-byte length before each message). */
static enum dns_status tcp_ask(const struct dns_server *s, struct pending *p, int timeout_ms,
			       uint8_t *ans)
{
	int64_t deadline = now_ms() + timeout_ms;
	enum dns_status st = DNS_TIMEOUT;
	int fd = open_to(s, SOCK_STREAM), err = 0;
	socklen_t l = sizeof(err);
	uint8_t hdr[2];
	size_t alen;

	if (fd < 0)
		return DNS_TIMEOUT;
	p->msg[0] = (uint8_t)(p->len >> 8);
	p->msg[1] = (uint8_t)p->len;
	if (wait_for(fd, POLLOUT, deadline) <= 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err ||
	    !io_all(fd, p->msg, (size_t)p->len + 2, true, deadline) ||
	    !io_all(fd, hdr, 2, false, deadline))
		goto out;
	alen = (size_t)hdr[0] << 8 | hdr[1];
	if (!io_all(fd, ans, alen, false, deadline))
		goto out;
	st = take_answer(p, ans, alen);
	/* Over TCP there is no excuse for another answer, or for TC. */
	if (st == DNS_MISMATCH || st == DNS_TRUNCATED)
		st = DNS_MALFORMED;
out:
	close(fd);
	return st;
}

static bool definite(enum dns_status st)
{
	return st == DNS_OK || st == DNS_NXDOMAIN || st == DNS_NODATA;
}

/* The query for q into p: built afresh, or the program's own (its id kept, since
 * the program matches it). */
static int make_query(struct pending *p, struct dns_question *q)
{
	if (!q->query)
		return dns_build_query(q->name, ns_c_in, q->type, p->msg + 2, DNS_QUERY_MAX,
				       &p->id);
	if (q->query_len < NS_HFIXEDSZ || q->query_len > DNS_SEND_MAX)
		return -1;
	memcpy(p->msg + 2, q->query, q->query_len);
	p->id = (uint16_t)(q->query[0] << 8 | q->query[1]);
	return (int)q->query_len;
}

/* Fresh queries for the questions still open; returns how many. */
static size_t prepare(struct pending *p, struct dns_question *q, size_t nq)
{
	size_t open = 0;

	for (size_t i = 0; i < nq; i++) {
		p[i].q = &q[i];
		p[i].asked = p[i].waiting = false;
		if (definite(q[i].status) || q[i].status == DNS_NOMEM)
			continue;
		p[i].len = make_query(&p[i], &q[i]);
		if (p[i].len < 0) {
			/* No such name can exist, or the program's message is no query. */
			q[i].status = q[i].query ? DNS_MALFORMED : DNS_NXDOMAIN;
			continue;
		}
		q[i].status = DNS_TIMEOUT;
		p[i].asked = p[i].waiting = true;
		open++;
	}
	return open;
}

/* One server: UDP for the open questions, then TCP for the truncated ones. True if
 * it gave a definite answer to any of them. */
static bool ask_server(const struct dns_server *s, struct pending *p, size_t nq,
		       const struct dns_options *opt, uint8_t *ans)
{
	bool any = false;

	udp_round(s, p, nq, opt->timeout_ms, ans);
	for (size_t i = 0; i < nq; i++) {
		if (p[i].asked && p[i].q->status == DNS_TRUNCATED)
			p[i].q->status = tcp_ask(s, &p[i], 2 * opt->timeout_ms, ans);
		any |= p[i].asked && definite(p[i].q->status);
	}
	return any;
}

void dns_ask(const struct dns_server *servers, size_t n, int *first,
	     const struct dns_options *opt, struct dns_question *q, size_t nq)
{
	struct pending *p = calloc(nq, sizeof(*p));
	uint8_t *ans = malloc(DNS_MSG_MAX);
	int start = *first >= 0 && (size_t)*first < n ? *first : 0;

	for (size_t i = 0; i < nq; i++) {
		q[i].status = p && ans ? DNS_TIMEOUT : DNS_NOMEM;
		q[i].raw_len = 0;
	}
	dns_busy++;
	for (int round = 0; p && ans && round < opt->attempts; round++) {
		for (size_t k = 0; k < n; k++) {
			size_t idx = (start + k) % n;

			if (!prepare(p, q, nq))
				goto out;
			if (ask_server(&servers[idx], p, nq, opt, ans))
				*first = (int)idx;
		}
	}
out:
	dns_busy--;
	free(ans);
	free(p);
}
