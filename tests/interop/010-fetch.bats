#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The program under test fetches over HTTP through its in-process tunnel from a real
# wireguard-go peer (tests/lib/topology.bash): over IPv4 and IPv6, 50 MiB intact, a transfer
# that outlives three rekeys, with a preshared key, and nothing without the tunnel.

load ../lib/topology

setup_file() {
	topo_require_root || return 0
	topo_up
	# A second client key, with a preshared key, beside the plain one.
	topo_client_conf psk 4 --psk
	export PSK_CONF=$TOPO_NEW_CONF PSK_PUB=$TOPO_NEW_PUB
}

teardown_file() {
	topo_down
}

setup() {
	topo_require_root
	OUT=$BATS_TEST_TMPDIR/body
	ERR=$BATS_TEST_TMPDIR/ts_fetch.stderr
}

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || topo_diag "$ERR"
}

fetch() {
	ts_fetch_run "$OUT" "$ERR" --timeout 30 "$@"
}

@test "without the tunnel nothing leaves the client namespace" {
	# The server answers in its own namespace, so a failure below is the missing route.
	in_server curl -fsS --max-time 3 -o /dev/null "http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/"
	run in_client curl -sS --max-time 3 "http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/"
	expect_eq "curl over IPv4 without the tunnel fails (7: no route)" 7 "$status"
	run in_client curl -sS --max-time 3 "http://[$TOPO_SERVER_V6]:$TOPO_HTTP_PORT/"
	expect_eq "curl over IPv6 without the tunnel fails (7: no route)" 7 "$status"
}

@test "index.html over IPv4" {
	local rx0
	rx0=$(wg_rx_bytes)
	fetch "$TOPO_CONF" "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" /index.html
	cmp "$TOPO_DIR/www/index.html" "$OUT"
	expect_ge "handshakes completed by ts_fetch" 1 "$(ts_stat "$ERR" handshakes)"
	# wireguard-go received it from our key: the tunnel carried the request.
	expect_ge "wireguard-go rx_bytes from our key" $((rx0 + 1)) "$(wg_rx_bytes)"
}

@test "index.html over IPv6" {
	local rx0
	rx0=$(wg_rx_bytes)
	fetch "$TOPO_CONF" "$TOPO_SERVER_V6" "$TOPO_HTTP_PORT" /index.html
	cmp "$TOPO_DIR/www/index.html" "$OUT"
	expect_ge "wireguard-go rx_bytes from our key" $((rx0 + 1)) "$(wg_rx_bytes)"
}

@test "50 MiB arrive intact" {
	local t0 t1 sum
	t0=$EPOCHREALTIME
	fetch "$TOPO_CONF" "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" /big.bin
	t1=$EPOCHREALTIME
	sum=$(sha256sum <"$OUT" | cut -d' ' -f1)
	expect_eq "sha256 of big.bin" "$TOPO_BIG_SHA256" "$sum"
	awk -v b="$(stat -c %s "$OUT")" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "# 50 MiB over the tunnel: %.1f MB/s\n", b / (t1 - t0) / 1e6 }' >&3
}

@test "a transfer outlives three rekeys" {
	local before hs n rc
	local -A seen=()
	before=$(wg_last_handshake_ns)
	# REKEY_AFTER_TIME 120 s * 0.02 = 2.4 s; 20 MiB at 1.7 MB/s last about 12 s, so the
	# stack rekeys four or five times (three is the requirement) on one connection.
	TUNSHIM_TIMER_SCALE=0.02 topo_spawn_io fetch "$TOPO_CLIENT_NS" "$OUT" "$ERR" \
		timeout -k 5 "$TOPO_FETCH_LIMIT" "$TS_FETCH" --rate 1700000 --timeout 60 \
		"$TOPO_CONF" "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" /mid.bin
	# wireguard-go records a handshake when the first data on its keypair arrives.
	while topo_alive "$(cat "$TOPO_DIR/pids/fetch" 2>/dev/null)"; do
		hs=$(wg_last_handshake_ns)
		[ "$hs" = 0 ] || [ "$hs" = "$before" ] || seen[$hs]=1
		sleep 0.2
	done
	rc=0
	topo_reap fetch "$TOPO_SPAWNED" || rc=$?
	expect_eq "ts_fetch exit status" 0 "$rc"
	expect_eq "sha256 of mid.bin" "$TOPO_MID_SHA256" "$(sha256sum <"$OUT" | cut -d' ' -f1)"
	n=${#seen[@]}
	echo "# $n handshakes seen by wireguard-go during the transfer" >&3
	expect_ge "distinct handshakes seen by wireguard-go (initial + 3 rekeys)" 4 "$n"
	expect_ge "handshakes completed by ts_fetch" 4 "$(ts_stat "$ERR" handshakes)"
}

@test "a preshared key: the right one connects, a wrong one does not" {
	local rx0 hs0 zero wrong=$BATS_TEST_TMPDIR/wrong-psk.conf
	zero=$(printf '0%.0s' {1..64})
	[ "$(uapi_peer_field preshared_key "$PSK_PUB")" != "$zero" ] ||
		{ echo "wireguard-go has no preshared key for the PSK peer" >&2; false; }
	rx0=$(wg_rx_bytes "$PSK_PUB")
	fetch "$PSK_CONF" "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" /index.html
	cmp "$TOPO_DIR/www/index.html" "$OUT"
	expect_ge "wireguard-go rx_bytes from the PSK key" $((rx0 + 1)) "$(wg_rx_bytes "$PSK_PUB")"

	# The preshared key enters only the response's keys: wireguard-go answers, the stack
	# cannot open the response, and no session ever carries data.
	(umask 077 && sed "s|^PresharedKey = .*|PresharedKey = $(wg genpsk)|" "$PSK_CONF" >"$wrong")
	hs0=$(wg_last_handshake_ns "$PSK_PUB")
	TUNSHIM_TIMER_SCALE=0.05 run ts_fetch_run "$OUT" "$ERR" --timeout 3 \
		"$wrong" "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" /index.html
	[ "$status" -ne 0 ] || { echo "ts_fetch with a wrong preshared key succeeded" >&2; false; }
	expect_eq "wireguard-go's last handshake with the PSK key" "$hs0" \
		"$(wg_last_handshake_ns "$PSK_PUB")"
}
