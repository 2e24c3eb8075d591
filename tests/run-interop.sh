#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the interop suites: tests/interop/*.bats, or the .bats files given, with bats --tap.
# They build network namespaces around a real wireguard-go (tests/lib/topology.bash), so
# they need root, /dev/net/tun and `ip netns`; without them this says why and exits 0.
# The program under test and the flood tool come from build/tests/tools (`make interop`
# builds them; TOPO_TOOLS, TS_FETCH and WG_FLOOD override).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib/topology.bash
source "$root/tests/lib/topology.bash"

why=$(topo_cannot_run)
if [ -n "$why" ]; then
	echo "run-interop: skipping the interop suites: $why" >&2
	exit 0
fi
for tool in "$TS_FETCH" "$WG_FLOOD" "$TS_RELAY"; do
	if [ ! -x "$tool" ]; then
		echo "run-interop: $tool is missing (make interop builds it)" >&2
		exit 1
	fi
done

# Every topology links its directory here; whatever bats leaves behind (killed, crashed)
# is torn down on the way out. bats runs in a process group of its own, so a signal to
# this script can end all of it first.
TOPO_REGISTRY=$(mktemp -d /tmp/tunshim-interop.XXXXXX)
export TOPO_REGISTRY
bats_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
sweep() {
	local link
	if [ -n "$bats_pid" ]; then
		kill -TERM -- "-$bats_pid" 2>/dev/null || true
		wait "$bats_pid" 2>/dev/null || true
	fi
	for link in "$TOPO_REGISTRY"/*; do
		if [ ! -L "$link" ] || [ ! -d "$link" ]; then
			continue
		fi
		echo "run-interop: removing topology left behind: $(readlink "$link")" >&2
		topo_down_dir "$(readlink "$link")"
	done
	rm -rf "$TOPO_REGISTRY"
}
trap sweep EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ $# -eq 0 ]; then
	set -- "$root"/tests/interop/*.bats
fi
set -m
bats --tap "$@" </dev/null &
bats_pid=$!
set +m
rc=0
wait "$bats_pid" || rc=$?
bats_pid=
exit "$rc"
