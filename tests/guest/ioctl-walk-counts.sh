#!/bin/bash
# The plain, forward and forward-always walks visit exactly the tree blocks
# of the range: for whole trees, as many as btrfs-progs' dump-tree shows;
# for part of a tree, the same blocks in every mode and in the module's
# readahead, for ranges below the first key of a node (a search lands in
# its leftmost child), between keys and above the last. A cold walk reads
# nearly every block, a warm one none. Forward-always is the stock search
# with READA_FORWARD_ALWAYS: searching one key of a cold tree, it prefetches
# more of its siblings than READA_FORWARD does.
# disks: 2x1G
# timeout: 600
. /tests/lib.sh
# Small nodes so that a few thousand files make trees of several levels.
mkfs.btrfs -q -f -n 4096 -m raid1 -d single $(disks 2)
mount /dev/vda $MNT
fill_files $MNT/a 1500 5000
fill_files $MNT/b 1500 3000
rm -f $MNT/a/f1?? # holes in the extent tree
umount $MNT

declare -A expect
load_tree_blocks /dev/vda
for t in extent csum fs root; do
	expect[$t]=$(tree_blocks $t)
	echo "dump-tree: $t tree has ${expect[$t]} blocks"
done
[ "${expect[extent]}" -gt 40 ] || fail "extent tree too small to mean anything (${expect[extent]} blocks)"

load_module
mount /dev/vda $MNT
for t in extent csum fs root; do
	for mode in plain forward forward-always; do
		drop_caches
		cold=$(reada $MNT --tree $t --mode $mode --json)
		warm=$(reada $MNT --tree $t --mode $mode --json)
		expect_eq "$t/$mode cold: blocks visited" "${expect[$t]}" "$(json_field blocks_visited "$cold")"
		expect_eq "$t/$mode warm: blocks visited" "${expect[$t]}" "$(json_field blocks_visited "$warm")"
		expect_eq "$t/$mode warm: blocks read" 0 "$(json_field blocks_read "$warm")"
		expect_eq "$t/$mode: errors" 0 "$(json_field errors "$cold")"
		[ $mode = plain ] || continue  # the stock searches count reads fs-wide
		# A mounted filesystem keeps its roots (and blocks it uses itself)
		# in memory: nearly all, but not every block, is read cold.
		read=$(json_field blocks_read "$cold"); cached=$(json_field blocks_cached "$cold")
		expect_eq "$t/$mode cold: read + cached" "${expect[$t]}" "$((read + cached))"
		if [ "${expect[$t]}" -gt 10 ] && [ $((read * 10)) -lt $((${expect[$t]} * 7)) ]; then
			fail "$t/$mode cold: only $read of ${expect[$t]} read"
		fi
	done
done

say "part of a tree: both walks and the readahead visit the same blocks"
for tr in "fs --start 256 --end 300" "fs --start 270,1 --end 270,1,1" "fs --start 1000,0,0" \
	"fs --end 258,dir_item" "fs --start 0 --end 0,0,1" "extent --start 0 --end 0,0,1" \
	"extent --start 1 --end 2" "fs --start 1000000 --end 1000001"; do
	t=${tr%% *}
	range=${tr#* }
	p=$(reada $MNT --tree $t $range --mode plain --json)
	f=$(reada $MNT --tree $t $range --mode forward --json)
	a=$(reada $MNT --tree $t $range --mode forward-always --json)
	r=$(reada $MNT --tree $t $range --json)
	n=$(json_field blocks_visited "$p")
	expect_eq "$t tree $range: forward = plain" "$n" "$(json_field blocks_visited "$f")"
	expect_eq "$t tree $range: forward-always = plain" "$n" "$(json_field blocks_visited "$a")"
	expect_eq "$t tree $range: readahead = plain" "$n" "$(json_field blocks_visited "$r")"
	[ "$n" -ge 1 ] && [ "$n" -le "${expect[$t]}" ] || fail "$t tree $range: $n blocks"
done

say "one key of a cold extent tree: what each stock search leaves cached"
# READA_FORWARD prefetches at most 64 KiB of a leaf's near siblings,
# READA_FORWARD_ALWAYS 128 KiB of them wherever they lie: after searching
# the first key, a plain walk of the whole tree finds more of it cached.
declare -A left
for mode in forward forward-always; do
	cold_remount /dev/vda # (drop_caches alone keeps a mounted tree's blocks)
	reada $MNT --tree extent --end 0,0,1 --mode $mode > /dev/null
	sleep 2 # the prefetch is asynchronous
	out=$(reada $MNT --tree extent --mode plain --json)
	left[$mode]=$(json_field blocks_read "$out")
	echo "after a $mode search of one key: $(json_field blocks_cached "$out") of ${expect[extent]} extent tree blocks cached"
done
[ "${left[forward-always]}" -lt "${left[forward]}" ] ||
	fail "forward-always left ${left[forward-always]} blocks to read, forward ${left[forward]}: no more prefetch"
umount $MNT
unload_module
