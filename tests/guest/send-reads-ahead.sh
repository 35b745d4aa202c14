#!/bin/bash
# A full send reads the send root ahead of its cursor (patch 0024). A
# read-only snapshot of a subvolume of some thousands of files, sent in full
# from a cold cache on a slowed disk:
#  - the stream is byte for byte the same with the module as without it;
#  - with the module, send makes readahead requests that read blocks of the
#    subvolume trees (the module counts those together), with no error;
#  - nothing is held afterwards, `btrfs check` is clean.
# disks: 1x1G
# timeout: 600
. /tests/lib.sh

say "a subvolume of some thousands of files, and its read-only snapshot"
mkfs.btrfs -q -f -n 4096 -m single -d single /dev/vda
mount /dev/vda $MNT
btrfs subvolume create $MNT/sv > /dev/null
populate $MNT/sv
mkdir $MNT/sv/deep && fill_files $MNT/sv/deep 1500 300
btrfs subvolume snapshot -r $MNT/sv $MNT/snap > /dev/null
snapid=$(btrfs subvolume list $MNT | awk '$NF == "snap" { print $2 }')
[ -n "$snapid" ] || fail "no snapshot id"
umount $MNT
fsid=$(btrfs filesystem show /dev/vda | awk '/uuid:/ { print $NF }')
blocks=$(dump_tree_blocks /dev/vda "$snapid")
echo "snapshot $snapid: $blocks tree blocks"
dm_delayed slow /dev/vda 2

say "without the module"
cold_mount /dev/mapper/slow
btrfs send -q -f /tmp/stock.stream $MNT/snap
umount $MNT

say "with the module"
load_module
cold_mount /dev/mapper/slow
user_begin send "tree.$fsid.subvol.reads"
btrfs send -q -f /tmp/module.stream $MNT/snap
user_end "send of the $blocks-block snapshot"
cmp /tmp/stock.stream /tmp/module.stream || fail "the send streams differ with the module"
echo "ok: the same stream with and without the module ($(stat -c %s /tmp/module.stream) bytes)"
umount $MNT
nothing_held
unload_module
dmsetup remove slow
check_clean /dev/vda
