/* SPDX-License-Identifier: MIT */
/*
 * sh_leak: tries the roundabout ways a program can reach a tunnel address, each against
 * an echo server (TCP and UDP, tests/shim/servers.py echo), and says what came of it.
 *
 *   sh_leak all HOST PORT      every mode below, one line each: "MODE ok" when the echo
 *                              came back, "MODE ENETUNREACH" (the errno's name) when a
 *                              call failed, "MODE timeout" when nothing came back in 4 s
 *   sh_leak MODE HOST PORT     one of them
 *   sh_leak resolve NAME       getaddrinfo: "resolve ADDR..." or "resolve EAI_..."
 *   sh_leak res_query NAME     res_query for an A record: "res_query N-ANSWERS" or -1
 *
 * HOST is an IPv4 address. The modes (every payload carries the marker "sh_leak:"):
 *   connect24        TCP on AF_INET6 to ::ffff:HOST with a 24-byte address (no scope id)
 *   sendto24         UDP sendto, the same 24-byte address
 *   connect24-udp    UDP connect with it, then send
 *   mapped-tcp       TCP on AF_INET6 to ::ffff:HOST (28 bytes)
 *   mapped-udp       UDP sendto ::ffff:HOST
 *   fastopen         TCP sendto with MSG_FASTOPEN, no connect
 *   tfo-connect      TCP_FASTOPEN_CONNECT, then connect and write
 *   sendmmsg         two UDP datagrams in one sendmmsg
 *   exec-sendto      a UDP socket inherited across exec: sendto
 *   exec-sendmsg     the same, sendmsg
 *   exec-sendmmsg    the same, sendmmsg
 *   exec-connect-udp the same, connect then send
 *   exec-connect-tcp a TCP socket inherited across exec: connect
 *   scm-sendto       a UDP socket received over SCM_RIGHTS (from a forked child): sendto
 *   scm-connect-tcp  a TCP socket received over SCM_RIGHTS: connect
 *
 * Each mode runs in a child of its own with an alarm, so a leaked connect that waits on a
 * route to nowhere ends as "timeout" instead of holding up the rest.
 */
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <resolv.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "sh_util.h"

#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif
#define MARKER "sh_leak:"
#define WAIT_MS 4000

static const char *host, *port, *mode;
static char self[4096];

static void __attribute__((noreturn)) fail(const char *what)
{
	const char *name = strerrorname_np(errno);

	(void)what;
	printf("%s %s\n", mode, name ? name : "?");
	exit(0);
}

/* ::ffff:HOST, in len bytes (24 leaves sin6_scope_id out, as RFC 2133 had it). */
static socklen_t mapped(struct sockaddr_storage *ss)
{
	char v6[64];

	snprintf(v6, sizeof(v6), "::ffff:%s", host);
	return sh_addr(v6, port, ss);
}

static socklen_t plain(struct sockaddr_storage *ss)
{
	return sh_addr(host, port, ss);
}

static void check_reply(int fd, const char *sent)
{
	char buf[512];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, WAIT_MS) <= 0) {
		printf("%s timeout\n", mode);
		exit(0);
	}
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		fail("recv");
	buf[n] = 0;
	if (strncmp(buf, sent, strlen(sent)) != 0) {
		printf("%s wrong-reply\n", mode);
		exit(0);
	}
	printf("%s ok\n", mode);
	exit(0);
}

static int sock(int family, int type)
{
	int fd = socket(family, type, 0);

	if (fd < 0)
		fail("socket");
	return fd;
}

static void tcp_echo(int fd)
{
	char msg[128];

	snprintf(msg, sizeof(msg), MARKER "%s\n", mode);
	if (write(fd, msg, strlen(msg)) < 0)
		fail("write");
	check_reply(fd, msg);
}

static void udp_sendto(int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	char msg[128];

	snprintf(msg, sizeof(msg), MARKER "%s", mode);
	if (sendto(fd, msg, strlen(msg), 0, (const struct sockaddr *)ss, len) < 0)
		fail("sendto");
	check_reply(fd, msg);
}

static void udp_sendmsg(int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	char msg[128];
	struct iovec v = { msg, 0 };
	struct msghdr m = { .msg_name = (void *)ss, .msg_namelen = len, .msg_iov = &v,
			    .msg_iovlen = 1 };

	snprintf(msg, sizeof(msg), MARKER "%s", mode);
	v.iov_len = strlen(msg);
	if (sendmsg(fd, &m, 0) < 0)
		fail("sendmsg");
	check_reply(fd, msg);
}

static void udp_sendmmsg(int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	char msg[128];
	struct iovec v = { msg, 0 };
	struct mmsghdr mm[2];

	snprintf(msg, sizeof(msg), MARKER "%s", mode);
	v.iov_len = strlen(msg);
	for (int i = 0; i < 2; i++)
		mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = (void *)ss, .msg_namelen = len,
						       .msg_iov = &v, .msg_iovlen = 1 } };
	if (sendmmsg(fd, mm, 2, 0) != 2)
		fail("sendmmsg");
	check_reply(fd, msg);
}

static void do_connect(int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	if (connect(fd, (const struct sockaddr *)ss, len) < 0)
		fail("connect");
}

/* The socket goes to a new image of this program, which does the rest (fd-MODE). */
static void __attribute__((noreturn)) exec_with(int fd)
{
	char fdstr[16], next[64];

	if (fcntl(fd, F_SETFD, 0) < 0)
		fail("fcntl");
	snprintf(fdstr, sizeof(fdstr), "%d", fd);
	snprintf(next, sizeof(next), "fd-%s", mode + strlen("exec-"));
	execl(self, "sh_leak", next, host, port, fdstr, (char *)NULL);
	fail("exec");
}

/* A socket made in a forked child, received over SCM_RIGHTS. */
static int received(int type)
{
	union { struct cmsghdr c; char buf[CMSG_SPACE(sizeof(int))]; } u;
	char byte = 'x';
	struct iovec v = { &byte, 1 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	int sv[2], fd;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		fail("socketpair");
	if ((pid = fork()) == 0) {
		fd = sock(AF_INET, type);
		u.c.cmsg_level = SOL_SOCKET;
		u.c.cmsg_type = SCM_RIGHTS;
		u.c.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&u.c), &fd, sizeof(int));
		_exit(sendmsg(sv[1], &m, 0) == 1 ? 0 : 1);
	}
	if (recvmsg(sv[0], &m, 0) != 1 || !CMSG_FIRSTHDR(&m))
		fail("recvmsg");
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
	waitpid(pid, NULL, 0);
	return fd;
}

static void run_connect_modes(struct sockaddr_storage *ss)
{
	int fd, one = 1;
	char msg[128];

	if (!strcmp(mode, "connect24") || !strcmp(mode, "mapped-tcp")) {
		fd = sock(AF_INET6, SOCK_STREAM);
		do_connect(fd, ss, !strcmp(mode, "connect24") ? 24 : mapped(ss));
		tcp_echo(fd);
	}
	if (!strcmp(mode, "connect24-udp")) {
		fd = sock(AF_INET6, SOCK_DGRAM);
		do_connect(fd, ss, 24);
		snprintf(msg, sizeof(msg), MARKER "%s", mode);
		if (send(fd, msg, strlen(msg), 0) < 0)
			fail("send");
		check_reply(fd, msg);
	}
	if (!strcmp(mode, "fastopen")) {
		fd = sock(AF_INET, SOCK_STREAM);
		snprintf(msg, sizeof(msg), MARKER "%s\n", mode);
		if (sendto(fd, msg, strlen(msg), MSG_FASTOPEN, (struct sockaddr *)ss, plain(ss)) < 0)
			fail("sendto");
		check_reply(fd, msg);
	}
	if (!strcmp(mode, "tfo-connect")) {
		fd = sock(AF_INET, SOCK_STREAM);
		if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) < 0)
			fail("setsockopt");
		do_connect(fd, ss, plain(ss));
		tcp_echo(fd);
	}
}

static void run_send_modes(struct sockaddr_storage *ss)
{
	if (!strcmp(mode, "sendto24"))
		udp_sendto(sock(AF_INET6, SOCK_DGRAM), ss, 24); /* ss is ::ffff:HOST */
	if (!strcmp(mode, "mapped-udp"))
		udp_sendto(sock(AF_INET6, SOCK_DGRAM), ss, mapped(ss));
	if (!strcmp(mode, "sendmmsg"))
		udp_sendmmsg(sock(AF_INET, SOCK_DGRAM), ss, plain(ss));
	if (!strncmp(mode, "exec-", 5))
		exec_with(sock(AF_INET, !strcmp(mode, "exec-connect-tcp") ? SOCK_STREAM : SOCK_DGRAM));
	if (!strcmp(mode, "scm-sendto"))
		udp_sendto(received(SOCK_DGRAM), ss, plain(ss));
	if (!strcmp(mode, "scm-connect-tcp")) {
		int fd = received(SOCK_STREAM);

		do_connect(fd, ss, plain(ss));
		tcp_echo(fd);
	}
}

/* The second half of an exec-MODE: fd came with the exec. */
static void run_inherited(int fd, struct sockaddr_storage *ss)
{
	static char name[64];
	char msg[128];
	socklen_t len = plain(ss);

	snprintf(name, sizeof(name), "exec-%s", mode + strlen("fd-"));
	mode = name; /* reported under the name it was asked by */
	if (!strcmp(mode, "exec-sendto"))
		udp_sendto(fd, ss, len);
	if (!strcmp(mode, "exec-sendmsg"))
		udp_sendmsg(fd, ss, len);
	if (!strcmp(mode, "exec-sendmmsg"))
		udp_sendmmsg(fd, ss, len);
	do_connect(fd, ss, len);
	if (!strcmp(mode, "exec-connect-tcp"))
		tcp_echo(fd);
	snprintf(msg, sizeof(msg), MARKER "%s", mode);
	if (send(fd, msg, strlen(msg), 0) < 0)
		fail("send");
	check_reply(fd, msg);
}

static void run_one(void)
{
	struct sockaddr_storage ss;

	setvbuf(stdout, NULL, _IONBF, 0);
	mapped(&ss);
	run_connect_modes(&ss);
	run_send_modes(&ss);
	sh_die("unknown mode '%s'", mode);
}

static const char *const modes[] = {
	"connect24", "sendto24", "connect24-udp", "mapped-tcp", "mapped-udp", "fastopen",
	"tfo-connect", "sendmmsg", "exec-sendto", "exec-sendmsg", "exec-sendmmsg",
	"exec-connect-udp", "exec-connect-tcp", "scm-sendto", "scm-connect-tcp",
};

static void run_all(void)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		int status;
		pid_t pid;

		fflush(stdout);
		if ((pid = fork()) == 0) {
			alarm(WAIT_MS / 1000 + 2);
			mode = modes[i];
			run_one();
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0)
			sh_die("fork: %s", strerror(errno));
		if (WIFSIGNALED(status))
			printf("%s timeout\n", modes[i]);
	}
}

static void resolve(const char *name)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	char ip[INET6_ADDRSTRLEN];
	int rc = getaddrinfo(name, NULL, &hints, &ai);

	if (rc) {
		printf("resolve %s\n", rc == EAI_NONAME ? "EAI_NONAME" : rc == EAI_AGAIN ?
		       "EAI_AGAIN" : gai_strerror(rc));
		return;
	}
	printf("resolve");
	for (a = ai; a; a = a->ai_next) {
		const void *p = a->ai_family == AF_INET ?
			(const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr :
			(const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;

		printf(" %s", inet_ntop(a->ai_family, p, ip, sizeof(ip)));
	}
	printf("\n");
	freeaddrinfo(ai);
}

static void query(const char *name)
{
	unsigned char ans[4096];
	int n = res_query(name, ns_c_in, ns_t_a, ans, sizeof(ans));

	printf("res_query %d\n", n > 12 ? ans[6] << 8 | ans[7] : -1);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	ssize_t n;

	sh_prog = "sh_leak";
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	if (argc == 3 && !strcmp(argv[1], "resolve"))
		return resolve(argv[2]), 0;
	if (argc == 3 && !strcmp(argv[1], "res_query"))
		return query(argv[2]), 0;
	if (argc < 4)
		sh_die("usage: sh_leak all|MODE HOST PORT | resolve NAME | res_query NAME");
	mode = argv[1];
	host = argv[2];
	port = argv[3];
	if (argc == 5 && !strncmp(mode, "fd-", 3)) {
		setvbuf(stdout, NULL, _IONBF, 0);
		mapped(&ss);
		run_inherited(atoi(argv[4]), &ss);
	}
	if (!strcmp(mode, "all"))
		run_all();
	else
		run_one();
	return 0;
}
