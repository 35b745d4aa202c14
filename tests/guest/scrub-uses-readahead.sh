#!/bin/bash
# With the module loaded, scrub reads ahead the extent and csum tree ranges
# of each chunk before scrubbing it: the module's counters move (requests,
# blocks read, reads on both devices), every block of the csum tree (which
# nothing reads at mount) comes from the module, and `reada --counters`
# prints them. Without the module, scrub works as before and nothing counts.
# disks: 2x1G
# timeout: 900
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

say "stock scrub"
mount /dev/vda $MNT
btrfs scrub start -B $MNT > /dev/null || fail "stock scrub failed"
[ ! -e "$COUNTERS" ] || fail "counters exist without the module"
umount $MNT

say "scrub with the module"
load_module
drop_caches
mount /dev/vda $MNT
read0=$(counter blocks_read); done0=$(counter requests_done)
vda0=$(sectors_read /dev/vda); vdb0=$(sectors_read /dev/vdb)
btrfs scrub start -B $MNT || fail "scrub with the module failed"
btrfs scrub status $MNT | grep -q "Status:.*finished" || fail "scrub status does not say finished"
read1=$(counter blocks_read); done1=$(counter requests_done)
reada --counters
reada --counters --json
echo "requests done: $done0 -> $done1, blocks read: $read0 -> $read1"
# A request per chunk scrubbed and device (data, metadata and system
# chunks on each of two devices), plus one for each data chunk's csums.
[ $((done1 - done0)) -ge 6 ] || fail "too few readahead requests: $((done1 - done0))"
expect_eq "requests still active" 0 "$(counter requests_active)"
# The csum tree is cold after mount: every one of its blocks was read by
# the module before scrub's searches needed it.
[ $((read1 - read0)) -ge "$csum_blocks" ] ||
	fail "the module read $((read1 - read0)) blocks, fewer than the $csum_blocks of the csum tree"
echo "ok: the module read $((read1 - read0)) tree blocks (csum tree: $csum_blocks)"
expect_eq "blocks failed" 0 "$(counter blocks_failed)"
# Per-device counters name the filesystem by its UUID.
fsid=$(btrfs filesystem show /dev/vda | awk '/uuid:/ { print $NF }')
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
