#!/usr/bin/env bash
# Checks that the Debian packages tunshim needs are installed. As root it installs
# the missing ones (saying what); otherwise it prints the one apt-get line that would.
#   tests/deps.sh build   what `make` needs
#   tests/deps.sh demo    what `make demo` needs on top
#   tests/deps.sh test    what `make test` needs on top
set -euo pipefail
build_pkgs=(gcc make libc6-dev libsodium-dev libb2-dev xz-utils ca-certificates)
demo_pkgs=(curl python3)
test_pkgs=(bats iproute2 wireguard-go wireguard-tools curl python3 socat iperf3 wrk
	netcat-openbsd nginx-light util-linux strace dnsmasq-base bind9-dnsutils)
case "${1:-build}" in
build) want=("${build_pkgs[@]}") ;;
demo) want=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*) echo "usage: $0 build|demo|test" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "tunshim needs these Debian packages; as root, run:" >&2
	echo "  apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "tests/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
