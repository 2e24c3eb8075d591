#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The layering that include paths alone cannot enforce. Prints TAP lines.
#  (a) No object of the stack that goes into libtunshim.so (stack/ and lwIP) refers
#      to a name the library exports: inside the library those names are the shim's
#      own interposers, and the stack must reach the OS through its boundary
#      (stack/include/sys.h), never through the preload layer above it.
#  (b) No #include in stack/ or shim/ reaches into another directory with a relative
#      ("../wg/peer.h") or absolute path, around the include paths each directory
#      is compiled with.
# Usage: tests/check-layers.sh [BUILD]   (after make; BUILD defaults to build)
set -u
build=$(realpath -m -- "${1:-build}")
cd "$(dirname "$0")/.." || exit 1
so=$build/libtunshim.so
objs=$build/obj/libtsstack.a.objs
status=0

# (a) ---------------------------------------------------------------------------
exports=$(nm -D --defined-only "$so" 2>/dev/null | awk '{print $3}' | sort -u)
if [ -z "$exports" ] || [ ! -s "$objs" ]; then
	echo "not ok - layers: no $so or no $objs (run make first)"
	status=1
else
	bad=
	n=0
	while read -r o; do
		n=$((n + 1))
		hits=$(nm -u "$o" | awk '{print $NF}' | sort -u | comm -12 - <(echo "$exports"))
		[ -n "$hits" ] && bad+="${o##*/obj/}: $(echo $hits)"$'\n'
	done < "$objs"
	if [ -z "$bad" ]; then
		echo "ok - layers: none of the stack's $n objects in $so calls a name it exports"
	else
		echo "not ok - layers: stack objects call names $so exports (the shim's" \
			"interposers); call them through the OS boundary (stack/include/sys.h):"
		printf '%s' "$bad" | sed 's/^/#   /'
		status=1
	fi
fi

# (b) ---------------------------------------------------------------------------
cross=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<](/|([^">]*/)?\.\./)' \
	--include='*.c' --include='*.h' stack shim)
if [ -z "$cross" ]; then
	echo "ok - layers: no #include in stack/ or shim/ reaches across with a relative path"
else
	echo "not ok - layers: includes that reach across layers by path (use the" \
		"directory's include paths, see the Makefile):"
	printf '%s\n' "$cross" | sed 's/^/#   /'
	status=1
fi
exit $status
