#!/bin/bash
# A RAID1 filesystem mounted degraded, one device missing: readahead skips
# the copies on the missing device and reads every block from the one that
# is there, with no error: it never starts a read on the missing device
# (its per-device counters say so), so nothing fails and nothing is retried
# from the other copy.
# disks: 2x1G
# timeout: 600
# expect-console: BTRFS (warning|error) \(device \w+\): devid \d+ uuid \S+ is missing
# expect-console: BTRFS error \(device \w+\): failed to read the system array: -2
# expect-console: BTRFS error \(device \w+\): open_ctree failed: -2
# kernel: debug
# full: kasan
. /tests/lib.sh
load_module
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
mount /dev/vda $MNT
populate $MNT
umount $MNT
declare -A total
load_tree_blocks /dev/vda
for t in fs extent csum; do total[$t]=$(tree_blocks $t); done
# The second device disappears: wipe its superblocks (primary and the
# first mirror) and let btrfs forget it.
dd if=/dev/zero of=/dev/vdb bs=4096 seek=16 count=1 conv=notrunc,fsync status=none
dd if=/dev/zero of=/dev/vdb bs=4096 seek=16384 count=1 conv=notrunc,fsync status=none
btrfs device scan --forget
mount /dev/vda $MNT 2>/dev/null && fail "mounted without -o degraded"
mount -o degraded /dev/vda $MNT
btrfs filesystem show $MNT | grep -qi "missing" || fail "no device is missing: $(btrfs filesystem show $MNT)"
fsid=$(btrfs filesystem show $MNT | awk '/uuid:/ { print $NF }')
retried=$(counter blocks_retried) failed=$(counter blocks_failed)
for t in fs extent csum; do
	umount $MNT
	drop_caches
	mount -o degraded /dev/vda $MNT
	out=$(timeout 120 reada $MNT --tree $t --json) || fail "$t: readahead failed or hung: $out"
	expect_eq "$t: blocks visited" "${total[$t]}" "$(json_field blocks_visited "$out")"
	expect_eq "$t: errors" 0 "$(json_field errors "$out")"
	# Device 2's lines exist only if the module ever queued a block on it.
	missing_reads=$(awk -v n="dev.$fsid.2.reads" '$1 == n { print $2 }' $COUNTERS)
	expect_eq "$t: reads started on the missing device" 0 "${missing_reads:-0}"
	[ "$(counter "dev.$fsid.1.reads")" -gt 0 ] || fail "$t: no read on the device that is there"
done
expect_eq "blocks retried from another copy" "$retried" "$(counter blocks_retried)"
expect_eq "blocks failed" "$failed" "$(counter blocks_failed)"
umount $MNT
unload_module
