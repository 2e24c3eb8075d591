#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# An impaired path: the program under test reaches wireguard-go through ts_relay
# (topo_relay_up), which delays each direction by 50 ms with 10 ms of jitter and loses,
# reorders and duplicates 1% of the datagrams. The tunnel must carry TCP through all of it
# intact: WireGuard drops the duplicates (replay window), accepts the reordered datagrams,
# and lwIP recovers the losses.

load ../lib/topology

RELAY_OPTS=(--delay 50 --jitter 10 --loss 1 --reorder 1 --duplicate 1)

setup_file() {
	topo_require_root || return 0
	topo_up
	topo_relay_up "${RELAY_OPTS[@]}"
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
	[ -n "${BATS_TEST_COMPLETED:-}" ] && return
	# The seed reproduces the relay's choices: ts_relay --seed N.
	grep -h '^ts_relay: listening on' "$TOPO_DIR/relay.log" >&2 || true
	topo_diag "$ERR"
}

fetch() {
	ts_fetch_run "$OUT" "$ERR" --timeout 45 "$TOPO_RELAY_CONF" "$@"
}

@test "index.html over IPv4 through the impaired relay" {
	fetch "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" /index.html
	cmp "$TOPO_DIR/www/index.html" "$OUT"
}

@test "index.html over IPv6 through the impaired relay" {
	fetch "$TOPO_SERVER_V6" "$TOPO_HTTP_PORT" /index.html
	cmp "$TOPO_DIR/www/index.html" "$OUT"
}

@test "20 MiB arrive intact through the impaired relay, which did impair them" {
	local t0 t1 sum line dir key
	t0=$EPOCHREALTIME
	fetch "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" /mid.bin
	t1=$EPOCHREALTIME
	sum=$(sha256sum <"$OUT" | cut -d' ' -f1)
	expect_eq "sha256 of mid.bin" "$TOPO_MID_SHA256" "$sum"
	awk -v b="$(stat -c %s "$OUT")" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "# 20 MiB through 50 ms (+-10) each way, 1%% loss/reorder/duplicate: %.2f MB/s\n", b / (t1 - t0) / 1e6 }' >&3
	# 15000 datagrams down at 1%: each counter is far from zero; up, far fewer (ACKs).
	line=$(topo_relay_counters)
	echo "# $line" >&3
	for dir in up down; do
		for key in dropped dup reordered; do
			expect_relay_did "$line" "$dir" "$key" 1 || return
		done
	done
}
