#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Cookies: wg_flood puts wireguard-go under load (its handshake queue holds 128 or more),
# so it answers initiations without a valid mac2 with a cookie reply; the program under
# test must take that cookie and complete its handshake with a mac2 while the flood goes on.
# The flood comes from 127.0.0.2: wireguard-go rate-limits initiations per source address
# even when their mac2 is valid, and the stack sends from 127.0.0.1.

load ../lib/topology

setup_file() {
	topo_require_root || return 0
	topo_up
}

teardown_file() {
	topo_down
}

setup() {
	topo_require_root
	OUT=$BATS_TEST_TMPDIR/body
	ERR=$BATS_TEST_TMPDIR/ts_fetch.stderr
	FLOOD_LOG=$TOPO_DIR/flood.log
}

teardown() {
	topo_stop flood
	# The flood leaves a log line per cookie reply.
	topo_wg_log_compact
	[ -n "${BATS_TEST_COMPLETED:-}" ] || topo_diag "$ERR"
}

# flood_start SECONDS: floods until SECONDS pass or flood_stop; returns once wireguard-go
# has been answering it with cookie replies for a while.
flood_start() {
	topo_spawn flood "$TOPO_CLIENT_NS" "$WG_FLOOD" \
		"$TOPO_SERVER_PUB" 127.0.0.1 "$TOPO_PORT" "$1" 127.0.0.2
	FLOOD_PID=$TOPO_SPAWNED
	topo_wait_until 10 grep -q 'steady under load' "$FLOOD_LOG" ||
		{ echo "wireguard-go never came under load" >&2; false; }
}

# flood_stop: ends the flood (it prints its counts on SIGTERM) and waits for it.
flood_stop() {
	kill -TERM "$(cat "$TOPO_DIR/pids/flood")"
	topo_reap flood "$FLOOD_PID"
}

flood_cookies() {
	sed -n 's/^wg_flood: sent=[0-9]* cookie_replies=\([0-9]*\) .*/\1/p' "$FLOOD_LOG"
}

@test "wg_flood puts wireguard-go under load: it answers with cookie replies" {
	flood_start 2
	topo_reap flood "$FLOOD_PID"
	cat "$FLOOD_LOG"
	expect_ge "cookie replies received by wg_flood" 1 "$(flood_cookies)"
	grep -q 'Sending cookie response' "$TOPO_WG_LOG"
}

@test "under load the stack takes the cookie and completes its handshake with mac2" {
	flood_start 30
	# Timers scaled by 0.05: the retry after the cookie reply comes 0.25 s later, well
	# inside the flood.
	TUNSHIM_TIMER_SCALE=0.05 ts_fetch_run "$OUT" "$ERR" --timeout 20 \
		"$TOPO_CONF" "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" /index.html
	flood_stop
	cat "$FLOOD_LOG" "$ERR"
	cmp "$TOPO_DIR/www/index.html" "$OUT"
	expect_ge "cookie replies received by the stack" 1 "$(ts_stat "$ERR" cookie_replies)"
	expect_ge "initiations the stack sent with a mac2" 1 "$(ts_stat "$ERR" mac2_initiations)"
	expect_ge "handshakes completed by the stack" 1 "$(ts_stat "$ERR" handshakes)"
	expect_ge "cookie replies received by wg_flood" 1 "$(flood_cookies)"
}
