/* SPDX-License-Identifier: MIT */
/* The OS boundary (sys.h): libc is the default; a table set for the process is what
 * the log, the config reader and the stack's socket probes use, and every
 * descriptor they end goes back through its release. The recording table below
 * counts the calls and hands them on to libc's. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"
#include "stack.h"
#include "sys.h"

static const struct ts_sys *libc_sys;
static int n_socket, n_release, n_read;
static char logged[256];
static int log_fd = -1;

static int rec_socket(int domain, int type, int protocol)
{
	n_socket++;
	return libc_sys->socket(domain, type, protocol);
}

static int rec_release(int fd)
{
	n_release++;
	return libc_sys->release(fd);
}

static ssize_t rec_read(int fd, void *buf, size_t len)
{
	n_read++;
	return libc_sys->read(fd, buf, len);
}

static ssize_t rec_write(int fd, const void *buf, size_t len)
{
	if (fd != log_fd)
		return libc_sys->write(fd, buf, len);
	snprintf(logged, sizeof(logged), "%.*s", (int)len, (const char *)buf);
	return (ssize_t)len;
}

static struct ts_sys recording(void)
{
	struct ts_sys s = *libc_sys;

	s.socket = rec_socket;
	s.release = rec_release;
	s.read = rec_read;
	s.write = rec_write;
	return s;
}

static void reset_counts(void)
{
	n_socket = n_release = n_read = 0;
	logged[0] = '\0';
}

static void test_default_is_libc(void)
{
	CHECK(libc_sys != NULL);
	CHECK(libc_sys->read == read);
	CHECK(libc_sys->socket == socket);
	CHECK(libc_sys->adopt(7) == 7); /* no bookkeeping without an embedder */
}

static void test_log_writes_through_the_table(void)
{
	char want[64];

	reset_counts();
	log_fd = 1000; /* never opened: only the table may see it */
	ts_log_set(log_fd, TS_LOG_ERROR);
	ts_err("boundary %d", 42);
	snprintf(want, sizeof(want), "tunshim[%d]: boundary 42\n", (int)getpid());
	CHECK_STR(logged, want);
	ts_log_set(-1, TS_LOG_ERROR);
}

static void test_config_file_read_and_released(void)
{
	char path[] = "/tmp/test_sys_XXXXXX";
	int fd = mkstemp(path);
	struct wg_config cfg;
	char err[256];
	static const char text[] = "[Interface]\n"
		"PrivateKey = QCTQ2HAduUSLmIcCWOOm2yZVwjrNbVnMXNnIoKoBTX4=\n";

	CHECK(fd >= 0 && write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1);
	close(fd);
	reset_counts();
	CHECK_INT(wg_config_parse_file(path, &cfg, err, sizeof(err)), 0);
	CHECK(n_read >= 1);
	CHECK_INT(n_release, 1);
	wg_config_free(&cfg);
	unlink(path);
}

static void test_port_probe_releases_its_socket(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
	memcpy(&ss, &a, sizeof(a));
	reset_counts();
	CHECK(ts_port_alive(&ss, SOCK_STREAM));
	close(l);
	CHECK(!ts_port_alive(&ss, SOCK_STREAM));
	CHECK_INT(n_socket, 2);
	CHECK_INT(n_release, 2);
}

int main(void)
{
	struct ts_sys rec;

	libc_sys = ts_sys();
	test_default_is_libc();
	rec = recording();
	ts_sys_set(&rec);
	CHECK(ts_sys() == &rec);
	test_log_writes_through_the_table();
	test_config_file_read_and_released();
	test_port_probe_releases_its_socket();
	ts_sys_set(NULL);
	CHECK(ts_sys() == libc_sys);
	return check_done("sys");
}
