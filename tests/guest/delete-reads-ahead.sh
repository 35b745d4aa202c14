#!/bin/bash
# Deleting large files reads ahead what freeing their extents searches:
# their extent items and their checksums (patch 0025). Three files of
# 64 MiB written 16 MiB at a time with a commit after each, three of 2,000
# extents of 4 KiB written in turn (tools/fill-groups: some 6,000 extent
# items, a hundred extent tree leaves with 4 KiB nodes), and a 32 MiB file
# kept, the six deleted from a cold cache on a slowed disk, once without
# and once with the module on filesystems made the same way:
#  - with the module, the deletion makes readahead requests that read csum
#    tree blocks and extent tree blocks (the module's per-tree counts), with
#    no error;
#  - afterwards, with and without the module, the csum tree holds exactly
#    the kept file's checksums (4 bytes per 4 KiB sector), the data in use
#    is the same, and `btrfs check --check-data-csum` is clean (no
#    checksum without its extent, every remaining extent's checksums
#    right);
#  - nothing is held afterwards.
# disks: 1x1G
# timeout: 900
. /tests/lib.sh

# make_fs: the same filesystem each time (the files hold zeroes, which
# btrfs checksums like any data: no compression is on)
make_fs() {
	local f i n
	mkfs.btrfs -q -f -n 4096 -m single -d single /dev/vda
	mount /dev/vda $MNT
	for f in big1 big2 big3 keep; do
		n=4
		[ $f = keep ] && n=2
		for ((i = 0; i < n; i++)); do
			dd if=/dev/zero of=$MNT/$f bs=1M count=16 seek=$((i * 16)) conv=notrunc status=none
			sync
		done
	done
	fill-groups write $MNT 6000 3
	umount $MNT
}

# state: what the deletion left: the bytes of checksums in the csum tree
# (which must be the kept file's), the data in use
state() {
	local csum
	csum=$(btrfs inspect-internal dump-tree -t csum /dev/vda |
		awk '/key \(EXTENT_CSUM EXTENT_CSUM/ { for (i = 1; i < NF; i++) if ($i == "itemsize") s += $(i + 1) } END { print s + 0 }')
	expect_eq "checksum bytes left (the kept file's 32 MiB)" $((32 * 1048576 / 4096 * 4)) "$csum"
	mount /dev/vda $MNT
	btrfs filesystem usage -b $MNT | grep -E '^Data,'
	umount $MNT
}

# delete_files: delete the six files, and commit
delete_files() {
	rm $MNT/big1 $MNT/big2 $MNT/big3 $MNT/f0 $MNT/f1 $MNT/f2
	sync
	btrfs filesystem sync $MNT
}

say "without the module"
make_fs
csum_blocks=$(dump_tree_blocks /dev/vda csum)
echo "csum tree before: $csum_blocks blocks"
dm_delayed slow /dev/vda 2
cold_mount /dev/mapper/slow
delete_files
umount $MNT
dmsetup remove slow
state > /tmp/stock

say "with the module"
make_fs
fsid=$(btrfs filesystem show /dev/vda | awk '/uuid:/ { print $NF }')
dm_delayed slow /dev/vda 2
load_module
cold_mount /dev/mapper/slow
user_begin truncate "tree.$fsid.7.reads"
extent0=$(counter_or_0 "tree.$fsid.2.reads")
delete_files
user_end "the deletion"
extent=$(($(counter_or_0 "tree.$fsid.2.reads") - extent0))
[ "$extent" -gt 0 ] || fail "the module read no extent tree block for the deletion"
echo "ok: the module read $extent extent tree blocks for the deletion"
umount $MNT
nothing_held
unload_module
dmsetup remove slow
state > /tmp/module
cat /tmp/module
diff /tmp/stock /tmp/module || fail "the filesystem differs after the deletion with the module"
echo "ok: the same csum items and space in use with and without the module"
check_clean --check-data-csum /dev/vda
