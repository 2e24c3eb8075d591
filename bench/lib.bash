# SPDX-License-Identifier: MIT
# Helpers for bench/run.sh: the servers the benchmarks talk to, the two sides of every
# comparison, and the table. Sources tests/lib/topology.bash for the namespaces.
#
#   ours      our stack, in the client namespace $TOPO_CLIENT_NS (lo only): ts_fetch, or an
#             ordinary program under LD_PRELOAD=libtunshim.so with TUNSHIM_CONFIG
#   baseline  the same kind of program in $TOPO_KC_NS, reaching the server through the TUN
#             of a second wireguard-go (topo_kernel_client_up): the kernel's TCP
#
# Both go through the same wireguard-go server peer into $TOPO_SERVER_NS, where
# bench_httpd, bench_pingpong and iperf3 answer.

# shellcheck disable=SC2034 # BENCH_* variables are run.sh's interface too
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_BUILD=${BENCH_BUILD:-${TUNSHIM_BUILD:-$BENCH_ROOT/build}}
BENCH_BIN=$BENCH_BUILD/bench
BENCH_SHIM=${BENCH_SHIM:-$BENCH_BUILD/libtunshim.so}
# Not "bench": the topology's interface names must fit IFNAMSIZ for any pid_max.
TOPO_PREFIX=${BENCH_PREFIX:-tsb}
TOPO_TOOLS=${TOPO_TOOLS:-$BENCH_BUILD/tests/tools}
# shellcheck source=tests/lib/topology.bash
source "$BENCH_ROOT/tests/lib/topology.bash"

BENCH_HTTP_PORT=8090
BENCH_PING_PORT=8091
BENCH_IPERF_PORT=5201
BENCH_BIG=big.bin
BENCH_BIG_BYTES=$((50 * 1024 * 1024))
BENCH_BUDGET=${BENCH_BUDGET:-20}

# bench_note TEXT: a line for under the table (a file: measurements run in subshells).
bench_note() {
	# shellcheck disable=SC2153 # BENCH_TMP: run.sh's scratch directory
	echo "$*" >>"$BENCH_TMP/notes"
}

# bench_helpers: builds bench/*.c into $BENCH_BIN when missing or older than the source.
# They link nothing of ours, so this needs no make rule of its own. bench_aead alone links
# a library: libsodium, the one the build needs anyway (libcrypto it loads with dlopen).
bench_helpers() {
	local src bin name
	local -a libs
	mkdir -p "$BENCH_BIN" || return
	for src in "$BENCH_ROOT"/bench/*.c; do
		name=$(basename "$src" .c)
		bin=$BENCH_BIN/bench_$name
		[ "$bin" -nt "$src" ] && continue
		libs=()
		[ "$name" != aead ] || libs=(-lsodium -ldl)
		"${CC:-cc}" -std=gnu11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -pthread \
			-o "$bin" "$src" "${libs[@]}" || return
	done
}

# ---- statistics ---------------------------------------------------------------------

# A number, for awk (-v num="$BENCH_NUM"); anything else is text ("failed", "-", "n/a ...").
BENCH_NUM='^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$'

# bench_median: the median of the numbers on stdin (mean of the middle two if even);
# nothing if there are none.
bench_median() {
	sort -g | awk -v num="$BENCH_NUM" '$1 ~ num { v[++n] = $1 }
		END {
			if (!n) exit
			m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			printf "%.6g\n", m
		}'
}

# bench_rank P: the P-th percentile of the numbers on stdin by nearest rank, and the count.
bench_rank() {
	sort -g | awk -v p="$1" -v num="$BENCH_NUM" '$1 ~ num { v[++n] = $1 }
		END {
			if (!n) exit
			r = int((n * p + 99) / 100)
			if (r < 1) r = 1
			printf "%.6g %d\n", v[r], n
		}'
}

# ---- the table ----------------------------------------------------------------------
#
# Every row is also a line of $BENCH_TMP/table.tsv (figure, unit, ours, baseline, ratio,
# target, met: the raw medians, not the rounded text), which run.sh keeps as
# $BENCH_BIN/bench.tsv and plots. Targets come from bench_target NAME (run.sh's list):
#   ratio OP X        ours / baseline against X (the ratio as printed, two decimals)
#   ours OP X         our figure alone, in the row's unit
#   diff OP X         ours - baseline, in the row's unit
# with OP one of >=, <=, =.

BENCH_FMT='%-58s | %13s | %13s | %6s | %17s | %3s\n'

bench_table_head() {
	# shellcheck disable=SC2059
	printf "$BENCH_FMT" figure ours baseline ratio target met
	printf '%s\n' "$(printf '%.0s-' {1..128})"
	printf 'figure\tunit\tours\tbaseline\tratio\ttarget\tmet\n' >"$BENCH_TMP/table.tsv"
}

# bench_section TEXT: a heading over the rows that follow; a TEXT that starts with two spaces
# continues the one before. Printed with the first row under it, so that a heading whose
# rows BENCH_ONLY leaves out does not show.
bench_section() {
	if [ "${1:0:2}" = "  " ] && [ -n "${BENCH_SECTION_TEXT:-}" ]; then
		BENCH_SECTION_TEXT+=" ${1:2}"
		BENCH_SECTION_PENDING+=$'\n'"-- $*"
	else
		BENCH_SECTION_TEXT=$*
		BENCH_SECTION_PENDING="-- $*"
	fi
}

bench_section_flush() {
	[ -z "${BENCH_SECTION_PENDING:-}" ] || printf '%s\n' "$BENCH_SECTION_PENDING"
	BENCH_SECTION_PENDING=
}

# bench_wanted ROW...: whether to measure rows ("NAME|UNIT"): always, unless BENCH_ONLY (an
# extended regular expression, case-insensitive) is set; then only if it matches one of
# the names or the current section's heading.
bench_wanted() {
	local spec
	[ -n "${BENCH_ONLY:-}" ] || return 0
	grep -qiE -- "$BENCH_ONLY" <<<"${BENCH_SECTION_TEXT:-}" && return 0
	for spec; do
		grep -qiE -- "$BENCH_ONLY" <<<"${spec%|*}" && return 0
	done
	return 1
}

# bench_value NUMBER UNIT: a figure with its unit, or the text as it is.
bench_value() {
	awk -v v="$1" -v u="$2" -v num="$BENCH_NUM" 'BEGIN {
		if (v !~ num) { print v; exit }
		if (u == "errors" || u == "req/s") printf "%.0f %s\n", v, u
		else if (u == "MB/s" || u == "MiB" || v < 100) printf "%.1f %s\n", v, u
		else printf "%.0f %s\n", v, u
	}'
}

# bench_target_text SPEC: the target column ("-" for none).
bench_target_text() {
	local kind op x
	read -r kind op x <<<"$1"
	case $kind in
	ratio) echo "$op $x" ;;
	ours) echo "ours $op $x" ;;
	diff) echo "ours $op base+$x" ;;
	*) echo - ;;
	esac
}

# bench_met SPEC OURS BASE RATIO: yes, no, or - (no target, or no figure to judge).
bench_met() {
	local kind op x
	read -r kind op x <<<"$1"
	awk -v k="${kind:-}" -v op="${op:-}" -v x="${x:-}" -v a="$2" -v b="$3" -v r="$4" \
		-v num="$BENCH_NUM" 'BEGIN {
		if (k == "ratio" && r ~ num) v = r
		else if (k == "ours" && a ~ num) v = a
		else if (k == "diff" && a ~ num && b ~ num) v = a - b
		else { print "-"; exit }
		ok = op == ">=" ? v >= x : op == "<=" ? v <= x : v == x
		print ok ? "yes" : "no"
	}'
}

# bench_row NAME UNIT OURS BASE: one line of the table; the ratio is ours / baseline.
bench_row() {
	local ratio target met
	ratio=$(awk -v a="$3" -v b="$4" -v num="$BENCH_NUM" 'BEGIN {
		if (a ~ num && b ~ num && b > 0) printf "%.2f\n", a / b
		else print "-"
	}')
	target=$(bench_target "$1")
	# A row judged by our figure alone compares unlike things across the columns (memory
	# in the process against memory in the kernel): no ratio.
	[ "${target%% *}" != ours ] || ratio=-
	met=$(bench_met "$target" "$3" "$4" "$ratio")
	bench_section_flush
	# shellcheck disable=SC2059
	printf "$BENCH_FMT" "$1" "$(bench_value "$3" "$2")" "$(bench_value "$4" "$2")" "$ratio" \
		"$(bench_target_text "$target")" "$met"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$ratio" \
		"$(bench_target_text "$target")" "$met" >>"$BENCH_TMP/table.tsv"
}

# bench_tsv_value NAME COLUMN: a figure of a row printed earlier (ours 3, baseline 4).
bench_tsv_value() {
	awk -F'\t' -v n="$1" -v c="$2" '$1 == n { v = $c } END { print v }' "$BENCH_TMP/table.tsv"
}

# bench_cmd WORDS...: the words as one line of shell, for bench_compare to eval.
bench_cmd() {
	local q
	printf -v q '%q ' "$@"
	echo "${q% }"
}

# ---- comparisons --------------------------------------------------------------------

# bench_compare REPS OURS BASE ROW...: runs the commands OURS and BASE (eval'd; each prints
# one line of K numbers, or nothing when it failed) REPS times, alternating, and prints one
# row per field, "NAME|UNIT", with the median of each side (for the unit "errors", the
# largest: one run with errors is one too many). OURS of the form "n/a ..." is not run:
# that text stands in its column; BASE "-" is not run either. A side that has used up
# $BENCH_BUDGET seconds runs no more (a slow path must not stretch the whole run). Rows
# BENCH_ONLY leaves out are not run, unless BENCH_FORCE is set (a later row needs them).
bench_compare() {
	local reps i ours=$2 base=$3
	reps=$(bench_reps "$1")
	local of=$BENCH_TMP/ours.$BASHPID bf=$BENCH_TMP/base.$BASHPID
	local -A spent=([ours]=0 [base]=0) runs=([ours]=0 [base]=0)
	shift 3
	bench_wanted "$@" || [ -n "${BENCH_FORCE:-}" ] || return 0
	: >"$of"
	: >"$bf"
	[ "${ours#n/a}" = "$ours" ] || spent[ours]=-1
	[ "$base" != - ] || spent[base]=-1
	for ((i = 0; i < reps; i++)); do
		bench_side ours "$ours" "$of"
		bench_side base "$base" "$bf"
	done
	for i in ours base; do
		[ "${runs[$i]}" -ge "$reps" ] || [ "${spent[$i]}" -lt 0 ] ||
			bench_note "${1%|*}: $i: ${runs[$i]} of $reps runs (over $BENCH_BUDGET s)"
	done
	bench_rows "$ours" "$base" "$of" "$bf" "$@"
}

# bench_reps N: N, or BENCH_REPS if the caller set a smaller one (run.sh's BENCH_REPS_CAP).
bench_reps() {
	local cap=${BENCH_REPS_CAP:-}
	if [ -n "$cap" ] && [ "$cap" -lt "$1" ]; then
		echo "$cap"
	else
		echo "$1"
	fi
}

# bench_side SIDE CMD FILE: one run of CMD for bench_compare, within SIDE's budget.
bench_side() {
	local t0=$SECONDS line
	[ "${spent[$1]}" -ge 0 ] && [ "${spent[$1]}" -lt "$BENCH_BUDGET" ] || return 0
	line=$(eval "$2")
	[ -z "$line" ] || echo "$line" >>"$3"
	spent[$1]=$((spent[$1] + SECONDS - t0))
	runs[$1]=$((runs[$1] + 1))
}

bench_rows() {
	local ours=$1 base=$2 of=$3 bf=$4 k=1 spec o b
	shift 4
	for spec; do
		if [ "${spec##*|}" = errors ]; then
			o=$(cut -d' ' -f"$k" "$of" | bench_rank 100 | cut -d' ' -f1)
			b=$(cut -d' ' -f"$k" "$bf" | bench_rank 100 | cut -d' ' -f1)
		else
			o=$(cut -d' ' -f"$k" "$of" | bench_median)
			b=$(cut -d' ' -f"$k" "$bf" | bench_median)
		fi
		[ "${ours#n/a}" = "$ours" ] || o=$ours
		[ "$base" != - ] || b=-
		bench_row "${spec%|*}" "${spec##*|}" "${o:-failed}" "${b:-failed}"
		k=$((k + 1))
	done
}

# bench_run NAME SECONDS CMD...: CMD with a time limit, its stderr kept in $BENCH_TMP/NAME.err;
# a failure is noted under the table with the last line it printed.
bench_run() {
	local name=$1 secs=$2 rc=0 err=$BENCH_TMP/$1.err
	shift 2
	# --foreground keeps CMD in our process group, so ^C reaches it at once.
	timeout --foreground -k 2 "$secs" "$@" 2>"$err" || rc=$?
	[ "$rc" = 0 ] || bench_note "$name: exit $rc: $(tail -n 1 "$err" 2>/dev/null)"
	return "$rc"
}

# The two sides: bench_ours / bench_base NAME SECONDS CMD... run CMD through bench_run in the
# client namespace under the preload (ours), or as it is in the kernel client's namespace
# (baseline). BENCH_OURS_NS and BENCH_OURS_ENV are set by bench_shim_probe.
bench_ours() {
	local name=$1 secs=$2
	shift 2
	bench_run "$name" "$secs" ip netns exec "$BENCH_OURS_NS" env "${BENCH_OURS_ENV[@]}" "$@"
}

bench_base() {
	local name=$1 secs=$2
	shift 2
	bench_run "$name" "$secs" ip netns exec "$TOPO_KC_NS" "$@"
}

# bench_client NAME SECONDS CMD...: CMD in the client namespace as it is (ts_fetch carries
# the stack itself).
bench_client() {
	local name=$1 secs=$2
	shift 2
	bench_run "$name" "$secs" ip netns exec "$TOPO_CLIENT_NS" "$@"
}

# ---- setup --------------------------------------------------------------------------

bench_listening() {
	[ -n "$(ip netns exec "$TOPO_SERVER_NS" ss -Hltn "sport = :$1")" ]
}

bench_url() {
	echo "http://$TOPO_SERVER_V4:$BENCH_HTTP_PORT$1"
}

# bench_servers_up: the file server and the echo server in the server namespace (iperf3
# starts afresh for each run), and a first exchange through the kernel client, so that
# its session exists before anything is timed.
bench_servers_up() {
	topo_spawn httpd "$TOPO_SERVER_NS" \
		"$BENCH_BIN/bench_httpd" "$BENCH_HTTP_PORT" "$TOPO_DIR/www" || return
	topo_spawn pingpong "$TOPO_SERVER_NS" \
		"$BENCH_BIN/bench_pingpong" server "$BENCH_PING_PORT" || return
	topo_wait_until 5 bench_listening "$BENCH_HTTP_PORT" || topo_fail "bench_httpd is not listening"
	topo_wait_until 5 bench_listening "$BENCH_PING_PORT" ||
		topo_fail "bench_pingpong is not listening"
	topo_wait_until 15 in_kclient "$BENCH_BIN/bench_get" "$TOPO_SERVER_V4" "$BENCH_HTTP_PORT" \
		/index.html || topo_fail "the kernel client cannot reach the server"
}

# bench_shim_probe: can the preload carry a connection? Sets BENCH_SHIM_STATE to "ok" or to
# the "n/a (...)" text for our column, and BENCH_OURS_NS / BENCH_OURS_ENV for bench_ours.
# BENCH_FAKE_SHIM=1 (for testing this harness) runs "ours" through the kernel client too,
# so those rows must come out near 1.00.
bench_shim_probe() {
	local rc=0
	BENCH_OURS_NS=$TOPO_CLIENT_NS
	BENCH_OURS_ENV=("LD_PRELOAD=$BENCH_SHIM" "TUNSHIM_CONFIG=$TOPO_CONF")
	BENCH_SHIM_STATE=ok
	if [ "${BENCH_FAKE_SHIM:-0}" = 1 ]; then
		BENCH_OURS_NS=$TOPO_KC_NS
		BENCH_OURS_ENV=()
		bench_note "BENCH_FAKE_SHIM=1: the shim rows ran the kernel client on both sides"
		return
	fi
	if ! nm -D --defined-only "$BENCH_SHIM" 2>/dev/null | awk '{ print $3 }' | grep -qx connect; then
		BENCH_SHIM_STATE="n/a (shim not built yet)"
		return
	fi
	bench_ours shim-probe 15 curl -sS -o /dev/null --max-time 10 "$(bench_url /)" || rc=$?
	[ "$rc" = 0 ] || BENCH_SHIM_STATE="n/a (shim probe failed)"
}

# bench_shim_cmd CMD: CMD for bench_compare's "ours", or the reason it cannot run.
bench_shim_cmd() {
	if [ "$BENCH_SHIM_STATE" = ok ]; then
		echo "$1"
	else
		echo "$BENCH_SHIM_STATE"
	fi
}

# ---- measurements: each prints one line of numbers, or nothing when it failed ------------

# wireguard-go ignores an initiation within 20 ms of the last one it took from a key, and
# every process of ours handshakes afresh with the same key: keep them apart.
bench_gap() {
	sleep 0.05
}

# bench_meter_mbs BYTES: MB/s (10^6 bytes a second) from bench_meter's line on stdin, from
# the first byte to the end; nothing unless exactly BYTES arrived.
bench_meter_mbs() {
	awk -v want="$1" '/^meter:/ {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); m[kv[1]] = kv[2] }
		}
		END {
			if (m["bytes"] != want || m["last_ns"] <= m["first_ns"]) exit
			printf "%.3f\n", m["bytes"] / (m["last_ns"] - m["first_ns"]) * 1000
		}'
}

m_get_ts_fetch() {
	bench_gap
	bench_client get-ts_fetch 30 "$TS_FETCH" "$TOPO_CONF" "$TOPO_SERVER_V4" \
		"$BENCH_HTTP_PORT" "/$BENCH_BIG" | "$BENCH_BIN/bench_meter" | bench_meter_mbs "$BENCH_BIG_BYTES"
}

# m_get_curl ours|base
m_get_curl() {
	[ "$1" = base ] || bench_gap
	"bench_$1" "get-curl-$1" 30 curl -sS -o - "$(bench_url "/$BENCH_BIG")" |
		"$BENCH_BIN/bench_meter" | bench_meter_mbs "$BENCH_BIG_BYTES"
}

# m_put_curl ours|base: MB/s from the start of the upload to the server's answer.
m_put_curl() {
	[ "$1" = base ] || bench_gap
	"bench_$1" "put-curl-$1" 30 curl -sS -o /dev/null -H 'Expect:' \
		-T "$TOPO_DIR/www/$BENCH_BIG" \
		-w '%{size_upload} %{time_pretransfer} %{time_total} %{http_code}\n' \
		"$(bench_url /upload)" |
		awk -v want="$BENCH_BIG_BYTES" '$1 == want && $4 == 200 && $3 > $2 {
			printf "%.3f\n", $1 / ($3 - $2) / 1e6 }'
}

# m_iperf ours|base [ARGS]: iperf3's receiver rate in MB/s, against a fresh one-off server
# (one left stuck by a failed run cannot block the next).
m_iperf() {
	local side=$1
	shift
	[ "$side" = base ] || bench_gap
	topo_spawn iperf "$TOPO_SERVER_NS" iperf3 -s -1 -p "$BENCH_IPERF_PORT" || return
	if topo_wait_until 5 bench_listening "$BENCH_IPERF_PORT"; then
		"bench_$side" "iperf3-$side" 20 iperf3 -c "$TOPO_SERVER_V4" -p "$BENCH_IPERF_PORT" \
			-t "$BENCH_IPERF_SECS" -f m "$@" |
			awk '/receiver/ { for (i = 2; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1) }
				END { if (v != "") printf "%.3f\n", v / 8 }'
	fi
	topo_stop iperf
}

# bench_pingpong_us: "median p99" in microseconds from bench_pingpong's line on stdin.
bench_pingpong_us() {
	awk '/^pingpong:/ {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); m[kv[1]] = kv[2] }
			printf "%.3f %.3f\n", m["median_ns"] / 1000, m["p99_ns"] / 1000
		}'
}

# m_rr ours|base N [--connect]: request/response through the tunnel.
m_rr() {
	local side=$1 n=$2
	shift 2
	[ "$side" = base ] || bench_gap
	"bench_$side" "rr-$side" 60 "$BENCH_BIN/bench_pingpong" client "$TOPO_SERVER_V4" \
		"$BENCH_PING_PORT" "$n" "$@" | bench_pingpong_us
}

# m_loop NETNS|- ENV...: loopback ping-pong in NETNS (-: this one), both threads on one CPU
# (two CPUs make the figure bimodal), under the environment given (LD_PRELOAD=... or none).
m_loop() {
	local -a netns=()
	[ "$1" = - ] || netns=(ip netns exec "$1")
	shift
	bench_gap
	bench_run loop 60 "${netns[@]}" taskset -c "$BENCH_CPU" \
		env -u TUNSHIM_CONFIG "$@" "$BENCH_BIN/bench_pingpong" loop "$BENCH_LOOP_N" |
		bench_pingpong_us
}

# bench_times N GAP CMD...: runs CMD N times, GAP seconds apart, and prints each run's
# duration in microseconds (a failed run prints nothing). Runs inside a namespace, by text.
bench_times() {
	local n=$1 gap=$2 i t0 t1
	shift 2
	for ((i = 0; i < n; i++)); do
		sleep "$gap"
		t0=${EPOCHREALTIME/./}
		"$@" >/dev/null || continue
		t1=${EPOCHREALTIME/./}
		echo $((t1 - t0))
	done
}

# m_oneshot NAME NETNS CMD...: $BENCH_ONESHOT_N timed one-shot runs of CMD in NETNS, one
# duration a line. The loop runs inside the namespace, so `ip netns exec` is not timed.
m_oneshot() {
	local name=$1 ns=$2
	shift 2
	bench_run "$name" 60 ip netns exec "$ns" bash -c "$(declare -f bench_times); bench_times \"\$@\"" \
		bench_times "$BENCH_ONESHOT_N" 0.05 "$@"
}

# bench_samples_rows OURS BASE ROW_MEDIAN ROW_MAX UNIT: one run of each command (eval'd;
# one sample a line), then the median and the largest sample of each side.
bench_samples_rows() {
	local ours=$1 base=$2 om=$1 ox=$1 bm bx
	bench_wanted "$3|$5" "$4|$5" || return 0
	if [ "${ours#n/a}" = "$ours" ]; then
		bench_samples "${3%:*}: ours" "$ours" om ox
	fi
	bench_samples "${3%:*}: baseline" "$base" bm bx
	bench_row "$3" "$5" "${om:-failed}" "${bm:-failed}"
	bench_row "$4" "$5" "${ox:-failed}" "${bx:-failed}"
}

# bench_samples WHAT CMD MEDIAN_VAR MAX_VAR: runs CMD, sets the two variables (named) from
# its samples, and notes runs that failed.
bench_samples() {
	local out n
	out=$(eval "$2")
	printf -v "$3" '%s' "$(bench_median <<<"$out")"
	printf -v "$4" '%s' "$(bench_rank 100 <<<"$out" | cut -d' ' -f1)"
	n=$(bench_rank 100 <<<"$out" | cut -d' ' -f2)
	[ "${n:-0}" -ge "$BENCH_ONESHOT_N" ] ||
		bench_note "$1: ${n:-0} of $BENCH_ONESHOT_N runs succeeded"
}

# ---- shim to shim: two wrapped programs, each the other's WireGuard peer ----

BENCH_S2S_WG_PORT=51950
BENCH_S2S_PORT=5202

# Two key pairs and two complementary configs (10.98.0.1 listens, 10.98.0.2 dials it on
# the client namespace's loopback).
bench_s2s_setup() {
	local d=$BENCH_TMP/s2s tunshim=$BENCH_BUILD/tunshim k1 k2 p1 p2
	mkdir -p "$d" && chmod 700 "$d" || return
	k1=$("$tunshim" genkey) && p1=$(echo "$k1" | "$tunshim" pubkey) || return
	k2=$("$tunshim" genkey) && p2=$(echo "$k2" | "$tunshim" pubkey) || return
	printf '[Interface]\nPrivateKey = %s\nAddress = 10.98.0.1/32\nListenPort = %s\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.98.0.2/32\n' \
		"$k1" "$BENCH_S2S_WG_PORT" "$p2" >"$d/server.conf"
	printf '[Interface]\nPrivateKey = %s\nAddress = 10.98.0.2/32\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.98.0.1/32\nEndpoint = 127.0.0.1:%s\n' \
		"$k2" "$p1" "$BENCH_S2S_WG_PORT" >"$d/client.conf"
	chmod 600 "$d"/*.conf
}

bench_s2s_listening() {
	[ -n "$(ip netns exec "$TOPO_CLIENT_NS" ss -Hltn "sport = :$BENCH_S2S_PORT")" ]
}

# m_iperf_s2s [iperf3 options]: iperf3 -s wrapped with one config, iperf3 -c wrapped with
# the other, both in the client namespace: no kernel WireGuard, no TUN anywhere.
m_iperf_s2s() {
	local d=$BENCH_TMP/s2s
	bench_gap
	topo_spawn s2s-iperf "$TOPO_CLIENT_NS" env LD_PRELOAD="$BENCH_SHIM" \
		TUNSHIM_CONFIG="$d/server.conf" XDG_RUNTIME_DIR="$d" \
		iperf3 -s -1 -p "$BENCH_S2S_PORT" || return
	if topo_wait_until 5 bench_s2s_listening; then
		bench_run iperf3-s2s 20 ip netns exec "$TOPO_CLIENT_NS" env LD_PRELOAD="$BENCH_SHIM" \
			TUNSHIM_CONFIG="$d/client.conf" XDG_RUNTIME_DIR="$d" \
			iperf3 -c 10.98.0.1 -p "$BENCH_S2S_PORT" -t "$BENCH_IPERF_SECS" -f m "$@" |
			awk '/receiver/ { for (i = 2; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1) }
				END { if (v != "") printf "%.3f\n", v / 8 }'
	fi
	topo_stop s2s-iperf
}

# ---- many processes, one identity ----

# The loop of m_backtoback, run inside the namespace: N fetches of URL one after another,
# with no pause; the total in ms, nothing if one failed.
bench_backtoback_loop() {
	local n=$1 url=$2 i t0
	t0=${EPOCHREALTIME/./}
	for ((i = 0; i < n; i++)); do
		curl -sS -o /dev/null "$url" || return 1
	done
	echo $(((${EPOCHREALTIME/./} - t0) / 1000))
}

# m_backtoback ours|base N: N short curl processes in a row (a shell harness's loop).
# Ours share one session: only the first brings a tunnel up, unless one lingers already.
m_backtoback() {
	"bench_$1" "backtoback-$1" 120 bash -c \
		"$(declare -f bench_backtoback_loop); bench_backtoback_loop \"\$@\"" \
		bash "$2" "$(bench_url /index.html)"
}

# The body of m_parallel: N curl downloads of URL at once; the aggregate MB/s from the
# start to the last one's end, nothing unless every one got BYTES.
bench_parallel_run() {
	local n=$1 url=$2 bytes=$3 i t0 t1 total=0 size
	local -a pids=()
	t0=${EPOCHREALTIME/./}
	for ((i = 0; i < n; i++)); do
		curl -sS -o /dev/null -w '%{size_download}\n' "$url" >"$TMPDIR/par.$i" &
		pids+=($!)
	done
	wait "${pids[@]}" || return 1
	t1=${EPOCHREALTIME/./}
	for ((i = 0; i < n; i++)); do
		read -r size <"$TMPDIR/par.$i"
		[ "$size" = "$bytes" ] || return 1
		total=$((total + size))
	done
	awk -v b="$total" -v us=$((t1 - t0)) 'BEGIN { printf "%.3f\n", b / us }'
}

# m_parallel ours|base N: N concurrent downloads of the big file (xargs -P, make -j).
m_parallel() {
	local d
	d=$(mktemp -d "$BENCH_TMP/par.XXXXXX")
	[ "$1" = base ] || bench_gap
	"bench_$1" "parallel-$1" 120 env TMPDIR="$d" bash -c \
		"$(declare -f bench_parallel_run); bench_parallel_run \"\$@\"" \
		bash "$2" "$(bench_url "/$BENCH_BIG")" "$BENCH_BIG_BYTES"
	rm -rf "$d"
}

# ---- the cipher's ceiling ----

BENCH_AEAD_SECS=1

# m_aead: "LIBSODIUM LIBCRYPTO" in MB/s from one run of bench_aead on one CPU ("-" for an
# implementation it could not use; why is noted).
m_aead() {
	local out
	out=$(bench_run aead 30 taskset -c "$BENCH_CPU" "$BENCH_BIN/bench_aead" "$BENCH_AEAD_SECS")
	grep -h ' error=' <<<"$out" | sort -u | while read -r line; do bench_note "$line"; done
	awk '$1 == "aead:" && $3 ~ /^mbs=/ { v[substr($2, 6)] = substr($3, 5) }
		END {
			s = v["libsodium"] == "" ? "-" : v["libsodium"]
			c = v["libcrypto"] == "" ? "-" : v["libcrypto"]
			print s, c
		}' <<<"$out"
}

# ---- pass-through: the preload in programs that never use the tunnel ----

BENCH_STREAM_BYTES=$((1024 * 1024 * 1024))

# bench_pass_conf: a config whose AllowedIPs (10.97.0.0/24) leave loopback alone, for the
# pass-through rows that need no namespace; $BENCH_TMP/pass.conf.
bench_pass_conf() {
	local tunshim=$BENCH_BUILD/tunshim k p
	k=$("$tunshim" genkey) && p=$("$tunshim" genkey | "$tunshim" pubkey) || return
	(
		umask 077
		printf '[Interface]\nPrivateKey = %s\nAddress = 10.97.0.2/32\n[Peer]\n' "$k"
		printf 'PublicKey = %s\nAllowedIPs = 10.97.0.0/24\nEndpoint = 127.0.0.1:9\n' "$p"
	) >"$BENCH_TMP/pass.conf"
}

# m_stream ENV...: loopback bulk (bench_stream, 16 KiB reads and writes) in MB/s, both
# threads on one CPU as in m_loop, under the environment given.
m_stream() {
	bench_run stream 60 taskset -c "$BENCH_CPU" env -u TUNSHIM_CONFIG "$@" \
		"$BENCH_BIN/bench_stream" "$BENCH_STREAM_BYTES" |
		awk '/^stream:/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); m[kv[1]] = kv[2] }
			printf "%.3f\n", m["mbs"] }'
}

# m_startup ENV...: the median wall time in microseconds of $BENCH_STARTUP_N runs of
# /bin/true, one after another, with the environment given exported (LD_PRELOAD=... or
# nothing); nothing if a run failed. The loop is a subshell of this one, so both sides
# pay the same fork.
m_startup() {
	local out
	out=$(
		# shellcheck disable=SC2163 # the words are NAME=VALUE
		[ $# -eq 0 ] || export "$@"
		for ((i = 0; i < BENCH_STARTUP_N; i++)); do
			t0=${EPOCHREALTIME/./}
			/bin/true || exit 1
			t1=${EPOCHREALTIME/./}
			echo $((t1 - t0))
		done
	) || { bench_note "start-up: /bin/true failed with $*"; return; }
	bench_median <<<"$out"
}

# ---- WAN shape: ts_relay on the outer UDP path of both sides ----
#
#   ours:     program under the preload (key 10.200.0.4) --> relay "wan-ours" --> server peer
#   baseline: kernel client's wireguard-go --> relay "wan-base" --> server peer
#
# Each relay is a ts_relay in the client namespace with the same options; the server peer
# learns each client's new source (the relay's) from its first packet, as WireGuard roams.

BENCH_WAN_OPTS=(--delay 20 --rate 400 --limit 2100)

# bench_relay NAME PORT OPTIONS...: (re)starts ts_relay NAME between 127.0.0.1:PORT (0: a
# free port) and the server peer; prints "LISTEN_PORT UPSTREAM_PORT", the second being the
# port its datagrams to the server peer come from.
bench_relay() {
	local name=$1 port=$2 log=$TOPO_DIR/$1.log
	shift 2
	topo_stop "$name"
	topo_spawn "$name" "$TOPO_CLIENT_NS" "$TS_RELAY" "$@" \
		"127.0.0.1:$port" "127.0.0.1:$TOPO_PORT" >/dev/null 2>&1 || return
	topo_wait_until 5 grep -q '^ts_relay: upstream from ' "$log" ||
		topo_fail "ts_relay $name did not start: $(tail -n 3 "$log")" || return
	printf '%s %s\n' \
		"$(sed -n 's/^ts_relay: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")" \
		"$(sed -n 's/^ts_relay: upstream from 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log" | tail -n 1)"
}

# bench_wan_up OPTIONS...: both relays with OPTIONS (on the ports of the previous call, if
# any), our config through one ($BENCH_WAN_CONF, a key of its own that the server peer has
# only ever seen through the relay) and the kernel client's session through the other.
bench_wan_up() {
	local out p u
	if [ -z "${BENCH_WAN_CONF:-}" ]; then
		topo_client_conf wan 4 >/dev/null 2>&1 || return
		BENCH_WAN_KEYCONF=$TOPO_NEW_CONF
	fi
	out=$(bench_relay wan-ours "${BENCH_WAN_OURS_PORT:-0}" "$@") || return
	read -r p u <<<"$out"
	[ -n "$u" ] || return
	BENCH_WAN_OURS_PORT=$p
	BENCH_WAN_CONF=$TOPO_DIR/wan-relay.conf
	(umask 077 && sed "s|^Endpoint = .*|Endpoint = 127.0.0.1:$p|" "$BENCH_WAN_KEYCONF" \
		>"$BENCH_WAN_CONF") || return
	out=$(bench_relay wan-base "${BENCH_WAN_BASE_PORT:-0}" "$@") || return
	read -r p u <<<"$out"
	[ -n "$u" ] || return
	BENCH_WAN_BASE_PORT=$p
	# Both ends of the kernel client's session go through the relay: the server peer to
	# the relay's upstream side, the client to its listening side. One end alone is not
	# enough: wireguard-go roams to wherever an authenticated packet last came from, so a
	# single packet of the server peer's along the old path takes the client off the
	# relay (a run without the GET rows before the PUT ones went round it entirely).
	wg set "$TOPO_WG_IF" peer "$TOPO_KC_PUB" endpoint "127.0.0.1:$u" || return
	wg set "$TOPO_KC_IF" peer "$TOPO_SERVER_PUB" endpoint "127.0.0.1:$p"
}

# bench_wan_down: the relays go, and the kernel client's session is direct again.
bench_wan_down() {
	topo_stop wan-ours
	topo_stop wan-base
	wg set "$TOPO_KC_IF" peer "$TOPO_SERVER_PUB" endpoint "127.0.0.1:$TOPO_PORT"
	wg set "$TOPO_WG_IF" peer "$TOPO_KC_PUB" endpoint "127.0.0.1:$TOPO_KC_PORT"
}

# bench_wan_ok WANT SIZE TOTAL: a run counts if all WANT bytes moved, or if the cap
# ($BENCH_WAN_CAP s) stopped it (then the rate is over what moved by then).
BENCH_WAN_AWK='function ok(want, size, total) {
		return size == want || (size > 0 && total >= cap - 0.5)
	}'

# m_wan ours|base get|put: a 50 MiB download (GET) or upload (PUT) through the relays, in
# MB/s: for a download from the first byte of the answer to the last, for an upload from
# the start of the body to the server's answer (curl's own timings: the path is slow
# enough that a pipe reader does not matter). A run that the cap stops counts with the
# bytes that moved; bench_run notes it.
m_wan() {
	local side=$1 dir=$2
	local -a pre=()
	[ "$side" = base ] || { bench_gap; pre=(env "TUNSHIM_CONFIG=$BENCH_WAN_CONF"); }
	if [ "$dir" = get ]; then
		"bench_$side" "wan-get-$side" $((BENCH_WAN_CAP + 10)) "${pre[@]}" curl -sS \
			-o /dev/null --max-time "$BENCH_WAN_CAP" \
			-w '%{size_download} %{time_starttransfer} %{time_total}\n' \
			"$(bench_url "/$BENCH_BIG")" |
			awk -v want="$BENCH_BIG_BYTES" -v cap="$BENCH_WAN_CAP" "$BENCH_WAN_AWK"'
				ok(want, $1, $3) && $3 > $2 { printf "%.3f\n", $1 / ($3 - $2) / 1e6 }'
	else
		"bench_$side" "wan-put-$side" $((BENCH_WAN_CAP + 10)) "${pre[@]}" curl -sS \
			-o /dev/null --max-time "$BENCH_WAN_CAP" -H 'Expect:' \
			-T "$TOPO_DIR/www/$BENCH_BIG" \
			-w '%{size_upload} %{time_pretransfer} %{time_total} %{http_code}\n' \
			"$(bench_url /upload)" |
			awk -v want="$BENCH_BIG_BYTES" -v cap="$BENCH_WAN_CAP" "$BENCH_WAN_AWK"'
				ok(want, $1, $3) && ($4 == 200 || $1 != want) && $3 > $2 {
					printf "%.3f\n", $1 / ($3 - $2) / 1e6 }'
	fi
}

# ---- scale ----

# m_wrk ours|base: wrk with $BENCH_WRK_CONNS connections for $BENCH_WRK_SECS s against
# bench_httpd's index.html: "REQUESTS_PER_S ERRORS", ERRORS the sum of wrk's socket errors
# (connect, read, write, timeout: a request unanswered after wrk's default 2 s) and non-2xx
# answers. A run with errors is noted with wrk's own line.
m_wrk() {
	local side=$1 out
	[ "$side" = base ] || bench_gap
	out=$("bench_$side" "wrk-$side" $((BENCH_WRK_SECS + 30)) wrk -t "$(nproc)" \
		-c "$BENCH_WRK_CONNS" -d "${BENCH_WRK_SECS}s" "$(bench_url /index.html)")
	grep -E 'Socket errors|Non-2xx' <<<"$out" | while read -r line; do
		bench_note "wrk $side: $line"
	done
	awk '/^Requests\/sec:/ { r = $2 }
		/Socket errors:/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
		/Non-2xx or 3xx responses:/ { e += $NF }
		END { if (r != "") printf "%s %d\n", r, e }' <<<"$out"
}

# bench_pids_with TEXT: the processes whose environment holds TEXT, a path unique to this
# run (a wrapped program's LD_PRELOAD, a runtime directory): ours to end, and no one else's.
bench_pids_with() {
	local f
	for f in /proc/[0-9]*/environ; do
		grep -qzF -- "$1" "$f" 2>/dev/null || continue
		f=${f#/proc/}
		echo "${f%/environ}"
	done
}

bench_none_with() {
	[ -z "$(bench_pids_with "$1")" ]
}

# bench_reap TEXT SECONDS WHAT: waits up to SECONDS for the processes whose environment holds
# TEXT to end, then ends the rest (noted under WHAT). A wrapped process that ran the stack
# leaves a continuation that closes its connections before it exits; one that outlives the
# row must not load the rows after it, nor outlive the bench.
bench_reap() {
	local text=$1 secs=$2 pids
	topo_wait_until "$secs" bench_none_with "$text" && return 0
	pids=$(bench_pids_with "$text" | tr '\n' ' ')
	[ -n "$pids" ] || return 0
	bench_note "$3: ended a process of ours still running ${secs} s after the run" \
		"(pid ${pids% }: the stack's continuation, $(bench_fds "$pids") descriptors open)"
	# shellcheck disable=SC2086 # pids: words
	kill -TERM $pids 2>/dev/null
	sleep 0.5
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	return 0
}

# bench_fds PIDS: the descriptors the processes hold, together.
bench_fds() {
	local p n=0
	for p in $1; do
		n=$((n + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
	done
	echo "$n"
}

# bench_idle_conf: a key of its own for the memory row, so that its process runs the
# stack itself instead of attaching to a session another row left ($BENCH_IDLE_CONF).
bench_idle_conf() {
	[ -z "${BENCH_IDLE_CONF:-}" ] || return 0
	topo_client_conf idle 5 >/dev/null 2>&1 || return
	BENCH_IDLE_CONF=$TOPO_NEW_CONF
}

# m_idle ours|base: "ADDED_MIB MS BASE_MIB": the resident memory that $BENCH_IDLE_N idle
# connections to bench_pingpong's echo server add to bench_idle's process, the time they
# took to connect and echo a byte each, all at once, and the process's resident memory
# before them, with one connection open (ours: the stack up). Ours runs with its own key, a
# runtime directory of its own and no grace time, so no session is shared with it: the
# stack and everything it keeps per connection is in the process measured.
m_idle() {
	local side=$1 rt out
	local -a pre=()
	if [ "$side" = ours ]; then
		bench_gap
		rt=$(mktemp -d "$BENCH_TMP/idle-rt.XXXXXX") || return
		pre=(env "TUNSHIM_CONFIG=$BENCH_IDLE_CONF" "XDG_RUNTIME_DIR=$rt" TUNSHIM_GRACE=0)
	fi
	out=$("bench_$side" "idle-$side" 120 "${pre[@]}" "$BENCH_BIN/bench_idle" \
		"$TOPO_SERVER_V4" "$BENCH_PING_PORT" "$BENCH_IDLE_N")
	[ -z "${rt:-}" ] || bench_reap "XDG_RUNTIME_DIR=$rt" 10 "idle"
	if [ "$side" = ours ] && [ "${BENCH_FAKE_SHIM:-0}" != 1 ] &&
		grep -q '^idle: .* threads=1$' <<<"$out"; then
		bench_note "idle: ours ran no stack thread in its process; its figure is not the stack's"
	fi
	awk '/^idle:/ {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); m[kv[1]] = kv[2] }
			printf "%.3f %d %.3f\n", m["added_kib"] / 1024, m["connect_ms"],
				m["base_kib"] / 1024
		}' <<<"$out"
}

# ---- the plot ----

# bench_plot TSV SVG: throughput rows (MB/s) and latency rows (us), ours beside the
# baseline, as two panels of horizontal bars on log scales (the rows span four decades).
# Needs gnuplot; without it, says so in the notes.
bench_plot() {
	local tsv=$1 svg=$2 d=$BENCH_TMP/plot nt nl
	command -v gnuplot >/dev/null || {
		bench_note "no plot: gnuplot is missing (tests/deps.sh bench installs gnuplot-nox)"
		return 1
	}
	mkdir -p "$d" || return
	# Rows with a figure on both sides; the baseline of a row without one (the AEAD
	# ceiling) is left empty.
	awk -F'\t' -v d="$d" -v num="$BENCH_NUM" 'NR > 1 && $3 ~ num {
			f = $2 == "MB/s" ? d "/thr.tsv" : $2 == "us" ? d "/lat.tsv" : ""
			if (f == "") next
			b = $4 ~ num ? $4 : "NaN"
			printf "%s\t%s\t%s\t%s\n", $1, $3, b, $5 >f
		}' "$tsv"
	touch "$d/thr.tsv" "$d/lat.tsv" || return
	nt=$(wc -l <"$d/thr.tsv")
	nl=$(wc -l <"$d/lat.tsv")
	[ "$nt" -gt 0 ] || [ "$nl" -gt 0 ] || { bench_note "no plot: no rows to plot"; return 1; }
	gnuplot -e "thr='$d/thr.tsv'; lat='$d/lat.tsv'; out='$svg'; nt=$nt; nl=$nl;" \
		-e "title='$(head -n 1 "$BENCH_TMP/title" 2>/dev/null)'" \
		"$BENCH_ROOT/bench/plot.gp" 2>"$d/gnuplot.err" || {
		bench_note "no plot: gnuplot failed: $(grep . "$d/gnuplot.err" | tail -n 1)"
		return 1
	}
}
