/* SPDX-License-Identifier: MIT */
/*
 * sh_keyscan: where a key sits in a process's memory. Reads every mapping of PID
 * through /proc/PID/mem (root, or ptrace rights over PID) and looks for each key in
 * three forms: its 32 raw bytes, those bytes clamped as X25519 uses a private key
 * (what the WireGuard device keeps), and its base64 text.
 *
 *   sh_keyscan PID NAME=BASE64KEY...
 *
 * Prints a line per hit, "hit NAME FORM ADDRESS dd|dump MAPPING", where dd means the
 * mapping is MADV_DONTDUMP (VmFlags "dd" in /proc/PID/smaps: left out of core dumps,
 * as libsodium's guarded allocations are) and dump means a core dump would include it;
 * then "NAME FORM dd=N dump=M" for every key and form ("clamped" only when it differs
 * from raw), and "scanned BYTES" at the end.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <sodium.h>
#include "sh_util.h"

#define CHUNK (1 << 20)

struct needle {
	char name[64];
	const char *form;
	uint8_t bytes[64];
	size_t len;
	unsigned dd, dump;
};

struct mapping {
	unsigned long lo, hi;
	bool dd;
	char name[256];
};

static struct needle needles[64];
static int n_needles;
static uint8_t chunk[CHUNK + 64];

static void add(const char *name, const char *form, const void *b, size_t len)
{
	struct needle *n = &needles[n_needles++];

	snprintf(n->name, sizeof(n->name), "%s", name);
	n->form = form;
	memcpy(n->bytes, b, len);
	n->len = len;
}

static void add_key(const char *arg)
{
	const char *eq = strchr(arg, '=');
	char name[64];
	uint8_t key[32];
	size_t len = 0;

	if (!eq || eq - arg >= (long)sizeof(name) || n_needles + 3 > 64 ||
	    sodium_base642bin(key, 32, eq + 1, strlen(eq + 1), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || len != 32)
		sh_die("not NAME=BASE64KEY: '%s'", arg);
	snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
	add(name, "raw", key, 32);
	key[0] &= 248;
	key[31] = (key[31] & 127) | 64;
	if (memcmp(key, needles[n_needles - 1].bytes, 32)) /* wg genkey's are clamped already */
		add(name, "clamped", key, 32);
	add(name, "base64", eq + 1, strlen(eq + 1));
}

/* Hits in buf (at address base) that end past its first keep bytes, which the previous
 * chunk already showed. */
static void report(unsigned long base, const uint8_t *buf, size_t n, size_t keep,
		   const struct mapping *m)
{
	for (int i = 0; i < n_needles; i++) {
		struct needle *nd = &needles[i];
		const uint8_t *p = buf, *hit;

		while ((hit = memmem(p, n - (size_t)(p - buf), nd->bytes, nd->len))) {
			p = hit + 1;
			if ((size_t)(hit - buf) + nd->len <= keep)
				continue;
			printf("hit %s %s %#lx %s %s\n", nd->name, nd->form, base + (unsigned long)(hit - buf),
			       m->dd ? "dd" : "dump", m->name[0] ? m->name : "[anon]");
			if (m->dd)
				nd->dd++;
			else
				nd->dump++;
		}
	}
}

/* One mapping, in chunks that overlap by more than a needle's length. */
static unsigned long scan(int mem, const struct mapping *m)
{
	unsigned long at = m->lo, done = 0;
	size_t keep = 0;
	ssize_t n;

	while (at < m->hi) {
		size_t want = m->hi - at < CHUNK ? m->hi - at : CHUNK;

		n = pread(mem, chunk + keep, want, (off_t)at);
		if (n <= 0)
			break; /* [vvar] and the like cannot be read */
		report(at - keep, chunk, keep + (size_t)n, keep, m);
		done += (unsigned long)n;
		at += (unsigned long)n;
		n += (ssize_t)keep;
		keep = (size_t)n < 63 ? (size_t)n : 63;
		memmove(chunk, chunk + (size_t)n - keep, keep);
	}
	return done;
}

/* A mapping line of smaps: "lo-hi perms offset dev inode [name]". */
static bool mapping_line(const char *line, struct mapping *m)
{
	int off = 0;

	if (sscanf(line, "%lx-%lx %*s %*s %*s %*s%n", &m->lo, &m->hi, &off) != 2)
		return false;
	while (line[off] == ' ')
		off++;
	snprintf(m->name, sizeof(m->name), "%.*s", (int)strcspn(line + off, "\n"), line + off);
	m->dd = false;
	return true;
}

int main(int argc, char **argv)
{
	char path[64], line[1024];
	unsigned long total = 0;
	struct mapping m;
	bool have = false;
	FILE *smaps;
	int mem;

	sh_prog = "sh_keyscan";
	if (argc < 3 || sodium_init() < 0)
		sh_die("usage: sh_keyscan PID NAME=BASE64KEY...");
	for (int i = 2; i < argc; i++)
		add_key(argv[i]);
	snprintf(path, sizeof(path), "/proc/%s/smaps", argv[1]);
	if (!(smaps = fopen(path, "re")))
		sh_die("%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
	if ((mem = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		sh_die("%s: %s", path, strerror(errno));
	/* A mapping's VmFlags line ends its block: scan it then. */
	while (fgets(line, sizeof(line), smaps)) {
		if (!strncmp(line, "VmFlags:", 8) && have) {
			m.dd = strstr(line, " dd") != NULL;
			total += scan(mem, &m);
			have = false;
		} else if (strchr(line, '-') && mapping_line(line, &m)) {
			have = true;
		}
	}
	for (int i = 0; i < n_needles; i++)
		printf("%s %s dd=%u dump=%u\n", needles[i].name, needles[i].form, needles[i].dd,
		       needles[i].dump);
	printf("scanned %lu\n", total);
	return 0;
}
