#!/bin/bash
# After a readahead of a tree, a plain walk of it reads nothing from disk,
# for every metadata profile with copies on one or several devices: single,
# DUP, RAID1, RAID1C3 and RAID10. The readahead visits exactly the blocks
# the plain walk visits, and it reads from every device holding metadata.
# The module's per-device read counters count the reads it issued, and
# only those: a cold readahead counts what it read, a warm one nothing. A
# warm readahead queues only its root and expands the rest in memory, also
# on a tree of more blocks than two passes deal with.
# disks: 4x1G
# timeout: 900
. /tests/lib.sh
load_module
for profile in single:1 dup:1 raid1:2 raid1c3:3 raid10:4; do
	name=${profile%:*}
	n=${profile#*:}
	devs=$(disks $n)
	say "metadata $name on $n device(s)"
	mkfs.btrfs -q -f -n 4096 -m $name -d single $devs
	mount /dev/vda $MNT
	populate $MNT
	for tree in extent csum fs; do
		cold_remount /dev/vda
		before=$(sectors_read_all $devs)
		for d in $devs; do eval "dev_before_${d##*/}=$(sectors_read $d)"; done
		counted=$(dev_counter_sum reads)
		ra=$(reada $MNT --tree $tree --json)
		mid=$(sectors_read_all $devs)
		counted=$(($(dev_counter_sum reads) - counted))
		plain=$(reada $MNT --tree $tree --mode plain --json)
		after=$(sectors_read_all $devs)
		echo "$tree: readahead $(json_field blocks_visited "$ra") blocks, $(json_field blocks_read "$ra") read, $((mid - before)) sectors"
		expect_eq "$name/$tree: readahead errors" 0 "$(json_field errors "$ra")"
		expect_eq "$name/$tree: readahead visits what the plain walk visits" \
			"$(json_field blocks_visited "$plain")" "$(json_field blocks_visited "$ra")"
		expect_eq "$name/$tree: plain walk after readahead: blocks read" 0 "$(json_field blocks_read "$plain")"
		expect_eq "$name/$tree: plain walk after readahead: sectors read" "$mid" "$after"
		[ "$(json_field blocks_read "$ra")" -gt 0 ] || fail "$name/$tree: cold readahead read nothing"
		expect_eq "$name/$tree: device reads counted by a cold readahead" \
			"$(json_field blocks_read "$ra")" "$counted"
		[ $((counted * 4096)) -le $(((mid - before) * 512)) ] ||
			fail "$name/$tree: $counted reads counted, more than the $((mid - before)) sectors read"
		counted=$(dev_counter_sum reads)
		queued=$(counter blocks_queued)
		warm=$(reada $MNT --tree $tree --json)
		# Only the root goes through the machine: every other block is
		# found in memory and expanded at once.
		expect_eq "$name/$tree: blocks a warm readahead queues" 1 \
			$(($(counter blocks_queued) - queued))
		expect_eq "$name/$tree: warm readahead visits what the plain walk visits" \
			"$(json_field blocks_visited "$plain")" "$(json_field blocks_visited "$warm")"
		expect_eq "$name/$tree: warm readahead: blocks read" 0 "$(json_field blocks_read "$warm")"
		expect_eq "$name/$tree: warm readahead: sectors read" "$after" "$(sectors_read_all $devs)"
		expect_eq "$name/$tree: device reads counted by a warm readahead" 0 \
			$(($(dev_counter_sum reads) - counted))
		if [ $tree = fs ] && [ $n -gt 1 ]; then
			for d in $devs; do
				eval "b=\$dev_before_${d##*/}"
				[ "$(sectors_read $d)" -gt "$b" ] || fail "$name: $d read nothing"
			done
			echo "ok: $name: every device read its share"
		fi
	done
	umount $MNT
done

# A pass deals with at most 4096 blocks found in memory: on a warm tree of
# more, the nodes left when a pass has spent that are parked for the next
# one, never queued as if they had to be read.
say "a warm tree of more than two passes' blocks"
fill_files /tmp/root/d 11000 2000
mkfs.btrfs -q -f -n 4096 -m single -d single --rootdir /tmp/root /dev/vda
rm -rf /tmp/root
blocks=$(dump_tree_blocks /dev/vda fs)
[ "$blocks" -gt 8192 ] || fail "fs tree of $blocks blocks: not more than two passes' worth"
mount /dev/vda $MNT
reada $MNT --tree fs > /dev/null
queued=$(counter blocks_queued)
warm=$(reada $MNT --tree fs --json)
expect_eq "big tree: blocks a warm readahead queues" 1 $(($(counter blocks_queued) - queued))
expect_eq "big tree: warm readahead visits every block" "$blocks" "$(json_field blocks_visited "$warm")"
expect_eq "big tree: warm readahead: blocks read" 0 "$(json_field blocks_read "$warm")"
umount $MNT
unload_module
