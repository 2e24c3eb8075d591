# SPDX-License-Identifier: MIT
# Shared helpers for the interop suites: a hermetic topology of network namespaces around a
# real wireguard-go peer. Source it (bats: `load ../lib/topology`), then `topo_up`.
#
#   client netns $TOPO_CLIENT_NS (lo only)         server netns $TOPO_SERVER_NS
#   +-----------------------------------------+    +-----------------------------------+
#   | program under test (our stack)          |    | TUN $TOPO_WG_IF (moved here)      |
#   |   UDP 127.0.0.1:ephemeral <--- lo --->  |    |   10.200.0.1/24, fd00:200::1/64   |
#   | wireguard-go $TOPO_WG_IF                |    |   HTTP on [::]:8080 serving       |
#   |   UDP 127.0.0.1:$TOPO_PORT (stays here) |    |   $TOPO_DIR/www                   |
#   | wireguard-go $TOPO_KC_IF (stand-in)     |    +-----------------------------------+
#   |   UDP 127.0.0.1:$TOPO_KC_PORT           |    stand-in netns $TOPO_KC_NS
#   | ts_relay (topo_relay_up), impairing     |    +-----------------------------------+
#   |   UDP 127.0.0.1:$TOPO_RELAY_PORT        |    | TUN $TOPO_KC_IF (moved here)      |
#   |   -> 127.0.0.1:$TOPO_PORT               |    |   10.200.0.3/24, fd00:200::3/64   |
#   +-----------------------------------------+    +-----------------------------------+
#
# Client keys of the server peer: 10.200.0.2 / fd00:200::2 is $TOPO_CONF (the program under
# test), .3 the stand-in (topo_kernel_client_up), more from topo_client_conf.
#
# The client namespace has no route off loopback, so a program that leaks past the tunnel
# fails instead of reaching anything. Inner addresses exist only inside these namespaces.
# wireguard-go keeps its UDP socket in the namespace it was started in, so it starts in the
# client namespace and only its TUN moves to the server (docs/design.md, "How it is tested").
#
# Call these from the host's namespaces, never from inside `ip netns exec`: that runs in a
# mount namespace of its own, where `ip netns add` makes a name the host cannot use.
#
# Every process is started with setsid and ended by process group; everything a topology
# owns is recorded under $TOPO_DIR, so topo_down (or topo_down_dir DIR from another shell)
# removes it all, and is safe to call twice.

# The TOPO_* variables are this file's interface to the suites that source it.
# shellcheck disable=SC2034

TOPO_PREFIX=${TOPO_PREFIX:-ts}
TOPO_HTTP_PORT=8080
TOPO_SERVER_V4=10.200.0.1
TOPO_SERVER_V6=fd00:200::1
TOPO_TOOLS=${TOPO_TOOLS:-${TUNSHIM_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}/tests/tools}
TS_FETCH=${TS_FETCH:-$TOPO_TOOLS/ts_fetch}
WG_FLOOD=${WG_FLOOD:-$TOPO_TOOLS/wg_flood}
TS_RELAY=${TS_RELAY:-$TOPO_TOOLS/ts_relay}
# Debian's interpreter, not whatever python3 comes first in PATH.
TOPO_PYTHON=${TOPO_PYTHON:-/usr/bin/python3}

topo_log() {
	echo "# topo: $*" >&2
}

topo_fail() {
	echo "topo: $*" >&2
	return 1
}

# Why the topology cannot run here, or nothing when it can.
topo_cannot_run() {
	local probe
	if [ "$(id -u)" != 0 ]; then
		echo "needs root (network namespaces, TUN devices)"
		return
	fi
	if [ ! -c /dev/net/tun ] || ! { : <>/dev/net/tun; } 2>/dev/null; then
		echo "/dev/net/tun is not available"
		return
	fi
	probe=${TOPO_PREFIX}probe-$BASHPID
	if ! ip netns add "$probe" 2>/dev/null; then
		echo "cannot create network namespaces (ip netns add failed)"
		return
	fi
	ip netns del "$probe"
}

# topo_require_root: the one reason a suite may skip. In a bats test or setup it skips;
# in setup_file (where bats cannot skip) it records the reason for the tests' setup and
# returns 1, so: `setup_file() { topo_require_root || return 0; topo_up; }` and
# `setup() { topo_require_root; }`. Outside bats it says why and exits 0.
topo_require_root() {
	if [ -z "${TOPO_SKIP+set}" ]; then
		TOPO_SKIP=$(topo_cannot_run)
		export TOPO_SKIP
	fi
	[ -n "$TOPO_SKIP" ] || return 0
	if [ -n "${BATS_TEST_NAME:-}" ]; then
		skip "interop tests: $TOPO_SKIP"
	elif [ -z "${BATS_TEST_FILENAME:-}" ]; then
		echo "SKIP: interop tests: $TOPO_SKIP" >&2
		exit 0
	fi
	return 1
}

# topo_wait_until SECONDS CMD...: polls CMD every 50 ms until it succeeds.
topo_wait_until() {
	local limit=$1 deadline now
	shift
	now=${EPOCHREALTIME/./}
	deadline=$((now + limit * 1000000))
	until "$@" >/dev/null 2>&1; do
		now=${EPOCHREALTIME/./}
		[ "$now" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

in_client() {
	ip netns exec "$TOPO_CLIENT_NS" "$@"
}

in_server() {
	ip netns exec "$TOPO_SERVER_NS" "$@"
}

in_kclient() {
	ip netns exec "$TOPO_KC_NS" "$@"
}

# A process is alive if it exists and is not a zombie.
topo_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# topo_spawn NAME NETNS CMD...: starts CMD in its own session inside NETNS, output to
# $TOPO_DIR/NAME.log, pid (= process group) in $TOPO_DIR/pids/NAME. Sets TOPO_SPAWNED to the
# shell's child, so `wait $TOPO_SPAWNED` returns CMD's status. Environment assignments
# before the call reach CMD.
topo_spawn() {
	local name=$1 ns=$2
	shift 2
	rm -f "$TOPO_DIR/$name.log"
	topo_spawn_io "$name" "$ns" "$TOPO_DIR/$name.log" "$TOPO_DIR/$name.log" "$@"
}

# topo_spawn_io NAME NETNS OUT ERR CMD...: the same with stdout and stderr of its own
# (appended to: topo_wg_log_compact relies on it to shorten a log under a live writer).
topo_spawn_io() {
	local name=$1 ns=$2 out=$3 err=$4 pidfile=$TOPO_DIR/pids/$1
	shift 4
	rm -f "$pidfile"
	# fd 3 is bats' TAP stream: a background process holding it would stall bats.
	# shellcheck disable=SC2016
	ip netns exec "$ns" setsid -w sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
		"$pidfile" "$@" </dev/null >>"$out" 2>>"$err" 3>&- &
	TOPO_SPAWNED=$!
	topo_wait_until 5 test -s "$pidfile" || topo_fail "$name did not start"
}

# topo_reap NAME PID: waits for a spawned process that ends by itself; returns its status.
# Forgets its pid, so no later topo_stop signals a process group that reused the number.
topo_reap() {
	local rc=0
	wait "$2" || rc=$?
	rm -f "$TOPO_DIR/pids/$1"
	return "$rc"
}

# topo_stop NAME: ends a spawned process group, politely first.
topo_stop() {
	local pidfile=$TOPO_DIR/pids/$1 pid i
	[ -s "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	kill -TERM -- "-$pid" 2>/dev/null || true
	for ((i = 0; i < 40; i++)); do
		topo_alive "$pid" || break
		sleep 0.05
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$pidfile"
}

topo_udp_bound() {
	[ -n "$(ip netns exec "$1" ss -Hlun "sport = :$2")" ]
}

topo_b64_to_hex() {
	printf '%s' "$1" | base64 -d | od -An -v -tx1 | tr -d ' \n'
}

topo_genkey() {
	(umask 077 && wg genkey >"$TOPO_DIR/$1.key")
	wg pubkey <"$TOPO_DIR/$1.key"
}

# expect_eq WHAT EXPECTED GOT, expect_ge WHAT MIN GOT: assertions that say what was
# expected and what came back.
expect_eq() {
	[ "$3" = "$2" ] && return 0
	echo "$1: expected '$2', got '$3'" >&2
	return 1
}

expect_ge() {
	[[ "$3" =~ ^[0-9]+$ ]] && [ "$3" -ge "$2" ] && return 0
	echo "$1: expected >= $2, got '$3'" >&2
	return 1
}

# expect_le WHAT MAX GOT: GOT is a number no larger than MAX.
expect_le() {
	[ "$3" -le "$2" ] 2>/dev/null && return 0
	printf '%s: expected at most %s, got %s\n' "$1" "$2" "$3" >&2
	return 1
}

# $TOPO_DIR/topo.env: the topology's variables, for another shell to `source` (a benchmark,
# a human debugging a failed run).
topo_save_env() {
	declare -p "${!TOPO_@}" >"$TOPO_DIR/topo.env" 2>/dev/null
}

# topo_wg_up NAME: starts wireguard-go NAME in the client namespace with its UAPI
# socket ready; its verbose log is $TOPO_DIR/NAME.log.
topo_wg_up() {
	local name=$1 sock=/var/run/wireguard/$1.sock
	# A socket left by a killed run with the same name would make wireguard-go refuse.
	rm -f "$sock"
	echo "$sock" >>"$TOPO_DIR/sockets"
	topo_spawn "$name" "$TOPO_CLIENT_NS" \
		env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=verbose wireguard-go "$name" || return
	topo_wait_until 10 test -S "$sock" || topo_fail "wireguard-go $name: no UAPI socket"
}

# topo_wg_move NAME NETNS PORT ADDR4 ADDR6: moves the TUN into NETNS, addresses it, brings it
# up, and waits for wireguard-go to bind PORT (it binds once it sees the link up, which it
# polls once a second across namespaces).
topo_wg_move() {
	local name=$1 ns=$2 port=$3
	ip -n "$TOPO_CLIENT_NS" link set "$name" netns "$ns" || return
	ip -n "$ns" addr add "$4" dev "$name" || return
	ip -n "$ns" addr add "$5" dev "$name" nodad || return
	ip -n "$ns" link set "$name" up || return
	topo_wait_until 10 topo_udp_bound "$TOPO_CLIENT_NS" "$port" ||
		topo_fail "wireguard-go $name did not bind UDP port $port"
}

# topo_wg_kill: the server's wireguard-go dies (SIGKILL: no goodbye, its sessions are lost)
# and its TUN goes with it; TOPO_WG_KILLED_AT is the $EPOCHREALTIME of the kill. Its
# configuration, minus the endpoints it had learnt (a restarted peer knows only its
# config), is kept for topo_wg_restart.
topo_wg_kill() {
	local pid
	(umask 077 && wg showconf "$TOPO_WG_IF" | grep -v '^Endpoint' >"$TOPO_DIR/wg-saved.conf") ||
		return
	pid=$(cat "$TOPO_DIR/pids/$TOPO_WG_IF") || return
	TOPO_WG_KILLED_AT=$EPOCHREALTIME
	kill -KILL -- "-$pid" || return
	topo_wait_until 5 eval "! topo_alive $pid" || topo_fail "wireguard-go $pid did not die" ||
		return
	rm -f "$TOPO_DIR/pids/$TOPO_WG_IF"
	topo_wait_until 5 eval "! ip -n $TOPO_SERVER_NS link show $TOPO_WG_IF" ||
		topo_fail "$TOPO_WG_IF is still in $TOPO_SERVER_NS"
}

# topo_wg_restart: a new wireguard-go with the same name, key, port and peers as the one
# topo_wg_kill ended, its TUN in the server namespace again (the servers there keep
# running). The old log is kept as $TOPO_WG_LOG.N.
topo_wg_restart() {
	local n=1
	while [ -e "$TOPO_WG_LOG.$n" ]; do n=$((n + 1)); done
	mv "$TOPO_WG_LOG" "$TOPO_WG_LOG.$n" || return
	topo_wg_up "$TOPO_WG_IF" || return
	# Out of this shell's job table: a later topo_wg_kill would have bash report it Killed.
	disown "$TOPO_SPAWNED" 2>/dev/null || true
	wg setconf "$TOPO_WG_IF" "$TOPO_DIR/wg-saved.conf" || return
	topo_wg_move "$TOPO_WG_IF" "$TOPO_SERVER_NS" "$TOPO_PORT" \
		"$TOPO_SERVER_V4/24" "$TOPO_SERVER_V6/64"
}

# topo_client_conf NAME HOST [--psk]: a new client key for the server peer, with the inner
# addresses 10.200.0.HOST and fd00:200::HOST; writes $TOPO_DIR/NAME.conf (wg-quick format)
# and sets TOPO_NEW_CONF and TOPO_NEW_PUB.
topo_client_conf() {
	local name=$1 host=$2 psk=${3:-} pub conf=$TOPO_DIR/$1.conf
	local -a pskarg=()
	pub=$(topo_genkey "$name") || return
	if [ "$psk" = --psk ]; then
		(umask 077 && wg genpsk >"$TOPO_DIR/$name.psk")
		pskarg=(preshared-key "$TOPO_DIR/$name.psk")
	fi
	wg set "$TOPO_WG_IF" peer "$pub" "${pskarg[@]}" \
		allowed-ips "10.200.0.$host/32,fd00:200::$host/128" || return
	(
		umask 077
		{
			echo "[Interface]"
			echo "PrivateKey = $(cat "$TOPO_DIR/$name.key")"
			echo "Address = 10.200.0.$host/32, fd00:200::$host/128"
			echo
			echo "[Peer]"
			echo "PublicKey = $TOPO_SERVER_PUB"
			[ -z "$psk" ] || echo "PresharedKey = $(cat "$TOPO_DIR/$name.psk")"
			echo "AllowedIPs = 10.200.0.0/24, fd00:200::/64"
			echo "Endpoint = 127.0.0.1:$TOPO_PORT"
		} >"$conf"
	)
	TOPO_NEW_CONF=$conf
	TOPO_NEW_PUB=$pub
}

# topo_make_file NAME MIB: a random file in the served directory; prints its sha256.
topo_make_file() {
	head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$TOPO_DIR/www/$1"
	sha256sum "$TOPO_DIR/www/$1" | cut -d' ' -f1
}

topo_http_ready() {
	in_server curl -fsS -o /dev/null --max-time 1 "http://$TOPO_SERVER_V4:$TOPO_HTTP_PORT/" &&
		in_server curl -fsS -o /dev/null --max-time 1 "http://[$TOPO_SERVER_V6]:$TOPO_HTTP_PORT/"
}

topo_http_up() {
	mkdir -p "$TOPO_DIR/www"
	printf '<html><body><p>tunshim interop %s</p></body></html>\n' "$TOPO_ID" \
		>"$TOPO_DIR/www/index.html"
	TOPO_BIG_SHA256=$(topo_make_file big.bin 50)
	TOPO_MID_SHA256=$(topo_make_file mid.bin 20)
	# --bind :: serves IPv4 too: http.server clears IPV6_V6ONLY on its socket.
	topo_spawn http "$TOPO_SERVER_NS" "$TOPO_PYTHON" -m http.server \
		--bind :: --directory "$TOPO_DIR/www" "$TOPO_HTTP_PORT" || return
	topo_wait_until 10 topo_http_ready || topo_fail "HTTP server did not come up"
}

topo_ns_add() {
	ip netns add "$1" || return
	echo "$1" >>"$TOPO_DIR/netns"
	ip -n "$1" link set lo up
}

# topo_up [--psk]: the whole topology; exports the TOPO_* variables listed above and
# TOPO_CONF, the client's wg-quick config for the program under test.
topo_up() {
	local psk=${1:-}
	TOPO_ID=$(printf '%x%03x' "$BASHPID" $((RANDOM % 4096)))
	TOPO_DIR=$(mktemp -d "/tmp/tunshim-topo.$TOPO_ID.XXXXXX") || return
	mkdir -p "$TOPO_DIR/pids"
	TOPO_CLIENT_NS=${TOPO_PREFIX}c-$TOPO_ID
	TOPO_SERVER_NS=${TOPO_PREFIX}s-$TOPO_ID
	TOPO_WG_IF=${TOPO_PREFIX}w$TOPO_ID
	TOPO_UAPI=/var/run/wireguard/$TOPO_WG_IF.sock
	TOPO_WG_LOG=$TOPO_DIR/$TOPO_WG_IF.log
	TOPO_PORT=51820
	export "${!TOPO_@}"
	topo_register
	topo_save_env
	topo_log "up: $TOPO_ID in $TOPO_DIR"
	topo_up_steps "$psk" || { topo_diag "$TOPO_WG_LOG" >&2; return 1; }
	export "${!TOPO_@}"
	topo_save_env
}

topo_up_steps() {
	topo_ns_add "$TOPO_CLIENT_NS" && topo_ns_add "$TOPO_SERVER_NS" || return
	topo_wg_up "$TOPO_WG_IF" || return
	TOPO_SERVER_PUB=$(topo_genkey server) || return
	wg set "$TOPO_WG_IF" private-key "$TOPO_DIR/server.key" listen-port "$TOPO_PORT" || return
	topo_client_conf client 2 "$1" || return
	TOPO_CONF=$TOPO_NEW_CONF
	TOPO_CLIENT_PUB=$TOPO_NEW_PUB
	TOPO_PSK=
	[ "$1" != --psk ] || TOPO_PSK=$(cat "$TOPO_DIR/client.psk")
	topo_wg_move "$TOPO_WG_IF" "$TOPO_SERVER_NS" "$TOPO_PORT" \
		"$TOPO_SERVER_V4/24" "$TOPO_SERVER_V6/64" || return
	topo_http_up
}

# Outside bats (benchmarks, by hand) nothing else tears down: do it on exit. A runner that
# sets TOPO_REGISTRY (a directory) gets a record of every topology, to sweep if bats dies.
topo_register() {
	[ -z "${TOPO_REGISTRY:-}" ] || ln -s "$TOPO_DIR" "$TOPO_REGISTRY/${TOPO_DIR##*/}"
	if [ -z "${BATS_TEST_FILENAME:-}" ] && [ -z "$(trap -p EXIT)" ]; then
		trap topo_down EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
	fi
}

# topo_wg_log_compact [SRC]: a flood from SRC (default 127.0.0.2) leaves a line per packet
# in wireguard-go's verbose log (about 10 MB/s): drop those, keeping their count. (Filtering
# through a pipe instead stalls wireguard-go on 2 cores: its workers block on the full
# pipe.) A line logged between the copy and the truncation is lost; the writer appends, so
# later lines land correctly.
topo_wg_log_compact() {
	local log=$TOPO_WG_LOG re n
	re="(Sending cookie response for denied handshake message for|Received invalid"
	re="$re initiation message from) ${1:-127.0.0.2}:"
	[ -f "$log" ] || return 0
	n=$(grep -cE "$re" "$log") || true
	grep -vE "$re" "$log" >"$log.tmp" || true
	echo "[topo: $n lines about the flood from ${1:-127.0.0.2} removed]" >>"$log.tmp"
	truncate -s 0 "$log"
	cat "$log.tmp" >>"$log"
	rm -f "$log.tmp"
}

# topo_kernel_client_up [--psk]: a stand-in client that is not our stack: a second
# wireguard-go (UDP in the client namespace) whose TUN sits in its own namespace
# $TOPO_KC_NS with 10.200.0.3 and fd00:200::3 and routes to the server's subnets, so
# ordinary programs reach the server through the kernel's stack: run them with in_kclient.
# The baseline the benchmark compares our stack against; it has a key of its own, so both
# can run at once.
topo_kernel_client_up() {
	local psk=${1:-}
	TOPO_KC_NS=${TOPO_PREFIX}k-$TOPO_ID
	TOPO_KC_IF=${TOPO_PREFIX}k$TOPO_ID
	TOPO_KC_UAPI=/var/run/wireguard/$TOPO_KC_IF.sock
	TOPO_KC_PORT=51821
	export "${!TOPO_@}"
	topo_save_env
	topo_ns_add "$TOPO_KC_NS" || return
	topo_wg_up "$TOPO_KC_IF" || return
	topo_client_conf kclient 3 "$psk" || return
	TOPO_KC_PUB=$TOPO_NEW_PUB
	local -a pskarg=()
	[ -z "$psk" ] || pskarg=(preshared-key "$TOPO_DIR/kclient.psk")
	wg set "$TOPO_KC_IF" private-key "$TOPO_DIR/kclient.key" listen-port "$TOPO_KC_PORT" \
		peer "$TOPO_SERVER_PUB" "${pskarg[@]}" endpoint "127.0.0.1:$TOPO_PORT" \
		allowed-ips 10.200.0.0/24,fd00:200::/64 || return
	topo_wg_move "$TOPO_KC_IF" "$TOPO_KC_NS" "$TOPO_KC_PORT" \
		10.200.0.3/24 fd00:200::3/64 || return
	export "${!TOPO_@}"
	topo_save_env
}

# topo_relay_up [RELAY OPTIONS...]: an impairment relay (tests/tools/ts_relay, options as in
# its usage: --delay MS, --loss PCT, ...) in the client namespace between the program under
# test and wireguard-go:
#
#   program under test --> 127.0.0.1:$TOPO_RELAY_PORT (ts_relay) --> 127.0.0.1:$TOPO_PORT
#
# Writes $TOPO_RELAY_CONF ($TOPO_DIR/client-relay.conf): $TOPO_CONF with the relay as its
# Endpoint (the same key, so wireguard-go follows the client to the relay's socket). The
# first call takes a free port; a later call replaces the relay on the same port, so the
# config stays valid. Its log is $TOPO_DIR/relay.log; topo_relay_down or topo_down stops it.
topo_relay_up() {
	local log=$TOPO_DIR/relay.log port=${TOPO_RELAY_PORT:-0}
	[ -x "$TS_RELAY" ] || topo_fail "$TS_RELAY is missing (make interop builds it)" || return
	topo_stop relay
	topo_spawn relay "$TOPO_CLIENT_NS" "$TS_RELAY" "$@" \
		"127.0.0.1:$port" "127.0.0.1:$TOPO_PORT" || return
	topo_wait_until 5 grep -q '^ts_relay: listening on ' "$log" ||
		topo_fail "ts_relay did not start: $(tail -n 3 "$log")" || return
	port=$(sed -n 's/^ts_relay: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")
	topo_udp_bound "$TOPO_CLIENT_NS" "$port" || topo_fail "ts_relay is not bound to $port" ||
		return
	TOPO_RELAY_PORT=$port
	TOPO_RELAY_CONF=$TOPO_DIR/client-relay.conf
	(umask 077 && sed "s|^Endpoint = .*|Endpoint = 127.0.0.1:$port|" "$TOPO_CONF" \
		>"$TOPO_RELAY_CONF") || return
	export TOPO_RELAY_PORT TOPO_RELAY_CONF
	topo_save_env
}

# topo_relay_down: stops the relay; its counters are the last line of $TOPO_DIR/relay.log.
topo_relay_down() {
	topo_stop relay
}

# topo_relay_counters: the relay's counters now (it prints them on SIGUSR1 and goes on):
#   ts_relay: up: rx=N tx=N dropped=N dup=N reordered=N discarded=N; down: ...
topo_relay_counters() {
	local log=$TOPO_DIR/relay.log pid n
	pid=$(cat "$TOPO_DIR/pids/relay" 2>/dev/null) || topo_fail "no relay running" || return
	n=$(grep -c '^ts_relay: up: rx=' "$log")
	kill -USR1 "$pid" || return
	topo_wait_until 5 topo_relay_printed "$log" $((n + 1)) ||
		topo_fail "ts_relay did not print its counters" || return
	grep '^ts_relay: up: rx=' "$log" | tail -n 1
}

topo_relay_printed() {
	[ "$(grep -c '^ts_relay: up: rx=' "$1")" -ge "$2" ]
}

# relay_stat LINE DIR KEY: one counter of a counters line, e.g. relay_stat "$line" down dropped.
relay_stat() {
	local half
	case $2 in
	up)
		half=${1#*up: }
		half=${half%%;*}
		;;
	down) half=${1#*down: } ;;
	*) return 1 ;;
	esac
	tr ' ' '\n' <<<"$half" | sed -n "s/^$3=\([0-9]*\)$/\1/p"
}

# expect_relay_did LINE DIR KEY PCT: the relay's KEY counter (dropped, dup, reordered) in
# DIR is at least half of PCT % of the datagrams DIR carried: it hurt that direction as
# told. Proportional, because the directions carry very different counts (a download's
# up direction only ACKs, one per connection and pass of our stack's loop). Where fewer
# than 40 are expected a shortfall proves nothing (Poisson), and nothing is required.
expect_relay_did() {
	local rx want
	rx=$(relay_stat "$1" "$2" rx)
	want=$(awk -v rx="$rx" -v p="$4" 'BEGIN { e = rx * p / 100; printf "%d", (e >= 40 ? e / 2 : 0) }')
	expect_ge "relay $2 $3 (of $rx datagrams at $4 %)" "$want" "$(relay_stat "$1" "$2" "$3")"
}

# topo_down: ends every process of this topology, deletes its namespaces, sockets and files.
topo_down() {
	[ -n "${TOPO_DIR:-}" ] || return 0
	topo_down_dir "$TOPO_DIR"
}

# topo_down_dir DIR: tears down the topology recorded in DIR (from any shell).
topo_down_dir() {
	local dir=$1 f ns
	[ -d "$dir" ] || return 0
	for f in "$dir"/pids/*; do
		[ -e "$f" ] || continue
		TOPO_DIR=$dir topo_stop "${f##*/}"
	done
	if [ -f "$dir/netns" ]; then
		while read -r ns; do
			ip netns del "$ns" 2>/dev/null || true
		done <"$dir/netns"
	fi
	[ ! -f "$dir/sockets" ] || xargs rm -f <"$dir/sockets"
	topo_etc_netns_down "$dir"
	rm -rf "$dir"
	[ -z "${TOPO_REGISTRY:-}" ] || rm -f "$TOPO_REGISTRY/${dir##*/}"
	return 0
}

# ---- DNS (topo_dns_up) ----
#
#   server netns: dnsmasq on $TOPO_SERVER_V4:53 and [$TOPO_SERVER_V6]:53, UDP and TCP. It
#     knows only the names of $TOPO_DIR/dns-hosts under $TOPO_DNS_DOMAIN (NXDOMAIN for
#     other names there and for other private reverse names, REFUSED elsewhere: it has
#     no upstream) and their reverse names:
#       web      A $TOPO_SERVER_V4, AAAA $TOPO_SERVER_V6
#       v6only   AAAA $TOPO_DNS_V6ONLY
#       many     $TOPO_DNS_MANY A records: over UDP without EDNS the answer is truncated
#       alias -> alias2 -> web   a CNAME chain
#   client netns: a decoy dnsmasq on $TOPO_DNS_DECOY:53, the only nameserver of the
#     namespace's resolv.conf (/etc/netns/$TOPO_CLIENT_NS/resolv.conf, mounted over
#     /etc/resolv.conf by `ip netns exec`). It knows no names (REFUSED) and logs every
#     query in $TOPO_DIR/dns-decoy.log: a query that leaked past the tunnel shows there. The
#     namespace's /etc/hosts (mounted the same way) has localhost and one name of its
#     own, $TOPO_DNS_HOSTS_NAME (-> 10.200.0.1), which the DNS server does not know.
#     A second dnsmasq, $TOPO_DNS_LOCAL:53 on the same loopback, knows the same names:
#     a `DNS =` server outside AllowedIPs, reached over the host network.
#   $TOPO_DNS_DEAD: an address inside AllowedIPs where nobody answers (a dead server).
#
# topo_dns_conf NAME DNS-VALUE writes a client config with `DNS = DNS-VALUE`.

TOPO_DNS_DOMAIN=tunnel.test
TOPO_DNS_DEAD=10.200.0.53
TOPO_DNS_DECOY=127.0.0.53
TOPO_DNS_LOCAL=127.0.0.54
TOPO_DNS_V6ONLY=fd00:200::5
TOPO_DNS_MANY=60
TOPO_DNS_HOSTS_NAME=hostsfile.$TOPO_DNS_DOMAIN

topo_dns_hosts() {
	local d=$TOPO_DNS_DOMAIN i
	echo "$TOPO_SERVER_V4 web.$d"
	echo "$TOPO_SERVER_V6 web.$d"
	echo "$TOPO_DNS_V6ONLY v6only.$d"
	for ((i = 1; i <= TOPO_DNS_MANY; i++)); do
		echo "10.200.1.$i many.$d"
	done
}

# topo_dnsmasq NAME NETNS LISTEN-ADDRESS... -- MORE-OPTIONS...: a dnsmasq that logs
# every query to $TOPO_DIR/NAME.log, ready when it has bound its port.
topo_dnsmasq() {
	local name=$1 ns=$2 a=
	local -a args=(--keep-in-foreground --conf-file=/dev/null --user=root --group=root
		--pid-file= --no-resolv --no-hosts --no-poll --bind-interfaces --port=53
		--log-queries --log-facility=-)
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=(--listen-address="$1")
		a=$1
		shift
	done
	[ $# -eq 0 ] || shift
	topo_spawn "$name" "$ns" dnsmasq "${args[@]}" "$@" || return
	topo_wait_until 10 topo_tcp_bound "$ns" "$a" 53 ||
		topo_fail "dnsmasq $name did not start: $(tail -n 3 "$TOPO_DIR/$name.log")"
}

# topo_tcp_bound NETNS ADDR PORT: something listens there.
topo_tcp_bound() {
	local a=$2
	[[ $a != *:* ]] || a="[$a]"
	ip netns exec "$1" ss -Hltn | awk '{ print $4 }' | grep -qxF "$a:$3"
}

# Files under /etc/netns/NS/ that `ip netns exec NS` mounts over /etc; recorded so that
# topo_down removes them.
topo_etc_netns() {
	local ns=$1 file=$2 dir=/etc/netns/$1
	mkdir -p "$dir" || return
	grep -qxF "$dir" "$TOPO_DIR/etc-netns" 2>/dev/null || echo "$dir" >>"$TOPO_DIR/etc-netns"
	cat >"$dir/$file"
}

topo_etc_netns_down() {
	local d
	[ -f "$1/etc-netns" ] || return 0
	while read -r d; do
		case $d in
		/etc/netns/*/* | *..*) ;;
		/etc/netns/?*) rm -rf -- "$d" ;;
		esac
	done <"$1/etc-netns"
}

topo_dns_up() {
	local -a names=(--addn-hosts="$TOPO_DIR/dns-hosts" --local="/$TOPO_DNS_DOMAIN/" --bogus-priv
		--cname="alias.$TOPO_DNS_DOMAIN,alias2.$TOPO_DNS_DOMAIN"
		--cname="alias2.$TOPO_DNS_DOMAIN,web.$TOPO_DNS_DOMAIN")
	command -v dnsmasq >/dev/null ||
		topo_fail "dnsmasq is missing (tests/deps.sh test installs dnsmasq-base)" || return
	topo_dns_hosts >"$TOPO_DIR/dns-hosts"
	topo_dnsmasq dns "$TOPO_SERVER_NS" "$TOPO_SERVER_V4" "$TOPO_SERVER_V6" -- "${names[@]}" ||
		return
	echo "nameserver $TOPO_DNS_DECOY" | topo_etc_netns "$TOPO_CLIENT_NS" resolv.conf || return
	printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.200.0.1 %s\n' \
		"$TOPO_DNS_HOSTS_NAME" | topo_etc_netns "$TOPO_CLIENT_NS" hosts || return
	topo_dnsmasq dns-decoy "$TOPO_CLIENT_NS" "$TOPO_DNS_DECOY" || return
	topo_dnsmasq dns-local "$TOPO_CLIENT_NS" "$TOPO_DNS_LOCAL" -- "${names[@]}" || return
	TOPO_DNS_LOG=$TOPO_DIR/dns.log
	TOPO_DNS_LOCAL_LOG=$TOPO_DIR/dns-local.log
	TOPO_DNS_DECOY_LOG=$TOPO_DIR/dns-decoy.log
	export "${!TOPO_@}"
	topo_save_env
}

# The queries a dnsmasq logged (one line each).
topo_dns_queries() {
	grep -c ' query\[' "$1" || true
}

# topo_dns_conf NAME DNS-VALUE: $TOPO_CONF with `DNS = DNS-VALUE`, as $TOPO_DIR/NAME.conf
# (in TOPO_NEW_CONF).
topo_dns_conf() {
	TOPO_NEW_CONF=$TOPO_DIR/$1.conf
	(umask 077 && sed "/^Address = /a DNS = $2" "$TOPO_CONF" >"$TOPO_NEW_CONF")
}

# uapi_get [SOCKET]: the UAPI `get` dump of wireguard-go (default: the server's).
uapi_get() {
	printf 'get=1\n\n' | socat -t 2 - "UNIX-CONNECT:${1:-$TOPO_UAPI}"
}

# uapi_peer_field FIELD [PUBKEY_B64] [SOCKET]: one field of one peer of the UAPI dump
# (default peer: the program under test's key).
uapi_peer_field() {
	local hex
	hex=$(topo_b64_to_hex "${2:-$TOPO_CLIENT_PUB}")
	uapi_get "${3:-}" | awk -F= -v key="$hex" -v field="$1" '
		$1 == "public_key" { inpeer = ($2 == key) }
		inpeer && $1 == field { print $2; exit }'
}

# wg_last_handshake_ns [PUBKEY_B64]: the server's last handshake time with that peer, in ns
# since the epoch (0: never).
wg_last_handshake_ns() {
	local dump sec nsec hex
	hex=$(topo_b64_to_hex "${1:-$TOPO_CLIENT_PUB}")
	dump=$(uapi_get) || return
	read -r sec nsec < <(awk -F= -v key="$hex" '
		$1 == "public_key" { inpeer = ($2 == key) }
		inpeer && $1 == "last_handshake_time_sec" { s = $2 }
		inpeer && $1 == "last_handshake_time_nsec" { n = $2 }
		END { print s + 0, n + 0 }' <<<"$dump")
	echo $((10#$sec * 1000000000 + 10#$nsec))
}

wg_rx_bytes() {
	local v
	v=$(uapi_peer_field rx_bytes "${1:-}") || return
	echo "${v:-0}"
}

wg_tx_bytes() {
	local v
	v=$(uapi_peer_field tx_bytes "${1:-}") || return
	echo "${v:-0}"
}

# A bound on any one run of the program under test, whatever its own --timeout does.
TOPO_FETCH_LIMIT=${TOPO_FETCH_LIMIT:-120}

# ts_fetch_run OUT ERR ARGS...: the program under test in the client namespace, body to
# OUT and stderr to ERR. Environment assignments before the call reach it.
ts_fetch_run() {
	local out=$1 err=$2
	shift 2
	in_client timeout -k 5 "$TOPO_FETCH_LIMIT" "$TS_FETCH" "$@" >"$out" 2>"$err"
}

# ts_stat ERRFILE KEY: a counter from ts_fetch's closing stderr line (empty if absent).
ts_stat() {
	sed -n 's/^ts_fetch: .*/ &/p' "$1" | tail -n 1 |
		tr ' ' '\n' | sed -n "s/^$2=\([0-9]*\)$/\1/p"
}

topo_tail() {
	[ -s "$2" ] || return 0
	echo "---- ${2##*/} (last $1 lines)"
	tail -n "$1" "$2"
}

# topo_diag [FILES...]: what helps after a failure: the files given (ts_fetch's stderr),
# the tail of the server wireguard-go's log, and shorter tails of the other logs.
topo_diag() {
	local f
	for f in "$@"; do
		topo_tail 40 "$f"
	done
	topo_tail 40 "$TOPO_WG_LOG"
	for f in "$TOPO_DIR"/*.log; do
		[ "$f" = "$TOPO_WG_LOG" ] || topo_tail 8 "$f"
	done
}

# ---- Provider shapes (topo_prov_*) ----
#
#   A platform's private IPv6 network, $TOPO_PROV_ULA::/48, behind the server peer
#   (topo_prov_ula_up), shaped like examples/provider-ipv6.conf:
#     server netns, on $TOPO_WG_IF (with nodad):
#       $TOPO_PROV_GW/120        the gateway side of the client's /120 (the route back)
#       $TOPO_PROV_DNS/128       dnsmasq: the names of $TOPO_DIR/prov-hosts, AAAA only;
#                                NXDOMAIN for every other name, as a recursive resolver
#                                answers for a name that does not exist ($TOPO_DIR/prov-dns.log)
#       $TOPO_PROV_WEB/128       a service of another /120: web.svc.internal; the HTTP
#                                server on [::]:$TOPO_HTTP_PORT answers there
#     client: $TOPO_PROV_CLIENT/120, a key of its own (topo_prov_ula_conf).
#   topo_prov_silent ADDR: packets to ADDR leave the client's loopback and vanish (a
#     gateway that went away), with no error to the sender.
#   topo_prov_hosts LINE...: the client namespace's /etc/hosts, rewritten in place.

TOPO_PROV_ULA=fd7a:115c:a1e0
TOPO_PROV_PREFIX=$TOPO_PROV_ULA::/48
TOPO_PROV_DNS=$TOPO_PROV_ULA::3
TOPO_PROV_GW=$TOPO_PROV_ULA:a7b:9c3:0:a:101
TOPO_PROV_CLIENT=$TOPO_PROV_ULA:a7b:9c3:0:a:102
TOPO_PROV_WEB=$TOPO_PROV_ULA:b00::80
TOPO_PROV_SUFFIX=internal
TOPO_PROV_WEB_NAME=web.svc.$TOPO_PROV_SUFFIX

topo_prov_ula_up() {
	local ns=$TOPO_SERVER_NS dev=$TOPO_WG_IF
	ip -n "$ns" addr add "$TOPO_PROV_GW/120" dev "$dev" nodad || return
	ip -n "$ns" addr add "$TOPO_PROV_DNS/128" dev "$dev" nodad || return
	ip -n "$ns" addr add "$TOPO_PROV_WEB/128" dev "$dev" nodad || return
	echo "$TOPO_PROV_WEB $TOPO_PROV_WEB_NAME" >"$TOPO_DIR/prov-hosts"
	# --local=/#/: every name is local, so a name not in the file is NXDOMAIN.
	topo_dnsmasq prov-dns "$ns" "$TOPO_PROV_DNS" -- --addn-hosts="$TOPO_DIR/prov-hosts" \
		--local=/#/ || return
	TOPO_PROV_DNS_LOG=$TOPO_DIR/prov-dns.log
	export "${!TOPO_@}"
	topo_save_env
}

# topo_prov_ula_conf NAME ENDPOINT: a new key for the server peer with $TOPO_PROV_CLIENT,
# and its config $TOPO_DIR/NAME.conf in the platform's shape (TOPO_NEW_CONF, TOPO_NEW_PUB).
topo_prov_ula_conf() {
	local name=$1 pub conf=$TOPO_DIR/$1.conf
	pub=$(topo_genkey "$name") || return
	wg set "$TOPO_WG_IF" peer "$pub" allowed-ips "$TOPO_PROV_CLIENT/128" || return
	(
		umask 077
		{
			echo "[Interface]"
			echo "PrivateKey = $(cat "$TOPO_DIR/$name.key")"
			echo "Address = $TOPO_PROV_CLIENT/120"
			echo "DNS = $TOPO_PROV_DNS, $TOPO_PROV_SUFFIX"
			echo
			echo "[Peer]"
			echo "PublicKey = $TOPO_SERVER_PUB"
			echo "AllowedIPs = $TOPO_PROV_PREFIX"
			echo "Endpoint = $2"
			echo "PersistentKeepalive = 15"
		} >"$conf"
	)
	TOPO_NEW_CONF=$conf
	TOPO_NEW_PUB=$pub
}

# A route through lo to an address that is not local: the packet comes back in on lo,
# is not for this namespace, and is dropped (no forwarding), so sendto succeeds and
# nothing answers. (A loopback address does not do: wireguard-go binds the wildcard.)
topo_prov_silent() {
	ip -n "$TOPO_CLIENT_NS" route add "$1/32" dev lo
}

# topo_prov_hosts LINE...: localhost, topo_dns_up's name, and the LINEs. The file keeps
# its inode, so processes already running in the namespace (whose /etc/hosts is a bind
# mount of it) read the new content.
topo_prov_hosts() {
	{
		printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n'
		echo "10.200.0.1 $TOPO_DNS_HOSTS_NAME"
		printf '%s\n' "$@"
	} | topo_etc_netns "$TOPO_CLIENT_NS" hosts
}

# ---- A router hop (topo_far_up) ----
#
#   client ... tunnel ... server netns (forwarding) --veth--> far netns $TOPO_FAR_NS
#                         10.201.0.1/30, fd00:201::1/64       10.201.0.2, fd00:201::2
#                                                             $TOPO_FAR_V4, $TOPO_FAR_V6
#
# A tunnel host one router behind the server: the server namespace forwards to it, so a
# probe with TTL 1 dies there (time exceeded from $TOPO_SERVER_V4 / _V6, its address on
# the path back) and one with TTL 2 reaches the far host. The far host's addresses lie
# inside the clients' AllowedIPs.
TOPO_FAR_V4=10.200.0.200
TOPO_FAR_V6=fd00:200::200

topo_far_up() {
	local s=$TOPO_SERVER_NS f=${TOPO_PREFIX}f-$TOPO_ID rdev=tfr$TOPO_ID fdev=tff$TOPO_ID
	TOPO_FAR_NS=$f
	topo_ns_add "$f" || return
	ip -n "$s" link add "$rdev" type veth peer name "$fdev" netns "$f" || return
	# No duplicate address detection: the routes work as soon as the links are up.
	ip netns exec "$s" sysctl -qw "net.ipv6.conf.$rdev.accept_dad=0" || return
	ip netns exec "$f" sysctl -qw "net.ipv6.conf.$fdev.accept_dad=0" || return
	ip -n "$s" addr add 10.201.0.1/30 dev "$rdev" || return
	ip -n "$s" addr add fd00:201::1/64 dev "$rdev" nodad || return
	ip -n "$f" addr add 10.201.0.2/30 dev "$fdev" || return
	ip -n "$f" addr add fd00:201::2/64 dev "$fdev" nodad || return
	ip -n "$f" addr add "$TOPO_FAR_V4/32" dev "$fdev" || return
	ip -n "$f" addr add "$TOPO_FAR_V6/128" dev "$fdev" nodad || return
	ip -n "$s" link set "$rdev" up || return
	ip -n "$f" link set "$fdev" up || return
	ip -n "$s" route add "$TOPO_FAR_V4/32" via 10.201.0.2 || return
	ip -n "$s" -6 route add "$TOPO_FAR_V6/128" via fd00:201::2 || return
	ip -n "$f" route add default via 10.201.0.1 src "$TOPO_FAR_V4" || return
	ip -n "$f" -6 route add default via fd00:201::1 src "$TOPO_FAR_V6" || return
	ip netns exec "$s" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
		return
	export TOPO_FAR_NS
	topo_save_env
}

in_far() {
	ip netns exec "$TOPO_FAR_NS" "$@"
}
