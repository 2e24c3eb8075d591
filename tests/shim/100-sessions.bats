#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Many processes, one identity (issue 9): processes of one user with one config in one
# network namespace share one WireGuard session. The first that needs the tunnel holds it
# (runs the stack, serves $XDG_RUNTIME_DIR/tunshim/session-*.sock); the others, concurrent,
# forked, exec'd or started later while the session lingers (TUNSHIM_GRACE), attach to it.
# Everything runs against the real wireguard-go peer of tests/lib/topology.bash:
#
#   client netns (lo only)                          server netns
#   +-------------------------------------------+   +------------------------------+
#   | holder: the stack, session-*.sock         |   | HTTP :8080 ($TOPO_DIR/www)   |
#   |   ^  attach: socketpair ends (SCM_RIGHTS) |   | echo TCP+UDP :7001           |
#   | attached: curl, bash, bats, python, ...   |   | tunnel clients (no shim)     |
#   | nobody's processes: sessions of their own |   |                              |
#   | wireguard-go: UDP on lo  ------ TUN ------+-->| 10.200.0.1, fd00:200::1      |
#   +-------------------------------------------+   +------------------------------+
#
# The shim log ($SHIM_LOG, debug) tells who held and who attached: "tunnel started" from
# the holder, "attached to the tunnel session of this key" from every other process.
# Sessions linger TUNSHIM_GRACE seconds after their last user; SES_GRACE (0.5 s) keeps
# this suite quick where the grace is not what a test is about.

bats_require_minimum_version 1.5.0

load helpers

SES_GRACE=${SES_GRACE:-0.5}
# The wrapped prefork server's port, on the tunnel address of $TOPO_CONF.
POOL_PORT=9301
TUN4=10.200.0.2
STARTED='tunnel started \(1 peer\)'
ATTACHED='attached to the tunnel session of this key'

setup_file() {
	shim_setup_file sh_nb_connect || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_echo_up || return
	SES_PY=$BATS_FILE_TMPDIR/sessions.py
	ses_write_py >"$SES_PY"
	chmod 644 "$SES_PY"
	URL=http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT
	INDEX_SHA=$(sha256sum <"$TOPO_DIR/www/index.html" | cut -d' ' -f1)
	export SES_PY URL INDEX_SHA
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	export TUNSHIM_GRACE=$SES_GRACE
	declare -gA SES_PID=()
	: >"$T/spawned"
	N=
}

teardown() {
	local rc=0 name
	while read -r name; do
		topo_stop "$name"
	done <"$T/spawned"
	shim_teardown || rc=1
	# The scratch of a test that played another user.
	if [ -n "${N:-}" ]; then
		rm -rf "$N"
	fi
	return "$rc"
}

# ---- helpers of this file ----

# ses_spawn NAME CMD...: shim_spawn, and teardown ends it (by process group: a
# continuation it left has a session of its own, and teardown waits for it).
ses_spawn() {
	echo "$1" >>"$T/spawned"
	shim_spawn "$@"
}

# ses_bg NAME CMD...: a wrapped CMD in the background, stdout in $T/NAME.out, stderr in
# $T/NAME.err; ses_wait NAME waits for it and sets SES_RC.
ses_bg() {
	local name=$1
	shift
	# fd 3 is bats' TAP stream: a background process holding it would stall bats.
	shim_run "$@" >"$T/$name.out" 2>"$T/$name.err" 3>&- &
	SES_PID[$name]=$!
}

ses_wait() {
	SES_RC=0
	wait "${SES_PID[$1]}" || SES_RC=$?
}

# ses_count ERE: how many lines of the shim log match.
ses_count() {
	grep -cE "^tunshim\[[0-9]+\]: $1" "$SHIM_LOG" || true
}

# ses_count_ge N ERE: at least N lines of the shim log match.
ses_count_ge() {
	[ "$(ses_count "$2")" -ge "$1" ]
}

# ses_pids ERE: the pids whose log lines match, one per line, sorted.
ses_pids() {
	sed -nE "s/^tunshim\[([0-9]+)\]: $1.*/\1/p" "$SHIM_LOG" | sort -un
}

# ses_logged PID ERE: a line of PID in the shim log matches.
ses_logged() {
	grep -qE "^tunshim\[$1\]: $2" "$SHIM_LOG"
}

# ses_expect_log PID ERE WHAT: ses_logged within 10 s.
ses_expect_log() {
	topo_wait_until 10 ses_logged "$1" "$2" && return 0
	echo "$3: no line of pid $1 matching '$2' in the shim log" >&2
	return 1
}

ses_sha() {
	sha256sum <"$1" | cut -d' ' -f1
}

ses_size_ge() {
	[ -f "$1" ] && [ "$(stat -c %s "$1")" -ge "$2" ]
}

# ses_expect_size FILE BYTES WHAT: FILE grows to BYTES within 15 s (a transfer under way).
ses_expect_size() {
	topo_wait_until 15 ses_size_ge "$1" "$2" && return 0
	echo "$3: $1 did not reach $2 bytes (it has $(stat -c %s "$1" 2>/dev/null || echo none))" >&2
	return 1
}

# ses_spawned_pid NAME: the pid of a wrapped program started with ses_spawn (topo_spawn's
# sh execs env, which execs the program: one pid throughout).
ses_spawned_pid() {
	cat "$TOPO_DIR/pids/$1"
}

ses_out_has() {
	grep -qE "$2" "$TOPO_DIR/$1.log"
}

# ses_expect_out NAME ERE WHAT: the output of a spawned NAME has a matching line within 15 s.
ses_expect_out() {
	topo_wait_until 15 ses_out_has "$1" "$2" && return 0
	echo "$3: no line matching '$2' in $1's output; it has:" >&2
	tail -n 20 "$TOPO_DIR/$1.log" >&2
	return 1
}

# ses_gone PID: the process has exited (or is a zombie waiting for its parent).
ses_gone() {
	! topo_alive "$1"
}

# The session sockets of our key in a runtime directory.
ses_socks() {
	compgen -G "$1/tunshim/session-*.sock" || true
}

ses_no_socket() {
	[ -z "$(ses_socks "$1")" ]
}

# ses_wg_initiations: handshake initiations wireguard-go received from our key so far (its
# verbose log names a peer by the first 4 and the last 4 characters of its base64 key).
ses_wg_initiations() {
	local pub=$TOPO_CLIENT_PUB
	LC_ALL=C grep -cF "peer(${pub:0:4}…${pub:39:4}) - Received handshake initiation" \
		"$TOPO_WG_LOG" || true
}

ses_handshake_since() {
	[ "$(wg_last_handshake_ns)" -ge "$1" ]
}

# ses_expect_lines WHAT COUNT ERE TEXT: TEXT has COUNT lines, each matching ERE.
ses_expect_lines() {
	local n
	n=$(grep -cE "^($3)\$" <<<"$4") || true
	[ "$n" = "$2" ] && [ "$(grep -c '' <<<"$4")" = "$2" ] && return 0
	printf '%s: expected %s lines matching %s, got:\n%s\n' "$1" "$2" "$3" "$4" >&2
	return 1
}

ses_wg_initiations_gt() {
	[ "$(ses_wg_initiations)" -gt "$1" ]
}

# ---- another user ----

as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}

# nobody_setup: a scratch directory $N that nobody can reach, a copy of the config that
# it can read ($N/nobody.conf), and a library it can load ($NOBODY_LIB).
nobody_setup() {
	[ "$(id -u)" = 0 ] || skip "not root: cannot play another user"
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	N=$(mktemp -d /tmp/tunshim-100.XXXXXX)
	chmod 755 "$N"
	install -o nobody -g nogroup -m 600 "$TOPO_CONF" "$N/nobody.conf"
	NOBODY_LIB=$SHIM_LIB
	if ! as_nobody test -r "$SHIM_LIB"; then
		install -m 644 "$SHIM_LIB" "$N/libtunshim.so"
		NOBODY_LIB=$N/libtunshim.so
	fi
	install -m 644 "$SES_PY" "$N/sessions.py"
}

# nobody_dir PATH: a directory of nobody's own (mode 0700).
nobody_dir() {
	install -d -o nobody -g nogroup -m 700 "$1"
}

# nobody_run RUNTIME-DIR LOG CMD...: CMD wrapped as nobody in the client namespace with
# nobody's copy of the config and RUNTIME-DIR as its XDG_RUNTIME_DIR; the shim logs to LOG.
nobody_run() {
	local rt=$1 log=$2
	shift 2
	install -o nobody -g nogroup -m 600 /dev/null "$log"
	in_client timeout -k 3 "$SHIM_LIMIT" setpriv --reuid=nobody --regid=nogroup \
		--clear-groups env HOME="$N" LD_PRELOAD="$NOBODY_LIB" \
		TUNSHIM_CONFIG="$N/nobody.conf" XDG_RUNTIME_DIR="$rt" TUNSHIM_LOG=debug \
		TUNSHIM_LOG_FILE="$log" TUNSHIM_GRACE="$SES_GRACE" "$@"
}

# ---- many processes at once ----

@test "ten wrapped curls started together each download 20 MiB intact over one session: one holds it, nine attach" {
	local i bad=''
	for i in {1..10}; do
		ses_bg "c$i" curl -sS --max-time 50 -o "$T/mid.$i" "$URL/mid.bin?c$i"
	done
	for i in {1..10}; do
		ses_wait "c$i"
		[ "$SES_RC" = 0 ] || bad+=" curl $i: status $SES_RC ($(cat "$T/c$i.err"))"
		[ "$SES_RC" != 0 ] || [ "$(ses_sha "$T/mid.$i")" = "$TOPO_MID_SHA256" ] ||
			bad+=" curl $i: sha256 differs ($(stat -c %s "$T/mid.$i") bytes)"
	done
	[ -z "$bad" ] || topo_fail "$bad"
	expect_eq "processes that started a tunnel" 1 "$(ses_count "$STARTED")"
	expect_eq "processes that attached to it" 9 "$(ses_count "$ATTACHED")"
	expect_eq "distinct processes that held or attached" 10 \
		"$(ses_pids "($STARTED|$ATTACHED)" | wc -l)"
}

@test "nine transfers attached to a holder go on intact when the holder exits in the middle of them" {
	local i holder cont bad=''
	# The holder fetches a small file, then stays until told to exit.
	ses_spawn holder "$TOPO_PYTHON" -u "$SES_PY" get-then-wait "$URL/index.html" "$T/go"
	ses_expect_out holder "^fetched $INDEX_SHA\$" "the holder's fetch"
	holder=$(ses_spawned_pid holder)
	ses_expect_log "$holder" "$STARTED" "the first process holds the session"
	for i in {1..9}; do
		ses_bg "c$i" curl -sS --max-time 50 --limit-rate 4M -o "$T/mid.$i" "$URL/mid.bin?s$i"
	done
	# Once all nine have attached and are receiving, the holder exits...
	topo_wait_until 15 ses_count_ge 9 "$ATTACHED" ||
		topo_fail "only $(ses_count "$ATTACHED") of 9 curls attached"
	for i in {1..9}; do
		ses_expect_size "$T/mid.$i" $((1024 * 1024)) "curl $i, before the holder exits"
	done
	touch "$T/go"
	topo_reap holder "$TOPO_SPAWNED" || topo_fail "the holder exited with an error"
	ses_expect_log "$holder" "exit: the tunnel continues in pid [0-9]+ " \
		"the holder hands the session to a continuation"
	cont=$(sed -nE "s/^tunshim\[$holder\]: exit: the tunnel continues in pid ([0-9]+) .*/\1/p" \
		"$SHIM_LOG")
	# ...while every transfer is still under way.
	for i in {1..9}; do
		kill -0 "${SES_PID[c$i]}" 2>/dev/null ||
			bad+=" curl $i had finished before the holder exited;"
	done
	[ -z "$bad" ] || topo_fail "the holder exited too late for this test:$bad"
	for i in {1..9}; do
		ses_wait "c$i"
		[ "$SES_RC" = 0 ] || bad+=" curl $i: status $SES_RC ($(cat "$T/c$i.err"))"
		[ "$SES_RC" != 0 ] || [ "$(ses_sha "$T/mid.$i")" = "$TOPO_MID_SHA256" ] ||
			bad+=" curl $i: sha256 differs ($(stat -c %s "$T/mid.$i") bytes)"
	done
	[ -z "$bad" ] || topo_fail "after the holder (pid $holder, continuation $cont) exited:$bad"
	expect_eq "processes that started a tunnel" 1 "$(ses_count "$STARTED")"
}

@test "a wrapped bash script runs tunnel commands in parallel (&, wait, xargs -P 8) and in pipelines, all results right" {
	local i
	mkdir -p "$T/out"
	# shellcheck disable=SC2016 # expanded by the wrapped bash
	run shim_run bash -c 'set -euo pipefail
		url=$1 echo_host=$2 echo_port=$3 out=$4
		curl -fsS "$url/mid.bin?pipe" | sha256sum | cut -d" " -f1 >"$out/pipe.sha"
		curl -fsS -o "$out/par1" "$url/mid.bin?par" &
		a=$!
		curl -fsS -o "$out/par2" "$url/index.html?par" &
		b=$!
		printf "hello %s\n" parallel | nc -N -w 10 "$echo_host" "$echo_port" >"$out/nc1" &
		c=$!
		wait "$a"
		wait "$b"
		wait "$c"
		seq 1 16 | xargs -P 8 -I{} curl -fsS -o "$out/x{}" "$url/index.html?x{}"
		printf "line %s\n" 1 2 3 | nc -N -w 10 "$echo_host" "$echo_port" | tr a-z A-Z >"$out/nc2"
		echo done' bash "$URL" "$TOPO_SERVER_V4" "$ECHO_PORT" "$T/out"
	expect_status "the wrapped script" 0
	expect_eq "the script's last word" "done" "$output"
	expect_eq "curl | sha256sum" "$TOPO_MID_SHA256" "$(cat "$T/out/pipe.sha")"
	expect_eq "curl & (20 MiB)" "$TOPO_MID_SHA256" "$(ses_sha "$T/out/par1")"
	expect_eq "curl & (index.html)" "$INDEX_SHA" "$(ses_sha "$T/out/par2")"
	expect_eq "printf | nc &" "hello parallel" "$(cat "$T/out/nc1")"
	for i in {1..16}; do
		expect_eq "xargs -P 8: curl $i" "$INDEX_SHA" "$(ses_sha "$T/out/x$i")"
	done
	expect_eq "printf | nc | tr" "LINE 1 LINE 2 LINE 3" "$(tr '\n' ' ' <"$T/out/nc2" | sed 's/ $//')"
	# 21 processes used the tunnel (3 curl, 2 nc, 16 curl from xargs); those at the same
	# time share a session.
	expect_eq "processes that held or attached" 21 \
		"$(ses_pids "($STARTED|$ATTACHED)" | wc -l)"
	expect_ge "processes that attached" 1 "$(ses_count "$ATTACHED")"
}

@test "bats --jobs 4 under the library: eight tests that each curl through the tunnel all pass" {
	local i
	command -v parallel >/dev/null || skip "bats --jobs needs GNU parallel (tests/deps.sh test installs it)"
	{
		echo "# Generated by 100-sessions.bats: every test fetches a page through the tunnel."
		for i in {1..8}; do
			# printf: bats would take a line that starts with the keyword for a test here.
			printf '%s "fetch %s" {\n' @test "$i"
			# shellcheck disable=SC2016 # expanded by the inner bats
			printf '  run curl -fsS --max-time 20 "$URL/index.html?job%s"\n%s\n%s\n}\n' "$i" \
				'  [ "$status" -eq 0 ]' '  [ "$output" = "$(cat "$PAGE")" ]'
		done
	} >"$T/inner.bats"
	# The outer bats' own variables would confuse the inner one.
	# shellcheck disable=SC2016 # expanded by the wrapped bash
	run shim_run bash -c 'unset "${!BATS_@}"; export PAGE=$2; exec bats --tap --jobs 4 "$1"' \
		bash "$T/inner.bats" "$TOPO_DIR/www/index.html" 3>&-
	expect_status "bats --jobs 4 under the library" 0
	for i in {1..8}; do
		grep -qE "^ok [0-9]+ fetch $i\$" <<<"$output" ||
			topo_fail "inner test 'fetch $i' did not pass: $output"
	done
	expect_lacks "bats --jobs 4" "not ok" "$output"
	expect_ge "curl processes that held or attached" 8 \
		"$(ses_pids "($STARTED|$ATTACHED)" | wc -l)"
	expect_ge "processes that attached" 1 "$(ses_count "$ATTACHED")"
}

# ---- servers ----

@test "a prefork server on the tunnel address serves every tunnel client from its workers, who see the tunnel peer and fetch through the tunnel themselves" {
	local parent pids pid t0
	t0=$(date +%s%N)
	ses_spawn pool "$TOPO_PYTHON" -u "$SES_PY" prefork "$TUN4" "$POOL_PORT" 4 "$URL/index.html"
	ses_expect_out pool '^ready$' "the prefork server"
	parent=$(sed -n 's/^parent=//p' "$TOPO_DIR/pool.log")
	ses_expect_log "$parent" "$STARTED" "the listening parent holds the session"
	# Tunnel clients reach it once wireguard-go has a handshake with its session.
	topo_wait_until 10 ses_handshake_since "$t0" ||
		topo_fail "no handshake with wireguard-go within 10 s"
	run in_server timeout -k 3 40 "$TOPO_PYTHON" "$SES_PY" clients "$TUN4" "$POOL_PORT" 16
	expect_status "16 tunnel clients at once (server namespace, no shim)" 0
	ses_expect_lines "the workers' answers" 16 \
		"pid=[0-9]+ peer=$TOPO_SERVER_V4 fetched=$INDEX_SHA" "$output"
	pids=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' <<<"$output" | sort -u)
	expect_lacks "the pids that served (workers only)" "pid=$parent " "$output"
	expect_ge "workers that served (each holds a client 0.2 s)" 2 "$(wc -l <<<"$pids")"
	for pid in $pids; do
		ses_expect_log "$pid" "$ATTACHED" "worker $pid attached to its parent's session"
	done
}

# ---- fork and exec ----

@test "a forked child and an exec'd child each open their own tunnel connections while the parent keeps using its own" {
	local parent child exec
	run shim_run "$TOPO_PYTHON" -u "$SES_PY" fork-exec "$TOPO_SERVER_V4" "$ECHO_PORT" \
		"$URL/index.html"
	expect_status "the parent" 0
	parent=$(sed -n 's/^parent \([0-9]*\) echoed before$/\1/p' <<<"$output")
	child=$(sed -n 's/^child \([0-9]*\) echoed on a connection of its own$/\1/p' <<<"$output")
	exec=$(sed -n "s/^exec \([0-9]*\) status 0 fetched $INDEX_SHA\$/\1/p" <<<"$output")
	[ -n "$parent" ] && [ -n "$child" ] && [ -n "$exec" ] ||
		topo_fail "expected the parent, the forked child and the exec'd curl to succeed: $output"
	expect_eq "the parent's own connection afterwards" "parent $parent echoed after" \
		"${lines[-1]}"
	ses_expect_log "$parent" "$STARTED" "the parent holds the session"
	ses_expect_log "$child" "$ATTACHED" "the forked child attached"
	ses_expect_log "$exec" "$ATTACHED" "the exec'd curl attached"
}

# ---- a process killed ----

@test "a long transfer of the holder goes on intact when an attached process is killed with SIGKILL mid-transfer" {
	local holder victim hjob vjob rc=0
	ses_spawn holder curl -sS --max-time 50 --limit-rate 4M -o "$T/holder.bin" "$URL/mid.bin?h"
	holder=$(ses_spawned_pid holder) hjob=$TOPO_SPAWNED
	ses_expect_size "$T/holder.bin" $((1024 * 1024)) "the holder's transfer"
	ses_logged "$holder" "$STARTED" || topo_fail "the first curl did not start the tunnel"
	ses_spawn victim curl -sS --max-time 50 --limit-rate 4M -o "$T/victim.bin" "$URL/mid.bin?v"
	victim=$(ses_spawned_pid victim) vjob=$TOPO_SPAWNED
	ses_expect_size "$T/victim.bin" $((1024 * 1024)) "the attached curl's transfer"
	ses_logged "$victim" "$ATTACHED" || topo_fail "the second curl did not attach"
	kill -KILL "$victim"
	topo_reap victim "$vjob" || true
	# The session still serves others...
	run shim_run curl -fsS --max-time 10 "$URL/index.html?after-kill"
	expect_status "a curl after the kill" 0
	expect_eq "a curl after the kill" "$(cat "$TOPO_DIR/www/index.html")" "$output"
	topo_alive "$holder" || topo_fail "the holder's transfer ended with the victim"
	# ...and the holder's transfer completes.
	topo_reap holder "$hjob" || rc=$?
	expect_eq "the holder's curl (status; its output: $(cat "$TOPO_DIR/holder.log"))" 0 "$rc"
	expect_eq "the holder's 20 MiB" "$TOPO_MID_SHA256" "$(ses_sha "$T/holder.bin")"
}

# Both attached programs have reported the end of their transfer.
ses_both_ended() {
	ses_gone "$1" && ses_out_has slow '^outcome '
}

@test "when the holder is killed with SIGKILL mid-transfer, attached transfers end with ECONNRESET (curl 56) within seconds, and their next connection works within a second" {
	local holder cpid ppid hjob cjob pjob t0 ms rc=0
	ses_spawn holder curl -sS --max-time 50 --limit-rate 4M -o "$T/holder.bin" "$URL/mid.bin?h"
	holder=$(ses_spawned_pid holder) hjob=$TOPO_SPAWNED
	ses_expect_size "$T/holder.bin" $((512 * 1024)) "the holder's transfer"
	ses_logged "$holder" "$STARTED" || topo_fail "the first curl did not start the tunnel"
	ses_spawn other curl -sS --max-time 50 --limit-rate 4M -o "$T/other.bin" "$URL/mid.bin?o"
	cpid=$(ses_spawned_pid other) cjob=$TOPO_SPAWNED
	ses_spawn slow "$TOPO_PYTHON" -u "$SES_PY" slow-get "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" \
		/mid.bin /index.html
	ppid=$(ses_spawned_pid slow) pjob=$TOPO_SPAWNED
	ses_expect_size "$T/other.bin" $((512 * 1024)) "the attached curl's transfer"
	ses_expect_out slow '^receiving$' "the attached python's transfer"
	ses_logged "$cpid" "$ATTACHED" && ses_logged "$ppid" "$ATTACHED" ||
		topo_fail "the curl and the python did not both attach"
	t0=$EPOCHREALTIME
	kill -KILL "$holder"
	topo_reap holder "$hjob" || true
	# Neither hangs: both see the end within 5 s.
	topo_wait_until 5 ses_both_ended "$cpid" ||
		topo_fail "5 s after the holder was killed: curl $(ses_gone "$cpid" && echo ended ||
			echo 'still runs'), python: $(cat "$TOPO_DIR/slow.log")"
	echo "# both attached transfers ended within $(ms_since "$t0") ms of the kill" >&3
	topo_reap other "$cjob" || rc=$?
	expect_eq "the attached curl's exit status" 56 "$rc"
	expect_has "the attached curl's message" "Connection reset by peer" "$(cat "$TOPO_DIR/other.log")"
	expect_eq "the attached python's recv after the kill" "outcome ECONNRESET" \
		"$(sed -n 's/^\(outcome [A-Z]*\).*/\1/p' "$TOPO_DIR/slow.log")"
	ses_logged "$ppid" "session: the process that held the tunnel is gone" ||
		topo_fail "the attached python did not log that the holder is gone"
	# Its next connection brings up (or finds) a session again, within a second.
	ses_expect_out slow '^next ' "the python's next connection"
	grep -qE "^next $INDEX_SHA in [0-9]+ ms\$" "$TOPO_DIR/slow.log" ||
		topo_fail "the python's next fetch: $(grep '^next' "$TOPO_DIR/slow.log")"
	ms=$(sed -n 's/^next .* in \([0-9]*\) ms$/\1/p' "$TOPO_DIR/slow.log")
	[ "$ms" -lt 1000 ] || topo_fail "the python's next fetch took $ms ms"
	topo_reap slow "$pjob" || topo_fail "the python: $(cat "$TOPO_DIR/slow.log")"
}

# ---- UDP ----

@test "two processes talk to the UDP echo server through one session at once, one unconnected and one connected socket" {
	local n0 ports mode p
	n0=$(wc -l <"$ECHO_LOG")
	ses_bg unconnected "$TOPO_PYTHON" -u "$SES_PY" udp sendto "$TOPO_SERVER_V4" "$ECHO_PORT" 300 \
		"$T/ready-u" "$T/go"
	ses_bg connected "$TOPO_PYTHON" -u "$SES_PY" udp connect "$TOPO_SERVER_V4" "$ECHO_PORT" 300 \
		"$T/ready-c" "$T/go"
	# Both have their first echo before either goes on: the 300 exchanges overlap.
	topo_wait_until 15 test -e "$T/ready-u" -a -e "$T/ready-c" ||
		topo_fail "not both ready: $(cat "$T"/unconnected.* "$T"/connected.*)"
	touch "$T/go"
	# Meanwhile the kernel's semantics, checked by udp_check.py, in two more processes.
	run shim_run "$TOPO_PYTHON" "$BATS_TEST_DIRNAME/udp_check.py" mixed "$TOPO_SERVER_V4" "$ECHO_PORT"
	expect_status "udp_check.py mixed, alongside" 0
	run shim_run "$TOPO_PYTHON" "$BATS_TEST_DIRNAME/udp_check.py" connected "$TOPO_SERVER_V4" \
		"$ECHO_PORT"
	expect_status "udp_check.py connected, alongside" 0
	for mode in unconnected connected; do
		ses_wait "$mode"
		[ "$SES_RC" = 0 ] || topo_fail "the $mode socket: status $SES_RC: $(cat "$T/$mode.err")"
	done
	expect_eq "the unconnected socket's 300 echoes" "ok sendto 300" \
		"$(cut -d' ' -f1-3 "$T/unconnected.out")"
	expect_eq "the connected socket's 300 echoes" "ok connect 300" \
		"$(cut -d' ' -f1-3 "$T/connected.out")"
	# The echo server saw both sockets, each from a port of its own, on our tunnel address.
	ports=$(tail -n +$((n0 + 1)) "$ECHO_LOG" | awk '$3 == "::ffff:10.200.0.2" { print $4 }' |
		sort -u)
	expect_ge "source ports the echo server saw from 10.200.0.2" 2 "$(wc -l <<<"$ports")"
	for p in $(cut -d' ' -f5 "$T/unconnected.out") $(cut -d' ' -f5 "$T/connected.out"); do
		grep -qx "$p" <<<"$ports" || topo_fail "the echo server never saw port $p: $ports"
	done
	expect_eq "processes that started a tunnel" 1 "$(ses_count "$STARTED")"
}

# ---- the grace time ----

@test "twenty curls back to back make one handshake: the first starts the session, the others attach while it lingers; then it ends and removes its socket" {
	local i hs0 hs1 t0
	export TUNSHIM_GRACE=1
	hs0=$(ses_wg_initiations)
	for i in {1..20}; do
		run shim_run curl -fsS --max-time 10 -o "$T/page.$i" "$URL/index.html?seq$i"
		expect_status "curl $i of 20" 0
		expect_eq "curl $i of 20" "$INDEX_SHA" "$(ses_sha "$T/page.$i")"
	done
	t0=$EPOCHREALTIME
	expect_eq "processes that started a tunnel" 1 "$(ses_count "$STARTED")"
	expect_eq "processes that attached to the lingering session" 19 "$(ses_count "$ATTACHED")"
	expect_eq "handshake initiations we sent" 1 "$(ses_count 'peer 0: sending handshake initiation')"
	# wireguard-go's log is written asynchronously: give it a moment.
	topo_wait_until 2 ses_wg_initiations_gt "$hs0" || true
	hs1=$(ses_wg_initiations)
	expect_eq "handshake initiations wireguard-go received from our key" 1 $((hs1 - hs0))
	# One grace time (1 s) after the last user, the session is gone, socket and all.
	topo_wait_until 4 shim_no_strays "$TOPO_CLIENT_NS" ||
		topo_fail "still running 4 s after the last curl: $(shim_strays "$TOPO_CLIENT_NS")"
	topo_wait_until 1 ses_no_socket "$SHIM_RUNTIME" ||
		topo_fail "the session socket is left: $(ses_socks "$SHIM_RUNTIME")"
	echo "# the session ended $(ms_since "$t0") ms after the last curl (grace 1 s)" >&3
}

# ---- another user ----

@test "nobody with a copy of the same config gets a session of its own and never touches root's" {
	local holder
	nobody_setup
	nobody_dir "$N/nobody-run"
	# Root's session is up, with no connection open: two sessions of one key take the
	# peer's endpoint from each other (the reason sessions are shared), and a connection of
	# root's would stall once nobody's handshake has moved the endpoint.
	ses_spawn holder "$TOPO_PYTHON" -u "$SES_PY" get-then-wait "$URL/index.html" "$T/stop"
	ses_expect_out holder "^fetched $INDEX_SHA\$" "root's process"
	holder=$(ses_spawned_pid holder)
	ses_logged "$holder" "$STARTED" || topo_fail "root's process does not hold a session"
	[ -n "$(ses_socks "$SHIM_RUNTIME")" ] || topo_fail "root's session has no socket"
	run nobody_run "$N/nobody-run" "$N/nobody.log" curl -fsS --max-time 20 "$URL/index.html?nobody"
	expect_status "nobody's curl" 0
	expect_eq "nobody's curl" "$(cat "$TOPO_DIR/www/index.html")" "$output"
	grep -qE "^tunshim\[[0-9]+\]: $STARTED" "$N/nobody.log" ||
		topo_fail "nobody's curl did not start a session of its own: $(cat "$N/nobody.log")"
	expect_lacks "nobody's log" "$ATTACHED" "$(cat "$N/nobody.log")"
	compgen -G "$N/nobody-run/tunshim/session-*.lock" >/dev/null ||
		topo_fail "nobody's session was not kept in its own runtime directory"
	expect_lacks "root's log" "another user" "$(cat "$SHIM_LOG")"
	expect_eq "processes that attached to root's session" 0 "$(ses_count "$ATTACHED")"
	topo_alive "$holder" || topo_fail "root's process ended early: $(cat "$TOPO_DIR/holder.log")"
	touch "$T/stop"
	topo_reap holder "$TOPO_SPAWNED" || topo_fail "root's process: $(cat "$TOPO_DIR/holder.log")"
}

@test "a process of nobody that connects to root's session socket itself is refused by the holder; root's session goes on" {
	local holder rt sock ticks
	nobody_setup
	rt=$N/root-run
	install -d -m 700 "$rt"
	SHIM_RUNTIME=$rt ses_spawn holder "$TOPO_PYTHON" -u "$SES_PY" tick "$TOPO_SERVER_V4" \
		"$ECHO_PORT" "$T/stop"
	ses_expect_out holder '^tick 3$' "root's process echoes on its connection"
	holder=$(ses_spawned_pid holder)
	ses_logged "$holder" "$STARTED" || topo_fail "root's process does not hold a session"
	sock=$(ses_socks "$rt")
	[ -S "$sock" ] || topo_fail "no session socket in $rt/tunshim"
	# For this test only: nobody may reach the socket (the library would refuse such a
	# runtime directory for a new process; the holder already serves).
	chmod 711 "$rt" "$rt/tunshim"
	chmod 777 "$sock"
	run in_client timeout -k 3 20 setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$TOPO_PYTHON" "$N/sessions.py" raw-attach "$sock"
	chmod 700 "$rt" "$rt/tunshim"
	expect_status "nobody's raw connect" 0
	expect_eq "nobody's connection to root's session socket" \
		"connected; closed by the holder" "$(tr '\n' ';' <<<"$output" | sed 's/;$//; s/;/; /')"
	ses_expect_log "$holder" "session: a process of another user tried to attach; refused" \
		"the holder's log"
	# Root's connection is unaffected, and root's next process still attaches.
	ticks=$(grep -c '^tick ' "$TOPO_DIR/holder.log")
	ses_expect_out holder "^tick $((ticks + 3))\$" "root's process after the refusal"
	SHIM_RUNTIME=$rt run shim_run curl -fsS --max-time 10 "$URL/index.html?root-again"
	expect_status "root's next curl" 0
	expect_eq "processes that attached to root's session" 1 "$(ses_count "$ATTACHED")"
	touch "$T/stop"
	topo_reap holder "$TOPO_SPAWNED" || topo_fail "root's process: $(tail -n 3 "$TOPO_DIR/holder.log")"
	ses_expect_out holder '^done [0-9]+ ticks$' "root's process"
}

@test "a runtime directory that is not nobody's own (root's, open to others, or a symlink) is refused with a message, and nobody's curl works unshared" {
	local d kind
	nobody_setup
	nobody_dir "$N/nobody-real"
	install -d -m 755 "$N/wrong-owner" "$N/open-mode" "$N/symlinked"
	install -d -m 700 "$N/wrong-owner/tunshim"
	install -d -o nobody -g nogroup -m 755 "$N/open-mode/tunshim"
	ln -s "$N/nobody-real" "$N/symlinked/tunshim"
	for d in wrong-owner open-mode symlinked; do
		case $d in
		wrong-owner) kind="a directory, owner uid 0, mode 0700" ;;
		open-mode) kind="a directory, owner uid $(id -u nobody), mode 0755" ;;
		symlinked) kind="a symlink" ;;
		esac
		run nobody_run "$N/$d" "$N/$d.log" curl -fsS --max-time 20 "$URL/index.html?$d"
		expect_status "nobody's curl with XDG_RUNTIME_DIR=$N/$d" 0
		expect_eq "nobody's curl ($d)" "$(cat "$TOPO_DIR/www/index.html")" "$output"
		expect_has "nobody's log ($d)" \
			"$N/$d/tunshim is not a private directory of this user ($kind" "$(cat "$N/$d.log")"
		grep -qE "^tunshim\[[0-9]+\]: $STARTED" "$N/$d.log" ||
			topo_fail "nobody's curl ($d) did not run a tunnel of its own: $(cat "$N/$d.log")"
	done
	expect_eq "what nobody left where the symlink points" "" "$(ls -A "$N/nobody-real")"
	expect_eq "what nobody left in root's directory" "" "$(ls -A "$N/wrong-owner/tunshim")"
}

# ---- connect semantics across processes ----

@test "a non-blocking connect in an attached process becomes writable only with its outcome: ECONNREFUSED from a closed port, 0 from an open one" {
	local i nb bad=''
	nb=$(shim_tool sh_nb_connect)
	ses_spawn holder "$TOPO_PYTHON" -u "$SES_PY" hold "$TOPO_SERVER_V4" "$ECHO_PORT" "$T/stop"
	ses_expect_out holder '^holding$' "the holder"
	for i in {1..20}; do
		run shim_run "$nb" "$TOPO_SERVER_V4" "$CLOSED_PORT" 5 ECONNREFUSED
		[ "$status" = 0 ] || bad+=" refused #$i: $output;"
		run shim_run "$nb" "$TOPO_SERVER_V4" "$ECHO_PORT" 5 0
		[ "$status" = 0 ] || bad+=" connected #$i: $output;"
	done
	expect_eq "processes that attached" 40 "$(ses_count "$ATTACHED")"
	[ -z "$bad" ] || topo_fail "attached non-blocking connects:$bad"
	touch "$T/stop"
	topo_reap holder "$TOPO_SPAWNED" || true
}

# ---- the python helper (written to $SES_PY by setup_file) ----

ses_write_py() {
	cat <<'PY'
"""100-sessions.bats' programs: run wrapped in the client namespace unless said otherwise.

  get-then-wait URL GOFILE    fetches URL ("fetched SHA256"), waits for GOFILE, exits 0
  hold HOST PORT STOPFILE     one echo on a TCP connection ("holding"), keeps it open and
                              idle until STOPFILE exists
  tick HOST PORT STOPFILE     echoes "tick N" on one TCP connection every 50 ms ("tick N"),
                              until STOPFILE exists: "done N ticks"
  prefork ADDR PORT N URL     listens on ADDR:PORT, forks N workers that accept; each
                              client gets "pid=PID peer=ADDR fetched=SHA256" of URL,
                              fetched by the worker per client; "parent=PID", "ready"
  clients HOST PORT N         (server namespace, no shim) N clients at once, each prints
                              its answer
  fork-exec HOST PORT URL     an echo connection; a forked child echoes on a connection
                              of its own, an exec'd curl fetches URL; then the parent's
                              connection again ("parent P echoed before|after",
                              "child C echoed ...", "exec E status S fetched SHA256")
  slow-get HOST PORT PATH NEXT  an HTTP GET of PATH read slowly ("receiving"); when it
                              ends: "outcome ECONNRESET|EOF|..."; then a GET of NEXT on a
                              new connection: "next SHA256 in MS ms"
  udp sendto|connect HOST PORT N READY GO  one echo, creates READY, waits for GO, then N
                              echoes: "ok MODE N port P"
  raw-attach PATH             (any user) connects to a session socket and reports how the
                              holder answers: "connected", then "closed by the holder"
"""
import errno
import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request


def say(*args):
    print(*args, flush=True)


def wait_file(path, limit=30):
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"{path} did not appear within {limit} s")
        time.sleep(0.02)


def fetch_sha(url):
    with urllib.request.urlopen(url, timeout=20) as r:
        return hashlib.sha256(r.read()).hexdigest()


def echo(s, line):
    s.sendall(line)
    got = b""
    while not got.endswith(b"\n"):
        b = s.recv(4096)
        if not b:
            raise ConnectionError(f"EOF after {got!r}")
        got += b
    if got != line:
        raise ConnectionError(f"sent {line!r}, got {got!r}")


def connect(host, port):
    return socket.create_connection((host, int(port)), timeout=20)


def get_then_wait(url, gofile):
    say("fetched", fetch_sha(url))
    wait_file(gofile)


def hold(host, port, stopfile):
    s = connect(host, port)
    echo(s, b"hold\n")
    say("holding")
    wait_file(stopfile, 120)
    s.close()


def tick(host, port, stopfile):
    s = connect(host, port)
    n = 0
    while not os.path.exists(stopfile):
        n += 1
        echo(s, f"tick {n}\n".encode())
        say(f"tick {n}")
        time.sleep(0.05)
    s.close()
    say(f"done {n} ticks")


def worker(lsock, url):
    while True:
        c, peer = lsock.accept()
        try:
            c.settimeout(20)
            c.recv(100)
            sha = fetch_sha(url)
            time.sleep(0.2)  # long enough for the next client to need another worker
            c.sendall(f"pid={os.getpid()} peer={peer[0]} fetched={sha}\n".encode())
        except OSError as e:
            c.sendall(f"pid={os.getpid()} error {e!r}\n".encode())
        c.close()


def prefork(addr, port, n, url):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((addr, int(port)))
    lsock.listen(64)
    for _ in range(int(n)):
        if os.fork() == 0:
            try:
                worker(lsock, url)
            finally:
                os._exit(1)
    say(f"parent={os.getpid()}")
    say("ready")
    while True:
        os.wait()


def clients(host, port, n):
    conns = [connect(host, port) for _ in range(int(n))]
    for i, c in enumerate(conns):
        c.sendall(f"client {i}\n".encode())
    for c in conns:
        got = b""
        while b := c.recv(4096):
            got += b
        say(got.decode().strip())


def fork_exec(host, port, url):
    s = connect(host, port)
    echo(s, b"parent before\n")
    say(f"parent {os.getpid()} echoed before")
    pid = os.fork()
    if pid == 0:
        try:
            c = connect(host, port)
            echo(c, b"child\n")
            c.close()
            say(f"child {os.getpid()} echoed on a connection of its own")
            os._exit(0)
        except BaseException as e:
            say(f"child {os.getpid()} error {e!r}")
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit(f"the forked child failed: status {status}")
    p = subprocess.Popen(["curl", "-fsS", "--max-time", "20", url], stdout=subprocess.PIPE)
    body = p.communicate()[0]
    say(f"exec {p.pid} status {p.returncode} fetched {hashlib.sha256(body).hexdigest()}")
    echo(s, b"parent after\n")
    say(f"parent {os.getpid()} echoed after")


def http_get(host, port, path):
    s = connect(host, port)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    return s


def slow_get(host, port, path, nxt):
    s = http_get(host, port, path)
    got, said = 0, False
    try:
        while b := s.recv(16384):
            got += len(b)
            if got > 256 * 1024 and not said:
                say("receiving")
                said = True
            time.sleep(0.01)
        outcome = "EOF"
    except OSError as e:
        outcome = errno.errorcode.get(e.errno, str(e))
    say(f"outcome {outcome} after {got} bytes")
    t0 = time.monotonic()
    c = http_get(host, port, nxt)
    data = b""
    while b := c.recv(65536):
        data += b
    body = data.split(b"\r\n\r\n", 1)[1]
    ms = (time.monotonic() - t0) * 1000
    say(f"next {hashlib.sha256(body).hexdigest()} in {ms:.0f} ms")


def udp(mode, host, port, n, ready, go):
    dest = (host, int(port))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    if mode == "connect":
        s.connect(dest)

    def exchange(payload):
        for _ in range(5):  # a datagram lost is sent again, as UDP clients do
            if mode == "connect":
                s.send(payload)
            else:
                s.sendto(payload, dest)
            try:
                while True:
                    data, src = s.recvfrom(65536)
                    if data == payload:
                        break  # an echo of an earlier try is skipped
            except socket.timeout:
                continue
            if src != dest:
                sys.exit(f"an echo from {src}, not {dest}")
            return
        sys.exit(f"no echo of {len(payload)} bytes after 5 tries")

    exchange(b"first " + mode.encode())
    open(ready, "w").close()
    wait_file(go)
    for i in range(int(n)):
        exchange(f"{mode} {i} ".encode() + bytes([i % 256]) * (i * 13 % 1300))
    say(f"ok {mode} {n} port {s.getsockname()[1]}")


def raw_attach(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(path)
    say("connected")
    try:
        b = s.recv(4096)
        say("closed by the holder" if not b else f"answered with {len(b)} bytes")
    except socket.timeout:
        say("no answer within 10 s")
    except OSError as e:
        say(f"recv: {errno.errorcode.get(e.errno, e.errno)}")


COMMANDS = {
    "get-then-wait": get_then_wait, "hold": hold, "tick": tick, "prefork": prefork,
    "clients": clients, "fork-exec": fork_exec, "slow-get": slow_get, "udp": udp,
    "raw-attach": raw_attach,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
PY
}
