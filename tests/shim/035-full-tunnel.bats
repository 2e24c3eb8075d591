#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# A full tunnel (AllowedIPs = 0.0.0.0/0, ::/0) behaves as wg-quick's: everything goes
# into the tunnel except loopback, the endpoint, and the host's own subnets (routes more
# specific than the default). The client namespace gets a LAN of its own for that:
#
#   lan netns (192.168.77.1/24, fd77::1/64)  <--veth-->  client netns (192.168.77.2/24)
#   HTTP server on :8077                                 wrapped curl, full-tunnel config

load helpers

LAN_PORT=8077

setup_file() {
	shim_setup_file || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	LAN_NS=tsl-$TOPO_ID
	ip netns add "$LAN_NS" || return
	echo "$LAN_NS" >"$TOPO_DIR/lan-ns"
	ip -n "$LAN_NS" link set lo up
	ip link add "tsa$TOPO_ID" netns "$TOPO_CLIENT_NS" type veth peer name "tsb$TOPO_ID" \
		netns "$LAN_NS" || return
	ip -n "$TOPO_CLIENT_NS" addr add 192.168.77.2/24 dev "tsa$TOPO_ID"
	ip -n "$TOPO_CLIENT_NS" addr add fd77::2/64 dev "tsa$TOPO_ID" nodad
	ip -n "$LAN_NS" addr add 192.168.77.1/24 dev "tsb$TOPO_ID"
	ip -n "$LAN_NS" addr add fd77::1/64 dev "tsb$TOPO_ID" nodad
	ip -n "$TOPO_CLIENT_NS" link set "tsa$TOPO_ID" up
	ip -n "$LAN_NS" link set "tsb$TOPO_ID" up
	mkdir -p "$TOPO_DIR/lan-www"
	echo "served on the LAN $TOPO_ID" >"$TOPO_DIR/lan-www/lan.txt"
	topo_spawn lan-http "$LAN_NS" "$TOPO_PYTHON" -m http.server --bind :: \
		--directory "$TOPO_DIR/lan-www" "$LAN_PORT" || return
	topo_wait_until 10 in_client curl -fsS -o /dev/null --max-time 1 \
		"http://192.168.77.1:$LAN_PORT/lan.txt" || topo_fail "LAN HTTP server did not start"
	sed 's|^AllowedIPs.*|AllowedIPs = 0.0.0.0/0, ::/0|' "$TOPO_CONF" >"$TOPO_DIR/full.conf"
	chmod 600 "$TOPO_DIR/full.conf"
}

teardown_file() {
	if [ -n "${TOPO_DIR:-}" ] && [ -f "$TOPO_DIR/lan-ns" ]; then
		ip netns pids "$(cat "$TOPO_DIR/lan-ns")" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$(cat "$TOPO_DIR/lan-ns")" 2>/dev/null
	fi
	shim_teardown_file
}

setup() {
	shim_setup
}

teardown() {
	shim_teardown
}

@test "full tunnel: the tunnel's servers are reached through it" {
	local rx0
	rx0=$(wg_rx_bytes)
	SHIM_CONF=$TOPO_DIR/full.conf run shim_run curl -fsS --max-time 10 "http://$TOPO_SERVER_V4:8080/"
	expect_status "curl through the full tunnel" 0
	expect_has "curl through the full tunnel" "$(cat "$TOPO_DIR/www/index.html")" "$output"
	expect_tunnel_rx "$rx0"
}

@test "full tunnel: the host's own subnet (IPv4 and IPv6) stays on the host" {
	SHIM_CONF=$TOPO_DIR/full.conf run shim_run curl -fsS --max-time 5 \
		"http://192.168.77.1:$LAN_PORT/lan.txt"
	expect_status "curl to the LAN over IPv4" 0
	expect_has "curl to the LAN over IPv4" "served on the LAN $TOPO_ID" "$output"
	SHIM_CONF=$TOPO_DIR/full.conf run shim_run curl -fsS --max-time 5 \
		"http://[fd77::1]:$LAN_PORT/lan.txt"
	expect_status "curl to the LAN over IPv6" 0
	expect_has "curl to the LAN over IPv6" "served on the LAN $TOPO_ID" "$output"
}

@test "full tunnel: anything else goes into the tunnel, never to the host" {
	# 10.200.7.7 is in no host route: with 0.0.0.0/0 it is the tunnel's, where nothing
	# answers; the connect must time out inside the tunnel, not fail with no route.
	SHIM_CONF=$TOPO_DIR/full.conf TUNSHIM_LOG_FILE= run shim_run curl -sS \
		--connect-timeout 2 "http://10.200.7.7:8080/"
	expect_has "curl to an address only the tunnel could reach" \
		"connect into the tunnel" "$output"
	expect_lacks "curl to an address only the tunnel could reach" \
		"Network is unreachable" "$output"
}
