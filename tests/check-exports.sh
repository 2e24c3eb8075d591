#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# libtunshim.so lives inside other programs: it must export no lwIP, libsodium or libb2
# names and depend only on libc's libraries. Prints TAP lines.
set -u
so=${1:-build/libtunshim.so}
leaked=$(nm -D --defined-only "$so" | awk '{print $3}' |
	grep -E '^(tcp_|udp_|pbuf_|netif_|mem_|memp_|lwip_|ip4_|ip6_|ip_|sys_|crypto_|sodium_|randombytes_|blake2|wg_|ts_|noise_|cookie_|replay_|allowedips_)' || true)
if [ -z "$leaked" ]; then
	echo "ok - exports: no internal names exported by $so"
else
	echo "not ok - exports: $so exports internal names:"
	printf '#   %s\n' $leaked
fi
deps=$(ldd "$so" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux|libc\.so|libdl\.so|libpthread\.so|libresolv\.so|statically)' || true)
if [ -z "$deps" ]; then
	echo "ok - exports: $so depends only on libc's libraries"
else
	echo "not ok - exports: unexpected dynamic dependencies: $deps"
fi
