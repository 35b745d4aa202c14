#!/bin/bash
# Guest script: two builds of the module side by side in one VM, on the same
# trees, alternated round by round: /job/before.ko and /job/after.ko.
#
# memory  one request over an fs tree of more than 10,000 4 KiB nodes, read
#         through dm-delay (5 ms per read) so that its queue fills: the most
#         blocks held at once (blocks_live_peak) and the unreclaimable slab
#         memory per block held at the sample holding the most, btrfs's own
#         extent buffers for the blocks read so far taken out (as the test
#         readahead-memory measures it).
# cpu     the same tree wholly in memory, no I/O, so pure overhead: each
#         build's readahead beside the plain walk, REPEAT requests in one
#         `reada --repeat` call per build and round: blocks/s (from the
#         requests' own times) and the CPU time every CPU spent per block
#         (busy time in /proc/stat over the call, which counts the
#         module's workqueue passes too; in 10 ms ticks, so a call lasts
#         seconds).
#
# Host side (the release kernel for real figures; the modules built against
# it):
#   python3 tools/vm/vmrun.py --kernel build/linux-release/arch/x86/boot/bzImage \
#     --initramfs build/initramfs-release.cpio --workdir build/vm/module-compare \
#     --disk 1G --mem 2048 --timeout 3600 --file BEFORE/before.ko \
#     --file AFTER/after.ko --script tools/measure/module-compare.sh
set -euo pipefail
. /tests/lib.sh
ROUNDS=${ROUNDS:-3}
REPEAT=${REPEAT:-100}
builds="before after"
for b in $builds; do
	[ -f /job/$b.ko ] || fail "missing /job/$b.ko"
done

use() { # use BUILD: load that build of the module
	[ ! -d /sys/module/btrfs_reada ] || rmmod btrfs_reada
	insmod /job/$1.ko
}

fill_files /tmp/root/d 11000 2000
mkfs.btrfs -q -f -n 4096 -m single -d single --rootdir /tmp/root /dev/vda
rm -rf /tmp/root
tree_blocks=$(dump_tree_blocks /dev/vda fs)
echo "fs tree: $tree_blocks blocks"
# btrfs's extent buffer object size (the release kernel has no slabinfo)
eb_size=$(cat /sys/kernel/slab/btrfs_extent_buffer/slab_size 2> /dev/null ||
	awk '$1 == "btrfs_extent_buffer" { print $4 }' /proc/slabinfo)
[ -n "$eb_size" ] || fail "no size for btrfs_extent_buffer"
echo "extent buffer: $eb_size bytes"

echo "== memory: one request, 5 ms per read"
dm_delayed slow /dev/vda 5
printf '%-7s %5s %10s %12s %14s\n' build round peak "held@max" "bytes/block"
for round in $(seq "$ROUNDS"); do
	for b in $builds; do
		use $b
		mount /dev/mapper/slow $MNT
		drop_caches
		memory_sampler_start
		out=$(reada $MNT --tree fs --json)
		memory_sampler_stop "$eb_size"
		expect_eq "blocks visited" "$tree_blocks" "$(json_field blocks_visited "$out")"
		printf '%-7s %5s %10s %12s %14s\n' $b $round "$(counter blocks_live_peak)" $held \
			$((module_bytes / held))
		umount $MNT
	done
done
dmsetup remove slow

echo "== cpu: the tree wholly in memory, $REPEAT requests per call"
# Busy time of all CPUs so far, in USER_HZ (100 per second) ticks.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# sum_field NAME JSON-LINES: json_field NAME of each line, summed
sum_field() { json_field "$1" "$2" | awk '{ s += $1 } END { print s }'; }
mount /dev/vda $MNT
reada $MNT --tree fs --mode plain > /dev/null # warm everything
printf '%-10s %5s %8s %10s %13s\n' run round blocks "blocks/s" "cpu ns/block"
for round in $(seq "$ROUNDS"); do
	for run in plain $builds; do
		case $run in
		plain) mode=plain ;;
		*) mode=readahead && use $run ;;
		esac
		t0=$(busy_ticks)
		out=$(reada $MNT --tree fs --mode $mode --json --repeat "$REPEAT")
		t1=$(busy_ticks)
		n=$(sum_field blocks_visited "$out")
		ns=$(sum_field elapsed_ns "$out")
		expect_eq "blocks visited ($run)" $((tree_blocks * REPEAT)) "$n"
		expect_eq "blocks read ($run)" 0 "$(sum_field blocks_read "$out")"
		printf '%-10s %5s %8s %10s %13s\n' $run $round $((n / REPEAT)) \
			$((n * 1000000000 / ns)) $(((t1 - t0) * 10000000 / n))
	done
done
umount $MNT
rmmod btrfs_reada
echo "== done"
