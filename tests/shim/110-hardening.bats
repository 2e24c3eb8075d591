#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Hardening (issue 10, items 5 to 11): no roundabout path takes tunnel-bound traffic to
# the host network; keys live only in memory a core dump leaves out; the config's
# warnings and errors show what they must and quote no key; the log file cannot be
# turned against a privileged run by another user.
#
# The client namespace gets a "host network" here, so that a leak shows as a packet
# instead of failing for want of a route: a veth pair with the default routes.
# sh_capture watches every interface of the namespace while the test programs run.
#
#   client netns: lo (wireguard-go's endpoint 127.0.0.1:51820, a decoy resolver on
#                 127.0.0.53); veth tsx$ID 192.0.2.2/24, 2001:db8:99::2/64 <-> tsy$ID,
#                 the default routes through it: what goes there would have left the
#                 machine

load helpers

MARKER=sh_leak:
FULL_WEB=web.$TOPO_DNS_DOMAIN

setup_file() {
	shim_setup_file sh_leak sh_capture sh_keyscan || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_host_network_up || return
	shim_echo_up || return
	topo_dns_up || return
	# The host's resolver: a server that only the tunnel reaches, then the decoy.
	printf 'nameserver %s\nnameserver %s\n' "$TOPO_SERVER_V4" "$TOPO_DNS_DECOY" |
		topo_etc_netns "$TOPO_CLIENT_NS" resolv.conf || return
	printf '[Interface]\nPrivateKey = not-a-key\n' >"$TOPO_DIR/broken.conf"
	sed 's|^AllowedIPs.*|AllowedIPs = 0.0.0.0/0, ::/0|' "$TOPO_CONF" >"$TOPO_DIR/full.conf"
	sed "/^PublicKey/a PresharedKey = $(topo_genkey psk-unused)" "$TOPO_CONF" >"$TOPO_DIR/psk.conf"
	chmod 600 "$TOPO_DIR"/*.conf
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
}

teardown() {
	topo_stop capture
	shim_teardown
}

# expect_each MODES... OUTCOME: every mode printed "MODE OUTCOME".
expect_each() {
	local want=${*: -1} m
	for m in "${@:1:$#-1}"; do
		expect_has "sh_leak $m" "$m $want" "$output"
	done
}

LEAK_MODES=(connect24 sendto24 connect24-udp mapped-tcp mapped-udp fastopen tfo-connect
	sendmmsg exec-sendto exec-sendmsg exec-sendmmsg exec-connect-udp exec-connect-tcp
	scm-sendto scm-connect-tcp)

@test "reference: without the shim the roundabout paths reach the host network" {
	capture_start "$TOPO_DNS_DECOY:53"
	run plain_run "$(shim_tool sh_leak)" sendto24 "$TOPO_SERVER_V4" "$ECHO_PORT"
	capture_stop
	expect_eq "sh_leak sendto24 unwrapped" "sendto24 timeout" "$output"
	expect_has "the capture" "leak tsx$TOPO_ID 17 192.0.2.2 " "$CAPTURED"
}

@test "every roundabout path to a tunnel address goes through the tunnel; only WireGuard leaves" {
	local rx0
	rx0=$(wg_rx_bytes)
	capture_start "$TOPO_DNS_DECOY:53"
	TUNSHIM_LOG=info run shim_run "$(shim_tool sh_leak)" all "$TOPO_SERVER_V4" "$ECHO_PORT"
	capture_stop
	expect_status "sh_leak all" 0
	expect_no_leak
	expect_each "${LEAK_MODES[@]}" ok
	expect_has "the capture" "wg lo 17 " "$CAPTURED"
	expect_tunnel_rx "$rx0"
}

@test "an unusable config refuses every roundabout path; nothing leaves at all" {
	capture_start "$TOPO_DNS_DECOY:53"
	SHIM_CONF=$TOPO_DIR/broken.conf run shim_run "$(shim_tool sh_leak)" all "$TOPO_SERVER_V4" \
		"$ECHO_PORT"
	capture_stop
	expect_status "sh_leak all under a broken config" 0
	expect_no_leak
	expect_each "${LEAK_MODES[@]}" ENETUNREACH
	expect_lacks "the capture" "wg " "$CAPTURED"
}

@test "a full tunnel without DNS = asks resolv.conf's nameserver through the tunnel, never the host" {
	local decoy0
	decoy0=$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")
	capture_start "$TOPO_DNS_DECOY:53"
	SHIM_CONF=$TOPO_DIR/full.conf run shim_run "$(shim_tool sh_leak)" resolve "$FULL_WEB"
	expect_has "getaddrinfo through the tunnel" "$TOPO_SERVER_V4" "$output"
	expect_has "getaddrinfo through the tunnel" "$TOPO_SERVER_V6" "$output"
	SHIM_CONF=$TOPO_DIR/full.conf run shim_run "$(shim_tool sh_leak)" res_query "$FULL_WEB"
	expect_eq "res_query through the tunnel" "res_query 1" "$output"
	SHIM_CONF=$TOPO_DIR/full.conf run shim_run getent hosts "$TOPO_SERVER_V6"
	expect_eq "gethostbyaddr through the tunnel" "$TOPO_SERVER_V6     $FULL_WEB" "$output"
	SHIM_CONF=$TOPO_DIR/full.conf run shim_run curl -sS --max-time 20 -o /dev/null \
		-w '%{http_code}' "http://$FULL_WEB:$TOPO_HTTP_PORT/"
	expect_eq "curl by name" 200 "$output"
	capture_stop
	expect_no_leak
	expect_eq "queries the decoy saw" "$decoy0" "$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")"
	grep -q " query\[[A-Z]*\] $FULL_WEB from " "$TOPO_DNS_LOG" ||
		{ echo "the tunnel's DNS server was never asked" >&2; return 1; }
}

# ---- keys in memory ----

# scan_keys PID NAME=KEY...: sh_keyscan's report on PID, into SCAN.
scan_keys() {
	SCAN=$("$(shim_tool sh_keyscan)" "$@") || topo_fail "sh_keyscan failed: $SCAN"
}

# expect_guarded NAME: the key was found in guarded memory (so the scan sees it where it
# is) and in no mapping a core dump would include, in any form (raw, clamped, base64).
expect_guarded() {
	expect_has "$1 raw in MADV_DONTDUMP memory" "$1 raw dd=" "$SCAN"
	if grep -q "^$1 raw dd=0 " <<<"$SCAN"; then
		echo "the scan did not find $1 at all, not even in guarded memory:" >&2
		echo "$SCAN" >&2
		return 1
	fi
	if grep -E "^$1 [a-z0-9]+ dd=[0-9]+ dump=[1-9]" <<<"$SCAN"; then
		echo "$1 is in memory a core dump would include:" >&2
		grep "^hit $1 .* dump " <<<"$SCAN" >&2
		return 1
	fi
}

conf_key() {
	sed -n "s/^$1 *= *//p" "$2"
}

@test "keys: a wrapped program that never used the tunnel holds them only in guarded memory" {
	local pid
	SHIM_CONF=$TOPO_DIR/psk.conf shim_spawn idle sleep 60
	pid=$(cat "$TOPO_DIR/pids/idle")
	topo_wait_until 5 grep -q libtunshim "/proc/$pid/maps"
	scan_keys "$pid" "private=$(conf_key PrivateKey "$TOPO_DIR/psk.conf")" \
		"psk=$(conf_key PresharedKey "$TOPO_DIR/psk.conf")"
	topo_stop idle
	expect_guarded private
	expect_guarded psk
}

@test "keys: a wrapped program that used the tunnel holds them only in guarded memory" {
	local pid
	# shellcheck disable=SC2016
	shim_spawn used "$TOPO_PYTHON" -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"through the tunnel\n")
assert s.recv(64) == b"through the tunnel\n"
print("used", flush=True)
time.sleep(60)' "$TOPO_SERVER_V4" "$ECHO_PORT"
	pid=$(cat "$TOPO_DIR/pids/used")
	topo_wait_until 15 grep -qx used "$TOPO_DIR/used.log" ||
		topo_fail "the program did not use the tunnel: $(cat "$TOPO_DIR/used.log")"
	scan_keys "$pid" "private=$(conf_key PrivateKey "$TOPO_CONF")"
	topo_stop used
	expect_guarded private
}

# ---- messages and the log ----

@test "a config readable by others: the warning is on stderr at the default level, once per session; it still works" {
	cp "$TOPO_CONF" "$T/wg0.conf"
	chmod 644 "$T/wg0.conf"
	# From no session: the process that starts it shows the warning, not each one of a
	# script (nor a shell that never uses the tunnel).
	shim_quiesce
	run in_client timeout -k 3 "$SHIM_LIMIT" env -u TUNSHIM_LOG -u TUNSHIM_LOG_FILE \
		LD_PRELOAD="$SHIM_LIB" TUNSHIM_CONFIG="$T/wg0.conf" XDG_RUNTIME_DIR="$SHIM_RUNTIME" \
		bash -c 'for i in 1 2 3; do curl -sS --max-time 10 "$1" || exit; done' bash \
		"http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/"
	expect_status "three curls with a 0644 config" 0
	expect_has "stderr" "$T/wg0.conf: warning: configuration file is world accessible" "$output"
	expect_has "the page" "$(cat "$TOPO_DIR/www/index.html")" "$output"
	expect_eq "warnings" 1 "$(grep -c 'world accessible' <<<"$output")"
}

as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}

@test "TUNSHIM_LOG_FILE: another user's symlink or file is refused; a new file is 0600" {
	[ "$(id -u)" = 0 ] || skip "needs root (to play nobody against a root run)"
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	local pub secret=$T/root-only
	# A world-writable directory (no sticky bit: fs.protected_symlinks does not apply).
	pub=$(mktemp -d /tmp/tunshim-110.XXXXXX)
	chmod 777 "$pub"
	printf 'root only\n' >"$secret"
	chmod 600 "$secret"
	as_nobody ln -s "$secret" "$pub/tunshim.log"
	as_nobody touch "$pub/nobody.log"
	TUNSHIM_LOG_FILE=$pub/tunshim.log run shim_run curl -sS --max-time 10 -o /dev/null \
		-w '%{http_code}' "http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/"
	expect_has "curl with a planted symlink" 200 "$output"
	expect_has "stderr" "refused (it is a symbolic link)" "$output"
	expect_eq "the root-only file" "root only" "$(cat "$secret")"
	TUNSHIM_LOG_FILE=$pub/nobody.log run shim_run curl -sS --max-time 10 -o /dev/null \
		-w '%{http_code}' "http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/"
	expect_has "curl with nobody's file" 200 "$output"
	expect_has "stderr" "refused (it belongs to another user)" "$output"
	expect_eq "nobody's file" 0 "$(stat -c %s "$pub/nobody.log")"
	(umask 022 && TUNSHIM_LOG_FILE=$T/new.log shim_run true)
	expect_eq "a new log file's mode" 600 "$(stat -c %a "$T/new.log")"
	rm -rf "$pub"
}
