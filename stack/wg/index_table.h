/* SPDX-License-Identifier: MIT */
/* Receiver indices: the random 32-bit numbers we hand to peers in handshake
 * messages, and that come back on responses, cookie replies and data. Each maps
 * to one peer's pending handshake or one of its keypairs. Entries are embedded
 * in their owners (no allocation); buckets chain them. */
#ifndef TS_INDEX_TABLE_H
#define TS_INDEX_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#define INDEX_TABLE_BUCKETS 256

enum index_type {
	INDEX_HANDSHAKE = 1 << 0,
	INDEX_KEYPAIR = 1 << 1,
};

struct wg_peer;

struct index_entry {
	struct index_entry *next;
	struct wg_peer *peer;
	void *obj;              /* the handshake or keypair slot this index names */
	uint32_t index;
	uint8_t type;
	bool linked;
};

struct index_table {
	struct index_entry *buckets[INDEX_TABLE_BUCKETS];
};

void index_table_init(struct index_table *t);
/* Links e under a fresh random index, unique in the table, and returns it. An
 * entry that was already linked first loses its old index. */
uint32_t index_table_insert(struct index_table *t, struct index_entry *e);
/* Puts new in old's place under old's index (a handshake becoming a keypair keeps
 * the index the peer already knows). old must be linked; new ends up linked. */
void index_table_replace(struct index_table *t, struct index_entry *old,
			 struct index_entry *new);
/* Unlinks e; harmless when it is not linked. */
void index_table_remove(struct index_table *t, struct index_entry *e);
/* The entry for index whose type is in type_mask, or NULL. */
struct index_entry *index_table_lookup(const struct index_table *t, uint32_t index,
				       unsigned int type_mask);

#endif
