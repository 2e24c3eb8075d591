#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# ICMP errors from the tunnel reach the sockets they concern (issue 13), against the
# real wireguard-go peer, whose server namespace's kernel sends them: a connected UDP
# socket reads ECONNREFUSED after a port unreachable, as on the kernel path, and with
# IP_RECVERR finds it in its error queue (MSG_ERRQUEUE) as the kernel queues it.

load helpers

setup_file() {
	shim_setup_file || return
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	ICMP_CHECK=$BATS_TEST_DIRNAME/icmp_check.py
}

teardown() {
	shim_teardown
}

@test "connected UDP to a closed port: a blocked recv, or SO_ERROR, gets ECONNREFUSED once, as on the kernel" {
	local addr t0 ms
	local want=$'recv ECONNREFUSED, then poll quiet, recv timeout\npoll ready, SO_ERROR ECONNREFUSED, recv timeout'
	run in_server "$TOPO_PYTHON" "$ICMP_CHECK" udp 127.0.0.1 "$CLOSED_PORT"
	expect_eq "reference: the kernel's connected UDP socket" "$want" "$output"
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		t0=$EPOCHREALTIME
		run shim_run "$TOPO_PYTHON" "$ICMP_CHECK" udp "$addr" "$CLOSED_PORT"
		ms=$(ms_since "$t0")
		expect_eq "udp $addr through the tunnel" "$want" "$output"
		# The recv would wait 3 s (SO_RCVTIMEO) for nothing: the error ended it.
		echo "# udp $addr: ECONNREFUSED, process start to exit $ms ms" >&3
	done
}

@test "connected UDP with IP_RECVERR: MSG_ERRQUEUE gives the port unreachable with the kernel's sock_extended_err" {
	local addr ref kernel
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		ref=127.0.0.1
		[[ "$addr" != *:* ]] || ref=::1
		run in_server "$TOPO_PYTHON" "$ICMP_CHECK" recverr "$ref" "$CLOSED_PORT"
		expect_has "reference: the kernel's error queue ($ref)" \
			"errqueue errno=ECONNREFUSED origin=icmp" "$output"
		kernel=$output
		run shim_run "$TOPO_PYTHON" "$ICMP_CHECK" recverr "$addr" "$CLOSED_PORT"
		expect_eq "recverr $addr through the tunnel" "$kernel" "$output"
	done
}
