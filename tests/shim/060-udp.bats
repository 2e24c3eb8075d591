#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# UDP through the shim. Connected sockets (socat, a python3 client) keep each datagram a
# datagram. An unconnected socket talks to a server through the tunnel and to one on its
# own loopback at once, with the kernel's semantics for recvfrom's source address,
# MSG_PEEK, MSG_TRUNC, FIONREAD, read(), and recvmmsg/sendmmsg. tests/shim/udp_check.py
# and tests/tools/sh_udp_mmsg pass against the kernel first (the reference), then
# through the shim.

load helpers

LOOP_ECHO_PORT=7202

setup_file() {
	shim_setup_file sh_udp_mmsg sh_udp_once || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_echo_up || return
	LOOP_ECHO_LOG=$TOPO_DIR/lo-echo-udp.log
	export LOOP_ECHO_LOG
	shim_server lo-echo "$TOPO_CLIENT_NS" echo "$LOOP_ECHO_PORT" "$LOOP_ECHO_LOG"
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	UDP_CHECK=$BATS_TEST_DIRNAME/udp_check.py
	MMSG=$(shim_tool sh_udp_mmsg)
}

teardown() {
	shim_teardown
}

@test "reference: udp_check.py and sh_udp_mmsg pass against the kernel" {
	# In the server namespace both echo addresses are local: no shim, no tunnel.
	run in_server "$TOPO_PYTHON" "$UDP_CHECK" connected "$TOPO_SERVER_V4" "$ECHO_PORT"
	expect_status "kernel: udp_check.py connected" 0
	run in_server "$TOPO_PYTHON" "$UDP_CHECK" mixed "$TOPO_SERVER_V4" "$ECHO_PORT" \
		127.0.0.1 "$ECHO_PORT"
	expect_status "kernel: udp_check.py mixed (IPv4)" 0
	run in_server "$TOPO_PYTHON" "$UDP_CHECK" mixed "$TOPO_SERVER_V6" "$ECHO_PORT" ::1 \
		"$ECHO_PORT" "::ffff:$TOPO_SERVER_V4" "$ECHO_PORT" ::ffff:127.0.0.1 "$ECHO_PORT"
	expect_status "kernel: udp_check.py mixed (IPv6 socket, v4-mapped too)" 0
	run in_server "$MMSG" "$TOPO_SERVER_V4" "$ECHO_PORT" 127.0.0.1 "$ECHO_PORT"
	expect_status "kernel: sh_udp_mmsg" 0
}

@test "without the shim a UDP send to the tunnel's addresses has no route" {
	run plain_run "$(shim_tool sh_udp_once)" sendto "$TOPO_SERVER_V4" "$ECHO_PORT" x
	expect_status "sendto without the shim" 1
	expect_has "sh_udp_once's error" "Network is unreachable" "$output"
}

@test "socat UDP (connected): each write one datagram, each echo one write, IPv4 and IPv6" {
	local target n0 sizes
	for target in "UDP:$TOPO_SERVER_V4:$ECHO_PORT" "UDP6:[$TOPO_SERVER_V6]:$ECHO_PORT"; do
		n0=$(wc -l <"$ECHO_LOG")
		# Three writes, apart in time, so socat reads each alone: 5, 300 and 1200 bytes.
		run shim_run socat -t 2 - "$target" < <(
			printf 'hello'
			sleep 0.3
			printf 'x%.0s' {1..300}
			sleep 0.3
			printf 'y%.0s' {1..1200}
			sleep 0.3
		)
		expect_status "socat $target" 0
		expect_eq "socat $target: what came back" \
			"hello$(printf 'x%.0s' {1..300})$(printf 'y%.0s' {1..1200})" "$output"
		sizes=$(tail -n +$((n0 + 1)) "$ECHO_LOG" | cut -d' ' -f2 | tr '\n' ' ')
		expect_eq "socat $target: datagram sizes at the server" "5 300 1200 " "$sizes"
	done
}

@test "python3 connected UDP: boundaries, a short recv drops the rest, IPv4 and IPv6" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		run shim_run "$TOPO_PYTHON" "$UDP_CHECK" connected "$addr" "$ECHO_PORT"
		expect_status "udp_check.py connected $addr" 0
	done
}

# The port each echo server last saw our datagrams come from.
last_port() {
	awk -v from="$2" '$3 == from { p = $4 } END { print p }' "$1"
}

@test "unconnected IPv4 socket: the tunnel and loopback at once, with PEEK, TRUNC, FIONREAD" {
	local port
	run shim_run "$TOPO_PYTHON" "$UDP_CHECK" mixed "$TOPO_SERVER_V4" "$ECHO_PORT" \
		127.0.0.1 "$LOOP_ECHO_PORT"
	expect_status "udp_check.py mixed (IPv4)" 0
	port=${output##*OK port }
	# One socket, one port: the tunnel's server and the loopback one both saw it.
	expect_eq "source port seen through the tunnel" "$port" \
		"$(last_port "$ECHO_LOG" ::ffff:10.200.0.2)"
	expect_eq "source port seen on loopback" "$port" \
		"$(last_port "$LOOP_ECHO_LOG" ::ffff:127.0.0.1)"
}

@test "unconnected IPv6 socket: IPv6 and v4-mapped, through the tunnel and on loopback" {
	run shim_run "$TOPO_PYTHON" "$UDP_CHECK" mixed "$TOPO_SERVER_V6" "$ECHO_PORT" ::1 \
		"$LOOP_ECHO_PORT" "::ffff:$TOPO_SERVER_V4" "$ECHO_PORT" ::ffff:127.0.0.1 \
		"$LOOP_ECHO_PORT"
	expect_status "udp_check.py mixed (IPv6 socket)" 0
}

@test "sendmmsg and recvmmsg: one batch to the tunnel and to loopback" {
	run shim_run "$MMSG" "$TOPO_SERVER_V4" "$ECHO_PORT" 127.0.0.1 "$LOOP_ECHO_PORT"
	expect_status "sh_udp_mmsg (IPv4)" 0
	expect_eq "sh_udp_mmsg (IPv4)" "OK sent 6 received 6" "$output"
	run shim_run "$MMSG" "$TOPO_SERVER_V6" "$ECHO_PORT" ::1 "$LOOP_ECHO_PORT" \
		"::ffff:$TOPO_SERVER_V4" "$ECHO_PORT"
	expect_status "sh_udp_mmsg (IPv6 socket, v4-mapped too)" 0
	expect_eq "sh_udp_mmsg (IPv6)" "OK sent 9 received 9" "$output"
}

@test "dig-style: 200 datagrams through one unconnected socket, none lost or mangled" {
	# shellcheck disable=SC2016
	run shim_run "$TOPO_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
to = (sys.argv[1], int(sys.argv[2]))
for i in range(200):
    payload = b"%d:" % i + bytes([i % 256]) * (i * 7 % 1400)
    s.sendto(payload, to)
    data, src = s.recvfrom(2048)
    if (data, src) != (payload, to):
        sys.exit(f"datagram {i}: expected {len(payload)} bytes from {to}, got {len(data)} from {src}")
print("OK")' "$TOPO_SERVER_V4" "$ECHO_PORT"
	expect_status "200 request/reply datagrams" 0
	expect_eq "200 request/reply datagrams" OK "$output"
}
