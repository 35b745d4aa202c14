#!/usr/bin/env bash
# Build the guest's base initramfs (a newc cpio archive): busybox, bash,
# btrfs-progs, dmsetup and wipefs with their shared libraries, our userspace
# tools, the module, the guest tests and /init.
#
# usage: mkinitramfs.sh OUT.cpio MODULE_DIR TOOLS_BIN_DIR
set -euo pipefail
out=$1
module_dir=$2
tools_bin=$3
top=$(cd "$(dirname "$0")/../.." && pwd)
stage=$(mktemp -d "${out%/*}/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,tmp,run,mnt,root,job,reada,tests}

copy_with_libs() { # copy an executable and every shared library it loads
	local exe=$1 dest=$2 lib
	install -D -m 0755 "$exe" "$stage/$dest"
	for lib in $(ldd "$exe" 2>/dev/null | grep -o '/[^ ]*' || true); do
		[ -e "$stage$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$stage$lib"
	done
}
need() { command -v "$1" >/dev/null || { echo "mkinitramfs: $1 not found (run tools/setup/install-deps.sh)" >&2; exit 1; }; }

install -m 0755 /bin/busybox "$stage/bin/busybox"
need bash; copy_with_libs "$(command -v bash)" bin/bash
for t in btrfs mkfs.btrfs btrfs-map-logical dmsetup filefrag wipefs; do
	need "$t"
	copy_with_libs "$(command -v "$t")" "usr/sbin/$t"
done
for t in "$tools_bin"/*; do
	[ -f "$t" ] && [ -x "$t" ] && copy_with_libs "$t" "usr/bin/$(basename "$t")"
done
find "$module_dir" -name '*.ko' -exec install -m 0644 {} "$stage/reada/" \;
cp -r "$top/tests/guest/." "$stage/tests/"
install -m 0755 "$top/tools/vm/init" "$stage/init"
echo 'root:x:0:0:root:/root:/bin/bash' > "$stage/etc/passwd"
echo 'root:x:0:' > "$stage/etc/group"
echo "nobody:x:65534:65534:nobody:/:/bin/sh" >> "$stage/etc/passwd"
echo "nogroup:x:65534:" >> "$stage/etc/group"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$out.tmp"
mv "$out.tmp" "$out"
echo "[initramfs] $out ($(du -h "$out" | cut -f1))"
