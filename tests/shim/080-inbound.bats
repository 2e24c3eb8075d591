#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Inbound: unmodified servers, wrapped in the client namespace, reachable over the tunnel at
# 10.200.0.2 / fd00:200::2 (the config's Address) by clients in the server namespace, which
# sit behind wireguard-go's TUN (10.200.0.1 / fd00:200::1) and run without the shim. Every
# check is what a kernel socket does: the server sees the tunnel peer as its client (accept,
# getpeername, recvfrom, also in forked, exec'd and daemonized handlers), host clients on
# the client namespace's loopback reach the same server at the same time, and data,
# half-close, resets and re-listening behave as on the host.
#
# A session of its own for each server: each test starts one wrapped server at a time with
# $TOPO_CONF, once the previous test's session (lingering for its grace time after its
# last user) has ended, and no wrapped client; so wireguard-go's handshake with the new
# session says the server is reachable. Servers that share a session with other
# processes are in 100-sessions.bats.

load helpers

# Ports of the wrapped servers (client namespace).
HTTP_PORT=9080
UDP_PORT4=9053
UDP_PORT6=9054
FORK_PORT=9101
FORK6_PORT=9102
POOL_PORT=9103
DAEMON_PORT=9104
CONN_PORT=9105
IPERF_PORT=9201
TUN4=10.200.0.2
TUN6=fd00:200::2
# The tunnel clients' addresses, as the wrapped server must see them.
PEER4=$TOPO_SERVER_V4
PEER6=$TOPO_SERVER_V6
# A floor, not a benchmark: throughput through the tunnel on loopback is far above it.
IPERF_FLOOR_MBITS=${IPERF_FLOOR_MBITS:-5}

setup_file() {
	shim_setup_file sh_peername || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	INB_PY=$BATS_FILE_TMPDIR/inbound.py
	inb_write_py >"$INB_PY"
	INB_WWW=$BATS_FILE_TMPDIR/www
	mkdir -p "$INB_WWW"
	echo "<html><body>inbound $RANDOM</body></html>" >"$INB_WWW/index.html"
	head -c $((2 * 1024 * 1024)) /dev/urandom >"$INB_WWW/slow.bin"
	export INB_PY INB_WWW
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	INB_SERVERS=$T/inb-servers
	: >"$INB_SERVERS"
}

teardown() {
	inb_stop_all
	shim_teardown
}

# ---- helpers of this file ----

# inb_hp HOST PORT: HOST:PORT, with brackets for IPv6.
inb_hp() {
	if [[ "$1" == *:* ]]; then
		echo "[$1]:$2"
	else
		echo "$1:$2"
	fi
}

# inb_re TEXT: TEXT as a literal in an extended regular expression.
inb_re() {
	printf '%s' "$1" | sed 's/[].[^$*+?(){}|\\]/\\&/g'
}

# inb_client ARGS...: the python helper as a tunnel client (server namespace, no shim).
inb_client() {
	in_server timeout -k 3 30 "$TOPO_PYTHON" "$INB_PY" "$@"
}

# inb_host ARGS...: the python helper as a host client on the client namespace's loopback.
inb_host() {
	plain_run "$TOPO_PYTHON" "$INB_PY" "$@"
}

# True when no process holds the WireGuard session of our key (the previous wrapped
# server, or a continuation finishing its deliveries or its grace time, has let go).
# A server started then brings up a session of its own, whose handshake inb_start awaits
# (a server attached to a session that is up would make none).
inb_session_free() {
	local f
	for f in "$SHIM_RUNTIME"/tunshim/session-*.lock; do
		[ -e "$f" ] || continue
		flock -n "$f" true || return 1
	done
}

inb_handshake_since() {
	[ "$(wg_last_handshake_ns)" -ge "$1" ]
}

# inb_start NAME CMD...: CMD wrapped, in the background (log $TOPO_DIR/NAME.log), once
# the key's session is free; returns once wireguard-go has completed a handshake with it
# (the hello a listener says), so tunnel clients can reach it.
inb_start() {
	local name=$1 t0
	shift
	topo_wait_until 30 inb_session_free ||
		topo_fail "$name: the session of our key is still held by another process" || return
	t0=$(date +%s%N)
	echo "$name" >>"$INB_SERVERS"
	shim_spawn "$name" "$@" || return
	topo_wait_until 10 inb_handshake_since "$t0" ||
		topo_fail "$name: no handshake with wireguard-go within 10 s" || return
}

# Ends the servers a test started, and the daemon of the daemon test.
inb_stop_all() {
	local name pid
	while read -r name; do
		topo_stop "$name"
	done <"$INB_SERVERS"
	pid=$(cat "$T/daemon.pid" 2>/dev/null) || return 0
	! topo_alive "$pid" || kill -KILL "$pid" 2>/dev/null || true
}

inb_log_has() {
	grep -Eq "$2" "$TOPO_DIR/$1.log"
}

# inb_log_count NAME N ERE: at least N lines of NAME's log match ERE.
inb_log_count() {
	[ "$(grep -cE "$3" "$TOPO_DIR/$1.log")" -ge "$2" ]
}

# inb_expect_log NAME ERE WHAT: a line of NAME's log matches ERE within 10 s.
inb_expect_log() {
	topo_wait_until 10 inb_log_has "$1" "$2" && return 0
	echo "$3: no line matching '$2' in $1's log; it has:" >&2
	tail -n 20 "$TOPO_DIR/$1.log" >&2
	return 1
}

inb_listening() {
	[ -n "$(in_client ss -Htln "sport = :$1")" ]
}

inb_http_ok() {
	in_server curl -fsS -o /dev/null --max-time 2 "http://$(inb_hp "$1" "$HTTP_PORT")/"
}

# inb_expect_lines WHAT COUNT ERE TEXT: TEXT has COUNT lines, each matching ERE.
inb_expect_lines() {
	local n
	n=$(grep -cE "^($3)\$" <<<"$4") || true
	[ "$n" = "$2" ] && [ "$(grep -c '' <<<"$4")" = "$2" ] && return 0
	printf '%s: expected %s lines matching %s, got:\n%s\n' "$1" "$2" "$3" "$4" >&2
	return 1
}

# inb_overlap NAME TUNNEL-HOST HOST-HOST: while a tunnel client's rate-limited download
# from the HTTP server NAME is under way, a host client on loopback is served too. The
# download (2 MiB at 80 KB/s) would last 25 s: long enough that a loaded machine cannot
# finish it before the host client is served; it is ended once that is shown, and what
# arrived must be the file's start.
inb_overlap() {
	local pid rc n q=slow$RANDOM
	in_server curl -sS --max-time 40 --limit-rate 80k -o "$T/slow" \
		"http://$(inb_hp "$2" "$HTTP_PORT")/slow.bin?$q" 3>&- &
	pid=$!
	inb_expect_log "$1" "GET /slow\.bin\?$q " "the tunnel client's download started" || return
	run plain_run curl -sS --max-time 5 -o "$T/host" \
		"http://$(inb_hp "$3" "$HTTP_PORT")/index.html?host$q"
	expect_status "a host client on $3 during the tunnel download" 0 || return
	cmp "$INB_WWW/index.html" "$T/host" || return
	if ! topo_alive "$pid"; then
		wait "$pid" && rc=0 || rc=$?
		topo_fail "the tunnel download (curl status $rc) ended before the host client was served"
		return
	fi
	# The job is a subshell around curl (or curl itself): end both.
	kill $(ps -o pid= --ppid "$pid") "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	n=$(stat -c %s "$T/slow")
	expect_ge "bytes of the tunnel download before it was ended" 1 "$n" || return
	cmp -n "$n" "$INB_WWW/slow.bin" "$T/slow" || return
	inb_expect_log "$1" "^$(inb_re "$3") - - .*GET /index\.html\?host$q " \
		"the host client, logged as itself"
}

# inb_iperf_mbits FILE: the receiver's Mbit/s from iperf3 -J output, or "error: ...".
inb_iperf_mbits() {
	"$TOPO_PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
if d.get("error"):
    print("error: " + d["error"])
else:
    print("%.0f" % (d["end"]["sum_received"]["bits_per_second"] / 1e6))' "$1"
}

# ---- HTTP ----

@test "http.server --bind 0.0.0.0: curl over the tunnel gets the page, the log names the tunnel peer, a host client is served meanwhile" {
	inb_start http4 "$TOPO_PYTHON" -u -m http.server --bind 0.0.0.0 \
		--directory "$INB_WWW" "$HTTP_PORT"
	topo_wait_until 10 inb_http_ok "$TUN4" || topo_fail "no answer from the server over IPv4"
	run in_server curl -sS --max-time 10 -o "$T/page" "http://$TUN4:$HTTP_PORT/index.html?t4"
	expect_status "curl http://$TUN4:$HTTP_PORT/ from the server namespace" 0
	cmp "$INB_WWW/index.html" "$T/page"
	inb_expect_log http4 "^$(inb_re "$PEER4") - - .*GET /index\.html\?t4 " \
		"the server's log shows the tunnel peer as the client"
	inb_overlap http4 "$TUN4" 127.0.0.1
	# An IPv4 socket takes no IPv6 clients: the kernel would refuse them, and so does the tunnel.
	run in_server curl -sS -v --max-time 5 -o /dev/null "http://[$TUN6]:$HTTP_PORT/"
	expect_status "curl to [$TUN6] (the server is IPv4 only): refused" 7
	expect_has "curl's message" "Connection refused" "$output"
}

@test "http.server --bind ::: curl over IPv6 and IPv4, each peer in the log as the kernel names it, a host client meanwhile" {
	inb_start http6 "$TOPO_PYTHON" -u -m http.server --bind :: \
		--directory "$INB_WWW" "$HTTP_PORT"
	topo_wait_until 10 inb_http_ok "$TUN6" || topo_fail "no answer from the server over IPv6"
	run in_server curl -sS --max-time 10 -o "$T/page6" "http://[$TUN6]:$HTTP_PORT/index.html?t6"
	expect_status "curl http://[$TUN6]:$HTTP_PORT/" 0
	cmp "$INB_WWW/index.html" "$T/page6"
	run in_server curl -sS --max-time 10 -o "$T/page4" "http://$TUN4:$HTTP_PORT/index.html?t4"
	expect_status "curl http://$TUN4:$HTTP_PORT/ (dual-stack socket)" 0
	cmp "$INB_WWW/index.html" "$T/page4"
	inb_expect_log http6 "^$(inb_re "$PEER6") - - .*GET /index\.html\?t6 " \
		"the IPv6 tunnel peer in the log"
	inb_expect_log http6 "^$(inb_re "::ffff:$PEER4") - - .*GET /index\.html\?t4 " \
		"the IPv4 tunnel peer in the log, v4-mapped as on a dual-stack kernel socket"
	inb_overlap http6 "$TUN6" ::1
}

# ---- a socket bound to the tunnel address ----

@test "bound to 10.200.0.2:0 and [fd00:200::2]:0: getsockname tells the port, SO_REUSEADDR reads back, pending clients are all served" {
	local log=$TOPO_DIR/bound.log p4 p6 a b
	inb_start bound "$TOPO_PYTHON" -u "$INB_PY" bound 8 5 "$T/go"
	inb_expect_log bound '^ready$' "the server"
	p4=$(awk -v a="$TUN4" '$1 == "v4" && $2 == a { print $3 }' "$log")
	p6=$(awk -v a="$TUN6" '$1 == "v6" && $2 == a { print $3 }' "$log")
	[[ "$p4" =~ ^[1-9][0-9]*$ && "$p6" =~ ^[1-9][0-9]*$ ]] ||
		topo_fail "getsockname should show the tunnel address and a port; the server said: $(cat "$log")"
	expect_eq "SO_REUSEADDR read back on both sockets" 2 "$(grep -cx 'reuseaddr=1' "$log")"
	# Five clients per family connect while the server accepts nothing (backlog 8)...
	inb_client lines "$TUN4" "$p4" 5 tell >"$T/l4" 2>"$T/l4.err" 3>&- &
	a=$!
	inb_client lines "$TUN6" "$p6" 5 tell >"$T/l6" 2>"$T/l6.err" 3>&- &
	b=$!
	topo_wait_until 20 grep -qx 'connected 5' "$T/l4.err" ||
		topo_fail "IPv4 clients did not all connect: $(cat "$T/l4.err")"
	topo_wait_until 20 grep -qx 'connected 5' "$T/l6.err" ||
		topo_fail "IPv6 clients did not all connect: $(cat "$T/l6.err")"
	# ...then it accepts them all, each with its tunnel peer.
	touch "$T/go"
	wait "$a" || topo_fail "IPv4 clients: $(cat "$T/l4.err")"
	wait "$b" || topo_fail "IPv6 clients: $(cat "$T/l6.err")"
	inb_expect_lines "pending IPv4 clients" 5 "hello $(inb_re "$PEER4"):[0-9]+" "$(cat "$T/l4")"
	inb_expect_lines "pending IPv6 clients" 5 "hello $(inb_re "[$PEER6]"):[0-9]+" "$(cat "$T/l6")"
}

@test "a listener closed and bound again with SO_REUSEADDR on the same tunnel port serves again (its old connections in TIME_WAIT)" {
	local log=$TOPO_DIR/rebind.log p4 p6
	touch "$T/go"
	inb_start rebind "$TOPO_PYTHON" -u "$INB_PY" bound 8 1 "$T/go"
	inb_expect_log rebind '^ready$' "the server"
	p4=$(awk '$1 == "v4" { print $3 }' "$log")
	p6=$(awk '$1 == "v6" { print $3 }' "$log")
	run inb_client lines "$TUN4" "$p4" 1
	expect_status "first IPv4 client" 0
	inb_expect_lines "first IPv4 client" 1 "hello $(inb_re "$PEER4"):[0-9]+" "$output"
	run inb_client lines "$TUN6" "$p6" 1
	expect_status "first IPv6 client" 0
	inb_expect_lines "first IPv6 client" 1 "hello $(inb_re "[$PEER6]"):[0-9]+" "$output"
	# The server closed both connections first: they linger in TIME_WAIT, which does not
	# keep a SO_REUSEADDR socket from binding and listening on the port again.
	inb_expect_log rebind "^rebound $p4 $p6\$" "the server bound the same ports again"
	run inb_client lines "$TUN4" "$p4" 1
	expect_status "an IPv4 client of the listener bound again" 0
	inb_expect_lines "IPv4 client, second listener" 1 "hello $(inb_re "$PEER4"):[0-9]+" "$output"
	run inb_client lines "$TUN6" "$p6" 1
	expect_status "an IPv6 client of the listener bound again" 0
	inb_expect_lines "IPv6 client, second listener" 1 "hello $(inb_re "[$PEER6]"):[0-9]+" "$output"
}

# ---- UDP ----

@test "UDP echo server on 0.0.0.0 and [::]: datagrams echoed with their boundaries, recvfrom names the tunnel peer" {
	local log=$TOPO_DIR/udp.log size
	inb_start udp "$TOPO_PYTHON" -u "$INB_PY" udp-server "$UDP_PORT4" "$UDP_PORT6"
	inb_expect_log udp '^ready$' "the server"
	# Sizes include an empty datagram and one the tunnel's MTU fragments.
	run inb_client udp "$TUN4" "$UDP_PORT4" 1,100,1200,0,3000
	expect_status "python UDP client, IPv4" 0
	expect_eq "python UDP client, IPv4" "ok 5 datagrams from $TUN4:$UDP_PORT4" "$output"
	run inb_client udp "$TUN6" "$UDP_PORT6" 1,100,1200,0,3000
	expect_status "python UDP client, IPv6" 0
	expect_eq "python UDP client, IPv6" "ok 5 datagrams from [$TUN6]:$UDP_PORT6" "$output"
	run inb_client udp "$TUN4" "$UDP_PORT6" 5,50
	expect_status "python UDP client, IPv4 to the dual-stack socket" 0
	expect_eq "python UDP client, IPv4 to [::]" "ok 2 datagrams from $TUN4:$UDP_PORT6" "$output"
	run in_server sh -c "printf 'hello socat\n' | socat -t 2 - UDP:$TUN4:$UDP_PORT4"
	expect_eq "socat - UDP:$TUN4:$UDP_PORT4" "hello socat" "$output"
	run in_server sh -c "printf 'hello socat6\n' | socat -t 2 - UDP6:[$TUN6]:$UDP_PORT6"
	expect_eq "socat - UDP6:[$TUN6]:$UDP_PORT6" "hello socat6" "$output"
	run plain_run sh -c "printf 'hello host\n' | socat -t 2 - UDP:127.0.0.1:$UDP_PORT4"
	expect_eq "a host client on loopback" "hello host" "$output"
	for size in 1 100 1200 0 3000 12; do
		inb_expect_log udp "^from $(inb_re "$PEER4") [0-9]+ len $size\$" \
			"recvfrom names the IPv4 tunnel peer ($size bytes)"
	done
	for size in 1 100 1200 0 3000 13; do
		inb_expect_log udp "^from $(inb_re "$PEER6") [0-9]+ len $size\$" \
			"recvfrom names the IPv6 tunnel peer ($size bytes)"
	done
	inb_expect_log udp "^from $(inb_re "::ffff:$PEER4") [0-9]+ len 50\$" \
		"recvfrom on [::] names an IPv4 tunnel peer v4-mapped"
	inb_expect_log udp "^from 127\.0\.0\.1 [0-9]+ len 11\$" "the host client, as itself"
}

# ---- forking, inetd-style, prefork and daemonizing servers ----

@test "socat TCP4-LISTEN,fork serves 5 tunnel clients at once; its inetd-style handler's getpeername names the tunnel peer" {
	inb_start fork socat "TCP4-LISTEN:$FORK_PORT,fork,reuseaddr" \
		"SYSTEM:$(shim_tool sh_peername) && exec cat,nofork"
	topo_wait_until 10 inb_listening "$FORK_PORT" || topo_fail "nothing listens on $FORK_PORT"
	run inb_client concurrent "$TUN4" "$FORK_PORT" 5
	expect_status "5 concurrent tunnel clients of socat,fork" 0
	inb_expect_lines "what the handlers told each client" 6 \
		"peer=$(inb_re "$PEER4"):[0-9]+ local=$(inb_re "$TUN4:$FORK_PORT")|echoed on 5 connections at once" \
		"$output"
	run plain_run socat -t 5 - "TCP:127.0.0.1:$FORK_PORT" </dev/null
	expect_status "a host client" 0
	inb_expect_lines "the handler of a host client" 1 \
		"peer=127\.0\.0\.1:[0-9]+ local=127\.0\.0\.1:$FORK_PORT" "$output"
}

@test "socat TCP6-LISTEN,fork EXEC (inetd-style): the handler's getpeername on stdin names IPv6 and v4-mapped tunnel peers" {
	inb_start fork6 socat "TCP6-LISTEN:$FORK6_PORT,fork,reuseaddr" \
		"EXEC:$(shim_tool sh_peername),nofork"
	topo_wait_until 10 inb_listening "$FORK6_PORT" || topo_fail "nothing listens on $FORK6_PORT"
	run in_server socat -t 5 - "TCP:[$TUN6]:$FORK6_PORT" </dev/null
	expect_status "an IPv6 tunnel client" 0
	inb_expect_lines "the handler of an IPv6 tunnel client" 1 \
		"peer=$(inb_re "[$PEER6]"):[0-9]+ local=$(inb_re "[$TUN6]:$FORK6_PORT")" "$output"
	run in_server socat -t 5 - "TCP:$TUN4:$FORK6_PORT" </dev/null
	expect_status "an IPv4 tunnel client" 0
	inb_expect_lines "the handler of an IPv4 tunnel client" 1 \
		"peer=$(inb_re "[::ffff:$PEER4]"):[0-9]+ local=$(inb_re "[::ffff:$TUN4]:$FORK6_PORT")" \
		"$output"
	run plain_run socat -t 5 - "TCP:[::1]:$FORK6_PORT" </dev/null
	expect_status "a host client" 0
	inb_expect_lines "the handler of a host client" 1 \
		"peer=\[::1\]:[0-9]+ local=\[::1\]:$FORK6_PORT" "$output"
}

@test "a prefork pool (listen, fork 3 children that accept): tunnel clients are served by the children, with their tunnel peer" {
	local parent pids
	inb_start pool "$TOPO_PYTHON" -u "$INB_PY" prefork "$POOL_PORT" 3
	inb_expect_log pool '^ready$' "the pool"
	parent=$(sed -n 's/^parent=//p' "$TOPO_DIR/pool.log")
	run inb_client lines "$TUN4" "$POOL_PORT" 6
	expect_status "6 tunnel clients at once" 0
	inb_expect_lines "the pool's answers" 6 "pid=[0-9]+ peer=$(inb_re "$PEER4"):[0-9]+" "$output"
	pids=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' <<<"$output" | sort -u)
	expect_lacks "the pids that served (children only)" "pid=$parent " "$output"
	expect_ge "children that served (each holds a client 0.3 s)" 2 "$(wc -l <<<"$pids")"
}

@test "a server that daemonizes after listen (fork, parent exits, child setsid) keeps serving tunnel clients" {
	local dpid
	inb_start daemon "$TOPO_PYTHON" -u "$INB_PY" daemon "$DAEMON_PORT" 3 "$T/daemon.pid"
	topo_reap daemon "$TOPO_SPAWNED" || topo_fail "the parent exited with an error"
	topo_wait_until 5 test -s "$T/daemon.pid"
	dpid=$(cat "$T/daemon.pid")
	topo_alive "$dpid" || topo_fail "the daemon (pid $dpid) is gone: $(cat "$TOPO_DIR/daemon.log")"
	run inb_client lines "$TUN4" "$DAEMON_PORT" 2
	expect_status "2 tunnel clients after the parent exited" 0
	inb_expect_lines "the daemon's answers" 2 "pid=$dpid peer=$(inb_re "$PEER4"):[0-9]+" "$output"
	sleep 1
	run inb_client lines "$TUN4" "$DAEMON_PORT" 1
	expect_status "a tunnel client a second later" 0
	inb_expect_lines "the daemon's answer" 1 "pid=$dpid peer=$(inb_re "$PEER4"):[0-9]+" "$output"
	inb_expect_log daemon '^daemon done$' "the daemon"
	# Once the daemon is done, whatever kept its tunnel going ends too.
	topo_wait_until 10 shim_no_strays "$TOPO_CLIENT_NS" ||
		topo_fail "still running 10 s after the daemon finished: $(shim_strays "$TOPO_CLIENT_NS")"
}

# ---- data, half-close, resets ----

@test "reads and writes both ways at once, half-close from either side, IPv4 and IPv6" {
	local host log=$TOPO_DIR/conn.log
	inb_start conn "$TOPO_PYTHON" -u "$INB_PY" conn "$CONN_PORT"
	inb_expect_log conn '^ready$' "the server"
	for host in "$TUN4" "$TUN6"; do
		run inb_client sum "$host" "$CONN_PORT" 3000000
		expect_status "3 MB up, shutdown(SHUT_WR), the same 3 MB back ($host)" 0
		expect_eq "client shut down its side, read the rest" \
			"ok 3000000 bytes back after shutdown(SHUT_WR)" "$output"
		run inb_client echo "$host" "$CONN_PORT" 3000000
		expect_status "3 MB echoed while sending ($host)" 0
		run inb_client half "$host" "$CONN_PORT"
		expect_status "the server shuts down its side first ($host)" 0
		expect_eq "server's FIN after 1 MiB, then the client's 1 MiB" \
			"ok 1 MiB before EOF, then sent 1 MiB; recv then: EOF" "$output"
	done
	# The clients are done once they have sent; the server reads what they sent after it.
	topo_wait_until 10 inb_log_count conn 2 '^half: ' ||
		topo_fail "the server should have finished both half-close tests: $(grep '^half' "$log")"
	expect_eq "the server read the client's 1 MiB after its own shutdown, twice" 2 \
		"$(grep -cx 'half: read 1048576 bytes after its own shutdown' "$log")"
}

@test "a server that closes with SO_LINGER 0 resets its tunnel client (ECONNRESET, curl error 56)" {
	local host
	inb_start conn "$TOPO_PYTHON" -u "$INB_PY" conn "$CONN_PORT"
	inb_expect_log conn '^ready$' "the server"
	# The reference: a host client of the same server sees the reset.
	run inb_host reset 127.0.0.1 "$CONN_PORT"
	expect_eq "a host client's recv after the server's SO_LINGER 0 close" ECONNRESET "$output"
	for host in "$TUN4" "$TUN6"; do
		run inb_client reset "$host" "$CONN_PORT"
		expect_eq "the tunnel client's recv ($host) after the server's SO_LINGER 0 close" \
			ECONNRESET "$output"
	done
	run in_server curl -sS --max-time 10 -o /dev/null "http://$TUN4:$CONN_PORT/reset"
	expect_status "curl, the server resets mid-response" 56
	expect_has "curl's message" "Connection reset by peer" "$output"
}

@test "a tunnel client that closes with SO_LINGER 0 resets the server's connection (ECONNRESET)" {
	local log=$TOPO_DIR/conn.log
	inb_start conn "$TOPO_PYTHON" -u "$INB_PY" conn "$CONN_PORT"
	inb_expect_log conn '^ready$' "the server"
	# The reference: the server's recv sees a host client's reset.
	run inb_host peer-reset 127.0.0.1 "$CONN_PORT"
	expect_status "a host client resets" 0
	inb_expect_log conn '^peer-reset: ' "the server's recv"
	expect_eq "the server's recv after a host client's reset" \
		"peer-reset: recv ended with ECONNRESET" "$(grep '^peer-reset: ' "$log")"
	run inb_client peer-reset "$TUN4" "$CONN_PORT"
	expect_status "a tunnel client resets" 0
	topo_wait_until 10 inb_log_count conn 2 '^peer-reset: ' ||
		topo_fail "the server's recv did not end after the tunnel client's reset"
	expect_eq "the server's recv after a tunnel client's reset" \
		"peer-reset: recv ended with ECONNRESET" "$(grep '^peer-reset: ' "$log" | tail -n 1)"
}

# ---- iperf3 ----

@test "one iperf3 -s: iperf3 -c, then -c -R, from the server namespace, 3 s each, above a floor, without errors" {
	local dir host mbits what
	local -a rev
	inb_start iperf iperf3 -s -p "$IPERF_PORT"
	topo_wait_until 10 inb_listening "$IPERF_PORT" || topo_fail "nothing listens on $IPERF_PORT"
	# iperf3 -s listens anew on its port for each test: the second test needs that too.
	for dir in up down; do
		host=$TUN4 what="upload to the wrapped server, IPv4" rev=()
		[ "$dir" = up ] || host=$TUN6 what="download from it (-R), IPv6" rev=(-R)
		in_server timeout -k 3 30 iperf3 -c "$host" -p "$IPERF_PORT" -t 3 -J "${rev[@]}" \
			>"$T/$dir.json" ||
			topo_fail "iperf3 -c $host ${rev[*]} failed: $(head -c 600 "$T/$dir.json")"
		mbits=$(inb_iperf_mbits "$T/$dir.json")
		echo "# iperf3, $what, 3 s: $mbits Mbit/s" >&3
		expect_ge "iperf3 $dir, Mbit/s" "$IPERF_FLOOR_MBITS" "$mbits"
	done
}

# ---- the python helper (written to $INB_PY by setup_file) ----

inb_write_py() {
	cat <<'PY'
"""080-inbound.bats' servers (wrapped, client namespace) and clients (plain, server
namespace). Servers print "ready" once they listen; numeric addresses only.

  bound BACKLOG N GOFILE  TCP on 10.200.0.2:0 and [fd00:200::2]:0, SO_REUSEADDR; prints
                          "v4|v6 ADDR PORT" and "reuseaddr=N" (getsockname, getsockopt);
                          accepts nothing until GOFILE exists, then answers N clients on
                          each with "hello PEER\n", closes both listeners, binds and
                          listens again on the same ports and prints "rebound P4 P6".
  udp-server P4 P6        UDP echo on 0.0.0.0:P4 and [::]:P6, "from ADDR PORT len N"
  prefork PORT N          listens on 0.0.0.0, forks N children that accept in a loop
  daemon PORT N PIDFILE   listens on 0.0.0.0, forks; the parent _exits, the child
                          setsid()s, writes PIDFILE, serves N clients, says "daemon done"
                          (prefork's and daemon's clients get "pid=PID peer=PEER\n")
  conn PORT               on [::], a command line per connection: sum (read to EOF, send
                          it back), echo, half (send 1 MiB, shutdown(SHUT_WR), count what
                          comes), reset (close with SO_LINGER 0), peer-reset (say ok,
                          report how recv ends), or HTTP GET (partial answer, reset)

  lines HOST PORT N [tell]  N connections at once ("connected N" on stderr if told),
                          then what each receives up to EOF, one line each
  udp HOST PORT SIZES     a datagram per size (comma-separated), echoes checked
  concurrent HOST PORT N  N connections at once: each one's first line, then a line
                          echoed on every one while all are open
  sum|echo HOST PORT BYTES, half HOST PORT, reset HOST PORT, peer-reset HOST PORT:
                          the conn server's commands, checked from the client side
"""
import os
import select
import socket
import struct
import sys
import threading
import time

LINGER0 = struct.pack("ii", 1, 0)
MIB = 1 << 20


def say(*args, file=sys.stdout):
    print(*args, flush=True, file=file)


def addr_str(a):
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listener(host, port, backlog=16):
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(int(backlog))
    return s


def recv_all(c):
    chunks = []
    while True:
        b = c.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def read_line(c):
    buf = b""
    while not buf.endswith(b"\n"):
        b = c.recv(1)
        if not b:
            break
        buf += b
    return buf.decode().strip()


def how_recv_ends(c):
    try:
        while c.recv(65536):
            pass
        return "EOF"
    except ConnectionResetError:
        return "ECONNRESET"
    except OSError as e:
        return f"errno {e.errno} ({e.strerror})"


def pattern(n):
    return bytes(range(256)) * (n // 256) + bytes(n % 256)


# ---- servers ----

def serve_hello(socks, count):
    for _ in range(count):
        s = select.select(socks, [], [])[0][0]
        c, peer = s.accept()
        c.sendall(f"hello {addr_str(peer)}\n".encode())
        c.close()


def srv_bound(backlog, n, gofile):
    socks = [listener(host, 0, backlog) for host in ("10.200.0.2", "fd00:200::2")]
    for s in socks:
        name = s.getsockname()
        say("v4" if s.family == socket.AF_INET else "v6", name[0], name[1])
        say(f"reuseaddr={s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)}")
    say("ready")
    while not os.path.exists(gofile):
        time.sleep(0.05)
    serve_hello(socks, 2 * int(n))
    names = [s.getsockname()[:2] for s in socks]
    for s in socks:
        s.close()
    socks = [listener(host, port, backlog) for host, port in names]
    say("rebound", *(s.getsockname()[1] for s in socks))
    serve_hello(socks, 1 << 30)


def srv_udp(port4, port6):
    socks = []
    for host, port in (("0.0.0.0", port4), ("::", port6)):
        s = socket.socket(family_of(host), socket.SOCK_DGRAM)
        s.bind((host, int(port)))
        socks.append(s)
    say("ready")
    while True:
        for s in select.select(socks, [], [])[0]:
            data, peer = s.recvfrom(65536)
            say(f"from {peer[0]} {peer[1]} len {len(data)}")
            s.sendto(data, peer)


def serve_slowly(s, count):
    for _ in range(count):
        c, peer = s.accept()
        time.sleep(0.3)  # long enough for the next client to need another server
        c.sendall(f"pid={os.getpid()} peer={addr_str(peer)}\n".encode())
        c.close()


def srv_prefork(port, n):
    s = listener("0.0.0.0", port)
    for _ in range(int(n)):
        if os.fork() == 0:
            serve_slowly(s, 1 << 30)
    say(f"parent={os.getpid()}")
    say("ready")
    while True:
        os.wait()


def srv_daemon(port, n, pidfile):
    s = listener("0.0.0.0", port)
    say("listening")
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(pidfile + ".tmp", pidfile)
    serve_slowly(s, int(n))
    say("daemon done")


def conn_http(c):
    while read_line(c):
        pass
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    time.sleep(0.2)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)


def conn_half(c):
    c.sendall(pattern(MIB))
    c.shutdown(socket.SHUT_WR)
    say(f"half: read {len(recv_all(c))} bytes after its own shutdown")


def handle(c, peer):
    try:
        cmd = read_line(c)
        say(f"{cmd.split(' ')[0]} from {addr_str(peer)}")
        if cmd == "sum":
            c.sendall(recv_all(c))
        elif cmd == "echo":
            while b := c.recv(65536):
                c.sendall(b)
        elif cmd == "half":
            conn_half(c)
        elif cmd == "reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        elif cmd == "peer-reset":
            c.sendall(b"ok\n")
            say(f"peer-reset: recv ended with {how_recv_ends(c)}")
        elif cmd.startswith("GET "):
            conn_http(c)
        c.close()
    except OSError as e:
        say(f"server error: {e}")


def srv_conn(port):
    s = listener("::", port)
    say("ready")
    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()


# ---- clients ----

def connect(host, port):
    return socket.create_connection((host, int(port)), timeout=15)


def cli_lines(host, port, n, tell=""):
    conns = [connect(host, port) for _ in range(int(n))]
    if tell:
        say(f"connected {len(conns)}", file=sys.stderr)
    for c in conns:
        say(recv_all(c).decode().strip())


def cli_udp(host, port, sizes):
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    s.settimeout(5)
    s.connect((host, int(port)))
    sent = []
    for i, size in enumerate(int(x) for x in sizes.split(",")):
        data = bytes((i * 7 + j) % 251 for j in range(size))
        s.send(data)
        sent.append(data)
    for data in sent:
        back, src = s.recvfrom(65536)
        if back != data or src[:2] != (host, int(port)):
            sys.exit(f"udp: sent {len(data)} bytes, got {len(back)} from {src}")
    say(f"ok {len(sent)} datagrams from {addr_str((host, port))}")


def cli_concurrent(host, port, n):
    conns = [connect(host, port) for _ in range(int(n))]
    for c in conns:
        say(read_line(c))
    for i, c in enumerate(conns):
        c.sendall(f"line {i}\n".encode())
    for i, c in enumerate(conns):
        back = read_line(c)
        if back != f"line {i}":
            sys.exit(f"connection {i}: sent 'line {i}', got '{back}'")
    say(f"echoed on {len(conns)} connections at once")


def cli_sum(host, port, nbytes):
    data = os.urandom(int(nbytes))
    c = connect(host, port)
    c.sendall(b"sum\n" + data)
    c.shutdown(socket.SHUT_WR)
    back = recv_all(c)
    if back != data:
        sys.exit(f"sum: sent {len(data)} bytes, got {len(back)} (or other) bytes back")
    say(f"ok {len(back)} bytes back after shutdown(SHUT_WR)")


def cli_echo(host, port, nbytes):
    data = os.urandom(int(nbytes))
    c = connect(host, port)
    c.sendall(b"echo\n")
    t = threading.Thread(target=c.sendall, args=(data,))
    t.start()
    got = bytearray()
    while len(got) < len(data) and (b := c.recv(65536)):
        got += b
    t.join()
    c.shutdown(socket.SHUT_WR)
    rest = recv_all(c)
    if bytes(got) != data or rest:
        sys.exit(f"echo: sent {len(data)} bytes, got {len(got)} + {len(rest)} back")
    say(f"ok {len(got)} bytes echoed while sending")


def cli_half(host, port):
    c = connect(host, port)
    c.sendall(b"half\n")
    got = recv_all(c)
    if got != pattern(MIB):
        sys.exit(f"half: expected 1 MiB before the server's FIN, got {len(got)} bytes")
    c.sendall(pattern(MIB))
    c.shutdown(socket.SHUT_WR)
    rest = how_recv_ends(c)
    say(f"ok 1 MiB before EOF, then sent 1 MiB; recv then: {rest}")


def cli_reset(host, port):
    c = connect(host, port)
    c.sendall(b"reset\n")
    say(how_recv_ends(c))


def cli_peer_reset(host, port):
    c = connect(host, port)
    c.sendall(b"peer-reset\n")
    if read_line(c) != "ok":
        sys.exit("peer-reset: no 'ok' from the server")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    c.close()
    say("closed with SO_LINGER 0")


COMMANDS = {
    "bound": srv_bound, "udp-server": srv_udp, "prefork": srv_prefork,
    "daemon": srv_daemon, "conn": srv_conn, "lines": cli_lines, "udp": cli_udp,
    "concurrent": cli_concurrent, "sum": cli_sum, "echo": cli_echo, "half": cli_half,
    "reset": cli_reset, "peer-reset": cli_peer_reset,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
PY
}
