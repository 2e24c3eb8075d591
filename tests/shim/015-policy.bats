#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# What goes into the tunnel and what never leaks: a broken config fails closed with one
# clear message; a program that never touches the tunnel starts nothing; sendto with
# MSG_FASTOPEN is a connect too.

load helpers

setup_file() {
	shim_setup_file || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	printf '[Interface]\nPrivateKey = not-a-key\n' >"$TOPO_DIR/broken.conf"
	chmod 600 "$TOPO_DIR/broken.conf"
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

@test "an unusable config: one file:line message, tunnel addresses refused, loopback still works" {
	# shellcheck disable=SC2016
	SHIM_CONF=$TOPO_DIR/broken.conf TUNSHIM_LOG_FILE= TUNSHIM_LOG=error run shim_run \
		"$TOPO_PYTHON" -c '
import errno, socket, sys
for addr in (sys.argv[1], "203.0.113.9"):
    s = socket.socket()
    rc = s.connect_ex((addr, 8080))
    print(addr, errno.errorcode.get(rc, rc))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", ("203.0.113.9", 53)); print("udp sent")
except OSError as e:
    print("udp", errno.errorcode[e.errno])
lo = socket.socket(); lo.bind(("127.0.0.1", 0)); lo.listen()
c = socket.create_connection(lo.getsockname()); print("loopback ok")
' "$TOPO_SERVER_V4"
	expect_status "the program under a broken config" 0
	expect_has "the message" "broken.conf:2: " "$output"
	expect_has "a tunnel address" "$TOPO_SERVER_V4 ENETUNREACH" "$output"
	expect_has "any other address" "203.0.113.9 ENETUNREACH" "$output"
	expect_has "UDP" "udp ENETUNREACH" "$output"
	expect_has "loopback" "loopback ok" "$output"
	[ "$(grep -c 'broken.conf:2:' <<<"$output")" = 1 ] ||
		{ echo "expected the message once, got: $output" >&2; return 1; }
}

# The socket, socketpair and thread-creating calls a command makes, without pids and fds.
net_calls() {
	in_client strace -f -e trace=socket,socketpair,clone,clone3,epoll_create1,eventfd2 \
		env "$@" sh -c 'cat /etc/hostname >/dev/null; curl -s -o /dev/null http://127.0.0.1:9/ || true' 2>&1 |
		grep -oE '(socket|socketpair|clone3?|epoll_create1|eventfd2)\([^)]*' |
		sed -E 's/child_stack=[^,]*, //; s/parent_tid=[^,]*, //; s/child_tidptr=[^,]*//' | sort
}

@test "a program that never touches the tunnel starts no thread and opens no socket" {
	command -v strace >/dev/null || skip "strace is not installed"
	local plain shimmed
	plain=$(net_calls TUNSHIM_NONE=1)
	shimmed=$(net_calls LD_PRELOAD="$SHIM_LIB" TUNSHIM_CONFIG="$TOPO_CONF" \
		XDG_RUNTIME_DIR="$SHIM_RUNTIME")
	[ -n "$plain" ] || { echo "strace saw nothing at all" >&2; return 1; }
	if [ "$plain" != "$shimmed" ]; then
		echo "the shim added or changed calls:" >&2
		diff <(echo "$plain") <(echo "$shimmed") >&2
		return 1
	fi
}

@test "sendto with MSG_FASTOPEN to a tunnel address connects through the tunnel" {
	# shellcheck disable=SC2016
	run shim_run "$TOPO_PYTHON" -c '
import socket, sys
s = socket.socket()
s.sendto(b"GET /index.html HTTP/1.0\r\n\r\n", socket.MSG_FASTOPEN, (sys.argv[1], 8080))
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
print(data.split(b"\r\n", 1)[0].decode(), s.getpeername())
' "$TOPO_SERVER_V4"
	expect_status "MSG_FASTOPEN client" 0
	expect_has "the answer" "HTTP/1.0 200 OK ('$TOPO_SERVER_V4', 8080)" "$output"
}
