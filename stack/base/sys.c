/* SPDX-License-Identifier: MIT */
/* The process-wide OS boundary (sys.h): the table the embedder set, else libc's.
 * Read on every call the stack makes to the OS, from any thread, so it is one
 * pointer, stored and loaded atomically; set once, before the stack runs. */
#include <stddef.h>
#include "sys.h"

/* A weak reference, not a strong one: the default exists only where
 * stack/base/sys_libc.c is linked (the unit tests and tools, as an object: a weak
 * reference does not pull a member out of an archive). libtunshim.so leaves it out
 * on purpose, because there read() and friends are the shim's own interposers, so
 * there it resolves to NULL and the shim's table, set in its constructor, is the
 * only one. Hidden, so the library gets no dynamic reference to it either. */
extern const struct ts_sys ts_sys_libc __attribute__((weak, visibility("hidden")));

static const struct ts_sys *current;

void ts_sys_set(const struct ts_sys *sys)
{
	__atomic_store_n(&current, sys, __ATOMIC_RELEASE);
}

const struct ts_sys *ts_sys(void)
{
	const struct ts_sys *sys = __atomic_load_n(&current, __ATOMIC_ACQUIRE);

	return sys ? sys : &ts_sys_libc;
}
