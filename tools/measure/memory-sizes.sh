#!/bin/bash
# Guest script: time per block and peak module memory of one readahead
# request at three tree sizes 10x apart (fs trees of about 1,200, 12,000
# and 120,000 4 KiB blocks, made by mkfs.btrfs --rootdir from 1,100, 11,000
# and 110,000 files of 2,000 bytes, which btrfs inlines), read through
# dm-delay (5 ms per read) from a cold cache, with max_queued_blocks at its
# default, at 1,024 and without a bound (0); SIZES and BOUNDS (environment)
# change the file counts and the bounds. Per run: the blocks held at once at
# the peak (blocks_live_peak), the nodes parked, and the unreclaimable slab
# memory at the sample holding the most blocks, btrfs's own extent buffers
# for the blocks read so far taken out (as tools/measure/module-compare.sh
# measures it), in all and per block held. Used for the figures in
# Documentation/benchmarks.md (the release kernel for real figures):
#   python3 tools/vm/vmrun.py --kernel build/linux-release/arch/x86/boot/bzImage \
#     --initramfs build/initramfs-release.cpio --workdir build/vm/memory-sizes \
#     --disk 4G --mem 4096 --timeout 3600 --script tools/measure/memory-sizes.sh
set -euo pipefail
. /tests/lib.sh
eb_size=$(cat /sys/kernel/slab/btrfs_extent_buffer/slab_size 2> /dev/null ||
	awk '$1 == "btrfs_extent_buffer" { print $4 }' /proc/slabinfo)
[ -n "$eb_size" ] || fail "no size for btrfs_extent_buffer"

printf '%-7s %7s %6s %8s %9s %8s %7s %9s %10s %11s\n' files blocks bound seconds "us/block" peak parked "held@max" "KiB@max" "bytes/block"
for files in ${SIZES:-1100 11000 110000}; do
	fill_files /tmp/root/d $files 2000
	mkfs.btrfs -q -f -n 4096 -m single -d single --rootdir /tmp/root /dev/vda
	rm -rf /tmp/root
	blocks=$(dump_tree_blocks /dev/vda fs)
	dm_delayed slow /dev/vda 5
	for bound in ${BOUNDS:-16384 1024 0}; do
		insmod "$MODULE" max_queued_blocks=$bound
		mount /dev/mapper/slow $MNT
		wait_requests_end 60
		drop_caches
		memory_sampler_start
		out=$(reada $MNT --tree fs --json)
		memory_sampler_stop "$eb_size"
		expect_quiet "$files files, bound $bound: blocks visited" "$blocks" "$(json_field blocks_visited "$out")"
		expect_quiet "$files files, bound $bound: errors" 0 "$(json_field errors "$out")"
		ns=$(json_field elapsed_ns "$out")
		printf '%-7s %7s %6s %8s %9s %8s %7s %9s %10s %11s\n' $files $blocks $bound \
			"$((ns / 1000000000)).$(printf '%02d' $((ns / 10000000 % 100)))" $((ns / 1000 / blocks)) \
			"$(counter blocks_live_peak)" "$(counter nodes_parked)" $held $((module_bytes / 1024)) \
			$((held > 0 ? module_bytes / held : 0))
		umount $MNT
		rmmod btrfs_reada
	done
	dmsetup remove slow
done
echo "== done"
