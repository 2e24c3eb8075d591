#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: two unmodified programs talk through a WireGuard tunnel, with no root,
# no TUN device and no daemon. Everything stays on this machine's loopback.
#
#   python3 -m http.server  (wrapped: 10.99.0.1, WireGuard on UDP port $WG_PORT)
#            ^
#            |  TCP inside WireGuard, UDP on 127.0.0.1
#            |
#   curl http://10.99.0.1:$HTTP_PORT/  (wrapped: 10.99.0.2, Endpoint 127.0.0.1:$WG_PORT)
#
# Each side gets its own key pair from `tunshim genkey` / `tunshim pubkey` (one key
# cannot serve two processes at once). The server listens on the wildcard, so host
# clients reach it on 127.0.0.1 as always and tunnel clients reach it on 10.99.0.1;
# it logs the tunnel peer, 10.99.0.2, as its client. (Like wg's ListenPort, the server's
# WireGuard port is bound on every address; the client reaches it on 127.0.0.1.)
#
# TUNSHIM names the wrapper (default: build/tunshim beside this directory; it finds
# libtunshim.so beside itself). Exit status 0 when the page came through the tunnel.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TUNSHIM=${TUNSHIM:-${TUNSHIM_BUILD:-$ROOT/build}/tunshim}
# The demo runs from directories of its own: a relative name would stop meaning anything.
case $TUNSHIM in /*) ;; *) TUNSHIM=$PWD/$TUNSHIM ;; esac
SERVER_ADDR=10.99.0.1
CLIENT_ADDR=10.99.0.2
PAGE="hello through the tunnel"
DIR=
SERVER_PID=

say() {
	printf '%s\n' "$*"
}

fail() {
	printf 'demo: FAILED: %s\n' "$*" >&2
	exit 1
}

# The tail of a log, indented, for a failure message.
show_log() {
	[ -s "$2" ] || return 0
	printf '  %s (last lines):\n' "$1" >&2
	tail -n "${3:-15}" "$2" | sed 's/^/    /' >&2
}

need() {
	command -v "$1" >/dev/null 2>&1 ||
		fail "needs $1 (Debian: apt-get install $2)"
}

check_tools() {
	[ -x "$TUNSHIM" ] || fail "$TUNSHIM is missing: run 'make' first"
	need curl curl
	need python3 python3
	need setsid util-linux
	need timeout coreutils
}

# ---- cleanup: the server by process group, a client's continuation, the temp dir ----

alive() {
	kill -0 "$1" 2>/dev/null
}

# wait_gone SECONDS PID: true once PID has exited.
wait_gone() {
	local i
	for ((i = 0; i < $1 * 20; i++)); do
		alive "$2" || return 0
		sleep 0.05
	done
	! alive "$2"
}

stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	kill -TERM -- "-$SERVER_PID" 2>/dev/null
	wait_gone 5 "$SERVER_PID" || kill -KILL -- "-$SERVER_PID" 2>/dev/null
	SERVER_PID=
}

# A wrapped program that exits with a connection still closing hands its tunnel to a
# detached continuation ("the tunnel continues in pid N" in LOG), which left our process
# group; give it time to finish.
stop_continuations() {
	local pid
	[ -f "$1" ] || return 0
	sed -n 's/.*the tunnel continues in pid \([0-9]*\).*/\1/p' "$1" |
		while read -r pid; do
			wait_gone 12 "$pid" || kill -TERM "$pid" 2>/dev/null
		done
}

# The client's continuation first: it finishes closing while the server still answers.
cleanup() {
	trap - EXIT INT TERM
	[ -z "$DIR" ] || stop_continuations "$DIR/client-shim.log"
	stop_server
	[ -n "$DIR" ] || return 0
	stop_continuations "$DIR/server-shim.log"
	rm -rf "$DIR"
}

# ---- setup ----

# A port nobody uses on any address: PROTO (udp or tcp) bound on 0.0.0.0 and on [::].
free_port() {
	python3 - "$1" <<'EOF'
import random, socket, sys

kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
for _ in range(100):
    port = random.randint(20000, 60999)
    socks = []
    try:
        for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            if family == socket.AF_INET6 and not socket.has_ipv6:
                continue
            s = socket.socket(family, kind)
            socks.append(s)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(port)
    sys.exit(0)
sys.exit("no free port found")
EOF
}

# make_keys NAME: NAME.key and NAME.pub in $DIR.
make_keys() {
	"$TUNSHIM" genkey >"$DIR/$1.key" || fail "tunshim genkey failed"
	"$TUNSHIM" pubkey <"$DIR/$1.key" >"$DIR/$1.pub" || fail "tunshim pubkey failed"
}

write_configs() {
	cat >"$DIR/server.conf" <<EOF
[Interface]
PrivateKey = $(cat "$DIR/server.key")
Address = $SERVER_ADDR/32
ListenPort = $WG_PORT

[Peer]
PublicKey = $(cat "$DIR/client.pub")
AllowedIPs = $CLIENT_ADDR/32
EOF
	cat >"$DIR/client.conf" <<EOF
[Interface]
PrivateKey = $(cat "$DIR/client.key")
Address = $CLIENT_ADDR/32

[Peer]
PublicKey = $(cat "$DIR/server.pub")
AllowedIPs = $SERVER_ADDR/32
Endpoint = 127.0.0.1:$WG_PORT
EOF
}

# ---- the server ----

start_server() {
	mkdir "$DIR/www" || fail "cannot write $DIR/www"
	printf '%s\n' "$PAGE" >"$DIR/www/index.html" || fail "cannot write $DIR/www"
	# Its own session, so it ends by process group; the pid file is written by the
	# process that then becomes the server.
	# shellcheck disable=SC2016 # expanded by sh
	(cd "$DIR/www" && exec setsid sh -c 'echo $$ >"$0" && exec "$@"' "$DIR/server.pid" \
		"$TUNSHIM" -c "$DIR/server.conf" -l debug --log-file "$DIR/server-shim.log" -- \
		python3 -u -m http.server "$HTTP_PORT" --bind 0.0.0.0 \
		</dev/null >"$DIR/server.log" 2>&1) &
	wait_for 5 test -s "$DIR/server.pid" || fail "the server did not start"
	SERVER_PID=$(cat "$DIR/server.pid")
}

# wait_for SECONDS CMD...: polls CMD every 50 ms.
wait_for() {
	local i limit=$(($1 * 20))
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# Ready when the shim says tunnel clients can reach it and it answers on loopback (a
# wildcard listener serves both). Settled also when it died or its tunnel cannot start.
server_settled() {
	! alive "$SERVER_PID" && return 0
	grep -q "the tunnel cannot start\|tunnel clients cannot connect" "$DIR/server-shim.log" &&
		return 0
	grep -q "listening in the tunnel on port $HTTP_PORT\$" "$DIR/server-shim.log" &&
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$HTTP_PORT/"
}

wait_server() {
	wait_for 15 server_settled && alive "$SERVER_PID" &&
		grep -q "listening in the tunnel on port $HTTP_PORT\$" "$DIR/server-shim.log" &&
		return 0
	show_log "server output" "$DIR/server.log"
	show_log "server's tunshim log" "$DIR/server-shim.log"
	alive "$SERVER_PID" || fail "the wrapped http.server exited"
	fail "the wrapped http.server did not become ready on port $HTTP_PORT (loopback and tunnel)"
}

# ---- the client ----

# --foreground: curl stays in our process group, so Ctrl-C reaches it at once.
fetch() {
	timeout --foreground -k 2 30 "$TUNSHIM" -c "$DIR/client.conf" -l debug --log-file "$DIR/client-shim.log" -- \
		curl -sS --max-time 25 -o "$DIR/page" \
		-w '%{http_code} %{size_request} %{size_header} %{size_download} %{time_total}' \
		"http://$SERVER_ADDR:$HTTP_PORT/" >"$DIR/curl.out" 2>"$DIR/curl.err"
}

check_fetch() {
	local rc=$1
	if [ "$rc" != 0 ] || [ "$(cat "$DIR/page" 2>/dev/null)" != "$PAGE" ]; then
		show_log "curl" "$DIR/curl.err"
		show_log "client's tunshim log" "$DIR/client-shim.log"
		show_log "server's tunshim log" "$DIR/server-shim.log"
		fail "curl through the tunnel exited with status $rc and did not get the page"
	fi
	grep -q "handshake complete" "$DIR/client-shim.log" ||
		fail "the page came, but the client's log shows no completed handshake"
}

# The server's access log line for the request that came through the tunnel.
tunnel_request_line() {
	grep -F "\"GET / HTTP/1.1\"" "$DIR/server.log" | grep -v '^127\.0\.0\.1 ' | tail -n 1
}

report() {
	local code req hdr body secs line
	read -r code req hdr body secs <"$DIR/curl.out"
	wait_for 5 tunnel_request_line
	line=$(tunnel_request_line)
	say "The client's tunshim log (TUNSHIM_LOG=debug):"
	grep -E 'tunnel started|handshake|connect into' "$DIR/client-shim.log" | sed 's/^/  /'
	say "Result:"
	say "  page        \"$(cat "$DIR/page")\" (HTTP $code, $(ms "$secs") ms with the handshake)"
	say "  handshake   done: curl's process and the server's completed a WireGuard handshake"
	say "  tunnel      $req bytes of HTTP request out, $((hdr + body)) bytes back" \
		"($body of them the page)"
	say "  server log  ${line:-(no request from the tunnel)}"
	[[ "$line" == "$CLIENT_ADDR "* ]] ||
		fail "the server's log does not show the tunnel peer $CLIENT_ADDR as the client"
	say "              (the client address is the tunnel peer's, as accept() reported it)"
}

# Seconds (curl's 0.003279) as milliseconds.
ms() {
	awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'
}

main() {
	local rc
	check_tools
	trap cleanup EXIT
	trap 'echo "demo: interrupted" >&2; cleanup; exit 130' INT
	trap 'cleanup; exit 143' TERM
	DIR=$(mktemp -d "${TMPDIR:-/tmp}/tunshim-demo.XXXXXX") || fail "cannot make a temp dir"
	umask 077
	# The shim's per-key records go here too, and go with it.
	export XDG_RUNTIME_DIR=$DIR
	WG_PORT=$(free_port udp) || fail "no free UDP port"
	HTTP_PORT=$(free_port tcp) || fail "no free TCP port"
	make_keys server
	make_keys client
	write_configs
	say "tunshim demo: an unmodified web server and curl, each with a WireGuard tunnel inside."
	say "  keys        two pairs from 'tunshim genkey' and 'tunshim pubkey', in a temp dir"
	say "  server      python3 -m http.server $HTTP_PORT --bind 0.0.0.0"
	say "              tunnel address $SERVER_ADDR, WireGuard on UDP port $WG_PORT"
	say "  client      curl http://$SERVER_ADDR:$HTTP_PORT/"
	say "              tunnel address $CLIENT_ADDR, WireGuard peer at 127.0.0.1:$WG_PORT"
	start_server
	wait_server
	fetch
	rc=$?
	check_fetch "$rc"
	report
	say "OK: the page went through WireGuard between two processes: no root, no TUN device."
}

main "$@"
