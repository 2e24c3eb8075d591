/* SPDX-License-Identifier: MIT */
/* A tiny assertion helper for the unit tests: each CHECK counts, failures print
 * file:line and what was expected, and check_done() sets the exit code. */
#ifndef TS_CHECK_H
#define TS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_total, check_failed;

#define CHECK(cond) do { check_total++; if (!(cond)) { check_failed++; \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_INT(got, want) do { long long g_ = (long long)(got), w_ = (long long)(want); \
	check_total++; if (g_ != w_) { check_failed++; \
	fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", __FILE__, __LINE__, #got, w_, g_); } } while (0)
#define CHECK_STR(got, want) do { const char *g_ = (got), *w_ = (want); check_total++; \
	if (!g_ || strcmp(g_, w_) != 0) { check_failed++; \
	fprintf(stderr, "%s:%d: %s:\n  expected \"%s\"\n  got      \"%s\"\n", __FILE__, __LINE__, \
		#got, w_, g_ ? g_ : "(null)"); } } while (0)
#define CHECK_MEM(got, want, n) do { check_total++; if (memcmp((got), (want), (n)) != 0) { \
	check_failed++; fprintf(stderr, "%s:%d: %s differs from %s\n", __FILE__, __LINE__, \
		#got, #want); } } while (0)

static inline int check_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_total, check_failed);
	return check_failed ? 1 : 0;
}

#endif
