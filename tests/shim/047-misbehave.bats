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
	shim_setup_file sh_signals sh_fork_start sh_eintr sh_dup2 || return
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
SIG_ROUNDS=50000
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

# A resolver in the client namespace that answers Endpoint hostnames after 1.5 s, and a
# config whose Endpoint is such a name: the stack's start takes that long.
SLOW_DNS=127.0.0.77
slow_endpoint_up() {
	printf 'nameserver %s\noptions timeout:5 attempts:1\n' "$SLOW_DNS" |
		topo_etc_netns "$TOPO_CLIENT_NS" resolv.conf || return
	shim_server slowdns "$TOPO_CLIENT_NS" slowdns "$SLOW_DNS" 1.5 127.0.0.1 || return
	SHIM_CONF=$TOPO_DIR/slow-endpoint.conf
	(umask 077 && sed "s/^Endpoint = .*/Endpoint = slow-endpoint.test:$TOPO_PORT/" \
		"$TOPO_CONF" >"$SHIM_CONF")
}

@test "fork while another thread starts the tunnel (slow Endpoint lookup): the child does not hang" {
	slow_endpoint_up
	run shim_run "$(shim_tool sh_fork_start)" "$TOPO_SERVER_V4" "$ECHO_PORT" 500
	echo "# $output" >&3
	expect_status "sh_fork_start" 0
	expect_has "the parent" "parent: OK" "$output"
	expect_has "the slow resolver" "answered" "$(cat "$TOPO_DIR/slowdns.log")"
}

@test "signals during blocking recv/accept/connect and SIGPIPE after a reset: as the kernel gives them" {
	local kernel shim
	topo_kernel_client_up
	run in_kclient timeout 30 "$(shim_tool sh_eintr)" "$TOPO_SERVER_V4" "$ECHO_PORT" "$SILENT_V4"
	expect_status "sh_eintr through the kernel's stack" 0
	kernel=$output
	echo "# kernel:" >&3
	echo "$kernel" | sed 's/^/#   /' >&3
	run shim_run "$(shim_tool sh_eintr)" "$TOPO_SERVER_V4" "$ECHO_PORT" "$SILENT_V4"
	expect_status "sh_eintr under the library" 0
	shim=$output
	[ "$shim" = "$kernel" ] && return 0
	echo "the library's answers differ from the kernel's:" >&2
	diff <(echo "$kernel") <(echo "$shim") >&2
	return 1
}

# The library keeps its descriptors from 1536 up (docs/design.md): the sweep covers them.
@test "dup2 over a tunnelled fd, from one onto a plain fd, and onto every number: the tunnel survives" {
	run shim_run "$(shim_tool sh_dup2)" "$TOPO_SERVER_V4" "$ECHO_PORT" 2100
	expect_status "sh_dup2" 0
	echo "# $output" >&3
}
