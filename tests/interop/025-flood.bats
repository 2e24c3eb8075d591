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
	# count every 50 ms against CLOCK_MONOTONIC (wg_flood's clock too).
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
        tick += 0.05
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

# flood MODE PPS SECONDS [--pulse MS]: wg_flood from 127.0.0.2 at our ListenPort, in
# the background.
flood() {
	topo_spawn flood "$TOPO_CLIENT_NS" "$WG_FLOOD" --mode "$1" "${@:4}" --pps "$2" \
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

# rates: the download rate (bytes/s) in $OUT's samples while wg_flood pulsed off and
# while it was on (each from 50 ms into the phase): "BASE FLOODED". Samples before the first phase, or within half a second of
# the download's start, count for neither.
rates() {
	awk '
		FNR == NR && $2 == "on" { on[non] = $3 / 1000; off[non] = $4 / 1000; non++; next }
		FNR == NR { next }
		$1 == "at" { t[n] = $2; b[n] = $3; n++ }
		function phase(a, z,  i) {
			for (i = 0; i < non; i++) {
				if (a >= on[i] + 0.05 && z <= off[i])
					return "flood"
				if (a >= off[i] + 0.05 && (i + 1 == non || z <= on[i + 1]))
					return "base"
			}
			return ""
		}
		END {
			for (i = 1; i < n; i++) {
				p = t[i - 1] < t[0] + 0.5 ? "" : phase(t[i - 1], t[i])
				if (p == "base") { bt += t[i] - t[i - 1]; bb += b[i] - b[i - 1] }
				if (p == "flood") { ft += t[i] - t[i - 1]; fb += b[i] - b[i - 1] }
			}
			printf "%d %d\n", bt ? bb / bt : 0, ft ? fb / ft : 0
		}' "$FLOOD_LOG" "$OUT"
}

# The machine's cores are shared with other work, whose load comes and goes (one flood
# of a few seconds in the middle of a download measured anywhere from 26% to 113%):
# the flood pulses, 250 ms on and 250 ms off, through one download, so both rates are
# averaged over the same 8 s.
@test "a valid-mac1 flood gets cookie replies at a bounded rate and leaves an established transfer its rate" {
	local base flooded secs cookies
	new_peer
	client 0
	client 9 &
	local client_pid=$!
	sleep 0.5
	flood mac1 10000 8 --pulse 250
	flood_wait
	wait "$client_pid"
	read -r base flooded < <(rates)
	echo "download: $((base / 1000000)) MB/s alone, $((flooded / 1000000)) MB/s under the flood"
	expect_ge "download rate under the flood, % of the rate without it" 80 \
		$((flooded * 100 / base))
	# one source: RATELIMIT_BURST, then RATELIMIT_PER_SECOND (flood and drain time)
	secs=$((($(flood_stat elapsed_ms) + 300 + 999) / 1000))
	cookies=$(flood_stat cookie_replies)
	echo "cookie replies: $cookies for $(flood_stat sent) initiations in $secs s"
	expect_ge "cookie replies the flood got" 1 "$cookies"
	expect_le "cookie replies the flood got" $((5 + 20 * secs)) "$cookies"
	expect_ge "times the stack came under load" 1 "$(serve_stat under_load_entered)"
	expect_ge "cookie replies the stack held back" $(($(flood_stat sent) / 2)) \
		"$(serve_stat cookie_replies_limited)"
}

@test "under a valid-mac1 flood a new peer completes its handshake within one cookie round" {
	local cookies0
	flood mac1 10000 15
	topo_wait_until 5 serve_stat_ge under_load_entered 1
	cookies0=$(serve_stat cookie_replies_sent)
	new_peer
	client 0
	topo_stop flood
	echo "connect through a fresh handshake under the flood: $(connect_ms) ms"
	expect_le "connect under the flood, ms (REKEY_TIMEOUT plus a second)" \
		$((REKEY_TIMEOUT_MS + 1000)) "$(connect_ms)"
	grep -q 'Receiving cookie response from' "$TOPO_WG_LOG"
	expect_ge "cookie replies sent since" $((cookies0 + 1)) "$(serve_stat cookie_replies_sent)"
}

@test "a flood of valid mac2s reaches the Diffie-Hellman at a bounded rate and keeps the stack thread's CPU bounded" {
	local t0 t1 limited0 ms pct
	limited0=$(serve_stat handshakes_ratelimited)
	t0=$(stack_ticks)
	flood mac2 10000 3
	flood_wait
	t1=$(stack_ticks)
	ms=$(($(flood_stat elapsed_ms) + 300))
	pct=$(((t1 - t0) * 1000 * 100 / $(getconf CLK_TCK) / ms))
	echo "stack thread: $((t1 - t0)) ticks in $ms ms ($pct% of a core) for" \
		"$(flood_stat sent) initiations, $(flood_stat mac2_sent) with a valid mac2"
	expect_ge "initiations sent with a mac2" 1000 "$(flood_stat mac2_sent)"
	expect_ge "mac2-valid initiations held back from the DH" \
		$(($(flood_stat mac2_sent) * 9 / 10)) \
		$(($(serve_stat handshakes_ratelimited) - limited0))
	expect_le "stack thread CPU under a 10k/s mac2 flood, % of a core" 20 "$pct"
}
