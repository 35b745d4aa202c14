#!/bin/bash
# A multi-device btrfs works on the patched kernel, with and without the
# module: mkfs raid1 on three disks, write, remount, read back, btrfs check.
# disks: 3x1G
# timeout: 600
. /tests/lib.sh
devs=$(disks 3)
mkfs.btrfs -q -f -m raid1 -d raid1 $devs
for round in without-module with-module; do
	say "$round"
	[ $round = with-module ] && load_module
	mount -t btrfs /dev/vda $MNT
	mkdir -p $MNT/$round
	for i in $(seq 1 20); do
		head -c $((i * 37 * 1024)) /dev/urandom > $MNT/$round/file$i
	done
	(cd $MNT/$round && sha256sum file* > /tmp/$round.sums)
	umount $MNT
	mount -t btrfs /dev/vdb $MNT  # any member device mounts the filesystem
	(cd $MNT/$round && sha256sum -c /tmp/$round.sums >/dev/null) || fail "data changed after remount"
	echo "ok: 20 files read back intact"
	expect_eq "devices in the filesystem" 3 "$(btrfs filesystem show $MNT | grep -c 'devid')"
	umount $MNT
done
unload_module
btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check"; }
grep -q "no error found" /tmp/check.log || { cat /tmp/check.log; fail "btrfs check found errors"; }
echo "ok: btrfs check clean"
