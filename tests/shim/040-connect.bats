#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# connect()'s semantics through the shim, asserted directly by test programs rather than
# through a client's own timers (tests/tools/connect_check, tests/tools/sh_nb_connect):
# with ts_relay adding 200 ms to the round trip, a non-blocking connect returns EINPROGRESS
# at once; connected, refused and timed-out outcomes arrive through edge-triggered epoll
# with the right SO_ERROR; a socket added to epoll before connect gets its event. The same
# programs pass against the kernel on loopback, the reference.

load helpers

setup_file() {
	shim_setup_file connect_check sh_nb_connect || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_echo_up || return
	# 100 ms each way: 200 ms added to every round trip, the handshake's included.
	topo_relay_up --delay 100 || return
	# A second key, so two processes can wait out timeouts side by side.
	topo_client_conf second 5 || return
	export SECOND_CONF=$TOPO_NEW_CONF
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	CC=$(shim_tool connect_check)
	NB=$(shim_tool sh_nb_connect)
}

teardown() {
	shim_teardown
}

# A listener on the client namespace's loopback for the kernel's reference runs.
loopback_listener() {
	topo_spawn lo-listener "$TOPO_CLIENT_NS" "$TOPO_PYTHON" -c '
import socket, sys, time
for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 7101))
    s.listen(64)
    globals()["keep_" + str(fam)] = s
print("ready", flush=True)
time.sleep(600)'
	topo_wait_until 5 grep -qx ready "$TOPO_DIR/lo-listener.log"
}

# relay_run CMD...: wrapped, through the relay (200 ms more per round trip).
relay_run() {
	SHIM_CONF=$TOPO_RELAY_CONF shim_run "$@"
}

@test "reference: connect_check and sh_nb_connect pass against the kernel on loopback" {
	local addr
	loopback_listener
	for addr in 127.0.0.1 ::1 ::ffff:127.0.0.1; do
		run plain_run "$CC" einprogress "$addr" 7101 10
		expect_status "kernel: connect_check einprogress $addr" 0
		run plain_run "$CC" epoll-before "$addr" 7101
		expect_status "kernel: connect_check epoll-before $addr" 0
		run plain_run "$CC" refused "$addr" 7109
		expect_status "kernel: connect_check refused $addr" 0
		run plain_run "$CC" getnames "$addr" 7101
		expect_status "kernel: connect_check getnames $addr" 0
		run plain_run "$NB" "$addr" 7109 2 ECONNREFUSED
		expect_status "kernel: sh_nb_connect $addr (refused)" 0
	done
	topo_stop lo-listener
}

@test "non-blocking connect returns EINPROGRESS in under 10 ms with 200 ms added by the relay" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6" "::ffff:$TOPO_SERVER_V4"; do
		# The process is new each time: the first connect also starts the tunnel, and
		# the handshake alone takes 200 ms. The previous one has finished closing.
		shim_quiesce
		run relay_run "$CC" einprogress "$addr" "$TOPO_HTTP_PORT" 10
		expect_status "connect_check einprogress $addr via the relay" 0
		expect_eq "connect_check einprogress $addr" connected "${lines[-1]}"
	done
}

@test "a non-blocking connect right after another process with the same key does not block" {
	# The first process closes its connection as it exits; the FIN exchange takes a
	# 200 ms round trip, which the tunnel finishes after the process has gone. The second
	# process's non-blocking connect must not wait for that.
	shim_quiesce
	run relay_run "$CC" einprogress "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" 10
	expect_status "connect_check einprogress (first process)" 0
	run relay_run "$CC" einprogress "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" 10
	expect_status "connect_check einprogress (second process, right after the first)" 0
}

@test "a connection through the relay arrives through EPOLLET with SO_ERROR 0, not before" {
	local addr ms
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		# A session of its own (not the previous one's, lingering), so a handshake first.
		shim_quiesce
		run relay_run "$NB" "$addr" "$TOPO_HTTP_PORT" 10 0
		expect_status "sh_nb_connect $addr via the relay" 0
		# Handshake and SYN/SYN-ACK: two round trips of at least 200 ms.
		ms=$(sed -n 's/^0 after \([0-9.]*\) s.*/\1/p' <<<"$output" | awk '{ print int($1 * 1000) }')
		expect_ge "ms until the connection's event (two 200 ms round trips)" 390 "$ms"
	done
}

@test "a socket added to epoll before connect gets its event (cookie, registration kept)" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		run relay_run "$CC" epoll-before "$addr" "$TOPO_HTTP_PORT"
		expect_status "connect_check epoll-before $addr via the relay" 0
		run shim_run "$CC" epoll-before "$addr" "$TOPO_HTTP_PORT"
		expect_status "connect_check epoll-before $addr" 0
	done
}

@test "refused: EPOLLET event, SO_ERROR ECONNREFUSED then 0; blocking connect ECONNREFUSED" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6" "::ffff:$TOPO_SERVER_V4"; do
		run shim_run "$CC" refused "$addr" "$CLOSED_PORT"
		expect_status "connect_check refused $addr" 0
		run relay_run "$CC" refused "$addr" "$CLOSED_PORT"
		expect_status "connect_check refused $addr via the relay" 0
		run relay_run "$NB" "$addr" "$CLOSED_PORT" 10 ECONNREFUSED
		expect_status "sh_nb_connect $addr (refused) via the relay" 0
	done
}

@test "refused, ten times in a row: the outcome never shows as a connection" {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		run shim_run "$NB" "$TOPO_SERVER_V4" "$CLOSED_PORT" 5 ECONNREFUSED
		expect_status "sh_nb_connect refused, run $i" 0
	done
}

@test "getpeername, getsockname, SO_DOMAIN/TYPE/PROTOCOL and TCP_INFO of a tunnel connection" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6" "::ffff:$TOPO_SERVER_V4"; do
		run shim_run "$CC" getnames "$addr" "$TOPO_HTTP_PORT"
		expect_status "connect_check getnames $addr" 0
	done
	expect_has "local address of the v4-mapped connection" "::ffff:10.200.0.2" "$output"
}

@test "echo: 4 MiB both ways with a half-close, IPv4, IPv6 and v4-mapped" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6" "::ffff:$TOPO_SERVER_V4"; do
		run shim_run "$CC" echo "$addr" "$ECHO_PORT" $((4 * 1024 * 1024))
		expect_status "connect_check echo $addr" 0
	done
}

@test "timed out: ETIMEDOUT through EPOLLET, and from a blocking connect, to a silent address" {
	local pid rc=0
	# Both wait out the stack's SYN retries; two keys, so they can wait side by side.
	SHIM_CONF=$SECOND_CONF shim_run "$CC" timeout "$SILENT_V6" "$TOPO_HTTP_PORT" 60 \
		expect=ETIMEDOUT >"$T/blocking.out" 2>"$T/blocking.err" &
	pid=$!
	run shim_run "$NB" "$SILENT_V4" "$TOPO_HTTP_PORT" 60 ETIMEDOUT
	wait "$pid" || rc=$?
	expect_status "sh_nb_connect $SILENT_V4 (timed out)" 0
	echo "# non-blocking, via epoll: $output" >&3
	expect_eq "connect_check timeout $SILENT_V6 exit status ($(cat "$T/blocking.err"))" 0 "$rc"
	echo "# blocking: $(cat "$T/blocking.out")" >&3
}

@test "no handshake possible (the relay drops everything): EHOSTUNREACH, not a hang" {
	topo_relay_up --loss 100
	# The WireGuard timers at 1/20: the handshake is given up after 90 s / 20.
	TUNSHIM_TIMER_SCALE=0.05 run relay_run "$NB" "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" 30 \
		EHOSTUNREACH
	expect_status "sh_nb_connect with no handshake possible" 0
	echo "# non-blocking: $output" >&3
	TUNSHIM_TIMER_SCALE=0.05 run relay_run "$CC" timeout "$TOPO_SERVER_V6" "$TOPO_HTTP_PORT" 30 \
		expect=EHOSTUNREACH
	expect_status "connect_check timeout with no handshake possible" 0
	echo "# blocking: $output" >&3
	topo_relay_up --delay 100
}

@test "SO_LINGER 0 on a tunnelled connection resets it at close; a reset by the remote reads as ECONNRESET" {
	# A server in the server namespace that reports how each connection ended, and one
	# that resets its clients.
	# shellcheck disable=SC2016
	topo_spawn linger-srv "$TOPO_SERVER_NS" "$TOPO_PYTHON" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7301)); s.listen(4)
r = socket.socket(); r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
r.bind(("0.0.0.0", 7302)); r.listen(4)
c, _ = s.accept()
try:
    while c.recv(100): pass
    print("eof", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
c, _ = r.accept(); c.recv(1)
import struct
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
' || return
	topo_wait_until 5 in_server ss -Hltn "sport = :7302" | grep -q . || true
	# shellcheck disable=SC2016
	run shim_run "$TOPO_PYTHON" -c '
import socket, struct, sys, time
a = sys.argv[1]
c = socket.create_connection((a, 7301), timeout=10)
c.sendall(b"x"); time.sleep(0.2)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
d = socket.create_connection((a, 7302), timeout=10)
d.sendall(b"y")
try:
    print("read:", d.recv(10))
except ConnectionResetError:
    print("read: ECONNRESET")
' "$TOPO_SERVER_V4"
	expect_status "the wrapped client" 0
	expect_has "the remote's reset" "read: ECONNRESET" "$output"
	topo_wait_until 5 grep -q . "$TOPO_DIR/linger-srv.log" 2>/dev/null || true
	run cat "$TOPO_DIR/linger-srv.log"
	expect_has "the server after our SO_LINGER 0 close" "reset" "$output"
	topo_stop linger-srv
}

@test "bind before connect is honoured: a tunnel address with a port, and a port on the wildcard" {
	topo_spawn peer-echo "$TOPO_SERVER_NS" socat TCP-LISTEN:7303,fork,reuseaddr \
		SYSTEM:'echo $SOCAT_PEERADDR $SOCAT_PEERPORT' || return
	topo_wait_until 5 bash -c "[ -n \"\$(ip netns exec $TOPO_SERVER_NS ss -Hltn 'sport = :7303')\" ]" || true
	# shellcheck disable=SC2016
	run shim_run "$TOPO_PYTHON" -c '
import socket, sys
srv, me = sys.argv[1], sys.argv[2]
for bind_to in ((me, 40011), ("0.0.0.0", 40012)):
    s = socket.socket()
    s.bind(bind_to)
    s.connect((srv, 7303))
    print("local", *s.getsockname(), "server saw", s.makefile().readline().strip())
    s.close()
' "$TOPO_SERVER_V4" 10.200.0.2
	expect_status "the wrapped client" 0
	expect_has "bound to the tunnel address" "local 10.200.0.2 40011 server saw 10.200.0.2 40011" "$output"
	expect_has "bound to a wildcard port" "local 10.200.0.2 40012 server saw 10.200.0.2 40012" "$output"
	topo_stop peer-echo
}
