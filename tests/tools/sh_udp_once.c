/* SPDX-License-Identifier: MIT */
/*
 * sh_udp_once: a one-shot UDP sender, like a syslog or metrics client: one datagram, then
 * it exits at once (returning from main).
 *
 *   sh_udp_once connect|sendto HOST PORT MESSAGE
 *
 * connect: connect() then send(); sendto: an unconnected socket and sendto(). The socket's
 * family is HOST's. Exits 0 when the send call succeeded.
 */
#include "sh_util.h"

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t n;
	ssize_t rc;
	int fd;

	sh_prog = "sh_udp_once";
	if (argc != 5)
		sh_die("usage: sh_udp_once connect|sendto HOST PORT MESSAGE");
	len = sh_addr(argv[2], argv[3], &ss);
	n = strlen(argv[4]);
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		sh_die("socket: %s", strerror(errno));
	if (strcmp(argv[1], "connect") == 0) {
		if (connect(fd, (struct sockaddr *)&ss, len) < 0)
			sh_die("connect: %s", strerror(errno));
		rc = send(fd, argv[4], n, 0);
	} else if (strcmp(argv[1], "sendto") == 0) {
		rc = sendto(fd, argv[4], n, 0, (struct sockaddr *)&ss, len);
	} else {
		sh_die("unknown mode '%s'", argv[1]);
	}
	if (rc < 0)
		sh_die("%s: %s", argv[1], strerror(errno));
	if ((size_t)rc != n)
		sh_die("%s: sent %zd of %zu bytes", argv[1], rc, n);
	return 0;
}
