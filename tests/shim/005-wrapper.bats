#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# build/tunshim, the wrapper command: its options and messages, the exit codes it shares
# with env(1) (125 its own errors, 126 cannot execute, 127 not found), the environment the
# program sees, where it finds the library, and its warnings about programs LD_PRELOAD
# cannot reach; and its key commands (`tunshim genkey`, `tunshim pubkey`), checked against
# wg(8). A do-nothing library stands in for libtunshim.so, so nothing here depends on the
# shim; no network. The privilege tests need root (they run programs as nobody).
# TUNSHIM names the wrapper under test (default: build/tunshim, from `make build/tunshim`).

bats_require_minimum_version 1.5.0

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export TUNSHIM=${TUNSHIM:-${TUNSHIM_BUILD:-$ROOT/build}/tunshim}
	if [ ! -x "$TUNSHIM" ]; then
		echo "$TUNSHIM is missing: run 'make build/tunshim'" >&2
		return 1
	fi
	# World-readable, so programs run as nobody can reach what they need.
	export W
	W=$(mktemp -d "${TMPDIR:-/tmp}/tunshim-wrapper.XXXXXX")
	chmod 755 "$W"
	mkdir -p "$W/lib" "$W/bin"
	cc -shared -fPIC -o "$W/lib/libdummy.so" -x c /dev/null
	export DUMMY=$W/lib/libdummy.so
	printf '[Interface]\n# not parsed by the wrapper\n' >"$W/wg0.conf"
	export CONF=$W/wg0.conf
}

teardown_file() {
	rm -rf "$W"
}

setup() {
	unset TUNSHIM_CONFIG TUNSHIM_LOG TUNSHIM_LOG_FILE LD_PRELOAD
	export TUNSHIM_LIBRARY=$DUMMY
	T=$BATS_TEST_TMPDIR
}

expect_eq() {
	[ "$3" = "$2" ] && return 0
	printf '%s: expected %q, got %q\n' "$1" "$2" "$3" >&2
	return 1
}

expect_has() {
	[[ "$3" == *"$2"* ]] && return 0
	printf '%s: expected it to contain %q, got %q\n' "$1" "$2" "$3" >&2
	return 1
}

expect_lacks() {
	[[ "$3" != *"$2"* ]] && return 0
	printf '%s: expected no %q, got %q\n' "$1" "$2" "$3" >&2
	return 1
}

# shellcheck disable=SC2154 # $stderr is set by run --separate-stderr
# A wrapper error: exit 125, the message on stderr, nothing on stdout.
expect_tunshim_error() {
	expect_eq "exit status" 125 "$status"
	expect_has "stderr" "$1" "$stderr"
	expect_eq "stdout" "" "$output"
}

expect_usage_error() {
	expect_tunshim_error "$1"
	expect_has "stderr" "usage: tunshim -c CONFIG" "$stderr"
}

# The value of NAME in `env` output held in $lines; fails when NAME is absent.
env_of() {
	local line
	for line in "${lines[@]}"; do
		if [[ "$line" == "$1="* ]]; then
			echo "${line#*=}"
			return 0
		fi
	done
	echo "$1 is not in the program's environment" >&2
	return 1
}

# Runs the wrapper as nobody (needs root); $W and the wrapper's copy there are readable.
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

require_root_tools() {
	if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
		skip "needs root and setpriv (to run a program as nobody)"
	fi
	if findmnt -no OPTIONS -T "$W" 2>/dev/null | grep -qw nosuid; then
		skip "$W is on a nosuid mount: set-id bits do not apply there"
	fi
	cp "$TUNSHIM" "$W/bin/tunshim"
}

@test "--help and -h print the usage to stdout and exit 0" {
	local opt
	for opt in --help -h; do
		run --separate-stderr "$TUNSHIM" "$opt"
		expect_eq "$opt exit status" 0 "$status"
		expect_has "$opt stdout" "usage: tunshim -c CONFIG [-l LEVEL] [--log-file FILE] [--] PROGRAM" "$output"
		expect_has "$opt stdout" "TUNSHIM_LIBRARY" "$output"
		expect_eq "$opt stderr" "" "$stderr"
	done
}

@test "--version prints the name and version to stdout and exits 0" {
	run --separate-stderr "$TUNSHIM" --version
	expect_eq "exit status" 0 "$status"
	[[ "$output" =~ ^tunshim\ [0-9][^\ ]*$ ]] || { echo "stdout: got '$output'" >&2; false; }
	expect_eq "stderr" "" "$stderr"
}

@test "no PROGRAM is a usage error (125)" {
	run --separate-stderr "$TUNSHIM" -c "$CONF"
	expect_usage_error "tunshim: no PROGRAM given"
	run --separate-stderr "$TUNSHIM"
	expect_usage_error "tunshim: no PROGRAM given"
}

@test "unknown options are usage errors (125)" {
	run --separate-stderr "$TUNSHIM" -x -c "$CONF" true
	expect_usage_error "tunshim: invalid option -- 'x'"
	run --separate-stderr "$TUNSHIM" --bogus -c "$CONF" true
	expect_usage_error "tunshim: unrecognized option '--bogus'"
	run --separate-stderr "$TUNSHIM" --help=yes
	expect_usage_error "tunshim: option '--help' doesn't allow an argument"
}

@test "-c, --config and --log without a value are usage errors (125)" {
	run --separate-stderr "$TUNSHIM" -c
	expect_usage_error "tunshim: option requires an argument -- 'c'"
	run --separate-stderr "$TUNSHIM" --config
	expect_usage_error "tunshim: option '--config' requires an argument"
	run --separate-stderr "$TUNSHIM" -c "$CONF" --log
	expect_usage_error "tunshim: option '--log' requires an argument"
}

@test "an unknown log level is a usage error (125)" {
	run --separate-stderr "$TUNSHIM" -c "$CONF" -l loud true
	expect_usage_error "tunshim: invalid log level 'loud'"
}

@test "without -c and without TUNSHIM_CONFIG: usage error (125)" {
	run --separate-stderr "$TUNSHIM" true
	expect_usage_error "tunshim: no config: give -c CONFIG or set TUNSHIM_CONFIG"
	TUNSHIM_CONFIG='' run --separate-stderr "$TUNSHIM" true
	expect_usage_error "tunshim: no config"
}

@test "TUNSHIM_CONFIG stands in for -c, made absolute; -c wins over it" {
	cd "$W"
	TUNSHIM_CONFIG=wg0.conf run --separate-stderr "$TUNSHIM" env
	expect_eq "exit status" 0 "$status"
	expect_eq "TUNSHIM_CONFIG" "$CONF" "$(env_of TUNSHIM_CONFIG)"
	cp "$CONF" "$T/other.conf"
	TUNSHIM_CONFIG=wg0.conf run --separate-stderr "$TUNSHIM" -c "$T/other.conf" env
	expect_eq "TUNSHIM_CONFIG" "$T/other.conf" "$(env_of TUNSHIM_CONFIG)"
}

@test "a missing config: 125 and the reason" {
	cd "$T"
	run --separate-stderr "$TUNSHIM" -c x.conf -- true
	expect_tunshim_error "tunshim: cannot read config 'x.conf': No such file or directory"
	run --separate-stderr "$TUNSHIM" -c "$T" -- true
	expect_tunshim_error "tunshim: cannot read config '$T': Is a directory"
}

@test "an unreadable config: 125 and the reason" {
	local conf=$W/unreadable.conf
	cp "$CONF" "$conf"
	chmod 000 "$conf"
	if [ "$(id -u)" = 0 ]; then
		require_root_tools
		run --separate-stderr as_nobody "$W/bin/tunshim" -c "$conf" -- true
	else
		run --separate-stderr "$TUNSHIM" -c "$conf" -- true
	fi
	expect_tunshim_error "tunshim: cannot read config '$conf': Permission denied"
}

@test "a config from <(...) is passed on as given" {
	# shellcheck disable=SC2016 # expanded by the inner shell
	run --separate-stderr bash -c '"$TUNSHIM" -c <(echo x) -- printenv TUNSHIM_CONFIG'
	expect_eq "exit status" 0 "$status"
	[[ "$output" == /dev/fd/* ]] || { echo "TUNSHIM_CONFIG: got '$output'" >&2; false; }
}

@test "a program that is not found: 127" {
	# A PATH entry we cannot search turns "not found" into EACCES (126), as with env(1).
	PATH=/usr/bin:/bin run -127 --separate-stderr "$TUNSHIM" -c "$CONF" -- nosuchprog-tunshim
	expect_eq "exit status" 127 "$status"
	expect_eq "stderr" "tunshim: 'nosuchprog-tunshim': command not found" "$stderr"
	expect_eq "stdout" "" "$output"
	run -127 --separate-stderr "$TUNSHIM" -c "$CONF" -- "$T/nosuchprog"
	expect_eq "exit status" 127 "$status"
	expect_eq "stderr" "tunshim: '$T/nosuchprog': No such file or directory" "$stderr"
}

@test "a program that cannot be executed: 126" {
	printf '#!/bin/sh\nexit 0\n' >"$T/noexec"
	chmod 644 "$T/noexec"
	run --separate-stderr "$TUNSHIM" -c "$CONF" -- "$T/noexec"
	expect_eq "exit status" 126 "$status"
	expect_eq "stderr" "tunshim: '$T/noexec': Permission denied" "$stderr"
	run --separate-stderr "$TUNSHIM" -c "$CONF" -- "$T"
	expect_eq "exit status (a directory)" 126 "$status"
}

@test "the program sees LD_PRELOAD, an absolute TUNSHIM_CONFIG and the log settings" {
	cd "$W"
	run --separate-stderr "$TUNSHIM" -c wg0.conf -l DEBUG --log-file ts.log -- env
	expect_eq "exit status" 0 "$status"
	expect_eq "stderr" "" "$stderr"
	expect_eq "LD_PRELOAD" "$DUMMY" "$(env_of LD_PRELOAD)"
	expect_eq "TUNSHIM_CONFIG" "$CONF" "$(env_of TUNSHIM_CONFIG)"
	expect_eq "TUNSHIM_LOG" DEBUG "$(env_of TUNSHIM_LOG)"
	expect_eq "TUNSHIM_LOG_FILE" "$W/ts.log" "$(env_of TUNSHIM_LOG_FILE)"
	run --separate-stderr "$TUNSHIM" --config "$CONF" --log warn --log-file /dev/null env
	expect_eq "TUNSHIM_LOG (long option)" warn "$(env_of TUNSHIM_LOG)"
	expect_eq "TUNSHIM_LOG_FILE (long option)" /dev/null "$(env_of TUNSHIM_LOG_FILE)"
	run --separate-stderr "$TUNSHIM" -c "$CONF" env
	for name in TUNSHIM_LOG TUNSHIM_LOG_FILE; do
		if env_of "$name" 2>/dev/null; then
			echo "$name is set without its option" >&2
			false
		fi
	done
}

@test "an existing LD_PRELOAD is kept after ours, and ours is not added twice" {
	cp "$DUMMY" "$T/a.so"
	cp "$DUMMY" "$T/b.so"
	LD_PRELOAD="$T/a.so $T/b.so" run --separate-stderr "$TUNSHIM" -c "$CONF" -- env
	expect_eq "exit status" 0 "$status"
	expect_eq "LD_PRELOAD" "$DUMMY:$T/a.so:$T/b.so" "$(env_of LD_PRELOAD)"
	LD_PRELOAD="$T/a.so:$DUMMY" run --separate-stderr "$TUNSHIM" -c "$CONF" -- env
	expect_eq "LD_PRELOAD (ours already there)" "$DUMMY:$T/a.so" "$(env_of LD_PRELOAD)"
	ln -s "$DUMMY" "$T/link.so"
	LD_PRELOAD="$T/link.so $T/b.so" run --separate-stderr "$TUNSHIM" -c "$CONF" -- env
	expect_eq "LD_PRELOAD (ours by another path)" "$DUMMY:$T/b.so" "$(env_of LD_PRELOAD)"
}

@test "-- ends the options: what follows is the program, even with a leading dash" {
	PATH=/usr/bin:/bin run -127 --separate-stderr "$TUNSHIM" -c "$CONF" -- -weird-prog-name
	expect_eq "exit status" 127 "$status"
	expect_eq "stderr" "tunshim: '-weird-prog-name': command not found" "$stderr"
	printf '#!/bin/sh\necho "weird ran with $*"\n' >"$T/-weird-prog-name"
	chmod 755 "$T/-weird-prog-name"
	PATH=$T:$PATH run --separate-stderr "$TUNSHIM" -c "$CONF" -- -weird-prog-name -c x
	expect_eq "exit status" 0 "$status"
	expect_eq "stdout" "weird ran with -c x" "$output"
}

@test "options after PROGRAM are the program's" {
	# shellcheck disable=SC2016 # expanded by sh
	run --separate-stderr "$TUNSHIM" -c "$CONF" sh -c 'echo "$0 $1"' -h --version
	expect_eq "exit status" 0 "$status"
	expect_eq "stdout" "-h --version" "$output"
}

@test "the program's exit status and death by signal pass through" {
	run "$TUNSHIM" -c "$CONF" -- sh -c 'exit 7'
	expect_eq "exit status" 7 "$status"
	run "$TUNSHIM" -c "$CONF" sh -c 'kill -TERM $$'
	expect_eq "exit status (SIGTERM)" 143 "$status"
}

@test "the library is found beside the wrapper, then in ../lib/tunshim" {
	unset TUNSHIM_LIBRARY
	mkdir -p "$T/a/bin" "$T/a/lib/tunshim"
	cp "$TUNSHIM" "$T/a/bin/tunshim"
	run --separate-stderr "$T/a/bin/tunshim" -c "$CONF" -- true
	expect_tunshim_error "tunshim: cannot find libtunshim.so in $T/a/bin or $T/a/bin/../lib/tunshim; set TUNSHIM_LIBRARY"
	cp "$DUMMY" "$T/a/lib/tunshim/libtunshim.so"
	run --separate-stderr "$T/a/bin/tunshim" -c "$CONF" -- printenv LD_PRELOAD
	expect_eq "LD_PRELOAD from ../lib/tunshim" "$T/a/lib/tunshim/libtunshim.so" "$output"
	cp "$DUMMY" "$T/a/bin/libtunshim.so"
	run --separate-stderr "$T/a/bin/tunshim" -c "$CONF" -- printenv LD_PRELOAD
	expect_eq "LD_PRELOAD from beside the wrapper" "$T/a/bin/libtunshim.so" "$output"
	# Through a symlink the wrapper still looks beside its real file.
	ln -s "$T/a/bin/tunshim" "$T/link"
	run --separate-stderr "$T/link" -c "$CONF" -- printenv LD_PRELOAD
	expect_eq "LD_PRELOAD via a symlinked wrapper" "$T/a/bin/libtunshim.so" "$output"
}

@test "TUNSHIM_LIBRARY overrides the search, and must exist" {
	mkdir -p "$T/bin"
	cp "$TUNSHIM" "$T/bin/tunshim"
	cp "$DUMMY" "$T/bin/libtunshim.so"
	run --separate-stderr "$T/bin/tunshim" -c "$CONF" -- printenv LD_PRELOAD
	expect_eq "LD_PRELOAD" "$DUMMY" "$output"
	TUNSHIM_LIBRARY=$T/missing.so run --separate-stderr "$T/bin/tunshim" -c "$CONF" -- true
	expect_tunshim_error "tunshim: cannot read library '$T/missing.so' (TUNSHIM_LIBRARY): No such file or directory"
}

@test "a statically linked program gets a warning, and still runs" {
	local msg="is statically linked; LD_PRELOAD cannot reach it, its traffic will not use the tunnel"
	if ! printf 'int main(void) { return 3; }\n' | cc -static -o "$T/static" -x c - 2>/dev/null; then
		skip "cannot build a static program here (cc -static: no libc.a?)"
	fi
	run --separate-stderr "$TUNSHIM" -c "$CONF" -- "$T/static"
	expect_eq "exit status" 3 "$status"
	expect_eq "stderr" "tunshim: warning: $T/static $msg" "$stderr"
	# Found through PATH, the warning names the file that was checked.
	PATH=$T:$PATH run --separate-stderr "$TUNSHIM" -c "$CONF" -- static
	expect_eq "stderr (via PATH)" "tunshim: warning: $T/static $msg" "$stderr"
	if printf 'int main(void) { return 3; }\n' | cc -static-pie -o "$T/spie" -x c - 2>/dev/null; then
		run --separate-stderr "$TUNSHIM" -c "$CONF" -- "$T/spie"
		expect_eq "stderr (static-pie)" "tunshim: warning: $T/spie $msg" "$stderr"
	fi
}

@test "dynamic programs, #! scripts and the loader run as a program get no warning" {
	local ldso
	printf '#!/bin/sh\nexit 0\n' >"$T/script"
	chmod 755 "$T/script"
	for prog in true "$T/script" sh; do
		run --separate-stderr "$TUNSHIM" -c "$CONF" -- "$prog" -c true
		expect_eq "$prog: stderr" "" "$stderr"
	done
	# The loader has no PT_INTERP either, but it honours LD_PRELOAD for what it loads.
	ldso=$(ldd /bin/true 2>/dev/null | awk '$1 ~ /^\// { print $1; exit }')
	[ -x "$ldso" ] || skip "cannot find the dynamic loader of /bin/true"
	run --separate-stderr "$TUNSHIM" -c "$CONF" -- "$ldso" /bin/true
	expect_eq "exit status ($ldso /bin/true)" 0 "$status"
	expect_eq "stderr ($ldso /bin/true)" "" "$stderr"
}

@test "a 32-bit program gets its own warning" {
	local prog
	for prog in /usr/lib32/ld-linux.so.2 /lib/ld-linux.so.2; do
		[ -x "$prog" ] && break
	done
	# A 32-bit program needs the 32-bit loader, which can also run alone (--version).
	[ -x "$prog" ] || skip "no 32-bit program here (libc6-i386 provides ld-linux.so.2)"
	run --separate-stderr "$TUNSHIM" -c "$CONF" -- "$prog" --version
	expect_has "stderr" "tunshim: warning: $prog is a 32-bit program; the 64-bit libtunshim.so cannot be preloaded into it" "$stderr"
	expect_lacks "stderr" "statically linked" "$stderr"
}

@test "malformed ELF files get no warning and no crash" {
	local f
	# Truncated identification, truncated header, program headers past the end of file.
	printf '\177ELF\002' >"$T/short-ident"
	printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\002\000' >"$T/short-header"
	{ head -c 64 /bin/true; head -c 64 /dev/zero; } >"$T/short-phdrs"
	for f in short-ident short-header short-phdrs; do
		# Not executable: the checks still read them, and execvp fails with EACCES
		# instead of handing them to /bin/sh as a script (ENOEXEC).
		chmod 644 "$T/$f"
		run --separate-stderr "$TUNSHIM" -c "$CONF" -- "$T/$f"
		expect_eq "$f: exit status" 126 "$status"
		expect_eq "$f: stderr" "tunshim: '$T/$f': Permission denied" "$stderr"
	done
}

@test "setuid and setgid programs get a warning when they change who runs" {
	require_root_tools
	cp /bin/true "$W/bin/suid-true"
	chmod 4755 "$W/bin/suid-true"
	run --separate-stderr as_nobody "$W/bin/tunshim" -c "$CONF" -- "$W/bin/suid-true"
	expect_eq "exit status" 0 "$status"
	expect_eq "stderr" "tunshim: warning: $W/bin/suid-true is setuid; the loader ignores LD_PRELOAD for it, its traffic will not use the tunnel" "$stderr"
	# Root running a root-owned setuid program changes nothing: no secure mode, no warning.
	run --separate-stderr "$W/bin/tunshim" -c "$CONF" -- "$W/bin/suid-true"
	expect_eq "stderr (as root)" "" "$stderr"
	cp /bin/true "$W/bin/sgid-true"
	chmod 2755 "$W/bin/sgid-true"
	run --separate-stderr as_nobody "$W/bin/tunshim" -c "$CONF" -- "$W/bin/sgid-true"
	expect_has "stderr" "$W/bin/sgid-true is setgid; the loader ignores LD_PRELOAD" "$stderr"
}

@test "a program with file capabilities gets a warning" {
	require_root_tools
	command -v setcap >/dev/null || skip "no setcap (libcap2-bin)"
	cp /bin/true "$W/bin/cap-true"
	setcap cap_net_bind_service+ep "$W/bin/cap-true" 2>/dev/null ||
		skip "cannot set file capabilities on $W"
	run --separate-stderr as_nobody "$W/bin/tunshim" -c "$CONF" -- "$W/bin/cap-true"
	expect_eq "exit status" 0 "$status"
	expect_eq "stderr" "tunshim: warning: $W/bin/cap-true has file capabilities; the loader ignores LD_PRELOAD for it, its traffic will not use the tunnel" "$stderr"
}

# ---- tunshim genkey, tunshim pubkey: keys in wg(8)'s format ----

# The bytes of base64 text $1, as space-separated decimals.
key_bytes() {
	printf '%s' "$1" | base64 -d | od -An -v -tu1 | tr -s ' \n' '  '
}

require_wg() {
	command -v wg >/dev/null || skip "no wg (wireguard-tools) to compare with"
}

@test "genkey prints a clamped 32-byte base64 private key, a new one each time" {
	local key other
	local -a bytes
	run --separate-stderr "$TUNSHIM" genkey
	expect_eq "exit status" 0 "$status"
	expect_eq "stderr" "" "$stderr"
	key=$output
	expect_eq "length" 44 "${#key}"
	[[ "$key" =~ ^[A-Za-z0-9+/]{43}=$ ]] || { echo "not base64: '$key'" >&2; false; }
	expect_eq "decoded length" 32 "$(printf '%s' "$key" | base64 -d | wc -c)"
	read -ra bytes <<<"$(key_bytes "$key")"
	expect_eq "key[0] & 7" 0 $((bytes[0] & 7))
	expect_eq "key[31] & 0xc0" 64 $((bytes[31] & 0xc0))
	# Exactly one line: 44 characters and a newline.
	expect_eq "bytes written" 45 "$("$TUNSHIM" genkey | wc -c)"
	other=$("$TUNSHIM" genkey)
	[ "$other" != "$key" ] || { echo "two genkeys gave the same key" >&2; false; }
}

@test "genkey keys are clamped every time (64 keys)" {
	local i key
	local -a bytes
	for i in $(seq 64); do
		key=$("$TUNSHIM" genkey)
		read -ra bytes <<<"$(key_bytes "$key")"
		[ "${#bytes[@]}" = 32 ] && [ $((bytes[0] & 7)) = 0 ] &&
			[ $((bytes[31] & 0xc0)) = 64 ] && continue
		echo "not a clamped 32-byte key: $key (${bytes[*]})" >&2
		return 1
	done
}

@test "genkey into a file others can read warns, as wg genkey does" {
	(umask 022 && "$TUNSHIM" genkey >"$T/open.key" 2>"$T/open.err")
	expect_eq "stderr (0644 file)" "tunshim: warning: writing to world accessible file; consider setting the umask to 077 and trying again" "$(cat "$T/open.err")"
	expect_eq "the key is still written" 45 "$(wc -c <"$T/open.key")"
	(umask 077 && "$TUNSHIM" genkey >"$T/private.key" 2>"$T/private.err")
	expect_eq "stderr (0600 file)" "" "$(cat "$T/private.err")"
}

@test "genkey and pubkey take no arguments; -- runs a program of that name" {
	run --separate-stderr "$TUNSHIM" genkey extra
	expect_eq "exit status" 1 "$status"
	expect_eq "stderr" "tunshim: genkey: takes no arguments (usage: tunshim genkey > private.key)" "$stderr"
	expect_eq "stdout" "" "$output"
	run --separate-stderr "$TUNSHIM" pubkey extra </dev/null
	expect_eq "exit status (pubkey)" 1 "$status"
	expect_eq "stdout (pubkey)" "" "$output"
	PATH=/usr/bin:/bin run -127 --separate-stderr "$TUNSHIM" -c "$CONF" -- genkey
	expect_eq "stderr (-- genkey)" "tunshim: 'genkey': command not found" "$stderr"
}

@test "genkey's key goes to wg pubkey, pubkey's answer is wg's" {
	require_wg
	local key
	key=$("$TUNSHIM" genkey)
	run --separate-stderr "$TUNSHIM" pubkey <<<"$key"
	expect_eq "exit status" 0 "$status"
	expect_eq "stderr" "" "$stderr"
	expect_eq "public key" "$(wg pubkey <<<"$key")" "$output"
}

@test "pubkey matches wg pubkey for 20 random keys, clamped or not" {
	require_wg
	local i key ours theirs
	for i in $(seq 20); do
		# Half raw random bytes (X25519 clamps them itself), half from wg genkey.
		if [ $((i % 2)) = 0 ]; then
			key=$(head -c 32 /dev/urandom | base64)
		else
			key=$(wg genkey)
		fi
		ours=$("$TUNSHIM" pubkey <<<"$key")
		theirs=$(wg pubkey <<<"$key")
		[ -n "$theirs" ] && [ "$ours" = "$theirs" ] && continue
		printf 'key %s: tunshim pubkey %q, wg pubkey %q\n' "$key" "$ours" "$theirs" >&2
		return 1
	done
}

@test "pubkey allows trailing whitespace and a missing newline" {
	require_wg
	local key pub
	key=$(wg genkey)
	pub=$(wg pubkey <<<"$key")
	expect_eq "no newline" "$pub" "$(printf '%s' "$key" | "$TUNSHIM" pubkey)"
	expect_eq "CRLF" "$pub" "$(printf '%s\r\n' "$key" | "$TUNSHIM" pubkey)"
	expect_eq "spaces, tabs, blank lines" "$pub" "$(printf '%s \t\n\n  \n' "$key" | "$TUNSHIM" pubkey)"
}

@test "pubkey rejects what is not one base64 private key: exit 1, nothing on stdout" {
	local key input
	key=$("$TUNSHIM" genkey)
	local -a inputs=(
		""                                  # empty
		"garbage"
		"${key:0:43}"                        # a character short
		"${key:0:43}=="                      # a character long
		"${key}x"                           # trailing junk
		"$key $key"                         # two keys
		" $key"                             # leading space, as wg pubkey
		"${key:0:42}!="                      # not base64
		"$(head -c 33 /dev/urandom | base64)" # 33 bytes
		"$(head -c 31 /dev/urandom | base64)" # 31 bytes
		"${key%?}"                          # no padding
	)
	for input in "${inputs[@]}"; do
		run --separate-stderr "$TUNSHIM" pubkey <<<"$input"
		expect_eq "exit status for '$input'" 1 "$status"
		expect_eq "stderr for '$input'" "tunshim: pubkey: not a valid base64 private key" "$stderr"
		expect_eq "stdout for '$input'" "" "$output"
	done
	# Much more input than any key; NUL bytes; not a file at all.
	run --separate-stderr "$TUNSHIM" pubkey < <(head -c 100000 /dev/urandom | base64)
	expect_eq "exit status (100 kB)" 1 "$status"
	expect_eq "stderr (100 kB)" "tunshim: pubkey: not a valid base64 private key" "$stderr"
	run --separate-stderr "$TUNSHIM" pubkey < <(head -c 44 /dev/zero)
	expect_eq "exit status (NULs)" 1 "$status"
	run --separate-stderr "$TUNSHIM" pubkey <"$T"
	expect_eq "exit status (a directory)" 1 "$status"
	expect_has "stderr (a directory)" "tunshim: pubkey: cannot read stdin:" "$stderr"
}

@test "the wrapper needs only libc at run time (libsodium is linked in statically)" {
	command -v ldd >/dev/null || skip "no ldd"
	run ldd "$TUNSHIM"
	expect_eq "ldd exit status" 0 "$status"
	expect_lacks "ldd" "libsodium" "$output"
	local line
	for line in "${lines[@]}"; do
		[[ "$line" =~ (linux-vdso|libc\.so|ld-linux) ]] && continue
		echo "unexpected dependency: $line" >&2
		return 1
	done
}
