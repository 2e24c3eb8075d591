/* SPDX-License-Identifier: MIT */
/* Where the processes of one session find each other: a unix socket and a lock file in
 * the user's private runtime directory, named by a hash of the public key, the network
 * namespace and the protocol version. The holder keeps the lock (flock) for as long as
 * it serves, so the lock, not the socket file, says whether a holder exists: a socket
 * left by a holder that was killed is recognised as stale and replaced. Both ends check
 * the other's user with SO_PEERCRED. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "rundir.h"
#include "session.h"
#include "sys.h"

#define WAIT_FOR_HOLDER_MS 5000

/* The socket and lock paths of this key's session in this network namespace. */
static int session_paths(const uint8_t public_key[32], struct ts_rendezvous *rv)
{
	char base[512];
	struct stat ns;
	unsigned long long nsid = 0;

	if (ts_key_file("session", public_key, base, sizeof(base)) < 0)
		return -1;
	/* Processes in other network namespaces reach other networks: never shared. */
	if (stat("/proc/self/ns/net", &ns) == 0)
		nsid = (unsigned long long)ns.st_ino;
	if ((size_t)snprintf(rv->sock_path, sizeof(rv->sock_path), "%s-%llx-v%d.sock", base, nsid,
			     TS_WIRE_VERSION) >= sizeof(rv->sock_path) ||
	    (size_t)snprintf(rv->lock_path, sizeof(rv->lock_path), "%s-%llx-v%d.lock", base, nsid,
			     TS_WIRE_VERSION) >= sizeof(rv->lock_path)) {
		ts_err("%s: the runtime directory's path is too long for a unix socket: "
		       "processes with one key cannot share a tunnel", base);
		return -1;
	}
	return 0;
}

bool ts_peer_is_us(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return ts_sys()->getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
	       cr.uid == geteuid();
}

static void unix_addr(const char *path, struct sockaddr_un *un)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, strlen(path) + 1);
}

/* A connection to a serving holder, or -1 when none answers at the path. */
static int try_attach(const struct ts_rendezvous *rv)
{
	struct sockaddr_un un;
	int fd = ts_sys()->socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	unix_addr(rv->sock_path, &un);
	if (ts_sys()->connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0 || !ts_peer_is_us(fd)) {
		ts_sys()->release(fd);
		return -1;
	}
	return fd;
}

/* The lock, if no one holds it; then the socket is ours to (re)create. */
static int try_hold(struct ts_rendezvous *rv)
{
	struct sockaddr_un un;
	char line[32];
	int lock = open(rv->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int fd;

	if (lock < 0)
		return -1;
	if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
		ts_sys()->release(lock);
		return errno == EWOULDBLOCK ? 0 : -1;
	}
	snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (ftruncate(lock, 0) < 0 || pwrite(lock, line, strlen(line), 0) < 0)
		ts_dbg("session lock: %s", strerror(errno));
	unlink(rv->sock_path); /* a killed holder's, if any: the lock says it is stale */
	unix_addr(rv->sock_path, &un);
	fd = ts_sys()->socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || ts_sys()->bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 ||
	    ts_sys()->listen(fd, 128) < 0) {
		ts_err("%s: cannot serve the session: %s", rv->sock_path, strerror(errno));
		if (fd >= 0)
			ts_sys()->release(fd);
		ts_sys()->release(lock);
		return -1;
	}
	rv->lock_fd = lock;
	rv->listen_fd = fd;
	return 1;
}

static void nap_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* Who holds the session, for a message. */
static int holder_pid(const struct ts_rendezvous *rv)
{
	char line[32] = "";
	int fd = open(rv->lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), pid = 0;

	if (fd >= 0) {
		if (pread(fd, line, sizeof(line) - 1, 0) > 0)
			sscanf(line, "%d", &pid);
		ts_sys()->release(fd);
	}
	return pid;
}

enum ts_rv_role ts_rendezvous(const uint8_t public_key[32], struct ts_rendezvous *rv)
{
	int waited = 0, rc;

	rv->lock_fd = rv->listen_fd = rv->ctl_fd = -1;
	if (session_paths(public_key, rv) < 0)
		return TS_RV_ALONE;
	for (;;) {
		if ((rv->ctl_fd = try_attach(rv)) >= 0)
			return TS_RV_ATTACHED;
		if ((rc = try_hold(rv)) > 0)
			return TS_RV_HOLDER;
		if (rc < 0)
			return TS_RV_ALONE;
		/* Someone holds the lock and is not serving yet (starting, or ending). */
		if (waited >= WAIT_FOR_HOLDER_MS) {
			ts_err("the process that holds this key's session (pid %d) does not answer "
			       "at %s", holder_pid(rv), rv->sock_path);
			return TS_RV_FAILED;
		}
		nap_ms(2);
		waited += 2;
	}
}

void ts_rendezvous_close(struct ts_rendezvous *rv)
{
	if (rv->listen_fd >= 0) {
		/* Newcomers must find no socket before the lock is released. */
		unlink(rv->sock_path);
		ts_sys()->release(rv->listen_fd);
		rv->listen_fd = -1;
	}
}
