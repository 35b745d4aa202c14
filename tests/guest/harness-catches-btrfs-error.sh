#!/bin/bash
# Harness self-test: a btrfs error or warning the test did not declare with
# expect-console must fail a run. A data block is corrupted on a
# single-copy filesystem and the file read back: btrfs reports the
# checksum failure.
# expect-splat: BTRFS (warning|error) \(device vda\): .*(csum failed|corrupt \d)
# disks: 1x1G
# timeout: 180
. /tests/lib.sh
mkfs.btrfs -q -f /dev/vda
mount /dev/vda $MNT
head -c 65536 /dev/urandom > $MNT/victim
sync
data=$(filefrag -v $MNT/victim | awk '$1 == "0:" { sub(/\.\.$/, "", $4); print $4 * 4096 }')
umount $MNT
corrupt_block /dev/vda "$(physical /dev/vda "$data" /dev/vda)" 4096
drop_caches
mount /dev/vda $MNT
cat $MNT/victim > /dev/null 2>&1 && fail "the corrupted file read back without an error"
umount $MNT
echo "btrfs refused the corrupted block"
