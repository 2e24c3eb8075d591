#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Everything `make test` runs: the layer and export checks, the unit tests (plain and
# under ASan/UBSan), bounded fuzzing (tests/fuzz/run.sh), then the interop suites in
# network namespaces. Ends with one "N passed, N failed" line.
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT

tests/check-layers.sh "$build" | tee -a "$log"
tests/check-exports.sh "$build"/libtunshim.so | tee -a "$log"
tests/run-unit.sh "$build"/tests/test_* | tee -a "$log"
ASAN_OPTIONS=detect_leaks=1 tests/run-unit.sh "$build"/san-tests-address-undefined/test_* \
	| sed 's/^\(not \)\{0,1\}ok - unit /&asan+ubsan /' | tee -a "$log"
tests/fuzz/run.sh "$build" | tee -a "$log"
tests/run-interop.sh | tee -a "$log"
tests/run-interop.sh tests/shim/*.bats | tee -a "$log"

pass=$(grep -cE '^ok ' "$log" | tr -d ' ')
skip=$(grep -cE '^ok .*# (skip|SKIP)' "$log" | tr -d ' ')
fail=$(grep -cE '^not ok ' "$log" | tr -d ' ')
echo
echo "$((pass - skip)) passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
