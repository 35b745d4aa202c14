#!/bin/bash
# The memory one request holds over a tree of more than 10,000 blocks (an fs
# tree of 4 KiB nodes made by mkfs --rootdir), read from a slow disk so that
# its queue fills: the module never holds more blocks at once than the tree
# has (blocks_live_peak), its unreclaimable slab memory per block held,
# sampled while the request runs (minus btrfs's own extent buffers for the
# blocks read so far), stays under a bound, and once the request ends the
# module holds nothing. The peak grows with the tree (every leaf below the
# nodes read is queued at once); a size-independent cap is issue 14's.
# disks: 1x1G
# timeout: 900
# mem: 2048
. /tests/lib.sh
# Inline files of 2,000 bytes: about one leaf per file and a half.
fill_files /tmp/root/d 11000 2000
mkfs.btrfs -q -f -n 4096 -m single -d single --rootdir /tmp/root /dev/vda
rm -rf /tmp/root
tree_blocks=$(dump_tree_blocks /dev/vda fs)
echo "fs tree: $tree_blocks blocks"
[ "$tree_blocks" -ge 10000 ] || fail "the fs tree has only $tree_blocks blocks"
eb_size=$(awk '$1 == "btrfs_extent_buffer" { print $4 }' /proc/slabinfo)
[ -n "$eb_size" ] || fail "no btrfs_extent_buffer slab cache"

load_module
# Reads take 5 ms, so that the request lasts and its queue fills.
dm_delayed slow /dev/vda 5
mount /dev/mapper/slow $MNT
drop_caches
memory_sampler_start
out=$(reada $MNT --tree fs --json)
memory_sampler_stop "$eb_size"
expect_eq "errors" 0 "$(json_field errors "$out")"
expect_eq "blocks visited" "$tree_blocks" "$(json_field blocks_visited "$out")"
peak=$(counter blocks_live_peak)
echo "blocks held at once: at most $peak of $tree_blocks"
[ "$peak" -le "$tree_blocks" ] || fail "held $peak blocks, more than the tree has"
[ "$peak" -ge 1000 ] || fail "the queue never filled: peak $peak blocks"
# The sample holding the most blocks: the module's bytes per block then,
# btrfs's extent buffers for the blocks read so far taken out.
per_block=$((module_bytes / held))
echo "at $held blocks held ($read read): unreclaimable slab +$slab_kb kB," \
	"btrfs's extent buffers $((read * eb_size / 1024)) kB ($eb_size bytes each):" \
	"$per_block bytes per block held"
[ "$per_block" -le 2048 ] || fail "$per_block bytes per block held"
expect_eq "blocks held afterwards" 0 "$(counter blocks_live)"
umount $MNT
dmsetup remove slow
unload_module
