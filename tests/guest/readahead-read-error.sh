#!/bin/bash
# A read error on one device ends only the branches under the failed
# blocks: the request completes, reports the errors, and reads everything
# reachable without the failed device (exactly what btrfs's own plain walk,
# which also cuts a branch at a failed block, reaches), and nothing hangs.
# disks: 2x1G
# timeout: 600
# expect-console: BTRFS error \(device \w+\): bdev /dev/mapper/flaky errs: wr 0, rd \d+, flush 0, corrupt 0, gen 0
# kernel: debug
# full: kasan
. /tests/lib.sh
load_module
size=$(blockdev --getsz /dev/vdb)
dmsetup create flaky --table "0 $size linear /dev/vdb 0"
# Metadata raid0 over two devices: blocks alternate between them, one copy each.
mkfs.btrfs -q -f -n 4096 -m raid0 -d single /dev/vda /dev/mapper/flaky
mount /dev/vda $MNT
populate $MNT
umount $MNT
total=$(dump_tree_blocks /dev/vda fs)
mount /dev/vda $MNT
good=$(reada $MNT --tree fs --json)
expect_eq "healthy: blocks" "$total" "$(json_field blocks_visited "$good")"
cold_remount /dev/vda
# Now every read from the second device fails.
dm_retable flaky "0 $size error"
bad=$(timeout 120 reada $MNT --tree fs --json) || fail "readahead failed or hung: $bad"
echo "$bad"
errors=$(json_field errors "$bad"); visited=$(json_field blocks_visited "$bad")
[ "$errors" -gt 0 ] || fail "no read errors reported"
[ "$visited" -gt 0 ] && [ "$visited" -lt "$total" ] || fail "visited $visited of $total"
echo "ok: $errors errors, $visited of $total blocks read from the healthy device"
# btrfs's plain walk, one synchronous read at a time, reaches the same
# blocks and fails on the same ones.
plain=$(timeout 120 reada $MNT --tree fs --mode plain --json) || fail "plain walk failed: $plain"
expect_eq "blocks reached, readahead against the plain walk" "$(json_field blocks_visited "$plain")" "$visited"
expect_eq "failed blocks, readahead against the plain walk" "$(json_field errors "$plain")" "$errors"
dm_retable flaky "0 $size linear /dev/vdb 0"
umount $MNT
unload_module
dmsetup remove flaky
