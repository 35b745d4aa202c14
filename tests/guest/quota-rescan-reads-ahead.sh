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

say "without the module"
cold_mount /dev/mapper/slow
btrfs quota rescan -w $MNT > /dev/null
btrfs qgroup show --raw $MNT > /tmp/stock
umount $MNT

say "with the module"
load_module
cold_mount /dev/mapper/slow
user_begin qgroup_rescan "tree.$fsid.2.reads"
btrfs quota rescan -w $MNT > /dev/null
btrfs qgroup show --raw $MNT > /tmp/module
user_end "the rescan"
cat /tmp/module
diff /tmp/stock /tmp/module || fail "the qgroups differ with the module"
echo "ok: the same qgroup numbers with and without the module"
umount $MNT
nothing_held
unload_module
dmsetup remove slow
check_clean /dev/vda
