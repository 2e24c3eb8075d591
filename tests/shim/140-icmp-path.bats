#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# ICMP along the path (issue 13), each compared with the kernel path (the stand-in
# client: a wireguard-go TUN with MTU 1420, topo_kernel_client_up) against the real
# wireguard-go peer: echo requests larger than the tunnel MTU, and tracepath to a
# tunnel host one router hop behind the peer (topo_far_up).

load helpers

setup_file() {
	shim_setup_file || return
	[ -z "${TOPO_DIR:-}" ] && return 0
	topo_kernel_client_up || return
	topo_far_up
}

teardown_file() {
	shim_teardown_file
}

setup() {
	shim_setup
}

teardown() {
	shim_teardown
}

# reasm_oks FAMILY: the server namespace's count of datagrams it reassembled from
# fragments (IpReasmOKs or Ip6ReasmOKs).
reasm_oks() {
	if [ "$1" = 4 ]; then
		in_server awk '$1 == "Ip:" && !n { n = split($0, h) } $1 == "Ip:" && $2 ~ /^[0-9]/ {
			for (i = 1; i <= n; i++) if (h[i] == "ReasmOKs") print $i }' /proc/net/snmp
	else
		in_server awk '$1 == "Ip6ReasmOKs" { print $2 }' /proc/net/snmp6
	fi
}

# ping_big WHO FAMILY ADDR ARGS...: ping -s 2000 ARGS by WHO (in_kclient or shim_run);
# OUT is its output and REASM the datagrams the server reassembled meanwhile.
ping_big() {
	local who=$1 fam=$2 addr=$3 r0
	shift 3
	r0=$(reasm_oks "$fam")
	OUT=$("$who" ping "-$fam" -n -c2 -i0.2 -W1 -s 2000 "$@" "$addr" 2>&1) || true
	REASM=$(($(reasm_oks "$fam") - r0))
}

@test "ping -s 2000 and ping -6 -s 2000: fragmented to the tunnel MTU and answered, as on the kernel path" {
	local fam addr
	for fam in 4 6; do
		addr=$TOPO_SERVER_V4
		[ "$fam" = 4 ] || addr=$TOPO_SERVER_V6
		ping_big in_kclient "$fam" "$addr"
		expect_has "reference: ping -$fam -s 2000 on the kernel path" \
			"2 packets transmitted, 2 received" "$OUT"
		expect_has "reference: its reply" "2008 bytes from $addr: icmp_seq=2" "$OUT"
		# The server's kernel put each echo request together from fragments.
		expect_eq "reference: requests the server reassembled" 2 "$REASM"
		ping_big shim_run "$fam" "$addr"
		expect_has "ping -$fam -s 2000 under the library" \
			"2 packets transmitted, 2 received" "$OUT"
		expect_has "its reply" "2008 bytes from $addr: icmp_seq=2" "$OUT"
		expect_eq "requests the server reassembled (sent in fragments)" 2 "$REASM"
	done
}

@test "ping -M do -s 2000, IPv4 and IPv6: the local error with the tunnel MTU, as on the kernel path" {
	local fam addr kernel
	for fam in 4 6; do
		addr=$TOPO_SERVER_V4
		[ "$fam" = 4 ] || addr=$TOPO_SERVER_V6
		ping_big in_kclient "$fam" "$addr" -M do
		expect_has "reference: ping -$fam -M do on the kernel path" \
			"local error: message too long, mtu" "$OUT"
		kernel=$(sed 's/time [0-9]*ms//' <<<"$OUT")
		ping_big shim_run "$fam" "$addr" -M do
		expect_eq "ping -$fam -M do -s 2000 under the library" "$kernel" \
			"$(sed 's/time [0-9]*ms//' <<<"$OUT")"
		expect_eq "requests the server reassembled (none sent)" 0 "$REASM"
	done
}

# tracepath_lines WHO ARGS...: tracepath -n ARGS by WHO, its timings taken out.
tracepath_lines() {
	local who=$1
	shift
	"$who" timeout 30 tracepath -n -m 4 "$@" 2>&1 | sed -E 's/[0-9]+\.[0-9]+ms//; s/ +/ /g; s/ $//'
}

@test "tracepath and tracepath -6 to a host one router behind the peer: the hops and path MTU of the kernel path" {
	local addr kernel shim
	for addr in "$TOPO_FAR_V4" "$TOPO_FAR_V6"; do
		kernel=$(tracepath_lines in_kclient "$addr")
		# The router's time exceeded names the hop; the far host's port unreachable
		# ends the trace; the first probe's local EMSGSIZE gives the tunnel MTU.
		expect_has "reference: tracepath $addr on the kernel path" " 2: $addr reached" \
			"$kernel"
		expect_has "reference: its summary" "Resume: pmtu 1420 hops 2 back 2" "$kernel"
		shim=$(tracepath_lines shim_run "$addr")
		echo "# tracepath $addr under the library:" >&3
		sed 's/^/#   /' <<<"$shim" >&3
		[ "$shim" = "$kernel" ] && continue
		echo "tracepath $addr: the library's differs from the kernel path's:" >&2
		diff <(echo "$kernel") <(echo "$shim") >&2
		return 1
	done
}
