/* SPDX-License-Identifier: MIT */
/* AllowedIPs: a path-compressed binary trie per address family.
 *
 * Every node holds a prefix (key masked to cidr). A child always has a longer
 * prefix than its parent and extends it, so along any path cidr strictly
 * grows: a path is at most 129 nodes long, which bounds the recursion in the
 * teardown helpers. Nodes without a peer exist only to join two subtrees that
 * diverge; removal keeps it that way by collapsing or freeing them. Lookups
 * walk down iteratively and never allocate.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "allowedips.h"

#define ALLOWEDIPS_KEY_LEN 16

struct allowedips_node {
	struct allowedips_node *bit[2];
	void *peer;             /* NULL: a join node with two children */
	uint8_t cidr;
	uint8_t key[ALLOWEDIPS_KEY_LEN]; /* bits beyond cidr are zero */
};

/* The root slot and key width of a family, or NULL for an unknown family. */
static struct allowedips_node **family_root(struct allowedips *t, int family,
					    uint8_t *bits)
{
	if (family == AF_INET) {
		*bits = 32;
		return &t->root4;
	}
	if (family == AF_INET6) {
		*bits = 128;
		return &t->root6;
	}
	return NULL;
}

/* Bit number i of key, counting from the most significant bit of byte 0. */
static unsigned int bit_at(const uint8_t *key, unsigned int i)
{
	return (key[i / 8] >> (7 - i % 8)) & 1;
}

static void mask_key(uint8_t *key, unsigned int cidr)
{
	unsigned int i;

	for (i = 0; i < ALLOWEDIPS_KEY_LEN; i++) {
		if (cidr >= 8 * (i + 1))
			continue;
		key[i] &= cidr > 8 * i ? (uint8_t)(0xff << (8 - (cidr - 8 * i))) : 0;
	}
}

/* How many leading bits a and b share, capped at limit. */
static unsigned int common_bits(const uint8_t *a, const uint8_t *b, unsigned int limit)
{
	unsigned int i = 0;

	while (i + 8 <= limit && a[i / 8] == b[i / 8])
		i += 8;
	while (i < limit && bit_at(a, i) == bit_at(b, i))
		i++;
	return i;
}

/* Whether the first cidr bits of addr equal the node's prefix. */
static bool prefix_matches(const struct allowedips_node *n, const uint8_t *addr)
{
	unsigned int full = n->cidr / 8, rest = n->cidr % 8;
	uint8_t mask;

	if (memcmp(n->key, addr, full) != 0)
		return false;
	if (!rest)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (addr[full] & mask) == n->key[full];
}

static struct allowedips_node *node_new(const uint8_t *key, uint8_t cidr, void *peer)
{
	struct allowedips_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	memcpy(n->key, key, ALLOWEDIPS_KEY_LEN);
	mask_key(n->key, cidr);
	n->cidr = cidr;
	n->peer = peer;
	return n;
}

/* Hangs the new prefix below *link, where *link (if any) no longer lies on
 * the new prefix's path: either the new prefix covers it, or the two diverge
 * and need a join node at their common length. */
static int attach(struct allowedips_node **link, const uint8_t *key, uint8_t cidr,
		  unsigned int common, void *peer)
{
	struct allowedips_node *old = *link, *node, *join;

	node = node_new(key, cidr, peer);
	if (!node)
		return -ENOMEM;
	if (!old || common == cidr) {
		if (old)
			node->bit[bit_at(old->key, cidr)] = old;
		*link = node;
		return 0;
	}
	join = node_new(key, (uint8_t)common, NULL);
	if (!join) {
		free(node);
		return -ENOMEM;
	}
	join->bit[bit_at(old->key, common)] = old;
	join->bit[bit_at(node->key, common)] = node;
	*link = join;
	return 0;
}

int allowedips_insert(struct allowedips *t, int family, const uint8_t *addr,
		      uint8_t cidr, void *peer)
{
	struct allowedips_node **link, *n;
	uint8_t key[ALLOWEDIPS_KEY_LEN] = { 0 };
	unsigned int common;
	uint8_t bits;

	link = family_root(t, family, &bits);
	if (!link || !addr || !peer || cidr > bits)
		return -EINVAL;
	memcpy(key, addr, bits / 8);
	mask_key(key, cidr);
	while ((n = *link)) {
		common = common_bits(n->key, key, n->cidr < cidr ? n->cidr : cidr);
		if (common < n->cidr)
			break;
		if (n->cidr == cidr) {
			n->peer = peer;
			return 0;
		}
		link = &n->bit[bit_at(key, n->cidr)];
	}
	return attach(link, key, cidr, n ? common : cidr, peer);
}

void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *addr)
{
	const struct allowedips_node *n;
	void *best = NULL;
	unsigned int bits;

	if (family == AF_INET) {
		n = t->root4;
		bits = 32;
	} else if (family == AF_INET6) {
		n = t->root6;
		bits = 128;
	} else {
		return NULL;
	}
	while (n && prefix_matches(n, addr)) {
		if (n->peer)
			best = n->peer;
		if (n->cidr == bits)
			break;
		n = n->bit[bit_at(addr, n->cidr)];
	}
	return best;
}

/* Returns what should take n's place once peer is gone from its subtree. */
static struct allowedips_node *prune(struct allowedips_node *n, void *peer)
{
	struct allowedips_node *child;

	if (!n)
		return NULL;
	n->bit[0] = prune(n->bit[0], peer);
	n->bit[1] = prune(n->bit[1], peer);
	if (n->peer == peer)
		n->peer = NULL;
	if (n->peer || (n->bit[0] && n->bit[1]))
		return n;
	/* A join node with one child or none adds nothing to any lookup. */
	child = n->bit[0] ? n->bit[0] : n->bit[1];
	free(n);
	return child;
}

void allowedips_remove_peer(struct allowedips *t, void *peer)
{
	if (!peer)
		return;
	t->root4 = prune(t->root4, peer);
	t->root6 = prune(t->root6, peer);
}

static void free_subtree(struct allowedips_node *n)
{
	if (!n)
		return;
	free_subtree(n->bit[0]);
	free_subtree(n->bit[1]);
	free(n);
}

void allowedips_init(struct allowedips *t)
{
	t->root4 = NULL;
	t->root6 = NULL;
}

void allowedips_free(struct allowedips *t)
{
	free_subtree(t->root4);
	free_subtree(t->root6);
	allowedips_init(t);
}
