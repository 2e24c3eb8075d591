#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# ICMP (issue 13): ping through the tunnel, as root (raw sockets) and from a program
# that opens ping sockets itself, IPv4 and IPv6, against the real wireguard-go peer
# (the server namespace's kernel answers); and no ICMP or other raw traffic to a
# tunnel address reaches the host network.
#
# The client namespace gets a "host network" here, as in 110-hardening.bats, so that a
# leak shows as a packet instead of failing for want of a route; sh_capture watches
# every interface of the namespace while the programs run.

load helpers

MARKER=icmp-marker

setup_file() {
	shim_setup_file sh_capture || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	command -v ping >/dev/null || topo_cannot_run "no ping (iputils-ping): tests/deps.sh test"
	icmp_host_network_up
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	ICMP_CHECK=$BATS_TEST_DIRNAME/icmp_check.py
}

teardown() {
	topo_stop capture
	shim_teardown
}

# A veth pair with the default routes (the host network a leak would take), quiet: no
# link-local address, no multicast, a permanent neighbour for the gateway.
# shellcheck disable=SC2153 # TOPO_ID is topo_up's
icmp_host_network_up() {
	local dev=tsx$TOPO_ID peer=tsy$TOPO_ID mac d
	ip -n "$TOPO_CLIENT_NS" link add "$dev" type veth peer name "$peer" || return
	for d in "$dev" "$peer"; do
		ip -n "$TOPO_CLIENT_NS" link set "$d" multicast off addrgenmode none || return
	done
	mac=$(ip -n "$TOPO_CLIENT_NS" -br link show "$peer" | awk '{ print $3 }')
	ip -n "$TOPO_CLIENT_NS" addr add 192.0.2.2/24 dev "$dev" || return
	ip -n "$TOPO_CLIENT_NS" addr add 2001:db8:99::2/64 dev "$dev" nodad || return
	ip -n "$TOPO_CLIENT_NS" link set "$peer" up || return
	ip -n "$TOPO_CLIENT_NS" link set "$dev" up || return
	ip -n "$TOPO_CLIENT_NS" neigh add 192.0.2.1 lladdr "$mac" dev "$dev" nud permanent || return
	ip -n "$TOPO_CLIENT_NS" neigh add 2001:db8:99::1 lladdr "$mac" dev "$dev" nud permanent ||
		return
	ip -n "$TOPO_CLIENT_NS" route add default via 192.0.2.1 dev "$dev" || return
	ip -n "$TOPO_CLIENT_NS" -6 route add default via 2001:db8:99::1 dev "$dev"
}

capture_start() {
	topo_spawn capture "$TOPO_CLIENT_NS" "$(shim_tool sh_capture)" "$TOPO_PORT" "$MARKER" ||
		return
	topo_wait_until 5 grep -qx ready "$TOPO_DIR/capture.log" ||
		topo_fail "sh_capture did not start: $(cat "$TOPO_DIR/capture.log")"
}

capture_stop() {
	sleep 0.3
	topo_stop capture
	CAPTURED=$(grep -v '^ready$' "$TOPO_DIR/capture.log" || true)
}

# Only encrypted WireGuard datagrams (and loopback between the test's own programs).
expect_no_leak() {
	local bad
	bad=$(grep -E '^(leak|bad-wg) ' <<<"$CAPTURED") || return 0
	echo "packets that are not encrypted WireGuard datagrams to the endpoint:" >&2
	echo "$bad" | head -n 20 >&2
	return 1
}

@test "reference: without the library, ping to a tunnel address leaves on the host network" {
	capture_start
	run plain_run ping -n -c1 -W1 "$TOPO_SERVER_V4"
	capture_stop
	expect_status "ping without the library" 1
	expect_has "the capture" "leak tsx$TOPO_ID 1 192.0.2.2 " "$CAPTURED"
}

@test "ping and ping -6 as root: replies through the tunnel; only WireGuard on the wire" {
	capture_start
	run shim_run ping -n -c3 -i0.2 -p "$(printf %s "$MARKER" | od -An -tx1 | tr -d ' \n')" \
		"$TOPO_SERVER_V4"
	capture_stop
	expect_status "ping $TOPO_SERVER_V4" 0
	expect_has "ping's summary" "3 packets transmitted, 3 received" "$output"
	expect_has "ping's reply line" "64 bytes from $TOPO_SERVER_V4: icmp_seq=3 ttl=64 time=" \
		"$output"
	expect_no_leak
	expect_has "the capture" "wg lo 17 " "$CAPTURED"
}
