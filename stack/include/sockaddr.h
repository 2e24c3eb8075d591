/* SPDX-License-Identifier: MIT */
/* Socket addresses as both layers handle them: lengths, ports, and IPv4-mapped IPv6
 * (::ffff:a.b.c.d), the form in which an AF_INET6 socket reaches IPv4 destinations. */
#ifndef TS_SOCKADDR_H
#define TS_SOCKADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* The largest UDP payload: 65535 less the IPv4 and UDP headers. */
#define TS_UDP_PAYLOAD_MAX 65507

/* The shortest AF_INET6 address the kernel takes: RFC 2133's, without sin6_scope_id. */
#define TS_SIN6_LEN_MIN 24

/* The length of an AF_INET6 address, else of an AF_INET one. */
socklen_t ts_sa_len(const struct sockaddr_storage *ss);
/* ss becomes family's address addr (4 or 16 bytes) with port (network order). */
void ts_sa_make(struct sockaddr_storage *ss, int family, const void *addr, uint16_t port);
/* Copies an AF_INET or AF_INET6 address of len bytes into out (zero-filled), taking
 * every length the kernel takes (a 24-byte AF_INET6 one too); false for anything else. */
bool ts_sa_from(const struct sockaddr *sa, socklen_t len, struct sockaddr_storage *out);
/* The address bytes (4 or 16) of an AF_INET or AF_INET6 address, else NULL. */
const uint8_t *ts_sa_addr(const struct sockaddr_storage *ss);
/* The port, network order (0 for other families). */
uint16_t ts_sa_port(const struct sockaddr_storage *ss);
void ts_sa_set_port(struct sockaddr_storage *ss, uint16_t port);
/* An AF_INET address becomes its IPv4-mapped AF_INET6 form; others stay. */
void ts_sa_map(struct sockaddr_storage *ss);
/* An IPv4-mapped AF_INET6 address becomes AF_INET; true if it was one. */
bool ts_sa_unmap(struct sockaddr_storage *ss);
/* 127/8 or ::1: addr is family's 4 or 16 bytes. */
bool ts_addr_is_loopback(int family, const uint8_t *addr);
/* The same on bare addresses: out[16] = ::ffff:v4. */
void ts_ip6_map(uint8_t out[16], const uint8_t v4[4]);
bool ts_ip6_is_mapped(const uint8_t a[16]);

#endif
