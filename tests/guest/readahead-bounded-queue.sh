#!/bin/bash
# A request over a tree much larger than max_queued_blocks never holds the
# whole frontier at once: with the bound at 64, a cold readahead of a
# 4,000-file fs tree on a slow (dm-delay) disk holds at most 64 blocks plus
# one node's children (121 with 4 KiB nodes), parks nodes meanwhile, and
# still visits every block of the tree, with no error, leaving the tree in
# memory. Without the bound (0) the same readahead holds more than that
# and parks nothing. Unmounting with nodes parked under a detached request
# cancels them: nothing is held afterwards and the module unloads.
# disks: 1x1G
# full: kasan
# timeout: 900
. /tests/lib.sh
params=/sys/module/btrfs_reada/parameters
fill_files /tmp/root/d 4000 2000
mkfs.btrfs -q -f -n 4096 -m single -d single --rootdir /tmp/root /dev/vda
rm -rf /tmp/root
blocks=$(dump_tree_blocks /dev/vda fs)
echo "fs tree: $blocks blocks"
dm_delayed slow /dev/vda 5
bound=$((64 + 121))

# cold_readahead MAX_QUEUED: a cold readahead of the fs tree, the module
# loaded afresh with max_queued_blocks MAX_QUEUED; sets peak (the most
# blocks held at once) and parked (the nodes parked)
cold_readahead() {
	! grep -q " $MNT " /proc/mounts || umount $MNT
	! module_loaded || unload_module
	insmod "$MODULE" max_queued_blocks=$1
	drop_caches
	mount /dev/mapper/slow $MNT
	local out
	out=$(reada $MNT --tree fs --json) || fail "max_queued_blocks $1: readahead: $out"
	expect_quiet "max_queued_blocks $1: blocks visited" "$blocks" "$(json_field blocks_visited "$out")"
	expect_quiet "max_queued_blocks $1: errors" 0 "$(json_field errors "$out")"
	wait_requests_end 30
	nothing_held
	peak=$(counter blocks_live_peak)
	parked=$(counter nodes_parked)
}

cold_readahead 64
echo "max_queued_blocks 64: at most $peak blocks held, $parked nodes parked"
[ "$peak" -le $bound ] || fail "$peak blocks held at once, more than 64 + 121"
[ "$parked" -gt 0 ] || fail "no node parked under a bound of 64"
plain=$(reada $MNT --tree fs --mode plain --json)
expect_eq "plain walk after the bounded readahead: blocks read" 0 "$(json_field blocks_read "$plain")"

cold_readahead 0
echo "no bound: at most $peak blocks held, $parked nodes parked"
[ "$peak" -gt $bound ] || fail "only $peak blocks held without a bound: the tree is too small to test it"
expect_eq "nodes parked without a bound" 0 "$parked"

say "unmount with nodes parked"
echo 16 > $params/max_queued_blocks
cold_remount /dev/mapper/slow
reada $MNT --tree fs --detach > /dev/null
for i in $(seq 100); do
	[ "$(counter nodes_parked)" -gt 0 ] && break
	sleep 0.1
done
[ "$(counter nodes_parked)" -gt 0 ] || fail "no node parked under a bound of 16"
[ "$(counter requests_active)" -gt 0 ] || fail "the request ended before the unmount"
umount $MNT
echo "ok: unmount with nodes parked returned"
expect_eq "requests active" 0 "$(counter requests_active)"
nothing_held
unload_module
dmsetup remove slow
