#!/usr/bin/env bash
# Regenerate patches/ from a kernel git tree whose commits BASE..HEAD are the
# series (one commit per patch, kernel-style messages):
#   tools/kernel/export-patches.sh /path/to/linux BASE
# Subjects are unnumbered, so adding a patch leaves the others byte-identical
# and prepare-tree.sh keeps the kernel build incremental.
set -euo pipefail
tree=$1
base=$2
out=$(cd "$(dirname "$0")/../../patches" && pwd)
rm -f "$out"/*.patch
git -C "$tree" format-patch -q --no-numbered --no-signature --zero-commit -o "$out" "$base"..HEAD
{
	printf '# Patch series against Debian linux-source-6.12 (6.12.117), applied in order\n'
	printf '# by tools/kernel/prepare-tree.sh. One logical change per patch.\n'
	(cd "$out" && ls -- *.patch)
} > "$out/series"
echo "exported $(grep -vc '^#' "$out/series") patches to $out"
