#!/bin/bash
# `make demo`: the main job, run inside the VM. For now: load the module,
# make a three-disk btrfs (metadata raid1c3, data raid1), fill it, and show
# the filesystem and the module at work.
set -euo pipefail
. /tests/lib.sh
echo "== kernel $(uname -r), $(nproc) CPUs, disks: $(disks 3)"
load_module
dmesg | grep "btrfs tree readahead" | tail -1
mkfs.btrfs -q -f -m raid1c3 -d raid1 $(disks 3)
mount -t btrfs /dev/vda $MNT
mkdir $MNT/data
for i in $(seq 1 200); do head -c $((4096 * (i % 17 + 1))) /dev/urandom > $MNT/data/f$i; done
sync
btrfs filesystem show $MNT
btrfs filesystem df $MNT
umount $MNT
unload_module
echo "== demo done"
