#!/bin/bash
# A quota rescan reads the extent tree ahead of its cursor (patch 0023). On
# a filesystem with subvolumes, snapshots and reflinked files, with quotas
# enabled, a rescan from a cold cache on a slowed disk:
#  - finds the same qgroup numbers with the module as without it;
#  - with the module, makes readahead requests that read extent tree blocks
#    (the module's per-tree count), with no error;
#  - nothing is held afterwards, `btrfs check` is clean.
# disks: 1x1G
# timeout: 600
. /tests/lib.sh

say "subvolumes, snapshots and shared extents, quotas on"
mkfs.btrfs -q -f -n 4096 -m single -d single /dev/vda
mount /dev/vda $MNT
btrfs subvolume create $MNT/sv > /dev/null
populate $MNT/sv
btrfs subvolume snapshot $MNT/sv $MNT/snap > /dev/null
fill_files $MNT/snap/new 300 7000
cp --reflink=always -r $MNT/sv/b $MNT/sv/b-clone
btrfs quota enable $MNT
btrfs quota rescan -w $MNT > /dev/null
umount $MNT
fsid=$(btrfs filesystem show /dev/vda | awk '/uuid:/ { print $NF }')
dm_delayed slow /dev/vda 2

# cold_mount: mount the slowed disk, let the module's mount requests end,
# and forget every cached tree block
cold_mount() {
	mount /dev/mapper/slow $MNT
	module_loaded && wait_requests_end 60
	drop_caches
}

say "without the module"
cold_mount
btrfs quota rescan -w $MNT > /dev/null
btrfs qgroup show --raw $MNT > /tmp/stock
umount $MNT

say "with the module"
load_module
cold_mount
done0=$(counter requests_done)
reads0=$(counter_or_0 "tree.$fsid.2.reads")
btrfs quota rescan -w $MNT > /dev/null
btrfs qgroup show --raw $MNT > /tmp/module
wait_requests_end 60
expect_eq "requests active" 0 "$(counter requests_active)"
expect_eq "blocks failed" 0 "$(counter blocks_failed)"
made=$(($(counter requests_done) - done0))
[ "$made" -ge 1 ] || fail "the rescan made no readahead request"
reads=$(($(counter_or_0 "tree.$fsid.2.reads") - reads0))
[ "$reads" -gt 0 ] || fail "the module read no extent tree block for the rescan"
echo "ok: the rescan made $made requests; the module read $reads extent tree blocks"
cat /tmp/module
diff /tmp/stock /tmp/module || fail "the qgroups differ with the module"
echo "ok: the same qgroup numbers with and without the module"
umount $MNT
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
unload_module
dmsetup remove slow
btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check failed"; }
echo "ok: btrfs check is clean"
