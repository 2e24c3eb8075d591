#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# Real programs from the distribution, unmodified, through libtunshim.so: socat over TCP
# (over UDP: 060-udp.bats), iperf3 (TCP and UDP, both directions), wrk with 200
# connections, a python3 event loop (non-blocking connect and selectors), and bash's
# /dev/tcp. Without the shim the same programs have no route.

load helpers

NGINX_PORT=8090
IPERF_PORT=5201

setup_file() {
	shim_setup_file || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	shim_echo_up || return
	nginx_up || return
	topo_spawn iperf3 "$TOPO_SERVER_NS" iperf3 -s -p "$IPERF_PORT" || return
	topo_wait_until 10 iperf_ready || topo_fail "iperf3 -s did not start"
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

iperf_ready() {
	[ -n "$(in_server ss -Hltn "sport = :$IPERF_PORT")" ]
}

# nginx in the server namespace, serving the topology's www directory on both addresses:
# wrk's 200 connections need a server that takes them.
nginx_up() {
	local d=$TOPO_DIR/nginx
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<-EOF
		user root;
		worker_processes 2;
		pid $d/nginx.pid;
		error_log $d/error.log warn;
		events { worker_connections 4096; }
		http {
			access_log off;
			client_body_temp_path $d/body;
			proxy_temp_path $d/proxy;
			fastcgi_temp_path $d/fastcgi;
			uwsgi_temp_path $d/uwsgi;
			scgi_temp_path $d/scgi;
			keepalive_requests 1000000;
			server {
				listen $TOPO_SERVER_V4:$NGINX_PORT backlog=4096;
				listen [$TOPO_SERVER_V6]:$NGINX_PORT backlog=4096;
				root $TOPO_DIR/www;
			}
		}
	EOF
	topo_spawn nginx "$TOPO_SERVER_NS" nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' ||
		return
	topo_wait_until 10 in_server curl -fsS -o /dev/null --max-time 1 \
		"http://$TOPO_SERVER_V4:$NGINX_PORT/index.html" ||
		topo_fail "nginx did not come up: $(cat "$d/error.log" 2>/dev/null)"
}

# iperf_stat JSON EXPR: a value from iperf3 -J output (EXPR indexes the parsed object j).
iperf_stat() {
	"$TOPO_PYTHON" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$1" "$2"
}

@test "without the shim socat and bash /dev/tcp have no route" {
	run plain_run socat -T 2 - "TCP:$TOPO_SERVER_V4:$ECHO_PORT" </dev/null
	expect_status "socat TCP without the shim" 1
	expect_has "socat's error" "Network is unreachable" "$output"
	run plain_run bash -c "exec 3<>/dev/tcp/$TOPO_SERVER_V4/$TOPO_HTTP_PORT"
	expect_status "bash /dev/tcp without the shim" 1
	expect_has "bash's error" "Network is unreachable" "$output"
}

@test "socat TCP over IPv4 and IPv6: lines and 8 MiB come back from an echo server" {
	local target sum
	for target in "TCP:$TOPO_SERVER_V4:$ECHO_PORT" "TCP6:[$TOPO_SERVER_V6]:$ECHO_PORT"; do
		run shim_run socat -t 10 - "$target" <<<$'one\ntwo\nthree'
		expect_status "socat $target" 0
		expect_eq "socat $target echo" $'one\ntwo\nthree' "$output"
	done
	head -c $((8 * 1024 * 1024)) /dev/urandom >"$T/in"
	sum=$(sha256sum <"$T/in" | cut -d' ' -f1)
	shim_run socat -t 30 - "TCP:$TOPO_SERVER_V4:$ECHO_PORT" <"$T/in" >"$T/out"
	expect_eq "sha256 of 8 MiB echoed through socat" "$sum" "$(sha256sum <"$T/out" | cut -d' ' -f1)"
}

@test "iperf3 TCP, both directions (IPv4 up, IPv6 down)" {
	local dir json bytes
	for dir in up down; do
		json=$T/iperf-$dir.json
		if [ "$dir" = up ]; then
			shim_run iperf3 -c "$TOPO_SERVER_V4" -p "$IPERF_PORT" -t 3 -J >"$json"
		else
			shim_run iperf3 -c "$TOPO_SERVER_V6" -p "$IPERF_PORT" -t 3 -J -R >"$json"
		fi
		bytes=$(iperf_stat "$json" 'int(j["end"]["sum_received"]["bytes"])')
		expect_ge "iperf3 TCP $dir: bytes received" $((10 * 1024 * 1024)) "$bytes"
		echo "# iperf3 TCP $dir: $(iperf_stat "$json" \
			'"%.0f Mbit/s" % (j["end"]["sum_received"]["bits_per_second"] / 1e6)')" >&3
	done
}

@test "iperf3 UDP at 20 Mbit/s, both directions (IPv4 up, IPv6 down)" {
	local dir json packets lost
	for dir in up down; do
		json=$T/iperf-udp-$dir.json
		if [ "$dir" = up ]; then
			shim_run iperf3 -c "$TOPO_SERVER_V4" -p "$IPERF_PORT" -u -b 20M -t 3 -J >"$json"
		else
			shim_run iperf3 -c "$TOPO_SERVER_V6" -p "$IPERF_PORT" -u -b 20M -t 3 -J -R \
				>"$json"
		fi
		packets=$(iperf_stat "$json" 'j["end"]["sum"]["packets"]')
		lost=$(iperf_stat "$json" 'j["end"]["sum"]["lost_packets"]')
		expect_ge "iperf3 UDP $dir: datagrams sent" 1000 "$packets"
		echo "# iperf3 UDP $dir: $packets datagrams, $lost lost" >&3
		# The path is loopback and memory: a loss above 1% is the tunnel's.
		expect_ge "iperf3 UDP $dir: datagrams that arrived (99%)" \
			$((packets * 99 / 100)) $((packets - lost))
	done
}

# wrk_run OUT CONNS SECONDS WRAPPER... : wrk against nginx; counts the server's established
# connections in the middle of the run into $OUT.conns.
wrk_run() {
	local out=$1 conns=$2 secs=$3 pid
	shift 3
	"$@" wrk -t 2 -c "$conns" -d "${secs}s" --timeout 5s \
		"http://$TOPO_SERVER_V4:$NGINX_PORT/index.html" >"$out" 2>&1 &
	pid=$!
	sleep $((secs / 2 + 1))
	in_server ss -Htn state established "sport = :$NGINX_PORT" | wc -l >"$out.conns"
	wait "$pid"
}

@test "wrk with 200 connections: no socket errors, all of them open at once" {
	local req
	# The server alone first (wrk in the server namespace): it must take the load cleanly,
	# or an error below would not be the tunnel's.
	wrk_run "$T/wrk-local" 200 2 in_server
	expect_lacks "wrk in the server namespace" "Socket errors" "$(cat "$T/wrk-local")"
	run wrk_run "$T/wrk" 200 4 shim_run
	expect_status "wrk through the shim" 0
	output=$(cat "$T/wrk")
	expect_has "wrk's report" "200 connections" "$output"
	expect_lacks "wrk's report" "Socket errors" "$output"
	expect_lacks "wrk's report" "Non-2xx" "$output"
	req=$(awk '/requests in/ { print $1 }' <<<"$output")
	expect_ge "requests completed" 1000 "$req"
	expect_ge "connections established at the server mid-run" 200 "$(cat "$T/wrk.conns")"
	echo "# wrk -c 200 through the shim: $(awk '/Requests\/sec/ { print $2 }' <<<"$output") requests/s ($(awk '/Requests\/sec/ { print $2 }' "$T/wrk-local") without the tunnel)" >&3
}

@test "python3 selectors: 40 non-blocking connects at once over IPv4 and IPv6, each echoes" {
	run shim_run "$TOPO_PYTHON" "$BATS_TEST_DIRNAME/nb_selectors.py" echo 20 \
		"$TOPO_SERVER_V4" "$ECHO_PORT" "$TOPO_SERVER_V6" "$ECHO_PORT"
	expect_status "nb_selectors.py echo" 0
	expect_eq "nb_selectors.py echo" "OK 40 connections" "$output"
}

@test "python3 selectors: a refused non-blocking connect reports ECONNREFUSED" {
	local addr
	for addr in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		run shim_run "$TOPO_PYTHON" "$BATS_TEST_DIRNAME/nb_selectors.py" refused \
			"$addr" "$CLOSED_PORT"
		expect_status "nb_selectors.py refused $addr" 0
		expect_eq "nb_selectors.py refused $addr" "OK refused" "$output"
	done
}

@test "bash /dev/tcp over IPv4 and IPv6 fetches index.html" {
	local host
	for host in "$TOPO_SERVER_V4" "$TOPO_SERVER_V6"; do
		# shellcheck disable=SC2016 # expanded by the inner bash
		run shim_run bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit
			printf "GET /index.html HTTP/1.0\r\n\r\n" >&3
			cat <&3' bash "$host" "$TOPO_HTTP_PORT"
		expect_status "bash /dev/tcp/$host" 0
		expect_has "response over /dev/tcp/$host" "HTTP/1.0 200 OK" "$output"
		expect_has "response over /dev/tcp/$host" "$(cat "$TOPO_DIR/www/index.html")" "$output"
	done
}
