#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# libtunshim.so lives inside other programs: it exports exactly the libc names the
# shim interposes, as listed in shim/exports.list (the link enforces the list with a
# version script; this confirms it), and depends only on libc's libraries. Prints
# TAP lines; exits non-zero if any check failed.
# Usage: tests/check-exports.sh [SO [SHIM_OBJ_DIR]]
set -u
so=$(realpath -- "${1:-build/libtunshim.so}")
objdir=$(realpath -m -- "${2:-$(dirname "$so")/obj/shim}")
cd "$(dirname "$0")/.." || exit 1
list=shim/exports.list
status=0

ok() { echo "ok - exports: $1"; }
fail() {
	echo "not ok - exports: $1"
	[ -n "${2:-}" ] && printf '#   %s\n' $2
	status=1
}

allowed=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list" | sort -u)
exported=$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | sort -u)

extra=$(comm -13 <(echo "$allowed") <(echo "$exported"))
if [ -z "$extra" ]; then
	ok "$so exports only names in $list"
else
	fail "$so exports names that $list does not allow:" "$extra"
fi

missing=$(comm -23 <(echo "$allowed") <(echo "$exported"))
if [ -z "$missing" ]; then
	ok "every name in $list is exported by $so"
else
	fail "names in $list that $so does not export (no interposer defines them):" \
		"$missing"
fi

# Each listed name must be something libc defines: otherwise nothing is interposed.
libs=$(ldd "$so" | awk '$1 ~ /^lib(c|resolv)\.so/ {print $3}')
libc_names=$(for l in $libs; do nm -D --defined-only "$l"; done | awk '{print $3}' |
	sed 's/@.*//' | sort -u)
foreign=$(comm -23 <(echo "$allowed") <(echo "$libc_names"))
if [ -n "$libs" ] && [ -z "$foreign" ]; then
	ok "every name in $list is one libc defines ($(echo $libs))"
else
	fail "names in $list that libc does not define (nothing to interpose):" "$foreign"
fi

# An interposer marked for export but missing from the list would be hidden by the
# version script, and silently inert: the objects say what was meant.
if [ -d "$objdir" ]; then
	meant=$(find "$objdir" -name '*.o' -exec readelf -sW {} + |
		awk '$5 == "GLOBAL" && $6 == "DEFAULT" && $7 != "UND" {print $8}' | sort -u)
	unlisted=$(comm -13 <(echo "$allowed") <(echo "$meant"))
	if [ -z "$unlisted" ]; then
		ok "every entry point the shim marks for export is in $list"
	else
		fail "entry points marked SHIM_EXPORT but missing from $list:" "$unlisted"
	fi
fi

deps=$(ldd "$so" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux|libc\.so|libdl\.so|libpthread\.so|libresolv\.so|statically)' || true)
if [ -z "$deps" ]; then
	ok "$so depends only on libc's libraries"
else
	fail "unexpected dynamic dependencies:" "$deps"
fi
exit $status
