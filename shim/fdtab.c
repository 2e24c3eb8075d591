/* SPDX-License-Identifier: MIT */
/* What the shim knows about each descriptor: a two-level table indexed by fd, so a
 * call on a descriptor the shim does not care about costs two loads. Entries are
 * never freed (a closed fd's entry is cleared for reuse), so lock-free readers never
 * see freed memory; everything but an entry's kind and flags is read and written
 * under one lock (shim.h, "Locking"). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include "log.h"
#include "shim.h"

#define CHUNK_BITS 10
#define CHUNK (1 << CHUNK_BITS)
#define MAX_CHUNKS 1024 /* fds up to 1M */

/* [tab/a]: a chunk is allocated under the lock and published with a release store,
 * then never freed nor moved. */
static struct shim_fd *chunks[MAX_CHUNKS];
static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * A signal handler may call socket, close or dup (shim.h, "Signals"), and those take
 * the shim's locks: had the handler interrupted its own thread while it held one, it
 * would wait for itself. So a thread blocks every signal while it holds a lock of the
 * shim's (the table lock, a connection's mu) and gets its mask back with the last one.
 * depth counts the locks this thread holds; the mask is saved by the outermost. A
 * handler that runs between the count and the block finds depth set, takes and drops
 * its locks without touching the mask, and leaves depth as it found it.
 */
static __thread int sig_depth;
static __thread sigset_t sig_saved;

void shim_sig_block(void)
{
	sigset_t all, old;

	if (sig_depth++ > 0)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	sig_saved = old;
}

void shim_sig_unblock(void)
{
	if (--sig_depth == 0)
		pthread_sigmask(SIG_SETMASK, &sig_saved, NULL);
}

/* A fork while another thread holds the table lock must not leave the child with a
 * lock nobody will release. */
static void fork_prepare(void)
{
	shim_fd_lock();
}

static void fork_parent(void)
{
	shim_fd_unlock();
}

/* In the child, every inherited socket is one it did not make (SFDF_OWNED), and the
 * mu of a connection it inherited may have been held by a thread it does not have.
 * The forking thread held the table lock (fork_prepare): its signals come back with
 * it. */
static void fork_child(void)
{
	pthread_mutex_init(&tab_lock, NULL);
	for (int i = 0; i < MAX_CHUNKS; i++) {
		for (int j = 0; chunks[i] && j < CHUNK; j++) {
			struct shim_fd *e = &chunks[i][j];

			__atomic_and_fetch(&e->flags, ~(unsigned)SFDF_OWNED, __ATOMIC_RELAXED);
			if (e->conn)
				pthread_mutex_init(&e->conn->mu, NULL);
		}
	}
	shim_sig_unblock();
}

void shim_fd_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void shim_fd_lock(void)
{
	shim_sig_block();
	pthread_mutex_lock(&tab_lock);
}

void shim_fd_unlock(void)
{
	pthread_mutex_unlock(&tab_lock);
	shim_sig_unblock();
}

void shim_conn_lock(struct shim_conn *c)
{
	shim_sig_block();
	pthread_mutex_lock(&c->mu);
}

void shim_conn_unlock(struct shim_conn *c)
{
	pthread_mutex_unlock(&c->mu);
	shim_sig_unblock();
}

struct shim_fd *shim_fd_peek(int fd)
{
	struct shim_fd *c;

	if (fd < 0 || fd >= CHUNK * MAX_CHUNKS)
		return NULL;
	c = __atomic_load_n(&chunks[fd >> CHUNK_BITS], __ATOMIC_ACQUIRE);
	return c ? &c[fd & (CHUNK - 1)] : NULL;
}

static int max_fd; /* [tab/a] */

int shim_fd_max(void)
{
	return __atomic_load_n(&max_fd, __ATOMIC_RELAXED);
}

struct shim_fd *shim_fd_get(int fd)
{
	struct shim_fd *c;

	if (fd < 0 || fd >= CHUNK * MAX_CHUNKS)
		return NULL;
	if (fd > max_fd)
		__atomic_store_n(&max_fd, fd, __ATOMIC_RELAXED);
	c = chunks[fd >> CHUNK_BITS];
	if (!c) {
		/* mmap, not calloc: socket() in a signal handler may get here while its
		 * thread was inside malloc. */
		c = mmap(NULL, CHUNK * sizeof(*c), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c == MAP_FAILED)
			return NULL;
		__atomic_store_n(&chunks[fd >> CHUNK_BITS], c, __ATOMIC_RELEASE);
	}
	return &c[fd & (CHUNK - 1)];
}

/* The [tab] part of an entry: from domain to the end. */
#define TAB_PART(e) ((char *)(e) + offsetof(struct shim_fd, domain))
#define TAB_PART_SIZE (sizeof(struct shim_fd) - offsetof(struct shim_fd, domain))

void shim_fd_clear(int fd)
{
	struct shim_fd *e = shim_fd_peek(fd);

	if (!e || shim_fd_kind_of(e) == SFD_NONE)
		return;
	if (e->conn) {
		e->conn->nfds--;
		shim_conn_put(e->conn);
	}
	free(e->regs);
	/* kind and flags are read without the lock: atomic stores, never the memset. */
	__atomic_store_n(&e->kind, SFD_NONE, __ATOMIC_RELEASE);
	__atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
	e->gen++;
	memset(TAB_PART(e), 0, TAB_PART_SIZE);
}

void shim_fd_copy(int oldfd, int newfd)
{
	struct shim_fd *o = shim_fd_peek(oldfd), *n;
	int kind = o ? shim_fd_kind_of(o) : SFD_NONE;

	shim_fd_clear(newfd);
	if (kind == SFD_NONE || kind == SFD_INTERNAL)
		return;
	n = shim_fd_get(newfd);
	if (!n)
		return;
	memcpy(TAB_PART(n), TAB_PART(o), TAB_PART_SIZE);
	n->regs = NULL; /* epoll registrations belong to the old number */
	n->nregs = 0;
	if (n->conn) {
		n->conn->nfds++;
		shim_conn_get(n->conn);
	}
	__atomic_store_n(&n->flags, __atomic_load_n(&o->flags, __ATOMIC_RELAXED), __ATOMIC_RELEASE);
	__atomic_store_n(&n->kind, kind, __ATOMIC_RELEASE);
}

bool shim_fd_read(int fd, struct shim_fd *out)
{
	struct shim_fd *e;

	memset(out, 0, sizeof(*out));
	shim_fd_lock();
	e = shim_fd_peek(fd);
	if (e)
		*out = *e;
	shim_fd_unlock();
	out->conn = NULL;
	out->regs = NULL;
	out->nregs = 0;
	return out->kind != SFD_NONE;
}

struct shim_fd *shim_fd_same(int fd, uint32_t gen)
{
	struct shim_fd *e = shim_fd_peek(fd);

	return e && e->gen == gen && shim_fd_kind_of(e) != SFD_NONE ? e : NULL;
}

void shim_fd_set_flag(int fd, uint32_t gen, unsigned flag)
{
	struct shim_fd *e;

	shim_fd_lock();
	if ((e = shim_fd_same(fd, gen)))
		__atomic_or_fetch(&e->flags, flag, __ATOMIC_RELEASE);
	shim_fd_unlock();
}

struct shim_conn *shim_fd_conn(int fd)
{
	struct shim_fd *e;
	struct shim_conn *c = NULL;

	shim_fd_lock();
	e = shim_fd_peek(fd);
	if (e && shim_fd_kind_of(e) == SFD_TUNNEL && (c = e->conn))
		shim_conn_get(c);
	shim_fd_unlock();
	return c;
}

struct shim_conn *shim_conn_new(int proto)
{
	struct shim_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;
	c->proto = proto;
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

void shim_conn_get(struct shim_conn *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void shim_conn_put(struct shim_conn *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Internal descriptors live above the numbers select() users need (FD_SETSIZE) when
 * the limit allows, and below that at the top of the range. */
#define HIGH_BASE (1024 + 512)

/* Set once the limit allowed HIGH_BASE: a connect then need not ask for the limit each
 * time. A limit lowered since shows in the dup (EINVAL); a lower base is asked anew
 * each time, as the limit may have been raised (the tunnel's start does). */
static int high_base_ok;

static int internal_base(void)
{
	struct rlimit rl;

	if (__atomic_load_n(&high_base_ok, __ATOMIC_RELAXED))
		return HIGH_BASE;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur <= 64)
		return 3;
	if (rl.rlim_cur >= 2048) {
		__atomic_store_n(&high_base_ok, 1, __ATOMIC_RELAXED);
		return HIGH_BASE;
	}
	return (int)(rl.rlim_cur - rl.rlim_cur / 4);
}

static int dup_high(int fd)
{
	int base = internal_base(), nfd;

	if (fd >= base)
		return fd;
	nfd = real.fcntl(fd, F_DUPFD_CLOEXEC, base);
	if (nfd < 0 && errno == EINVAL && base == HIGH_BASE) {
		__atomic_store_n(&high_base_ok, 0, __ATOMIC_RELAXED);
		base = internal_base();
		nfd = fd >= base ? fd : real.fcntl(fd, F_DUPFD_CLOEXEC, base);
	}
	return nfd;
}

int shim_adopt_fd(int fd)
{
	int nfd;
	struct shim_fd *e;

	if (fd < 0)
		return fd;
	nfd = dup_high(fd);
	if (nfd < 0) {
		nfd = fd; /* no room up there: keep it where it is */
	} else if (nfd != fd) {
		real.close(fd);
	}
	shim_fd_lock();
	e = shim_fd_get(nfd);
	if (e) {
		shim_fd_clear(nfd);
		__atomic_store_n(&e->kind, SFD_INTERNAL, __ATOMIC_RELEASE);
	}
	shim_fd_unlock();
	return nfd;
}

/* The entry goes before the descriptor: once closed, its number may be handed out
 * again at once, and the new owner's entry must not be the one cleared. */
int shim_release_fd(int fd)
{
	if (shim_fd_kind(fd) != SFD_NONE) {
		shim_fd_lock();
		shim_fd_clear(fd);
		shim_fd_unlock();
	}
	return real.close(fd);
}

int shim_log_fd = -1;
bool shim_log_is_file;

void shim_fd_close_internal(void)
{
	shim_fd_lock();
	for (int i = 0; i < MAX_CHUNKS; i++) {
		struct shim_fd *c = __atomic_load_n(&chunks[i], __ATOMIC_ACQUIRE);

		for (int j = 0; c && j < CHUNK; j++) {
			int fd = (i << CHUNK_BITS) | j;

			if (shim_fd_kind_of(&c[j]) == SFD_INTERNAL && fd != shim_log_fd) {
				real.close(fd);
				shim_fd_clear(fd);
			}
		}
	}
	shim_fd_unlock();
}
