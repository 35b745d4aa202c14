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

# The applied series and the wanted one share a prefix of identical patches;
# only what follows it is reverted and applied, so unchanged patches keep
# their files' timestamps and the kernel build stays incremental.
common_prefix() {
	local -a old new
	local i=0
	mapfile -t old < <(series_list "$applied")
	mapfile -t new < <(series_list "$patches")
	while [ $i -lt ${#old[@]} ] && [ $i -lt ${#new[@]} ] &&
		[ "${old[$i]}" = "${new[$i]}" ] &&
		cmp -s "$applied/${old[$i]}" "$patches/${new[$i]}"; do
		i=$((i + 1))
	done
	echo $i
}

revert_tail() { # revert the applied patches after the first $1
	local keep=$1 p
	local -a old
	mapfile -t old < <(series_list "$applied")
	for ((i = ${#old[@]} - 1; i >= keep; i--)); do
		p=${old[$i]}
		log "reverting $p"
		patch -d "$tree" -p1 -R --no-backup-if-mismatch -s < "$applied/$p" || return 1
	done
}

apply_tail() { # apply the wanted patches after the first $1, then record the series
	local keep=$1 p
	local -a new
	mapfile -t new < <(series_list "$patches")
	for ((i = keep; i < ${#new[@]}; i++)); do
		p=${new[$i]}
		[ -f "$patches/$p" ] || die "series names $p, which is missing"
		log "applying $p"
		patch -d "$tree" -p1 --forward --no-backup-if-mismatch -s < "$patches/$p" ||
			die "$p does not apply to $tarball (see the rejects in $tree)"
	done
	rm -rf "$applied"
	mkdir -p "$applied"
	cp "$patches/series" "$applied/series"
	for p in "${new[@]}"; do cp "$patches/$p" "$applied/$p"; done
}

want=$(series_hash "$patches")
[ -f "$tree/Makefile" ] && [ -d "$applied" ] || extract
have=$(series_hash "$applied")
if [ "$have" != "$want" ]; then
	keep=$(common_prefix)
	if ! revert_tail "$keep"; then
		log "the old series does not revert cleanly: starting from a fresh tree"
		extract
		keep=0
	fi
	apply_tail "$keep"
fi
log "tree ready, series $want"
