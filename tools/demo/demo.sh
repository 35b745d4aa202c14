#!/bin/bash
# `make demo`: the main job, inside the VM. Makes a three-disk btrfs
# (metadata raid1, small nodes so trees grow deep), fills it with a few
# thousand files, then for the extent, csum and fs trees compares, each from
# a cold cache: the plain walk (one read at a time), the stock forward walk
# (READA_FORWARD), and the module's readahead.
set -euo pipefail
. /tests/lib.sh
devs=$(disks 3)
echo "== kernel $(uname -r), $(nproc) CPUs, disks: $devs"
load_module
dmesg | grep "btrfs tree readahead" | tail -1
mkfs.btrfs -q -f -n 4096 -m raid1 -d single $devs
mount /dev/vda $MNT
echo "== filling the filesystem"
populate $MNT
btrfs filesystem df $MNT
printf '\n%-7s %-10s %8s %8s %10s %10s\n' tree mode blocks read "time (ms)" "vs plain"
for tree in extent csum fs; do
	plain_ns=
	for mode in plain forward readahead; do
		cold_remount /dev/vda
		out=$(reada $MNT --tree $tree --mode $mode --json)
		ns=$(json_field elapsed_ns "$out")
		[ -n "$plain_ns" ] || plain_ns=$ns
		printf '%-7s %-10s %8s %8s %10s %9sx\n' $tree $mode \
			"$(json_field blocks_visited "$out")" "$(json_field blocks_read "$out")" \
			$((ns / 1000000)) "$(awk -v p=$plain_ns -v n=$ns 'BEGIN { printf "%.1f", p / n }')"
	done
done
echo
echo "(virtual disks backed by the host's page cache have no seeks: 'make bench'"
echo " measures on simulated rotating disks, where readahead shows its worth)"
umount $MNT
unload_module
echo "== demo done"
