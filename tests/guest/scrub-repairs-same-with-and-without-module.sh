#!/bin/bash
# Scrub finds and repairs the same errors with and without the module: on a
# RAID1 filesystem with one data block copy and one metadata block copy
# corrupted on the second device, `btrfs scrub start -B` reports the same
# error counts both times, repairs everything (a second scrub is clean, the
# data reads back intact) and `btrfs check` passes afterwards.
# disks: 2x1G
# timeout: 900
# expect-console: BTRFS error \(device vda\): bdev /dev/vdb errs: wr 0, rd 0, flush 0, corrupt [12], gen 0
# expect-console: BTRFS error \(device vda\): fixed up error at logical \d+ on dev /dev/vdb physical \d+
# expect-console: BTRFS warning \(device vda\): tree block \d+ mirror 2 has bad bytenr, has \d+ want \d+
# kernel: debug
# full: kasan
. /tests/lib.sh

# The same file contents in both rounds.
head -c 1048576 /dev/urandom > /tmp/victim

# round LABEL: make the filesystem, corrupt it, scrub it; the error counts
# of the first scrub go to /tmp/errors.LABEL
round() {
	local label=$1 data meta pdata pmeta out second
	mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
	mount /dev/vda $MNT
	populate $MNT
	cp /tmp/victim $MNT/victim
	sync
	# FIEMAP's physical address on btrfs is the logical address.
	data=$(filefrag -v $MNT/victim | awk '$1 == "0:" { sub(/\.\.$/, "", $4); print $4 * 4096 }')
	umount $MNT
	# The fifth leaf of the fs tree (not the first: mount reads the root
	# directory's inode, and may repair it from the other copy first).
	# Neither scrub nor the readahead searches the fs tree,
	# so only scrub's own pass over the metadata chunk meets the damage.
	btrfs inspect-internal dump-tree -t fs /dev/vda > /tmp/fs-tree.txt ||
		fail "$label: dump-tree of the fs tree failed"
	meta=$(awk '/^leaf [0-9]+ items/ && ++n == 5 { print $2 }' /tmp/fs-tree.txt)
	[ -n "$data" ] && [ -n "$meta" ] || fail "$label: no data extent ($data) or fifth fs tree leaf ($meta)"
	pdata=$(physical /dev/vda "$data" /dev/vdb)
	pmeta=$(physical /dev/vda "$meta" /dev/vdb)
	echo "$label: corrupting data $data (vdb at $pdata) and fs tree leaf $meta (vdb at $pmeta)"
	corrupt_block /dev/vdb "$pdata" 4096
	corrupt_block /dev/vdb "$pmeta" 4096
	drop_caches
	mount /dev/vda $MNT
	out=$(btrfs scrub start -BR $MNT 2>&1) || true
	echo "$out"
	second=$(btrfs scrub start -BR $MNT 2>&1) || fail "$label: second scrub failed: $second"
	expect_eq "$label: errors left for a second scrub" \
		"0 0 0" "$(scrub_field csum_errors "$second") $(scrub_field verify_errors "$second") $(scrub_field uncorrectable_errors "$second")"
	cmp -s /tmp/victim $MNT/victim || fail "$label: the file does not read back intact"
	umount $MNT
	btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log >&2; fail "$label: btrfs check failed"; }
	echo "ok: $label: btrfs check is clean, the data reads back intact"
	scrub_errors "$out" > /tmp/errors.$label
}

say "without the module"
module_loaded && fail "the module is loaded already"
round stock
stock=$(cat /tmp/errors.stock)
echo "stock scrub: $stock"

say "with the module"
load_module
before=$(counter requests_done)
round module
moded=$(cat /tmp/errors.module)
echo "module scrub: $moded"
after=$(counter requests_done)
[ "$after" -gt "$before" ] || fail "scrub did not use the module (requests_done $before -> $after)"
echo "ok: scrub issued $((after - before)) readahead requests"

expect_eq "scrub errors, module against stock" "$stock" "$moded"
for f in csum_errors verify_errors corrected_errors; do
	n=$(echo "$moded" | grep -o "$f:[0-9]*" | cut -d: -f2)
	echo "$f=$n"
done
echo "$moded" | grep -q "uncorrectable_errors:0 " || fail "uncorrectable errors: $moded"
c=$(echo "$moded" | grep -o "corrected_errors:[0-9]*" | cut -d: -f2)
[ "$c" -ge 2 ] || fail "expected both damaged copies repaired, corrected_errors=$c"
echo "ok: both rounds found and repaired the same errors ($c corrected)"
unload_module
