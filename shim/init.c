/* SPDX-License-Identifier: MIT */
/* Loading the library: the configuration is read here, once, so that a later chroot
 * or privilege drop does not break it; no thread is started and no socket opened
 * until the program first needs the tunnel. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "routes.h"
#include "sockaddr.h"
#include "dns/lookup.h"
#include "shim.h"

enum shim_mode shim_mode = SHIM_OFF;
struct wg_config shim_cfg;
__thread int shim_internal __attribute__((tls_model("initial-exec")));
static struct ts_routes *routes;      /* every peer's AllowedIPs; [const] after load */
int shim_ready;

/* shim_enter's first time: libc's functions and the resolver's. Two threads that race
 * here (only possible before our constructor) store the same pointers. */
void shim_init_tables(void)
{
	shim_real_init();
	dns_libc_init();
	__atomic_store_n(&shim_ready, 1, __ATOMIC_RELEASE);
}

/* TUNSHIM_LOG_FILE may name a path in a directory others can write to (/tmp): a
 * symlink planted there must not make a privileged run append to a file of the
 * link's choosing, nor may a file someone else owns receive our log. So: no
 * symlink, created 0600, and only a file of our own; otherwise stderr, and the
 * reason there. O_NONBLOCK: a FIFO with no reader must not hang the program's start. */
static int log_open_file(const char *file, bool *is_file)
{
	int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
			    O_NONBLOCK, 0600);
	struct stat st;
	const char *why = NULL;

	if (fd < 0)
		why = errno == ELOOP ? "it is a symbolic link" : strerror(errno);
	else if (fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (st.st_uid != geteuid())
		why = "it belongs to another user";
	if (!why) {
		fcntl(fd, F_SETFL, O_APPEND);
		*is_file = true;
		return fd;
	}
	if (fd >= 0)
		close(fd);
	fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (fd >= 0)
		dprintf(fd, "tunshim[%d]: TUNSHIM_LOG_FILE=\"%s\" refused (%s); logging to stderr\n",
			(int)getpid(), file, why);
	return fd;
}

/* The log goes to a descriptor of our own: daemons close fd 2 and reuse it for a
 * socket, and a log line must never end up inside a client's connection. */
static void log_setup(void)
{
	const char *lvl = getenv("TUNSHIM_LOG"), *file = getenv("TUNSHIM_LOG_FILE");
	int level = lvl ? ts_log_parse_level(lvl) : TS_LOG_ERROR;
	bool is_file = false;
	int fd = file && *file ? log_open_file(file, &is_file) : fcntl(2, F_DUPFD_CLOEXEC, 3);

	if (level < 0)
		level = TS_LOG_ERROR;
	if (fd >= 0)
		fd = shim_adopt_fd(fd);
	shim_log_fd = fd;
	shim_log_is_file = is_file; /* not a copy of stderr (the fallback is one) */
	ts_log_set(fd, level);
	if (lvl && ts_log_parse_level(lvl) < 0)
		ts_warn("TUNSHIM_LOG=\"%s\" is not error, warn, info or debug", lvl);
}

static void config_load(const char *path)
{
	char err[1024];

	if (wg_config_parse_file(path, &shim_cfg, err, sizeof(err)) < 0) {
		/* Fail closed: a broken config must not silently become no tunnel. */
		ts_err("%s", err);
		shim_mode = SHIM_FAIL_CLOSED;
		shim_dns_resolv_load(); /* to refuse DNS to them too: it may be on loopback */
		return;
	}
	routes = ts_routes_from_config(&shim_cfg);
	if (!routes) {
		ts_err("%s: out of memory", path);
		shim_mode = SHIM_FAIL_CLOSED;
		return;
	}
	shim_names_init(shim_cfg.private_key);
	shim_dns_resolv_load(); /* to redirect to DNS =, or to see a full tunnel carry it */
	shim_mode = SHIM_ON;
}

__attribute__((constructor)) static void shim_load(void)
{
	const char *path = getenv("TUNSHIM_CONFIG");

	shim_init_tables();
	shim_stack_sys_init(); /* before anything logs */
	/* glibc drops LD_PRELOAD for setuid/setcap programs; we ignore TUNSHIM_* there too. */
	if (getauxval(AT_SECURE))
		return;
	shim_internal++;
	shim_fd_init();
	shim_tunnel_init();
	log_setup();
	if (path && *path)
		config_load(path);
	shim_internal--;
}

static bool is_unspecified(int family, const uint8_t *a)
{
	static const uint8_t zero[16];

	return memcmp(a, zero, family == AF_INET ? 4 : 16) == 0;
}

/* Endpoints given as literals never go into the tunnel (the stack's own socket
 * bypasses the shim anyway; this keeps the application's own traffic to them out). */
static bool is_endpoint(int family, const uint8_t *a)
{
	for (size_t i = 0; i < shim_cfg.n_peers; i++) {
		const char *h = shim_cfg.peers[i].endpoint_host;
		uint8_t b[16];

		if (h && inet_pton(family, h, b) == 1 && memcmp(a, b, family == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

/* Normalises addr into out (IPv4-mapped IPv6 becomes IPv4); returns the address
 * bytes, or NULL when addr is not an inet address. */
static const uint8_t *normalise(const struct sockaddr *addr, socklen_t len,
				struct sockaddr_storage *out)
{
	/* Every length the kernel takes, the 24-byte AF_INET6 form too: what the kernel
	 * would send, we must route. */
	if (!ts_sa_from(addr, len, out))
		return NULL;
	ts_sa_unmap(out);
	return ts_sa_addr(out);
}

enum shim_route shim_route(const struct sockaddr *addr, socklen_t len,
			   struct sockaddr_storage *out)
{
	const uint8_t *a;
	int family, tunnel_len;

	if (!addr || shim_mode == SHIM_OFF || !(a = normalise(addr, len, out)))
		return ROUTE_PASS;
	family = out->ss_family;
	if (ts_addr_is_loopback(family, a) || is_unspecified(family, a))
		return ROUTE_PASS;
	if (shim_mode == SHIM_FAIL_CLOSED)
		return ROUTE_BLOCK;
	if ((tunnel_len = ts_routes_match(routes, family, a)) < 0 || is_endpoint(family, a))
		return ROUTE_PASS;
	/* The host's own, more specific routes win (its subnets under a full tunnel);
	 * read on the first tunnel-bound decision, so other programs never read them. */
	if (shim_hostroute_len(family, a) > tunnel_len)
		return ROUTE_PASS;
	return ROUTE_TUNNEL;
}

bool shim_is_tunnel_address(const struct sockaddr_storage *ss)
{
	const uint8_t *a = ss->ss_family == AF_INET ?
		(const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr :
		((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;

	if (shim_mode != SHIM_ON || (ss->ss_family != AF_INET && ss->ss_family != AF_INET6))
		return false;
	for (size_t i = 0; i < shim_cfg.n_addresses; i++) {
		const struct wg_ipaddr *ip = &shim_cfg.addresses[i].ip;

		if (ip->family == ss->ss_family &&
		    memcmp(ip->addr, a, ip->family == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}
