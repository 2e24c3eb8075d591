#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs unit test binaries; prints one TAP-like line per binary and exits non-zero
# if any failed. Usage: tests/run-unit.sh BIN...
set -u
failed=0
for t in "$@"; do
	if out=$("$t" 2>&1); then
		echo "ok - unit $(basename "$t"): ${out##*$'\n'}"
	else
		echo "not ok - unit $(basename "$t")"
		printf '%s\n' "$out" | sed 's/^/#   /'
		failed=1
	fi
done
exit $failed
