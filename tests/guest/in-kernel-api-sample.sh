#!/bin/bash
# The in-kernel API (btrfs_reada_add/wait), used from C by the sample in
# samples/: it reads ahead exactly the tree's blocks, fails cleanly without
# the readahead module, and pins the module while its request runs.
# disks: 2x1G
# timeout: 300
. /tests/lib.sh
SAMPLE=/reada/btrfs_reada_sample.ko
mkfs.btrfs -q -f -n 4096 -m raid1 -d single $(disks 2)
mount /dev/vda $MNT
fill_files $MNT/a 600 5000
umount $MNT
extent=$(dump_tree_blocks /dev/vda extent)
mount /dev/vda $MNT

if insmod $SAMPLE path=$MNT 2>/tmp/err; then fail "sample loaded without the readahead module"; fi
grep -q "Operation not supported" /tmp/err || fail "sample: $(cat /tmp/err)"
echo "ok: without the module the sample fails with EOPNOTSUPP"

load_module
insmod $SAMPLE path=$MNT tree=2
line=$(dmesg | grep "btrfs_reada_sample: tree 2 of $MNT" | tail -1)
echo "$line"
expect_eq "sample: extent tree blocks" "$extent" "$(echo "$line" | sed -n 's/.*: \([0-9]*\) blocks,.*/\1/p')"
echo "$line" | grep -q " 0 errors" || fail "sample reported errors"
# The sample names no user of its own: it counts as "other".
expect_eq "the sample's request (user_other_requests)" 1 "$(counter user_other_requests)"
expect_eq "the sample's blocks (user_other_blocks_read + _cached)" "$extent" \
	$(($(counter user_other_blocks_read) + $(counter user_other_blocks_cached)))
rmmod btrfs_reada_sample
if insmod $SAMPLE path=/tmp 2>/dev/null; then fail "sample accepted a non-btrfs path"; fi
echo "ok: a path not on btrfs is refused"
if insmod $SAMPLE path=$MNT tree=999 2>/dev/null; then fail "sample accepted tree 999"; fi
echo "ok: a missing tree is refused"
umount $MNT
unload_module
