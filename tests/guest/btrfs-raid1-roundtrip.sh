#!/bin/bash
# A multi-device btrfs works on the patched kernel, with and without the
# module: mkfs raid1 on three disks, write, remount, read back, btrfs check.
# With the module, each remount is followed by a readahead of every tree,
# which must visit the blocks dump-tree counts, with no error, reading the
# csum tree (which mount does not touch) from disk.
# disks: 3x1G
# timeout: 600
. /tests/lib.sh
devs=$(disks 3)
# 4 KiB nodes, so that the csum tree of the 40 files has leaves below its
# root (which mount reads).
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 $devs
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
	declare -A blocks
	load_tree_blocks /dev/vda
	for t in root extent chunk dev fs csum; do blocks[$t]=$(tree_blocks $t); done
	drop_caches
	mount -t btrfs /dev/vdb $MNT  # any member device mounts the filesystem
	if [ $round = with-module ]; then
		for t in root extent chunk dev fs csum; do
			out=$(reada $MNT --tree $t --json) || fail "readahead of the $t tree: $out"
			expect_eq "$t tree: blocks visited" "${blocks[$t]}" "$(json_field blocks_visited "$out")"
			expect_eq "$t tree: errors" 0 "$(json_field errors "$out")"
			[ $t = csum ] && { [ "$(json_field blocks_read "$out")" -gt 0 ] || fail "the csum tree was not read"; }
		done
	fi
	(cd $MNT/$round && sha256sum -c /tmp/$round.sums >/dev/null) || fail "data changed after remount"
	echo "ok: 20 files read back intact"
	expect_eq "devices in the filesystem" 3 "$(btrfs filesystem show $MNT | grep -c 'devid')"
	umount $MNT
done
unload_module
btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check"; }
grep -q "no error found" /tmp/check.log || { cat /tmp/check.log; fail "btrfs check found errors"; }
echo "ok: btrfs check clean"
