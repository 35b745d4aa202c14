#!/bin/bash
# A tree block whose bytes are corrupted on one copy (its checksum fails,
# the device reports no error) is read again from its other copy: DUP on
# one disk (the other copy is on the same device) and RAID1 on two, with
# every fourth fs tree leaf corrupted on /dev/vda. The
# request visits every block with no error, the retries are counted, and a
# plain walk afterwards reads nothing.
# disks: 2x1G
# timeout: 600
# expect-console: BTRFS warning \(device \w+\): checksum verify failed on logical \d+ mirror [12] wanted 0x[0-9a-f]+ found 0x[0-9a-f]+ level 0
. /tests/lib.sh
load_module
for profile in dup:1 raid1:2; do
	name=${profile%:*}
	devs=$(disks ${profile#*:})
	say "metadata $name: every fourth fs tree leaf corrupted in its copy on /dev/vda"
	mkfs.btrfs -q -f -n 4096 -m $name -d single $devs
	mount /dev/vda $MNT
	populate $MNT
	umount $MNT
	total=$(dump_tree_blocks /dev/vda fs)
	leaves=$(btrfs inspect-internal dump-tree -t fs /dev/vda | awk '/^leaf [0-9]+ items/ { print $2 }')
	nleaves=$(echo "$leaves" | wc -w)
	[ "$nleaves" -gt 10 ] || fail "$name: too few leaves to mean anything ($nleaves)"
	# The copy on /dev/vda: for DUP the first (mirror 1), the one the
	# module reads first.
	# (btrfs-map-logical cannot map some leaves, "no extent found": those
	# are left intact.)
	n=0 k=0
	for l in $leaves; do
		k=$((k + 1))
		[ $((k % 4)) = 1 ] || continue
		out=$(btrfs-map-logical -l "$l" /dev/vda 2>&1) || continue
		p=$(echo "$out" | awk '$1 == "mirror" && $NF == "/dev/vda" { print $6; exit }')
		[ -n "$p" ] || continue
		# Item bytes, past the header: the checksum fails, nothing else.
		dd if=/dev/urandom of=/dev/vda bs=1 seek=$((p + 1024)) count=64 \
			conv=notrunc,fsync status=none
		n=$((n + 1))
	done
	echo "corrupted $n of $nleaves leaves"
	[ "$n" -gt 40 ] || fail "$name: too few leaves corrupted to mean anything ($n)"
	mount /dev/vda $MNT
	drop_caches
	retried0=$(counter blocks_retried)
	out=$(timeout 120 reada $MNT --tree fs --json) || fail "$name: readahead failed or hung: $out"
	retried=$(($(counter blocks_retried) - retried0))
	echo "$out"
	expect_eq "$name: blocks visited" "$total" "$(json_field blocks_visited "$out")"
	expect_eq "$name: errors" 0 "$(json_field errors "$out")"
	if [ $name = dup ]; then
		# One retry per corrupted leaf, but for those btrfs itself read (and
		# repaired) at mount, which the request found in memory.
		cached=$(json_field blocks_cached "$out")
		[ "$retried" -le "$n" ] && [ "$retried" -ge $((n - cached)) ] ||
			fail "$name: $retried retries for $n corrupted leaves ($cached blocks found in memory)"
		echo "ok: $name: $retried retries for $n corrupted leaves ($cached blocks found in memory)"
	else
		[ "$retried" -gt 0 ] || fail "$name: no read was retried on the other mirror"
		echo "ok: $name: $retried of $n corrupted copies read first and retried"
	fi
	plain=$(reada $MNT --tree fs --mode plain --json)
	expect_eq "$name: plain walk after the readahead: blocks read" 0 "$(json_field blocks_read "$plain")"
	umount $MNT
done
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
unload_module
