#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The shapes in which platforms and VPN providers hand out configs (issue 4): an IPv6-only
# private network (a ULA /120 out of a /48, its name server inside, a search domain, the
# gateway by hostname, a keepalive), an endpoint given as an IPv6 literal, several peers
# that split one range by longest prefix while one of them is dead, and a gateway whose
# hostname moves while handshakes fail.
#
#   client netns (lo only)                       server netns, TUN $TOPO_WG_IF
#   +--------------------------------------+     +-------------------------------------+
#   | wrapped programs                     |     | fd7a:115c:a1e0::/48 (topo_prov_*):  |
#   |   Endpoint = localhost:51820         |     |   ::3 dnsmasq, web.svc.internal     |
#   |          | [::1]:51820               | --> |   b00::80 HTTP on :8080             |
#   |          | gateway.provider.test     |     |   a7b:9c3:0:a:101/120, route back   |
#   | wireguard-go UDP [::]:51820          |     | 10.200.0.1/24 HTTP on :8080         |
#   | 127.0.0.1:$DEAD_PORT  nobody         |     +-------------------------------------+
#   | 10.201.9.2 routed into lo, vanishes  |
#   | /etc/hosts: /etc/netns/NS/hosts      |
#   +--------------------------------------+

load helpers

GW_NAME=gateway.provider.test
GONE_V4=10.201.9.2
DEAD_PORT=51899
DEAD_V4=10.200.0.200

setup_file() {
	shim_setup_file connect_check || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	topo_dns_up || return
	topo_prov_ula_up || return
	topo_prov_ula_conf ula "localhost:$TOPO_PORT" || return
	ULA_CONF=$TOPO_NEW_CONF
	ULA_PUB=$TOPO_NEW_PUB
	V6EP_CONF=$TOPO_DIR/v6ep.conf
	(umask 077 && sed "s|^Endpoint = .*|Endpoint = [::1]:$TOPO_PORT|" "$TOPO_CONF" \
		>"$V6EP_CONF") || return
	multi_conf "$TOPO_DIR/multi.conf" || return
	MULTI_CONF=$TOPO_DIR/multi.conf
	MOVE_CONF=$TOPO_DIR/move.conf
	(umask 077 && sed "s|^Endpoint = .*|Endpoint = $GW_NAME:$TOPO_PORT|" "$TOPO_CONF" \
		>"$MOVE_CONF") || return
	export ULA_CONF ULA_PUB V6EP_CONF MULTI_CONF MOVE_CONF
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	DECOY0=$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")
}

teardown() {
	shim_teardown
}

# $TOPO_CONF's key and peer (wireguard-go, 10.200.0.0/24), then a second peer for
# 10.200.0.128/25 with a key nobody holds and an endpoint where nothing listens.
multi_conf() {
	(
		umask 077
		cat "$TOPO_CONF"
		echo
		echo "[Peer]"
		echo "PublicKey = $(wg genkey | wg pubkey)"
		echo "AllowedIPs = 10.200.0.128/25"
		echo "Endpoint = 127.0.0.1:$DEAD_PORT"
	) >"$1"
}

expect_no_leak() {
	local now
	now=$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")
	[ "$now" = "$DECOY0" ] && return 0
	echo "the host's resolver (the decoy) got $((now - DECOY0)) queries:" >&2
	grep ' query\[' "$TOPO_DNS_DECOY_LOG" | tail -n $((now - DECOY0)) >&2
	return 1
}

# The outer address wireguard-go last saw from KEY, without its port.
peer_endpoint_addr() {
	local ep
	ep=$(uapi_peer_field endpoint "$1")
	echo "${ep%:*}"
}

@test "an IPv6-only private network as a platform hands it out: names, search domain, AAAA only" {
	local first
	# localhost is the Endpoint: what the host resolver makes of it here (the namespace's
	# /etc/hosts), and wireguard-go must listen there.
	first=$(plain_run "$TOPO_PYTHON" -c '
import socket
print(socket.getaddrinfo("localhost", 51820, 0, socket.SOCK_DGRAM)[0][4][0])')
	echo "# localhost resolves first to $first" >&3
	case $first in
	::1) expect_has "wireguard-go's UDP sockets" "[::]:$TOPO_PORT" \
		"$(in_client ss -Hlun "sport = :$TOPO_PORT")" ;;
	127.0.0.1) expect_has "wireguard-go's UDP sockets" "0.0.0.0:$TOPO_PORT" \
		"$(in_client ss -Hlun "sport = :$TOPO_PORT")" ;;
	*) expect_eq "localhost's first address" "::1 or 127.0.0.1" "$first" ;;
	esac

	SHIM_CONF=$ULA_CONF run shim_run curl -sS --max-time 20 -o /dev/null \
		-w '%{http_code} %{remote_ip}' "http://$TOPO_PROV_WEB_NAME:$TOPO_HTTP_PORT/"
	expect_status "curl http://$TOPO_PROV_WEB_NAME/" 0
	expect_eq "curl http://$TOPO_PROV_WEB_NAME/" "200 $TOPO_PROV_WEB" "$output"
	SHIM_CONF=$ULA_CONF run shim_run curl -sS --max-time 20 -o /dev/null \
		-w '%{http_code} %{remote_ip}' "http://web.svc:$TOPO_HTTP_PORT/"
	expect_status "curl http://web.svc/ (search domain)" 0
	expect_eq "curl http://web.svc/ (search domain)" "200 $TOPO_PROV_WEB" "$output"
	grep -q " query\[AAAA\] $TOPO_PROV_WEB_NAME from $TOPO_PROV_CLIENT\$" "$TOPO_PROV_DNS_LOG" ||
		{ echo "the network's name server was not asked from $TOPO_PROV_CLIENT" >&2; false; }
	expect_eq "the outer address wireguard-go saw (localhost)" \
		"$([ "$first" = ::1 ] && echo '[::1]' || echo 127.0.0.1)" "$(peer_endpoint_addr "$ULA_PUB")"

	# shellcheck disable=SC2016
	SHIM_CONF=$ULA_CONF run shim_run "$TOPO_PYTHON" -c '
import socket, sys
name, want, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
for n in (name, name.rsplit(".", 1)[0]):
    ai = socket.getaddrinfo(n, port, 0, socket.SOCK_STREAM)
    got = sorted({(a[0].name, a[4][0]) for a in ai})
    if got != [("AF_INET6", want)]:
        sys.exit(f"getaddrinfo({n}): expected only AAAA {want}, got {got}")
try:
    print("AF_INET:", socket.getaddrinfo(name, port, socket.AF_INET))
    sys.exit(1)
except socket.gaierror:
    pass
with socket.create_connection((name, port), timeout=20) as s:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    head = s.recv(12)
print(head.decode())' "$TOPO_PROV_WEB_NAME" "$TOPO_PROV_WEB" "$TOPO_HTTP_PORT"
	expect_status "python3 getaddrinfo and connect by name" 0
	expect_eq "python3 getaddrinfo and connect by name" "HTTP/1.0 200" "$output"
	expect_no_leak
}

@test "examples/provider-ipv6.conf parses" {
	local example=$SHIM_ROOT/examples/provider-ipv6.conf
	# Installed as a user would (0600): a checkout's 0644 draws the world-accessible warning.
	install -m 600 "$example" "$T/provider-ipv6.conf"
	SHIM_CONF=$T/provider-ipv6.conf TUNSHIM_LOG=error TUNSHIM_LOG_FILE='' run shim_run true
	expect_status "true with the example" 0
	expect_eq "what the library said about the example" "" "$output"
	# The reference: a broken copy is reported as file:line.
	sed 's|^Address = .*|&, fd7a::1/129|' "$example" >"$T/broken.conf"
	chmod 600 "$T/broken.conf"
	SHIM_CONF=$T/broken.conf TUNSHIM_LOG=error TUNSHIM_LOG_FILE='' run shim_run true
	expect_has "a broken copy" "$T/broken.conf:$(grep -n '^Address' "$example" | cut -d: -f1):" \
		"$output"
}

@test "an endpoint given as an IPv6 literal: [::1]:port" {
	local rx0
	expect_has "wireguard-go listens on IPv6" "[::]:$TOPO_PORT" \
		"$(in_client ss -Hlun "sport = :$TOPO_PORT")"
	rx0=$(wg_rx_bytes)
	SHIM_CONF=$V6EP_CONF run shim_run curl -fsS --max-time 20 -o /dev/null -o /dev/null \
		-w '%{http_code}' "http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/" \
		"http://[$TOPO_SERVER_V6]:$TOPO_HTTP_PORT/"
	expect_status "curl with Endpoint = [::1]:$TOPO_PORT" 0
	expect_eq "curl with Endpoint = [::1]:$TOPO_PORT" 200200 "$output"
	expect_tunnel_rx "$rx0"
	expect_eq "the outer address wireguard-go saw" "[::1]" \
		"$(peer_endpoint_addr "$TOPO_CLIENT_PUB")"
}

@test "two peers split a range by longest prefix; the dead one gives EHOSTUNREACH, the other works" {
	local cc
	cc=$(shim_tool connect_check)
	! topo_udp_bound "$TOPO_CLIENT_NS" "$DEAD_PORT" ||
		{ echo "something listens on $DEAD_PORT" >&2; false; }
	shim_quiesce
	# 90 s of handshake attempts at 1/20: the dead peer gives up after 4.5 s. Through the
	# /24 peer (wireguard-go) a connect to $DEAD_V4 would time out after lwIP's SYN
	# retries instead, with ETIMEDOUT.
	TUNSHIM_TIMER_SCALE=0.05 SHIM_CONF=$MULTI_CONF run shim_run "$cc" timeout "$DEAD_V4" \
		"$TOPO_HTTP_PORT" 15 expect=EHOSTUNREACH
	expect_status "connect_check timeout $DEAD_V4 (the /25 peer)" 0
	echo "# $DEAD_V4: $output" >&3
	shim_quiesce
	# shellcheck disable=SC2016
	TUNSHIM_TIMER_SCALE=0.05 SHIM_CONF=$MULTI_CONF run shim_run "$TOPO_PYTHON" -c '
import errno, select, socket, sys, time
live, dead, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def fetch():
    with socket.create_connection((live, port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        if not s.recv(12).startswith(b"HTTP/1.0 200"):
            sys.exit("a fetch from " + live + " failed")
d = socket.socket()
d.setblocking(False)
t0 = time.monotonic()
rc = d.connect_ex((dead, port))
if rc != errno.EINPROGRESS:
    sys.exit(f"connect to {dead}: {errno.errorcode.get(rc, rc)}, not EINPROGRESS")
during = 0
while True:
    fetch()
    during += 1
    if select.select([], [d], [], 0.3)[1]:
        break
    if time.monotonic() - t0 > 20:
        sys.exit(f"no outcome for {dead} after 20 s")
waited = time.monotonic() - t0
err = d.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
for i in range(3):
    fetch()
print(f"{errno.errorcode.get(err, err)} after {waited:.1f} s; {during} fetches during, 3 after")
' "$TOPO_SERVER_V4" "$DEAD_V4" "$TOPO_HTTP_PORT"
	expect_status "one process: a connect to the dead peer, fetches through the live one" 0
	echo "# $output" >&3
	expect_has "SO_ERROR of the connect to $DEAD_V4" "EHOSTUNREACH after" "$output"
	local waited during
	waited=$(sed -n 's/.* after \([0-9]*\)\..* s;.*/\1/p' <<<"$output")
	during=$(sed -n 's/.*; \([0-9]*\) fetches during.*/\1/p' <<<"$output")
	# The outcome comes when the handshake is given up (4.5 s), not at once.
	expect_ge "seconds until EHOSTUNREACH" 3 "$waited"
	expect_ge "fetches from $TOPO_SERVER_V4 while waiting" 5 "$during"
}

@test "the gateway's hostname moves while handshakes fail: it is resolved again" {
	local t0 rc=0
	topo_prov_silent "$GONE_V4"
	topo_prov_hosts "$GONE_V4 $GW_NAME"
	expect_eq "$GW_NAME in the namespace's /etc/hosts" "$GONE_V4" \
		"$(in_client getent hosts "$GW_NAME" | awk '{ print $1 }')"
	shim_quiesce
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2016
	TUNSHIM_TIMER_SCALE=0.05 SHIM_CONF=$MOVE_CONF shim_spawn mover timeout -k 2 30 \
		"$TOPO_PYTHON" -u -c '
import socket, sys, time
addr, port = sys.argv[1], int(sys.argv[2])
t0 = time.monotonic()
n = 0
while time.monotonic() - t0 < 20:
    n += 1
    try:
        with socket.create_connection((addr, port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            head = s.recv(12)
        print(f"attempt {n}: {head.decode()} after {time.monotonic() - t0:.1f} s")
        sys.exit(0)
    except OSError as e:
        print(f"attempt {n}: {e.strerror} after {time.monotonic() - t0:.1f} s")
        time.sleep(0.2)
sys.exit(1)' "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT" || return
	local pid=$TOPO_SPAWNED
	topo_wait_until 15 grep -q '^attempt 1: ' "$TOPO_DIR/mover.log" ||
		{ echo "no first attempt after 15 s" >&2; cat "$TOPO_DIR/mover.log" >&2; false; }
	echo "# $(ms_since "$t0") ms: $(head -n 1 "$TOPO_DIR/mover.log")" >&3
	expect_lacks "the first attempt, to $GONE_V4" "HTTP/1.0 200" "$(cat "$TOPO_DIR/mover.log")"
	# The gateway moved: the name now points where wireguard-go listens.
	topo_prov_hosts "127.0.0.1 $GW_NAME"
	expect_eq "$GW_NAME in the namespace's /etc/hosts" 127.0.0.1 \
		"$(in_client getent hosts "$GW_NAME" | awk '{ print $1 }')"
	topo_reap mover "$pid" || rc=$?
	echo "# $(tail -n 1 "$TOPO_DIR/mover.log")" >&3
	expect_eq "the fetch loop's exit status ($(tr '\n' ';' <"$TOPO_DIR/mover.log"))" 0 "$rc"
	expect_has "the fetch loop" "HTTP/1.0 200" "$(cat "$TOPO_DIR/mover.log")"
	expect_eq "the outer address wireguard-go saw" 127.0.0.1 \
		"$(peer_endpoint_addr "$TOPO_CLIENT_PUB")"
}
