/* SPDX-License-Identifier: MIT */
/* The preload layer's names: lookups answered by the tunnel's DNS, libc's own resolver
 * entry points, and the redirection of programs that speak DNS themselves. Built on
 * dns.h (messages and the exchange), which knows nothing of the shim. */
#ifndef TS_SHIM_DNS_LOOKUP_H
#define TS_SHIM_DNS_LOOKUP_H

#include <netdb.h>
#include "dns.h"

/* ---- dns_lookup.c: names as the host resolver would look them up ---- */
enum dns_rc {
	DNS_RC_OK,
	DNS_RC_NONAME,  /* no such name (EAI_NONAME, HOST_NOT_FOUND) */
	DNS_RC_NODATA,  /* the name has no address of that family (EAI_NODATA, NO_DATA) */
	DNS_RC_AGAIN,   /* no server answered in time, or they failed (EAI_AGAIN, TRY_AGAIN) */
	DNS_RC_FAIL,    /* refused: the config is unusable, or answers were broken */
	DNS_RC_NOMEM,
};

/* Lookups are the shim's: `DNS =` is set, or a nameserver of resolv.conf is routed
 * into the tunnel (a full tunnel without `DNS =`), or the config is unusable (fail
 * closed). Asked after shim_enter(). */
bool dns_lookup_ours(void);
/* The search list: that of `DNS =`, or resolv.conf's when its nameservers are used. */
char *const *dns_lookup_search(size_t *n);
/* family: AF_INET (A), AF_INET6 (AAAA), AF_UNSPEC (both). /etc/hosts first. */
enum dns_rc dns_lookup_name(const char *name, int family, struct dns_result *out);
/* The name of an address: /etc/hosts, then a PTR query. */
enum dns_rc dns_lookup_addr(const struct dns_addr *a, char *name, size_t len);
/* True if name is a numeric address (the host resolver never looks those up). */
bool dns_is_numeric(const char *name);
/* Asks the servers (`DNS =`, or resolv.conf's when one of them is routed into the
 * tunnel), starting with the one that answered last. */
void dns_lookup_ask(struct dns_question *q, size_t nq);
/* Walks the search list for name as glibc's res_search does, calling fn for each
 * candidate until one settles it (anything but NXDOMAIN, NODATA, SERVFAIL). */
typedef enum dns_status (*dns_try_fn)(const char *name, void *arg);
enum dns_rc dns_search(const char *name, dns_try_fn fn, void *arg);

/* ---- resolve.c: libc's own resolver entry points ---- */
struct addrinfo;
struct hostent;
struct dns_libc {
	int (*getaddrinfo)(const char *, const char *, const struct addrinfo *,
			   struct addrinfo **);
	int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t, char *,
			   socklen_t, int);
	struct hostent *(*gethostbyname)(const char *);
	struct hostent *(*gethostbyname2)(const char *, int);
	int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t,
			       struct hostent **, int *);
	int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t,
				struct hostent **, int *);
	struct hostent *(*gethostbyaddr)(const void *, socklen_t, int);
	int (*gethostbyaddr_r)(const void *, socklen_t, int, struct hostent *, char *, size_t,
			       struct hostent **, int *);
	int (*res_query)(const char *, int, int, unsigned char *, int);
	int (*res_search)(const char *, int, int, unsigned char *, int);
	int (*res_querydomain)(const char *, const char *, int, int, unsigned char *, int);
	int (*res_send)(const unsigned char *, int, unsigned char *, int);
	int (*res_nquery)(res_state, const char *, int, int, unsigned char *, int);
	int (*res_nsearch)(res_state, const char *, int, int, unsigned char *, int);
	int (*res_nquerydomain)(res_state, const char *, const char *, int, int, unsigned char *,
				int);
	int (*res_nsend)(res_state, const unsigned char *, int, unsigned char *, int);
};
extern struct dns_libc dns_libc;
/* Resolves dns_libc; shim_enter() does it (shim_init_tables). */
void dns_libc_init(void);

/* ---- dns_redirect.c: programs that speak DNS themselves ---- */
/* A connect or send from fd to port 53 of a nameserver of /etc/resolv.conf (read at
 * load) goes to the first `DNS =` server instead: returns 1 with *addr and *len
 * pointing at buf, 0 when nothing changes, -1 (errno set) when the socket's family
 * cannot reach any `DNS =` server or the config is unusable (refused rather than
 * leaked). */
int shim_dns_redirect(int fd, const struct sockaddr **addr, socklen_t *len,
		      struct sockaddr_storage *buf);
/* An address that fd received from (or is connected to) and that is the redirected
 * server is shown as the nameserver the program addressed. cap is the size of the
 * caller's buffer, *len the address's length. */
void shim_dns_unredirect(int fd, struct sockaddr *addr, socklen_t cap, socklen_t *len);

/* ---- resolv_conf.c: /etc/resolv.conf, read at load ---- */
#define DNS_RESOLV_MAX 8
struct dns_resolv_conf {
	struct dns_addr ns[DNS_RESOLV_MAX]; /* 127.0.0.1 and ::1 when the file names none */
	size_t n_ns;
	char *search[DNS_RESOLV_MAX];       /* the last search or domain line */
	size_t n_search;
};
extern struct dns_resolv_conf dns_resolv; /* [const] after the constructor */
void shim_dns_resolv_load(void);

#endif
