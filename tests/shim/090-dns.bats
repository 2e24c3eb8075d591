#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# DNS through the tunnel (`DNS =` in the config). A dnsmasq behind the wireguard-go peer
# knows names nobody else knows (tests/lib/topology.bash, topo_dns_up); the client
# namespace's resolv.conf names a decoy resolver on its own loopback that must never see
# a query while `DNS =` is set. Real programs: curl and python3 by name over IPv4 and
# IPv6, getent (getaddrinfo, gethostbyname2, gethostbyaddr), dig with no server argument
# (its own DNS, redirected), and the getaddrinfo contract as python3 sees it; lookups from
# several threads, also under a ThreadSanitizer build of the library.

load helpers

WEB=web.$TOPO_DNS_DOMAIN

setup_file() {
	shim_setup_file || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	topo_dns_up || return
	topo_dns_conf dns "$TOPO_SERVER_V4, $TOPO_SERVER_V6, $TOPO_DNS_DOMAIN" || return
	DNS_CONF=$TOPO_NEW_CONF
	topo_dns_conf dns6 "$TOPO_SERVER_V6" || return
	DNS6_CONF=$TOPO_NEW_CONF
	topo_dns_conf dead "$TOPO_DNS_DEAD, $TOPO_SERVER_V4, $TOPO_DNS_DOMAIN" || return
	DEAD_CONF=$TOPO_NEW_CONF
	topo_dns_conf allDead "$TOPO_DNS_DEAD" || return
	ALL_DEAD_CONF=$TOPO_NEW_CONF
	topo_dns_conf local "$TOPO_DNS_LOCAL, $TOPO_DNS_DOMAIN" || return
	LOCAL_CONF=$TOPO_NEW_CONF
	export DNS_CONF DNS6_CONF DEAD_CONF ALL_DEAD_CONF LOCAL_CONF
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
	SHIM_CONF=$DNS_CONF
	export SHIM_CONF
	DECOY0=$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")
}

teardown() {
	shim_teardown
}

# No query reached the host's resolver during the test.
expect_no_leak() {
	local now
	now=$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")
	[ "$now" = "$DECOY0" ] && return 0
	echo "the host's resolver (the decoy) got $((now - DECOY0)) queries:" >&2
	grep ' query\[' "$TOPO_DNS_DECOY_LOG" | tail -n $((now - DECOY0)) >&2
	return 1
}

# The tunnel's DNS server got queries for NAME.
expect_asked() {
	grep -q " query\[[A-Z]*\] $1 from " "$TOPO_DNS_LOG" && return 0
	echo "the tunnel's DNS server was never asked for $1" >&2
	return 1
}

@test "reference: the names exist only in the tunnel's DNS; the decoy sees a leak" {
	run plain_run getent ahosts "$WEB"
	expect_status "getent ahosts $WEB without the shim" 2
	# Without DNS = the host resolver is used as before: the decoy gets the query.
	SHIM_CONF=$TOPO_CONF run shim_run getent ahosts "$WEB"
	expect_status "getent ahosts $WEB with a config without DNS =" 2
	expect_ge "queries the decoy saw" $((DECOY0 + 1)) "$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")"
	# libc's res_query too: it has sockets of its own, which no preload sees.
	DECOY0=$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")
	SHIM_CONF=$TOPO_CONF run res_calls
	expect_ge "queries the decoy saw from res_query" $((DECOY0 + 1)) \
		"$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")"
	topo_dns_queries "$TOPO_DNS_DECOY_LOG" >"$TOPO_DIR/decoy-reference"
}

@test "curl by name over IPv4 and IPv6, through an IPv4 and an IPv6 DNS server" {
	local conf
	for conf in "$DNS_CONF" "$DNS6_CONF"; do
		SHIM_CONF=$conf run shim_run curl -4 -sS --max-time 20 -o /dev/null \
			-w '%{http_code} %{remote_ip}' "http://$WEB:$TOPO_HTTP_PORT/"
		expect_status "curl -4 ($conf)" 0
		expect_eq "curl -4 ($conf)" "200 $TOPO_SERVER_V4" "$output"
		SHIM_CONF=$conf run shim_run curl -6 -sS --max-time 20 -o /dev/null \
			-w '%{http_code} %{remote_ip}' "http://$WEB:$TOPO_HTTP_PORT/"
		expect_status "curl -6 ($conf)" 0
		expect_eq "curl -6 ($conf)" "200 $TOPO_SERVER_V6" "$output"
	done
	expect_asked "$WEB"
	expect_no_leak
}

@test "python3 by name: getaddrinfo, connect, HTTP GET, for each family" {
	# shellcheck disable=SC2016
	run shim_run "$TOPO_PYTHON" -c '
import socket, sys
name, port, want4, want6 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
for fam, want in ((socket.AF_INET, want4), (socket.AF_INET6, want6)):
    ai = socket.getaddrinfo(name, port, fam, socket.SOCK_STREAM)
    addr = ai[0][4]
    if addr[0] != want:
        sys.exit(f"{fam.name}: expected {want}, got {ai}")
    with socket.create_connection(addr[:2], timeout=20) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        head = s.recv(64)
    if not head.startswith(b"HTTP/1.0 200"):
        sys.exit(f"{fam.name}: {head!r}")
print("OK")' "$WEB" "$TOPO_HTTP_PORT" "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"
	expect_status "python3 client" 0
	expect_eq "python3 client" OK "$output"
	expect_no_leak
}

@test "a CNAME chain, a name with only AAAA, a name that does not exist" {
	run shim_run getent ahosts "alias.$TOPO_DNS_DOMAIN"
	expect_status "getent ahosts alias" 0
	# AI_CANONNAME: the end of the chain, on the first line.
	expect_eq "first line" "$TOPO_SERVER_V6     STREAM $WEB" "${lines[0]}"
	expect_has "getent ahosts alias" "$TOPO_SERVER_V4 " "$output"
	run shim_run getent ahosts "v6only.$TOPO_DNS_DOMAIN"
	expect_status "getent ahosts v6only" 0
	expect_eq "v6only" "$TOPO_DNS_V6ONLY     STREAM v6only.$TOPO_DNS_DOMAIN" "${lines[0]}"
	run shim_run getent ahostsv4 "v6only.$TOPO_DNS_DOMAIN"
	expect_status "getent ahostsv4 v6only (no A record)" 2
	run shim_run "$TOPO_PYTHON" -c '
import socket, sys
for name in sys.argv[1:]:
    try:
        socket.getaddrinfo(name, 80)
        sys.exit(f"{name}: resolved")
    except socket.gaierror as e:
        print(e.errno, end=" ")' "nope.$TOPO_DNS_DOMAIN" "nope.$TOPO_DNS_DOMAIN."
	expect_status "python3 on a missing name" 0
	expect_eq "EAI_NONAME twice" "-2 -2 " "$output"
	expect_no_leak
}

@test "a truncated answer is asked again over TCP: all $TOPO_DNS_MANY addresses" {
	local many=many.$TOPO_DNS_DOMAIN
	run shim_run getent ahostsv4 "$many"
	expect_status "getent ahostsv4 $many" 0
	# Over UDP without EDNS the answer holds 29 of them, with TC set.
	expect_eq "distinct addresses" "$TOPO_DNS_MANY" \
		"$(awk '{ print $1 }' <<<"$output" | sort -u | wc -l)"
	expect_no_leak
}

@test "a dead first DNS server costs one timeout per process; a dead one alone, EAI_AGAIN" {
	local t0 ms
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2016
	SHIM_CONF=$DEAD_CONF run shim_run "$TOPO_PYTHON" -c '
import socket, sys
for i in range(3):
    ai = socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM)
    print(ai[0][4][0])' "$WEB"
	ms=$(ms_since "$t0")
	expect_status "python3 with a dead first server" 0
	expect_eq "three lookups" "$TOPO_SERVER_V4 $TOPO_SERVER_V4 $TOPO_SERVER_V4" "${lines[*]}"
	[ "$ms" -lt 4000 ] || { echo "three lookups took $ms ms (one 1 s timeout expected)" >&2; false; }
	SHIM_CONF=$DEAD_CONF run shim_run curl -sS --max-time 20 -o /dev/null -w '%{http_code}' \
		"http://web:$TOPO_HTTP_PORT/"
	expect_eq "curl with a dead first server" 200 "$output"
	t0=$EPOCHREALTIME
	SHIM_CONF=$ALL_DEAD_CONF run shim_run "$TOPO_PYTHON" -c '
import socket, sys
try:
    socket.getaddrinfo(sys.argv[1], 80)
except socket.gaierror as e:
    print(e.errno)' "$WEB"
	ms=$(ms_since "$t0")
	expect_eq "nobody answers: EAI_AGAIN" -3 "$output"
	[ "$ms" -lt 5000 ] || { echo "the failure took $ms ms (2 s expected)" >&2; false; }
	expect_no_leak
}

@test "search domains with ndots: short names get the domain of DNS =" {
	run shim_run curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "http://web:$TOPO_HTTP_PORT/"
	expect_status "curl http://web/" 0
	expect_eq "curl http://web/" 200 "$output"
	run shim_run getent ahosts alias
	expect_status "getent ahosts alias" 0
	expect_eq "canonical name" "$TOPO_SERVER_V6     STREAM $WEB" "${lines[0]}"
	expect_no_leak
}

@test "getent through the shim: ahosts, hosts (gethostbyname2), reverse, /etc/hosts first" {
	run shim_run getent ahosts "$WEB"
	expect_status "getent ahosts" 0
	expect_eq "getent ahosts: six lines (two addresses, three socktypes)" 6 "${#lines[@]}"
	expect_has "getent ahosts" "$TOPO_SERVER_V4  " "$output"
	run shim_run getent hosts "$WEB"
	expect_status "getent hosts" 0
	expect_eq "getent hosts" "$TOPO_SERVER_V6     $WEB" "$output"
	run shim_run getent ahosts "$TOPO_DNS_HOSTS_NAME"
	expect_status "a name of /etc/hosts" 0
	expect_has "a name of /etc/hosts" "10.200.0.1" "$output"
	run grep -c "$TOPO_DNS_HOSTS_NAME" "$TOPO_DNS_LOG"
	expect_eq "queries to the DNS server for a name of /etc/hosts" 0 "$output"
	# Reverse: the IPv6 address is not in /etc/hosts, so a PTR through the tunnel.
	run shim_run getent hosts "$TOPO_SERVER_V6"
	expect_status "getent hosts $TOPO_SERVER_V6" 0
	expect_eq "gethostbyaddr" "$TOPO_SERVER_V6     $WEB" "$output"
	expect_no_leak
}

@test "dig with no server argument is answered by the tunnel's DNS (UDP, TCP, truncated)" {
	run shim_run dig +time=3 +tries=1 +short "$WEB"
	expect_status "dig" 0
	expect_eq "dig A" "$TOPO_SERVER_V4" "$output"
	run shim_run dig +time=3 +tries=1 +tcp +short AAAA "$WEB"
	expect_eq "dig +tcp AAAA" "$TOPO_SERVER_V6" "$output"
	run shim_run dig +time=3 +tries=1 +noedns "many.$TOPO_DNS_DOMAIN"
	expect_status "dig +noedns many" 0
	expect_has "dig many" "Truncated, retrying in TCP mode" "$output"
	expect_has "dig many" "ANSWER: $TOPO_DNS_MANY," "$output"
	# The answers seem to come from the nameserver dig asked.
	expect_has "dig's server" "SERVER: $TOPO_DNS_DECOY#53($TOPO_DNS_DECOY) (TCP)" "$output"
	expect_no_leak
}

@test "dig with no server argument under an IPv6-only DNS = (the host's nameserver is IPv4)" {
	# The provider shape: the tunnel's DNS is IPv6 only, dig asks its IPv4 nameserver from
	# an IPv4 socket. The tunnel carries the query to the IPv6 server all the same.
	SHIM_CONF=$DNS6_CONF run shim_run dig +time=3 +tries=1 +short "$WEB"
	expect_status "dig" 0
	expect_eq "dig A through an IPv6 DNS server" "$TOPO_SERVER_V4" "$output"
	SHIM_CONF=$DNS6_CONF run shim_run dig +time=3 +tries=1 +tcp +short AAAA "$WEB"
	expect_eq "dig +tcp AAAA through an IPv6 DNS server" "$TOPO_SERVER_V6" "$output"
	expect_no_leak
}

# res_query, res_search, res_querydomain and res_send, called as a C program would (the
# global scope, where the shim comes first): NAME answers N (the answer count or the
# length for res_send), or -1.
res_calls() {
	# shellcheck disable=SC2016
	shim_run "$TOPO_PYTHON" -c '
import ctypes, struct, sys
libc = ctypes.CDLL(None)
web, domain = sys.argv[1], sys.argv[2]
buf = ctypes.create_string_buffer(4096)
def count(n):
    return struct.unpack(">H", buf.raw[6:8])[0] if n > 0 else n
out = []
for fn, name, qtype in (("res_query", web, 1), ("__res_query", web, 28), ("res_search", "alias", 1),
                        ("res_query", web, 15), ("res_query", "nope." + domain, 1)):
    f = getattr(libc, fn)
    out.append(f"{fn}({name},{qtype})={count(f(name.encode(), 1, qtype, buf, 4096))}")
n = libc.res_querydomain(b"web", domain.encode(), 1, 1, buf, 4096)
out.append(f"res_querydomain={count(n)}")
q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
for label in web.split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", 28, 1)
n = libc.res_send(q, len(q), buf, 4096)
ok = n > 0 and buf.raw[:2] == b"BB" and count(n)
out.append(f"res_send={ok}")
print(" ".join(out))' "$WEB" "$TOPO_DNS_DOMAIN"
}

@test "res_query, res_search, res_querydomain, res_send ask the tunnel's DNS" {
	run res_calls
	expect_status "res_* calls" 0
	expect_eq "res_* calls" "res_query($WEB,1)=1 __res_query($WEB,28)=1 res_search(alias,1)=3 \
res_query($WEB,15)=-1 res_query(nope.$TOPO_DNS_DOMAIN,1)=-1 res_querydomain=1 res_send=1" "$output"
	expect_no_leak
}

# A program's own DNS, as c-ares or a language runtime speaks it: unconnected (sendto,
# recvfrom, recvmsg) and connected (getpeername, recv) sockets, IPv4 and IPv6 (mapped).
own_dns() {
	# shellcheck disable=SC2016
	shim_run "$TOPO_PYTHON" -c '
import socket, struct, sys
name, ns = sys.argv[1], sys.argv[2]
def query(qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)
def check(what, data, src, want, qid):
    qd, an = struct.unpack(">HH", data[4:8])
    if src != want or data[:2] != struct.pack(">H", qid) or an < 1:
        sys.exit(f"{what}: {len(data)} bytes from {src}, id {data[:2].hex()}, {an} answers")
for fam, to in ((socket.AF_INET, (ns, 53)), (socket.AF_INET6, ("::ffff:" + ns, 53, 0, 0))):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(query(1), to)
    data, src = s.recvfrom(2048)
    check(f"{fam.name} recvfrom", data, src, to, 1)
    s.sendto(query(2), to)
    data, anc, flags, src = s.recvmsg(2048)
    check(f"{fam.name} recvmsg", data, src, to, 2)
    s.close()
    c = socket.socket(fam, socket.SOCK_DGRAM)
    c.settimeout(5)
    c.connect(to)
    if c.getpeername() != to:
        sys.exit(f"{fam.name} getpeername: {c.getpeername()}")
    c.send(query(3))
    data, src = c.recvfrom(2048)
    check(f"{fam.name} connected", data, src, to, 3)
    c.close()
print("OK")' "$WEB" "$TOPO_DNS_DECOY"
}

@test "a program's own DNS to the host's nameserver goes to the tunnel's, answers seem not to" {
	run own_dns
	expect_status "own DNS through the tunnel" 0
	expect_eq "own DNS through the tunnel" OK "$output"
	expect_no_leak
}

@test "a DNS = server outside AllowedIPs is reached over the host network" {
	local n0
	n0=$(topo_dns_queries "$TOPO_DNS_LOCAL_LOG")
	SHIM_CONF=$LOCAL_CONF run shim_run getent ahosts "$WEB"
	expect_status "getent ahosts" 0
	expect_eq "getent ahosts: six lines" 6 "${#lines[@]}"
	SHIM_CONF=$LOCAL_CONF run shim_run dig +time=3 +tries=1 +short "$WEB"
	expect_eq "dig" "$TOPO_SERVER_V4" "$output"
	SHIM_CONF=$LOCAL_CONF run own_dns
	expect_eq "own DNS over the host network" OK "$output"
	expect_ge "queries at $TOPO_DNS_LOCAL" $((n0 + 8)) "$(topo_dns_queries "$TOPO_DNS_LOCAL_LOG")"
	expect_no_leak
}

@test "the getaddrinfo contract, as python3 sees it" {
	# shellcheck disable=SC2016
	run shim_run "$TOPO_PYTHON" -c '
import socket, sys
name, v4, v6 = sys.argv[1:4]
def err(f):
    try:
        f()
        return "ok"
    except socket.gaierror as e:
        return e.errno
checks = []
# No socktype: one result per socktype (stream, dgram, raw) for each address.
ai = socket.getaddrinfo(name, None)
checks.append(("results", len(ai), 6))
checks.append(("socktypes", sorted({a[1] for a in ai}),
               sorted([socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW])))
# A service name, from /etc/services.
ai = socket.getaddrinfo(name, "http", socket.AF_INET, socket.SOCK_STREAM)
checks.append(("service http", ai[0][4], (v4, 80)))
checks.append(("bad service", err(lambda: socket.getaddrinfo(name, "nosuchservice")),
               socket.EAI_SERVICE))
checks.append(("AI_NUMERICSERV", err(lambda: socket.getaddrinfo(name, "http", 0, 0, 0,
               socket.AI_NUMERICSERV)), socket.EAI_NONAME))
checks.append(("AI_NUMERICHOST", err(lambda: socket.getaddrinfo(name, 80, 0, 0, 0,
               socket.AI_NUMERICHOST)), socket.EAI_NONAME))
checks.append(("bad family", err(lambda: socket.getaddrinfo(name, 80, socket.AF_UNIX)),
               socket.EAI_FAMILY))
ai = socket.getaddrinfo(name, 80, socket.AF_INET6, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
checks.append(("AI_CANONNAME", (ai[0][3], ai[0][4][0]), (name, v6)))
# AI_ADDRCONFIG: this namespace has only loopback; the tunnel addresses count.
ai = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
checks.append(("AI_ADDRCONFIG", ai[0][4][0], v4))
# AI_V4MAPPED on a name with only IPv4 (its /etc/hosts entry).
ai = socket.getaddrinfo(sys.argv[4], 80, socket.AF_INET6, socket.SOCK_STREAM, 0,
                        socket.AI_V4MAPPED)
checks.append(("AI_V4MAPPED", ai[0][4][0], "::ffff:10.200.0.1"))
checks.append(("numeric host", socket.getaddrinfo("10.200.0.9", 80, socket.AF_INET)[0][4],
               ("10.200.0.9", 80)))
checks.append(("gethostbyname", socket.gethostbyname(name), v4))
checks.append(("gethostbyname_ex alias", socket.gethostbyname_ex("alias")[:2],
               (name, ["alias." + name.split(".", 1)[1]])))
checks.append(("getnameinfo", socket.getnameinfo((v6, 80), 0), (name, "http")))
checks.append(("getnameinfo NOFQDN", socket.getnameinfo((v6, 80), socket.NI_NOFQDN)[0], "web"))
checks.append(("getnameinfo NAMEREQD", err(lambda: socket.getnameinfo(("10.200.0.99", 80),
               socket.NI_NAMEREQD)), socket.EAI_NONAME))
checks.append(("getnameinfo numeric fallback", socket.getnameinfo(("10.200.0.99", 80), 0)[0],
               "10.200.0.99"))
bad = [f"{what}: expected {want!r}, got {got!r}" for what, got, want in checks if got != want]
print("\n".join(bad) or "OK")' "$WEB" "$TOPO_SERVER_V4" "$TOPO_SERVER_V6" "$TOPO_DNS_HOSTS_NAME"
	expect_status "python3 getaddrinfo checks" 0
	expect_eq "python3 getaddrinfo checks" OK "$output"
	expect_no_leak
}

# threaded_lookups RUNNER: 40 lookups from 8 python3 threads at once, run by RUNNER
# (shim_run, tsan_run); prints "OK 40" when every name got the same answers each time.
threaded_lookups() {
	# shellcheck disable=SC2016
	"$1" "$TOPO_PYTHON" -c '
import socket, sys
from concurrent.futures import ThreadPoolExecutor
names = [sys.argv[1], "alias", "v6only." + sys.argv[2], sys.argv[3]] * 10
def one(n):
    return n, sorted({a[4][0] for a in socket.getaddrinfo(n, 80, 0, socket.SOCK_STREAM)})
with ThreadPoolExecutor(8) as ex:
    got = list(ex.map(one, names))
if len({tuple(a) for n, a in got if n == names[0]}) != 1 or any(not a for n, a in got):
    sys.exit(f"inconsistent answers: {got}")
print("OK", len(got))' "$WEB" "$TOPO_DNS_DOMAIN" "$TOPO_DNS_HOSTS_NAME"
}

@test "lookups from 8 threads at once" {
	run threaded_lookups shim_run
	expect_status "8 threads" 0
	expect_eq "8 threads" "OK 40" "$output"
	expect_no_leak
}

@test "lookups from 8 threads at once, under ThreadSanitizer: no report" {
	shim_tsan_require
	run threaded_lookups tsan_run
	expect_no_tsan_report "8 threads"
	expect_status "8 threads under TSan" 0
	expect_eq "8 threads under TSan" "OK 40" "$output"
	expect_no_leak
}

@test "an unusable config: lookups fail, nothing leaks; /etc/hosts still answers" {
	echo "[Interface]" >"$T/broken.conf"
	echo "PrivateKey = not-a-key" >>"$T/broken.conf"
	chmod 600 "$T/broken.conf"
	SHIM_CONF=$T/broken.conf run shim_run getent ahosts "$WEB"
	expect_status "getent ahosts with an unusable config" 2
	SHIM_CONF=$T/broken.conf run shim_run dig +time=1 +tries=1 "$WEB"
	[ "$status" -ne 0 ] || { echo "dig answered with an unusable config: $output" >&2; false; }
	SHIM_CONF=$T/broken.conf run shim_run getent ahosts localhost
	expect_status "localhost from /etc/hosts" 0
	expect_no_leak
}

@test "the host's resolver (the decoy) saw nothing but the reference test's queries" {
	expect_eq "queries at the decoy" "$(cat "$TOPO_DIR/decoy-reference")" \
		"$(topo_dns_queries "$TOPO_DNS_DECOY_LOG")"
}
