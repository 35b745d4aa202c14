#!/bin/bash
# Mount reads the block group items ahead (patch 0022). A filesystem without
# the block group tree, with some 500 block groups (a sparse 2 TiB disk,
# 500 GiB fallocated in 1 GiB data chunks, 4 KiB nodes), mounted on a
# slowed disk:
#  - with the module loaded, mount starts one readahead request per block
#    group, and the module reads extent tree blocks for them, with no error;
#  - the block groups and space info btrfs loads are the same with and
#    without the module (`btrfs filesystem usage`, every allocation total
#    in sysfs);
#  - nothing is held afterwards, `btrfs check` is clean.
# Mount times are printed, not judged (`make bench` is where speed is
# measured). Not tested: a filesystem with the block group tree, for which
# mount asks for nothing (Debian's btrfs-progs 6.2 cannot make one).
# disks: 1x2T
# timeout: 900
# full: kasan
. /tests/lib.sh

# space_info: what btrfs loaded of the block groups: every allocation
# total in sysfs and the usage summary
space_info() {
	local fsid=$1
	local f
	for f in $(cd /sys/fs/btrfs/$fsid/allocation && find . -name total_bytes -o -name bytes_used \
		-o -name used_bytes -o -name disk_total -o -name disk_used -o -name bytes_readonly | sort); do
		echo "$f $(cat /sys/fs/btrfs/$fsid/allocation/$f)"
	done
	btrfs filesystem usage -b $MNT | grep -E '^ +(Device size|Device allocated|Device unallocated|Used):|^(Data|Metadata|System),'
}

# timed_mount DEV: mount DEV on $MNT cold, printing how long it took
timed_mount() {
	drop_caches
	local t0 t1
	t0=$(date +%s.%N)
	mount "$1" $MNT
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "mount took %.2f s\n", b - a }'
}

say "a filesystem with many block groups and no block group tree"
mkfs.btrfs -q -f -K -n 4096 -m single -d single /dev/vda
btrfs inspect-internal dump-super /dev/vda | grep -q BLOCK_GROUP_TREE &&
	fail "mkfs made a block group tree; this test needs the extent tree's items"
mount /dev/vda $MNT
for i in $(seq 1 5); do fallocate -l 100G $MNT/file$i; done
umount $MNT
# Leaves' items only: nodes print the keys of their children too.
groups=$(btrfs inspect-internal dump-tree -t extent /dev/vda | grep -cE '^[[:space:]]+item [0-9]+ key \([0-9]+ BLOCK_GROUP_ITEM ')
leaves=$(dump_tree_blocks /dev/vda extent)
echo "block groups: $groups, extent tree blocks: $leaves"
[ "$groups" -ge 500 ] || fail "only $groups block groups"
fsid=$(btrfs filesystem show /dev/vda | awk '/uuid:/ { print $NF }')
dm_delayed slow /dev/vda 2

say "without the module"
timed_mount /dev/mapper/slow
space_info $fsid > /tmp/stock
umount $MNT

say "with the module"
load_module
done0=$(counter requests_done)
timed_mount /dev/mapper/slow
space_info $fsid > /tmp/module
wait_requests_end 120
expect_eq "requests active" 0 "$(counter requests_active)"
expect_eq "requests ended" "$groups" $(($(counter requests_done) - done0))
expect_eq "requests made by mount (one per block group)" "$groups" "$(counter user_mount_requests)"
expect_eq "blocks failed" 0 "$(counter blocks_failed)"
expect_eq "errors of mount's requests" 0 "$(counter user_mount_errors)"
[ "$(counter user_mount_blocks_read)" -gt 0 ] || fail "mount's requests read no block (user_mount_blocks_read)"
reads=$(counter "tree.$fsid.2.reads")
[ "$reads" -gt 0 ] || fail "the module read no extent tree block"
echo "ok: the module read $reads of the $leaves extent tree blocks for mount"
diff /tmp/stock /tmp/module || fail "the block groups or space info loaded differ with the module"
echo "ok: the same block groups and space info with and without the module ($(wc -l < /tmp/stock) lines)"
umount $MNT
nothing_held

unload_module
dmsetup remove slow
check_clean /dev/vda
