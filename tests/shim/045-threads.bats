#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Threads that share descriptors: tests/tools/sh_threads races connect, close, send, recv,
# dup, dup2, a second connect, socket options and shutdown on one table of descriptors
# (tunnel TCP and UDP, unconnected UDP into the tunnel, loopback TCP), then checks that
# new connections still echo. Run plainly, and under a ThreadSanitizer build of the
# library (shim.h's locking rules, checked): there it must report nothing.

load helpers

setup_file() {
	shim_setup_file sh_threads || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_echo_up
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	TH=$(shim_tool sh_threads)
}

teardown() {
	shim_teardown
}

@test "threads racing connect/close/send/recv/dup on shared descriptors: no crash, no hang" {
	run shim_run "$TH" "$TOPO_SERVER_V4" "$ECHO_PORT" 3
	expect_status "sh_threads over IPv4" 0
	echo "# $output" >&3
	run shim_run "$TH" "$TOPO_SERVER_V6" "$ECHO_PORT" 2
	expect_status "sh_threads over IPv6" 0
}

@test "the same race under ThreadSanitizer: no report" {
	shim_tsan_require
	# The runner itself: TSan's runtime and our instrumented build, both loaded.
	run tsan_run cat /proc/self/maps
	expect_has "tsan_run's preloads" "libtsan" "$output"
	expect_has "tsan_run's preloads" "$SHIM_TSAN_LIB" "$output"
	run tsan_run "$TH" "$TOPO_SERVER_V4" "$ECHO_PORT" 3
	expect_no_tsan_report "sh_threads"
	expect_status "sh_threads under TSan" 0
	echo "# $output" >&3
}
