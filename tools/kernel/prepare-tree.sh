#!/usr/bin/env bash
# Bring the kernel source tree at $1 to "Debian's linux-source-6.12 plus the
# patch series in $2", touching as few files as possible so that the kernel
# build after it stays incremental.
#
# The tree keeps a copy of the series it has applied (.reada-applied/). When
# the series changes, the old one is reverse-applied from that copy and the
# new one applied; if anything does not apply cleanly the tree is extracted
# afresh. Any patch that does not apply to a fresh tree fails the build loudly.
set -euo pipefail

tree=$1
patches=$2
tarball=${KERNEL_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
applied=$tree/.reada-applied

log() { printf '[kernel] %s\n' "$*"; }
die() { printf '[kernel] error: %s\n' "$*" >&2; exit 1; }

series_hash() { # dir: hash of the series file and every patch it names, in order
	local dir=$1
	[ -f "$dir/series" ] || { echo none; return; }
	(cd "$dir" && cat series && series_list . | xargs -r cat) | sha256sum | cut -c1-16
}
series_list() {
	grep -v '^\s*\(#\|$\)' "$1/series" 2>/dev/null || true
}

extract() {
	[ -f "$tarball" ] || die "$tarball missing: run tools/setup/install-deps.sh"
	log "extracting $(basename "$tarball")"
	rm -rf "$tree.tmp" "$tree"
	mkdir -p "$tree.tmp"
	tar -xf "$tarball" -C "$tree.tmp" --strip-components=1
	mv "$tree.tmp" "$tree"
	mkdir -p "$applied"
	: > "$applied/series"
}

apply_series() {
	local p
	for p in $(series_list "$patches"); do
		[ -f "$patches/$p" ] || die "series names $p, which is missing"
		log "applying $p"
		patch -d "$tree" -p1 --forward --no-backup-if-mismatch -s < "$patches/$p" ||
			die "$p does not apply to $tarball (see the rejects in $tree)"
	done
	rm -rf "$applied"
	mkdir -p "$applied"
	cp "$patches/series" "$applied/series"
	for p in $(series_list "$patches"); do cp "$patches/$p" "$applied/$p"; done
}

revert_series() {
	local p list
	list=$(series_list "$applied" | tac)
	for p in $list; do
		log "reverting $p"
		patch -d "$tree" -p1 -R --no-backup-if-mismatch -s < "$applied/$p" || return 1
	done
	: > "$applied/series"
}

want=$(series_hash "$patches")
[ -f "$tree/Makefile" ] && [ -d "$applied" ] || extract
have=$(series_hash "$applied")
if [ "$have" != "$want" ]; then
	if ! revert_series; then
		log "the old series does not revert cleanly: starting from a fresh tree"
		extract
	fi
	apply_series
fi
log "tree ready, series $want"
