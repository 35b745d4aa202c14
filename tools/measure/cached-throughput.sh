#!/bin/bash
# Guest script: CPU cost of the readahead machinery. On a tree that is wholly
# in memory, no mode does I/O, so blocks/s measures pure overhead. Runs the
# plain walk, the stock forward and forward-always searches and the
# readahead in turn, 5 rounds, on the fs tree. Used for the figure in
# Documentation/testing.md (the release kernel for real figures):
#   python3 tools/vm/vmrun.py --kernel build/linux-release/arch/x86/boot/bzImage \
#     --initramfs build/initramfs-release.cpio --workdir build/vm/measure \
#     --disk 2G --disk 2G --script tools/measure/cached-throughput.sh
set -euo pipefail
. /tests/lib.sh
load_module
mkfs.btrfs -q -f -n 4096 -m raid1 -d single $(disks 2)
mount /dev/vda $MNT
fill_files $MNT/a 4000 3000
sync
reada $MNT --tree fs --mode plain > /dev/null   # warm everything
printf '%-14s %8s %8s %10s %12s\n' mode round blocks read "blocks/s"
for round in 1 2 3 4 5; do
	for mode in plain forward forward-always readahead; do
		out=$(reada $MNT --tree fs --mode $mode --json)
		n=$(json_field blocks_visited "$out"); ns=$(json_field elapsed_ns "$out")
		printf '%-14s %8s %8s %10s %12s\n' $mode $round $n "$(json_field blocks_read "$out")" \
			$((n * 1000000000 / ns))
	done
done
umount $MNT
unload_module
