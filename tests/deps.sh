#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian packages tunshim needs. As root it installs the missing ones (saying which);
# otherwise, or with --check, it installs nothing and prints the one apt-get line that would.
#   tests/deps.sh [--check] build   what `make` needs
#   tests/deps.sh [--check] demo    what `make demo` needs on top
#   tests/deps.sh [--check] fuzz    what `make fuzz` needs on top of build
#   tests/deps.sh [--check] test    what `make test` needs on top
#   tests/deps.sh [--check] bench   what `make bench` needs: test's, and the plot's
set -euo pipefail
check_only=0
if [ "${1:-}" = --check ]; then
	check_only=1
	shift
fi
build_pkgs=(gcc make libc6-dev libsodium-dev libb2-dev xz-utils ca-certificates)
demo_pkgs=(curl python3)
# parallel: bats --jobs (tests/shim/100-sessions.bats runs a bats suite under the library).
# iputils-ping: tests/shim/130-icmp.bats; iputils-tracepath: 140-icmp-path.bats.
test_pkgs=(bats iproute2 wireguard-go wireguard-tools socat iperf3 wrk
	netcat-openbsd nginx-light util-linux strace dnsmasq-base bind9-dnsutils netbase parallel
	iputils-ping iputils-tracepath)
# The libFuzzer targets (tests/fuzz/): clang, and libFuzzer's runtime (make test runs them).
fuzz_pkgs=(clang libclang-rt-14-dev)
# make bench's plot (bench/plot.gp); without it the bench skips the plot and says so.
bench_pkgs=(gnuplot-nox)
case "${1:-build}" in
build) want=("${build_pkgs[@]}") ;;
demo) want=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
fuzz) want=("${build_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${demo_pkgs[@]}" "${test_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
# A superset of test's, so that `make test bench` needs one set.
bench) want=("${build_pkgs[@]}" "${demo_pkgs[@]}" "${test_pkgs[@]}" "${fuzz_pkgs[@]}"
	"${bench_pkgs[@]}") ;;
*) echo "usage: $0 [--check] build|demo|fuzz|test|bench" >&2; exit 2 ;;
esac
if ! command -v dpkg-query >/dev/null; then
	echo "tests/deps.sh: not a Debian system; make sure these are installed: ${want[*]}" >&2
	exit 0
fi
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || [ "$check_only" = 1 ]; then
	echo "tunshim needs these Debian packages; as root, run:" >&2
	echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
	[ "$check_only" = 1 ] && [ "$(id -u)" = 0 ] &&
		echo "(make demo and make test install them by themselves when run as root)" >&2
	exit 1
fi
echo "tests/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# apt's own output goes to a log, shown only if something fails.
log=$(mktemp /tmp/tunshim-deps.XXXXXX)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
	>"$log" 2>&1; then
	tail -n 30 "$log" >&2
	echo "tests/deps.sh: apt-get failed (full output in $log)" >&2
	exit 1
fi
rm -f "$log"
echo "tests/deps.sh: installed" >&2
