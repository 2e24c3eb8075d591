/* SPDX-License-Identifier: MIT */
/* AllowedIPs: longest-prefix match from an inner address to a peer, v4 and v6. */
#ifndef TS_ALLOWEDIPS_H
#define TS_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

struct allowedips_node;

struct allowedips {
	struct allowedips_node *root4;
	struct allowedips_node *root6;
};

void allowedips_init(struct allowedips *t);
void allowedips_free(struct allowedips *t);
/* family is AF_INET (addr: 4 bytes) or AF_INET6 (16 bytes); bits beyond cidr
 * are ignored. Inserting an existing prefix moves it to the new peer (as wg
 * does). Returns 0, or -EINVAL / -ENOMEM. */
int allowedips_insert(struct allowedips *t, int family, const uint8_t *addr,
		      uint8_t cidr, void *peer);
/* The peer of the longest matching prefix, or NULL. */
void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *addr);
/* Drops every prefix that maps to peer. */
void allowedips_remove_peer(struct allowedips *t, void *peer);

#endif
