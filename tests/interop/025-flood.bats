#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Handshake floods against OUR stack as the responder. ts_serve runs the stack with a
# ListenPort and serves an endless download on tunnel port $SERVE_PORT; wireguard-go (the
# topology's server, its TUN in the server namespace) is the legitimate peer that
# initiates to it; wg_flood floods the ListenPort from 127.0.0.2:
#
#   client netns                                       server netns
#   ts_serve  10.200.0.9, UDP 127.0.0.1:$LISTEN  <--- wireguard-go TUN 10.200.0.1
#   wg_flood  127.0.0.2 -> 127.0.0.1:$LISTEN           python client: connect, download
#
# A fresh handshake is forced by removing wireguard-go's peer and adding it again.

load ../lib/topology

SERVE_ADDR=10.200.0.9
SERVE_PORT=9000
LISTEN=51830
# wireguard-go's own timer (it is not scaled): the retry after a cookie reply.
REKEY_TIMEOUT_MS=5000

setup_file() {
	topo_require_root || return 0
	topo_up
	SERVE_PUB=$(topo_genkey serve)
	export SERVE_PUB SERVE_CONF=$TOPO_DIR/serve.conf CLIENT_PY=$TOPO_DIR/client.py
	(
		umask 077
		printf '[Interface]\nPrivateKey = %s\nAddress = %s/32\nListenPort = %s\n\n' \
			"$(cat "$TOPO_DIR/serve.key")" "$SERVE_ADDR" "$LISTEN"
		printf '[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n' "$TOPO_SERVER_PUB" \
			"$TOPO_SERVER_V4"
	) >"$SERVE_CONF"
	# connect (printing how long it took), then read for SECONDS, printing the byte
	# count every 100 ms against CLOCK_MONOTONIC (wg_flood's clock too).
	cat >"$CLIENT_PY" <<'EOF'
import socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t0 = time.monotonic()
s = socket.create_connection((host, port), timeout=30)
t1 = time.monotonic()
print("connect_ms %.1f" % ((t1 - t0) * 1000), flush=True)
total, tick, end = 0, t1, t1 + secs
while secs > 0:
    now = time.monotonic()
    if now >= tick:
        print("at %.3f %d" % (now, total))
        tick += 0.1
    if now >= end:
        break
    b = s.recv(1 << 20)
    if not b:
        break
    total += len(b)
EOF
	topo_spawn serve "$TOPO_CLIENT_NS" "$TOPO_TOOLS/ts_serve" "$SERVE_CONF" "$SERVE_PORT"
	topo_wait_until 10 grep -q '^ts_serve: ready' "$TOPO_DIR/serve.log" ||
		topo_fail "ts_serve did not start: $(tail -n 3 "$TOPO_DIR/serve.log")"
}

teardown_file() {
	topo_down
}

setup() {
	topo_require_root
	FLOOD_LOG=$TOPO_DIR/flood.log
	SERVE_LOG=$TOPO_DIR/serve.log
	OUT=$BATS_TEST_TMPDIR/client.out
}

teardown() {
	topo_stop flood
	topo_wg_log_compact
	[ -n "${BATS_TEST_COMPLETED:-}" ] || topo_diag "$OUT" "$SERVE_LOG" "$FLOOD_LOG"
}

# new_peer: wireguard-go forgets the session with ts_serve, so the next packet to it
# starts a handshake from scratch.
new_peer() {
	wg set "$TOPO_WG_IF" peer "$SERVE_PUB" remove &&
		wg set "$TOPO_WG_IF" peer "$SERVE_PUB" allowed-ips "$SERVE_ADDR/32" \
			endpoint "127.0.0.1:$LISTEN"
}

# client SECONDS: the python client in the server namespace, output to $OUT.
client() {
	in_server timeout 60 "$TOPO_PYTHON" "$CLIENT_PY" "$SERVE_ADDR" "$SERVE_PORT" "$1" >"$OUT"
}

connect_ms() {
	sed -n 's/^connect_ms \([0-9]*\).*/\1/p' "$OUT"
}

# serve_stat KEY: a counter of ts_serve, asked for now (SIGUSR1).
serve_stat() {
	local n
	n=$(grep -c '^ts_serve: handshakes=' "$SERVE_LOG")
	kill -USR1 "$(cat "$TOPO_DIR/pids/serve")"
	topo_wait_until 5 serve_printed $((n + 1)) || return
	grep '^ts_serve: handshakes=' "$SERVE_LOG" | tail -n 1 | tr ' ' '\n' |
		sed -n "s/^$1=\([0-9]*\)$/\1/p"
}

serve_stat_ge() {
	[ "$(serve_stat "$1")" -ge "$2" ]
}

serve_printed() {
	[ "$(grep -c '^ts_serve: handshakes=' "$SERVE_LOG")" -ge "$1" ]
}

# flood MODE PPS SECONDS: wg_flood from 127.0.0.2 at our ListenPort, in the background.
flood() {
	topo_spawn flood "$TOPO_CLIENT_NS" "$WG_FLOOD" --mode "$1" --pps "$2" \
		"$SERVE_PUB" 127.0.0.1 "$LISTEN" "$3" 127.0.0.2
	FLOOD_PID=$TOPO_SPAWNED
}

flood_wait() {
	topo_reap flood "$FLOOD_PID"
	cat "$FLOOD_LOG"
}

flood_stat() {
	grep '^wg_flood: sent=' "$FLOOD_LOG" | tr ' ' '\n' | sed -n "s/^$1=\([0-9]*\)$/\1/p"
}

# stack_ticks: CPU time (clock ticks, user + system) the stack thread of ts_serve used.
stack_ticks() {
	local tid stat
	tid=$(sed -n 's/^ts_serve: ready .*stack_tid=\([0-9]*\)$/\1/p' "$SERVE_LOG")
	stat=$(cat "/proc/$(cat "$TOPO_DIR/pids/serve")/task/$tid/stat") || return
	stat=${stat##*) }
	# fields 14 and 15 of the whole line: the 12th and 13th after "state"
	awk '{ print $12 + $13 }' <<<"$stat"
}

@test "a garbage flood (bad mac1) leaves a new peer's handshake fast and never puts the stack under load" {
	local base flooded bad0
	new_peer
	client 0
	base=$(connect_ms)
	bad0=$(serve_stat bad_mac)
	flood garbage 5000 3
	topo_wait_until 5 serve_stat_ge bad_mac $((bad0 + 2000))
	new_peer
	client 0
	flooded=$(connect_ms)
	flood_wait
	echo "connect through a fresh handshake: ${base} ms alone, ${flooded} ms under the flood"
	expect_le "connect (fresh handshake) under a garbage flood, ms" 99 "$flooded"
	expect_ge "datagrams of the flood dropped for their mac1" \
		$(($(flood_stat sent) * 9 / 10)) $(($(serve_stat bad_mac) - bad0))
	expect_eq "times the stack came under load" 0 "$(serve_stat under_load_entered)"
	expect_eq "cookie replies the flood got" 0 "$(flood_stat cookie_replies)"
}
