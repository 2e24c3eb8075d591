/* SPDX-License-Identifier: MIT */
/* build/tunshim: runs a program with libtunshim.so preloaded and TUNSHIM_CONFIG set, in
 * the manner of torsocks and proxychains4. The config is not parsed here (the library
 * parses it and reports file:line: errors); the wrapper finds the library, builds the
 * environment, warns about programs that LD_PRELOAD cannot reach, and execs.
 * `tunshim genkey` and `tunshim pubkey` make keys in wg(8)'s format, so a config can be
 * written without wireguard-tools; `tunshim ping` pings through the tunnel (ping.c).
 *
 * Exit status as env(1) and timeout(1) have it: 125 for our own errors, 126 when the
 * program cannot be executed, 127 when it is not found, else the program's own. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <link.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "ping.h"

#ifndef TUNSHIM_VERSION
#define TUNSHIM_VERSION "0.1.0"
#endif

#define NAME "tunshim"
#define LIB_NAME "libtunshim.so"
#define EXIT_TUNSHIM 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ELF_NATIVE_DATA ELFDATA2LSB
#else
#define ELF_NATIVE_DATA ELFDATA2MSB
#endif
#define ELF_NATIVE_CLASS (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)
#define ELF_NATIVE_BITS ((int)sizeof(void *) * 8)

/* Our own ELF header, mapped by the loader; its e_machine is the one we can preload into. */
extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

enum { OPT_LOG_FILE = 256, OPT_VERSION };

struct opts {
	const char *config;
	const char *log;
	const char *log_file;
	char **argv;		/* PROGRAM [ARGS...], NULL-terminated */
};

enum elf_kind { ELF_NONE, ELF_DYNAMIC, ELF_STATIC, ELF_OTHER_CLASS, ELF_OTHER_ARCH };

static const char usage_line[] =
	"usage: " NAME " -c CONFIG [-l LEVEL] [--log-file FILE] [--] PROGRAM [ARGS...]\n"
	"       " NAME " genkey | pubkey\n"
	"       " NAME " ping [--config CONFIG] [-c COUNT] [-W TIMEOUT] [-4|-6] ADDRESS\n";

static const char help_text[] =
	"Run PROGRAM with " LIB_NAME " preloaded: its connections to addresses inside a\n"
	"peer's AllowedIPs go through a WireGuard tunnel that runs inside the process.\n"
	"Everything else goes to the host network as usual.\n"
	"\n"
	"Keys, in the format of wg genkey and wg pubkey:\n"
	"  " NAME " genkey         print a new private key (base64)\n"
	"  " NAME " pubkey         read a private key on stdin, print its public key\n"
	"\n"
	"  " NAME " ping [--config FILE] [-c COUNT] [-W TIMEOUT] [-4|-6] ADDRESS\n"
	"                       ICMP echo through the tunnel, printed as ping prints it\n"
	"                       (needs no privilege; the config from --config or\n"
	"                       $TUNSHIM_CONFIG)\n"
	"(To run a program called genkey, pubkey or ping, put -- before it.)\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE    the wg-quick config (default: $TUNSHIM_CONFIG)\n"
	"  -l, --log LEVEL      error, warn, info or debug (sets TUNSHIM_LOG)\n"
	"      --log-file FILE  log to FILE instead of stderr (sets TUNSHIM_LOG_FILE)\n"
	"  -h, --help           show this help and exit\n"
	"      --version        show the version and exit\n"
	"\n"
	"Environment:\n"
	"  TUNSHIM_CONFIG       the config, when -c is not given\n"
	"  TUNSHIM_LIBRARY      the library to preload (default: " LIB_NAME " beside\n"
	"                       " NAME ", else ../lib/tunshim/" LIB_NAME " from there)\n"
	"\n"
	"Statically linked, setuid, setgid and file-capability programs ignore LD_PRELOAD,\n"
	"so the tunnel cannot reach them; " NAME " warns when it sees one.\n"
	"\n"
	"Exit status: PROGRAM's own, or 125 if " NAME " itself fails, 126 if PROGRAM\n"
	"cannot be executed, 127 if it is not found.\n";

static void vsay(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", NAME, prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
	exit(EXIT_TUNSHIM);
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
	fputs(usage_line, stderr);
	fputs("Try '" NAME " --help' for more information.\n", stderr);
	exit(EXIT_TUNSHIM);
}

static void __attribute__((format(printf, 1, 2))) warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("warning: ", fmt, ap);
	va_end(ap);
}

/* The names the library's ts_log_parse_level() accepts. */
static bool log_level_valid(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0)
			return true;
	return false;
}

/* arg is the argument getopt was reading; glibc leaves optopt 0 for unknown long ones. */
static void __attribute__((noreturn)) bad_option(const char *arg, int c)
{
	bool is_long = strncmp(arg, "--", 2) == 0;
	int name_len = (int)strcspn(arg, "=");

	if (c == ':' && is_long)
		usage_error("option '%s' requires an argument", arg);
	if (c == ':')
		usage_error("option requires an argument -- '%c'", optopt);
	if (is_long && optopt != 0)
		usage_error("option '%.*s' doesn't allow an argument", name_len, arg);
	if (is_long)
		usage_error("unrecognized option '%s'", arg);
	usage_error("invalid option -- '%c'", optopt);
}

static void __attribute__((noreturn)) print_and_exit(const char *a, const char *b)
{
	if (fputs(a, stdout) == EOF || fputs(b, stdout) == EOF || fflush(stdout) == EOF)
		die("cannot write to stdout: %s", strerror(errno));
	exit(0);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-file", required_argument, NULL, OPT_LOG_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c, at = optind;

	/* '+': stop at PROGRAM, so its own options stay its own. ':': our messages. */
	while ((c = getopt_long(argc, argv, "+:c:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'l': o->log = optarg; break;
		case OPT_LOG_FILE: o->log_file = optarg; break;
		case 'h': print_and_exit(usage_line, help_text);
		case OPT_VERSION: print_and_exit(NAME " ", TUNSHIM_VERSION "\n");
		default: bad_option(argv[at], c);
		}
		at = optind;
	}
	if (optind >= argc)
		usage_error("no PROGRAM given");
	o->argv = argv + optind;
}

static void check_opts(struct opts *o)
{
	if (!o->config || !*o->config)
		o->config = getenv("TUNSHIM_CONFIG");
	if (!o->config || !*o->config)
		usage_error("no config: give -c CONFIG or set TUNSHIM_CONFIG");
	if (o->log && !log_level_valid(o->log))
		usage_error("invalid log level '%s' (error, warn, info or debug)", o->log);
	if (o->log_file && !*o->log_file)
		usage_error("empty --log-file");
}

static bool readable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* The directory of our own executable, without a trailing slash. */
static void exe_dir(char dir[PATH_MAX])
{
	ssize_t n = readlink("/proc/self/exe", dir, PATH_MAX - 1);
	char *slash;

	if (n < 0)
		die("cannot find " LIB_NAME ": /proc/self/exe: %s; set TUNSHIM_LIBRARY",
		    strerror(errno));
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
}

static bool library_in(const char *dir, const char *rel, char lib[PATH_MAX])
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, rel);

	return n > 0 && n < (int)sizeof(path) && readable_file(path) && realpath(path, lib);
}

static void library_from_env(const char *env, char lib[PATH_MAX])
{
	struct stat st;

	if (stat(env, &st) != 0 || access(env, R_OK) != 0 || !realpath(env, lib))
		die("cannot read library '%s' (TUNSHIM_LIBRARY): %s", env, strerror(errno));
	if (!S_ISREG(st.st_mode))
		die("library '%s' (TUNSHIM_LIBRARY) is not a regular file", env);
}

static void find_library(char lib[PATH_MAX])
{
	const char *env = getenv("TUNSHIM_LIBRARY");
	char dir[PATH_MAX];

	if (env && *env) {
		library_from_env(env, lib);
	} else {
		exe_dir(dir);
		if (!library_in(dir, LIB_NAME, lib) &&
		    !library_in(dir, "../lib/tunshim/" LIB_NAME, lib))
			die("cannot find " LIB_NAME " in %s or %s/../lib/tunshim; "
			    "set TUNSHIM_LIBRARY", dir, dir);
	}
	/* LD_PRELOAD has no escaping: these would split the path. */
	if (strpbrk(lib, " :"))
		die("library path '%s' contains a space or colon, which LD_PRELOAD cannot carry",
		    lib);
}

static void __attribute__((noreturn)) config_error(const char *path, int err)
{
	die("cannot read config '%s': %s", path, strerror(err));
}

/* Opened, not only stat()ed, so permissions are judged as the library will meet them;
 * O_NONBLOCK so a FIFO without a writer cannot hang us. */
static void resolve_config(const char *path, char abs[PATH_MAX])
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		config_error(path, errno);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
		config_error(path, EISDIR);
	close(fd);
	if (realpath(path, abs))
		return;
	/* /dev/fd/63 from <(...) has no real path; as given, it is still absolute. */
	if (path[0] != '/' || strlen(path) >= PATH_MAX)
		config_error(path, errno);
	strcpy(abs, path);
}

static bool same_file(const char *path, const struct stat *st)
{
	struct stat other;

	return strchr(path, '/') && stat(path, &other) == 0 &&
	       other.st_dev == st->st_dev && other.st_ino == st->st_ino;
}

/* lib first, then the old entries (space- or colon-separated) minus any copy of lib. */
static char *preload_list(const char *lib, const char *old)
{
	size_t len = strlen(lib), cap = len + (old ? strlen(old) : 0) + 2;
	char *out = malloc(cap), *copy = strdup(old ? old : ""), *tok, *save, *end;
	struct stat lib_st;

	if (!out || !copy || stat(lib, &lib_st) != 0)
		die("cannot build LD_PRELOAD: %s", strerror(errno));
	end = stpcpy(out, lib);
	for (tok = strtok_r(copy, " :", &save); tok; tok = strtok_r(NULL, " :", &save)) {
		if (strcmp(tok, lib) == 0 || same_file(tok, &lib_st))
			continue;
		*end++ = ':';
		end = stpcpy(end, tok);
	}
	free(copy);
	return out;
}

/* Relative to the current directory now, so a program that chdirs still finds it. */
static void set_abs_env(const char *name, const char *path)
{
	char cwd[PATH_MAX], abs[PATH_MAX * 2];

	if (path[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			die("cannot resolve '%s': %s", path, strerror(errno));
		if (snprintf(abs, sizeof(abs), "%s/%s", cwd, path) >= (int)sizeof(abs))
			die("cannot resolve '%s': %s", path, strerror(ENAMETOOLONG));
		path = abs;
	}
	if (setenv(name, path, 1) != 0)
		die("cannot set %s: %s", name, strerror(errno));
}

static void setup_env(const struct opts *o, const char *lib, const char *config)
{
	char *preload = preload_list(lib, getenv("LD_PRELOAD"));

	if (setenv("LD_PRELOAD", preload, 1) != 0 ||
	    setenv("TUNSHIM_CONFIG", config, 1) != 0 ||
	    (o->log && setenv("TUNSHIM_LOG", o->log, 1) != 0))
		die("cannot set the environment: %s", strerror(errno));
	free(preload);
	if (o->log_file)
		set_abs_env("TUNSHIM_LOG_FILE", o->log_file);
}

/* What execvp will run, for the checks only: the first executable regular file on PATH. */
static bool resolve_program(const char *name, char path[PATH_MAX])
{
	const char *dirs = getenv("PATH"), *p, *colon;
	struct stat st;
	int n;

	if (strchr(name, '/'))
		return snprintf(path, PATH_MAX, "%s", name) < PATH_MAX;
	if (!dirs)
		dirs = "/bin:/usr/bin";	/* glibc's execvp default */
	for (p = dirs; ; p = colon + 1) {
		colon = strchrnul(p, ':');
		/* An empty entry means the current directory. */
		n = snprintf(path, PATH_MAX, "%.*s%s%s", (int)(colon - p), p,
			     colon == p ? "" : "/", name);
		if (n < PATH_MAX && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(path, X_OK) == 0)
			return true;
		if (!*colon)
			return false;
	}
}

/* Whether the kernel will run path in secure-execution mode (AT_SECURE), where the
 * loader ignores LD_PRELOAD; the rules of fs/exec.c and security/commoncap.c. A
 * set-id bit that makes us what we already are, or file capabilities for real root,
 * change nothing. */
static const char *secure_exec_reason(const char *path, const struct stat *st)
{
	struct statvfs sv;

	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ||
	    (statvfs(path, &sv) == 0 && (sv.f_flag & ST_NOSUID)))
		return NULL;
	if ((st->st_mode & S_ISUID) && st->st_uid != getuid())
		return "is setuid";
	if ((st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && st->st_gid != getgid())
		return "is setgid";
	if (getuid() != 0 && getxattr(path, "security.capability", NULL, 0) > 0)
		return "has file capabilities";
	return NULL;
}

/* DT_SONAME or DT_NEEDED sets a shared object run as a program (the dynamic loader
 * itself, which honours LD_PRELOAD for the program it loads) apart from a static-pie,
 * which has neither. */
static bool elf_is_shared_object(int fd, const ElfW(Phdr) *dyn, off_t size)
{
	ElfW(Dyn) d;

	if (dyn->p_offset > (ElfW(Off))size || dyn->p_filesz > (ElfW(Off))size - dyn->p_offset)
		return false;
	for (ElfW(Xword) off = 0; off + sizeof(d) <= dyn->p_filesz; off += sizeof(d)) {
		if (pread(fd, &d, sizeof(d), (off_t)(dyn->p_offset + off)) != sizeof(d) ||
		    d.d_tag == DT_NULL)
			return false;
		if (d.d_tag == DT_SONAME || d.d_tag == DT_NEEDED)
			return true;
	}
	return false;
}

/* Static means no PT_INTERP. The caller has checked the program headers lie in the file. */
static enum elf_kind elf_linkage(int fd, const ElfW(Ehdr) *eh, off_t size)
{
	ElfW(Phdr) ph, dyn = { .p_type = PT_NULL };

	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh->e_phoff + i * sizeof(ph))) != sizeof(ph))
			return ELF_NONE;
		if (ph.p_type == PT_INTERP)
			return ELF_DYNAMIC;
		if (ph.p_type == PT_DYNAMIC)
			dyn = ph;
	}
	if (eh->e_type == ET_DYN && dyn.p_type == PT_DYNAMIC && elf_is_shared_object(fd, &dyn, size))
		return ELF_NONE;
	return ELF_STATIC;
}

static bool elf_phdrs_valid(const ElfW(Ehdr) *eh, off_t size)
{
	return eh->e_phentsize == sizeof(ElfW(Phdr)) && eh->e_phnum != 0 &&
	       eh->e_phnum != PN_XNUM && eh->e_phoff <= (ElfW(Off))size &&
	       ((ElfW(Off))size - eh->e_phoff) / sizeof(ElfW(Phdr)) >= eh->e_phnum;
}

/* Only a native ELF is read past its identification bytes. */
static enum elf_kind elf_classify(int fd, int *bits)
{
	ElfW(Ehdr) eh;
	struct stat st;

	if (pread(fd, eh.e_ident, EI_NIDENT, 0) != EI_NIDENT ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return ELF_NONE;
	if (eh.e_ident[EI_CLASS] != ELF_NATIVE_CLASS) {
		*bits = eh.e_ident[EI_CLASS] == ELFCLASS32 ? 32 : 64;
		return eh.e_ident[EI_CLASS] == ELFCLASS32 || eh.e_ident[EI_CLASS] == ELFCLASS64 ?
		       ELF_OTHER_CLASS : ELF_NONE;
	}
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || fstat(fd, &st) != 0)
		return ELF_NONE;
	if (eh.e_ident[EI_DATA] != ELF_NATIVE_DATA || eh.e_machine != __ehdr_start.e_machine)
		return ELF_OTHER_ARCH;
	if ((eh.e_type != ET_EXEC && eh.e_type != ET_DYN) || !elf_phdrs_valid(&eh, st.st_size))
		return ELF_NONE;
	return elf_linkage(fd, &eh, st.st_size);
}

static void warn_elf(const char *path, int fd)
{
	int bits = 0;

	switch (elf_classify(fd, &bits)) {
	case ELF_STATIC:
		warn("%s is statically linked; LD_PRELOAD cannot reach it, "
		     "its traffic will not use the tunnel", path);
		break;
	case ELF_OTHER_CLASS:
		warn("%s is a %d-bit program; the %d-bit " LIB_NAME " cannot be preloaded "
		     "into it, its traffic will not use the tunnel", path, bits, ELF_NATIVE_BITS);
		break;
	case ELF_OTHER_ARCH:
		warn("%s is built for another architecture; " LIB_NAME " cannot be preloaded "
		     "into it, its traffic will not use the tunnel", path);
		break;
	default:
		break;
	}
}

/* Warnings only: execvp decides what really happens. Unreadable files are not judged. */
static void check_program(const char *name)
{
	char path[PATH_MAX];
	const char *why;
	struct stat st;
	int fd;

	if (!resolve_program(name, path) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	why = secure_exec_reason(path, &st);
	if (why)
		warn("%s %s; the loader ignores LD_PRELOAD for it, "
		     "its traffic will not use the tunnel", path, why);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	warn_elf(path, fd);
	close(fd);
}

/* ---- genkey, pubkey ---- */

#define KEY_LEN crypto_scalarmult_curve25519_BYTES
#define KEY_B64_LEN 44	/* 32 bytes: 43 characters and one '=' */

static int __attribute__((format(printf, 2, 3))) key_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s: ", NAME, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static bool write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Written with write(2), not stdio, so no copy of a private key stays in a buffer. */
static int put_key(const char *cmd, const uint8_t key[KEY_LEN])
{
	char line[KEY_B64_LEN + 2];
	bool ok;

	sodium_bin2base64(line, sizeof(line), key, KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
	line[KEY_B64_LEN] = '\n';
	ok = write_all(STDOUT_FILENO, line, KEY_B64_LEN + 1);
	sodium_memzero(line, sizeof(line));
	return ok ? 0 : key_fail(cmd, "cannot write to stdout: %s", strerror(errno));
}

static bool random_bytes(uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = getrandom(buf, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* As wg genkey: a key written to a file others can read deserves a word. */
static void warn_if_world_accessible(void)
{
	struct stat st;

	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO))
		warn("writing to world accessible file; consider setting the umask to 077 "
		     "and trying again");
}

static int genkey_main(void)
{
	uint8_t key[KEY_LEN];
	int rc;

	if (!random_bytes(key, sizeof(key)))
		return key_fail("genkey", "getrandom: %s", strerror(errno));
	/* The clamping X25519 applies anyway (RFC 7748), stored as wg stores it. */
	key[0] &= 248;
	key[31] &= 127;
	key[31] |= 64;
	warn_if_world_accessible();
	rc = put_key("genkey", key);
	sodium_memzero(key, sizeof(key));
	return rc;
}

/* stdin, whole, into buf (NUL-terminated); false on a read error. *len is past the
 * buffer's size when the input does not fit, which no key does. */
static bool read_stdin(char *buf, size_t size, size_t *len)
{
	char scrap[256];
	ssize_t n;

	*len = 0;
	for (;;) {
		if (*len < size - 1)
			n = read(STDIN_FILENO, buf + *len, size - 1 - *len);
		else
			n = read(STDIN_FILENO, scrap, sizeof(scrap));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	sodium_memzero(scrap, sizeof(scrap));
	buf[*len < size ? *len : size - 1] = '\0';
	return n == 0;
}

/* Exactly one base64 key, then only whitespace; decoded as the config parser does. */
static bool parse_private_key(char *text, size_t len, uint8_t key[KEY_LEN])
{
	size_t bin_len = 0;
	const char *end = NULL;

	while (len > 0 && strchr(" \t\r\n\v\f", text[len - 1]) && text[len - 1] != '\0')
		len--;
	return len == KEY_B64_LEN &&
	       sodium_base642bin(key, KEY_LEN, text, len, NULL, &bin_len, &end,
				 sodium_base64_VARIANT_ORIGINAL) == 0 &&
	       bin_len == KEY_LEN && end == text + len;
}

static int pubkey_main(void)
{
	char text[128];
	uint8_t priv[KEY_LEN], pub[KEY_LEN];
	size_t len;
	int rc;

	if (!read_stdin(text, sizeof(text), &len))
		rc = key_fail("pubkey", "cannot read stdin: %s", strerror(errno));
	else if (len >= sizeof(text) || !parse_private_key(text, len, priv) ||
		 crypto_scalarmult_base(pub, priv) != 0)
		rc = key_fail("pubkey", "not a valid base64 private key");
	else
		rc = put_key("pubkey", pub);
	sodium_memzero(text, sizeof(text));
	sodium_memzero(priv, sizeof(priv));
	return rc;
}

/* `tunshim genkey` / `tunshim pubkey`, or -1 when argv asks for something else. */
static int key_command(int argc, char **argv)
{
	bool gen;

	if (argc < 2 || (strcmp(argv[1], "genkey") != 0 && strcmp(argv[1], "pubkey") != 0))
		return -1;
	gen = argv[1][0] == 'g';
	if (argc > 2)
		return key_fail(argv[1], "takes no arguments (usage: " NAME " %s%s)", argv[1],
				gen ? " > private.key" : " < private.key");
	if (sodium_init() < 0)
		return key_fail(argv[1], "cannot initialise libsodium");
	return gen ? genkey_main() : pubkey_main();
}

/* ---- ping ---- */

#define PING_STAGE "TUNSHIM_PING_PRELOADED"

/* --config FILE or --config=FILE among ping's arguments (before a --). */
static const char *ping_config(int argc, char **argv)
{
	for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			return argv[i + 1];
	}
	return NULL;
}

/* `tunshim ping ...`: runs this program again with the library preloaded and the
 * config set, as any wrapped program; that copy (PING_STAGE set) pings. -1 when argv
 * asks for something else. */
static int ping_command(int argc, char **argv)
{
	struct opts o = { 0 };
	char lib[PATH_MAX], config[PATH_MAX];
	const char *path;

	if (argc < 2 || strcmp(argv[1], "ping") != 0)
		return -1;
	find_library(lib);
	if (getenv(PING_STAGE))
		return tunshim_ping_preloaded(argc - 1, argv + 1, lib);
	path = ping_config(argc, argv);
	if (!path || !*path)
		path = getenv("TUNSHIM_CONFIG");
	if (!path || !*path)
		usage_error("ping: no config: give --config FILE or set TUNSHIM_CONFIG");
	resolve_config(path, config);
	setup_env(&o, lib, config);
	if (setenv(PING_STAGE, "1", 1) != 0)
		die("cannot set the environment: %s", strerror(errno));
	execv("/proc/self/exe", argv);
	die("cannot run /proc/self/exe again: %s", strerror(errno));
}

static int exec_program(char **argv)
{
	int err;

	execvp(argv[0], argv);
	err = errno;
	if (err == ENOENT && !strchr(argv[0], '/'))
		fprintf(stderr, "%s: '%s': command not found\n", NAME, argv[0]);
	else
		fprintf(stderr, "%s: '%s': %s\n", NAME, argv[0], strerror(err));
	return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	char lib[PATH_MAX], config[PATH_MAX];
	int rc = key_command(argc, argv);

	if (rc >= 0 || (rc = ping_command(argc, argv)) >= 0)
		return rc;
	parse_args(argc, argv, &o);
	check_opts(&o);
	resolve_config(o.config, config);
	find_library(lib);
	setup_env(&o, lib, config);
	check_program(o.argv[0]);
	return exec_program(o.argv);
}
