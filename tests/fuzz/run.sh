#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the libFuzzer targets (make fuzz-build makes them): each one first replays
# every input kept in the tree (tests/fuzz/corpus/T and tests/fuzz/regress/T), then
# fuzzes for a bounded time. Prints one TAP line per target with the runs and the
# coverage reached; exits non-zero if any failed.
#   tests/fuzz/run.sh BUILD [TARGET...]
#   FUZZ_SECONDS=N   fuzzing time per target (default: receive 35 s, config 15 s, dns 10 s)
# What fuzzing finds goes under BUILD/fuzz, never into the tree: new corpus
# entries in BUILD/fuzz/corpus/T (kept for the next run), crashes, hangs and
# leaks in BUILD/fuzz/artifacts/T/ (fix the bug, then copy the input into
# tests/fuzz/regress/T/ so it is replayed forever).
set -u
build=$(realpath -m -- "${1:-build}")
shift
cd "$(dirname "$0")/../.." || exit 1
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(receive config dns)
failed=0

default_seconds() {
	case $1 in
	receive) echo 35 ;;
	config) echo 15 ;;
	*) echo 10 ;;
	esac
}

# The inputs kept in the tree for target $1 (directories that exist).
kept_dirs() {
	local d

	for d in tests/fuzz/corpus/$1 tests/fuzz/regress/$1; do
		[ -d "$d" ] && echo "$d"
	done
}

# Options every run of target $1 gets.
fuzz_opts() {
	local opts=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

	# Config lines may be 4096 bytes long: room for a longer one.
	case $1 in
	config) opts+=(-max_len=9000) ;;
	*) opts+=(-max_len=4096) ;;
	esac
	[ -f tests/fuzz/$1.dict ] && opts+=(-dict=tests/fuzz/$1.dict)
	printf '%s\n' "${opts[@]}"
}

report_failure() {
	local t=$1 log=$2 art=$3

	echo "not ok - fuzz $t"
	grep -E 'invariant broken|ERROR: |SUMMARY: |runtime error|Test unit written|^==[0-9]+==' "$log" |
		head -n 12 | sed 's/^/#   /'
	echo "#   full log: $log; inputs that failed: $art"
	echo "#   (after the fix, keep them in tests/fuzz/regress/$t/)"
}

run_target() {
	local t=$1 bin=$build/fuzz/fuzz_$1 secs=${FUZZ_SECONDS:-$(default_seconds "$1")}
	local work=$build/fuzz/corpus/$1 art=$build/fuzz/artifacts/$1 log=$build/fuzz/$1.log
	local kept opts stats runs cov ft corp nkept

	if [ ! -x "$bin" ]; then
		echo "not ok - fuzz $t: no $bin (make fuzz-build)"
		return 1
	fi
	mkdir -p "$work" "$art"
	mapfile -t kept < <(kept_dirs "$t")
	mapfile -t opts < <(fuzz_opts "$t")
	nkept=$(find "${kept[@]}" -type f 2>/dev/null | wc -l)
	# Replay what the tree keeps: every input runs once, any failure is a regression.
	if ! "$bin" "${opts[@]}" -runs=0 -artifact_prefix="$art/" "${kept[@]}" >"$log" 2>&1; then
		report_failure "$t" "$log" "$art/"
		return 1
	fi
	# Then fuzz; new inputs go to the build's corpus (the first directory).
	if ! "$bin" "${opts[@]}" -max_total_time="$secs" -artifact_prefix="$art/" \
		"$work" "${kept[@]}" >>"$log" 2>&1; then
		report_failure "$t" "$log" "$art/"
		return 1
	fi
	stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
	runs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$stats")
	cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$stats")
	ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$stats")
	corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$stats")
	echo "ok - fuzz $t: $nkept kept inputs replayed, ${runs:-?} runs in $secs s," \
		"coverage ${cov:-?} edges (${ft:-?} features), corpus ${corp:-?}"
}

for t in "${targets[@]}"; do
	run_target "$t" || failed=1
done
exit $failed
