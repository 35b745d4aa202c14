#!/bin/bash
# With the module loaded, scrub reads ahead the extent and csum tree ranges
# of each chunk before scrubbing it: the module's counters move (requests,
# reads on both devices), every block of the csum tree but its root (which
# mount reads) is read by the module for the csum tree (its per-tree count,
# which counts only reads issued, not blocks found in memory),
# and `reada --counters` prints them. Without the module, scrub scrubs the
# same bytes with no error, and no counter exists.
# disks: 2x1G
# timeout: 900
# kernel: debug
. /tests/lib.sh
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
mount /dev/vda $MNT
populate $MNT
# Enough data for a csum tree of some dozens of blocks (4 bytes per 4 KiB).
fill_files $MNT/big 10 16777216
umount $MNT
csum_blocks=$(dump_tree_blocks /dev/vda csum)
extent_blocks=$(dump_tree_blocks /dev/vda extent)
echo "csum tree: $csum_blocks blocks, extent tree: $extent_blocks blocks"
[ "$csum_blocks" -ge 20 ] || fail "csum tree too small for this test: $csum_blocks blocks"

# scrub_summary OUTPUT: the data a scrub checked and what it found, one
# line (tree bytes can differ by the blocks a mount or unmount rewrites;
# they must only not be 0)
scrub_summary() {
	[ "$(scrub_field tree_bytes_scrubbed "$1")" -gt 0 ] || fail "scrub checked no tree block: $1"
	echo "data_bytes_scrubbed:$(scrub_field data_bytes_scrubbed "$1") $(scrub_errors "$1")"
}
no_errors="read_errors:0 csum_errors:0 verify_errors:0 super_errors:0 malloc_errors:0 uncorrectable_errors:0 unverified_errors:0 corrected_errors:0 "

say "stock scrub"
mount /dev/vda $MNT
stock=$(btrfs scrub start -BR $MNT) || fail "stock scrub failed: $stock"
stock=$(scrub_summary "$stock")
echo "stock: $stock"
case "$stock" in
"data_bytes_scrubbed:0 "*) fail "stock scrub checked no data: $stock" ;;
*" $no_errors") ;;
*) fail "stock scrub found errors: $stock" ;;
esac
[ ! -e "$COUNTERS" ] || fail "counters exist without the module"
umount $MNT

say "scrub with the module"
load_module
drop_caches
mount /dev/vda $MNT
# Mount's own requests (its block group items) end first.
wait_requests_end 60
read0=$(counter blocks_read); done0=$(counter requests_done)
moded=$(btrfs scrub start -BR $MNT) || fail "scrub with the module failed: $moded"
btrfs scrub status $MNT | grep -q "Status:.*finished" || fail "scrub status does not say finished"
read1=$(counter blocks_read); done1=$(counter requests_done)
expect_eq "scrub with the module against stock scrub" "$stock" "$(scrub_summary "$moded")"
reada --counters
reada --counters --json
echo "requests done: $done0 -> $done1, blocks read: $read0 -> $read1"
# A request per chunk scrubbed and device (data, metadata and system
# chunks on each of two devices), plus one for each data chunk's csums.
[ $((done1 - done0)) -ge 6 ] || fail "too few readahead requests: $((done1 - done0))"
# Every one of them scrub's: nothing else read ahead meanwhile.
expect_eq "scrub's requests (user_scrub_requests)" $((done1 - done0)) "$(counter user_scrub_requests)"
[ "$(counter user_scrub_blocks_read)" -gt 0 ] || fail "scrub's requests read no block (user_scrub_blocks_read)"
expect_eq "requests still active" 0 "$(counter requests_active)"
expect_eq "blocks failed" 0 "$(counter blocks_failed)"
# Per-device and per-tree counters name the filesystem by its UUID.
fsid=$(btrfs filesystem show /dev/vda | awk '/uuid:/ { print $NF }')
# The csum tree (id 7) is cold after mount but for its root: every other
# block was read by the module, for the csum tree, before scrub's searches
# needed it.
csum_reads=$(counter "tree.$fsid.7.reads")
[ "$csum_reads" -ge $((csum_blocks - 1)) ] ||
	fail "the module read $csum_reads csum tree blocks, fewer than the $((csum_blocks - 1)) of the csum tree below its root"
echo "ok: the module read $csum_reads csum tree blocks of $csum_blocks, $((read1 - read0)) blocks in all"
for devid in 1 2; do
	r=$(counter "dev.$fsid.$devid.reads")
	[ "$r" -gt 0 ] || fail "no reads counted on device $devid"
	echo "ok: device $devid: $r reads, $(counter "dev.$fsid.$devid.bytes") bytes"
done
reada --counters | grep -q "filesystem $fsid device 2: [1-9][0-9]* reads" || fail "reada --counters lacks device 2"
echo "ok: reada --counters shows both devices"
umount $MNT
# The filesystem's per-device lines go with it; the totals stay.
grep -q "^dev\.$fsid\." $COUNTERS && fail "device counters outlived the mount"
expect_eq "blocks read after unmount" "$read1" "$(counter blocks_read)"
unload_module
