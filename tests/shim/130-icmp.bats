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
	shim_host_network_up
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

@test "reference: without the library, ping to a tunnel address leaves on the host network" {
	capture_start
	run plain_run ping -n -c1 -W1 "$TOPO_SERVER_V4"
	capture_stop
	expect_status "ping without the library" 1
	expect_has "the capture" "leak tsx$TOPO_ID 1 192.0.2.2 " "$CAPTURED"
}

@test "ping and ping -6 as root: replies through the tunnel; only WireGuard on the wire" {
	local pattern addr
	# The marker in every echo's data: sh_capture flags a datagram that shows it.
	pattern=$(printf %s "$MARKER" | od -An -tx1 | tr -d ' \n' | cut -c1-32)
	capture_start
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		run shim_run ping -n -c3 -i0.2 -p "$pattern" "$addr"
		expect_status "ping $addr" 0
		expect_has "ping $addr: summary" "3 packets transmitted, 3 received" "$output"
		# The server's kernel answers with TTL / hop limit 64; the tunnel hops none.
		expect_has "ping $addr: reply line" "64 bytes from $addr: icmp_seq=3 ttl=64 time=" \
			"$output"
	done
	capture_stop
	expect_no_leak
	expect_has "the capture" "wg lo 17 " "$CAPTURED"
}

@test "a ping to a silent tunnel address times out as on the kernel path" {
	local addr
	capture_start
	for addr in "$SILENT_V4" "$SILENT_V6"; do
		run shim_run ping -n -c2 -i0.2 -W1 "$addr"
		expect_status "ping $addr" 1
		expect_has "ping $addr" "2 packets transmitted, 0 received, 100% packet loss" "$output"
	done
	capture_stop
	expect_no_leak
}

@test "ping -f -c 200 and ping -s 1400 through the tunnel, IPv4 and IPv6" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		run shim_run ping -n -q -f -c 200 "$addr"
		expect_status "ping -f $addr" 0
		expect_has "ping -f $addr" "200 packets transmitted, 200 received, 0% packet loss" \
			"$output"
		run shim_run ping -n -c2 -i0.2 -s 1400 "$addr"
		expect_status "ping -s 1400 $addr" 0
		expect_has "ping -s 1400 $addr" "1408 bytes from $addr: icmp_seq=2" "$output"
	done
}

@test "a program's own ping sockets get echo replies with their identifier" {
	local ns
	for ns in "$TOPO_CLIENT_NS" "$TOPO_SERVER_NS"; do
		ip netns exec "$ns" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
	done
	run in_server "$TOPO_PYTHON" "$ICMP_CHECK" ping 127.0.0.1 ::1
	expect_status "reference: icmp_check.py against the kernel" 0
	capture_start
	run shim_run "$TOPO_PYTHON" "$ICMP_CHECK" ping "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"
	capture_stop
	expect_status "icmp_check.py through the tunnel" 0
	expect_has "icmp_check.py" "$TOPO_SERVER_V6 reply id=" "$output"
	expect_no_leak
}

@test "a raw UDP or TCP socket sending to a tunnel address: ENETUNREACH, nothing on the wire" {
	run plain_run "$TOPO_PYTHON" "$ICMP_CHECK" raw "$TOPO_SERVER_V4"
	expect_has "reference: without the library" "raw-udp sent" "$output"
	capture_start
	run shim_run "$TOPO_PYTHON" "$ICMP_CHECK" raw "$TOPO_SERVER_V4"
	capture_stop
	expect_has "raw UDP under the library" "raw-udp ENETUNREACH" "$output"
	expect_has "raw TCP under the library" "raw-tcp ENETUNREACH" "$output"
	expect_eq "the capture" "" "$CAPTURED"
}

@test "a TCP connect to an address the peer reports unreachable fails with EHOSTUNREACH at once" {
	local t0 ms
	# The server's kernel forwards, and has no way to 10.200.0.77: it answers a SYN
	# there with an ICMP host unreachable.
	in_server sysctl -qw net.ipv4.ip_forward=1
	ip -n "$TOPO_SERVER_NS" route add unreachable 10.200.0.77/32
	t0=$(date +%s%N)
	run shim_run "$TOPO_PYTHON" -c '
import errno, socket, sys
s = socket.socket()
s.settimeout(30)
try:
    s.connect((sys.argv[1], 80))
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, e))' 10.200.0.77
	ms=$((($(date +%s%N) - t0) / 1000000))
	in_server sysctl -qw net.ipv4.ip_forward=0
	ip -n "$TOPO_SERVER_NS" route del unreachable 10.200.0.77/32
	expect_eq "the connect's outcome" "EHOSTUNREACH" "$output"
	# lwIP alone would retry its SYN for about 18 s.
	expect_le "the connect's time (ms)" 5000 "$ms"
}

# ping_as_nobody ARGS...: tunshim ping ARGS as nobody in the client namespace, with copies
# of the wrapper, the library and the config and a runtime directory of nobody's own
# ($NOBODY_DIR: the build may lie where nobody cannot go, as under /root).
ping_as_nobody() {
	in_client timeout -k 3 "$SHIM_LIMIT" setpriv --reuid=nobody --regid=nogroup \
		--clear-groups env XDG_RUNTIME_DIR="$NOBODY_DIR/run" \
		TUNSHIM_LIBRARY="$NOBODY_DIR/libtunshim.so" \
		TUNSHIM_LOG=debug TUNSHIM_LOG_FILE="$NOBODY_DIR/shim.log" \
		TUNSHIM_GRACE="$SHIM_GRACE" "$NOBODY_DIR/tunshim" ping --config "$NOBODY_DIR/wg.conf" "$@"
}

@test "tunshim ping as nobody: replies through the tunnel where the kernel refuses a ping socket" {
	local addr
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	# A new namespace's default: nobody may not have a ping socket (130 widened it above).
	ip netns exec "$TOPO_CLIENT_NS" sysctl -qw net.ipv4.ping_group_range="1 0"
	NOBODY_DIR=$(mktemp -d /tmp/tunshim-ping.XXXXXX)
	chmod 711 "$NOBODY_DIR"
	mkdir -m 700 "$NOBODY_DIR/run"
	install -m 600 "$TOPO_CONF" "$NOBODY_DIR/wg.conf"
	install -m 755 "$TUNSHIM" "$NOBODY_DIR/tunshim"
	install -m 644 "$SHIM_LIB" "$NOBODY_DIR/libtunshim.so"
	chown nobody "$NOBODY_DIR/run" "$NOBODY_DIR/wg.conf"
	run in_client setpriv --reuid=nobody --regid=nogroup --clear-groups "$TOPO_PYTHON" -c '
import socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    print("allowed")
except OSError as e:
    print(e.strerror)'
	expect_eq "reference: the kernel gives nobody a ping socket" "Permission denied" "$output"
	capture_start
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		run ping_as_nobody -c 3 "$addr"
		expect_status "tunshim ping $addr" 0
		expect_has "tunshim ping $addr: summary" "3 packets transmitted, 3 received, 0% packet loss" \
			"$output"
		expect_has "tunshim ping $addr: reply line" "64 bytes from $addr: icmp_seq=3 ttl=64 time=" \
			"$output"
		expect_has "tunshim ping $addr: rtt line" "rtt min/avg/max/mdev = " "$output"
		echo "# tunshim ping $addr as nobody: $(grep rtt <<<"$output")" >&3
	done
	expect_has "tunshim ping -6: header" "PING $TOPO_SERVER_V6($TOPO_SERVER_V6) 56 data bytes" \
		"$output"
	# An address outside the tunnel: the stand-in socket refuses it; nothing leaves.
	run ping_as_nobody -c 1 -W 1 192.0.2.1
	capture_stop
	expect_status "tunshim ping 192.0.2.1 (the host network)" 2
	expect_has "tunshim ping 192.0.2.1" "Permission denied" "$output"
	expect_no_leak
	rm -rf "$NOBODY_DIR"
}
