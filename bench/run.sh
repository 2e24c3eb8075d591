#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench: our stack against the kernel's, in one run, on one machine. Every figure is a
# median over several runs of each side, alternated; the table gives ours / baseline.
# Benchmarks report, they do not gate: only a broken setup makes this fail. Without root
# (network namespaces, TUN) only the loopback rows run. See bench/README.md.
#
#   BENCH_REPS=N        runs of each bulk transfer (default 5)
#   BENCH_FAKE_SHIM=1   runs "ours" of the shim rows through the kernel client: a check of
#                       this harness, every ratio should come out near 1.00
set -uo pipefail
# Every preload below is chosen per command; none may come from the caller.
unset LD_PRELOAD TUNSHIM_CONFIG
# shellcheck source=bench/lib.bash
source "$(dirname "$0")/lib.bash"

BENCH_REPS=${BENCH_REPS:-5}
BENCH_IPERF_REPS=3
BENCH_IPERF_SECS=2
BENCH_RR_N=5000
BENCH_CONNECT_N=1000
BENCH_ONESHOT_N=30
BENCH_B2B_N=100
BENCH_PAR_N=10
BENCH_LOOP_N=20000
BENCH_LOOP_REPS=7
# The last CPU: both ends of the loopback ping-pong share it.
BENCH_CPU=$(($(nproc) - 1))

bench_header() {
	local rev
	rev=$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	[ -z "$(git -C "$BENCH_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
		rev="$rev + uncommitted changes"
	echo "tunshim benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), tree $rev"
	echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
		head -n 1)), Linux $(uname -r), $(wireguard-go --version 2>/dev/null | head -n 1)," \
		"load average $(cut -d' ' -f1 /proc/loadavg) at the start"
	echo "ours:     our stack inside the process: ts_fetch, or the program under LD_PRELOAD"
	echo "baseline: the same kind of program through a second wireguard-go's TUN (kernel TCP)"
	echo "both reach the server through one wireguard-go peer over loopback (bench/README.md)."
	echo "A row \"X | Y\" ran X on our side and Y on the baseline's. Medians;" \
		"ratio = ours / baseline."
	echo "MB/s = 10^6 bytes/s, higher is better; us = microseconds, lower is better."
	echo
}

bench_cleanup() {
	topo_down
	[ -z "${BENCH_TMP:-}" ] || rm -rf "$BENCH_TMP"
}

bench_notes() {
	[ -s "$BENCH_TMP/notes" ] || return 0
	echo
	echo "notes:"
	sed 's/^/  /' "$BENCH_TMP/notes"
}

# The preload with no config, in this namespace: needs no root.
bench_passthrough_plain() {
	local reps=$BENCH_LOOP_REPS
	bench_section "pass-through: loopback TCP_RR, 1 byte, one CPU (ours: LD_PRELOAD; base: plain)"
	bench_compare "$reps" "$(bench_cmd m_loop - "LD_PRELOAD=$BENCH_SHIM")" "m_loop -" \
		"loopback RR, LD_PRELOAD no config: median|us" \
		"loopback RR, LD_PRELOAD no config: p99|us"
}

bench_passthrough_config() {
	bench_compare "$BENCH_LOOP_REPS" \
		"$(bench_cmd m_loop "$TOPO_CLIENT_NS" "LD_PRELOAD=$BENCH_SHIM" "TUNSHIM_CONFIG=$TOPO_CONF")" \
		"$(bench_cmd m_loop "$TOPO_CLIENT_NS")" \
		"loopback RR, preload + config (lo untunnelled): median|us" \
		"loopback RR, preload + config (lo untunnelled): p99|us"
}

bench_bulk() {
	local reps=$BENCH_REPS
	bench_section "bulk TCP through the tunnel, 50 MiB, rate from first byte to last"
	# Warm-up, not timed: page cache, binaries.
	m_get_ts_fetch >/dev/null
	m_get_curl base >/dev/null
	bench_compare "$reps" m_get_ts_fetch "m_get_curl base" "HTTP GET: ts_fetch | curl|MB/s"
	bench_compare "$reps" "$(bench_shim_cmd "m_get_curl ours")" "m_get_curl base" \
		"HTTP GET: curl under the shim | curl|MB/s"
	bench_compare "$reps" "$(bench_shim_cmd "m_put_curl ours")" "m_put_curl base" \
		"HTTP PUT: curl -T under the shim | curl -T|MB/s"
	bench_section "iperf3, $BENCH_IPERF_SECS s, receiver's rate"
	bench_compare "$BENCH_IPERF_REPS" "$(bench_shim_cmd "m_iperf ours")" "m_iperf base" \
		"iperf3 upload (client sends)|MB/s"
	bench_compare "$BENCH_IPERF_REPS" "$(bench_shim_cmd "m_iperf ours -R")" "m_iperf base -R" \
		"iperf3 download (-R)|MB/s"
	bench_section "iperf3 between two wrapped programs (each the other's WireGuard peer)"
	bench_section "  against two wireguard-go with TUN devices"
	if [ "$BENCH_SHIM_STATE" = ok ] && bench_s2s_setup; then
		bench_compare "$BENCH_IPERF_REPS" "m_iperf_s2s" "m_iperf base" \
			"iperf3 shim to shim | TUN to TUN|MB/s"
	else
		bench_compare 1 "n/a (shim not built yet)" "m_iperf base" \
			"iperf3 shim to shim | TUN to TUN|MB/s"
	fi
}

bench_latency() {
	local ours base url
	url=$(bench_url /index.html)
	bench_section "request/response through the tunnel, 1 byte each way"
	bench_compare 3 "$(bench_shim_cmd "m_rr ours $BENCH_RR_N")" "m_rr base $BENCH_RR_N" \
		"TCP_RR, one connection, $BENCH_RR_N round trips: median|us" \
		"TCP_RR, one connection, $BENCH_RR_N round trips: p99|us"
	bench_compare 3 "$(bench_shim_cmd "m_rr ours $BENCH_CONNECT_N --connect")" \
		"m_rr base $BENCH_CONNECT_N --connect" \
		"connect + RR + close, $BENCH_CONNECT_N times: median|us" \
		"connect + RR + close, $BENCH_CONNECT_N times: p99|us"

	bench_section "one-shot processes, $BENCH_ONESHOT_N runs each, start to exit; ts_fetch brings" \
		"its tunnel up"
	bench_section "  every time (stack, handshake), curl under the shim attaches to the session the" \
		"previous run left"
	bench_section "  for its grace time; the TUN client's session is up already"
	ours=$(bench_cmd m_oneshot cold-ts_fetch "$TOPO_CLIENT_NS" \
		"$TS_FETCH" "$TOPO_CONF" "$TOPO_SERVER_V4" "$BENCH_HTTP_PORT" /index.html)
	base=$(bench_cmd m_oneshot warm-get "$TOPO_KC_NS" \
		"$BENCH_BIN/bench_get" "$TOPO_SERVER_V4" "$BENCH_HTTP_PORT" /index.html)
	bench_samples_rows "$ours" "$base" \
		"GET index.html: ts_fetch cold | bench_get: median" \
		"GET index.html: ts_fetch cold | bench_get: slowest" us
	ours=$(bench_cmd m_oneshot cold-curl "$BENCH_OURS_NS" env "${BENCH_OURS_ENV[@]}" \
		curl -sS -o /dev/null "$url")
	base=$(bench_cmd m_oneshot warm-curl "$TOPO_KC_NS" env curl -sS -o /dev/null "$url")
	bench_samples_rows "$(bench_shim_cmd "$ours")" "$base" \
		"GET index.html: curl under the shim, shared session | curl: median" \
		"GET index.html: curl under the shim, shared session | curl: slowest" us
}

# Issue 9's rows: short processes in a row, and many at once, all with one config.
bench_sessions() {
	bench_section "many processes with one config (ours share one session)"
	bench_compare 3 "$(bench_shim_cmd "m_backtoback ours $BENCH_B2B_N")" \
		"m_backtoback base $BENCH_B2B_N" \
		"$BENCH_B2B_N curl fetches one after another, total|ms"
	bench_compare 3 "$(bench_shim_cmd "m_parallel ours $BENCH_PAR_N")" \
		"m_parallel base $BENCH_PAR_N" \
		"$BENCH_PAR_N concurrent curl downloads of 50 MiB, aggregate|MB/s"
}

# Brings the topology up, quietly unless it fails.
bench_topology() {
	local log=$BENCH_TMP/setup.log
	# shellcheck disable=SC2119 # no preshared key
	if ! { topo_up && topo_kernel_client_up && bench_servers_up; } >"$log" 2>&1; then
		echo "bench: the namespace topology did not come up:" >&2
		tail -n 20 "$log" >&2
		topo_diag >&2
		return 1
	fi
}

main() {
	local why f t0=$SECONDS
	for f in "$BENCH_SHIM" "$TS_FETCH"; do
		[ -e "$f" ] || { echo "bench: $f is missing (make bench builds it)" >&2; exit 1; }
	done
	BENCH_TMP=$(mktemp -d /tmp/tunshim-bench.XXXXXX) || exit 1
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	bench_helpers || { echo "bench: cannot build the helpers in bench/" >&2; exit 1; }
	# The library as it is now, whatever a rebuild does to build/ during the run.
	cp "$BENCH_SHIM" "$BENCH_TMP/libtunshim.so" && BENCH_SHIM=$BENCH_TMP/libtunshim.so
	bench_header
	bench_table_head
	bench_passthrough_plain
	why=$(topo_cannot_run)
	if [ -n "$why" ]; then
		echo
		echo "The tunnel benchmarks need network namespaces and a TUN device: $why."
		bench_notes
		exit 0
	fi
	bench_topology || exit 1
	bench_shim_probe
	bench_passthrough_config
	bench_bulk
	bench_latency
	bench_sessions
	bench_notes
	echo
	echo "($((SECONDS - t0)) s)"
}

main "$@"
