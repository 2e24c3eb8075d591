#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# curl, unmodified, through libtunshim.so: over IPv4 and IPv6, through the wrapper
# command, 100 MB intact, and the errors a user sees: a closed port is refused at once, an
# address nobody answers times out with curl's own message. Without the shim the same curl
# has no route at all, so what arrives came through the tunnel.

load helpers

setup_file() {
	shim_setup_file || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	HUGE_SHA256=$(topo_make_file huge.bin 100)
	export HUGE_SHA256
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

url4() {
	echo "http://$TOPO_SERVER_V4:${2:-$TOPO_HTTP_PORT}/$1"
}

url6() {
	echo "http://[$TOPO_SERVER_V6]:${2:-$TOPO_HTTP_PORT}/$1"
}

@test "without the shim curl has no route to the server (IPv4 and IPv6)" {
	local u
	for u in "$(url4 index.html)" "$(url6 index.html)"; do
		run plain_run curl -sS --max-time 5 -o /dev/null "$u"
		expect_status "curl $u without the shim (7: cannot connect)" 7
		expect_has "curl's message" "Failed to connect" "$output"
	done
}

@test "curl over IPv4" {
	local rx0
	rx0=$(wg_rx_bytes)
	run shim_run curl -sS --max-time 20 -o "$T/body" "$(url4 index.html)"
	expect_status "curl over IPv4" 0
	cmp "$TOPO_DIR/www/index.html" "$T/body"
	expect_tunnel_rx "$rx0"
}

@test "curl over IPv6" {
	local rx0
	rx0=$(wg_rx_bytes)
	run shim_run curl -sS --max-time 20 -o "$T/body" "$(url6 index.html)"
	expect_status "curl over IPv6" 0
	cmp "$TOPO_DIR/www/index.html" "$T/body"
	expect_tunnel_rx "$rx0"
}

@test "curl through the wrapper command, tunshim -c CONFIG -- curl" {
	run wrap_run curl -sS --max-time 20 -o "$T/body" "$(url4 index.html)"
	expect_status "tunshim -c ... -- curl" 0
	cmp "$TOPO_DIR/www/index.html" "$T/body"
}

@test "curl downloads 100 MiB with a matching sha256" {
	local t0 t1 sum size
	t0=$EPOCHREALTIME
	run shim_run curl -sS --max-time 55 -o "$T/huge" "$(url4 huge.bin)"
	t1=$EPOCHREALTIME
	expect_status "curl of 100 MiB" 0
	size=$(stat -c %s "$T/huge")
	expect_eq "bytes downloaded" $((100 * 1024 * 1024)) "$size"
	sum=$(sha256sum <"$T/huge" | cut -d' ' -f1)
	expect_eq "sha256 of huge.bin" "$HUGE_SHA256" "$sum"
	echo "# curl, 100 MiB over the tunnel: $(mb_per_s "$size" "$t0" "$t1") MB/s" >&3
}

@test "curl to a closed port: 'Connection refused' in well under a second" {
	local u t0 ms
	for u in "$(url4 "" "$CLOSED_PORT")" "$(url6 "" "$CLOSED_PORT")"; do
		t0=$EPOCHREALTIME
		run shim_run curl -sS -v --max-time 10 -o /dev/null "$u"
		ms=$(ms_since "$t0")
		expect_status "curl $u (7: cannot connect)" 7
		expect_has "curl -v's account" "Connection refused" "$output"
		echo "# curl $u refused after $ms ms (process start to exit)" >&3
		[ "$ms" -lt 1000 ] || { echo "refusal took $ms ms, expected well under 1 s" >&2; false; }
	done
}

@test "curl to an address nobody answers times out with curl's message" {
	local u t0 ms
	for u in "http://$SILENT_V4:$TOPO_HTTP_PORT/" "http://[$SILENT_V6]:$TOPO_HTTP_PORT/"; do
		t0=$EPOCHREALTIME
		run shim_run curl -sS --connect-timeout 2 -o /dev/null "$u"
		ms=$(ms_since "$t0")
		expect_status "curl --connect-timeout 2 $u (28: timeout)" 28
		expect_has "curl's message" "Failed to connect to" "$output"
		expect_has "curl's message" "Timeout was reached" "$output"
		# curl's own timer decides, not an early error from the shim.
		[ "$ms" -ge 1900 ] && [ "$ms" -lt 4000 ] ||
			{ echo "curl gave up after $ms ms, expected about 2000" >&2; false; }
	done
}

@test "curl fetches several URLs one after another and in parallel" {
	local -a args=()
	local i
	for i in 1 2 3 4 5 6; do
		args+=("$(url4 index.html)" -o "$T/k$i")
	done
	run shim_run curl -sS --max-time 30 "${args[@]}"
	expect_status "curl with six URLs" 0
	for i in 1 2 3 4 5 6; do
		cmp "$TOPO_DIR/www/index.html" "$T/k$i"
	done
	args=()
	for i in 1 2 3 4; do
		args+=("$(url4 mid.bin)" -o "$T/p$i")
	done
	run shim_run curl -sS --max-time 40 --parallel --parallel-max 4 "${args[@]}"
	expect_status "curl --parallel, four 20 MiB files" 0
	for i in 1 2 3 4; do
		expect_eq "sha256 of parallel download $i" "$TOPO_MID_SHA256" \
			"$(sha256sum <"$T/p$i" | cut -d' ' -f1)"
	done
}
