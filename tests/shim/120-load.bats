#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Load and lifetime: one wrapped process (tests/tools/sh_load, plain socket calls) opens
# 1,000 tunnel connections at once and 10,000 one after another to a line echo server
# behind wireguard-go (load_server.py, in the server namespace). What they leave behind
# must return to where it was after the first connection: descriptors, heap, and the
# stack's own counts (bridges, lwIP pcbs, pbufs, lwIP heap bytes), which the stack logs
# when TUNSHIM_STATS asks (stack/net/stats.c) and sh_load reads from the library's log.
#
# TIME_WAIT: the side that closes first keeps each connection for 2 * MSL, so after the
# closes lwIP holds up to one TIME_WAIT pcb per connection. "Where it was" means: at most
# that many, and none once 2 * MSL has passed (TUNSHIM_TIMER_SCALE scales lwIP's 60 s MSL
# with the other protocol timers). With the real MSL, at most 8192 stay (bridge_tcp.c), so
# ephemeral ports (16384) never run out. A shorter run under the ASan/LSan build of the
# library reports nothing.

load helpers

LOAD_PORT=7020
# TUNSHIM_TIMER_SCALE for the runs that wait for TIME_WAIT to drain: 2 * MSL is 6 s.
LOAD_SCALE=0.05
LOAD_2MSL_MS=6000
TIME_WAIT_MAX=8192
SHIM_ASAN_LIB=${SHIM_ASAN_LIB:-${TUNSHIM_BUILD:-$SHIM_ROOT/build}/san-address-undefined/libtunshim.so}

setup_file() {
	shim_setup_file sh_load || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	topo_spawn load "$TOPO_SERVER_NS" "$TOPO_PYTHON" -u "$SHIM_ROOT/tests/shim/load_server.py" \
		"$LOAD_PORT" || return
	topo_wait_until 10 grep -qx ready "$TOPO_DIR/load.log" ||
		topo_fail "load_server.py did not start: $(tail -n 5 "$TOPO_DIR/load.log")"
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	LOAD=$(shim_tool sh_load)
}

teardown() {
	shim_teardown
}

# load_run ARGS...: sh_load under the library, its counts every 50 ms into the log. The
# log stays at info: debug would write a few lines per connection.
load_run() {
	TUNSHIM_LOG=info TUNSHIM_STATS=0.05 run shim_run "$LOAD" "$TOPO_SERVER_V4" "$LOAD_PORT" "$@"
	echo "$output" | sed 's/^/# /' >&3
}

# fig PHASE KEY: a figure of sh_load's PHASE line.
fig() {
	local line
	line=$(grep "^$1 " <<<"$output") || { echo "no '$1' line from sh_load" >&2; return 1; }
	sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$line"
}

# expect_back PHASE BASE: the stack's counts in PHASE are those of BASE, and so is the
# number of descriptors.
expect_back() {
	local k
	for k in fds bridges tcp_active tcp_time_wait tcp_listen tcp_bound udp pbufs tcp_segs \
		lwip_heap; do
		expect_eq "$k after $1 (as after the first connection)" "$(fig "$2" $k)" \
			"$(fig "$1" $k)" || return
	done
}

@test "1,000 concurrent, then 10,000 sequential tunnel connections: descriptors, memory and pcbs come back" {
	TUNSHIM_TIMER_SCALE=$LOAD_SCALE load_run 1000 10000
	expect_status "sh_load 1000 concurrent, 10000 sequential" 0
	local base=first-drained kib heap
	# All 1,000 open at once, each with its own bridge and pcb, and two descriptors (the
	# application's and the stack's end of the socketpair).
	expect_eq "bridges with 1000 open" 1000 "$(fig concurrent-open bridges)"
	expect_eq "active pcbs with 1000 open" 1000 "$(fig concurrent-open tcp_active)"
	expect_eq "descriptors with 1000 open" $(($(fig $base fds) + 2000)) \
		"$(fig concurrent-open fds)"
	kib=$(($(fig concurrent-open rss_kib) - $(fig $base rss_kib)))
	heap=$(($(fig concurrent-open heap) - $(fig $base heap)))
	echo "# 1000 idle tunnel connections add ${kib} KiB resident, $((heap / 1024)) KiB heap" >&3
	expect_le "KiB resident added by 1000 idle connections" $((64 * 1024)) "$kib"
	# Closed: the descriptors are back at once; TIME_WAIT holds at most one pcb per
	# connection, and none after 2 * MSL.
	expect_eq "descriptors once all are closed" "$(fig $base fds)" "$(fig concurrent-closed fds)"
	expect_ge "TIME_WAIT pcbs after 1000 closes" 1 "$(fig concurrent-closed tcp_time_wait)"
	expect_le "TIME_WAIT pcbs after 1000 closes" 1000 "$(fig concurrent-closed tcp_time_wait)"
	expect_le "ms until TIME_WAIT is empty (2 * MSL = $LOAD_2MSL_MS)" $((LOAD_2MSL_MS + 3000)) \
		"$(fig concurrent-drained ms)"
	expect_back concurrent-drained $base
	expect_back sequential-drained $base
	# Heap: the descriptor table keeps an entry per descriptor number ever used (about
	# 370 KiB per 1024 numbers); 10,000 more connections add nothing (a 7-byte leak
	# each would be 70 KiB).
	heap=$(($(fig concurrent-drained heap) - $(fig $base heap)))
	echo "# heap after the first connection $(fig $base heap), after 1000 concurrent +$heap," \
		"after 10000 sequential +$(($(fig sequential-drained heap) - $(fig $base heap)))" >&3
	expect_le "heap bytes kept after 1000 concurrent" $((1024 * 1024)) "$heap"
	expect_le "heap bytes added by 10000 sequential connections" $((64 * 1024)) \
		$(($(fig sequential-drained heap) - $(fig concurrent-drained heap)))
}

@test "20,000 sequential connections with lwIP's real TIME_WAIT: none fails, at most $TIME_WAIT_MAX pcbs wait" {
	# 2 * MSL is two minutes here: more than 16383 connections in that time took every
	# ephemeral port before TIME_WAIT was bounded (connect failed, EHOSTUNREACH).
	load_run 0 20000 --no-drain
	expect_status "sh_load 20000 sequential" 0
	expect_eq "bridges after 20000" "$(fig first-closed bridges)" "$(fig sequential-closed bridges)"
	expect_eq "active pcbs after 20000" "$(fig first-closed tcp_active)" \
		"$(fig sequential-closed tcp_active)"
	expect_eq "descriptors after 20000" "$(fig first-closed fds)" "$(fig sequential-closed fds)"
	# The bound holds at each connect; the last few connections were still closing then.
	expect_le "TIME_WAIT pcbs after 20000 closes" $((TIME_WAIT_MAX + 8)) \
		"$(fig sequential-closed tcp_time_wait)"
}

@test "100 concurrent and 200 sequential connections under ASan and LeakSanitizer: no report" {
	[ -e "$SHIM_ASAN_LIB" ] ||
		skip "no $SHIM_ASAN_LIB: make SANITIZE=address,undefined ${SHIM_ASAN_LIB#"$SHIM_ROOT"/}"
	# libasan first, as tsan_run does for TSan; reports go to files, one per process (the
	# runtimes share one log_path).
	SHIM_LIB="$(gcc -print-file-name=libasan.so) $SHIM_ASAN_LIB" \
		ASAN_OPTIONS="detect_leaks=1 log_path=$T/san exitcode=66" \
		UBSAN_OPTIONS="print_stacktrace=1 log_path=$T/san" \
		load_run 100 200 --no-drain
	local f found=
	for f in "$T"/san.*; do
		[ -e "$f" ] || continue
		found=1
		echo "sanitizer report $f:" >&2
		cat "$f" >&2
	done
	[ -z "$found" ]
	expect_status "sh_load under ASan" 0
	expect_eq "bridges after the run" 0 "$(fig sequential-closed bridges)"
	expect_eq "descriptors after the run" "$(fig first-closed fds)" "$(fig sequential-closed fds)"
}

# The stack thread polls instead of sleeping while round trips come quickly (loop.c, busy
# polling). Once they stop, it must sleep again: a wrapped process with an idle tunnel
# connection costs no CPU, whatever the connection did before.
@test "after 2000 quick round trips, an idle connection costs the process no CPU (busy polling stops)" {
	run shim_run "$TOPO_PYTHON" -c '
import resource, socket, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
for i in range(2000):
    s.sendall(b"x\n")
    got = b""
    while not got.endswith(b"\n"):
        got += s.recv(16)
t0, c0 = time.monotonic(), cpu()
for i in range(2000):
    s.sendall(b"x\n")
    got = b""
    while not got.endswith(b"\n"):
        got += s.recv(16)
busy = cpu() - c0
print("round trips %.0f us each, %.3f s CPU" % ((time.monotonic() - t0) / 2000 * 1e6, busy))
c0 = cpu()
time.sleep(2)
print("idle %.3f s CPU in 2 s" % (cpu() - c0))
' "$TOPO_SERVER_V4" "$LOAD_PORT"
	echo "# $output" >&3
	expect_status "round trips, then idle" 0
	local idle
	idle=$(sed -n 's/^idle \([0-9.]*\) s CPU.*/\1/p' <<<"$output")
	# Sleeping, the stack thread wakes for its timers only; polling, it would burn 2 s.
	expect_le "CPU seconds while idle, in ms" 100 "$(awk -v s="$idle" 'BEGIN { printf "%d", s * 1000 }')"
}
