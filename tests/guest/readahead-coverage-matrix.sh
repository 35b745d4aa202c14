#!/bin/bash
# The coverage matrix: node sizes 4, 16 (the default) and 64 KiB; metadata
# single, DUP, RAID1, RAID1C3, RAID1C4, RAID10, RAID5 and RAID6; mixed block
# groups. On each, a readahead of every tree (root, extent, chunk, dev, fs,
# csum, free space, uuid, and a snapshot's tree) from a cold mount visits
# exactly the blocks dump-tree counts, with no error; partial ranges of the
# fs tree visit what the plain walk visits; then a plain walk of every tree
# reads nothing from disk. Each configuration runs with another
# max_in_flight, and no device ever has more reads in flight than that.
# `make check` runs 7 of the 11 configurations; the profiles of those it
# leaves out (16 KiB DUP, RAID1, RAID1C3, RAID10) are read by
# readahead-then-walk-reads-nothing at 4 KiB.
# disks: 4x1G
# timeout: 1500
. /tests/lib.sh
load_module
trees="root extent chunk dev fs csum free-space uuid 256"
params=/sys/module/btrfs_reada/parameters/max_in_flight
limits=(1 2 3 6)
n=0
configs="16384:single:1 16384:raid1c4:4 16384:raid5:3 16384:raid6:4 4096:raid1:2 65536:raid1:2 mixed:dup:1"
full_suite && configs="$configs 16384:dup:1 16384:raid1:2 16384:raid1c3:3 16384:raid10:4"
for config in $configs; do
	IFS=: read -r nodesize profile ndev <<< "$config"
	devs=$(disks $ndev)
	if [ $nodesize = mixed ]; then
		mkfs.btrfs -q -f --mixed -n 4096 -m $profile -d $profile $devs
	else
		mkfs.btrfs -q -f -n $nodesize -m $profile -d single $devs
	fi
	limit=${limits[n % 4]}
	n=$((n + 1))
	say "nodes $nodesize, metadata $profile on $ndev device(s), max_in_flight $limit"
	mount /dev/vda $MNT
	populate $MNT
	btrfs subvolume snapshot $MNT $MNT/snap > /dev/null
	rm -rf $MNT/b/f1??  # the fs tree and the snapshot's part ways
	sync
	umount $MNT
	declare -A blocks
	load_tree_blocks /dev/vda
	for t in $trees; do blocks[$t]=$(tree_blocks $t); done
	echo "blocks: $(for t in $trees; do printf '%s=%s ' $t ${blocks[$t]}; done)"
	echo $limit > $params
	drop_caches
	mount /dev/vda $MNT
	fsid=$(btrfs filesystem show $MNT | awk '/uuid:/ { print $NF }')
	read=0
	for t in $trees; do
		out=$(reada $MNT --tree $t --json) || fail "$config: readahead of $t: $out"
		expect_quiet "$config/$t: readahead visits" "${blocks[$t]}" "$(json_field blocks_visited "$out")"
		expect_quiet "$config/$t: errors" 0 "$(json_field errors "$out")"
		read=$((read + $(json_field blocks_read "$out")))
	done
	[ $read -gt 0 ] || fail "$config: the readaheads read nothing from disk"
	for range in "--start 300 --end 700" "--start 1000,dir_index --end 1500" "--end 260" "--start 2000"; do
		ra=$(reada $MNT --tree fs $range --json)
		plain=$(reada $MNT --tree fs $range --mode plain --json)
		expect_quiet "$config: fs tree $range: readahead visits what the plain walk visits" \
			"$(json_field blocks_visited "$plain")" "$(json_field blocks_visited "$ra")"
	done
	for t in $trees; do
		out=$(reada $MNT --tree $t --mode plain --json)
		expect_quiet "$config/$t: plain walk visits" "${blocks[$t]}" "$(json_field blocks_visited "$out")"
		expect_quiet "$config/$t: plain walk after readahead reads" 0 "$(json_field blocks_read "$out")"
	done
	peak=0
	for d in $(seq $ndev); do
		p=$(counter "dev.$fsid.$d.peak_in_flight")
		[ "$p" -le $limit ] || fail "$config: device $d had $p reads in flight, max_in_flight is $limit"
		[ "$p" -gt $peak ] && peak=$p
	done
	[ $peak -ge 1 ] || fail "$config: no read in flight ever"
	echo "ok: $config: $read blocks read ahead over $(echo $trees | wc -w) trees, plain walks read nothing, at most $peak reads in flight per device"
	umount $MNT
	unset blocks
done
echo 6 > $params
unload_module
