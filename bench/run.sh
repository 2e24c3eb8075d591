#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench: our stack against the kernel's, in one run, on one machine. Every figure is a
# median over several runs of each side, alternated; the table gives ours / baseline and,
# where issue 12 sets one, the target and whether this run met it. It also writes the
# table as $BENCH_BIN/bench.tsv and, with gnuplot, a plot as $BENCH_BIN/bench.svg.
# Benchmarks report, they do not gate: only a broken setup makes this fail. Without root
# (network namespaces, TUN) only the rows that need no namespace run. See bench/README.md.
#
#   BENCH_REPS=N        runs of each bulk transfer (default 5); when set, also the most runs
#                       of any row (BENCH_REPS=1 with BENCH_ONLY: a quick look at a few rows)
#   BENCH_ONLY=REGEX    measure only the rows whose name, or whose section's heading,
#                       matches REGEX (extended, case-insensitive), e.g. BENCH_ONLY='wrk|idle'
#   BENCH_FAKE_SHIM=1   runs "ours" of the shim rows through the kernel client: a check of
#                       this harness, every ratio should come out near 1.00
#   BENCH_PREFIX=NAME   the topology's name prefix (default tsb), to run beside another
set -uo pipefail
# Every preload below is chosen per command; none may come from the caller.
unset LD_PRELOAD TUNSHIM_CONFIG
# shellcheck source=bench/lib.bash
source "$(dirname "$0")/lib.bash"

BENCH_REPS_CAP=${BENCH_REPS:-}
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
BENCH_AEAD_REPS=3
BENCH_STREAM_REPS=7
BENCH_STARTUP_REPS=5
BENCH_STARTUP_N=200
BENCH_WAN_REPS=3
BENCH_WAN_CAP=10
BENCH_WRK_REPS=2
BENCH_WRK_CONNS=1000
BENCH_WRK_SECS=10
BENCH_IDLE_REPS=3
BENCH_IDLE_N=1000
# Descriptors for wrk's and bench_idle's 1,000 connections (two each on our side: the
# program's end of the socketpair and the stack's) and for the servers that take them.
BENCH_NOFILE=65536
# The last CPU: both ends of the loopback ping-pong share it.
BENCH_CPU=$(($(nproc) - 1))

# Rows that others refer to.
BENCH_AEAD_ROW="AEAD ceiling: ChaCha20-Poly1305, 1420 B, one core"
BENCH_S2S_ROW="iperf3 shim to shim | TUN to TUN"
BENCH_S2S_AEAD_ROW="iperf3 shim to shim | one-core AEAD ceiling"

# bench_target NAME: issue 12's target for a row (see "the table" in lib.bash), or nothing.
bench_target() {
	case $1 in
	"loopback RR, "*": median") echo "ratio <= 1.02" ;;
	"loopback bulk"*) echo "ratio >= 0.98" ;;
	"start-up"*": median") echo "diff <= 1000" ;;
	"HTTP GET: curl under the shim | curl") echo "ratio >= 1.25" ;;
	"HTTP PUT"*) echo "ratio >= 1.25" ;;
	"iperf3 upload"* | "iperf3 download"*) echo "ratio >= 1.25" ;;
	"$BENCH_S2S_ROW") echo "ratio >= 3" ;;
	"$BENCH_S2S_AEAD_ROW") echo "ratio >= 0.25" ;;
	"TCP_RR, one connection, "*) echo "ratio <= 0.6" ;;
	"connect + RR + close, "*": median") echo "ratio <= 0.6" ;;
	"GET index.html: curl under the shim, shared session | curl: median") echo "ratio <= 1.0" ;;
	"WAN"*"loss"*) echo "ratio >= 0.7" ;;
	"WAN"*) echo "ratio >= 0.9" ;;
	"wrk"*"requests/s") echo "ratio >= 1.0" ;;
	"wrk"*"errors"*) echo "ours = 0" ;;
	*"idle tunnel connections: resident memory added") echo "ours <= 64" ;;
	esac
}

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
	echo "target: issue 12's, for the ratio unless it says \"ours\"; met: whether this run met it."
	echo
	printf 'tunshim bench, %s, tree %s, %s CPUs (%s)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
		"$rev" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
			head -n 1)" | tr -d "'\"" >"$BENCH_TMP/title"
}

bench_cleanup() {
	local pids
	# Wrapped programs of ours that outlived their row (a stack's continuation still
	# closing connections): by the library's path, which is this run's own.
	if [ -n "${BENCH_TMP:-}" ]; then
		pids=$(bench_pids_with "LD_PRELOAD=$BENCH_TMP/")
		# shellcheck disable=SC2086 # pids: words
		[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
	fi
	topo_down
	[ -z "${BENCH_TMP:-}" ] || rm -rf "$BENCH_TMP"
}

bench_notes() {
	[ -z "${BENCH_ONLY:-}" ] ||
		bench_note "BENCH_ONLY='$BENCH_ONLY': only the rows it matches were measured"
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

# The cipher's one-core ceiling, before anything else runs: the median of each
# implementation, and the faster one as the row (BENCH_AEAD_CEILING, for the shim-to-shim
# fraction).
bench_aead_rows() {
	local f=$BENCH_TMP/aead s c i
	bench_section "cipher: ChaCha20-Poly1305 on one CPU, 1420-byte packets (bench_aead), the best" \
		"implementation"
	bench_wanted "$BENCH_AEAD_ROW|MB/s" "$BENCH_S2S_AEAD_ROW|MB/s" || return 0
	: >"$f"
	for ((i = 0; i < $(bench_reps "$BENCH_AEAD_REPS"); i++)); do
		m_aead >>"$f"
	done
	s=$(cut -d' ' -f1 "$f" | bench_median)
	c=$(cut -d' ' -f2 "$f" | bench_median)
	BENCH_AEAD_CEILING=$(printf '%s\n' "$s" "$c" | bench_rank 100 | cut -d' ' -f1)
	bench_note "AEAD, medians of $(bench_reps "$BENCH_AEAD_REPS") runs of $BENCH_AEAD_SECS s:" \
		"libsodium ${s:-failed} MB/s, libcrypto (OpenSSL 3, EVP through dlopen)" \
		"${c:-failed} MB/s"
	bench_wanted "$BENCH_AEAD_ROW|MB/s" || return 0
	bench_row "$BENCH_AEAD_ROW" MB/s "${BENCH_AEAD_CEILING:-failed}" -
}

# A program that never uses the tunnel, under the preload with a config, against the same
# program plain: bulk over loopback and process start-up. Needs no root.
bench_passthrough_more() {
	local bulk="loopback bulk, 1 GiB in 16 KiB read/write, one CPU|MB/s"
	local start="start-up, /bin/true, $BENCH_STARTUP_N runs: median|us"
	local -a pre
	bench_section "pass-through, a config whose AllowedIPs leave loopback alone (ours:" \
		"LD_PRELOAD + TUNSHIM_CONFIG)"
	bench_wanted "$bulk" "$start" || return 0
	bench_pass_conf || { bench_note "pass-through: cannot write a config"; return 0; }
	pre=("LD_PRELOAD=$BENCH_SHIM" "TUNSHIM_CONFIG=$BENCH_TMP/pass.conf")
	bench_compare "$BENCH_STREAM_REPS" "$(bench_cmd m_stream "${pre[@]}")" m_stream "$bulk"
	bench_compare "$BENCH_STARTUP_REPS" "$(bench_cmd m_startup "${pre[@]}")" m_startup "$start"
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
	bench_section "  against two wireguard-go with TUN devices, and as a fraction of the AEAD ceiling"
	# The fraction row needs the shim-to-shim figure, wanted or not.
	if [ "$BENCH_SHIM_STATE" = ok ] &&
		bench_wanted "$BENCH_S2S_ROW|MB/s" "$BENCH_S2S_AEAD_ROW|MB/s" && bench_s2s_setup; then
		BENCH_FORCE=1 bench_compare "$BENCH_IPERF_REPS" "m_iperf_s2s" "m_iperf base" \
			"$BENCH_S2S_ROW|MB/s"
	else
		bench_compare 1 "n/a (shim not built yet)" "m_iperf base" "$BENCH_S2S_ROW|MB/s"
	fi
	bench_wanted "$BENCH_S2S_AEAD_ROW|MB/s" || return 0
	bench_row "$BENCH_S2S_AEAD_ROW" MB/s "$(bench_tsv_value "$BENCH_S2S_ROW" 3)" \
		"${BENCH_AEAD_CEILING:-failed}"
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

# WAN shape (bench_wan_up in lib.bash): both sides' outer UDP through a ts_relay each, with
# the same delay, rate and queue, then with loss added.
bench_wan() {
	local ok=1 w="WAN" l="WAN + 1% loss"
	local g="HTTP GET: curl under the shim | curl|MB/s"
	local p="HTTP PUT: curl -T under the shim | curl -T|MB/s"
	bench_section "WAN shape: each side's outer UDP through a ts_relay ${BENCH_WAN_OPTS[*]}," \
		"50 MiB"
	bench_section "  over one connection, at most $BENCH_WAN_CAP s a run; then with --loss 1 added"
	bench_wanted "$w, $g" "$w, $p" "$l, $g" "$l, $p" || return 0
	{ bench_wan_up "${BENCH_WAN_OPTS[@]}" >"$BENCH_TMP/wan.log" 2>&1; } || ok=0
	bench_wan_rows "$ok" "$w" "$g" "$p"
	bench_wan_counters "$w"
	ok=1
	{ bench_wan_up "${BENCH_WAN_OPTS[@]}" --loss 1 >>"$BENCH_TMP/wan.log" 2>&1; } || ok=0
	bench_wan_rows "$ok" "$l" "$g" "$p"
	bench_wan_counters "$l"
	bench_wan_down
}

# bench_wan_rows OK PREFIX GET PUT: the two rows of one path shape.
bench_wan_rows() {
	local ours=$BENCH_SHIM_STATE
	if [ "$1" != 1 ]; then
		ours="n/a (relays did not start)"
		bench_note "WAN: $(tail -n 1 "$BENCH_TMP/wan.log")"
	fi
	# A side the cap stopped once runs no more: its rate is clear, and each more run would
	# cost the whole cap.
	[ "$ours" != ok ] || ours="m_wan ours get"
	BENCH_BUDGET=$BENCH_WAN_CAP bench_compare "$BENCH_WAN_REPS" "$ours" "m_wan base get" "$2, $3"
	[ "${ours#n/a}" != "$ours" ] || ours="m_wan ours put"
	BENCH_BUDGET=$BENCH_WAN_CAP bench_compare "$BENCH_WAN_REPS" "$ours" "m_wan base put" "$2, $4"
}

# bench_wan_counters WHAT: stops both relays and notes what they did (drops, queue
# overflows) over the rows of one shape, and a side whose traffic went round its relay.
bench_wan_counters() {
	local side line rx col=3 ran
	for side in ours base; do
		topo_stop "wan-$side"
		line=$(grep '^ts_relay: up: rx=' "$TOPO_DIR/wan-$side.log" 2>/dev/null | tail -n 1)
		[ -n "$line" ] || continue
		bench_note "$1, relay of $side: ${line#ts_relay: }"
		rx=$(relay_stat "$line" up rx)
		# A 50 MiB transfer is some 37,000 datagrams: a side with a figure saw thousands.
		ran=$(bench_tsv_value "$1, HTTP GET: curl under the shim | curl" "$col")
		ran+=$(bench_tsv_value "$1, HTTP PUT: curl -T under the shim | curl -T" "$col")
		col=4
		[[ $ran =~ [0-9] ]] && [ "${rx:-0}" -lt 1000 ] &&
			bench_note "$1: $side's traffic did not go through its relay: its figures are void"
	done
}

# Scale: 1,000 connections at once through the tunnel, busy (wrk) and idle (memory).
bench_scale() {
	local w="wrk -c $BENCH_WRK_CONNS, $BENCH_WRK_SECS s, index.html"
	local m="$BENCH_IDLE_N idle tunnel connections: resident memory added|MiB"
	local c="$BENCH_IDLE_N connects + 1-byte echo each, at once|ms"
	local b="resident memory with one connection (ours: stack up)|MiB"
	bench_section "scale: $BENCH_WRK_CONNS connections at once through the tunnel (ours:" \
		"LD_PRELOAD)"
	bench_compare "$BENCH_WRK_REPS" "$(bench_shim_cmd "m_wrk ours")" "m_wrk base" \
		"$w: requests/s|req/s" "$w: errors, worst run|errors"
	bench_section "  idle: baseline is the kernel path's process, whose sockets live in the kernel"
	bench_wanted "$m" "$c" "$b" || return 0
	[ "$BENCH_SHIM_STATE" != ok ] || bench_idle_conf ||
		bench_note "idle: could not add a key for the memory row"
	bench_compare "$BENCH_IDLE_REPS" "$(bench_shim_cmd "m_idle ours")" "m_idle base" "$m" "$c" \
		"$b"
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

# The table as TSV and the plot drawn from it; a plot of an earlier run does not stay
# beside this run's table.
bench_outputs() {
	local tsv=$BENCH_BIN/bench.tsv svg=$BENCH_BIN/bench.svg
	cp "$BENCH_TMP/table.tsv" "$tsv" || return
	rm -f "$svg"
	if bench_plot "$tsv" "$BENCH_TMP/bench.svg" && mv "$BENCH_TMP/bench.svg" "$svg"; then
		echo "plot:  $svg"
	fi
	echo "table: $tsv"
}

bench_finish() {
	echo
	bench_outputs
	bench_notes
	echo
	echo "($((SECONDS - $1)) s)"
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
	# Root may raise the hard limit; a user gets as far as it goes.
	ulimit -n "$BENCH_NOFILE" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
	bench_header
	bench_table_head
	bench_aead_rows
	bench_passthrough_plain
	bench_passthrough_more
	why=$(topo_cannot_run)
	if [ -n "$why" ]; then
		echo
		echo "The tunnel benchmarks need network namespaces and a TUN device: $why."
		bench_finish "$t0"
		exit 0
	fi
	bench_topology || exit 1
	bench_shim_probe
	bench_passthrough_config
	bench_bulk
	bench_latency
	bench_sessions
	bench_wan
	bench_scale
	bench_finish "$t0"
}

main "$@"
