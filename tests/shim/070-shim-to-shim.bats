#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Shim to shim: both ends of the tunnel are unmodified programs under build/tunshim, each
# with a key of its own, talking WireGuard over UDP on loopback. No namespaces, no root,
# no wireguard-go, so this file also runs as an ordinary user.
#
#   server: tunshim -c server.conf -- SERVER   10.99.0.1, WireGuard on UDP $WG_PORT
#   client: tunshim -c client.conf -- CLIENT   10.99.0.2, Endpoint 127.0.0.1:$WG_PORT
#
# examples/demo.sh (`make demo`) as the current user and, under root, as nobody; socat
# echoing MBs; a UDP echo server bound to the wildcard; iperf3 both ways.
# TUNSHIM names the wrapper under test (default: build/tunshim; libtunshim.so beside it).

bats_require_minimum_version 1.5.0

SERVER_ADDR=10.99.0.1
CLIENT_ADDR=10.99.0.2
# A bound on any one wrapped command, whatever its own timeouts do.
LIMIT=60
# How long a wrapped program's continuation (still closing its connections) may outlive
# the test; longer is a leak.
LINGER=12
# How long a session lingers after its last user: short, as in helpers.bash (SHIM_GRACE),
# since teardown waits for it.
export TUNSHIM_GRACE=${TUNSHIM_GRACE:-0.2}
PY=${PY:-/usr/bin/python3}

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export ROOT
	export TUNSHIM=${TUNSHIM:-${TUNSHIM_BUILD:-$ROOT/build}/tunshim}
	if [ ! -x "$TUNSHIM" ] || [ ! -r "$(dirname "$TUNSHIM")/libtunshim.so" ]; then
		echo "$TUNSHIM or libtunshim.so beside it is missing: run 'make'" >&2
		return 1
	fi
}

setup() {
	# Physical path: the wrapper passes the config on with realpath, and strays are
	# found by it.
	T=$(cd "$BATS_TEST_TMPDIR" && pwd -P)
	mkdir -p "$T/pids" "$T/run"
	chmod 700 "$T/run"
	# The shim's per-key records, private to this test.
	export XDG_RUNTIME_DIR=$T/run
}

teardown() {
	local f rc=0
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for f in "$T"/*.log "$T"/*.out; do
			[ -s "$f" ] || continue
			echo "--- $f (last lines)" >&2
			tail -n 25 "$f" >&2
		done
	fi
	for f in "$T"/pids/*; do
		[ -s "$f" ] && stop_group "$(cat "$f")"
	done
	no_strays_within "$LINGER" || rc=1
	[ -z "${N:-}" ] || rm -rf "$N"
	return "$rc"
}

# ---- helpers ----

expect_eq() {
	[ "$3" = "$2" ] && return 0
	printf '%s: expected %q, got %q\n' "$1" "$2" "$3" >&2
	return 1
}

expect_has() {
	[[ "$3" == *"$2"* ]] && return 0
	printf '%s: expected it to contain %q, got %q\n' "$1" "$2" "$3" >&2
	return 1
}

# shellcheck disable=SC2154 # $stderr is set by run --separate-stderr
expect_status() {
	[ "$status" = "$2" ] && return 0
	printf '%s: expected exit status %s, got %s; output:\n%s\n' "$1" "$2" "$status" \
		"$output" >&2
	[ -z "${stderr:-}" ] || printf 'stderr:\n%s\n' "$stderr" >&2
	return 1
}

# wait_until SECONDS CMD...: polls CMD every 50 ms.
wait_until() {
	local i limit=$(($1 * 20))
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

alive() {
	kill -0 "$1" 2>/dev/null
}

stop_group() {
	kill -TERM -- "-$1" 2>/dev/null || return 0
	wait_until 5 eval "! kill -0 -- -$1" || kill -KILL -- "-$1" 2>/dev/null
	return 0
}

# Processes still running with a config of this test: wrapped programs, and the
# continuations they forked (which left their process group). The wrapper passes the
# config's real path, which lies under $T.
strays() {
	local -a pats=(-e "TUNSHIM_CONFIG=$T/")
	[ -z "${N:-}" ] || pats+=(-e "TUNSHIM_CONFIG=$N/")
	grep -lzF "${pats[@]}" /proc/[0-9]*/environ 2>/dev/null |
		sed 's|^/proc/\([0-9]*\)/environ$|\1|' | grep -vx "$BASHPID" || true
}

no_strays() {
	[ -z "$(strays)" ]
}

no_strays_within() {
	local pid left
	wait_until "$1" no_strays && return 0
	left=$(strays)
	[ -n "$left" ] || return 0
	echo "processes of this test still running $1 s after it:" >&2
	for pid in $left; do
		ps -o pid=,ppid=,pgid=,args= -p "$pid" >&2 || true
		kill -KILL "$pid" 2>/dev/null || true
	done
	return 1
}

# free_port udp|tcp: a port unused on 0.0.0.0 and [::].
free_port() {
	"$PY" - "$1" <<'EOF'
import random, socket, sys

kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
for _ in range(100):
    port = random.randint(20000, 60999)
    socks = []
    try:
        for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
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
sys.exit("no free port")
EOF
}

# The WireGuard port is bound (by the server's stack) on some address.
udp_bound() {
	local hex
	hex=$(printf ':%04X ' "$1")
	cat /proc/net/udp /proc/net/udp6 2>/dev/null | awk '{ print $2 " " }' | grep -qF "$hex"
}

# make_pair: fresh keys (tunshim genkey/pubkey) and $T/server.conf, $T/client.conf;
# sets WG_PORT.
make_pair() {
	local sk ck spub cpub
	WG_PORT=$(free_port udp)
	sk=$("$TUNSHIM" genkey) && ck=$("$TUNSHIM" genkey) &&
		spub=$("$TUNSHIM" pubkey <<<"$sk") && cpub=$("$TUNSHIM" pubkey <<<"$ck") || return
	{
		printf '[Interface]\nPrivateKey = %s\nAddress = %s/32\nListenPort = %s\n\n' \
			"$sk" "$SERVER_ADDR" "$WG_PORT"
		printf '[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n' "$cpub" "$CLIENT_ADDR"
	} >"$T/server.conf"
	{
		printf '[Interface]\nPrivateKey = %s\nAddress = %s/32\n\n' "$ck" "$CLIENT_ADDR"
		printf '[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = 127.0.0.1:%s\n' \
			"$spub" "$SERVER_ADDR" "$WG_PORT"
	} >"$T/client.conf"
	chmod 600 "$T/server.conf" "$T/client.conf"
}

# client CMD...: CMD wrapped with client.conf, its shim log in $T/client.log.
client() {
	timeout -k 3 "$LIMIT" "$TUNSHIM" -c "$T/client.conf" -l debug \
		--log-file "$T/client.log" -- "$@"
}

# server NAME CMD...: CMD wrapped with server.conf in a session of its own (ended by
# process group in teardown), output in $T/NAME.out, shim log in $T/NAME.log.
server() {
	local name=$1 pidfile=$T/pids/$1
	shift
	# fd 3 is bats' TAP stream: a background process holding it would stall bats.
	# shellcheck disable=SC2016 # expanded by sh
	setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" \
		"$TUNSHIM" -c "$T/server.conf" -l debug --log-file "$T/$name.log" -- "$@" \
		</dev/null >"$T/$name.out" 2>&1 3>&- &
	wait_until 5 test -s "$pidfile" || { echo "$name did not start" >&2; return 1; }
}

server_pid() {
	cat "$T/pids/$1"
}

# server_listening NAME PORT: tunnel clients can reach NAME's TCP port.
server_listening() {
	alive "$(server_pid "$1")" &&
		grep -q "listening in the tunnel on port $2\$" "$T/$1.log" 2>/dev/null
}

wait_listening() {
	wait_until 15 server_listening "$1" "$2" && return 0
	alive "$(server_pid "$1")" || echo "$1 exited: $(tail -n 5 "$T/$1.out")" >&2
	echo "$1 never listened in the tunnel on port $2" >&2
	return 1
}

# ---- the demo ----

# run_demo DIR [AS...]: examples/demo.sh with its temp dir under DIR/demo (so strays
# are found).
run_demo() {
	DEMO_TMP=$1/demo
	shift
	mkdir -p "$DEMO_TMP"
	chmod 1777 "$DEMO_TMP"
	run --separate-stderr "$@" env TMPDIR="$DEMO_TMP" PATH=/usr/bin:/bin \
		TUNSHIM="$DEMO_TUNSHIM" "$DEMO_SCRIPT"
}

check_demo() {
	expect_status "examples/demo.sh" 0
	expect_has "demo output" "\"hello through the tunnel\"" "$output"
	expect_has "demo output" "handshake complete" "$output"
	expect_has "demo output" "server log  $CLIENT_ADDR - - " "$output"
	expect_has "demo output" "OK: the page went through WireGuard" "$output"
	expect_eq "demo stderr" "" "$stderr"
	# Its temp dir is gone with it.
	expect_eq "left in TMPDIR" "" "$(ls -A "$DEMO_TMP")"
}

@test "make demo: examples/demo.sh fetches a page from a wrapped server with a wrapped curl" {
	DEMO_TUNSHIM=$TUNSHIM DEMO_SCRIPT=$ROOT/examples/demo.sh run_demo "$T"
	check_demo
}

# What nobody cannot read of the build or the tree is copied to $N, which it can.
nobody_copy() {
	DEMO_TUNSHIM=$TUNSHIM DEMO_SCRIPT=$ROOT/examples/demo.sh
	if as_nobody test -x "$TUNSHIM" -a -r "$(dirname "$TUNSHIM")/libtunshim.so" \
		-a -x "$DEMO_SCRIPT" 2>/dev/null; then
		return 0
	fi
	mkdir -p "$N/build" "$N/examples"
	cp "$TUNSHIM" "$(dirname "$TUNSHIM")/libtunshim.so" "$N/build/"
	cp "$ROOT/examples/demo.sh" "$N/examples/"
	chmod -R a+rX "$N"
	DEMO_TUNSHIM=$N/build/tunshim DEMO_SCRIPT=$N/examples/demo.sh
}

as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}

@test "make demo works for an unprivileged user (nobody)" {
	if [ "$(id -u)" != 0 ]; then
		skip "not root: the test above already ran it unprivileged"
	fi
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	# bats' own temp dirs are private to root: a world-traversable one of ours.
	N=$(mktemp -d /tmp/tunshim-070.XXXXXX)
	chmod 755 "$N"
	nobody_copy
	run_demo "$N" as_nobody
	check_demo
}

# ---- TCP ----

# The data file through the echo server on PORT, back into $T/back.
socat_echo() {
	client socat -t 30 - "TCP:$SERVER_ADDR:$1" <"$T/data" >"$T/back"
}

@test "socat to socat: 4 MiB echoed through the tunnel, sha256 intact both ways" {
	local port sum
	make_pair
	port=$(free_port tcp)
	head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/data"
	sum=$(sha256sum <"$T/data" | cut -d' ' -f1)
	server echo socat "TCP-LISTEN:$port,fork,reuseaddr" EXEC:cat
	wait_listening echo "$port"
	run --separate-stderr socat_echo "$port"
	expect_status "wrapped socat client" 0
	expect_eq "bytes back" $((4 * 1024 * 1024)) "$(stat -c %s "$T/back")"
	expect_eq "sha256 back" "$sum" "$(sha256sum <"$T/back" | cut -d' ' -f1)"
	grep -q "handshake complete" "$T/client.log"
}

@test "socat: the wrapped server answers host clients on loopback at the same time" {
	local port
	make_pair
	port=$(free_port tcp)
	server echo socat "TCP-LISTEN:$port,fork,reuseaddr" EXEC:cat
	wait_listening echo "$port"
	run socat -t 5 - "TCP:127.0.0.1:$port" <<<"from the host"
	expect_status "plain socat to 127.0.0.1" 0
	expect_eq "host echo" "from the host" "$output"
	run client socat -t 5 - "TCP:$SERVER_ADDR:$port" <<<"from the tunnel"
	expect_status "wrapped socat to $SERVER_ADDR" 0
	expect_eq "tunnel echo" "from the tunnel" "$output"
}

@test "socat: the server sees the tunnel peer as the client's address" {
	local port
	make_pair
	port=$(free_port tcp)
	# SOCAT_PEERADDR is what accept() reported.
	# shellcheck disable=SC2016 # expanded by the server's sh
	server who socat "TCP-LISTEN:$port,fork,reuseaddr" \
		'SYSTEM:echo "$SOCAT_PEERADDR $SOCAT_SOCKADDR"'
	wait_listening who "$port"
	run client socat -t 5 - "TCP:$SERVER_ADDR:$port" </dev/null
	expect_status "wrapped socat client" 0
	expect_eq "peer and local address the server saw" "$CLIENT_ADDR $SERVER_ADDR" "$output"
}

# A server that takes one client, closes the connection first (so it is left in
# TIME_WAIT), then closes its listener and listens again on the same port, as iperf3 -s
# does after each test. The kernel lets it (SO_REUSEADDR); tunnel clients must reach it.
@test "a server that closes its listener and listens again on the port gets tunnel clients" {
	local port
	make_pair
	port=$(free_port tcp)
	cat >"$T/relisten.py" <<'EOF'
import socket, sys, time

for n in range(2):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", int(sys.argv[1])))
    l.listen(5)
    c, a = l.accept()
    c.sendall(f"hello {n} {a[0]}\n".encode())
    c.close()
    time.sleep(0.5)  # the client has closed too: our end is in TIME_WAIT
    l.close()
EOF
	cat >"$T/read_all.py" <<'EOF'
import socket, sys

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
data = b""
while chunk := s.recv(4096):
    data += chunk
s.close()
print(data.decode(), end="")
EOF
	server relisten "$PY" -u "$T/relisten.py" "$port"
	wait_listening relisten "$port"
	run --separate-stderr client "$PY" "$T/read_all.py" "$SERVER_ADDR" "$port"
	expect_eq "first client" "hello 0 $CLIENT_ADDR" "$output"
	# The server has listened again once its second listener is in the tunnel.
	wait_relistened relisten "$port"
	run --separate-stderr client "$PY" "$T/read_all.py" "$SERVER_ADDR" "$port"
	expect_status "second client" 0
	expect_eq "second client" "hello 1 $CLIENT_ADDR" "$output"
}

@test "a server restarted while its client's connection is open gets its ListenPort at once (it attaches to the session) and serves" {
	local port t0 secs holder
	make_pair
	port=$(free_port tcp)
	cat >"$T/once.py" <<'EOF'
import socket, sys, time

l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", int(sys.argv[1])))
l.listen(5)
c, a = l.accept()
c.sendall(f"hello {sys.argv[2]}\n".encode())
if sys.argv[2] == "first":
    time.sleep(0.5)
    sys.exit(0)  # a normal exit, with the connection still open
c.close()
EOF
	cat >"$T/hold.py" <<'EOF'
import socket, sys

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print(s.recv(100).decode(), end="", flush=True)
print("end" if s.recv(100) == b"" else "more", flush=True)
EOF
	cat >"$T/read_all.py" <<'EOF'
import socket, sys

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print(s.recv(100).decode(), end="")
EOF
	server first "$PY" -u "$T/once.py" "$port" first
	wait_listening first "$port"
	client "$PY" -u "$T/hold.py" "$SERVER_ADDR" "$port" >"$T/hold.out" 2>&1 3>&- &
	holder=$!
	wait_until 10 grep -q "hello first" "$T/hold.out"
	# The first server exits with its client's connection open: its session (and the
	# ListenPort) lives on in a continuation, and the restarted server attaches to it.
	wait_until 10 eval '! alive "$(server_pid first)"'
	t0=$EPOCHREALTIME
	server second "$PY" -u "$T/once.py" "$port" second
	wait_listening second "$port"
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
	awk -v s="$secs" 'BEGIN { exit !(s < 1.5) }' ||
		{ echo "the restarted server listened in the tunnel after $secs s" >&2; false; }
	grep -q "attached to the tunnel session" "$T/second.log"
	! grep -q "cannot open the WireGuard UDP socket" "$T/second.log"
	run --separate-stderr client "$PY" "$T/read_all.py" "$SERVER_ADDR" "$port"
	expect_eq "a client of the restarted server" "hello second" "$output"
	wait "$holder"
	expect_eq "the first client's connection" "hello first
end" "$(cat "$T/hold.out")"
}

listened_twice() {
	[ "$(grep -c "listening in the tunnel on port $2\$" "$T/$1.log")" -ge 2 ]
}

# The second listen() reached the tunnel, or the shim said why it did not.
relisten_settled() {
	listened_twice "$1" "$2" || grep -q "port $2: tunnel clients cannot connect" "$T/$1.log"
}

# wait_relistened NAME PORT: NAME's second listen() on PORT reached the tunnel.
wait_relistened() {
	wait_until 10 relisten_settled "$1" "$2"
	listened_twice "$1" "$2" && return 0
	echo "$1: the second listen() on port $2 did not reach the tunnel:" >&2
	grep "port $2" "$T/$1.log" >&2
	return 1
}

# ---- UDP ----

# The UDP echo server: bound to 0.0.0.0:PORT, answers each datagram with the same bytes
# to its source, logs "udp LEN ADDR PORT" per datagram.
udp_echo_server() {
	cat >"$T/udp_echo.py" <<'EOF'
import socket, sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(65536)
    print("udp", len(data), addr[0], addr[1], flush=True)
    s.sendto(data, addr)
EOF
	server udp "$PY" -u "$T/udp_echo.py" "$1"
}

# The client: one datagram of each size, each answered by the same bytes from
# HOST:PORT (a lost datagram is sent again, as UDP clients do). MODE: sendto on an
# unconnected socket, or connect then send.
udp_echo_client() {
	cat >"$T/udp_client.py" <<'EOF'
import os, socket, sys

host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
if mode == "connect":
    s.connect((host, port))
for size in (1, 100, 1000, 1392):
    payload = os.urandom(size)
    for attempt in range(8):
        if mode == "connect":
            s.send(payload)
        else:
            s.sendto(payload, (host, port))
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        if data != payload or addr != (host, port):
            sys.exit(f"size {size}: got {len(data)} bytes from {addr}, wanted {size} from {(host, port)}")
        break
    else:
        sys.exit(f"size {size}: no answer after 8 tries")
# Unconnected, the kernel reports the wildcard; connected, the route's source.
print("ok", s.getsockname()[0])
EOF
	client "$PY" "$T/udp_client.py" "$SERVER_ADDR" "$1" "$2"
}

wait_udp_server() {
	wait_until 10 grep -qx ready "$T/udp.out" || {
		echo "the UDP server did not start: $(tail -n 5 "$T/udp.out")" >&2
		return 1
	}
	# A server that only binds and receives must still bring its tunnel up, or no
	# handshake reaches it.
	wait_until 10 udp_bound "$WG_PORT" || {
		echo "the wrapped UDP server bound 0.0.0.0:$1 but nothing listens on" \
			"WireGuard port $WG_PORT: its tunnel never started" >&2
		return 1
	}
}

@test "UDP: a wrapped echo server on 0.0.0.0 answers a wrapped sendto client" {
	local port
	make_pair
	port=$(free_port udp)
	udp_echo_server "$port"
	wait_udp_server "$port"
	run --separate-stderr udp_echo_client "$port" sendto
	expect_status "wrapped UDP client (sendto)" 0
	expect_eq "client" "ok 0.0.0.0" "$output"
	# The server saw the tunnel peer as the source of every datagram.
	run grep -c "^udp [0-9]* $CLIENT_ADDR " "$T/udp.out"
	[ "$output" -ge 4 ] || { echo "server log: $(cat "$T/udp.out")" >&2; false; }
}

# shellcheck disable=SC2030 # bats runs each test in a subshell: meant
@test "UDP: the same server answers a wrapped connect()ed client" {
	local port
	make_pair
	port=$(free_port udp)
	udp_echo_server "$port"
	wait_udp_server "$port"
	run --separate-stderr udp_echo_client "$port" connect
	expect_status "wrapped UDP client (connect)" 0
	expect_eq "client" "ok $CLIENT_ADDR" "$output"
}

# ---- iperf3 ----

# iperf3 -J's result: "SENT RECEIVED" bytes, and bits per second received.
iperf_summary() {
	"$PY" -c '
import json, sys
r = json.load(sys.stdin)
if "error" in r:
    sys.exit("iperf3: " + r["error"])
e = r["end"]
print(e["sum_sent"]["bytes"], e["sum_received"]["bytes"], int(e["sum_received"]["bits_per_second"]))
' <"$1"
}

# iperf_run PORT [-R]: a 2 s wrapped iperf3 client run against the server on PORT; prints
# its rate.
iperf_run() {
	local port=$1 dir=${2:-} sent recvd bps
	# shellcheck disable=SC2086 # $dir is no word or one
	run --separate-stderr client iperf3 -c "$SERVER_ADDR" -p "$port" -t 2 -J $dir \
		--connect-timeout 10000
	# shellcheck disable=SC2031 # set by run just above
	printf '%s\n' "$output" >"$T/iperf$dir.json"
	expect_status "wrapped iperf3 -c $dir" 0
	read -r sent recvd bps < <(iperf_summary "$T/iperf$dir.json")
	[ "${recvd:-0}" -gt $((1024 * 1024)) ] || {
		echo "iperf3 $dir: sent ${sent:-?}, received ${recvd:-?} bytes" >&2
		return 1
	}
	echo "# iperf3 ${dir:-   } through two shims: $((bps / 1000000)) Mbit/s" >&3
}

@test "iperf3 -c to iperf3 -s, both wrapped, both directions (-R), 2 s each" {
	local port dir
	for dir in "" -R; do
		# A server (and key pair) per direction: see the next test for one server.
		make_pair
		port=$(free_port tcp)
		server "iperf$dir" iperf3 -s -1 -p "$port"
		wait_listening "iperf$dir" "$port"
		iperf_run "$port" $dir
		stop_group "$(server_pid "iperf$dir")"
	done
}

@test "iperf3 -s serves test after test (it closes its listener and listens anew)" {
	local port
	make_pair
	port=$(free_port tcp)
	server iperf iperf3 -s -p "$port"
	wait_listening iperf "$port"
	iperf_run "$port"
	# Before it listens again a client is refused, with the kernel too.
	wait_relistened iperf "$port"
	iperf_run "$port" -R
}
