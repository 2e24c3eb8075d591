#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fetches lwIP 2.1.3's source into $1 (a directory under build/), verified by checksum.
# Debian's orig tarball through apt's source mechanism, with private state so the
# system's apt configuration is not touched. Nothing unverified is ever built: where
# apt cannot fetch it, LWIP_SRC=dir points the Makefile at a tree you provide.
set -euo pipefail
mkdir -p "$(dirname "$1")"
dest=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(dirname "$dest")/lwip-fetch
tarball=lwip_2.1.3+dfsg1.orig.tar.xz
sha=0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24

verify() { echo "$sha  $1" | sha256sum -c --status; }

# A deb-src stanza for the Debian mirror and suite this machine already uses.
debian_source() {
	local uri suite
	uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -n1 | awk '{print $2}')
	suite=$(grep -hs '^Suites:' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')
	if [ -z "$uri" ]; then
		read -r uri suite < <(grep -hsE '^deb\s' /etc/apt/sources.list | grep -v security | awk '{print $2, $3}' | head -n1) || true
	fi
	[ -n "$uri" ] || uri=http://deb.debian.org/debian
	[ -n "$suite" ] || suite=bookworm
	printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n' "$uri" "$suite"
	[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] &&
		printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
}

fetch_apt() {
	command -v apt-get >/dev/null || return 1
	mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial" "$work/dl"
	debian_source > "$work/parts/lwip-src.sources"
	local opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/parts"
		-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
		-o "Debug::NoLocking=1" -o "APT::Sandbox::User=$(id -un)")
	apt-get "${opts[@]}" -qq update >&2 || return 1
	(cd "$work/dl" && apt-get "${opts[@]}" -qq source --download-only lwip >&2) || return 1
	cp "$work/dl/$tarball" "$work/$tarball"
}

mkdir -p "$work"
if [ -f "$work/$tarball" ] && verify "$work/$tarball"; then
	:
elif fetch_apt && verify "$work/$tarball"; then
	:
else
	rm -f "$work/$tarball"
	echo "fetch.sh: could not fetch and verify lwIP 2.1.3 through apt's source mechanism;" >&2
	echo "fetch.sh: unpack lwIP 2.1.3 somewhere and run make LWIP_SRC=/path/to/lwip-2.1.3" >&2
	exit 1
fi
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
tar -xJf "$work/$tarball" -C "$dest.tmp" --strip-components=1
test -f "$dest.tmp/src/core/tcp.c"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "fetch.sh: lwIP 2.1.3 verified (sha256 $sha) in $dest" >&2
