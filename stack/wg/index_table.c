/* SPDX-License-Identifier: MIT */
/* Receiver index table. Indices are drawn at random so that they reveal nothing
 * and cannot be guessed by an off-path sender; random values also spread evenly
 * over the buckets, so the low bits are the hash. */
#include <stddef.h>
#include <string.h>

#include <sodium.h>

#include "index_table.h"

static struct index_entry **bucket_of(struct index_table *t, uint32_t index)
{
	return &t->buckets[index & (INDEX_TABLE_BUCKETS - 1)];
}

static bool index_in_use(const struct index_table *t, uint32_t index)
{
	return index_table_lookup(t, index, INDEX_HANDSHAKE | INDEX_KEYPAIR) != NULL;
}

static void link_entry(struct index_table *t, struct index_entry *e)
{
	struct index_entry **b = bucket_of(t, e->index);

	e->next = *b;
	*b = e;
	e->linked = true;
}

void index_table_init(struct index_table *t)
{
	memset(t, 0, sizeof(*t));
}

uint32_t index_table_insert(struct index_table *t, struct index_entry *e)
{
	uint32_t index;

	index_table_remove(t, e);
	do
		index = randombytes_random();
	while (index_in_use(t, index));
	e->index = index;
	link_entry(t, e);
	return index;
}

void index_table_replace(struct index_table *t, struct index_entry *old,
			 struct index_entry *new)
{
	uint32_t index = old->index;

	index_table_remove(t, new);
	index_table_remove(t, old);
	new->index = index;
	link_entry(t, new);
}

void index_table_remove(struct index_table *t, struct index_entry *e)
{
	struct index_entry **p;

	if (!e->linked)
		return;
	for (p = bucket_of(t, e->index); *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	e->next = NULL;
	e->linked = false;
}

struct index_entry *index_table_lookup(const struct index_table *t, uint32_t index,
				       unsigned int type_mask)
{
	struct index_entry *e = t->buckets[index & (INDEX_TABLE_BUCKETS - 1)];

	for (; e; e = e->next)
		if (e->index == index && (e->type & type_mask))
			return e;
	return NULL;
}
