#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# What the shim must leave alone, and what it must survive: a wrapped program that talks to
# a server on its own loopback and through the tunnel at once; destinations outside
# AllowedIPs go to the kernel; a program that closes every descriptor above stderr
# (close_range, closefrom, a close loop) and then connects; a forked child that uses its
# parent's connection.

load helpers

LOOP_PORT=7201
LOOP_ECHO_PORT=7202

setup_file() {
	shim_setup_file sh_close_range sh_fork_child || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_echo_up || return
	# A web server on the client namespace's own loopback, not wrapped, serving a file of
	# its own (IPv4 and IPv6: http.server clears IPV6_V6ONLY).
	mkdir -p "$TOPO_DIR/lo-www"
	echo "served on the client's loopback $TOPO_ID" >"$TOPO_DIR/lo-www/local.txt"
	topo_spawn lo-http "$TOPO_CLIENT_NS" "$TOPO_PYTHON" -m http.server --bind :: \
		--directory "$TOPO_DIR/lo-www" "$LOOP_PORT" || return
	topo_wait_until 10 in_client curl -fsS -o /dev/null --max-time 1 \
		"http://127.0.0.1:$LOOP_PORT/local.txt" || topo_fail "loopback HTTP server did not start"
	# A UDP echo on the client's loopback too.
	shim_server lo-echo "$TOPO_CLIENT_NS" echo "$LOOP_ECHO_PORT"
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
}

teardown() {
	shim_teardown
}

@test "one python3 program fetches from its loopback and through the tunnel, interleaved" {
	local rx0
	rx0=$(wg_rx_bytes)
	# shellcheck disable=SC2016
	run shim_run "$TOPO_PYTHON" -c '
import sys, urllib.request
lo, tun = sys.argv[1:3]
def get(url):
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.read()
want_lo, want_tun = open(lo, "rb").read(), open(tun, "rb").read()
# A loopback connection stays open across the tunnel connections.
held = urllib.request.urlopen(sys.argv[3], timeout=20)
for i in range(3):
    for url in sys.argv[3:]:
        body = get(url)
        want = want_lo if "/local.txt" in url else want_tun
        if body != want:
            sys.exit(f"{url}: expected {want!r}, got {body[:80]!r}")
if held.read() != want_lo:
    sys.exit("the loopback connection held open across the tunnel ones broke")
print("OK")' "$TOPO_DIR/lo-www/local.txt" "$TOPO_DIR/www/index.html" \
		"http://127.0.0.1:$LOOP_PORT/local.txt" "http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/index.html" \
		"http://[::1]:$LOOP_PORT/local.txt" "http://[$TOPO_SERVER_V6]:$TOPO_HTTP_PORT/index.html" \
		"http://localhost:$LOOP_PORT/local.txt"
	expect_status "python3 fetching from loopback and tunnel" 0
	expect_eq "python3's verdict" OK "$output"
	expect_tunnel_rx "$rx0"
	# The loopback server saw the requests from loopback itself, not from the tunnel.
	expect_ge "requests from 127.0.0.1 at the loopback server" 4 \
		"$(grep -c '^::ffff:127.0.0.1 .*GET /local.txt' "$TOPO_DIR/lo-http.log")"
	expect_ge "requests from ::1 at the loopback server" 3 \
		"$(grep -c '^::1 .*GET /local.txt' "$TOPO_DIR/lo-http.log")"
}

@test "a wrapped program's loopback UDP and TCP need no tunnel at all" {
	# A config whose endpoint cannot even be resolved: loopback must still work.
	sed 's/^Endpoint = .*/Endpoint = no-such-host.invalid:51820/' "$TOPO_CONF" >"$T/broken.conf"
	SHIM_CONF=$T/broken.conf run shim_run socat -t 2 - "UDP:127.0.0.1:$LOOP_ECHO_PORT" <<<"udp on lo"
	expect_status "socat UDP to loopback" 0
	expect_eq "socat UDP echo on loopback" "udp on lo" "$output"
	SHIM_CONF=$T/broken.conf run shim_run curl -sS --max-time 5 "http://127.0.0.1:$LOOP_PORT/local.txt"
	expect_status "curl to loopback" 0
	expect_eq "curl to loopback" "$(cat "$TOPO_DIR/lo-www/local.txt")" "$output"
	expect_lacks "the shim's log" "tunnel started" "$(cat "$SHIM_LOG" 2>/dev/null)"
	expect_lacks "the shim's log" "attached to the tunnel session" "$(cat "$SHIM_LOG" 2>/dev/null)"
}

@test "a destination outside AllowedIPs goes to the kernel (no route here), not the tunnel" {
	local rx0
	rx0=$(wg_rx_bytes)
	run shim_run curl -sS -v --max-time 5 -o /dev/null "http://192.0.2.1:$TOPO_HTTP_PORT/"
	expect_status "curl to 192.0.2.1 (outside AllowedIPs)" 7
	expect_has "curl -v" "Network is unreachable" "$output"
	expect_lacks "the shim's log" "into the tunnel" "$(cat "$SHIM_LOG" 2>/dev/null)"
	expect_eq "wireguard-go rx_bytes from our key" "$rx0" "$(wg_rx_bytes)"
}

@test "close_range(3, ~0U, 0) before the first connection, then curl-like GETs work" {
	local how
	for how in close_range closefrom loop; do
		TUNSHIM_LOG=info TUNSHIM_LOG_FILE='' run shim_run "$(shim_tool sh_close_range)" \
			"$how" first "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT"
		expect_status "sh_close_range $how first" 0
		expect_has "sh_close_range $how first" "$(cat "$TOPO_DIR/www/index.html")" "$output"
		# The shim's log descriptor survived the sweep: it still reports on stderr (that
		# this process started the tunnel, or attached to the session the previous one
		# left lingering).
		[[ "$output" =~ tunshim\[[0-9]+\]:\ (tunnel started|attached to the tunnel session) ]] ||
			topo_fail "the shim's log after $how: no line on stderr: $output"
	done
}

@test "close_range(3, ~0U, 0) with the tunnel running, then another connection works" {
	local how
	for how in close_range closefrom loop; do
		run shim_run "$(shim_tool sh_close_range)" "$how" between \
			"$TOPO_SERVER_V4" "$TOPO_HTTP_PORT"
		expect_status "sh_close_range $how between" 0
		expect_has "sh_close_range $how between" "OK 2 requests" "$output"
		expect_has "sh_close_range $how between" "$(cat "$TOPO_DIR/www/index.html")" "$output"
	done
	run shim_run "$(shim_tool sh_close_range)" close_range between \
		"$TOPO_SERVER_V6" "$TOPO_HTTP_PORT"
	expect_status "sh_close_range close_range between (IPv6)" 0
}

@test "a forked child uses the connection its parent opened; the parent keeps using it" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		run shim_run "$(shim_tool sh_fork_child)" shared "$addr" "$ECHO_PORT"
		expect_status "sh_fork_child shared $addr" 0
		expect_eq "sh_fork_child shared $addr" $'OK child\nOK parent' "$output"
	done
}

@test "a shell pipeline of wrapped programs: each one's connections work" {
	# Every process in the pipeline is wrapped; only one of them uses the tunnel.
	run shim_run bash -c "curl -sS --max-time 20 http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/index.html | sha256sum | cut -d' ' -f1"
	expect_status "curl | sha256sum" 0
	expect_eq "sha256 of index.html through a pipeline" \
		"$(sha256sum <"$TOPO_DIR/www/index.html" | cut -d' ' -f1)" "$output"
}
