#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Programs that misbehave: signal handlers that use sockets while the program does too
# (tests/tools/sh_signals), a fork while another thread is starting the tunnel,
# signals during blocking calls (EINTR, SA_RESTART, SIGPIPE: compared with what the
# kernel gives through the stand-in client's kernel stack), and dup2 over tunnelled,
# plain and the library's own descriptors. Threads racing connect/close/send on shared
# descriptors are 045-threads.bats.

load helpers

setup_file() {
	shim_setup_file sh_signals || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_echo_up
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	SIG=$(shim_tool sh_signals)
}

teardown() {
	shim_teardown
}

# The handler runs every 100 us during both loops; a deadlock is a run that never ends,
# so each run is bounded by a timeout, not timed.
SIG_ROUNDS=100000
SIG_LIMIT=40

@test "a signal handler that calls socket/dup/close/read/write while the program does: no deadlock" {
	run plain_run timeout "$SIG_LIMIT" "$SIG" "$SIG_ROUNDS"
	expect_status "sh_signals without the library" 0
	echo "# without the library: $output" >&3
	run shim_run timeout "$SIG_LIMIT" "$SIG" "$SIG_ROUNDS" "$TOPO_SERVER_V4" "$ECHO_PORT"
	expect_status "sh_signals under the library, with a tunnelled connection" 0
	expect_has "sh_signals" "OK rounds=$SIG_ROUNDS" "$output"
	echo "# under the library: $output" >&3
}

@test "the same under ThreadSanitizer: no deadlock, no report" {
	shim_tsan_require
	run tsan_run timeout "$SIG_LIMIT" "$SIG" 20000 "$TOPO_SERVER_V4" "$ECHO_PORT"
	expect_no_tsan_report "sh_signals"
	expect_status "sh_signals under TSan" 0
	echo "# under TSan: $output" >&3
}
