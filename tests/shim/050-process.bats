#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Process life: what a program sent before it exited is delivered (nc -q0, a one-shot UDP
# sender), also when the next wrapped program with the same key starts right after it; a
# child keeps a connection after its parent exits; an exec'd program answers getpeername
# for a connection it inherited; a second process with the same key at the same time
# shares the first one's session (100-sessions.bats has the rest of that story).

load helpers

setup_file() {
	shim_setup_file sh_fork_child sh_exec_peer sh_udp_once || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_echo_up || return
	shim_sink_up
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

# sink_has KIND CONTENT-FILE: a finished sink entry of KIND (tcp, udp) with exactly
# CONTENT-FILE's bytes.
sink_has() {
	local f
	for f in "$SINK_DIR/$1"-*; do
		[[ "$f" == *.part ]] && continue
		[ -f "$f" ] && cmp -s "$f" "$2" && return 0
	done
	return 1
}

# expect_sink KIND CONTENT-FILE WHAT: waits up to 10 s for it.
expect_sink() {
	topo_wait_until 10 sink_has "$1" "$2" && return 0
	echo "$3: the sink never received exactly $(stat -c %s "$2") bytes of $2 over $1; it has:" >&2
	ls -l "$SINK_DIR" >&2
	return 1
}

@test "printf data | nc -q0 delivers before exiting, twice in a row with the same key" {
	printf 'first message %s\n' "$RANDOM" >"$T/m1"
	printf 'second message %s\n' "$RANDOM" >"$T/m2"
	shim_run nc -q0 "$TOPO_SERVER_V4" "$SINK_PORT" <"$T/m1"
	shim_run nc -q0 "$TOPO_SERVER_V6" "$SINK_PORT" <"$T/m2"
	expect_sink tcp "$T/m1" "nc -q0 (first)"
	expect_sink tcp "$T/m2" "nc -q0 (second, started right after the first)"
}

@test "nc -q0 with 4 MiB: all of it arrives although nc exits once it has written it" {
	head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/big1"
	head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/big2"
	shim_run nc -q0 "$TOPO_SERVER_V4" "$SINK_PORT" <"$T/big1"
	shim_run nc -q0 "$TOPO_SERVER_V4" "$SINK_PORT" <"$T/big2"
	expect_sink tcp "$T/big1" "nc -q0 with 4 MiB (first)"
	expect_sink tcp "$T/big2" "nc -q0 with 4 MiB (second, right after)"
}

@test "a one-shot UDP sender's datagram is delivered, also with the next sender right after it" {
	local i
	for i in 1 2 3; do
		printf 'udp once %s %s' "$i" "$RANDOM" >"$T/u$i"
	done
	shim_run "$(shim_tool sh_udp_once)" connect "$TOPO_SERVER_V4" "$SINK_PORT" "$(cat "$T/u1")"
	shim_run "$(shim_tool sh_udp_once)" connect "$TOPO_SERVER_V6" "$SINK_PORT" "$(cat "$T/u2")"
	# socat as a one-shot sender too.
	shim_run socat -u - "UDP:$TOPO_SERVER_V4:$SINK_PORT" <"$T/u3"
	expect_sink udp "$T/u1" "sh_udp_once connect (IPv4)"
	expect_sink udp "$T/u2" "sh_udp_once connect (IPv6, right after)"
	expect_sink udp "$T/u3" "socat -u - UDP: (right after)"
}

@test "a one-shot unconnected sendto is delivered before the sender exits" {
	printf 'sendto once %s' "$RANDOM" >"$T/s1"
	printf 'sendto once v6 %s' "$RANDOM" >"$T/s2"
	run shim_run "$(shim_tool sh_udp_once)" sendto "$TOPO_SERVER_V4" "$SINK_PORT" "$(cat "$T/s1")"
	expect_status "sh_udp_once sendto (IPv4)" 0
	run shim_run "$(shim_tool sh_udp_once)" sendto "$TOPO_SERVER_V6" "$SINK_PORT" "$(cat "$T/s2")"
	expect_status "sh_udp_once sendto (IPv6)" 0
	expect_sink udp "$T/s1" "sh_udp_once sendto (IPv4)"
	expect_sink udp "$T/s2" "sh_udp_once sendto (IPv6)"
}

@test "a child keeps its connection after its parent has exited" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		run shim_run "$(shim_tool sh_fork_child)" orphan "$addr" "$ECHO_PORT"
		expect_status "sh_fork_child orphan $addr" 0
		expect_eq "sh_fork_child orphan $addr" "OK orphaned child" "$output"
	done
}

@test "an exec'd program answers getpeername and getsockname for an inherited connection" {
	local addr peer local_re child_local
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		if [[ "$addr" == *:* ]]; then
			peer="[$addr]:$ECHO_PORT" local_re='\[fd00:200::2\]:[0-9]+'
		else
			peer="$addr:$ECHO_PORT" local_re='10\.200\.0\.2:[0-9]+'
		fi
		run shim_run "$(shim_tool sh_exec_peer)" "$addr" "$ECHO_PORT"
		expect_status "sh_exec_peer $addr" 0
		[ "${#lines[@]}" = 3 ] || { echo "sh_exec_peer: expected 3 lines, got: $output" >&2; false; }
		expect_has "the parent's view" "parent peer=$peer local=" "${lines[0]}"
		expect_has "the exec'd child's view" "child peer=$peer local=" "${lines[1]}"
		[[ "${lines[1]}" =~ local=$local_re\ type=1\ domain=(2|10)\ protocol=6$ ]] ||
			{ echo "the exec'd child's view: got '${lines[1]}'" >&2; false; }
		# The same local address and port before and after the exec.
		child_local=${lines[1]#*local=}
		expect_eq "local address after exec" "${lines[0]#*local=}" "${child_local%% *}"
		expect_eq "sh_exec_peer's last line" OK "${lines[2]}"
	done
}

@test "bash opens /dev/tcp, execs python3 on the descriptor: python3 sees a TCP socket" {
	# shellcheck disable=SC2016 # expanded by the inner bash / python
	run shim_run bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit
		exec "$3" -c "
import socket
s = socket.socket(fileno=3)
print(s.family.name, s.type.name, s.getpeername()[:2])
s.sendall(b\"via exec\\n\")
print(s.recv(100))"' bash "$TOPO_SERVER_V4" "$ECHO_PORT" "$TOPO_PYTHON"
	expect_status "bash /dev/tcp then exec python3" 0
	expect_eq "python3's view of the inherited descriptor" \
		"AF_INET SOCK_STREAM ('$TOPO_SERVER_V4', $ECHO_PORT)" "${lines[0]}"
	expect_eq "the echo over the inherited descriptor" "b'via exec\\n'" "${lines[1]}"
}

@test "a second process with the same key at the same time shares the first one's session, and both connections work" {
	local holder second pid
	# The first process holds a tunnel connection open until told to go on.
	# shellcheck disable=SC2016
	shim_spawn holder "$TOPO_PYTHON" -u -c '
import os, socket, sys, time
def echo(s, line):
    s.sendall(line)
    got = b""
    while not got.endswith(b"\n"):
        b = s.recv(100)
        if not b:
            sys.exit(f"EOF after {got!r}")
        got += b
    return got.decode().strip()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print("holding", os.getpid(), echo(s, b"first\n"), flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
print("again", echo(s, b"first again\n"), flush=True)' "$TOPO_SERVER_V4" "$ECHO_PORT" "$T/go"
	topo_wait_until 15 grep -q '^holding ' "$TOPO_DIR/holder.log" ||
		{ cat "$TOPO_DIR/holder.log" >&2; false; }
	holder=$(awk '/^holding / { print $2 }' "$TOPO_DIR/holder.log")
	expect_eq "the first process's echo" "holding $holder first" "$(cat "$TOPO_DIR/holder.log")"
	# shellcheck disable=SC2016
	run shim_run "$TOPO_PYTHON" -c '
import os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
s.sendall(b"second\n")
print(os.getpid(), s.recv(100).decode().strip())' "$TOPO_SERVER_V4" "$ECHO_PORT"
	expect_status "the second process" 0
	second=${output%% *}
	expect_eq "the second process's echo" "$second second" "$output"
	pid=$(cat "$TOPO_DIR/pids/holder")
	topo_alive "$pid" || { echo "the first process died" >&2; cat "$TOPO_DIR/holder.log" >&2; false; }
	grep -q "^tunshim\[$holder\]: tunnel started" "$SHIM_LOG" ||
		topo_fail "the first process did not start the tunnel"
	grep -q "^tunshim\[$second\]: attached to the tunnel session of this key" "$SHIM_LOG" ||
		topo_fail "the second process did not attach to the first one's session"
	expect_lacks "the shim log" "holds the WireGuard session" "$(cat "$SHIM_LOG")"
	# The first process's connection still works after the second has come and gone.
	touch "$T/go"
	topo_reap holder "$TOPO_SPAWNED" || topo_fail "the first process: $(cat "$TOPO_DIR/holder.log")"
	expect_eq "the first process's connection afterwards" "again first again" \
		"$(tail -n 1 "$TOPO_DIR/holder.log")"
}

@test "after the holder of the key exits, the next process gets the session" {
	run shim_run curl -sS --max-time 20 -o "$T/body" "http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/index.html"
	expect_status "curl after the previous holder exited" 0
	cmp "$TOPO_DIR/www/index.html" "$T/body"
}
