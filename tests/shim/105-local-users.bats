#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Another local user against a wrapped server (issue 10, items 1 to 4). The wrapped
# server runs as root in the client namespace with a tunnel port; tunnel clients come from
# the server namespace (10.200.0.1); the attacker is `nobody`, on the client namespace's
# loopback, without the library. Each test plays one attack and asserts that it fails:
#
#   posing as a tunnel peer   nobody connects from every kind of loopback address, from
#                             the stack's ports read in /proc/net/tcp, and from the ports
#                             the doorbells used (the log): the server's accept reports
#                             nobody's own address
#   taking a tunnel port      the wrapped server is killed while the session lives on in
#                             another process; nobody binds its port: the next tunnel
#                             client is reset at once and nobody reads nothing of it; the
#                             server, restarted, gets its tunnel clients again
#   squatting the runtime dir nobody owns the directory the library would use: it says
#                             so at the default log level, and peer identity still holds
#   reading or forging names  the abstract names of tunnelled sockets (/proc/net/unix)
#                             hold no tunnel address; a socket with a forged name passed
#                             into a wrapped program is not taken for a tunnel connection

load helpers

WHO_PORT=9301
WHO6_PORT=9302
TUN4=10.200.0.2
TUN6=fd00:200::2

setup_file() {
	shim_setup_file || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	command -v setpriv >/dev/null || return 0
	# Scripts nobody can read: a world-traversable directory of our own.
	LU_DIR=$(mktemp -d /tmp/tunshim-105.XXXXXX)
	chmod 1777 "$LU_DIR"
	lu_write_py >"$LU_DIR/lu.py"
	chmod 644 "$LU_DIR/lu.py"
	export LU_DIR
}

teardown_file() {
	[ -z "${LU_DIR:-}" ] || rm -rf "$LU_DIR"
	shim_teardown_file
}

setup() {
	shim_setup
	command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
	LU_NAMES=$T/names
	: >"$LU_NAMES"
}

teardown() {
	local name
	while read -r name; do
		topo_stop "$name"
	done <"$LU_NAMES"
	shim_teardown
}

# ---- helpers of this file ----

lu_py() {
	echo "$TOPO_PYTHON $LU_DIR/lu.py"
}

# lu_spawn NAME ARGS...: lu.py wrapped, in the background; waits for its "ready".
lu_spawn() {
	local name=$1
	shift
	echo "$name" >>"$LU_NAMES"
	shim_spawn "$name" "$TOPO_PYTHON" -u "$LU_DIR/lu.py" "$@" || return
	topo_wait_until 15 grep -q '^ready' "$TOPO_DIR/$name.log" ||
		topo_fail "$name did not start: $(tail -n 5 "$TOPO_DIR/$name.log")"
}

# as_nobody ARGS...: lu.py as nobody in the client namespace, without the library.
as_nobody() {
	in_client timeout -k 3 30 setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$TOPO_PYTHON" "$LU_DIR/lu.py" "$@"
}

# tunnel_client HOST PORT: what the wrapped server says to a client from the server
# namespace (through wireguard-go's TUN), or the error the client got.
tunnel_client() {
	in_server timeout -k 3 30 "$TOPO_PYTHON" "$LU_DIR/lu.py" ask "$1" "$2"
}

# The session lives on in a process of its own: a wrapped keeper that made a tunnel
# connection first (it holds the session; servers started after it attach to it).
lu_keeper() {
	lu_spawn keeper hold "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT"
}

# ---- posing as a tunnel peer ----

@test "another user connecting from 127.0.0.1, 127.0.0.2, 127.9.8.7 and ::1 is reported as itself, never as a tunnel peer" {
	local src out
	lu_spawn who who "$WHO_PORT" "$WHO6_PORT"
	run tunnel_client "$TUN4" "$WHO_PORT"
	expect_eq "a real tunnel client (IPv4)" "peer $TOPO_SERVER_V4" "$output"
	run tunnel_client "$TUN6" "$WHO6_PORT"
	expect_eq "a real tunnel client (IPv6)" "peer $TOPO_SERVER_V6" "$output"
	for src in 127.0.0.1 127.0.0.2 127.9.8.7; do
		run as_nobody ask 127.0.0.1 "$WHO_PORT" "$src"
		expect_eq "nobody from $src" "peer $src" "$output"
	done
	run as_nobody ask ::1 "$WHO6_PORT" ::1
	expect_eq "nobody from ::1" "peer ::1" "$output"
}

@test "another user who reads the stack's loopback ports from /proc/net/tcp and connects from them is reported as itself" {
	local client
	lu_spawn who who "$WHO_PORT" "$WHO6_PORT"
	tunnel_client "$TUN4" "$WHO_PORT" >"$T/tunnel.out" &
	client=$!
	topo_wait_until 10 grep -q . "$T/tunnel.out"
	run as_nobody pose "$WHO_PORT"
	wait "$client"
	expect_eq "the tunnel client" "peer $TOPO_SERVER_V4" "$(cat "$T/tunnel.out")"
	[ "$output" != "no ports" ] || { echo "nobody found no stack port to pose from" >&2; false; }
	expect_lacks "what the server told nobody" "$TOPO_SERVER_V4" "$output"
	expect_eq "what the server told nobody" "" "$(grep -v '^peer 127.0.0.2$' <<<"$output")"
}

@test "another user bound to the loopback ports the stack's doorbells came from is reported as itself" {
	local port ports n=0
	lu_spawn who who "$WHO_PORT" "$WHO6_PORT"
	for _ in 1 2 3; do
		run tunnel_client "$TUN4" "$WHO_PORT"
		expect_eq "a tunnel client" "peer $TOPO_SERVER_V4" "$output"
	done
	ports=$(sed -n "s/.*doorbell from loopback port \([0-9]*\) to port $WHO_PORT$/\1/p" "$SHIM_LOG")
	[ -n "$ports" ] || { echo "no doorbell ports in the log" >&2; false; }
	# The exact four-tuple is the stack's until its TIME_WAIT ends (the kernel refuses
	# it: EADDRINUSE); the same port from another loopback address gets through, as
	# itself.
	for port in $ports; do
		run as_nobody ask 127.0.0.1 "$WHO_PORT" 127.0.0.1 "$port"
		[ "$output" = "error EADDRINUSE" ] ||
			expect_eq "nobody from 127.0.0.1:$port" "peer 127.0.0.1" "$output"
		run as_nobody ask 127.0.0.1 "$WHO_PORT" 127.0.0.2 "$port"
		expect_eq "nobody from 127.0.0.2:$port" "peer 127.0.0.2" "$output"
		n=$((n + 1))
	done
	[ "$n" -ge 3 ]
}

# ---- taking a tunnel port ----

@test "a killed server's port taken by another user: the next tunnel client is reset at once and the taker reads nothing" {
	local t0 ms squatter
	lu_keeper
	lu_spawn who who "$WHO_PORT" "$WHO6_PORT"
	run tunnel_client "$TUN4" "$WHO_PORT"
	expect_eq "before" "peer $TOPO_SERVER_V4" "$output"
	topo_stop who
	as_nobody squat "$WHO_PORT" "$LU_DIR/squat.ready" >"$T/squat.out" 2>&1 &
	squatter=$!
	topo_wait_until 10 test -e "$LU_DIR/squat.ready" || { cat "$T/squat.out" >&2; false; }
	rm -f "$LU_DIR/squat.ready"
	t0=$EPOCHREALTIME
	run tunnel_client "$TUN4" "$WHO_PORT"
	ms=$(ms_since "$t0")
	wait "$squatter"
	expect_has "the tunnel client" "error" "$output"
	expect_le "ms until the tunnel client's error" 3000 "$ms"
	expect_lacks "what the taker read" "bytes=[1-9]" "$(cat "$T/squat.out")"
	grep -q "the listener on its loopback port is another user's" "$SHIM_LOG"
}

@test "the restarted server gets its tunnel clients again" {
	lu_keeper
	lu_spawn who who "$WHO_PORT" "$WHO6_PORT"
	topo_stop who
	lu_spawn who2 who "$WHO_PORT" "$WHO6_PORT"
	run tunnel_client "$TUN4" "$WHO_PORT"
	expect_eq "after the restart" "peer $TOPO_SERVER_V4" "$output"
}

# ---- squatting the runtime directory ----

@test "a runtime directory owned by another user: refused, said at the default log level, and peers are still told apart" {
	local xdg=$T/xdg
	mkdir -p "$xdg/tunshim"
	chmod 755 "$xdg"
	chown nobody "$xdg/tunshim"
	chmod 777 "$xdg/tunshim"
	SHIM_RUNTIME_ORIG=$SHIM_RUNTIME
	SHIM_RUNTIME=$xdg TUNSHIM_LOG=error lu_spawn who who "$WHO_PORT" "$WHO6_PORT"
	SHIM_RUNTIME=$SHIM_RUNTIME_ORIG
	run tunnel_client "$TUN4" "$WHO_PORT"
	expect_eq "a tunnel client" "peer $TOPO_SERVER_V4" "$output"
	run as_nobody ask 127.0.0.1 "$WHO_PORT" 127.0.0.1
	expect_eq "nobody on loopback" "peer 127.0.0.1" "$output"
	expect_has "the log at its default level" "$xdg/tunshim is not a private directory" \
		"$(cat "$SHIM_LOG")"
	[ -z "$(ls -A "$xdg/tunshim")" ] || { ls -l "$xdg/tunshim" >&2; false; }
}

# ---- reading or forging names ----

@test "/proc/net/unix, which every user reads, shows no tunnel address in the names of tunnelled sockets" {
	local pid
	lu_spawn holder hold "$TOPO_SERVER_V4" "$TOPO_HTTP_PORT"
	pid=$(pgrep -f "lu.py hold" | head -n 1)
	[ -n "$pid" ]
	# Root finds the holder's sockets; the names are what /proc/net/unix shows anyone.
	run plain_run "$TOPO_PYTHON" "$LU_DIR/lu.py" names "$pid" "$TOPO_SERVER_V4"
	expect_eq "the holder's named sockets, and names holding the address" "names=1 clear=0" \
		"$output"
	run as_nobody readable
	expect_eq "nobody reads /proc/net/unix" "readable" "$output"
}

@test "a socket with a forged name passed into a wrapped program is not taken for a tunnel connection" {
	run shim_run "$TOPO_PYTHON" "$LU_DIR/lu.py" forged
	expect_status "lu.py forged" 0
	expect_eq "what the wrapped program sees" "forged: AF_UNIX AF_UNIX AF_UNIX" "$output"
}

lu_write_py() {
	cat <<'PY'
"""105-local-users.bats' programs. Numeric addresses only.

  who P4 P6            (wrapped) TCP on 0.0.0.0:P4 and [::]:P6 (v6only): to each client
                       "peer ADDR\n", then close; prints "ready"
  hold HOST PORT       (wrapped) connects to HOST:PORT (so it holds the session), prints
                       "ready", sleeps
  ask HOST PORT [SRC [SPORT]]  connects (from SRC:SPORT), prints the line it got, or
                       "error NAME"
  pose PORT            reads the loopback ports connected to PORT from /proc/net/tcp and
                       asks from each (on 127.0.0.2)
  squat PORT READY     listens on 0.0.0.0:PORT with SO_REUSEADDR, touches READY, accepts
                       for 5 s and prints "conn bytes=N" per connection
  names PID HOST       reads /proc/net/unix: whether PID has named sockets, and how often
                       HOST's address bytes appear in it
  readable             prints "readable" if /proc/net/unix can be read
  forged               (wrapped) gets socketpair ends named as the library once named its
                       own (and with random bytes behind the new magic), prints each's
                       family as getpeername reports it
"""
import errno, os, socket, subprocess, sys, threading, time


def who(p4, p6):
    l4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l4.bind(("0.0.0.0", int(p4)))
    l4.listen(64)
    l6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    l6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    l6.bind(("::", int(p6)))
    l6.listen(64)
    print("ready", flush=True)
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(l4, selectors.EVENT_READ)
    sel.register(l6, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            c, a = key.fileobj.accept()
            c.sendall(("peer %s\n" % a[0]).encode())
            # Open a while: the stack's loopback side of it is there to be seen.
            threading.Timer(3, c.close).start()


def hold(host, port):
    s = socket.create_connection((host, int(port)), timeout=20)
    print("ready", flush=True)
    time.sleep(600)


def ask(host, port, src=None, sport=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        if src:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((src, int(sport or 0)))
        s.connect((host, int(port)))
        line = s.makefile().readline().strip()
        print(line if line else "error EOF")
    except OSError as e:
        print("error", errno.errorcode.get(e.errno, e) if e.errno else type(e).__name__)


def pose(port):
    """The attack of issue 10: read the stack's loopback ports from /proc/net/tcp, then
    connect from them (on another loopback address) and see what the server says."""
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            local, remote = line.split()[1:3]
            if remote == "0100007F:%04X" % int(port) and local.startswith("0100007F:"):
                ports.add(int(local.split(":")[1], 16))
    if not ports:
        print("no ports")
    for p in sorted(ports):
        ask("127.0.0.1", port, "127.0.0.2", p)


def squat(port, ready):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", int(port)))
    l.listen(8)
    open(ready, "w").close()
    l.settimeout(0.2)
    end = time.time() + 5
    while time.time() < end:
        try:
            c, _ = l.accept()
        except socket.timeout:
            continue
        c.settimeout(1)
        n = 0
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    break
                n += len(d)
        except OSError:
            pass
        print("conn bytes=%d" % n, flush=True)


def names(pid, host):
    inodes = set()
    for fd in os.listdir("/proc/%s/fd" % pid):
        try:
            t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    with open("/proc/net/unix", "rb") as f:
        text = f.read()
    found = 0
    for line in text.split(b"\n")[1:]:
        parts = line.split(b" ", 7)
        if len(parts) == 8 and parts[6].decode(errors="replace") in inodes and \
           parts[7].startswith(b"@"):
            found = 1
    # The kernel prints an abstract name's bytes as they are, NUL as "@" (and a newline
    # byte breaks the line): look for the address so rendered, anywhere in the file.
    addr = socket.inet_aton(host).replace(b"\0", b"@")
    print("names=%d clear=%d" % (found, text.count(addr)))


def forged():
    out = []
    for name in (b"\0tunshim1" + bytes([6, 4]) + socket.inet_aton("10.200.0.2") + bytes(12) +
                 b"\x1f\x90" + bytes([4]) + socket.inet_aton("10.200.0.1") + bytes(12) +
                 b"\x1f\x90" + bytes(8),
                 b"\0tunshim2" + os.urandom(79),
                 b"\0tunshim2" + bytes(79)):
        a, b = socket.socketpair()
        try:
            a.bind(name)
        except OSError as e:
            out.append("bind:" + str(e))
            continue
        s = socket.socket(fileno=os.dup(a.fileno()))
        out.append(s.family.name)
    print("forged:", " ".join(out))


cmd = sys.argv[1]
if cmd == "who":
    who(*sys.argv[2:4])
elif cmd == "hold":
    hold(sys.argv[2], sys.argv[3])
elif cmd == "ask":
    ask(*sys.argv[2:])
elif cmd == "pose":
    pose(sys.argv[2])
elif cmd == "squat":
    squat(*sys.argv[2:4])
elif cmd == "names":
    names(*sys.argv[2:4])
elif cmd == "readable":
    open("/proc/net/unix", "rb").read()
    print("readable")
elif cmd == "forged":
    forged()
PY
}
